#include "documents.h"

#include <algorithm>
#include <utility>

namespace hearth::lsp {

namespace {

// Length of the UTF-8 sequence at s[i] and whether it is a 4-byte sequence (two UTF-16
// units). Invalid bytes are sequences of length 1.
struct CharInfo {
    size_t bytes;
    bool astral;
};

CharInfo char_at(std::string_view s, size_t i) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    size_t len = 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
    } else {
        return {1, false};  // ASCII, a stray continuation byte or an invalid lead byte
    }
    if (i + len > s.size()) return {1, false};
    for (size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return {1, false};
    }
    // Reject overlong and out-of-range forms the lead-byte ranges above still admit.
    if (len == 3) {
        unsigned char c1 = byte(i + 1);
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) return {1, false};
    } else if (len == 4) {
        unsigned char c1 = byte(i + 1);
        if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) return {1, false};
    }
    return {len, len == 4};
}

size_t units_of(CharInfo ch, PositionEncoding encoding) {
    switch (encoding) {
        case PositionEncoding::Utf8:
            return ch.bytes;
        case PositionEncoding::Utf16:
            return ch.astral ? 2 : 1;
        case PositionEncoding::Utf32:
            return 1;
    }
    return 1;
}

}  // namespace

size_t count_units(std::string_view s, PositionEncoding encoding) {
    if (encoding == PositionEncoding::Utf8) return s.size();
    size_t units = 0;
    for (size_t i = 0; i < s.size();) {
        CharInfo ch = char_at(s, i);
        units += units_of(ch, encoding);
        i += ch.bytes;
    }
    return units;
}

TextDocument::TextDocument(std::string uri, std::string language_id, int32_t version,
                           std::string text)
    : uri_(std::move(uri)),
      language_id_(std::move(language_id)),
      version_(version),
      text_(std::move(text)) {
    reindex();
}

void TextDocument::reindex() {
    line_starts_.clear();
    line_starts_.push_back(0);
    const size_t n = text_.size();
    const char* data = text_.data();
    for (size_t i = 0; i < n; ++i) {
        char c = data[i];
        if (c == '\n') {
            line_starts_.push_back(i + 1);
        } else if (c == '\r') {
            if (i + 1 < n && data[i + 1] == '\n') ++i;
            line_starts_.push_back(i + 1);
        }
    }
}

std::string_view TextDocument::line_text(uint32_t line) const {
    size_t start = line_starts_[line];
    size_t end = line + 1 < line_starts_.size() ? line_starts_[line + 1] : text_.size();
    std::string_view s(text_.data() + start, end - start);
    if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    return s;
}

Expected<size_t> TextDocument::offset_at(Position pos, PositionEncoding encoding) const {
    if (pos.line >= line_starts_.size()) {
        return make_error("line " + std::to_string(pos.line) +
                          " is past the end of the document (" +
                          std::to_string(line_starts_.size()) + " lines)");
    }
    std::string_view line = line_text(pos.line);
    size_t start = line_starts_[pos.line];
    if (encoding == PositionEncoding::Utf8) {
        if (pos.character >= line.size()) return start + line.size();
        // A byte offset must not land on a continuation byte of a valid sequence.
        for (size_t i = 0; i < line.size();) {
            if (i == pos.character) return start + i;
            CharInfo ch = char_at(line, i);
            if (i + ch.bytes > pos.character) break;
            i += ch.bytes;
        }
        return make_error("character " + std::to_string(pos.character) + " of line " +
                          std::to_string(pos.line) + " is inside a UTF-8 sequence");
    }
    size_t units = 0;
    size_t i = 0;
    while (i < line.size() && units < pos.character) {
        CharInfo ch = char_at(line, i);
        units += units_of(ch, encoding);
        i += ch.bytes;
    }
    if (units > pos.character) {
        return make_error("character " + std::to_string(pos.character) + " of line " +
                          std::to_string(pos.line) + " is inside a surrogate pair");
    }
    return start + i;  // clamped to the end of the line when the character is past it
}

Position TextDocument::position_at(size_t offset, PositionEncoding encoding) const {
    offset = std::min(offset, text_.size());
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    auto line = static_cast<uint32_t>(std::distance(line_starts_.begin(), it) - 1);
    std::string_view text = line_text(line);
    size_t within = std::min(offset - line_starts_[line], text.size());
    size_t units = 0;
    for (size_t i = 0; i < within;) {
        CharInfo ch = char_at(text, i);
        if (i + ch.bytes > within) break;  // inside a character: its start
        units += units_of(ch, encoding);
        i += ch.bytes;
    }
    return Position{line, static_cast<uint32_t>(units)};
}

Status TextDocument::apply_changes(const std::vector<TextDocumentContentChangeEvent>& changes,
                                   int32_t version, PositionEncoding encoding) {
    // The common case, one edit, is validated first and then applied in place.
    if (changes.size() == 1 && changes[0].range) {
        const Range& range = *changes[0].range;
        Expected<size_t> a = offset_at(range.start, encoding);
        if (!a) return make_error("change 0 start: " + a.error().message);
        Expected<size_t> b = offset_at(range.end, encoding);
        if (!b) return make_error("change 0 end: " + b.error().message);
        if (*a > *b) return make_error("change 0 range: start is after end");
        text_.replace(*a, *b - *a, changes[0].text);
        reindex();
        version_ = version;
        return Status::success();
    }
    // Several changes: work on a copy so a bad change in the middle leaves the document
    // as it was (each change's positions refer to the text after the previous ones).
    TextDocument next = *this;
    for (size_t k = 0; k < changes.size(); ++k) {
        const auto& change = changes[k];
        if (!change.range) {
            next.text_ = change.text;
            next.reindex();
            continue;
        }
        auto where = [&](const char* what) {
            return "change " + std::to_string(k) + " " + what + ": ";
        };
        Expected<size_t> a = next.offset_at(change.range->start, encoding);
        if (!a) return make_error(where("start") + a.error().message);
        Expected<size_t> b = next.offset_at(change.range->end, encoding);
        if (!b) return make_error(where("end") + b.error().message);
        if (*a > *b) return make_error(where("range") + "start is after end");
        next.text_.replace(*a, *b - *a, change.text);
        next.reindex();
    }
    next.version_ = version;
    *this = std::move(next);
    return Status::success();
}

std::string_view TextDocument::eol() const {
    if (line_starts_.size() < 2) return "\n";
    size_t end = line_starts_[1];
    if (end >= 2 && text_[end - 2] == '\r' && text_[end - 1] == '\n') return "\r\n";
    if (text_[end - 1] == '\r') return "\r";
    return "\n";
}

Status DocumentStore::open(const TextDocumentItem& item) {
    auto it = docs_.find(item.uri);
    if (it == docs_.end() && docs_.size() >= kMaxDocuments) {
        return make_error("too many open documents (limit " + std::to_string(kMaxDocuments) + ")");
    }
    TextDocument doc(item.uri, item.language_id, item.version, item.text);
    if (it != docs_.end()) {
        it->second = std::move(doc);
    } else {
        docs_.emplace(item.uri, std::move(doc));
    }
    return Status::success();
}

Status DocumentStore::change(const DidChangeTextDocumentParams& params, PositionEncoding encoding) {
    auto it = docs_.find(params.text_document.uri);
    if (it == docs_.end()) return make_error("document is not open: " + params.text_document.uri);
    return it->second.apply_changes(params.content_changes, params.text_document.version, encoding);
}

bool DocumentStore::close(const std::string& uri) {
    return docs_.erase(uri) > 0;
}

const TextDocument* DocumentStore::get(const std::string& uri) const {
    auto it = docs_.find(uri);
    return it == docs_.end() ? nullptr : &it->second;
}

}  // namespace hearth::lsp
