// Open documents: text, version and a line index for position <-> byte offset.
//
// Text is kept as UTF-8 bytes, exactly as the client sent it. Lines end at "\n", "\r\n"
// or a lone "\r" (the three EOLs LSP allows). A Position's `character` counts in the
// negotiated encoding: UTF-8 bytes, UTF-16 code units (a character outside the BMP, such
// as U+1F600, is two units) or code points. Bytes that are not valid UTF-8 count as one
// unit each, so any byte string has well-defined positions.
//
// Position rules (LSP: "if the character value is greater than the line length it
// defaults back to the line length"):
//   - a line past the last line is an error;
//   - a character past the end of its line is clamped to the end of the line;
//   - a character that points inside one character (between the two UTF-16 units of a
//     surrogate pair, inside a multi-byte UTF-8 sequence) is an error: honouring it would
//     split a character.
// An edit whose range breaks these rules, or whose start is after its end, is rejected,
// and a didChange with several changes is applied all-or-nothing, so the text is never
// left half-edited.
//
// The line index is rebuilt after each edit: that is O(size of the file), the same order
// as the edit of the string itself, and keeps the index obviously right; lookups are
// O(log lines + length of the line).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "protocol.h"
#include "result.h"

namespace hearth::lsp {

class TextDocument {
  public:
    TextDocument(std::string uri, std::string language_id, int32_t version, std::string text);

    const std::string& uri() const { return uri_; }
    const std::string& language_id() const { return language_id_; }
    int32_t version() const { return version_; }
    const std::string& text() const { return text_; }

    size_t line_count() const { return line_starts_.size(); }
    // The line's text without its line break. `line` must be < line_count().
    std::string_view line_text(uint32_t line) const;
    size_t line_start(uint32_t line) const { return line_starts_[line]; }

    // Byte offset of `pos` (see the position rules above).
    Expected<size_t> offset_at(Position pos, PositionEncoding encoding) const;
    // Position of a byte offset (clamped to the text; an offset inside a character maps
    // to the start of that character).
    Position position_at(size_t offset, PositionEncoding encoding) const;

    // Applies the changes in order; on any error the document is unchanged.
    Status apply_changes(const std::vector<TextDocumentContentChangeEvent>& changes,
                         int32_t version, PositionEncoding encoding);

    // The document's line break ("\n" unless its first line break is "\r\n" or "\r"), so
    // inserted multi-line text can match it.
    std::string_view eol() const;

  private:
    void reindex();

    std::string uri_;
    std::string language_id_;
    int32_t version_ = 0;
    std::string text_;
    std::vector<size_t> line_starts_;  // byte offset of each line; [0] == 0
};

// Counts the units of `s` in `encoding` (e.g. "é" is 2 UTF-8 units, 1 UTF-16 unit).
size_t count_units(std::string_view s, PositionEncoding encoding);

// The documents the client has open, by URI.
class DocumentStore {
  public:
    // A hostile or runaway client cannot make the store grow without end.
    static constexpr size_t kMaxDocuments = 10000;

    // Opens (or replaces) a document; an error when the store is full.
    Status open(const TextDocumentItem& item);
    Status change(const DidChangeTextDocumentParams& params, PositionEncoding encoding);
    bool close(const std::string& uri);

    const TextDocument* get(const std::string& uri) const;
    size_t size() const { return docs_.size(); }
    // Every open document, by URI.
    const std::map<std::string, TextDocument>& all() const { return docs_; }

  private:
    std::map<std::string, TextDocument> docs_;
};

}  // namespace hearth::lsp
