#version 450
// matmul_direct: the same product as matmul.comp,
//   Y[n, m] = dot(W[m, :], X[n, :]) (+ bias[m]) (+ Y[n, m]),
// without shared memory: each invocation owns TM consecutive weight rows x TN tokens and
// streams K in groups of 8, reusing every dequantized group for TN tokens and every
// activation group for TM rows. For CPU implementations (lavapipe), where barriers and
// shared-memory traffic cost more than the caches save; GPUs use the tiled matmul.comp.
#include "common.glsl"

layout(constant_id = 2) const uint BM = 64;  // rows per workgroup (= WG / (BN / TN) * TM)
layout(constant_id = 3) const uint BN = 16;  // tokens per workgroup
layout(constant_id = 4) const uint TM = 8;
layout(constant_id = 5) const uint TN = 4;

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
    uint x_stride;  // floats between rows of X
    uint y_stride;  // floats between rows of Y
    uint flags;     // 1: add bias, 2: accumulate into Y (residual)
} pc;

void load_x8(uint n, uint g, bool aligned, out vec4 lo, out vec4 hi) {
    const uint k0 = 8 * g;
    if (aligned) {
        const uint b = (n * pc.x_stride) / 4 + 2 * g;
        lo = x4[b];
        hi = x4[b + 1];
    } else {
        float v[8];
        for (uint i = 0; i < 8; ++i) v[i] = k0 + i < pc.K ? x[n * pc.x_stride + k0 + i] : 0.0;
        lo = vec4(v[0], v[1], v[2], v[3]);
        hi = vec4(v[4], v[5], v[6], v[7]);
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint TX = BM / TM;  // invocations along m
    const uint m0 = gl_WorkGroupID.x * BM + (tid % TX) * TM;
    const uint n0 = gl_WorkGroupID.y * BN + (tid / TX) * TN;
    const bool aligned = (pc.K % 8) == 0 && (pc.x_stride % 4) == 0;

    vec4 acc[TM * TN];
    for (uint i = 0; i < TM * TN; ++i) acc[i] = vec4(0.0);
    const uint groups = (pc.K + 7) / 8;
    for (uint g = 0; g < groups; ++g) {
        vec4 wl[TM], wh[TM];
        // Rows and tokens past the end re-read the last one; their results are dropped.
        for (uint i = 0; i < TM; ++i) dequant8(min(m0 + i, pc.M - 1), pc.K, g, wl[i], wh[i]);
        for (uint j = 0; j < TN; ++j) {
            vec4 a, b;
            load_x8(min(n0 + j, pc.N - 1), g, aligned, a, b);
            for (uint i = 0; i < TM; ++i) acc[j * TM + i] += wl[i] * a + wh[i] * b;
        }
    }

    for (uint j = 0; j < TN; ++j) {
        const uint n = n0 + j;
        if (n >= pc.N) continue;
        for (uint i = 0; i < TM; ++i) {
            const uint m = m0 + i;
            if (m >= pc.M) continue;
            const vec4 s = acc[j * TM + i];
            float v = (s.x + s.y) + (s.z + s.w);
            if ((pc.flags & 1u) != 0) v += bias[m];
            const uint o = n * pc.y_stride + m;
            if ((pc.flags & 2u) != 0) v += y[o];
            y[o] = v;
        }
    }
}
