#version 450
// matmul_coopmat: the product of matmul.comp,
//   Y[n, m] = dot(W[m, :], X[n, :]) (+ bias[m]) (+ Y[n, m]),
// on tensor cores through GL_NV_cooperative_matrix (16x16x16, f16 inputs, f32 sums).
// Built only when glslc knows the extension, used only when the device reports it.
//
// A workgroup of 4 subgroups computes a 64 (weight rows) x 64 (tokens) tile, K in steps
// of 32: the weight tile is dequantized and the activation tile converted to f16 in
// shared memory, then each subgroup multiplies its 32 x 32 quarter as 2 x 2 fragments.
// Inputs are rounded to f16 (10-bit mantissa), sums stay f32.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "common.glsl"

const uint BM = 64;
const uint BN = 64;
const uint BK = 32;
const uint WS_STRIDE = BK + 8;  // f16 elements; rows stay 16-byte aligned
const uint XS_STRIDE = BK + 8;
const uint CS_STRIDE = BM + 4;  // f32, output tile stored token-major

#define W_BINDING 0
#include "dequant.glsl"
layout(binding = 1, std430) readonly buffer XBuf { float x[]; };
layout(binding = 1, std430) readonly buffer XBuf4 { vec4 x4[]; };
layout(binding = 2, std430) buffer YBuf { float y[]; };
layout(binding = 3, std430) readonly buffer BiasBuf { float bias[]; };

layout(push_constant) uniform Push {
    uint M;
    uint N;
    uint K;
    uint x_stride;
    uint y_stride;
    uint flags;  // 1: add bias, 2: accumulate into Y (residual)
} pc;

shared float16_t Ws[BM * WS_STRIDE];  // [m][k]
shared float16_t Xs[BN * XS_STRIDE];  // [n][k]
shared float Cs[BN * CS_STRIDE];      // [n][m]

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint m0 = gl_WorkGroupID.x * BM;
    const uint n0 = gl_WorkGroupID.y * BN;
    // Subgroup s owns rows 32 * (s % 2) and tokens 32 * (s / 2) of the tile.
    const uint sg = tid / 32;
    const uint wm = 32 * (sg % 2);
    const uint wn = 32 * (sg / 2);
    const bool x_aligned = (pc.K % 8) == 0 && (pc.x_stride % 4) == 0;

    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[2][2];
    for (uint i = 0; i < 2; ++i)
        for (uint j = 0; j < 2; ++j) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);

    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        for (uint idx = tid; idx < BM * (BK / 8); idx += WG) {
            const uint r = idx / (BK / 8);
            const uint q = idx % (BK / 8);
            const uint m = m0 + r;
            const uint k = k0 + 8 * q;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (m < pc.M && k < pc.K) dequant8(m, pc.K, k / 8, lo, hi);
            const uint s = r * WS_STRIDE + 8 * q;
            Ws[s] = float16_t(lo.x);
            Ws[s + 1] = float16_t(lo.y);
            Ws[s + 2] = float16_t(lo.z);
            Ws[s + 3] = float16_t(lo.w);
            Ws[s + 4] = float16_t(hi.x);
            Ws[s + 5] = float16_t(hi.y);
            Ws[s + 6] = float16_t(hi.z);
            Ws[s + 7] = float16_t(hi.w);
        }
        for (uint idx = tid; idx < BN * (BK / 4); idx += WG) {
            const uint c = idx / (BK / 4);
            const uint q = idx % (BK / 4);
            const uint n = n0 + c;
            const uint k = k0 + 4 * q;
            vec4 v = vec4(0.0);
            if (n < pc.N) {
                if (x_aligned && k < pc.K) {
                    v = x4[(n * pc.x_stride + k) / 4];
                } else {
                    for (uint e = 0; e < 4; ++e)
                        if (k + e < pc.K) v[e] = x[n * pc.x_stride + k + e];
                }
            }
            const uint s = c * XS_STRIDE + 4 * q;
            Xs[s] = float16_t(v.x);
            Xs[s + 1] = float16_t(v.y);
            Xs[s + 2] = float16_t(v.z);
            Xs[s + 3] = float16_t(v.w);
        }
        barrier();

        for (uint kk = 0; kk < BK; kk += 16) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[2];
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> b[2];
            for (uint i = 0; i < 2; ++i)
                coopMatLoadNV(a[i], Ws, (wm + 16 * i) * WS_STRIDE + kk, WS_STRIDE, false);
            // B = X^T: element (k, n) is Xs[n][k], i.e. column-major.
            for (uint j = 0; j < 2; ++j)
                coopMatLoadNV(b[j], Xs, (wn + 16 * j) * XS_STRIDE + kk, XS_STRIDE, true);
            for (uint i = 0; i < 2; ++i)
                for (uint j = 0; j < 2; ++j) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
        }
        barrier();
    }

    // C[m][n] stored column-major is Cs[n][m]: rows of one token are contiguous, so the
    // writes below are coalesced along m.
    for (uint i = 0; i < 2; ++i)
        for (uint j = 0; j < 2; ++j)
            coopMatStoreNV(acc[i][j], Cs, (wn + 16 * j) * CS_STRIDE + wm + 16 * i, CS_STRIDE, true);
    barrier();

    for (uint idx = tid; idx < BM * BN; idx += WG) {
        const uint r = idx % BM;
        const uint c = idx / BM;
        const uint m = m0 + r;
        const uint n = n0 + c;
        if (m >= pc.M || n >= pc.N) continue;
        float v = Cs[c * CS_STRIDE + r];
        if ((pc.flags & 1u) != 0) v += bias[m];
        const uint o = n * pc.y_stride + m;
        if ((pc.flags & 2u) != 0) v += y[o];
        y[o] = v;
    }
}
