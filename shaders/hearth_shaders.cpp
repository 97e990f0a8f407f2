#include "hearth_shaders.h"

namespace hearth::shaders {

namespace detail {
extern const SpirvBlob kTable[];
extern const size_t kTableSize;
}  // namespace detail

std::span<const SpirvBlob> all() {
    return {detail::kTable, detail::kTableSize};
}

const SpirvBlob* find(std::string_view name) {
    for (const SpirvBlob& blob : all()) {
        if (blob.name == name) return &blob;
    }
    return nullptr;
}

}  // namespace hearth::shaders
