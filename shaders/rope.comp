#version 450
// rope: rotary position embedding of n_tokens rows of n_heads heads (head_dim D), token t
// at position StepParams.pos + t. Each invocation rotates one pair (a, b) by
// theta = pos * inv_freq[p]:  a' = a cos - b sin,  b' = a sin + b cos.
//   NEOX  (qwen2): pair p is (p, p + D/2)
//   NORMAL (llama): pair p is (2p, 2p + 1)
// In place on f32 rows, or (ROPE_TO_CACHE) written as f16 into the KV cache rows at the
// tokens' positions, which stores the rotated keys without a separate copy.
#include "common.glsl"

layout(binding = 0, std430) buffer XBuf { float x[]; };
layout(binding = 1, std430) readonly buffer Freq { float inv_freq[]; };  // [D/2]
layout(binding = 2, std430) readonly buffer Step { StepParams step; };
#ifdef ROPE_TO_CACHE
layout(binding = 3, std430) writeonly buffer Cache { float16_t cache[]; };
#endif

layout(push_constant) uniform Push {
    uint n_heads;
    uint head_dim;
    uint neox;      // 1: NEOX pairs, 0: NORMAL pairs
    uint x_stride;  // floats between token rows of x
    uint cache_stride;  // f16 elements between cache rows (ROPE_TO_CACHE)
} pc;

void main() {
    const uint half_dim = pc.head_dim / 2;
    const uint idx = gl_GlobalInvocationID.x;  // pair within the token row
    const uint t = gl_WorkGroupID.y;           // token
    if (idx >= pc.n_heads * half_dim) return;
    const uint h = idx / half_dim;
    const uint p = idx % half_dim;
    const uint ia = h * pc.head_dim + (pc.neox != 0 ? p : 2 * p);
    const uint ib = ia + (pc.neox != 0 ? half_dim : 1);

    const uint pos = step.pos + t;
    float theta = float(pos) * inv_freq[p];
    // Reduce to [-pi, pi]: the precision of sin/cos is only specified there.
    theta -= 6.28318530718 * round(theta * 0.159154943092);
    const float c = cos(theta);
    const float s = sin(theta);
    const uint xb = t * pc.x_stride;
    const float a = x[xb + ia];
    const float b = x[xb + ib];
    const float ra = a * c - b * s;
    const float rb = a * s + b * c;
#ifdef ROPE_TO_CACHE
    const uint cb = pos * pc.cache_stride;
    cache[cb + ia] = float16_t(ra);
    cache[cb + ib] = float16_t(rb);
#else
    x[xb + ia] = ra;
    x[xb + ib] = rb;
#endif
}
