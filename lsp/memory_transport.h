// MemoryTransport: an in-process transport, and MemoryClient, the client end of it.
//
// Tests, the latency benchmark and the fuzzer drive the real Server through these, with
// the same framing code as stdio and no pipes or processes:
//
//   MemoryTransport transport;
//   Server server(transport, options, factory);
//   std::thread loop([&] { exit_code = server.run(); });
//   MemoryClient client(transport);
//   json reply = client.request("initialize", {{"capabilities", json::object()}});
//
// Bytes written by the client are queued and delivered, in order, by the transport's own
// reader thread (as with stdio), through the same FrameReader; messages the server sends
// are framed, parsed back and queued for the client. Bytes written before start() wait
// for it. A server applying backpressure blocks only that reader thread, never the client.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "framing.h"
#include "transport.h"

namespace hearth::lsp {

class MemoryTransport final : public Transport {
  public:
    explicit MemoryTransport(FramingLimits limits = {});
    ~MemoryTransport() override;  // stop()

    // Transport (server side).
    void start(TransportCallbacks callbacks) override;
    void send(const json& message) override;
    void stop() override;

    // Client side: raw bytes (may hold partial or broken frames), one framed message, EOF.
    void client_write(std::string_view bytes);
    void client_send(const json& message);
    void client_close();

    // The next message the server sent, waiting up to `timeout`.
    std::optional<json> client_next(std::chrono::milliseconds timeout);

    // Messages the server sent so far, including those already taken by client_next.
    size_t sent_count() const;

  private:
    void read_loop();
    bool stop_requested();

    // Input side: the client's bytes wait in `inbox_` for the reader thread.
    std::mutex in_mu_;
    std::condition_variable in_cv_;
    std::string inbox_;
    bool started_ = false;
    bool stopped_ = false;
    bool closed_ = false;    // client_close(): deliver what is queued, then on_closed
    FrameReader in_reader_;  // reader thread only
    TransportCallbacks callbacks_;
    std::thread reader_;

    // Output side.
    mutable std::mutex out_mu_;
    std::condition_variable out_cv_;
    FrameReader out_reader_;
    std::deque<json> out_;
    size_t sent_ = 0;
    bool send_stopped_ = false;  // guarded by out_mu_; set by stop()
};

// A small synchronous LSP client over a MemoryTransport.
//
// request() sends and waits for the matching response; everything else the server sends
// in the meantime (notifications, its own requests) is kept in order for wait_for() and
// notifications(). Requests from the server are answered automatically: by a handler set
// with on_server_request(method, fn), else with a null result.
class MemoryClient {
  public:
    using ServerRequestFn = std::function<json(const json& params)>;

    explicit MemoryClient(MemoryTransport& transport,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

    // Sends a request and returns its id.
    json send_request(std::string_view method, json params);
    // Waits for the response to `id` (the whole message: {"id", "result"|"error"}).
    // Returns a null json on timeout.
    json wait_response(const json& id);
    // send_request + wait_response.
    json request(std::string_view method, json params);
    void notify(std::string_view method, json params);

    // Waits for the next message from the server that is not a response and whose
    // method is `method` (messages before it stay queued). Null json on timeout.
    json wait_for(std::string_view method);
    // Non-response messages received so far and not yet taken by wait_for.
    std::vector<json> notifications();

    void on_server_request(std::string method, ServerRequestFn fn);

    // Total responses received per id, to check that each request got exactly one.
    size_t responses_for(const json& id) const;

    // Pumps messages for `duration` (answers server requests, stores the rest).
    void drain(std::chrono::milliseconds duration);

    // Initialize with `capabilities` and send `initialized`; returns the initialize result.
    json initialize(json capabilities = json::object(), json initialization_options = nullptr);

    MemoryTransport& transport() { return transport_; }

  private:
    // Takes one message from the transport; false on timeout.
    bool pump(std::chrono::steady_clock::time_point deadline);

    MemoryTransport& transport_;
    std::chrono::milliseconds timeout_;
    int64_t next_id_ = 1;
    std::map<std::string, json> responses_;          // by id_key
    std::map<std::string, size_t> response_counts_;  // by id_key
    std::deque<json> others_;
    std::map<std::string, ServerRequestFn> handlers_;
};

}  // namespace hearth::lsp
