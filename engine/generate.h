// Token generation on a Session: sample, check stop conditions, decode, repeat.
//
// The session must already hold the prompt (Session::sync) so its logits are those of
// the last prompt position. Text is produced through the tokenizer's incremental
// decoder, so a multi-byte character split across tokens is never cut.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"
#include "sampler.h"

namespace hearth {

class Session;
class Tokenizer;

struct GenerateOptions {
    int32_t max_tokens = 128;
    SamplerParams sampler;
    std::vector<int32_t> stop_tokens;   // sampled → stop (not part of the text)
    std::function<bool()> cancelled;    // polled before each decode step
    // Called with the text generated so far after each token; returning true stops
    // generation there (line caps, block ends...). `stop_reason` names why.
    std::function<bool(std::string_view text, std::string& stop_reason)> stop_on_text;
    // Called with each new piece of text as it becomes printable (streaming).
    std::function<void(std::string_view piece)> on_piece;
};

struct GenerateResult {
    std::vector<int32_t> tokens;  // generated tokens (stop token excluded)
    std::string text;
    std::string stop_reason;      // "eos", "max_tokens", or what stop_on_text said
    double ms_decode = 0;
};

// Errors: a backend failure, or "cancelled" when `cancelled` returned true.
Expected<GenerateResult> generate(Session& session, const Tokenizer& tok,
                                  const GenerateOptions& opts);

}  // namespace hearth
