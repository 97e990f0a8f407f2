// GGUF reader and writer: the test models' metadata and tensor tables, writer -> reader
// round trips, byte-identical rewrites of real files, and hostile inputs that must fail
// with a message (never a crash, never a giant allocation).
#include "gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "gguf_writer.h"
#include "quant.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
const std::string kData = HEARTH_TEST_DATA;

std::unique_ptr<GGUFFile> open_ok(const std::string& name) {
    auto f = GGUFFile::open(kData + "/" + name);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
    return f.ok() ? std::move(*f) : nullptr;
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// ---- the test models ---------------------------------------------------------------

TEST(GGUFRead, EveryTestFileHasAConsistentTensorTable) {
    size_t files = 0;
    for (const auto& entry : fs::directory_iterator(kData)) {
        if (entry.path().extension() != ".gguf") continue;
        ++files;
        SCOPED_TRACE(entry.path().string());
        auto f = GGUFFile::open(entry.path().string());
        ASSERT_TRUE(f.ok()) << f.error().message;
        const GGUFFile& g = **f;
        EXPECT_EQ(g.version(), 3u);
        EXPECT_EQ(g.alignment(), 32u);
        EXPECT_EQ(g.data_offset() % g.alignment(), 0u);
        EXPECT_EQ(g.file_size(), fs::file_size(entry.path()));
        EXPECT_TRUE(g.get_string("general.architecture").has_value());
        std::set<std::string_view> names;
        for (const GGUFTensorInfo& t : g.tensors()) {
            EXPECT_TRUE(names.insert(t.name).second) << t.name;
            EXPECT_EQ(t.offset % g.alignment(), 0u) << t.name;
            const size_t rb = row_bytes(t.type, t.ne[0]).value();
            EXPECT_EQ(t.nbytes, rb * static_cast<uint64_t>(t.n_elements() / t.ne[0])) << t.name;
            EXPECT_EQ(t.data, g.bytes().data() + g.data_offset() + t.offset) << t.name;
            EXPECT_LE(g.data_offset() + t.offset + t.nbytes, g.file_size()) << t.name;
            EXPECT_EQ(g.tensor(t.name), &t);
        }
    }
    EXPECT_GE(files, 7u);
}

TEST(GGUFRead, QwenTestModelMetadata) {
    for (const char* name : {"qwen2-test-f16.gguf", "qwen2-test-q8_0.gguf",
                             "qwen2-test-q4_k_m.gguf", "qwen2-test-q6_k.gguf"}) {
        SCOPED_TRACE(name);
        auto f = open_ok(name);
        ASSERT_NE(f, nullptr);
        EXPECT_EQ(f->get_string("general.architecture"), "qwen2");
        EXPECT_EQ(f->get_int("qwen2.block_count"), 2);
        EXPECT_EQ(f->get_int("qwen2.embedding_length"), 512);
        EXPECT_EQ(f->get_int("qwen2.feed_forward_length"), 1024);
        EXPECT_EQ(f->get_int("qwen2.attention.head_count"), 4);
        EXPECT_EQ(f->get_int("qwen2.attention.head_count_kv"), 2);
        EXPECT_EQ(f->get_float("qwen2.rope.freq_base"), 1e6);
        EXPECT_NEAR(f->get_float("qwen2.attention.layer_norm_rms_epsilon").value(), 1e-6, 1e-12);
        EXPECT_EQ(f->get_bool("tokenizer.ggml.add_bos_token"), false);
        EXPECT_EQ(f->get_int("tokenizer.ggml.fim_pre_token_id"), 2042);
        const GGUFArray* tokens = f->get_array("tokenizer.ggml.tokens");
        ASSERT_NE(tokens, nullptr);
        EXPECT_EQ(tokens->elem_type, GGUFType::STRING);
        ASSERT_EQ(tokens->items.size(), 2048u);
        EXPECT_EQ(tokens->items[2039].as_string(), "<|endoftext|>");
        EXPECT_EQ(tokens->items[2042].as_string(), "<|fim_prefix|>");
        const GGUFArray* types = f->get_array("tokenizer.ggml.token_type");
        ASSERT_NE(types, nullptr);
        EXPECT_EQ(types->elem_type, GGUFType::INT32);
        EXPECT_EQ(types->items.size(), 2048u);
        EXPECT_EQ(f->get_array("tokenizer.ggml.merges")->items.size(), 1783u);

        EXPECT_EQ(f->tensors().size(), 27u);
        const GGUFTensorInfo* emb = f->tensor("token_embd.weight");
        ASSERT_NE(emb, nullptr);
        EXPECT_EQ(emb->n_dims, 2u);
        EXPECT_EQ(emb->ne, (std::array<int64_t, 4>{512, 2048, 1, 1}));
        const GGUFTensorInfo* k = f->tensor("blk.1.attn_k.weight");
        ASSERT_NE(k, nullptr);
        EXPECT_EQ(k->ne, (std::array<int64_t, 4>{512, 256, 1, 1}));
        const GGUFTensorInfo* kb = f->tensor("blk.1.attn_k.bias");
        ASSERT_NE(kb, nullptr);
        EXPECT_EQ(kb->type, GGMLType::F32);
        EXPECT_EQ(kb->n_dims, 1u);
        EXPECT_EQ(f->tensor("blk.0.ffn_down.weight")->ne[0], 1024);
        EXPECT_EQ(f->tensor("blk.2.ffn_down.weight"), nullptr);
        // Wrong-kind getters answer nullopt rather than converting.
        EXPECT_FALSE(f->get_string("qwen2.block_count").has_value());
        EXPECT_FALSE(f->get_int("general.architecture").has_value());
        EXPECT_EQ(f->get_array("general.name"), nullptr);
    }
    EXPECT_EQ(open_ok("qwen2-test-f16.gguf")->tensor("blk.0.attn_q.weight")->type, GGMLType::F16);
    EXPECT_EQ(open_ok("qwen2-test-q8_0.gguf")->tensor("blk.0.attn_q.weight")->type, GGMLType::Q8_0);
}

TEST(GGUFRead, LlamaAndDemoModels) {
    auto llama = open_ok("llama-test-q8_0.gguf");
    ASSERT_NE(llama, nullptr);
    EXPECT_EQ(llama->get_string("general.architecture"), "llama");
    EXPECT_EQ(llama->get_int("llama.attention.head_count"), 8);
    EXPECT_EQ(llama->get_int("llama.attention.head_count_kv"), 4);
    EXPECT_EQ(llama->get_float("llama.rope.freq_base"), 1e5);
    EXPECT_EQ(llama->tensors().size(), 21u);  // no biases
    EXPECT_EQ(llama->tensor("blk.0.attn_q.bias"), nullptr);

    auto demo = open_ok("hearth-demo-py-q8_0.gguf");
    ASSERT_NE(demo, nullptr);
    EXPECT_EQ(demo->get_int("qwen2.block_count"), 6);
    EXPECT_EQ(demo->get_int("qwen2.feed_forward_length"), 1536);
    EXPECT_EQ(demo->tensors().size(), 6u * 12 + 2);  // tied output: no output.weight
    EXPECT_EQ(demo->tensor("output.weight"), nullptr);
    EXPECT_EQ(demo->tensor("blk.5.ffn_down.weight")->ne, (std::array<int64_t, 4>{1536, 512, 1, 1}));
}

TEST(GGUFRead, VocabOnlyFile) {
    auto v = open_ok("qwen-vocab.gguf");
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(v->tensors().empty());
    const GGUFArray* tokens = v->get_array("tokenizer.ggml.tokens");
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->items.size(), 151669u);
    EXPECT_EQ(tokens->items[151659].as_string(), "<|fim_prefix|>");
    EXPECT_EQ(v->get_array("tokenizer.ggml.merges")->items.size(), 151387u);
    EXPECT_EQ(v->get_int("tokenizer.ggml.eos_token_id"), 151643);
}

TEST(GGUFRead, ParseOfBytesMatchesOpen) {
    const std::vector<uint8_t> bytes = read_file(kData + "/qwen2-test-q6_k.gguf");
    auto parsed = GGUFFile::parse(bytes);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    auto opened = open_ok("qwen2-test-q6_k.gguf");
    ASSERT_EQ((*parsed)->tensors().size(), opened->tensors().size());
    for (size_t i = 0; i < opened->tensors().size(); ++i) {
        const auto& a = (*parsed)->tensors()[i];
        const auto& b = opened->tensors()[i];
        EXPECT_EQ(a.name, b.name);
        EXPECT_EQ(a.offset, b.offset);
        EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0);
    }
    EXPECT_EQ((*parsed)->metadata().size(), opened->metadata().size());
}

TEST(GGUFRead, OpenErrorsNameThePath) {
    auto missing = GGUFFile::open(kData + "/no-such-file.gguf");
    ASSERT_FALSE(missing.ok());
    EXPECT_TRUE(contains(missing.error().message, "no-such-file.gguf"));
    auto dir = GGUFFile::open(kData);
    ASSERT_FALSE(dir.ok());
    EXPECT_TRUE(contains(dir.error().message, "not a regular file"));
}

// ---- writer round trips ------------------------------------------------------------

std::unique_ptr<GGUFFile> reparse(const std::vector<uint8_t>& bytes) {
    auto f = GGUFFile::parse(bytes);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
    return f.ok() ? std::move(*f) : nullptr;
}

std::vector<uint8_t> write_ok(const GGUFWriter& w) {
    auto bytes = w.write_to_memory();
    EXPECT_TRUE(bytes.ok()) << (bytes.ok() ? "" : bytes.error().message);
    if (!bytes.ok()) return {};
    EXPECT_EQ(w.file_size().value(), bytes->size());
    return std::move(*bytes);
}

TEST(GGUFWriter, EveryScalarTypeRoundTrips) {
    GGUFWriter w;
    w.set_u8("u8", 255);
    w.set_i8("i8", -128);
    w.set_u16("u16", 65535);
    w.set_i16("i16", -32768);
    w.set_u32("u32", 4294967295u);
    w.set_i32("i32", std::numeric_limits<int32_t>::min());
    w.set_u64("u64", std::numeric_limits<uint64_t>::max());
    w.set_i64("i64", std::numeric_limits<int64_t>::min());
    w.set_f32("f32", 0.1f);
    w.set_f64("f64", -1e300);
    w.set_bool("yes", true);
    w.set_bool("no", false);
    w.set_string("utf8", "h\xc3\xa9llo \xe2\x86\x92 \xf0\x9f\x94\xa5");
    w.set_string("nul", std::string_view("a\0b", 3));
    w.set_string("empty", "");
    const std::vector<uint8_t> bytes = write_ok(w);
    auto f = reparse(bytes);
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(f->metadata().size(), 15u);
    const std::vector<std::pair<std::string, GGUFType>> order = {
        {"u8", GGUFType::UINT8},    {"i8", GGUFType::INT8},    {"u16", GGUFType::UINT16},
        {"i16", GGUFType::INT16},   {"u32", GGUFType::UINT32}, {"i32", GGUFType::INT32},
        {"u64", GGUFType::UINT64},  {"i64", GGUFType::INT64},  {"f32", GGUFType::FLOAT32},
        {"f64", GGUFType::FLOAT64}, {"yes", GGUFType::BOOL},   {"no", GGUFType::BOOL},
        {"utf8", GGUFType::STRING}, {"nul", GGUFType::STRING}, {"empty", GGUFType::STRING},
    };
    for (size_t i = 0; i < order.size(); ++i) {
        EXPECT_EQ(f->metadata()[i].key, order[i].first);
        EXPECT_EQ(f->metadata()[i].value.type, order[i].second) << order[i].first;
    }
    EXPECT_EQ(f->get_int("u8"), 255);
    EXPECT_EQ(f->get_int("i8"), -128);
    EXPECT_EQ(f->get_int("u16"), 65535);
    EXPECT_EQ(f->get_int("i16"), -32768);
    EXPECT_EQ(f->get_int("u32"), 4294967295);
    EXPECT_EQ(f->get_int("i32"), std::numeric_limits<int32_t>::min());
    EXPECT_EQ(f->find("u64")->as_uint(), std::numeric_limits<uint64_t>::max());
    EXPECT_FALSE(f->get_int("u64").has_value());  // does not fit int64
    EXPECT_EQ(f->get_int("i64"), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(f->get_float("f32"), static_cast<double>(0.1f));
    EXPECT_EQ(f->get_float("f64"), -1e300);
    EXPECT_EQ(f->get_bool("yes"), true);
    EXPECT_EQ(f->get_bool("no"), false);
    EXPECT_EQ(f->get_string("utf8"), "h\xc3\xa9llo \xe2\x86\x92 \xf0\x9f\x94\xa5");
    EXPECT_EQ(f->get_string("nul"), std::string_view("a\0b", 3));
    EXPECT_EQ(f->get_string("empty"), "");
    EXPECT_TRUE(f->tensors().empty());
}

TEST(GGUFWriter, TypedArraysRoundTrip) {
    GGUFWriter w;
    const std::vector<std::string> strs = {"<|endoftext|>", "", "\xc4\xa0the", "a\nb"};
    const std::vector<uint8_t> u8s = {0, 7, 255};
    const std::vector<int32_t> i32s = {-1, 0, std::numeric_limits<int32_t>::max()};
    const std::vector<uint32_t> u32s = {4000000000u};
    const std::vector<int64_t> i64s = {-5, 1ll << 40};
    const std::vector<float> f32s = {0.5f, -2.0f, 1e-30f};
    w.set_array_string("s", strs);
    w.set_array_u8("u8", u8s);
    w.set_array_i32("i32", i32s);
    w.set_array_u32("u32", u32s);
    w.set_array_i64("i64", i64s);
    w.set_array_f32("f32", f32s);
    w.set_array_i32("none", {});
    const std::vector<uint8_t> bytes = write_ok(w);
    auto f = reparse(bytes);
    ASSERT_NE(f, nullptr);
    auto check = [&](const char* key, GGUFType et, size_t n) -> const GGUFArray* {
        const GGUFArray* a = f->get_array(key);
        EXPECT_NE(a, nullptr) << key;
        if (a == nullptr) return nullptr;
        EXPECT_EQ(a->elem_type, et) << key;
        EXPECT_EQ(a->items.size(), n) << key;
        for (const GGUFValue& v : a->items) EXPECT_EQ(v.type, et) << key;
        return a;
    };
    const GGUFArray* s = check("s", GGUFType::STRING, strs.size());
    for (size_t i = 0; s != nullptr && i < strs.size(); ++i) {
        EXPECT_EQ(s->items[i].as_string(), strs[i]);
    }
    const GGUFArray* a8 = check("u8", GGUFType::UINT8, 3);
    EXPECT_EQ(a8->items[2].as_int(), 255);
    const GGUFArray* a32 = check("i32", GGUFType::INT32, 3);
    EXPECT_EQ(a32->items[0].as_int(), -1);
    EXPECT_EQ(a32->items[2].as_int(), std::numeric_limits<int32_t>::max());
    EXPECT_EQ(check("u32", GGUFType::UINT32, 1)->items[0].as_uint(), 4000000000u);
    EXPECT_EQ(check("i64", GGUFType::INT64, 2)->items[1].as_int(), 1ll << 40);
    const GGUFArray* af = check("f32", GGUFType::FLOAT32, 3);
    EXPECT_EQ(af->items[2].as_float(), static_cast<double>(1e-30f));
    check("none", GGUFType::INT32, 0);
}

GGUFValue str_value(std::string_view s) {
    return GGUFValue{GGUFType::STRING, s};
}

GGUFValue array_of(GGUFType et, std::vector<GGUFValue> items) {
    GGUFArray a;
    a.elem_type = et;
    a.items = std::move(items);
    return GGUFValue{GGUFType::ARRAY, std::move(a)};
}

TEST(GGUFWriter, NestedArraysRoundTrip) {
    // [[["a", "bc"], []], [["d"]]]: arrays of arrays of strings.
    const GGUFValue inner1 = array_of(GGUFType::STRING, {str_value("a"), str_value("bc")});
    const GGUFValue inner2 = array_of(GGUFType::STRING, {});
    const GGUFValue inner3 = array_of(GGUFType::STRING, {str_value("d")});
    const GGUFValue mid1 = array_of(GGUFType::ARRAY, {inner1, inner2});
    const GGUFValue mid2 = array_of(GGUFType::ARRAY, {inner3});
    const GGUFValue outer = array_of(GGUFType::ARRAY, {mid1, mid2});
    GGUFWriter w;
    ASSERT_TRUE(w.set_value("nested", outer).ok());
    ASSERT_TRUE(w.set_value("bools", array_of(GGUFType::BOOL, {GGUFValue{GGUFType::BOOL, true},
                                                               GGUFValue{GGUFType::BOOL, false}}))
                    .ok());
    ASSERT_TRUE(w.set_value("i16", GGUFValue{GGUFType::INT16, int64_t{-300}}).ok());
    ASSERT_TRUE(
        w.set_value("f64s", array_of(GGUFType::FLOAT64, {GGUFValue{GGUFType::FLOAT64, 0.25}}))
            .ok());
    const std::vector<uint8_t> bytes = write_ok(w);
    auto f = reparse(bytes);
    ASSERT_NE(f, nullptr);
    const GGUFArray* o = f->get_array("nested");
    ASSERT_NE(o, nullptr);
    ASSERT_EQ(o->elem_type, GGUFType::ARRAY);
    ASSERT_EQ(o->items.size(), 2u);
    const GGUFArray* m1 = o->items[0].as_array();
    ASSERT_NE(m1, nullptr);
    ASSERT_EQ(m1->items.size(), 2u);
    const GGUFArray* i1 = m1->items[0].as_array();
    ASSERT_NE(i1, nullptr);
    EXPECT_EQ(i1->elem_type, GGUFType::STRING);
    ASSERT_EQ(i1->items.size(), 2u);
    EXPECT_EQ(i1->items[1].as_string(), "bc");
    EXPECT_TRUE(m1->items[1].as_array()->items.empty());
    EXPECT_EQ(o->items[1].as_array()->items[0].as_array()->items[0].as_string(), "d");
    EXPECT_EQ(f->get_array("bools")->items[1].as_bool(), false);
    EXPECT_EQ(f->get_int("i16"), -300);
    EXPECT_EQ(f->get_array("f64s")->items[0].as_float(), 0.25);

    // Copying every key of the re-read file gives the same bytes again.
    GGUFWriter copy;
    for (const GGUFKV& kv : f->metadata()) ASSERT_TRUE(copy.copy_kv(kv).ok()) << kv.key;
    EXPECT_EQ(write_ok(copy), write_ok(w));
}

TEST(GGUFWriter, NestingLimitMatchesTheReader) {
    auto nest = [](int levels) {
        GGUFValue v = array_of(GGUFType::UINT8, {GGUFValue{GGUFType::UINT8, uint64_t{1}}});
        for (int i = 1; i < levels; ++i) v = array_of(GGUFType::ARRAY, {v});
        return v;
    };
    GGUFWriter ok;
    ASSERT_TRUE(ok.set_value("deep", nest(8)).ok());
    EXPECT_NE(reparse(write_ok(ok)), nullptr);
    GGUFWriter bad;
    const Status s = bad.set_value("deep", nest(9));
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(contains(s.error().message, "nested deeper"));
    EXPECT_FALSE(bad.has_key("deep"));
}

TEST(GGUFWriter, RejectsValuesThatDoNotMatchTheirType) {
    GGUFWriter w;
    Status s = w.set_value("k", GGUFValue{GGUFType::UINT8, uint64_t{300}});
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(contains(s.error().message, "'k'"));
    EXPECT_TRUE(contains(s.error().message, "300"));
    EXPECT_FALSE(w.set_value("k", GGUFValue{GGUFType::INT8, int64_t{-129}}).ok());
    EXPECT_FALSE(w.set_value("k", GGUFValue{GGUFType::UINT32, int64_t{-1}}).ok());
    EXPECT_FALSE(w.set_value("k", GGUFValue{GGUFType::STRING, uint64_t{1}}).ok());
    EXPECT_FALSE(w.set_value("k", GGUFValue{GGUFType::FLOAT32, true}).ok());
    EXPECT_FALSE(w.set_value("k", GGUFValue{static_cast<GGUFType>(13), uint64_t{1}}).ok());
    s = w.set_value(
        "k", array_of(GGUFType::STRING, {str_value("x"), GGUFValue{GGUFType::UINT8, uint64_t{1}}}));
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(contains(s.error().message, "[1]"));
    EXPECT_EQ(w.kv_count(), 0u);
}

TEST(GGUFWriter, SettingAKeyAgainReplacesItInPlace) {
    GGUFWriter w;
    w.set_u32("a", 1);
    w.set_string("b", "x");
    w.set_u32("c", 3);
    w.set_string("a", "now a string");
    EXPECT_EQ(w.kv_count(), 3u);
    EXPECT_TRUE(w.remove_key("c"));
    EXPECT_FALSE(w.remove_key("c"));
    const std::vector<uint8_t> bytes = write_ok(w);
    auto f = reparse(bytes);
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(f->metadata().size(), 2u);
    EXPECT_EQ(f->metadata()[0].key, "a");
    EXPECT_EQ(f->get_string("a"), "now a string");
    EXPECT_EQ(f->metadata()[1].key, "b");
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 131 + (i >> 8));
    return v;
}

TEST(GGUFWriter, TensorsFromEverySourceRoundTrip) {
    GGUFWriter w;
    w.set_string("general.architecture", "test");
    const std::vector<uint8_t> a = pattern(3 * 4, 1);            // f32 [3]: 12 bytes, needs padding
    const std::vector<uint8_t> b = pattern(2 * 34 * 5, 2);       // q8_0 [64, 5]
    const std::vector<uint8_t> c = pattern(144 * 2 * 3 * 2, 3);  // q4_K [256, 2, 3, 2]
    // f32 [1024, 1100]: 4.4 MB, so the row source is staged in more than one chunk.
    const std::vector<int64_t> rows_ne = {1024, 1100};
    const std::vector<uint8_t> d = pattern(1024 * 4 * 1100, 4);
    const std::vector<int64_t> a_ne = {3};
    const std::vector<int64_t> b_ne = {64, 5};
    const std::vector<int64_t> c_ne = {256, 2, 3, 2};
    ASSERT_TRUE(w.add_tensor("a", GGMLType::F32, a_ne, std::span<const uint8_t>(a)).ok());
    ASSERT_TRUE(w.add_tensor("b", GGMLType::Q8_0, b_ne, GGUFTensorFill([&](std::span<uint8_t> dst) {
                                 EXPECT_EQ(dst.size(), b.size());
                                 std::copy(b.begin(), b.end(), dst.begin());
                                 return Status{};
                             }))
                    .ok());
    std::vector<int64_t> rows_seen;
    ASSERT_TRUE(w.add_tensor("c", GGMLType::Q4_K, c_ne,
                             GGUFRowFill([&](int64_t row, std::span<uint8_t> dst) {
                                 EXPECT_EQ(dst.size(), 144u);
                                 std::copy_n(c.begin() + row * 144, 144, dst.begin());
                                 return Status{};
                             }))
                    .ok());
    ASSERT_TRUE(w.add_tensor("d", GGMLType::F32, rows_ne,
                             GGUFRowFill([&](int64_t row, std::span<uint8_t> dst) {
                                 rows_seen.push_back(row);
                                 std::copy_n(d.begin() + row * 4096, 4096, dst.begin());
                                 return Status{};
                             }))
                    .ok());
    std::vector<GGUFWriteProgress> progress;
    auto bytes = w.write_to_memory([&](const GGUFWriteProgress& p) { progress.push_back(p); });
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;
    EXPECT_EQ(bytes->size(), w.file_size().value());
    ASSERT_EQ(rows_seen.size(), 1100u);
    for (int64_t r = 0; r < 1100; ++r) EXPECT_EQ(rows_seen[static_cast<size_t>(r)], r);

    ASSERT_GE(progress.size(), 5u);  // one per tensor, plus chunks of "d"
    for (size_t i = 1; i < progress.size(); ++i) {
        EXPECT_GE(progress[i].bytes_written, progress[i - 1].bytes_written);
        EXPECT_GE(progress[i].tensor_index, progress[i - 1].tensor_index);
    }
    EXPECT_EQ(progress.back().bytes_written, bytes->size());
    EXPECT_EQ(progress.back().total_bytes, bytes->size());
    EXPECT_EQ(progress.back().tensor_name, "d");
    EXPECT_EQ(progress.back().tensor_count, 4u);

    auto f = reparse(*bytes);
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(f->tensors().size(), 4u);
    const std::vector<const std::vector<uint8_t>*> want = {&a, &b, &c, &d};
    const char* names[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; ++i) {
        const GGUFTensorInfo& t = f->tensors()[i];
        EXPECT_EQ(t.name, names[i]);
        EXPECT_EQ(t.offset % 32, 0u);
        ASSERT_EQ(t.nbytes, want[i]->size());
        EXPECT_EQ(std::memcmp(t.data, want[i]->data(), t.nbytes), 0) << t.name;
        // Padding after the tensor is zeros.
        const uint64_t end = f->data_offset() + t.offset + t.nbytes;
        for (uint64_t p = end; p < (end + 31) / 32 * 32; ++p) EXPECT_EQ((*bytes)[p], 0);
    }
    EXPECT_EQ(f->tensors()[0].n_dims, 1u);
    EXPECT_EQ(f->tensors()[2].n_dims, 4u);
    EXPECT_EQ(f->tensors()[2].ne, (std::array<int64_t, 4>{256, 2, 3, 2}));
    EXPECT_EQ(f->tensors()[1].offset, 32u);  // 12 bytes of "a", padded to 32
    EXPECT_EQ(bytes->size() % 32, 0u);       // the last tensor is padded too
}

TEST(GGUFWriter, CustomAlignment) {
    GGUFWriter w;
    ASSERT_TRUE(w.set_alignment(256).ok());
    const std::vector<uint8_t> a = pattern(40, 9);
    const std::vector<int64_t> ne = {10};
    ASSERT_TRUE(w.add_tensor("a", GGMLType::F32, ne, std::span<const uint8_t>(a)).ok());
    ASSERT_TRUE(w.add_tensor("b", GGMLType::I32, ne, std::span<const uint8_t>(a)).ok());
    const std::vector<uint8_t> bytes = write_ok(w);
    auto f = reparse(bytes);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->alignment(), 256u);
    EXPECT_EQ(f->data_offset() % 256, 0u);
    EXPECT_EQ(f->tensors()[1].offset, 256u);

    for (uint32_t bad : {0u, 48u, 1u << 21}) EXPECT_FALSE(w.set_alignment(bad).ok()) << bad;
    GGUFWriter odd;
    odd.set_u32("general.alignment", 48);
    auto r = odd.write_to_memory();
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "general.alignment"));
    GGUFWriter wrong_type;
    wrong_type.set_u64("general.alignment", 64);
    EXPECT_FALSE(wrong_type.write_to_memory().ok());
}

TEST(GGUFWriter, RejectsBadTensors) {
    GGUFWriter w;
    const std::vector<uint8_t> bytes(1024);
    auto add = [&](std::string_view name, GGMLType t, std::vector<int64_t> ne, size_t n) {
        return w.add_tensor(name, t, ne, std::span<const uint8_t>(bytes.data(), n));
    };
    ASSERT_TRUE(add("x", GGMLType::F32, {4}, 16).ok());
    auto expect_error = [](const Status& s, std::string_view what) {
        ASSERT_FALSE(s.ok()) << what;
        EXPECT_TRUE(contains(s.error().message, what)) << s.error().message;
    };
    expect_error(add("x", GGMLType::F32, {4}, 16), "duplicate");
    expect_error(add("y", GGMLType::F32, {}, 0), "dimensions");
    expect_error(add("y", GGMLType::F32, {1, 1, 1, 1, 1}, 4), "dimensions");
    expect_error(add("y", GGMLType::F32, {4, 0}, 0), "ne[1]");
    expect_error(add("y", GGMLType::F32, {-4}, 16), "ne[0]");
    expect_error(add("y", GGMLType::F32, {1ll << 30, 1ll << 30}, 16), "out of range");
    expect_error(add("y", GGMLType::Q8_0, {48}, 34), "block size 32");
    expect_error(add("y", static_cast<GGMLType>(4), {32}, 18), "unknown type");
    expect_error(add("y", GGMLType::F32, {4}, 12), "need 16");
    expect_error(w.add_tensor("y", GGMLType::F32, std::vector<int64_t>{4}, GGUFTensorFill{}),
                 "callback");
    EXPECT_EQ(w.tensor_count(), 1u);
}

TEST(GGUFWriter, CallbackErrorsAbortTheWrite) {
    GGUFWriter w;
    const std::vector<int64_t> ne = {8};
    ASSERT_TRUE(
        w.add_tensor("boom", GGMLType::F32, ne, GGUFTensorFill([](std::span<uint8_t>) -> Status {
                         return make_error("source went away");
                     }))
            .ok());
    auto r = w.write_to_memory();
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "'boom'"));
    EXPECT_TRUE(contains(r.error().message, "source went away"));
}

// Tests that write files get a private directory, removed afterwards.
class GGUFWriterFile : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("hearth-gguf-test-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::vector<std::string> dir_entries() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
        std::sort(out.begin(), out.end());
        return out;
    }

    fs::path dir_;
};

TEST_F(GGUFWriterFile, WritesAtomicallyAndMatchesMemory) {
    GGUFWriter w;
    w.set_string("general.name", "file test");
    const std::vector<uint8_t> a = pattern(64 * 4, 5);
    const std::vector<int64_t> ne = {16, 4};
    ASSERT_TRUE(w.add_tensor("a", GGMLType::F32, ne, std::span<const uint8_t>(a)).ok());
    const std::string path = (dir_ / "model.gguf").string();
    {
        std::ofstream old(path);
        old << "an older file";
    }
    size_t calls = 0;
    uint64_t last = 0;
    const Status s = w.write(path, [&](const GGUFWriteProgress& p) {
        ++calls;
        last = p.bytes_written;
        EXPECT_EQ(p.total_bytes, w.file_size().value());
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(calls, 1u);
    EXPECT_EQ(last, w.file_size().value());
    EXPECT_EQ(read_file(path), write_ok(w));
    EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.gguf"});  // no temp file left
    auto f = GGUFFile::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ((*f)->get_string("general.name"), "file test");
}

TEST_F(GGUFWriterFile, FailedWriteKeepsTheOldFile) {
    const std::string path = (dir_ / "model.gguf").string();
    {
        std::ofstream old(path);
        old << "keep me";
    }
    GGUFWriter w;
    const std::vector<int64_t> ne = {4};
    ASSERT_TRUE(
        w.add_tensor("t", GGMLType::F32, ne, GGUFTensorFill([](std::span<uint8_t>) -> Status {
                         return make_error("disk on fire");
                     }))
            .ok());
    const Status s = w.write(path);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(contains(s.error().message, "disk on fire"));
    EXPECT_TRUE(contains(s.error().message, path));
    EXPECT_EQ(dir_entries(), std::vector<std::string>{"model.gguf"});
    const std::vector<uint8_t> kept = read_file(path);
    EXPECT_EQ(std::string(kept.begin(), kept.end()), "keep me");

    const Status missing_dir = GGUFWriter().write((dir_ / "nope" / "x.gguf").string());
    ASSERT_FALSE(missing_dir.ok());
    EXPECT_TRUE(contains(missing_dir.error().message, "nope"));
}

// Copying every key and tensor of a file written by llama.cpp reproduces it byte for
// byte: same header encoding, offsets, alignment and padding.
TEST(GGUFWriter, RewritingRealFilesIsByteIdentical) {
    for (const char* name : {"qwen2-test-q4_k_m.gguf", "llama-test-q8_0.gguf", "qwen-vocab.gguf",
                             "hearth-demo-py-q8_0.gguf"}) {
        SCOPED_TRACE(name);
        const std::vector<uint8_t> original = read_file(kData + "/" + name);
        auto f = GGUFFile::parse(original);
        ASSERT_TRUE(f.ok()) << f.error().message;
        GGUFWriter w;
        for (const GGUFKV& kv : (*f)->metadata()) ASSERT_TRUE(w.copy_kv(kv).ok()) << kv.key;
        for (const GGUFTensorInfo& t : (*f)->tensors()) {
            ASSERT_TRUE(w.copy_tensor(t).ok()) << t.name;
        }
        const std::vector<uint8_t> again = write_ok(w);
        ASSERT_EQ(again.size(), original.size());
        EXPECT_TRUE(again == original);
    }
}

// ---- hostile input ------------------------------------------------------------------

// Hand-assembled GGUF bytes, for headers the writer refuses to produce.
struct Raw {
    std::vector<uint8_t> b;
    template <class T>
    Raw& put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        b.insert(b.end(), p, p + sizeof v);
        return *this;
    }
    Raw& u32(uint32_t v) { return put(v); }
    Raw& u64(uint64_t v) { return put(v); }
    Raw& str(std::string_view s) {
        u64(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        return u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
    }
    Raw& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
    Raw& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
        str(name).u32(static_cast<uint32_t>(ne.size()));
        for (uint64_t n : ne) u64(n);
        return u32(type).u64(offset);
    }
    Raw& pad(size_t align = 32) {
        b.resize((b.size() + align - 1) / align * align, 0);
        return *this;
    }
    Raw& zeros(size_t n) {
        b.resize(b.size() + n, 0);
        return *this;
    }
};

std::string parse_error(const std::vector<uint8_t>& bytes) {
    // A private copy of exactly these bytes, so a sanitizer sees any read past the end.
    const std::vector<uint8_t> copy(bytes);
    auto f = GGUFFile::parse(copy);
    EXPECT_FALSE(f.ok()) << "parsed a hostile file";
    return f.ok() ? std::string() : f.error().message;
}

// A small valid file whose last tensor ends exactly at the end of the file, so that
// every strict prefix is invalid.
std::vector<uint8_t> small_valid_file() {
    GGUFWriter w;
    w.set_string("general.architecture", "tiny");
    w.set_u32("tiny.block_count", 1);
    w.set_array_string("tokenizer.ggml.tokens", std::vector<std::string>{"a", "bc", ""});
    w.set_array_f32("scores", std::vector<float>{0.5f, -1.0f});
    w.set_bool("flag", true);
    w.set_f64("f64", 2.5);
    const std::vector<uint8_t> a = pattern(34, 1);
    const std::vector<uint8_t> b = pattern(32 * 4, 2);
    const std::vector<int64_t> a_ne = {32};
    const std::vector<int64_t> b_ne = {8, 4};
    EXPECT_TRUE(w.add_tensor("a", GGMLType::Q8_0, a_ne, std::span<const uint8_t>(a)).ok());
    EXPECT_TRUE(w.add_tensor("b", GGMLType::F32, b_ne, std::span<const uint8_t>(b)).ok());
    return write_ok(w);
}

TEST(GGUFHostile, EveryTruncationFails) {
    const std::vector<uint8_t> full = small_valid_file();
    ASSERT_NE(reparse(full), nullptr);
    for (size_t len = 0; len < full.size(); ++len) {
        const std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<long>(len));
        const std::string e = parse_error(prefix);
        ASSERT_FALSE(e.empty()) << "prefix of " << len << " bytes";
    }
    EXPECT_TRUE(contains(parse_error({}), "header magic"));
    auto prefix_error = [&](size_t len) {
        return parse_error(
            std::vector<uint8_t>(full.begin(), full.begin() + static_cast<long>(len)));
    };
    EXPECT_TRUE(contains(prefix_error(10), "header tensor_count"));
    EXPECT_TRUE(contains(prefix_error(full.size() - 1), "'b': data"));
    EXPECT_TRUE(contains(prefix_error(full.size() - 1), "beyond the end"));
}

TEST(GGUFHostile, BadMagicAndVersions) {
    std::vector<uint8_t> f = small_valid_file();
    f[0] = 'X';
    EXPECT_TRUE(contains(parse_error(f), "bad magic"));
    for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
        Raw r;
        r.header(0, 0, v);
        EXPECT_TRUE(contains(parse_error(r.b), "version " + std::to_string(v))) << v;
    }
    Raw v2;
    v2.header(0, 1, 2).kv_u32("k", 1);
    EXPECT_NE(reparse(v2.b), nullptr);  // version 2 has the same layout
}

// Each of these must fail at once: the count or length is checked against the bytes left
// before anything is allocated for it.
TEST(GGUFHostile, HugeCountsFailFast) {
    const auto start = std::chrono::steady_clock::now();
    Raw tensors;
    tensors.header(1ull << 60, 0).zeros(64);
    EXPECT_TRUE(contains(parse_error(tensors.b), "tensor_count"));
    Raw kvs;
    kvs.header(0, 1ull << 60).zeros(64);
    EXPECT_TRUE(contains(parse_error(kvs.b), "metadata_kv_count"));
    Raw array;
    array.header(0, 1).str("arr").u32(9).u32(0).u64(1ull << 60).zeros(64);
    EXPECT_TRUE(contains(parse_error(array.b), "array count"));
    Raw nested;
    nested.header(0, 1).str("arr").u32(9).u32(9).u64(1ull << 40).zeros(64);
    EXPECT_TRUE(contains(parse_error(nested.b), "array count"));
    Raw key;
    key.header(0, 1).u64(1ull << 63).zeros(64);
    EXPECT_TRUE(contains(parse_error(key.b), "string length"));
    Raw value;
    value.header(0, 1).str("s").u32(8).u64(1ull << 63).zeros(64);
    EXPECT_TRUE(contains(parse_error(value.b), "string length"));
    Raw strings;  // a string array whose elements claim more than the file holds
    strings.header(0, 1).str("s").u32(9).u32(8).u64(4).str("ok").u64(~0ull).zeros(16);
    EXPECT_TRUE(contains(parse_error(strings.b), "'s'[1]"));
    Raw name;
    name.header(1, 0).u64(1ull << 63).zeros(64);
    EXPECT_TRUE(contains(parse_error(name.b), "tensor[0] name"));
    const auto ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    EXPECT_LT(ms.count(), 1000.0);
}

TEST(GGUFHostile, TensorInfoChecks) {
    auto with_tensor = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                          size_t data_bytes) {
        Raw r;
        r.header(1, 0).tensor("w", std::move(ne), type, offset).pad().zeros(data_bytes);
        return r.b;
    };
    EXPECT_NE(reparse(with_tensor({8}, 0, 0, 32)), nullptr);  // the control case
    EXPECT_TRUE(contains(parse_error(with_tensor({}, 0, 0, 32)), "n_dims 0"));
    EXPECT_TRUE(contains(parse_error(with_tensor({1, 1, 1, 1, 1}, 0, 0, 32)), "n_dims 5"));
    EXPECT_TRUE(contains(parse_error(with_tensor({8, 0}, 0, 0, 32)), "ne[1]"));
    EXPECT_TRUE(
        contains(parse_error(with_tensor({1ull << 32, 1ull << 32}, 0, 0, 32)), "out of range"));
    EXPECT_TRUE(contains(parse_error(with_tensor({1ull << 62}, 0, 0, 32)), "out of range"));
    // 2^24 * 2^24 elements is within the element limit but not within the file.
    EXPECT_TRUE(
        contains(parse_error(with_tensor({1ull << 24, 1ull << 24}, 0, 0, 32)), "beyond the end"));
    EXPECT_TRUE(contains(parse_error(with_tensor({8}, 0, 16, 64)), "not aligned"));
    EXPECT_TRUE(contains(parse_error(with_tensor({8}, 0, 32, 32)), "beyond the end"));
    EXPECT_TRUE(contains(parse_error(with_tensor({8}, 0, ~0ull << 5, 32)), "beyond the end"));
    EXPECT_TRUE(contains(parse_error(with_tensor({8}, 0, 0, 31)), "beyond the end"));
    EXPECT_TRUE(contains(parse_error(with_tensor({8}, 4, 0, 32)), "unknown tensor type 4"));
    EXPECT_TRUE(contains(parse_error(with_tensor({8}, 99, 0, 32)), "unknown tensor type 99"));
    EXPECT_TRUE(contains(parse_error(with_tensor({48}, 8, 0, 64)), "block size 32"));

    Raw dup;
    dup.header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad().zeros(64);
    EXPECT_TRUE(contains(parse_error(dup.b), "duplicate name 'w'"));
}

TEST(GGUFHostile, MetadataChecks) {
    Raw dup;
    dup.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
    EXPECT_TRUE(contains(parse_error(dup.b), "duplicate key 'k'"));

    Raw type;
    type.header(0, 1).str("k").u32(13).u32(0);
    EXPECT_TRUE(contains(parse_error(type.b), "unknown value type 13"));

    Raw elem;
    elem.header(0, 1).str("k").u32(9).u32(77).u64(0);
    EXPECT_TRUE(contains(parse_error(elem.b), "unknown array element type 77"));

    Raw boolean;
    boolean.header(0, 1).str("k").u32(7).put<uint8_t>(2);
    EXPECT_TRUE(contains(parse_error(boolean.b), "bool value 2"));

    Raw deep;  // nine nested arrays of one element each
    deep.header(0, 1).str("k").u32(9);
    for (int i = 0; i < 9; ++i) deep.u32(9).u64(1);
    deep.zeros(64);
    EXPECT_TRUE(contains(parse_error(deep.b), "nested deeper"));

    for (uint32_t bad : {0u, 3u, 48u, 1u << 21}) {
        Raw align;
        align.header(0, 1).kv_u32("general.alignment", bad);
        EXPECT_TRUE(contains(parse_error(align.b), "general.alignment")) << bad;
    }
    Raw align_str;
    align_str.header(0, 1).str("general.alignment").u32(8).str("32");
    EXPECT_TRUE(contains(parse_error(align_str.b), "general.alignment"));

    Raw align64;  // a valid alignment moves the data section
    align64.header(1, 1).kv_u32("general.alignment", 64).tensor("w", {8}, 0, 0).pad(64).zeros(32);
    auto f = reparse(align64.b);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->alignment(), 64u);
    EXPECT_EQ(f->data_offset() % 64, 0u);
}

TEST(GGUFHostile, LimitsCapTheWorkAFileMayAskFor) {
    GGUFWriter w;
    w.set_array_i32("a", std::vector<int32_t>{1, 2, 3});
    w.set_array_string("b", std::vector<std::string>{"x", "y", "z"});
    const std::vector<uint8_t> bytes = write_ok(w);
    ASSERT_NE(reparse(bytes), nullptr);
    GGUFLimits tight;
    tight.max_metadata_values = 5;  // the second array crosses it
    auto f = GGUFFile::parse(bytes, tight);
    ASSERT_FALSE(f.ok());
    EXPECT_TRUE(contains(f.error().message, "metadata[1] 'b': array count 3 exceeds"))
        << f.error().message;
    tight = GGUFLimits{};
    tight.max_array_elems = 2;
    EXPECT_FALSE(GGUFFile::parse(bytes, tight).ok());
    tight = GGUFLimits{};
    tight.max_kv = 1;
    EXPECT_FALSE(GGUFFile::parse(bytes, tight).ok());
    const std::vector<uint8_t> model = small_valid_file();
    tight = GGUFLimits{};
    tight.max_tensors = 1;
    EXPECT_FALSE(GGUFFile::parse(model, tight).ok());
}

TEST(GGUFHostile, VocabOnlyFilesMayEndWithoutPadding) {
    Raw r;
    r.header(0, 1).kv_u32("k", 7);
    ASSERT_NE(r.b.size() % 32, 0u);
    auto f = reparse(r.b);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->get_int("k"), 7);
    EXPECT_EQ(f->data_offset(), r.b.size());
}

TEST(GGUFHostile, ErrorsNameTheField) {
    Raw r;
    r.header(0, 2)
        .kv_u32("first", 1)
        .str("tokenizer.ggml.tokens")
        .u32(9)
        .u32(8)
        .u64(3)
        .str("a")
        .str("b")
        .u64(1000);
    const std::string e = parse_error(r.b);
    EXPECT_TRUE(contains(e, "metadata[1] 'tokenizer.ggml.tokens'[2]")) << e;
}

}  // namespace
}  // namespace hearth
