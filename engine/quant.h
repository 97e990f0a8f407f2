// Block formats of ggml, bit for bit as GGUF files store them.
//
// Layouts (QK = elements per block; all multi-byte fields little-endian):
//   F32   4 bytes/element.            F16  IEEE binary16.   BF16  upper half of an fp32.
//   Q8_0  QK=32,  34 bytes: f16 d; int8 qs[32].                       x = d*q
//   Q4_0  QK=32,  18 bytes: f16 d; u8 qs[16] (low nibbles = elements 0..15,
//                           high nibbles = 16..31).                     x = d*(q-8)
//   Q4_K  QK=256, 144 bytes: f16 d; f16 dmin; u8 scales[12] (8 six-bit scales and
//                           8 six-bit mins, packed); u8 qs[128]. 8 sub-blocks of 32:
//                           x = d*sc*q - dmin*m.
//   Q5_K  QK=256, 176 bytes: f16 d; f16 dmin; u8 scales[12]; u8 qh[32] (5th bits);
//                           u8 qs[128].                                 x = d*sc*q - dmin*m
//   Q6_K  QK=256, 210 bytes: u8 ql[128] (low 4 bits); u8 qh[64] (high 2 bits);
//                           int8 scales[16]; f16 d. 16 sub-blocks of 16: x = d*sc*(q-32)
// The precise bit placement is documented next to each routine in quant.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ggml_types.h"
#include "result.h"

namespace hearth {

struct TypeTraits {
    std::string_view name;   // "q8_0", "q4_K", ... (ggml's spelling)
    int64_t block_elems = 0; // elements per block (1 for plain types)
    size_t block_bytes = 0;  // bytes per block
    bool can_dequantize = false;
    bool can_quantize = false;
};

// Traits of a known type; nullptr for a type hearth does not know.
const TypeTraits* type_traits(GGMLType type);
// Traits by ggml's name ("f16", "q8_0", "q4_k" - case-insensitive); nullptr if unknown.
const TypeTraits* type_traits_by_name(std::string_view name, GGMLType* out_type = nullptr);

// Bytes of a row of n elements; error if n is not a multiple of the block size or the
// type is unknown.
Expected<size_t> row_bytes(GGMLType type, int64_t n);

// fp16 / bf16 <-> fp32, exact as ggml converts (round to nearest even; NaN preserved).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// Decode n elements (a multiple of the block size) of `type` at src into dst.
// Precondition: type_traits(type)->can_dequantize.
void dequantize_row(GGMLType type, const void* src, float* dst, int64_t n);

// Encode n floats into `type`, producing the same bytes as ggml's reference quantizer
// (quantize_row_*_ref). Precondition: type_traits(type)->can_quantize.
void quantize_row(GGMLType type, const float* src, void* dst, int64_t n);

// dot(row of `type`, x) over n elements, in fp32 (dequantizes block by block).
float dot_row(GGMLType type, const void* row, const float* x, int64_t n);

}  // namespace hearth
