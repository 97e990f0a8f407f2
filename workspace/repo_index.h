// RepoIndex: the files of a workspace that may serve as prompt context.
//
// Every file listed here can end up verbatim in a prompt, so the scan errs on the side of
// leaving things out: whatever the user's ignore files exclude, credentials (`secrets`,
// never even opened), tool and dependency directories (`skip_dirs`), binaries, generated
// files and files too large to be useful context. The same rules answer `eligible()` for
// documents open in the editor, so an open `.env` never reaches a prompt either.
//
// Symlinks: a directory symlink is never followed (it can loop, or lead out of the
// workspace into a much larger tree); a file symlink is kept only when its target lies
// inside the root and passes the same rules, so a link cannot smuggle `~/.ssh/id_rsa` or
// an ignored file into the prompt.
//
// The walk is deterministic (entries in byte order, `files()` sorted by path) so that the
// same tree always yields the same context and therefore the same prompt prefix, which the
// KV cache can reuse. It reads at most 8 KiB of each candidate file (binary and generated
// checks) and stats each entry once.
//
// Threading: scan() is self-contained and can run on a worker thread. The const members
// may be called concurrently; update() needs exclusive access.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ignore.h"
#include "result.h"

namespace hearth {

struct ScanOptions {
    uint64_t max_file_bytes = 512 * 1024;  // larger files are skipped
    size_t max_files = 50000;              // at most this many files are indexed
    std::vector<std::string> exclude;      // extra gitignore-syntax patterns (user settings)
    std::vector<std::string> secrets;      // gitignore-syntax patterns never read; defaults below
    std::vector<std::string> skip_dirs;    // directory names never entered; defaults below
};

// The defaults: secrets cover key material, credential and environment files at any
// depth; skip_dirs cover version-control metadata, dependency trees, virtual environments,
// caches, build output and editor state. An ignore file's `!` cannot re-include either.
ScanOptions default_scan_options();

struct IndexedFile {
    std::string path;  // root-relative, '/' separators
    uint64_t size = 0;
    int64_t mtime_ns = 0;
};

// What the first bytes of a file say about it.
enum class ContentKind : uint8_t {
    Text,
    Binary,     // a NUL byte, or not valid UTF-8
    Generated,  // "@generated" or "DO NOT EDIT" within the first 5 lines
};

// Classifies the head of a file (the scan looks at its first 8 KiB). `truncated` says the
// file continues past `head`, so a multi-byte character cut at the end is not an error.
ContentKind classify_content(std::string_view head, bool truncated);

// Whether a file name marks a generated file (minified bundles, source maps, lock files,
// protobuf output). Judged on the name alone.
bool generated_file_name(std::string_view name);

class RepoIndex {
  public:
    RepoIndex() = default;  // empty, without a root: what a server holds until a scan is done

    // Walks `root`; `cancel` is polled between directories (a cancelled scan returns the
    // error "cancelled"); `progress(files_seen)` is called every few hundred files and once
    // at the end, and may be empty. When more than `max_files` files qualify, the first
    // ones in path order are kept. Unreadable directories are skipped.
    static Expected<RepoIndex> scan(const std::filesystem::path& root, const ScanOptions& opts,
                                    const std::function<bool()>& cancel = {},
                                    const std::function<void(size_t)>& progress = {});

    const std::filesystem::path& root() const { return root_; }       // canonical absolute root
    const std::vector<IndexedFile>& files() const { return files_; }  // sorted by path
    const ScanOptions& options() const { return opts_; }
    const IndexedFile* find(std::string_view rel_path) const;

    // Root-relative path ('/' separators) of an absolute path, or of a `file://` URI, under
    // the root; nullopt for paths outside it and for the root itself.
    std::optional<std::string> relative(const std::filesystem::path& abs) const;

    // Whether a root-relative path passes every rule that does not need its content:
    // ignore files (with their ancestors), secrets, skip_dirs, generated names, and, when
    // it exists on disk, symlink and size. A path not on disk (an unsaved document) is
    // judged by its name. The server asks this for open documents before putting their
    // text in a prompt; it reads ignore files, so it is not free.
    bool eligible(std::string_view rel_path) const;

    // Re-checks one path after a change notification: a created, changed or deleted file;
    // a created or deleted directory (its subtree is rescanned or dropped); a changed
    // .gitignore / .ignore / .git/info/exclude (every file below its directory is judged
    // again). Returns true when the index changed.
    bool update(std::string_view rel_path);

    // Reads a file's text. Fails when the path is not eligible (a secret, ignored, ...),
    // gone, larger than max_file_bytes, binary or generated (judged on its first 8 KiB, as
    // the scan does), or a symlink whose target leaves the root. A file need not be in the
    // index (it may be newer than the last scan).
    Expected<std::string> read(std::string_view rel_path) const;

  private:
    struct Walk;

    // Rules that depend on the name only: skip_dirs for every directory component,
    // secrets, generated names. `is_dir` says what the last component is.
    bool name_allowed(std::string_view rel_path, bool is_dir) const;
    // The ignore rules of the root-relative directory `dir` ("" = root), from the cache
    // filled by the scan, or read from disk for a directory the scan never saw.
    IgnoreRules directory_rules(const std::string& dir) const;
    // name_allowed plus the ignore files of every ancestor.
    bool path_allowed(std::string_view rel_path, bool is_dir) const;
    // Whether the root-relative directory is reached without passing a symlink (the walk
    // never follows one, so nothing behind one may be read or indexed either). True for a
    // directory that does not exist yet.
    bool real_directory(const std::string& rel_dir) const;
    // Checks a file on disk (symlink target, size, content); fills `out` when it qualifies.
    // `name` (with `dir_fd`, the open directory that holds it) spares a path lookup.
    bool qualify_file(const std::string& rel_path, IndexedFile& out, int dir_fd = -1,
                      const char* name = nullptr) const;
    // Lists one directory and recurses into the subdirectories that pass.
    void walk(const std::string& dir, Walk& w) const;
    // Rescans the subtree of the root-relative directory `dir` ("" = root) into `files_`;
    // true when that changed what the index holds there.
    bool rescan_subtree(const std::string& dir);

    std::filesystem::path root_;
    ScanOptions opts_;
    IgnoreRules root_rules_;  // options' exclude, then .git/info/exclude
    IgnoreRules secrets_;
    std::vector<IndexedFile> files_;
    // The ignore rules of every directory the walk entered, by root-relative path, so that
    // eligible() and update() need not read them again.
    std::map<std::string, IgnoreRules, std::less<>> dir_rules_;
};

}  // namespace hearth
