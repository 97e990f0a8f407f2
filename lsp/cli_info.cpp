// hearth info MODEL [--json]: metadata, tensor table and the memory a model needs.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <string>

#include "cli.h"
#include "engine.h"
#include "gguf.h"
#include "quant.h"

namespace hearth::cli {
namespace {

using nlohmann::json;

// Metadata value as JSON; long arrays (vocabularies, merges) are summarised.
json value_json(const GGUFValue& v, size_t max_items) {
    if (const GGUFArray* a = v.as_array()) {
        json items = json::array();
        for (size_t i = 0; i < a->items.size() && i < max_items; ++i) {
            items.push_back(value_json(a->items[i], max_items));
        }
        if (a->items.size() <= max_items) return items;
        return json{{"type", "array<" + std::string(gguf_type_name(a->elem_type)) + ">"},
                    {"count", a->items.size()},
                    {"head", items}};
    }
    if (auto s = v.as_string()) return json(std::string(*s));
    if (auto b = v.as_bool()) return json(*b);
    if (v.type == GGUFType::FLOAT32 || v.type == GGUFType::FLOAT64) return json(*v.as_float());
    if (auto i = v.as_int()) return json(*i);
    if (auto u = v.as_uint()) return json(*u);
    return json();
}

std::string human_bytes(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
    return buf;
}

json describe_model(const LoadedModel& m, int64_t n_ctx) {
    const Hparams& hp = m.model->hparams();
    const int64_t ctx = n_ctx > 0 ? n_ctx : hp.n_ctx_train;
    const uint64_t kv_tok = m.model->kv_bytes_per_token(KVDType::F16);
    char fp[32];
    std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(m.model->fingerprint()));
    return json{{"architecture", std::string(arch_name(hp.arch))},
                {"name", std::string(m.model->name())},
                {"n_vocab", hp.n_vocab},
                {"n_embd", hp.n_embd},
                {"n_layer", hp.n_layer},
                {"n_head", hp.n_head},
                {"n_head_kv", hp.n_head_kv},
                {"head_dim", hp.head_dim},
                {"n_ff", hp.n_ff},
                {"n_ctx_train", hp.n_ctx_train},
                {"rope", hp.rope_style == RopeStyle::Neox ? "neox" : "normal"},
                {"rope_theta", hp.rope_theta},
                {"rms_eps", hp.rms_eps},
                {"qkv_bias", hp.has_qkv_bias},
                {"tied_output", hp.tied_output},
                {"fingerprint", fp},
                {"weight_bytes", m.model->memory_bytes()},
                {"kv_bytes_per_token_f16", kv_tok},
                {"context", ctx},
                {"kv_bytes_at_context_f16", kv_tok * static_cast<uint64_t>(ctx)},
                {"memory_needed", human_bytes(static_cast<double>(m.model->memory_bytes() +
                                                                  kv_tok * static_cast<uint64_t>(ctx)))}};
}

std::string shape_string(const GGUFTensorInfo& t) {
    std::string s = "[";
    for (uint32_t d = 0; d < t.n_dims; ++d) {
        if (d) s += ", ";
        s += std::to_string(t.ne[d]);
    }
    return s + "]";
}

int run_info(const std::string& path, bool as_json, int64_t n_ctx) {
    auto opened = GGUFFile::open(path);
    if (!opened) return fail(opened.error());
    std::shared_ptr<const GGUFFile> file(std::move(*opened));
    const GGUFFile& f = *file;

    uint64_t weight_bytes = 0;
    std::map<std::string, uint64_t> bytes_by_type;
    for (const GGUFTensorInfo& t : f.tensors()) {
        weight_bytes += t.nbytes;
        bytes_by_type[std::string(type_traits(t.type)->name)] += t.nbytes;
    }

    // The model binding validates every tensor against the hyperparameters; a file that
    // only carries a vocabulary (or an architecture hearth does not run) still prints.
    json model_json;
    std::string model_error;
    auto loaded = load_model_from(file);
    if (loaded) {
        model_json = describe_model(*loaded, n_ctx);
    } else {
        model_error = loaded.error().message;
    }
    const GGUFFile& g = f;

    if (as_json) {
        json j;
        j["path"] = path;
        j["version"] = g.version();
        j["file_bytes"] = g.file_size();
        j["alignment"] = g.alignment();
        json md = json::object();
        for (const GGUFKV& kv : g.metadata()) md[std::string(kv.key)] = value_json(kv.value, 16);
        j["metadata"] = md;
        json tensors = json::array();
        for (const GGUFTensorInfo& t : g.tensors()) {
            json shape = json::array();
            for (uint32_t d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
            tensors.push_back({{"name", std::string(t.name)},
                               {"type", std::string(type_traits(t.type)->name)},
                               {"shape", shape},
                               {"offset", t.offset},
                               {"bytes", t.nbytes}});
        }
        j["tensors"] = tensors;
        j["weight_bytes"] = weight_bytes;
        if (loaded) j["model"] = model_json;
        else j["model_error"] = model_error;
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }

    std::printf("file       %s\n", path.c_str());
    std::printf("gguf       v%u, %s, %zu metadata keys, %zu tensors, alignment %lu\n",
                g.version(), human_bytes(static_cast<double>(g.file_size())).c_str(),
                g.metadata().size(), g.tensors().size(),
                static_cast<unsigned long>(g.alignment()));
    std::printf("\nmetadata\n");
    for (const GGUFKV& kv : g.metadata()) {
        std::string v = value_json(kv.value, 8).dump();
        if (v.size() > 96) v = v.substr(0, 93) + "...";
        std::printf("  %-44s %s\n", std::string(kv.key).c_str(), v.c_str());
    }
    if (!g.tensors().empty()) {
        std::printf("\ntensors\n");
        for (const GGUFTensorInfo& t : g.tensors()) {
            std::printf("  %-36s %-6s %-22s %s\n", std::string(t.name).c_str(),
                        std::string(type_traits(t.type)->name).c_str(), shape_string(t).c_str(),
                        human_bytes(static_cast<double>(t.nbytes)).c_str());
        }
        std::printf("\nweights    %s (", human_bytes(static_cast<double>(weight_bytes)).c_str());
        bool first = true;
        for (const auto& [name, bytes] : bytes_by_type) {
            std::printf("%s%s %s", first ? "" : ", ", name.c_str(),
                        human_bytes(static_cast<double>(bytes)).c_str());
            first = false;
        }
        std::printf(")\n");
    }
    if (loaded) {
        std::printf("\nmodel\n");
        for (auto& [k, v] : model_json.items()) {
            std::printf("  %-22s %s\n", k.c_str(), v.is_string() ? v.get<std::string>().c_str()
                                                                : v.dump().c_str());
        }
    } else {
        std::printf("\nmodel      not runnable: %s\n", model_error.c_str());
    }
    return 0;
}

}  // namespace

void register_info(CLI::App& app, Outcome& out) {
    auto* cmd = app.add_subcommand("info", "Show a GGUF model's metadata, tensors and memory needs");
    auto path = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    auto n_ctx = std::make_shared<int64_t>(0);
    cmd->add_option("model", *path, "GGUF file")->required();
    cmd->add_flag("--json", *as_json, "Print JSON");
    cmd->add_option("--ctx", *n_ctx, "Context length for the KV estimate (default: the model's)");
    cmd->callback([&out, path, as_json, n_ctx] { out.exit_code = run_info(*path, *as_json, *n_ctx); });
}

}  // namespace hearth::cli
