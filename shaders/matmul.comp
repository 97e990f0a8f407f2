#version 450
// matmul: Y[n, m] = dot(W[m, :], X[n, :]) (+ bias[m]) (+ Y[n, m]) for a batch of N
// activation rows (prefill). W is M x K in the TYPE_* format, X is N x K f32, Y is N x M
// f32 (rows of `y_stride` floats). Tiled through shared memory: each workgroup computes a
// BM x BN tile, K in steps of BK = 32; each invocation owns TM x TN outputs. Weights are
// dequantized once per tile into shared memory, so every weight byte is read once per BN
// tokens.
#include "common.glsl"

layout(constant_id = 2) const uint BM = 64;
layout(constant_id = 3) const uint BN = 64;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
const uint BK = 32;
// Padded strides: with BM+1 / BN+1 words per k-row, both the tile stores (threads along
// k) and the inner-loop reads (threads along m) hit distinct banks.
const uint WS_STRIDE = BM + 1;
const uint XS_STRIDE = BN + 1;

#define W_BINDING 0
#include "dequant.glsl"
layout(binding = 1, std430) readonly buffer XBuf { float x[]; };
layout(binding = 2, std430) buffer YBuf { float y[]; };
layout(binding = 3, std430) readonly buffer BiasBuf { float bias[]; };

layout(push_constant) uniform Push {
    uint M;
    uint N;
    uint K;
    uint x_stride;  // floats between rows of X
    uint y_stride;  // floats between rows of Y
    uint flags;     // 1: add bias, 2: accumulate into Y (residual)
} pc;

shared float Ws[BK * WS_STRIDE];
shared float Xs[BK * XS_STRIDE];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint m0 = gl_WorkGroupID.x * BM;
    const uint n0 = gl_WorkGroupID.y * BN;
    const uint TX = BM / TM;  // invocations along m
    const uint tm = tid % TX;
    const uint tn = tid / TX;

    float acc[TM * TN];
    for (uint i = 0; i < TM * TN; ++i) acc[i] = 0.0;

    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        // W tile: BM rows x 4 groups of 8; neighbouring invocations read neighbouring
        // groups of the same row.
        for (uint idx = tid; idx < BM * (BK / 8); idx += WG) {
            const uint r = idx / (BK / 8);
            const uint q = idx % (BK / 8);
            const uint m = m0 + r;
            const uint k = k0 + 8 * q;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (m < pc.M && k < pc.K) dequant8(m, pc.K, k / 8, lo, hi);
            const uint s = (8 * q) * WS_STRIDE + r;
            Ws[s] = lo.x;
            Ws[s + WS_STRIDE] = lo.y;
            Ws[s + 2 * WS_STRIDE] = lo.z;
            Ws[s + 3 * WS_STRIDE] = lo.w;
            Ws[s + 4 * WS_STRIDE] = hi.x;
            Ws[s + 5 * WS_STRIDE] = hi.y;
            Ws[s + 6 * WS_STRIDE] = hi.z;
            Ws[s + 7 * WS_STRIDE] = hi.w;
        }
        // X tile: BN rows x BK floats, read along k.
        for (uint idx = tid; idx < BN * BK; idx += WG) {
            const uint c = idx / BK;
            const uint kk = idx % BK;
            const uint n = n0 + c;
            const uint k = k0 + kk;
            Xs[kk * XS_STRIDE + c] = (n < pc.N && k < pc.K) ? x[n * pc.x_stride + k] : 0.0;
        }
        barrier();

        for (uint kk = 0; kk < BK; ++kk) {
            float a[TM];
            for (uint i = 0; i < TM; ++i) a[i] = Ws[kk * WS_STRIDE + tm + i * TX];
            for (uint j = 0; j < TN; ++j) {
                const float b = Xs[kk * XS_STRIDE + tn + j * (BN / TN)];
                for (uint i = 0; i < TM; ++i) acc[j * TM + i] += a[i] * b;
            }
        }
        barrier();
    }

    for (uint j = 0; j < TN; ++j) {
        const uint n = n0 + tn + j * (BN / TN);
        if (n >= pc.N) continue;
        for (uint i = 0; i < TM; ++i) {
            const uint m = m0 + tm + i * TX;
            if (m >= pc.M) continue;
            float v = acc[j * TM + i];
            if ((pc.flags & 1u) != 0) v += bias[m];
            const uint o = n * pc.y_stride + m;
            if ((pc.flags & 2u) != 0) v += y[o];
            y[o] = v;
        }
    }
}
