#include "fake_completer.h"

#include <algorithm>
#include <thread>

namespace hearth::lsp {

CompletionRequest FakeCompleterState::last_completion() const {
    std::lock_guard lock(mu);
    return last_completion_;
}

RewriteRequest FakeCompleterState::last_rewrite() const {
    std::lock_guard lock(mu);
    return last_rewrite_;
}

FakeCompleter::FakeCompleter(std::shared_ptr<FakeCompleterState> state)
    : state_(std::move(state)) {}

namespace {

struct RunningGuard {
    explicit RunningGuard(FakeCompleterState& s) : s_(s) {
        int now = ++s_.running;
        int seen = s_.max_running.load();
        while (now > seen && !s_.max_running.compare_exchange_weak(seen, now)) {
        }
    }
    ~RunningGuard() { --s_.running; }
    FakeCompleterState& s_;
};

}  // namespace

bool FakeCompleter::work(const std::function<bool()>& cancelled,
                         const std::function<void(int32_t, int32_t)>& progress,
                         int32_t prompt_tokens) {
    using namespace std::chrono;
    const auto total = state_->delay;
    const int steps = state_->progress_steps;
    const auto start = steady_clock::now();
    int reported = 0;
    while (true) {
        if (cancelled && cancelled()) {
            ++state_->cancelled_calls;
            return false;
        }
        auto elapsed = duration_cast<milliseconds>(steady_clock::now() - start);
        if (steps > 0 && progress) {
            int due = total.count() > 0 ? static_cast<int>(std::min<int64_t>(
                                              steps, elapsed.count() * steps / total.count()))
                                        : steps;
            for (; reported < due; ++reported) {
                progress((reported + 1) * prompt_tokens / steps, prompt_tokens);
            }
        }
        if (elapsed >= total) return true;
        std::this_thread::sleep_for(std::min<milliseconds>(milliseconds(1), total - elapsed));
    }
}

Expected<CompletionResult> FakeCompleter::complete(const CompletionRequest& req) {
    RunningGuard guard(*state_);
    ++state_->complete_calls;
    {
        std::lock_guard lock(state_->mu);
        state_->last_completion_ = req;
        state_->last_completion_.cancelled = nullptr;
        state_->last_completion_.progress = nullptr;
    }
    auto prompt_tokens = static_cast<int32_t>((req.prefix.size() + req.suffix.size()) / 4 + 1);
    if (!work(req.cancelled, req.progress, prompt_tokens)) return make_error("cancelled");
    if (!state_->fail_with.empty()) return make_error(state_->fail_with);
    CompletionResult result;
    const std::string text = state_->complete_fn ? state_->complete_fn(req) : state_->completion;
    result.stop_reason = "eos";
    // Generated one character at a time, as an engine does token by token: the request's
    // stop rules see every step and may end it early.
    for (size_t end = 0; end < text.size();) {
        ++end;
        while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
        if (state_->char_delay.count() > 0) std::this_thread::sleep_for(state_->char_delay);
        result.text.assign(text, 0, end);
        std::string reason;
        if (req.stop_on_text && req.stop_on_text(result.text, reason)) {
            result.stop_reason = reason;
            break;
        }
    }
    result.stats.backend = backend_name();
    result.stats.device = device_name();
    result.stats.prompt_tokens = prompt_tokens;
    result.stats.reused_tokens = prompt_tokens / 2;
    result.stats.prefilled_tokens = prompt_tokens - prompt_tokens / 2;
    result.stats.generated_tokens = static_cast<int32_t>(result.text.size() / 4 + 1);
    result.stats.ms_total = static_cast<double>(state_->delay.count());
    result.stats.tokens_per_second = 1000.0;
    return result;
}

Expected<CompletionResult> FakeCompleter::rewrite(const RewriteRequest& req) {
    RunningGuard guard(*state_);
    ++state_->rewrite_calls;
    {
        std::lock_guard lock(state_->mu);
        state_->last_rewrite_ = req;
        state_->last_rewrite_.cancelled = nullptr;
        state_->last_rewrite_.progress = nullptr;
    }
    auto prompt_tokens = static_cast<int32_t>(req.code.size() / 4 + 1);
    if (!work(req.cancelled, req.progress, prompt_tokens)) return make_error("cancelled");
    if (!state_->fail_with.empty()) return make_error(state_->fail_with);
    CompletionResult result;
    result.text = state_->rewrite_fn ? state_->rewrite_fn(req) : state_->rewrite;
    result.stop_reason = "eos";
    result.stats.backend = backend_name();
    result.stats.device = device_name();
    result.stats.prompt_tokens = prompt_tokens;
    result.stats.generated_tokens = static_cast<int32_t>(result.text.size() / 4 + 1);
    return result;
}

bool FakeCompleter::background_work() {
    RunningGuard running(*state_);
    return ++state_->background_calls <= state_->background_steps;
}

}  // namespace hearth::lsp
