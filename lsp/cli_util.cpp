#include "cli_util.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hearth::cli {

Expected<std::vector<int32_t>> parse_ids(std::string_view text, int32_t n_vocab) {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '[' || c == ']') {
            ++i;
            continue;
        }
        int64_t v = 0;
        auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
        if (ec != std::errc() || end == text.data() + i) {
            return make_error("bad token id at '" + std::string(text.substr(i, 12)) + "'");
        }
        if (v < 0 || v >= n_vocab) {
            return make_error("token id " + std::to_string(v) + " is outside the vocabulary [0, " +
                              std::to_string(n_vocab) + ")");
        }
        ids.push_back(static_cast<int32_t>(v));
        i = static_cast<size_t>(end - text.data());
    }
    return ids;
}

std::string join_ids(const std::vector<int32_t>& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(ids[i]);
    }
    return s;
}

std::function<void(uint64_t, uint64_t)> upload_progress_printer() {
    struct State {
        int last_pct = -1;
        bool tty = isatty(STDERR_FILENO) != 0;
        std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    };
    auto st = std::make_shared<State>();
    return [st](uint64_t done, uint64_t total) {
        if (total < (64ull << 20)) return;
        const int pct = static_cast<int>(done * 100 / total);
        if (pct == st->last_pct) return;
        st->last_pct = pct;
        // Redrawing in place only makes sense on a terminal; logs get the final line.
        if (!st->tty && done < total) return;
        std::fprintf(stderr, "\rhearth: uploading weights %3d%% (%.2f of %.2f GiB)", pct,
                     static_cast<double>(done) / (1 << 30), static_cast<double>(total) / (1 << 30));
        if (done >= total) {
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - st->t0).count();
            std::fprintf(stderr, " in %.1f s\n", s);
        }
    };
}

Expected<std::string> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return make_error(path + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) return make_error(path + ": read error");
    return ss.str();
}

}  // namespace hearth::cli
