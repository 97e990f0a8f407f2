// Block formats: traits, fp16/bf16 conversion, hand-built blocks with known values,
// quantization error bounds, the dot product, and byte-for-byte agreement with tensors
// that llama.cpp's llama-quantize wrote into the test models.
#include "quant.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "gguf.h"

namespace hearth {
namespace {

const std::string kData = HEARTH_TEST_DATA;

// ---- traits ------------------------------------------------------------------------

TEST(QuantTraits, BlockSizesFollowGgml) {
    struct Want {
        GGMLType type;
        int64_t elems;
        size_t bytes;
    };
    const Want want[] = {
        {GGMLType::F32, 1, 4},      {GGMLType::F16, 1, 2},      {GGMLType::BF16, 1, 2},
        {GGMLType::Q4_0, 32, 18},   {GGMLType::Q4_1, 32, 20},   {GGMLType::Q5_0, 32, 22},
        {GGMLType::Q5_1, 32, 24},   {GGMLType::Q8_0, 32, 34},   {GGMLType::Q8_1, 32, 36},
        {GGMLType::Q2_K, 256, 84},  {GGMLType::Q3_K, 256, 110}, {GGMLType::Q4_K, 256, 144},
        {GGMLType::Q5_K, 256, 176}, {GGMLType::Q6_K, 256, 210}, {GGMLType::Q8_K, 256, 292},
        {GGMLType::I8, 1, 1},       {GGMLType::I16, 1, 2},      {GGMLType::I32, 1, 4},
        {GGMLType::I64, 1, 8},      {GGMLType::F64, 1, 8},
    };
    for (const Want& w : want) {
        const TypeTraits* tt = type_traits(w.type);
        ASSERT_NE(tt, nullptr) << static_cast<int>(w.type);
        EXPECT_EQ(tt->block_elems, w.elems) << tt->name;
        EXPECT_EQ(tt->block_bytes, w.bytes) << tt->name;
        GGMLType back{};
        EXPECT_EQ(type_traits_by_name(tt->name, &back), tt);
        EXPECT_EQ(back, w.type);
    }
    EXPECT_EQ(type_traits(static_cast<GGMLType>(4)), nullptr);  // removed Q4_2
    EXPECT_EQ(type_traits(static_cast<GGMLType>(999)), nullptr);
}

TEST(QuantTraits, CapabilitiesCoverTheModelFormats) {
    for (GGMLType t : {GGMLType::F32, GGMLType::F16, GGMLType::BF16, GGMLType::Q8_0, GGMLType::Q4_0,
                       GGMLType::Q4_K, GGMLType::Q5_K, GGMLType::Q6_K}) {
        EXPECT_TRUE(type_traits(t)->can_dequantize) << type_traits(t)->name;
        EXPECT_TRUE(type_traits(t)->can_quantize) << type_traits(t)->name;
    }
    EXPECT_FALSE(type_traits(GGMLType::I32)->can_dequantize);
    EXPECT_FALSE(type_traits(GGMLType::Q8_K)->can_quantize);
}

TEST(QuantTraits, NamesAreCaseInsensitive) {
    GGMLType t{};
    ASSERT_NE(type_traits_by_name("Q4_K", &t), nullptr);
    EXPECT_EQ(t, GGMLType::Q4_K);
    ASSERT_NE(type_traits_by_name("q6_k", &t), nullptr);
    EXPECT_EQ(t, GGMLType::Q6_K);
    ASSERT_NE(type_traits_by_name("BF16", &t), nullptr);
    EXPECT_EQ(t, GGMLType::BF16);
    EXPECT_EQ(type_traits_by_name("q4_k_m"), nullptr);
    EXPECT_EQ(type_traits_by_name(""), nullptr);
}

TEST(QuantTraits, RowBytes) {
    EXPECT_EQ(row_bytes(GGMLType::Q4_K, 512).value(), 288u);
    EXPECT_EQ(row_bytes(GGMLType::Q8_0, 64).value(), 68u);
    EXPECT_EQ(row_bytes(GGMLType::F16, 3).value(), 6u);
    auto bad = row_bytes(GGMLType::Q6_K, 100);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("block size 256"), std::string::npos);
    EXPECT_FALSE(row_bytes(static_cast<GGMLType>(77), 32).ok());
    EXPECT_FALSE(row_bytes(GGMLType::F32, -4).ok());
}

// ---- fp16 / bf16 ---------------------------------------------------------------------

// Value of a half from its fields, computed in double independently of the library.
double half_value(uint16_t h) {
    const int sign = (h >> 15) != 0 ? -1 : 1;
    const int exp = (h >> 10) & 0x1f;
    const int mant = h & 0x3ff;
    if (exp == 0) return sign * std::ldexp(mant, -24);
    if (exp == 31) return mant == 0 ? sign * INFINITY : NAN;
    return sign * std::ldexp(1024 + mant, exp - 25);
}

TEST(Fp16, ExhaustiveDecodeAndRoundTrip) {
    for (uint32_t i = 0; i < 65536; ++i) {
        const uint16_t h = static_cast<uint16_t>(i);
        const float f = fp16_to_fp32(h);
        const double want = half_value(h);
        if (std::isnan(want)) {
            ASSERT_TRUE(std::isnan(f)) << i;
            // NaN keeps sign and payload and comes back quiet.
            ASSERT_EQ(fp32_to_fp16(f), h | 0x0200) << i;
            continue;
        }
        ASSERT_EQ(static_cast<double>(f), want) << i;
        ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << i;
        ASSERT_EQ(fp32_to_fp16(f), h) << i;
    }
}

// Nearest half to |f| by binary search over the ordered positive halves, ties to the
// even bit pattern; 0x7c00 (Inf) acts as the value 65536 for rounding, as IEEE specifies.
uint16_t reference_fp16(float f) {
    const double a = std::fabs(static_cast<double>(f));
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    auto value = [](uint32_t h) { return h == 0x7c00 ? 65536.0 : half_value(h); };
    if (a >= 65536.0) return sign | 0x7c00;
    uint32_t lo = 0, hi = 0x7c00;  // value(lo) <= a < value(hi)
    while (hi - lo > 1) {
        const uint32_t mid = (lo + hi) / 2;
        (value(mid) <= a ? lo : hi) = mid;
    }
    const double dlo = a - value(lo), dhi = value(hi) - a;
    const uint32_t pick = dlo < dhi ? lo : dhi < dlo ? hi : ((lo & 1) == 0 ? lo : hi);
    return static_cast<uint16_t>(sign | pick);
}

TEST(Fp16, EncodeRoundsToNearestEven) {
    // A stride through every fp32 bit pattern (prime step, so all exponents and mantissa
    // patterns are visited), against the independent search above.
    for (uint64_t bits = 0; bits < (1ull << 32); bits += 1021) {
        const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
        if (std::isnan(f)) continue;
        ASSERT_EQ(fp32_to_fp16(f), reference_fp16(f)) << std::hex << bits;
    }
    // Every midpoint between neighbouring halves, and just either side of it.
    for (uint32_t h = 0; h < 0x7bff; ++h) {
        const double mid = (half_value(h) + half_value(h + 1)) / 2;
        const float fm = static_cast<float>(mid);  // exact: halves have 11-bit mantissas
        ASSERT_EQ(static_cast<double>(fm), mid);
        ASSERT_EQ(fp32_to_fp16(fm), (h & 1) == 0 ? h : h + 1) << h;
        ASSERT_EQ(fp32_to_fp16(std::nextafter(fm, 0.0f)), h) << h;
        ASSERT_EQ(fp32_to_fp16(std::nextafter(fm, INFINITY)), h + 1) << h;
        ASSERT_EQ(fp32_to_fp16(-fm), ((h & 1) == 0 ? h : h + 1) | 0x8000) << h;
    }
    EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7bff);
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even zero
    EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
    EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()) & 0x7e00, 0x7e00);
}

TEST(Bf16, ExhaustiveRoundTripAndRounding) {
    for (uint32_t i = 0; i < 65536; ++i) {
        const uint16_t h = static_cast<uint16_t>(i);
        const float f = bf16_to_fp32(h);
        ASSERT_EQ(std::bit_cast<uint32_t>(f), i << 16);
        if (std::isnan(f)) {
            ASSERT_EQ(fp32_to_bf16(f), h | 0x40) << i;  // quieted
        } else {
            ASSERT_EQ(fp32_to_bf16(f), h) << i;
        }
    }
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
    EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    EXPECT_EQ(fp32_to_bf16(1.0f + 0x1p-7f + 0x1p-8f), 0x3f82);  // odd below: rounds up
    EXPECT_EQ(fp32_to_bf16(std::nextafter(1.0f + 0x1p-8f, 2.0f)), 0x3f81);
    // Subnormals are rounded, not flushed.
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00018000u)), 0x0002);
    EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);
}

// ---- hand-built blocks ----------------------------------------------------------------

std::vector<float> decode(GGMLType t, const std::vector<uint8_t>& block) {
    const TypeTraits* tt = type_traits(t);
    EXPECT_EQ(block.size(), tt->block_bytes);
    std::vector<float> out(static_cast<size_t>(tt->block_elems));
    dequantize_row(t, block.data(), out.data(), tt->block_elems);
    return out;
}

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
    std::memcpy(&b[at], &v, 2);
}

TEST(QuantBlocks, Q8_0) {
    std::vector<uint8_t> b(34, 0);
    put16(b, 0, 0x3800);  // 0.5
    b[2 + 0] = 0x80;      // -128
    b[2 + 5] = 7;
    b[2 + 31] = 0xff;  // -1
    auto y = decode(GGMLType::Q8_0, b);
    EXPECT_EQ(y[0], -64.0f);
    EXPECT_EQ(y[5], 3.5f);
    EXPECT_EQ(y[31], -0.5f);
    EXPECT_EQ(y[1], 0.0f);
}

TEST(QuantBlocks, Q4_0) {
    std::vector<uint8_t> b(18, 0x88);  // every nibble 8 -> 0
    put16(b, 0, 0x4000);               // 2.0
    b[2 + 0] = 0x0f;                   // element 0: 15, element 16: 0
    b[2 + 7] = 0x98;                   // element 7: 8, element 23: 9
    auto y = decode(GGMLType::Q4_0, b);
    EXPECT_EQ(y[0], 14.0f);
    EXPECT_EQ(y[16], -16.0f);
    EXPECT_EQ(y[7], 0.0f);
    EXPECT_EQ(y[23], 2.0f);
    EXPECT_EQ(y[31], 0.0f);
}

TEST(QuantBlocks, Q4_1) {
    std::vector<uint8_t> b(20, 0);
    put16(b, 0, 0x3c00);  // d = 1
    put16(b, 2, 0xbc00);  // m = -1
    b[4 + 1] = 0x5a;
    auto y = decode(GGMLType::Q4_1, b);
    EXPECT_EQ(y[1], 9.0f);
    EXPECT_EQ(y[17], 4.0f);
    EXPECT_EQ(y[0], -1.0f);
}

TEST(QuantBlocks, Q5_0) {
    std::vector<uint8_t> b(22, 0);
    put16(b, 0, 0x3c00);
    const uint32_t qh = (1u << 3) | (1u << 20);
    std::memcpy(&b[2], &qh, 4);
    b[6 + 3] = 0x21;  // element 3: 1 | 16, element 19: 2
    b[6 + 4] = 0x50;  // element 4: 0, element 20: 5 | 16
    auto y = decode(GGMLType::Q5_0, b);
    EXPECT_EQ(y[3], 1.0f);
    EXPECT_EQ(y[19], -14.0f);
    EXPECT_EQ(y[4], -16.0f);
    EXPECT_EQ(y[20], 5.0f);
}

TEST(QuantBlocks, Q5_1) {
    std::vector<uint8_t> b(24, 0);
    put16(b, 0, 0x3800);  // d = 0.5
    put16(b, 2, 0x4000);  // m = 2
    const uint32_t qh = 1u << 31;
    std::memcpy(&b[4], &qh, 4);
    b[8 + 15] = 0xf3;  // element 15: 3, element 31: 15 | 16
    auto y = decode(GGMLType::Q5_1, b);
    EXPECT_EQ(y[15], 3.5f);
    EXPECT_EQ(y[31], 17.5f);
    EXPECT_EQ(y[0], 2.0f);
}

TEST(QuantBlocks, Q8_1AndQ8_K) {
    std::vector<uint8_t> b(36, 0);
    put16(b, 0, 0x3400);  // 0.25
    b[4 + 9] = 0xf8;      // -8
    EXPECT_EQ(decode(GGMLType::Q8_1, b)[9], -2.0f);

    std::vector<uint8_t> k(292, 0);
    const float d = 0.125f;
    std::memcpy(&k[0], &d, 4);
    k[4 + 200] = 40;
    auto y = decode(GGMLType::Q8_K, k);
    EXPECT_EQ(y[200], 5.0f);
    EXPECT_EQ(y[199], 0.0f);
}

TEST(QuantBlocks, Q2_K) {
    std::vector<uint8_t> b(84, 0);
    put16(b, 80, 0x3c00);  // d = 1
    put16(b, 82, 0x3800);  // dmin = 0.5
    b[5] = 0x32;           // sub-block 5 (elements 80..95): scale 2, min 3
    // Element 83 = 128*0 + 32*2 + 19: bits 4..5 of qs[19].
    b[16 + 19] = 0x30;
    auto y = decode(GGMLType::Q2_K, b);
    EXPECT_EQ(y[83], 4.5f);   // 2*3 - 0.5*3
    EXPECT_EQ(y[80], -1.5f);  // 2*0 - 0.5*3
    EXPECT_EQ(y[0], 0.0f);
}

TEST(QuantBlocks, Q3_K) {
    std::vector<uint8_t> b(110, 0);
    put16(b, 108, 0x3c00);  // d = 1
    // Sub-block 9 scale 29 (signed -3): low nibble in the high half of scales[1], top two
    // bits at bits 4..5 of scales[9].
    b[96 + 1] = 0xd0;
    b[96 + 9] = 0x10;
    // Sub-block 9 = elements 144..159 = 128 + 16 + l: low bits at qs[32 + 16 + l] bits
    // 0..1, high bit = bit 4 of hmask[16 + l].
    b[32 + 48 + 2] = 0x02;
    b[16 + 2] = 0x10;       // element 146: q = 2 + 4 - 4
    b[32 + 48 + 5] = 0x01;  // element 149: q = 1 - 4
    auto y = decode(GGMLType::Q3_K, b);
    EXPECT_EQ(y[146], -6.0f);
    EXPECT_EQ(y[149], 9.0f);
    EXPECT_EQ(y[144], 12.0f);  // q = -4
    EXPECT_EQ(y[0], 128.0f);   // scale 0 -> -32, q = -4
}

// Q4_K / Q5_K share the scale table; sub-block 2 uses the plain 6-bit slots and
// sub-block 5 the split ones.
void fill_k_scales(std::vector<uint8_t>& b) {
    put16(b, 0, 0x3c00);  // d = 1
    put16(b, 2, 0x3400);  // dmin = 0.25
    b[4 + 2] = 3;         // sub-block 2 scale
    b[4 + 6] = 8;         // sub-block 2 min
    // Sub-block 5: scale 37 = 0b10'0101, min 20 = 0b01'0100.
    b[4 + 9] = 0x45;
    b[4 + 1] = 0x80;
    b[4 + 5] = 0x40;
}

TEST(QuantBlocks, Q4_K) {
    std::vector<uint8_t> b(144, 0);
    fill_k_scales(b);
    b[16 + 32 + 1] = 0x0f;  // element 65 (sub-block 2, low nibble): 15
    b[16 + 64 + 7] = 0xb0;  // element 167 (sub-block 5, high nibble): 11
    auto y = decode(GGMLType::Q4_K, b);
    EXPECT_EQ(y[65], 43.0f);    // 3*15 - 0.25*8
    EXPECT_EQ(y[167], 402.0f);  // 37*11 - 0.25*20
    EXPECT_EQ(y[160], -5.0f);   // 37*0 - 0.25*20
    EXPECT_EQ(y[7 + 128], 0.0f);
}

TEST(QuantBlocks, Q5_K) {
    std::vector<uint8_t> b(176, 0);
    fill_k_scales(b);
    b[48 + 64 + 7] = 0xb0;  // element 167: low four bits 11
    b[16 + 7] = 1u << 5;    // its fifth bit: bit 2*2+1 of qh[7]
    b[48 + 32 + 1] = 0x0f;  // element 65: 15, fifth bit clear
    auto y = decode(GGMLType::Q5_K, b);
    EXPECT_EQ(y[167], 994.0f);  // 37*27 - 5
    EXPECT_EQ(y[65], 43.0f);
}

TEST(QuantBlocks, Q6_K) {
    std::vector<uint8_t> b(210, 0);
    put16(b, 208, 0x3800);  // d = 0.5
    b[192 + 14] = 0xfd;     // scale of sub-block 14 = -3
    b[192 + 8] = 1;
    // Element 229 = 128 + 32*3 + 5: q = 50 = 0b11'0010. Low nibble in the high half of
    // ql[64 + 32 + 5], top bits at bits 6..7 of qh[32 + 5].
    b[64 + 32 + 5] = 0x20;
    b[128 + 32 + 5] = 0xc0;
    auto y = decode(GGMLType::Q6_K, b);
    EXPECT_EQ(y[229], -27.0f);  // 0.5 * -3 * (50 - 32)
    EXPECT_EQ(y[133], -16.0f);  // 0.5 * 1 * (0 - 32)
    EXPECT_EQ(y[0], 0.0f);      // scale 0
}

TEST(QuantBlocks, PlainTypes) {
    const float v[3] = {1.5f, -2.25f, 1e-3f};
    std::vector<uint8_t> h(6), bf(6);
    quantize_row(GGMLType::F16, v, h.data(), 3);
    quantize_row(GGMLType::BF16, v, bf.data(), 3);
    float out[3];
    dequantize_row(GGMLType::F16, h.data(), out, 3);
    EXPECT_EQ(out[0], 1.5f);
    EXPECT_EQ(out[1], -2.25f);
    EXPECT_NEAR(out[2], 1e-3f, 1e-6f);
    dequantize_row(GGMLType::BF16, bf.data(), out, 3);
    EXPECT_EQ(out[1], -2.25f);
    EXPECT_NEAR(out[2], 1e-3f, 1e-5f);
    quantize_row(GGMLType::F32, v, out, 3);
    EXPECT_EQ(std::memcmp(out, v, sizeof v), 0);
}

// ---- quantization error ---------------------------------------------------------------

std::vector<float> gaussian(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

std::vector<uint8_t> quantize(GGMLType t, const std::vector<float>& x) {
    std::vector<uint8_t> q(row_bytes(t, static_cast<int64_t>(x.size())).value());
    quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
    return q;
}

std::vector<float> dequantize(GGMLType t, const std::vector<uint8_t>& q, size_t n) {
    std::vector<float> y(n);
    dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(n));
    return y;
}

double relative_rmse(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        den += double(a[i]) * a[i];
    }
    return std::sqrt(num / den);
}

TEST(QuantError, GaussianRowsStayWithinBounds) {
    // Bounds sit about 1.3x above what each format achieves on unit gaussians, so a
    // broken search or packing fails loudly while the bound stays meaningful.
    struct Case {
        GGMLType type;
        double max_rel_rmse;
    };
    const Case cases[] = {
        {GGMLType::F16, 3e-4},   {GGMLType::BF16, 2.2e-3}, {GGMLType::Q8_0, 7e-3},
        {GGMLType::Q8_1, 7e-3},  {GGMLType::Q6_K, 0.023},  {GGMLType::Q5_K, 0.046},
        {GGMLType::Q5_0, 0.054}, {GGMLType::Q5_1, 0.048},  {GGMLType::Q4_K, 0.092},
        {GGMLType::Q4_0, 0.11},  {GGMLType::Q4_1, 0.1},    {GGMLType::Q3_K, 0.2},
        {GGMLType::Q2_K, 0.38},
    };
    const std::vector<float> x = gaussian(4096, 7);
    for (const Case& c : cases) {
        const auto y = dequantize(c.type, quantize(c.type, x), x.size());
        const double e = relative_rmse(x, y);
        EXPECT_LT(e, c.max_rel_rmse) << type_traits(c.type)->name;
        EXPECT_GT(e, 0.0) << type_traits(c.type)->name;
    }
    EXPECT_EQ(dequantize(GGMLType::F32, quantize(GGMLType::F32, x), x.size()), x);
}

TEST(QuantError, Q8_0ErrorIsHalfAStep) {
    const std::vector<float> x = gaussian(1024, 11);
    const auto q = quantize(GGMLType::Q8_0, x);
    const auto y = dequantize(GGMLType::Q8_0, q, x.size());
    for (size_t b = 0; b < x.size() / 32; ++b) {
        uint16_t dh = 0;
        std::memcpy(&dh, &q[34 * b], 2);
        const float d = fp16_to_fp32(dh);
        for (size_t j = 32 * b; j < 32 * b + 32; ++j) {
            // Half a step from rounding q, plus up to 127 * (d's own fp16 rounding).
            EXPECT_LE(std::fabs(x[j] - y[j]), 0.5f * d + 127.0f * d * 0x1p-11f) << j;
        }
    }
}

TEST(QuantError, ZeroAndConstantBlocks) {
    for (GGMLType t :
         {GGMLType::Q8_0, GGMLType::Q4_0, GGMLType::Q4_1, GGMLType::Q5_0, GGMLType::Q5_1,
          GGMLType::Q2_K, GGMLType::Q3_K, GGMLType::Q4_K, GGMLType::Q5_K, GGMLType::Q6_K}) {
        const std::vector<float> zeros(256, 0.0f);
        for (float v : dequantize(t, quantize(t, zeros), 256)) {
            EXPECT_EQ(v, 0.0f) << type_traits(t)->name;
        }
        const std::vector<float> ones(256, 0.75f);
        for (float v : dequantize(t, quantize(t, ones), 256)) {
            EXPECT_NEAR(v, 0.75f, 0.75f * 0.15f) << type_traits(t)->name;
        }
    }
}

// ---- dot product -------------------------------------------------------------------

TEST(QuantDot, MatchesDequantizeThenDot) {
    const GGMLType types[] = {GGMLType::F32,  GGMLType::F16,  GGMLType::BF16, GGMLType::Q8_0,
                              GGMLType::Q8_1, GGMLType::Q4_0, GGMLType::Q4_1, GGMLType::Q5_0,
                              GGMLType::Q5_1, GGMLType::Q2_K, GGMLType::Q3_K, GGMLType::Q4_K,
                              GGMLType::Q5_K, GGMLType::Q6_K};
    const size_t n = 1024;
    const std::vector<float> w = gaussian(n, 21);
    const std::vector<float> x = gaussian(n, 22);
    for (GGMLType t : types) {
        const auto q = quantize(t, w);
        const auto y = dequantize(t, q, n);
        double want = 0, mag = 0;
        for (size_t i = 0; i < n; ++i) {
            want += double(y[i]) * x[i];
            mag += std::fabs(double(y[i]) * x[i]);
        }
        const float got = dot_row(t, q.data(), x.data(), static_cast<int64_t>(n));
        EXPECT_NEAR(got, want, 1e-6 * mag) << type_traits(t)->name;
    }
}

TEST(QuantDot, PlainTypesHandleRowTails) {
    const size_t n = 300;  // not a multiple of the 256-element chunk
    const std::vector<float> w = gaussian(n, 5);
    const std::vector<float> x = gaussian(n, 6);
    for (GGMLType t : {GGMLType::F32, GGMLType::F16, GGMLType::BF16}) {
        const auto q = quantize(t, w);
        const auto y = dequantize(t, q, n);
        double want = 0, mag = 0;
        for (size_t i = 0; i < n; ++i) {
            want += double(y[i]) * x[i];
            mag += std::fabs(double(y[i]) * x[i]);
        }
        EXPECT_NEAR(dot_row(t, q.data(), x.data(), static_cast<int64_t>(n)), want, 1e-6 * mag)
            << type_traits(t)->name;
    }
    const auto q8 = quantize(GGMLType::Q8_0, std::vector<float>(w.begin(), w.begin() + 32));
    EXPECT_TRUE(std::isnan(dot_row(GGMLType::I32, q8.data(), x.data(), 8)));
}

// ---- bit-exactness against llama-quantize --------------------------------------------

struct Reencoded {
    size_t tensors = 0;
    size_t blocks = 0;
    size_t mismatched_blocks = 0;
    std::string first_mismatch;
};

// Quantizes every tensor of the F16 original with the quantized file's type for that
// tensor and compares the bytes block by block.
Reencoded reencode_against(const GGUFFile& original, const GGUFFile& quantized) {
    Reencoded out;
    for (const GGUFTensorInfo& t : quantized.tensors()) {
        const TypeTraits* tt = type_traits(t.type);
        if (tt == nullptr || !tt->can_quantize || t.type == GGMLType::F32) continue;
        const GGUFTensorInfo* src = original.tensor(t.name);
        EXPECT_NE(src, nullptr) << t.name;
        if (src == nullptr) continue;
        EXPECT_EQ(src->ne, t.ne) << t.name;
        const int64_t n = t.n_elements();
        std::vector<float> f(static_cast<size_t>(n));
        dequantize_row(src->type, src->data, f.data(), n);
        const size_t rb = row_bytes(t.type, t.ne[0]).value();
        std::vector<uint8_t> row(rb);
        for (int64_t r = 0; r < n / t.ne[0]; ++r) {
            quantize_row(t.type, f.data() + r * t.ne[0], row.data(), t.ne[0]);
            const uint8_t* want = t.data + static_cast<size_t>(r) * rb;
            for (size_t b = 0; b < rb / tt->block_bytes; ++b) {
                ++out.blocks;
                if (std::memcmp(row.data() + b * tt->block_bytes, want + b * tt->block_bytes,
                                tt->block_bytes) != 0) {
                    if (out.mismatched_blocks++ == 0) {
                        out.first_mismatch = std::string(t.name) + " row " + std::to_string(r) +
                                             " block " + std::to_string(b);
                    }
                }
            }
        }
        ++out.tensors;
    }
    return out;
}

class BitExact : public ::testing::TestWithParam<const char*> {};

TEST_P(BitExact, QuantizingTheF16OriginalReproducesTheFile) {
    const std::string path = kData + "/" + GetParam();
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not in tests/data";
    auto original = GGUFFile::open(kData + "/qwen2-test-f16.gguf");
    ASSERT_TRUE(original.ok()) << original.error().message;
    auto quantized = GGUFFile::open(path);
    ASSERT_TRUE(quantized.ok()) << quantized.error().message;
    const Reencoded r = reencode_against(**original, **quantized);
    EXPECT_GE(r.tensors, 14u);
    EXPECT_GT(r.blocks, 0u);
    EXPECT_EQ(r.mismatched_blocks, 0u) << "first: " << r.first_mismatch;
}

// q4_0 and q5_k_m run when their files are present in tests/data.
INSTANTIATE_TEST_SUITE_P(QwenTestModels, BitExact,
                         ::testing::Values("qwen2-test-q8_0.gguf", "qwen2-test-q4_k_m.gguf",
                                           "qwen2-test-q6_k.gguf", "qwen2-test-q4_0.gguf",
                                           "qwen2-test-q5_k_m.gguf"));

TEST(BitExact, KQuantFileMixesTheExpectedTypes) {
    auto q = GGUFFile::open(kData + "/qwen2-test-q4_k_m.gguf");
    ASSERT_TRUE(q.ok()) << q.error().message;
    bool has_q4k = false, has_q6k = false;
    for (const GGUFTensorInfo& t : (*q)->tensors()) {
        has_q4k |= t.type == GGMLType::Q4_K;
        has_q6k |= t.type == GGMLType::Q6_K;
    }
    EXPECT_TRUE(has_q4k);
    EXPECT_TRUE(has_q6k);
}

// The llama test models have no F16 original here; their two quantizations of the same
// weights must decode to nearly the same values.
TEST(BitExact, LlamaQuantizationsAgreeAfterDecoding) {
    auto q8 = GGUFFile::open(kData + "/llama-test-q8_0.gguf");
    auto q4 = GGUFFile::open(kData + "/llama-test-q4_k_m.gguf");
    ASSERT_TRUE(q8.ok()) << q8.error().message;
    ASSERT_TRUE(q4.ok()) << q4.error().message;
    size_t compared = 0;
    for (const GGUFTensorInfo& a : (*q8)->tensors()) {
        const GGUFTensorInfo* b = (*q4)->tensor(a.name);
        ASSERT_NE(b, nullptr) << a.name;
        if (a.type == GGMLType::F32) continue;
        const size_t n = static_cast<size_t>(a.n_elements());
        std::vector<float> ya(n), yb(n);
        dequantize_row(a.type, a.data, ya.data(), a.n_elements());
        dequantize_row(b->type, b->data, yb.data(), b->n_elements());
        EXPECT_LT(relative_rmse(ya, yb), 0.1) << a.name << " " << type_traits(b->type)->name;
        ++compared;
    }
    EXPECT_GE(compared, 14u);
}

}  // namespace
}  // namespace hearth
