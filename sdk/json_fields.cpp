#include "sdk/json_fields.h"

#include <cmath>

namespace volt {

Status JsonFields::error(const char* key, const std::string& expected) const {
    if (!j_.contains(key)) return invalid_argument(where(key), ": missing; expected ", expected);
    std::string got = j_.at(key).dump();
    if (got.size() > 80) got = got.substr(0, 77) + "...";
    return invalid_argument(where(key), ": expected ", expected, ", got ", got);
}

Expected<int64_t> JsonFields::integer(const char* key, int64_t min_value) const {
    std::string expected = min_value == 1 ? "a positive integer" : min_value == 0 ? "a non-negative integer"
                                                                                 : str_cat("an integer >= ", min_value);
    if (!has(key)) return error(key, expected);
    const auto& v = j_.at(key);
    int64_t x;
    if (v.is_number_integer()) {
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return error(key, expected);
        x = v.get<int64_t>();
    } else if (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
               std::fabs(v.get<double>()) < 9e15) {
        x = static_cast<int64_t>(v.get<double>());  // 4096.0 is written by some exporters
    } else {
        return error(key, expected);
    }
    if (x < min_value) return error(key, expected);
    return x;
}

Expected<int64_t> JsonFields::integer_or(const char* key, int64_t fallback, int64_t min_value) const {
    if (!has(key)) return fallback;
    return integer(key, min_value);
}

Expected<std::optional<int64_t>> JsonFields::optional_integer(const char* key) const {
    if (!has(key)) return std::optional<int64_t>{};
    VOLT_ASSIGN_OR_RETURN(int64_t v, integer(key, INT64_MIN));
    return std::optional<int64_t>{v};
}

Expected<double> JsonFields::number(const char* key) const {
    if (!has(key) || !j_.at(key).is_number() || !std::isfinite(j_.at(key).get<double>()))
        return error(key, "a finite number");
    return j_.at(key).get<double>();
}

Expected<double> JsonFields::number_or(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    return number(key);
}

Expected<bool> JsonFields::boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_.at(key).is_boolean()) return error(key, "true or false");
    return j_.at(key).get<bool>();
}

Expected<std::string> JsonFields::string(const char* key) const {
    if (!has(key) || !j_.at(key).is_string()) return error(key, "a string");
    return j_.at(key).get<std::string>();
}

Expected<std::string> JsonFields::string_or(const char* key, std::string fallback) const {
    if (!has(key)) return fallback;
    return string(key);
}

Expected<std::vector<int64_t>> JsonFields::integer_list(const char* key) const {
    if (!has(key) || !j_.at(key).is_array()) return error(key, "a list of integers");
    std::vector<int64_t> out;
    for (const auto& e : j_.at(key)) {
        if (!e.is_number_integer()) return error(key, "a list of integers");
        out.push_back(e.get<int64_t>());
    }
    return out;
}

}  // namespace volt
