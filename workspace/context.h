// Repository context for fill-in-the-middle completions: which workspace files go into
// the prompt before the current file, and in which order.
//
// Choice. A model completes code better when it sees the definitions the cursor is about
// to use, so files are ranked by how likely they hold them, from the top:
//   1. files the current file imports or includes (Python, C/C++, JS/TS resolved by
//      path; Go, Rust, Java/Kotlin best-effort by the last path component);
//   2. its sibling: foo.h / foo.cpp / foo_test.cpp / test_foo.py / foo.test.ts (same
//      directory first, then a test or header/source counterpart elsewhere);
//   3. documents open in the editor and files with recent edits (dirty and edited ones
//      first, the most recently edited first);
//   4. files in the same directory;
//   5. files of the same language (by extension);
//   6. the rest by path proximity (more shared directories, then fewer steps apart).
// Ties go by path, so the same inputs always give the same list. The byte budget
// (budget_tokens * bytes_per_token) goes first to the recent-edit chunks (small, and the
// best hint of the next edit), then to whole files, greedily in rank order: a file that
// does not fit is skipped and smaller ones further down may still fit. A chunk whose file
// made it in whole is dropped and its bytes go to further files. A file costs its text,
// its path and a few bytes for the separator.
//
// Order. The prompt is tokenized in list order and the KV cache reuses the longest
// unchanged token prefix, so what changes least comes first:
//   a. chosen files as on disk (everything but dirty documents), by path;
//   b. dirty open documents (their editor text), by path;
//   c. recent-edit chunks of other files not already included whole, oldest first, so a
//      new edit only invalidates the tail.
// The completer drops context from the end when the prompt is over its token budget,
// which also drops the most volatile part first.
//
// Safety: candidates come from the RepoIndex (its rules keep secrets, ignored and
// generated files out) and every read goes through RepoIndex::read; open documents and
// edit chunks are used only when RepoIndex::eligible accepts their path.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "completer.h"
#include "repo_index.h"

namespace hearth {

struct OpenDocument {       // a document open in the editor
    std::string path;       // root-relative
    std::string text;       // the editor's text (may differ from disk)
    bool dirty = false;     // edited since opened/saved
    int64_t last_edit = 0;  // larger = more recent (a sequence number); 0 = never edited
};

// A ring of recently edited chunks: a few lines around each edit, newest first. What the
// user just changed is the best hint of what comes next, but whole files would crowd out
// everything else, hence chunks. Edits whose windows overlap or touch in one file merge
// into one chunk (re-cut from the newest text) so that typing on one line keeps a single
// chunk. Bounded in count and in bytes; the oldest chunks go first.
//
// Not thread-safe: the server records edits and builds context under one lock.
class RecentEdits {
  public:
    // `max_bytes` bounds the text of all chunks together; one chunk keeps at most a
    // quarter of it (a huge paste is cut to its first lines).
    explicit RecentEdits(size_t max_chunks = 8, int32_t context_lines = 6,
                         size_t max_bytes = 16 * 1024);

    // Records an edit of `path` whose new text is `text`, touching lines
    // [first_line, last_line] (0-based, in the new text; clamped to the text).
    void record(const std::string& path, std::string_view text, int32_t first_line,
                int32_t last_line);
    // Keeps the chunks' line numbers in step with the text: an edit of `path` that starts
    // at line `line` and adds `delta` lines (negative: removes) moves the chunks below it.
    // Call it for every edit, before record().
    void shift(const std::string& path, int32_t line, int32_t delta);
    // Drops the chunks of `path` (closed, deleted or renamed).
    void forget(const std::string& path);
    std::vector<ContextFile> chunks() const;  // newest first; ContextFile.path = the file's path

    size_t size() const { return chunks_.size(); }
    size_t bytes() const { return bytes_; }

  private:
    struct Chunk {
        std::string path;
        int32_t first = 0;  // line range of the chunk in the text it was cut from
        int32_t last = 0;
        std::string text;
    };
    std::deque<Chunk> chunks_;  // newest first
    size_t bytes_ = 0;
    size_t max_chunks_;
    int32_t context_lines_;
    size_t max_bytes_;
};

struct ContextOptions {
    int32_t budget_tokens = 8192;  // estimate via bytes / bytes_per_token
    double bytes_per_token = 3.5;
};

// Chooses the context for a completion in `current_path` (root-relative) whose text is
// `current_text`: candidates are the index's files plus the open documents (their editor
// text wins over disk; ineligible ones are never used), never the current file itself.
std::vector<ContextFile> build_context(const RepoIndex& index, std::string_view current_path,
                                       std::string_view current_text,
                                       std::span<const OpenDocument> open, const RecentEdits& edits,
                                       const ContextOptions& opts);

// The root-relative paths among `candidates` that `text`, the content of `current_path`,
// imports or includes, sorted. Exposed for tests and diagnostics ("why is this file in my
// prompt").
std::vector<std::string> resolve_imports(std::string_view current_path, std::string_view text,
                                         const std::vector<std::string>& candidates);

}  // namespace hearth
