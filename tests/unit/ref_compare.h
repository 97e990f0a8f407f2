// Comparison of engine logits with the reference outputs in tests/data/<model>.ref.json.
//
// A .ref.json file (see tests/data/README.md) holds, for a model, cases of token ids with
//   top20[position]  the reference's 20 most likely next tokens as [id, logprob]
//   last_logits      the full logit vector after the last token
// computed in float64 over the GGUF's dequantized weights.
//
// Acceptance per position (the README's, random weights give near-ties):
//   - engine argmax == reference argmax, unless the reference top-2 margin is < 0.05 nats;
//   - every reference top-10 token is in the engine's top-20;
//   - |engine logprob - reference logprob| <= max_logprob_diff over the reference top-10;
// and for the last position, relative L2 error of the logits <= max_rel_l2.
//
// Header-only so every backend's test (CPU here, Vulkan with the fp16 tolerances) can use it.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "gguf.h"
#include "model.h"
#include "result.h"

namespace hearth::testing {

struct RefCase {
    std::string name;
    std::vector<int32_t> tokens;
    // top20[pos] = the reference's most likely next tokens after tokens[0..pos], best first.
    std::vector<std::vector<std::pair<int32_t, double>>> top20;
    std::vector<double> last_logits;
};

struct RefFile {
    std::string model;  // GGUF file name next to the .ref.json
    std::vector<RefCase> cases;
};

// Loads a .ref.json; nullopt with `error` set when the file is missing or malformed.
inline std::optional<RefFile> load_ref_file(const std::string& path, std::string* error) {
    std::ifstream in(path);
    if (!in) {
        if (error) *error = "cannot open " + path;
        return std::nullopt;
    }
    nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("cases")) {
        if (error) *error = path + ": not a reference file";
        return std::nullopt;
    }
    RefFile f;
    f.model = j.value("model", "");
    for (const auto& c : j["cases"]) {
        RefCase rc;
        rc.name = c.value("name", "");
        rc.tokens = c.at("tokens").get<std::vector<int32_t>>();
        for (const auto& pos : c.at("top20")) {
            std::vector<std::pair<int32_t, double>> row;
            for (const auto& e : pos)
                row.emplace_back(e.at(0).get<int32_t>(), e.at(1).get<double>());
            rc.top20.push_back(std::move(row));
        }
        rc.last_logits = c.at("last_logits").get<std::vector<double>>();
        if (rc.top20.size() != rc.tokens.size()) {
            if (error) *error = path + ": case '" + rc.name + "' has mismatched top20";
            return std::nullopt;
        }
        f.cases.push_back(std::move(rc));
    }
    return f;
}

// Sorted names of the .ref.json files in `dir`.
inline std::vector<std::string> ref_file_names(const std::filesystem::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() > 9 && name.ends_with(".ref.json")) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// A test name for a reference file: its name without ".ref.json", non-alphanumerics as '_'.
inline std::string ref_test_name(const std::string& ref_name) {
    std::string s = ref_name.substr(0, ref_name.size() - 9);
    for (char& c : s) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return s;
}

// The tokens of the file's longest case (the first one of that length); empty without cases.
inline const std::vector<int32_t>& longest_tokens(const RefFile& f) {
    static const std::vector<int32_t> kNone;
    const std::vector<int32_t>* best = &kNone;
    for (const auto& c : f.cases) {
        if (c.tokens.size() > best->size()) best = &c.tokens;
    }
    return *best;
}

// Loads a GGUF model.
inline Expected<std::shared_ptr<const Model>> load_model(const std::filesystem::path& path) {
    auto gguf = GGUFFile::open(path.string());
    if (!gguf.ok()) return gguf.error();
    auto model = Model::load(std::shared_ptr<const GGUFFile>(std::move(*gguf)));
    if (!model.ok()) return model.error();
    return std::shared_ptr<const Model>(std::move(*model));
}

// A reference file with the model it names.
struct RefModel {
    RefFile ref;
    std::shared_ptr<const Model> model;  // null when the model file is not in the folder
    int32_t n_ctx = 1;                   // context for the longest case
    size_t n_vocab = 0;
};

// Loads dir/ref_name and the model it names from the same folder. An error for a
// malformed reference file or model; a null model when the model file does not exist.
inline Expected<RefModel> load_ref_model(const std::filesystem::path& dir,
                                         const std::string& ref_name) {
    std::string err;
    auto ref = load_ref_file((dir / ref_name).string(), &err);
    if (!ref) return make_error(err);
    RefModel rm;
    rm.ref = std::move(*ref);
    rm.n_ctx = std::max(rm.n_ctx, static_cast<int32_t>(longest_tokens(rm.ref).size()));
    const std::filesystem::path model_path = dir / rm.ref.model;
    if (!std::filesystem::exists(model_path)) return rm;
    auto model = load_model(model_path);
    if (!model.ok()) return model.error();
    rm.model = std::move(*model);
    rm.n_vocab = static_cast<size_t>(rm.model->hparams().n_vocab);
    return rm;
}

struct Tolerances {
    double near_tie_margin = 0.05;  // nats: below this the argmax may differ
    size_t ref_top = 10;            // reference tokens checked...
    size_t engine_top = 20;         // ...for membership in the engine's top-N
    double max_logprob_diff = 0.02;
    double max_rel_l2 = 1e-3;
};
// fp32 activations (the CPU backend).
inline constexpr Tolerances kFp32Tolerances{};
// fp16 activations or activations quantized to 8 bits (GPU backends).
inline constexpr Tolerances kFp16Tolerances{0.05, 10, 20, 0.15, 2e-2};

// Accumulates the worst values seen and a list of failures (capped, so one bad model does
// not print thousands of lines).
struct CompareStats {
    size_t positions = 0;
    double worst_logprob_diff = 0.0;
    double worst_rel_l2 = 0.0;
    size_t near_ties = 0;  // positions where the argmax check was waived
    std::vector<std::string> failures;
    size_t failure_count = 0;

    void fail(std::string msg) {
        ++failure_count;
        if (failures.size() < 20) failures.push_back(std::move(msg));
    }
    std::string summary() const {
        std::ostringstream s;
        s << positions << " positions, worst |dlogprob| " << worst_logprob_diff << ", worst rel L2 "
          << worst_rel_l2 << ", near ties " << near_ties << ", failures " << failure_count;
        return s.str();
    }
};

// log-softmax in double.
inline std::vector<double> log_softmax(std::span<const float> logits) {
    double mx = -std::numeric_limits<double>::infinity();
    for (float v : logits) mx = std::max(mx, static_cast<double>(v));
    double sum = 0.0;
    for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
    const double lse = mx + std::log(sum);
    std::vector<double> out(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - lse;
    return out;
}

// Checks one position's engine logits against the reference top-20 of that position.
inline void compare_position(std::span<const float> logits,
                             const std::vector<std::pair<int32_t, double>>& ref,
                             const Tolerances& tol, const std::string& where, CompareStats& stats) {
    ++stats.positions;
    if (ref.size() < 2 || logits.empty()) {
        stats.fail(where + ": empty logits or reference");
        return;
    }
    const std::vector<double> lp = log_softmax(logits);
    std::vector<int32_t> order(lp.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    const size_t top_n = std::min(tol.engine_top, order.size());
    std::partial_sort(
        order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top_n), order.end(),
        [&](int32_t a, int32_t b) {
            return lp[static_cast<size_t>(a)] > lp[static_cast<size_t>(b)] ||
                   (lp[static_cast<size_t>(a)] == lp[static_cast<size_t>(b)] && a < b);
        });
    const std::vector<int32_t> engine_top(order.begin(),
                                          order.begin() + static_cast<std::ptrdiff_t>(top_n));

    if (ref[0].second - ref[1].second < tol.near_tie_margin) {
        ++stats.near_ties;
    } else if (engine_top[0] != ref[0].first) {
        stats.fail(where + ": argmax " + std::to_string(engine_top[0]) + ", reference " +
                   std::to_string(ref[0].first) + " (margin " +
                   std::to_string(ref[0].second - ref[1].second) + ")");
    }
    for (size_t k = 0; k < std::min(tol.ref_top, ref.size()); ++k) {
        const auto [id, ref_lp] = ref[k];
        if (id < 0 || static_cast<size_t>(id) >= lp.size()) {
            stats.fail(where + ": reference token " + std::to_string(id) + " out of range");
            continue;
        }
        if (std::find(engine_top.begin(), engine_top.end(), id) == engine_top.end()) {
            stats.fail(where + ": reference top-" + std::to_string(k + 1) + " token " +
                       std::to_string(id) + " not in the engine's top-" + std::to_string(top_n));
        }
        const double diff = std::abs(lp[static_cast<size_t>(id)] - ref_lp);
        stats.worst_logprob_diff = std::max(stats.worst_logprob_diff, diff);
        if (diff > tol.max_logprob_diff) {
            stats.fail(where + ": token " + std::to_string(id) + " logprob " +
                       std::to_string(lp[static_cast<size_t>(id)]) + ", reference " +
                       std::to_string(ref_lp));
        }
    }
}

// ||engine - ref|| / ||ref||.
inline double relative_l2(std::span<const float> engine, std::span<const double> ref) {
    if (engine.size() != ref.size()) return std::numeric_limits<double>::infinity();
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double d = static_cast<double>(engine[i]) - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline void compare_last_logits(std::span<const float> logits, const RefCase& rc,
                                const Tolerances& tol, const std::string& where,
                                CompareStats& stats) {
    const double e = relative_l2(logits, rc.last_logits);
    stats.worst_rel_l2 = std::max(stats.worst_rel_l2, e);
    if (!(e <= tol.max_rel_l2)) {
        stats.fail(where + ": last_logits relative L2 " + std::to_string(e) + " > " +
                   std::to_string(tol.max_rel_l2));
    }
}

// Compares a whole case: `all_logits` holds tokens.size() rows of n_vocab logits.
inline void compare_case(std::span<const float> all_logits, size_t n_vocab, const RefCase& rc,
                         const Tolerances& tol, const std::string& where, CompareStats& stats) {
    if (all_logits.size() != rc.tokens.size() * n_vocab) {
        stats.fail(where + ": expected " + std::to_string(rc.tokens.size()) +
                   " positions of logits");
        return;
    }
    for (size_t p = 0; p < rc.tokens.size(); ++p) {
        compare_position(all_logits.subspan(p * n_vocab, n_vocab), rc.top20[p], tol,
                         where + " pos " + std::to_string(p), stats);
    }
    compare_last_logits(all_logits.subspan(all_logits.size() - n_vocab), rc, tol, where, stats);
}

}  // namespace hearth::testing
