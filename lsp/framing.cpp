#include "framing.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace hearth::lsp {

namespace {

constexpr std::string_view kLengthHeader = "content-length";
constexpr std::string_view kResyncPattern = "content-length:";

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

FrameReader::FrameReader(FramingLimits limits) : limits_(limits) {}

bool FrameReader::mid_message() const {
    switch (state_) {
        case State::Header:
            return !line_.empty() || headers_seen_ > 0;
        case State::Body:
        case State::SkipBody:
            return true;
        case State::Resync:
            return false;
    }
    return false;
}

void FrameReader::reset_headers() {
    line_.clear();
    headers_seen_ = 0;
    have_length_ = false;
    length_ = 0;
}

void FrameReader::header_error(std::string_view what, const ErrorFn& on_error) {
    reset_headers();
    state_ = State::Resync;
    resync_match_ = 0;
    on_error(what);
}

bool FrameReader::header_line(std::string_view line, const ErrorFn& on_error) {
    if (++headers_seen_ > limits_.max_headers) {
        header_error("too many header lines", on_error);
        return false;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
        header_error("header line without ':'", on_error);
        return false;
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (!iequals(name, kLengthHeader)) return true;  // Content-Type and unknown headers
    if (have_length_) {
        header_error("duplicate Content-Length header", on_error);
        return false;
    }
    if (value.empty()) {
        header_error("empty Content-Length", on_error);
        return false;
    }
    size_t n = 0;
    for (char c : value) {
        if (c < '0' || c > '9') {
            header_error("Content-Length is not a decimal number", on_error);
            return false;
        }
        // 2^48 bytes is far beyond any cap; refusing earlier keeps n * 10 from wrapping.
        if (n > (size_t{1} << 48)) {
            header_error("Content-Length overflows", on_error);
            return false;
        }
        n = n * 10 + static_cast<size_t>(c - '0');
    }
    have_length_ = true;
    length_ = n;
    return true;
}

void FrameReader::feed(std::string_view bytes, const FrameFn& on_frame, const ErrorFn& on_error) {
    size_t i = 0;
    while (i < bytes.size()) {
        switch (state_) {
            case State::Header: {
                char c = bytes[i++];
                if (c != '\n') {
                    if (line_.size() >= limits_.max_header_line) {
                        header_error("header line too long", on_error);
                        break;
                    }
                    line_.push_back(c);
                    break;
                }
                std::string_view line = line_;
                if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                if (!line.empty()) {
                    if (header_line(line, on_error)) line_.clear();
                    break;
                }
                line_.clear();
                if (headers_seen_ == 0) break;  // stray blank line between messages
                if (!have_length_) {
                    header_error("missing Content-Length header", on_error);
                    break;
                }
                size_t length = length_;
                reset_headers();
                if (length > limits_.max_content_length) {
                    on_error("Content-Length " + std::to_string(length) + " exceeds the limit of " +
                             std::to_string(limits_.max_content_length) + " bytes");
                    skip_left_ = length;
                    state_ = State::SkipBody;
                } else if (length == 0) {
                    on_frame(std::string());
                } else {
                    length_ = length;
                    body_.clear();
                    body_.reserve(std::min<size_t>(length, size_t{1} << 20));
                    state_ = State::Body;
                }
                break;
            }
            case State::Body: {
                size_t take = std::min(length_ - body_.size(), bytes.size() - i);
                body_.append(bytes.data() + i, take);
                i += take;
                if (body_.size() == length_) {
                    std::string body = std::move(body_);
                    body_ = std::string();
                    length_ = 0;
                    state_ = State::Header;
                    on_frame(std::move(body));
                }
                break;
            }
            case State::SkipBody: {
                size_t take = std::min(skip_left_, bytes.size() - i);
                skip_left_ -= take;
                i += take;
                if (skip_left_ == 0) state_ = State::Header;
                break;
            }
            case State::Resync: {
                char c = lower(bytes[i++]);
                if (c == kResyncPattern[resync_match_]) {
                    if (++resync_match_ == kResyncPattern.size()) {
                        resync_match_ = 0;
                        state_ = State::Header;
                        line_ = "Content-Length:";
                    }
                } else {
                    // The pattern's only 'c' is its first character, so a mismatch can
                    // restart the match only at this character.
                    resync_match_ = (c == kResyncPattern[0]) ? 1 : 0;
                }
                break;
            }
        }
    }
}

std::string frame_message(std::string_view body) {
    std::string out = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    out.append(body);
    return out;
}

}  // namespace hearth::lsp
