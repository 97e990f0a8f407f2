// Model: the hyperparameters and the named weight tensors of one GGUF file, validated.
//
// A Model is immutable once loaded and shared by every backend and session that runs it.
// It does not copy weights: every TensorView points into the GGUF mapping, which the
// Model keeps alive through its shared_ptr. The tokenizer is loaded separately from the
// same GGUFFile.
//
// Supported architectures (`general.architecture`):
//   qwen2  Q/K/V projections with bias, NEOX rope (rotate the two halves of each head)
//   llama  no biases, NORMAL rope (rotate adjacent pairs; the converter already permuted
//          the Q/K rows into that order)
//
// Metadata read (<arch> is the architecture name):
//   <arch>.embedding_length               n_embd
//   <arch>.block_count                    n_layer
//   <arch>.attention.head_count           n_head
//   <arch>.attention.head_count_kv        n_head_kv (default n_head)
//   <arch>.attention.key_length           head_dim (default n_embd / n_head); value_length,
//                                         if present, must equal it
//   <arch>.rope.dimension_count           if present, must equal head_dim (no partial rope)
//   <arch>.feed_forward_length            n_ff
//   <arch>.context_length                 n_ctx_train
//   <arch>.attention.layer_norm_rms_epsilon  rms_eps
//   <arch>.rope.freq_base                 rope_theta (default 10000)
//   <arch>.rope.scaling.type              absent or "none" (scaled rope is not supported)
//   <arch>.vocab_size                     if present, must equal n_vocab
// n_vocab is the row count of token_embd.weight.
//
// Tensors (GGUF ne[0] is the input dimension, ne[1] the output rows; shapes below are
// written as (rows, cols) = (ne[1], ne[0])):
//   token_embd.weight        (n_vocab, n_embd)       any supported weight type
//   output_norm.weight       (n_embd)                F32
//   output.weight            (n_vocab, n_embd)       absent: tied to token_embd
//   blk.N.attn_norm.weight   (n_embd)                F32
//   blk.N.attn_q.weight      (n_head * head_dim, n_embd)
//   blk.N.attn_k.weight      (n_head_kv * head_dim, n_embd)
//   blk.N.attn_v.weight      (n_head_kv * head_dim, n_embd)
//   blk.N.attn_{q,k,v}.bias  (rows of the matching weight)   F32; required for qwen2,
//                                                           all or none for llama
//   blk.N.attn_output.weight (n_embd, n_head * head_dim)
//   blk.N.ffn_norm.weight    (n_embd)                F32
//   blk.N.ffn_gate.weight    (n_ff, n_embd)
//   blk.N.ffn_up.weight      (n_ff, n_embd)
//   blk.N.ffn_down.weight    (n_embd, n_ff)
// Validation is intentionally strict: every tensor's dimensions and type are checked, a
// missing tensor, an unexpected extra tensor or a wrong shape is an error naming the tensor
// and the expected vs actual shape, so a backend never has to re-check anything.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend.h"
#include "ggml_types.h"
#include "gguf.h"
#include "result.h"

namespace hearth {

enum class Arch { Qwen2, Llama };
enum class RopeStyle {
    Neox,    // pairs (i, i + head_dim/2)
    Normal,  // pairs (2i, 2i + 1)
};

std::string_view arch_name(Arch arch);  // "qwen2", "llama"

struct Hparams {
    Arch arch = Arch::Qwen2;
    int32_t n_vocab = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;
    int32_t n_ff = 0;
    int32_t n_ctx_train = 0;
    float rms_eps = 1e-6f;
    float rope_theta = 10000.0f;
    RopeStyle rope_style = RopeStyle::Neox;
    bool has_qkv_bias = false;
    bool tied_output = false;

    int32_t q_dim() const { return n_head * head_dim; }       // rows of wq
    int32_t kv_dim() const { return n_head_kv * head_dim; }   // rows of wk / wv; KV row size
    int32_t gqa_group() const { return n_head / n_head_kv; }  // query heads per KV head
};

// Weight types the engine runs (the set every backend must implement).
bool is_supported_weight_type(GGMLType type);

// A weight tensor inside the GGUF mapping. Rows are contiguous: row r of a matrix starts at
// data + r * row_bytes() and holds ne[0] elements of `type`.
struct TensorView {
    GGMLType type = GGMLType::F32;
    std::array<int64_t, 4> ne = {1, 1, 1, 1};
    const uint8_t* data = nullptr;  // nullptr: the tensor is absent (e.g. no bias)
    size_t nbytes = 0;
    std::string_view name;

    bool present() const { return data != nullptr; }
    int64_t cols() const { return ne[0]; }
    int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
    size_t row_bytes() const { return nbytes / static_cast<size_t>(rows()); }
    const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }
    // F32 vectors (norms, biases) as floats. Only valid for type F32.
    const float* f32() const { return reinterpret_cast<const float*>(data); }
};

struct LayerWeights {
    TensorView attn_norm;  // (n_embd) F32
    TensorView wq;         // (n_head * head_dim, n_embd)
    TensorView wk;         // (n_head_kv * head_dim, n_embd)
    TensorView wv;         // (n_head_kv * head_dim, n_embd)
    TensorView bq;         // (n_head * head_dim) F32, absent without qkv bias
    TensorView bk;         // (n_head_kv * head_dim) F32, absent without qkv bias
    TensorView bv;         // (n_head_kv * head_dim) F32, absent without qkv bias
    TensorView wo;         // (n_embd, n_head * head_dim)
    TensorView ffn_norm;   // (n_embd) F32
    TensorView w_gate;     // (n_ff, n_embd)
    TensorView w_up;       // (n_ff, n_embd)
    TensorView w_down;     // (n_embd, n_ff)
};

class Model {
public:
    // Reads hparams and binds every tensor; any inconsistency is an error naming it.
    static Expected<std::unique_ptr<Model>> load(std::shared_ptr<const GGUFFile> file);

    const Hparams& hparams() const { return hp_; }
    const GGUFFile& gguf() const { return *file_; }
    std::string_view name() const { return name_; }  // general.name, may be empty

    const TensorView& token_embd() const { return token_embd_; }    // (n_vocab, n_embd)
    const TensorView& output_norm() const { return output_norm_; }  // (n_embd) F32
    // (n_vocab, n_embd): output.weight, or token_embd.weight when tied.
    const TensorView& output() const { return hp_.tied_output ? token_embd_ : output_; }
    std::span<const LayerWeights> layers() const { return layers_; }
    const LayerWeights& layer(int32_t i) const { return layers_[static_cast<size_t>(i)]; }

    // Identifies the weights and hyperparameters; keys the on-disk KV caches. XXH3-64 over
    // the hparams, every tensor's name/type/shape/size and a fixed sample of every tensor's
    // bytes (see model.cpp for why not all of them).
    uint64_t fingerprint() const { return fingerprint_; }

    // Bytes of the weights the forward pass reads (a tied output is counted once).
    uint64_t memory_bytes() const;
    // KV cache bytes per position: n_layer * (K + V) * kv_dim elements of `dtype`.
    uint64_t kv_bytes_per_token(KVDType dtype) const;

private:
    Model() = default;

    std::shared_ptr<const GGUFFile> file_;
    std::string name_;
    Hparams hp_;
    TensorView token_embd_;
    TensorView output_norm_;
    TensorView output_;  // absent when tied
    std::vector<LayerWeights> layers_;
    uint64_t fingerprint_ = 0;
};

}  // namespace hearth
