// hearth bench-workspace: time to the first completion in a real workspace, cold, warm in
// memory and after a restart with the disk KV cache, through the real server over stdio.
//
// Each case runs `hearth lsp` as a child process (this binary), as an editor would:
//   cold     a fresh cache directory: the repository context is prefilled;
//   warm     the same process, after an edit in the middle of the current file: the
//            context and the file text before the edit are still in memory;
//   restart  a new process on the same cache directory, the file as the edit left it:
//            the context and the file up to the cursor come from disk.
// The time is from sending textDocument/inlineCompletion to its response; the token
// counts come from the server's hearth.status (lastStats). The model is loaded and the
// workspace indexed before any timing starts.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "child_server.h"
#include "cli.h"

namespace hearth::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Args {
    std::string model, workspace = ".", file, backend = "auto", cache_dir;
    int ctx = 32768, context_tokens = 0, max_tokens = 16, line = -1;
    bool json_out = false, keep_cache = false, at_end = false;
};

struct CaseResult {
    std::string name;
    double ms = 0;
    json stats;
};

std::string file_uri(const fs::path& p) {
    // Percent-encode what a URI path cannot hold as is.
    std::string out = "file://";
    for (unsigned char c : p.string()) {
        if (std::isalnum(c) ||
            std::string_view("/-_.~").find(static_cast<char>(c)) != std::string_view::npos) {
            out.push_back(static_cast<char>(c));
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

class Run {
  public:
    Run(const Args& a, fs::path root, fs::path cache)
        : a_(a), root_(std::move(root)), cache_(std::move(cache)) {}

    // Starts a server and waits for the model and the workspace index.
    Status start() {
        std::vector<std::string> argv = {"/proc/self/exe",
                                         "lsp",
                                         "--model",
                                         a_.model,
                                         "--backend",
                                         a_.backend,
                                         "--ctx",
                                         std::to_string(a_.ctx),
                                         "--max-tokens",
                                         std::to_string(a_.max_tokens),
                                         "--context-tokens",
                                         std::to_string(a_.context_tokens),
                                         "--cache-dir",
                                         cache_.string(),
                                         "--log-level",
                                         "warn"};
        auto c = lsp::ChildServer::spawn(argv);
        if (!c) return c.error();
        server_ = std::move(*c);
        json caps = {{"general", {{"positionEncodings", json::array({"utf-8"})}}},
                     {"textDocument", {{"inlineCompletion", json::object()}}}};
        auto init = server_->call(
            "initialize",
            {{"processId", ::getpid()}, {"rootUri", file_uri(root_)}, {"capabilities", caps}});
        if (!init) return init.error();
        server_->notify("initialized", json::object());
        bool loaded = false, indexed = false;
        while (!loaded || !indexed) {
            auto st = server_->wait_notification(
                [](const std::string& m, const json&) { return m == "hearth/status"; },
                std::chrono::minutes(10));
            if (!st)
                return make_error("waiting for the model and the index: " + st.error().message);
            const std::string event = st->value("event", "");
            if (event == "model_error") return make_error("model: " + st->value("message", ""));
            loaded = loaded || event == "model_loaded";
            indexed = indexed || event == "workspace_indexed";
        }
        return {};
    }

    void open(const std::string& uri, const std::string& text) {
        server_->notify("textDocument/didOpen",
                        {{"textDocument",
                          {{"uri", uri}, {"languageId", "cpp"}, {"version", 1}, {"text", text}}}});
    }

    void change(const std::string& uri, int version, int line, const std::string& insert) {
        json range = {{"start", {{"line", line}, {"character", 0}}},
                      {"end", {{"line", line}, {"character", 0}}}};
        server_->notify("textDocument/didChange",
                        {{"textDocument", {{"uri", uri}, {"version", version}}},
                         {"contentChanges", json::array({{{"range", range}, {"text", insert}}})}});
    }

    Expected<CaseResult> complete(const std::string& name, const std::string& uri, int line,
                                  int character) {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = server_->call("textDocument/inlineCompletion",
                               {{"textDocument", {{"uri", uri}}},
                                {"position", {{"line", line}, {"character", character}}},
                                {"context", {{"triggerKind", 1}}}});
        if (!r) return r.error();
        CaseResult out;
        out.name = name;
        out.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count();
        auto st = server_->call("workspace/executeCommand", {{"command", "hearth.status"}});
        if (!st) return st.error();
        out.stats = (*st)["lastStats"];
        out.stats["cache"] = (*st)["cache"];
        out.stats["indexed_files"] = (*st)["workspace"]["indexedFiles"];
        return out;
    }

    // shutdown + exit; waits until the process is gone (its disk cache written).
    Status stop() {
        auto r = server_->call("shutdown", nullptr);
        if (!r) return r.error();
        server_->notify("exit", nullptr);
        const int code = server_->wait_exit(std::chrono::minutes(5));
        server_.reset();
        if (code != 0) return make_error("the server exited with " + std::to_string(code));
        return {};
    }

  private:
    const Args& a_;
    fs::path root_, cache_;
    std::unique_ptr<lsp::ChildServer> server_;
};

int bench(const Args& a) {
    ::signal(SIGPIPE, SIG_IGN);
    std::error_code ec;
    const fs::path root = fs::canonical(a.workspace, ec);
    if (ec) return fail("workspace " + a.workspace + ": " + ec.message());
    const fs::path file = fs::path(a.file).is_absolute() ? fs::path(a.file) : root / a.file;
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail("cannot read " + file.string());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    std::vector<std::string> lines;
    for (size_t pos = 0; pos <= text.size();) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    const int last = static_cast<int>(lines.size()) - 1;
    const int line = a.at_end      ? last
                     : a.line >= 0 ? std::min(a.line, last)
                                   : static_cast<int>(lines.size()) * 2 / 3;
    const int character = static_cast<int>(lines[static_cast<size_t>(line)].size());

    fs::path cache = a.cache_dir;
    bool temp_cache = false;
    if (cache.empty()) {
        std::string tmpl = (fs::temp_directory_path() / "hearth-bench-cache-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) return fail("mkdtemp failed");
        cache = tmpl;
        temp_cache = true;
    } else if (fs::exists(cache / "workspaces")) {
        return fail("--cache-dir " + cache.string() +
                    " already holds a cache; the cold case needs an empty one");
    }
    const std::string uri = file_uri(file);
    // The warm case's edit: a line inserted in the middle of the file.
    const int mid = line / 2;
    const std::string insert = "// edited\n";
    std::string edited = text;
    {
        size_t at = 0;
        for (int i = 0; i < mid && at != std::string::npos; ++i) {
            at = edited.find('\n', at);
            if (at != std::string::npos) ++at;
        }
        edited.insert(at == std::string::npos ? edited.size() : at, insert);
    }
    std::vector<CaseResult> results;
    auto run_all = [&]() -> Status {
        {
            Run r(a, root, cache);
            HEARTH_TRY(r.start());
            r.open(uri, text);
            auto cold = r.complete("cold", uri, line, character);
            if (!cold) return cold.error();
            results.push_back(*cold);
            // An edit in the middle of the file: everything before it stays in memory.
            r.change(uri, 2, mid, insert);
            auto warm = r.complete("warm", uri, line + 1, character);
            if (!warm) return warm.error();
            results.push_back(*warm);
            HEARTH_TRY(r.stop());
        }
        // The editor comes back with the file as it was left (the edit included).
        Run r(a, root, cache);
        HEARTH_TRY(r.start());
        r.open(uri, edited);
        auto restart = r.complete("restart", uri, line + 1, character);
        if (!restart) return restart.error();
        results.push_back(*restart);
        return r.stop();
    };
    Status st = run_all();
    if (temp_cache && !a.keep_cache) fs::remove_all(cache, ec);
    if (!st.ok()) return fail(st.error());

    if (a.json_out) {
        json out = json::array();
        for (const auto& r : results) {
            json j = r.stats;
            j["case"] = r.name;
            j["ms"] = r.ms;
            out.push_back(j);
        }
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    const double cold_ms = results.front().ms;
    std::printf("workspace %s (%d files indexed), %s line %d, backend %s (%s)\n",
                root.string().c_str(), results.front().stats.value("indexed_files", 0),
                a.file.c_str(), line + 1, results.front().stats.value("backend", "").c_str(),
                results.front().stats.value("device", "").c_str());
    std::printf("%-8s %10s %8s %8s %8s %9s %10s %10s %9s %10s %10s\n", "case", "ms", "speedup",
                "prompt", "context", "reused", "restored", "prefilled", "%context", "restore ms",
                "prefill ms");
    for (const auto& r : results) {
        const int prompt = r.stats.value("prompt_tokens", 0);
        const int context = r.stats.value("context_tokens", 0);
        const int prefilled = r.stats.value("prefilled_tokens", 0);
        // The server's prefill time includes the restore; "prefill ms" is the rest.
        const double restore_ms = r.stats.value("ms_restore", 0.0);
        std::printf("%-8s %10.1f %7.1fx %8d %8d %9d %10d %10d %8.1f%% %10.1f %10.1f\n",
                    r.name.c_str(), r.ms, cold_ms / std::max(r.ms, 1e-3), prompt, context,
                    r.stats.value("reused_tokens", 0), r.stats.value("restored_tokens", 0),
                    prefilled, context > 0 ? 100.0 * prefilled / context : 0.0, restore_ms,
                    r.stats.value("ms_prefill", 0.0) - restore_ms);
    }
    return 0;
}

}  // namespace

void register_bench_workspace(CLI::App& app, Outcome& out) {
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(
        "bench-workspace",
        "Time the first completion in a workspace: cold, warm in memory, and after a restart "
        "with the disk KV cache (runs `hearth lsp` as a child process)");
    cmd->add_option("-m,--model", a->model, "GGUF model")->required();
    cmd->add_option("--workspace", a->workspace, "Workspace folder")->capture_default_str();
    cmd->add_option("--file", a->file, "File to complete in (relative to the workspace)")
        ->required();
    cmd->add_option("--line", a->line, "Cursor line, 0-based (default: two thirds down)");
    cmd->add_flag("--end", a->at_end,
                  "Cursor at the end of the file (the file continues: no suffix)");
    cmd->add_option("--backend", a->backend, "auto, cpu or vulkan")->capture_default_str();
    cmd->add_option("--ctx", a->ctx, "Context size in tokens")->capture_default_str();
    cmd->add_option("--context-tokens", a->context_tokens,
                    "Repository context budget (0: half the context size)")
        ->capture_default_str();
    cmd->add_option("--max-tokens", a->max_tokens, "Tokens per completion")->capture_default_str();
    cmd->add_option("--cache-dir", a->cache_dir, "Cache root (default: a temporary directory)");
    cmd->add_flag("--keep-cache", a->keep_cache, "Keep the temporary cache directory");
    cmd->add_flag("--json", a->json_out, "Print JSON");
    cmd->callback([&out, a] { out.exit_code = bench(*a); });
}

}  // namespace hearth::cli
