// The qwen2 / llama forward pass on Vulkan: the model's weights on the device and the
// recording of one evaluation step from the ops of ops.h.
//
// Per layer, for the T tokens of a step at positions pos .. pos+T-1 (pos in StepParams):
//   h    = rmsnorm(x) * attn_norm
//   q    = Wq h (+ bq), k = Wk h (+ bk), v = Wv h (+ bv)
//   q    = rope(q);  Kcache[pos+t] = f16(rope(k));  Vcache[pos+t] = f16(v)
//   a    = attention(q, Kcache, Vcache)            (causal, GQA, split-K when few rows)
//   x   += Wo a                                     (residual fused into the matmul)
//   h    = rmsnorm(x) * ffn_norm
//   g    = silu(Wgate h) * (Wup h)
//   x   += Wdown g
// then logits = Wout (rmsnorm(x) * output_norm) for the last token or for every token.
// T == 1 uses matrix-vector kernels (decode), T > 1 the tiled matmul (prefill).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model.h"
#include "result.h"
#include "vulkan/device.h"
#include "vulkan/memory.h"
#include "vulkan/ops.h"

namespace hearth::vk {

// A weight matrix on the device, split into row ranges that each fit one descriptor
// binding (maxStorageBufferRange is 128 MiB on some devices, less than a large
// vocabulary's embedding). Almost always a single part.
struct DeviceWeight {
    GGMLType type = GGMLType::F32;
    int64_t rows = 0;
    int64_t cols = 0;
    struct Part {
        int64_t row_begin = 0;
        DeviceTensor tensor;
    };
    std::vector<Part> parts;
};

struct DeviceLayer {
    BufferRange attn_norm;  // (n_embd) f32
    DeviceWeight wq, wk, wv, wo;
    BufferRange bq, bk, bv;  // f32, invalid when the model has no QKV bias
    BufferRange ffn_norm;    // (n_embd) f32
    DeviceWeight w_gate, w_up, w_down;
};

struct UploadOptions {
    // Called as weights reach the device: (bytes done, bytes in total).
    std::function<void(uint64_t done, uint64_t total)> progress;
    // Largest binding a weight part may span; 0: the device's maxStorageBufferRange.
    uint64_t max_binding_bytes = 0;
};

// The weights of one Model in device-local memory, packed into a few large buffers.
class DeviceModel {
  public:
    // Checks that the weights fit the device, then uploads them (staged unless the device
    // memory is host-mapped).
    static Expected<std::unique_ptr<DeviceModel>> upload(Device& device, const Model& model,
                                                         const UploadOptions& options);

    const Hparams& hparams() const { return hp_; }
    const DeviceWeight& token_embd() const { return token_embd_; }
    const DeviceWeight& output() const { return output_; }
    BufferRange output_norm() const { return output_norm_; }
    const DeviceLayer& layer(int32_t i) const { return layers_[static_cast<size_t>(i)]; }
    BufferRange inv_freq() const { return inv_freq_; }  // rope frequencies, head_dim / 2 f32

    uint64_t bytes() const { return bytes_; }
    double upload_seconds() const { return upload_seconds_; }
    // Matrices split into more than one row part.
    uint32_t split_matrices() const { return split_matrices_; }

  private:
    DeviceModel() = default;

    Hparams hp_;
    std::vector<std::unique_ptr<Buffer>> buffers_;
    DeviceWeight token_embd_;
    DeviceWeight output_;
    BufferRange output_norm_;
    std::vector<DeviceLayer> layers_;
    BufferRange inv_freq_;
    uint64_t bytes_ = 0;
    double upload_seconds_ = 0.0;
    uint32_t split_matrices_ = 0;
};

// A session's device buffers, as the forward pass binds them. Activations hold up to
// n_batch token rows; logits up to n_logit_rows rows of n_vocab.
struct ForwardBuffers {
    uint32_t n_batch = 0;
    uint32_t n_logit_rows = 0;
    uint32_t n_ctx = 0;
    BufferRange ids;                   // int32 [n_batch]       token ids of the step (device copy)
    BufferRange step;                  // StepParams            (device copy)
    BufferRange x;                     // [n_batch][n_embd]     residual stream
    BufferRange h;                     // [n_batch][n_embd]     normed input of a block
    BufferRange q;                     // [n_batch][q_dim]
    BufferRange k;                     // [n_batch][kv_dim]
    BufferRange v;                     // [n_batch][kv_dim]
    BufferRange attn;                  // [n_batch][q_dim]
    BufferRange gate;                  // [n_batch][n_ff]
    BufferRange up;                    // [n_batch][n_ff]
    BufferRange last;                  // [n_embd]              the last token's residual row
    BufferRange logits;                // [n_logit_rows][n_vocab]
    BufferRange partial;               // split-K attention scratch
    std::vector<BufferRange> k_cache;  // per layer: [n_ctx][kv_dim] f16
    std::vector<BufferRange> v_cache;
};

enum class LogitsMode {
    None,  // an intermediate chunk of a long prefill: no output head at all
    Last,  // logits of the last token only
    All,   // logits of every token (n_tokens <= n_logit_rows)
};

// Split-K factor for the attention of a step of n_tokens (see shaders/attention.comp).
uint32_t attention_splits(const KernelConfig& cfg, const Hparams& hp, uint32_t n_tokens);

// Records one forward step of n_tokens (<= n_batch) tokens whose ids and position are
// already in bufs.ids / bufs.step by the time the commands run.
Status record_forward(OpRecorder& rec, const DeviceModel& model, const ForwardBuffers& bufs,
                      uint32_t n_tokens, LogitsMode mode);

}  // namespace hearth::vk
