// Every Vulkan kernel against a plain C++ reference on random inputs, by normalised error
// (sum of squared differences over sum of squares of the reference). Sizes are odd on
// purpose: rows not a multiple of a workgroup's rows, K not a multiple of a tile, batches
// not a multiple of a tile. Weight kernels run for every supported block format, on data
// from the reference quantizer and on random block bytes (every bit pattern of the
// layout). Each kernel runs with the device's own configuration and with the other
// configuration family (CPU-sized / GPU-sized workgroups, subgroup or shared-memory
// reductions), so both code paths are checked on whatever device runs the test.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "quant.h"
#include "vulkan/device.h"
#include "vulkan/memory.h"
#include "vulkan/ops.h"
#include "vulkan/pipeline.h"

namespace hearth::vk {
namespace {

struct VulkanEnv {
    std::unique_ptr<Device> device;
    std::unique_ptr<PipelineCache> pipelines;
    std::string error;
};

VulkanEnv& env() {
    static VulkanEnv e = [] {
        VulkanEnv v;
        auto d = Device::create();
        if (!d) {
            v.error = d.error().message;
            return v;
        }
        v.device = std::move(*d);
        v.pipelines = std::make_unique<PipelineCache>(*v.device);
        std::printf("[vulkan] device %u: %s (%s), subgroup %u (min %u), arithmetic %s\n",
                    v.device->index(), v.device->name().c_str(), v.device->driver().c_str(),
                    v.device->caps().subgroup_size, v.device->caps().min_subgroup_size,
                    v.device->caps().subgroup_arithmetic ? "yes" : "no");
        return v;
    }();
    return e;
}

// Configurations to run every kernel with: the device's own, and the other family with the
// reductions switched the other way.
std::vector<std::pair<std::string, KernelConfig>> configs() {
    const KernelConfig native = KernelConfig::for_device(*env().device);
    KernelConfig other = native;
    const bool native_small = native.matvec_wg <= 32;
    other.matvec_wg = native_small ? 128 : 32;
    other.matvec_rows = native_small ? 1 : 4;
    // The direct matmul is the CPU devices' kernel; GPUs check a second tiling instead.
    other.matmul_tiled = true;
    other.matmul_bm = native_small ? 64 : 32;
    other.matmul_bn = native_small ? 64 : 32;
    other.matmul_tm = 4;
    other.matmul_tn = 4;
    other.norm_wg = native_small ? 256 : 64;
    other.elem_wg = native_small ? 256 : 64;
    other.attn_wg = native_small ? 128 : 64;
    other.subgroup = !native.subgroup && env().device->caps().subgroup_arithmetic;
    other.matmul_coopmat = false;
    std::vector<std::pair<std::string, KernelConfig>> out = {{"native", native}, {"other", other}};
    if (KernelConfig::coopmat_supported(*env().device) != native.matmul_coopmat) {
        KernelConfig flip = native;  // tensor cores on where they are off, and vice versa
        flip.matmul_coopmat = !native.matmul_coopmat;
        out.emplace_back(flip.matmul_coopmat ? "coopmat" : "tiled", flip);
    }
    return out;
}

class VulkanOps : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!env().device) GTEST_SKIP() << "no Vulkan device: " << env().error;
    }

    Device& dev() { return *env().device; }

    std::unique_ptr<Buffer> make(size_t bytes, const void* data = nullptr) {
        auto b = Buffer::create(dev(), bytes, MemoryKind::DeviceLocal, "test buffer");
        EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().message);
        if (!b.ok()) return nullptr;
        std::vector<uint8_t> fill(bytes, 0);
        if (data) std::memcpy(fill.data(), data, bytes);
        auto up = Uploader::create(dev(), 1 << 20);
        EXPECT_TRUE(up.ok());
        EXPECT_TRUE((*up)->upload(fill.data(), bytes, **b, 0).ok());
        EXPECT_TRUE((*up)->finish().ok());
        return std::move(*b);
    }
    template <class T>
    std::unique_ptr<Buffer> make(const std::vector<T>& v) {
        return make(v.size() * sizeof(T), v.data());
    }
    template <class T>
    std::vector<T> read(const Buffer& b, size_t n) {
        std::vector<T> out(n);
        Status s = download(dev(), b, 0, n * sizeof(T), out.data());
        EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
        return out;
    }

    // Records `body` into a one-time command buffer, submits it and waits.
    void run(const KernelConfig& cfg, const std::function<Status(OpRecorder&)>& body) {
        DescriptorArena arena(dev());
        auto cmd = CommandBuffer::create(dev());
        ASSERT_TRUE(cmd.ok());
        auto cb = (*cmd)->begin(true);
        ASSERT_TRUE(cb.ok());
        OpRecorder rec(*env().pipelines, arena, cfg, *cb);
        Status s = body(rec);
        ASSERT_TRUE(s.ok()) << s.error().message;
        ASSERT_TRUE((*cmd)->end().ok());
        Status r = (*cmd)->submit_and_wait();
        ASSERT_TRUE(r.ok()) << r.error().message;
    }
};

std::mt19937& rng() {
    static std::mt19937 g(1234);
    return g;
}

std::vector<float> random_floats(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng());
    return v;
}

// Normalised error: sum (a - b)^2 / sum b^2.
double nmse(const std::vector<float>& got, const std::vector<double>& want) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double d = static_cast<double>(got[i]) - want[i];
        num += d * d;
        den += want[i] * want[i];
    }
    return den > 0.0 ? num / den : num;
}

#define EXPECT_NMSE(got, want, limit, what)                                       \
    do {                                                                          \
        const double e_ = nmse(got, want);                                        \
        std::printf("[vulkan] %-40s nmse %.3g\n", std::string(what).c_str(), e_); \
        EXPECT_LE(e_, limit) << what;                                             \
    } while (0)

const std::vector<GGMLType> kWeightTypes = {GGMLType::F32,  GGMLType::F16,  GGMLType::BF16,
                                            GGMLType::Q8_0, GGMLType::Q4_0, GGMLType::Q4_K,
                                            GGMLType::Q5_K, GGMLType::Q6_K};

// A K that exercises the type: several blocks for block formats, an odd K for plain floats.
int64_t test_cols(GGMLType t) {
    const int64_t qk = type_traits(t)->block_elems;
    if (qk == 1) return 203;
    return qk == 32 ? 32 * 7 : 256 * 3;
}

// A rows x cols weight matrix of type t: its bytes, and its values as the reference sees
// them (dequantized by quant.cpp, so only the kernel's arithmetic is compared).
struct Weights {
    std::vector<uint8_t> bytes;
    std::vector<float> values;
};

// Byte offsets of the f16 scale fields in a block, which random bytes must not turn into
// inf/NaN.
std::vector<size_t> scale_offsets(GGMLType t) {
    switch (t) {
        case GGMLType::Q8_0:
        case GGMLType::Q4_0:
            return {0};
        case GGMLType::Q4_K:
        case GGMLType::Q5_K:
            return {0, 2};
        case GGMLType::Q6_K:
            return {208};
        default:
            return {};
    }
}

Weights make_weights(GGMLType t, int64_t rows, int64_t cols, bool random_bytes) {
    Weights w;
    const size_t rb = *row_bytes(t, cols);
    w.bytes.resize(rb * static_cast<size_t>(rows));
    const TypeTraits* tr = type_traits(t);
    if (random_bytes && tr->block_elems > 1) {
        std::uniform_int_distribution<int> byte(0, 255);
        for (uint8_t& b : w.bytes) b = static_cast<uint8_t>(byte(rng()));
        std::uniform_real_distribution<float> scale(0.001f, 0.05f);
        for (size_t blk = 0; blk < w.bytes.size() / tr->block_bytes; ++blk) {
            for (size_t off : scale_offsets(t)) {
                const uint16_t h = fp32_to_fp16(scale(rng()));
                std::memcpy(&w.bytes[blk * tr->block_bytes + off], &h, 2);
            }
        }
    } else {
        const std::vector<float> src = random_floats(static_cast<size_t>(rows * cols));
        for (int64_t r = 0; r < rows; ++r)
            quantize_row(t, src.data() + r * cols, w.bytes.data() + static_cast<size_t>(r) * rb,
                         cols);
    }
    w.values.resize(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
        dequantize_row(t, w.bytes.data() + static_cast<size_t>(r) * rb, w.values.data() + r * cols,
                       cols);
    return w;
}

std::string type_label(GGMLType t) {
    return std::string(type_traits(t)->name);
}

TEST_F(VulkanOps, MatvecEveryTypeWithBiasAndResidual) {
    for (const auto& [cfg_name, cfg] : configs()) {
        for (GGMLType t : kWeightTypes) {
            for (bool random_bytes : {false, true}) {
                // Plain float types: the second pass takes an aligned K (vector loads).
                const bool plain = type_traits(t)->block_elems == 1;
                const int64_t M = 37, K = plain && random_bytes ? 256 : test_cols(t);
                const Weights w = make_weights(t, M, K, random_bytes);
                const std::vector<float> x = random_floats(static_cast<size_t>(K));
                const std::vector<float> bias = random_floats(static_cast<size_t>(M));
                const std::vector<float> y0 = random_floats(static_cast<size_t>(M));
                auto wb = make(w.bytes);
                auto xb = make(x);
                auto bb = make(bias);
                auto yb = make(y0);
                auto y2 = make(y0);
                const DeviceTensor dt{t, M, K, wb->range()};
                run(cfg, [&](OpRecorder& r) -> Status {
                    HEARTH_TRY(r.matvec(dt, xb->range(), yb->range(), {}, false));
                    return r.matvec(dt, xb->range(), y2->range(), bb->range(), true);
                });
                std::vector<double> want(M), want2(M);
                for (int64_t i = 0; i < M; ++i) {
                    double s = 0;
                    for (int64_t k = 0; k < K; ++k) s += double(w.values[i * K + k]) * x[k];
                    want[i] = s;
                    want2[i] = s + bias[i] + y0[i];
                }
                const std::string what = "matvec " + type_label(t) + " K" + std::to_string(K) +
                                         (random_bytes && !plain ? " random" : "") + " " + cfg_name;
                EXPECT_NMSE(read<float>(*yb, M), want, 1e-9, what);
                EXPECT_NMSE(read<float>(*y2, M), want2, 1e-9, what + " +bias+res");
            }
        }
    }
}

TEST_F(VulkanOps, MatmulEveryTypeWithStridesBiasAndResidual) {
    for (const auto& [cfg_name, cfg] : configs()) {
        for (GGMLType t : kWeightTypes) {
            // Row strides of X with and without 16-byte alignment (vector loads or not).
            for (uint32_t pad : {3u, 4u}) {
                const int64_t M = 70, K = test_cols(t);
                const uint32_t N = 13;
                const uint32_t xs = static_cast<uint32_t>(K) + pad,
                               ys = static_cast<uint32_t>(M) + 5;
                const Weights w = make_weights(t, M, K, type_traits(t)->block_elems > 1);
                const std::vector<float> x = random_floats(size_t(N) * xs);
                const std::vector<float> bias = random_floats(static_cast<size_t>(M));
                const std::vector<float> y0 = random_floats(size_t(N) * ys);
                auto wb = make(w.bytes);
                auto xb = make(x);
                auto bb = make(bias);
                auto yb = make(y0);
                const DeviceTensor dt{t, M, K, wb->range()};
                run(cfg, [&](OpRecorder& r) {
                    return r.matmul(dt, xb->range(), xs, yb->range(), ys, N, bb->range(), true);
                });
                std::vector<double> want(y0.begin(), y0.end());
                for (uint32_t n = 0; n < N; ++n) {
                    for (int64_t m = 0; m < M; ++m) {
                        double s = bias[m];
                        for (int64_t k = 0; k < K; ++k)
                            s += double(w.values[m * K + k]) * x[n * xs + k];
                        want[n * ys + m] += s;
                    }
                }
                // Tensor cores take f16 inputs: about 2^-11 relative error per product.
                EXPECT_NMSE(read<float>(*yb, want.size()), want, cfg.matmul_coopmat ? 2e-6 : 1e-9,
                            "matmul " + type_label(t) + " K" + std::to_string(K) + " stride " +
                                std::to_string(xs) + " " + cfg_name);
            }
        }
    }
}

TEST_F(VulkanOps, GetRowsEveryType) {
    const KernelConfig cfg = configs()[0].second;
    for (GGMLType t : kWeightTypes) {
        const int64_t rows = 11, K = test_cols(t);
        const Weights w = make_weights(t, rows, K, type_traits(t)->block_elems > 1);
        const std::vector<int32_t> ids = {3, 0, 10, 3, 7};
        auto wb = make(w.bytes);
        auto ib = make(ids);
        auto ob = make(ids.size() * K * sizeof(float));
        const DeviceTensor dt{t, rows, K, wb->range()};
        run(cfg, [&](OpRecorder& r) {
            return r.get_rows(dt, ib->range(), ob->range(), static_cast<uint32_t>(ids.size()));
        });
        std::vector<double> want;
        for (int32_t id : ids)
            for (int64_t k = 0; k < K; ++k) want.push_back(w.values[id * K + k]);
        EXPECT_NMSE(read<float>(*ob, want.size()), want, 1e-12, "get_rows " + type_label(t));
    }
}

TEST_F(VulkanOps, RmsNorm) {
    for (const auto& [cfg_name, cfg] : configs()) {
        const uint32_t rows = 3, n = 1003, xs = 1010, ys = 1007;
        const std::vector<float> x = random_floats(size_t(rows) * xs, 3.0f);
        const std::vector<float> w = random_floats(n);
        auto xb = make(x);
        auto wb = make(w);
        auto yb = make(size_t(rows) * ys * sizeof(float));
        run(cfg, [&](OpRecorder& r) {
            return r.rmsnorm(xb->range(), xs, wb->range(), yb->range(), ys, rows, n, 1e-5f);
        });
        const std::vector<float> got = read<float>(*yb, size_t(rows) * ys);
        std::vector<float> got_rows;
        std::vector<double> want;
        for (uint32_t i = 0; i < rows; ++i) {
            double ss = 0;
            for (uint32_t k = 0; k < n; ++k) ss += double(x[i * xs + k]) * x[i * xs + k];
            const double scale = 1.0 / std::sqrt(ss / n + 1e-5);
            for (uint32_t k = 0; k < n; ++k) {
                want.push_back(x[i * xs + k] * scale * w[k]);
                got_rows.push_back(got[i * ys + k]);
            }
        }
        EXPECT_NMSE(got_rows, want, 1e-11, "rmsnorm " + cfg_name);
    }
}

// Reference rope of one row of n_heads heads at position pos.
void rope_ref(std::vector<double>& row, size_t off, uint32_t n_heads, uint32_t hd, bool neox,
              uint32_t pos, double theta_base) {
    for (uint32_t h = 0; h < n_heads; ++h) {
        for (uint32_t p = 0; p < hd / 2; ++p) {
            const double theta = pos * std::pow(theta_base, -2.0 * p / hd);
            const size_t a = off + h * hd + (neox ? p : 2 * p);
            const size_t b = a + (neox ? hd / 2 : 1);
            const double x0 = row[a], x1 = row[b];
            row[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
            row[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
        }
    }
}

std::vector<float> inv_freqs(uint32_t hd, double base) {
    std::vector<float> f(hd / 2);
    for (uint32_t p = 0; p < hd / 2; ++p) f[p] = static_cast<float>(std::pow(base, -2.0 * p / hd));
    return f;
}

TEST_F(VulkanOps, RopeRotatesQInPlaceAndStoresKVIntoTheCache) {
    const KernelConfig cfg = configs()[0].second;
    const uint32_t n_tokens = 5, n_head = 6, n_kv = 2, hd = 64, pos = 1234;
    const uint32_t q_stride = n_head * hd + 4, kv_stride = n_kv * hd + 8, cache_stride = n_kv * hd;
    const uint32_t n_ctx = pos + n_tokens + 2;
    const double base = 1e6;
    for (bool neox : {true, false}) {
        const std::vector<float> q = random_floats(size_t(n_tokens) * q_stride);
        const std::vector<float> k = random_floats(size_t(n_tokens) * kv_stride);
        const std::vector<float> v = random_floats(size_t(n_tokens) * kv_stride);
        auto qb = make(q);
        auto kb = make(k);
        auto vb = make(v);
        auto fb = make(inv_freqs(hd, base));
        StepParams sp;
        sp.pos = pos;
        auto sb = make(sizeof sp, &sp);
        auto kcb = make(size_t(n_ctx) * cache_stride * 2);
        auto vcb = make(size_t(n_ctx) * cache_stride * 2);
        OpRecorder::RopeArgs a;
        a.q = qb->range();
        a.k = kb->range();
        a.v = vb->range();
        a.inv_freq = fb->range();
        a.step = sb->range();
        a.k_cache = kcb->range();
        a.v_cache = vcb->range();
        a.n_tokens = n_tokens;
        a.n_head = n_head;
        a.n_head_kv = n_kv;
        a.head_dim = hd;
        a.q_stride = q_stride;
        a.kv_stride = kv_stride;
        a.cache_stride = cache_stride;
        a.neox = neox;
        run(cfg, [&](OpRecorder& r) { return r.rope(a); });

        const std::string style = neox ? "neox" : "normal";
        std::vector<double> want_q(q.begin(), q.end()), want_k(k.begin(), k.end());
        for (uint32_t t = 0; t < n_tokens; ++t) {
            rope_ref(want_q, t * q_stride, n_head, hd, neox, pos + t, base);
            rope_ref(want_k, t * kv_stride, n_kv, hd, neox, pos + t, base);
        }
        EXPECT_NMSE(read<float>(*qb, want_q.size()), want_q, 1e-9, "rope q " + style);

        const std::vector<uint16_t> kc = read<uint16_t>(*kcb, size_t(n_ctx) * cache_stride);
        const std::vector<uint16_t> vc = read<uint16_t>(*vcb, size_t(n_ctx) * cache_stride);
        std::vector<float> got_k;
        std::vector<double> want_kc;
        for (uint32_t t = 0; t < n_tokens; ++t) {
            for (uint32_t i = 0; i < cache_stride; ++i) {
                got_k.push_back(fp16_to_fp32(kc[(pos + t) * cache_stride + i]));
                want_kc.push_back(want_k[t * kv_stride + i]);
                // v is stored exactly as the f16 of the input.
                ASSERT_EQ(vc[(pos + t) * cache_stride + i], fp32_to_fp16(v[t * kv_stride + i]));
            }
        }
        EXPECT_NMSE(got_k, want_kc, 1e-6, "rope k into the f16 cache " + style);
        // Rows outside the step's positions stay untouched.
        for (uint32_t i = 0; i < cache_stride; ++i) {
            EXPECT_EQ(kc[(pos - 1) * cache_stride + i], 0);
            EXPECT_EQ(vc[(pos + n_tokens) * cache_stride + i], 0);
        }
    }
}

TEST_F(VulkanOps, FusedMatvecsEqualSeparateOnes) {
    // Three matrices of one type packed in one buffer (as a layer's Wq, Wk, Wv are), and a
    // gate/up pair: the fused kernels must compute what separate matvecs compute.
    for (const auto& [cfg_name, cfg] : configs()) {
        for (GGMLType t : {GGMLType::Q8_0, GGMLType::Q4_K, GGMLType::F16}) {
            const int64_t K = type_traits(t)->block_elems == 256 ? 512 : 96;
            const std::array<int64_t, 3> rows = {40, 17, 17};
            std::vector<Weights> ws;
            std::vector<uint8_t> packed;
            std::array<size_t, 3> offsets{};
            for (size_t i = 0; i < 3; ++i) {
                ws.push_back(make_weights(t, rows[i], K, false));
                offsets[i] = packed.size();
                packed.insert(packed.end(), ws[i].bytes.begin(), ws[i].bytes.end());
                packed.resize((packed.size() + 255) / 256 * 256, 0);
            }
            auto wb = make(packed);
            std::array<DeviceTensor, 3> dt;
            for (size_t i = 0; i < 3; ++i)
                dt[i] = {t, rows[i], K, wb->range(offsets[i], ws[i].bytes.size())};
            const std::vector<float> x = random_floats(static_cast<size_t>(K));
            const std::vector<float> bias = random_floats(64);
            auto xb = make(x);
            auto bb = make(bias);
            std::array<std::unique_ptr<Buffer>, 3> ys;
            for (auto& y : ys) y = make(64 * sizeof(float));
            auto sw = make(64 * sizeof(float));
            run(cfg, [&](OpRecorder& r) -> Status {
                const std::array<const DeviceTensor*, 3> ptrs{&dt[0], &dt[1], &dt[2]};
                if (!r.fusable(ptrs)) return make_error("packed matrices are not fusable");
                const std::array<OpRecorder::MatvecOut, 3> outs{
                    OpRecorder::MatvecOut{&dt[0], ys[0]->range(), bb->range(), false},
                    OpRecorder::MatvecOut{&dt[1], ys[1]->range(), {}, false},
                    OpRecorder::MatvecOut{&dt[2], ys[2]->range(), bb->range(), false}};
                HEARTH_TRY(r.matvec_multi(outs, xb->range()));
                return r.matvec_swiglu(dt[1], dt[2], xb->range(), sw->range());
            });
            std::array<std::vector<double>, 3> want;
            for (size_t i = 0; i < 3; ++i) {
                for (int64_t m = 0; m < rows[i]; ++m) {
                    double s = (i != 1) ? bias[m] : 0.0;
                    for (int64_t k = 0; k < K; ++k) s += double(ws[i].values[m * K + k]) * x[k];
                    want[i].push_back(s);
                }
                EXPECT_NMSE(
                    read<float>(*ys[i], rows[i]), want[i], 1e-9,
                    "matvec_multi " + type_label(t) + " #" + std::to_string(i) + " " + cfg_name);
            }
            std::vector<double> want_sw;
            for (int64_t m = 0; m < rows[1]; ++m) {
                const double g = want[1][m], u = want[2][m] - bias[m];
                want_sw.push_back(g / (1.0 + std::exp(-g)) * u);
            }
            EXPECT_NMSE(read<float>(*sw, rows[1]), want_sw, 1e-9,
                        "matvec_swiglu " + type_label(t) + " " + cfg_name);
        }
    }
}

// Reference causal GQA attention over an f16 cache, for queries at positions pos + t.
std::vector<double> attention_ref(const std::vector<float>& q, const std::vector<uint16_t>& kc,
                                  const std::vector<uint16_t>& vc, uint32_t n_tokens,
                                  uint32_t n_head, uint32_t n_kv, uint32_t hd, uint32_t pos) {
    const uint32_t G = n_head / n_kv, kv_stride = n_kv * hd;
    std::vector<double> out(size_t(n_tokens) * n_head * hd, 0.0);
    for (uint32_t t = 0; t < n_tokens; ++t) {
        for (uint32_t h = 0; h < n_head; ++h) {
            const uint32_t g = h / G;
            const uint32_t n_keys = pos + t + 1;
            std::vector<double> s(n_keys);
            double mx = -1e300;
            for (uint32_t j = 0; j < n_keys; ++j) {
                double d = 0;
                for (uint32_t e = 0; e < hd; ++e)
                    d += double(q[(t * n_head + h) * hd + e]) *
                         fp16_to_fp32(kc[j * kv_stride + g * hd + e]);
                s[j] = d / std::sqrt(double(hd));
                mx = std::max(mx, s[j]);
            }
            double sum = 0;
            for (double& v : s) sum += (v = std::exp(v - mx));
            for (uint32_t j = 0; j < n_keys; ++j)
                for (uint32_t e = 0; e < hd; ++e)
                    out[(t * n_head + h) * hd + e] +=
                        s[j] / sum * fp16_to_fp32(vc[j * kv_stride + g * hd + e]);
        }
    }
    return out;
}

TEST_F(VulkanOps, AttentionDecodeAndPrefillWithSplits) {
    struct Shape {
        uint32_t n_tokens, n_head, n_kv, hd, pos, n_split;
    };
    const std::vector<Shape> shapes = {
        {1, 4, 2, 128, 0, 1},   {1, 4, 2, 128, 37, 1},  {1, 4, 2, 128, 37, 3},
        {1, 8, 1, 64, 100, 4},  {1, 14, 2, 64, 70, 16}, {19, 4, 2, 128, 11, 1},
        {19, 4, 2, 128, 11, 2}, {33, 8, 4, 64, 0, 1},   {7, 2, 2, 80, 5, 2},
    };
    for (const auto& [cfg_name, cfg] : configs()) {
        for (const Shape& s : shapes) {
            const uint32_t kv_stride = s.n_kv * s.hd, n_ctx = s.pos + s.n_tokens + 3;
            const uint32_t q_stride = s.n_head * s.hd;
            const std::vector<float> q = random_floats(size_t(s.n_tokens) * q_stride);
            std::vector<uint16_t> kc(size_t(n_ctx) * kv_stride), vc(kc.size());
            for (uint16_t& v : kc) v = fp32_to_fp16(random_floats(1, 1.5f)[0]);
            for (uint16_t& v : vc) v = fp32_to_fp16(random_floats(1)[0]);
            auto qb = make(q);
            auto kb = make(kc);
            auto vb = make(vc);
            auto ob = make(size_t(s.n_tokens) * q_stride * sizeof(float));
            auto pb = make(4 * attention_partial_floats(s.n_tokens, s.n_head, s.hd, s.n_split));
            StepParams sp;
            sp.pos = s.pos;
            auto sb = make(sizeof sp, &sp);
            AttentionArgs a;
            a.q = qb->range();
            a.k_cache = kb->range();
            a.v_cache = vb->range();
            a.out = ob->range();
            a.step = sb->range();
            a.partial = pb->range();
            a.n_tokens = s.n_tokens;
            a.n_head = s.n_head;
            a.n_head_kv = s.n_kv;
            a.head_dim = s.hd;
            a.q_stride = q_stride;
            a.o_stride = q_stride;
            a.kv_stride = kv_stride;
            a.n_split = s.n_split;
            a.scale = 1.0f / std::sqrt(float(s.hd));
            run(cfg, [&](OpRecorder& r) { return r.attention(a); });
            const std::vector<double> want =
                attention_ref(q, kc, vc, s.n_tokens, s.n_head, s.n_kv, s.hd, s.pos);
            char what[128];
            std::snprintf(what, sizeof what, "attention T%u H%u/%u D%u pos%u split%u %s",
                          s.n_tokens, s.n_head, s.n_kv, s.hd, s.pos, s.n_split, cfg_name.c_str());
            EXPECT_NMSE(read<float>(*ob, want.size()), want, 1e-9, what);
        }
    }
}

TEST_F(VulkanOps, SiluMulAndAdd) {
    const KernelConfig cfg = configs()[0].second;
    const uint32_t n = 1000 + 3;
    const std::vector<float> g = random_floats(n, 3.0f), u = random_floats(n);
    auto gb = make(g);
    auto ub = make(u);
    auto yb = make(n * sizeof(float));
    auto zb = make(n * sizeof(float));
    run(cfg, [&](OpRecorder& r) -> Status {
        HEARTH_TRY(r.silu_mul(gb->range(), ub->range(), yb->range(), n));
        return r.add(gb->range(), ub->range(), zb->range(), n);
    });
    std::vector<double> want_silu(n), want_add(n);
    for (uint32_t i = 0; i < n; ++i) {
        want_silu[i] = g[i] / (1.0 + std::exp(-double(g[i]))) * u[i];
        want_add[i] = double(g[i]) + u[i];
    }
    EXPECT_NMSE(read<float>(*yb, n), want_silu, 1e-11, "silu_mul");
    EXPECT_NMSE(read<float>(*zb, n), want_add, 1e-14, "add");
}

TEST_F(VulkanOps, BindingBeyondTheDeviceRangeIsAnError) {
    const KernelConfig cfg = configs()[0].second;
    auto b = make(64);
    DescriptorArena arena(dev());
    auto cmd = CommandBuffer::create(dev());
    ASSERT_TRUE(cmd.ok());
    auto cb = (*cmd)->begin(true);
    ASSERT_TRUE(cb.ok());
    OpRecorder rec(*env().pipelines, arena, cfg, *cb);
    BufferRange huge = b->range();
    huge.size = dev().caps().max_storage_buffer_range + 4;
    Status s = rec.add(huge, b->range(), b->range(), 4);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("binds at most"), std::string::npos) << s.error().message;
    ASSERT_TRUE((*cmd)->end().ok());
}

TEST(VulkanDevices, ListingNamesEveryDevice) {
    auto list = list_devices();
    if (!list) GTEST_SKIP() << list.error().message;
    for (const DeviceInfo& d : *list) {
        EXPECT_FALSE(d.name.empty());
        EXPECT_FALSE(d.type.empty());
        if (!d.usable) {
            EXPECT_FALSE(d.unusable_reason.empty());
        }
        std::printf("[vulkan] %u: %s (%s, Vulkan %s, %s)%s\n", d.index, d.name.c_str(),
                    d.type.c_str(), api_version_string(d.api_version).c_str(),
                    format_bytes(d.device_local_bytes).c_str(), d.usable ? "" : " unusable");
    }
}

TEST(VulkanDevices, BadDeviceIndexIsAClearError) {
    auto list = list_devices();
    if (!list || list->empty()) GTEST_SKIP() << "no Vulkan device";
    DeviceOptions opts;
    opts.index = static_cast<int>(list->size()) + 3;
    auto d = Device::create(opts);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("requested"), std::string::npos) << d.error().message;
}

}  // namespace
}  // namespace hearth::vk
