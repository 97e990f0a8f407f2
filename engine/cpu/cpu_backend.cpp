#include "cpu_backend.h"

#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "../quant.h"
#include "ops.h"
#include "thread_pool.h"

namespace hearth {

namespace {

using cpu::ThreadPool;

std::string cpu_name() {
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "cpu";
#endif
}

// What a backend and all its sessions share; sessions hold it so they may outlive the
// Backend object.
struct CpuShared {
    CpuShared(std::shared_ptr<const Model> m, int n_threads)
        : model(std::move(m)), pool(n_threads) {}
    std::shared_ptr<const Model> model;
    ThreadPool pool;
};

class CpuSession final : public BackendSession {
public:
    CpuSession(std::shared_ptr<CpuShared> shared, int32_t n_ctx, std::unique_ptr<float[]> kv)
        : shared_(std::move(shared)),
          hp_(shared_->model->hparams()),
          n_ctx_(n_ctx),
          kv_(std::move(kv)),
          scores_(static_cast<size_t>(shared_->pool.size()),
                  std::vector<float>(static_cast<size_t>(n_ctx))) {}

    int32_t n_ctx() const override { return n_ctx_; }

    Status eval(std::span<const int32_t> tokens, int32_t pos, bool logits_all,
                std::vector<float>& logits) override;
    using BackendSession::snapshot;
    Expected<KVSnapshot> snapshot(int32_t begin, int32_t end) override;
    Status restore(const KVSnapshot& snap) override;

private:
    size_t row_elems() const { return static_cast<size_t>(hp_.kv_dim()); }
    // KV cache layout: [n_layer][K, V][n_ctx][kv_dim]; a layer's K rows for positions
    // 0..n are one contiguous run, exactly the snapshot's per-layer block.
    float* k_cache(int32_t layer) const {
        return kv_.get() +
               static_cast<size_t>(layer) * 2 * static_cast<size_t>(n_ctx_) * row_elems();
    }
    float* v_cache(int32_t layer) const {
        return k_cache(layer) + static_cast<size_t>(n_ctx_) * row_elems();
    }

    void attention(int32_t layer, int32_t pos, int64_t n_tokens);

    std::shared_ptr<CpuShared> shared_;
    const Hparams& hp_;
    int32_t n_ctx_ = 0;
    int32_t n_valid_ = 0;  // KV rows [0, n_valid_) hold evaluated positions
    std::unique_ptr<float[]> kv_;
    std::vector<std::vector<float>> scores_;  // per pool thread: [n_ctx] attention weights

    // Activations of the current eval call, [n_tokens][width]; reused between calls.
    std::vector<float> x_;     // residual stream, width n_embd
    std::vector<float> h_;     // normed input / sublayer output, width n_embd
    std::vector<float> q_;     // queries, width n_head * head_dim
    std::vector<float> attn_;  // attention output, width n_head * head_dim
    std::vector<float> gate_;  // width n_ff
    std::vector<float> up_;    // width n_ff
    std::vector<float> rope_;  // per token: head_dim floats of cos/sin
};

void CpuSession::attention(int32_t layer, int32_t pos, int64_t n_tokens) {
    const int32_t hd = hp_.head_dim;
    const int64_t q_dim = hp_.q_dim();
    const int64_t kv_dim = hp_.kv_dim();
    const int32_t group = hp_.gqa_group();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const float* K = k_cache(layer);
    const float* V = v_cache(layer);
    shared_->pool.parallel_for(n_tokens * hp_.n_head, 1, [&](int64_t i0, int64_t i1, int th) {
        float* s = scores_[static_cast<size_t>(th)].data();
        for (int64_t item = i0; item < i1; ++item) {
            const int64_t t = item / hp_.n_head;
            const int32_t head = static_cast<int32_t>(item % hp_.n_head);
            const int64_t kv_off = static_cast<int64_t>(head / group) * hd;
            const float* q = q_.data() + t * q_dim + static_cast<int64_t>(head) * hd;
            const int64_t n_keys = pos + t + 1;  // causal: this position and all before it
            for (int64_t j = 0; j < n_keys; ++j) {
                s[j] = cpu::dot_f32(q, K + j * kv_dim + kv_off, hd) * scale;
            }
            cpu::softmax(s, n_keys);
            float* out = attn_.data() + t * q_dim + static_cast<int64_t>(head) * hd;
            std::fill(out, out + hd, 0.0f);
            for (int64_t j = 0; j < n_keys; ++j) {
                const float w = s[j];
                const float* v = V + j * kv_dim + kv_off;
                for (int32_t d = 0; d < hd; ++d) out[d] += w * v[d];
            }
        }
    });
}

Status CpuSession::eval(std::span<const int32_t> tokens, int32_t pos, bool logits_all,
                        std::vector<float>& logits) {
    HEARTH_TRY(check_eval(tokens, pos, n_valid_, n_ctx_, hp_.n_vocab));
    const Model& model = *shared_->model;
    ThreadPool& pool = shared_->pool;
    const int64_t T = static_cast<int64_t>(tokens.size());
    const int64_t E = hp_.n_embd, F = hp_.n_ff, QD = hp_.q_dim(), KVD = hp_.kv_dim();
    const int32_t hd = hp_.head_dim;
    const int64_t n_out = logits_all ? T : 1;
    try {
        x_.resize(static_cast<size_t>(T * E));
        h_.resize(static_cast<size_t>(T * E));
        q_.resize(static_cast<size_t>(T * QD));
        attn_.resize(static_cast<size_t>(T * QD));
        gate_.resize(static_cast<size_t>(T * F));
        up_.resize(static_cast<size_t>(T * F));
        rope_.resize(static_cast<size_t>(T * hd));
        logits.resize(static_cast<size_t>(n_out * hp_.n_vocab));
    } catch (const std::bad_alloc&) {
        return make_error("out of memory for the activations of " + std::to_string(T) + " tokens");
    }
    // Rows from pos on are about to be overwritten.
    n_valid_ = pos;

    for (int64_t t = 0; t < T; ++t) {
        cpu::embed_row(model.token_embd(), tokens[static_cast<size_t>(t)], x_.data() + t * E);
        cpu::rope_table(pos + t, hd, hp_.rope_theta, rope_.data() + t * hd);
    }

    auto bias = [](const TensorView& b) { return b.present() ? b.f32() : nullptr; };
    for (int32_t il = 0; il < hp_.n_layer; ++il) {
        const LayerWeights& L = model.layer(il);

        for (int64_t t = 0; t < T; ++t) {
            cpu::rms_norm(x_.data() + t * E, L.attn_norm.f32(), h_.data() + t * E, E, hp_.rms_eps);
        }
        // K and V go straight into the cache rows of their positions.
        float* k_rows = k_cache(il) + static_cast<int64_t>(pos) * KVD;
        float* v_rows = v_cache(il) + static_cast<int64_t>(pos) * KVD;
        cpu::matmul(pool, L.wq, h_.data(), T, q_.data(), bias(L.bq));
        cpu::matmul(pool, L.wk, h_.data(), T, k_rows, bias(L.bk));
        cpu::matmul(pool, L.wv, h_.data(), T, v_rows, bias(L.bv));
        for (int64_t t = 0; t < T; ++t) {
            const float* cs = rope_.data() + t * hd;
            cpu::rope(q_.data() + t * QD, hp_.n_head, hd, cs, hp_.rope_style);
            cpu::rope(k_rows + t * KVD, hp_.n_head_kv, hd, cs, hp_.rope_style);
        }
        attention(il, pos, T);
        cpu::matmul(pool, L.wo, attn_.data(), T, h_.data());
        cpu::add(x_.data(), h_.data(), T * E);  // residual

        for (int64_t t = 0; t < T; ++t) {
            cpu::rms_norm(x_.data() + t * E, L.ffn_norm.f32(), h_.data() + t * E, E, hp_.rms_eps);
        }
        cpu::matmul(pool, L.w_gate, h_.data(), T, gate_.data());
        cpu::matmul(pool, L.w_up, h_.data(), T, up_.data());
        cpu::swiglu(gate_.data(), up_.data(), T * F);
        cpu::matmul(pool, L.w_down, gate_.data(), T, h_.data());
        cpu::add(x_.data(), h_.data(), T * E);  // residual
    }
    n_valid_ = pos + static_cast<int32_t>(T);

    const int64_t first = T - n_out;
    for (int64_t t = first; t < T; ++t) {
        cpu::rms_norm(x_.data() + t * E, model.output_norm().f32(), h_.data() + (t - first) * E, E,
                      hp_.rms_eps);
    }
    cpu::matmul(pool, model.output(), h_.data(), n_out, logits.data());
    return {};
}

Expected<KVSnapshot> CpuSession::snapshot(int32_t begin, int32_t end) {
    HEARTH_TRY(check_snapshot_range(begin, end, n_valid_));
    const int32_t n_tokens = end - begin;
    KVSnapshot snap;
    snap.pos = begin;
    snap.n_tokens = n_tokens;
    snap.n_layer = hp_.n_layer;
    snap.row_elems = hp_.kv_dim();
    snap.dtype = KVDType::F32;
    try {
        snap.data.resize(snap.expected_bytes());
    } catch (const std::bad_alloc&) {
        return make_error("out of memory for a snapshot of " + std::to_string(n_tokens) +
                          " positions");
    }
    const size_t first = static_cast<size_t>(begin) * row_elems();
    const size_t block = static_cast<size_t>(n_tokens) * row_elems() * sizeof(float);
    uint8_t* dst = snap.data.data();
    for (int32_t il = 0; il < hp_.n_layer; ++il) {
        if (block == 0) break;
        std::memcpy(dst, k_cache(il) + first, block);
        std::memcpy(dst + block, v_cache(il) + first, block);
        dst += 2 * block;
    }
    return snap;
}

Status CpuSession::restore(const KVSnapshot& snap) {
    HEARTH_TRY(check_restore(snap, hp_.n_layer, hp_.kv_dim(), n_ctx_, n_valid_));
    const size_t elems = static_cast<size_t>(snap.n_tokens) * row_elems();
    const size_t block = elems * snap.bytes_per_elem();
    const size_t first = static_cast<size_t>(snap.pos) * row_elems();
    const uint8_t* src = snap.data.data();
    for (int32_t il = 0; il < hp_.n_layer; ++il) {
        for (float* dst : {k_cache(il) + first, v_cache(il) + first}) {
            if (snap.dtype == KVDType::F32) {
                std::memcpy(dst, src, block);
            } else {
                for (size_t i = 0; i < elems; ++i) {
                    uint16_t h;
                    std::memcpy(&h, src + 2 * i, sizeof h);
                    dst[i] = fp16_to_fp32(h);
                }
            }
            src += block;
        }
    }
    n_valid_ = snap.pos + snap.n_tokens;
    return {};
}

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(std::shared_ptr<CpuShared> shared) : shared_(std::move(shared)) {}

    BackendInfo info() const override {
        return {"cpu", cpu_name() + ", " + std::to_string(shared_->pool.size()) + " threads"};
    }

    Expected<std::unique_ptr<BackendSession>> create_session(int32_t n_ctx) override {
        const Hparams& hp = shared_->model->hparams();
        if (n_ctx < 1 || n_ctx > hp.n_ctx_train) {
            return make_error("context size " + std::to_string(n_ctx) + " is outside [1, " +
                              std::to_string(hp.n_ctx_train) + "] (the model's training context)");
        }
        const size_t elems = static_cast<size_t>(hp.n_layer) * 2 * static_cast<size_t>(n_ctx) *
                             static_cast<size_t>(hp.kv_dim());
        try {
            // Uninitialised: pages are only touched as positions are evaluated.
            auto kv = std::make_unique_for_overwrite<float[]>(elems);
            return std::unique_ptr<BackendSession>(
                std::make_unique<CpuSession>(shared_, n_ctx, std::move(kv)));
        } catch (const std::bad_alloc&) {
            return make_error("out of memory for a KV cache of " + std::to_string(n_ctx) +
                              " positions (" + std::to_string(elems * sizeof(float) >> 20) +
                              " MiB)");
        }
    }

private:
    std::shared_ptr<CpuShared> shared_;
};

}  // namespace

Expected<std::unique_ptr<Backend>> make_cpu_backend(std::shared_ptr<const Model> model,
                                                    int n_threads) {
    if (!model) return make_error("make_cpu_backend: no model");
    if (n_threads < 0 || n_threads > 1024) {
        return make_error("thread count " + std::to_string(n_threads) + " is out of range");
    }
    auto shared = std::make_shared<CpuShared>(std::move(model), n_threads);
    return std::unique_ptr<Backend>(std::make_unique<CpuBackend>(std::move(shared)));
}

}  // namespace hearth
