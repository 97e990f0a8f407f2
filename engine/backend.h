// Backend interface: how a Session drives a device.
//
// A Backend is bound to one loaded Model (its weights live wherever the backend keeps
// them: the CPU backend reads the mapping, the Vulkan backend uploads to device memory).
// A BackendSession is the mutable state of one timeline on that backend: its KV cache
// and work buffers. Sessions never share KV memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "result.h"

namespace hearth {

class Model;

struct BackendInfo {
    std::string name;    // "cpu", "vulkan"
    std::string device;  // "x86_64, 2 threads", "NVIDIA H200", "llvmpipe (LLVM 15.0.7, 256 bits)"
};

// Element type of KV rows in a snapshot.
enum class KVDType : uint32_t { F32 = 0, F16 = 1 };

// A host copy of the KV rows of positions [pos, pos + n_tokens) of a session's KV cache.
// Layout of `data`: for each layer l in [0, n_layer): K rows then V rows, each
// [n_tokens][n_head_kv * head_dim] elements of `dtype`, row-major, positions ascending.
// The layout is backend-independent so a snapshot from one backend restores on another
// (converting dtype where needed) and the disk cache can store it as is.
struct KVSnapshot {
    int32_t pos = 0;  // first position held
    int32_t n_tokens = 0;
    int32_t n_layer = 0;
    int32_t row_elems = 0;  // n_head_kv * head_dim
    KVDType dtype = KVDType::F32;
    std::vector<uint8_t> data;

    size_t bytes_per_elem() const { return dtype == KVDType::F16 ? 2 : 4; }
    size_t expected_bytes() const {
        return static_cast<size_t>(n_layer) * 2 * static_cast<size_t>(n_tokens) *
               static_cast<size_t>(row_elems) * bytes_per_elem();
    }
};

// The argument checks every backend makes, with the same messages, for a session of
// `n_ctx` positions of which `n_valid` are evaluated: eval(tokens, pos) (ids below
// `n_vocab`), snapshot(begin, end), and restore(snap) into `n_layer` x `row_elems` KV rows.
Status check_eval(std::span<const int32_t> tokens, int32_t pos, int32_t n_valid, int32_t n_ctx,
                  int32_t n_vocab);
Status check_snapshot_range(int32_t begin, int32_t end, int32_t n_valid);
Status check_restore(const KVSnapshot& snap, int32_t n_layer, int32_t row_elems, int32_t n_ctx,
                     int32_t n_valid);

class BackendSession {
public:
    virtual ~BackendSession() = default;

    // Context length this session was created with (maximum positions).
    virtual int32_t n_ctx() const = 0;

    // Evaluate tokens at positions [pos, pos + tokens.size()). KV rows at positions
    // >= pos are overwritten; the caller guarantees rows [0, pos) are valid.
    // logits_all: write tokens.size() * n_vocab logits (position-major) into `logits`;
    // otherwise only the last position's n_vocab logits.
    virtual Status eval(std::span<const int32_t> tokens, int32_t pos, bool logits_all,
                        std::vector<float>& logits) = 0;

    // Copy KV positions [begin, end) to the host (end <= the evaluated positions).
    virtual Expected<KVSnapshot> snapshot(int32_t begin, int32_t end) = 0;
    Expected<KVSnapshot> snapshot(int32_t n_tokens) { return snapshot(0, n_tokens); }
    // Write a snapshot's rows back at positions [snap.pos, snap.pos + snap.n_tokens); the
    // rows before snap.pos must be valid (snap.pos <= evaluated positions). Afterwards the
    // session holds exactly snap.pos + snap.n_tokens positions; after an error, none.
    virtual Status restore(const KVSnapshot& snap) = 0;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual BackendInfo info() const = 0;
    virtual Expected<std::unique_ptr<BackendSession>> create_session(int32_t n_ctx) = 0;
};

}  // namespace hearth
