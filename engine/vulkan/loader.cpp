#include "vulkan/loader.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace hearth::vk {

namespace {

Functions table;

Status missing(const char* name) {
    return make_error("vulkan: Vulkan loader " + loader_path() + " lacks " + name +
                      " (hearth needs a Vulkan 1.2 loader)");
}

Status open_loader() {
    const std::string path = loader_path();
    // RTLD_LOCAL: the loader's symbols stay out of the global namespace, so they can never
    // be bound in place of (or by) anything else in the process.
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* why = dlerror();
        return make_error("vulkan: Vulkan loader " + path +
                          " not found: " + (why ? why : "dlopen failed"));
    }
    // dlsym returns void*; POSIX guarantees that it converts to a function pointer.
    auto gipa = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));
    if (!gipa)
        return make_error("vulkan: " + path + " is not a Vulkan loader (no vkGetInstanceProcAddr)");
    Functions f;
    f.vkGetInstanceProcAddr = gipa;
#define HEARTH_VK_LOAD(name)                                            \
    f.name = reinterpret_cast<PFN_##name>(gipa(VK_NULL_HANDLE, #name)); \
    if (!f.name) return missing(#name);
    HEARTH_VK_GLOBAL_FUNCTIONS(HEARTH_VK_LOAD)
#undef HEARTH_VK_LOAD
    table = f;
    return Status::success();
}

}  // namespace

const Functions& fn = table;

std::string loader_path() {
    const char* env = std::getenv("HEARTH_VULKAN_LOADER");
    return env && *env ? env : "libvulkan.so.1";
}

Status load_loader() {
    static const Status status = open_loader();  // thread-safe, once per process
    return status;
}

Status load_instance_functions(VkInstance instance) {
    static std::mutex mutex;
    static std::atomic<bool> loaded{false};
    if (loaded.load(std::memory_order_acquire)) return Status::success();
    HEARTH_TRY(load_loader());
    std::lock_guard<std::mutex> lock(mutex);
    if (loaded.load(std::memory_order_relaxed)) return Status::success();
    // Resolved into a copy first, so a failure leaves the table as it was; then only these
    // members are written (other threads may be reading the global functions meanwhile).
    Functions f;
#define HEARTH_VK_LOAD(name)                                                             \
    f.name = reinterpret_cast<PFN_##name>(table.vkGetInstanceProcAddr(instance, #name)); \
    if (!f.name) return missing(#name);
    HEARTH_VK_INSTANCE_FUNCTIONS(HEARTH_VK_LOAD)
    HEARTH_VK_DEVICE_FUNCTIONS(HEARTH_VK_LOAD)
#undef HEARTH_VK_LOAD
#define HEARTH_VK_PUBLISH(name) table.name = f.name;
    HEARTH_VK_INSTANCE_FUNCTIONS(HEARTH_VK_PUBLISH)
    HEARTH_VK_DEVICE_FUNCTIONS(HEARTH_VK_PUBLISH)
#undef HEARTH_VK_PUBLISH
    loaded.store(true, std::memory_order_release);
    return Status::success();
}

}  // namespace hearth::vk
