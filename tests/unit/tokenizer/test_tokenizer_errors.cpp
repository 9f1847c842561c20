// Malformed tokenizer files and bad input give a Status naming the file, the field and what was expected.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/unit/tokenizer/fixture.h"
#include "text/tokenizer/hf_tokenizer.h"
#include "text/tokenizer/tokenizer.h"

namespace volt::text {
namespace {

nlohmann::json gpt4o_json() {
    std::ifstream in(test::tokenizer_data_dir() / "bpe_gpt4o" / "tokenizer.json");
    return nlohmann::json::parse(in);
}

void expect_error(const nlohmann::json& j, const std::vector<std::string>& needles) {
    auto t = HfTokenizer::from_json(j, "bad/tokenizer.json");
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    for (const auto& n : needles) EXPECT_NE(t.status().message().find(n), std::string::npos) << t.status().message();
}

TEST(TokenizerErrors, MissingMerges) {
    auto j = gpt4o_json();
    j["model"].erase("merges");
    expect_error(j, {"bad/tokenizer.json", "model.merges", "missing"});
}

TEST(TokenizerErrors, MergeWithUnknownToken) {
    auto j = gpt4o_json();
    j["model"]["merges"].push_back({"no-such-token", "x"});
    expect_error(j, {"model.merges[", "no-such-token", "not in the vocabulary"});
}

TEST(TokenizerErrors, MalformedMergeString) {
    auto j = gpt4o_json();
    j["model"]["merges"] = nlohmann::json::array({"nospace"});
    expect_error(j, {"model.merges[0]", "left right"});
}

TEST(TokenizerErrors, UnknownPreTokenizerType) {
    auto j = gpt4o_json();
    j["pre_tokenizer"]["pretokenizers"][1]["type"] = "Frobnicate";
    expect_error(j, {"pre_tokenizer", "pretokenizers[1]", "Frobnicate"});
}

TEST(TokenizerErrors, InvalidRegex) {
    auto j = gpt4o_json();
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L}+";
    expect_error(j, {"pre_tokenizer", "pattern.Regex", "invalid regular expression"});
}

TEST(TokenizerErrors, UnknownSplitBehavior) {
    auto j = gpt4o_json();
    j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
    expect_error(j, {"behavior", "Sideways"});
}

TEST(TokenizerErrors, UnknownNormalizerDecoderAndPostProcessor) {
    auto j = gpt4o_json();
    j["normalizer"] = {{"type", "Klingon"}};
    expect_error(j, {"normalizer", "Klingon"});
    j = gpt4o_json();
    j["decoder"] = {{"type", "Reverse"}};
    expect_error(j, {"decoder", "Reverse"});
    j = gpt4o_json();
    j["post_processor"] = {{"type", "Mystery"}};
    expect_error(j, {"post_processor", "Mystery"});
}

TEST(TokenizerErrors, NonBpeModel) {
    auto j = gpt4o_json();
    j["model"]["type"] = "WordPiece";
    expect_error(j, {"model.type", "WordPiece"});
}

TEST(TokenizerErrors, BadVocabId) {
    auto j = gpt4o_json();
    j["model"]["vocab"]["zzz"] = "seven";
    expect_error(j, {"model.vocab[\"zzz\"]", "integer"});
}

TEST(TokenizerErrors, BadAddedToken) {
    auto j = gpt4o_json();
    j["added_tokens"][0].erase("content");
    expect_error(j, {"added_tokens[0].content"});
}

TEST(TokenizerErrors, NotJsonAndMissingFiles) {
    auto dir = std::filesystem::temp_directory_path() / "volt_tok_errors";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "tokenizer.json") << "{ \"model\": ";
    auto t = load_tokenizer(dir);
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(t.status().message().find("tokenizer.json"), std::string::npos);
    std::filesystem::remove(dir / "tokenizer.json");
    t = load_tokenizer(dir);
    ASSERT_FALSE(t.has_value());
    EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
    std::ofstream(dir / "tokenizer.model") << "not a protobuf";
    t = load_tokenizer(dir);
    ASSERT_FALSE(t.has_value());
    EXPECT_NE(t.status().message().find("SentencePiece"), std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST(TokenizerErrors, InvalidUtf8InputAndUnknownIds) {
    for (const char* name : {"bpe_gpt4o", "spm_unigram"}) {
        auto t = load_tokenizer(test::tokenizer_data_dir() / name);
        ASSERT_TRUE(t.has_value());
        auto ids = (*t)->encode("ok \xC3\x28 bad");
        ASSERT_FALSE(ids.has_value());
        EXPECT_NE(ids.status().message().find("UTF-8"), std::string::npos);
        std::vector<int32_t> bad = {0, (*t)->id_limit() + 5};
        auto text = (*t)->decode(bad);
        ASSERT_FALSE(text.has_value());
        EXPECT_NE(text.status().message().find(std::to_string((*t)->id_limit() + 5)), std::string::npos);
    }
}

}  // namespace
}  // namespace volt::text
