// Typed reading of untrusted JSON with the path of the first bad field.
//
// Every protocol struct has `bool read(const json&, T&, JsonReader&)`; handlers receive
// the struct, never raw JSON. A failed read records one message naming the field, e.g.
//   params.contentChanges[2].range.start.line: expected a non-negative integer
// which becomes the text of the InvalidParams (-32602) reply. Readers never throw (every
// type is checked before nlohmann's get<>), and they never trust sizes: containers are
// read element by element from what is actually there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json_rpc.h"

namespace hearth::lsp {

class JsonReader {
  public:
    explicit JsonReader(std::string root = "params") { path_.push_back(std::move(root)); }

    // Records `what` at the current path, unless an error was recorded already (the first
    // error is the useful one; later ones are usually consequences). Returns false.
    bool fail(std::string_view what);

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }

    // Path bookkeeping for ObjectReader and the container readers.
    void push_key(std::string_view key);
    void push_index(size_t index);
    void pop() { path_.pop_back(); }
    std::string path() const;

  private:
    std::vector<std::string> path_;
    std::string error_;
};

bool read(const json& j, bool& out, JsonReader& r);
bool read(const json& j, int32_t& out, JsonReader& r);
bool read(const json& j, uint32_t& out, JsonReader& r);
bool read(const json& j, int64_t& out, JsonReader& r);
bool read(const json& j, double& out, JsonReader& r);
bool read(const json& j, std::string& out, JsonReader& r);
bool read(const json& j, json& out, JsonReader& r);  // any value, copied as is

template <class T>
bool read(const json& j, std::vector<T>& out, JsonReader& r) {
    if (!j.is_array()) return r.fail("expected an array");
    out.clear();
    out.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        r.push_index(i);
        T item{};
        bool ok = read(j[i], item, r);
        r.pop();
        if (!ok) return false;
        out.push_back(std::move(item));
    }
    return true;
}

// null reads as "absent".
template <class T>
bool read(const json& j, std::optional<T>& out, JsonReader& r) {
    if (j.is_null()) {
        out.reset();
        return true;
    }
    T value{};
    if (!read(j, value, r)) return false;
    out = std::move(value);
    return true;
}

// Reads the fields of one object.
//
//   ObjectReader o(j, r);
//   return o && o.required("line", p.line) && o.required("character", p.character);
class ObjectReader {
  public:
    ObjectReader(const json& j, JsonReader& r) : j_(j), r_(r) {
        if (!j.is_object()) r.fail("expected an object");
    }
    explicit operator bool() const { return j_.is_object(); }

    template <class T>
    bool required(std::string_view key, T& out) {
        auto it = j_.find(key);
        if (it == j_.end()) {
            r_.push_key(key);
            r_.fail("missing required field");
            r_.pop();
            return false;
        }
        return field(key, *it, out);
    }

    // Absent (or null, for optional<T>) leaves `out` untouched; a present value of the
    // wrong type is an error.
    template <class T>
    bool optional(std::string_view key, T& out) {
        auto it = j_.find(key);
        if (it == j_.end()) return true;
        if (it->is_null() && !accepts_null(out)) return true;
        return field(key, *it, out);
    }

    // The raw member, or nullptr when absent.
    const json* get(std::string_view key) const {
        auto it = j_.find(key);
        return it == j_.end() ? nullptr : &*it;
    }

  private:
    template <class T>
    static bool accepts_null(const T&) {
        return false;
    }
    template <class T>
    static bool accepts_null(const std::optional<T>&) {
        return true;
    }
    static bool accepts_null(const json&) { return true; }

    template <class T>
    bool field(std::string_view key, const json& value, T& out) {
        r_.push_key(key);
        bool ok = read(value, out, r_);
        r_.pop();
        return ok;
    }

    const json& j_;
    JsonReader& r_;
};

}  // namespace hearth::lsp
