// Transport: where LSP messages come from and go to.
//
// The server is written against this interface only. StdioTransport (stdio_transport.h)
// frames messages over file descriptors 0/1 for real editors; MemoryTransport
// (memory_transport.h) connects a test or benchmark client to the same server in-process.
//
// Incoming frame bodies are delivered on a thread owned by the transport (never the
// server loop): the receiver must be thread-safe and quick (the server parses the JSON
// there and posts the message to its loop). `send` may be called from any thread; each
// message is written whole, never interleaved with another.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "json_rpc.h"

namespace hearth::lsp {

struct TransportCallbacks {
    // One complete frame body (unparsed JSON text).
    std::function<void(std::string body)> on_frame;
    // A framing error; the transport has resynchronised and keeps reading.
    std::function<void(std::string_view what)> on_framing_error;
    // The input ended (EOF or a read error); no further callbacks follow.
    std::function<void()> on_closed;
};

class Transport {
  public:
    virtual ~Transport() = default;

    // Starts delivering incoming frames to `callbacks`. Called once.
    virtual void start(TransportCallbacks callbacks) = 0;

    // Frames and writes one message. Thread-safe. Messages sent after stop() are dropped.
    virtual void send(const json& message) = 0;

    // Stops delivering input and releases the reading thread. Idempotent; after it
    // returns no callback is running or will run.
    virtual void stop() = 0;
};

}  // namespace hearth::lsp
