// Model loading: hparams of the test models, and strict validation of hand-built GGUFs.
#include "model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "gguf.h"
#include "quant.h"

namespace hearth {
namespace {

const std::string kData = HEARTH_TEST_DATA;

std::shared_ptr<const Model> load_file(const std::string& name) {
    auto gguf = GGUFFile::open(kData + "/" + name);
    EXPECT_TRUE(gguf.ok()) << gguf.error().message;
    if (!gguf.ok()) return nullptr;
    auto model = Model::load(std::shared_ptr<const GGUFFile>(std::move(*gguf)));
    EXPECT_TRUE(model.ok()) << model.error().message;
    if (!model.ok()) return nullptr;
    return std::shared_ptr<const Model>(std::move(*model));
}

TEST(Model, Qwen2TestHparams) {
    for (const char* name : {"qwen2-test-f16.gguf", "qwen2-test-q8_0.gguf",
                             "qwen2-test-q4_k_m.gguf", "qwen2-test-q6_k.gguf"}) {
        SCOPED_TRACE(name);
        auto m = load_file(name);
        ASSERT_TRUE(m);
        const Hparams& hp = m->hparams();
        EXPECT_EQ(hp.arch, Arch::Qwen2);
        EXPECT_EQ(hp.n_vocab, 2048);
        EXPECT_EQ(hp.n_embd, 512);
        EXPECT_EQ(hp.n_layer, 2);
        EXPECT_EQ(hp.n_head, 4);
        EXPECT_EQ(hp.n_head_kv, 2);
        EXPECT_EQ(hp.head_dim, 128);
        EXPECT_EQ(hp.n_ff, 1024);
        EXPECT_EQ(hp.n_ctx_train, 4096);
        EXPECT_FLOAT_EQ(hp.rope_theta, 1e6f);
        EXPECT_FLOAT_EQ(hp.rms_eps, 1e-6f);
        EXPECT_EQ(hp.rope_style, RopeStyle::Neox);
        EXPECT_TRUE(hp.has_qkv_bias);
        EXPECT_FALSE(hp.tied_output);
        EXPECT_EQ(m->name(), "qwen2-test");
        ASSERT_EQ(m->layers().size(), 2u);
        EXPECT_TRUE(m->layer(1).bk.present());
        EXPECT_EQ(m->layer(1).bk.type, GGMLType::F32);
        EXPECT_EQ(m->output().name, "output.weight");
        // Two layers, K and V, 2 KV heads of 128.
        EXPECT_EQ(m->kv_bytes_per_token(KVDType::F32), 2u * 2 * 256 * 4);
        EXPECT_EQ(m->kv_bytes_per_token(KVDType::F16), 2u * 2 * 256 * 2);
    }
    EXPECT_EQ(load_file("qwen2-test-f16.gguf")->layer(0).wq.type, GGMLType::F16);
    EXPECT_EQ(load_file("qwen2-test-q8_0.gguf")->layer(0).w_up.type, GGMLType::Q8_0);
}

TEST(Model, LlamaTestHparams) {
    for (const char* name : {"llama-test-q8_0.gguf", "llama-test-q4_k_m.gguf"}) {
        SCOPED_TRACE(name);
        auto m = load_file(name);
        ASSERT_TRUE(m);
        const Hparams& hp = m->hparams();
        EXPECT_EQ(hp.arch, Arch::Llama);
        EXPECT_EQ(hp.n_vocab, 2048);
        EXPECT_EQ(hp.n_embd, 512);
        EXPECT_EQ(hp.n_layer, 2);
        EXPECT_EQ(hp.n_head, 8);
        EXPECT_EQ(hp.n_head_kv, 4);
        EXPECT_EQ(hp.head_dim, 64);
        EXPECT_EQ(hp.gqa_group(), 2);
        EXPECT_EQ(hp.n_ff, 1024);
        EXPECT_FLOAT_EQ(hp.rope_theta, 1e5f);
        EXPECT_EQ(hp.rope_style, RopeStyle::Normal);
        EXPECT_FALSE(hp.has_qkv_bias);
        EXPECT_FALSE(m->layer(0).bq.present());
        EXPECT_FALSE(hp.tied_output);
    }
}

TEST(Model, DemoModelHparams) {
    auto m = load_file("hearth-demo-py-q8_0.gguf");
    ASSERT_TRUE(m);
    const Hparams& hp = m->hparams();
    EXPECT_EQ(hp.arch, Arch::Qwen2);
    EXPECT_EQ(hp.n_layer, 6);
    EXPECT_EQ(hp.n_head, 8);
    EXPECT_EQ(hp.n_head_kv, 2);
    EXPECT_EQ(hp.head_dim, 64);  // no key_length / rope.dimension_count: n_embd / n_head
    EXPECT_EQ(hp.n_ff, 1536);
    EXPECT_EQ(hp.n_ctx_train, 1024);
    EXPECT_FLOAT_EQ(hp.rope_theta, 1e4f);
    EXPECT_TRUE(hp.tied_output);
    EXPECT_EQ(m->output().data, m->token_embd().data);
    EXPECT_EQ(m->output().name, "token_embd.weight");
}

TEST(Model, MemoryBytesCountsEveryTensorOnce) {
    for (const char* name : {"qwen2-test-q4_k_m.gguf", "hearth-demo-py-q8_0.gguf"}) {
        auto m = load_file(name);
        ASSERT_TRUE(m);
        uint64_t total = 0;
        for (const auto& t : m->gguf().tensors()) total += t.nbytes;
        EXPECT_EQ(m->memory_bytes(), total) << name;
    }
}

TEST(Model, FingerprintsAreStableAndDistinct) {
    const char* names[] = {"qwen2-test-f16.gguf",     "qwen2-test-q8_0.gguf",
                           "qwen2-test-q4_k_m.gguf",  "qwen2-test-q6_k.gguf",
                           "llama-test-q8_0.gguf",    "llama-test-q4_k_m.gguf",
                           "hearth-demo-py-q8_0.gguf"};
    std::set<uint64_t> seen;
    for (const char* name : names) {
        auto a = load_file(name);
        auto b = load_file(name);
        ASSERT_TRUE(a && b);
        EXPECT_EQ(a->fingerprint(), b->fingerprint()) << name;
        EXPECT_TRUE(seen.insert(a->fingerprint()).second) << name << " collides";
    }
}

TEST(Model, RejectsVocabOnlyFile) {
    auto gguf = GGUFFile::open(kData + "/qwen-vocab.gguf");
    ASSERT_TRUE(gguf.ok());
    auto m = Model::load(std::shared_ptr<const GGUFFile>(std::move(*gguf)));
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().message, "the GGUF file has no tensors (a vocabulary-only file?)");
}

// ---- hand-built GGUFs ----

// A minimal GGUF v3 byte builder, enough to describe small models and break them on
// purpose. Tensor data is deterministic pseudo-random f32 (quantized for other types).
class TinyGGUF {
public:
    using Value = std::variant<uint32_t, float, std::string>;

    void set(const std::string& key, Value v) {
        for (auto& [k, old] : kv_) {
            if (k == key) {
                old = std::move(v);
                return;
            }
        }
        kv_.emplace_back(key, std::move(v));
    }
    void erase(const std::string& key) {
        std::erase_if(kv_, [&](const auto& e) { return e.first == key; });
    }

    void add_tensor(const std::string& name, std::vector<int64_t> ne,
                    GGMLType type = GGMLType::F32) {
        erase_tensor(name);
        tensors_.push_back({name, std::move(ne), type, ++seed_});
    }
    void erase_tensor(const std::string& name) {
        std::erase_if(tensors_, [&](const Tensor& t) { return t.name == name; });
    }
    // Changes the seed of a tensor's data, i.e. its values.
    void reseed(const std::string& name) {
        for (auto& t : tensors_) {
            if (t.name == name) t.seed += 1000;
        }
    }

    std::vector<uint8_t> bytes() const {
        std::vector<uint8_t> out;
        auto u32 = [&](uint32_t v) {
            for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
        };
        auto u64 = [&](uint64_t v) {
            for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
        };
        auto str = [&](const std::string& s) {
            u64(s.size());
            out.insert(out.end(), s.begin(), s.end());
        };
        u32(0x46554747);  // "GGUF"
        u32(3);
        u64(tensors_.size());
        u64(kv_.size());
        for (const auto& [key, v] : kv_) {
            str(key);
            if (const auto* u = std::get_if<uint32_t>(&v)) {
                u32(static_cast<uint32_t>(GGUFType::UINT32));
                u32(*u);
            } else if (const auto* f = std::get_if<float>(&v)) {
                u32(static_cast<uint32_t>(GGUFType::FLOAT32));
                uint32_t bits;
                std::memcpy(&bits, f, 4);
                u32(bits);
            } else {
                u32(static_cast<uint32_t>(GGUFType::STRING));
                str(std::get<std::string>(v));
            }
        }
        std::vector<std::vector<uint8_t>> blobs;
        uint64_t offset = 0;
        for (const Tensor& t : tensors_) {
            blobs.push_back(data_of(t));
            str(t.name);
            u32(static_cast<uint32_t>(t.ne.size()));
            for (int64_t n : t.ne) u64(static_cast<uint64_t>(n));
            u32(static_cast<uint32_t>(t.type));
            u64(offset);
            offset += (blobs.back().size() + 31) / 32 * 32;
        }
        for (const auto& blob : blobs) {
            out.resize((out.size() + 31) / 32 * 32, 0);
            out.insert(out.end(), blob.begin(), blob.end());
        }
        out.resize((out.size() + 31) / 32 * 32, 0);
        return out;
    }

private:
    struct Tensor {
        std::string name;
        std::vector<int64_t> ne;
        GGMLType type;
        uint64_t seed;
    };

    static std::vector<uint8_t> data_of(const Tensor& t) {
        int64_t rows = 1;
        for (size_t i = 1; i < t.ne.size(); ++i) rows *= t.ne[i];
        const int64_t cols = t.ne[0];
        std::vector<float> row(static_cast<size_t>(cols));
        auto rb = row_bytes(t.type, cols);
        if (!rb.ok()) return {};
        std::vector<uint8_t> out(*rb * static_cast<size_t>(rows));
        uint64_t x = t.seed * 0x9e3779b97f4a7c15ull;
        for (int64_t r = 0; r < rows; ++r) {
            for (float& f : row) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                f = static_cast<float>(static_cast<int64_t>(x >> 41) - (1 << 22)) / (1 << 24);
            }
            uint8_t* dst = out.data() + static_cast<size_t>(r) * *rb;
            const TypeTraits* tt = type_traits(t.type);
            if (t.type == GGMLType::F32) {
                std::memcpy(dst, row.data(), *rb);
            } else if (tt && tt->can_quantize) {
                quantize_row(t.type, row.data(), dst, cols);
            }
        }
        return out;
    }

    std::vector<std::pair<std::string, Value>> kv_;
    std::vector<Tensor> tensors_;
    uint64_t seed_ = 0;
};

// n_embd 32, 2 layers, 2 heads of 16, 1 KV head, n_ff 48, vocab 16.
TinyGGUF tiny_model(const std::string& arch = "qwen2") {
    TinyGGUF g;
    g.set("general.architecture", arch);
    g.set(arch + ".embedding_length", 32u);
    g.set(arch + ".block_count", 2u);
    g.set(arch + ".attention.head_count", 2u);
    g.set(arch + ".attention.head_count_kv", 1u);
    g.set(arch + ".feed_forward_length", 48u);
    g.set(arch + ".context_length", 64u);
    g.set(arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
    g.set(arch + ".rope.freq_base", 10000.0f);
    g.add_tensor("token_embd.weight", {32, 16}, GGMLType::Q8_0);
    g.add_tensor("output_norm.weight", {32});
    g.add_tensor("output.weight", {32, 16});
    for (int l = 0; l < 2; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        g.add_tensor(p + "attn_norm.weight", {32});
        g.add_tensor(p + "attn_q.weight", {32, 32}, GGMLType::F16);
        g.add_tensor(p + "attn_k.weight", {32, 16});
        g.add_tensor(p + "attn_v.weight", {32, 16});
        if (arch == "qwen2") {
            g.add_tensor(p + "attn_q.bias", {32});
            g.add_tensor(p + "attn_k.bias", {16});
            g.add_tensor(p + "attn_v.bias", {16});
        }
        g.add_tensor(p + "attn_output.weight", {32, 32});
        g.add_tensor(p + "ffn_norm.weight", {32});
        g.add_tensor(p + "ffn_gate.weight", {32, 48});
        g.add_tensor(p + "ffn_up.weight", {32, 48});
        g.add_tensor(p + "ffn_down.weight", {48, 32});
    }
    return g;
}

// Keeps the bytes alive as long as the model that points into them.
struct Built {
    std::vector<uint8_t> bytes;
    Expected<std::unique_ptr<Model>> model = make_error("not loaded");
};

std::unique_ptr<Built> build(const TinyGGUF& g) {
    auto b = std::make_unique<Built>();
    b->bytes = g.bytes();
    auto gguf = GGUFFile::parse(b->bytes);
    if (!gguf.ok()) {
        b->model = make_error("GGUF parse: " + gguf.error().message);
        return b;
    }
    b->model = Model::load(std::shared_ptr<const GGUFFile>(std::move(*gguf)));
    return b;
}

std::string load_error(const TinyGGUF& g) {
    auto b = build(g);
    if (b->model.ok()) return "(loaded fine)";
    return b->model.error().message;
}

TEST(ModelValidation, TinyModelLoads) {
    auto b = build(tiny_model());
    ASSERT_TRUE(b->model.ok()) << b->model.error().message;
    const Hparams& hp = (*b->model)->hparams();
    EXPECT_EQ(hp.n_vocab, 16);
    EXPECT_EQ(hp.head_dim, 16);
    EXPECT_EQ(hp.kv_dim(), 16);
    EXPECT_TRUE(hp.has_qkv_bias);

    auto llama = build(tiny_model("llama"));
    ASSERT_TRUE(llama->model.ok()) << llama->model.error().message;
    EXPECT_FALSE((*llama->model)->hparams().has_qkv_bias);
    EXPECT_EQ((*llama->model)->hparams().rope_style, RopeStyle::Normal);
}

TEST(ModelValidation, UnknownArchitecture) {
    TinyGGUF g = tiny_model();
    g.set("general.architecture", std::string("mamba"));
    EXPECT_EQ(load_error(g), "unsupported architecture 'mamba' (hearth supports qwen2, llama)");
    g.erase("general.architecture");
    EXPECT_EQ(load_error(g), "missing metadata 'general.architecture'");
}

TEST(ModelValidation, WrongShapeNamesTensorAndShapes) {
    TinyGGUF g = tiny_model();
    g.add_tensor("blk.1.attn_k.weight", {32, 32});
    const std::string e = load_error(g);
    EXPECT_NE(e.find("'blk.1.attn_k.weight'"), std::string::npos) << e;
    EXPECT_NE(e.find("has shape [32, 32]"), std::string::npos) << e;
    EXPECT_NE(e.find("expected [32, 16]"), std::string::npos) << e;
    EXPECT_NE(e.find("n_head_kv * head_dim"), std::string::npos) << e;

    g = tiny_model();
    g.add_tensor("output_norm.weight", {32, 1});  // right size, wrong rank
    EXPECT_NE(load_error(g).find("'output_norm.weight' has shape [32, 1], expected [32]"),
              std::string::npos)
        << load_error(g);

    g = tiny_model();
    g.add_tensor("blk.0.ffn_down.weight", {32, 48});  // transposed
    EXPECT_NE(load_error(g).find("'blk.0.ffn_down.weight' has shape [32, 48], expected [48, 32]"),
              std::string::npos)
        << load_error(g);
}

TEST(ModelValidation, MissingAndUnexpectedTensors) {
    TinyGGUF g = tiny_model();
    g.erase_tensor("blk.1.ffn_up.weight");
    EXPECT_EQ(load_error(g), "missing tensor 'blk.1.ffn_up.weight'");

    g = tiny_model();
    g.erase_tensor("blk.0.attn_v.bias");
    EXPECT_EQ(load_error(g), "missing tensor 'blk.0.attn_v.bias'");

    g = tiny_model();
    g.add_tensor("blk.2.attn_norm.weight", {32});  // a layer beyond block_count
    EXPECT_NE(load_error(g).find("unexpected tensor 'blk.2.attn_norm.weight'"), std::string::npos);

    g = tiny_model("llama");
    g.add_tensor("blk.1.attn_k.bias", {16});  // a stray bias without the others
    EXPECT_NE(load_error(g).find("unexpected tensor 'blk.1.attn_k.bias'"), std::string::npos)
        << load_error(g);

    g = tiny_model("llama");
    g.add_tensor("blk.0.attn_q.bias", {32});  // q bias present: all biases required
    EXPECT_EQ(load_error(g), "missing tensor 'blk.0.attn_k.bias'");
}

TEST(ModelValidation, TiedOutput) {
    TinyGGUF g = tiny_model();
    g.erase_tensor("output.weight");
    auto b = build(g);
    ASSERT_TRUE(b->model.ok()) << b->model.error().message;
    const Model& m = **b->model;
    EXPECT_TRUE(m.hparams().tied_output);
    EXPECT_EQ(m.output().data, m.token_embd().data);
    EXPECT_EQ(m.output().type, GGMLType::Q8_0);
}

TEST(ModelValidation, UnsupportedTypes) {
    TinyGGUF g = tiny_model();
    g.add_tensor("blk.0.ffn_gate.weight", {32, 48}, GGMLType::Q4_1);
    const std::string e = load_error(g);
    EXPECT_NE(e.find("'blk.0.ffn_gate.weight' has type q4_1"), std::string::npos) << e;
    EXPECT_NE(e.find("supported: f32, f16, bf16, q8_0, q4_0, q4_K, q5_K, q6_K"), std::string::npos)
        << e;

    g = tiny_model();
    g.add_tensor("blk.1.ffn_norm.weight", {32}, GGMLType::F16);
    EXPECT_EQ(load_error(g), "tensor 'blk.1.ffn_norm.weight' has type f16, expected f32");
}

TEST(ModelValidation, BadMetadata) {
    TinyGGUF g = tiny_model();
    g.erase("qwen2.block_count");
    EXPECT_EQ(load_error(g), "missing metadata 'qwen2.block_count'");

    g = tiny_model();
    g.set("qwen2.block_count", 0u);
    EXPECT_NE(load_error(g).find("'qwen2.block_count' = 0 is out of range"), std::string::npos);

    g = tiny_model();
    g.set("qwen2.embedding_length", std::string("wide"));
    EXPECT_EQ(load_error(g), "metadata 'qwen2.embedding_length' is not an integer");

    g = tiny_model();
    g.set("qwen2.attention.head_count", 3u);
    g.set("qwen2.attention.head_count_kv", 2u);
    EXPECT_NE(load_error(g).find("is not a multiple of"), std::string::npos) << load_error(g);

    g = tiny_model();
    g.set("qwen2.attention.layer_norm_rms_epsilon", -1.0f);
    EXPECT_NE(load_error(g).find("must be a positive finite number"), std::string::npos);

    g = tiny_model();
    g.set("qwen2.rope.scaling.type", std::string("yarn"));
    EXPECT_NE(load_error(g).find("scaled rope is not supported"), std::string::npos);
    g.set("qwen2.rope.scaling.type", std::string("none"));
    EXPECT_EQ(load_error(g), "(loaded fine)");

    g = tiny_model();
    g.set("qwen2.rope.dimension_count", 8u);
    EXPECT_NE(load_error(g).find("partial rope not supported"), std::string::npos);

    g = tiny_model();
    g.set("qwen2.vocab_size", 17u);
    EXPECT_EQ(load_error(g), "metadata 'qwen2.vocab_size' = 17 but token_embd.weight has 16 rows");
}

TEST(ModelValidation, ExplicitKeyLengthSetsHeadDim) {
    // 2 heads of 8 in a 32-wide model: Q is 16 rows, K/V 8.
    TinyGGUF g = tiny_model();
    g.set("qwen2.attention.key_length", 8u);
    g.set("qwen2.attention.value_length", 8u);
    for (int l = 0; l < 2; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        g.add_tensor(p + "attn_q.weight", {32, 16});
        g.add_tensor(p + "attn_k.weight", {32, 8});
        g.add_tensor(p + "attn_v.weight", {32, 8});
        g.add_tensor(p + "attn_q.bias", {16});
        g.add_tensor(p + "attn_k.bias", {8});
        g.add_tensor(p + "attn_v.bias", {8});
        g.add_tensor(p + "attn_output.weight", {16, 32});
    }
    auto b = build(g);
    ASSERT_TRUE(b->model.ok()) << b->model.error().message;
    EXPECT_EQ((*b->model)->hparams().head_dim, 8);
    EXPECT_EQ((*b->model)->hparams().q_dim(), 16);

    g.set("qwen2.attention.value_length", 16u);
    EXPECT_NE(load_error(g).find("differs from the key length"), std::string::npos);
}

TEST(ModelValidation, FingerprintFollowsWeightsAndHparams) {
    auto fingerprint = [](const TinyGGUF& g) {
        auto b = build(g);
        EXPECT_TRUE(b->model.ok()) << b->model.error().message;
        return b->model.ok() ? (*b->model)->fingerprint() : 0;
    };
    const uint64_t base = fingerprint(tiny_model());
    EXPECT_EQ(fingerprint(tiny_model()), base);

    TinyGGUF g = tiny_model();
    g.reseed("blk.1.ffn_down.weight");  // same shapes, other values
    EXPECT_NE(fingerprint(g), base);

    g = tiny_model();
    g.add_tensor("blk.0.attn_k.weight", {32, 16}, GGMLType::F16);  // other quantization
    EXPECT_NE(fingerprint(g), base);

    g = tiny_model();
    g.set("qwen2.rope.freq_base", 20000.0f);
    EXPECT_NE(fingerprint(g), base);

    // Metadata that does not change the computation does not change the fingerprint.
    g = tiny_model();
    g.set("general.name", std::string("renamed"));
    EXPECT_EQ(fingerprint(g), base);
}

}  // namespace
}  // namespace hearth
