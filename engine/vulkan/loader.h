// The Vulkan loader, opened at run time: hearth never links libvulkan.
//
// A binary that links libvulkan.so.1 does not start at all on a machine without it (no GPU
// driver installed, a container, a minimal server), even when the user only wants the CPU
// backend. So the engine is compiled with VK_NO_PROTOTYPES and reaches Vulkan through the
// table `fn` below, filled at first use:
//
//   1. load_loader() dlopens the loader (libvulkan.so.1, or the file named by the
//      HEARTH_VULKAN_LOADER environment variable), takes vkGetInstanceProcAddr from it and
//      resolves the global functions (those callable before an instance exists) with it.
//      This happens once per process; the outcome, success or error, is kept.
//   2. load_instance_functions(instance) resolves every instance- and device-level function
//      through vkGetInstanceProcAddr(instance, ...), on the first instance that gets here.
//
// Device-level functions come from vkGetInstanceProcAddr, not vkGetDeviceProcAddr: the
// loader then returns its dispatching trampolines, which serve every device (hearth holds
// one device per requested index, possibly several at once), where vkGetDeviceProcAddr
// would return one driver's entry points, which a process-wide table cannot hold for two
// devices. The Khronos loader hands out the same trampolines for every instance, so later
// instances (each Device and each list_devices() call makes its own) use the same table;
// those trampolines are exactly the symbols that linking libvulkan used to bind.
//
// A missing loader or function is an Error ("vulkan: ..."), never a crash, so
// `--backend auto` falls back to the CPU as it does when there is no device. The library is
// never closed: drivers it loaded may keep threads and atexit handlers.
//
// Adding a call: add one line to the list of its level below, then call it as
// fn.vkSomething(...). A function missing from the lists does not compile (there are no
// prototypes to fall back on). Extension functions that a device may lack are not listed:
// query them with fn.vkGetInstanceProcAddr where they are used and handle nullptr.
#pragma once

#include <vulkan/vulkan.h>

#include <string>

#include "result.h"

#ifndef VK_NO_PROTOTYPES
#error "engine/vulkan must be compiled with VK_NO_PROTOTYPES (engine/CMakeLists.txt defines it)"
#endif

// Callable before any instance exists (vkGetInstanceProcAddr(NULL, name)).
#define HEARTH_VK_GLOBAL_FUNCTIONS(X)         \
    X(vkEnumerateInstanceVersion)             \
    X(vkEnumerateInstanceExtensionProperties) \
    X(vkCreateInstance)

// Dispatched through a VkInstance or VkPhysicalDevice.
#define HEARTH_VK_INSTANCE_FUNCTIONS(X)         \
    X(vkDestroyInstance)                        \
    X(vkEnumeratePhysicalDevices)               \
    X(vkGetPhysicalDeviceProperties)            \
    X(vkGetPhysicalDeviceProperties2)           \
    X(vkGetPhysicalDeviceFeatures2)             \
    X(vkGetPhysicalDeviceMemoryProperties)      \
    X(vkGetPhysicalDeviceMemoryProperties2)     \
    X(vkGetPhysicalDeviceQueueFamilyProperties) \
    X(vkEnumerateDeviceExtensionProperties)     \
    X(vkCreateDevice)

// Dispatched through a VkDevice, VkQueue or VkCommandBuffer.
#define HEARTH_VK_DEVICE_FUNCTIONS(X) \
    X(vkDestroyDevice)                \
    X(vkGetDeviceQueue)               \
    X(vkDeviceWaitIdle)               \
    X(vkQueueSubmit)                  \
    X(vkCreateFence)                  \
    X(vkDestroyFence)                 \
    X(vkResetFences)                  \
    X(vkWaitForFences)                \
    X(vkCreateCommandPool)            \
    X(vkDestroyCommandPool)           \
    X(vkResetCommandPool)             \
    X(vkAllocateCommandBuffers)       \
    X(vkBeginCommandBuffer)           \
    X(vkEndCommandBuffer)             \
    X(vkCreateBuffer)                 \
    X(vkDestroyBuffer)                \
    X(vkGetBufferMemoryRequirements)  \
    X(vkAllocateMemory)               \
    X(vkFreeMemory)                   \
    X(vkBindBufferMemory)             \
    X(vkMapMemory)                    \
    X(vkFlushMappedMemoryRanges)      \
    X(vkInvalidateMappedMemoryRanges) \
    X(vkCreateShaderModule)           \
    X(vkDestroyShaderModule)          \
    X(vkCreatePipelineCache)          \
    X(vkDestroyPipelineCache)         \
    X(vkCreateDescriptorSetLayout)    \
    X(vkDestroyDescriptorSetLayout)   \
    X(vkCreatePipelineLayout)         \
    X(vkDestroyPipelineLayout)        \
    X(vkCreateComputePipelines)       \
    X(vkDestroyPipeline)              \
    X(vkCreateDescriptorPool)         \
    X(vkDestroyDescriptorPool)        \
    X(vkResetDescriptorPool)          \
    X(vkAllocateDescriptorSets)       \
    X(vkUpdateDescriptorSets)         \
    X(vkCmdPipelineBarrier)           \
    X(vkCmdCopyBuffer)                \
    X(vkCmdFillBuffer)                \
    X(vkCmdBindPipeline)              \
    X(vkCmdBindDescriptorSets)        \
    X(vkCmdPushConstants)             \
    X(vkCmdDispatch)

namespace hearth::vk {

// One pointer per listed function, named as the function. Null until loaded.
struct Functions {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
#define HEARTH_VK_MEMBER(name) PFN_##name name = nullptr;
    HEARTH_VK_GLOBAL_FUNCTIONS(HEARTH_VK_MEMBER)
    HEARTH_VK_INSTANCE_FUNCTIONS(HEARTH_VK_MEMBER)
    HEARTH_VK_DEVICE_FUNCTIONS(HEARTH_VK_MEMBER)
#undef HEARTH_VK_MEMBER
};

// The table. The global functions are valid once load_loader() succeeded, the others once
// load_instance_functions() did; both are written only before they report success.
extern const Functions& fn;

// The file dlopen is given: $HEARTH_VULKAN_LOADER when set and not empty (a path, or a
// name the dynamic linker searches for), else "libvulkan.so.1".
std::string loader_path();

// Opens the loader and resolves vkGetInstanceProcAddr and the global functions; once per
// process, later calls return the first outcome. Errors:
//   "vulkan: Vulkan loader libvulkan.so.1 not found: <dlerror()>"
//   "vulkan: Vulkan loader <path> lacks vkEnumerateInstanceVersion (hearth needs a Vulkan
//    1.2 loader)"
Status load_loader();

// Resolves the instance- and device-level functions through `instance` (a no-op once they
// are loaded). On error the table is unchanged and the caller still owns `instance`.
Status load_instance_functions(VkInstance instance);

}  // namespace hearth::vk
