// libFuzzer target: config.json parsing and the checkpoint table built from a parsed config.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sdk/config.h"
#include "sdk/model_registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto c = volt::parse_model_config_text(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
    if (c.has_value()) {
        // The caps keep this bounded; skip only the legitimately large (but valid) geometries.
        const auto& t = c->text;
        if (t.num_layers * t.num_experts <= 4096) {
            auto specs = volt::expected_weights(*c);
            if (specs.empty()) __builtin_trap();
        }
    }
    return 0;
}
