#include "gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_set>

#include "quant.h"

namespace hearth {

std::string_view gguf_type_name(GGUFType t) {
    switch (t) {
        case GGUFType::UINT8: return "u8";
        case GGUFType::INT8: return "i8";
        case GGUFType::UINT16: return "u16";
        case GGUFType::INT16: return "i16";
        case GGUFType::UINT32: return "u32";
        case GGUFType::INT32: return "i32";
        case GGUFType::FLOAT32: return "f32";
        case GGUFType::BOOL: return "bool";
        case GGUFType::STRING: return "string";
        case GGUFType::ARRAY: return "array";
        case GGUFType::UINT64: return "u64";
        case GGUFType::INT64: return "i64";
        case GGUFType::FLOAT64: return "f64";
    }
    return "unknown";
}

// ---- GGUFValue conversions -------------------------------------------------------

std::optional<int64_t> GGUFValue::as_int() const {
    if (auto* u = std::get_if<uint64_t>(&v)) {
        if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
        return static_cast<int64_t>(*u);
    }
    if (auto* i = std::get_if<int64_t>(&v)) return *i;
    if (auto* b = std::get_if<bool>(&v)) return *b ? 1 : 0;
    return std::nullopt;
}

std::optional<uint64_t> GGUFValue::as_uint() const {
    if (auto* u = std::get_if<uint64_t>(&v)) return *u;
    if (auto* i = std::get_if<int64_t>(&v)) {
        if (*i < 0) return std::nullopt;
        return static_cast<uint64_t>(*i);
    }
    return std::nullopt;
}

std::optional<double> GGUFValue::as_float() const {
    if (auto* d = std::get_if<double>(&v)) return *d;
    if (auto* u = std::get_if<uint64_t>(&v)) return static_cast<double>(*u);
    if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
    return std::nullopt;
}

std::optional<bool> GGUFValue::as_bool() const {
    if (auto* b = std::get_if<bool>(&v)) return *b;
    return std::nullopt;
}

std::optional<std::string_view> GGUFValue::as_string() const {
    if (auto* s = std::get_if<std::string_view>(&v)) return *s;
    return std::nullopt;
}

const GGUFArray* GGUFValue::as_array() const { return std::get_if<GGUFArray>(&v); }

// ---- Cursor ----------------------------------------------------------------------

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32

// Bounds-checked reader over the file bytes. Every read names what it reads so that
// an error points at the field.
class Cursor {
public:
    explicit Cursor(std::span<const uint8_t> b) : b_(b) {}

    uint64_t pos() const { return pos_; }
    uint64_t left() const { return b_.size() - pos_; }

    // `what` names the field; `suffix` is appended to it in an error message. They are
    // joined only on failure, because array elements are read millions of times.
    template <class T>
    Status read(T& out, std::string_view what, std::string_view suffix = {}) {
        if (left() < sizeof(T)) return truncated(what, suffix, sizeof(T));
        std::memcpy(&out, b_.data() + pos_, sizeof(T));  // files are little-endian, as is x86/arm
        pos_ += sizeof(T);
        return {};
    }

    Status read_string(std::string_view& out, std::string_view what) {
        uint64_t len = 0;
        HEARTH_TRY(read(len, what, " length"));
        if (len > left()) {
            return make_error(std::string(what) + ": string length " + std::to_string(len) +
                              " exceeds the " + std::to_string(left()) +
                              " bytes left in the file");
        }
        out = std::string_view(reinterpret_cast<const char*>(b_.data() + pos_), len);
        pos_ += len;
        return {};
    }

private:
    Status truncated(std::string_view what, std::string_view suffix, size_t need) {
        return make_error(std::string(what) + std::string(suffix) +
                          ": file truncated at offset " + std::to_string(pos_) + " (need " +
                          std::to_string(need) + " bytes, " + std::to_string(left()) + " left)");
    }

    std::span<const uint8_t> b_;
    uint64_t pos_ = 0;
};

// Smallest encoded size of one value of type t, used to reject array counts that the
// remaining bytes cannot possibly hold before allocating for them.
uint64_t min_encoded_size(GGUFType t) {
    switch (t) {
        case GGUFType::UINT8:
        case GGUFType::INT8:
        case GGUFType::BOOL: return 1;
        case GGUFType::UINT16:
        case GGUFType::INT16: return 2;
        case GGUFType::UINT32:
        case GGUFType::INT32:
        case GGUFType::FLOAT32: return 4;
        case GGUFType::UINT64:
        case GGUFType::INT64:
        case GGUFType::FLOAT64:
        case GGUFType::STRING: return 8;
        case GGUFType::ARRAY: return 12;
    }
    return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GGUFType::FLOAT64); }

// `budget` is the number of array elements still allowed (GGUFLimits::max_metadata_values).
Status read_value(Cursor& c, GGUFType type, GGUFValue& out, const std::string& what,
                  const GGUFLimits& limits, uint32_t depth, uint64_t& budget) {
    out.type = type;
    switch (type) {
        case GGUFType::UINT8: { uint8_t x{}; HEARTH_TRY(c.read(x, what)); out.v = uint64_t{x}; break; }
        case GGUFType::INT8: { int8_t x{}; HEARTH_TRY(c.read(x, what)); out.v = int64_t{x}; break; }
        case GGUFType::UINT16: { uint16_t x{}; HEARTH_TRY(c.read(x, what)); out.v = uint64_t{x}; break; }
        case GGUFType::INT16: { int16_t x{}; HEARTH_TRY(c.read(x, what)); out.v = int64_t{x}; break; }
        case GGUFType::UINT32: { uint32_t x{}; HEARTH_TRY(c.read(x, what)); out.v = uint64_t{x}; break; }
        case GGUFType::INT32: { int32_t x{}; HEARTH_TRY(c.read(x, what)); out.v = int64_t{x}; break; }
        case GGUFType::UINT64: { uint64_t x{}; HEARTH_TRY(c.read(x, what)); out.v = x; break; }
        case GGUFType::INT64: { int64_t x{}; HEARTH_TRY(c.read(x, what)); out.v = x; break; }
        case GGUFType::FLOAT32: { float x{}; HEARTH_TRY(c.read(x, what)); out.v = double{x}; break; }
        case GGUFType::FLOAT64: { double x{}; HEARTH_TRY(c.read(x, what)); out.v = x; break; }
        case GGUFType::BOOL: {
            uint8_t x = 0;
            HEARTH_TRY(c.read(x, what));
            if (x > 1) return make_error(what + ": bool value " + std::to_string(x) + " is not 0 or 1");
            out.v = x != 0;
            break;
        }
        case GGUFType::STRING: {
            std::string_view s;
            HEARTH_TRY(c.read_string(s, what));
            out.v = s;
            break;
        }
        case GGUFType::ARRAY: {
            if (depth >= limits.max_nesting) {
                return make_error(what + ": arrays nested deeper than " +
                                  std::to_string(limits.max_nesting));
            }
            uint32_t et = 0;
            uint64_t count = 0;
            HEARTH_TRY(c.read(et, what, " element type"));
            if (!valid_value_type(et)) {
                return make_error(what + ": unknown array element type " + std::to_string(et));
            }
            HEARTH_TRY(c.read(count, what, " count"));
            const GGUFType etype = static_cast<GGUFType>(et);
            if (count > c.left() / min_encoded_size(etype)) {
                return make_error(what + ": array count " + std::to_string(count) +
                                  " cannot fit in the " + std::to_string(c.left()) +
                                  " bytes left in the file");
            }
            if (count > limits.max_array_elems || count > budget) {
                return make_error(what + ": array count " + std::to_string(count) +
                                  " exceeds the metadata limit (" +
                                  std::to_string(std::min(limits.max_array_elems, budget)) +
                                  " more elements allowed)");
            }
            budget -= count;
            GGUFArray arr;
            arr.elem_type = etype;
            arr.items.resize(count);
            for (uint64_t i = 0; i < count; ++i) {
                // Elements share the array's name; the index is added only to an error
                // (every message starts with `what`), keeping big arrays linear to read.
                Status s = read_value(c, etype, arr.items[i], what, limits, depth + 1, budget);
                if (!s.ok()) {
                    return make_error(what + "[" + std::to_string(i) + "]" +
                                      s.error().message.substr(what.size()));
                }
            }
            out.v = std::move(arr);
            break;
        }
    }
    return {};
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) {
    return __builtin_mul_overflow(a, b, &out);
}

}  // namespace

// ---- GGUFFile --------------------------------------------------------------------

GGUFFile::~GGUFFile() {
    if (map_ != nullptr) munmap(map_, map_size_);
}

Expected<std::unique_ptr<GGUFFile>> GGUFFile::open(const std::string& path,
                                                   const GGUFLimits& limits) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(path + ": " + std::strerror(errno));
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        return make_error(path + ": " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error(path + ": not a regular file");
    }
    std::unique_ptr<GGUFFile> f(new GGUFFile());
    f->path_ = path;
    const size_t size = static_cast<size_t>(st.st_size);
    if (size > 0) {
        void* m = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            return make_error(path + ": mmap failed: " + std::strerror(e));
        }
        f->map_ = m;
        f->map_size_ = size;
        f->bytes_ = std::span<const uint8_t>(static_cast<const uint8_t*>(m), size);
    }
    ::close(fd);
    if (Status s = f->parse_all(limits); !s.ok()) return make_error(path + ": " + s.error().message);
    return f;
}

Expected<std::unique_ptr<GGUFFile>> GGUFFile::parse(std::span<const uint8_t> bytes,
                                                    const GGUFLimits& limits) {
    std::unique_ptr<GGUFFile> f(new GGUFFile());
    f->path_ = "<memory>";
    f->bytes_ = bytes;
    HEARTH_TRY(f->parse_all(limits));
    return f;
}

Status GGUFFile::parse_all(const GGUFLimits& limits) {
    Cursor c(bytes_);
    uint32_t magic = 0;
    HEARTH_TRY(c.read(magic, "header magic"));
    if (magic != kMagic) return make_error("not a GGUF file (bad magic)");
    HEARTH_TRY(c.read(version_, "header version"));
    if (version_ != 2 && version_ != 3) {
        return make_error("unsupported GGUF version " + std::to_string(version_) +
                          " (hearth reads versions 2 and 3)");
    }
    uint64_t n_tensors = 0, n_kv = 0;
    HEARTH_TRY(c.read(n_tensors, "header tensor_count"));
    HEARTH_TRY(c.read(n_kv, "header metadata_kv_count"));
    if (n_tensors > limits.max_tensors || n_tensors > c.left() / 24) {
        return make_error("header tensor_count " + std::to_string(n_tensors) + " is implausible");
    }
    if (n_kv > limits.max_kv || n_kv > c.left() / 12) {
        return make_error("header metadata_kv_count " + std::to_string(n_kv) + " is implausible");
    }

    kv_.resize(n_kv);
    uint64_t value_budget = limits.max_metadata_values;
    for (uint64_t i = 0; i < n_kv; ++i) {
        const std::string where = "metadata[" + std::to_string(i) + "]";
        HEARTH_TRY(c.read_string(kv_[i].key, where + " key"));
        const std::string what = where + " '" + std::string(kv_[i].key) + "'";
        uint32_t t = 0;
        HEARTH_TRY(c.read(t, what + " type"));
        if (!valid_value_type(t)) return make_error(what + ": unknown value type " + std::to_string(t));
        HEARTH_TRY(
            read_value(c, static_cast<GGUFType>(t), kv_[i].value, what, limits, 0, value_budget));
    }

    {
        std::unordered_set<std::string_view> seen;
        for (uint64_t i = 0; i < n_kv; ++i) {
            if (!seen.insert(kv_[i].key).second) {
                return make_error("metadata[" + std::to_string(i) + "]: duplicate key '" +
                                  std::string(kv_[i].key) + "'");
            }
        }
    }
    if (const GGUFValue* a = find("general.alignment")) {
        auto v = a->as_uint();
        if (!v || *v == 0 || (*v & (*v - 1)) != 0 || *v > (1u << 20)) {
            return make_error("metadata 'general.alignment' must be a power of two up to 1 MiB");
        }
        alignment_ = *v;
    }

    tensors_.resize(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GGUFTensorInfo& ti = tensors_[i];
        const std::string where = "tensor[" + std::to_string(i) + "]";
        HEARTH_TRY(c.read_string(ti.name, where + " name"));
        const std::string what = where + " '" + std::string(ti.name) + "'";
        HEARTH_TRY(c.read(ti.n_dims, what + " n_dims"));
        if (ti.n_dims < 1 || ti.n_dims > 4) {
            return make_error(what + ": n_dims " + std::to_string(ti.n_dims) + " is not in 1..4");
        }
        uint64_t n_elems = 1;
        for (uint32_t d = 0; d < ti.n_dims; ++d) {
            uint64_t ne = 0;
            HEARTH_TRY(c.read(ne, what + " ne[" + std::to_string(d) + "]"));
            if (ne == 0 || ne > (1ull << 40) || mul_overflows(n_elems, ne, n_elems) ||
                n_elems > (1ull << 48)) {
                return make_error(what + ": dimension ne[" + std::to_string(d) + "] = " +
                                  std::to_string(ne) + " is out of range");
            }
            ti.ne[d] = static_cast<int64_t>(ne);
        }
        uint32_t type = 0;
        HEARTH_TRY(c.read(type, what + " type"));
        ti.type = static_cast<GGMLType>(type);
        const TypeTraits* tt = type_traits(ti.type);
        if (tt == nullptr) return make_error(what + ": unknown tensor type " + std::to_string(type));
        if (ti.ne[0] % tt->block_elems != 0) {
            return make_error(what + ": row length " + std::to_string(ti.ne[0]) +
                              " is not a multiple of the " + std::string(tt->name) +
                              " block size " + std::to_string(tt->block_elems));
        }
        const uint64_t n_blocks = n_elems / static_cast<uint64_t>(tt->block_elems);
        if (mul_overflows(n_blocks, tt->block_bytes, ti.nbytes)) {
            return make_error(what + ": size overflows");
        }
        HEARTH_TRY(c.read(ti.offset, what + " offset"));
        if (ti.offset % alignment_ != 0) {
            return make_error(what + ": offset " + std::to_string(ti.offset) +
                              " is not aligned to " + std::to_string(alignment_));
        }
    }

    {
        std::unordered_set<std::string_view> seen;
        for (uint64_t i = 0; i < n_tensors; ++i) {
            if (!seen.insert(tensors_[i].name).second) {
                return make_error("tensor[" + std::to_string(i) + "]: duplicate name '" +
                                  std::string(tensors_[i].name) + "'");
            }
        }
    }
    // Data section starts at the next multiple of the alignment.
    const uint64_t pos = c.pos();
    data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
    if (data_offset_ > bytes_.size()) {
        if (n_tensors == 0) {
            data_offset_ = bytes_.size();  // vocab-only files may end without padding
        } else {
            return make_error("file truncated before the tensor data section (offset " +
                              std::to_string(data_offset_) + ", file size " +
                              std::to_string(bytes_.size()) + ")");
        }
    }
    const uint64_t data_size = bytes_.size() - data_offset_;
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GGUFTensorInfo& ti = tensors_[i];
        if (ti.offset > data_size || ti.nbytes > data_size - ti.offset) {
            return make_error("tensor[" + std::to_string(i) + "] '" + std::string(ti.name) +
                              "': data [" + std::to_string(ti.offset) + ", +" +
                              std::to_string(ti.nbytes) + ") lies beyond the end of the file (" +
                              std::to_string(data_size) + " data bytes)");
        }
        ti.data = bytes_.data() + data_offset_ + ti.offset;
    }
    return {};
}

const GGUFValue* GGUFFile::find(std::string_view key) const {
    for (const GGUFKV& kv : kv_) {
        if (kv.key == key) return &kv.value;
    }
    return nullptr;
}

const GGUFTensorInfo* GGUFFile::tensor(std::string_view name) const {
    for (const GGUFTensorInfo& t : tensors_) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

std::optional<std::string_view> GGUFFile::get_string(std::string_view key) const {
    const GGUFValue* v = find(key);
    return v ? v->as_string() : std::nullopt;
}

std::optional<int64_t> GGUFFile::get_int(std::string_view key) const {
    const GGUFValue* v = find(key);
    return v ? v->as_int() : std::nullopt;
}

std::optional<double> GGUFFile::get_float(std::string_view key) const {
    const GGUFValue* v = find(key);
    return v ? v->as_float() : std::nullopt;
}

std::optional<bool> GGUFFile::get_bool(std::string_view key) const {
    const GGUFValue* v = find(key);
    return v ? v->as_bool() : std::nullopt;
}

const GGUFArray* GGUFFile::get_array(std::string_view key) const {
    const GGUFValue* v = find(key);
    return v ? v->as_array() : nullptr;
}

}  // namespace hearth
