#include "worker.h"

namespace hearth::lsp {

EngineWorker::EngineWorker() : thread_([this] { run(); }) {}

EngineWorker::~EngineWorker() {
    stop();
}

void EngineWorker::post(std::function<void()> task) {
    {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
}

void EngineWorker::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        tasks_.clear();
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

void EngineWorker::run() {
    while (true) {
        std::function<void()> task;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
            if (stopping_) return;
            task = std::move(tasks_.front());
            tasks_.pop_front();
        }
        task();
    }
}

}  // namespace hearth::lsp
