// The SDK's A/B switches in the environment (VOLT_LIGHTNING_PREFILL, VOLT_VIT_ATTENTION, ...): one reader, so that a
// misspelt value is reported instead of silently running the default. Callers read them once per process (static
// locals): a benchmark sets them per process.
#pragma once

#include <initializer_list>
#include <span>
#include <string_view>
#include <utility>

namespace volt {

// The index in `choices` of environment variable `name`'s value; -1 when it is unset or empty, and for a value not
// among the choices (then a warning names the variable, the value and the accepted values).
int env_choice_index(const char* name, std::span<const std::string_view> choices);
inline int env_choice_index(const char* name, std::initializer_list<std::string_view> choices) {
    return env_choice_index(name, std::span<const std::string_view>(choices.begin(), choices.size()));
}

// The value of `name` mapped through `choices` (value name, result); `fallback` when unset, empty or unknown.
template <typename T>
T env_choice(const char* name, std::initializer_list<std::pair<std::string_view, T>> choices, T fallback) {
    std::string_view names[16];
    size_t n = 0;
    for (const auto& c : choices)
        if (n < 16) names[n++] = c.first;
    const int i = env_choice_index(name, std::span<const std::string_view>(names, n));
    return i < 0 ? fallback : (choices.begin() + i)->second;
}

}  // namespace volt
