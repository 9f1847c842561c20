// `volt tokenize` / `volt detokenize` (design.md CLI contract) on a tokenizer-only directory: ids equal the
// reference fixture, the round trip is exact, and bad input exits 3 (usage errors 2) with a one-line message.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sys/wait.h>

#include "tests/unit/tokenizer/fixture.h"

namespace volt::text {
namespace {

namespace fs = std::filesystem;

struct CliResult {
    int exit_code;
    std::string out, err;
};

CliResult run_volt(const std::string& args) {
    static int n = 0;
    fs::path dir = fs::temp_directory_path() / ("volt_cli_tok_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::path out = dir / ("out" + std::to_string(n)), err = dir / ("err" + std::to_string(n++));
    std::string cmd = std::string(VOLT_CLI_PATH) + " " + args + " >" + out.string() + " 2>" + err.string();
    int status = std::system(cmd.c_str());
    auto slurp = [](const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

fs::path temp_file(const std::string& name, const std::string& content) {
    fs::path p = fs::temp_directory_path() / ("volt_cli_tok_" + std::to_string(::getpid()) + "_" + name);
    std::ofstream(p, std::ios::binary) << content;
    return p;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(CliTokenize, IdsMatchReferenceAndRoundTrip) {
    const fs::path model = test::tokenizer_data_dir() / "bpe_gpt4o";
    auto cases = test::reference_cases("bpe_gpt4o");
    int checked = 0;
    for (size_t i = 0; i < cases.size(); i += 23) {  // a spread of categories; the library tests cover all
        const auto& c = cases[i];
        fs::path text = temp_file("text" + std::to_string(i), c.text);
        fs::path ids = temp_file("ids" + std::to_string(i), "");
        CliResult r = run_volt("tokenize --model " + model.string() + " --text-file " + text.string() + " --out " + ids.string());
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(nlohmann::json::parse(slurp(ids)).get<std::vector<int32_t>>(), c.ids);
        CliResult d = run_volt("detokenize --model " + model.string() + " --ids-file " + ids.string());
        ASSERT_EQ(d.exit_code, 0) << d.err;
        EXPECT_EQ(d.out, c.decoded);
        ++checked;
    }
    EXPECT_GE(checked, 15);
}

TEST(CliTokenize, TextFlagAddSpecialAndStdout) {
    const fs::path model = test::tokenizer_data_dir() / "bpe_gpt4o";
    const test::ReferenceCase c = test::reference_cases("bpe_gpt4o")[20];
    CliResult r = run_volt("tokenize --model " + model.string() + " --text " + quote(c.text) + " --add-special --out -");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out).get<std::vector<int32_t>>(), c.ids_special);
}

TEST(CliTokenize, SentencePieceModelFile) {
    const fs::path model = test::tokenizer_data_dir() / "spm_unigram" / "tokenizer.model";
    const test::ReferenceCase c = test::reference_cases("spm_unigram")[30];
    CliResult r = run_volt("tokenize --model " + model.string() + " --text " + quote(c.text) + " --out -");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out).get<std::vector<int32_t>>(), c.ids);
}

TEST(CliTokenize, BadInputExitCodes) {
    const std::string model = (test::tokenizer_data_dir() / "bpe_gpt4o").string();
    CliResult missing = run_volt("tokenize --model /nonexistent/dir --text hi --out -");
    EXPECT_EQ(missing.exit_code, 3);
    EXPECT_NE(missing.err.find("/nonexistent/dir"), std::string::npos) << missing.err;

    CliResult no_text = run_volt("tokenize --model " + model + " --out -");
    EXPECT_EQ(no_text.exit_code, 2);

    fs::path bad_utf8 = temp_file("bad_utf8", "ok \xC3\x28");
    CliResult r = run_volt("tokenize --model " + model + " --text-file " + bad_utf8.string() + " --out -");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("UTF-8"), std::string::npos) << r.err;

    fs::path not_ids = temp_file("not_ids.json", "{\"ids\": [1, 2]}");
    r = run_volt("detokenize --model " + model + " --ids-file " + not_ids.string());
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("not_ids.json"), std::string::npos) << r.err;

    fs::path unknown = temp_file("unknown.json", "[1, 99999999]");
    r = run_volt("detokenize --model " + model + " --ids-file " + unknown.string());
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("99999999"), std::string::npos) << r.err;

    fs::path broken = fs::temp_directory_path() / ("volt_cli_tok_broken_" + std::to_string(::getpid()));
    fs::create_directories(broken);
    std::ofstream(broken / "tokenizer.json") << R"({"model": {"type": "BPE", "vocab": {"a": 0}}})";
    r = run_volt("tokenize --model " + broken.string() + " --text a --out -");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("merges"), std::string::npos) << r.err;
    fs::remove_all(broken);
}

}  // namespace
}  // namespace volt::text
