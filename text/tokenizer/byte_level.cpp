#include "text/tokenizer/byte_level.h"

#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

struct Tables {
    std::array<std::string, 256> chars;
    std::array<ByteLevelChar, 256> table;
    std::array<int16_t, 512> bytes;  // indexed by code point; the mapping only uses U+0000..U+0143
    Tables() {
        bytes.fill(-1);
        auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            char32_t cp = printable(b) ? char32_t(b) : char32_t(next++);
            utf8_append(chars[b], cp);
            bytes[cp] = static_cast<int16_t>(b);
            table[b].length = static_cast<uint8_t>(chars[b].size());
            table[b].utf8[0] = chars[b][0];
            table[b].utf8[1] = chars[b].size() > 1 ? chars[b][1] : 0;
        }
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

}  // namespace

const std::array<std::string, 256>& byte_level_chars() { return tables().chars; }

const std::array<ByteLevelChar, 256>& byte_level_table() { return tables().table; }

int byte_level_byte(char32_t cp) { return cp < 512 ? tables().bytes[cp] : -1; }

}  // namespace volt::text
