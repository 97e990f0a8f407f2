// The hearth language server: translates LSP into calls on a Completer.
//
// One asio loop thread owns all protocol state (lifecycle, documents, settings, the
// schedule of model work); the transport's reader thread parses frames and posts them to
// the loop; one EngineWorker thread owns the Completer and runs one model call at a time.
// The loop never waits on the model.
//
// Lifecycle: requests before `initialize` get ServerNotInitialized (-32002); after
// `shutdown` they get InvalidRequest (-32600); `exit` ends run() with 0 when `shutdown`
// came first and 1 otherwise (end of input counts as `exit`). The model is loaded on the
// worker after `initialized` (and again when a model setting changes), with $/progress.
//
// Scheduling (docs/lsp.md has the user-facing version):
//   - one slot per (document, kind of completion): a new inline or classic completion
//     for a document supersedes the pending one, which is answered at once with an empty
//     result (the client has moved on; an error would be logged as a failure by several
//     clients), and the running one, whose `cancelled` turns true;
//   - automatic inline requests and classic completion requests wait `debounceMs` first,
//     so a burst of keystrokes costs one model call;
//   - $/cancelRequest answers a queued request with RequestCancelled (-32800) at once and
//     makes a running one's `cancelled` return true (it is then answered RequestCancelled);
//   - at most max_pending_completions completions and max_queued_rewrites rewrites wait;
//     the oldest completion beyond the cap is answered empty, a rewrite beyond it fails;
//   - the next job is the oldest ready one; a model (re)load goes first.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "completer.h"
#include "framing.h"
#include "settings.h"
#include "transport.h"

namespace hearth::lsp {

struct LspServerOptions {
    // Initial settings (from the command line); initializationOptions and
    // workspace/didChangeConfiguration override them key by key.
    Settings settings;
    FramingLimits framing;                // Content-Length cap and header limits
    std::string version = "0.1.0";        // serverInfo.version
    size_t max_pending_completions = 64;  // across documents
    size_t max_queued_rewrites = 16;
    int32_t progress_min_tokens = 512;  // shorter prefills report no $/progress
    // How often the editor's process (initialize's processId) is checked; the server exits
    // when it is gone.
    std::chrono::milliseconds parent_check_interval{3000};
    // Index the workspace folder for repository context (off in the fuzzer, whose inputs
    // may name any folder).
    bool index_workspace = true;
};

// Progress of a long call: `done` of `total` units (bytes read, tokens prefilled).
using ProgressFn = std::function<void(int32_t done, int32_t total)>;

// Builds the Completer for the given settings (model path, backend, context size, cache).
// Runs on the worker thread and may take long; an error is shown to the user and the
// server keeps serving (completions are then empty, rewrites fail with the reason).
using CompleterFactory =
    std::function<Expected<std::unique_ptr<Completer>>(const Settings&, const ProgressFn&)>;

class Server {
  public:
    Server(Transport& transport, LspServerOptions options, CompleterFactory factory);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves until `exit` or the end of input; returns the process exit code (0 or 1).
    // Call once.
    int run();

  private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

// `hearth lsp`: serves LSP on stdin/stdout until exit and returns the exit code. Ignores
// SIGPIPE (a closed editor pipe must become a write error, not a dead process). Logs go
// to stderr through spdlog; stdout carries only protocol messages.
int run_lsp_server(const LspServerOptions& options, CompleterFactory factory);

}  // namespace hearth::lsp
