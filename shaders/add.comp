#version 450
// add: y[i] = a[i] + b[i].
#include "common.glsl"

layout(binding = 0, std430) readonly buffer A { float a[]; };
layout(binding = 1, std430) readonly buffer B { float b[]; };
layout(binding = 2, std430) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push { uint n; } pc;

void main() {
    const uint i = flat_group_id() * WG + gl_LocalInvocationID.x;
    if (i >= pc.n) return;
    y[i] = a[i] + b[i];
}
