// Streaming detokenization: for every prefix of every reference id sequence, the text emitted so far plus what is
// pending equals the batch decode of that prefix (wherever that batch decode extends the emitted text: always for
// byte-level BPE), emitted text is valid UTF-8 and final, and the whole stream equals the batch decode.
#include <gtest/gtest.h>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/stream_decoder.h"
#include "text/tokenizer/tokenizer.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

class Streaming : public ::testing::TestWithParam<std::string> {};

TEST_P(Streaming, EveryPrefixEqualsBatchDecode) {
    auto tok = load_tokenizer(test::tokenizer_data_dir() / GetParam());
    ASSERT_TRUE(tok.has_value()) << tok.status().to_string();
    size_t held_back = 0;       // pushes that emitted nothing while a character was incomplete
    size_t non_monotone = 0;    // prefixes whose batch decode rewrites earlier text (ByteFallback runs)
    for (const auto& c : test::reference_cases(GetParam())) {
        if (c.ids.size() > 400) continue;  // quadratic check; the long cases add nothing new
        StreamDecoder stream(**tok);
        std::string emitted;
        for (size_t n = 1; n <= c.ids.size(); ++n) {
            auto piece = stream.push(c.ids[n - 1]);
            ASSERT_TRUE(piece.has_value()) << piece.status().to_string();
            ASSERT_TRUE(utf8_is_valid(*piece));
            emitted += *piece;
            auto pending = stream.pending();
            ASSERT_TRUE(pending.has_value()) << pending.status().to_string();
            if (piece->empty() && !pending->empty()) ++held_back;
            auto batch = (*tok)->decode(std::span<const int32_t>(c.ids).first(n));
            ASSERT_TRUE(batch.has_value());
            if (batch->compare(0, emitted.size(), emitted) != 0) {
                ++non_monotone;
            } else {
                ASSERT_EQ(emitted + *pending, *batch) << "prefix of " << n << " ids";
            }
            // Emitted text is final: the full decode starts with it.
            ASSERT_EQ(c.decoded.compare(0, emitted.size(), emitted), 0) << "prefix of " << n << " ids";
        }
        auto rest = stream.finish();
        ASSERT_TRUE(rest.has_value());
        EXPECT_EQ(emitted + *rest, c.decoded);
    }
    // The fixture has emoji and CJK split across byte-level tokens, so some pushes must have been held back.
    if (GetParam().rfind("bpe_gpt", 0) == 0) {
        EXPECT_GT(held_back, 0u);
        EXPECT_EQ(non_monotone, 0u);
    }
}

INSTANTIATE_TEST_SUITE_P(Fixture, Streaming, ::testing::ValuesIn(test::reference_tokenizer_names()),
                         [](const auto& param_info) { return param_info.param; });

TEST(Streaming, RejectsUnknownIds) {
    auto tok = load_tokenizer(test::tokenizer_data_dir() / "bpe_gpt2");
    ASSERT_TRUE(tok.has_value());
    StreamDecoder stream(**tok);
    EXPECT_FALSE(stream.push(-1).has_value());
    EXPECT_FALSE(stream.push((*tok)->id_limit()).has_value());
}

}  // namespace
}  // namespace volt::text
