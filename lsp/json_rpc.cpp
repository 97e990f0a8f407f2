#include "json_rpc.h"

#include <utility>

namespace hearth::lsp {

bool exceeds_depth(std::string_view text, int max_depth) {
    int depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        switch (c) {
            case '"':
                in_string = true;
                break;
            case '[':
            case '{':
                if (++depth > max_depth) return true;
                break;
            case ']':
            case '}':
                if (depth > 0) --depth;
                break;
            default:
                break;
        }
    }
    return false;
}

namespace {

bool valid_id(const json& id) {
    return id.is_string() || id.is_number_integer();
}

InvalidMessage invalid(json id, ErrorCode code, std::string message) {
    return InvalidMessage{std::move(id), RpcError{code, std::move(message)}};
}

}  // namespace

Message classify_message(json value) {
    if (value.is_array()) {
        // JSON-RPC batches are not used by LSP; refusing them keeps one reply per message.
        return invalid(nullptr, ErrorCode::InvalidRequest, "batch messages are not supported");
    }
    if (!value.is_object()) {
        return invalid(nullptr, ErrorCode::InvalidRequest, "a message must be a JSON object");
    }
    json id = nullptr;
    const bool has_id = value.contains("id");
    if (has_id) {
        if (!valid_id(value["id"])) {
            return invalid(nullptr, ErrorCode::InvalidRequest, "id must be an integer or a string");
        }
        id = value["id"];
    }
    auto version = value.find("jsonrpc");
    if (version == value.end() || !version->is_string() || *version != "2.0") {
        return invalid(id, ErrorCode::InvalidRequest, "jsonrpc must be \"2.0\"");
    }
    auto method = value.find("method");
    if (method != value.end()) {
        if (!method->is_string()) {
            return invalid(id, ErrorCode::InvalidRequest, "method must be a string");
        }
        json params = nullptr;
        if (auto p = value.find("params"); p != value.end()) {
            if (!p->is_object() && !p->is_array() && !p->is_null()) {
                return invalid(id, ErrorCode::InvalidRequest,
                               "params must be an object or an array");
            }
            params = std::move(*p);
        }
        std::string name = method->get<std::string>();
        if (has_id) return Request{std::move(id), std::move(name), std::move(params)};
        return Notification{std::move(name), std::move(params)};
    }
    if (has_id) {
        auto result = value.find("result");
        auto error = value.find("error");
        if (result != value.end() && error == value.end()) {
            return Response{std::move(id), false, std::move(*result)};
        }
        if (error != value.end() && result == value.end() && error->is_object()) {
            return Response{std::move(id), true, std::move(*error)};
        }
    }
    return invalid(id, ErrorCode::InvalidRequest,
                   "neither a request, a notification nor a response");
}

Message parse_message(std::string_view body) {
    if (exceeds_depth(body, kMaxJsonDepth)) {
        return invalid(nullptr, ErrorCode::ParseError, "JSON nests too deeply");
    }
    json value = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
        return invalid(nullptr, ErrorCode::ParseError, "malformed JSON");
    }
    return classify_message(std::move(value));
}

json make_response(const json& id, json result) {
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json make_error_response(const json& id, const RpcError& error) {
    return json{
        {"jsonrpc", "2.0"},
        {"id", id},
        {"error", {{"code", static_cast<int32_t>(error.code)}, {"message", error.message}}}};
}

json make_notification(std::string_view method, json params) {
    json msg{{"jsonrpc", "2.0"}, {"method", method}};
    if (!params.is_null()) msg["params"] = std::move(params);
    return msg;
}

json make_request(const json& id, std::string_view method, json params) {
    json msg{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
    if (!params.is_null()) msg["params"] = std::move(params);
    return msg;
}

std::string dump_json(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string id_key(const json& id) {
    return dump_json(id);
}

}  // namespace hearth::lsp
