#include "memory_transport.h"

#include <utility>

namespace hearth::lsp {

MemoryTransport::MemoryTransport(FramingLimits limits) : in_reader_(limits) {}

MemoryTransport::~MemoryTransport() {
    stop();
}

void MemoryTransport::start(TransportCallbacks callbacks) {
    std::lock_guard lock(in_mu_);
    if (started_ || stopped_) return;
    callbacks_ = std::move(callbacks);
    started_ = true;
    reader_ = std::thread([this] { read_loop(); });
}

void MemoryTransport::read_loop() {
    while (true) {
        std::string bytes;
        bool closed = false;
        {
            std::unique_lock lock(in_mu_);
            in_cv_.wait(lock, [this] { return stopped_ || closed_ || !inbox_.empty(); });
            if (stopped_) return;
            bytes.swap(inbox_);
            closed = closed_ && bytes.empty();
        }
        if (closed) {
            if (callbacks_.on_closed) callbacks_.on_closed();
            return;
        }
        // Delivery happens outside the lock: the receiver may block (backpressure) while
        // the client keeps writing.
        in_reader_.feed(
            bytes,
            [this](std::string body) {
                if (!stop_requested()) callbacks_.on_frame(std::move(body));
            },
            [this](std::string_view what) {
                if (!stop_requested()) callbacks_.on_framing_error(what);
            });
    }
}

bool MemoryTransport::stop_requested() {
    std::lock_guard lock(in_mu_);
    return stopped_;
}

void MemoryTransport::client_write(std::string_view bytes) {
    {
        std::lock_guard lock(in_mu_);
        if (closed_ || stopped_) return;
        inbox_.append(bytes);
    }
    in_cv_.notify_all();
}

void MemoryTransport::client_send(const json& message) {
    client_write(frame_message(dump_json(message)));
}

void MemoryTransport::client_close() {
    {
        std::lock_guard lock(in_mu_);
        closed_ = true;
    }
    in_cv_.notify_all();
}

void MemoryTransport::stop() {
    {
        std::lock_guard lock(in_mu_);
        stopped_ = true;
    }
    in_cv_.notify_all();
    if (reader_.joinable() && reader_.get_id() != std::this_thread::get_id()) reader_.join();
    std::lock_guard lock(out_mu_);
    send_stopped_ = true;
}

void MemoryTransport::send(const json& message) {
    std::string bytes = frame_message(dump_json(message));
    std::lock_guard lock(out_mu_);
    if (send_stopped_) return;
    ++sent_;
    out_reader_.feed(
        bytes,
        [this](std::string body) {
            json value = json::parse(body, nullptr, false);
            out_.push_back(value.is_discarded() ? json("<unparsable output>") : value);
        },
        [this](std::string_view what) {
            out_.push_back(json("<framing error: " + std::string(what) + ">"));
        });
    out_cv_.notify_all();
}

std::optional<json> MemoryTransport::client_next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(out_mu_);
    if (!out_cv_.wait_for(lock, timeout, [this] { return !out_.empty(); })) return std::nullopt;
    json msg = std::move(out_.front());
    out_.pop_front();
    return msg;
}

size_t MemoryTransport::sent_count() const {
    std::lock_guard lock(out_mu_);
    return sent_;
}

// ---------------------------------------------------------------------------------------

MemoryClient::MemoryClient(MemoryTransport& transport, std::chrono::milliseconds timeout)
    : transport_(transport), timeout_(timeout) {}

json MemoryClient::send_request(std::string_view method, json params) {
    json id = next_id_++;
    transport_.client_send(make_request(id, method, std::move(params)));
    return id;
}

bool MemoryClient::pump(std::chrono::steady_clock::time_point deadline) {
    auto now = std::chrono::steady_clock::now();
    auto left = deadline > now
                    ? std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)
                    : std::chrono::milliseconds(0);
    std::optional<json> msg = transport_.client_next(left);
    if (!msg) return false;
    const json& m = *msg;
    if (m.is_object() && m.contains("id") && !m.contains("method")) {
        std::string key = id_key(m["id"]);
        ++response_counts_[key];
        responses_[key] = m;
        return true;
    }
    if (m.is_object() && m.contains("id") && m.contains("method") && m["method"].is_string()) {
        // A request from the server: answer it so the server is never left waiting.
        std::string method = m["method"].get<std::string>();
        json result = nullptr;
        if (auto it = handlers_.find(method); it != handlers_.end()) {
            result = it->second(m.value("params", json()));
        }
        transport_.client_send(make_response(m["id"], result));
    }
    others_.push_back(m);
    return true;
}

json MemoryClient::wait_response(const json& id) {
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    std::string key = id_key(id);
    while (true) {
        if (auto it = responses_.find(key); it != responses_.end()) {
            json r = std::move(it->second);
            responses_.erase(it);
            return r;
        }
        if (!pump(deadline)) return nullptr;
    }
}

json MemoryClient::request(std::string_view method, json params) {
    return wait_response(send_request(method, std::move(params)));
}

void MemoryClient::notify(std::string_view method, json params) {
    transport_.client_send(make_notification(method, std::move(params)));
}

json MemoryClient::wait_for(std::string_view method) {
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    size_t checked = 0;
    while (true) {
        for (; checked < others_.size(); ++checked) {
            const json& m = others_[checked];
            if (m.is_object() && m.value("method", "") == method) {
                json found = std::move(others_[checked]);
                others_.erase(others_.begin() + static_cast<std::ptrdiff_t>(checked));
                return found;
            }
        }
        if (!pump(deadline)) return nullptr;
    }
}

std::vector<json> MemoryClient::notifications() {
    std::vector<json> out(others_.begin(), others_.end());
    others_.clear();
    return out;
}

void MemoryClient::on_server_request(std::string method, ServerRequestFn fn) {
    handlers_[std::move(method)] = std::move(fn);
}

size_t MemoryClient::responses_for(const json& id) const {
    auto it = response_counts_.find(id_key(id));
    return it == response_counts_.end() ? 0 : it->second;
}

void MemoryClient::drain(std::chrono::milliseconds duration) {
    auto deadline = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < deadline) pump(deadline);
}

json MemoryClient::initialize(json capabilities, json initialization_options) {
    json params{
        {"processId", nullptr}, {"rootUri", nullptr}, {"capabilities", std::move(capabilities)}};
    if (!initialization_options.is_null()) {
        params["initializationOptions"] = std::move(initialization_options);
    }
    json reply = request("initialize", std::move(params));
    notify("initialized", json::object());
    return reply;
}

}  // namespace hearth::lsp
