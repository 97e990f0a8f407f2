// InProcessServer: the real Server on its own thread, over a MemoryTransport.
//
// Used by the unit tests, the latency benchmark and the fuzzer:
//
//   auto fake = std::make_shared<FakeCompleterState>();
//   InProcessServer s({}, InProcessServer::fake_factory(fake));
//   s.client().initialize();
//   json r = s.client().request("textDocument/inlineCompletion", params);
//
// The destructor closes the server's input (which ends run() like a vanished editor) and
// joins the thread.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "fake_completer.h"
#include "memory_transport.h"
#include "server.h"

namespace hearth::lsp {

class InProcessServer {
  public:
    explicit InProcessServer(LspServerOptions options = {}, CompleterFactory factory = {});
    ~InProcessServer();
    InProcessServer(const InProcessServer&) = delete;
    InProcessServer& operator=(const InProcessServer&) = delete;

    MemoryClient& client() { return client_; }
    MemoryTransport& transport() { return transport_; }

    // Waits for run() to return; its exit code, or -1 on timeout.
    int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(10));

    // A factory making FakeCompleters that share `state`; counts its calls in `loads`
    // when given.
    static CompleterFactory fake_factory(std::shared_ptr<FakeCompleterState> state,
                                         std::shared_ptr<std::atomic<int>> loads = nullptr);

  private:
    MemoryTransport transport_;
    std::unique_ptr<Server> server_;
    std::future<int> exit_;
    std::thread thread_;
    MemoryClient client_;
    int exit_code_ = -1;
};

}  // namespace hearth::lsp
