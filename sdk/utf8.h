// UTF-8 primitives (one implementation for the whole SDK: the tokenizer, documents, the C ABI's checks): code-point
// decoding and encoding, validation (overlongs, surrogates and > U+10FFFF are invalid), truncation-aware prefixes
// for streaming, and lossy repair. Character classes live with the tokenizer (text/tokenizer/utf8.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace volt {

// Byte length of the UTF-8 sequence introduced by `lead` (1..4); 0 for a continuation or invalid lead byte.
inline size_t utf8_sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead < 0xC2) return 0;
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    if (lead < 0xF5) return 4;
    return 0;
}

// Decodes the code point at s[pos] and advances pos. Input must be valid UTF-8 (checked once at the API boundary).
inline char32_t utf8_next(std::string_view s, size_t& pos) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
    if (p[0] < 0x80) { pos += 1; return p[0]; }
    if (p[0] < 0xE0) { pos += 2; return (char32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F); }
    if (p[0] < 0xF0) { pos += 3; return (char32_t(p[0] & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F); }
    pos += 4;
    return (char32_t(p[0] & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

// The code point that ends at s[end) (end > 0), and its start offset.
char32_t utf8_prev(std::string_view s, size_t end, size_t* start);

void utf8_append(std::string& out, char32_t cp);

// Offset of the first byte that is not part of a valid UTF-8 sequence, or npos when all of `s` is valid.
size_t utf8_find_invalid(std::string_view s);
inline bool utf8_is_valid(std::string_view s) { return utf8_find_invalid(s) == std::string_view::npos; }

// Length of the longest prefix of `s` that does not end inside an incomplete (truncated) multi-byte sequence.
// Invalid bytes count as complete: they can never become valid by appending more bytes.
size_t utf8_complete_prefix_length(std::string_view s);

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD (Unicode "best practice", also
// Python's errors="replace"). `replaced` (optional) receives how many U+FFFD were written.
std::string utf8_lossy(std::string_view bytes, size_t* replaced = nullptr);

}  // namespace volt
