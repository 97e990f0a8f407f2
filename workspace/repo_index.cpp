#include "repo_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "unicode.h"

namespace hearth {

namespace fs = std::filesystem;

namespace {

constexpr size_t kHeadBytes = 8 * 1024;  // what the binary / generated checks look at
constexpr size_t kProgressEvery = 256;   // files between progress callbacks
constexpr int kMaxDepth = 256;           // deeper directories are not entered

constexpr std::string_view kGeneratedNames[] = {
    "*.min.js",
    "*.min.mjs",
    "*.min.css",
    "*.map",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "Cargo.lock",
    "poetry.lock",
    "Pipfile.lock",
    "Gemfile.lock",
    "go.sum",
    "composer.lock",
    "*_pb2.py",
    "*_pb2.pyi",
    "*_pb2_grpc.py",
    "*.pb.go",
    "*.pb.cc",
    "*.pb.h",
    "*.pb.c",
};

// A root-relative path as callers pass it, made canonical: '/' separators, no empty or
// "." components. Rejects absolute paths and "..", which could leave the root.
std::optional<std::string> clean_relative(std::string_view p) {
    if (p.empty() || p.front() == '/') return std::nullopt;
    std::string out;
    while (!p.empty()) {
        const size_t slash = p.find('/');
        const std::string_view part = p.substr(0, slash);
        p = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
        if (part.empty() || part == ".") continue;
        if (part == "..") return std::nullopt;
        if (!out.empty()) out += '/';
        out += part;
    }
    if (out.empty()) return std::nullopt;
    return out;
}

std::string_view basename_of(std::string_view path) {
    const size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string parent_of(std::string_view path) {
    const size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

std::string join(const std::string& dir, std::string_view name) {
    return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

// Whether `path` is `dir` itself or lies below it ("" is the root and contains everything).
bool within(std::string_view path, std::string_view dir) {
    if (dir.empty()) return true;
    return path.starts_with(dir) && (path.size() == dir.size() || path[dir.size()] == '/');
}

int64_t mtime_ns(const struct stat& st) {
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Reads up to `limit` bytes from the start of an open file.
std::string read_head(int fd, size_t limit) {
    std::string buf(limit, '\0');
    size_t got = 0;
    while (got < limit) {
        const ssize_t n = ::read(fd, buf.data() + got, limit - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    buf.resize(got);
    return buf;
}

class Fd {
  public:
    explicit Fd(const fs::path& p, int flags = 0)
        : fd_(::open(p.c_str(), O_RDONLY | O_CLOEXEC | flags)) {}
    Fd(int dir_fd, const char* name, int flags)
        : fd_(::openat(dir_fd, name, O_RDONLY | O_CLOEXEC | flags)) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd& operator=(Fd&& other) noexcept {
        std::swap(fd_, other.fd_);
        return *this;
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
            hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

bool same_file(const IndexedFile& a, const IndexedFile& b) {
    return a.path == b.path && a.size == b.size && a.mtime_ns == b.mtime_ns;
}

}  // namespace

ContentKind classify_content(std::string_view head, bool truncated) {
    if (head.find('\0') != std::string_view::npos) return ContentKind::Binary;
    std::string_view whole = head;
    if (truncated) whole.remove_suffix(unicode::incomplete_utf8_tail(whole));
    if (!unicode::is_valid_utf8(whole)) return ContentKind::Binary;
    size_t end = 0;
    for (int line = 0; line < 5; ++line) {
        const size_t nl = head.find('\n', end);
        if (nl == std::string_view::npos) {
            end = head.size();
            break;
        }
        end = nl + 1;
    }
    const std::string_view top = head.substr(0, end);
    if (top.find("@generated") != std::string_view::npos ||
        top.find("DO NOT EDIT") != std::string_view::npos) {
        return ContentKind::Generated;
    }
    return ContentKind::Text;
}

bool generated_file_name(std::string_view name) {
    static const IgnoreRules rules = [] {
        IgnoreRules r;
        for (std::string_view g : kGeneratedNames) r.add_line(g);
        return r;
    }();
    return rules.match(name, false) == IgnoreMatch::Ignore;
}

ScanOptions default_scan_options() {
    ScanOptions o;
    o.secrets = {".env",
                 ".env.*",
                 "*.pem",
                 "*.key",
                 "*.p12",
                 "*.pfx",
                 "*.jks",
                 "*.keystore",
                 "*.kdbx",
                 "id_rsa*",
                 "id_dsa*",
                 "id_ecdsa*",
                 "id_ed25519*",
                 ".npmrc",
                 ".pypirc",
                 ".netrc",
                 ".git-credentials",
                 "credentials*",
                 "secrets.*",
                 "*.secret",
                 ".aws/",
                 ".ssh/",
                 ".gnupg/"};
    o.skip_dirs = {".git",          ".hg",    ".svn",  "node_modules", "vendor",
                   "third_party",   ".venv",  "venv",  "__pycache__",  ".mypy_cache",
                   ".pytest_cache", ".tox",   "build", "dist",         "target",
                   "out",           ".cache", ".idea", ".vscode",      ".gradle"};
    return o;
}

// State of one walk: the ignore rules on the current path, the files found so far and the
// bookkeeping for cancel / progress / max_files.
struct RepoIndex::Walk {
    IgnoreStack stack;
    std::vector<IndexedFile> files;
    std::map<std::string, IgnoreRules, std::less<>> rules;  // per entered directory
    size_t limit = 0;
    size_t seen = 0;
    size_t reported = 0;
    int depth = 0;
    bool cancelled = false;
    bool full = false;
    const std::function<bool()>* cancel = nullptr;
    const std::function<void(size_t)>* progress = nullptr;
};

void RepoIndex::walk(const std::string& dir, Walk& w) const {
    if (w.cancelled || w.full) return;
    if (w.cancel && *w.cancel && (*w.cancel)()) {
        w.cancelled = true;
        return;
    }
    const fs::path abs = dir.empty() ? root_ : root_ / dir;

    struct Entry {
        std::string key;  // name, plus '/' for directories: listing order == path order
        std::string name;
        bool is_dir = false;
    };
    std::vector<Entry> entries;
    bool has_gitignore = false, has_ignore = false;
    std::error_code ec;
    fs::directory_iterator it(abs, fs::directory_options::none, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        const fs::directory_entry& e = *it;
        // The type comes from the listing itself where the file system reports it (no
        // system call); is_symlink is asked first so that no symlink is ever resolved.
        std::error_code tec;
        const bool link = e.is_symlink(tec);
        if (tec) continue;  // vanished
        const bool is_dir = !link && e.is_directory(tec);
        if (tec || (!link && !is_dir && !e.is_regular_file(tec))) continue;  // fifos, devices
        Entry en;
        en.is_dir = is_dir;
        en.name = e.path().filename().string();
        en.key = en.is_dir ? en.name + "/" : en.name;
        // Ignore files are read only where the listing shows them (most directories have
        // none), and, as git does, never through a symlink.
        if (!is_dir && !link) {
            has_gitignore = has_gitignore || en.name == ".gitignore";
            has_ignore = has_ignore || en.name == ".ignore";
        }
        entries.push_back(std::move(en));
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.key < b.key; });
    const Fd dir_fd(abs, O_DIRECTORY);

    IgnoreRules rules;
    if (has_gitignore) rules = load_ignore_file(abs / ".gitignore");
    if (has_ignore) rules.append(load_ignore_file(abs / ".ignore"));
    w.rules[dir] = rules;
    w.stack.push(dir, std::move(rules));

    for (const Entry& en : entries) {
        if (w.cancelled || w.full) break;
        const std::string rel = join(dir, en.name);
        if (en.is_dir) {
            if (std::find(opts_.skip_dirs.begin(), opts_.skip_dirs.end(), en.name) !=
                opts_.skip_dirs.end()) {
                continue;
            }
            if (secrets_.match(rel, true) == IgnoreMatch::Ignore) continue;
            if (w.stack.match(rel, true) == IgnoreMatch::Ignore) continue;
            if (w.depth >= kMaxDepth) continue;
            ++w.depth;
            walk(rel, w);
            --w.depth;
            continue;
        }
        ++w.seen;
        if (w.progress && *w.progress && w.seen - w.reported >= kProgressEvery) {
            w.reported = w.seen;
            (*w.progress)(w.seen);
        }
        if (secrets_.match(rel, false) == IgnoreMatch::Ignore) continue;
        if (generated_file_name(en.name)) continue;
        if (w.stack.match(rel, false) == IgnoreMatch::Ignore) continue;
        IndexedFile f;
        if (!qualify_file(rel, f, dir_fd.get(), dir_fd.get() >= 0 ? en.name.c_str() : nullptr)) {
            continue;
        }
        if (w.files.size() >= w.limit) {
            w.full = true;
            break;
        }
        w.files.push_back(std::move(f));
    }
    w.stack.pop();
}

Expected<RepoIndex> RepoIndex::scan(const fs::path& root, const ScanOptions& opts,
                                    const std::function<bool()>& cancel,
                                    const std::function<void(size_t)>& progress) {
    std::error_code ec;
    fs::path canon = fs::canonical(root, ec);
    if (ec) return make_error("workspace root " + root.string() + ": " + ec.message());
    if (!fs::is_directory(canon, ec)) {
        return make_error("workspace root " + root.string() + " is not a directory");
    }
    RepoIndex index;
    index.root_ = std::move(canon);
    index.opts_ = opts;
    index.root_rules_ = IgnoreRules::from_patterns(opts.exclude);
    index.root_rules_.append(load_ignore_file(index.root_ / ".git" / "info" / "exclude"));
    index.secrets_ = IgnoreRules::from_patterns(opts.secrets);

    Walk w;
    w.limit = opts.max_files;
    w.cancel = &cancel;
    w.progress = &progress;
    w.stack.push("", index.root_rules_);
    index.walk("", w);
    if (w.cancelled) return make_error("cancelled");
    if (progress) progress(w.seen);
    index.files_ = std::move(w.files);
    // The walk lists in path order already (directories sort as "name/"); find() and
    // update() depend on that order, so it is not left to the walk alone.
    std::sort(index.files_.begin(), index.files_.end(),
              [](const IndexedFile& a, const IndexedFile& b) { return a.path < b.path; });
    index.dir_rules_ = std::move(w.rules);
    return index;
}

const IndexedFile* RepoIndex::find(std::string_view rel_path) const {
    auto it = std::lower_bound(
        files_.begin(), files_.end(), rel_path,
        [](const IndexedFile& f, std::string_view p) { return std::string_view(f.path) < p; });
    if (it == files_.end() || it->path != rel_path) return nullptr;
    return &*it;
}

std::optional<std::string> RepoIndex::relative(const fs::path& abs) const {
    if (root_.empty()) return std::nullopt;
    std::string s = abs.string();
    if (s.starts_with("file://")) {
        s.erase(0, 7);
        if (!s.starts_with('/')) {  // "file://host/path": drop the authority
            const size_t slash = s.find('/');
            if (slash == std::string::npos) return std::nullopt;
            s.erase(0, slash);
        }
        s = percent_decode(s);
    }
    const fs::path p(s);
    if (!p.is_absolute()) return std::nullopt;
    auto under_root = [&](const fs::path& q) -> std::optional<std::string> {
        const fs::path rel = q.lexically_normal().lexically_relative(root_);
        if (rel.empty()) return std::nullopt;
        return clean_relative(rel.generic_string());
    };
    if (auto r = under_root(p)) return r;
    // The editor may reach the root through a symlinked path.
    std::error_code ec;
    const fs::path canon = fs::weakly_canonical(p, ec);
    if (ec) return std::nullopt;
    return under_root(canon);
}

bool RepoIndex::name_allowed(std::string_view rel_path, bool is_dir) const {
    for (size_t start = 0;;) {
        const size_t slash = rel_path.find('/', start);
        const bool last = slash == std::string_view::npos;
        const std::string_view prefix = last ? rel_path : rel_path.substr(0, slash);
        const std::string_view name = prefix.substr(start);
        const bool dir = !last || is_dir;
        if (dir && std::find(opts_.skip_dirs.begin(), opts_.skip_dirs.end(), name) !=
                       opts_.skip_dirs.end()) {
            return false;
        }
        if (secrets_.match(prefix, dir) == IgnoreMatch::Ignore) return false;
        if (!dir && generated_file_name(name)) return false;
        if (last) return true;
        start = slash + 1;
    }
}

bool RepoIndex::real_directory(const std::string& rel_dir) const {
    if (rel_dir.empty()) return true;
    std::error_code ec;
    const fs::path abs = root_ / rel_dir;
    return fs::weakly_canonical(abs, ec) == abs && !ec;
}

IgnoreRules RepoIndex::directory_rules(const std::string& dir) const {
    if (auto it = dir_rules_.find(dir); it != dir_rules_.end()) return it->second;
    return load_directory_rules(dir.empty() ? root_ : root_ / dir);
}

bool RepoIndex::path_allowed(std::string_view rel_path, bool is_dir) const {
    if (!name_allowed(rel_path, is_dir)) return false;
    IgnoreStack stack;
    stack.push("", root_rules_);
    stack.push("", directory_rules(""));
    for (size_t slash = rel_path.find('/'); slash != std::string_view::npos;
         slash = rel_path.find('/', slash + 1)) {
        const std::string dir(rel_path.substr(0, slash));
        if (stack.match(dir, true) == IgnoreMatch::Ignore) return false;
        stack.push(dir, directory_rules(dir));
    }
    return stack.match(rel_path, is_dir) != IgnoreMatch::Ignore;
}

bool RepoIndex::qualify_file(const std::string& rel_path, IndexedFile& out, int dir_fd,
                             const char* name) const {
    const fs::path abs = root_ / rel_path;
    // Opened without following a final symlink and without blocking (a fifo), relative to
    // the directory being listed when there is one: one path lookup per file, and the size
    // and time come from the open file.
    constexpr int kFlags = O_NOFOLLOW | O_NONBLOCK;
    Fd fd = name != nullptr ? Fd(dir_fd, name, kFlags) : Fd(abs, kFlags);
    struct stat st {};
    if (fd.get() < 0) {
        if (errno != ELOOP) return false;
        // A symlink: kept when its target is a regular file inside the root that passes the
        // same rules.
        std::error_code ec;
        const fs::path target = fs::canonical(abs, ec);  // fails on loops and dangling links
        if (ec) return false;
        const auto target_rel = relative(target);
        if (!target_rel || !path_allowed(*target_rel, false)) return false;
        fd = Fd(target, O_NONBLOCK);
        if (fd.get() < 0) return false;
    }
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size > opts_.max_file_bytes) return false;
    if (size > 0) {
        // Asking for no more than the file holds spares the read that would return EOF.
        const std::string head =
            read_head(fd.get(), static_cast<size_t>(std::min<uint64_t>(size, kHeadBytes)));
        if (classify_content(head, size > head.size()) != ContentKind::Text) return false;
    }
    out.path = rel_path;
    out.size = size;
    out.mtime_ns = mtime_ns(st);
    return true;
}

bool RepoIndex::eligible(std::string_view rel_path) const {
    if (root_.empty()) return false;
    const auto rel = clean_relative(rel_path);
    if (!rel || !path_allowed(*rel, false) || !real_directory(parent_of(*rel))) return false;
    const fs::path abs = root_ / *rel;
    struct stat st {};
    if (::lstat(abs.c_str(), &st) != 0) return errno == ENOENT;  // unsaved: the name decides
    if (S_ISLNK(st.st_mode)) {
        std::error_code ec;
        const fs::path target = fs::canonical(abs, ec);
        if (ec) return false;
        const auto target_rel = relative(target);
        if (!target_rel || !path_allowed(*target_rel, false)) return false;
        if (::stat(target.c_str(), &st) != 0) return false;
    }
    return S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) <= opts_.max_file_bytes;
}

Expected<std::string> RepoIndex::read(std::string_view rel_path) const {
    if (root_.empty()) return make_error("no workspace has been scanned");
    const auto rel = clean_relative(rel_path);
    if (!rel) return make_error("not a workspace-relative path: " + std::string(rel_path));
    if (!path_allowed(*rel, false)) return make_error(*rel + " is excluded from context");
    if (!real_directory(parent_of(*rel))) {
        return make_error(*rel + " lies behind a directory symlink");
    }
    const fs::path abs = root_ / *rel;
    struct stat st {};
    if (::lstat(abs.c_str(), &st) != 0) return make_error(*rel + ": " + std::strerror(errno));
    if (S_ISLNK(st.st_mode)) {
        std::error_code ec;
        const fs::path target = fs::canonical(abs, ec);
        if (ec) return make_error(*rel + ": " + ec.message());
        const auto target_rel = relative(target);
        if (!target_rel) return make_error(*rel + " links outside the workspace");
        if (!path_allowed(*target_rel, false)) {
            return make_error(*rel + " links to a file excluded from context");
        }
    }
    Fd fd(abs);
    if (fd.get() < 0) return make_error(*rel + ": " + std::strerror(errno));
    if (::fstat(fd.get(), &st) != 0) return make_error(*rel + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return make_error(*rel + " is not a regular file");
    if (static_cast<uint64_t>(st.st_size) > opts_.max_file_bytes) {
        return make_error(*rel + " is larger than " + std::to_string(opts_.max_file_bytes) +
                          " bytes");
    }
    // One byte more than fstat reported tells a file that grew past the limit since.
    std::string text = read_head(fd.get(), static_cast<size_t>(st.st_size) + 1);
    if (text.size() > static_cast<size_t>(st.st_size)) {
        // It grew: read on up to the limit (plus one byte to notice a file still too big).
        text += read_head(fd.get(), static_cast<size_t>(opts_.max_file_bytes) + 1 - text.size());
    }
    if (text.size() > opts_.max_file_bytes) {
        return make_error(*rel + " is larger than " + std::to_string(opts_.max_file_bytes) +
                          " bytes");
    }
    const std::string_view head = std::string_view(text).substr(0, kHeadBytes);
    switch (classify_content(head, text.size() > head.size())) {
        case ContentKind::Binary:
            return make_error(*rel + " is a binary file");
        case ContentKind::Generated:
            return make_error(*rel + " is a generated file");
        case ContentKind::Text:
            break;
    }
    return text;
}

bool RepoIndex::rescan_subtree(const std::string& dir) {
    std::vector<IndexedFile> removed;
    if (dir.empty()) {
        removed = std::move(files_);
        files_.clear();
    } else {
        // What was a file of that name, then everything below "dir/" (a contiguous range:
        // "dir-x" sorts between "dir" and "dir/a", so "dir" itself is looked up apart).
        if (const IndexedFile* f = find(dir)) {
            removed.push_back(*f);
            files_.erase(files_.begin() + (f - files_.data()));
        }
        const std::string prefix = dir + "/";
        auto first =
            std::lower_bound(files_.begin(), files_.end(), prefix,
                             [](const IndexedFile& f, const std::string& p) { return f.path < p; });
        auto last = std::find_if(first, files_.end(),
                                 [&](const IndexedFile& f) { return !f.path.starts_with(prefix); });
        removed.insert(removed.end(), std::make_move_iterator(first),
                       std::make_move_iterator(last));
        files_.erase(first, last);
    }
    auto changed = [&](const std::vector<IndexedFile>& added) {
        return !std::equal(removed.begin(), removed.end(), added.begin(), added.end(), same_file);
    };
    for (auto it = dir_rules_.begin(); it != dir_rules_.end();) {
        it = within(it->first, dir) ? dir_rules_.erase(it) : std::next(it);
    }
    if (!dir.empty() && !path_allowed(dir, true)) return changed({});
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(dir.empty() ? root_ : root_ / dir, ec)) ||
        !real_directory(dir)) {
        return changed({});
    }

    Walk w;
    w.limit = opts_.max_files > files_.size() ? opts_.max_files - files_.size() : 0;
    w.stack.push("", root_rules_);
    if (!dir.empty()) {
        w.stack.push("", directory_rules(""));
        for (size_t slash = dir.find('/'); slash != std::string::npos;
             slash = dir.find('/', slash + 1)) {
            const std::string parent = dir.substr(0, slash);
            w.stack.push(parent, directory_rules(parent));
        }
    }
    walk(dir, w);
    for (auto& [d, r] : w.rules) dir_rules_[d] = std::move(r);
    const bool result = changed(w.files);
    files_.insert(files_.end(), w.files.begin(), w.files.end());
    std::sort(files_.begin(), files_.end(),
              [](const IndexedFile& a, const IndexedFile& b) { return a.path < b.path; });
    return result;
}

bool RepoIndex::update(std::string_view rel_path) {
    if (root_.empty()) return false;
    const auto rel = clean_relative(rel_path);
    if (!rel) return false;

    const std::string_view name = basename_of(*rel);
    if (*rel == ".git/info/exclude") {
        root_rules_ = IgnoreRules::from_patterns(opts_.exclude);
        root_rules_.append(load_ignore_file(root_ / ".git" / "info" / "exclude"));
        return rescan_subtree("");
    }
    if (name == ".gitignore" || name == ".ignore") {
        const std::string dir = parent_of(*rel);
        if (!dir.empty() && !path_allowed(dir, true)) return false;
        return rescan_subtree(dir);
    }

    const fs::path abs = root_ / *rel;
    struct stat st {};
    const bool exists = ::lstat(abs.c_str(), &st) == 0;
    const IndexedFile* cur = find(*rel);
    if (exists ? S_ISDIR(st.st_mode) : cur == nullptr) {
        // A directory (created, or changed as a whole), or something gone that was not an
        // indexed file (perhaps a directory): judge the subtree again.
        return rescan_subtree(*rel);
    }
    IndexedFile f;
    const bool ok = exists && path_allowed(*rel, false) && real_directory(parent_of(*rel)) &&
                    qualify_file(*rel, f);
    if (ok && cur != nullptr) {
        if (same_file(*cur, f)) return false;
        files_[static_cast<size_t>(cur - files_.data())] = std::move(f);
        return true;
    }
    if (ok) {
        if (files_.size() >= opts_.max_files) return false;
        auto at =
            std::lower_bound(files_.begin(), files_.end(), f.path,
                             [](const IndexedFile& a, const std::string& p) { return a.path < p; });
        files_.insert(at, std::move(f));
        return true;
    }
    if (cur != nullptr) {
        files_.erase(files_.begin() + (cur - files_.data()));
        return true;
    }
    return false;
}

}  // namespace hearth
