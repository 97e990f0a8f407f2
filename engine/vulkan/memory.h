// Vulkan memory: buffers in device-local or host-visible memory, a budget check before
// large allocations, and a staging uploader / downloader between host and device.
//
// Every buffer has its own VkDeviceMemory; callers keep the count small by packing many
// tensors into one buffer (weights) and addressing them by BufferRange.
#pragma once

#include <vulkan/vulkan.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "result.h"
#include "vulkan/device.h"

namespace hearth::vk {

enum class MemoryKind {
    DeviceLocal,  // fastest for the device; host-mapped too on unified-memory devices
    Upload,       // host-visible, written by the host (staging, per-step parameters)
    Readback,     // host-visible, preferably host-cached, read by the host
};

// A piece of a buffer: what a descriptor binds.
struct BufferRange {
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceSize offset = 0;
    VkDeviceSize size = 0;

    bool valid() const { return buffer != VK_NULL_HANDLE; }
    // The sub-range [offset + off, offset + off + n).
    BufferRange sub(VkDeviceSize off, VkDeviceSize n) const { return {buffer, offset + off, n}; }
};

class Buffer {
  public:
    // `what` names the buffer in error messages ("weights", "KV cache").
    static Expected<std::unique_ptr<Buffer>> create(Device& device, VkDeviceSize size,
                                                    MemoryKind kind, const std::string& what);
    ~Buffer();
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    VkBuffer handle() const { return buffer_; }
    VkDeviceSize size() const { return size_; }
    BufferRange range() const { return {buffer_, 0, size_}; }
    BufferRange range(VkDeviceSize offset, VkDeviceSize size) const {
        return {buffer_, offset, size};
    }

    // Host pointer to the whole buffer, or nullptr when its memory is not host-visible.
    uint8_t* mapped() const { return mapped_; }
    // For memory that is not host-coherent: make host writes visible to the device /
    // device writes visible to the host. No-ops on coherent memory.
    Status flush(VkDeviceSize offset, VkDeviceSize size);
    Status invalidate(VkDeviceSize offset, VkDeviceSize size);

  private:
    explicit Buffer(Device& device) : device_(device) {}

    Device& device_;
    VkBuffer buffer_ = VK_NULL_HANDLE;
    VkDeviceMemory memory_ = VK_NULL_HANDLE;
    VkDeviceSize size_ = 0;
    uint8_t* mapped_ = nullptr;
    bool coherent_ = true;
};

// Error unless `bytes` of device memory fit the device: checked against the largest
// device-local heap and the driver's current budget, e.g.
// "vulkan: weights + KV cache need 9.1 GiB, the device has 8.0 GiB (7.2 GiB free)".
Status check_device_memory(const Device& device, uint64_t bytes, const std::string& what);

// "1.5 GiB", "12.0 MiB"
std::string format_bytes(uint64_t bytes);

// Copies host bytes into device buffers through a host-visible staging buffer, batching
// copies until the staging buffer is full. Buffers that are host-mapped (unified memory)
// are written directly.
class Uploader {
  public:
    using Progress = std::function<void(uint64_t done, uint64_t total)>;

    static Expected<std::unique_ptr<Uploader>> create(Device& device,
                                                      VkDeviceSize staging_bytes = 64ull << 20);

    // total: bytes the caller will upload, for progress reports (0: unknown).
    void set_progress(Progress progress, uint64_t total);
    Status upload(const void* src, size_t n, const Buffer& dst, VkDeviceSize dst_offset);
    // Waits until everything queued so far is on the device.
    Status finish();

  private:
    Uploader(Device& device) : device_(device) {}
    Status flush_batch();

    Device& device_;
    std::unique_ptr<Buffer> staging_;
    std::unique_ptr<CommandBuffer> cmd_;
    VkCommandBuffer recording_ = VK_NULL_HANDLE;
    VkDeviceSize used_ = 0;
    Progress progress_;
    uint64_t total_ = 0;
    uint64_t done_ = 0;
    uint64_t pending_ = 0;  // bytes staged but not yet copied
};

// Device -> host copy of [offset, offset + n) of `src` (through a staging buffer unless
// src is host-mapped).
Status download(Device& device, const Buffer& src, VkDeviceSize offset, size_t n, void* dst);

}  // namespace hearth::vk
