// Recording the engine's operations into a Vulkan command buffer.
//
// Each op binds its pipeline, allocates and writes its descriptor set (once, at record
// time), pushes its constants and dispatches; barrier() separates dependent ops. Nothing
// here waits for the device: callers submit the command buffer. Every op states what it
// computes next to its declaration; the kernels are in shaders/<op>.comp.
//
// Activations are f32, row-major: a batch of n rows of `stride` floats. Weights are
// DeviceTensors in their GGUF block format. The KV cache is f16.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <span>
#include <string>

#include "ggml_types.h"
#include "result.h"
#include "vulkan/device.h"
#include "vulkan/memory.h"
#include "vulkan/pipeline.h"

namespace hearth::vk {

// Per-step parameters the kernels read from a small device buffer, so one recording of a
// decode step serves every position. Mirrors StepParams in shaders/common.glsl.
struct StepParams {
    uint32_t pos = 0;  // position of the step's first token
    uint32_t reserved[3] = {0, 0, 0};
};

// A weight matrix (rows x cols, GGUF ne = {cols, rows}) on the device.
struct DeviceTensor {
    GGMLType type = GGMLType::F32;
    int64_t rows = 0;
    int64_t cols = 0;
    BufferRange range;
};

// Whether the Vulkan kernels read weights of this type, and the shader suffix ("q4_k").
bool vulkan_supports_type(GGMLType type);
const char* type_suffix(GGMLType type);

// Workgroup shapes and variant choices for one device.
struct KernelConfig {
    uint32_t sg_min = 8;         // specialisation constant 1 of every kernel
    bool subgroup = false;       // use the *_sg variants (subgroup arithmetic)
    bool compact_loops = false;  // use the *_compact variants (loops kept rolled)
    uint32_t matvec_wg = 64;
    uint32_t matvec_rows = 2;  // rows per matvec workgroup
    // matmul: BM weight rows x BN tokens per workgroup, TM x TN outputs per invocation;
    // tiled through shared memory (matmul.comp) or direct (matmul_direct.comp, for CPUs).
    // matmul_coopmat overrides both with tensor cores (matmul_coopmat.comp, 64 x 64 tiles,
    // f16 inputs) where the device and the build support GL_NV_cooperative_matrix and
    // HEARTH_VULKAN_COOPMAT=1 asks for it.
    bool matmul_coopmat = false;
    bool matmul_tiled = true;
    uint32_t matmul_bm = 64;
    uint32_t matmul_bn = 64;
    uint32_t matmul_tm = 4;
    uint32_t matmul_tn = 4;
    uint32_t norm_wg = 64;  // rmsnorm, attention_combine
    uint32_t elem_wg = 64;  // element-wise kernels
    uint32_t attn_wg = 64;
    uint32_t attn_bc = 32;  // keys per attention tile
    uint32_t attn_br = 16;  // rows per attention workgroup in prefill
    // Split-K: attention is split over keys until about this many workgroups run (decode
    // has only n_head_kv row blocks), at most attn_max_splits ways.
    uint32_t attn_target_groups = 4;
    uint32_t attn_max_splits = 64;
    uint32_t max_shared = 32768;

    static KernelConfig for_device(const Device& device);
    // Whether the device and this build can run matmul_coopmat.
    static bool coopmat_supported(const Device& device);
};

struct AttentionArgs {
    BufferRange q;        // [n_tokens][q_stride] f32, head h at h * head_dim
    BufferRange k_cache;  // [n_ctx][kv_stride] f16 of one layer
    BufferRange v_cache;
    BufferRange out;   // [n_tokens][o_stride] f32
    BufferRange step;  // StepParams
    BufferRange
        partial;  // split-K scratch, attention_partial_floats() floats; unused if n_split == 1
    uint32_t n_tokens = 1;
    uint32_t n_head = 1;
    uint32_t n_head_kv = 1;
    uint32_t head_dim = 0;
    uint32_t q_stride = 0;
    uint32_t o_stride = 0;
    uint32_t kv_stride = 0;
    uint32_t n_split = 1;
    uint32_t rows_per_group = 0;  // 0: KernelConfig's choice
    float scale = 1.0f;
};

// Floats of split-K scratch attention() needs.
uint64_t attention_partial_floats(uint32_t n_tokens, uint32_t n_head, uint32_t head_dim,
                                  uint32_t n_split);

class OpRecorder {
  public:
    OpRecorder(PipelineCache& pipelines, DescriptorArena& arena, const KernelConfig& config,
               VkCommandBuffer cb)
        : pipelines_(pipelines), arena_(arena), cfg_(config), cb_(cb) {}

    const KernelConfig& config() const { return cfg_; }

    // Makes every earlier shader write visible to later shaders (and transfers).
    void barrier();

    // y[r] = W[r, :] . x (+ bias[r]) (+ y[r] when accumulate): one vector (decode).
    Status matvec(const DeviceTensor& w, BufferRange x, BufferRange y, BufferRange bias,
                  bool accumulate);
    // Up to three matvec() of one input in one dispatch. Possible when fusable(): the
    // weights share type, column count and buffer, within one binding's reach.
    struct MatvecOut {
        const DeviceTensor* w = nullptr;
        BufferRange y;
        BufferRange bias;
        bool accumulate = false;
    };
    Status matvec_multi(std::span<const MatvecOut> outs, BufferRange x);
    // y[r] = silu(Wgate[r, :] . x) * (Wup[r, :] . x): both halves of the feed-forward
    // gate in one dispatch (requires fusable({gate, up})).
    Status matvec_swiglu(const DeviceTensor& gate, const DeviceTensor& up, BufferRange x,
                         BufferRange y);
    bool fusable(std::span<const DeviceTensor* const> ws) const;
    // Y[i, r] = W[r, :] . X[i, :] (+ bias[r]) (+ Y[i, r]) for i in [0, n): a batch (prefill).
    Status matmul(const DeviceTensor& w, BufferRange x, uint32_t x_stride, BufferRange y,
                  uint32_t y_stride, uint32_t n, BufferRange bias, bool accumulate);
    // matvec when n == 1 (rows contiguous), else matmul.
    Status linear(const DeviceTensor& w, BufferRange x, uint32_t x_stride, BufferRange y,
                  uint32_t y_stride, uint32_t n, BufferRange bias, bool accumulate);

    // out[i, :] = W[ids[i] - row_begin, :] as f32, i in [0, n) (ids: int32), for the ids
    // that fall in [row_begin, row_begin + w.rows); other rows of `out` are left alone.
    Status get_rows(const DeviceTensor& w, BufferRange ids, BufferRange out, uint32_t n,
                    int64_t row_begin = 0);

    // y[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * w, for n_rows rows of `n`.
    Status rmsnorm(BufferRange x, uint32_t x_stride, BufferRange w, BufferRange y,
                   uint32_t y_stride, uint32_t n_rows, uint32_t n, float eps);

    // For the n_tokens rows of a step, token t at position step.pos + t: rotates q in
    // place, stores rotated k and plain v as f16 into the cache rows of their positions
    // (see shaders/rope.comp). inv_freq holds head_dim/2 frequencies.
    struct RopeArgs {
        BufferRange q, k, v;  // f32 rows: q_stride / kv_stride floats apart
        BufferRange inv_freq;
        BufferRange step;
        BufferRange k_cache, v_cache;  // f16 rows, cache_stride elements apart
        uint32_t n_tokens = 1, n_head = 1, n_head_kv = 1, head_dim = 0;
        uint32_t q_stride = 0, kv_stride = 0, cache_stride = 0;
        bool neox = true;
    };
    Status rope(const RopeArgs& a);

    // Causal GQA attention of n_tokens queries at positions step.pos + t over cache rows
    // [0, step.pos + n_tokens) (see shaders/attention.comp).
    Status attention(const AttentionArgs& a);

    // y = silu(g) * u, n elements.
    Status silu_mul(BufferRange g, BufferRange u, BufferRange y, uint32_t n);
    // y = a + b, n elements.
    Status add(BufferRange a, BufferRange b, BufferRange y, uint32_t n);

    // Copies bytes between buffers (transfer).
    void copy(BufferRange src, BufferRange dst);

  private:
    Status dispatch(std::string_view shader, std::span<const uint32_t> spec,
                    std::span<const BufferRange> buffers, const void* push, uint32_t push_bytes,
                    uint32_t groups_x, uint32_t groups_y, uint32_t groups_z);
    // dispatch() of a 1-D count of workgroups, folded into x and y under the device limit.
    Status dispatch_flat(std::string_view shader, std::span<const uint32_t> spec,
                         std::span<const BufferRange> buffers, const void* push,
                         uint32_t push_bytes, uint64_t groups);

    PipelineCache& pipelines_;
    DescriptorArena& arena_;
    const KernelConfig& cfg_;
    VkCommandBuffer cb_;
};

}  // namespace hearth::vk
