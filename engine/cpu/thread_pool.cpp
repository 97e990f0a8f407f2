#include "thread_pool.h"

#include <algorithm>

namespace hearth::cpu {

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0)
        n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    n_threads_ = n_threads;
    workers_.reserve(static_cast<size_t>(n_threads_ - 1));
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    workers_.clear();  // joins
}

void ThreadPool::worker_main(int thread) {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
        }
        run_chunks(thread);
        {
            std::lock_guard lock(mutex_);
            if (--busy_ == 0) done_.notify_one();
        }
    }
}

void ThreadPool::run_chunks(int thread) {
    for (;;) {
        const int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
        if (begin >= n_) return;
        (*fn_)(begin, std::min(begin + grain_, n_), thread);
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const Fn& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    std::lock_guard call(call_mutex_);
    if (n_threads_ == 1 || n <= grain) {
        fn(0, n, 0);
        return;
    }
    {
        std::lock_guard lock(mutex_);
        fn_ = &fn;
        n_ = n;
        grain_ = grain;
        next_.store(0, std::memory_order_relaxed);
        busy_ = n_threads_ - 1;
        ++generation_;
    }
    wake_.notify_all();
    run_chunks(0);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    fn_ = nullptr;
}

}  // namespace hearth::cpu
