#include "vulkan/forward.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <numeric>
#include <string>

namespace hearth::vk {

namespace {

// Offset alignment of tensors inside the weight buffers: at least the device's storage
// buffer offset alignment, and 256 so that fused kernels can address neighbouring
// matrices of one binding in 16-byte units.
uint64_t weight_alignment(const Device& device) {
    return std::max<uint64_t>(256, device.caps().min_storage_offset_alignment);
}

uint64_t align_up(uint64_t v, uint64_t a) {
    return (v + a - 1) / a * a;
}

// Where one tensor goes: buffer index and offset.
struct Slot {
    const uint8_t* data = nullptr;
    uint64_t bytes = 0;
    size_t buffer = 0;
    uint64_t offset = 0;
};

// Assigns tensors to buffers of at most `capacity` bytes, in order.
class Packer {
  public:
    Packer(uint64_t alignment, uint64_t capacity) : align_(alignment), capacity_(capacity) {}

    size_t add(const void* data, uint64_t bytes) {
        if (sizes_.empty() || align_up(sizes_.back(), align_) + bytes > capacity_)
            sizes_.push_back(0);
        Slot s;
        s.data = static_cast<const uint8_t*>(data);
        s.bytes = bytes;
        s.buffer = sizes_.size() - 1;
        s.offset = align_up(sizes_.back(), align_);
        sizes_.back() = s.offset + bytes;
        slots_.push_back(s);
        return slots_.size() - 1;
    }
    const std::vector<Slot>& slots() const { return slots_; }
    const std::vector<uint64_t>& sizes() const { return sizes_; }
    uint64_t total() const {
        uint64_t t = 0;
        for (uint64_t s : sizes_) t += s;
        return t;
    }

  private:
    uint64_t align_;
    uint64_t capacity_;
    std::vector<uint64_t> sizes_;
    std::vector<Slot> slots_;
};

}  // namespace

Expected<std::unique_ptr<DeviceModel>> DeviceModel::upload(Device& device, const Model& model,
                                                           const UploadOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<DeviceModel> dm(new DeviceModel());
    dm->hp_ = model.hparams();
    const Hparams& hp = dm->hp_;
    const DeviceCaps& caps = device.caps();
    const uint64_t align = weight_alignment(device);

    uint64_t largest = 0;
    auto note = [&](const TensorView& t) {
        if (t.present()) largest = std::max<uint64_t>(largest, t.nbytes);
    };
    note(model.token_embd());
    note(model.output());
    for (const LayerWeights& l : model.layers()) {
        for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
            note(*t);
    }
    // Few large buffers; a cap keeps any one allocation reasonable for the driver.
    uint64_t capacity = std::max<uint64_t>(1ull << 30, align_up(largest, align));
    if (caps.max_allocation_size > 0)
        capacity = std::min<uint64_t>(capacity, caps.max_allocation_size);
    if (largest > capacity)
        return make_error("vulkan: a weight tensor of " + format_bytes(largest) +
                          " exceeds the device's largest allocation (" + format_bytes(capacity) +
                          ")");

    const uint64_t max_binding =
        options.max_binding_bytes > 0
            ? std::min<uint64_t>(options.max_binding_bytes, caps.max_storage_buffer_range)
            : caps.max_storage_buffer_range;

    // Plan: every tensor gets a slot; matrices remember theirs to build parts afterwards.
    Packer packer(align, capacity);
    struct PendingMatrix {
        DeviceWeight* target;
        const TensorView* view;
        size_t slot;
    };
    struct PendingVector {
        BufferRange* target;
        size_t slot;
    };
    std::vector<PendingMatrix> matrices;
    std::vector<PendingVector> vectors;
    auto matrix = [&](DeviceWeight& dst, const TensorView& t) {
        matrices.push_back({&dst, &t, packer.add(t.data, t.nbytes)});
    };
    auto vec = [&](BufferRange& dst, const TensorView& t) {
        if (t.present()) vectors.push_back({&dst, packer.add(t.data, t.nbytes)});
    };

    matrix(dm->token_embd_, model.token_embd());
    dm->layers_.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t i = 0; i < hp.n_layer; ++i) {
        const LayerWeights& l = model.layer(i);
        DeviceLayer& d = dm->layers_[static_cast<size_t>(i)];
        vec(d.attn_norm, l.attn_norm);
        matrix(d.wq, l.wq);
        matrix(d.wk, l.wk);
        matrix(d.wv, l.wv);
        vec(d.bq, l.bq);
        vec(d.bk, l.bk);
        vec(d.bv, l.bv);
        matrix(d.wo, l.wo);
        vec(d.ffn_norm, l.ffn_norm);
        matrix(d.w_gate, l.w_gate);
        matrix(d.w_up, l.w_up);
        matrix(d.w_down, l.w_down);
    }
    vec(dm->output_norm_, model.output_norm());
    // A tied output shares the embedding's bytes on the device as well.
    const bool tied = model.output().data == model.token_embd().data;
    if (!tied) matrix(dm->output_, model.output());

    // Rope frequencies theta^(-2p/head_dim), computed in double once.
    std::vector<float> inv_freq(static_cast<size_t>(hp.head_dim / 2));
    for (size_t p = 0; p < inv_freq.size(); ++p)
        inv_freq[p] = static_cast<float>(
            std::pow(static_cast<double>(hp.rope_theta), -2.0 * double(p) / double(hp.head_dim)));
    const size_t freq_slot = packer.add(inv_freq.data(), inv_freq.size() * sizeof(float));

    HEARTH_TRY(check_device_memory(
        device, packer.total(),
        "the weights of " + std::string(model.name().empty() ? "the model" : model.name())));

    for (size_t i = 0; i < packer.sizes().size(); ++i) {
        auto buf = Buffer::create(device, packer.sizes()[i], MemoryKind::DeviceLocal,
                                  "weights (" + format_bytes(packer.sizes()[i]) + ")");
        if (!buf) return buf.error();
        dm->buffers_.push_back(std::move(*buf));
    }
    auto range_of = [&](size_t slot) {
        const Slot& s = packer.slots()[slot];
        return dm->buffers_[s.buffer]->range(s.offset, s.bytes);
    };

    for (const PendingMatrix& m : matrices) {
        const TensorView& t = *m.view;
        DeviceWeight& w = *m.target;
        w.type = t.type;
        w.rows = t.rows();
        w.cols = t.cols();
        const BufferRange whole = range_of(m.slot);
        const uint64_t row_bytes = t.row_bytes();
        int64_t rows_per_part = w.rows;
        if (t.nbytes > max_binding) {
            // Parts start at row offsets whose weight bytes and f32 outputs both meet the
            // binding alignment.
            const uint64_t a = std::max<uint64_t>(4, caps.min_storage_offset_alignment);
            const uint64_t gran = std::lcm(a / 4, a / std::gcd(a, row_bytes));
            rows_per_part = static_cast<int64_t>(max_binding / row_bytes / gran * gran);
            if (rows_per_part == 0)
                return make_error("vulkan: " + std::to_string(gran) + " rows of " +
                                  std::string(t.name) + " do not fit the device's largest binding");
        }
        for (int64_t r = 0; r < w.rows; r += rows_per_part) {
            const int64_t n = std::min(rows_per_part, w.rows - r);
            DeviceWeight::Part part;
            part.row_begin = r;
            part.tensor = {t.type, n, w.cols,
                           whole.sub(static_cast<uint64_t>(r) * row_bytes,
                                     static_cast<uint64_t>(n) * row_bytes)};
            w.parts.push_back(part);
        }
        if (w.parts.size() > 1) ++dm->split_matrices_;
    }
    for (const PendingVector& v : vectors) *v.target = range_of(v.slot);
    dm->inv_freq_ = range_of(freq_slot);
    dm->output_ = tied ? dm->token_embd_ : dm->output_;

    auto uploader = Uploader::create(device);
    if (!uploader) return uploader.error();
    (*uploader)->set_progress(options.progress, packer.total());
    for (const Slot& s : packer.slots())
        HEARTH_TRY((*uploader)->upload(s.data, s.bytes, *dm->buffers_[s.buffer], s.offset));
    HEARTH_TRY((*uploader)->finish());

    dm->bytes_ = packer.total();
    dm->upload_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return dm;
}

uint32_t attention_splits(const KernelConfig& cfg, const Hparams& hp, uint32_t n_tokens) {
    const uint32_t n_kv = static_cast<uint32_t>(hp.n_head_kv);
    const uint32_t group = static_cast<uint32_t>(hp.gqa_group());
    const uint32_t rows = n_tokens == 1 ? std::min<uint32_t>(group, 16) : cfg.attn_br;
    const uint32_t blocks = (n_tokens * group + rows - 1) / rows * n_kv;
    const uint32_t want = (cfg.attn_target_groups + blocks - 1) / blocks;
    return std::clamp<uint32_t>(want, 1, cfg.attn_max_splits);
}

namespace {

// Y = W X (+ bias) (+ Y) part by part: each row part of W writes its slice of the rows.
Status linear(OpRecorder& rec, const DeviceWeight& w, BufferRange x, uint32_t x_stride,
              BufferRange y, uint32_t y_stride, uint32_t n, BufferRange bias, bool accumulate) {
    for (size_t i = 0; i < w.parts.size(); ++i) {
        const DeviceWeight::Part& p = w.parts[i];
        const uint64_t off = static_cast<uint64_t>(p.row_begin) * sizeof(float);
        const BufferRange yp = y.sub(off, y.size - off);
        const BufferRange bp = bias.valid() ? bias.sub(off, bias.size - off) : BufferRange{};
        // The parts write disjoint rows, but through overlapping bindings; a barrier keeps
        // that visibly ordered (for validation) at the cost of a rare split weight.
        if (i > 0) rec.barrier();
        HEARTH_TRY(rec.linear(p.tensor, x, x_stride, yp, y_stride, n, bp, accumulate));
    }
    return Status::success();
}

// The weight as one tensor, or nullptr when it is bound in several parts.
const DeviceTensor* single(const DeviceWeight& w) {
    return w.parts.size() == 1 ? &w.parts[0].tensor : nullptr;
}

}  // namespace

Status record_forward(OpRecorder& rec, const DeviceModel& model, const ForwardBuffers& b,
                      uint32_t T, LogitsMode mode) {
    const Hparams& hp = model.hparams();
    if (T == 0 || T > b.n_batch)
        return make_error("vulkan: a step of " + std::to_string(T) + " tokens (batch " +
                          std::to_string(b.n_batch) + ")");
    if (mode == LogitsMode::All && T > b.n_logit_rows)
        return make_error("vulkan: logits for " + std::to_string(T) + " tokens, room for " +
                          std::to_string(b.n_logit_rows));
    const uint32_t E = static_cast<uint32_t>(hp.n_embd);
    const uint32_t QD = static_cast<uint32_t>(hp.q_dim());
    const uint32_t KVD = static_cast<uint32_t>(hp.kv_dim());
    const uint32_t F = static_cast<uint32_t>(hp.n_ff);
    const uint32_t HD = static_cast<uint32_t>(hp.head_dim);
    const uint32_t V = static_cast<uint32_t>(hp.n_vocab);
    const bool neox = hp.rope_style == RopeStyle::Neox;

    for (const DeviceWeight::Part& p : model.token_embd().parts) {
        HEARTH_TRY(rec.get_rows(p.tensor, b.ids, b.x, T, p.row_begin));
        rec.barrier();
    }

    AttentionArgs att;
    att.q = b.q;
    att.out = b.attn;
    att.step = b.step;
    att.partial = b.partial;
    att.n_tokens = T;
    att.n_head = static_cast<uint32_t>(hp.n_head);
    att.n_head_kv = static_cast<uint32_t>(hp.n_head_kv);
    att.head_dim = HD;
    att.q_stride = QD;
    att.o_stride = QD;
    att.kv_stride = KVD;
    att.n_split = attention_splits(rec.config(), hp, T);
    att.scale = 1.0f / std::sqrt(static_cast<float>(HD));

    OpRecorder::RopeArgs rope;
    rope.q = b.q;
    rope.k = b.k;
    rope.v = b.v;
    rope.inv_freq = model.inv_freq();
    rope.step = b.step;
    rope.n_tokens = T;
    rope.n_head = att.n_head;
    rope.n_head_kv = att.n_head_kv;
    rope.head_dim = HD;
    rope.q_stride = QD;
    rope.kv_stride = KVD;
    rope.cache_stride = KVD;
    rope.neox = neox;

    for (int32_t il = 0; il < hp.n_layer; ++il) {
        const DeviceLayer& L = model.layer(il);

        HEARTH_TRY(rec.rmsnorm(b.x, E, L.attn_norm, b.h, E, T, E, hp.rms_eps));
        rec.barrier();
        const std::array<const DeviceTensor*, 3> qkv{single(L.wq), single(L.wk), single(L.wv)};
        if (T == 1 && qkv[0] && qkv[1] && qkv[2] && rec.fusable(qkv)) {
            const std::array<OpRecorder::MatvecOut, 3> outs{
                OpRecorder::MatvecOut{qkv[0], b.q, L.bq, false},
                OpRecorder::MatvecOut{qkv[1], b.k, L.bk, false},
                OpRecorder::MatvecOut{qkv[2], b.v, L.bv, false}};
            HEARTH_TRY(rec.matvec_multi(outs, b.h));
        } else {
            HEARTH_TRY(linear(rec, L.wq, b.h, E, b.q, QD, T, L.bq, false));
            HEARTH_TRY(linear(rec, L.wk, b.h, E, b.k, KVD, T, L.bk, false));
            HEARTH_TRY(linear(rec, L.wv, b.h, E, b.v, KVD, T, L.bv, false));
        }
        rec.barrier();
        rope.k_cache = b.k_cache[static_cast<size_t>(il)];
        rope.v_cache = b.v_cache[static_cast<size_t>(il)];
        HEARTH_TRY(rec.rope(rope));
        rec.barrier();
        att.k_cache = rope.k_cache;
        att.v_cache = rope.v_cache;
        HEARTH_TRY(rec.attention(att));
        rec.barrier();
        HEARTH_TRY(linear(rec, L.wo, b.attn, QD, b.x, E, T, {}, true));
        rec.barrier();

        HEARTH_TRY(rec.rmsnorm(b.x, E, L.ffn_norm, b.h, E, T, E, hp.rms_eps));
        rec.barrier();
        const std::array<const DeviceTensor*, 2> gate_up{single(L.w_gate), single(L.w_up)};
        if (T == 1 && gate_up[0] && gate_up[1] && rec.fusable(gate_up)) {
            HEARTH_TRY(rec.matvec_swiglu(*gate_up[0], *gate_up[1], b.h, b.gate));
        } else {
            HEARTH_TRY(linear(rec, L.w_gate, b.h, E, b.gate, F, T, {}, false));
            HEARTH_TRY(linear(rec, L.w_up, b.h, E, b.up, F, T, {}, false));
            rec.barrier();
            HEARTH_TRY(rec.silu_mul(b.gate, b.up, b.gate, T * F));
        }
        rec.barrier();
        HEARTH_TRY(linear(rec, L.w_down, b.gate, F, b.x, E, T, {}, true));
        rec.barrier();
    }

    switch (mode) {
        case LogitsMode::None:
            break;
        case LogitsMode::All:
            HEARTH_TRY(rec.rmsnorm(b.x, E, model.output_norm(), b.h, E, T, E, hp.rms_eps));
            rec.barrier();
            HEARTH_TRY(linear(rec, model.output(), b.h, E, b.logits, V, T, {}, false));
            break;
        case LogitsMode::Last: {
            BufferRange last = b.x;
            if (T > 1) {
                // Copy rather than bind at an offset: row offsets need not meet the
                // device's binding alignment.
                rec.copy(
                    b.x.sub(static_cast<uint64_t>(T - 1) * E * sizeof(float), E * sizeof(float)),
                    b.last);
                rec.barrier();
                last = b.last;
            }
            HEARTH_TRY(rec.rmsnorm(last, E, model.output_norm(), b.h, E, 1, E, hp.rms_eps));
            rec.barrier();
            HEARTH_TRY(linear(rec, model.output(), b.h, E, b.logits, V, 1, {}, false));
            break;
        }
    }
    return Status::success();
}

}  // namespace hearth::vk
