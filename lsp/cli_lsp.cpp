// hearth lsp --model M.gguf: the language server on stdin/stdout.
// Command-line flags give the initial settings; the editor's initializationOptions and
// workspace/didChangeConfiguration override them (docs/lsp.md).
#include <spdlog/spdlog.h>

#include "cli.h"
#include "engine_completer.h"
#include "server.h"

namespace hearth::cli {

lsp::CompleterFactory engine_completer_factory() {
    return [](const lsp::Settings& s,
              const lsp::ProgressFn& progress) -> Expected<std::unique_ptr<Completer>> {
        if (s.model_path.empty()) {
            return make_error("no model configured: start `hearth lsp --model M.gguf` or set "
                              "the \"model\" setting to a GGUF file");
        }
        auto kind = parse_backend_kind(s.backend);
        if (!kind) return kind.error();
        auto m = load_model(s.model_path);
        if (!m) return m.error();
        EngineCompleterOptions o;
        o.backend.kind = *kind;
        o.n_ctx = s.context_size;
        o.fim_template = s.fim_template;
        o.disk_cache = s.cache_max_mb > 0 && s.cache_total_max_mb > 0;
        o.cache.root = s.cache_dir;
        o.cache.workspace = s.workspace_root;
        o.cache.workspace_max_bytes = static_cast<uint64_t>(s.cache_max_mb) << 20;
        o.cache.total_max_bytes = static_cast<uint64_t>(s.cache_total_max_mb) << 20;
        if (progress) {
            // Weight upload progress in MiB (the protocol's counters are 32-bit).
            o.backend.progress = [progress](uint64_t done, uint64_t total) {
                progress(static_cast<int32_t>(done >> 20), static_cast<int32_t>(total >> 20));
            };
        }
        auto c = EngineCompleter::create(std::move(*m), o);
        if (!c) return c.error();
        spdlog::info("model {} on {} ({}), context {}", s.model_path, (*c)->backend_name(),
                     (*c)->device_name(), (*c)->n_ctx());
        return std::unique_ptr<Completer>(std::move(*c));
    };
}

namespace {

struct Args {
    std::string model, backend = "auto", log_level = "info", cache_dir;
    int ctx = 4096, max_tokens = 128, context_tokens = 0;
    int64_t cache_max_mb = 2048;
    bool stdio_flag = true;
};

int run_lsp(const Args& a) {
    lsp::LspServerOptions o;
    o.version = HEARTH_VERSION;
    o.settings.model_path = a.model;
    o.settings.backend = a.backend;
    o.settings.context_size = a.ctx;
    o.settings.max_tokens = a.max_tokens;
    o.settings.log_level = a.log_level;
    o.settings.cache_dir = a.cache_dir;
    o.settings.cache_max_mb = a.cache_max_mb;
    o.settings.context_tokens = a.context_tokens;
    spdlog::set_level(spdlog::level::from_str(a.log_level));
    return lsp::run_lsp_server(o, engine_completer_factory());
}

}  // namespace

void register_lsp(CLI::App& app, Outcome& out) {
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("lsp", "Serve the Language Server Protocol on stdio");
    cmd->add_option("-m,--model", a->model, "GGUF model (or the \"model\" setting)");
    cmd->add_option("--backend", a->backend, "auto, cpu or vulkan")->capture_default_str();
    cmd->add_option("--ctx", a->ctx, "Context size in tokens")->capture_default_str();
    cmd->add_option("--max-tokens", a->max_tokens, "Tokens per inline completion")->capture_default_str();
    cmd->add_option("--context-tokens", a->context_tokens,
                    "Repository context budget in tokens (0: half the context size)")
        ->capture_default_str();
    cmd->add_option("--cache-dir", a->cache_dir,
                    "Disk KV cache root (default $XDG_CACHE_HOME/hearth)");
    cmd->add_option("--cache-max-mb", a->cache_max_mb,
                    "Disk KV cache budget per workspace in MiB (0 disables it)")
        ->capture_default_str();
    cmd->add_option("--log-level", a->log_level, "trace, debug, info, warn, error, off")
        ->capture_default_str();
    cmd->add_flag("--stdio", a->stdio_flag, "Use stdio (the default and only transport; accepted for clients "
                             "that always pass it)");
    cmd->callback([&out, a] { out.exit_code = run_lsp(*a); });
}

}  // namespace hearth::cli
