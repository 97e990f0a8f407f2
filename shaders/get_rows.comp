#version 450
// get_rows: out[i, :] = dequant(W[ids[i] - row_begin, :]) for i in [0, n): the embedding
// lookup of a batch of token ids, dequantizing rows of the TYPE_* format to f32. W may be
// one row range [row_begin, row_begin + n_rows) of a larger matrix (a tensor bigger than
// one binding is looked up part by part); ids outside the range leave their row as is.
#include "common.glsl"

#define W_BINDING 0
#include "dequant.glsl"
layout(binding = 1, std430) readonly buffer Ids { int ids[]; };
layout(binding = 2, std430) writeonly buffer Out { float dst[]; };

layout(push_constant) uniform Push {
    uint K;          // row length
    uint n_rows;     // rows of this part of W
    uint row_begin;  // first row of the whole matrix held by this part
} pc;

void main() {
    const uint g = gl_GlobalInvocationID.x;  // group of 8 elements
    const uint i = gl_WorkGroupID.y;         // batch index
    const uint k0 = 8 * g;
    if (k0 >= pc.K) return;
    const int local = ids[i] - int(pc.row_begin);
    if (local < 0 || uint(local) >= pc.n_rows) return;
    vec4 lo, hi;
    dequant8(uint(local), pc.K, g, lo, hi);
    const float v[8] = float[8](lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
    const uint o = i * pc.K + k0;
    for (uint e = 0; e < 8 && k0 + e < pc.K; ++e) dst[o + e] = v[e];
}
