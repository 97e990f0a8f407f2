#version 450
// silu_mul: y[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i] (the SwiGLU gate).
#include "common.glsl"

layout(binding = 0, std430) readonly buffer G { float g[]; };
layout(binding = 1, std430) readonly buffer U { float u[]; };
layout(binding = 2, std430) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push { uint n; } pc;

void main() {
    const uint i = flat_group_id() * WG + gl_LocalInvocationID.x;
    if (i >= pc.n) return;
    const float v = g[i];
    y[i] = v / (1.0 + exp(-v)) * u[i];
}
