#include "synth.h"

#include <cmath>
#include <cstring>

#include "gguf.h"
#include "gguf_writer.h"
#include "quant.h"

namespace hearth {

const std::vector<SynthShape>& synth_shapes() {
    static const std::vector<SynthShape> shapes = {
        // name                  embd  layer head kv  ff     vocab   ctx    tied   theta
        {"tiny", 256, 2, 4, 2, 512, 0, 4096, true, 1e6f},
        {"qwen2.5-coder-0.5b", 896, 24, 14, 2, 4864, 151936, 32768, true, 1e6f},
        {"qwen2.5-coder-1.5b", 1536, 28, 12, 2, 8960, 151936, 32768, true, 1e6f},
        {"qwen2.5-coder-3b", 2048, 36, 16, 2, 11008, 151936, 32768, true, 1e6f},
        {"qwen2.5-coder-7b", 3584, 28, 28, 4, 18944, 152064, 32768, false, 1e6f},
        {"qwen2.5-coder-14b", 5120, 48, 40, 8, 13824, 152064, 32768, false, 1e6f},
        {"qwen2.5-coder-32b", 5120, 64, 40, 8, 27648, 152064, 32768, false, 1e6f},
    };
    return shapes;
}

namespace {

// splitmix64: a tiny, well-mixed generator; one stream per (tensor, row).
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed) {}
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0,1)
    // Roughly normal (Irwin-Hall of 4), mean 0, standard deviation 1.
    float normal() {
        return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f;
    }
    void bytes(uint8_t* p, size_t n) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const uint64_t v = next();
            std::memcpy(p + i, &v, 8);
        }
        if (i < n) {
            const uint64_t v = next();
            std::memcpy(p + i, &v, n - i);
        }
    }
};

void put_f16(uint8_t* p, float v) {
    const uint16_t h = fp32_to_fp16(v);
    std::memcpy(p, &h, 2);
}

constexpr float kWeightStd = 0.02f;

// Fills one row of `type` with random but well-formed blocks whose decoded values have
// a standard deviation near kWeightStd.
Status fill_row(GGMLType type, Rng& rng, std::span<uint8_t> dst) {
    const TypeTraits* tt = type_traits(type);
    const size_t bb = tt->block_bytes;
    switch (type) {
        case GGMLType::F32: {
            auto* f = reinterpret_cast<float*>(dst.data());
            for (size_t i = 0; i < dst.size() / 4; ++i) f[i] = kWeightStd * rng.normal();
            return {};
        }
        case GGMLType::F16: {
            for (size_t i = 0; i + 2 <= dst.size(); i += 2) put_f16(dst.data() + i, kWeightStd * rng.normal());
            return {};
        }
        case GGMLType::Q8_0:  // f16 d; int8 q[32]: uniform q has std ~73
            rng.bytes(dst.data(), dst.size());
            for (size_t b = 0; b < dst.size(); b += bb) {
                put_f16(dst.data() + b, kWeightStd / 73.0f * (0.5f + rng.uniform()));
            }
            return {};
        case GGMLType::Q4_K:  // f16 d, f16 dmin, scales[12], qs[128]
            rng.bytes(dst.data(), dst.size());
            for (size_t b = 0; b < dst.size(); b += bb) {
                put_f16(dst.data() + b, kWeightStd / (32.0f * 4.6f) * (0.5f + rng.uniform()));
                put_f16(dst.data() + b + 2, kWeightStd / (32.0f * 8.0f) * (0.5f + rng.uniform()));
            }
            return {};
        case GGMLType::Q6_K:  // ql[128], qh[64], int8 scales[16], f16 d
            rng.bytes(dst.data(), dst.size());
            for (size_t b = 0; b < dst.size(); b += bb) {
                put_f16(dst.data() + b + 208, kWeightStd / (74.0f * 18.5f) * (0.5f + rng.uniform()));
            }
            return {};
        default:
            return make_error("gguf-synth cannot write tensors of type " + std::string(tt->name));
    }
}

bool use_more_bits(int32_t i, int32_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

struct FileType {
    std::string_view name;
    uint32_t ggml_ftype;  // general.file_type (llama_ftype)
    GGMLType base;
};

constexpr FileType kFileTypes[] = {
    {"f16", 1, GGMLType::F16}, {"q8_0", 7, GGMLType::Q8_0}, {"q4_k_m", 15, GGMLType::Q4_K}};

}  // namespace

Status synthesize_model(const SynthOptions& opts) {
    const SynthShape* shape = nullptr;
    for (const SynthShape& s : synth_shapes()) {
        if (s.name == opts.shape) shape = &s;
    }
    if (shape == nullptr) {
        std::string known;
        for (const SynthShape& s : synth_shapes()) known += (known.empty() ? "" : ", ") + std::string(s.name);
        return make_error("unknown shape '" + opts.shape + "' (known: " + known + ")");
    }
    const FileType* ft = nullptr;
    for (const FileType& f : kFileTypes) {
        if (f.name == opts.type) ft = &f;
    }
    if (ft == nullptr) return make_error("unknown type '" + opts.type + "' (known: f16, q8_0, q4_k_m)");

    auto vocab = GGUFFile::open(opts.vocab_path);
    if (!vocab) return vocab.error();
    const GGUFArray* tokens = (*vocab)->get_array("tokenizer.ggml.tokens");
    if (tokens == nullptr) return make_error(opts.vocab_path + ": no tokenizer.ggml.tokens");
    const auto n_tok = static_cast<int32_t>(tokens->items.size());
    const int32_t n_vocab = shape->n_vocab > 0 ? shape->n_vocab : n_tok;
    if (n_tok > n_vocab) {
        return make_error("the vocabulary has " + std::to_string(n_tok) + " tokens, more than the " +
                          std::to_string(n_vocab) + " rows of " + std::string(shape->name));
    }
    const int32_t n_layer = opts.n_layer_override > 0 ? opts.n_layer_override : shape->n_layer;
    const int32_t head_dim = shape->n_embd / shape->n_head;

    GGUFWriter w;
    w.set_string("general.architecture", "qwen2");
    w.set_string("general.name", std::string(shape->name) + " (random weights, hearth gguf-synth)");
    w.set_u32("general.file_type", ft->ggml_ftype);
    w.set_u32("general.quantization_version", 2);
    w.set_u32("qwen2.context_length", static_cast<uint32_t>(shape->n_ctx));
    w.set_u32("qwen2.embedding_length", static_cast<uint32_t>(shape->n_embd));
    w.set_u32("qwen2.block_count", static_cast<uint32_t>(n_layer));
    w.set_u32("qwen2.feed_forward_length", static_cast<uint32_t>(shape->n_ff));
    w.set_u32("qwen2.attention.head_count", static_cast<uint32_t>(shape->n_head));
    w.set_u32("qwen2.attention.head_count_kv", static_cast<uint32_t>(shape->n_head_kv));
    w.set_f32("qwen2.rope.freq_base", shape->rope_theta);
    w.set_f32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f);

    // The real tokenizer, padded to the embedding rows as the converters pad it.
    for (const GGUFKV& kv : (*vocab)->metadata()) {
        if (!kv.key.starts_with("tokenizer.")) continue;
        if (n_tok < n_vocab &&
            (kv.key == "tokenizer.ggml.tokens" || kv.key == "tokenizer.ggml.token_type")) {
            continue;
        }
        HEARTH_TRY(w.copy_kv(kv));
    }
    if (n_tok < n_vocab) {
        std::vector<std::string> toks;
        std::vector<int32_t> types;
        const GGUFArray* tt = (*vocab)->get_array("tokenizer.ggml.token_type");
        toks.reserve(static_cast<size_t>(n_vocab));
        for (int32_t i = 0; i < n_vocab; ++i) {
            if (i < n_tok) {
                toks.emplace_back(*tokens->items[static_cast<size_t>(i)].as_string());
                types.push_back(tt ? static_cast<int32_t>(
                                         tt->items[static_cast<size_t>(i)].as_int().value_or(1))
                                   : 1);
            } else {
                toks.push_back("[PAD" + std::to_string(i) + "]");
                types.push_back(5);  // UNUSED
            }
        }
        w.set_array_string("tokenizer.ggml.tokens", toks);
        w.set_array_i32("tokenizer.ggml.token_type", types);
    }

    // Tensors, in the order converters write them.
    uint64_t tensor_id = 0;
    auto add = [&](const std::string& name, GGMLType type, std::vector<int64_t> ne) -> Status {
        if (ne[0] % type_traits(type)->block_elems != 0) type = GGMLType::Q8_0;
        const uint64_t stream = opts.seed * 0x100000001B3ull + (++tensor_id) * 0x9E3779B97F4A7C15ull;
        return w.add_tensor(name, type, ne, [type, stream](int64_t row, std::span<uint8_t> dst) {
            Rng rng(stream ^ (static_cast<uint64_t>(row) * 0xD6E8FEB86659FD93ull));
            return fill_row(type, rng, dst);
        });
    };
    auto add_f32 = [&](const std::string& name, int64_t n, float center, float spread) -> Status {
        const uint64_t stream = opts.seed * 0x100000001B3ull + (++tensor_id) * 0x9E3779B97F4A7C15ull;
        return w.add_tensor(name, GGMLType::F32, std::vector<int64_t>{n},
                            [center, spread, stream](std::span<uint8_t> dst) {
                                Rng rng(stream);
                                auto* f = reinterpret_cast<float*>(dst.data());
                                for (size_t i = 0; i < dst.size() / 4; ++i) {
                                    f[i] = center + spread * rng.normal();
                                }
                                return Status{};
                            });
    };
    const bool q4km = opts.type == "q4_k_m";
    const GGMLType base = ft->base;
    const GGMLType out_type = q4km ? GGMLType::Q6_K : base;
    const int64_t E = shape->n_embd, F = shape->n_ff;
    const int64_t Q = static_cast<int64_t>(shape->n_head) * head_dim;
    const int64_t KV = static_cast<int64_t>(shape->n_head_kv) * head_dim;

    HEARTH_TRY(add("token_embd.weight", shape->tied_output ? out_type : base, {E, n_vocab}));
    for (int32_t l = 0; l < n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        const GGMLType more = q4km && use_more_bits(l, n_layer) ? GGMLType::Q6_K : base;
        HEARTH_TRY(add_f32(p + "attn_norm.weight", E, 1.0f, 0.05f));
        HEARTH_TRY(add(p + "attn_q.weight", base, {E, Q}));
        HEARTH_TRY(add_f32(p + "attn_q.bias", Q, 0.0f, 0.02f));
        HEARTH_TRY(add(p + "attn_k.weight", base, {E, KV}));
        HEARTH_TRY(add_f32(p + "attn_k.bias", KV, 0.0f, 0.02f));
        HEARTH_TRY(add(p + "attn_v.weight", more, {E, KV}));
        HEARTH_TRY(add_f32(p + "attn_v.bias", KV, 0.0f, 0.02f));
        HEARTH_TRY(add(p + "attn_output.weight", base, {Q, E}));
        HEARTH_TRY(add_f32(p + "ffn_norm.weight", E, 1.0f, 0.05f));
        HEARTH_TRY(add(p + "ffn_gate.weight", base, {E, F}));
        HEARTH_TRY(add(p + "ffn_up.weight", base, {E, F}));
        HEARTH_TRY(add(p + "ffn_down.weight", more, {F, E}));
    }
    HEARTH_TRY(add_f32("output_norm.weight", E, 1.0f, 0.05f));
    if (!shape->tied_output) HEARTH_TRY(add("output.weight", out_type, {E, n_vocab}));

    GGUFProgressFn progress;
    if (opts.progress) {
        progress = [&opts](const GGUFWriteProgress& p) { opts.progress(p.bytes_written, p.total_bytes); };
    }
    return w.write(opts.out_path, progress);
}

}  // namespace hearth
