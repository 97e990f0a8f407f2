// Latency replay: types part of a real source file into the real server, one keystroke
// at a time, and measures the time from each keystroke (its didChange) to the response of
// the inline completion request that follows it: the wait an editor sees, the server's
// debounce included.
//
// The session: the document is opened with `lines` whole lines at `start_fraction` of the
// file replaced by one empty line, then those lines are typed back into it character by
// character (line breaks and indentation included). Each keystroke is a didChange followed by an
// automatic textDocument/inlineCompletion at the new cursor. Without `autoclose` the cursor
// is always at the end of its line. With it the client behaves like an editor that closes
// brackets: typing ( [ { also inserts the closer after the cursor, and typing a closer that
// is already there types over it, so requests made inside brackets have text after the
// cursor (mid-line, single-line completions) as they do in an editor. With `interval` 0 the
// client waits for each response before the next keystroke (per-keystroke latency, as
// after every pause in typing; the engine's prefix reuse at work); with an interval it
// types at that pace regardless, as a person does, and only the requests that were not
// superseded count.
//
// Used by bench/lsp_latency_bench.cpp with a FakeCompleter or the real engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
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
    bool autoclose = false;                 // close brackets as editors do (see above)
    double slow_ms = 750;                   // answers slower than this are counted apart
    Settings settings;                      // debounceMs, maxTokens... (debounce 0 by default here)
};

struct ReplayResult {
    std::vector<double> latencies_ms;  // answered (not superseded) requests, in order
    std::vector<bool> mid_line;        // per answered request: text followed the cursor
    int32_t requests = 0;
    int32_t with_items = 0;
    int32_t superseded = 0;  // answered with no items while a newer request was pending
    int32_t slow = 0;        // answered requests slower than `slow_ms`
    double p50_ms = 0;
    double p95_ms = 0;
    double max_ms = 0;
    double total_ms = 0;
    // From the server's hearth/status after each model call (answered or superseded), for
    // telling where the time went: means per call, and how many calls stopped for each
    // stop_reason.
    int32_t completions = 0;
    double mean_prefilled_tokens = 0;
    double mean_generated_tokens = 0;
    double mean_ms_prefill = 0;
    double mean_ms_decode = 0;
    std::map<std::string, int32_t> stop_reasons;
};

// Runs one session against a fresh server made with `factory`. Errors: an empty text, a
// model that fails to load, a server that stops answering.
Expected<ReplayResult> replay_typing_session(const ReplayOptions& options,
                                             CompleterFactory factory);

// Nearest-rank percentile (p in [0, 100]) of unsorted values; 0 for none.
double percentile(std::vector<double> values, double p);

}  // namespace hearth::lsp
