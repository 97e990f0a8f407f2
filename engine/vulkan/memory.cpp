#include "vulkan/memory.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace hearth::vk {

std::string format_bytes(uint64_t bytes) {
    char buf[32];
    const double b = static_cast<double>(bytes);
    if (bytes >= (1ull << 30)) {
        std::snprintf(buf, sizeof buf, "%.1f GiB", b / double(1ull << 30));
    } else if (bytes >= (1ull << 20)) {
        std::snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
    } else {
        std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
    }
    return buf;
}

Status check_device_memory(const Device& device, uint64_t bytes, const std::string& what) {
    const uint64_t heap = device.device_local_heap_bytes();
    const uint64_t budget = device.device_local_budget_bytes();
    if (bytes > heap || bytes > budget) {
        std::string msg = "vulkan: " + what + " need " + format_bytes(bytes) + ", " +
                          device.name() + " has " + format_bytes(heap);
        if (budget < heap) msg += " (" + format_bytes(budget) + " free)";
        return make_error(msg);
    }
    return Status::success();
}

namespace {

// Index of the memory type allowed by `bits` that has all `required` flags, preferring one
// that also has all `preferred` flags; -1 if none.
int find_memory_type(const VkPhysicalDeviceMemoryProperties& mp, uint32_t bits,
                     VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred) {
    int fallback = -1;
    for (uint32_t i = 0; i < mp.memoryTypeCount; ++i) {
        if (!(bits & (1u << i))) continue;
        const VkMemoryPropertyFlags f = mp.memoryTypes[i].propertyFlags;
        if ((f & required) != required) continue;
        if ((f & preferred) == preferred) return static_cast<int>(i);
        if (fallback < 0) fallback = static_cast<int>(i);
    }
    return fallback;
}

}  // namespace

Expected<std::unique_ptr<Buffer>> Buffer::create(Device& device, VkDeviceSize size, MemoryKind kind,
                                                 const std::string& what) {
    if (size == 0) size = 4;  // zero-sized buffers are invalid; a placeholder binding is not
    const DeviceCaps& caps = device.caps();
    if (caps.max_allocation_size > 0 && size > caps.max_allocation_size) {
        return make_error("vulkan: " + what + " needs one allocation of " + format_bytes(size) +
                          ", the device allows at most " + format_bytes(caps.max_allocation_size));
    }
    std::unique_ptr<Buffer> buf(new Buffer(device));
    buf->size_ = size;
    VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    info.size = size;
    info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    HEARTH_VK(fn.vkCreateBuffer(device.handle(), &info, nullptr, &buf->buffer_));

    VkMemoryRequirements req;
    fn.vkGetBufferMemoryRequirements(device.handle(), buf->buffer_, &req);
    const auto& mp = device.memory_properties();
    int type = -1;
    switch (kind) {
        case MemoryKind::DeviceLocal:
            type = find_memory_type(mp, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                    caps.unified_memory ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                              VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
                                                        : 0);
            if (type < 0) type = find_memory_type(mp, req.memoryTypeBits, 0, 0);
            break;
        case MemoryKind::Upload:
            type = find_memory_type(
                mp, req.memoryTypeBits,
                VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
            break;
        case MemoryKind::Readback:
            type = find_memory_type(
                mp, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                VK_MEMORY_PROPERTY_HOST_CACHED_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
            break;
    }
    if (type < 0) return make_error("vulkan: no memory type for " + what);
    const VkMemoryPropertyFlags flags = mp.memoryTypes[type].propertyFlags;

    VkMemoryAllocateInfo ainfo{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ainfo.allocationSize = req.size;
    ainfo.memoryTypeIndex = static_cast<uint32_t>(type);
    VkResult r = fn.vkAllocateMemory(device.handle(), &ainfo, nullptr, &buf->memory_);
    if (r != VK_SUCCESS) {
        return make_error("vulkan: allocating " + format_bytes(req.size) + " for " + what +
                          " failed (" + result_name(r) + ")");
    }
    HEARTH_VK(fn.vkBindBufferMemory(device.handle(), buf->buffer_, buf->memory_, 0));
    if (flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
        void* p = nullptr;
        HEARTH_VK(fn.vkMapMemory(device.handle(), buf->memory_, 0, VK_WHOLE_SIZE, 0, &p));
        buf->mapped_ = static_cast<uint8_t*>(p);
        buf->coherent_ = (flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) != 0;
    }
    return buf;
}

Buffer::~Buffer() {
    VkDevice d = device_.handle();
    if (buffer_) fn.vkDestroyBuffer(d, buffer_, nullptr);
    if (memory_) fn.vkFreeMemory(d, memory_, nullptr);  // unmaps implicitly
}

namespace {

// Non-coherent ranges must be aligned to nonCoherentAtomSize.
VkMappedMemoryRange atom_range(const Device& device, VkDeviceMemory memory, VkDeviceSize offset,
                               VkDeviceSize size) {
    const VkDeviceSize atom = std::max<VkDeviceSize>(1, device.caps().non_coherent_atom_size);
    VkMappedMemoryRange r{VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE};
    r.memory = memory;
    r.offset = offset / atom * atom;
    r.size = VK_WHOLE_SIZE;
    (void)size;
    return r;
}

}  // namespace

Status Buffer::flush(VkDeviceSize offset, VkDeviceSize size) {
    if (coherent_ || !mapped_) return Status::success();
    VkMappedMemoryRange r = atom_range(device_, memory_, offset, size);
    HEARTH_VK(fn.vkFlushMappedMemoryRanges(device_.handle(), 1, &r));
    return Status::success();
}

Status Buffer::invalidate(VkDeviceSize offset, VkDeviceSize size) {
    if (coherent_ || !mapped_) return Status::success();
    VkMappedMemoryRange r = atom_range(device_, memory_, offset, size);
    HEARTH_VK(fn.vkInvalidateMappedMemoryRanges(device_.handle(), 1, &r));
    return Status::success();
}

Expected<std::unique_ptr<Uploader>> Uploader::create(Device& device, VkDeviceSize staging_bytes) {
    std::unique_ptr<Uploader> up(new Uploader(device));
    auto staging = Buffer::create(device, staging_bytes, MemoryKind::Upload, "staging buffer");
    if (!staging) return staging.error();
    up->staging_ = std::move(*staging);
    auto cmd = CommandBuffer::create(device);
    if (!cmd) return cmd.error();
    up->cmd_ = std::move(*cmd);
    return up;
}

void Uploader::set_progress(Progress progress, uint64_t total) {
    progress_ = std::move(progress);
    total_ = total;
    done_ = 0;
}

Status Uploader::upload(const void* src, size_t n, const Buffer& dst, VkDeviceSize dst_offset) {
    if (dst_offset + n > dst.size())
        return make_error("vulkan: upload of " + std::to_string(n) + " bytes at offset " +
                          std::to_string(dst_offset) + " overruns a buffer of " +
                          std::to_string(dst.size()));
    const uint8_t* bytes = static_cast<const uint8_t*>(src);
    if (dst.mapped()) {
        std::memcpy(dst.mapped() + dst_offset, bytes, n);
        done_ += n;
        if (progress_) progress_(done_, total_);
        return const_cast<Buffer&>(dst).flush(dst_offset, n);
    }
    size_t left = n;
    while (left > 0) {
        if (used_ == staging_->size()) HEARTH_TRY(flush_batch());
        const size_t take =
            static_cast<size_t>(std::min<VkDeviceSize>(left, staging_->size() - used_));
        if (recording_ == VK_NULL_HANDLE) {
            auto cb = cmd_->begin(true);
            if (!cb) return cb.error();
            recording_ = *cb;
            // The destination may still be read or written by earlier work on the queue.
            VkMemoryBarrier before{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
            before.srcAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                   VK_ACCESS_TRANSFER_WRITE_BIT;
            before.dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
            fn.vkCmdPipelineBarrier(recording_, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                                    VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &before, 0, nullptr, 0,
                                    nullptr);
        }
        std::memcpy(staging_->mapped() + used_, bytes, take);
        VkBufferCopy copy{used_, dst_offset, take};
        fn.vkCmdCopyBuffer(recording_, staging_->handle(), dst.handle(), 1, &copy);
        used_ += take;
        pending_ += take;
        bytes += take;
        dst_offset += take;
        left -= take;
    }
    return Status::success();
}

Status Uploader::flush_batch() {
    if (recording_ == VK_NULL_HANDLE) return Status::success();
    // Make the copies visible to every later use on the queue (shaders and transfers).
    VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    barrier.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                            VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    fn.vkCmdPipelineBarrier(recording_, VK_PIPELINE_STAGE_TRANSFER_BIT,
                            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                            0, 1, &barrier, 0, nullptr, 0, nullptr);
    HEARTH_TRY(cmd_->end());
    HEARTH_TRY(cmd_->submit_and_wait());
    recording_ = VK_NULL_HANDLE;
    used_ = 0;
    done_ += pending_;
    pending_ = 0;
    if (progress_) progress_(done_, total_);
    return Status::success();
}

Status Uploader::finish() {
    return flush_batch();
}

Status download(Device& device, const Buffer& src, VkDeviceSize offset, size_t n, void* dst) {
    if (offset + n > src.size())
        return make_error("vulkan: download of " + std::to_string(n) + " bytes at offset " +
                          std::to_string(offset) + " overruns a buffer of " +
                          std::to_string(src.size()));
    uint8_t* out = static_cast<uint8_t*>(dst);
    auto cmd = CommandBuffer::create(device);
    if (!cmd) return cmd.error();
    if (src.mapped()) {
        // Earlier device writes become visible to the host only through a barrier.
        auto cb = (*cmd)->begin(true);
        if (!cb) return cb.error();
        VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
        barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        fn.vkCmdPipelineBarrier(*cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                                0, 1, &barrier, 0, nullptr, 0, nullptr);
        HEARTH_TRY((*cmd)->end());
        HEARTH_TRY((*cmd)->submit_and_wait());
        HEARTH_TRY(const_cast<Buffer&>(src).invalidate(offset, n));
        std::memcpy(out, src.mapped() + offset, n);
        return Status::success();
    }
    const VkDeviceSize chunk = std::min<VkDeviceSize>(n, 64ull << 20);
    auto staging = Buffer::create(device, chunk, MemoryKind::Readback, "readback buffer");
    if (!staging) return staging.error();
    size_t done = 0;
    while (done < n) {
        const size_t take = static_cast<size_t>(std::min<VkDeviceSize>(n - done, chunk));
        auto cb = (*cmd)->begin(true);
        if (!cb) return cb.error();
        VkMemoryBarrier before{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        before.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
        before.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT;
        fn.vkCmdPipelineBarrier(*cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT,
                                VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &before, 0, nullptr, 0,
                                nullptr);
        VkBufferCopy copy{offset + done, 0, take};
        fn.vkCmdCopyBuffer(*cb, src.handle(), (*staging)->handle(), 1, &copy);
        VkMemoryBarrier barrier{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        barrier.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        barrier.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
        fn.vkCmdPipelineBarrier(*cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0,
                                1, &barrier, 0, nullptr, 0, nullptr);
        HEARTH_TRY((*cmd)->end());
        HEARTH_TRY((*cmd)->submit_and_wait());
        HEARTH_TRY((*staging)->invalidate(0, take));
        std::memcpy(out + done, (*staging)->mapped(), take);
        done += take;
    }
    return Status::success();
}

}  // namespace hearth::vk
