// GGUF writer: builds a GGUF v3 file from metadata and tensors, streaming tensor data so
// that a multi-gigabyte model never has to sit in memory.
//
// Output layout (all integers little-endian; see gguf.h for the reader's view):
//
//   u32  magic "GGUF" | u32 version = 3 | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv[]     string key (u64 length + bytes), u32 value_type, value
//                     (arrays: u32 elem_type, u64 count, values; arrays may nest)
//   tensor_info[]     string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset
//   zero padding      up to a multiple of the alignment
//   tensor data       each tensor at its offset (relative to the start of this section),
//                     followed by zero padding up to the next multiple of the alignment
//                     (the last tensor is padded too, as ggml's writer does)
//
// Metadata keeps insertion order; setting an existing key replaces its value in place.
// The alignment is `general.alignment` when that key is set (it must be a u32 power of
// two), else 32. Tensors are written in the order they were added, at increasing,
// aligned offsets.
//
// Tensor data comes from one of three sources:
//   - a byte span owned by the caller, which must stay valid until write() returns;
//   - a fill callback that writes the whole tensor into a buffer the writer provides
//     (one tensor's worth of memory at a time);
//   - a row callback that writes one row (ne[0] elements) at a time into a small
//     staging buffer, for tensors too large to hold even once.
// Callbacks run during write(), in tensor order; an error they return aborts the write.
//
// write() creates `<path>.tmp-<pid>-<n>` next to the target, fsyncs it and renames it over
// `path`, so readers see either the old file or the complete new one; on failure the
// temporary file is removed. write_to_memory() produces the same bytes in a vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ggml_types.h"
#include "gguf.h"
#include "result.h"

namespace hearth {

// Called after each tensor's data (and after each staged chunk of row-generated data).
struct GGUFWriteProgress {
    size_t tensor_index = 0;  // tensor being written (0-based)
    size_t tensor_count = 0;
    std::string_view tensor_name;
    uint64_t bytes_written = 0;  // of the whole file so far
    uint64_t total_bytes = 0;    // size of the finished file
};
using GGUFProgressFn = std::function<void(const GGUFWriteProgress&)>;

// Fills all of a tensor's bytes (dst.size() == the tensor's size).
using GGUFTensorFill = std::function<Status(std::span<uint8_t> dst)>;
// Fills one row: `row` counts over ne[1]*ne[2]*ne[3] rows; dst.size() == row bytes.
using GGUFRowFill = std::function<Status(int64_t row, std::span<uint8_t> dst)>;

class GGUFWriter {
public:
    GGUFWriter() = default;
    GGUFWriter(const GGUFWriter&) = delete;
    GGUFWriter& operator=(const GGUFWriter&) = delete;
    GGUFWriter(GGUFWriter&&) = default;
    GGUFWriter& operator=(GGUFWriter&&) = default;

    // ---- metadata ----
    void set_u8(std::string_view key, uint8_t v);
    void set_i8(std::string_view key, int8_t v);
    void set_u16(std::string_view key, uint16_t v);
    void set_i16(std::string_view key, int16_t v);
    void set_u32(std::string_view key, uint32_t v);
    void set_i32(std::string_view key, int32_t v);
    void set_u64(std::string_view key, uint64_t v);
    void set_i64(std::string_view key, int64_t v);
    void set_f32(std::string_view key, float v);
    void set_f64(std::string_view key, double v);
    void set_bool(std::string_view key, bool v);
    void set_string(std::string_view key, std::string_view v);
    void set_array_string(std::string_view key, std::span<const std::string> v);
    void set_array_u8(std::string_view key, std::span<const uint8_t> v);
    void set_array_i32(std::string_view key, std::span<const int32_t> v);
    void set_array_u32(std::string_view key, std::span<const uint32_t> v);
    void set_array_i64(std::string_view key, std::span<const int64_t> v);
    void set_array_f32(std::string_view key, std::span<const float> v);
    // Any value, including nested arrays. Fails if the value's payload does not match its
    // declared type (e.g. UINT8 holding 300, an array item of another type).
    Status set_value(std::string_view key, const GGUFValue& v);
    // Copies a key and value read from another file (e.g. a tokenizer).
    Status copy_kv(const GGUFKV& kv) { return set_value(kv.key, kv.value); }
    // Sets `general.alignment` (a power of two, at most 1 MiB).
    Status set_alignment(uint32_t alignment);

    bool has_key(std::string_view key) const;
    bool remove_key(std::string_view key);
    size_t kv_count() const { return kvs_.size(); }

    // ---- tensors ----
    // ne[0] is the contiguous dimension (1..4 dims, each >= 1, ne[0] a multiple of the
    // type's block size). Errors: unknown type, bad shape, duplicate name.
    Status add_tensor(std::string_view name, GGMLType type, const std::vector<int64_t>& ne,
                      std::span<const uint8_t> data);
    Status add_tensor(std::string_view name, GGMLType type, const std::vector<int64_t>& ne,
                      GGUFTensorFill fill);
    Status add_tensor(std::string_view name, GGMLType type, const std::vector<int64_t>& ne,
                      GGUFRowFill row_fill);
    // A tensor of a file that is open for reading (its bytes stay in that mapping).
    Status copy_tensor(const GGUFTensorInfo& t);

    size_t tensor_count() const { return tensors_.size(); }
    // Alignment write() will use, or an error if `general.alignment` is invalid.
    Expected<uint64_t> alignment() const;
    // Size of the file write() would produce.
    Expected<uint64_t> file_size() const;

    // ---- output ----
    Status write(const std::string& path, const GGUFProgressFn& progress = {}) const;
    Expected<std::vector<uint8_t>> write_to_memory(const GGUFProgressFn& progress = {}) const;

private:
    struct KV {
        std::string key;
        std::vector<uint8_t> encoded;  // u32 value_type followed by the value
    };
    struct Tensor {
        std::string name;
        GGMLType type = GGMLType::F32;
        std::vector<int64_t> ne;
        uint64_t nbytes = 0;
        size_t row_bytes = 0;
        int64_t rows = 0;
        std::span<const uint8_t> data;
        GGUFTensorFill fill;
        GGUFRowFill row_fill;
    };
    class Sink;
    class FileSink;
    class MemorySink;

    void set_encoded(std::string_view key, std::vector<uint8_t> encoded);
    Expected<Tensor> check_tensor(std::string_view name, GGMLType type,
                                  const std::vector<int64_t>& ne) const;
    Status emit(Sink& sink, uint64_t total, const GGUFProgressFn& progress) const;

    std::vector<KV> kvs_;
    std::vector<Tensor> tensors_;
};

}  // namespace hearth
