// Compute pipelines from the embedded SPIR-V, and descriptor sets to bind them.
//
// Every hearth kernel has the same interface shape: bindings 0..n-1 are storage buffers,
// there is one push-constant block, and specialisation constants 0..k-1 are uint32
// (constant 0 is the workgroup size, 1 the smallest subgroup size; see
// shaders/common.glsl). A pipeline is therefore identified by (variant name, binding
// count, push-constant size, specialisation values), and PipelineCache builds each one
// once.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"
#include "vulkan/device.h"
#include "vulkan/memory.h"

namespace hearth::vk {

struct Pipeline {
    std::string name;  // variant name, for messages
    VkPipeline pipeline = VK_NULL_HANDLE;
    VkPipelineLayout layout = VK_NULL_HANDLE;
    VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
    uint32_t n_buffers = 0;
    uint32_t push_bytes = 0;
    uint32_t workgroup_size = 0;  // specialisation constant 0
};

class PipelineCache {
  public:
    explicit PipelineCache(Device& device);
    ~PipelineCache();
    PipelineCache(const PipelineCache&) = delete;
    PipelineCache& operator=(const PipelineCache&) = delete;

    // The pipeline for `shader` (a name from shaders/hearth_shaders.h) with `spec` as its
    // specialisation constants 0..spec.size()-1, built on first use.
    Expected<const Pipeline*> get(std::string_view shader, uint32_t n_buffers, uint32_t push_bytes,
                                  std::span<const uint32_t> spec);

    Device& device() const { return device_; }
    size_t size() const { return pipelines_.size(); }

  private:
    Expected<VkShaderModule> module(std::string_view shader);
    Expected<VkDescriptorSetLayout> set_layout(uint32_t n_buffers);

    Device& device_;
    std::mutex mutex_;
    VkPipelineCache cache_ = VK_NULL_HANDLE;
    std::map<std::string, VkShaderModule, std::less<>> modules_;
    std::map<uint32_t, VkDescriptorSetLayout> set_layouts_;
    std::map<std::pair<uint32_t, uint32_t>, VkPipelineLayout> layouts_;
    std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;
};

// Descriptor sets for one recording: allocated and written once, freed together. A
// recorded command buffer keeps its arena alive as long as it may be replayed, so a
// replayed decode step performs no descriptor work at all.
class DescriptorArena {
  public:
    explicit DescriptorArena(Device& device) : device_(device) {}
    ~DescriptorArena();
    DescriptorArena(const DescriptorArena&) = delete;
    DescriptorArena& operator=(const DescriptorArena&) = delete;

    // A set for `pipeline` with buffers[i] at binding i. Each range must respect the
    // device's offset alignment and maximum storage-buffer range.
    Expected<VkDescriptorSet> bind(const Pipeline& pipeline, std::span<const BufferRange> buffers);
    // Frees every set (the pools are kept).
    void reset();

  private:
    Status grow();

    Device& device_;
    std::vector<VkDescriptorPool> pools_;
    size_t current_ = 0;
};

}  // namespace hearth::vk
