#include "model.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "quant.h"

namespace hearth {

namespace {

constexpr GGMLType kWeightTypes[] = {GGMLType::F32,  GGMLType::F16,  GGMLType::BF16,
                                     GGMLType::Q8_0, GGMLType::Q4_0, GGMLType::Q4_K,
                                     GGMLType::Q5_K, GGMLType::Q6_K};

std::string type_name(GGMLType type) {
    const TypeTraits* tt = type_traits(type);
    return tt ? std::string(tt->name) : "type " + std::to_string(static_cast<uint32_t>(type));
}

std::string supported_type_list() {
    std::string s;
    for (GGMLType t : kWeightTypes) {
        if (!s.empty()) s += ", ";
        s += type_name(t);
    }
    return s;
}

std::string shape_string(std::span<const int64_t> ne) {
    std::string s = "[";
    for (size_t i = 0; i < ne.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(ne[i]);
    }
    return s + "]";
}

// Reads integer hyperparameters with a range check, so absurd values (0 layers, a
// negative head count) are rejected here rather than crashing a backend later.
class MetadataReader {
public:
    MetadataReader(const GGUFFile& file, std::string arch) : file_(file), arch_(std::move(arch)) {}

    Expected<int32_t> get_int(std::string_view suffix, std::optional<int64_t> fallback, int64_t lo,
                              int64_t hi) const {
        const std::string key = arch_ + "." + std::string(suffix);
        std::optional<int64_t> v;
        if (const GGUFValue* raw = file_.find(key)) {
            v = raw->as_int();
            if (!v) return make_error("metadata '" + key + "' is not an integer");
        } else if (fallback) {
            v = fallback;
        } else {
            return make_error("missing metadata '" + key + "'");
        }
        if (*v < lo || *v > hi) {
            return make_error("metadata '" + key + "' = " + std::to_string(*v) +
                              " is out of range [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + "]");
        }
        return static_cast<int32_t>(*v);
    }

    Expected<float> get_positive_float(std::string_view suffix,
                                       std::optional<double> fallback) const {
        const std::string key = arch_ + "." + std::string(suffix);
        std::optional<double> v;
        if (const GGUFValue* raw = file_.find(key)) {
            v = raw->as_float();
            if (!v) return make_error("metadata '" + key + "' is not a number");
        } else if (fallback) {
            v = fallback;
        } else {
            return make_error("missing metadata '" + key + "'");
        }
        if (!std::isfinite(*v) || *v <= 0.0 || *v > 1e30) {
            return make_error("metadata '" + key + "' = " + std::to_string(*v) +
                              " must be a positive finite number");
        }
        return static_cast<float>(*v);
    }

    const GGUFValue* find(std::string_view suffix) const {
        return file_.find(arch_ + "." + std::string(suffix));
    }
    std::string key(std::string_view suffix) const { return arch_ + "." + std::string(suffix); }

private:
    const GGUFFile& file_;
    std::string arch_;
};

Expected<Hparams> read_hparams(const GGUFFile& file) {
    Hparams hp;
    const auto arch_str = file.get_string("general.architecture");
    if (!arch_str) return make_error("missing metadata 'general.architecture'");
    const std::string arch(*arch_str);
    if (arch == "qwen2") {
        hp.arch = Arch::Qwen2;
        hp.rope_style = RopeStyle::Neox;
    } else if (arch == "llama") {
        hp.arch = Arch::Llama;
        hp.rope_style = RopeStyle::Normal;
    } else {
        return make_error("unsupported architecture '" + arch + "' (hearth supports qwen2, llama)");
    }

    const MetadataReader md(file, arch);
    auto n_embd = md.get_int("embedding_length", std::nullopt, 1, 1 << 17);
    HEARTH_TRY(n_embd);
    auto n_layer = md.get_int("block_count", std::nullopt, 1, 4096);
    HEARTH_TRY(n_layer);
    auto n_head = md.get_int("attention.head_count", std::nullopt, 1, 4096);
    HEARTH_TRY(n_head);
    auto n_head_kv = md.get_int("attention.head_count_kv", *n_head, 1, *n_head);
    HEARTH_TRY(n_head_kv);
    auto n_ff = md.get_int("feed_forward_length", std::nullopt, 1, 1 << 20);
    HEARTH_TRY(n_ff);
    auto n_ctx = md.get_int("context_length", std::nullopt, 1, 1 << 24);
    HEARTH_TRY(n_ctx);
    auto eps = md.get_positive_float("attention.layer_norm_rms_epsilon", std::nullopt);
    HEARTH_TRY(eps);
    auto theta = md.get_positive_float("rope.freq_base", 10000.0);
    HEARTH_TRY(theta);

    if (*n_head % *n_head_kv != 0) {
        return make_error("metadata '" + md.key("attention.head_count") +
                          "' = " + std::to_string(*n_head) + " is not a multiple of '" +
                          md.key("attention.head_count_kv") + "' = " + std::to_string(*n_head_kv));
    }
    std::optional<int64_t> default_head_dim;
    if (*n_embd % *n_head == 0) default_head_dim = *n_embd / *n_head;
    if (!default_head_dim && md.find("attention.key_length") == nullptr) {
        return make_error("'" + md.key("embedding_length") + "' = " + std::to_string(*n_embd) +
                          " is not a multiple of the head count " + std::to_string(*n_head) +
                          " and '" + md.key("attention.key_length") + "' is absent");
    }
    auto head_dim = md.get_int("attention.key_length", default_head_dim, 2, 1024);
    HEARTH_TRY(head_dim);
    if (*head_dim % 2 != 0) {
        return make_error("head dimension " + std::to_string(*head_dim) +
                          " is odd; rope needs pairs");
    }
    auto value_dim = md.get_int("attention.value_length", *head_dim, 1, 1024);
    HEARTH_TRY(value_dim);
    if (*value_dim != *head_dim) {
        return make_error("metadata '" + md.key("attention.value_length") +
                          "' = " + std::to_string(*value_dim) + " differs from the key length " +
                          std::to_string(*head_dim) + " (not supported)");
    }
    auto rope_dims = md.get_int("rope.dimension_count", *head_dim, 1, 1024);
    HEARTH_TRY(rope_dims);
    if (*rope_dims != *head_dim) {
        return make_error("metadata '" + md.key("rope.dimension_count") +
                          "' = " + std::to_string(*rope_dims) + " but heads have " +
                          std::to_string(*head_dim) + " dimensions (partial rope not supported)");
    }
    if (const GGUFValue* scaling = md.find("rope.scaling.type")) {
        const auto s = scaling->as_string();
        if (!s || (*s != "none" && !s->empty())) {
            return make_error("metadata '" + md.key("rope.scaling.type") + "' = '" +
                              std::string(s.value_or("?")) + "': scaled rope is not supported");
        }
    }

    hp.n_embd = *n_embd;
    hp.n_layer = *n_layer;
    hp.n_head = *n_head;
    hp.n_head_kv = *n_head_kv;
    hp.head_dim = *head_dim;
    hp.n_ff = *n_ff;
    hp.n_ctx_train = *n_ctx;
    hp.rms_eps = *eps;
    hp.rope_theta = *theta;
    return hp;
}

// Binds tensors by name with strict checks and remembers which ones were used, so any
// tensor left over can be reported as unexpected.
class Binder {
public:
    explicit Binder(const GGUFFile& file) : file_(file) {}

    enum class Kind { Weight, F32Vector };

    // `dims_doc` spells the expected ne in hparam names, for the error message.
    Expected<TensorView> bind(const std::string& name, std::vector<int64_t> ne, Kind kind,
                              std::string_view dims_doc, bool optional = false) {
        const GGUFTensorInfo* ti = file_.tensor(name);
        if (ti == nullptr) {
            if (optional) return TensorView{};
            return make_error("missing tensor '" + name + "'");
        }
        used_.insert(ti->name);
        const std::span<const int64_t> actual(ti->ne.data(), ti->n_dims);
        if (ti->n_dims != ne.size() || !std::equal(ne.begin(), ne.end(), actual.begin())) {
            return make_error("tensor '" + name + "' has shape " + shape_string(actual) +
                              ", expected " + shape_string(ne) + " (ne = [" +
                              std::string(dims_doc) + "])");
        }
        if (kind == Kind::F32Vector && ti->type != GGMLType::F32) {
            return make_error("tensor '" + name + "' has type " + type_name(ti->type) +
                              ", expected f32");
        }
        if (kind == Kind::Weight) {
            const TypeTraits* tt = type_traits(ti->type);
            if (!is_supported_weight_type(ti->type) || tt == nullptr || !tt->can_dequantize) {
                return make_error(
                    "tensor '" + name + "' has type " + type_name(ti->type) +
                    ", which hearth does not run (supported: " + supported_type_list() + ")");
            }
        }
        TensorView v;
        v.type = ti->type;
        v.ne = ti->ne;
        v.data = ti->data;
        v.nbytes = ti->nbytes;
        v.name = ti->name;
        bound_.push_back(v);
        return v;
    }

    Status check_all_used(std::string_view arch) const {
        for (const GGUFTensorInfo& ti : file_.tensors()) {
            if (!used_.contains(ti.name)) {
                return make_error("unexpected tensor '" + std::string(ti.name) + "' (not part of " +
                                  std::string(arch) + " as hearth implements it)");
            }
        }
        return {};
    }

    // Every bound tensor, in binding order (a canonical order, independent of file order).
    const std::vector<TensorView>& bound() const { return bound_; }

private:
    const GGUFFile& file_;
    std::unordered_set<std::string_view> used_;
    std::vector<TensorView> bound_;
};

// The fingerprint keys disk caches, so it must change whenever the weights do, yet it is
// computed at every load of a model that may be tens of GB. Hashing all bytes would cost
// seconds; instead every tensor contributes its name, type, shape and size (which catches
// any change of architecture, shape or quantization) plus 16 evenly spaced 4 KiB windows
// of its data (or all of it when small). Retraining or fine-tuning changes practically
// every weight, so it shows up in every window; at most 64 KiB per tensor are read.
uint64_t compute_fingerprint(const Hparams& hp, const std::vector<TensorView>& tensors) {
    XXH3_state_t* state = XXH3_createState();
    if (state == nullptr) return 0;
    XXH3_64bits_reset(state);
    auto put = [&](const void* p, size_t n) { XXH3_64bits_update(state, p, n); };
    auto put_u64 = [&](uint64_t v) {
        uint8_t b[8];
        for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
        put(b, sizeof b);
    };
    auto put_f32 = [&](float f) {
        uint32_t u = 0;
        std::memcpy(&u, &f, sizeof u);
        put_u64(u);
    };

    static constexpr char kTag[] = "hearth-model-fingerprint-v1";
    put(kTag, sizeof kTag - 1);
    put_u64(static_cast<uint64_t>(hp.arch));
    for (int32_t v : {hp.n_vocab, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.head_dim,
                      hp.n_ff, hp.n_ctx_train}) {
        put_u64(static_cast<uint64_t>(static_cast<int64_t>(v)));
    }
    put_f32(hp.rms_eps);
    put_f32(hp.rope_theta);
    put_u64(static_cast<uint64_t>(hp.rope_style));
    put_u64(hp.has_qkv_bias);
    put_u64(hp.tied_output);

    constexpr size_t kWindow = 4096;
    constexpr size_t kWindows = 16;
    for (const TensorView& t : tensors) {
        put_u64(t.name.size());
        put(t.name.data(), t.name.size());
        put_u64(static_cast<uint64_t>(t.type));
        for (int64_t n : t.ne) put_u64(static_cast<uint64_t>(n));
        put_u64(t.nbytes);
        if (t.nbytes <= kWindow * kWindows) {
            put(t.data, t.nbytes);
        } else {
            const size_t stride = (t.nbytes - kWindow) / (kWindows - 1);
            for (size_t w = 0; w < kWindows; ++w) put(t.data + w * stride, kWindow);
        }
    }
    const uint64_t h = XXH3_64bits_digest(state);
    XXH3_freeState(state);
    return h;
}

}  // namespace

std::string_view arch_name(Arch arch) {
    switch (arch) {
        case Arch::Qwen2:
            return "qwen2";
        case Arch::Llama:
            return "llama";
    }
    return "?";
}

bool is_supported_weight_type(GGMLType type) {
    return std::find(std::begin(kWeightTypes), std::end(kWeightTypes), type) !=
           std::end(kWeightTypes);
}

Expected<std::unique_ptr<Model>> Model::load(std::shared_ptr<const GGUFFile> file) {
    if (!file) return make_error("Model::load: no GGUF file");
    if (file->tensors().empty()) {
        return make_error("the GGUF file has no tensors (a vocabulary-only file?)");
    }
    auto hp_or = read_hparams(*file);
    HEARTH_TRY(hp_or);
    Hparams hp = *hp_or;

    std::unique_ptr<Model> m(new Model());
    if (auto name = file->get_string("general.name")) m->name_ = std::string(*name);

    // The vocabulary size is not in every file's metadata; the embedding table is the truth.
    const GGUFTensorInfo* embd = file->tensor("token_embd.weight");
    if (embd == nullptr) return make_error("missing tensor 'token_embd.weight'");
    if (embd->n_dims != 2 || embd->ne[1] > (1 << 24)) {
        return make_error("tensor 'token_embd.weight' has shape " +
                          shape_string({embd->ne.data(), embd->n_dims}) +
                          ", expected [n_embd, n_vocab]");
    }
    hp.n_vocab = static_cast<int32_t>(embd->ne[1]);
    const MetadataReader md(*file, std::string(arch_name(hp.arch)));
    if (md.find("vocab_size") != nullptr) {
        auto vocab = md.get_int("vocab_size", std::nullopt, 1, 1 << 24);
        HEARTH_TRY(vocab);
        if (*vocab != hp.n_vocab) {
            return make_error("metadata '" + md.key("vocab_size") +
                              "' = " + std::to_string(*vocab) + " but token_embd.weight has " +
                              std::to_string(hp.n_vocab) + " rows");
        }
    }
    hp.tied_output = file->tensor("output.weight") == nullptr;
    // qwen2 always has Q/K/V biases; llama normally has none but some llama-architecture
    // models carry them, and the math is the same.
    hp.has_qkv_bias = hp.arch == Arch::Qwen2 || file->tensor("blk.0.attn_q.bias") != nullptr;

    using Kind = Binder::Kind;
    Binder b(*file);
    const int64_t E = hp.n_embd, V = hp.n_vocab, F = hp.n_ff;
    const int64_t Q = hp.q_dim(), KV = hp.kv_dim();

    auto token_embd = b.bind("token_embd.weight", {E, V}, Kind::Weight, "n_embd, n_vocab");
    HEARTH_TRY(token_embd);
    m->token_embd_ = *token_embd;
    auto output_norm = b.bind("output_norm.weight", {E}, Kind::F32Vector, "n_embd");
    HEARTH_TRY(output_norm);
    m->output_norm_ = *output_norm;
    if (!hp.tied_output) {
        auto output = b.bind("output.weight", {E, V}, Kind::Weight, "n_embd, n_vocab");
        HEARTH_TRY(output);
        m->output_ = *output;
    }

    m->layers_.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t il = 0; il < hp.n_layer; ++il) {
        LayerWeights& L = m->layers_[static_cast<size_t>(il)];
        const std::string p = "blk." + std::to_string(il) + ".";
        struct Slot {
            TensorView* dst;
            const char* name;
            std::vector<int64_t> ne;
            Kind kind;
            const char* doc;
            bool enabled;
        };
        const bool bias = hp.has_qkv_bias;
        const Slot slots[] = {
            {&L.attn_norm, "attn_norm.weight", {E}, Kind::F32Vector, "n_embd", true},
            {&L.wq, "attn_q.weight", {E, Q}, Kind::Weight, "n_embd, n_head * head_dim", true},
            {&L.wk, "attn_k.weight", {E, KV}, Kind::Weight, "n_embd, n_head_kv * head_dim", true},
            {&L.wv, "attn_v.weight", {E, KV}, Kind::Weight, "n_embd, n_head_kv * head_dim", true},
            {&L.bq, "attn_q.bias", {Q}, Kind::F32Vector, "n_head * head_dim", bias},
            {&L.bk, "attn_k.bias", {KV}, Kind::F32Vector, "n_head_kv * head_dim", bias},
            {&L.bv, "attn_v.bias", {KV}, Kind::F32Vector, "n_head_kv * head_dim", bias},
            {&L.wo, "attn_output.weight", {Q, E}, Kind::Weight, "n_head * head_dim, n_embd", true},
            {&L.ffn_norm, "ffn_norm.weight", {E}, Kind::F32Vector, "n_embd", true},
            {&L.w_gate, "ffn_gate.weight", {E, F}, Kind::Weight, "n_embd, n_ff", true},
            {&L.w_up, "ffn_up.weight", {E, F}, Kind::Weight, "n_embd, n_ff", true},
            {&L.w_down, "ffn_down.weight", {F, E}, Kind::Weight, "n_ff, n_embd", true},
        };
        for (const Slot& s : slots) {
            // Disabled slots stay unbound, so a stray bias is reported as unexpected.
            if (!s.enabled) continue;
            auto t = b.bind(p + s.name, s.ne, s.kind, s.doc);
            HEARTH_TRY(t);
            *s.dst = *t;
        }
    }
    HEARTH_TRY(b.check_all_used(arch_name(hp.arch)));

    m->hp_ = hp;
    m->fingerprint_ = compute_fingerprint(hp, b.bound());
    m->file_ = std::move(file);
    return m;
}

uint64_t Model::memory_bytes() const {
    uint64_t total = token_embd_.nbytes + output_norm_.nbytes + output_.nbytes;
    for (const LayerWeights& L : layers_) {
        for (const TensorView* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wo,
                                    &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down}) {
            total += t->nbytes;
        }
    }
    return total;
}

uint64_t Model::kv_bytes_per_token(KVDType dtype) const {
    const uint64_t elem = dtype == KVDType::F16 ? 2 : 4;
    return static_cast<uint64_t>(hp_.n_layer) * 2 * static_cast<uint64_t>(hp_.kv_dim()) * elem;
}

}  // namespace hearth
