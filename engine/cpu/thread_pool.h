// A small fixed thread pool for the CPU backend's data-parallel loops.
//
// parallel_for hands out [0, n) in chunks of `grain` items from a shared counter, so
// uneven items (causal attention rows grow with position) still balance. Which thread runs
// which chunk does not matter for the result: every item writes its own outputs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hearth::cpu {

class ThreadPool {
public:
    // n_threads counts the calling thread; 0 = std::thread::hardware_concurrency().
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Runs fn(begin, end, thread) over chunks covering [0, n); `thread` in [0, size()) lets
    // the callee pick per-thread scratch memory. Returns when every chunk is done. Calls
    // from several threads take turns.
    using Fn = std::function<void(int64_t begin, int64_t end, int thread)>;
    void parallel_for(int64_t n, int64_t grain, const Fn& fn);

private:
    void worker_main(int thread);
    void run_chunks(int thread);

    int n_threads_ = 1;
    std::mutex call_mutex_;  // one parallel_for at a time

    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    const Fn* fn_ = nullptr;
    int64_t n_ = 0;
    int64_t grain_ = 1;
    std::atomic<int64_t> next_ = 0;  // next unclaimed item
    uint64_t generation_ = 0;        // bumped per job so workers see each job exactly once
    int busy_ = 0;                   // workers still inside the current job
    bool stop_ = false;

    std::vector<std::jthread> workers_;  // last: joined before the members above go away
};

}  // namespace hearth::cpu
