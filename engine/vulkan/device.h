// Vulkan device: instance, choice of physical device, logical device and compute queue,
// and what the device can do (limits, subgroups, optional features).
//
// Requirements of the portable path: Vulkan 1.2, a compute queue and
// storageBuffer16BitAccess (weights are read in their GGUF block layout through 16-bit
// views and the KV cache is f16). Everything else (subgroup arithmetic, cooperative
// matrices, fp16 arithmetic, integer dot products) is optional and only selects faster
// shader variants.
//
// Choice: the device named by DeviceOptions::index, else the HEARTH_DEVICE environment
// variable (an index into list_devices()), else the first usable device in the order
// discrete GPU, integrated GPU, virtual GPU, CPU (e.g. Mesa lavapipe), other.
// No usable device is an Error, so the caller can fall back to the CPU backend.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "result.h"
#include "vulkan/loader.h"

namespace hearth::vk {

// One physical device as the loader reports it, for `hearth info` and diagnostics.
struct DeviceInfo {
    uint32_t index = 0;  // position in vkEnumeratePhysicalDevices (the HEARTH_DEVICE value)
    std::string name;
    std::string type;    // "discrete", "integrated", "virtual", "cpu", "other"
    std::string driver;  // driver name and info, e.g. "llvmpipe Mesa 22.3.6 (LLVM 15.0.6)"
    uint32_t api_version = 0;
    uint64_t device_local_bytes = 0;  // size of the largest device-local heap
    uint32_t subgroup_size = 0;
    bool usable = false;
    std::string unusable_reason;  // why not, when !usable
};

// Lists every Vulkan device; an Error only when Vulkan itself is unavailable.
Expected<std::vector<DeviceInfo>> list_devices();

// "1.3.230"
std::string api_version_string(uint32_t version);

struct DeviceOptions {
    int index = -1;  // >= 0: use this device; -1: HEARTH_DEVICE, else the best one
};

// What the chosen device offers, read once at creation.
struct DeviceCaps {
    VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
    uint32_t vendor_id = 0;
    uint32_t api_version = 0;

    uint32_t subgroup_size = 0;        // default subgroup size
    uint32_t min_subgroup_size = 0;    // smallest size a compute workgroup may run with
    bool subgroup_arithmetic = false;  // subgroupAdd/Max in compute shaders

    uint32_t max_shared_memory = 0;
    uint32_t max_workgroup_invocations = 0;
    uint32_t max_workgroup_count[3] = {0, 0, 0};
    uint32_t max_push_constants = 0;
    uint64_t max_storage_buffer_range = 0;
    uint64_t min_storage_offset_alignment = 0;
    uint64_t max_allocation_size = 0;
    uint64_t non_coherent_atom_size = 0;

    bool shader_float16 = false;
    bool cooperative_matrix_nv = false;  // VK_NV_cooperative_matrix with f16 x f16 -> f32 16x16x16
    bool integer_dot_product = false;    // VK_KHR_shader_integer_dot_product

    // True for devices whose "device-local" memory is the host's (CPU devices, most
    // integrated GPUs): weights can be written in place instead of staged.
    bool unified_memory = false;
};

class Device {
  public:
    static Expected<std::unique_ptr<Device>> create(const DeviceOptions& options = {});
    ~Device();
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    VkInstance instance() const { return instance_; }
    VkPhysicalDevice physical() const { return physical_; }
    VkDevice handle() const { return device_; }
    VkQueue queue() const { return queue_; }
    uint32_t queue_family() const { return queue_family_; }
    uint32_t index() const { return index_; }
    const std::string& name() const { return name_; }
    const std::string& driver() const { return driver_; }
    const DeviceCaps& caps() const { return caps_; }
    const VkPhysicalDeviceMemoryProperties& memory_properties() const { return mem_props_; }

    // Bytes of the largest device-local heap, and what the driver says is still free in it
    // (VK_EXT_memory_budget; the heap size when the extension is absent).
    uint64_t device_local_heap_bytes() const;
    uint64_t device_local_budget_bytes() const;

    // Submits command buffers to the queue and waits for `fence`. The queue is shared by
    // every session of the device, so submissions are serialised here.
    Status submit(VkCommandBuffer cb, VkFence fence);

  private:
    Device() = default;

    VkInstance instance_ = VK_NULL_HANDLE;
    VkPhysicalDevice physical_ = VK_NULL_HANDLE;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    uint32_t queue_family_ = 0;
    uint32_t index_ = 0;
    std::string name_;
    std::string driver_;
    DeviceCaps caps_;
    VkPhysicalDeviceMemoryProperties mem_props_{};
    bool has_memory_budget_ = false;
    std::mutex queue_mutex_;
};

// A command pool with one primary command buffer and a fence. Recorded either once and
// submitted many times (the decode step) or re-recorded per use (uploads, prefill).
class CommandBuffer {
  public:
    static Expected<std::unique_ptr<CommandBuffer>> create(Device& device);
    ~CommandBuffer();
    CommandBuffer(const CommandBuffer&) = delete;
    CommandBuffer& operator=(const CommandBuffer&) = delete;

    // Resets and begins recording. one_time: the recording is submitted once.
    Expected<VkCommandBuffer> begin(bool one_time);
    Status end();
    // Submits the recorded commands and waits until the device has finished them.
    Status submit_and_wait();
    VkCommandBuffer handle() const { return cb_; }

  private:
    explicit CommandBuffer(Device& device) : device_(device) {}

    Device& device_;
    VkCommandPool pool_ = VK_NULL_HANDLE;
    VkCommandBuffer cb_ = VK_NULL_HANDLE;
    VkFence fence_ = VK_NULL_HANDLE;
};

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc.
const char* result_name(VkResult result);
// Error "<what>: VK_ERROR_..." for a failed call.
Error vk_error(const std::string& what, VkResult result);

}  // namespace hearth::vk

// Evaluates a Vulkan call; on failure returns an Error naming the call and the result.
#define HEARTH_VK(call)                                              \
    do {                                                             \
        VkResult hearth_vk_result_ = (call);                         \
        if (hearth_vk_result_ != VK_SUCCESS)                         \
            return ::hearth::vk::vk_error(#call, hearth_vk_result_); \
    } while (0)
