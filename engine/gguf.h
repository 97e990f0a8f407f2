// GGUF reader: a memory-mapped, bounds-checked view of a GGUF v2/v3 file.
//
// File layout (all integers little-endian):
//
//   offset  field
//   0       u32  magic            "GGUF" (0x46554747)
//   4       u32  version          2 or 3 (v1 used u32 counts and is not supported)
//   8       u64  tensor_count
//   16      u64  metadata_kv_count
//   24      metadata_kv[metadata_kv_count]
//             string key          (u64 length, then that many UTF-8 bytes, no NUL)
//             u32    value_type   (GGUFType)
//             value               scalar | string | array
//                                 array = u32 elem_type, u64 count, count values
//                                 (arrays may nest: elem_type ARRAY)
//   ...     tensor_info[tensor_count]
//             string name
//             u32    n_dims       (1..4)
//             u64    ne[n_dims]   (ne[0] is the contiguous, fastest-varying dimension)
//             u32    type         (GGMLType)
//             u64    offset       (relative to the data section, aligned)
//   ...     padding to `general.alignment` (u32 metadata, default 32, a power of two)
//   ...     tensor data section
//
// Every count, length and offset is checked against the real file size before it is
// used, with overflow-safe arithmetic, so a truncated or hostile file yields an Error
// naming the field (e.g. "metadata[12] 'tokenizer.ggml.tokens': array count ...") and
// never a crash or a giant allocation. Strings are views into the mapping.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ggml_types.h"
#include "result.h"

namespace hearth {

struct GGUFValue;

struct GGUFArray {
    GGUFType elem_type = GGUFType::UINT8;
    std::vector<GGUFValue> items;
};

// One metadata value. Integers keep their signedness; bool is stored as bool.
struct GGUFValue {
    GGUFType type = GGUFType::UINT8;
    std::variant<uint64_t, int64_t, double, bool, std::string_view, GGUFArray> v;

    // Numeric conversions: nullopt when the value is not numeric or does not fit.
    std::optional<int64_t> as_int() const;
    std::optional<uint64_t> as_uint() const;
    std::optional<double> as_float() const;
    std::optional<bool> as_bool() const;
    std::optional<std::string_view> as_string() const;
    const GGUFArray* as_array() const;
};

struct GGUFKV {
    std::string_view key;
    GGUFValue value;
};

struct GGUFTensorInfo {
    std::string_view name;
    uint32_t n_dims = 0;
    std::array<int64_t, 4> ne = {1, 1, 1, 1};  // unused dims are 1
    GGMLType type = GGMLType::F32;
    uint64_t offset = 0;   // relative to the data section
    uint64_t nbytes = 0;   // bytes of the tensor's data
    const uint8_t* data = nullptr;  // into the mapping

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

// Limits that keep a hostile header from asking for absurd work.
struct GGUFLimits {
    uint64_t max_tensors = 1u << 20;
    uint64_t max_kv = 1u << 20;
    uint64_t max_array_elems = 1ull << 28;   // also bounded by the bytes left in the file
    // Array elements of all keys together. Each parsed element takes ~48 bytes, so this
    // caps metadata memory near 800 MB whatever the file holds (a real vocabulary of 256k
    // tokens with merges and scores is under 1M elements).
    uint64_t max_metadata_values = 1ull << 24;
    uint32_t max_nesting = 8;
};

class GGUFFile {
public:
    ~GGUFFile();
    GGUFFile(const GGUFFile&) = delete;
    GGUFFile& operator=(const GGUFFile&) = delete;

    // Maps `path` read-only and parses it.
    static Expected<std::unique_ptr<GGUFFile>> open(const std::string& path,
                                                    const GGUFLimits& limits = {});
    // Parses bytes owned by the caller (they must outlive the result). For tests/fuzzing.
    static Expected<std::unique_ptr<GGUFFile>> parse(std::span<const uint8_t> bytes,
                                                     const GGUFLimits& limits = {});

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t file_size() const { return bytes_.size(); }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    std::span<const uint8_t> bytes() const { return bytes_; }

    const std::vector<GGUFKV>& metadata() const { return kv_; }
    const std::vector<GGUFTensorInfo>& tensors() const { return tensors_; }

    const GGUFValue* find(std::string_view key) const;
    const GGUFTensorInfo* tensor(std::string_view name) const;

    // Typed getters: nullopt when the key is absent or of another kind.
    std::optional<std::string_view> get_string(std::string_view key) const;
    std::optional<int64_t> get_int(std::string_view key) const;
    std::optional<double> get_float(std::string_view key) const;
    std::optional<bool> get_bool(std::string_view key) const;
    const GGUFArray* get_array(std::string_view key) const;

private:
    GGUFFile() = default;
    Status parse_all(const GGUFLimits& limits);

    std::string path_;
    void* map_ = nullptr;
    size_t map_size_ = 0;
    std::span<const uint8_t> bytes_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<GGUFKV> kv_;
    std::vector<GGUFTensorInfo> tensors_;
};

}  // namespace hearth
