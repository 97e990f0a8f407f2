#include "engine.h"

#include <algorithm>
#include <cstdlib>

#include "cpu/cpu_backend.h"
#if HEARTH_HAS_VULKAN
#include "vulkan/vulkan_backend.h"
#endif

namespace hearth {

Expected<LoadedModel> load_model_from(std::shared_ptr<const GGUFFile> gguf) {
    LoadedModel m;
    m.gguf = std::move(gguf);
    auto model = Model::load(m.gguf);
    if (!model) return model.error();
    m.model = std::shared_ptr<const Model>(std::move(*model));
    auto tok = Tokenizer::from_gguf(*m.gguf);
    if (!tok) return make_error("tokenizer: " + tok.error().message);
    m.tokenizer = std::make_shared<const Tokenizer>(std::move(*tok));
    if (m.tokenizer->n_vocab() != m.model->hparams().n_vocab) {
        return make_error("tokenizer has " + std::to_string(m.tokenizer->n_vocab()) +
                          " tokens but token_embd.weight has " +
                          std::to_string(m.model->hparams().n_vocab) + " rows");
    }
    return m;
}

Expected<LoadedModel> load_model(const std::string& path) {
    auto file = GGUFFile::open(path);
    if (!file) return file.error();
    auto m = load_model_from(std::shared_ptr<const GGUFFile>(std::move(*file)));
    if (!m) return make_error(path + ": " + m.error().message);
    return m;
}

Expected<BackendKind> parse_backend_kind(std::string_view name) {
    if (name == "auto") return BackendKind::Auto;
    if (name == "cpu") return BackendKind::Cpu;
    if (name == "vulkan") return BackendKind::Vulkan;
    return make_error("unknown backend '" + std::string(name) + "' (choose auto, cpu or vulkan)");
}

bool vulkan_compiled_in() {
#if HEARTH_HAS_VULKAN
    return true;
#else
    return false;
#endif
}

Expected<std::unique_ptr<Backend>> make_backend(std::shared_ptr<const Model> model,
                                                const BackendOptions& opts, std::string* note) {
    if (opts.kind == BackendKind::Vulkan || opts.kind == BackendKind::Auto) {
#if HEARTH_HAS_VULKAN
        // Auto skips software Vulkan devices (Mesa's llvmpipe): on a machine without a
        // GPU the CPU backend is the faster way to run the same model.
        if (opts.kind == BackendKind::Auto && opts.device < 0 && std::getenv("HEARTH_DEVICE") == nullptr) {
            auto devices = list_vulkan_devices();
            const bool hardware = devices.ok() &&
                std::any_of(devices->begin(), devices->end(), [](const vk::DeviceInfo& d) {
                    return d.usable && d.type != "cpu";
                });
            if (!hardware) {
                // Listing fails when Vulkan itself is missing (no loader, no driver).
                if (note)
                    *note = devices.ok() ? "no GPU Vulkan device; using the CPU"
                                         : "Vulkan unavailable (" + devices.error().message +
                                               "); using the CPU";
                return make_cpu_backend(std::move(model), opts.n_threads);
            }
        }
        VulkanOptions vo;
        vo.device = opts.device;
        vo.progress = opts.progress;
        auto vk = make_vulkan_backend(model, vo);
        if (vk) return std::move(*vk);
        if (opts.kind == BackendKind::Vulkan) return vk.error();
        if (note) *note = "Vulkan unavailable (" + vk.error().message + "); using the CPU";
#else
        if (opts.kind == BackendKind::Vulkan) {
            return make_error("this build of hearth has no Vulkan backend");
        }
        if (note) *note = "built without Vulkan; using the CPU";
#endif
    }
    return make_cpu_backend(std::move(model), opts.n_threads);
}

}  // namespace hearth
