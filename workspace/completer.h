// Completer: the typed C++ API the protocol layer calls to get model text.
//
// lsp/ translates LSP requests into CompletionRequest / RewriteRequest and calls a
// Completer; it knows nothing about tokens, sessions or devices. The real
// implementation (EngineCompleter, workspace/engine_completer.h) owns the model, the
// tokenizer, the backend and the sessions, builds FIM / chat prompts and applies the
// stop rules. Tests use a fake Completer.
//
// Threading: calls may block for a long time (prefill, decode); callers run them on a
// worker thread and never on the protocol loop. `cancelled` is polled between prefill
// chunks and between decoded tokens; a cancelled call returns an Error whose message is
// exactly "cancelled".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace hearth {

struct CompletionStats {
    std::string backend;          // "cpu", "vulkan"
    std::string device;           // human-readable device name
    int32_t prompt_tokens = 0;    // tokens in the prompt
    int32_t context_tokens = 0;   // of which the repository context (the stable prefix)
    int32_t reused_tokens = 0;    // kept in memory from an earlier request
    int32_t restored_tokens = 0;  // read from the on-disk KV cache
    int32_t prefilled_tokens = 0; // computed now
    int32_t generated_tokens = 0;
    double ms_total = 0;
    double ms_prefill = 0;
    double ms_restore = 0;  // of ms_prefill: reading and restoring disk-cache rows
    double ms_decode = 0;
    double tokens_per_second = 0;  // decode speed: generated_tokens / decode seconds
};

// The on-disk KV cache as status reports show it.
struct CacheSummary {
    bool enabled = false;
    std::string dir;       // the workspace's cache directory
    std::string error;     // why it is disabled, when it failed to open
    uint64_t entries = 0;  // chunk files
    uint64_t bytes = 0;
    uint64_t hits = 0, misses = 0;  // chunks read / lookups that found nothing new
    uint64_t writes = 0, write_failures = 0;
};

// A context file placed before the current file (repository-level FIM prompts).
struct ContextFile {
    std::string path;  // workspace-relative
    std::string text;
};

struct CompletionRequest {
    std::string path;    // workspace-relative path of the current file (may be empty)
    std::string prefix;  // text before the cursor
    std::string suffix;  // text after the cursor
    std::vector<ContextFile> context;  // stable context, in order (may be empty)
    std::string repo_name;             // for repo-level templates (may be empty)
    // The workspace folder the file belongs to: its disk cache is used ("" = the default
    // workspace the completer was made for).
    std::string workspace;
    // Whether the prompt up to the cursor may be checkpointed to the disk cache. False for
    // files that must not be stored (secrets, ignored files, files outside the workspace):
    // then only the repository context is.
    bool cache_prompt = true;
    int32_t max_tokens = 128;
    // At most this many tokens of the text after the cursor go into the prompt (0: the
    // completer's own limit, which also caps this). A keystroke changes the prompt at the
    // cursor, so everything after it is evaluated again on every keystroke: on a CPU this
    // bounds the cost of each one.
    int32_t max_suffix_tokens = 0;
    int32_t max_lines = 0;      // 0: no line cap
    bool single_line = false;   // stop at the first newline
    float temperature = 0.0f;   // 0: greedy
    int32_t top_k = 0;
    float top_p = 1.0f;
    float min_p = 0.0f;
    uint64_t seed = 0;
    std::function<bool()> cancelled;                     // may be empty
    std::function<void(int32_t done, int32_t total)> progress;  // prefill progress; may be empty
    // The caller's own stop rules, applied while generating (may be empty): called after
    // each token with the completion so far as `CompletionResult::text` will hold it (typed
    // indentation already taken off; not called while that is still unknown); returning true
    // stops generation there, and `reason` becomes the result's stop_reason. lsp/ passes its
    // post-processing rules, so that no token is generated past the point where they cut.
    std::function<bool(std::string_view text, std::string& reason)> stop_on_text;
};

struct RewriteRequest {
    std::string path;
    std::string language;     // LSP languageId, e.g. "python"
    std::string instruction;  // "Add a docstring", "Simplify this code", ...
    std::string code;         // the selected text to rewrite
    std::string prefix;       // text before the selection (context)
    std::string suffix;       // text after the selection (context)
    int32_t max_tokens = 256;
    float temperature = 0.0f;
    std::function<bool()> cancelled;
    std::function<void(int32_t done, int32_t total)> progress;
};

struct CompletionResult {
    std::string text;         // the text to insert at the cursor (or the rewritten code)
    // "eos", "max_tokens", "max_lines", "end_of_line", or what the request's stop_on_text
    // said ("block_end", "repeat_next_line", "latency_budget"...).
    std::string stop_reason;
    CompletionStats stats;
};

class Completer {
public:
    virtual ~Completer() = default;
    virtual Expected<CompletionResult> complete(const CompletionRequest& req) = 0;
    virtual Expected<CompletionResult> rewrite(const RewriteRequest& req) = 0;
    // Backend and device names, for serverInfo and status reports.
    virtual std::string backend_name() const = 0;
    virtual std::string device_name() const = 0;
    // Tokens a prompt and its completion may hold together (0: unknown).
    virtual int32_t context_size() const { return 0; }
    // Deferred work (writing KV checkpoints to the disk cache): does one short step and
    // returns true while more remains. Callers run it on the same thread as complete(),
    // when no request waits, so a request is delayed by one step at most.
    virtual bool background_work() { return false; }
    // Forgets every cached KV row, in memory and on disk (hearth.clearCache).
    virtual Status clear_cache() { return {}; }
    // The disk cache's state for status reports.
    virtual CacheSummary cache_summary() const { return {}; }
};

}  // namespace hearth
