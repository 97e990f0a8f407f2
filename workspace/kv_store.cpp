// The on-disk prefix KV store; the format, directories and policies are described in
// kv_store.h and docs/kv-cache-format.md.

#include "kv_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

namespace hearth {

static_assert(std::endian::native == std::endian::little,
              "the .hkv format and its key hash are little-endian and written as is");

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kMagic[8] = {'H', 'E', 'A', 'R', 'T', 'H', 'K', 'V'};
constexpr size_t kHeaderChecksumOffset = 76;
constexpr const char* kExt = ".hkv";
constexpr size_t kKeyHexLen = 32;
constexpr int64_t kStaleTempSeconds = 3600;
constexpr auto kLockTimeout = std::chrono::seconds(2);
constexpr double kHalfLifeSeconds = 86400.0;
// Sanity bounds on shapes, so that no size computed from them can overflow 64 bits.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxRowElems = 1 << 20;
constexpr int64_t kMaxChunkTokens = 1 << 20;
constexpr int64_t kMaxPrefixTokens = INT32_MAX;

// ---------------------------------------------------------------------------------------
// Small POSIX helpers

std::string errno_text(int err) {
    return std::error_code(err, std::generic_category()).message();
}

int64_t now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }

  private:
    int fd_ = -1;
};

void put_u32(uint8_t* p, uint32_t v) {
    std::memcpy(p, &v, 4);
}
void put_u64(uint8_t* p, uint64_t v) {
    std::memcpy(p, &v, 8);
}
uint32_t get_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
uint64_t get_u64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

uint64_t random_u64() {
    uint64_t v = 0;
    if (::getrandom(&v, sizeof v, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof v)) {
        static std::atomic<uint64_t> counter{0};
        v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
            (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
    }
    return v;
}

// Moves every byte of `iov` through `op` (readv or writev), retrying short transfers and
// EINTR; `op` returning 0 first (end of file, or a write that made no progress) is the
// error `stalled`.
Status transfer_all(int fd, std::vector<iovec> iov, ssize_t (*op)(int, const iovec*, int),
                    const char* stalled) {
    size_t i = 0;
    while (i < iov.size() && iov[i].iov_len == 0) ++i;
    while (i < iov.size()) {
        const int count = static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX));
        const ssize_t n = op(fd, &iov[i], count);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(errno_text(errno));
        }
        if (n == 0) return make_error(stalled);
        size_t left = static_cast<size_t>(n);
        while (left > 0) {
            if (left >= iov[i].iov_len) {
                left -= iov[i].iov_len;
                ++i;
            } else {
                iov[i].iov_base = static_cast<uint8_t*>(iov[i].iov_base) + left;
                iov[i].iov_len -= left;
                left = 0;
            }
        }
        while (i < iov.size() && iov[i].iov_len == 0) ++i;
    }
    return Status::success();
}

Status write_all(int fd, std::vector<iovec> iov) {
    return transfer_all(fd, std::move(iov), ::writev, "write made no progress");
}

// End of file before every byte is filled is an error.
Status read_all(int fd, std::vector<iovec> iov) {
    return transfer_all(fd, std::move(iov), ::readv, "file is shorter than it says");
}

Expected<std::string> read_small_file(int dirfd, const char* name, size_t max_bytes) {
    Fd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return make_error(std::string(name) + ": " + errno_text(errno));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return make_error(errno_text(errno));
    if (!S_ISREG(st.st_mode)) return make_error(std::string(name) + ": not a regular file");
    if (static_cast<uint64_t>(st.st_size) > max_bytes) {
        return make_error(std::string(name) + ": too large");
    }
    std::string text(static_cast<size_t>(st.st_size), '\0');
    HEARTH_TRY(read_all(fd.get(), {iovec{text.data(), text.size()}}));
    return text;
}

bool is_temp_name(std::string_view name) {
    return name.starts_with(".tmp-");
}

// Creates `.tmp-<pid>-<random><ext>` in dirfd, mode 0600, never following or reusing a name.
Expected<std::pair<Fd, std::string>> create_temp(int dirfd, const char* ext) {
    for (int attempt = 0; attempt < 16; ++attempt) {
        std::string name = ".tmp-" + std::to_string(::getpid()) + "-" + hex64(random_u64()) + ext;
        int fd = ::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                          0600);
        if (fd >= 0) return std::make_pair(Fd(fd), std::move(name));
        if (errno != EEXIST && errno != EINTR) return make_error("temp file: " + errno_text(errno));
    }
    return make_error("temp file: no free name");
}

// Writes `bytes` to `name` in dirfd through a temp file and rename.
Status write_file_atomic(int dirfd, const char* name, const std::string& bytes) {
    auto tmp = create_temp(dirfd, ".json");
    if (!tmp) return tmp.error();
    auto& [fd, tmp_name] = *tmp;
    Status st = write_all(fd.get(), {iovec{const_cast<char*>(bytes.data()), bytes.size()}});
    if (st.ok() && ::close(fd.release()) != 0) st = make_error(errno_text(errno));
    if (st.ok() && ::renameat(dirfd, tmp_name.c_str(), dirfd, name) != 0) {
        st = make_error(errno_text(errno));
    }
    if (!st.ok()) {
        fd.reset();
        ::unlinkat(dirfd, tmp_name.c_str(), 0);
        return make_error(std::string(name) + ": " + st.error().message);
    }
    return Status::success();
}

// flock(LOCK_EX) polled until `timeout` (flock itself has no timeout, and a signal-based one
// is not safe with other threads). timeout 0: one non-blocking try.
bool lock_exclusive(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto pause = std::chrono::microseconds(500);
    for (;;) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) return false;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
    }
}

// An exclusive flock on a workspace's `lock` file, released when destroyed.
class WorkspaceLock {
  public:
    // Opens (creating) <dirfd>/lock and tries to lock it within `timeout`.
    static WorkspaceLock take(int dirfd, std::chrono::milliseconds timeout) {
        WorkspaceLock l;
        l.fd_ = Fd(::openat(dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (l.fd_.valid() && lock_exclusive(l.fd_.get(), timeout)) l.held_ = true;
        return l;
    }
    // Locks an already open lock file (kept open by the store).
    static WorkspaceLock take_fd(int fd, std::chrono::milliseconds timeout) {
        WorkspaceLock l;
        l.borrowed_ = fd;
        if (lock_exclusive(fd, timeout)) l.held_ = true;
        return l;
    }
    WorkspaceLock(WorkspaceLock&& o) noexcept
        : fd_(std::move(o.fd_)),
          borrowed_(std::exchange(o.borrowed_, -1)),
          held_(std::exchange(o.held_, false)) {}
    WorkspaceLock& operator=(WorkspaceLock&&) = delete;
    ~WorkspaceLock() {
        if (held_) ::flock(fd_.valid() ? fd_.get() : borrowed_, LOCK_UN);
    }
    bool held() const { return held_; }

  private:
    WorkspaceLock() = default;
    Fd fd_;
    int borrowed_ = -1;
    bool held_ = false;
};

// ---------------------------------------------------------------------------------------
// Keys and sizes

size_t elem_bytes(KVDType t) {
    return t == KVDType::F16 ? 2 : 4;
}

bool valid_model(const KVModelKey& m) {
    return (m.dtype == KVDType::F32 || m.dtype == KVDType::F16) && m.n_layer > 0 &&
           m.n_layer <= kMaxLayers && m.row_elems > 0 && m.row_elems <= kMaxRowElems;
}

// Bytes of the KV rows of one chunk.
uint64_t chunk_row_bytes(const KVModelKey& m, int64_t chunk) {
    return static_cast<uint64_t>(m.n_layer) * 2 * static_cast<uint64_t>(chunk) *
           static_cast<uint64_t>(m.row_elems) * elem_bytes(m.dtype);
}

uint64_t chunk_file_bytes(const KVModelKey& m, int64_t chunk, int64_t end) {
    return kKVHeaderBytes + 4 * static_cast<uint64_t>(end) + chunk_row_bytes(m, chunk);
}

// XXH3-128 of the model key, chunk size and a growing token prefix: the digest at every
// chunk boundary is that chunk's key, so hashing a whole prompt is linear.
class PrefixHasher {
  public:
    PrefixHasher(const KVModelKey& m, int32_t chunk) : state_(XXH3_createState()) {
        if (!state_) throw std::bad_alloc();
        XXH3_128bits_reset(state_);
        uint8_t head[24];
        put_u64(head, m.fingerprint);
        put_u32(head + 8, static_cast<uint32_t>(m.dtype));
        put_u32(head + 12, static_cast<uint32_t>(m.n_layer));
        put_u32(head + 16, static_cast<uint32_t>(m.row_elems));
        put_u32(head + 20, static_cast<uint32_t>(chunk));
        XXH3_128bits_update(state_, head, sizeof head);
    }
    ~PrefixHasher() { XXH3_freeState(state_); }
    PrefixHasher(const PrefixHasher&) = delete;
    PrefixHasher& operator=(const PrefixHasher&) = delete;

    void update(std::span<const int32_t> tokens) {
        if (!tokens.empty()) XXH3_128bits_update(state_, tokens.data(), tokens.size_bytes());
    }
    std::string key() const {
        const XXH128_hash_t h = XXH3_128bits_digest(state_);
        return hex64(h.high64) + hex64(h.low64);
    }

  private:
    XXH3_state_t* state_;
};

std::string chunk_key(const KVModelKey& m, int32_t chunk, std::span<const int32_t> prefix) {
    PrefixHasher h(m, chunk);
    h.update(prefix);
    return h.key();
}

std::string file_name(const std::string& key) {
    return key + kExt;
}

bool is_entry_name(std::string_view name, std::string* key) {
    if (name.size() != kKeyHexLen + 4 || !name.ends_with(kExt)) return false;
    for (size_t i = 0; i < kKeyHexLen; ++i) {
        const char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    if (key) *key = std::string(name.substr(0, kKeyHexLen));
    return true;
}

// ---------------------------------------------------------------------------------------
// Directory scans

struct DirEntry {
    std::string name;
    struct stat st;
};

// Every name in dirfd with its lstat (entries that vanish meanwhile are skipped).
std::vector<DirEntry> list_dir(int dirfd) {
    std::vector<DirEntry> out;
    // A new open file description: a dup would share the read offset with other threads
    // listing the same directory.
    int own = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (own < 0) return out;
    DIR* d = ::fdopendir(own);
    if (!d) {
        ::close(own);
        return out;
    }
    while (dirent* e = ::readdir(d)) {
        const std::string_view name = e->d_name;
        if (name == "." || name == "..") continue;
        DirEntry de;
        de.name = std::string(name);
        if (::fstatat(dirfd, e->d_name, &de.st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        out.push_back(std::move(de));
    }
    ::closedir(d);
    return out;
}

struct FileInfo {
    std::string key;
    uint64_t bytes = 0;
    int64_t mtime = 0;
};

// The .hkv files of a workspace directory. A non-regular file under an entry name (a
// symlink, a directory) is never used; it is removed when `remove_odd` is set.
std::vector<FileInfo> scan_entries(int dirfd, bool remove_odd) {
    std::vector<FileInfo> out;
    for (const DirEntry& de : list_dir(dirfd)) {
        std::string key;
        if (!is_entry_name(de.name, &key)) continue;
        if (!S_ISREG(de.st.st_mode)) {
            if (remove_odd && S_ISLNK(de.st.st_mode)) {
                spdlog::warn("kv cache: removing symlink {}", de.name);
                ::unlinkat(dirfd, de.name.c_str(), 0);
            }
            continue;
        }
        out.push_back({std::move(key), static_cast<uint64_t>(de.st.st_size),
                       static_cast<int64_t>(de.st.st_mtime)});
    }
    return out;
}

// Removes temp files whose writer is dead, or that are older than an hour (a pid can be
// reused, or belong to another pid namespace).
void remove_stale_temps(int dirfd) {
    const int64_t now = now_unix();
    for (const DirEntry& de : list_dir(dirfd)) {
        if (!is_temp_name(de.name) || !S_ISREG(de.st.st_mode)) continue;
        const long pid = std::strtol(de.name.c_str() + 5, nullptr, 10);
        const bool dead = pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
        const bool old = now - static_cast<int64_t>(de.st.st_mtime) > kStaleTempSeconds;
        if (dead || old) {
            spdlog::debug("kv cache: removing stale temp file {}", de.name);
            ::unlinkat(dirfd, de.name.c_str(), 0);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The advisory index

struct IndexEntry {
    uint64_t hits = 0;
    int64_t last_used = 0;
    uint64_t bytes = 0;
    uint32_t pos = 0;
    uint32_t n_tokens = 0;
    std::string prev;  // key of the chunk ending at pos; "" when pos == 0
};
using Index = std::map<std::string, IndexEntry>;

template <class T>
bool json_get(const json& obj, const char* name, T& out) {
    auto it = obj.find(name);
    if (it == obj.end()) return false;
    if constexpr (std::is_same_v<T, std::string>) {
        if (!it->is_string()) return false;
        out = it->template get<std::string>();
    } else if constexpr (std::is_signed_v<T>) {
        if (!it->is_number_integer()) return false;
        out = static_cast<T>(it->template get<int64_t>());
    } else {
        if (!it->is_number_unsigned()) return false;
        out = static_cast<T>(it->template get<uint64_t>());
    }
    return true;
}

// index.json as stored; an unreadable or malformed file gives an empty index (rebuilt).
Index parse_index(int dirfd) {
    Index idx;
    auto text = read_small_file(dirfd, "index.json", 64u << 20);
    if (!text) return idx;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        spdlog::debug("kv cache: index.json unreadable, rebuilding it");
        return idx;
    }
    uint64_t version = 0;
    auto entries = j.find("entries");
    if (!json_get(j, "version", version) || version != 1 || entries == j.end() ||
        !entries->is_object()) {
        return idx;
    }
    for (auto it = entries->begin(); it != entries->end(); ++it) {
        if (!is_entry_name(it.key() + kExt, nullptr) || !it->is_object()) continue;
        IndexEntry e;
        if (!json_get(*it, "hits", e.hits) || !json_get(*it, "last_used", e.last_used) ||
            !json_get(*it, "bytes", e.bytes) || !json_get(*it, "pos", e.pos) ||
            !json_get(*it, "tokens", e.n_tokens) || !json_get(*it, "prev", e.prev)) {
            continue;
        }
        if (e.pos > 0 && !is_entry_name(e.prev + kExt, nullptr)) continue;
        idx.emplace(it.key(), std::move(e));
    }
    return idx;
}

std::string index_json(const Index& idx) {
    json entries = json::object();
    for (const auto& [key, e] : idx) {
        entries[key] = {{"hits", e.hits}, {"last_used", e.last_used}, {"bytes", e.bytes},
                        {"pos", e.pos},   {"tokens", e.n_tokens},     {"prev", e.prev}};
    }
    return json{{"version", 1}, {"entries", std::move(entries)}}.dump() + "\n";
}

// The index entry of a file not in index.json, from its header and token ids: also checks
// that the file's name is the hash of what it holds (a misplaced file is bad).
Expected<IndexEntry> entry_from_file(int dirfd, const std::string& key) {
    const std::string name = file_name(key);
    Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return make_error(errno_text(errno));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return make_error("not a file");
    std::array<uint8_t, kKVHeaderBytes> hb;
    if (static_cast<uint64_t>(st.st_size) < kKVHeaderBytes) return make_error("truncated header");
    HEARTH_TRY(read_all(fd.get(), {iovec{hb.data(), hb.size()}}));
    auto h = decode_kv_header(hb);
    if (!h) return h.error();
    KVModelKey m{h->fingerprint, static_cast<KVDType>(h->dtype), static_cast<int32_t>(h->n_layer),
                 static_cast<int32_t>(h->row_elems)};
    if (h->dtype > 1 || h->n_layer == 0 || h->n_layer > kMaxLayers || h->row_elems == 0 ||
        h->row_elems > kMaxRowElems || h->chunk_tokens == 0 || h->chunk_tokens > kMaxChunkTokens ||
        h->n_tokens != h->chunk_tokens || h->pos % h->chunk_tokens != 0 ||
        static_cast<uint64_t>(h->pos) + h->n_tokens != h->prefix_tokens ||
        h->prefix_tokens > kMaxPrefixTokens) {
        return make_error("inconsistent header");
    }
    const uint64_t size = chunk_file_bytes(m, h->chunk_tokens, h->prefix_tokens);
    if (h->payload_bytes != size - kKVHeaderBytes || static_cast<uint64_t>(st.st_size) != size) {
        return make_error("size does not match the header");
    }
    std::vector<int32_t> tokens(h->prefix_tokens);
    HEARTH_TRY(read_all(fd.get(), {iovec{tokens.data(), tokens.size() * 4}}));
    PrefixHasher hasher(m, static_cast<int32_t>(h->chunk_tokens));
    IndexEntry e;
    e.pos = h->pos;
    e.n_tokens = h->n_tokens;
    e.bytes = size;
    e.last_used = static_cast<int64_t>(st.st_mtime);
    hasher.update(std::span<const int32_t>(tokens).first(h->pos));
    if (h->pos > 0) e.prev = hasher.key();
    hasher.update(std::span<const int32_t>(tokens).subspan(h->pos));
    if (hasher.key() != key) return make_error("file name is not the hash of its tokens");
    return e;
}

// index.json reconciled with the directory: call with the workspace lock held. Removes files
// whose header is bad. `bad` counts them.
Index load_index(int dirfd, std::atomic<uint64_t>* bad) {
    Index disk = parse_index(dirfd);
    Index out;
    for (FileInfo& f : scan_entries(dirfd, true)) {
        auto it = disk.find(f.key);
        if (it != disk.end() && it->second.bytes == f.bytes) {
            out.emplace(f.key, std::move(it->second));
            continue;
        }
        auto e = entry_from_file(dirfd, f.key);
        if (!e) {
            spdlog::warn("kv cache: removing bad file {}: {}", file_name(f.key), e.error().message);
            ::unlinkat(dirfd, file_name(f.key).c_str(), 0);
            if (bad) ++*bad;
            continue;
        }
        out.emplace(f.key, std::move(*e));
    }
    return out;
}

Status save_index(int dirfd, const Index& idx) {
    return write_file_atomic(dirfd, "index.json", index_json(idx));
}

// ---------------------------------------------------------------------------------------
// Eviction

struct Candidate {
    size_t ws;  // index into the workspaces taking part
    std::string key;
    const IndexEntry* e;
    bool removed = false;
    bool reachable = true;
    double value = 0;
};

double entry_value(const IndexEntry& e, int64_t now) {
    const double age = static_cast<double>(std::max<int64_t>(0, now - e.last_used));
    const double bytes = static_cast<double>(std::max<uint64_t>(1, e.bytes));
    return (1.0 + static_cast<double>(e.hits)) * std::exp2(-age / kHalfLifeSeconds) *
           (static_cast<double>(e.n_tokens) / bytes);
}

// Marks each candidate reachable when its chain of preceding chunks down to position 0 is
// all present in its workspace.
void compute_reachability(std::vector<Candidate>& c) {
    std::map<std::pair<size_t, std::string_view>, size_t> by_key;
    for (size_t i = 0; i < c.size(); ++i) {
        if (!c[i].removed) by_key[{c[i].ws, c[i].key}] = i;
    }
    std::vector<int8_t> state(c.size(), -1);  // -1 unknown, 0 no, 1 yes
    for (size_t i = 0; i < c.size(); ++i) {
        if (c[i].removed || state[i] >= 0) continue;
        std::vector<size_t> chain;
        size_t j = i;
        int8_t result = 0;
        for (;;) {
            if (state[j] >= 0) {
                result = state[j];
                break;
            }
            chain.push_back(j);
            const IndexEntry& e = *c[j].e;
            if (e.pos == 0) {
                result = 1;
                break;
            }
            auto it = by_key.find({c[j].ws, e.prev});
            // The predecessor must end where this chunk starts (positions strictly decrease,
            // so the walk ends).
            if (it == by_key.end() || c[it->second].e->pos + c[it->second].e->n_tokens != e.pos) {
                result = 0;
                break;
            }
            j = it->second;
        }
        for (size_t k : chain) state[k] = result;
    }
    for (size_t i = 0; i < c.size(); ++i) c[i].reachable = state[i] == 1;
}

// Removes candidates lowest value first (unreachable ones count as 0) until `total` fits
// `budget`. remove(i) deletes candidate i's file and says whether it is gone.
void evict_lowest(std::vector<Candidate>& c, uint64_t& total, uint64_t budget, int64_t now,
                  const std::function<bool(const Candidate&)>& remove) {
    for (Candidate& x : c) x.value = entry_value(*x.e, now);
    compute_reachability(c);
    while (total > budget) {
        size_t best = c.size();
        for (size_t i = 0; i < c.size(); ++i) {
            if (c[i].removed) continue;
            if (best == c.size()) {
                best = i;
                continue;
            }
            const double vi = c[i].reachable ? c[i].value : 0.0;
            const double vb = c[best].reachable ? c[best].value : 0.0;
            if (vi < vb || (vi == vb && c[i].e->pos > c[best].e->pos)) best = i;
        }
        if (best == c.size()) break;
        c[best].removed = true;
        if (remove(c[best])) total -= std::min(total, c[best].e->bytes);
        compute_reachability(c);
    }
}

// ---------------------------------------------------------------------------------------
// Directories

std::string sanitize_basename(const fs::path& p) {
    std::string base = p.filename().string();
    if (base.empty()) base = p.parent_path().filename().string();  // "/a/b/" -> "b"
    std::string out;
    for (char ch : base) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        out += ok ? ch : '_';
        if (out.size() >= 48) break;
    }
    if (out.empty() || out == "." || out == "..") out = "root";
    if (out[0] == '.') out[0] = '_';  // never a hidden name, never a temp-file name
    return out;
}

fs::path canonical_workspace(const fs::path& ws) {
    std::error_code ec;
    fs::path abs = fs::absolute(ws, ec);
    if (ec) abs = ws;
    fs::path canon = fs::weakly_canonical(abs, ec);
    if (ec) canon = abs.lexically_normal();
    // "/a/b/" and "/a/b" name the same folder.
    std::string s = canon.string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
}

std::string workspace_dir_name(const fs::path& ws) {
    if (ws.empty()) return "default";
    const std::string canon = canonical_workspace(ws).string();
    return sanitize_basename(canon) + "-" + hex64(XXH3_64bits(canon.data(), canon.size()));
}

// mkdir -p with mode 0700 for every directory created; `path` itself, when it exists
// already and belongs to us, is chmod'ed to 0700.
Status make_private_dirs(const fs::path& path) {
    fs::path cur;
    for (const fs::path& part : path) {
        cur /= part;
        if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
            return make_error(cur.string() + ": " + errno_text(errno));
        }
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return make_error(path.string() + ": " + errno_text(errno));
    if (!S_ISDIR(st.st_mode)) return make_error(path.string() + ": not a directory");
    if (st.st_uid == ::geteuid() && (st.st_mode & 07777) != 0700 &&
        ::chmod(path.c_str(), 0700) != 0) {
        return make_error(path.string() + ": chmod: " + errno_text(errno));
    }
    return Status::success();
}

// Opens a directory that must be ours and not a symlink; chmods it to 0700.
Expected<Fd> open_private_dir(int parent, const std::string& name, bool create) {
    if (create && ::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error(name + ": " + errno_text(errno));
    }
    Fd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) {
        const int err = errno;
        struct stat st;
        if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
            return make_error(name + " is a symlink; refusing to use it");
        }
        return make_error(name + ": " + errno_text(err));
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return make_error(name + ": " + errno_text(errno));
    // Whoever can write here can plant well-formed entries with rows of their choosing.
    if (st.st_uid != ::geteuid())
        return make_error(name + " belongs to another user; refusing to use it");
    if ((st.st_mode & 07777) != 0700 && ::fchmod(fd.get(), 0700) != 0) {
        return make_error(name + ": chmod: " + errno_text(errno));
    }
    return fd;
}

Expected<Fd> open_dir_readonly(const fs::path& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return make_error(path.string() + ": " + errno_text(errno));
    return fd;
}

// Removes a workspace's entries and index under its lock; fills `info` with what it held.
Status clear_dir(int dirfd, int lock_fd, const std::string& label, KVWorkspaceInfo* info) {
    WorkspaceLock lock = lock_fd >= 0 ? WorkspaceLock::take_fd(lock_fd, kLockTimeout)
                                      : WorkspaceLock::take(dirfd, kLockTimeout);
    if (!lock.held()) return make_error(label + ": busy (could not take its lock)");
    Status result;
    for (const FileInfo& f : scan_entries(dirfd, true)) {
        if (::unlinkat(dirfd, file_name(f.key).c_str(), 0) != 0 && errno != ENOENT) {
            result = make_error(label + ": " + file_name(f.key) + ": " + errno_text(errno));
            continue;
        }
        if (info) {
            ++info->entries;
            info->bytes += f.bytes;
        }
    }
    if (::unlinkat(dirfd, "index.json", 0) != 0 && errno != ENOENT && result.ok()) {
        result = make_error(label + ": index.json: " + errno_text(errno));
    }
    return result;
}

std::string workspace_path_of(int dirfd) {
    auto text = read_small_file(dirfd, "workspace.json", 1 << 20);
    if (!text) return "";
    json j = json::parse(*text, nullptr, false);
    std::string ws;
    if (!j.is_discarded() && j.is_object()) json_get(j, "workspace", ws);
    return ws;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Header encoding

std::array<uint8_t, kKVHeaderBytes> encode_kv_header(const KVFileHeader& h) {
    std::array<uint8_t, kKVHeaderBytes> b{};
    std::memcpy(b.data(), kMagic, 8);
    put_u32(&b[8], h.version);
    put_u32(&b[12], h.header_bytes);
    put_u64(&b[16], h.fingerprint);
    put_u32(&b[24], h.dtype);
    put_u32(&b[28], h.n_layer);
    put_u32(&b[32], h.row_elems);
    put_u32(&b[36], h.chunk_tokens);
    put_u32(&b[40], h.pos);
    put_u32(&b[44], h.n_tokens);
    put_u32(&b[48], h.prefix_tokens);
    put_u64(&b[52], h.created_unix);
    put_u64(&b[60], h.payload_bytes);
    put_u64(&b[68], h.payload_checksum);
    put_u64(&b[kHeaderChecksumOffset], XXH3_64bits(b.data(), kHeaderChecksumOffset));
    return b;
}

Expected<KVFileHeader> decode_kv_header(std::span<const uint8_t> b) {
    if (b.size() < kKVHeaderBytes) return make_error("truncated header");
    if (std::memcmp(b.data(), kMagic, 8) != 0) return make_error("bad magic");
    KVFileHeader h;
    h.version = get_u32(&b[8]);
    if (h.version != kKVFormatVersion) {
        return make_error("format version " + std::to_string(h.version) + ", expected " +
                          std::to_string(kKVFormatVersion));
    }
    h.header_bytes = get_u32(&b[12]);
    if (h.header_bytes != kKVHeaderBytes) return make_error("bad header size");
    if (get_u64(&b[kHeaderChecksumOffset]) != XXH3_64bits(b.data(), kHeaderChecksumOffset)) {
        return make_error("header checksum mismatch");
    }
    h.fingerprint = get_u64(&b[16]);
    h.dtype = get_u32(&b[24]);
    h.n_layer = get_u32(&b[28]);
    h.row_elems = get_u32(&b[32]);
    h.chunk_tokens = get_u32(&b[36]);
    h.pos = get_u32(&b[40]);
    h.n_tokens = get_u32(&b[44]);
    h.prefix_tokens = get_u32(&b[48]);
    h.created_unix = get_u64(&b[52]);
    h.payload_bytes = get_u64(&b[60]);
    h.payload_checksum = get_u64(&b[68]);
    return h;
}

std::string kv_chunk_file_name(const KVModelKey& model, int32_t chunk_tokens,
                               std::span<const int32_t> prefix) {
    return file_name(chunk_key(model, chunk_tokens, prefix));
}

fs::path kv_workspace_dir(const fs::path& root, const fs::path& workspace) {
    return root / "workspaces" / workspace_dir_name(workspace);
}

fs::path default_cache_root() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    // The XDG spec says a relative value is invalid and must be ignored.
    if (xdg && xdg[0] == '/') return fs::path(xdg) / "hearth";
    const char* home = std::getenv("HOME");
    if (home && home[0] != '\0') return fs::path(home) / ".cache" / "hearth";
    return {};
}

// ---------------------------------------------------------------------------------------
// KVStore

struct KVStore::Impl {
    KVStoreOptions opts;
    fs::path root;
    fs::path dir;
    std::string dir_name;
    Fd root_ws_fd;  // <root>/workspaces
    Fd dir_fd;
    Fd lock_fd;
    int32_t chunk = 256;

    std::atomic<uint64_t> hits{0}, misses{0}, writes{0}, write_failures{0}, dropped{0}, evicted{0},
        bad_files{0};

    // Hit counts and last use not yet merged into index.json.
    struct Use {
        uint64_t hits = 0;
        int64_t last_used = 0;
    };
    std::mutex use_mu;
    std::unordered_map<std::string, Use> pending_use;

    // Serializes this store's flock sections (flock does not exclude threads sharing a fd).
    std::mutex lock_mu;

    struct Job {
        KVModelKey model;
        std::vector<int32_t> prefix;
        KVSnapshot rows;
        size_t bytes = 0;
    };
    std::mutex q_mu;
    std::condition_variable q_cv;     // work arrived or stop
    std::condition_variable idle_cv;  // queue drained
    std::deque<Job> queue;
    size_t queued_bytes = 0;  // queued plus in flight
    bool busy = false;
    bool stop = false;
    std::thread writer;

    bool writing_enabled() const {
        return opts.workspace_max_bytes > 0 && opts.total_max_bytes > 0;
    }

    // Whether the chunk file `key` exists with the size `expected`.
    bool exists(const std::string& key, uint64_t expected) const {
        struct stat st;
        return ::fstatat(dir_fd.get(), file_name(key).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == expected;
    }

    void note_use(const std::string& key) {
        std::lock_guard<std::mutex> g(use_mu);
        Use& u = pending_use[key];
        ++u.hits;
        u.last_used = now_unix();
    }

    void merge_pending(Index& idx) {
        std::unordered_map<std::string, Use> uses;
        {
            std::lock_guard<std::mutex> g(use_mu);
            uses.swap(pending_use);
        }
        for (auto& [key, u] : uses) {
            auto it = idx.find(key);
            if (it == idx.end()) continue;
            it->second.hits += u.hits;
            it->second.last_used = std::max(it->second.last_used, u.last_used);
        }
    }

    // Removes a bad file, unless the name meanwhile holds another file (a writer renamed a
    // good one into place after we opened ours).
    void remove_bad(const std::string& key, int fd, const std::string& why) {
        spdlog::warn("kv cache: removing bad file {}: {}", file_name(key), why);
        ++bad_files;
        struct stat mine, now;
        if (fd >= 0 && ::fstat(fd, &mine) == 0 &&
            (::fstatat(dir_fd.get(), file_name(key).c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
             now.st_dev != mine.st_dev || now.st_ino != mine.st_ino)) {
            return;
        }
        ::unlinkat(dir_fd.get(), file_name(key).c_str(), 0);
    }

    // Reads chunk `c` of a snapshot being assembled: the chunk [pos, pos + chunk) of
    // `tokens`, its rows placed at chunk index c of `snap` (which holds `n_chunks` chunks).
    // Returns "" or why the file is bad; a missing file is "missing".
    std::string read_chunk(const KVModelKey& m, std::span<const int32_t> tokens,
                           const std::string& key, int32_t pos, size_t c, size_t n_chunks,
                           KVSnapshot& snap, Fd& fd) {
        fd = Fd(::openat(dir_fd.get(), file_name(key).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd.valid()) {
            if (errno == ENOENT) return "missing";
            return "open: " + errno_text(errno);
        }
        struct stat st;
        if (::fstat(fd.get(), &st) != 0) return "fstat: " + errno_text(errno);
        if (!S_ISREG(st.st_mode)) return "not a regular file";
        const int64_t end = static_cast<int64_t>(pos) + chunk;
        const uint64_t expected = chunk_file_bytes(m, chunk, end);
        if (static_cast<uint64_t>(st.st_size) < kKVHeaderBytes) return "shorter than a header";
        std::array<uint8_t, kKVHeaderBytes> hb;
        if (Status s = read_all(fd.get(), {iovec{hb.data(), hb.size()}}); !s) {
            return s.error().message;
        }
        auto h = decode_kv_header(hb);
        if (!h) return h.error().message;
        if (h->fingerprint != m.fingerprint) return "other model fingerprint";
        if (h->dtype != static_cast<uint32_t>(m.dtype)) return "other KV dtype";
        if (h->n_layer != static_cast<uint32_t>(m.n_layer) ||
            h->row_elems != static_cast<uint32_t>(m.row_elems)) {
            return "other KV shape";
        }
        if (h->chunk_tokens != static_cast<uint32_t>(chunk) ||
            h->pos != static_cast<uint32_t>(pos) || h->n_tokens != static_cast<uint32_t>(chunk) ||
            h->prefix_tokens != static_cast<uint64_t>(end)) {
            return "other chunk position";
        }
        if (h->payload_bytes != expected - kKVHeaderBytes) return "payload size mismatch";
        if (static_cast<uint64_t>(st.st_size) != expected) {
            return "file is " + std::to_string(st.st_size) + " bytes, header says " +
                   std::to_string(expected);
        }

        const size_t row_bytes = static_cast<size_t>(m.row_elems) * elem_bytes(m.dtype);
        const size_t seg = static_cast<size_t>(chunk) * row_bytes;  // one K or V part
        const size_t total_rows = n_chunks * static_cast<size_t>(chunk);
        std::vector<int32_t> stored(static_cast<size_t>(end));
        std::vector<iovec> iov;
        iov.reserve(1 + 2 * static_cast<size_t>(m.n_layer));
        iov.push_back({stored.data(), stored.size() * 4});
        for (int32_t l = 0; l < m.n_layer; ++l) {
            for (size_t kv = 0; kv < 2; ++kv) {
                const size_t part = 2 * static_cast<size_t>(l) + kv;
                uint8_t* dst = snap.data.data() + (part * total_rows + c * chunk) * row_bytes;
                iov.push_back({dst, seg});
            }
        }
        if (Status s = read_all(fd.get(), iov); !s) return s.error().message;
        if (std::memcmp(stored.data(), tokens.data(), stored.size() * 4) != 0) {
            return "stored token ids differ from the prompt's (hash collision)";
        }
        XXH3_state_t* hs = XXH3_createState();
        if (!hs) return "out of memory";
        XXH3_64bits_reset(hs);
        XXH3_64bits_update(hs, stored.data(), stored.size() * 4);
        for (size_t i = 1; i < iov.size(); ++i) {
            XXH3_64bits_update(hs, iov[i].iov_base, seg);
        }
        const uint64_t sum = XXH3_64bits_digest(hs);
        XXH3_freeState(hs);
        if (sum != h->payload_checksum) return "payload checksum mismatch";
        return "";
    }

    Status put_now(const KVModelKey& m, std::span<const int32_t> prefix, const KVSnapshot& rows);
    void evict_to_budgets(Index& idx, int64_t now);
    void persist_uses();
    void writer_loop();
};

KVStore::KVStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KVStore::~KVStore() {
    try {
        flush();
        {
            std::lock_guard<std::mutex> g(impl_->q_mu);
            impl_->stop = true;
        }
        impl_->q_cv.notify_all();
        if (impl_->writer.joinable()) impl_->writer.join();
    } catch (...) {
        // A destructor must not throw; the cache is advisory.
    }
}

Expected<std::unique_ptr<KVStore>> KVStore::open(const KVStoreOptions& opts) {
    try {
        if (opts.chunk_tokens <= 0 || opts.chunk_tokens > kMaxChunkTokens) {
            return make_error("kv cache: chunk_tokens must be in [1, " +
                              std::to_string(kMaxChunkTokens) + "]");
        }
        auto impl = std::make_unique<Impl>();
        impl->opts = opts;
        impl->chunk = opts.chunk_tokens;
        impl->root = opts.root.empty() ? default_cache_root() : opts.root;
        if (impl->root.empty()) {
            return make_error("kv cache: no cache directory (set XDG_CACHE_HOME or HOME)");
        }
        std::error_code ec;
        impl->root = fs::absolute(impl->root, ec);
        if (Status s = make_private_dirs(impl->root); !s) {
            return make_error("kv cache: " + s.error().message);
        }
        auto root_fd = open_dir_readonly(impl->root);
        if (!root_fd) return make_error("kv cache: " + root_fd.error().message);
        auto ws_fd = open_private_dir(root_fd->get(), "workspaces", true);
        if (!ws_fd) return make_error("kv cache: " + (impl->root / ws_fd.error().message).string());
        impl->root_ws_fd = std::move(*ws_fd);
        impl->dir_name = workspace_dir_name(opts.workspace);
        impl->dir = impl->root / "workspaces" / impl->dir_name;
        auto dir_fd = open_private_dir(impl->root_ws_fd.get(), impl->dir_name, true);
        if (!dir_fd) {
            return make_error("kv cache: " +
                              (impl->root / "workspaces" / dir_fd.error().message).string());
        }
        impl->dir_fd = std::move(*dir_fd);
        impl->lock_fd = Fd(
            ::openat(impl->dir_fd.get(), "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!impl->lock_fd.valid()) {
            return make_error("kv cache: " + (impl->dir / "lock").string() + ": " +
                              errno_text(errno));
        }
        struct stat st;
        if (::fstatat(impl->dir_fd.get(), "workspace.json", &st, AT_SYMLINK_NOFOLLOW) != 0) {
            const std::string ws =
                opts.workspace.empty() ? "" : canonical_workspace(opts.workspace).string();
            json j{{"workspace", ws}, {"created", now_unix()}};
            if (Status s = write_file_atomic(impl->dir_fd.get(), "workspace.json", j.dump() + "\n");
                !s) {
                return make_error("kv cache: " + impl->dir.string() + ": " + s.error().message);
            }
        }
        remove_stale_temps(impl->dir_fd.get());
        return std::unique_ptr<KVStore>(new KVStore(std::move(impl)));
    } catch (const std::exception& e) {
        return make_error(std::string("kv cache: ") + e.what());
    }
}

int32_t KVStore::chunk_tokens() const {
    return impl_->chunk;
}
const fs::path& KVStore::dir() const {
    return impl_->dir;
}

int32_t KVStore::stored_prefix(const KVModelKey& model, std::span<const int32_t> tokens) const {
    if (!valid_model(model)) return 0;
    try {
        const int32_t c = impl_->chunk;
        const size_t n_chunks = tokens.size() / static_cast<size_t>(c);
        PrefixHasher hasher(model, c);
        int64_t covered = 0;
        for (size_t i = 0; i < n_chunks && covered + c <= kMaxPrefixTokens; ++i) {
            hasher.update(tokens.subspan(static_cast<size_t>(covered), static_cast<size_t>(c)));
            if (!impl_->exists(hasher.key(), chunk_file_bytes(model, c, covered + c))) break;
            covered += c;
        }
        return static_cast<int32_t>(covered);
    } catch (const std::exception&) {
        return 0;
    }
}

bool KVStore::contains(const KVModelKey& model, std::span<const int32_t> prefix) const {
    const size_t c = static_cast<size_t>(impl_->chunk);
    if (!valid_model(model) || prefix.empty() || prefix.size() % c != 0 ||
        prefix.size() > static_cast<size_t>(kMaxPrefixTokens)) {
        return false;
    }
    try {
        return impl_->exists(
            chunk_key(model, impl_->chunk, prefix),
            chunk_file_bytes(model, impl_->chunk, static_cast<int64_t>(prefix.size())));
    } catch (const std::exception&) {
        return false;
    }
}

Expected<KVSnapshot> KVStore::read(const KVModelKey& model, std::span<const int32_t> tokens,
                                   int32_t begin, int32_t end) {
    Impl& s = *impl_;
    const int32_t c = s.chunk;
    if (!valid_model(model)) return make_error("kv cache: invalid model key");
    if (begin < 0 || end < begin || begin % c != 0 || end % c != 0 ||
        static_cast<size_t>(end) > tokens.size()) {
        return make_error("kv cache: read range [" + std::to_string(begin) + ", " +
                          std::to_string(end) + ") is not chunk-aligned within " +
                          std::to_string(tokens.size()) + " tokens");
    }
    try {
        KVSnapshot snap;
        snap.pos = begin;
        snap.n_layer = model.n_layer;
        snap.row_elems = model.row_elems;
        snap.dtype = model.dtype;
        if (begin == end) return snap;

        // Which chunks are there, so memory is allocated only for them. A file of the wrong
        // size counts as there: reading it finds it bad and removes it.
        PrefixHasher hasher(model, c);
        hasher.update(tokens.first(static_cast<size_t>(begin)));
        std::vector<std::string> keys;
        for (int64_t p = begin; p < end; p += c) {
            hasher.update(tokens.subspan(static_cast<size_t>(p), static_cast<size_t>(c)));
            std::string key = hasher.key();
            struct stat st;
            if (::fstatat(s.dir_fd.get(), file_name(key).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                break;
            }
            keys.push_back(std::move(key));
        }
        const size_t wanted = static_cast<size_t>((end - begin) / c);
        snap.n_tokens = static_cast<int32_t>(keys.size()) * c;
        snap.data.resize(snap.expected_bytes());

        // Chunks are read and checked on several threads (each fills its own part of the
        // snapshot): one thread reads and hashes well below what the page cache and a fast
        // disk deliver. Then, in order, the first bad chunk ends the snapshot.
        std::vector<std::string> why(keys.size());
        std::vector<Fd> fds(keys.size());
        {
            std::atomic<size_t> next{0};
            auto work = [&] {
                for (size_t i = next++; i < keys.size(); i = next++) {
                    const int32_t pos = begin + static_cast<int32_t>(i) * c;
                    try {
                        why[i] = s.read_chunk(model, tokens, keys[i], pos, i, keys.size(), snap,
                                              fds[i]);
                    } catch (const std::exception& e) {  // nothing may escape a thread
                        why[i] = std::string("read: ") + e.what();
                    }
                }
            };
            const size_t n_threads = std::min<size_t>(
                {keys.size(), std::max(1u, std::thread::hardware_concurrency()), 8});
            std::vector<std::thread> threads;
            for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(work);
            work();
            for (std::thread& t : threads) t.join();
        }
        size_t good = 0;
        for (; good < keys.size(); ++good) {
            if (why[good].empty()) {
                ++s.hits;
                s.note_use(keys[good]);
                continue;
            }
            if (why[good] != "missing") s.remove_bad(keys[good], fds[good].get(), why[good]);
            break;
        }
        if (good < wanted) ++s.misses;
        if (good < keys.size()) {
            // Compact the parts to the layout of `good` chunks; each part moves down, in order.
            const size_t row_bytes = static_cast<size_t>(model.row_elems) * elem_bytes(model.dtype);
            const size_t from = keys.size() * static_cast<size_t>(c) * row_bytes;
            const size_t to = good * static_cast<size_t>(c) * row_bytes;
            for (size_t part = 0; part < 2 * static_cast<size_t>(model.n_layer); ++part) {
                if (to > 0)
                    std::memmove(snap.data.data() + part * to, snap.data.data() + part * from, to);
            }
            snap.n_tokens = static_cast<int32_t>(good) * c;
            snap.data.resize(snap.expected_bytes());
            snap.data.shrink_to_fit();
        }
        return snap;
    } catch (const std::exception& e) {
        return make_error(std::string("kv cache: read: ") + e.what());
    }
}

Status KVStore::Impl::put_now(const KVModelKey& m, std::span<const int32_t> prefix,
                              const KVSnapshot& rows) {
    const int64_t end = static_cast<int64_t>(prefix.size());
    if (!valid_model(m)) return make_error("kv cache: invalid model key");
    if (end < chunk || end % chunk != 0 || end > kMaxPrefixTokens) {
        return make_error("kv cache: a chunk's prefix must be a positive multiple of " +
                          std::to_string(chunk) + " tokens, got " + std::to_string(end));
    }
    if (rows.pos != end - chunk || rows.n_tokens != chunk || rows.n_layer != m.n_layer ||
        rows.row_elems != m.row_elems || rows.dtype != m.dtype ||
        rows.data.size() != rows.expected_bytes()) {
        return make_error("kv cache: the rows do not match the chunk [" +
                          std::to_string(end - chunk) + ", " + std::to_string(end) +
                          ") or the model key");
    }
    if (!writing_enabled()) return Status::success();
    const uint64_t size = chunk_file_bytes(m, chunk, end);
    if (size > opts.workspace_max_bytes || size > opts.total_max_bytes) {
        return make_error("kv cache: a chunk of " + std::to_string(size) +
                          " bytes is larger than the budget");
    }

    PrefixHasher hasher(m, chunk);
    hasher.update(prefix.first(static_cast<size_t>(end - chunk)));
    const std::string prev = end > chunk ? hasher.key() : std::string();
    hasher.update(prefix.subspan(static_cast<size_t>(end - chunk)));
    const std::string key = hasher.key();
    if (exists(key, size)) return Status::success();

    // The temp file is written without the lock; only the rename needs it.
    KVFileHeader h;
    h.fingerprint = m.fingerprint;
    h.dtype = static_cast<uint32_t>(m.dtype);
    h.n_layer = static_cast<uint32_t>(m.n_layer);
    h.row_elems = static_cast<uint32_t>(m.row_elems);
    h.chunk_tokens = static_cast<uint32_t>(chunk);
    h.pos = static_cast<uint32_t>(end - chunk);
    h.n_tokens = static_cast<uint32_t>(chunk);
    h.prefix_tokens = static_cast<uint32_t>(end);
    h.created_unix = static_cast<uint64_t>(now_unix());
    h.payload_bytes = size - kKVHeaderBytes;
    XXH3_state_t* hs = XXH3_createState();
    if (!hs) return make_error("kv cache: out of memory");
    XXH3_64bits_reset(hs);
    XXH3_64bits_update(hs, prefix.data(), prefix.size_bytes());
    XXH3_64bits_update(hs, rows.data.data(), rows.data.size());
    h.payload_checksum = XXH3_64bits_digest(hs);
    XXH3_freeState(hs);
    std::array<uint8_t, kKVHeaderBytes> hb = encode_kv_header(h);

    auto tmp = create_temp(dir_fd.get(), kExt);
    if (!tmp) return make_error("kv cache: " + dir.string() + ": " + tmp.error().message);
    auto& [fd, tmp_name] = *tmp;
    auto fail = [&](const std::string& what) -> Status {
        fd.reset();
        ::unlinkat(dir_fd.get(), tmp_name.c_str(), 0);
        return make_error("kv cache: writing " + file_name(key) + ": " + what);
    };
    Status st =
        write_all(fd.get(), {iovec{hb.data(), hb.size()},
                             iovec{const_cast<int32_t*>(prefix.data()), prefix.size_bytes()},
                             iovec{const_cast<uint8_t*>(rows.data.data()), rows.data.size()}});
    if (!st) return fail(st.error().message);
    if (::close(fd.release()) != 0) return fail("close: " + errno_text(errno));

    std::lock_guard<std::mutex> guard(lock_mu);
    WorkspaceLock lock = WorkspaceLock::take_fd(lock_fd.get(), kLockTimeout);
    if (!lock.held()) return fail("the workspace lock is busy");
    if (exists(key, size)) {
        ::unlinkat(dir_fd.get(), tmp_name.c_str(), 0);  // another process stored it meanwhile
        return Status::success();
    }
    if (::renameat(dir_fd.get(), tmp_name.c_str(), dir_fd.get(), file_name(key).c_str()) != 0) {
        return fail("rename: " + errno_text(errno));
    }
    ++writes;
    const int64_t now = now_unix();
    Index idx = load_index(dir_fd.get(), &bad_files);
    IndexEntry& e = idx[key];
    e.bytes = size;
    e.pos = h.pos;
    e.n_tokens = h.n_tokens;
    e.prev = prev;
    e.last_used = std::max(e.last_used, now);
    merge_pending(idx);
    evict_to_budgets(idx, now);
    if (Status s = save_index(dir_fd.get(), idx); !s) {
        spdlog::debug("kv cache: {}: {}", dir.string(), s.error().message);
    }
    return Status::success();
}

// Called with this workspace's lock held and its index loaded.
void KVStore::Impl::evict_to_budgets(Index& idx, int64_t now) {
    auto remove_own = [&](const Candidate& x) {
        if (::unlinkat(dir_fd.get(), file_name(x.key).c_str(), 0) != 0 && errno != ENOENT) {
            return false;
        }
        spdlog::debug("kv cache: evicted {} from {}", file_name(x.key), dir_name);
        ++evicted;
        return true;
    };
    auto erase_removed = [](const std::vector<Candidate>& c, size_t ws, Index& from) {
        for (const Candidate& x : c) {
            if (x.removed && x.ws == ws) from.erase(x.key);
        }
    };

    uint64_t own = 0;
    for (const auto& [key, e] : idx) own += e.bytes;
    if (own > opts.workspace_max_bytes) {
        std::vector<Candidate> c;
        for (const auto& [key, e] : idx) c.push_back({0, key, &e});
        evict_lowest(c, own, opts.workspace_max_bytes, now, remove_own);
        erase_removed(c, 0, idx);
    }

    // Every workspace under the root counts toward the total; the others are locked only
    // when something has to go, and only if their lock is free.
    struct Other {
        std::string name;
        Fd fd;
        uint64_t bytes = 0;
        std::optional<WorkspaceLock> lock;
        Index idx;
    };
    std::vector<Other> others;
    uint64_t total = own;
    for (const DirEntry& de : list_dir(root_ws_fd.get())) {
        if (de.name == dir_name || !S_ISDIR(de.st.st_mode)) continue;
        Other o;
        o.name = de.name;
        o.fd = Fd(::openat(root_ws_fd.get(), de.name.c_str(),
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
        if (!o.fd.valid()) continue;
        for (const FileInfo& f : scan_entries(o.fd.get(), false)) o.bytes += f.bytes;
        total += o.bytes;
        others.push_back(std::move(o));
    }
    if (total <= opts.total_max_bytes) return;

    std::vector<Candidate> c;
    for (const auto& [key, e] : idx) c.push_back({0, key, &e});
    for (size_t i = 0; i < others.size(); ++i) {
        Other& o = others[i];
        o.lock.emplace(WorkspaceLock::take(o.fd.get(), std::chrono::milliseconds(0)));
        if (!o.lock->held()) {
            spdlog::debug("kv cache: {} is busy; not evicting from it", o.name);
            continue;
        }
        o.idx = load_index(o.fd.get(), &bad_files);
        for (const auto& [key, e] : o.idx) c.push_back({i + 1, key, &e});
    }
    evict_lowest(c, total, opts.total_max_bytes, now, [&](const Candidate& x) {
        if (x.ws == 0) return remove_own(x);
        const Other& o = others[x.ws - 1];
        if (::unlinkat(o.fd.get(), file_name(x.key).c_str(), 0) != 0 && errno != ENOENT) {
            return false;
        }
        spdlog::debug("kv cache: evicted {} from {}", file_name(x.key), o.name);
        ++evicted;
        return true;
    });
    erase_removed(c, 0, idx);
    for (size_t i = 0; i < others.size(); ++i) {
        Other& o = others[i];
        if (!o.lock || !o.lock->held()) continue;
        const size_t before = o.idx.size();
        erase_removed(c, i + 1, o.idx);
        if (o.idx.size() != before) (void)save_index(o.fd.get(), o.idx);
    }
}

// Merges this process's hit counts into index.json, if the lock is free soon.
void KVStore::Impl::persist_uses() {
    {
        std::lock_guard<std::mutex> g(use_mu);
        if (pending_use.empty()) return;
    }
    std::lock_guard<std::mutex> guard(lock_mu);
    WorkspaceLock lock = WorkspaceLock::take_fd(lock_fd.get(), kLockTimeout);
    if (!lock.held()) return;  // kept for the next write
    Index idx = load_index(dir_fd.get(), &bad_files);
    merge_pending(idx);
    if (Status s = save_index(dir_fd.get(), idx); !s) {
        spdlog::debug("kv cache: {}: {}", dir.string(), s.error().message);
    }
}

void KVStore::Impl::writer_loop() {
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lk(q_mu);
            q_cv.wait(lk, [&] { return stop || !queue.empty(); });
            if (queue.empty()) return;  // stop requested and nothing left
            job = std::move(queue.front());
            queue.pop_front();
            busy = true;
        }
        Status st;
        try {
            st = put_now(job.model, job.prefix, job.rows);
        } catch (const std::exception& e) {
            st = make_error(std::string("kv cache: ") + e.what());
        }
        if (!st) {
            ++write_failures;
            spdlog::warn("{}", st.error().message);
        }
        {
            std::lock_guard<std::mutex> lk(q_mu);
            queued_bytes -= job.bytes;
            busy = false;
        }
        idle_cv.notify_all();
    }
}

Status KVStore::put(const KVModelKey& model, std::span<const int32_t> prefix,
                    const KVSnapshot& rows) {
    Status st;
    try {
        st = impl_->put_now(model, prefix, rows);
    } catch (const std::exception& e) {
        st = make_error(std::string("kv cache: ") + e.what());
    }
    if (!st) {
        ++impl_->write_failures;
        spdlog::warn("{}", st.error().message);
    }
    return st;
}

void KVStore::put_async(const KVModelKey& model, std::vector<int32_t> prefix, KVSnapshot rows) {
    Impl& s = *impl_;
    if (!s.writing_enabled()) return;
    const size_t bytes = rows.data.size() + prefix.size() * sizeof(int32_t);
    try {
        std::lock_guard<std::mutex> lk(s.q_mu);
        if (s.stop) return;
        if (bytes > s.opts.max_queued_bytes || s.queued_bytes > s.opts.max_queued_bytes - bytes) {
            ++s.dropped;
            spdlog::debug("kv cache: write queue full ({} bytes); chunk dropped", s.queued_bytes);
            return;
        }
        if (!s.writer.joinable()) s.writer = std::thread([&s] { s.writer_loop(); });
        s.queue.push_back({model, std::move(prefix), std::move(rows), bytes});
        s.queued_bytes += bytes;
    } catch (const std::exception& e) {
        ++s.dropped;
        spdlog::warn("kv cache: chunk dropped: {}", e.what());
        return;
    }
    s.q_cv.notify_one();
}

bool KVStore::wait_for_room(size_t bytes, std::chrono::milliseconds timeout) {
    Impl& s = *impl_;
    std::unique_lock<std::mutex> lk(s.q_mu);
    return s.idle_cv.wait_for(lk, timeout, [&] {
        return s.stop || bytes > s.opts.max_queued_bytes ||
               s.queued_bytes <= s.opts.max_queued_bytes - bytes;
    });
}

void KVStore::flush() {
    Impl& s = *impl_;
    {
        std::unique_lock<std::mutex> lk(s.q_mu);
        s.idle_cv.wait(lk, [&] { return s.queue.empty() && !s.busy; });
    }
    try {
        s.persist_uses();
    } catch (const std::exception& e) {
        spdlog::debug("kv cache: index update: {}", e.what());
    }
}

Status KVStore::clear() {
    Impl& s = *impl_;
    {
        std::unique_lock<std::mutex> lk(s.q_mu);
        s.dropped += s.queue.size();
        for (const Impl::Job& j : s.queue) s.queued_bytes -= j.bytes;
        s.queue.clear();
        s.idle_cv.wait(lk, [&] { return !s.busy; });
    }
    s.idle_cv.notify_all();
    try {
        {
            std::lock_guard<std::mutex> g(s.use_mu);
            s.pending_use.clear();
        }
        std::lock_guard<std::mutex> guard(s.lock_mu);
        return clear_dir(s.dir_fd.get(), s.lock_fd.get(), s.dir.string(), nullptr);
    } catch (const std::exception& e) {
        return make_error(std::string("kv cache: clear: ") + e.what());
    }
}

KVStoreStats KVStore::stats() const {
    const Impl& s = *impl_;
    KVStoreStats st;
    try {
        for (const FileInfo& f : scan_entries(s.dir_fd.get(), false)) {
            ++st.entries;
            st.bytes += f.bytes;
        }
    } catch (const std::exception&) {
    }
    st.hits = s.hits;
    st.misses = s.misses;
    st.writes = s.writes;
    st.write_failures = s.write_failures;
    st.dropped = s.dropped;
    st.evicted = s.evicted;
    st.bad_files = s.bad_files;
    return st;
}

// ---------------------------------------------------------------------------------------
// Every workspace under a root

namespace {

// The workspace directories under root (names), or an error when root is unusable.
Expected<std::vector<std::string>> workspace_dirs(const fs::path& root, Fd& ws_fd) {
    std::vector<std::string> names;
    struct stat st;
    if (::stat(root.c_str(), &st) != 0) {
        if (errno == ENOENT) return names;
        return make_error(root.string() + ": " + errno_text(errno));
    }
    if (!S_ISDIR(st.st_mode)) return make_error(root.string() + ": not a directory");
    ws_fd =
        Fd(::open((root / "workspaces").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!ws_fd.valid()) {
        if (errno == ENOENT) return names;
        return make_error((root / "workspaces").string() + ": " + errno_text(errno));
    }
    for (const DirEntry& de : list_dir(ws_fd.get())) {
        if (S_ISDIR(de.st.st_mode) && !is_temp_name(de.name)) names.push_back(de.name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

Expected<std::vector<KVWorkspaceInfo>> list_kv_workspaces(const fs::path& root) {
    try {
        Fd ws_fd;
        auto names = workspace_dirs(root, ws_fd);
        if (!names) return names.error();
        std::vector<KVWorkspaceInfo> out;
        for (const std::string& name : *names) {
            Fd fd(::openat(ws_fd.get(), name.c_str(),
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
            if (!fd.valid()) continue;
            KVWorkspaceInfo info;
            info.dir = root / "workspaces" / name;
            info.workspace = workspace_path_of(fd.get());
            const Index idx = parse_index(fd.get());
            for (const FileInfo& f : scan_entries(fd.get(), false)) {
                ++info.entries;
                info.bytes += f.bytes;
                auto it = idx.find(f.key);
                int64_t used = f.mtime;
                if (it != idx.end()) {
                    info.hits += it->second.hits;
                    used = std::max(used, it->second.last_used);
                }
                info.last_used_unix = std::max(info.last_used_unix, used);
            }
            out.push_back(std::move(info));
        }
        std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
            return a.last_used_unix > b.last_used_unix;
        });
        return out;
    } catch (const std::exception& e) {
        return make_error(std::string("kv cache: ") + e.what());
    }
}

Status clear_kv_workspaces(const fs::path& root, const fs::path& workspace,
                           std::vector<KVWorkspaceInfo>* removed) {
    try {
        Fd ws_fd;
        auto names = workspace_dirs(root, ws_fd);
        if (!names) return names.error();
        std::vector<std::string> targets;
        if (workspace.empty()) {
            targets = *names;
        } else {
            const std::string want = workspace_dir_name(workspace);
            const std::string canon = canonical_workspace(workspace).string();
            for (const std::string& name : *names) {
                if (name == want) {
                    targets.push_back(name);
                    continue;
                }
                // A workspace recorded under another canonical form (a moved symlink).
                Fd fd(::openat(ws_fd.get(), name.c_str(),
                               O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
                if (fd.valid() && workspace_path_of(fd.get()) == canon) targets.push_back(name);
            }
        }
        Status result;
        for (const std::string& name : targets) {
            auto fd = open_private_dir(ws_fd.get(), name, false);
            if (!fd) {
                result = make_error(fd.error().message);
                continue;
            }
            KVWorkspaceInfo info;
            info.dir = root / "workspaces" / name;
            info.workspace = workspace_path_of(fd->get());
            Status s = clear_dir(fd->get(), -1, info.dir.string(), &info);
            if (!s) result = s;
            if (removed) removed->push_back(std::move(info));
        }
        return result;
    } catch (const std::exception& e) {
        return make_error(std::string("kv cache: ") + e.what());
    }
}

}  // namespace hearth
