// KVStore: the on-disk prefix KV cache, so a restarted server restores the KV rows of a
// repository context instead of recomputing them.
//
// Why chunks. The KV rows of positions [pos, end) depend on every token before `end` and on
// the model, nothing else. A prompt is [repository context][current file]: appending text
// must not invalidate what is stored, and an edit in the middle should cost only what comes
// after it. So the store works in chunks of `chunk_tokens` positions: the entry ending at
// `end` (a multiple of chunk_tokens) holds the rows of [end - chunk_tokens, end) and is keyed
// by a hash of the model key, the chunk size and tokens[0, end). A prompt's stored prefix is
// the run of chunks found at C, 2C, 3C, ... from position 0.
//
// File name: <32 hex digits of XXH3-128>.hkv, the hash taken over (little-endian)
//   fingerprint u64, dtype u32, n_layer u32, row_elems u32, chunk_tokens u32, tokens[0,end) i32.
//
// File layout (little-endian; a new layout gets a new version):
//   offset size field
//        0    8 magic "HEARTHKV"
//        8    4 format version (1)
//       12    4 header size in bytes (84)
//       16    8 model fingerprint (Model::fingerprint())
//       24    4 KV dtype (KVDType: 0 F32, 1 F16)
//       28    4 n_layer
//       32    4 row_elems (n_head_kv * head_dim)
//       36    4 chunk_tokens
//       40    4 pos: first position held (a multiple of chunk_tokens)
//       44    4 n_tokens: positions held (= chunk_tokens)
//       48    4 prefix token count (= pos + n_tokens = end)
//       52    8 created, unix seconds
//       60    8 payload bytes (everything after the header)
//       68    8 payload checksum: XXH3-64 of the payload
//       76    8 header checksum: XXH3-64 of header bytes [0, 76)
//       84      payload: tokens[0, end) as i32, then the KV rows of [pos, end) in the
//               KVSnapshot layout (per layer: K rows then V rows, each [n_tokens][row_elems])
//
// Trust. A file is only ever used after every check passed: magic, version, header size,
// header checksum, each field against what the caller asked for, the payload size against
// the real file size, the stored token ids against the caller's tokens (so a hash collision
// cannot hand out another prompt's rows) and the payload checksum. Any failure is a miss
// and the file is removed. Files appear under their final name only by rename(2) of a
// complete temp file (`.tmp-<pid>-<random>.hkv`), so readers need no lock; a writer killed
// mid-write leaves only a temp file, removed by the next open once its pid is dead or it is
// an hour old. Files are not fsync'ed: after a power loss a final-named file may be short or
// zero-filled, and validation turns that into a miss.
//
// Directories. <root>/workspaces/<basename>-<16 hex of XXH3-64 of the canonical workspace
// path>/ (or <root>/workspaces/default/) holds workspace.json (the workspace path, for
// `hearth cache ls`), `lock`, the .hkv files and index.json. The root, `workspaces` and the
// workspace directories are created 0700 (existing ones we own are chmod'ed to 0700), files
// 0600: the rows are derived from the user's source code. A workspace directory or cache
// file that is a symlink, or a workspace directory of another user, is refused.
//
// Locking. Renames into place, index updates and eviction run under an exclusive flock on
// <ws>/lock, taken blocking with a 2 second timeout (polled): a write that cannot get the
// lock in time is skipped and counted as a failure, because a cache write is never worth
// stalling for. The temp file is written before the lock is taken, so the lock is held
// for a rename and a directory scan, not for the I/O of a chunk.
//
// index.json is advisory: hit counts and last use per entry, for eviction and `ls`. It is
// rewritten only under the lock, by reading the current file, reconciling it with the
// directory (entries whose file is gone are dropped, files missing from it are added from
// their header with their mtime as last use), and adding this process's own hit counts since
// its last update. Two processes therefore add their hits instead of overwriting each other.
// A missing or unreadable index is rebuilt the same way.
//
// Eviction. After a write that leaves the workspace over workspace_max_bytes, or all
// workspaces over total_max_bytes, entries are removed lowest value first:
//   value = (1 + hits) * 0.5^(days since last use) * (n_tokens / file bytes)
// and an entry that is unreachable is worth 0: one whose preceding chunk (the entry for
// tokens[0, pos)) is gone, or is itself unreachable, since no prompt can reach it from
// position 0 any more. Ties go to the later chunk first. The total budget may evict entries
// of other workspaces; their lock is taken non-blocking and busy workspaces are skipped.
//
// Thread safety: every public method may be called from one thread while the store's writer
// thread (put_async) runs. Nothing throws out of the API; errors are values.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend.h"
#include "result.h"

namespace hearth {

inline constexpr uint32_t kKVFormatVersion = 1;
inline constexpr size_t kKVHeaderBytes = 84;

struct KVStoreOptions {
    std::filesystem::path root;       // "" = default_cache_root()
    std::filesystem::path workspace;  // workspace folder; "" = the shared "default" directory
    int32_t chunk_tokens = 256;
    uint64_t workspace_max_bytes = 2ull << 30;  // 0 disables writing
    uint64_t total_max_bytes = 8ull << 30;  // over every workspace under root; 0 disables writing
    size_t max_queued_bytes = 1ull << 30;   // put_async backlog; beyond it chunks are dropped
};

// What the KV rows of a chunk depend on besides the tokens.
struct KVModelKey {
    uint64_t fingerprint = 0;  // Model::fingerprint()
    KVDType dtype = KVDType::F32;
    int32_t n_layer = 0;
    int32_t row_elems = 0;
};

struct KVStoreStats {
    uint64_t entries = 0;         // .hkv files in the workspace now
    uint64_t bytes = 0;           // their size
    uint64_t hits = 0;            // chunks returned by read()
    uint64_t misses = 0;          // read() calls stopped short by a missing or bad chunk
    uint64_t writes = 0;          // chunks stored
    uint64_t write_failures = 0;  // puts that failed (I/O error, lock timeout, bad argument)
    uint64_t dropped = 0;         // put_async chunks not written (queue full, clear())
    uint64_t evicted = 0;         // entries removed for a budget (any workspace)
    uint64_t bad_files = 0;       // files that failed validation and were removed
};

class KVStore {
  public:
    // Creates the directories, removes stale temp files. Fails when the directory cannot be
    // created or is a symlink.
    static Expected<std::unique_ptr<KVStore>> open(const KVStoreOptions& opts);
    ~KVStore();  // flushes
    KVStore(const KVStore&) = delete;
    KVStore& operator=(const KVStore&) = delete;

    int32_t chunk_tokens() const;

    // Positions covered by stored chunks contiguous from 0 for `tokens`: a multiple of
    // chunk_tokens, never more than tokens.size(). Checks existence and size only.
    int32_t stored_prefix(const KVModelKey& model, std::span<const int32_t> tokens) const;

    // Reads and validates the chunks covering [begin, end) of `tokens` (both multiples of
    // chunk_tokens, begin may be > 0) into one snapshot with pos = begin. A missing or bad
    // chunk ends it: the snapshot covers only the chunks before (n_tokens may be 0); bad files
    // are removed. An error only for bad arguments or when memory runs out.
    Expected<KVSnapshot> read(const KVModelKey& model, std::span<const int32_t> tokens,
                              int32_t begin, int32_t end);

    // Stores one chunk: `prefix` = tokens[0, end), `rows` = the rows of [end - chunk_tokens,
    // end). Already stored, or writing disabled by a zero budget: success, nothing written.
    Status put(const KVModelKey& model, std::span<const int32_t> prefix, const KVSnapshot& rows);
    // put() on the writer thread; dropped (and counted) when the backlog is full.
    void put_async(const KVModelKey& model, std::vector<int32_t> prefix, KVSnapshot rows);

    // Whether the chunk ending at prefix.size() is stored (existence and size only).
    bool contains(const KVModelKey& model, std::span<const int32_t> prefix) const;

    // Waits until every put_async chunk is written or failed, then records this process's
    // hit counts in index.json.
    // Waits until a put_async of `bytes` would be queued rather than dropped; false when
    // the queue is still full after `timeout`. Producers that can wait (background
    // checkpointing) ask first instead of losing chunks.
    bool wait_for_room(size_t bytes, std::chrono::milliseconds timeout);
    void flush();
    // Removes every entry of this workspace; queued put_async chunks are dropped.
    Status clear();
    KVStoreStats stats() const;
    const std::filesystem::path& dir() const;  // the workspace directory

    struct Impl;

  private:
    explicit KVStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// One workspace directory under a cache root, for `hearth cache`.
struct KVWorkspaceInfo {
    std::filesystem::path dir;
    std::string workspace;  // from workspace.json; "" when unknown
    uint64_t entries = 0;
    uint64_t bytes = 0;
    int64_t last_used_unix = 0;  // 0 when no entries
    uint64_t hits = 0;
};

// Every workspace directory under `root`, most recently used first. A root that does not
// exist has none. Reads only; takes no lock.
Expected<std::vector<KVWorkspaceInfo>> list_kv_workspaces(const std::filesystem::path& root);

// Removes the entries (and index) of one workspace, or of all when `workspace` is empty,
// each under its lock. The directories stay: a running server may hold one open. When
// `removed` is given it receives what each cleared workspace held.
Status clear_kv_workspaces(const std::filesystem::path& root,
                           const std::filesystem::path& workspace,
                           std::vector<KVWorkspaceInfo>* removed = nullptr);

// $XDG_CACHE_HOME/hearth, else $HOME/.cache/hearth; "" when neither is known.
std::filesystem::path default_cache_root();

// The directory a workspace's entries live in (whether or not it exists).
std::filesystem::path kv_workspace_dir(const std::filesystem::path& root,
                                       const std::filesystem::path& workspace);

// The file name of the chunk ending at prefix.size().
std::string kv_chunk_file_name(const KVModelKey& model, int32_t chunk_tokens,
                               std::span<const int32_t> prefix);

// The header fields of a .hkv file (magic and header checksum are implied).
struct KVFileHeader {
    uint32_t version = kKVFormatVersion;
    uint32_t header_bytes = kKVHeaderBytes;
    uint64_t fingerprint = 0;
    uint32_t dtype = 0;
    uint32_t n_layer = 0;
    uint32_t row_elems = 0;
    uint32_t chunk_tokens = 0;
    uint32_t pos = 0;
    uint32_t n_tokens = 0;
    uint32_t prefix_tokens = 0;
    uint64_t created_unix = 0;
    uint64_t payload_bytes = 0;
    uint64_t payload_checksum = 0;
};

// Serializes `h` with the magic and a header checksum over the bytes written.
std::array<uint8_t, kKVHeaderBytes> encode_kv_header(const KVFileHeader& h);
// Checks magic, version, header size and header checksum; the fields' meaning is checked
// by the reader against what it asked for.
Expected<KVFileHeader> decode_kv_header(std::span<const uint8_t> bytes);

}  // namespace hearth
