#include "gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>

#include "quant.h"

namespace hearth {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" as a little-endian u32
constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = 1u << 20;
constexpr uint32_t kMaxNesting = 8;  // the reader's default limit
constexpr size_t kRowStagingBytes = 4u << 20;

template <class T>
void put(std::vector<uint8_t>& out, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

uint64_t align_up(uint64_t v, uint64_t a) {
    return (v + a - 1) / a * a;
}

bool valid_type(GGUFType t) {
    return static_cast<uint32_t>(t) <= static_cast<uint32_t>(GGUFType::FLOAT64);
}

std::string type_label(GGUFType t) {
    return valid_type(t) ? std::string(gguf_type_name(t))
                         : "type " + std::to_string(static_cast<uint32_t>(t));
}

// Integer payload of a value declared as an integer type, range-checked against [lo, hi].
Status get_integer(const GGUFValue& v, int64_t lo, uint64_t hi, uint64_t& bits) {
    if (const auto* u = std::get_if<uint64_t>(&v.v)) {
        if (*u > hi) return make_error(std::to_string(*u) + " does not fit " + type_label(v.type));
        bits = *u;
        return {};
    }
    if (const auto* i = std::get_if<int64_t>(&v.v)) {
        if (*i < lo || (*i > 0 && static_cast<uint64_t>(*i) > hi)) {
            return make_error(std::to_string(*i) + " does not fit " + type_label(v.type));
        }
        bits = static_cast<uint64_t>(*i);
        return {};
    }
    return make_error(type_label(v.type) + " value holds no integer");
}

// Appends the payload of an integer value declared as T, range-checked against T.
template <class T>
Status put_integer(const GGUFValue& v, std::vector<uint8_t>& out) {
    uint64_t bits = 0;
    HEARTH_TRY(get_integer(v, static_cast<int64_t>(std::numeric_limits<T>::min()),
                           static_cast<uint64_t>(std::numeric_limits<T>::max()), bits));
    put<T>(out, static_cast<T>(bits));
    return {};
}

// Appends the payload of a float value declared as T (float or double).
template <class T>
Status put_float(const GGUFValue& v, std::vector<uint8_t>& out) {
    const auto* d = std::get_if<double>(&v.v);
    if (d == nullptr) return make_error(type_label(v.type) + " value holds no float");
    put<T>(out, static_cast<T>(*d));
    return {};
}

// Appends the value (without its type tag) to out, checking payload against type.
Status encode_payload(const GGUFValue& v, std::vector<uint8_t>& out, uint32_t depth) {
    switch (v.type) {
        case GGUFType::UINT8:
            return put_integer<uint8_t>(v, out);
        case GGUFType::INT8:
            return put_integer<int8_t>(v, out);
        case GGUFType::UINT16:
            return put_integer<uint16_t>(v, out);
        case GGUFType::INT16:
            return put_integer<int16_t>(v, out);
        case GGUFType::UINT32:
            return put_integer<uint32_t>(v, out);
        case GGUFType::INT32:
            return put_integer<int32_t>(v, out);
        case GGUFType::UINT64:
            return put_integer<uint64_t>(v, out);
        case GGUFType::INT64:
            return put_integer<int64_t>(v, out);
        case GGUFType::FLOAT32:
            return put_float<float>(v, out);
        case GGUFType::FLOAT64:
            return put_float<double>(v, out);
        case GGUFType::BOOL: {
            const auto* b = std::get_if<bool>(&v.v);
            if (b == nullptr) return make_error("bool value holds no bool");
            put<uint8_t>(out, *b ? 1 : 0);
            return {};
        }
        case GGUFType::STRING: {
            const auto* s = std::get_if<std::string_view>(&v.v);
            if (s == nullptr) return make_error("string value holds no string");
            put_string(out, *s);
            return {};
        }
        case GGUFType::ARRAY: {
            const GGUFArray* a = v.as_array();
            if (a == nullptr) return make_error("array value holds no array");
            if (depth >= kMaxNesting) {
                return make_error("arrays nested deeper than " + std::to_string(kMaxNesting));
            }
            if (!valid_type(a->elem_type)) {
                return make_error("array of unknown element " + type_label(a->elem_type));
            }
            put<uint32_t>(out, static_cast<uint32_t>(a->elem_type));
            put<uint64_t>(out, a->items.size());
            for (size_t i = 0; i < a->items.size(); ++i) {
                const GGUFValue& item = a->items[i];
                if (item.type != a->elem_type) {
                    return make_error("[" + std::to_string(i) + "] is " + type_label(item.type) +
                                      " in an array of " + type_label(a->elem_type));
                }
                if (Status s = encode_payload(item, out, depth + 1); !s.ok()) {
                    const std::string& m = s.error().message;
                    return make_error("[" + std::to_string(i) + "]" + (m[0] == '[' ? "" : ": ") +
                                      m);
                }
            }
            return {};
        }
    }
    return make_error("unknown value " + type_label(v.type));
}

std::vector<uint8_t> tagged(GGUFType t) {
    std::vector<uint8_t> out;
    put<uint32_t>(out, static_cast<uint32_t>(t));
    return out;
}

template <class T>
std::vector<uint8_t> encode_scalar(GGUFType t, T v) {
    std::vector<uint8_t> out = tagged(t);
    put<T>(out, v);
    return out;
}

// An array value's tag, element type and count; the elements follow.
std::vector<uint8_t> array_header(GGUFType elem, uint64_t count) {
    std::vector<uint8_t> out = tagged(GGUFType::ARRAY);
    put<uint32_t>(out, static_cast<uint32_t>(elem));
    put<uint64_t>(out, count);
    return out;
}

template <class T>
std::vector<uint8_t> encode_array(GGUFType elem, std::span<const T> v) {
    std::vector<uint8_t> out = array_header(elem, v.size());
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    out.insert(out.end(), p, p + v.size_bytes());
    return out;
}

}  // namespace

// ---- sinks -------------------------------------------------------------------------

class GGUFWriter::Sink {
public:
    virtual ~Sink() = default;
    virtual Status write(const uint8_t* p, size_t n) = 0;

    Status zeros(uint64_t n) {
        static constexpr uint8_t kZeros[4096] = {};
        while (n > 0) {
            const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof kZeros));
            HEARTH_TRY(write(kZeros, k));
            n -= k;
        }
        return {};
    }
    uint64_t written() const { return written_; }

protected:
    uint64_t written_ = 0;
};

class GGUFWriter::MemorySink final : public GGUFWriter::Sink {
public:
    explicit MemorySink(uint64_t expected) { out_.reserve(static_cast<size_t>(expected)); }
    Status write(const uint8_t* p, size_t n) override {
        out_.insert(out_.end(), p, p + n);
        written_ += n;
        return {};
    }
    std::vector<uint8_t>& bytes() { return out_; }

private:
    std::vector<uint8_t> out_;
};

// Buffered writes to a file descriptor; large writes bypass the buffer.
class GGUFWriter::FileSink final : public GGUFWriter::Sink {
public:
    explicit FileSink(int fd) : fd_(fd) { buf_.reserve(kBuf); }
    ~FileSink() override {
        if (fd_ >= 0) ::close(fd_);
    }

    Status write(const uint8_t* p, size_t n) override {
        if (buf_.size() + n > kBuf) HEARTH_TRY(flush());
        if (n >= kBuf) {
            HEARTH_TRY(write_all(p, n));
        } else {
            buf_.insert(buf_.end(), p, p + n);
        }
        written_ += n;
        return {};
    }

    // Flushes, syncs to disk and closes.
    Status finish() {
        HEARTH_TRY(flush());
        if (::fsync(fd_) != 0)
            return make_error(std::string("fsync failed: ") + std::strerror(errno));
        const int fd = fd_;
        fd_ = -1;
        if (::close(fd) != 0)
            return make_error(std::string("close failed: ") + std::strerror(errno));
        return {};
    }

private:
    static constexpr size_t kBuf = 1u << 20;

    Status flush() {
        HEARTH_TRY(write_all(buf_.data(), buf_.size()));
        buf_.clear();
        return {};
    }

    Status write_all(const uint8_t* p, size_t n) {
        while (n > 0) {
            const ssize_t w = ::write(fd_, p, std::min<size_t>(n, 1u << 30));
            if (w < 0) {
                if (errno == EINTR) continue;
                return make_error(std::string("write failed: ") + std::strerror(errno));
            }
            p += w;
            n -= static_cast<size_t>(w);
        }
        return {};
    }

    int fd_;
    std::vector<uint8_t> buf_;
};

// ---- metadata ----------------------------------------------------------------------

void GGUFWriter::set_encoded(std::string_view key, std::vector<uint8_t> encoded) {
    for (KV& kv : kvs_) {
        if (kv.key == key) {
            kv.encoded = std::move(encoded);
            return;
        }
    }
    kvs_.push_back(KV{std::string(key), std::move(encoded)});
}

void GGUFWriter::set_u8(std::string_view key, uint8_t v) {
    set_encoded(key, encode_scalar(GGUFType::UINT8, v));
}
void GGUFWriter::set_i8(std::string_view key, int8_t v) {
    set_encoded(key, encode_scalar(GGUFType::INT8, v));
}
void GGUFWriter::set_u16(std::string_view key, uint16_t v) {
    set_encoded(key, encode_scalar(GGUFType::UINT16, v));
}
void GGUFWriter::set_i16(std::string_view key, int16_t v) {
    set_encoded(key, encode_scalar(GGUFType::INT16, v));
}
void GGUFWriter::set_u32(std::string_view key, uint32_t v) {
    set_encoded(key, encode_scalar(GGUFType::UINT32, v));
}
void GGUFWriter::set_i32(std::string_view key, int32_t v) {
    set_encoded(key, encode_scalar(GGUFType::INT32, v));
}
void GGUFWriter::set_u64(std::string_view key, uint64_t v) {
    set_encoded(key, encode_scalar(GGUFType::UINT64, v));
}
void GGUFWriter::set_i64(std::string_view key, int64_t v) {
    set_encoded(key, encode_scalar(GGUFType::INT64, v));
}
void GGUFWriter::set_f32(std::string_view key, float v) {
    set_encoded(key, encode_scalar(GGUFType::FLOAT32, v));
}
void GGUFWriter::set_f64(std::string_view key, double v) {
    set_encoded(key, encode_scalar(GGUFType::FLOAT64, v));
}
void GGUFWriter::set_bool(std::string_view key, bool v) {
    set_encoded(key, encode_scalar<uint8_t>(GGUFType::BOOL, v ? 1 : 0));
}

void GGUFWriter::set_string(std::string_view key, std::string_view v) {
    std::vector<uint8_t> out = tagged(GGUFType::STRING);
    put_string(out, v);
    set_encoded(key, std::move(out));
}

void GGUFWriter::set_array_string(std::string_view key, std::span<const std::string> v) {
    std::vector<uint8_t> out = array_header(GGUFType::STRING, v.size());
    for (const std::string& s : v) put_string(out, s);
    set_encoded(key, std::move(out));
}

void GGUFWriter::set_array_u8(std::string_view key, std::span<const uint8_t> v) {
    set_encoded(key, encode_array(GGUFType::UINT8, v));
}
void GGUFWriter::set_array_i32(std::string_view key, std::span<const int32_t> v) {
    set_encoded(key, encode_array(GGUFType::INT32, v));
}
void GGUFWriter::set_array_u32(std::string_view key, std::span<const uint32_t> v) {
    set_encoded(key, encode_array(GGUFType::UINT32, v));
}
void GGUFWriter::set_array_i64(std::string_view key, std::span<const int64_t> v) {
    set_encoded(key, encode_array(GGUFType::INT64, v));
}
void GGUFWriter::set_array_f32(std::string_view key, std::span<const float> v) {
    set_encoded(key, encode_array(GGUFType::FLOAT32, v));
}

Status GGUFWriter::set_value(std::string_view key, const GGUFValue& v) {
    if (!valid_type(v.type)) {
        return make_error("metadata '" + std::string(key) + "': unknown " + type_label(v.type));
    }
    std::vector<uint8_t> out = tagged(v.type);
    if (Status s = encode_payload(v, out, 0); !s.ok()) {
        const std::string& m = s.error().message;
        return make_error("metadata '" + std::string(key) + "'" + (m[0] == '[' ? "" : ": ") + m);
    }
    set_encoded(key, std::move(out));
    return {};
}

Status GGUFWriter::set_alignment(uint32_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > kMaxAlignment) {
        return make_error("alignment " + std::to_string(alignment) +
                          " is not a power of two up to 1 MiB");
    }
    set_u32("general.alignment", alignment);
    return {};
}

bool GGUFWriter::has_key(std::string_view key) const {
    return std::any_of(kvs_.begin(), kvs_.end(), [&](const KV& kv) { return kv.key == key; });
}

bool GGUFWriter::remove_key(std::string_view key) {
    const auto it =
        std::find_if(kvs_.begin(), kvs_.end(), [&](const KV& kv) { return kv.key == key; });
    if (it == kvs_.end()) return false;
    kvs_.erase(it);
    return true;
}

Expected<uint64_t> GGUFWriter::alignment() const {
    for (const KV& kv : kvs_) {
        if (kv.key != "general.alignment") continue;
        uint32_t type = 0;
        uint32_t value = 0;
        std::memcpy(&type, kv.encoded.data(), 4);
        if (type != static_cast<uint32_t>(GGUFType::UINT32) || kv.encoded.size() != 8) {
            return make_error("metadata 'general.alignment' must be a u32");
        }
        std::memcpy(&value, kv.encoded.data() + 4, 4);
        if (value == 0 || (value & (value - 1)) != 0 || value > kMaxAlignment) {
            return make_error("metadata 'general.alignment' = " + std::to_string(value) +
                              " is not a power of two up to 1 MiB");
        }
        return uint64_t{value};
    }
    return kDefaultAlignment;
}

// ---- tensors -----------------------------------------------------------------------

Expected<GGUFWriter::Tensor> GGUFWriter::check_tensor(std::string_view name, GGMLType type,
                                                      const std::vector<int64_t>& ne) const {
    const std::string what = "tensor '" + std::string(name) + "'";
    for (const Tensor& t : tensors_) {
        if (t.name == name) return make_error(what + ": duplicate name");
    }
    const TypeTraits* tt = type_traits(type);
    if (tt == nullptr) {
        return make_error(what + ": unknown type " + std::to_string(static_cast<uint32_t>(type)));
    }
    if (ne.empty() || ne.size() > 4) {
        return make_error(what + ": " + std::to_string(ne.size()) + " dimensions (1..4 allowed)");
    }
    uint64_t elems = 1;
    for (size_t d = 0; d < ne.size(); ++d) {
        if (ne[d] < 1 || __builtin_mul_overflow(elems, static_cast<uint64_t>(ne[d]), &elems) ||
            elems > (1ull << 48)) {
            return make_error(what + ": dimension ne[" + std::to_string(d) +
                              "] = " + std::to_string(ne[d]) + " is out of range");
        }
    }
    auto rb = row_bytes(type, ne[0]);
    if (!rb.ok()) return make_error(what + ": " + rb.error().message);
    Tensor t;
    t.name = std::string(name);
    t.type = type;
    t.ne.assign(ne.begin(), ne.end());
    t.row_bytes = *rb;
    t.rows = static_cast<int64_t>(elems / static_cast<uint64_t>(ne[0]));
    t.nbytes = static_cast<uint64_t>(t.rows) * t.row_bytes;
    return t;
}

Status GGUFWriter::add_tensor(std::string_view name, GGMLType type, const std::vector<int64_t>& ne,
                              std::span<const uint8_t> data) {
    auto t = check_tensor(name, type, ne);
    if (!t.ok()) return t.error();
    if (data.size() != t->nbytes) {
        return make_error("tensor '" + std::string(name) + "': " + std::to_string(data.size()) +
                          " bytes given, its shape and type need " + std::to_string(t->nbytes));
    }
    t->data = data;
    tensors_.push_back(std::move(*t));
    return {};
}

Status GGUFWriter::add_tensor(std::string_view name, GGMLType type, const std::vector<int64_t>& ne,
                              GGUFTensorFill fill) {
    if (!fill) return make_error("tensor '" + std::string(name) + "': empty fill callback");
    auto t = check_tensor(name, type, ne);
    if (!t.ok()) return t.error();
    t->fill = std::move(fill);
    tensors_.push_back(std::move(*t));
    return {};
}

Status GGUFWriter::add_tensor(std::string_view name, GGMLType type, const std::vector<int64_t>& ne,
                              GGUFRowFill row_fill) {
    if (!row_fill) return make_error("tensor '" + std::string(name) + "': empty row callback");
    auto t = check_tensor(name, type, ne);
    if (!t.ok()) return t.error();
    t->row_fill = std::move(row_fill);
    tensors_.push_back(std::move(*t));
    return {};
}

Status GGUFWriter::copy_tensor(const GGUFTensorInfo& t) {
    if (t.data == nullptr) return make_error("tensor '" + std::string(t.name) + "' has no data");
    const std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + std::min<uint32_t>(t.n_dims, 4));
    return add_tensor(t.name, t.type, ne, std::span<const uint8_t>(t.data, t.nbytes));
}

// ---- output ------------------------------------------------------------------------

Expected<uint64_t> GGUFWriter::file_size() const {
    auto align = alignment();
    if (!align.ok()) return align.error();
    uint64_t header = 4 + 4 + 8 + 8;
    for (const KV& kv : kvs_) header += 8 + kv.key.size() + kv.encoded.size();
    for (const Tensor& t : tensors_) header += 8 + t.name.size() + 4 + 8 * t.ne.size() + 4 + 8;
    uint64_t size = align_up(header, *align);
    for (const Tensor& t : tensors_) size += align_up(t.nbytes, *align);
    return size;
}

Status GGUFWriter::emit(Sink& sink, uint64_t total, const GGUFProgressFn& progress) const {
    auto align_or = alignment();
    if (!align_or.ok()) return align_or.error();
    const uint64_t align = *align_or;

    std::vector<uint8_t> head;
    put<uint32_t>(head, kMagic);
    put<uint32_t>(head, kVersion);
    put<uint64_t>(head, tensors_.size());
    put<uint64_t>(head, kvs_.size());
    for (const KV& kv : kvs_) {
        put_string(head, kv.key);
        head.insert(head.end(), kv.encoded.begin(), kv.encoded.end());
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
        put_string(head, t.name);
        put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
        for (int64_t n : t.ne) put<uint64_t>(head, static_cast<uint64_t>(n));
        put<uint32_t>(head, static_cast<uint32_t>(t.type));
        put<uint64_t>(head, offset);
        offset += align_up(t.nbytes, align);
    }
    HEARTH_TRY(sink.write(head.data(), head.size()));
    HEARTH_TRY(sink.zeros(align_up(head.size(), align) - head.size()));

    GGUFWriteProgress p;
    p.tensor_count = tensors_.size();
    p.total_bytes = total;
    auto report = [&](size_t i, const Tensor& t) {
        if (!progress) return;
        p.tensor_index = i;
        p.tensor_name = t.name;
        p.bytes_written = sink.written();
        progress(p);
    };

    std::vector<uint8_t> buf;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const Tensor& t = tensors_[i];
        auto fail = [&](const Status& s) {
            return make_error("tensor '" + t.name + "': " + s.error().message);
        };
        if (t.fill) {
            buf.assign(static_cast<size_t>(t.nbytes), 0);
            if (Status s = t.fill(std::span<uint8_t>(buf)); !s.ok()) return fail(s);
            HEARTH_TRY(sink.write(buf.data(), buf.size()));
        } else if (t.row_fill) {
            const int64_t chunk_rows =
                std::max<int64_t>(1, static_cast<int64_t>(kRowStagingBytes / t.row_bytes));
            buf.assign(static_cast<size_t>(std::min(chunk_rows, t.rows)) * t.row_bytes, 0);
            for (int64_t r0 = 0; r0 < t.rows; r0 += chunk_rows) {
                const int64_t n = std::min(chunk_rows, t.rows - r0);
                for (int64_t r = 0; r < n; ++r) {
                    const std::span<uint8_t> row(buf.data() + static_cast<size_t>(r) * t.row_bytes,
                                                 t.row_bytes);
                    if (Status s = t.row_fill(r0 + r, row); !s.ok()) return fail(s);
                }
                HEARTH_TRY(sink.write(buf.data(), static_cast<size_t>(n) * t.row_bytes));
                if (r0 + n < t.rows) report(i, t);
            }
        } else {
            HEARTH_TRY(sink.write(t.data.data(), t.data.size()));
        }
        HEARTH_TRY(sink.zeros(align_up(t.nbytes, align) - t.nbytes));
        report(i, t);
    }
    if (sink.written() != total) {
        return make_error("internal error: wrote " + std::to_string(sink.written()) +
                          " bytes, expected " + std::to_string(total));
    }
    return {};
}

Expected<std::vector<uint8_t>> GGUFWriter::write_to_memory(const GGUFProgressFn& progress) const {
    auto total = file_size();
    if (!total.ok()) return total.error();
    MemorySink sink(*total);
    HEARTH_TRY(emit(sink, *total, progress));
    return std::move(sink.bytes());
}

Status GGUFWriter::write(const std::string& path, const GGUFProgressFn& progress) const {
    auto total = file_size();
    if (!total.ok()) return make_error(path + ": " + total.error().message);

    // A unique name beside the target, so the rename stays on one file system.
    static std::atomic<uint64_t> counter{0};
    const std::string tmp =
        path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return make_error(tmp + ": cannot create: " + std::strerror(errno));

    Status s;
    {
        FileSink sink(fd);
        s = emit(sink, *total, progress);
        if (s.ok()) s = sink.finish();
    }
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
        s = make_error("rename from " + tmp + " failed: " + std::strerror(errno));
    }
    if (!s.ok()) {
        ::unlink(tmp.c_str());
        return make_error(path + ": " + s.error().message);
    }
    return {};
}

}  // namespace hearth
