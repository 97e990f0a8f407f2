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
#include "gguf.h"
#include "model.h"
#include "ref_compare.h"
#include "session.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using testing::CompareStats;
using testing::kFp32Tolerances;
using testing::RefFile;

const fs::path kData = HEARTH_TEST_DATA;

std::vector<std::string> ref_files() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(kData, ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() > 9 && name.ends_with(".ref.json")) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

struct Loaded {
    RefFile ref;
    std::shared_ptr<const Model> model;
    std::unique_ptr<Backend> backend;
};

// Loads a ref file and its model; nullopt (and a printed reason) when the model is absent.
std::unique_ptr<Loaded> load(const std::string& ref_name) {
    std::string err;
    auto ref = testing::load_ref_file((kData / ref_name).string(), &err);
    EXPECT_TRUE(ref.has_value()) << err;
    if (!ref) return nullptr;
    const fs::path gguf_path = kData / ref->model;
    if (!fs::exists(gguf_path)) return nullptr;
    auto gguf = GGUFFile::open(gguf_path.string());
    EXPECT_TRUE(gguf.ok()) << gguf.error().message;
    if (!gguf.ok()) return nullptr;
    auto model = Model::load(std::shared_ptr<const GGUFFile>(std::move(*gguf)));
    EXPECT_TRUE(model.ok()) << model.error().message;
    if (!model.ok()) return nullptr;
    auto l = std::make_unique<Loaded>();
    l->ref = std::move(*ref);
    l->model = std::shared_ptr<const Model>(std::move(*model));
    auto backend = make_cpu_backend(l->model, 0);
    EXPECT_TRUE(backend.ok()) << backend.error().message;
    if (!backend.ok()) return nullptr;
    l->backend = std::move(*backend);
    return l;
}

int32_t context_for(const RefFile& ref) {
    size_t n = 1;
    for (const auto& c : ref.cases) n = std::max(n, c.tokens.size());
    return static_cast<int32_t>(n);
}

TEST(ReferenceLogits, EveryReferenceFileIsAccountedFor) {
    const auto refs = ref_files();
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
    auto bs = l->backend->create_session(context_for(l->ref));
    ASSERT_TRUE(bs.ok()) << bs.error().message;
    Session session(std::move(*bs));
    const size_t n_vocab = static_cast<size_t>(l->model->hparams().n_vocab);
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
    const int32_t n_ctx = context_for(l->ref);
    auto bs1 = l->backend->create_session(n_ctx);
    auto bs2 = l->backend->create_session(n_ctx);
    ASSERT_TRUE(bs1.ok() && bs2.ok());
    Session decode(std::move(*bs1));
    Session prefill(std::move(*bs2));
    const size_t n_vocab = static_cast<size_t>(l->model->hparams().n_vocab);
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
    std::string s = info.param.substr(0, info.param.size() - 9);  // drop ".ref.json"
    for (char& c : s) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return s;
}

INSTANTIATE_TEST_SUITE_P(Models, ReferenceLogitsTest, ::testing::ValuesIn(ref_files()), param_name);

}  // namespace
}  // namespace hearth
