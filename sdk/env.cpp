#include "sdk/env.h"

#include <cstdlib>
#include <string>

#include "sdk/log.h"

namespace volt {

int env_choice_index(const char* name, std::span<const std::string_view> choices) {
    const char* e = std::getenv(name);
    if (!e || !*e) return -1;
    const std::string_view value = e;
    for (size_t i = 0; i < choices.size(); ++i)
        if (choices[i] == value) return static_cast<int>(i);
    std::string accepted;
    for (const std::string_view c : choices) accepted += (accepted.empty() ? "" : ", ") + std::string(c);
    VOLT_LOG(kWarn, kGeneral, name, "='", value, "' is not one of ", accepted, ": ignored (the default runs)");
    return -1;
}

}  // namespace volt
