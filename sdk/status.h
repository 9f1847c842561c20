// Status and Expected<T>: how every Volt module reports failure. No exception crosses a module boundary; functions
// that can fail return Status (no value) or Expected<T> (a value or a Status). Messages name the file, field or tensor
// and say what was expected, so a user can act on them without reading code.
#pragma once

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace volt {

enum class StatusCode : int32_t {
    kOk = 0,
    kInvalidArgument = 1,   // the caller passed something malformed (bad flag, bad shape, bad config field)
    kNotFound = 2,          // a file, tensor or key that should exist does not
    kDataLoss = 3,          // a file exists but is corrupt or truncated
    kResourceExhausted = 4, // memory, context length, a size cap
    kCancelled = 5,         // the caller asked to stop
    kUnimplemented = 6,     // a valid request this build cannot serve (e.g. CUDA in a CPU-only build)
    kInternal = 7,          // a bug in Volt
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok() { return {}; }
    bool is_ok() const { return code_ == StatusCode::kOk; }
    explicit operator bool() const { return is_ok(); }
    StatusCode code() const { return code_; }
    const std::string& message() const { return message_; }
    // "DATA_LOSS: model.safetensors: tensor 'x': ..." — for logs and CLI output.
    std::string to_string() const;
    // Prefixes context (e.g. the file being read) to the message; keeps the code.
    Status with_context(std::string_view context) const;

private:
    StatusCode code_ = StatusCode::kOk;
    std::string message_;
};

// Concatenates anything streamable: str_cat("tensor '", name, "' has ", n, " dims").
template <typename... Args>
std::string str_cat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}

template <typename... Args> Status invalid_argument(Args&&... a) { return {StatusCode::kInvalidArgument, str_cat(std::forward<Args>(a)...)}; }
template <typename... Args> Status not_found(Args&&... a) { return {StatusCode::kNotFound, str_cat(std::forward<Args>(a)...)}; }
template <typename... Args> Status data_loss(Args&&... a) { return {StatusCode::kDataLoss, str_cat(std::forward<Args>(a)...)}; }
template <typename... Args> Status resource_exhausted(Args&&... a) { return {StatusCode::kResourceExhausted, str_cat(std::forward<Args>(a)...)}; }
template <typename... Args> Status cancelled(Args&&... a) { return {StatusCode::kCancelled, str_cat(std::forward<Args>(a)...)}; }
template <typename... Args> Status unimplemented(Args&&... a) { return {StatusCode::kUnimplemented, str_cat(std::forward<Args>(a)...)}; }
template <typename... Args> Status internal_error(Args&&... a) { return {StatusCode::kInternal, str_cat(std::forward<Args>(a)...)}; }

// A value of T or the Status that explains why there is none (std::expected is C++23).
template <typename T>
class [[nodiscard]] Expected {
public:
    Expected(T value) : v_(std::move(value)) {}                       // NOLINT: implicit by design
    Expected(Status status) : v_(std::move(status)) {                 // NOLINT: implicit by design
        if (std::get<Status>(v_).is_ok()) v_ = Status(StatusCode::kInternal, "Expected constructed from an OK status");
    }

    bool has_value() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return has_value(); }
    T& value() & { return std::get<T>(v_); }
    const T& value() const& { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    // OK when a value is held.
    Status status() const { return has_value() ? Status::ok() : std::get<Status>(v_); }

private:
    std::variant<T, Status> v_;
};

}  // namespace volt

#define VOLT_CONCAT_INNER_(a, b) a##b
#define VOLT_CONCAT_(a, b) VOLT_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK. The local's name is unique per use
// (__COUNTER__), so a use inside a lambda within another use's `expr` shadows nothing.
#define VOLT_RETURN_IF_ERROR(expr) VOLT_RETURN_IF_ERROR_IMPL_(VOLT_CONCAT_(volt_status_, __COUNTER__), expr)
#define VOLT_RETURN_IF_ERROR_IMPL_(st, expr) \
    do {                                     \
        ::volt::Status st = (expr);          \
        if (!st.is_ok()) return st;          \
    } while (0)

// `VOLT_ASSIGN_OR_RETURN(auto x, make_x());` — unwraps an Expected or returns its Status.
#define VOLT_ASSIGN_OR_RETURN(lhs, expr) VOLT_ASSIGN_OR_RETURN_IMPL_(VOLT_CONCAT_(volt_expected_, __LINE__), lhs, expr)
#define VOLT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
    auto tmp = (expr);                              \
    if (!tmp.has_value()) return tmp.status();      \
    lhs = std::move(tmp).value()
