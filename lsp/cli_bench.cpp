// hearth bench --model M [--backend vulkan]: prefill and decode speed at context frontiers.
//
// One fixed pseudo-random token sequence is walked to each frontier (1k, 2k, 4k, ...):
// only the newly prefilled interval is timed, the KV cache is snapshotted, a greedy
// decode of --decode tokens is timed, the snapshot is restored and the walk continues.
// Then a llama-bench style summary: pp512 and pp4096 (prefill from an empty context) and
// tg128 (decode from an empty context), each the median of --reps runs after a warm-up.
// Output: two CSV tables on stdout (frontiers, then the summary).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "cli.h"
#include "cli_util.h"
#include "engine.h"
#include "sampler.h"
#include "session.h"

namespace hearth::cli {
namespace {

struct Args {
    std::string model, backend = "auto", frontiers = "1024,2048,4096,8192,16384,32768";
    int decode = 128, chunk = 1024, reps = 3, threads = 0;
    bool no_summary = false, no_frontiers = false;
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// A fixed sequence of ordinary (non-control) token ids: splitmix64 over the vocabulary.
std::vector<int32_t> bench_tokens(size_t n, int32_t n_vocab) {
    std::vector<int32_t> t(n);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    const uint64_t range = static_cast<uint64_t>(std::max(1, std::min(n_vocab, 150000) - 256));
    for (auto& id : t) {
        s += 0x9E3779B97F4A7C15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        id = static_cast<int32_t>(256 + z % range);  // skip the byte tokens at the bottom
    }
    return t;
}

Expected<double> timed_decode(Session& s, int n) {
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        const auto logits = s.logits();
        const int32_t id = static_cast<int32_t>(
            std::max_element(logits.begin(), logits.end()) - logits.begin());
        HEARTH_TRY(s.decode(id));
    }
    return ms_since(t0);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int run_bench(const Args& a) {
    auto kind = parse_backend_kind(a.backend);
    if (!kind) return fail(kind.error());
    std::vector<int32_t> frontiers;
    {
        std::stringstream ss(a.frontiers);
        std::string item;
        while (std::getline(ss, item, ',')) {
            try {
                frontiers.push_back(std::stoi(item));
            } catch (...) {
                return fail("bad --frontiers entry '" + item + "'");
            }
        }
    }
    std::sort(frontiers.begin(), frontiers.end());
    if (frontiers.empty() || frontiers.front() < 1) return fail("--frontiers must be positive");
    if (a.decode < 1 || a.reps < 1 || a.chunk < 1) return fail("--decode, --reps, --chunk must be >= 1");

    auto m = load_model(a.model);
    if (!m) return fail(m.error());
    BackendOptions bo;
    bo.kind = *kind;
    bo.n_threads = a.threads;
    bo.progress = upload_progress_printer();
    const auto t_load = Clock::now();
    std::string note;
    auto backend = make_backend(m->model, bo, &note);
    if (!backend) return fail(backend.error());
    if (!note.empty()) std::fprintf(stderr, "hearth: %s\n", note.c_str());
    const double load_ms = ms_since(t_load);
    const BackendInfo info = (*backend)->info();
    // A frontier beyond the model's context moves down to the last one that leaves room
    // for the decode (32768 becomes 32640 on a 32k model); duplicates are dropped.
    const int32_t n_train = m->model->hparams().n_ctx_train;
    for (int32_t& f : frontiers) f = std::min(f, n_train - a.decode);
    frontiers.erase(std::remove_if(frontiers.begin(), frontiers.end(),
                                   [](int32_t f) { return f < 1; }),
                    frontiers.end());
    frontiers.erase(std::unique(frontiers.begin(), frontiers.end()), frontiers.end());
    if (frontiers.empty() && !a.no_frontiers) return fail("no frontier fits the model's context");
    const int32_t n_ctx = std::min(
        n_train, std::max(a.no_frontiers ? 0 : frontiers.back(), 4096) + a.decode + 1);
    auto bs = (*backend)->create_session(n_ctx);
    if (!bs) return fail(bs.error());
    Session s(std::move(*bs));
    const auto tokens = bench_tokens(static_cast<size_t>(n_ctx), m->model->hparams().n_vocab);
    SyncOptions so;
    so.chunk = a.chunk;

    const uint64_t weight_bytes = m->model->memory_bytes();
    std::printf("# hearth bench: model=%s backend=%s device=\"%s\" load_ms=%.0f chunk=%d "
                "weight_bytes=%llu\n",
                a.model.c_str(), info.name.c_str(), info.device.c_str(), load_ms, a.chunk,
                static_cast<unsigned long long>(weight_bytes));
    std::fflush(stdout);

    if (!a.no_frontiers) {
        std::printf("frontier,new_tokens,prefill_ms,prefill_tps,decode_tokens,decode_ms,"
                    "decode_tps,kv_bytes,snapshot_ms,restore_ms\n");
        int32_t prev = 0;
        for (int32_t f : frontiers) {
            std::span<const int32_t> prefix(tokens.data(), static_cast<size_t>(f));
            auto t0 = Clock::now();
            auto st = s.sync(prefix, so);
            if (!st) return fail(st.error());
            const double pf_ms = ms_since(t0);
            t0 = Clock::now();
            auto snap = s.snapshot(f);
            if (!snap) return fail(snap.error());
            const double snap_ms = ms_since(t0);
            auto dec_ms = timed_decode(s, a.decode);
            if (!dec_ms) return fail(dec_ms.error());
            t0 = Clock::now();
            if (Status r = s.restore(*snap, prefix); !r.ok()) return fail(r.error());
            const double restore_ms = ms_since(t0);
            const int32_t new_tokens = st->evaluated;
            std::printf("%d,%d,%.2f,%.1f,%d,%.2f,%.2f,%zu,%.2f,%.2f\n", f, new_tokens, pf_ms,
                        new_tokens / (pf_ms / 1000.0), a.decode, *dec_ms,
                        a.decode / (*dec_ms / 1000.0), snap->data.size(), snap_ms, restore_ms);
            std::fflush(stdout);
            prev = f;
        }
        (void)prev;
        std::printf("\n");
    }

    if (!a.no_summary) {
        // weight_gbps: weight bytes read per second by decode (each token reads every
        // weight once), the figure to hold against the device's memory bandwidth.
        std::printf("test,tokens,ms,tokens_per_second,weight_gbps\n");
        struct Test {
            const char* name;
            int32_t prefill;
            int32_t decode;
        };
        const Test tests[] = {{"pp512", 512, 0}, {"pp4096", 4096, 0}, {"tg128", 1, 128}};
        for (const Test& t : tests) {
            if (t.prefill + t.decode > n_ctx) {
                std::fprintf(stderr, "hearth: %s does not fit the context %d; skipped\n", t.name, n_ctx);
                continue;
            }
            std::vector<double> times;
            for (int r = 0; r <= a.reps; ++r) {  // r == 0 is the warm-up
                s.clear();
                std::span<const int32_t> prompt(tokens.data(), static_cast<size_t>(t.prefill));
                auto t0 = Clock::now();
                auto st = s.sync(prompt, so);
                if (!st) return fail(st.error());
                double ms = ms_since(t0);
                if (t.decode > 0) {
                    auto d = timed_decode(s, t.decode);
                    if (!d) return fail(d.error());
                    ms = *d;
                }
                if (r > 0) times.push_back(ms);
            }
            const double ms = median(times);
            const int32_t n = t.decode > 0 ? t.decode : t.prefill;
            const double tps = n / (ms / 1000.0);
            if (t.decode > 0) {
                std::printf("%s,%d,%.2f,%.1f,%.1f\n", t.name, n, ms, tps,
                            tps * static_cast<double>(weight_bytes) / 1e9);
            } else {
                std::printf("%s,%d,%.2f,%.1f,\n", t.name, n, ms, tps);
            }
            std::fflush(stdout);
        }
    }
    return 0;
}

}  // namespace

void register_bench(CLI::App& app, Outcome& out) {
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("bench", "Prefill/decode speed at context frontiers (CSV)");
    cmd->add_option("-m,--model", a->model, "GGUF model")->required();
    cmd->add_option("--backend", a->backend, "auto, cpu or vulkan")->capture_default_str();
    cmd->add_option("--frontiers", a->frontiers, "Context frontiers")->capture_default_str();
    cmd->add_option("--decode", a->decode, "Greedy decode tokens per frontier")->capture_default_str();
    cmd->add_option("--chunk", a->chunk, "Prefill chunk (tokens per eval)")->capture_default_str();
    cmd->add_option("--reps", a->reps, "Repetitions of each summary test")->capture_default_str();
    cmd->add_option("--threads", a->threads, "CPU threads (0: all)");
    cmd->add_flag("--no-summary", a->no_summary, "Skip pp512/pp4096/tg128");
    cmd->add_flag("--no-frontiers", a->no_frontiers, "Only the summary");
    cmd->callback([&out, a] { out.exit_code = run_bench(*a); });
}

}  // namespace hearth::cli
