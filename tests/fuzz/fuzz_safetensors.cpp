// libFuzzer target: the safetensors header parser and the sharded-index parser, from arbitrary bytes.
// The first byte picks the parser; the rest is the file. Any input must give a value or a Status, never a crash,
// a hang, an out-of-bounds read or unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sdk/checkpoint.h"
#include "sdk/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::byte* bytes = reinterpret_cast<const std::byte*>(data + 1);
    if (data[0] & 1) {
        auto h = volt::parse_safetensors_header({bytes, size - 1}, "fuzz.safetensors");
        if (h.has_value())  // a valid header's entries must lie inside the file
            for (const auto& e : h->tensors)
                if (h->data_offset + e.end > size - 1) __builtin_trap();
    } else {
        auto m = volt::parse_safetensors_index(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1),
                                               "fuzz.index.json");
        (void)m;
    }
    return 0;
}
