// Latency replay: types part of a real source file into the real server, one keystroke
// at a time, and measures the time from each inline completion request to its response.
//
// The session: the document is opened with `lines` whole lines at `start_fraction` of the
// file replaced by one empty line, then those lines are typed back into it character by
// character (line breaks and indentation included). Each keystroke is a didChange followed by an
// automatic textDocument/inlineCompletion at the new cursor, which is always at the end of a line,
// so the mid-line rule never skips a request. With `interval` 0 the client waits for each
// response before the next keystroke (per-request latency, the engine's prefix reuse at
// work); with an interval it types at that pace regardless, as a person does, and only the
// requests that were not superseded count.
//
// Used by bench/lsp_latency_bench.cpp with a FakeCompleter or the real engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "result.h"
#include "server.h"

namespace hearth::lsp {

struct ReplayOptions {
    std::string text;  // the source file
    std::string uri = "file:///replay/source.cpp";
    std::string language_id = "cpp";
    double start_fraction = 0.4;   // where the removed lines start, as a fraction of the lines
    int32_t lines = 6;             // lines removed and typed back
    int32_t max_keystrokes = 400;  // stop typing after this many characters
    std::chrono::milliseconds interval{0};  // 0: wait for each response
    Settings settings;                      // debounceMs, maxTokens... (debounce 0 by default here)
};

struct ReplayResult {
    std::vector<double> latencies_ms;  // answered (not superseded) requests, in order
    int32_t requests = 0;
    int32_t with_items = 0;
    int32_t superseded = 0;  // answered with no items while a newer request was pending
    double p50_ms = 0;
    double p95_ms = 0;
    double max_ms = 0;
    double total_ms = 0;
};

// Runs one session against a fresh server made with `factory`. Errors: an empty text, a
// model that fails to load, a server that stops answering.
Expected<ReplayResult> replay_typing_session(const ReplayOptions& options,
                                             CompleterFactory factory);

// Nearest-rank percentile (p in [0, 100]) of unsorted values; 0 for none.
double percentile(std::vector<double> values, double p);

}  // namespace hearth::lsp
