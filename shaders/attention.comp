#version 450
// attention: causal multi-head attention with grouped KV heads over the f16 KV cache,
// flash style (online softmax over key tiles, nothing of size n_ctx materialised).
//
// For query token t (position pos + t) and head h, with kv head g = h / G:
//   O[t, h] = sum_j softmax_j(scale * Q[t, h] . K[j, g]) V[j, g],  j in [0, pos + t]
//
// A workgroup takes BR "rows" of one KV head g, row r = (token r / G, head g*G + r % G),
// so the G query heads sharing a KV head read each K/V tile once (decode: one block of G
// rows; prefill: blocks of BR rows over tokens x heads). Keys are visited in tiles of BC.
// With n_split > 1 the key range is divided among gl_WorkGroupID.z (split-K, so a decode
// step with few rows still fills the device) and each split writes its unnormalised
// output with its running max and sum to `part`; attention_combine merges the splits.
#include "common.glsl"

layout(constant_id = 2) const uint D = 128;  // head_dim
layout(constant_id = 3) const uint BR = 16;  // rows per workgroup
layout(constant_id = 4) const uint BC = 32;  // keys per tile

layout(binding = 0, std430) readonly buffer QBuf { float q[]; };
// The cache read as pairs of f16 (head_dim and the row stride are even), two keys'
// elements per 32-bit load.
layout(binding = 1, std430) readonly buffer KBuf { uint kc2[]; };
layout(binding = 2, std430) readonly buffer VBuf { uint vc2[]; };
layout(binding = 3, std430) writeonly buffer OBuf { float o_out[]; };
layout(binding = 4, std430) readonly buffer Step { StepParams step; };
layout(binding = 5, std430) writeonly buffer Part { float part[]; };

layout(push_constant) uniform Push {
    uint n_tokens;
    uint n_head;
    uint n_head_kv;
    uint q_stride;   // floats between token rows of Q
    uint o_stride;   // floats between token rows of O
    uint kv_stride;  // f16 elements between cache rows (n_head_kv * D)
    uint n_split;
    float scale;     // 1 / sqrt(D)
} pc;

const uint KV_STRIDE = D + 1;  // padded so reading one key per invocation is conflict-free
const uint OUT_PER_THREAD = (BR * D + WG - 1) / WG;

shared float Qs[BR * D];
shared float KVs[BC * KV_STRIDE];
shared float S[BR * BC];
shared float row_m[BR];
shared float row_l[BR];
shared float row_alpha[BR];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint G = pc.n_head / pc.n_head_kv;
    const uint g = gl_WorkGroupID.y;
    const uint split = gl_WorkGroupID.z;
    const uint rows_total = pc.n_tokens * G;
    const uint r0 = gl_WorkGroupID.x * BR;
    const uint pos = step.pos;
    const uint kv_len = pos + pc.n_tokens;

    // Keys this workgroup may need: up to the last row's causal limit, within the split.
    const uint last_row = min(r0 + BR, rows_total) - 1;
    const uint block_end = pos + last_row / G + 1;
    const uint per_split = (kv_len + pc.n_split - 1) / pc.n_split;
    const uint chunk = (per_split + BC - 1) / BC * BC;
    const uint kstart = split * chunk;
    const uint kend = min(kstart + chunk, block_end);
    // Splits past the keys (short contexts leave most of them idle) do nothing at all;
    // attention_combine reads only the splits below ceil(kv_len / chunk).
    if (kstart >= kv_len) return;

    for (uint idx = tid; idx < BR * D; idx += WG) {
        const uint r = r0 + idx / D;
        const uint d = idx % D;
        float v = 0.0;
        if (r < rows_total) {
            const uint t = r / G;
            const uint h = g * G + r % G;
            v = q[t * pc.q_stride + h * D + d] * pc.scale;
        }
        Qs[idx] = v;
    }
    for (uint r = tid; r < BR; r += WG) {
        row_m[r] = NEG_BIG;
        row_l[r] = 0.0;
    }
    float acc[OUT_PER_THREAD];
    for (uint i = 0; i < OUT_PER_THREAD; ++i) acc[i] = 0.0;
    barrier();

    for (uint k0 = kstart; k0 < kend; k0 += BC) {
        for (uint idx = tid; idx < BC * D / 2; idx += WG) {
            const uint j = idx / (D / 2);
            const uint d = 2 * (idx % (D / 2));
            const uint key = k0 + j;
            const vec2 v = key < kend ? unpackHalf2x16(kc2[(key * pc.kv_stride + g * D + d) / 2])
                                      : vec2(0.0);
            KVs[j * KV_STRIDE + d] = v.x;
            KVs[j * KV_STRIDE + d + 1] = v.y;
        }
        barrier();

        for (uint idx = tid; idx < BR * BC; idx += WG) {
            const uint r = idx / BC;
            const uint j = idx % BC;
            const uint key = k0 + j;
            const uint row = r0 + r;
            float s = NEG_BIG;
            if (row < rows_total && key < kend && key <= pos + row / G) {
                s = 0.0;
                for (uint d = 0; d < D; ++d) s += Qs[r * D + d] * KVs[j * KV_STRIDE + d];
            }
            S[idx] = s;
        }
        barrier();

        // Online softmax per row, while everyone loads the V tile over the K tile.
        for (uint r = tid; r < BR; r += WG) {
            const float m_old = row_m[r];
            float mx = m_old;
            for (uint j = 0; j < BC; ++j) mx = max(mx, S[r * BC + j]);
            float sum = 0.0;
            for (uint j = 0; j < BC; ++j) {
                const float s = S[r * BC + j];
                const float p = s > 0.5 * NEG_BIG ? exp(s - mx) : 0.0;
                S[r * BC + j] = p;
                sum += p;
            }
            const float alpha = exp(m_old - mx);
            row_alpha[r] = alpha;
            row_l[r] = row_l[r] * alpha + sum;
            row_m[r] = mx;
        }
        for (uint idx = tid; idx < BC * D / 2; idx += WG) {
            const uint j = idx / (D / 2);
            const uint d = 2 * (idx % (D / 2));
            const uint key = k0 + j;
            const vec2 v = key < kend ? unpackHalf2x16(vc2[(key * pc.kv_stride + g * D + d) / 2])
                                      : vec2(0.0);
            KVs[j * KV_STRIDE + d] = v.x;
            KVs[j * KV_STRIDE + d + 1] = v.y;
        }
        barrier();

        for (uint i = 0; i < OUT_PER_THREAD; ++i) {
            const uint idx = tid + i * WG;
            if (idx >= BR * D) break;
            const uint r = idx / D;
            const uint d = idx % D;
            float o = acc[i] * row_alpha[r];
            LOOP_HINT for (uint j = 0; j < BC; ++j) o += S[r * BC + j] * KVs[j * KV_STRIDE + d];
            acc[i] = o;
        }
        barrier();
    }

    for (uint i = 0; i < OUT_PER_THREAD; ++i) {
        const uint idx = tid + i * WG;
        if (idx >= BR * D) break;
        const uint r = idx / D;
        const uint d = idx % D;
        const uint row = r0 + r;
        if (row >= rows_total) continue;
        const uint t = row / G;
        const uint h = g * G + row % G;
        if (pc.n_split == 1) {
            const float l = row_l[r];
            o_out[t * pc.o_stride + h * D + d] = l > 0.0 ? acc[i] / l : 0.0;
        } else {
            const uint base = (split * pc.n_tokens * pc.n_head + t * pc.n_head + h) * (D + 2);
            part[base + d] = acc[i];
            if (d == 0) {
                part[base + D] = row_m[r];
                part[base + D + 1] = row_l[r];
            }
        }
    }
}
