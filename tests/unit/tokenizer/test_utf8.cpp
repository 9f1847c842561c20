// UTF-8 helpers against Python's decoding (fixture) and by construction.
#include <gtest/gtest.h>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

std::string from_hex(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

TEST(Utf8, LossyDecodeMatchesPython) {
    const auto& cases = test::reference_fixture().at("lossy_utf8");
    ASSERT_GT(cases.size(), 50u);
    for (const auto& c : cases) {
        std::string bytes = from_hex(c.at("hex").get<std::string>());
        EXPECT_EQ(utf8_lossy(bytes), c.at("decoded").get<std::string>()) << "bytes " << c.at("hex");
        EXPECT_EQ(utf8_is_valid(bytes), utf8_lossy(bytes) == bytes) << "bytes " << c.at("hex");
    }
}

// Every fixture string, cut at every byte: the complete prefix is the longest cut that does not split a character.
TEST(Utf8, CompletePrefixNeverSplitsACharacter) {
    for (const auto& j : test::reference_fixture().at("strings")) {
        const std::string s = j.get<std::string>();
        if (s.size() > 300) continue;
        for (size_t cut = 0; cut <= s.size(); ++cut) {
            std::string_view prefix(s.data(), cut);
            size_t n = utf8_complete_prefix_length(prefix);
            ASSERT_TRUE(utf8_is_valid(prefix.substr(0, n)));
            // The held-back tail is a proper prefix of one character: shorter than that character.
            ASSERT_LT(cut - n, 4u);
            if (n < cut) {
                ASSERT_GT(utf8_sequence_length(static_cast<unsigned char>(s[n])), cut - n);
            }
        }
    }
}

TEST(Utf8, EncodeDecodeRoundTripsEveryScalarValue) {
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        std::string s;
        utf8_append(s, cp);
        ASSERT_TRUE(utf8_is_valid(s)) << std::hex << uint32_t(cp);
        size_t pos = 0;
        ASSERT_EQ(utf8_next(s, pos), cp);
        ASSERT_EQ(pos, s.size());
    }
}

}  // namespace
}  // namespace volt::text
