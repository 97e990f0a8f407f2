#include "in_process_server.h"

namespace hearth::lsp {

InProcessServer::InProcessServer(LspServerOptions options, CompleterFactory factory)
    : transport_(options.framing),
      server_(std::make_unique<Server>(transport_, std::move(options), std::move(factory))),
      client_(transport_) {
    std::packaged_task<int()> task([this] { return server_->run(); });
    exit_ = task.get_future();
    thread_ = std::thread(std::move(task));
}

InProcessServer::~InProcessServer() {
    transport_.client_close();
    if (thread_.joinable()) thread_.join();
}

int InProcessServer::wait_exit(std::chrono::milliseconds timeout) {
    if (exit_.valid()) {
        if (exit_.wait_for(timeout) != std::future_status::ready) return -1;
        exit_code_ = exit_.get();
    }
    return exit_code_;
}

CompleterFactory InProcessServer::fake_factory(std::shared_ptr<FakeCompleterState> state,
                                               std::shared_ptr<std::atomic<int>> loads) {
    return [state, loads](const Settings&,
                          const ProgressFn& progress) -> Expected<std::unique_ptr<Completer>> {
        if (loads) ++*loads;
        if (progress) {
            progress(1, 2);
            progress(2, 2);
        }
        return std::unique_ptr<Completer>(std::make_unique<FakeCompleter>(state));
    };
}

}  // namespace hearth::lsp
