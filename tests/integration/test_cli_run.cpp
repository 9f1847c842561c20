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

}  // namespace
}  // namespace volt
