#include "ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../quant.h"

namespace hearth::cpu {

float dot_f32(const float* a, const float* b, int64_t n) {
    // Eight independent partial sums: the compiler can keep them in vector registers, and
    // the order of additions stays fixed by the source rather than by the optimiser.
    float acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
    }
    float tail = 0.0f;
    for (; i < n; ++i) tail += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

void matmul(ThreadPool& pool, const TensorView& w, const float* x, int64_t n_tokens, float* out,
            const float* bias, int64_t out_stride) {
    const int64_t rows = w.rows();
    const int64_t cols = w.cols();
    if (out_stride == 0) out_stride = rows;
    // Dequantize a block of rows (about 64 KiB of fp32, so it stays in L2) and stream every
    // token's activations past it.
    const int64_t block = std::clamp<int64_t>(16384 / cols, 1, 64);
    const int64_t n_blocks = (rows + block - 1) / block;
    pool.parallel_for(n_blocks, 1, [&](int64_t b0, int64_t b1, int) {
        thread_local std::vector<float> wbuf;
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t r0 = b * block;
            const int64_t r1 = std::min(rows, r0 + block);
            wbuf.resize(static_cast<size_t>((r1 - r0) * cols));
            for (int64_t r = r0; r < r1; ++r) {
                dequantize_row(w.type, w.row(r), wbuf.data() + (r - r0) * cols, cols);
            }
            for (int64_t t = 0; t < n_tokens; ++t) {
                const float* xt = x + t * cols;
                float* ot = out + t * out_stride;
                for (int64_t r = r0; r < r1; ++r) {
                    float v = dot_f32(wbuf.data() + (r - r0) * cols, xt, cols);
                    if (bias) v += bias[r];
                    ot[r] = v;
                }
            }
        }
    });
}

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
    const float mean_sq = dot_f32(x, x, n) / static_cast<float>(n);
    const float scale = 1.0f / std::sqrt(mean_sq + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * weight[i];
}

void rope_table(int64_t pos, int32_t head_dim, float theta, float* out) {
    const int32_t half = head_dim / 2;
    for (int32_t k = 0; k < half; ++k) {
        const double freq = std::pow(static_cast<double>(theta), -2.0 * k / head_dim);
        const double angle = static_cast<double>(pos) * freq;
        out[2 * k] = static_cast<float>(std::cos(angle));
        out[2 * k + 1] = static_cast<float>(std::sin(angle));
    }
}

void rope(float* v, int32_t n_heads, int32_t head_dim, const float* cos_sin, RopeStyle style) {
    const int32_t half = head_dim / 2;
    for (int32_t h = 0; h < n_heads; ++h) {
        float* head = v + static_cast<int64_t>(h) * head_dim;
        for (int32_t k = 0; k < half; ++k) {
            const int32_t i0 = style == RopeStyle::Neox ? k : 2 * k;
            const int32_t i1 = style == RopeStyle::Neox ? k + half : 2 * k + 1;
            const float c = cos_sin[2 * k];
            const float s = cos_sin[2 * k + 1];
            const float x0 = head[i0];
            const float x1 = head[i1];
            head[i0] = x0 * c - x1 * s;
            head[i1] = x0 * s + x1 * c;
        }
    }
}

void softmax(float* x, int64_t n) {
    float mx = x[0];
    for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void add(float* x, const float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void swiglu(float* g, const float* u, int64_t n) {
    for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void embed_row(const TensorView& table, int64_t row, float* out) {
    dequantize_row(table.type, table.row(row), out, table.cols());
}

}  // namespace hearth::cpu
