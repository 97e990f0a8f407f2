// The CPU backend against the float64 reference logits of every tests/data/*.ref.json whose
// model is present, by whole-case prefill and by token-by-token decode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "model.h"
#include "ref_compare.h"
#include "session.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using testing::CompareStats;
using testing::kFp32Tolerances;
using testing::RefModel;

const fs::path kData = HEARTH_TEST_DATA;

struct Loaded : RefModel {
    std::unique_ptr<Backend> backend;
};

// Loads a ref file, its model and a CPU backend; null when the model is absent (or on a
// failure, which is reported).
std::unique_ptr<Loaded> load(const std::string& ref_name) {
    auto rm = testing::load_ref_model(kData, ref_name);
    EXPECT_TRUE(rm.ok()) << rm.error().message;
    if (!rm.ok() || rm->model == nullptr) return nullptr;
    auto backend = make_cpu_backend(rm->model, 0);
    EXPECT_TRUE(backend.ok()) << backend.error().message;
    if (!backend.ok()) return nullptr;
    return std::make_unique<Loaded>(Loaded{std::move(*rm), std::move(*backend)});
}

TEST(ReferenceLogits, EveryReferenceFileIsAccountedFor) {
    const auto refs = testing::ref_file_names(kData);
    ASSERT_FALSE(refs.empty()) << "no .ref.json files in " << kData;
    int skipped = 0;
    for (const auto& r : refs) {
        std::string err;
        auto ref = testing::load_ref_file((kData / r).string(), &err);
        ASSERT_TRUE(ref.has_value()) << err;
        ASSERT_FALSE(ref->cases.empty()) << r;
        if (!fs::exists(kData / ref->model)) {
            ++skipped;
            std::printf("skipped %s: %s is not in tests/data\n", r.c_str(), ref->model.c_str());
        }
    }
    std::printf("%zu reference files, %d skipped for a missing model\n", refs.size(), skipped);
    EXPECT_LT(skipped, static_cast<int>(refs.size()));
}

class ReferenceLogitsTest : public ::testing::TestWithParam<std::string> {};

// (a) Prefill of every whole case: logits of all positions from one eval.
TEST_P(ReferenceLogitsTest, Prefill) {
    auto l = load(GetParam());
    if (!l) GTEST_SKIP() << "model of " << GetParam() << " is not in tests/data";
    auto bs = l->backend->create_session(l->n_ctx);
    ASSERT_TRUE(bs.ok()) << bs.error().message;
    Session session(std::move(*bs));
    const size_t n_vocab = l->n_vocab;
    CompareStats stats;
    for (const auto& rc : l->ref.cases) {
        auto logits = session.eval_all_logits(rc.tokens);
        ASSERT_TRUE(logits.ok()) << logits.error().message;
        testing::compare_case(*logits, n_vocab, rc, kFp32Tolerances, rc.name, stats);
    }
    std::printf("%s prefill: %s\n", GetParam().c_str(), stats.summary().c_str());
    for (const auto& f : stats.failures) ADD_FAILURE() << f;
    EXPECT_EQ(stats.failure_count, 0u);
}

// (b) Token-by-token decode; batch invariance also makes it bit-equal to the prefill.
TEST_P(ReferenceLogitsTest, DecodeOneTokenAtATime) {
    auto l = load(GetParam());
    if (!l) GTEST_SKIP() << "model of " << GetParam() << " is not in tests/data";
    auto bs1 = l->backend->create_session(l->n_ctx);
    auto bs2 = l->backend->create_session(l->n_ctx);
    ASSERT_TRUE(bs1.ok() && bs2.ok());
    Session decode(std::move(*bs1));
    Session prefill(std::move(*bs2));
    const size_t n_vocab = l->n_vocab;
    CompareStats stats;
    for (const auto& rc : l->ref.cases) {
        auto all = prefill.eval_all_logits(rc.tokens);
        ASSERT_TRUE(all.ok()) << all.error().message;
        decode.clear();
        size_t bit_different = 0;
        for (size_t p = 0; p < rc.tokens.size(); ++p) {
            ASSERT_TRUE(decode.decode(rc.tokens[p]).ok());
            const auto logits = decode.logits();
            ASSERT_EQ(logits.size(), n_vocab);
            const std::string where = rc.name + " pos " + std::to_string(p);
            testing::compare_position(logits, rc.top20[p], kFp32Tolerances, where, stats);
            if (!std::equal(logits.begin(), logits.end(), all->begin() + p * n_vocab)) {
                ++bit_different;
            }
        }
        testing::compare_last_logits(decode.logits(), rc, kFp32Tolerances, rc.name, stats);
        EXPECT_EQ(bit_different, 0u) << rc.name << ": decode differs from prefill";
    }
    std::printf("%s decode: %s\n", GetParam().c_str(), stats.summary().c_str());
    for (const auto& f : stats.failures) ADD_FAILURE() << f;
    EXPECT_EQ(stats.failure_count, 0u);
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
    return testing::ref_test_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(Models, ReferenceLogitsTest,
                         ::testing::ValuesIn(testing::ref_file_names(kData)), param_name);

}  // namespace
}  // namespace hearth
