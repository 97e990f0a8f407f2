// The typed handler table: method name -> handler, with params parsed once.
//
//   table.bind("textDocument/inlineCompletion", this, &Server::inline_completion);
//
// where the handler is `void (const InlineCompletionParams&, Reply<InlineCompletionList>)`.
// The table reads the params with the struct's read() (protocol.h); a bad field is
// answered with InvalidParams naming its JSON path, and the handler is not called. A
// notification with bad params is logged and dropped (there is nobody to answer).
#pragma once

#include <spdlog/spdlog.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "json_reader.h"
#include "reply.h"

namespace hearth::lsp {

class HandlerTable {
  public:
    using RequestFn = std::function<void(const json& params, ReplyOnce reply)>;
    using NotificationFn = std::function<void(const json& params)>;

    template <class Obj, class Params, class Result>
    void bind(std::string method, Obj* obj, void (Obj::*fn)(const Params&, Reply<Result>)) {
        requests_[std::move(method)] = [obj, fn](const json& params, ReplyOnce reply) {
            Params p{};
            JsonReader reader("params");
            if (!read(params, p, reader)) {
                reply.error(ErrorCode::InvalidParams, reader.error());
                return;
            }
            (obj->*fn)(p, Reply<Result>(std::move(reply)));
        };
    }

    template <class Obj, class Params>
    void bind_notification(std::string method, Obj* obj, void (Obj::*fn)(const Params&)) {
        std::string name = method;
        notifications_[std::move(method)] = [obj, fn, name](const json& params) {
            Params p{};
            JsonReader reader("params");
            if (!read(params, p, reader)) {
                spdlog::warn("{}: invalid params ({}); notification dropped", name, reader.error());
                return;
            }
            (obj->*fn)(p);
        };
    }

    const RequestFn* request(std::string_view method) const {
        auto it = requests_.find(method);
        return it == requests_.end() ? nullptr : &it->second;
    }
    const NotificationFn* notification(std::string_view method) const {
        auto it = notifications_.find(method);
        return it == notifications_.end() ? nullptr : &it->second;
    }

  private:
    std::map<std::string, RequestFn, std::less<>> requests_;
    std::map<std::string, NotificationFn, std::less<>> notifications_;
};

}  // namespace hearth::lsp
