// ggml block formats: traits, fp16/bf16 conversion, block decoders, the reference
// quantizers (byte-for-byte what ggml's quantize_row_*_ref produce) and the fp32 dot product
// used by the CPU reference engine.
//
// Bit-exactness with ggml depends on evaluating every float expression in the same order
// and without fused multiply-add: the project compiles in ISO C++ mode, where GCC does not
// contract a*b+c, and the expressions below keep ggml's association ((w*l)*l, not w*(l*l)).
#include "quant.h"

// Clang contracts a*b+c into FMA by default where the target has it; GCC does not in ISO
// mode. Either way the reference quantizers must round every operation separately.
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace hearth {

static_assert(std::endian::native == std::endian::little,
              "GGUF data is little-endian and is read in place");

// ---- traits ------------------------------------------------------------------------

namespace {

constexpr int kQK = 256;  // elements of a K-quant super-block

struct TraitsEntry {
    GGMLType type;
    TypeTraits traits;
};

// Block sizes as ggml defines them; the quantized types' byte counts are the sums of the
// fields listed beside each encoder below.
constexpr std::array<TraitsEntry, 20> kTraits = {{
    {GGMLType::F32, {"f32", 1, 4, true, true}},
    {GGMLType::F16, {"f16", 1, 2, true, true}},
    {GGMLType::Q4_0, {"q4_0", 32, 18, true, true}},
    {GGMLType::Q4_1, {"q4_1", 32, 20, true, true}},
    {GGMLType::Q5_0, {"q5_0", 32, 22, true, true}},
    {GGMLType::Q5_1, {"q5_1", 32, 24, true, true}},
    {GGMLType::Q8_0, {"q8_0", 32, 34, true, true}},
    {GGMLType::Q8_1, {"q8_1", 32, 36, true, true}},
    {GGMLType::Q2_K, {"q2_K", kQK, 84, true, true}},
    {GGMLType::Q3_K, {"q3_K", kQK, 110, true, true}},
    {GGMLType::Q4_K, {"q4_K", kQK, 144, true, true}},
    {GGMLType::Q5_K, {"q5_K", kQK, 176, true, true}},
    {GGMLType::Q6_K, {"q6_K", kQK, 210, true, true}},
    {GGMLType::Q8_K, {"q8_K", kQK, 292, true, false}},
    {GGMLType::I8, {"i8", 1, 1, false, false}},
    {GGMLType::I16, {"i16", 1, 2, false, false}},
    {GGMLType::I32, {"i32", 1, 4, false, false}},
    {GGMLType::I64, {"i64", 1, 8, false, false}},
    {GGMLType::F64, {"f64", 1, 8, false, false}},
    {GGMLType::BF16, {"bf16", 1, 2, true, true}},
}};

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

}  // namespace

const TypeTraits* type_traits(GGMLType type) {
    for (const TraitsEntry& e : kTraits) {
        if (e.type == type) return &e.traits;
    }
    return nullptr;
}

const TypeTraits* type_traits_by_name(std::string_view name, GGMLType* out_type) {
    for (const TraitsEntry& e : kTraits) {
        if (iequals(e.traits.name, name)) {
            if (out_type != nullptr) *out_type = e.type;
            return &e.traits;
        }
    }
    return nullptr;
}

Expected<size_t> row_bytes(GGMLType type, int64_t n) {
    const TypeTraits* tt = type_traits(type);
    if (tt == nullptr) {
        return make_error("unknown tensor type " + std::to_string(static_cast<uint32_t>(type)));
    }
    if (n < 0 || n % tt->block_elems != 0) {
        return make_error("row of " + std::to_string(n) + " elements is not a multiple of the " +
                          std::string(tt->name) + " block size " + std::to_string(tt->block_elems));
    }
    const uint64_t blocks = static_cast<uint64_t>(n / tt->block_elems);
    if (blocks > std::numeric_limits<size_t>::max() / tt->block_bytes) {
        return make_error("row of " + std::to_string(n) + " elements overflows size_t");
    }
    return static_cast<size_t>(blocks * tt->block_bytes);
}

// ---- fp16 / bf16 -------------------------------------------------------------------

float fp16_to_fp32(uint16_t h) {
    // Written with masks instead of branches so that row conversions vectorize. Normal
    // halves only need the exponent re-biased (+112); Inf/NaN need it moved to 255
    // (another +112); zero and subnormals are mant * 2^-24, which is exact in fp32.
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = h & 0x7c00u;
    const uint32_t rebias = (112u << 23) + static_cast<uint32_t>(exp == 0x7c00u) * (112u << 23);
    const uint32_t normal = (static_cast<uint32_t>(h & 0x7fffu) << 13) + rebias;
    const float subnormal = static_cast<float>(h & 0x3ffu) * 0x1p-24f;
    const uint32_t is_sub = 0u - static_cast<uint32_t>(exp == 0);
    const uint32_t mag = (std::bit_cast<uint32_t>(subnormal) & is_sub) | (normal & ~is_sub);
    return std::bit_cast<float>(sign | mag);
}

uint16_t fp32_to_fp16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) {
        // NaN: keep the top payload bits and force it quiet, as F16C hardware does.
        return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    }
    // 65520 = 65504 + half an ulp; the tie goes to the even neighbour, which is Inf.
    if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
    if (ax >= 0x38800000u) {
        // Normal half: re-bias the exponent, then round the 13 dropped mantissa bits to
        // nearest even. A carry out of the mantissa correctly bumps the exponent.
        const uint32_t rebased = ax - ((127u - 15u) << 23);
        const uint32_t rounded = rebased + 0xfffu + ((rebased >> 13) & 1u);
        return static_cast<uint16_t>(sign | (rounded >> 13));
    }
    // Subnormal half (or zero): the result counts units of 2^-24.
    if (ax <= 0x33000000u) return sign;  // at most 2^-25: rounds to (even) zero
    const uint32_t e = ax >> 23;
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  // 14..24
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u) != 0)) ++q;
    return static_cast<uint16_t>(sign | q);
}

float bf16_to_fp32(uint16_t h) {
    return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

uint16_t fp32_to_bf16(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) {
        return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN: truncate, force quiet
    }
    // Round to nearest even on the dropped 16 bits; subnormals are rounded, not flushed,
    // and the largest finite values correctly round up to Inf.
    return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// ---- shared helpers ----------------------------------------------------------------

namespace {

float load_f16(const uint8_t* p) {
    uint16_t h = 0;
    std::memcpy(&h, p, 2);
    return fp16_to_fp32(h);
}

void store_f16(uint8_t* p, float f) {
    const uint16_t h = fp32_to_fp16(f);
    std::memcpy(p, &h, 2);
}

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 moves v into the
// binade where the fp32 spacing is exactly 1, so the addition itself does the rounding
// and the integer sits in the low mantissa bits.
int nearest_int(float v) {
    const float shifted = v + 12582912.0f;
    const int32_t bits = std::bit_cast<int32_t>(shifted);
    return (bits & 0x007fffff) - 0x00400000;
}

// Truncating float -> int, as the reference quantizers' casts. A plain cast of NaN or of an
// out-of-range value is undefined behaviour, and quantize_row may see such input (a
// corrupt source tensor), so those map to 0 or to the nearest int limit instead.
int trunc_int(float v) {
    if (v > -2147483648.0f && v < 2147483648.0f) return static_cast<int>(v);
    return v > 0 ? std::numeric_limits<int>::max() : v < 0 ? std::numeric_limits<int>::min() : 0;
}

// Round half away from zero (roundf), with the same guard.
int round_int(float v) {
    return trunc_int(std::round(v));
}

// A K-quant sub-block's effective scale and min: x = d*q - m.
struct ScaleMin {
    float d;
    float m;
};

// Sub-block j of Q4_K / Q5_K, from the 12-byte packed table of 6-bit scales and mins:
//   j < 4 : scale = s[j] & 63,                    min = s[j+4] & 63
//   j >= 4: scale = (s[j+4] & 15) | (s[j-4] >> 6) << 4,
//           min   = (s[j+4] >> 4) | (s[j]   >> 6) << 4
// Returns d*scale and dmin*min.
ScaleMin k_scale_min(int j, const uint8_t* s, float d, float dmin) {
    int scale = 0;
    int min = 0;
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
    return {d * static_cast<float>(scale), dmin * static_cast<float>(min)};
}

void pack_scale_min(int j, uint8_t scale, uint8_t min, uint8_t* s) {
    if (j < 4) {
        s[j] = scale;
        s[j + 4] = min;
    } else {
        s[j + 4] = static_cast<uint8_t>((scale & 0xf) | ((min & 0xf) << 4));
        s[j - 4] |= static_cast<uint8_t>((scale >> 4) << 6);
        s[j] |= static_cast<uint8_t>((min >> 4) << 6);
    }
}

// Q2_K's sub-block scale and min, the low and high nibble of one byte. Returns d*scale and
// dmin*min.
ScaleMin q2_scale_min(uint8_t packed, float d, float dmin) {
    return {d * static_cast<float>(packed & 0xf), dmin * static_cast<float>(packed >> 4)};
}

// Q3_K's 16 six-bit scales in 12 bytes: the low nibble of scale j is in s[j] (j < 8) or the
// high nibble of s[j-8] (j >= 8); its top two bits are bits 2*(j/4)..+1 of s[8 + j%4].
// The scale is signed (stored value - 32); returns d times it.
float q3_scale(int j, const uint8_t* s, float d) {
    const int low = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return d * static_cast<float>((low | (high << 4)) - 32);
}

constexpr float kGroupMaxEps = 1e-15f;

// ---- reference fitting routines (the searches ggml's K-quantizers run) ------------

// Symmetric fit of n values to integers in [-nmax, nmax-1] with weights x^2, trying 19
// candidate scales around nmax/max and keeping the one with the best weighted
// least-squares score. Writes L = q + nmax (0 for an all-zero group); returns the scale.
float fit_symmetric(int n, int nmax, const float* x, int8_t* L) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        std::fill(L, L + n, int8_t{0});
        return 0.f;
    }
    auto quant = [&](float iscale, int i) {
        return std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    };
    float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = quant(iscale, i);
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
        sumlx = 0;
        suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = quant(iscale, i);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * static_cast<float>(l);
            suml2 += w * static_cast<float>(l) * static_cast<float>(l);
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(quant(iscale, i) + nmax);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Q3_K's symmetric fit: start from nmax/max, then up to five passes of coordinate descent
// that move single values to the level that best improves the x^2-weighted fit.
// Writes L = q + nmax (0 for an all-zero group); returns the scale.
float fit_symmetric_descent(int n, int nmax, const float* x, int8_t* L) {
    float max = 0;
    float amax = 0;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < kGroupMaxEps) {
        std::fill(L, L + n, int8_t{0});
        return 0.f;
    }
    const float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    for (int pass = 0; pass < 5; ++pass) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            const float li = static_cast<float>(L[i]);
            float slx = sumlx - w * x[i] * li;
            if (slx <= 0) continue;
            float sl2 = suml2 - w * li * li;
            int nl = nearest_int(x[i] * sl2 / slx);
            nl = std::max(-nmax, std::min(nmax - 1, nl));
            if (nl == L[i]) continue;
            const float fl = static_cast<float>(nl);
            slx += w * x[i] * fl;
            sl2 += w * fl * fl;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = static_cast<int8_t>(nl);
                sumlx = slx;
                suml2 = sl2;
                ++changed;
            }
        }
        if (changed == 0) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Asymmetric fit x ~ scale*L + min (min <= 0, L in [0, nmax]) for Q2_K / Q4_K / Q5_K:
// starting from the min/max grid, try nstep+1 grid spacings, solve the weighted
// least-squares scale and min for each one's integer assignment, and keep the assignment
// with the lowest weighted error (squared, or absolute when use_mad). Returns the scale
// and stores -min in *neg_min.
float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                    float* neg_min, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        std::fill(L, L + n, uint8_t{0});
        *neg_min = -min;
        return 0.f;
    }
    const float fnmax = static_cast<float>(nmax);
    auto error_of = [&](float scale, float mn, const uint8_t* q) {
        float err = 0;
        for (int i = 0; i < n; ++i) {
            float diff = scale * static_cast<float>(q[i]) + mn - x[i];
            diff = use_mad ? std::fabs(diff) : diff * diff;
            err += weights[i] * diff;
        }
        return err;
    };
    float iscale = fnmax / (max - min);
    float scale = 1 / iscale;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
    float best_error = error_of(scale, min, L);
    uint8_t Laux[32];
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * static_cast<float>(is) + fnmax) / (max - min);
        float sum_l = 0;
        float sum_l2 = 0;
        float sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = std::max(0, std::min(nmax, l));
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            const float fl = static_cast<float>(l);
            sum_l += w * fl;
            sum_l2 += w * fl * fl;
            sum_xl += w * fl * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            const float cur_error = error_of(this_scale, this_min, Laux);
            if (cur_error < best_error) {
                std::copy(Laux, Laux + n, L);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *neg_min = -min;
    return scale;
}

// ---- Q4_0 ---------------------------------------------------------------------------
// 18 bytes: f16 d | u8 qs[16]. Element j (0..15) is the low nibble of qs[j], element
// j+16 the high nibble. x = d * (q - 8).

void decode_q4_0(const uint8_t* b, float* y) {
    const float d = load_f16(b);
    const uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
        y[j] = static_cast<float>((qs[j] & 0xf) - 8) * d;
        y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
}

// d = -max/8 where max is the value of largest magnitude (so it maps to q = 0), then
// q = min(15, trunc(x/d + 8.5)).
void encode_q4_0(const float* x, uint8_t* b) {
    float amax = 0;
    float max = 0;
    for (int j = 0; j < 32; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(b, d);
    for (int j = 0; j < 16; ++j) {
        const int q0 = std::min(15, trunc_int(x[j] * id + 8.5f));
        const int q1 = std::min(15, trunc_int(x[j + 16] * id + 8.5f));
        b[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
}

// ---- Q4_1 ---------------------------------------------------------------------------
// 20 bytes: f16 d | f16 m | u8 qs[16] (nibbles as Q4_0). x = d * q + m.

void decode_q4_1(const uint8_t* b, float* y) {
    const float d = load_f16(b);
    const float m = load_f16(b + 2);
    const uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
        y[j] = static_cast<float>(qs[j] & 0xf) * d + m;
        y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
}

void encode_q4_1(const float* x, uint8_t* b) {
    float min = std::numeric_limits<float>::max();
    float max = -std::numeric_limits<float>::max();
    for (int j = 0; j < 32; ++j) {
        min = std::min(min, x[j]);
        max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(b, d);
    store_f16(b + 2, min);
    for (int j = 0; j < 16; ++j) {
        const int q0 = std::min(15, trunc_int((x[j] - min) * id + 0.5f));
        const int q1 = std::min(15, trunc_int((x[j + 16] - min) * id + 0.5f));
        b[4 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
}

// ---- Q5_0 ---------------------------------------------------------------------------
// 22 bytes: f16 d | u32 qh (little-endian) | u8 qs[16]. The low four bits are nibbles as
// in Q4_0; bit j of qh is the fifth bit of element j (0..31). x = d * (q - 16).

void decode_q5_0(const uint8_t* b, float* y) {
    const float d = load_f16(b);
    uint32_t qh = 0;
    std::memcpy(&qh, b + 2, 4);
    const uint8_t* qs = b + 6;
    for (int j = 0; j < 16; ++j) {
        const int q0 = (qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1u) << 4);
        const int q1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
        y[j] = static_cast<float>(q0 - 16) * d;
        y[j + 16] = static_cast<float>(q1 - 16) * d;
    }
}

void encode_q5_0(const float* x, uint8_t* b) {
    float amax = 0;
    float max = 0;
    for (int j = 0; j < 32; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(b, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const int q0 = std::min(31, trunc_int(x[j] * id + 16.5f));
        const int q1 = std::min(31, trunc_int(x[j + 16] * id + 16.5f));
        b[6 + j] = static_cast<uint8_t>((q0 & 0xf) | ((q1 & 0xf) << 4));
        qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
        qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(b + 2, &qh, 4);
}

// ---- Q5_1 ---------------------------------------------------------------------------
// 24 bytes: f16 d | f16 m | u32 qh | u8 qs[16] (bits as Q5_0). x = d * q + m.

void decode_q5_1(const uint8_t* b, float* y) {
    const float d = load_f16(b);
    const float m = load_f16(b + 2);
    uint32_t qh = 0;
    std::memcpy(&qh, b + 4, 4);
    const uint8_t* qs = b + 8;
    for (int j = 0; j < 16; ++j) {
        const int q0 = (qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1u) << 4);
        const int q1 = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
        y[j] = static_cast<float>(q0) * d + m;
        y[j + 16] = static_cast<float>(q1) * d + m;
    }
}

void encode_q5_1(const float* x, uint8_t* b) {
    float min = std::numeric_limits<float>::max();
    float max = -std::numeric_limits<float>::max();
    for (int j = 0; j < 32; ++j) {
        min = std::min(min, x[j]);
        max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(b, d);
    store_f16(b + 2, min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        // No clamp here: ggml's reference keeps only the low five bits of the result.
        const int q0 = static_cast<uint8_t>(trunc_int((x[j] - min) * id + 0.5f));
        const int q1 = static_cast<uint8_t>(trunc_int((x[j + 16] - min) * id + 0.5f));
        b[8 + j] = static_cast<uint8_t>((q0 & 0xf) | ((q1 & 0xf) << 4));
        qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
        qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + 16);
    }
    std::memcpy(b + 4, &qh, 4);
}

// ---- Q8_0 ---------------------------------------------------------------------------
// 34 bytes: f16 d | i8 qs[32]. x = d * q.

void decode_q8_0(const uint8_t* b, float* y) {
    const float d = load_f16(b);
    const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// d = amax/127, q = round-half-away(x/d).
void encode_q8_0(const float* x, uint8_t* b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(b, d);
    for (int j = 0; j < 32; ++j) {
        b[2 + j] = static_cast<uint8_t>(round_int(x[j] * id));
    }
}

// ---- Q8_1 ---------------------------------------------------------------------------
// 36 bytes: f16 d | f16 s (= d * sum of qs) | i8 qs[32]. x = d * q.

void decode_q8_1(const uint8_t* b, float* y) {
    const float d = load_f16(b);
    const int8_t* qs = reinterpret_cast<const int8_t*>(b + 4);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

void encode_q8_1(const float* x, uint8_t* b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(b, d);
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
        const int8_t q = static_cast<int8_t>(round_int(x[j] * id));
        b[4 + j] = static_cast<uint8_t>(q);
        sum += q;
    }
    store_f16(b + 2, static_cast<float>(sum) * d);
}

// ---- Q2_K ---------------------------------------------------------------------------
// 84 bytes: u8 scales[16] | u8 qs[64] | f16 d | f16 dmin.
// Sub-block s (elements 16s..16s+15): scale = scales[s] & 15, min = scales[s] >> 4.
// Element e = 128c + 32k + l (c in 0..1, k in 0..3, l in 0..31) is bits 2k..2k+1 of
// qs[32c + l]. x = d*scale*q - dmin*min.

void decode_q2_K(const uint8_t* b, float* y) {
    const uint8_t* scales = b;
    const uint8_t* qs = b + 16;
    const float d = load_f16(b + 80);
    const float dmin = load_f16(b + 82);
    for (int s = 0; s < 16; ++s) {
        const ScaleMin sm = q2_scale_min(scales[s], d, dmin);
        const int c = s / 8;
        const int shift = 2 * ((s % 8) / 2);
        const uint8_t* q = qs + 32 * c + 16 * (s % 2);
        for (int l = 0; l < 16; ++l) {
            y[16 * s + l] = sm.d * static_cast<float>((q[l] >> shift) & 3) - sm.m;
        }
    }
}

void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int c = 0; c < 2; ++c) {
        const uint8_t* Lc = L + 128 * c;
        for (int l = 0; l < 32; ++l) {
            qs[32 * c + l] = static_cast<uint8_t>(Lc[l] | (Lc[l + 32] << 2) | (Lc[l + 64] << 4) |
                                                  (Lc[l + 96] << 6));
        }
    }
}

void encode_q2_K(const float* x, uint8_t* b) {
    uint8_t L[kQK];
    float weights[16];
    float mins[16];
    float scales[16];
    float max_scale = 0;
    float max_min = 0;
    for (int s = 0; s < 16; ++s) {
        for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * s + l]);
        scales[s] =
            fit_scale_min(16, 3, x + 16 * s, weights, L + 16 * s, &mins[s], -0.5f, 0.1f, 15, true);
        max_scale = std::max(max_scale, scales[s]);
        max_min = std::max(max_min, mins[s]);
    }
    uint8_t* sc = b;
    const float q4scale = 15.f;
    if (max_scale > 0) {
        const float iscale = q4scale / max_scale;
        for (int s = 0; s < 16; ++s) sc[s] = static_cast<uint8_t>(nearest_int(iscale * scales[s]));
        store_f16(b + 80, max_scale / q4scale);
    } else {
        std::fill(sc, sc + 16, uint8_t{0});
        store_f16(b + 80, 0.f);
    }
    if (max_min > 0) {
        const float iscale = q4scale / max_min;
        for (int s = 0; s < 16; ++s) {
            sc[s] |= static_cast<uint8_t>(nearest_int(iscale * mins[s]) << 4);
        }
        store_f16(b + 82, max_min / q4scale);
    } else {
        store_f16(b + 82, 0.f);
    }
    const float d_all = load_f16(b + 80);
    const float dmin_all = load_f16(b + 82);
    for (int s = 0; s < 16; ++s) {
        const ScaleMin sm = q2_scale_min(sc[s], d_all, dmin_all);
        if (sm.d == 0) continue;  // keep the fit's levels, as ggml does
        for (int l = 0; l < 16; ++l) {
            const int q = nearest_int((x[16 * s + l] + sm.m) / sm.d);
            L[16 * s + l] = static_cast<uint8_t>(std::max(0, std::min(3, q)));
        }
    }
    pack_2bit(L, b + 16);
}

// ---- Q3_K ---------------------------------------------------------------------------
// 110 bytes: u8 hmask[32] | u8 qs[64] | u8 scales[12] | f16 d.
// Element e: low two bits as in Q2_K (qs), third bit = bit e/32 of hmask[e%32].
// q = low + 4*high - 4 (range -4..3). Scale of sub-block s (16 elements) as described at
// q3_scale, a signed value sc - 32. x = d * (sc - 32) * q.

void decode_q3_K(const uint8_t* b, float* y) {
    const uint8_t* hmask = b;
    const uint8_t* qs = b + 32;
    const uint8_t* scales = b + 96;
    const float d_all = load_f16(b + 108);
    for (int s = 0; s < 16; ++s) {
        const float dl = q3_scale(s, scales, d_all);
        const int c = s / 8;
        const int k = (s % 8) / 2;
        const int shift = 2 * k;
        const int l0 = 16 * (s % 2);
        const uint8_t hbit = static_cast<uint8_t>(1u << (4 * c + k));
        for (int l = 0; l < 16; ++l) {
            const int low = (qs[32 * c + l0 + l] >> shift) & 3;
            const int q = low - ((hmask[l0 + l] & hbit) != 0 ? 0 : 4);
            y[16 * s + l] = dl * static_cast<float>(q);
        }
    }
}

void encode_q3_K(const float* x, uint8_t* b) {
    int8_t L[kQK];
    float scales[16];
    float max_scale = 0;
    float amax = 0;
    for (int s = 0; s < 16; ++s) {
        scales[s] = fit_symmetric_descent(16, 4, x + 16 * s, L + 16 * s);
        const float a = std::fabs(scales[s]);
        if (a > amax) {
            amax = a;
            max_scale = scales[s];
        }
    }
    uint8_t* hmask = b;
    uint8_t* qs = b + 32;
    uint8_t* sc = b + 96;
    std::fill(sc, sc + 12, uint8_t{0});
    if (max_scale != 0) {
        const float iscale = -32.f / max_scale;
        for (int s = 0; s < 16; ++s) {
            const int8_t r = static_cast<int8_t>(nearest_int(iscale * scales[s]));
            const int l = std::max<int>(-32, std::min<int>(31, r)) + 32;
            if (s < 8) {
                sc[s] = static_cast<uint8_t>(l & 0xf);
            } else {
                sc[s - 8] |= static_cast<uint8_t>((l & 0xf) << 4);
            }
            sc[8 + s % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (s / 4)));
        }
        store_f16(b + 108, 1 / iscale);
    } else {
        store_f16(b + 108, 0.f);
    }
    const float d_all = load_f16(b + 108);
    for (int s = 0; s < 16; ++s) {
        const float d = q3_scale(s, sc, d_all);
        if (d == 0) continue;
        for (int l = 0; l < 16; ++l) {
            const int q = nearest_int(x[16 * s + l] / d);
            L[16 * s + l] = static_cast<int8_t>(std::max(-4, std::min(3, q)) + 4);
        }
    }
    std::fill(hmask, hmask + 32, uint8_t{0});
    uint8_t low[kQK];
    for (int e = 0; e < kQK; ++e) {
        int q = L[e];
        if (q > 3) {
            hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
            q -= 4;
        }
        low[e] = static_cast<uint8_t>(q);
    }
    pack_2bit(low, qs);
}

// ---- Q4_K ---------------------------------------------------------------------------
// 144 bytes: f16 d | f16 dmin | u8 scales[12] | u8 qs[128].
// Eight sub-blocks of 32 with 6-bit scale and min (packing at k_scale_min).
// Element e = 64c + l (c in 0..3, l in 0..31) is the low nibble of qs[32c + l]; element
// 64c + 32 + l the high nibble. So sub-block 2c uses low nibbles, 2c+1 high nibbles.
// x = d*scale*q - dmin*min.

void decode_q4_K(const uint8_t* b, float* y) {
    const float d = load_f16(b);
    const float dmin = load_f16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qs = b + 16;
    for (int c = 0; c < 4; ++c) {
        const ScaleMin lo = k_scale_min(2 * c, scales, d, dmin);
        const ScaleMin hi = k_scale_min(2 * c + 1, scales, d, dmin);
        const uint8_t* q = qs + 32 * c;
        float* yc = y + 64 * c;
        for (int l = 0; l < 32; ++l) yc[l] = lo.d * static_cast<float>(q[l] & 0xf) - lo.m;
        for (int l = 0; l < 32; ++l) yc[32 + l] = hi.d * static_cast<float>(q[l] >> 4) - hi.m;
    }
}

// Shared by Q4_K and Q5_K: fit every 32-element sub-block with weights av_x + |x|, quantize
// the eight scales and mins to 6 bits against the largest of each, then re-fit every value
// to the stored (rounded) scale and min. Writes d, dmin, scales and the levels L.
void encode_k_scales_mins(const float* x, int nmax, float rmin, float rdelta, int nstep, uint8_t* b,
                          uint8_t* L) {
    float weights[32];
    float mins[8];
    float scales[8];
    float max_scale = 0;
    float max_min = 0;
    for (int s = 0; s < 8; ++s) {
        const float* xs = x + 32 * s;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
        scales[s] =
            fit_scale_min(32, nmax, xs, weights, L + 32 * s, &mins[s], rmin, rdelta, nstep, false);
        max_scale = std::max(max_scale, scales[s]);
        max_min = std::max(max_min, mins[s]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t* packed = b + 4;
    for (int s = 0; s < 8; ++s) {
        // Wraps to u8 before the clamp, as the reference does.
        uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[s]));
        uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[s]));
        ls = std::min<uint8_t>(63, ls);
        lm = std::min<uint8_t>(63, lm);
        pack_scale_min(s, ls, lm, packed);
    }
    store_f16(b, max_scale / 63.f);
    store_f16(b + 2, max_min / 63.f);
    const float d_all = load_f16(b);
    const float dmin_all = load_f16(b + 2);
    for (int s = 0; s < 8; ++s) {
        const ScaleMin sm = k_scale_min(s, packed, d_all, dmin_all);
        if (sm.d == 0) continue;
        for (int l = 0; l < 32; ++l) {
            const int q = nearest_int((x[32 * s + l] + sm.m) / sm.d);
            L[32 * s + l] = static_cast<uint8_t>(std::max(0, std::min(nmax, q)));
        }
    }
}

void encode_q4_K(const float* x, uint8_t* b) {
    uint8_t L[kQK];
    encode_k_scales_mins(x, 15, -1.f, 0.1f, 20, b, L);
    uint8_t* qs = b + 16;
    for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l) {
            qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
        }
    }
}

// ---- Q5_K ---------------------------------------------------------------------------
// 176 bytes: f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128].
// Low four bits as Q4_K's nibbles; the fifth bit of element 64c + l is bit 2c of qh[l],
// of element 64c + 32 + l bit 2c+1 of qh[l]. x = d*scale*q - dmin*min.

void decode_q5_K(const uint8_t* b, float* y) {
    const float d = load_f16(b);
    const float dmin = load_f16(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + 48;
    for (int c = 0; c < 4; ++c) {
        const ScaleMin lo = k_scale_min(2 * c, scales, d, dmin);
        const ScaleMin hi = k_scale_min(2 * c + 1, scales, d, dmin);
        const uint8_t* q = qs + 32 * c;
        const uint8_t u1 = static_cast<uint8_t>(1u << (2 * c));
        const uint8_t u2 = static_cast<uint8_t>(2u << (2 * c));
        float* yc = y + 64 * c;
        for (int l = 0; l < 32; ++l) {
            const int v = (q[l] & 0xf) + ((qh[l] & u1) != 0 ? 16 : 0);
            yc[l] = lo.d * static_cast<float>(v) - lo.m;
        }
        for (int l = 0; l < 32; ++l) {
            const int v = (q[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0);
            yc[32 + l] = hi.d * static_cast<float>(v) - hi.m;
        }
    }
}

void encode_q5_K(const float* x, uint8_t* b) {
    uint8_t L[kQK];
    encode_k_scales_mins(x, 31, -0.5f, 0.1f, 15, b, L);
    uint8_t* qh = b + 16;
    uint8_t* qs = b + 48;
    std::fill(qh, qh + 32, uint8_t{0});
    for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l) {
            int l1 = L[64 * c + l];
            int l2 = L[64 * c + 32 + l];
            if (l1 > 15) {
                l1 -= 16;
                qh[l] |= static_cast<uint8_t>(1u << (2 * c));
            }
            if (l2 > 15) {
                l2 -= 16;
                qh[l] |= static_cast<uint8_t>(2u << (2 * c));
            }
            qs[32 * c + l] = static_cast<uint8_t>(l1 | (l2 << 4));
        }
    }
}

// ---- Q6_K ---------------------------------------------------------------------------
// 210 bytes: u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d.
// In half h (elements 128h..128h+127), for l in 0..31 and k in 0..3, element
// 128h + 32k + l has its low four bits in ql[64h + 32*(k%2) + l] (low nibble for k < 2,
// high nibble for k >= 2) and its top two bits at bits 2k..2k+1 of qh[32h + l].
// Sub-block s = e/16 has scale scales[s]. x = d * scale * (q - 32).

void decode_q6_K(const uint8_t* b, float* y) {
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = load_f16(b + 208);
    // Unpack the 6-bit levels first, then scale per sub-block: two simple loops that the
    // compiler vectorizes, with the same products (d*scale)*q as ggml's decoder.
    int8_t q[kQK];
    for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = b + 64 * h;
        const uint8_t* qh = b + 128 + 32 * h;
        int8_t* qo = q + 128 * h;
        for (int l = 0; l < 32; ++l) {
            qo[l] = static_cast<int8_t>(((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32);
            qo[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
            qo[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            qo[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
    for (int s = 0; s < 16; ++s) {
        const float ds = d * static_cast<float>(sc[s]);
        for (int l = 0; l < 16; ++l) y[16 * s + l] = ds * static_cast<float>(q[16 * s + l]);
    }
}

void encode_q6_K(const float* x, uint8_t* b) {
    int8_t L[kQK];
    float scales[16];
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int s = 0; s < 16; ++s) {
        scales[s] = fit_symmetric(16, 32, x + 16 * s, L + 16 * s);
        const float a = std::fabs(scales[s]);
        if (a > max_abs_scale) {
            max_abs_scale = a;
            max_scale = scales[s];
        }
    }
    if (max_abs_scale < kGroupMaxEps) {
        std::fill(b, b + 210, uint8_t{0});
        return;
    }
    int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
    const float iscale = -128.f / max_scale;
    store_f16(b + 208, 1 / iscale);
    for (int s = 0; s < 16; ++s) {
        sc[s] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[s])));
    }
    const float d_all = load_f16(b + 208);
    for (int s = 0; s < 16; ++s) {
        const float d = d_all * static_cast<float>(sc[s]);
        if (d == 0) continue;
        for (int l = 0; l < 16; ++l) {
            const int q = nearest_int(x[16 * s + l] / d);
            L[16 * s + l] = static_cast<int8_t>(std::max(-32, std::min(31, q)) + 32);
        }
    }
    for (int h = 0; h < 2; ++h) {
        uint8_t* ql = b + 64 * h;
        uint8_t* qh = b + 128 + 32 * h;
        const int8_t* Lh = L + 128 * h;
        for (int l = 0; l < 32; ++l) {
            const int q1 = Lh[l];
            const int q2 = Lh[l + 32];
            const int q3 = Lh[l + 64];
            const int q4 = Lh[l + 96];
            ql[l] = static_cast<uint8_t>((q1 & 0xf) | ((q3 & 0xf) << 4));
            ql[l + 32] = static_cast<uint8_t>((q2 & 0xf) | ((q4 & 0xf) << 4));
            qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) |
                                         ((q4 >> 4) << 6));
        }
    }
}

// ---- Q8_K ---------------------------------------------------------------------------
// 292 bytes: f32 d | i8 qs[256] | i16 bsums[16] (sums of 16-element groups, used only by
// ggml's dot kernels). x = d * q.

void decode_q8_K(const uint8_t* b, float* y) {
    float d = 0;
    std::memcpy(&d, b, 4);
    const int8_t* qs = reinterpret_cast<const int8_t*>(b + 4);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(qs[j]);
}

// ---- plain types --------------------------------------------------------------------

void decode_f16(const uint8_t* b, float* y) {
    y[0] = load_f16(b);
}
void decode_bf16(const uint8_t* b, float* y) {
    uint16_t h = 0;
    std::memcpy(&h, b, 2);
    y[0] = bf16_to_fp32(h);
}

// ---- dispatch -----------------------------------------------------------------------

using DecodeFn = void (*)(const uint8_t*, float*);
using EncodeFn = void (*)(const float*, uint8_t*);

struct Codec {
    DecodeFn decode = nullptr;
    EncodeFn encode = nullptr;
};

Codec codec_of(GGMLType type) {
    switch (type) {
        case GGMLType::Q4_0:
            return {decode_q4_0, encode_q4_0};
        case GGMLType::Q4_1:
            return {decode_q4_1, encode_q4_1};
        case GGMLType::Q5_0:
            return {decode_q5_0, encode_q5_0};
        case GGMLType::Q5_1:
            return {decode_q5_1, encode_q5_1};
        case GGMLType::Q8_0:
            return {decode_q8_0, encode_q8_0};
        case GGMLType::Q8_1:
            return {decode_q8_1, encode_q8_1};
        case GGMLType::Q2_K:
            return {decode_q2_K, encode_q2_K};
        case GGMLType::Q3_K:
            return {decode_q3_K, encode_q3_K};
        case GGMLType::Q4_K:
            return {decode_q4_K, encode_q4_K};
        case GGMLType::Q5_K:
            return {decode_q5_K, encode_q5_K};
        case GGMLType::Q6_K:
            return {decode_q6_K, encode_q6_K};
        case GGMLType::Q8_K:
            return {decode_q8_K, nullptr};
        default:
            return {};
    }
}

// fp32 dot of n (a multiple of 8) floats, in eight independent lanes so the compiler can
// keep them in one vector register without reassociating a single sum.
float dot_lanes(const float* a, const float* b, int n) {
    float acc[8] = {};
    for (int i = 0; i < n; i += 8) {
        for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

template <int QK, size_t Bytes, DecodeFn Decode>
float dot_blocks(const uint8_t* row, const float* x, int64_t n) {
    alignas(32) float buf[QK];
    float sum = 0;
    const int64_t nb = n / QK;
    for (int64_t i = 0; i < nb; ++i) {
        Decode(row + static_cast<size_t>(i) * Bytes, buf);
        sum += dot_lanes(buf, x + i * QK, QK);
    }
    return sum;
}

// 16-bit float types: widen a chunk at a time into the stack buffer, then dot.
template <float (*Widen)(uint16_t)>
float dot_half(const uint8_t* row, const float* x, int64_t n) {
    constexpr int kChunk = 256;
    uint16_t h[kChunk];
    alignas(32) float buf[kChunk];
    float sum = 0;
    int64_t i = 0;
    for (; i + kChunk <= n; i += kChunk) {
        std::memcpy(h, row + 2 * i, sizeof h);
        for (int k = 0; k < kChunk; ++k) buf[k] = Widen(h[k]);
        sum += dot_lanes(buf, x + i, kChunk);
    }
    for (; i < n; ++i) {
        uint16_t v = 0;
        std::memcpy(&v, row + 2 * i, 2);
        sum += Widen(v) * x[i];
    }
    return sum;
}

float dot_f32(const float* a, const float* x, int64_t n) {
    float sum = 0;
    int64_t i = 0;
    for (; i + 256 <= n; i += 256) sum += dot_lanes(a + i, x + i, 256);
    for (; i < n; ++i) sum += a[i] * x[i];
    return sum;
}

}  // namespace

void dequantize_row(GGMLType type, const void* src, float* dst, int64_t n) {
    const auto* s = static_cast<const uint8_t*>(src);
    switch (type) {
        case GGMLType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case GGMLType::F16:
            for (int64_t i = 0; i < n; ++i) decode_f16(s + 2 * i, dst + i);
            return;
        case GGMLType::BF16:
            for (int64_t i = 0; i < n; ++i) decode_bf16(s + 2 * i, dst + i);
            return;
        default:
            break;
    }
    const TypeTraits* tt = type_traits(type);
    const Codec codec = codec_of(type);
    if (tt == nullptr || codec.decode == nullptr) {
        // Precondition violated: make the mistake visible rather than leave garbage.
        std::fill(dst, dst + n, std::numeric_limits<float>::quiet_NaN());
        return;
    }
    const int64_t nb = n / tt->block_elems;
    for (int64_t i = 0; i < nb; ++i) {
        codec.decode(s + static_cast<size_t>(i) * tt->block_bytes, dst + i * tt->block_elems);
    }
}

void quantize_row(GGMLType type, const float* src, void* dst, int64_t n) {
    auto* d = static_cast<uint8_t*>(dst);
    switch (type) {
        case GGMLType::F32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case GGMLType::F16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = fp32_to_fp16(src[i]);
                std::memcpy(d + 2 * i, &h, 2);
            }
            return;
        case GGMLType::BF16:
            for (int64_t i = 0; i < n; ++i) {
                const uint16_t h = fp32_to_bf16(src[i]);
                std::memcpy(d + 2 * i, &h, 2);
            }
            return;
        default:
            break;
    }
    const TypeTraits* tt = type_traits(type);
    const Codec codec = codec_of(type);
    if (tt == nullptr) return;
    const int64_t nb = n / tt->block_elems;
    for (int64_t i = 0; i < nb; ++i) {
        uint8_t* block = d + static_cast<size_t>(i) * tt->block_bytes;
        if (codec.encode == nullptr) {
            std::fill(block, block + tt->block_bytes, uint8_t{0});  // precondition violated
        } else {
            codec.encode(src + i * tt->block_elems, block);
        }
    }
}

float dot_row(GGMLType type, const void* row, const float* x, int64_t n) {
    const auto* r = static_cast<const uint8_t*>(row);
    switch (type) {
        case GGMLType::F32:
            return dot_f32(static_cast<const float*>(row), x, n);
        case GGMLType::F16:
            return dot_half<fp16_to_fp32>(r, x, n);
        case GGMLType::BF16:
            return dot_half<bf16_to_fp32>(r, x, n);
        case GGMLType::Q4_0:
            return dot_blocks<32, 18, decode_q4_0>(r, x, n);
        case GGMLType::Q4_1:
            return dot_blocks<32, 20, decode_q4_1>(r, x, n);
        case GGMLType::Q5_0:
            return dot_blocks<32, 22, decode_q5_0>(r, x, n);
        case GGMLType::Q5_1:
            return dot_blocks<32, 24, decode_q5_1>(r, x, n);
        case GGMLType::Q8_0:
            return dot_blocks<32, 34, decode_q8_0>(r, x, n);
        case GGMLType::Q8_1:
            return dot_blocks<32, 36, decode_q8_1>(r, x, n);
        case GGMLType::Q2_K:
            return dot_blocks<kQK, 84, decode_q2_K>(r, x, n);
        case GGMLType::Q3_K:
            return dot_blocks<kQK, 110, decode_q3_K>(r, x, n);
        case GGMLType::Q4_K:
            return dot_blocks<kQK, 144, decode_q4_K>(r, x, n);
        case GGMLType::Q5_K:
            return dot_blocks<kQK, 176, decode_q5_K>(r, x, n);
        case GGMLType::Q6_K:
            return dot_blocks<kQK, 210, decode_q6_K>(r, x, n);
        case GGMLType::Q8_K:
            return dot_blocks<kQK, 292, decode_q8_K>(r, x, n);
        default:
            return std::numeric_limits<float>::quiet_NaN();
    }
}

}  // namespace hearth
