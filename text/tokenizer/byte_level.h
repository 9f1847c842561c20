// GPT-2's reversible byte <-> character mapping (bytes_to_unicode): printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100.. in order, so every byte string becomes printable text that BPE vocabularies can hold.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace volt::text {

// UTF-8 encoding of the character that stands for each byte.
const std::array<std::string, 256>& byte_level_chars();
// The same as fixed-size records for the hot loop: every stand-in is U+0021..U+0143, one or two UTF-8 bytes.
struct ByteLevelChar {
    uint8_t length;
    char utf8[2];
};
const std::array<ByteLevelChar, 256>& byte_level_table();
// The byte a character stands for, or -1 when the character is not part of the mapping.
int byte_level_byte(char32_t cp);

// GPT-2's pre-tokenization regex, used by ByteLevel when `use_regex` is true.
inline constexpr const char* kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace volt::text
