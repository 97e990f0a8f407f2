#include "vulkan/pipeline.h"

#include "hearth_shaders.h"

namespace hearth::vk {

PipelineCache::PipelineCache(Device& device) : device_(device) {
    VkPipelineCacheCreateInfo info{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    // Without a cache pipelines still build; it only saves driver compile time.
    if (fn.vkCreatePipelineCache(device.handle(), &info, nullptr, &cache_) != VK_SUCCESS)
        cache_ = VK_NULL_HANDLE;
}

PipelineCache::~PipelineCache() {
    VkDevice d = device_.handle();
    for (auto& [key, p] : pipelines_) fn.vkDestroyPipeline(d, p->pipeline, nullptr);
    for (auto& [key, l] : layouts_) fn.vkDestroyPipelineLayout(d, l, nullptr);
    for (auto& [key, l] : set_layouts_) fn.vkDestroyDescriptorSetLayout(d, l, nullptr);
    for (auto& [key, m] : modules_) fn.vkDestroyShaderModule(d, m, nullptr);
    if (cache_) fn.vkDestroyPipelineCache(d, cache_, nullptr);
}

Expected<VkShaderModule> PipelineCache::module(std::string_view shader) {
    if (auto it = modules_.find(shader); it != modules_.end()) return it->second;
    const shaders::SpirvBlob* blob = shaders::find(shader);
    if (!blob)
        return make_error("vulkan: no shader variant '" + std::string(shader) + "' in this build");
    VkShaderModuleCreateInfo info{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    info.codeSize = blob->word_count * sizeof(uint32_t);
    info.pCode = blob->words;
    VkShaderModule m = VK_NULL_HANDLE;
    HEARTH_VK(fn.vkCreateShaderModule(device_.handle(), &info, nullptr, &m));
    modules_.emplace(std::string(shader), m);
    return m;
}

Expected<VkDescriptorSetLayout> PipelineCache::set_layout(uint32_t n_buffers) {
    if (auto it = set_layouts_.find(n_buffers); it != set_layouts_.end()) return it->second;
    std::vector<VkDescriptorSetLayoutBinding> bindings(n_buffers);
    for (uint32_t i = 0; i < n_buffers; ++i) {
        bindings[i].binding = i;
        bindings[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        bindings[i].descriptorCount = 1;
        bindings[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    }
    VkDescriptorSetLayoutCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    info.bindingCount = n_buffers;
    info.pBindings = bindings.data();
    VkDescriptorSetLayout l = VK_NULL_HANDLE;
    HEARTH_VK(fn.vkCreateDescriptorSetLayout(device_.handle(), &info, nullptr, &l));
    set_layouts_.emplace(n_buffers, l);
    return l;
}

Expected<const Pipeline*> PipelineCache::get(std::string_view shader, uint32_t n_buffers,
                                             uint32_t push_bytes, std::span<const uint32_t> spec) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string key(shader);
    key += '|' + std::to_string(n_buffers) + '|' + std::to_string(push_bytes);
    for (uint32_t v : spec) key += ',' + std::to_string(v);
    if (auto it = pipelines_.find(key); it != pipelines_.end()) return it->second.get();

    if (push_bytes > device_.caps().max_push_constants)
        return make_error("vulkan: " + std::string(shader) + " needs " +
                          std::to_string(push_bytes) +
                          " bytes of push constants, the device allows " +
                          std::to_string(device_.caps().max_push_constants));
    auto mod = module(shader);
    if (!mod) return mod.error();
    auto sl = set_layout(n_buffers);
    if (!sl) return sl.error();

    VkPipelineLayout layout = VK_NULL_HANDLE;
    if (auto it = layouts_.find({n_buffers, push_bytes}); it != layouts_.end()) {
        layout = it->second;
    } else {
        VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes};
        VkPipelineLayoutCreateInfo info{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
        info.setLayoutCount = 1;
        info.pSetLayouts = &*sl;
        info.pushConstantRangeCount = push_bytes > 0 ? 1 : 0;
        info.pPushConstantRanges = &range;
        HEARTH_VK(fn.vkCreatePipelineLayout(device_.handle(), &info, nullptr, &layout));
        layouts_.emplace(std::make_pair(n_buffers, push_bytes), layout);
    }

    std::vector<VkSpecializationMapEntry> entries(spec.size());
    for (uint32_t i = 0; i < spec.size(); ++i)
        entries[i] = {i, static_cast<uint32_t>(i * sizeof(uint32_t)), sizeof(uint32_t)};
    VkSpecializationInfo sinfo{};
    sinfo.mapEntryCount = static_cast<uint32_t>(entries.size());
    sinfo.pMapEntries = entries.data();
    sinfo.dataSize = spec.size() * sizeof(uint32_t);
    sinfo.pData = spec.data();

    VkComputePipelineCreateInfo info{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = *mod;
    info.stage.pName = "main";
    info.stage.pSpecializationInfo = spec.empty() ? nullptr : &sinfo;
    info.layout = layout;
    VkPipeline pipeline = VK_NULL_HANDLE;
    VkResult r =
        fn.vkCreateComputePipelines(device_.handle(), cache_, 1, &info, nullptr, &pipeline);
    if (r != VK_SUCCESS)
        return make_error("vulkan: building pipeline " + key + " failed: " + result_name(r));

    auto p = std::make_unique<Pipeline>();
    p->name = std::string(shader);
    p->pipeline = pipeline;
    p->layout = layout;
    p->set_layout = *sl;
    p->n_buffers = n_buffers;
    p->push_bytes = push_bytes;
    p->workgroup_size = spec.empty() ? 0 : spec[0];
    const Pipeline* out = p.get();
    pipelines_.emplace(std::move(key), std::move(p));
    return out;
}

DescriptorArena::~DescriptorArena() {
    for (VkDescriptorPool p : pools_) fn.vkDestroyDescriptorPool(device_.handle(), p, nullptr);
}

Status DescriptorArena::grow() {
    constexpr uint32_t kSets = 256;
    constexpr uint32_t kBuffersPerSet = 8;
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSets * kBuffersPerSet};
    VkDescriptorPoolCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    info.maxSets = kSets;
    info.poolSizeCount = 1;
    info.pPoolSizes = &size;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    HEARTH_VK(fn.vkCreateDescriptorPool(device_.handle(), &info, nullptr, &pool));
    pools_.push_back(pool);
    current_ = pools_.size() - 1;
    return Status::success();
}

void DescriptorArena::reset() {
    for (VkDescriptorPool p : pools_) fn.vkResetDescriptorPool(device_.handle(), p, 0);
    current_ = 0;
}

Expected<VkDescriptorSet> DescriptorArena::bind(const Pipeline& pipeline,
                                                std::span<const BufferRange> buffers) {
    if (buffers.size() != pipeline.n_buffers)
        return make_error("vulkan: " + pipeline.name + " takes " +
                          std::to_string(pipeline.n_buffers) + " buffers, got " +
                          std::to_string(buffers.size()));
    const DeviceCaps& caps = device_.caps();
    for (size_t i = 0; i < buffers.size(); ++i) {
        const BufferRange& b = buffers[i];
        if (!b.valid())
            return make_error("vulkan: " + pipeline.name + " binding " + std::to_string(i) +
                              " has no buffer");
        if (caps.min_storage_offset_alignment > 0 && b.offset % caps.min_storage_offset_alignment)
            return make_error("vulkan: " + pipeline.name + " binding " + std::to_string(i) +
                              " offset " + std::to_string(b.offset) + " is not aligned to " +
                              std::to_string(caps.min_storage_offset_alignment));
        if (b.size > caps.max_storage_buffer_range)
            return make_error("vulkan: " + pipeline.name + " binding " + std::to_string(i) +
                              " spans " + format_bytes(b.size) + ", the device binds at most " +
                              format_bytes(caps.max_storage_buffer_range));
    }

    VkDescriptorSet set = VK_NULL_HANDLE;
    for (;;) {
        if (current_ >= pools_.size()) HEARTH_TRY(grow());
        VkDescriptorSetAllocateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        info.descriptorPool = pools_[current_];
        info.descriptorSetCount = 1;
        info.pSetLayouts = &pipeline.set_layout;
        VkResult r = fn.vkAllocateDescriptorSets(device_.handle(), &info, &set);
        if (r == VK_SUCCESS) break;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
            return vk_error("vkAllocateDescriptorSets", r);
        ++current_;  // this pool is full: move on (growing when none is left)
    }

    std::vector<VkDescriptorBufferInfo> infos(buffers.size());
    std::vector<VkWriteDescriptorSet> writes(buffers.size());
    for (size_t i = 0; i < buffers.size(); ++i) {
        infos[i] = {buffers[i].buffer, buffers[i].offset, buffers[i].size};
        writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[i].dstSet = set;
        writes[i].dstBinding = static_cast<uint32_t>(i);
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
    }
    fn.vkUpdateDescriptorSets(device_.handle(), static_cast<uint32_t>(writes.size()), writes.data(),
                              0, nullptr);
    return set;
}

}  // namespace hearth::vk
