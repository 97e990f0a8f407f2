#version 450
// rmsnorm: y[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * w[:], one workgroup per row.
#include "common.glsl"
#include "reduce.glsl"

layout(binding = 0, std430) readonly buffer XBuf { float x[]; };
layout(binding = 1, std430) readonly buffer WBuf { float w[]; };
layout(binding = 2, std430) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Push {
    uint n;         // row length
    uint x_stride;  // floats between rows of x
    uint y_stride;  // floats between rows of y
    float eps;
} pc;

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row = gl_WorkGroupID.x;
    const uint xb = row * pc.x_stride;
    float ss = 0.0;
    for (uint i = tid; i < pc.n; i += WG) ss += x[xb + i] * x[xb + i];
    ss = wg_sum(ss);
    const float scale = inversesqrt(ss / float(pc.n) + pc.eps);
    const uint yb = row * pc.y_stride;
    for (uint i = tid; i < pc.n; i += WG) y[yb + i] = x[xb + i] * scale * w[i];
}
