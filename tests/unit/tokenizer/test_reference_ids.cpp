// Ids and decodes identical to Hugging Face tokenizers / sentencepiece for every fixture string and tokenizer.
#include <gtest/gtest.h>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/tokenizer.h"

namespace volt::text {
namespace {

using test::reference_cases;

std::string show(const std::string& s) {
    std::string out;
    for (unsigned char c : s.substr(0, 120)) {
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out.push_back(char(c));
        }
    }
    return out;
}

class ReferenceIds : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        auto t = load_tokenizer(test::tokenizer_data_dir() / GetParam());
        ASSERT_TRUE(t.has_value()) << t.status().to_string();
        tok_ = std::move(t.value());
        cases_ = reference_cases(GetParam());
        ASSERT_GE(cases_.size(), 300u);
    }
    std::unique_ptr<Tokenizer> tok_;
    std::vector<test::ReferenceCase> cases_;
};

TEST_P(ReferenceIds, EncodeMatchesReference) {
    int failures = 0;
    for (const auto& c : cases_) {
        auto ids = tok_->encode(c.text, false);
        ASSERT_TRUE(ids.has_value()) << ids.status().to_string();
        EXPECT_EQ(*ids, c.ids) << "text: \"" << show(c.text) << "\"";
        if (*ids != c.ids && ++failures > 10) {
            FAIL() << "too many mismatches";
        }
    }
}

TEST_P(ReferenceIds, EncodeWithSpecialTokensMatchesReference) {
    for (const auto& c : cases_) {
        auto ids = tok_->encode(c.text, true);
        ASSERT_TRUE(ids.has_value()) << ids.status().to_string();
        ASSERT_EQ(*ids, c.ids_special) << "text: \"" << show(c.text) << "\"";
    }
}

TEST_P(ReferenceIds, DecodeMatchesReference) {
    for (const auto& c : cases_) {
        auto text = tok_->decode(c.ids, false);
        ASSERT_TRUE(text.has_value()) << text.status().to_string();
        ASSERT_EQ(*text, c.decoded) << "text: \"" << show(c.text) << "\"";
    }
}

TEST_P(ReferenceIds, DecodeSkippingSpecialTokensMatchesReference) {
    for (const auto& c : cases_) {
        auto text = tok_->decode(c.ids, true);
        ASSERT_TRUE(text.has_value()) << text.status().to_string();
        ASSERT_EQ(*text, c.decoded_skip_special) << "text: \"" << show(c.text) << "\"";
    }
}

// decode(encode(s)) == s wherever the reference round-trips (byte-level BPE without normalization: everywhere).
TEST_P(ReferenceIds, RoundTripWhereReferenceRoundTrips) {
    size_t lossless = 0;
    for (const auto& c : cases_) {
        if (c.decoded != c.text) continue;
        ++lossless;
        auto ids = tok_->encode(c.text, false);
        ASSERT_TRUE(ids.has_value());
        auto text = tok_->decode(*ids, false);
        ASSERT_TRUE(text.has_value());
        ASSERT_EQ(*text, c.text);
    }
    // Byte-level BPE without a normalizer or prefix space is lossless for every string.
    if (GetParam() == "bpe_gpt2") {
        EXPECT_EQ(lossless, cases_.size());
    }
}

INSTANTIATE_TEST_SUITE_P(Fixture, ReferenceIds, ::testing::ValuesIn(test::reference_tokenizer_names()),
                         [](const auto& param_info) { return param_info.param; });

TEST(ReferenceIds, StringAndPairMergesLoadIdentically) {
    auto pairs = load_tokenizer(test::tokenizer_data_dir() / "bpe_gpt4o");
    auto strings = load_tokenizer(test::tokenizer_data_dir() / "bpe_gpt4o_string_merges");
    ASSERT_TRUE(pairs.has_value() && strings.has_value());
    for (const auto& c : reference_cases("bpe_gpt4o")) {
        auto a = (*pairs)->encode(c.text), b = (*strings)->encode(c.text);
        ASSERT_TRUE(a.has_value() && b.has_value());
        ASSERT_EQ(*a, *b);
    }
}

}  // namespace
}  // namespace volt::text
