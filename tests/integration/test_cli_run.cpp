// `volt run` on tests/data/tiny-chat (tools/make_chat_fixture.py): the streamed answer must be the reference greedy
// reply (transformers' chat template + tokenizer, patched MiniMaxForCausalLM), and bad input must exit 2/3/4.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

namespace volt {
namespace {

namespace fs = std::filesystem;
using test::run_volt;
using test::shell_quote;

const fs::path kChat = fs::path(VOLT_TEST_DATA_DIR) / "tiny-chat";
const fs::path kDocs = fs::path(VOLT_TEST_DATA_DIR) / "documents";

nlohmann::json reference() {
    std::ifstream in(kChat / "reference" / "chat.json");
    return nlohmann::json::parse(in);
}

std::string text_of(const nlohmann::json& message) {
    std::string s;
    for (const auto& part : message["content"])
        if (part["type"] == "text") s += part["text"].get<std::string>();
    return s;
}

TEST(CliRun, StreamsTheReferenceGreedyAnswer) {
    const auto ref = reference();
    const std::string system = text_of(ref["messages"][0]), question = text_of(ref["messages"][1]);
    auto r = run_volt("run --model " + shell_quote(kChat.string()) + " --system " + shell_quote(system) + " --prompt " +
                      shell_quote(question) + " --temperature 0 --max-new-tokens " +
                      std::to_string(ref["greedy_reply_ids"].size()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, ref["greedy_reply_text"].get<std::string>() + "\n");
}

TEST(CliRun, PromptFileAndDocuments) {
    const auto ref = reference();
    const fs::path prompt = fs::temp_directory_path() / ("volt-run-prompt-" + std::to_string(::getpid()));
    std::ofstream(prompt) << text_of(ref["messages"][1]);
    auto r = run_volt("run --model " + shell_quote(kChat.string()) + " --prompt-file " + shell_quote(prompt.string()) +
                      " --doc " + shell_quote((kDocs / "notes_crlf.txt").string()) + " --temperature 0 --max-new-tokens 3 -v");
    fs::remove(prompt);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("notes_crlf.txt: "), std::string::npos) << r.err;  // the document's token cost
    EXPECT_NE(r.err.find("3 new tokens"), std::string::npos) << r.err;
}

TEST(CliRun, BadInputExitCodes) {
    const std::string model = " --model " + shell_quote(kChat.string());
    EXPECT_EQ(run_volt("run" + model).exit_code, 2);  // no prompt
    EXPECT_EQ(run_volt("run" + model + " --prompt a --prompt-file b").exit_code, 2);
    auto enc = run_volt("run" + model + " --prompt q --doc " + shell_quote((kDocs / "encrypted.pdf").string()));
    EXPECT_EQ(enc.exit_code, 3);
    EXPECT_NE(enc.err.find("encrypted"), std::string::npos) << enc.err;
    auto missing = run_volt("run" + model + " --prompt-file /nonexistent/prompt.txt");
    EXPECT_EQ(missing.exit_code, 3);
    EXPECT_NE(missing.err.find("/nonexistent/prompt.txt"), std::string::npos);
    auto small = run_volt("run" + model + " --prompt q --max-context 16");
    EXPECT_EQ(small.exit_code, 4) << small.err;
    EXPECT_NE(small.err.find("context holds 16"), std::string::npos) << small.err;
    auto no_tok = run_volt("run --model " + shell_quote((fs::path(VOLT_TEST_DATA_DIR) / "tiny-text").string()) + " --prompt q");
    EXPECT_EQ(no_tok.exit_code, 3);
    EXPECT_NE(no_tok.err.find("no tokenizer"), std::string::npos) << no_tok.err;
    auto sampling = run_volt("run" + model + " --prompt q --temperature -1");
    EXPECT_EQ(sampling.exit_code, 3) << sampling.err;
}

TEST(CliRun, AsksAboutImages) {
    // tiny-vl-chat: the tiny VL model with a chat tokenizer (what its reply computes is checked against the spliced
    // embeddings path in tests/unit/vision/test_vl_chat.cpp); here the command line around it.
    const fs::path images = fs::path(VOLT_TEST_DATA_DIR) / "vision" / "images";
    const std::string model = " --model " + shell_quote((fs::path(VOLT_TEST_DATA_DIR) / "tiny-vl-chat").string());
    const std::string photo = shell_quote((images / "photo_640x480.jpg").string());
    const std::string tall = shell_quote((images / "tall_70x1300.png").string());
    const std::string ask = " --prompt 'What is shown?' --temperature 0 --max-new-tokens 4 -v";
    auto r = run_volt("run" + model + " --image " + photo + " --image " + tall + ask);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("photo_640x480.jpg: 2340 tokens"), std::string::npos) << r.err;  // 576 + 48*36 + 36
    EXPECT_NE(r.err.find("tall_70x1300.png: 1248 tokens"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("4 new tokens"), std::string::npos) << r.err;
    auto swapped = run_volt("run" + model + " --image " + tall + " --image " + photo + ask);
    ASSERT_EQ(swapped.exit_code, 0) << swapped.err;
    EXPECT_EQ(run_volt("run" + model + " --image " + photo + " --image " + tall + ask).out, r.out);  // deterministic

    auto text_only = run_volt("run --model " + shell_quote(kChat.string()) + " --image " + photo + " --prompt q");
    EXPECT_EQ(text_only.exit_code, 3);
    EXPECT_NE(text_only.err.find("text-only"), std::string::npos) << text_only.err;
    auto budget = run_volt("run" + model + " --image " + photo + " --max-image-tokens 1000 --prompt q");
    EXPECT_EQ(budget.exit_code, 4);
    EXPECT_NE(budget.err.find("2340 tokens, more than the per-image budget of 1000"), std::string::npos) << budget.err;
    auto missing = run_volt("run" + model + " --image /nonexistent/map.png --prompt q");
    EXPECT_EQ(missing.exit_code, 3);
    EXPECT_NE(missing.err.find("/nonexistent/map.png"), std::string::npos) << missing.err;
    auto context = run_volt("run" + model + " --image " + photo + " --max-context 2000 --prompt q");
    EXPECT_EQ(context.exit_code, 4) << context.err;
}

}  // namespace
}  // namespace volt
