// FakeCompleter: a deterministic Completer for tests, the fuzzer and the latency bench.
//
// It returns scripted text after a configurable delay, honours `cancelled` (polled every
// millisecond of its delay, like a real engine between tokens) and the request's
// `stop_on_text` (called after each character of the text, as an engine calls it after
// each token), reports prefill progress when asked, and records what it was called with.
// Observers keep a shared_ptr to its FakeCompleterState, since the server owns the
// completer itself.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "completer.h"

namespace hearth::lsp {

struct FakeCompleterState {
    // Script. complete_fn / rewrite_fn win over the fixed texts when set.
    std::string completion = "completion()";
    std::string rewrite = "rewritten()";
    std::function<std::string(const CompletionRequest&)> complete_fn;
    std::function<std::string(const RewriteRequest&)> rewrite_fn;
    std::chrono::milliseconds delay{0};       // simulated work per call
    std::chrono::milliseconds char_delay{0};  // then per character of the completion
    int32_t progress_steps = 0;  // >0: report prefill progress in this many steps
    std::string fail_with;       // non-empty: every call fails with this message
    int32_t background_steps = 0;  // background_work() returns true this many times

    // Observations.
    std::atomic<int> complete_calls{0};
    std::atomic<int> rewrite_calls{0};
    std::atomic<int> cancelled_calls{0};  // calls that saw cancelled() and stopped
    std::atomic<int> running{0};          // calls in progress right now
    std::atomic<int> max_running{0};      // highest concurrency seen (must stay 1)
    std::atomic<int> background_calls{0};
    std::atomic<int> clear_cache_calls{0};

    CompletionRequest last_completion() const;
    RewriteRequest last_rewrite() const;

    // Set the script from the test thread while no call runs.
    mutable std::mutex mu;
    CompletionRequest last_completion_;
    RewriteRequest last_rewrite_;
};

class FakeCompleter final : public Completer {
  public:
    explicit FakeCompleter(
        std::shared_ptr<FakeCompleterState> state = std::make_shared<FakeCompleterState>());

    Expected<CompletionResult> complete(const CompletionRequest& req) override;
    Expected<CompletionResult> rewrite(const RewriteRequest& req) override;
    std::string backend_name() const override { return "fake"; }
    std::string device_name() const override { return "fake device"; }
    bool background_work() override;
    Status clear_cache() override {
        ++state_->clear_cache_calls;
        return {};
    }

    const std::shared_ptr<FakeCompleterState>& state() const { return state_; }

  private:
    // Sleeps for the configured delay; false when cancelled on the way.
    bool work(const std::function<bool()>& cancelled,
              const std::function<void(int32_t, int32_t)>& progress, int32_t prompt_tokens);

    std::shared_ptr<FakeCompleterState> state_;
};

}  // namespace hearth::lsp
