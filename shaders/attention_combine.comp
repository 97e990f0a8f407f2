#version 450
// attention_combine: merges the n_split partial results of attention.comp for every
// (token, head) row: with split maxima m_s, sums l_s and unnormalised outputs o_s,
//   M = max_s m_s,  O = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s.
#include "common.glsl"

layout(binding = 0, std430) readonly buffer Part { float part[]; };
layout(binding = 1, std430) writeonly buffer OBuf { float o_out[]; };
layout(binding = 2, std430) readonly buffer Step { StepParams step; };

layout(push_constant) uniform Push {
    uint n_tokens;
    uint n_head;
    uint head_dim;
    uint o_stride;
    uint n_split;
    uint tile;  // attention.comp's BC: split boundaries are multiples of it
} pc;

void main() {
    const uint row = flat_group_id();  // t * n_head + h
    if (row >= pc.n_tokens * pc.n_head) return;
    const uint t = row / pc.n_head;
    const uint h = row % pc.n_head;
    const uint D = pc.head_dim;
    const uint split_stride = pc.n_tokens * pc.n_head * (D + 2);
    const uint base = row * (D + 2);
    // The splits attention.comp ran: the same chunking of [0, kv_len) it computed.
    const uint kv_len = step.pos + pc.n_tokens;
    const uint per_split = (kv_len + pc.n_split - 1) / pc.n_split;
    const uint chunk = (per_split + pc.tile - 1) / pc.tile * pc.tile;
    const uint n_active = min(pc.n_split, (kv_len + chunk - 1) / chunk);

    float M = NEG_BIG;
    for (uint s = 0; s < n_active; ++s) M = max(M, part[s * split_stride + base + D]);
    float L = 0.0;
    for (uint s = 0; s < n_active; ++s) {
        const uint b = s * split_stride + base;
        L += exp(part[b + D] - M) * part[b + D + 1];
    }
    const float inv_l = L > 0.0 ? 1.0 / L : 0.0;
    for (uint d = gl_LocalInvocationID.x; d < D; d += WG) {
        float o = 0.0;
        for (uint s = 0; s < n_active; ++s) {
            const uint b = s * split_stride + base;
            o += exp(part[b + D] - M) * part[b + d];
        }
        o_out[t * pc.o_stride + h * D + d] = o * inv_l;
    }
}
