#include "reply.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <utility>

namespace hearth::lsp {

struct ReplyOnce::State {
    json id;
    std::string method;
    SendFn send;
    DoneFn done;
    std::atomic<bool> replied{false};

    ~State() {
        if (replied.load()) return;
        spdlog::error("request {} ({}) was dropped without a reply; answering InternalError",
                      dump_json(id), method);
        send(
            make_error_response(id, RpcError{ErrorCode::InternalError,
                                             "server error: no reply was produced for " + method}));
        if (done) done();
    }
};

ReplyOnce::ReplyOnce(json id, std::string method, SendFn send, DoneFn done)
    : state_(std::make_shared<State>()) {
    state_->id = std::move(id);
    state_->method = std::move(method);
    state_->send = std::move(send);
    state_->done = std::move(done);
}

void ReplyOnce::send(json message) const {
    if (state_->replied.exchange(true)) {
        spdlog::error("second reply to request {} ({}) ignored", dump_json(state_->id),
                      state_->method);
        return;
    }
    state_->send(message);
    if (state_->done) state_->done();
}

void ReplyOnce::result(json value) const {
    send(make_response(state_->id, std::move(value)));
}

void ReplyOnce::error(ErrorCode code, std::string message) const {
    send(make_error_response(state_->id, RpcError{code, std::move(message)}));
}

bool ReplyOnce::replied() const {
    return state_->replied.load();
}
const json& ReplyOnce::id() const {
    return state_->id;
}
const std::string& ReplyOnce::method() const {
    return state_->method;
}

}  // namespace hearth::lsp
