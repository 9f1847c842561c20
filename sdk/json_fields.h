// Typed reads of JSON object fields with errors that name the file, the object path and the field, and say what
// was expected: "config.json: text_config.num_attention_heads: expected a positive integer, got "64"".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/status.h"

namespace volt {

class JsonFields {
public:
    // `where` is the path prefix used in messages, e.g. "config.json: text_config".
    JsonFields(const nlohmann::json& object, std::string where) : j_(object), where_(std::move(where)) {}

    bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
    const nlohmann::json& raw(const char* key) const { return j_.at(key); }
    // "config.json: hidden_size" at the top level (where_ ends in ':'), "config.json: text_config.hidden_size" below.
    std::string where(const char* key) const { return str_cat(where_, where_.back() == ':' ? " " : ".", key); }

    Expected<int64_t> integer(const char* key, int64_t min_value) const;           // required
    Expected<int64_t> integer_or(const char* key, int64_t fallback, int64_t min_value) const;
    Expected<std::optional<int64_t>> optional_integer(const char* key) const;
    Expected<double> number(const char* key) const;                                  // required, finite
    Expected<double> number_or(const char* key, double fallback) const;
    Expected<bool> boolean_or(const char* key, bool fallback) const;
    Expected<std::string> string(const char* key) const;
    Expected<std::string> string_or(const char* key, std::string fallback) const;
    Expected<std::vector<int64_t>> integer_list(const char* key) const;

    Status error(const char* key, const std::string& expected) const;  // INVALID_ARGUMENT naming key and value

private:
    const nlohmann::json& j_;
    std::string where_;
};

}  // namespace volt
