// Exactly one reply per request, enforced in code.
//
// Every request handler receives a ReplyOnce (untyped) or a Reply<T> (typed, see
// handler_table.h). Copies share one state:
//   - the first result() or error() sends the response;
//   - a later one is a server bug: it is logged and ignored, the client never sees a
//     second response for one id;
//   - when the last copy is destroyed without a reply (a handler dropped its callback),
//     the state answers InternalError itself, so the client is never left waiting.
// Replies may be sent from any thread (the transport serialises writes).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "json_rpc.h"

namespace hearth::lsp {

class ReplyOnce {
  public:
    using SendFn = std::function<void(const json& message)>;
    // Called once, right after the response is sent (the server forgets the request).
    using DoneFn = std::function<void()>;

    ReplyOnce(json id, std::string method, SendFn send, DoneFn done = {});

    void result(json value) const;
    void error(ErrorCode code, std::string message) const;
    void error(const RpcError& error) const { this->error(error.code, error.message); }

    bool replied() const;
    const json& id() const;
    const std::string& method() const;

  private:
    struct State;
    void send(json message) const;
    std::shared_ptr<State> state_;
};

// A typed view of ReplyOnce: the handler passes a T, which is serialised with to_json.
template <class T>
class Reply {
  public:
    explicit Reply(ReplyOnce raw) : raw_(std::move(raw)) {}
    void operator()(const T& value) const { raw_.result(json(value)); }
    void error(ErrorCode code, std::string message) const { raw_.error(code, std::move(message)); }
    void error(const RpcError& error) const { raw_.error(error); }
    const ReplyOnce& raw() const { return raw_; }

  private:
    ReplyOnce raw_;
};

}  // namespace hearth::lsp
