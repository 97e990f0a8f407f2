// libFuzzer target for the GGUF reader (and, through it, the writer and the block decoders).
//
// Any input must either be rejected with an error or parse into a file whose every value
// and tensor can be read; a parsed file must survive a writer round trip unchanged.
// Invariant violations trap, so the fuzzer reports them like crashes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "gguf.h"
#include "gguf_writer.h"
#include "quant.h"

namespace {

using namespace hearth;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

// Reads every value through the typed accessors; returns a count so the work is kept.
size_t walk(const GGUFValue& v) {
    size_t n = 1;
    n += v.as_int().has_value() + v.as_uint().has_value() + v.as_float().has_value();
    n += v.as_bool().has_value();
    if (auto s = v.as_string()) n += s->size();
    if (const GGUFArray* a = v.as_array()) {
        for (const GGUFValue& item : a->items) {
            check(item.type == a->elem_type);
            n += walk(item);
        }
    }
    return n;
}

// Decodes the start of a tensor, re-encodes it and takes a dot product, so the block
// decoders and quantizers see arbitrary bits (NaN scales, Inf, subnormals).
void exercise_tensor(const GGUFTensorInfo& t) {
    const TypeTraits* tt = type_traits(t.type);
    check(tt != nullptr);
    check(t.nbytes == 0 || t.data != nullptr);
    if (!tt->can_dequantize) return;
    int64_t n = std::min<int64_t>(t.ne[0], 1024);
    n -= n % tt->block_elems;
    if (n == 0) return;
    std::vector<float> row(static_cast<size_t>(n));
    dequantize_row(t.type, t.data, row.data(), n);
    const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
    volatile float sink = dot_row(t.type, t.data, ones.data(), n);
    (void)sink;
    if (tt->can_quantize) {
        std::vector<uint8_t> q(row_bytes(t.type, n).value());
        quantize_row(t.type, row.data(), q.data(), n);
    }
}

bool alignment_is_u32(const GGUFFile& f) {
    const GGUFValue* a = f.find("general.alignment");
    return a == nullptr || a->type == GGUFType::UINT32;
}

std::vector<uint8_t> rewrite(const GGUFFile& f) {
    GGUFWriter w;
    for (const GGUFKV& kv : f.metadata()) check(w.copy_kv(kv).ok());
    for (const GGUFTensorInfo& t : f.tensors()) check(w.copy_tensor(t).ok());
    auto bytes = w.write_to_memory();
    check(bytes.ok());
    return std::move(*bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto parsed = GGUFFile::parse(std::span<const uint8_t>(data, size));
    if (!parsed.ok()) {
        check(!parsed.error().message.empty());
        return 0;
    }
    const GGUFFile& f = **parsed;
    size_t work = 0;
    for (const GGUFKV& kv : f.metadata()) {
        check(f.find(kv.key) == &kv.value);
        work += walk(kv.value);
    }
    uint64_t tensor_bytes = 0;
    for (const GGUFTensorInfo& t : f.tensors()) {
        check(f.tensor(t.name) == &t);
        check(t.data >= data && t.data + t.nbytes <= data + size);
        exercise_tensor(t);
        tensor_bytes += t.nbytes;
    }
    (void)work;

    // Tensors may overlap in a hostile file, so the rewritten file can be much larger than
    // the input; skip the round trip when it would be.
    if (!alignment_is_u32(f) || tensor_bytes > 16 * size + (1u << 20)) return 0;
    const std::vector<uint8_t> once = rewrite(f);
    auto again = GGUFFile::parse(once);
    check(again.ok());
    const GGUFFile& g = **again;
    check(g.metadata().size() == f.metadata().size());
    check(g.tensors().size() == f.tensors().size());
    for (size_t i = 0; i < f.tensors().size(); ++i) {
        const GGUFTensorInfo& a = f.tensors()[i];
        const GGUFTensorInfo& b = g.tensors()[i];
        check(a.name == b.name && a.type == b.type && a.ne == b.ne && a.nbytes == b.nbytes);
        check(a.nbytes == 0 || std::equal(a.data, a.data + a.nbytes, b.data));
    }
    // The writer's output is a fixed point of read + write.
    check(rewrite(g) == once);
    return 0;
}
