// The compiled compute shaders, embedded in the binary as SPIR-V.
//
// shaders/CMakeLists.txt compiles every .comp (and its -D variants) with glslc at build
// time; embed_spirv.cmake turns the results into arrays found here by variant name, e.g.
// "matvec_q4_k" (matvec.comp with TYPE_Q4_K) or "rmsnorm_sg" (the subgroup variant).
// hearth_shader_features.h (generated) says which optional variants the build's glslc
// could produce.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "hearth_shader_features.h"

namespace hearth::shaders {

struct SpirvBlob {
    std::string_view name;
    const uint32_t* words = nullptr;
    size_t word_count = 0;
};

// Every embedded variant, in build order.
std::span<const SpirvBlob> all();

// The variant called `name`, or nullptr when the build has no such variant.
const SpirvBlob* find(std::string_view name);

}  // namespace hearth::shaders
