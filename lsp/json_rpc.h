// JSON-RPC 2.0 message model for the language server.
//
// An incoming frame body is untrusted text. `parse_message` turns it into exactly one of:
//   - Request      {id, method, params}      -> must be answered exactly once
//   - Notification {method, params}          -> never answered
//   - Response     {id, result | error}      -> answer to a request the server sent
//   - Invalid      {id (or null), error}     -> answered at once with that error
// The checks follow JSON-RPC 2.0 as LSP uses it: "jsonrpc" must be "2.0", an id is an
// integer or a string, a method is a string, params (when present) are an object or an
// array, and batches are not part of LSP (an array body is refused with InvalidRequest).
//
// Outgoing messages are built with the make_* helpers and serialised by `dump_json`, which
// never throws: strings holding invalid UTF-8 (a document can contain anything) are written
// with U+FFFD instead of aborting the reply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

namespace hearth::lsp {

using json = nlohmann::json;

// Error codes of JSON-RPC 2.0 and LSP 3.17/3.18.
enum class ErrorCode : int32_t {
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    InternalError = -32603,
    ServerNotInitialized = -32002,
    UnknownErrorCode = -32001,
    RequestFailed = -32803,
    ServerCancelled = -32802,
    ContentModified = -32801,
    RequestCancelled = -32800,
};

// An error reply: code and human-readable message.
struct RpcError {
    ErrorCode code = ErrorCode::InternalError;
    std::string message;
};

struct Request {
    json id;  // integer or string
    std::string method;
    json params;  // object, array or null (absent)
};

struct Notification {
    std::string method;
    json params;
};

struct Response {
    json id;
    bool is_error = false;
    json result;  // the result, or the error object when is_error
};

struct InvalidMessage {
    json id;  // the request's id when it could be read, else null
    RpcError error;
};

using Message = std::variant<Request, Notification, Response, InvalidMessage>;

// Nesting deeper than this is refused before parsing: a 64 MiB body of "[[[[..." would
// otherwise become gigabytes of nested json values. LSP messages nest a dozen levels.
inline constexpr int kMaxJsonDepth = 128;

// Classifies one frame body. Never throws.
Message parse_message(std::string_view body);

// Classifies an already parsed value (used by parse_message and by tests).
Message classify_message(json value);

// True when the bytes nest arrays/objects deeper than `max_depth` (strings are skipped).
bool exceeds_depth(std::string_view text, int max_depth);

json make_response(const json& id, json result);
json make_error_response(const json& id, const RpcError& error);
json make_notification(std::string_view method, json params);
json make_request(const json& id, std::string_view method, json params);

// Serialises without throwing (invalid UTF-8 is replaced by U+FFFD).
std::string dump_json(const json& value);

// A stable key for an id (integer 7 and string "7" differ), for maps of requests.
std::string id_key(const json& id);

}  // namespace hearth::lsp
