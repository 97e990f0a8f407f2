#include "generate.h"

#include <algorithm>
#include <chrono>

#include "session.h"
#include "tokenizer.h"

namespace hearth {

Expected<GenerateResult> generate(Session& session, const Tokenizer& tok,
                                  const GenerateOptions& opts) {
    GenerateResult r;
    Sampler sampler(opts.sampler);
    Tokenizer::IncrementalDecoder dec(tok);
    const auto t0 = std::chrono::steady_clock::now();
    auto finish = [&](std::string reason) {
        std::string tail = dec.flush();
        r.text += tail;
        if (!tail.empty() && opts.on_piece) opts.on_piece(tail);
        r.stop_reason = std::move(reason);
        r.ms_decode = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - t0).count();
    };

    for (int32_t i = 0;; ++i) {
        if (i >= opts.max_tokens) {
            finish("max_tokens");
            return r;
        }
        const int32_t id = sampler.sample(session.logits());
        if (std::find(opts.stop_tokens.begin(), opts.stop_tokens.end(), id) !=
            opts.stop_tokens.end()) {
            finish("eos");
            return r;
        }
        r.tokens.push_back(id);
        std::string piece = dec.push(id);
        if (!piece.empty()) {
            r.text += piece;
            if (opts.on_piece) opts.on_piece(piece);
        }
        std::string reason;
        if (opts.stop_on_text && opts.stop_on_text(r.text, reason)) {
            finish(reason);
            return r;
        }
        if (i + 1 >= opts.max_tokens) {
            finish("max_tokens");  // no need to evaluate the last token
            return r;
        }
        if (opts.cancelled && opts.cancelled()) return make_error("cancelled");
        HEARTH_TRY(session.decode(id));
    }
}

}  // namespace hearth
