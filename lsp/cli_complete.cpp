// hearth complete --model M --prefix-file A --suffix-file B [-n N] [--temp T]
// Builds the model family's FIM prompt from a prefix and a suffix and prints the
// completion (what an editor would insert at the cursor) on stdout.
#include <cstdio>

#include "cli.h"
#include "cli_util.h"
#include "engine_completer.h"

namespace hearth::cli {
namespace {

struct Args {
    std::string model, prefix_file, suffix_file, prefix, suffix, backend = "auto", fim;
    int n = 64;
    float temp = 0.0f, top_p = 1.0f, min_p = 0.0f;
    int top_k = 0, ctx = 4096, lines = 0, threads = 0;
    uint64_t seed = 0;
    bool stats = false;
};

int run_complete(const Args& a) {
    auto kind = parse_backend_kind(a.backend);
    if (!kind) return fail(kind.error());
    CompletionRequest req;
    req.prefix = a.prefix;
    req.suffix = a.suffix;
    if (!a.prefix_file.empty()) {
        auto t = read_file(a.prefix_file);
        if (!t) return fail(t.error());
        req.prefix = std::move(*t);
    }
    if (!a.suffix_file.empty()) {
        auto t = read_file(a.suffix_file);
        if (!t) return fail(t.error());
        req.suffix = std::move(*t);
    }
    if (a.n < 1) return fail("-n must be at least 1");
    req.max_tokens = a.n;
    req.max_lines = a.lines;
    req.temperature = a.temp;
    req.top_k = a.top_k;
    req.top_p = a.top_p;
    req.min_p = a.min_p;
    req.seed = a.seed;

    auto m = load_model(a.model);
    if (!m) return fail(m.error());
    EngineCompleterOptions opts;
    opts.backend.kind = *kind;
    opts.backend.n_threads = a.threads;
    opts.backend.progress = upload_progress_printer();
    opts.n_ctx = a.ctx;
    opts.fim_template = a.fim;
    auto c = EngineCompleter::create(std::move(*m), opts);
    if (!c) return fail(c.error());
    auto r = (*c)->complete(req);
    if (!r) return fail(r.error());
    std::fwrite(r->text.data(), 1, r->text.size(), stdout);
    std::fputc('\n', stdout);
    if (a.stats) {
        const CompletionStats& s = r->stats;
        std::fprintf(stderr,
                     "hearth: %s on %s: %d prompt tokens (%d prefilled), %d generated, "
                     "%.1f ms prefill, %.1f ms decode (%.1f tokens/s), stop: %s\n",
                     s.backend.c_str(), s.device.c_str(), s.prompt_tokens, s.prefilled_tokens,
                     s.generated_tokens, s.ms_prefill, s.ms_decode, s.tokens_per_second,
                     r->stop_reason.c_str());
    }
    return 0;
}

}  // namespace

void register_complete(CLI::App& app, Outcome& out) {
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("complete", "Fill in the middle between a prefix and a suffix");
    cmd->add_option("-m,--model", a->model, "GGUF model")->required();
    cmd->add_option("--prefix-file", a->prefix_file, "File with the text before the cursor");
    cmd->add_option("--suffix-file", a->suffix_file, "File with the text after the cursor");
    cmd->add_option("--prefix", a->prefix, "Text before the cursor");
    cmd->add_option("--suffix", a->suffix, "Text after the cursor");
    cmd->add_option("-n,--max-tokens", a->n, "Tokens to generate at most")->capture_default_str();
    cmd->add_option("--lines", a->lines, "Lines to generate at most (0: no limit)");
    cmd->add_option("--temp", a->temp, "Temperature (0: greedy)")->capture_default_str();
    cmd->add_option("--top-k", a->top_k, "Top-k (0: off)");
    cmd->add_option("--top-p", a->top_p, "Top-p (1: off)");
    cmd->add_option("--min-p", a->min_p, "Min-p (0: off)");
    cmd->add_option("--seed", a->seed, "Sampling seed");
    cmd->add_option("--ctx", a->ctx, "Context size")->capture_default_str();
    cmd->add_option("--backend", a->backend, "auto, cpu or vulkan")->capture_default_str();
    cmd->add_option("--threads", a->threads, "CPU threads (0: all)");
    cmd->add_option("--fim", a->fim, "FIM template: qwen, deepseek, starcoder2, codellama");
    cmd->add_flag("--stats", a->stats, "Print timing and token counts to stderr");
    cmd->callback([&out, a] { out.exit_code = run_complete(*a); });
}

}  // namespace hearth::cli
