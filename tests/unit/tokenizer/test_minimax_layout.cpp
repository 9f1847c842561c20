// MiniMax-01's id layout: special tokens far above the BPE vocabulary (<image> = 200025, embedding rows 200064),
// encoded and decoded through added_tokens; and one tokenizer shared by many threads.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/hf_tokenizer.h"
#include "text/tokenizer/stream_decoder.h"

namespace volt::text {
namespace {

// The GPT-4o-style fixture with its special tokens moved to MiniMax-01's ids (§6 of the architecture notes).
std::unique_ptr<HfTokenizer> minimax_layout_tokenizer(std::vector<std::pair<std::string, int32_t>>* moved) {
    std::ifstream in(test::tokenizer_data_dir() / "bpe_gpt4o" / "tokenizer.json");
    auto j = nlohmann::json::parse(in);
    const std::pair<const char*, int32_t> ids[] = {{"<beginning_of_sentence>", 200019}, {"<end_of_sentence>", 200020},
                                                   {"<image>", 200025}};
    for (auto& t : j["added_tokens"])
        for (const auto& [content, id] : ids)
            if (t["content"] == content) {
                t["id"] = id;
                moved->emplace_back(content, id);
            }
    auto& special = j["post_processor"]["special_tokens"]["<beginning_of_sentence>"];
    special["ids"] = {200019};
    auto tok = HfTokenizer::from_json(j, "minimax-layout/tokenizer.json");
    EXPECT_TRUE(tok.has_value()) << tok.status().to_string();
    return tok.has_value() ? std::move(tok).value() : nullptr;
}

TEST(MiniMaxLayout, SpecialTokensAtHighIds) {
    std::vector<std::pair<std::string, int32_t>> moved;
    auto tok = minimax_layout_tokenizer(&moved);
    ASSERT_TRUE(tok);
    ASSERT_EQ(moved.size(), 3u);
    EXPECT_EQ(tok->id_limit(), 200026);
    for (const auto& [content, id] : moved) {
        EXPECT_EQ(tok->token_to_id(content), id);
        EXPECT_EQ(tok->id_to_token(id), content);
        EXPECT_TRUE(tok->is_special(id));
    }
    const std::string prompt = "<beginning_of_sentence>user name=user\n<image><image>Describe.<end_of_sentence>\n";
    auto ids = tok->encode(prompt, true);
    ASSERT_TRUE(ids.has_value());
    EXPECT_EQ(ids->front(), 200019);  // post-processor BOS
    EXPECT_EQ(std::count(ids->begin(), ids->end(), 200025), 2);
    EXPECT_EQ(std::count(ids->begin(), ids->end(), 200019), 2);
    auto text = tok->decode(std::span<const int32_t>(*ids).subspan(1));
    ASSERT_TRUE(text.has_value());
    EXPECT_EQ(*text, prompt);
    auto skipped = tok->decode(*ids, /*skip_special=*/true);
    ASSERT_TRUE(skipped.has_value());
    std::string without_special = prompt;
    for (const auto& [content, id] : moved)
        for (size_t p; (p = without_special.find(content)) != std::string::npos;) without_special.erase(p, content.size());
    EXPECT_EQ(*skipped, without_special);
    // Ids between the BPE vocabulary and the special tokens (embedding padding) are not tokens.
    std::vector<int32_t> padding = {200030};
    EXPECT_FALSE(tok->decode(padding).has_value());
    StreamDecoder stream(*tok);
    EXPECT_FALSE(stream.push(200021).has_value());
}

TEST(MiniMaxLayout, ConcurrentEncodeMatchesSequential) {
    auto loaded = load_tokenizer(test::tokenizer_data_dir() / "bpe_gpt4o");
    ASSERT_TRUE(loaded.has_value());
    const Tokenizer& tok = **loaded;
    const auto cases = test::reference_cases("bpe_gpt4o");
    std::vector<int> mismatches(4, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int round = 0; round < 3; ++round)
                for (size_t i = size_t(t); i < cases.size(); i += 2) {
                    auto ids = tok.encode(cases[i].text);
                    if (!ids || *ids != cases[i].ids) ++mismatches[size_t(t)];
                }
        });
    for (auto& th : threads) th.join();
    for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace volt::text
