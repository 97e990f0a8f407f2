#include "session.h"

#include <algorithm>
#include <string>

namespace hearth {

Session::Session(std::unique_ptr<BackendSession> backend) : backend_(std::move(backend)) {}

std::span<const float> Session::logits() const {
    if (!logits_valid_) return {};
    return logits_;
}

void Session::clear() {
    tokens_.clear();
    logits_valid_ = false;
}

Status Session::prefill(std::span<const int32_t> tokens, const SyncOptions& opts,
                        std::vector<float>* all_logits) {
    const size_t chunk = static_cast<size_t>(std::max(opts.chunk, 1));
    const size_t start = tokens_.size();
    const auto total = static_cast<int32_t>(tokens.size() - start);
    while (tokens_.size() < tokens.size()) {
        if (opts.cancel && opts.cancel()) return make_error("cancelled");
        const size_t pos = tokens_.size();
        const auto part = tokens.subspan(pos, std::min(chunk, tokens.size() - pos));
        logits_valid_ = false;
        std::vector<float>& out = all_logits ? scratch_ : logits_;
        HEARTH_TRY(backend_->eval(part, static_cast<int32_t>(pos), all_logits != nullptr, out));
        tokens_.insert(tokens_.end(), part.begin(), part.end());
        if (all_logits) {
            all_logits->insert(all_logits->end(), scratch_.begin(), scratch_.end());
            const size_t n_vocab = scratch_.size() / part.size();
            logits_.assign(scratch_.end() - static_cast<std::ptrdiff_t>(n_vocab), scratch_.end());
        }
        logits_valid_ = true;
        if (opts.progress) opts.progress(static_cast<int32_t>(tokens_.size() - start), total);
    }
    return {};
}

Status Session::check_fits(size_t n_tokens) const {
    if (n_tokens > static_cast<size_t>(n_ctx())) {
        return make_error(std::to_string(n_tokens) + " tokens exceed the session's context of " +
                          std::to_string(n_ctx()));
    }
    return {};
}

Expected<SyncStats> Session::sync(std::span<const int32_t> tokens, const SyncOptions& opts) {
    HEARTH_TRY(check_fits(tokens.size()));
    if (tokens.empty()) {
        clear();
        return SyncStats{};
    }
    const auto mismatch =
        std::mismatch(tokens_.begin(), tokens_.end(), tokens.begin(), tokens.end());
    size_t keep = static_cast<size_t>(mismatch.first - tokens_.begin());
    keep = std::min(keep, tokens.size() - 1);  // the last token is always re-evaluated
    if (keep < tokens_.size()) {
        tokens_.resize(keep);
        logits_valid_ = false;
    }
    SyncStats stats;
    stats.reused = static_cast<int32_t>(keep);
    stats.evaluated = static_cast<int32_t>(tokens.size() - keep);
    HEARTH_TRY(prefill(tokens, opts, nullptr));
    return stats;
}

Expected<std::vector<float>> Session::eval_all_logits(std::span<const int32_t> tokens,
                                                      const SyncOptions& opts) {
    HEARTH_TRY(check_fits(tokens.size()));
    clear();
    std::vector<float> all;
    HEARTH_TRY(prefill(tokens, opts, &all));
    return all;
}

Status Session::decode(int32_t token) {
    HEARTH_TRY(check_fits(tokens_.size() + 1));
    logits_valid_ = false;
    const int32_t one[1] = {token};
    HEARTH_TRY(backend_->eval(one, static_cast<int32_t>(tokens_.size()), false, logits_));
    tokens_.push_back(token);
    logits_valid_ = true;
    return {};
}

Expected<KVSnapshot> Session::snapshot(int32_t begin, int32_t end) {
    if (begin < 0 || begin > end || static_cast<size_t>(end) > tokens_.size()) {
        return make_error("snapshot of positions [" + std::to_string(begin) + ", " +
                          std::to_string(end) + "), but the session holds " +
                          std::to_string(tokens_.size()));
    }
    return backend_->snapshot(begin, end);
}

Status Session::restore(const KVSnapshot& snap, std::span<const int32_t> tokens) {
    if (snap.pos < 0 || snap.n_tokens < 0 ||
        static_cast<size_t>(snap.pos) + static_cast<size_t>(snap.n_tokens) != tokens.size()) {
        return make_error("snapshot holds positions [" + std::to_string(snap.pos) + ", +" +
                          std::to_string(snap.n_tokens) + ") but " +
                          std::to_string(tokens.size()) + " tokens were given");
    }
    HEARTH_TRY(check_fits(tokens.size()));
    const auto pos = static_cast<size_t>(snap.pos);
    if (pos > tokens_.size() || !std::equal(tokens.begin(), tokens.begin() + snap.pos,
                                            tokens_.begin())) {
        return make_error("the session does not hold the " + std::to_string(pos) +
                          " tokens before the snapshot");
    }
    // A failed restore may have overwritten part of the cache: trust none of it.
    tokens_.resize(pos);
    logits_valid_ = false;
    if (Status st = backend_->restore(snap); !st.ok()) {
        tokens_.clear();
        return st;
    }
    tokens_.assign(tokens.begin(), tokens.end());
    return {};
}

}  // namespace hearth
