#include "vulkan/device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace hearth::vk {

const char* result_name(VkResult result) {
    switch (result) {
        case VK_SUCCESS:
            return "VK_SUCCESS";
        case VK_NOT_READY:
            return "VK_NOT_READY";
        case VK_TIMEOUT:
            return "VK_TIMEOUT";
        case VK_INCOMPLETE:
            return "VK_INCOMPLETE";
        case VK_ERROR_OUT_OF_HOST_MEMORY:
            return "VK_ERROR_OUT_OF_HOST_MEMORY";
        case VK_ERROR_OUT_OF_DEVICE_MEMORY:
            return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
        case VK_ERROR_INITIALIZATION_FAILED:
            return "VK_ERROR_INITIALIZATION_FAILED";
        case VK_ERROR_DEVICE_LOST:
            return "VK_ERROR_DEVICE_LOST";
        case VK_ERROR_MEMORY_MAP_FAILED:
            return "VK_ERROR_MEMORY_MAP_FAILED";
        case VK_ERROR_LAYER_NOT_PRESENT:
            return "VK_ERROR_LAYER_NOT_PRESENT";
        case VK_ERROR_EXTENSION_NOT_PRESENT:
            return "VK_ERROR_EXTENSION_NOT_PRESENT";
        case VK_ERROR_FEATURE_NOT_PRESENT:
            return "VK_ERROR_FEATURE_NOT_PRESENT";
        case VK_ERROR_INCOMPATIBLE_DRIVER:
            return "VK_ERROR_INCOMPATIBLE_DRIVER";
        case VK_ERROR_TOO_MANY_OBJECTS:
            return "VK_ERROR_TOO_MANY_OBJECTS";
        case VK_ERROR_FORMAT_NOT_SUPPORTED:
            return "VK_ERROR_FORMAT_NOT_SUPPORTED";
        case VK_ERROR_FRAGMENTED_POOL:
            return "VK_ERROR_FRAGMENTED_POOL";
        case VK_ERROR_OUT_OF_POOL_MEMORY:
            return "VK_ERROR_OUT_OF_POOL_MEMORY";
        case VK_ERROR_INVALID_SHADER_NV:
            return "VK_ERROR_INVALID_SHADER_NV";
        default:
            return "VK_ERROR_UNKNOWN";
    }
}

Error vk_error(const std::string& what, VkResult result) {
    // HEARTH_VK names the call as written, "fn.vkCreateBuffer(...)"; the table is noise.
    const std::string_view call = std::string_view(what).starts_with("fn.")
                                      ? std::string_view(what).substr(3)
                                      : std::string_view(what);
    return make_error("vulkan: " + std::string(call) + " failed: " + result_name(result));
}

std::string api_version_string(uint32_t v) {
    return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) +
           "." + std::to_string(VK_API_VERSION_PATCH(v));
}

namespace {

const char* type_name(VkPhysicalDeviceType type) {
    switch (type) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
            return "discrete";
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
            return "integrated";
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
            return "virtual";
        case VK_PHYSICAL_DEVICE_TYPE_CPU:
            return "cpu";
        default:
            return "other";
    }
}

// Lower is preferred.
int type_rank(VkPhysicalDeviceType type) {
    switch (type) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
            return 0;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
            return 1;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
            return 2;
        case VK_PHYSICAL_DEVICE_TYPE_CPU:
            return 3;
        default:
            return 4;
    }
}

std::vector<VkExtensionProperties> device_extensions(VkPhysicalDevice pd) {
    uint32_t n = 0;
    fn.vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> exts(n);
    fn.vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data());
    exts.resize(n);
    return exts;
}

bool has_extension(const std::vector<VkExtensionProperties>& exts, const char* name) {
    return std::any_of(exts.begin(), exts.end(), [&](const VkExtensionProperties& e) {
        return std::strcmp(e.extensionName, name) == 0;
    });
}

bool instance_has_extension(const char* name) {
    uint32_t n = 0;
    fn.vkEnumerateInstanceExtensionProperties(nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> exts(n);
    fn.vkEnumerateInstanceExtensionProperties(nullptr, &n, exts.data());
    exts.resize(n);
    return has_extension(exts, name);
}

Expected<VkInstance> create_instance() {
    HEARTH_TRY(load_loader());
    uint32_t loader_version = VK_API_VERSION_1_0;
    if (fn.vkEnumerateInstanceVersion(&loader_version) != VK_SUCCESS ||
        loader_version < VK_API_VERSION_1_2) {
        return make_error("vulkan: the Vulkan loader supports version " +
                          api_version_string(loader_version) + ", hearth needs 1.2");
    }
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "hearth";
    app.pEngineName = "hearth";
    app.apiVersion = VK_API_VERSION_1_2;

    std::vector<const char*> extensions;
    VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    // Portability drivers (MoltenVK) are only enumerated when asked for.
    if (instance_has_extension(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        extensions.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
        info.flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    info.pApplicationInfo = &app;
    info.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
    info.ppEnabledExtensionNames = extensions.data();
    VkInstance instance = VK_NULL_HANDLE;
    VkResult r = fn.vkCreateInstance(&info, nullptr, &instance);
    if (r != VK_SUCCESS) {
        return make_error(
            std::string("vulkan: no Vulkan driver could be loaded (vkCreateInstance: ") +
            result_name(r) + ")");
    }
    if (Status loaded = load_instance_functions(instance); !loaded) {
        // The table may lack vkDestroyInstance itself, so it is looked up for this instance.
        auto destroy = reinterpret_cast<PFN_vkDestroyInstance>(
            fn.vkGetInstanceProcAddr(instance, "vkDestroyInstance"));
        if (destroy) destroy(instance, nullptr);
        return loaded.error();
    }
    return instance;
}

Expected<std::vector<VkPhysicalDevice>> physical_devices(VkInstance instance) {
    uint32_t n = 0;
    HEARTH_VK(fn.vkEnumeratePhysicalDevices(instance, &n, nullptr));
    std::vector<VkPhysicalDevice> devices(n);
    if (n > 0) HEARTH_VK(fn.vkEnumeratePhysicalDevices(instance, &n, devices.data()));
    devices.resize(n);
    return devices;
}

int compute_queue_family(VkPhysicalDevice pd) {
    uint32_t n = 0;
    fn.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
    std::vector<VkQueueFamilyProperties> fams(n);
    fn.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, fams.data());
    // Prefer a compute family without graphics: on discrete GPUs it is the async compute
    // queue, which the display does not share.
    int any = -1;
    for (uint32_t i = 0; i < n; ++i) {
        if (!(fams[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        if (!(fams[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) return static_cast<int>(i);
        if (any < 0) any = static_cast<int>(i);
    }
    return any;
}

uint64_t largest_device_local_heap(const VkPhysicalDeviceMemoryProperties& mp) {
    uint64_t best = 0;
    for (uint32_t i = 0; i < mp.memoryHeapCount; ++i) {
        if (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            best = std::max<uint64_t>(best, mp.memoryHeaps[i].size);
    }
    return best;
}

// Everything we query about one physical device.
struct Probe {
    VkPhysicalDeviceProperties props{};
    VkPhysicalDeviceVulkan11Properties p11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
    VkPhysicalDeviceVulkan12Properties p12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlPropertiesEXT sg_ctrl{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
    VkPhysicalDeviceMaintenance3Properties m3{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceShaderIntegerDotProductFeatures idot{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceMemoryProperties mem{};
    std::vector<VkExtensionProperties> exts;
    bool has_sg_ctrl = false;
    bool has_coop_nv = false;
    bool has_idot = false;
    int queue_family = -1;
    bool usable = false;
    std::string reason;
};

Probe probe(VkPhysicalDevice pd) {
    Probe p;
    fn.vkGetPhysicalDeviceProperties(pd, &p.props);
    fn.vkGetPhysicalDeviceMemoryProperties(pd, &p.mem);
    p.queue_family = compute_queue_family(pd);
    if (p.props.apiVersion < VK_API_VERSION_1_2) {
        p.reason = "supports Vulkan " + api_version_string(p.props.apiVersion) + ", needs 1.2";
        return p;
    }
    p.exts = device_extensions(pd);
    p.has_sg_ctrl = p.props.apiVersion >= VK_API_VERSION_1_3 ||
                    has_extension(p.exts, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    p.has_coop_nv = has_extension(p.exts, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    p.has_idot = p.props.apiVersion >= VK_API_VERSION_1_3 ||
                 has_extension(p.exts, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);

    VkPhysicalDeviceProperties2 props2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props2.pNext = &p.p11;
    p.p11.pNext = &p.p12;
    p.p12.pNext = &p.m3;
    if (p.has_sg_ctrl) p.m3.pNext = &p.sg_ctrl;
    fn.vkGetPhysicalDeviceProperties2(pd, &props2);

    VkPhysicalDeviceFeatures2 feats2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    feats2.pNext = &p.f11;
    p.f11.pNext = &p.f12;
    void** tail = &p.f12.pNext;
    if (p.has_coop_nv) {
        *tail = &p.coop;
        tail = &p.coop.pNext;
    }
    if (p.has_idot) {
        *tail = &p.idot;
        tail = &p.idot.pNext;
    }
    fn.vkGetPhysicalDeviceFeatures2(pd, &feats2);

    if (p.queue_family < 0) {
        p.reason = "has no compute queue";
    } else if (!p.f11.storageBuffer16BitAccess) {
        p.reason = "lacks storageBuffer16BitAccess (16-bit storage buffer reads)";
    } else {
        p.usable = true;
    }
    return p;
}

// Does the device run 16x16x16 f16 x f16 -> f32 cooperative matrices in subgroup scope?
bool coopmat_nv_f16_16x16x16(VkInstance instance, VkPhysicalDevice pd) {
    auto get = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        fn.vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    if (!get) return false;
    uint32_t n = 0;
    if (get(pd, &n, nullptr) != VK_SUCCESS || n == 0) return false;
    std::vector<VkCooperativeMatrixPropertiesNV> props(
        n, VkCooperativeMatrixPropertiesNV{VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
    if (get(pd, &n, props.data()) != VK_SUCCESS) return false;
    for (uint32_t i = 0; i < n; ++i) {
        const auto& c = props[i];
        if (c.MSize == 16 && c.NSize == 16 && c.KSize == 16 &&
            c.AType == VK_COMPONENT_TYPE_FLOAT16_NV && c.BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
            c.CType == VK_COMPONENT_TYPE_FLOAT32_NV && c.DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
            c.scope == VK_SCOPE_SUBGROUP_NV)
            return true;
    }
    return false;
}

std::string driver_string(const Probe& p) {
    std::string s = p.p12.driverName;
    if (p.p12.driverInfo[0] != '\0') s += std::string(" ") + p.p12.driverInfo;
    return s;
}

}  // namespace

Expected<std::vector<DeviceInfo>> list_devices() {
    auto instance = create_instance();
    if (!instance) return instance.error();
    auto pds = physical_devices(*instance);
    if (!pds) {
        fn.vkDestroyInstance(*instance, nullptr);
        return pds.error();
    }
    std::vector<DeviceInfo> out;
    for (uint32_t i = 0; i < pds->size(); ++i) {
        Probe p = probe((*pds)[i]);
        DeviceInfo d;
        d.index = i;
        d.name = p.props.deviceName;
        d.type = type_name(p.props.deviceType);
        d.api_version = p.props.apiVersion;
        d.device_local_bytes = largest_device_local_heap(p.mem);
        d.usable = p.usable;
        d.unusable_reason = p.reason;
        if (p.props.apiVersion >= VK_API_VERSION_1_2) {
            d.driver = driver_string(p);
            d.subgroup_size = p.p11.subgroupSize;
        }
        out.push_back(std::move(d));
    }
    fn.vkDestroyInstance(*instance, nullptr);
    return out;
}

Expected<std::unique_ptr<Device>> Device::create(const DeviceOptions& options) {
    auto instance = create_instance();
    if (!instance) return instance.error();
    std::unique_ptr<Device> dev(new Device());
    dev->instance_ = *instance;  // owned from here on: the destructor releases it

    auto pds = physical_devices(dev->instance_);
    if (!pds) return pds.error();
    if (pds->empty()) return make_error("vulkan: no Vulkan device found");

    std::vector<Probe> probes;
    for (VkPhysicalDevice pd : *pds) probes.push_back(probe(pd));

    int want = options.index;
    if (want < 0) {
        if (const char* env = std::getenv("HEARTH_DEVICE"); env && *env) {
            char* end = nullptr;
            long v = std::strtol(env, &end, 10);
            if (*end != '\0' || v < 0)
                return make_error(std::string("vulkan: HEARTH_DEVICE='") + env +
                                  "' is not a device index");
            want = static_cast<int>(v);
        }
    }
    int chosen = -1;
    if (want >= 0) {
        if (static_cast<size_t>(want) >= pds->size())
            return make_error("vulkan: device " + std::to_string(want) + " requested, only " +
                              std::to_string(pds->size()) + " present");
        const Probe& p = probes[static_cast<size_t>(want)];
        if (!p.usable)
            return make_error("vulkan: device " + std::to_string(want) + " (" + p.props.deviceName +
                              ") " + p.reason);
        chosen = want;
    } else {
        for (size_t i = 0; i < probes.size(); ++i) {
            if (!probes[i].usable) continue;
            if (chosen < 0 || type_rank(probes[i].props.deviceType) <
                                  type_rank(probes[static_cast<size_t>(chosen)].props.deviceType))
                chosen = static_cast<int>(i);
        }
        if (chosen < 0) {
            std::string why;
            for (const Probe& p : probes)
                why += std::string(why.empty() ? "" : "; ") + p.props.deviceName + " " + p.reason;
            return make_error("vulkan: no usable Vulkan device (" + why + ")");
        }
    }

    const Probe& p = probes[static_cast<size_t>(chosen)];
    dev->physical_ = (*pds)[static_cast<size_t>(chosen)];
    dev->index_ = static_cast<uint32_t>(chosen);
    dev->name_ = p.props.deviceName;
    dev->driver_ = driver_string(p);
    dev->queue_family_ = static_cast<uint32_t>(p.queue_family);
    dev->mem_props_ = p.mem;

    DeviceCaps& c = dev->caps_;
    c.type = p.props.deviceType;
    c.vendor_id = p.props.vendorID;
    c.api_version = p.props.apiVersion;
    c.subgroup_size = p.p11.subgroupSize;
    c.min_subgroup_size = p.has_sg_ctrl && p.sg_ctrl.minSubgroupSize > 0 ? p.sg_ctrl.minSubgroupSize
                                                                         : p.p11.subgroupSize;
    c.subgroup_arithmetic =
        (p.p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
        (p.p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
        (p.p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    const VkPhysicalDeviceLimits& lim = p.props.limits;
    c.max_shared_memory = lim.maxComputeSharedMemorySize;
    c.max_workgroup_invocations = lim.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; ++i) c.max_workgroup_count[i] = lim.maxComputeWorkGroupCount[i];
    c.max_push_constants = lim.maxPushConstantsSize;
    c.max_storage_buffer_range = lim.maxStorageBufferRange;
    c.min_storage_offset_alignment = lim.minStorageBufferOffsetAlignment;
    c.max_allocation_size = p.m3.maxMemoryAllocationSize;
    c.non_coherent_atom_size = lim.nonCoherentAtomSize;
    c.shader_float16 = p.f12.shaderFloat16;
    c.integer_dot_product = p.has_idot && p.idot.shaderIntegerDotProduct;
    c.unified_memory = p.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ||
                       p.props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;

    // Logical device: enable only what the shaders use.
    std::vector<const char*> exts;
    VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    f11.storageBuffer16BitAccess = VK_TRUE;
    VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    f12.shaderFloat16 = p.f12.shaderFloat16;
    f11.pNext = &f12;
    void** tail = &f12.pNext;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    if (p.has_coop_nv && p.coop.cooperativeMatrix && p.f12.shaderFloat16 &&
        coopmat_nv_f16_16x16x16(dev->instance_, dev->physical_)) {
        coop.cooperativeMatrix = VK_TRUE;
        exts.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
        *tail = &coop;
        tail = &coop.pNext;
        c.cooperative_matrix_nv = true;
    }
    if (has_extension(p.exts, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME)) {
        exts.push_back(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
        dev->has_memory_budget_ = true;
    }

    const float priority = 1.0f;
    VkDeviceQueueCreateInfo qinfo{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qinfo.queueFamilyIndex = dev->queue_family_;
    qinfo.queueCount = 1;
    qinfo.pQueuePriorities = &priority;
    VkPhysicalDeviceFeatures2 feats2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    feats2.pNext = &f11;
    VkDeviceCreateInfo dinfo{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dinfo.pNext = &feats2;
    dinfo.queueCreateInfoCount = 1;
    dinfo.pQueueCreateInfos = &qinfo;
    dinfo.enabledExtensionCount = static_cast<uint32_t>(exts.size());
    dinfo.ppEnabledExtensionNames = exts.data();
    HEARTH_VK(fn.vkCreateDevice(dev->physical_, &dinfo, nullptr, &dev->device_));
    fn.vkGetDeviceQueue(dev->device_, dev->queue_family_, 0, &dev->queue_);
    return dev;
}

Device::~Device() {
    if (device_) {
        fn.vkDeviceWaitIdle(device_);
        fn.vkDestroyDevice(device_, nullptr);
    }
    if (instance_) fn.vkDestroyInstance(instance_, nullptr);
}

uint64_t Device::device_local_heap_bytes() const {
    return largest_device_local_heap(mem_props_);
}

uint64_t Device::device_local_budget_bytes() const {
    if (!has_memory_budget_) return device_local_heap_bytes();
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
    mp2.pNext = &budget;
    fn.vkGetPhysicalDeviceMemoryProperties2(physical_, &mp2);
    uint64_t best = 0;
    for (uint32_t i = 0; i < mp2.memoryProperties.memoryHeapCount; ++i) {
        if (!(mp2.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT))
            continue;
        const uint64_t free_bytes = budget.heapBudget[i] > budget.heapUsage[i]
                                        ? budget.heapBudget[i] - budget.heapUsage[i]
                                        : 0;
        best = std::max(best, free_bytes);
    }
    return best > 0 ? best : device_local_heap_bytes();
}

Status Device::submit(VkCommandBuffer cb, VkFence fence) {
    VkSubmitInfo info{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    info.commandBufferCount = 1;
    info.pCommandBuffers = &cb;
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        HEARTH_VK(fn.vkQueueSubmit(queue_, 1, &info, fence));
    }
    // Waited for in short slices: a long prefill on a slow device takes minutes, a hung
    // device forever, and re-checking the fence also survives a missed wake-up (seen as
    // rare multi-minute stalls on lavapipe under load).
    constexpr uint64_t kSliceNs = 100ull * 1000 * 1000;
    constexpr int kSlices = 6000;  // 600 s
    for (int i = 0; i < kSlices; ++i) {
        VkResult r = fn.vkWaitForFences(device_, 1, &fence, VK_TRUE, kSliceNs);
        if (r == VK_SUCCESS) return Status::success();
        if (r != VK_TIMEOUT) return vk_error("vkWaitForFences", r);
    }
    return make_error("vulkan: the device did not finish within 600 s");
}

Expected<std::unique_ptr<CommandBuffer>> CommandBuffer::create(Device& device) {
    std::unique_ptr<CommandBuffer> cb(new CommandBuffer(device));
    VkCommandPoolCreateInfo pinfo{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pinfo.queueFamilyIndex = device.queue_family();
    HEARTH_VK(fn.vkCreateCommandPool(device.handle(), &pinfo, nullptr, &cb->pool_));
    VkCommandBufferAllocateInfo ainfo{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ainfo.commandPool = cb->pool_;
    ainfo.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ainfo.commandBufferCount = 1;
    HEARTH_VK(fn.vkAllocateCommandBuffers(device.handle(), &ainfo, &cb->cb_));
    VkFenceCreateInfo finfo{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    HEARTH_VK(fn.vkCreateFence(device.handle(), &finfo, nullptr, &cb->fence_));
    return cb;
}

CommandBuffer::~CommandBuffer() {
    VkDevice d = device_.handle();
    if (fence_) fn.vkDestroyFence(d, fence_, nullptr);
    if (pool_) fn.vkDestroyCommandPool(d, pool_, nullptr);  // frees cb_
}

Expected<VkCommandBuffer> CommandBuffer::begin(bool one_time) {
    HEARTH_VK(fn.vkResetCommandPool(device_.handle(), pool_, 0));
    VkCommandBufferBeginInfo info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    info.flags = one_time ? VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT : 0;
    HEARTH_VK(fn.vkBeginCommandBuffer(cb_, &info));
    return cb_;
}

Status CommandBuffer::end() {
    HEARTH_VK(fn.vkEndCommandBuffer(cb_));
    return Status::success();
}

Status CommandBuffer::submit_and_wait() {
    HEARTH_VK(fn.vkResetFences(device_.handle(), 1, &fence_));
    return device_.submit(cb_, fence_);
}

}  // namespace hearth::vk
