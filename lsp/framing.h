// Base-protocol framing: "Content-Length: N\r\n[other headers]\r\n\r\n<N bytes of JSON>".
//
// The byte stream is hostile input. FrameReader is an incremental push parser with fixed
// memory bounds:
//   - a header line longer than `max_header_line` bytes, more than `max_headers` header
//     lines, a line without ':', a missing, duplicate, non-numeric or overflowing
//     Content-Length are framing errors;
//   - a Content-Length above `max_content_length` is an error too, and the body is then
//     skipped byte by byte without being stored (the declared length is the only sound
//     place to resume);
//   - after any other header error the reader resynchronises by scanning for the next
//     "Content-Length:" (case-insensitive), because the length of the broken message's
//     body is unknown and its bytes must not be read as headers.
// Header names are case-insensitive; lines may end in "\r\n" or a bare "\n" (some clients
// and hand-written tests send the latter); other headers (Content-Type) are ignored.
// Nothing here throws or allocates more than max_content_length + max_header_line bytes.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace hearth::lsp {

struct FramingLimits {
    size_t max_content_length = size_t{64} << 20;  // 64 MiB
    size_t max_header_line = 4096;
    size_t max_headers = 32;
};

class FrameReader {
  public:
    using FrameFn = std::function<void(std::string body)>;
    using ErrorFn = std::function<void(std::string_view what)>;

    explicit FrameReader(FramingLimits limits = {});

    // Consumes bytes; calls `on_frame` for each complete body and `on_error` for each
    // framing error (the reader then resynchronises on its own).
    void feed(std::string_view bytes, const FrameFn& on_frame, const ErrorFn& on_error);

    // True while a partial message is buffered (used to report truncated input at EOF).
    bool mid_message() const;

    const FramingLimits& limits() const { return limits_; }

  private:
    enum class State { Header, Body, SkipBody, Resync };

    // Handles one complete header line (without its terminator); false on a framing error.
    bool header_line(std::string_view line, const ErrorFn& on_error);
    void header_error(std::string_view what, const ErrorFn& on_error);
    void reset_headers();

    FramingLimits limits_;
    State state_ = State::Header;
    std::string line_;  // the header line being read
    std::string body_;  // the body being read
    size_t headers_seen_ = 0;
    bool have_length_ = false;
    size_t length_ = 0;
    size_t skip_left_ = 0;     // bytes still to drop in SkipBody
    size_t resync_match_ = 0;  // chars of "content-length:" matched so far in Resync
};

// Frames a body for sending.
std::string frame_message(std::string_view body);

}  // namespace hearth::lsp
