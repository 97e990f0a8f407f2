#version 450
// matvec: y[r] = dot(W[r, :], x) (+ bias[r]) (+ y[r]) for r in [0, M): one weight matrix
// of the TYPE_* format times one f32 vector. The decode step is bound by reading W once,
// so each workgroup streams NUM_ROWS rows with all invocations walking consecutive
// 8-element groups (coalesced), and reduces with subgroup arithmetic where available.
#include "common.glsl"

layout(constant_id = 2) const uint NUM_ROWS = 2;

#define W_BINDING 0
#include "dequant.glsl"
layout(binding = 1, std430) readonly buffer XBuf { float x[]; };
layout(binding = 1, std430) readonly buffer XBuf4 { vec4 x4[]; };
layout(binding = 2, std430) buffer YBuf { float y[]; };
layout(binding = 3, std430) readonly buffer BiasBuf { float bias[]; };

layout(push_constant) uniform Push {
    uint M;      // rows of W
    uint K;      // columns of W = length of x
    uint flags;  // 1: add bias, 2: accumulate into y (residual)
} pc;

#ifdef USE_SUBGROUP
const uint MAX_SUBGROUPS = WG / SG_MIN + 1;
shared float partial[NUM_ROWS * MAX_SUBGROUPS];
#else
shared float partial[NUM_ROWS * WG];
#endif

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = flat_group_id() * NUM_ROWS;
    if (row0 >= pc.M) return;  // uniform over the workgroup

    float acc[NUM_ROWS];
    for (uint r = 0; r < NUM_ROWS; ++r) acc[r] = 0.0;

    const uint groups = (pc.K + 7) / 8;
    const bool full = (pc.K % 8) == 0;
    for (uint g = tid; g < groups; g += WG) {
        const uint k0 = 8 * g;
        vec4 x0, x1;
        if (full) {
            x0 = x4[2 * g];
            x1 = x4[2 * g + 1];
        } else if (k0 + 8 <= pc.K) {
            x0 = vec4(x[k0], x[k0 + 1], x[k0 + 2], x[k0 + 3]);
            x1 = vec4(x[k0 + 4], x[k0 + 5], x[k0 + 6], x[k0 + 7]);
        } else {
            float v[8];
            for (uint i = 0; i < 8; ++i) v[i] = k0 + i < pc.K ? x[k0 + i] : 0.0;
            x0 = vec4(v[0], v[1], v[2], v[3]);
            x1 = vec4(v[4], v[5], v[6], v[7]);
        }
        for (uint r = 0; r < NUM_ROWS; ++r) {
            // Past the last row, re-read the last row rather than branch; it is discarded.
            const uint row = min(row0 + r, pc.M - 1);
            vec4 lo, hi;
            dequant8(row, pc.K, g, lo, hi);
            acc[r] += dot(lo, x0) + dot(hi, x1);
        }
    }

#ifdef USE_SUBGROUP
    for (uint r = 0; r < NUM_ROWS; ++r) {
        const float s = subgroupAdd(acc[r]);
        if (subgroupElect()) partial[r * MAX_SUBGROUPS + gl_SubgroupID] = s;
    }
    barrier();
    if (tid < NUM_ROWS) {
        float s = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; ++i) s += partial[tid * MAX_SUBGROUPS + i];
        acc[0] = s;
    }
#else
    for (uint r = 0; r < NUM_ROWS; ++r) partial[r * WG + tid] = acc[r];
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) {
            for (uint r = 0; r < NUM_ROWS; ++r) partial[r * WG + tid] += partial[r * WG + tid + s];
        }
        barrier();
    }
    if (tid < NUM_ROWS) acc[0] = partial[tid * WG];
#endif

    const uint row = row0 + tid;
    if (tid < NUM_ROWS && row < pc.M) {
        float v = acc[0];
        if ((pc.flags & 1u) != 0) v += bias[row];
        if ((pc.flags & 2u) != 0) v += y[row];
        y[row] = v;
    }
}
