// The Oniguruma -> PCRE2 translation (regex.h) matches the same characters as HF tokenizers' Oniguruma for the
// classes that differ between the engines (\w \W \s \S \d [[:punct:]] ...), code point by code point over
// U+0021..U+2FFFF (fixture: tools/make_tokenizer_fixture.py). Code points PCRE2's Unicode tables do not assign yet
// (newer Unicode versions) are skipped.
#include <gtest/gtest.h>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/pre_tokenizer.h"
#include "text/tokenizer/regex.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

bool matches_whole(const Regex& r, const std::string& s) {
    bool hit = false;
    EXPECT_TRUE(r.for_each(s, [&](size_t b, size_t e) { hit = hit || (b == 0 && e == s.size()); }).is_ok());
    return hit;
}

TEST(RegexDialect, ClassesMatchOniguruma) {
    auto unassigned = Regex::compile(R"(\p{Cn})", "test", Regex::Dialect::kPcre2);
    ASSERT_TRUE(unassigned.has_value());
    const auto& classes = test::reference_fixture().at("regex_classes");
    ASSERT_GE(classes.size(), 6u);
    for (const auto& c : classes) {
        const std::string pattern = c.at("pattern").get<std::string>();
        auto r = Regex::compile(pattern, "test");
        ASSERT_TRUE(r.has_value()) << pattern << ": " << r.status().to_string();
        std::vector<bool> expected(0x30000, false);
        for (const auto& range : c.at("ranges"))
            for (uint32_t cp = range[0].get<uint32_t>(); cp <= range[1].get<uint32_t>(); ++cp) expected[cp] = true;
        size_t checked = 0, mismatches = 0;
        for (char32_t cp = 0x21; cp < 0x30000; ++cp) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            std::string s;
            utf8_append(s, cp);
            if (matches_whole(*unassigned, s)) continue;
            ++checked;
            if (matches_whole(*r, s) != expected[cp] && ++mismatches <= 5)
                ADD_FAILURE() << pattern << ": U+" << std::hex << uint32_t(cp) << " Oniguruma " << expected[cp];
        }
        EXPECT_EQ(mismatches, 0u) << pattern;
        EXPECT_GT(checked, 140000u);
    }
}

}  // namespace
}  // namespace volt::text

namespace volt::text {
namespace {

// HF's Whitespace pre-tokenizer uses Rust's `regex` crate (UTS #18 \w, White_Space \s): each code point c in
// "a" + c + "a" joins the word, is removed, or is split off, exactly as the fixture recorded.
TEST(RegexDialect, WhitespacePreTokenizerMatchesRustRegex) {
    auto pre = make_pre_tokenizer(nlohmann::json{{"type", "Whitespace"}}, "test");
    ASSERT_TRUE(pre.has_value()) << pre.status().to_string();
    auto unassigned = Regex::compile(R"(\p{Cn})", "test", Regex::Dialect::kPcre2);
    ASSERT_TRUE(unassigned.has_value());
    std::vector<int8_t> expected(0x30000, -1);
    const auto& classes = test::reference_fixture().at("whitespace_classes");
    int kind = 0;
    for (const char* name : {"word", "space", "symbol"}) {
        for (const auto& range : classes.at(name))
            for (uint32_t cp = range[0].get<uint32_t>(); cp <= range[1].get<uint32_t>(); ++cp) expected[cp] = int8_t(kind);
        ++kind;
    }
    size_t checked = 0, mismatches = 0;
    for (char32_t cp = 0x21; cp < 0x30000; ++cp) {
        if (expected[cp] < 0) continue;
        std::string c;
        utf8_append(c, cp);
        if (matches_whole(*unassigned, c)) continue;
        PieceList list;
        list.text = "a" + c + "a";
        list.pieces.push_back({0, uint32_t(list.text.size()), true});
        ASSERT_TRUE((*pre)->apply(list).is_ok());
        const int got = list.pieces.size() == 1 ? 0 : list.pieces.size() == 2 ? 1 : 2;
        ++checked;
        if (got != expected[cp] && ++mismatches <= 5)
            ADD_FAILURE() << "U+" << std::hex << uint32_t(cp) << ": Volt " << got << ", HF " << int(expected[cp]);
    }
    EXPECT_EQ(mismatches, 0u);
    EXPECT_GT(checked, 140000u);
}

}  // namespace
}  // namespace volt::text
