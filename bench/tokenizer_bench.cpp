// Tokenizer throughput with the real Qwen vocabulary on real source text.
//
// Corpus: the libstdc++ headers (/usr/include/c++/<version>/bits) and the top-level
// Python standard library modules (/usr/lib/python3.*), each list sorted by path and
// capped at 2 MiB, so one machine always measures the same bytes. If neither exists
// the engine's own sources stand in. The benchmark's label names the corpus.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf.h"
#include "tokenizer.h"

namespace fs = std::filesystem;
using hearth::EncodeMode;
using hearth::Tokenizer;

namespace {

constexpr size_t kCapPerSource = 2u << 20;

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Sorted regular files directly in `dir` whose extension is in `exts` (empty: any),
// concatenated up to `cap` bytes (whole files only).
std::string gather(const fs::path& dir, const std::vector<std::string>& exts, size_t cap) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return {};
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (!e.is_regular_file(ec)) continue;
        const std::string ext = e.path().extension().string();
        if (exts.empty() || std::find(exts.begin(), exts.end(), ext) != exts.end()) {
            files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    std::string out;
    for (const fs::path& f : files) {
        std::string text = read_file(f);
        if (out.size() + text.size() > cap) break;
        out += text;
    }
    return out;
}

// The first (sorted) directory matching /prefix*/suffix.
fs::path first_dir(const fs::path& parent, const std::string& prefix, const std::string& suffix) {
    std::error_code ec;
    std::vector<fs::path> found;
    if (!fs::is_directory(parent, ec)) return {};
    for (const auto& e : fs::directory_iterator(parent, ec)) {
        const std::string name = e.path().filename().string();
        if (name.starts_with(prefix) && fs::is_directory(e.path() / suffix, ec)) {
            found.push_back(e.path() / suffix);
        }
    }
    std::sort(found.begin(), found.end());
    return found.empty() ? fs::path() : found.front();
}

struct Corpus {
    std::string cpp;
    std::string python;
    std::string multilingual;  // the golden strings, repeated: Unicode-heavy text
};

const Corpus& corpus() {
    static const Corpus c = [] {
        Corpus k;
        k.cpp = gather(first_dir("/usr/include/c++", "", "bits"), {}, kCapPerSource);
        if (k.cpp.empty()) {
            k.cpp = gather(fs::path(HEARTH_TEST_DATA) / "../../engine", {".h", ".cpp"},
                           kCapPerSource);
        }
        k.python = gather(first_dir("/usr/lib", "python3.", ""), {".py"}, kCapPerSource);
        std::ifstream in(std::string(HEARTH_TEST_DATA) + "/tokenizer-golden.json");
        const auto j = nlohmann::json::parse(in);
        std::string once;
        for (const auto& g : j.at("qwen-vocab")) once += g.at("text").get<std::string>();
        while (k.multilingual.size() < (256u << 10)) k.multilingual += once;
        return k;
    }();
    return c;
}

const Tokenizer& qwen() {
    static const auto gguf = hearth::GGUFFile::open(std::string(HEARTH_TEST_DATA) +
                                                    "/qwen-vocab.gguf");
    static const std::optional<Tokenizer> tok = [] () -> std::optional<Tokenizer> {
        if (!gguf) return std::nullopt;
        auto t = Tokenizer::from_gguf(**gguf);
        if (!t) return std::nullopt;
        return std::move(*t);
    }();
    if (!tok) {
        std::cerr << "cannot load qwen-vocab.gguf\n";
        std::exit(1);
    }
    return *tok;
}

void run_encode(benchmark::State& state, const std::string& text, const char* label) {
    const Tokenizer& tok = qwen();
    if (text.empty()) {
        state.SkipWithError("corpus not found on this machine");
        return;
    }
    size_t tokens = 0;
    for (auto _ : state) {
        const auto ids = tok.encode(text, EncodeMode::Plain);
        tokens = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
    state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(tokens);
    state.SetLabel(label);
}

void BM_EncodeCpp(benchmark::State& state) {
    run_encode(state, corpus().cpp, "libstdc++ headers");
}
void BM_EncodePython(benchmark::State& state) {
    run_encode(state, corpus().python, "python stdlib");
}
void BM_EncodeMultilingual(benchmark::State& state) {
    run_encode(state, corpus().multilingual, "golden strings (Unicode-heavy)");
}

// Prompt assembly tokenizes a file in chunks; each call starts with a cold piece cache.
void BM_EncodeChunks(benchmark::State& state) {
    const Tokenizer& tok = qwen();
    const std::string& text = corpus().python;
    const auto chunk = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        for (size_t off = 0; off < text.size(); off += chunk) {
            const auto ids = tok.encode(std::string_view(text).substr(off, chunk),
                                        EncodeMode::Plain);
            benchmark::DoNotOptimize(ids.data());
        }
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_Decode(benchmark::State& state) {
    const Tokenizer& tok = qwen();
    const auto ids = tok.encode(corpus().python, EncodeMode::Plain);
    for (auto _ : state) {
        const std::string text = tok.decode(ids);
        benchmark::DoNotOptimize(text.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().python.size()));
}

void BM_LoadQwenVocab(benchmark::State& state) {
    const auto gguf =
        hearth::GGUFFile::open(std::string(HEARTH_TEST_DATA) + "/qwen-vocab.gguf");
    if (!gguf) {
        state.SkipWithError(gguf.error().message.c_str());
        return;
    }
    for (auto _ : state) {
        auto tok = Tokenizer::from_gguf(**gguf);
        benchmark::DoNotOptimize(tok.ok());
    }
}

}  // namespace

BENCHMARK(BM_EncodeCpp)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodePython)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeMultilingual)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeChunks)->Arg(2048)->Arg(16384)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadQwenVocab)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
