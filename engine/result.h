// hearth::Expected<T> — a value or an error message, for every fallible engine call.
//
// The engine never aborts on bad input (a bad GGUF, a bad request): it returns an
// Error that names what was wrong, and the caller (CLI or LSP server) turns it into a
// one-line message or an LSP error reply.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace hearth {

struct Error {
    std::string message;
};

inline Error make_error(std::string message) { return Error{std::move(message)}; }

template <class T>
class [[nodiscard]] Expected {
public:
    Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Expected(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

// Expected<void>: success or an error.
class [[nodiscard]] Status {
public:
    Status() = default;
    Status(Error error) : error_(std::move(error)), ok_(false) {}
    static Status success() { return Status(); }

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }

private:
    Error error_;
    bool ok_ = true;
};

}  // namespace hearth

// Propagate an error from an Expected/Status expression inside a function returning
// Expected<U> or Status.
#define HEARTH_TRY(expr)                                   \
    do {                                                   \
        auto&& hearth_try_result_ = (expr);                \
        if (!hearth_try_result_.ok()) return hearth_try_result_.error(); \
    } while (0)
