// The Vulkan backend: the engine's forward pass on any Vulkan 1.2 device.
//
// make_vulkan_backend() picks a device (device.h), uploads the model's weights to
// device-local memory and returns a Backend whose sessions keep their KV cache (f16, sized
// from n_ctx) and work buffers on the device. A decode step's command buffer is recorded
// once per session and replayed for every token: the token id and position travel in a
// small parameter buffer copied to the device at the start of the step, so a decode step
// allocates nothing and writes no descriptor. Prefill steps are recorded per chunk size
// and kept for reuse.
//
// Failure to find a usable device, or a model that does not fit, is an Error the caller
// can answer by falling back to the CPU backend.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "model.h"
#include "result.h"
#include "vulkan/device.h"

namespace hearth {

struct VulkanOptions {
    // Device index as list_vulkan_devices() numbers them; -1: the HEARTH_DEVICE
    // environment variable if set, else the best device (discrete GPU first).
    int device = -1;
    // Most tokens one recorded prefill step evaluates; longer evals are chunked.
    int32_t n_batch = 512;
    // Called while weights are uploaded: (bytes done, bytes in total).
    std::function<void(uint64_t done, uint64_t total)> progress;
    // Largest descriptor binding a weight part may span; 0: the device's limit. Smaller
    // values force large weights to be split, which tests use to cover that path.
    uint64_t max_binding_bytes = 0;
};

Expected<std::unique_ptr<Backend>> make_vulkan_backend(std::shared_ptr<const Model> model,
                                                       const VulkanOptions& options = {});

// Facts about a loaded Vulkan backend, for `hearth info`, logs and benchmarks.
struct VulkanBackendStats {
    std::string device;  // "NVIDIA H200"
    std::string driver;
    uint32_t device_index = 0;
    uint64_t weight_bytes = 0;    // device memory taken by the weights
    uint32_t split_matrices = 0;  // weights bound in several row parts (larger than a binding)
    double upload_seconds = 0;    // time to create the backend, upload included
    uint32_t subgroup_size = 0;
    bool subgroup_arithmetic = false;
    bool cooperative_matrix = false;  // prefill on tensor cores (f16 inputs)
};
// The stats of `backend` if it is a Vulkan backend, else nullptr.
const VulkanBackendStats* vulkan_backend_stats(const Backend& backend);

// Every Vulkan device the loader sees (usable or not), for diagnostics.
Expected<std::vector<vk::DeviceInfo>> list_vulkan_devices();
// One line per device: "0: NVIDIA H200 (discrete, Vulkan 1.3.289, 140.0 GiB, subgroup 32)",
// or the reason Vulkan is unavailable.
std::string describe_vulkan_devices();

}  // namespace hearth
