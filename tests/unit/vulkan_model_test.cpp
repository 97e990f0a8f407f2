// The Vulkan backend against the float64 reference logits of every tests/data model
// (fp16 tolerances: the KV cache is f16), by whole-case prefill and by token-by-token
// decode; snapshot/restore against uninterrupted decoding; and against the CPU backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "model.h"
#include "quant.h"
#include "ref_compare.h"
#include "vulkan/vulkan_backend.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;
using testing::CompareStats;
using testing::kFp16Tolerances;
using testing::load_model;
using testing::RefModel;

const fs::path kData = HEARTH_TEST_DATA;

// Is there a usable Vulkan device at all? (Printed once: which one the tests use.)
const std::string& vulkan_unavailable() {
    static const std::string reason = [] {
        auto list = list_vulkan_devices();
        if (!list) return list.error().message;
        bool any = false;
        for (const auto& d : *list) any = any || d.usable;
        if (!any) return std::string("no usable Vulkan device");
        std::printf("[vulkan] devices:\n%s", describe_vulkan_devices().c_str());
        return std::string();
    }();
    return reason;
}

// Reference files whose model is in tests/data (a few references come without their
// model to keep the repository small).
std::vector<std::string> ref_files() {
    std::vector<std::string> out;
    for (const std::string& name : testing::ref_file_names(kData)) {
        const std::string model = name.substr(0, name.size() - 9) + ".gguf";
        if (fs::exists(kData / model)) out.push_back(name);
    }
    return out;
}

// Backends on one device share its compiled pipelines while any of them is alive. The
// first backend of the run is kept until the tests end, so later tests reuse what earlier
// ones compiled (on lavapipe compiling costs more than running).
std::shared_ptr<Backend>& first_backend() {
    static std::shared_ptr<Backend> first;
    return first;
}

class ReleaseFirstBackend : public ::testing::Environment {
  public:
    void TearDown() override { first_backend().reset(); }
};
[[maybe_unused]] ::testing::Environment* const release_first_backend =
    ::testing::AddGlobalTestEnvironment(new ReleaseFirstBackend);

std::shared_ptr<Backend> vulkan_backend(std::shared_ptr<const Model> model,
                                        VulkanOptions opts = {}) {
    uint64_t last_done = 0, total = 0;
    opts.progress = [&](uint64_t done, uint64_t all) {
        EXPECT_GE(done, last_done);
        last_done = done;
        total = all;
    };
    auto b = make_vulkan_backend(std::move(model), opts);
    EXPECT_TRUE(b.ok()) << b.error().message;
    if (!b.ok()) return nullptr;
    EXPECT_EQ(last_done, total) << "upload progress did not reach the total";
    const VulkanBackendStats* st = vulkan_backend_stats(**b);
    EXPECT_NE(st, nullptr);
    if (st)
        std::printf("[vulkan] %s: %.1f MiB of weights loaded in %.3f s\n", st->device.c_str(),
                    double(st->weight_bytes) / (1 << 20), st->upload_seconds);
    std::shared_ptr<Backend> backend(std::move(*b));
    if (!first_backend()) first_backend() = backend;
    return backend;
}

struct Loaded : RefModel {
    std::shared_ptr<Backend> backend;
};

std::unique_ptr<Loaded> load(const std::string& ref_name) {
    auto rm = testing::load_ref_model(kData, ref_name);
    EXPECT_TRUE(rm.ok()) << rm.error().message;
    if (!rm.ok()) return nullptr;
    EXPECT_NE(rm->model, nullptr) << rm->ref.model << " is missing";
    if (rm->model == nullptr) return nullptr;
    auto backend = vulkan_backend(rm->model);
    if (!backend) return nullptr;
    return std::make_unique<Loaded>(Loaded{std::move(*rm), std::move(backend)});
}

class VulkanModel : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        if (!vulkan_unavailable().empty()) GTEST_SKIP() << vulkan_unavailable();
        l_ = load(GetParam());
        ASSERT_NE(l_, nullptr);
    }
    std::unique_ptr<BackendSession> session(int32_t n_ctx) {
        auto s = l_->backend->create_session(n_ctx);
        EXPECT_TRUE(s.ok()) << s.error().message;
        return s.ok() ? std::move(*s) : nullptr;
    }
    void report(const char* what, const CompareStats& stats) {
        std::printf("[vulkan] %s %s: %s\n", GetParam().c_str(), what, stats.summary().c_str());
        for (const auto& f : stats.failures) ADD_FAILURE() << f;
        EXPECT_EQ(stats.failure_count, 0u);
    }
    std::unique_ptr<Loaded> l_;
};

// Every case prefilled in one step (logits of every position), then its last 8 positions
// decoded token by token on top of the prefilled cache (the way a session continues a
// prompt; a one-token case decodes from an empty cache). Both must meet the reference.
// Decoding whole cases from position 0 is checked against prefill in
// VulkanSessionTest.PrefillInChunksEqualsOneStepAndDecodeAgrees; lavapipe in CI is slow
// enough that repeating it for every model would dominate the test time.
TEST_P(VulkanModel, PrefillAndDecodeMatchReference) {
    auto s = session(l_->n_ctx);
    ASSERT_NE(s, nullptr);
    CompareStats prefill, decode;
    for (const auto& rc : l_->ref.cases) {
        std::vector<float> logits;
        Status st = s->eval(rc.tokens, 0, true, logits);
        ASSERT_TRUE(st.ok()) << st.error().message;
        testing::compare_case(logits, l_->n_vocab, rc, kFp16Tolerances, rc.name, prefill);

        const size_t n = rc.tokens.size();
        const size_t first = n <= 8 ? 0 : n - 8;
        for (size_t p = first; p < n; ++p) {
            st =
                s->eval(std::span(rc.tokens).subspan(p, 1), static_cast<int32_t>(p), false, logits);
            ASSERT_TRUE(st.ok()) << st.error().message;
            ASSERT_EQ(logits.size(), l_->n_vocab);
            testing::compare_position(logits, rc.top20[p], kFp16Tolerances,
                                      rc.name + " pos " + std::to_string(p), decode);
        }
        testing::compare_last_logits(logits, rc, kFp16Tolerances, rc.name, decode);
    }
    report("prefill", prefill);
    report("decode", decode);
}

std::string param_name(const ::testing::TestParamInfo<std::string>& p) {
    return testing::ref_test_name(p.param);
}

INSTANTIATE_TEST_SUITE_P(Models, VulkanModel, ::testing::ValuesIn(ref_files()), param_name);

// A fixture on one model for the session-level tests.
class VulkanSessionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!vulkan_unavailable().empty()) GTEST_SKIP() << vulkan_unavailable();
        const fs::path path = kData / "qwen2-test-q8_0.gguf";
        ASSERT_TRUE(fs::exists(path)) << path << " is missing";
        std::string err;
        auto ref = testing::load_ref_file((kData / "qwen2-test-q8_0.ref.json").string(), &err);
        ASSERT_TRUE(ref.has_value()) << err;
        tokens_ = testing::longest_tokens(*ref);
        auto model = load_model(path);
        ASSERT_TRUE(model.ok()) << model.error().message;
        model_ = std::move(*model);
        backend_ = vulkan_backend(model_);
        ASSERT_NE(backend_, nullptr);
        n_vocab_ = static_cast<size_t>(model_->hparams().n_vocab);
    }

    std::unique_ptr<BackendSession> session(Backend& b, int32_t n_ctx) {
        auto s = b.create_session(n_ctx);
        EXPECT_TRUE(s.ok()) << s.error().message;
        return s.ok() ? std::move(*s) : nullptr;
    }

    // Greedy decode of n tokens from `first` at position pos; returns every step's logits.
    std::vector<float> greedy(BackendSession& s, int32_t first, int32_t pos, int n) {
        std::vector<float> all, logits;
        int32_t tok = first;
        for (int i = 0; i < n; ++i) {
            Status st = s.eval(std::span(&tok, 1), pos + i, false, logits);
            EXPECT_TRUE(st.ok()) << st.error().message;
            if (!st.ok()) break;
            all.insert(all.end(), logits.begin(), logits.end());
            tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                       logits.begin());
        }
        return all;
    }

    // Last-row logits of a prefill vs the same row from the matrix-vector kernel.
    double tol_last() const {
        return vulkan_backend_stats(*backend_)->cooperative_matrix ? 5e-3 : 1e-5;
    }

    std::shared_ptr<const Model> model_;
    std::shared_ptr<Backend> backend_;
    std::vector<int32_t> tokens_;
    size_t n_vocab_ = 0;
};

TEST_F(VulkanSessionTest, SnapshotRestoreThenDecodeEqualsUninterruptedDecode) {
    const int32_t n_prefix = 48, n_ctx = 80;
    const std::span<const int32_t> prefix(tokens_.data(), n_prefix);
    auto a = session(*backend_, n_ctx);
    ASSERT_NE(a, nullptr);
    std::vector<float> logits;
    ASSERT_TRUE(a->eval(prefix, 0, false, logits).ok());
    auto snap = a->snapshot(n_prefix);
    ASSERT_TRUE(snap.ok()) << snap.error().message;
    EXPECT_EQ(snap->dtype, KVDType::F16);
    EXPECT_EQ(snap->data.size(), snap->expected_bytes());
    const std::vector<float> uninterrupted = greedy(*a, tokens_[n_prefix], n_prefix, 12);

    // Into a fresh session, from the F16 snapshot and from the same values as F32.
    KVSnapshot f32 = *snap;
    f32.dtype = KVDType::F32;
    f32.data.resize(f32.expected_bytes());
    for (size_t i = 0; i < snap->data.size() / 2; ++i) {
        uint16_t h;
        std::memcpy(&h, snap->data.data() + 2 * i, 2);
        const float v = fp16_to_fp32(h);
        std::memcpy(f32.data.data() + 4 * i, &v, 4);
    }
    for (const KVSnapshot* s : {&*snap, &f32}) {
        auto b = session(*backend_, n_ctx);
        ASSERT_NE(b, nullptr);
        Status st = b->restore(*s);
        ASSERT_TRUE(st.ok()) << st.error().message;
        auto again = b->snapshot(n_prefix);
        ASSERT_TRUE(again.ok());
        EXPECT_EQ(again->data, snap->data) << "restore did not reproduce the cache";
        const std::vector<float> resumed = greedy(*b, tokens_[n_prefix], n_prefix, 12);
        EXPECT_EQ(resumed, uninterrupted)
            << (s->dtype == KVDType::F16 ? "f16" : "f32") << " snapshot";
    }

    // And into the same session after it moved on.
    ASSERT_TRUE(a->restore(*snap).ok());
    EXPECT_EQ(greedy(*a, tokens_[n_prefix], n_prefix, 12), uninterrupted);

    // In pieces, as the disk cache restores chunks: [0, 16) then [16, n_prefix).
    auto head = a->snapshot(0, 16), tail = a->snapshot(16, n_prefix);
    ASSERT_TRUE(head.ok() && tail.ok());
    EXPECT_EQ(tail->pos, 16);
    EXPECT_EQ(std::vector<uint8_t>(snap->data.begin() + 0, snap->data.begin() + 16 * 2 *
                                   static_cast<std::ptrdiff_t>(tail->row_elems)),
              std::vector<uint8_t>(head->data.begin(), head->data.begin() + 16 * 2 *
                                   static_cast<std::ptrdiff_t>(tail->row_elems)));
    auto c = session(*backend_, n_ctx);
    ASSERT_NE(c, nullptr);
    EXPECT_FALSE(c->restore(*tail).ok());  // rows before position 16 are not there yet
    ASSERT_TRUE(c->restore(*head).ok());
    ASSERT_TRUE(c->restore(*tail).ok());
    auto whole = c->snapshot(n_prefix);
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(whole->data, snap->data);
    EXPECT_EQ(greedy(*c, tokens_[n_prefix], n_prefix, 12), uninterrupted);
}

TEST_F(VulkanSessionTest, PrefillInChunksEqualsOneStepAndDecodeAgrees) {
    // Logits of every position from one prefill, from chunks of uneven size, and from
    // decoding token by token: the same arithmetic up to summation order.
    const size_t n = 40;
    const std::span<const int32_t> toks(tokens_.data(), n);
    auto s = session(*backend_, 64);
    ASSERT_NE(s, nullptr);
    std::vector<float> whole;
    ASSERT_TRUE(s->eval(toks, 0, true, whole).ok());
    std::vector<float> chunked, part;
    for (size_t p = 0; p < n;) {
        const size_t c = std::min<size_t>(n - p, 1 + (p * 7) % 13);
        ASSERT_TRUE(s->eval(toks.subspan(p, c), static_cast<int32_t>(p), true, part).ok());
        chunked.insert(chunked.end(), part.begin(), part.end());
        p += c;
    }
    // Last-token-only logits: the last row again (matrix-vector instead of matrix kernel
    // for the output head, so equal up to summation order).
    std::vector<float> last;
    ASSERT_TRUE(s->eval(toks, 0, false, last).ok());
    ASSERT_EQ(last.size(), n_vocab_);
    const std::vector<double> whole_last(whole.end() - static_cast<long>(n_vocab_), whole.end());
    EXPECT_LT(testing::relative_l2(last, whole_last), tol_last());
    std::vector<float> decoded;
    for (size_t p = 0; p < n; ++p) {
        ASSERT_TRUE(s->eval(toks.subspan(p, 1), static_cast<int32_t>(p), false, part).ok());
        decoded.insert(decoded.end(), part.begin(), part.end());
    }
    // Tensor-core prefill rounds its inputs to f16; decode does not.
    const double tol = vulkan_backend_stats(*backend_)->cooperative_matrix ? 5e-3 : 1e-4;
    for (const auto* other : {&chunked, &decoded}) {
        ASSERT_EQ(other->size(), whole.size());
        for (size_t p = 0; p < n; ++p) {
            const std::span<const float> a(whole.data() + p * n_vocab_, n_vocab_);
            const std::span<const float> b(other->data() + p * n_vocab_, n_vocab_);
            std::vector<double> ad(a.begin(), a.end());
            EXPECT_LT(testing::relative_l2(b, ad), tol) << "position " << p;
        }
    }
}

TEST_F(VulkanSessionTest, MatchesTheCpuBackend) {
    auto cpu = make_cpu_backend(model_, 0);
    ASSERT_TRUE(cpu.ok()) << cpu.error().message;
    const std::span<const int32_t> toks(tokens_.data(), 64);
    auto vs = session(*backend_, 64);
    auto cs = (*cpu)->create_session(64);
    ASSERT_TRUE(vs && cs.ok());
    std::vector<float> vl, cl;
    ASSERT_TRUE(vs->eval(toks, 0, true, vl).ok());
    ASSERT_TRUE((*cs)->eval(toks, 0, true, cl).ok());
    ASSERT_EQ(vl.size(), cl.size());
    double worst = 0;
    size_t argmax_same = 0;
    for (size_t p = 0; p < toks.size(); ++p) {
        const std::span<const float> v(vl.data() + p * n_vocab_, n_vocab_);
        const std::span<const float> c(cl.data() + p * n_vocab_, n_vocab_);
        std::vector<double> cd(c.begin(), c.end());
        worst = std::max(worst, testing::relative_l2(v, cd));
        argmax_same += (std::max_element(v.begin(), v.end()) - v.begin()) ==
                       (std::max_element(c.begin(), c.end()) - c.begin());
    }
    std::printf("[vulkan] vs cpu: worst rel L2 %.3g, argmax equal at %zu/%zu positions\n", worst,
                argmax_same, toks.size());
    EXPECT_LT(worst, 2e-2);
    EXPECT_GE(argmax_same, toks.size() * 9 / 10);  // random weights: near-ties may flip
}

TEST_F(VulkanSessionTest, WeightsSplitAcrossBindingsGiveTheSameLogits) {
    // A binding limit far below the embedding's size splits token_embd (the tied output
    // head) into row parts; the results must not change.
    VulkanOptions opts;
    opts.max_binding_bytes = 64 << 10;  // the embedding is 1.1 MiB
    auto split = vulkan_backend(model_, opts);
    ASSERT_NE(split, nullptr);
    EXPECT_GE(vulkan_backend_stats(*split)->split_matrices, 1u);
    EXPECT_EQ(vulkan_backend_stats(*backend_)->split_matrices, 0u);
    const std::span<const int32_t> toks(tokens_.data(), 20);
    auto a = session(*backend_, 32);
    auto b = session(*split, 32);
    ASSERT_TRUE(a && b);
    // Split weights also turn off the fused decode kernels, whose arithmetic is the same
    // up to the compiler's choice of fused multiply-adds.
    std::vector<float> la, lb;
    ASSERT_TRUE(a->eval(toks, 0, true, la).ok());
    ASSERT_TRUE(b->eval(toks, 0, true, lb).ok());
    std::vector<double> lad(la.begin(), la.end());
    EXPECT_LT(testing::relative_l2(lb, lad), 1e-6);
    ASSERT_TRUE(a->eval(toks.subspan(0, 1), 20, false, la).ok());
    ASSERT_TRUE(b->eval(toks.subspan(0, 1), 20, false, lb).ok());
    lad.assign(la.begin(), la.end());
    EXPECT_LT(testing::relative_l2(lb, lad), 1e-6);
}

TEST_F(VulkanSessionTest, BadRequestsAreErrors) {
    auto s = session(*backend_, 16);
    ASSERT_NE(s, nullptr);
    std::vector<float> logits;
    const std::vector<int32_t> too_many(17, 1);
    EXPECT_FALSE(s->eval(too_many, 0, false, logits).ok());
    const std::vector<int32_t> bad = {1, static_cast<int32_t>(n_vocab_)};
    Status st = s->eval(bad, 0, false, logits);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("vocabulary"), std::string::npos) << st.error().message;
    EXPECT_FALSE(s->eval(std::span(tokens_.data(), 2), 3, false, logits).ok());  // gap
    EXPECT_FALSE(s->snapshot(1).ok());  // nothing evaluated yet
    KVSnapshot wrong;
    wrong.n_layer = 1;
    wrong.row_elems = 3;
    EXPECT_FALSE(s->restore(wrong).ok());
    EXPECT_FALSE(backend_->create_session(0).ok());
}

TEST(VulkanBackendErrors, NoDriverIsAClearErrorSoCallersCanFallBack) {
    if (!vulkan_unavailable().empty()) GTEST_SKIP() << vulkan_unavailable();
    // The loader reads its driver list at every instance creation. (A backend made while
    // another is alive shares that one's device, so the fresh-instance path is checked
    // directly.)
    struct Env {
        const char* name;
        std::string saved;
        bool had;
    };
    std::vector<Env> env;
    for (const char* name : {"VK_DRIVER_FILES", "VK_ICD_FILENAMES"}) {
        const char* v = std::getenv(name);
        env.push_back({name, v ? v : "", v != nullptr});
        setenv(name, "/nonexistent/hearth_icd.json", 1);
    }
    auto device = vk::Device::create();
    auto listed = list_vulkan_devices();
    for (const Env& e : env) {
        if (e.had) {
            setenv(e.name, e.saved.c_str(), 1);
        } else {
            unsetenv(e.name);
        }
    }
    ASSERT_FALSE(device.ok());
    EXPECT_EQ(device.error().message.rfind("vulkan: ", 0), 0u) << device.error().message;
    EXPECT_FALSE(listed.ok());
    std::printf("[vulkan] without a driver: %s\n", device.error().message.c_str());
    // And Vulkan works again once the driver is back.
    EXPECT_TRUE(list_vulkan_devices().ok());
}

TEST(VulkanBackendErrors, AMissingDeviceIndexIsAnError) {
    if (!vulkan_unavailable().empty()) GTEST_SKIP() << vulkan_unavailable();
    const fs::path path = kData / "qwen2-test-q8_0.gguf";
    ASSERT_TRUE(fs::exists(path)) << path << " is missing";
    VulkanOptions opts;
    opts.device = 999;
    auto model = load_model(path);
    ASSERT_TRUE(model.ok()) << model.error().message;
    auto b = make_vulkan_backend(std::move(*model), opts);
    ASSERT_FALSE(b.ok());
    EXPECT_NE(b.error().message.find("999"), std::string::npos) << b.error().message;
}

}  // namespace
}  // namespace hearth
