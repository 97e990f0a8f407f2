#include "settings.h"

#include <cmath>

namespace hearth::lsp {

namespace {

using nlohmann::json;

class Applier {
  public:
    Applier(const json& obj, std::vector<std::string>& warnings) : obj_(obj), warnings_(warnings) {}

    void string(const char* key, std::string& out,
                std::initializer_list<const char*> allowed = {}) {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_string()) return warn(key, "expected a string");
        std::string s = v->get<std::string>();
        if (allowed.size() > 0) {
            bool found = false;
            std::string list;
            for (const char* a : allowed) {
                found = found || s == a;
                list += list.empty() ? a : std::string(", ") + a;
            }
            if (!found) return warn(key, "expected one of " + list);
        }
        out = std::move(s);
    }

    template <class Int>
    void integer(const char* key, Int& out, int64_t lo, int64_t hi) {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_number_integer()) return warn(key, "expected an integer");
        if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
            return warn(key, range(lo, hi));
        }
        int64_t x = v->get<int64_t>();
        if (x < lo || x > hi) return warn(key, range(lo, hi));
        out = static_cast<Int>(x);
    }

    void number(const char* key, double& out, double lo, double hi) {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_number()) return warn(key, "expected a number");
        double x = v->get<double>();
        if (!std::isfinite(x) || x < lo || x > hi) {
            return warn(key, "expected a number in [" + fmt(lo) + ", " + fmt(hi) + "]");
        }
        out = x;
    }

    void strings(const char* key, std::vector<std::string>& out) {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_array()) return warn(key, "expected an array of strings");
        std::vector<std::string> list;
        for (const json& e : *v) {
            if (!e.is_string()) return warn(key, "expected an array of strings");
            list.push_back(e.get<std::string>());
        }
        out = std::move(list);
    }

  private:
    const json* find(const char* key) const {
        auto it = obj_.find(key);
        if (it == obj_.end() || it->is_null()) return nullptr;
        return &*it;
    }
    void warn(const char* key, const std::string& what) {
        warnings_.push_back(std::string("setting \"") + key + "\" ignored: " + what);
    }
    static std::string range(int64_t lo, int64_t hi) {
        return "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    }
    static std::string fmt(double x) {
        std::string s = std::to_string(x);
        while (s.size() > 1 && s.back() == '0') s.pop_back();
        if (!s.empty() && s.back() == '.') s.pop_back();
        return s;
    }

    const json& obj_;
    std::vector<std::string>& warnings_;
};

}  // namespace

std::vector<std::string> Settings::apply(const nlohmann::json& settings) {
    std::vector<std::string> warnings;
    const json* obj = &settings;
    if (obj->is_object()) {
        auto it = obj->find("hearth");
        if (it != obj->end() && it->is_object()) obj = &*it;
    }
    if (obj->is_null()) return warnings;
    if (!obj->is_object()) {
        warnings.push_back("settings ignored: expected an object");
        return warnings;
    }
    Applier a(*obj, warnings);
    a.string("model", model_path);
    a.string("backend", backend, {"auto", "cpu", "vulkan"});
    a.integer("contextSize", context_size, 256, 1 << 20);
    a.string("cacheDir", cache_dir);
    a.integer("cacheMaxMb", cache_max_mb, 0, 1 << 20);
    a.integer("cacheTotalMaxMb", cache_total_max_mb, 0, 1 << 24);
    a.integer("contextTokens", context_tokens, 0, 1 << 20);
    a.strings("contextExclude", context_exclude);
    a.strings("contextSecrets", context_secrets);
    a.string("fimTemplate", fim_template, {"", "qwen", "deepseek", "starcoder2", "codellama"});
    a.integer("maxTokens", max_tokens, 1, 4096);
    a.integer("maxTokensAutomatic", max_tokens_automatic, 1, 4096);
    a.integer("automaticLatencyMs", automatic_latency_ms, 0, 60000);
    a.integer("maxSuffixTokensAutomatic", max_suffix_tokens_automatic, 0, 1 << 20);
    a.integer("maxLines", max_lines, 0, 1000);
    a.number("temperature", temperature, 0.0, 2.0);
    a.integer("debounceMs", debounce_ms, 0, 5000);
    a.integer("rewriteMaxTokens", rewrite_max_tokens, 1, 8192);
    a.string("rewriteInstruction", rewrite_instruction);
    a.string("logLevel", log_level, {"trace", "debug", "info", "warn", "error", "off"});
    return warnings;
}

bool Settings::engine_differs(const Settings& o) const {
    return model_path != o.model_path || backend != o.backend || context_size != o.context_size ||
           cache_dir != o.cache_dir || cache_max_mb != o.cache_max_mb ||
           cache_total_max_mb != o.cache_total_max_mb || workspace_root != o.workspace_root ||
           fim_template != o.fim_template;
}

nlohmann::json Settings::to_json() const {
    return json{{"model", model_path},
                {"backend", backend},
                {"contextSize", context_size},
                {"cacheDir", cache_dir},
                {"cacheMaxMb", cache_max_mb},
                {"cacheTotalMaxMb", cache_total_max_mb},
                {"contextTokens", context_tokens},
                {"contextExclude", context_exclude},
                {"contextSecrets", context_secrets},
                {"fimTemplate", fim_template},
                {"maxTokens", max_tokens},
                {"maxTokensAutomatic", max_tokens_automatic},
                {"automaticLatencyMs", automatic_latency_ms},
                {"maxSuffixTokensAutomatic", max_suffix_tokens_automatic},
                {"maxLines", max_lines},
                {"temperature", temperature},
                {"debounceMs", debounce_ms},
                {"rewriteMaxTokens", rewrite_max_tokens},
                {"rewriteInstruction", rewrite_instruction},
                {"logLevel", log_level}};
}

}  // namespace hearth::lsp
