// Engine entry points: load a model file (weights + tokenizer) and make a backend for it.
//
// These are the calls the command line and the workspace layer use; everything below
// (GGUF, Model, Tokenizer, backends, Session) stays usable on its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "backend.h"
#include "gguf.h"
#include "model.h"
#include "result.h"
#include "tokenizer.h"

namespace hearth {

struct LoadedModel {
    std::shared_ptr<const GGUFFile> gguf;
    std::shared_ptr<const Model> model;
    std::shared_ptr<const Tokenizer> tokenizer;
};

// Maps, parses and validates a GGUF file; binds the weights and loads the tokenizer.
Expected<LoadedModel> load_model(const std::string& path);
Expected<LoadedModel> load_model_from(std::shared_ptr<const GGUFFile> gguf);

enum class BackendKind { Auto, Cpu, Vulkan };

// "auto", "cpu", "vulkan"; anything else is an error listing the choices.
Expected<BackendKind> parse_backend_kind(std::string_view name);
// True when this build includes the Vulkan backend.
bool vulkan_compiled_in();

struct BackendOptions {
    BackendKind kind = BackendKind::Auto;
    int n_threads = 0;   // CPU backend: 0 = all hardware threads
    int device = -1;     // Vulkan: device index (-1: HEARTH_DEVICE or the best device)
    // Weight upload progress (bytes done, bytes total); may be empty.
    std::function<void(uint64_t, uint64_t)> progress;
};

// Auto picks Vulkan when it is compiled in and a usable device exists, else the CPU;
// `note` (optional) receives why Auto fell back to the CPU.
Expected<std::unique_ptr<Backend>> make_backend(std::shared_ptr<const Model> model,
                                                const BackendOptions& opts,
                                                std::string* note = nullptr);

}  // namespace hearth
