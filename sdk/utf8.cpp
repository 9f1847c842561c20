#include "sdk/utf8.h"

namespace volt {

char32_t utf8_prev(std::string_view s, size_t end, size_t* start) {
    size_t b = end - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
    size_t pos = b;
    char32_t cp = utf8_next(s, pos);
    if (start) *start = b;
    return cp;
}

void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

namespace {

// Length of the valid sequence at s[i], or 0 with *maximal_invalid set to the length of the maximal invalid subpart
// (the bytes a decoder consumes before it knows the sequence is broken; at least 1).
size_t valid_sequence_at(std::string_view s, size_t i, size_t* maximal_invalid) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    unsigned char b0 = p[i];
    size_t len = utf8_sequence_length(b0);
    *maximal_invalid = 1;
    if (len == 1) return 1;
    if (len == 0) return 0;
    // Second-byte ranges exclude overlongs and surrogates (Unicode Table 3-7).
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 == 0xE0) lo = 0xA0;
    else if (b0 == 0xED) hi = 0x9F;
    else if (b0 == 0xF0) lo = 0x90;
    else if (b0 == 0xF4) hi = 0x8F;
    for (size_t k = 1; k < len; ++k) {
        if (i + k >= n) { *maximal_invalid = k; return 0; }
        unsigned char b = p[i + k];
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) { *maximal_invalid = k; return 0; }
    }
    return len;
}

}  // namespace

size_t utf8_find_invalid(std::string_view s) {
    size_t i = 0, bad = 0;
    while (i < s.size()) {
        if (static_cast<unsigned char>(s[i]) < 0x80) { ++i; continue; }
        size_t len = valid_sequence_at(s, i, &bad);
        if (len == 0) return i;
        i += len;
    }
    return std::string_view::npos;
}

size_t utf8_complete_prefix_length(std::string_view s) {
    // Look back at most 3 bytes for a lead byte whose sequence runs past the end but is valid so far.
    size_t n = s.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        size_t i = n - back;
        unsigned char b = static_cast<unsigned char>(s[i]);
        if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for its lead
        size_t len = utf8_sequence_length(b);
        if (len <= back) return n;  // ASCII, invalid lead, or a sequence that ends within s
        size_t bad = 0;
        valid_sequence_at(s, i, &bad);
        return bad == back ? i : n;  // truncated-but-valid-so-far: hold it back
    }
    return n;
}

std::string utf8_lossy(std::string_view bytes, size_t* replaced) {
    std::string out;
    out.reserve(bytes.size());
    size_t i = 0, bad = 0, count = 0;
    while (i < bytes.size()) {
        size_t len = valid_sequence_at(bytes, i, &bad);
        if (len) {
            out.append(bytes.substr(i, len));
            i += len;
        } else {
            out.append("\xEF\xBF\xBD");
            i += bad;
            ++count;
        }
    }
    if (replaced) *replaced = count;
    return out;
}

}  // namespace volt
