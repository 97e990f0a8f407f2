#version 450
// rope: the position-dependent part of attention's input for the n_tokens rows of a step,
// token t at position p = StepParams.pos + t, in one dispatch:
//   q rows      rotated in place (n_head heads),
//   k rows      rotated and stored as f16 into K cache row p (n_head_kv heads),
//   v rows      stored as f16 into V cache row p.
// A rotation turns pair (a, b) of a head by theta = p * inv_freq[i]:
//   a' = a cos - b sin,  b' = a sin + b cos,
// with pair i = (i, i + D/2) for NEOX (qwen2) and (2i, 2i + 1) for NORMAL (llama).
#include "common.glsl"

layout(binding = 0, std430) buffer QBuf { float q[]; };
layout(binding = 1, std430) readonly buffer KBuf { float k[]; };
layout(binding = 2, std430) readonly buffer VBuf { float v[]; };
layout(binding = 3, std430) readonly buffer Freq { float inv_freq[]; };  // [D/2]
layout(binding = 4, std430) readonly buffer Step { StepParams step; };
layout(binding = 5, std430) writeonly buffer KCache { float16_t kc[]; };
layout(binding = 6, std430) writeonly buffer VCache { float16_t vc[]; };

layout(push_constant) uniform Push {
    uint n_head;
    uint n_head_kv;
    uint head_dim;
    uint neox;       // 1: NEOX pairs, 0: NORMAL pairs
    uint q_stride;   // floats between token rows of q
    uint kv_stride;  // floats between token rows of k and v
    uint cache_stride;  // f16 elements between cache rows
} pc;

// Rotation of pair `pair` (over all heads of the row) at position p: the two element
// indices within the row and (cos, sin).
void rotation(uint pair, uint p, out uint ia, out uint ib, out vec2 cs) {
    const uint half_dim = pc.head_dim / 2;
    const uint h = pair / half_dim;
    const uint i = pair % half_dim;
    ia = h * pc.head_dim + (pc.neox != 0 ? i : 2 * i);
    ib = ia + (pc.neox != 0 ? half_dim : 1);
    float theta = float(p) * inv_freq[i];
    // Reduce to [-pi, pi]: the precision of sin and cos is only specified there.
    theta -= 6.28318530718 * round(theta * 0.159154943092);
    cs = vec2(cos(theta), sin(theta));
}

void main() {
    const uint t = gl_WorkGroupID.y;
    const uint p = step.pos + t;
    const uint q_pairs = pc.n_head * pc.head_dim / 2;
    const uint k_pairs = pc.n_head_kv * pc.head_dim / 2;
    const uint v_elems = pc.n_head_kv * pc.head_dim;
    uint i = gl_GlobalInvocationID.x;
    uint ia, ib;
    vec2 cs;
    if (i < q_pairs) {
        rotation(i, p, ia, ib, cs);
        const uint b = t * pc.q_stride;
        const float x0 = q[b + ia], x1 = q[b + ib];
        q[b + ia] = x0 * cs.x - x1 * cs.y;
        q[b + ib] = x0 * cs.y + x1 * cs.x;
        return;
    }
    i -= q_pairs;
    if (i < k_pairs) {
        rotation(i, p, ia, ib, cs);
        const uint b = t * pc.kv_stride;
        const float x0 = k[b + ia], x1 = k[b + ib];
        const uint c = p * pc.cache_stride;
        kc[c + ia] = float16_t(x0 * cs.x - x1 * cs.y);
        kc[c + ib] = float16_t(x0 * cs.y + x1 * cs.x);
        return;
    }
    i -= k_pairs;
    if (i < v_elems) vc[p * pc.cache_stride + i] = float16_t(v[t * pc.kv_stride + i]);
}
