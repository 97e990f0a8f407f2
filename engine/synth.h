// Synthetic models: random weights in the exact shapes of real models, written as GGUF.
//
// Benchmarks need real model shapes, not real weights, and real weights are not
// reachable from every machine. synthesize_model() writes a qwen2-architecture GGUF with
// the hyperparameters, tensor names, tensor types (llama.cpp's mix for each file type)
// and the real tokenizer copied from a vocabulary GGUF, so any GGUF engine loads the same
// file. Weights are pseudo-random but well-formed (finite fp16 scales of a realistic
// magnitude), seeded, so the same command writes the same bytes.
//
// File types and their tensor type mix (as llama-quantize chooses them):
//   f16     every matrix F16
//   q8_0    every matrix Q8_0
//   q4_k_m  Q4_K, except Q6_K for output.weight (token_embd.weight when the output is
//           tied), and for attn_v.weight and ffn_down.weight in the layers where
//           llama.cpp spends more bits (the first and last eighth, and every third layer
//           between them). A matrix whose rows are not a multiple of 256 falls back to
//           Q8_0 (llama.cpp uses Q5_0/Q8_0 there; hearth does not run Q5_0).
// Norms and biases are F32 in every file type.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace hearth {

struct SynthShape {
    std::string_view name;  // "qwen2.5-coder-1.5b"
    int32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    bool tied_output;
    float rope_theta;
};

// The known shapes (qwen2.5-coder-0.5b ... -32b, plus "tiny" for tests).
const std::vector<SynthShape>& synth_shapes();

struct SynthOptions {
    std::string shape;       // a SynthShape name
    std::string type;        // "f16", "q8_0", "q4_k_m"
    std::string vocab_path;  // GGUF with tokenizer.* metadata (e.g. qwen-vocab.gguf)
    std::string out_path;
    uint64_t seed = 1;
    int n_layer_override = 0;  // > 0: fewer layers (quick tests)
    std::function<void(uint64_t done, uint64_t total)> progress;  // bytes
};

Status synthesize_model(const SynthOptions& opts);

}  // namespace hearth
