// The CPU reference backend: the forward pass of qwen2 and llama in fp32.
//
// Weights are read straight from the GGUF mapping and dequantized row by row as the
// matmuls need them; activations and the KV cache are fp32. It is the oracle the Vulkan
// backend is tested against, so it favours obviously correct code over speed; its one
// guarantee beyond correctness is batch invariance (see ops.h): prefill and decode give
// bit-equal results.
//
// Per layer, for the tokens of one eval call at positions pos .. pos+T-1:
//   h   = rms_norm(x) * attn_norm
//   q   = h Wq^T (+ bq), k = h Wk^T (+ bk), v = h Wv^T (+ bv)   (k, v written to the cache)
//   q,k rotated by rope at their positions (NEOX for qwen2, NORMAL for llama)
//   a   = per query head: softmax(q K^T / sqrt(head_dim), causal) V of its KV head (GQA)
//   x  += a Wo^T
//   h   = rms_norm(x) * ffn_norm
//   x  += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
// then logits = (rms_norm(x) * output_norm) Wout^T.
#pragma once

#include <memory>

#include "../backend.h"
#include "../model.h"
#include "../result.h"

namespace hearth {

// n_threads: worker threads for the matmuls and attention, counting the caller;
// 0 = all hardware threads.
Expected<std::unique_ptr<Backend>> make_cpu_backend(std::shared_ptr<const Model> model,
                                                    int n_threads = 0);

}  // namespace hearth
