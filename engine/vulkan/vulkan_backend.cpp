#include "vulkan/vulkan_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <utility>

#include "quant.h"
#include "vulkan/forward.h"
#include "vulkan/memory.h"
#include "vulkan/ops.h"
#include "vulkan/pipeline.h"

namespace hearth {

using vk::Buffer;
using vk::BufferRange;
using vk::MemoryKind;

namespace {

// A device with its compiled pipelines, shared by every backend of the process that asks
// for the same device: several models on one GPU share its queue, and a pipeline compiled
// once serves them all (on CPU implementations compiling is the slow part).
struct DeviceContext {
    std::unique_ptr<vk::Device> device;
    std::unique_ptr<vk::PipelineCache> pipelines;
    vk::KernelConfig config;

    ~DeviceContext() { pipelines.reset(); }  // before the device they were built on
};

Expected<std::shared_ptr<DeviceContext>> acquire_device(int index) {
    // The request, not the device it resolves to, keys the registry: the same request
    // always resolves to the same device.
    if (index < 0) {
        if (const char* env = std::getenv("HEARTH_DEVICE"); env && *env) {
            char* end = nullptr;
            const long v = std::strtol(env, &end, 10);
            if (*end == '\0' && v >= 0) index = static_cast<int>(v);
        }
    }
    static std::mutex mutex;
    static std::map<int, std::weak_ptr<DeviceContext>> live;
    std::lock_guard<std::mutex> lock(mutex);
    if (auto ctx = live[index].lock()) return ctx;
    vk::DeviceOptions opts;
    opts.index = index;
    auto device = vk::Device::create(opts);
    if (!device) return device.error();
    auto ctx = std::make_shared<DeviceContext>();
    ctx->device = std::move(*device);
    ctx->pipelines = std::make_unique<vk::PipelineCache>(*ctx->device);
    ctx->config = vk::KernelConfig::for_device(*ctx->device);
    live[index] = ctx;
    return ctx;
}

// What every session of one backend shares: the device context and the weights.
struct Shared {
    std::shared_ptr<const Model> model;
    std::shared_ptr<DeviceContext> context;
    vk::Device* device = nullptr;            // context->device
    vk::PipelineCache* pipelines = nullptr;  // context->pipelines
    vk::KernelConfig config;
    std::unique_ptr<vk::DeviceModel> weights;
    VulkanOptions options;

    ~Shared() { weights.reset(); }  // before the device context may go
};

class VulkanSession final : public BackendSession {
  public:
    static Expected<std::unique_ptr<BackendSession>> create(std::shared_ptr<Shared> shared,
                                                            int32_t n_ctx);

    int32_t n_ctx() const override { return n_ctx_; }
    Status eval(std::span<const int32_t> tokens, int32_t pos, bool logits_all,
                std::vector<float>& logits) override;
    using BackendSession::snapshot;
    Expected<KVSnapshot> snapshot(int32_t begin, int32_t end) override;
    Status restore(const KVSnapshot& snap) override;

  private:
    // One recorded step: its command buffer and the descriptor sets it binds.
    struct Recording {
        std::unique_ptr<vk::CommandBuffer> cmd;
        std::unique_ptr<vk::DescriptorArena> arena;
    };
    using RecordingKey = std::pair<uint32_t, vk::LogitsMode>;

    explicit VulkanSession(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
    vk::Device& device() { return *shared_->device; }
    const Hparams& hp() const { return shared_->model->hparams(); }

    Status allocate(int32_t n_ctx);
    Expected<std::unique_ptr<Buffer>> buffer(uint64_t bytes, MemoryKind kind, const char* what);
    Expected<Recording*> recording(uint32_t n_tokens, vk::LogitsMode mode);
    Status record(Recording& r, uint32_t n_tokens, vk::LogitsMode mode);
    size_t kv_block_bytes(int32_t n_tokens) const {
        return static_cast<size_t>(n_tokens) * static_cast<size_t>(hp().kv_dim()) * 2;
    }

    std::shared_ptr<Shared> shared_;
    int32_t n_ctx_ = 0;
    int32_t n_valid_ = 0;  // KV rows [0, n_valid_) hold evaluated positions

    std::vector<std::unique_ptr<Buffer>> owned_;
    Buffer* params_host_ = nullptr;  // StepParams, then n_batch token ids; host-written
    Buffer* logits_dev_ = nullptr;
    Buffer* logits_host_ = nullptr;  // readback copy, when logits_dev_ is not host-mapped
    std::vector<std::pair<Buffer*, uint64_t>> kv_where_;  // per layer K then V: buffer, offset
    vk::ForwardBuffers fb_;

    // Most recently used last; the decode step stays recorded for the session's life.
    std::list<std::pair<RecordingKey, Recording>> recordings_;
    static constexpr size_t kMaxRecordings = 6;
};

Expected<std::unique_ptr<Buffer>> VulkanSession::buffer(uint64_t bytes, MemoryKind kind,
                                                        const char* what) {
    return Buffer::create(device(), bytes, kind, what);
}

Status VulkanSession::allocate(int32_t n_ctx) {
    vk::Device& dev = device();
    const Hparams& h = hp();
    const uint64_t max_range = dev.caps().max_storage_buffer_range;
    const uint64_t E = static_cast<uint64_t>(h.n_embd), QD = static_cast<uint64_t>(h.q_dim());
    const uint64_t KVD = static_cast<uint64_t>(h.kv_dim()), F = static_cast<uint64_t>(h.n_ff);
    const uint64_t V = static_cast<uint64_t>(h.n_vocab);

    // Every activation buffer is bound whole, so it must fit one binding.
    const uint64_t widest = std::max({E, QD, F}) * sizeof(float);
    uint64_t n_batch = static_cast<uint64_t>(std::max<int32_t>(1, shared_->options.n_batch));
    n_batch = std::min<uint64_t>(n_batch, std::max<uint64_t>(1, max_range / widest));
    n_batch = std::min<uint64_t>(n_batch, static_cast<uint64_t>(n_ctx));
    const uint64_t logit_cap = std::min<uint64_t>(max_range, 256ull << 20);
    const uint64_t n_logit_rows =
        std::min<uint64_t>(n_batch, std::max<uint64_t>(1, logit_cap / (V * sizeof(float))));
    if (V * sizeof(float) > max_range)
        return make_error("vulkan: a row of " + std::to_string(V) +
                          " logits exceeds the device's largest binding");

    uint64_t partial_floats = 0;
    for (uint32_t t = 1; t <= n_batch; ++t) {
        const uint32_t splits = vk::attention_splits(shared_->config, h, t);
        if (splits > 1)
            partial_floats =
                std::max(partial_floats,
                         vk::attention_partial_floats(t, static_cast<uint32_t>(h.n_head),
                                                      static_cast<uint32_t>(h.head_dim), splits));
    }

    // KV cache: per layer a K and a V block of n_ctx f16 rows, packed into buffers.
    const uint64_t align = std::max<uint64_t>(256, dev.caps().min_storage_offset_alignment);
    const uint64_t block = (static_cast<uint64_t>(n_ctx) * KVD * 2 + align - 1) / align * align;
    if (block > max_range)
        return make_error("vulkan: a KV cache of " + std::to_string(n_ctx) +
                          " positions exceeds the device's largest binding per layer (" +
                          vk::format_bytes(max_range) + ")");
    uint64_t per_buffer = std::max<uint64_t>(block, 1ull << 30);
    if (dev.caps().max_allocation_size > 0)
        per_buffer = std::min<uint64_t>(per_buffer, dev.caps().max_allocation_size);
    const uint64_t blocks_per_buffer = std::max<uint64_t>(1, per_buffer / block);
    const uint64_t n_blocks = 2 * static_cast<uint64_t>(h.n_layer);
    const uint64_t kv_bytes = n_blocks * block;

    const uint64_t act_bytes = sizeof(float) * (n_batch * (2 * E + 2 * QD + 2 * KVD + 2 * F) + E +
                                                n_logit_rows * V + partial_floats) +
                               sizeof(vk::StepParams) + 4 * n_batch;
    HEARTH_TRY(vk::check_device_memory(
        dev, kv_bytes + act_bytes,
        "a KV cache of " + std::to_string(n_ctx) + " positions and its work buffers"));

    fb_.n_batch = static_cast<uint32_t>(n_batch);
    fb_.n_logit_rows = static_cast<uint32_t>(n_logit_rows);
    fb_.n_ctx = static_cast<uint32_t>(n_ctx);

    auto make = [&](BufferRange& dst, uint64_t bytes, const char* what) -> Status {
        auto b = buffer(bytes, MemoryKind::DeviceLocal, what);
        if (!b) return b.error();
        dst = (*b)->range();
        owned_.push_back(std::move(*b));
        return Status::success();
    };
    HEARTH_TRY(make(fb_.ids, 4 * n_batch, "token ids"));
    HEARTH_TRY(make(fb_.step, sizeof(vk::StepParams), "step parameters"));
    HEARTH_TRY(make(fb_.x, 4 * n_batch * E, "activations"));
    HEARTH_TRY(make(fb_.h, 4 * n_batch * E, "activations"));
    HEARTH_TRY(make(fb_.q, 4 * n_batch * QD, "activations"));
    HEARTH_TRY(make(fb_.k, 4 * n_batch * KVD, "activations"));
    HEARTH_TRY(make(fb_.v, 4 * n_batch * KVD, "activations"));
    HEARTH_TRY(make(fb_.attn, 4 * n_batch * QD, "activations"));
    HEARTH_TRY(make(fb_.gate, 4 * n_batch * F, "activations"));
    HEARTH_TRY(make(fb_.up, 4 * n_batch * F, "activations"));
    HEARTH_TRY(make(fb_.last, 4 * E, "activations"));
    HEARTH_TRY(make(fb_.partial, 4 * std::max<uint64_t>(partial_floats, 1), "attention scratch"));
    HEARTH_TRY(make(fb_.logits, 4 * n_logit_rows * V, "logits"));
    logits_dev_ = owned_.back().get();

    auto host = buffer(sizeof(vk::StepParams) + 4 * n_batch, MemoryKind::Upload, "step upload");
    if (!host) return host.error();
    params_host_ = host->get();
    owned_.push_back(std::move(*host));
    if (!logits_dev_->mapped()) {
        auto rb = buffer(4 * n_logit_rows * V, MemoryKind::Readback, "logits readback");
        if (!rb) return rb.error();
        logits_host_ = rb->get();
        owned_.push_back(std::move(*rb));
    }

    for (uint64_t first = 0; first < n_blocks; first += blocks_per_buffer) {
        const uint64_t count = std::min(blocks_per_buffer, n_blocks - first);
        auto b = buffer(count * block, MemoryKind::DeviceLocal, "KV cache");
        if (!b) return b.error();
        for (uint64_t i = 0; i < count; ++i) kv_where_.emplace_back(b->get(), i * block);
        owned_.push_back(std::move(*b));
    }
    for (int32_t il = 0; il < h.n_layer; ++il) {
        for (int kv = 0; kv < 2; ++kv) {
            const auto [buf, off] = kv_where_[static_cast<size_t>(2 * il + kv)];
            (kv == 0 ? fb_.k_cache : fb_.v_cache).push_back(buf->range(off, block));
        }
    }

    // Zero the cache so no uninitialised bits are ever read as f16 NaNs.
    auto cmd = vk::CommandBuffer::create(dev);
    if (!cmd) return cmd.error();
    auto cb = (*cmd)->begin(true);
    if (!cb) return cb.error();
    for (const auto& [buf, off] : kv_where_)
        vk::fn.vkCmdFillBuffer(*cb, buf->handle(), off, block, 0);
    HEARTH_TRY((*cmd)->end());
    return (*cmd)->submit_and_wait();
}

Expected<std::unique_ptr<BackendSession>> VulkanSession::create(std::shared_ptr<Shared> shared,
                                                                int32_t n_ctx) {
    if (n_ctx <= 0) return make_error("vulkan: context length must be positive");
    std::unique_ptr<VulkanSession> s(new VulkanSession(std::move(shared)));
    s->n_ctx_ = n_ctx;
    HEARTH_TRY(s->allocate(n_ctx));
    // Record the decode step now, so the first token pays nothing extra.
    auto r = s->recording(1, vk::LogitsMode::Last);
    if (!r) return r.error();
    return std::unique_ptr<BackendSession>(std::move(s));
}

Status VulkanSession::record(Recording& r, uint32_t n_tokens, vk::LogitsMode mode) {
    auto cb = r.cmd->begin(false);
    if (!cb) return cb.error();
    vk::OpRecorder rec(*shared_->pipelines, *r.arena, shared_->config, *cb);

    // The step's parameters: host-visible memory -> device-local copies the kernels read.
    const VkBufferCopy step_copy{0, fb_.step.offset, sizeof(vk::StepParams)};
    vk::fn.vkCmdCopyBuffer(*cb, params_host_->handle(), fb_.step.buffer, 1, &step_copy);
    const VkBufferCopy ids_copy{sizeof(vk::StepParams), fb_.ids.offset, 4ull * n_tokens};
    vk::fn.vkCmdCopyBuffer(*cb, params_host_->handle(), fb_.ids.buffer, 1, &ids_copy);
    rec.barrier();

    HEARTH_TRY(vk::record_forward(rec, *shared_->weights, fb_, n_tokens, mode));

    if (mode != vk::LogitsMode::None) {
        const uint64_t rows = mode == vk::LogitsMode::All ? n_tokens : 1;
        const uint64_t bytes = rows * static_cast<uint64_t>(hp().n_vocab) * sizeof(float);
        VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        VkPipelineStageFlags src = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT;
        if (logits_host_) {
            rec.barrier();
            rec.copy(fb_.logits.sub(0, bytes), logits_host_->range(0, bytes));
            src = VK_PIPELINE_STAGE_TRANSFER_BIT;
            b.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        } else {
            b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        }
        b.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        vk::fn.vkCmdPipelineBarrier(*cb, src, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &b, 0, nullptr, 0,
                                    nullptr);
    }
    return r.cmd->end();
}

Expected<VulkanSession::Recording*> VulkanSession::recording(uint32_t n_tokens,
                                                             vk::LogitsMode mode) {
    const RecordingKey key{n_tokens, mode};
    for (auto it = recordings_.begin(); it != recordings_.end(); ++it) {
        if (it->first == key) {
            recordings_.splice(recordings_.end(), recordings_, it);
            return &recordings_.back().second;
        }
    }
    if (recordings_.size() >= kMaxRecordings) {
        const RecordingKey decode{1, vk::LogitsMode::Last};
        auto victim = std::find_if(recordings_.begin(), recordings_.end(),
                                   [&](const auto& e) { return e.first != decode; });
        if (victim != recordings_.end()) recordings_.erase(victim);
    }
    Recording r;
    auto cmd = vk::CommandBuffer::create(device());
    if (!cmd) return cmd.error();
    r.cmd = std::move(*cmd);
    r.arena = std::make_unique<vk::DescriptorArena>(device());
    HEARTH_TRY(record(r, n_tokens, mode));
    recordings_.emplace_back(key, std::move(r));
    return &recordings_.back().second;
}

Status VulkanSession::eval(std::span<const int32_t> tokens, int32_t pos, bool logits_all,
                           std::vector<float>& logits) {
    HEARTH_TRY(check_eval(tokens, pos, n_valid_, n_ctx_, hp().n_vocab));
    const size_t T = tokens.size();
    const size_t V = static_cast<size_t>(hp().n_vocab);
    const size_t chunk = logits_all ? fb_.n_logit_rows : fb_.n_batch;
    try {
        logits.resize((logits_all ? T : 1) * V);
    } catch (const std::bad_alloc&) {
        return make_error("out of memory for the logits of " + std::to_string(T) + " tokens");
    }
    n_valid_ = pos;  // rows from pos on are about to be overwritten

    const Buffer& out = logits_host_ ? *logits_host_ : *logits_dev_;
    for (size_t done = 0; done < T;) {
        const size_t n = std::min(chunk, T - done);
        const vk::LogitsMode mode = logits_all      ? vk::LogitsMode::All
                                    : done + n == T ? vk::LogitsMode::Last
                                                    : vk::LogitsMode::None;
        vk::StepParams step;
        step.pos = static_cast<uint32_t>(pos) + static_cast<uint32_t>(done);
        std::memcpy(params_host_->mapped(), &step, sizeof step);
        std::memcpy(params_host_->mapped() + sizeof step, tokens.data() + done,
                    n * sizeof(int32_t));

        auto r = recording(static_cast<uint32_t>(n), mode);
        if (!r) return r.error();
        HEARTH_TRY((*r)->cmd->submit_and_wait());

        if (mode != vk::LogitsMode::None) {
            const size_t rows = mode == vk::LogitsMode::All ? n : 1;
            HEARTH_TRY(const_cast<Buffer&>(out).invalidate(0, rows * V * sizeof(float)));
            float* dst = logits.data() + (mode == vk::LogitsMode::All ? done * V : 0);
            std::memcpy(dst, out.mapped(), rows * V * sizeof(float));
        }
        done += n;
        n_valid_ = pos + static_cast<int32_t>(done);
    }
    return Status::success();
}

Expected<KVSnapshot> VulkanSession::snapshot(int32_t begin, int32_t end) {
    HEARTH_TRY(check_snapshot_range(begin, end, n_valid_));
    const int32_t n_tokens = end - begin;
    KVSnapshot snap;
    snap.pos = begin;
    snap.n_tokens = n_tokens;
    snap.n_layer = hp().n_layer;
    snap.row_elems = hp().kv_dim();
    snap.dtype = KVDType::F16;
    try {
        snap.data.resize(snap.expected_bytes());
    } catch (const std::bad_alloc&) {
        return make_error("out of memory for a snapshot of " + std::to_string(n_tokens) +
                          " positions");
    }
    const size_t block = kv_block_bytes(n_tokens);
    if (block == 0) return snap;
    // Each layer's K (and V) rows of [begin, end) are one contiguous run of its cache block;
    // the snapshot stores them back to back.
    const size_t first = kv_block_bytes(begin);
    for (size_t i = 0; i < kv_where_.size(); ++i) {
        const auto [buf, off] = kv_where_[i];
        HEARTH_TRY(vk::download(device(), *buf, off + first, block, snap.data.data() + i * block));
    }
    return snap;
}

Status VulkanSession::restore(const KVSnapshot& snap) {
    HEARTH_TRY(check_restore(snap, hp().n_layer, hp().kv_dim(), n_ctx_, n_valid_));

    const size_t elems = static_cast<size_t>(snap.n_tokens) * static_cast<size_t>(snap.row_elems);
    const size_t block = elems * 2;
    const size_t first = kv_block_bytes(snap.pos);
    n_valid_ = 0;  // until the copy succeeds
    if (block == 0) {
        n_valid_ = snap.pos;
        return Status::success();
    }
    auto up =
        vk::Uploader::create(device(), std::min<uint64_t>(block * kv_where_.size(), 64ull << 20));
    if (!up) return up.error();
    std::vector<uint16_t> half;
    for (size_t i = 0; i < kv_where_.size(); ++i) {
        const auto [buf, off] = kv_where_[i];
        const void* src = nullptr;
        if (snap.dtype == KVDType::F16) {
            src = snap.data.data() + i * block;
        } else {
            half.resize(elems);
            const uint8_t* f = snap.data.data() + i * elems * sizeof(float);
            for (size_t e = 0; e < elems; ++e) {
                float v;
                std::memcpy(&v, f + e * sizeof(float), sizeof v);
                half[e] = fp32_to_fp16(v);
            }
            src = half.data();
        }
        // upload() copies `src` before returning, so `half` can be refilled.
        HEARTH_TRY((*up)->upload(src, block, *buf, off + first));
    }
    HEARTH_TRY((*up)->finish());
    n_valid_ = snap.pos + snap.n_tokens;
    return Status::success();
}

class VulkanBackend final : public Backend {
  public:
    explicit VulkanBackend(std::shared_ptr<Shared> shared, VulkanBackendStats stats)
        : shared_(std::move(shared)), stats_(std::move(stats)) {}

    BackendInfo info() const override { return {"vulkan", shared_->device->name()}; }
    Expected<std::unique_ptr<BackendSession>> create_session(int32_t n_ctx) override {
        return VulkanSession::create(shared_, n_ctx);
    }
    const VulkanBackendStats& stats() const { return stats_; }

  private:
    std::shared_ptr<Shared> shared_;
    VulkanBackendStats stats_;
};

}  // namespace

Expected<std::unique_ptr<Backend>> make_vulkan_backend(std::shared_ptr<const Model> model,
                                                       const VulkanOptions& options) {
    if (!model) return make_error("vulkan: no model");
    const auto t0 = std::chrono::steady_clock::now();
    const Hparams& hp = model->hparams();
    if (hp.head_dim % 2 != 0)
        return make_error("vulkan: head_dim " + std::to_string(hp.head_dim) + " is odd");
    auto check_type = [](const TensorView& t) -> Status {
        if (t.present() && !vk::vulkan_supports_type(t.type))
            return make_error("vulkan: tensor '" + std::string(t.name) +
                              "' has a type the Vulkan "
                              "kernels do not read");
        return Status::success();
    };
    HEARTH_TRY(check_type(model->token_embd()));
    HEARTH_TRY(check_type(model->output()));
    for (const LayerWeights& l : model->layers())
        for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
            HEARTH_TRY(check_type(*t));

    auto shared = std::make_shared<Shared>();
    shared->model = model;
    shared->options = options;
    auto context = acquire_device(options.device);
    if (!context) return context.error();
    shared->context = std::move(*context);
    shared->device = shared->context->device.get();
    shared->pipelines = shared->context->pipelines.get();
    shared->config = shared->context->config;

    vk::UploadOptions uopts;
    uopts.progress = options.progress;
    uopts.max_binding_bytes = options.max_binding_bytes;
    auto weights = vk::DeviceModel::upload(*shared->device, *model, uopts);
    if (!weights) return weights.error();
    shared->weights = std::move(*weights);

    VulkanBackendStats stats;
    const vk::Device& d = *shared->device;
    stats.device = d.name();
    stats.driver = d.driver();
    stats.device_index = d.index();
    stats.weight_bytes = shared->weights->bytes();
    stats.split_matrices = shared->weights->split_matrices();
    stats.upload_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats.subgroup_size = d.caps().subgroup_size;
    stats.subgroup_arithmetic = shared->config.subgroup;
    stats.cooperative_matrix = shared->config.matmul_coopmat;
    return std::unique_ptr<Backend>(new VulkanBackend(std::move(shared), std::move(stats)));
}

const VulkanBackendStats* vulkan_backend_stats(const Backend& backend) {
    const auto* vb = dynamic_cast<const VulkanBackend*>(&backend);
    return vb ? &vb->stats() : nullptr;
}

Expected<std::vector<vk::DeviceInfo>> list_vulkan_devices() {
    return vk::list_devices();
}

std::string describe_vulkan_devices() {
    auto list = vk::list_devices();
    if (!list) return list.error().message;
    if (list->empty()) return "no Vulkan device";
    std::string out;
    for (const vk::DeviceInfo& d : *list) {
        out += std::to_string(d.index) + ": " + d.name + " (" + d.type + ", Vulkan " +
               vk::api_version_string(d.api_version) + ", " +
               vk::format_bytes(d.device_local_bytes);
        if (d.subgroup_size) out += ", subgroup " + std::to_string(d.subgroup_size);
        out += ")";
        if (!d.usable) out += " unusable: " + d.unusable_reason;
        out += "\n";
    }
    return out;
}

}  // namespace hearth
