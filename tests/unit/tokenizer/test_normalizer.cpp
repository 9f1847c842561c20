// Unicode normalization through utf8proc against HF tokenizers (the `unicode-normalization-alignments` crate and
// char::to_lowercase) for every single code point U+0020..U+2FFFF (fixture: the code points each normalizer changes,
// and how). Code points utf8proc's tables leave unassigned are skipped.
//
// Known divergence: HF's normalization tables predate Unicode 12, so compatibility decompositions added since (e.g.
// U+32FF SQUARE ERA NAME REIWA -> 令和, U+A7F2..U+A7F4, the U+1078x modifier letters) are applied by utf8proc
// (Unicode 15) but not by HF. Those, and only those, are tolerated: every code point HF changes must come out the
// same, and a tolerated one must be one HF leaves unchanged.
#include <gtest/gtest.h>

#include <unordered_map>

#include <utf8proc.h>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/normalizer.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

class SingleCodePoints : public ::testing::TestWithParam<std::string> {};

TEST_P(SingleCodePoints, MatchHuggingFace) {
    auto norm = make_normalizer(nlohmann::json{{"type", GetParam()}}, "test");
    ASSERT_TRUE(norm.has_value() && *norm) << norm.status().to_string();
    std::unordered_map<uint32_t, std::string> changed;
    for (const auto& e : test::reference_fixture().at("normalizer_code_points").at(GetParam()))
        changed[e[0].get<uint32_t>()] = e[1].get<std::string>();
    ASSERT_GT(changed.size(), 1000u);
    size_t checked = 0, mismatches = 0, newer_unicode = 0;
    for (char32_t cp = 0x20; cp < 0x30000; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        if (utf8proc_category(utf8proc_int32_t(cp)) == UTF8PROC_CATEGORY_CN) continue;
        std::string s;
        utf8_append(s, cp);
        auto it = changed.find(uint32_t(cp));
        const std::string expected = it == changed.end() ? s : it->second;
        ASSERT_TRUE((*norm)->normalize(s).is_ok());
        ++checked;
        if (s == expected) continue;
        if (it == changed.end()) {  // HF leaves it alone: its tables lack this newer decomposition
            ++newer_unicode;
            continue;
        }
        if (++mismatches <= 5) ADD_FAILURE() << GetParam() << ": U+" << std::hex << uint32_t(cp);
    }
    EXPECT_EQ(mismatches, 0u);
    EXPECT_LE(newer_unicode, 150u) << "more than the known post-Unicode-11 decompositions differ";
    EXPECT_GT(checked, 140000u);
}

INSTANTIATE_TEST_SUITE_P(Fixture, SingleCodePoints, ::testing::Values("Lowercase", "NFC", "NFKC"));

}  // namespace
}  // namespace volt::text
