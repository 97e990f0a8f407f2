// LSP latency replay: time from a keystroke to the inline completion response while
// typing into a real source file through the real server (lsp/latency_replay.h).
//
//   lsp_latency_bench [--model=M.gguf] [--backend=auto|cpu|vulkan] [--file=SOURCE]
//                     [--ghost-file=SOURCE] [--ghost-keystrokes=N] [--settings=JSON]
//                     [--max-suffix-tokens=N] [--fake-delay-ms=N] [benchmark flags]
//
// Environment variables HEARTH_BENCH_MODEL, HEARTH_BENCH_BACKEND, HEARTH_BENCH_FILE,
// HEARTH_BENCH_GHOST_FILE, HEARTH_BENCH_SETTINGS and HEARTH_BENCH_FAKE_DELAY_MS do the same.
// Without a model the Completer is a FakeCompleter that answers after the given delay (0 by
// default), which measures the protocol path alone. --max-suffix-tokens sets the engine's
// EngineCompleterOptions::max_suffix_tokens (what-if runs; `hearth lsp` keeps 512).
// Counters: p50_ms, p95_ms, max_ms over the answered requests, requests, items.
// Three sessions:
//  - "sequential": up to 400 keystrokes into --file with a wait for every response
//    (per-request latency, prefix reuse at work; debounce 0, 32 tokens, 4 lines, no
//    latency budget, the engine's suffix limit);
//  - "paced": 120 keystrokes typed every 60 ms regardless of responses (debounce-free
//    supersession at work);
//  - "ghost" (BM_KeystrokeToGhostText): what an editor sees. The server's default settings
//    (debounce, token budgets, latency budget; --settings=JSON overrides keys, e.g.
//    '{"automaticLatencyMs":0}'), 12 lines of --ghost-file (default bench/plot_bench.py,
//    Python for the bundled model; at most --ghost-keystrokes characters, default 400)
//    typed with brackets closed as editors do, so requests inside brackets are mid-line;
//    a wait for every response. Adds over_750ms (the share of answers later than VS
//    Code's ~750 ms wait for automatic requests), p50/p95 for mid-line and end-of-line
//    requests apart and the count of each, the server's means per model call (gen_tokens,
//    prefill_tokens, ms_prefill, ms_decode) and, in the label, how many calls stopped for
//    each stop_reason.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

// The replay lives in hearth_lsp; bench/CMakeLists.txt must link it (and hearth_workspace
// for the engine). Without them this builds as a stub that says so.
#if __has_include("latency_replay.h")
#define HEARTH_LSP_BENCH 1
#include "fake_completer.h"
#include "in_process_server.h"
#include "latency_replay.h"
#if __has_include("engine_completer.h") && __has_include("engine.h")
#define HEARTH_LSP_BENCH_ENGINE 1
#include "engine.h"
#include "engine_completer.h"
#endif
#endif

#ifdef HEARTH_LSP_BENCH

namespace {

using namespace hearth;
using namespace hearth::lsp;

struct Config {
    std::string model;
    std::string backend = "auto";
    std::string file = HEARTH_TEST_DATA "/../../lsp/server.cpp";
    std::string ghost_file = HEARTH_TEST_DATA "/../../bench/plot_bench.py";
    std::string settings;  // JSON applied over the ghost session's defaults
    int ghost_keystrokes = 400;
    int max_suffix_tokens = 0;  // >0: EngineCompleterOptions::max_suffix_tokens
    int fake_delay_ms = 0;
};

Config& config() {
    static Config c;
    return c;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

CompleterFactory make_factory() {
    const Config& c = config();
    if (c.model.empty()) {
        auto state = std::make_shared<FakeCompleterState>();
        state->delay = std::chrono::milliseconds(c.fake_delay_ms);
        state->completion = "value);\n";
        return InProcessServer::fake_factory(state);
    }
#ifdef HEARTH_LSP_BENCH_ENGINE
    return [](const Settings& s, const ProgressFn&) -> Expected<std::unique_ptr<Completer>> {
        auto kind = parse_backend_kind(s.backend);
        if (!kind) return kind.error();
        auto model = load_model(s.model_path);
        if (!model) return model.error();
        EngineCompleterOptions o;
        o.backend.kind = *kind;
        o.n_ctx = s.context_size;
        if (config().max_suffix_tokens > 0) o.max_suffix_tokens = config().max_suffix_tokens;
        auto made = EngineCompleter::create(std::move(*model), o);
        if (!made) return made.error();
        return std::unique_ptr<Completer>(std::move(*made));
    };
#else
    return [](const Settings&, const ProgressFn&) -> Expected<std::unique_ptr<Completer>> {
        return make_error("this build has no engine completer (workspace/engine_completer.h)");
    };
#endif
}

// Runs the session once per benchmark iteration; the last run's result, or nullopt after
// marking the benchmark skipped with the error.
std::optional<ReplayResult> replay(benchmark::State& state, const ReplayOptions& o) {
    std::optional<ReplayResult> last;
    for (auto _ : state) {
        Expected<ReplayResult> r = replay_typing_session(o, make_factory());
        if (!r) {
            state.SkipWithError(r.error().message.c_str());
            return std::nullopt;
        }
        last = std::move(*r);
    }
    return last;
}

void run_session(benchmark::State& state, std::chrono::milliseconds interval, int keystrokes) {
    const Config& c = config();
    ReplayOptions o;
    o.text = read_file(c.file);
    o.interval = interval;
    o.max_keystrokes = keystrokes;
    o.settings.model_path = c.model;
    o.settings.backend = c.backend;
    o.settings.debounce_ms = 0;
    o.settings.max_tokens = 32;
    o.settings.max_lines = 4;
    // The engine's own path, comparable with earlier runs: no latency budget, the whole
    // suffix (the ghost session measures those).
    o.settings.automatic_latency_ms = 0;
    o.settings.max_suffix_tokens_automatic = 0;
    std::optional<ReplayResult> replayed = replay(state, o);
    if (!replayed) return;
    const ReplayResult& last = *replayed;
    state.counters["p50_ms"] = last.p50_ms;
    state.counters["p95_ms"] = last.p95_ms;
    state.counters["max_ms"] = last.max_ms;
    state.counters["requests"] = last.requests;
    state.counters["answered"] = static_cast<double>(last.latencies_ms.size());
    state.counters["items"] = last.with_items;
    state.SetLabel(c.model.empty()
                       ? "fake completer, delay " + std::to_string(c.fake_delay_ms) + " ms"
                       : c.model);
}

void BM_LspTypingSequential(benchmark::State& state) {
    run_session(state, std::chrono::milliseconds(0), 400);
}
void BM_LspTypingPaced60ms(benchmark::State& state) {
    run_session(state, std::chrono::milliseconds(60), 120);
}

void BM_KeystrokeToGhostText(benchmark::State& state) {
    const Config& c = config();
    ReplayOptions o;
    o.text = read_file(c.ghost_file);
    o.uri = "file:///replay/source.py";
    o.language_id = "python";
    o.start_fraction = 0.4;
    o.lines = 12;
    o.max_keystrokes = c.ghost_keystrokes;
    o.autoclose = true;
    o.settings.model_path = c.model;
    o.settings.backend = c.backend;
    if (!c.settings.empty()) {
        auto parsed = nlohmann::json::parse(c.settings, nullptr, false);
        std::vector<std::string> warnings = o.settings.apply(parsed);
        if (parsed.is_discarded()) warnings.push_back("--settings: not JSON");
        if (!warnings.empty()) {
            state.SkipWithError(warnings.front().c_str());
            return;
        }
    }
    std::optional<ReplayResult> replayed = replay(state, o);
    if (!replayed) return;
    const ReplayResult& last = *replayed;
    std::vector<double> mid, eol;
    for (size_t i = 0; i < last.latencies_ms.size(); ++i) {
        (last.mid_line[i] ? mid : eol).push_back(last.latencies_ms[i]);
    }
    const double answered = static_cast<double>(last.latencies_ms.size());
    state.counters["p50_ms"] = last.p50_ms;
    state.counters["p95_ms"] = last.p95_ms;
    state.counters["max_ms"] = last.max_ms;
    state.counters["over_750ms"] = answered > 0 ? last.slow / answered : 0;
    state.counters["mid_n"] = static_cast<double>(mid.size());
    state.counters["mid_p50"] = percentile(mid, 50);
    state.counters["mid_p95"] = percentile(mid, 95);
    state.counters["eol_n"] = static_cast<double>(eol.size());
    state.counters["eol_p50"] = percentile(eol, 50);
    state.counters["eol_p95"] = percentile(eol, 95);
    state.counters["items"] = last.with_items;
    state.counters["gen_tokens"] = last.mean_generated_tokens;
    state.counters["prefill_tokens"] = last.mean_prefilled_tokens;
    state.counters["ms_prefill"] = last.mean_ms_prefill;
    state.counters["ms_decode"] = last.mean_ms_decode;
    std::string reasons;
    for (const auto& [reason, n] : last.stop_reasons) {
        reasons += " " + (reason.empty() ? std::string("?") : reason) + "=" + std::to_string(n);
    }
    state.SetLabel((c.model.empty() ? "fake completer" : c.model) +
                   (c.settings.empty() ? "" : " " + c.settings) + " stops:" + reasons);
}

BENCHMARK(BM_LspTypingSequential)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK(BM_LspTypingPaced60ms)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();
BENCHMARK(BM_KeystrokeToGhostText)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

// Takes --name=value for our flags out of argv (google-benchmark refuses unknown flags).
bool take_flag(int& argc, char** argv, const char* name, std::string& out) {
    std::string prefix = std::string("--") + name + "=";
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
            out = argv[i] + prefix.size();
            for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
            --argc;
            return true;
        }
    }
    return false;
}

void env(const char* name, std::string& out) {
    if (const char* v = std::getenv(name); v && *v) out = v;
}

}  // namespace

int main(int argc, char** argv) {
    Config& c = config();
    std::string delay;
    std::string keystrokes;
    std::string suffix;
    env("HEARTH_BENCH_MODEL", c.model);
    env("HEARTH_BENCH_BACKEND", c.backend);
    env("HEARTH_BENCH_FILE", c.file);
    env("HEARTH_BENCH_GHOST_FILE", c.ghost_file);
    env("HEARTH_BENCH_SETTINGS", c.settings);
    env("HEARTH_BENCH_FAKE_DELAY_MS", delay);
    take_flag(argc, argv, "model", c.model);
    take_flag(argc, argv, "backend", c.backend);
    take_flag(argc, argv, "file", c.file);
    take_flag(argc, argv, "ghost-file", c.ghost_file);
    take_flag(argc, argv, "settings", c.settings);
    take_flag(argc, argv, "ghost-keystrokes", keystrokes);
    take_flag(argc, argv, "max-suffix-tokens", suffix);
    take_flag(argc, argv, "fake-delay-ms", delay);
    if (!delay.empty()) c.fake_delay_ms = std::atoi(delay.c_str());
    if (!keystrokes.empty()) c.ghost_keystrokes = std::atoi(keystrokes.c_str());
    if (!suffix.empty()) c.max_suffix_tokens = std::atoi(suffix.c_str());
    if (read_file(c.file).empty()) {
        std::fprintf(stderr, "lsp_latency_bench: cannot read %s (--file=)\n", c.file.c_str());
        return 2;
    }
    if (read_file(c.ghost_file).empty()) {
        std::fprintf(stderr, "lsp_latency_bench: cannot read %s (--ghost-file=)\n",
                     c.ghost_file.c_str());
        return 2;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

#else  // !HEARTH_LSP_BENCH

int main() {
    std::fprintf(stderr,
                 "lsp_latency_bench: built without hearth_lsp; link hearth_lsp and "
                 "hearth_workspace in bench/CMakeLists.txt\n");
    return 1;
}

#endif
