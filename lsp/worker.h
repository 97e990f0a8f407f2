// EngineWorker: the one thread that calls the Completer.
//
// Completer calls block for a long time (model load, prefill, decode) and the engine owns
// one device, so they run here, one at a time, in the order posted; the server loop only
// posts tasks and receives their results back on the loop. The server keeps at most one
// task posted (it schedules what runs next itself), so this queue stays tiny.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace hearth::lsp {

class EngineWorker {
  public:
    EngineWorker();
    ~EngineWorker();  // stop()
    EngineWorker(const EngineWorker&) = delete;
    EngineWorker& operator=(const EngineWorker&) = delete;

    void post(std::function<void()> task);

    // Waits for the running task to return (its owner must have asked it to cancel),
    // drops tasks not yet started, and joins the thread. Idempotent.
    void stop();

  private:
    void run();

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> tasks_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace hearth::lsp
