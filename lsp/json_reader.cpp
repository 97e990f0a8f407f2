#include "json_reader.h"

#include <algorithm>
#include <limits>

namespace hearth::lsp {

bool JsonReader::fail(std::string_view what) {
    if (error_.empty()) error_ = path() + ": " + std::string(what);
    return false;
}

void JsonReader::push_key(std::string_view key) {
    // Keys are echoed into error messages; a hostile key must not make them huge.
    constexpr size_t kMaxKey = 64;
    std::string part;
    part.reserve(std::min(key.size(), kMaxKey) + 4);
    part.push_back('.');
    part.append(key.substr(0, kMaxKey));
    if (key.size() > kMaxKey) part.append("...");
    path_.push_back(std::move(part));
}

void JsonReader::push_index(size_t index) {
    std::string part = std::to_string(index);
    part.insert(part.begin(), '[');
    part.push_back(']');
    path_.push_back(std::move(part));
}

std::string JsonReader::path() const {
    std::string out;
    for (const auto& part : path_) out += part;
    return out;
}

bool read(const json& j, bool& out, JsonReader& r) {
    if (!j.is_boolean()) return r.fail("expected a boolean");
    out = j.get<bool>();
    return true;
}

bool read(const json& j, int64_t& out, JsonReader& r) {
    if (j.is_number_unsigned()) {
        uint64_t v = j.get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return r.fail("integer out of range");
        }
        out = static_cast<int64_t>(v);
        return true;
    }
    if (!j.is_number_integer()) return r.fail("expected an integer");
    out = j.get<int64_t>();
    return true;
}

bool read(const json& j, int32_t& out, JsonReader& r) {
    int64_t v = 0;
    if (!read(j, v, r)) return false;
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
        return r.fail("integer out of range");
    }
    out = static_cast<int32_t>(v);
    return true;
}

bool read(const json& j, uint32_t& out, JsonReader& r) {
    if (!j.is_number_integer()) return r.fail("expected a non-negative integer");
    int64_t v = 0;
    if (!read(j, v, r)) return false;
    if (v < 0) return r.fail("expected a non-negative integer");
    if (v > std::numeric_limits<uint32_t>::max()) return r.fail("integer out of range");
    out = static_cast<uint32_t>(v);
    return true;
}

bool read(const json& j, double& out, JsonReader& r) {
    if (!j.is_number()) return r.fail("expected a number");
    out = j.get<double>();
    return true;
}

bool read(const json& j, std::string& out, JsonReader& r) {
    if (!j.is_string()) return r.fail("expected a string");
    out = j.get<std::string>();
    return true;
}

bool read(const json& j, json& out, JsonReader&) {
    out = j;
    return true;
}

}  // namespace hearth::lsp
