#version 450
// matvec: y_i[r] = dot(W_i[r, :], x) (+ bias_i[r]) (+ y_i[r]) for up to three weight
// matrices W_0..W_2 of the TYPE_* format sharing one input vector x (decode). The
// matrices live in one binding at byte offsets (a layer's Wq, Wk and Wv are adjacent in
// device memory), so one dispatch computes q, k and v. Each workgroup takes NUM_ROWS
// rows of one matrix; all invocations walk consecutive 8-element groups of those rows
// (coalesced), and reduce with subgroup arithmetic where available.
//
// SWIGLU variant: W_0 = Wgate and W_1 = Wup of the same shape, and
//   y_0[r] = silu(Wgate[r, :] . x) * (Wup[r, :] . x)
// the feed-forward gate in one pass over both matrices.
#include "common.glsl"

layout(constant_id = 2) const uint NUM_ROWS = 2;

#define W_BINDING 0
#include "dequant.glsl"
layout(binding = 1, std430) readonly buffer XBuf { float x[]; };
layout(binding = 1, std430) readonly buffer XBuf4 { vec4 x4[]; };
layout(binding = 2, std430) buffer Y0 { float y0[]; };
layout(binding = 3, std430) buffer Y1 { float y1[]; };
layout(binding = 4, std430) buffer Y2 { float y2[]; };
layout(binding = 5, std430) readonly buffer B0 { float bias0[]; };
layout(binding = 6, std430) readonly buffer B1 { float bias1[]; };
layout(binding = 7, std430) readonly buffer B2 { float bias2[]; };

layout(push_constant) uniform Push {
    uint K;          // columns of every W_i = length of x
    uint flags;      // matrix i: bit 2i adds bias_i, bit 2i+1 accumulates into y_i
    uint M[3];       // rows of W_i (0: absent)
    uint offset[3];  // byte offset of W_i in the weight binding
} pc;

#ifdef SWIGLU
const uint NACC = 2 * NUM_ROWS;  // gate rows, then up rows
#else
const uint NACC = NUM_ROWS;
#endif

#ifdef USE_SUBGROUP
const uint MAX_SUBGROUPS = WG / SG_MIN + 1;
shared float partial[NACC * MAX_SUBGROUPS];
#else
shared float partial[NACC * WG];
#endif

shared float row_sum[NACC];

// Sums each acc[r] over the workgroup into row_sum[r] (visible to all after return).
void reduce_rows(float acc[NACC]) {
    const uint tid = gl_LocalInvocationID.x;
#ifdef USE_SUBGROUP
    for (uint r = 0; r < NACC; ++r) {
        const float s = subgroupAdd(acc[r]);
        if (subgroupElect()) partial[r * MAX_SUBGROUPS + gl_SubgroupID] = s;
    }
    barrier();
    for (uint r = tid; r < NACC; r += WG) {
        float s = 0.0;
        for (uint i = 0; i < gl_NumSubgroups; ++i) s += partial[r * MAX_SUBGROUPS + i];
        row_sum[r] = s;
    }
#else
    for (uint r = 0; r < NACC; ++r) partial[r * WG + tid] = acc[r];
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) {
            for (uint r = 0; r < NACC; ++r) partial[r * WG + tid] += partial[r * WG + tid + s];
        }
        barrier();
    }
    for (uint r = tid; r < NACC; r += WG) row_sum[r] = partial[r * WG];
#endif
    barrier();
}

void load_x8(uint g, bool full, out vec4 x0, out vec4 x1) {
    if (full) {
        x0 = x4[2 * g];
        x1 = x4[2 * g + 1];
    } else {
        const uint k0 = 8 * g;
        float v[8];
        for (uint i = 0; i < 8; ++i) v[i] = k0 + i < pc.K ? x[k0 + i] : 0.0;
        x0 = vec4(v[0], v[1], v[2], v[3]);
        x1 = vec4(v[4], v[5], v[6], v[7]);
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint groups = (pc.K + 7) / 8;
    const bool full = (pc.K % 8) == 0;

    // Which matrix this workgroup serves: consecutive ranges of workgroups per matrix.
    uint mat = 0;
    uint block = flat_group_id();
    for (; mat < 3; ++mat) {
        const uint n = (pc.M[mat] + NUM_ROWS - 1) / NUM_ROWS;
        if (block < n) break;
        block -= n;
    }
    if (mat == 3) return;  // uniform over the workgroup
    const uint M = pc.M[mat];
    const uint row0 = block * NUM_ROWS;

    float acc[NACC];
    for (uint r = 0; r < NACC; ++r) acc[r] = 0.0;
    for (uint g = tid; g < groups; g += WG) {
        vec4 x0, x1;
        load_x8(g, full, x0, x1);
        for (uint r = 0; r < NUM_ROWS; ++r) {
            // Past the last row, re-read the last row rather than branch; it is discarded.
            const uint row = min(row0 + r, M - 1);
            vec4 lo, hi;
            w_offset = pc.offset[mat];
            dequant8(row, pc.K, g, lo, hi);
            acc[r] += dot(lo, x0) + dot(hi, x1);
#ifdef SWIGLU
            w_offset = pc.offset[1];
            dequant8(row, pc.K, g, lo, hi);
            acc[NUM_ROWS + r] += dot(lo, x0) + dot(hi, x1);
#endif
        }
    }

    reduce_rows(acc);
    for (uint r = tid; r < NUM_ROWS; r += WG) {
        const uint row = row0 + r;
        if (row >= M) break;
#ifdef SWIGLU
        const float gate = row_sum[r];
        y0[row] = gate / (1.0 + exp(-gate)) * row_sum[NUM_ROWS + r];
#else
        const uint bias_bit = 1u << (2 * mat), acc_bit = 2u << (2 * mat);
        float v = row_sum[r];
        if (mat == 0) {
            if ((pc.flags & bias_bit) != 0) v += bias0[row];
            if ((pc.flags & acc_bit) != 0) v += y0[row];
            y0[row] = v;
        } else if (mat == 1) {
            if ((pc.flags & bias_bit) != 0) v += bias1[row];
            if ((pc.flags & acc_bit) != 0) v += y1[row];
            y1[row] = v;
        } else {
            if ((pc.flags & bias_bit) != 0) v += bias2[row];
            if ((pc.flags & acc_bit) != 0) v += y2[row];
            y2[row] = v;
        }
#endif
    }
}
