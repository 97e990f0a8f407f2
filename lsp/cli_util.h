// Small helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace hearth::cli {

// "1, 2,3 4" -> {1, 2, 3, 4}; each id must be in [0, n_vocab).
Expected<std::vector<int32_t>> parse_ids(std::string_view text, int32_t n_vocab);
std::string join_ids(const std::vector<int32_t>& ids);
// Weight-upload progress for the GPU backend: a percentage line on stderr, redrawn in
// place, for uploads of 64 MiB and more; a final line gives the time it took.
std::function<void(uint64_t, uint64_t)> upload_progress_printer();

// Whole file as bytes; an error names the path.
Expected<std::string> read_file(const std::string& path);

}  // namespace hearth::cli
