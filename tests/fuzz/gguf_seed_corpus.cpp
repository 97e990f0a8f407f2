// Writes small valid GGUF files, built with the project's writer, as the seed part of the
// fuzz corpus (tests/fuzz/corpus/gguf/seed-*.gguf). Run it again after changing the
// writer: gguf_seed_corpus tests/fuzz/corpus/gguf
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gguf_writer.h"
#include "quant.h"

namespace {

using namespace hearth;

GGUFValue array_of(GGUFType et, std::vector<GGUFValue> items) {
    GGUFArray a;
    a.elem_type = et;
    a.items = std::move(items);
    return GGUFValue{GGUFType::ARRAY, std::move(a)};
}

GGUFWriter scalars() {
    GGUFWriter w;
    w.set_u8("u8", 200);
    w.set_i8("i8", -100);
    w.set_u16("u16", 60000);
    w.set_i16("i16", -30000);
    w.set_u32("u32", 4000000000u);
    w.set_i32("i32", -2000000000);
    w.set_u64("u64", 1ull << 63);
    w.set_i64("i64", -(1ll << 62));
    w.set_f32("f32", 1.5f);
    w.set_f64("f64", -0.125);
    w.set_bool("bool", true);
    w.set_string("general.architecture", "qwen2");
    return w;
}

GGUFWriter arrays() {
    GGUFWriter w;
    w.set_array_string("strings", std::vector<std::string>{"a", "", "<|endoftext|>"});
    w.set_array_u8("u8s", std::vector<uint8_t>{1, 2, 3});
    w.set_array_i32("i32s", std::vector<int32_t>{-1, 1});
    w.set_array_u32("u32s", std::vector<uint32_t>{7});
    w.set_array_i64("i64s", std::vector<int64_t>{-7, 7});
    w.set_array_f32("f32s", std::vector<float>{0.5f, NAN});
    w.set_array_i32("empty", {});
    const GGUFValue s{GGUFType::STRING, std::string_view("x")};
    const GGUFValue inner = array_of(GGUFType::STRING, {s, s});
    const GGUFValue nested = array_of(GGUFType::ARRAY, {inner, array_of(GGUFType::BOOL, {})});
    (void)w.set_value("nested", array_of(GGUFType::ARRAY, {nested}));
    return w;
}

GGUFWriter vocab() {
    GGUFWriter w;
    w.set_string("general.architecture", "qwen2");
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_array_string("tokenizer.ggml.tokens",
                       std::vector<std::string>{"a", "b", "ab", "<|endoftext|>"});
    w.set_array_i32("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1, 1, 3});
    w.set_array_string("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
    w.set_u32("tokenizer.ggml.eos_token_id", 3);
    w.set_bool("tokenizer.ggml.add_bos_token", false);
    return w;
}

// One tensor of every type the writer accepts, quantized from a ramp.
GGUFWriter tensors(std::vector<std::vector<uint8_t>>& storage) {
    GGUFWriter w;
    const GGMLType types[] = {GGMLType::F32,  GGMLType::F16,  GGMLType::BF16, GGMLType::Q4_0,
                              GGMLType::Q4_1, GGMLType::Q5_0, GGMLType::Q5_1, GGMLType::Q8_0,
                              GGMLType::Q8_1, GGMLType::Q2_K, GGMLType::Q3_K, GGMLType::Q4_K,
                              GGMLType::Q5_K, GGMLType::Q6_K};
    for (GGMLType t : types) {
        const TypeTraits* tt = type_traits(t);
        const int64_t n = tt->block_elems == 1 ? 8 : tt->block_elems;
        std::vector<float> x(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = std::sin(0.37f * i) * 2.0f;
        storage.emplace_back(row_bytes(t, n).value());
        quantize_row(t, x.data(), storage.back().data(), n);
        const std::vector<int64_t> ne = {n};
        (void)w.add_tensor(std::string("t.") + std::string(tt->name), t, ne,
                           std::span<const uint8_t>(storage.back()));
    }
    storage.emplace_back(16, 0x11);
    const std::vector<int64_t> ne2 = {2, 2};
    (void)w.add_tensor("t.i32", GGMLType::I32, ne2, std::span<const uint8_t>(storage.back()));
    return w;
}

GGUFWriter aligned(std::vector<std::vector<uint8_t>>& storage) {
    GGUFWriter w;
    (void)w.set_alignment(64);
    storage.emplace_back(12, 0x3f);
    const std::vector<int64_t> ne = {3};
    (void)w.add_tensor("a", GGMLType::F32, ne, std::span<const uint8_t>(storage.back()));
    (void)w.add_tensor("b", GGMLType::F32, ne, std::span<const uint8_t>(storage.back()));
    return w;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    std::vector<std::vector<uint8_t>> storage;
    storage.reserve(64);  // spans into it must stay valid
    const std::pair<const char*, GGUFWriter> files[] = {
        {"seed-empty.gguf", GGUFWriter()},       {"seed-scalars.gguf", scalars()},
        {"seed-arrays.gguf", arrays()},          {"seed-vocab.gguf", vocab()},
        {"seed-tensors.gguf", tensors(storage)}, {"seed-align64.gguf", aligned(storage)},
    };
    for (const auto& [name, writer] : files) {
        const Status s = writer.write(dir + "/" + name);
        if (!s.ok()) {
            std::fprintf(stderr, "%s\n", s.error().message.c_str());
            return 1;
        }
    }
    return 0;
}
