#include "vulkan/ops.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>

#include "hearth_shader_features.h"

namespace hearth::vk {

bool vulkan_supports_type(GGMLType type) {
    return type_suffix(type) != nullptr;
}

const char* type_suffix(GGMLType type) {
    switch (type) {
        case GGMLType::F32:
            return "f32";
        case GGMLType::F16:
            return "f16";
        case GGMLType::BF16:
            return "bf16";
        case GGMLType::Q8_0:
            return "q8_0";
        case GGMLType::Q4_0:
            return "q4_0";
        case GGMLType::Q4_K:
            return "q4_k";
        case GGMLType::Q5_K:
            return "q5_k";
        case GGMLType::Q6_K:
            return "q6_k";
        default:
            return nullptr;
    }
}

bool KernelConfig::coopmat_supported(const Device& device) {
    const DeviceCaps& c = device.caps();
    // The NV extension's 16x16x16 f16 fragments, in subgroups of 32.
    return HEARTH_GLSLC_NV_COOPMAT && c.cooperative_matrix_nv && c.shader_float16 &&
           c.subgroup_size == 32 && c.max_workgroup_invocations >= 128;
}

KernelConfig KernelConfig::for_device(const Device& device) {
    const DeviceCaps& c = device.caps();
    KernelConfig k;
    k.sg_min = std::max<uint32_t>(1, c.min_subgroup_size);
    k.subgroup = c.subgroup_arithmetic;
    k.max_shared = c.max_shared_memory;
    if (c.type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        // CPU implementations (lavapipe) run a workgroup as a loop over SIMD lanes on one
        // thread: small workgroups and few splits keep barriers cheap and all cores busy,
        // and rolled loops keep their LLVM compile times in seconds.
        k.compact_loops = true;
        k.matvec_wg = 16;
        k.matvec_rows = 16;
        k.matmul_tiled = false;
        k.matmul_bm = 64;
        k.matmul_bn = 16;
        k.matmul_tm = 8;
        k.matmul_tn = 4;
        k.norm_wg = 64;
        k.elem_wg = 64;
        k.attn_wg = 64;
        k.attn_target_groups = 4;
    } else {
        k.matvec_wg = 128;
        k.matvec_rows = 2;
        k.matmul_bm = 64;
        k.matmul_bn = 64;
        k.matmul_tm = 4;
        k.matmul_tn = 4;
        k.norm_wg = 256;
        k.elem_wg = 256;
        k.attn_wg = 128;
        // Enough workgroups to cover a large GPU twice over; a decode step at long context
        // then gives each split a tile or two of keys.
        k.attn_target_groups = 512;
        k.attn_max_splits = 256;
    }
    // Tensor cores for prefill: opt-in (HEARTH_VULKAN_COOPMAT=1) until the kernel has been
    // validated on hardware; vulkan_ops_test checks it wherever it is supported.
    const char* coopmat_env = std::getenv("HEARTH_VULKAN_COOPMAT");
    k.matmul_coopmat = coopmat_supported(device) && coopmat_env && std::string(coopmat_env) == "1";
    // Workgroup sizes must fit the device (all are powers of two for the tree fallback).
    const uint32_t max_wg = std::max<uint32_t>(32, c.max_workgroup_invocations);
    k.matvec_wg = std::min(k.matvec_wg, max_wg);
    k.norm_wg = std::min(k.norm_wg, max_wg);
    k.elem_wg = std::min(k.elem_wg, max_wg);
    k.attn_wg = std::min(k.attn_wg, max_wg);
    return k;
}

uint64_t attention_partial_floats(uint32_t n_tokens, uint32_t n_head, uint32_t head_dim,
                                  uint32_t n_split) {
    return static_cast<uint64_t>(n_split) * n_tokens * n_head * (head_dim + 2);
}

void OpRecorder::barrier() {
    VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    b.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                      VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    fn.vkCmdPipelineBarrier(cb_,
                            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                            0, 1, &b, 0, nullptr, 0, nullptr);
}

void OpRecorder::copy(BufferRange src, BufferRange dst) {
    VkBufferCopy region{src.offset, dst.offset, std::min(src.size, dst.size)};
    fn.vkCmdCopyBuffer(cb_, src.buffer, dst.buffer, 1, &region);
}

Status OpRecorder::dispatch(std::string_view shader, std::span<const uint32_t> spec,
                            std::span<const BufferRange> buffers, const void* push,
                            uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (gx == 0 || gy == 0 || gz == 0) return Status::success();
    const auto& limit = pipelines_.device().caps().max_workgroup_count;
    if (gx > limit[0] || gy > limit[1] || gz > limit[2])
        return make_error("vulkan: " + std::string(shader) + " needs " + std::to_string(gx) + "x" +
                          std::to_string(gy) + "x" + std::to_string(gz) +
                          " workgroups, more than the device dispatches");
    auto p = pipelines_.get(shader, static_cast<uint32_t>(buffers.size()), push_bytes, spec);
    if (!p) return p.error();
    auto set = arena_.bind(**p, buffers);
    if (!set) return set.error();
    fn.vkCmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, (*p)->pipeline);
    fn.vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, (*p)->layout, 0, 1, &*set, 0,
                               nullptr);
    if (push_bytes > 0)
        fn.vkCmdPushConstants(cb_, (*p)->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    fn.vkCmdDispatch(cb_, gx, gy, gz);
    return Status::success();
}

Status OpRecorder::dispatch_flat(std::string_view shader, std::span<const uint32_t> spec,
                                 std::span<const BufferRange> buffers, const void* push,
                                 uint32_t push_bytes, uint64_t groups) {
    const uint64_t max_x = pipelines_.device().caps().max_workgroup_count[0];
    const uint64_t gx = std::min<uint64_t>(groups, max_x);
    const uint64_t gy = (groups + gx - 1) / std::max<uint64_t>(gx, 1);
    return dispatch(shader, spec, buffers, push, push_bytes, static_cast<uint32_t>(gx),
                    static_cast<uint32_t>(gy), 1);
}

namespace {

template <class T>
uint32_t push_size(const T&) {
    return static_cast<uint32_t>(sizeof(T));
}

uint32_t ceil_div(uint64_t a, uint64_t b) {
    return static_cast<uint32_t>((a + b - 1) / b);
}

Status check_weight(const DeviceTensor& w, const char* op) {
    if (!vulkan_supports_type(w.type))
        return make_error(std::string("vulkan: ") + op + ": weight type " +
                          std::to_string(static_cast<uint32_t>(w.type)) + " is not supported");
    if (w.rows <= 0 || w.cols <= 0 || w.rows > UINT32_MAX || w.cols > UINT32_MAX)
        return make_error(std::string("vulkan: ") + op + ": bad weight shape");
    return Status::success();
}

}  // namespace

namespace {
struct MatvecPush {
    uint32_t K, flags, M[3], offset[3];
};
}  // namespace

bool OpRecorder::fusable(std::span<const DeviceTensor* const> ws) const {
    if (ws.empty()) return false;
    VkDeviceSize lo = ws[0]->range.offset, hi = lo;
    for (const DeviceTensor* w : ws) {
        if (w->range.buffer != ws[0]->range.buffer || w->type != ws[0]->type ||
            w->cols != ws[0]->cols)
            return false;
        lo = std::min(lo, w->range.offset);
        hi = std::max(hi, w->range.offset + w->range.size);
    }
    // Matrices are addressed from the lowest one in 16-byte units or finer.
    for (const DeviceTensor* w : ws)
        if ((w->range.offset - lo) % 16 != 0) return false;
    return hi - lo <= pipelines_.device().caps().max_storage_buffer_range;
}

Status OpRecorder::matvec(const DeviceTensor& w, BufferRange x, BufferRange y, BufferRange bias,
                          bool accumulate) {
    const MatvecOut out{&w, y, bias, accumulate};
    return matvec_multi(std::span(&out, 1), x);
}

Status OpRecorder::matvec_multi(std::span<const MatvecOut> outs, BufferRange x) {
    if (outs.empty() || outs.size() > 3) return make_error("vulkan: matvec of 1 to 3 matrices");
    std::array<const DeviceTensor*, 3> ws{};
    for (size_t i = 0; i < outs.size(); ++i) {
        ws[i] = outs[i].w;
        HEARTH_TRY(check_weight(*ws[i], "matvec"));
    }
    if (!fusable(std::span(ws.data(), outs.size())))
        return make_error("vulkan: matvec of matrices that do not share a binding");
    VkDeviceSize lo = ws[0]->range.offset, hi = lo;
    for (size_t i = 0; i < outs.size(); ++i) {
        lo = std::min(lo, ws[i]->range.offset);
        hi = std::max(hi, ws[i]->range.offset + ws[i]->range.size);
    }
    MatvecPush pc{static_cast<uint32_t>(ws[0]->cols), 0, {0, 0, 0}, {0, 0, 0}};
    std::array<BufferRange, 8> bufs{};
    bufs[0] = {ws[0]->range.buffer, lo, hi - lo};
    bufs[1] = x;
    uint64_t groups = 0;
    for (size_t i = 0; i < 3; ++i) {
        const MatvecOut& o = outs[i < outs.size() ? i : 0];
        const bool present = i < outs.size();
        bufs[2 + i] = o.y;
        bufs[5 + i] = o.bias.valid() ? o.bias : o.y;
        if (!present) continue;
        pc.M[i] = static_cast<uint32_t>(o.w->rows);
        pc.offset[i] = static_cast<uint32_t>(o.w->range.offset - lo);
        pc.flags |= (o.bias.valid() ? 1u : 0u) << (2 * i);
        pc.flags |= (o.accumulate ? 2u : 0u) << (2 * i);
        groups += ceil_div(o.w->rows, cfg_.matvec_rows);
    }
    const std::string shader =
        std::string("matvec_") + type_suffix(ws[0]->type) + (cfg_.subgroup ? "_sg" : "");
    const std::array<uint32_t, 3> spec{cfg_.matvec_wg, cfg_.sg_min, cfg_.matvec_rows};
    return dispatch_flat(shader, spec, bufs, &pc, push_size(pc), groups);
}

Status OpRecorder::matvec_swiglu(const DeviceTensor& gate, const DeviceTensor& up, BufferRange x,
                                 BufferRange y) {
    HEARTH_TRY(check_weight(gate, "matvec_swiglu"));
    const std::array<const DeviceTensor*, 2> ws{&gate, &up};
    if (!fusable(ws) || gate.rows != up.rows)
        return make_error("vulkan: matvec_swiglu of matrices that do not share a binding");
    const VkDeviceSize lo = std::min(gate.range.offset, up.range.offset);
    const VkDeviceSize hi =
        std::max(gate.range.offset + gate.range.size, up.range.offset + up.range.size);
    MatvecPush pc{static_cast<uint32_t>(gate.cols),
                  0,
                  {static_cast<uint32_t>(gate.rows), 0, 0},
                  {static_cast<uint32_t>(gate.range.offset - lo),
                   static_cast<uint32_t>(up.range.offset - lo), 0}};
    const std::array<BufferRange, 8> bufs{
        BufferRange{gate.range.buffer, lo, hi - lo}, x, y, y, y, y, y, y};
    const std::string shader =
        std::string("matvec_swiglu_") + type_suffix(gate.type) + (cfg_.subgroup ? "_sg" : "");
    const std::array<uint32_t, 3> spec{cfg_.matvec_wg, cfg_.sg_min, cfg_.matvec_rows};
    return dispatch_flat(shader, spec, bufs, &pc, push_size(pc),
                         ceil_div(gate.rows, cfg_.matvec_rows));
}

Status OpRecorder::matmul(const DeviceTensor& w, BufferRange x, uint32_t x_stride, BufferRange y,
                          uint32_t y_stride, uint32_t n, BufferRange bias, bool accumulate) {
    HEARTH_TRY(check_weight(w, "matmul"));
    struct {
        uint32_t M, N, K, x_stride, y_stride, flags;
    } pc{static_cast<uint32_t>(w.rows),
         n,
         static_cast<uint32_t>(w.cols),
         x_stride,
         y_stride,
         (bias.valid() ? 1u : 0u) | (accumulate ? 2u : 0u)};
    const std::array<BufferRange, 4> bufs{w.range, x, y, bias.valid() ? bias : y};
    if (cfg_.matmul_coopmat) {
        const std::array<uint32_t, 2> spec{128, cfg_.sg_min};
        return dispatch(std::string("matmul_coopmat_") + type_suffix(w.type), spec, bufs, &pc,
                        push_size(pc), ceil_div(w.rows, 64), ceil_div(n, 64), 1);
    }
    const uint32_t wg = (cfg_.matmul_bm / cfg_.matmul_tm) * (cfg_.matmul_bn / cfg_.matmul_tn);
    const std::array<uint32_t, 6> spec{
        wg, cfg_.sg_min, cfg_.matmul_bm, cfg_.matmul_bn, cfg_.matmul_tm, cfg_.matmul_tn};
    const std::string shader =
        std::string(cfg_.matmul_tiled ? "matmul_" : "matmul_direct_") + type_suffix(w.type);
    return dispatch(shader, spec, bufs, &pc, push_size(pc), ceil_div(w.rows, cfg_.matmul_bm),
                    ceil_div(n, cfg_.matmul_bn), 1);
}

Status OpRecorder::linear(const DeviceTensor& w, BufferRange x, uint32_t x_stride, BufferRange y,
                          uint32_t y_stride, uint32_t n, BufferRange bias, bool accumulate) {
    if (n == 1) return matvec(w, x, y, bias, accumulate);
    return matmul(w, x, x_stride, y, y_stride, n, bias, accumulate);
}

Status OpRecorder::get_rows(const DeviceTensor& w, BufferRange ids, BufferRange out, uint32_t n,
                            int64_t row_begin) {
    HEARTH_TRY(check_weight(w, "get_rows"));
    struct {
        uint32_t K, n_rows, row_begin;
    } pc{static_cast<uint32_t>(w.cols), static_cast<uint32_t>(w.rows),
         static_cast<uint32_t>(row_begin)};
    const std::array<uint32_t, 2> spec{cfg_.elem_wg, cfg_.sg_min};
    const std::array<BufferRange, 3> bufs{w.range, ids, out};
    return dispatch(std::string("get_rows_") + type_suffix(w.type), spec, bufs, &pc, push_size(pc),
                    ceil_div(ceil_div(w.cols, 8), cfg_.elem_wg), n, 1);
}

Status OpRecorder::rmsnorm(BufferRange x, uint32_t x_stride, BufferRange w, BufferRange y,
                           uint32_t y_stride, uint32_t n_rows, uint32_t n, float eps) {
    struct {
        uint32_t n, x_stride, y_stride;
        float eps;
    } pc{n, x_stride, y_stride, eps};
    const std::array<uint32_t, 2> spec{cfg_.norm_wg, cfg_.sg_min};
    const std::array<BufferRange, 3> bufs{x, w, y};
    return dispatch(cfg_.subgroup ? "rmsnorm_sg" : "rmsnorm", spec, bufs, &pc, push_size(pc),
                    n_rows, 1, 1);
}

Status OpRecorder::rope(const RopeArgs& a) {
    if (a.head_dim == 0 || a.head_dim % 2 != 0) return make_error("vulkan: rope: odd head_dim");
    struct {
        uint32_t n_head, n_head_kv, head_dim, neox, q_stride, kv_stride, cache_stride;
    } pc{a.n_head,   a.n_head_kv, a.head_dim,    a.neox ? 1u : 0u,
         a.q_stride, a.kv_stride, a.cache_stride};
    const uint64_t items = static_cast<uint64_t>(a.n_head) * a.head_dim / 2 +
                           static_cast<uint64_t>(a.n_head_kv) * a.head_dim * 3 / 2;
    const std::array<uint32_t, 2> spec{cfg_.elem_wg, cfg_.sg_min};
    const std::array<BufferRange, 7> bufs{a.q, a.k, a.v, a.inv_freq, a.step, a.k_cache, a.v_cache};
    return dispatch("rope", spec, bufs, &pc, push_size(pc), ceil_div(items, cfg_.elem_wg),
                    a.n_tokens, 1);
}

Status OpRecorder::attention(const AttentionArgs& a) {
    if (a.head_dim == 0 || a.n_head_kv == 0 || a.n_head % a.n_head_kv != 0)
        return make_error("vulkan: attention: bad head configuration");
    const uint32_t group = a.n_head / a.n_head_kv;
    uint32_t br = a.rows_per_group;
    if (br == 0) br = a.n_tokens == 1 ? std::min<uint32_t>(group, 16) : cfg_.attn_br;
    uint32_t bc = cfg_.attn_bc;
    // Shared memory: Q block, one K/V tile (padded rows), scores and three per-row values.
    auto shared_bytes = [&](uint32_t r, uint32_t c) {
        return 4ull * (r * a.head_dim + c * (a.head_dim + 1) + r * c + 3 * r) +
               4ull * cfg_.attn_wg;  // room for the compiler's own scratch
    };
    while (shared_bytes(br, bc) > cfg_.max_shared && bc > 8) bc /= 2;
    while (shared_bytes(br, bc) > cfg_.max_shared && br > 1) br /= 2;
    if (shared_bytes(br, bc) > cfg_.max_shared)
        return make_error("vulkan: attention with head_dim " + std::to_string(a.head_dim) +
                          " does not fit the device's shared memory");
    const uint32_t n_split = std::max<uint32_t>(1, a.n_split);

    struct {
        uint32_t n_tokens, n_head, n_head_kv, q_stride, o_stride, kv_stride, n_split;
        float scale;
    } pc{a.n_tokens, a.n_head, a.n_head_kv, a.q_stride, a.o_stride, a.kv_stride, n_split, a.scale};
    const std::array<uint32_t, 5> spec{cfg_.attn_wg, cfg_.sg_min, a.head_dim, br, bc};
    const BufferRange part = n_split > 1 ? a.partial : a.out;
    if (n_split > 1 &&
        (!part.valid() ||
         part.size < 4 * attention_partial_floats(a.n_tokens, a.n_head, a.head_dim, n_split)))
        return make_error("vulkan: attention: split-K scratch buffer too small");
    const std::array<BufferRange, 6> bufs{a.q, a.k_cache, a.v_cache, a.out, a.step, part};
    HEARTH_TRY(dispatch(cfg_.compact_loops ? "attention_compact" : "attention", spec, bufs, &pc,
                        push_size(pc), ceil_div(static_cast<uint64_t>(a.n_tokens) * group, br),
                        a.n_head_kv, n_split));
    if (n_split == 1) return Status::success();

    barrier();
    struct {
        uint32_t n_tokens, n_head, head_dim, o_stride, n_split, tile;
    } cpc{a.n_tokens, a.n_head, a.head_dim, a.o_stride, n_split, bc};
    const std::array<uint32_t, 2> cspec{std::min<uint32_t>(cfg_.norm_wg, 128), cfg_.sg_min};
    const std::array<BufferRange, 3> cbufs{a.partial, a.out, a.step};
    return dispatch_flat("attention_combine", cspec, cbufs, &cpc, push_size(cpc),
                         static_cast<uint64_t>(a.n_tokens) * a.n_head);
}

Status OpRecorder::silu_mul(BufferRange g, BufferRange u, BufferRange y, uint32_t n) {
    struct {
        uint32_t n;
    } pc{n};
    const std::array<uint32_t, 2> spec{cfg_.elem_wg, cfg_.sg_min};
    const std::array<BufferRange, 3> bufs{g, u, y};
    return dispatch_flat("silu_mul", spec, bufs, &pc, push_size(pc), ceil_div(n, cfg_.elem_wg));
}

Status OpRecorder::add(BufferRange a, BufferRange b, BufferRange y, uint32_t n) {
    struct {
        uint32_t n;
    } pc{n};
    const std::array<uint32_t, 2> spec{cfg_.elem_wg, cfg_.sg_min};
    const std::array<BufferRange, 3> bufs{a, b, y};
    return dispatch_flat("add", spec, bufs, &pc, push_size(pc), ceil_div(n, cfg_.elem_wg));
}

}  // namespace hearth::vk
