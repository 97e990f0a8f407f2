// The CPU backend's operations: plain fp32 loops, written to be read.
//
// Batch invariance: every output element is computed by the same sequence of float
// operations whatever the number of tokens in the call or the thread that runs it. So a
// prefill of N tokens, N single-token decodes and any chunking in between give bit-equal
// KV rows and logits — the property that makes the CPU backend a usable oracle and lets
// tests compare sessions with ==.
#pragma once

#include <cstdint>
#include <span>

#include "../model.h"
#include "thread_pool.h"

namespace hearth::cpu {

// sum_i a[i] * b[i] in fp32, with a fixed summation order (8 interleaved partial sums).
float dot_f32(const float* a, const float* b, int64_t n);

// out[t][r] = dot(w row r, x[t]) (+ bias[r]) for t < n_tokens, r < w.rows().
// x: [n_tokens][w.cols()], out: [n_tokens][w.rows()] (row stride out_stride, default
// w.rows()). Weight rows are dequantized to fp32 once per call and dotted with every token.
void matmul(ThreadPool& pool, const TensorView& w, const float* x, int64_t n_tokens, float* out,
            const float* bias = nullptr, int64_t out_stride = 0);

// out = x / sqrt(mean(x^2) + eps) * weight, over n elements. out may alias x.
void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps);

// Rotates each of n_heads heads of v (head_dim floats each) in place by the angles of one
// position: pair k (of head_dim/2) turns by cos_sin[2k], cos_sin[2k+1] (see rope_table).
// Neox pairs element k with k + head_dim/2; Normal pairs 2k with 2k+1.
void rope(float* v, int32_t n_heads, int32_t head_dim, const float* cos_sin, RopeStyle style);

// cos/sin of pos * theta^(-2k/head_dim) for k < head_dim/2, interleaved, computed in
// double so long positions keep their precision: out has head_dim floats.
void rope_table(int64_t pos, int32_t head_dim, float theta, float* out);

// In-place softmax over n elements (fp32, max subtracted).
void softmax(float* x, int64_t n);

// x += y element-wise.
void add(float* x, const float* y, int64_t n);

// silu(g) * u element-wise into g.
void swiglu(float* g, const float* u, int64_t n);

// The fp32 row `row` of an embedding table.
void embed_row(const TensorView& table, int64_t row, float* out);

}  // namespace hearth::cpu
