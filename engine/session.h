// Session: one KV timeline on a backend — the tokens evaluated so far, their KV cache and
// the logits of the last position.
//
// sync(tokens) makes the session hold exactly `tokens`: it keeps the longest prefix that
// is already evaluated and prefills the rest in chunks, between which it reports progress
// and honours cancellation. At least the last token is always re-evaluated, so logits()
// are fresh after every successful sync, even when nothing else changed (the backend
// overwrites that KV row with the same values).
//
// Whatever happens (success, cancellation, a backend error), tokens() always describes
// exactly the KV rows that are valid, so the next sync continues from there.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backend.h"
#include "result.h"

namespace hearth {

struct SyncOptions {
    int32_t chunk = 512;  // tokens per backend eval call
    // Called after each chunk with (prefilled so far, to prefill in total) of this sync.
    std::function<void(int32_t done, int32_t total)> progress;
    // Polled before each chunk; true stops the sync with the error "cancelled".
    std::function<bool()> cancel;
};

struct SyncStats {
    int32_t reused = 0;     // positions kept from before
    int32_t evaluated = 0;  // positions evaluated by this call
};

class Session {
public:
    explicit Session(std::unique_ptr<BackendSession> backend);

    int32_t n_ctx() const { return backend_->n_ctx(); }
    std::span<const int32_t> tokens() const { return tokens_; }
    int32_t n_tokens() const { return static_cast<int32_t>(tokens_.size()); }

    // Make the session hold `tokens` (see above). An empty `tokens` clears the session.
    // Errors: more tokens than n_ctx (session unchanged), "cancelled", a backend error.
    Expected<SyncStats> sync(std::span<const int32_t> tokens, const SyncOptions& opts = {});

    // Evaluate `tokens` from position 0 (dropping what the session held) and return the
    // logits of every position, position-major: [tokens.size()][n_vocab]. Afterwards the
    // session holds `tokens`. For `hearth logits` and reference comparisons.
    Expected<std::vector<float>> eval_all_logits(std::span<const int32_t> tokens,
                                                 const SyncOptions& opts = {});

    // Append one token. Error when the context is full.
    Status decode(int32_t token);

    // Logits after the last token; empty when they are not known (an empty session, or
    // after restore() or a sync cancelled before its first chunk).
    std::span<const float> logits() const;

    // Copy of the KV rows of positions [begin, end) (end <= n_tokens()).
    Expected<KVSnapshot> snapshot(int32_t begin, int32_t end);
    Expected<KVSnapshot> snapshot(int32_t n) { return snapshot(0, n); }
    // Make the timeline `tokens`, whose rows [0, snap.pos) the session already holds (its
    // tokens agree there) and whose rows [snap.pos, tokens.size()) come from `snap`
    // (tokens.size() == snap.pos + snap.n_tokens). Positions after them are dropped. Logits
    // are not part of a snapshot: call sync(tokens) afterwards, which re-evaluates only the
    // last token. After an error the session holds the positions before snap.pos at most.
    Status restore(const KVSnapshot& snap, std::span<const int32_t> tokens);

    // Forget every token (the KV memory stays allocated).
    void clear();

    BackendSession& backend() { return *backend_; }

private:
    // Evaluates tokens[tokens_.size()..] in chunks, appending to tokens_ as each chunk lands;
    // with all_logits, appends every position's logits there.
    Status prefill(std::span<const int32_t> tokens, const SyncOptions& opts,
                   std::vector<float>* all_logits);
    Status check_fits(size_t n_tokens) const;

    std::unique_ptr<BackendSession> backend_;
    std::vector<int32_t> tokens_;
    std::vector<float> logits_;   // [n_vocab] of the last position
    std::vector<float> scratch_;  // one chunk's logits in eval_all_logits
    bool logits_valid_ = false;
};

}  // namespace hearth
