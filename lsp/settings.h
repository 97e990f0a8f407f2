// Settings: everything a user can configure, in one struct, with validation.
//
// Sources, later ones winning field by field: the defaults below, the command line of
// `hearth lsp` (LspServerOptions::settings), `initializationOptions`, and every
// `workspace/didChangeConfiguration`. Both accept either the settings object itself or
// an object with a "hearth" member holding it (VS Code sends its configuration section
// that way). Unknown keys are ignored; a value of the wrong type or out of range is
// reported as a warning and the previous value is kept, so a typo never resets the model.
// docs/lsp.md lists every key with its default.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hearth::lsp {

struct Settings {
    // Model and engine. Changing one of these reloads the model.
    std::string model_path;        // "model": GGUF file
    std::string backend = "auto";  // "backend": "auto" | "cpu" | "vulkan"
    int32_t context_size = 4096;   // "contextSize": tokens, 256..1048576
    std::string cache_dir;         // "cacheDir": on-disk KV cache ("" = default location)
    int64_t cache_max_mb = 2048;   // "cacheMaxMb": per workspace, 0..1048576 (0: no disk cache)
    int64_t cache_total_max_mb = 8192;  // "cacheTotalMaxMb": all workspaces, 0..16777216

    // Repository context.
    int32_t context_tokens = 0;  // "contextTokens": budget, 0..1048576 (0: half of contextSize)
    std::vector<std::string> context_exclude;  // "contextExclude": gitignore-syntax patterns
    // "contextSecrets": gitignore-syntax patterns added to the built-in secrets (.env, keys,
    // credentials): never read, and an ignore file's "!" cannot bring them back.
    std::vector<std::string> context_secrets;
    // "fimTemplate": "" (from the vocabulary) | "qwen" | "deepseek" | "starcoder2" |
    // "codellama". Changing it reloads the model.
    std::string fim_template;

    // Set by the server from `initialize` (the first workspace folder), not a user key: the
    // disk cache is kept per workspace.
    std::string workspace_root;

    // Generation.
    int32_t max_tokens = 128;          // "maxTokens": 1..4096, per inline completion
    // "maxTokensAutomatic": 1..4096, per inline completion the editor asked for by itself
    // while the user types (the smaller of this and maxTokens applies). Such a request is
    // dropped by the editor when it is late (VS Code waits ~750 ms), and on a CPU every
    // token costs milliseconds; 48 tokens hold 99% of a sample of Python's lines in the
    // bundled model's vocabulary (docs/lsp.md). Mid-line requests get at most 32 (server.cpp).
    int32_t max_tokens_automatic = 48;
    // "automaticLatencyMs": 0..60000 (0 = off). Once this long has passed since an automatic
    // inline request arrived (debounce and queue included), it stops generating at its next
    // complete line and answers with the complete lines so far, rather than be dropped
    // late. Explicit requests are never cut this way.
    int32_t automatic_latency_ms = 500;
    // "maxSuffixTokensAutomatic": 0..1048576 (0 = the engine's own limit, 512). Tokens of
    // the text after the cursor in the prompt of an automatic request. Every keystroke
    // evaluates that text again: in the bench's typing session on two CPU cores, 128
    // instead of the engine's limit cut the mean prefill of a keystroke from 246 tokens to
    // 65 and its time by 260-350 ms (docs/benchmarks.md).
    int32_t max_suffix_tokens_automatic = 128;
    int32_t max_lines = 16;            // "maxLines": 0..1000 (0 = no line cap)
    double temperature = 0.0;          // "temperature": 0..2 (0 = greedy)
    int32_t debounce_ms = 75;          // "debounceMs": 0..5000, automatic requests only
    int32_t rewrite_max_tokens = 512;  // "rewriteMaxTokens": 1..8192, code actions

    // Code actions.
    std::string rewrite_instruction = "Improve this code";  // "rewriteInstruction"

    // Logging: "trace" | "debug" | "info" | "warn" | "error" | "off".
    std::string log_level = "info";  // "logLevel"

    // Applies the keys present in `settings` (or in settings["hearth"]). Returns one
    // warning per rejected value; those fields keep their previous values.
    std::vector<std::string> apply(const nlohmann::json& settings);

    // True when a field that needs a model reload differs.
    bool engine_differs(const Settings& other) const;

    nlohmann::json to_json() const;
};

}  // namespace hearth::lsp
