#version 450
// kv_store: cache[pos + t, :] = f16(src[t, :]) for the n_tokens rows of a step: writes
// the new value rows into the f16 KV cache at their positions.
#include "common.glsl"

layout(binding = 0, std430) readonly buffer Src { float src[]; };
layout(binding = 1, std430) writeonly buffer Cache { float16_t cache[]; };
layout(binding = 2, std430) readonly buffer Step { StepParams step; };

layout(push_constant) uniform Push {
    uint row_elems;     // elements per row
    uint src_stride;    // floats between rows of src
    uint cache_stride;  // f16 elements between cache rows
} pc;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    const uint t = gl_WorkGroupID.y;
    if (i >= pc.row_elems) return;
    cache[(step.pos + t) * pc.cache_stride + i] = float16_t(src[t * pc.src_stride + i]);
}
