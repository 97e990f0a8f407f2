// Reading weight rows of one GGUF block format, chosen by a TYPE_* define.
//
// The includer defines W_BINDING (the binding of the weight tensor, bound from its first
// byte). The tensor is row-major: row r starts at byte r * row_bytes, where row_bytes is
// (K / QK) * block_bytes. Blocks are read in place, bit for bit as ggml stores them
// (engine/quant.h documents the layouts), through 16-bit or 32-bit views depending on the
// block's alignment: Q8_0 (34 B), Q4_0 (18 B) and Q6_K (210 B) blocks are only 2-byte
// aligned, Q4_K (144 B) and Q5_K (176 B) blocks are 4-byte aligned.
//
// The matrix may start w_offset bytes into the binding (a multiple of 16), which lets one
// binding span several matrices that a fused kernel reads (e.g. Wq, Wk, Wv of a layer).
//
// Provides:
//   QK                      elements per block (1 for plain float types)
//   dequant8(row, K, g, lo, hi)
//                           elements [8g, 8g + 8) of row `row` of a K-column matrix as two
//                           vec4. For the plain float types K may be any size and elements
//                           past K read as 0; block formats need K % QK == 0.

uint w_offset = 0;  // bytes from the start of the binding to row 0

// Bytes of a u32 word as four lanes: helpers for the packed nibble/bit arithmetic below.
vec4 bytes_as_vec4(uint w) {
    return vec4(float(w & 0xffu), float((w >> 8) & 0xffu), float((w >> 16) & 0xffu),
                float(w >> 24));
}

#if defined(TYPE_F32)
const uint QK = 1;
layout(binding = W_BINDING, std430) readonly buffer WeightF32 { float w_f32[]; };
layout(binding = W_BINDING, std430) readonly buffer WeightF32x4 { vec4 w_f32x4[]; };

void dequant8(uint row, uint K, uint g, out vec4 lo, out vec4 hi) {
    const uint k0 = 8 * g;
    const uint base = w_offset / 4 + row * K + k0;
    if ((K % 8) == 0) {
        lo = w_f32x4[base / 4];
        hi = w_f32x4[base / 4 + 1];
    } else if (k0 + 8 <= K) {
        lo = vec4(w_f32[base], w_f32[base + 1], w_f32[base + 2], w_f32[base + 3]);
        hi = vec4(w_f32[base + 4], w_f32[base + 5], w_f32[base + 6], w_f32[base + 7]);
    } else {
        float v[8];
        for (uint i = 0; i < 8; ++i) v[i] = k0 + i < K ? w_f32[base + i] : 0.0;
        lo = vec4(v[0], v[1], v[2], v[3]);
        hi = vec4(v[4], v[5], v[6], v[7]);
    }
}

#elif defined(TYPE_F16)
const uint QK = 1;
layout(binding = W_BINDING, std430) readonly buffer WeightF16 { float16_t w_f16[]; };

void dequant8(uint row, uint K, uint g, out vec4 lo, out vec4 hi) {
    const uint k0 = 8 * g;
    const uint base = w_offset / 2 + row * K + k0;
    if (k0 + 8 <= K) {
        lo = vec4(float(w_f16[base]), float(w_f16[base + 1]), float(w_f16[base + 2]),
                  float(w_f16[base + 3]));
        hi = vec4(float(w_f16[base + 4]), float(w_f16[base + 5]), float(w_f16[base + 6]),
                  float(w_f16[base + 7]));
    } else {
        float v[8];
        for (uint i = 0; i < 8; ++i) v[i] = k0 + i < K ? float(w_f16[base + i]) : 0.0;
        lo = vec4(v[0], v[1], v[2], v[3]);
        hi = vec4(v[4], v[5], v[6], v[7]);
    }
}

#elif defined(TYPE_BF16)
const uint QK = 1;
layout(binding = W_BINDING, std430) readonly buffer WeightBF16 { uint16_t w_bf16[]; };

float bf16_at(uint i) { return uintBitsToFloat(uint(w_bf16[i]) << 16); }

void dequant8(uint row, uint K, uint g, out vec4 lo, out vec4 hi) {
    const uint k0 = 8 * g;
    const uint base = w_offset / 2 + row * K + k0;
    float v[8];
    if (k0 + 8 <= K) {
        for (uint i = 0; i < 8; ++i) v[i] = bf16_at(base + i);
    } else {
        for (uint i = 0; i < 8; ++i) v[i] = k0 + i < K ? bf16_at(base + i) : 0.0;
    }
    lo = vec4(v[0], v[1], v[2], v[3]);
    hi = vec4(v[4], v[5], v[6], v[7]);
}

#elif defined(TYPE_Q8_0)
// 17 u16 per block: d, then 32 int8 quants.
const uint QK = 32;
layout(binding = W_BINDING, std430) readonly buffer WeightU16 { uint16_t w_u16[]; };
layout(binding = W_BINDING, std430) readonly buffer WeightH16 { float16_t w_h16[]; };

// Two int8 held in a u16 as a vec2.
vec2 i8x2(uint u) {
    return vec2(float(bitfieldExtract(int(u), 0, 8)), float(bitfieldExtract(int(u), 8, 8)));
}

void dequant8(uint row, uint K, uint g, out vec4 lo, out vec4 hi) {
    const uint block = row * (K / 32) + g / 4;
    const uint base = w_offset / 2 + block * 17;
    const uint q = base + 1 + 4 * (g % 4);
    const float d = float(w_h16[base]);
    lo = d * vec4(i8x2(uint(w_u16[q])), i8x2(uint(w_u16[q + 1])));
    hi = d * vec4(i8x2(uint(w_u16[q + 2])), i8x2(uint(w_u16[q + 3])));
}

#elif defined(TYPE_Q4_0)
// 9 u16 per block: d, then 16 bytes; elements 0..15 are the low nibbles, 16..31 the high.
const uint QK = 32;
layout(binding = W_BINDING, std430) readonly buffer WeightU16 { uint16_t w_u16[]; };
layout(binding = W_BINDING, std430) readonly buffer WeightH16 { float16_t w_h16[]; };

void dequant8(uint row, uint K, uint g, out vec4 lo, out vec4 hi) {
    const uint block = row * (K / 32) + g / 4;
    const uint base = w_offset / 2 + block * 9;
    const uint sub = g % 4;
    const uint q = base + 1 + 4 * (sub & 1);
    const uint shift = (sub >> 1) * 4;
    const float d = float(w_h16[base]);
    const uint w0 = uint(w_u16[q]) | (uint(w_u16[q + 1]) << 16);
    const uint w1 = uint(w_u16[q + 2]) | (uint(w_u16[q + 3]) << 16);
    lo = d * (bytes_as_vec4((w0 >> shift) & 0x0f0f0f0fu) - 8.0);
    hi = d * (bytes_as_vec4((w1 >> shift) & 0x0f0f0f0fu) - 8.0);
}

#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// Q4_K: 36 u32 per block: (d, dmin) as two halves, scales[12], qs[128].
// Q5_K: 44 u32 per block: (d, dmin), scales[12], qh[32], qs[128].
// 256 elements in 4 chunks of 64; in chunk c, elements 0..31 are the low nibbles of
// qs[32c .. 32c+31] with sub-block scale 2c, elements 32..63 the high nibbles with 2c+1.
// Q5_K's fifth bit of element l (0..31) of sub-block s is bit s of qh[l].
const uint QK = 256;
#if defined(TYPE_Q4_K)
const uint BLOCK_U32 = 36;
const uint QS_U32 = 4;
#else
const uint BLOCK_U32 = 44;
const uint QS_U32 = 12;
const uint QH_U32 = 4;
#endif
layout(binding = W_BINDING, std430) readonly buffer WeightU32 { uint w_u32[]; };

uint scale_byte(uint base, uint i) { return (w_u32[base + 1 + i / 4] >> (8 * (i % 4))) & 0xffu; }

// The 6-bit scale and min of sub-block s, packed as ggml's get_scale_min_k4.
void scale_min_k4(uint base, uint s, out float sc, out float m) {
    if (s < 4) {
        sc = float(scale_byte(base, s) & 63u);
        m = float(scale_byte(base, s + 4) & 63u);
    } else {
        const uint a = scale_byte(base, s + 4);
        sc = float((a & 0x0fu) | ((scale_byte(base, s - 4) >> 6) << 4));
        m = float((a >> 4) | ((scale_byte(base, s) >> 6) << 4));
    }
}

void dequant8(uint row, uint K, uint g, out vec4 lo, out vec4 hi) {
    const uint block = row * (K / 256) + g / 32;
    const uint base = w_offset / 4 + block * BLOCK_U32;
    const uint gi = g % 32;         // group of 8 within the block
    const uint c = gi / 8;          // chunk of 64
    const uint high = (gi / 4) & 1; // second half of the chunk: high nibbles
    const uint l0 = 8 * (gi % 4);   // first byte within the chunk's 32 quant bytes
    const uint s = 2 * c + high;    // sub-block of 32
    const vec2 dm = unpackHalf2x16(w_u32[base]);
    float sc, m;
    scale_min_k4(base, s, sc, m);
    const float d = dm.x * sc;
    const float mn = dm.y * m;
    const uint q = base + QS_U32 + 8 * c + l0 / 4;
    uint n0 = (w_u32[q] >> (4 * high)) & 0x0f0f0f0fu;
    uint n1 = (w_u32[q + 1] >> (4 * high)) & 0x0f0f0f0fu;
#if defined(TYPE_Q5_K)
    const uint h = base + QH_U32 + l0 / 4;
    n0 |= ((w_u32[h] >> s) & 0x01010101u) << 4;
    n1 |= ((w_u32[h + 1] >> s) & 0x01010101u) << 4;
#endif
    lo = d * bytes_as_vec4(n0) - mn;
    hi = d * bytes_as_vec4(n1) - mn;
}

#elif defined(TYPE_Q6_K)
// 105 u16 per block: ql[128] (bytes 0..127), qh[64] (128..191), int8 scales[16]
// (192..207), d (208). Element e: half h = e / 128, quarter t = (e % 128) / 32,
// l = e % 32; low 4 bits from ql[64h + 32(t & 1) + l] (high nibble when t >= 2), high 2
// bits from qh[32h + l] >> 2t, scale scales[8h + 2t + l / 16]; x = d * sc * (q - 32).
const uint QK = 256;
layout(binding = W_BINDING, std430) readonly buffer WeightU16 { uint16_t w_u16[]; };
layout(binding = W_BINDING, std430) readonly buffer WeightH16 { float16_t w_h16[]; };

uint u32_at_u16(uint i) { return uint(w_u16[i]) | (uint(w_u16[i + 1]) << 16); }

void dequant8(uint row, uint K, uint g, out vec4 lo, out vec4 hi) {
    const uint block = row * (K / 256) + g / 32;
    const uint base = w_offset / 2 + block * 105;
    const uint e = 8 * (g % 32);
    const uint h = e / 128;
    const uint t = (e % 128) / 32;
    const uint l = e % 32;
    const uint ql = base + (64 * h + 32 * (t & 1) + l) / 2;
    const uint qh = base + (128 + 32 * h + l) / 2;
    const uint sb = 192 + 8 * h + 2 * t + l / 16;
    const int sc = bitfieldExtract(int(uint(w_u16[base + sb / 2])), int(8 * (sb & 1)), 8);
    const float d = float(w_h16[base + 104]) * float(sc);
    const uint nshift = 4 * (t >> 1);
    const uint hshift = 2 * t;
    const uint q0 = ((u32_at_u16(ql) >> nshift) & 0x0f0f0f0fu) |
                    (((u32_at_u16(qh) >> hshift) & 0x03030303u) << 4);
    const uint q1 = ((u32_at_u16(ql + 2) >> nshift) & 0x0f0f0f0fu) |
                    (((u32_at_u16(qh + 2) >> hshift) & 0x03030303u) << 4);
    lo = d * (bytes_as_vec4(q0) - 32.0);
    hi = d * (bytes_as_vec4(q1) - 32.0);
}

#else
#error "dequant.glsl: define one of TYPE_F32 TYPE_F16 TYPE_BF16 TYPE_Q8_0 TYPE_Q4_0 TYPE_Q4_K TYPE_Q5_K TYPE_Q6_K"
#endif
