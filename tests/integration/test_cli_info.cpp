// `volt info` against the committed fixture model (made by tools/make_text_fixture.py from transformers) and
// against broken model directories: the contract is in design.md (exit codes 0 / 2 usage / 3 bad input).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "sdk/safetensors.h"

namespace volt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::run_volt;
using test::shell_quote;

const fs::path kData = VOLT_TEST_DATA_DIR;
const fs::path kTiny = kData / "tiny-text";

json read_json(const fs::path& p) {
    std::ifstream in(p);
    return json::parse(in);
}

class TempDir {
public:
    TempDir() : path_(fs::temp_directory_path() / ("volt-cli-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
        fs::create_directories(path_);
    }
    ~TempDir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }

private:
    static inline int counter_ = 0;
    fs::path path_;
};

void copy_model(const fs::path& from, const fs::path& to) {
    for (const auto& e : fs::directory_iterator(from))
        if (e.is_regular_file()) fs::copy_file(e.path(), to / e.path().filename());
}

TEST(CliInfo, DescribesTheFixtureModel) {
    ASSERT_TRUE(fs::exists(kTiny / "config.json")) << "fixture missing: run tools/make_text_fixture.py";
    const json cfg = read_json(kTiny / "config.json");
    auto r = run_volt("info --json --model " + shell_quote(kTiny.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json info = json::parse(r.out);
    EXPECT_EQ(info["kind"], "text");
    EXPECT_EQ(info["text"]["hidden_size"], cfg["hidden_size"]);
    EXPECT_EQ(info["text"]["num_layers"], cfg["num_hidden_layers"]);
    EXPECT_EQ(info["text"]["num_heads"], cfg["num_attention_heads"]);
    EXPECT_EQ(info["text"]["num_kv_heads"], cfg["num_key_value_heads"]);
    EXPECT_EQ(info["text"]["vocab_size"], cfg["vocab_size"]);
    EXPECT_EQ(info["text"]["num_experts"], cfg["num_local_experts"]);
    // The layer pattern and the softmax count follow attn_type_list exactly.
    std::string pattern;
    int softmax = 0;
    for (int v : cfg["attn_type_list"]) {
        pattern += v == 1 ? 'S' : 'L';
        softmax += v;
    }
    EXPECT_EQ(info["text"]["layer_pattern"], pattern);
    EXPECT_EQ(info["text"]["num_softmax_layers"], softmax);
    // Every tensor present, nothing unexpected; bytes are all bf16 and add up to the file's data section.
    EXPECT_EQ(info["checkpoint"]["complete"], true) << r.out;
    EXPECT_TRUE(info["checkpoint"]["missing"].empty());
    auto st = SafetensorsFile::open(kTiny / "model.safetensors").value();
    EXPECT_EQ(info["checkpoint"]["tensors"], st.tensors().size());
    uint64_t data_bytes = 0, params = 0;
    for (const auto& e : st.tensors()) {
        data_bytes += e.end - e.begin;
        params += e.shape.numel();
    }
    EXPECT_EQ(info["checkpoint"]["bytes_by_dtype"]["BF16"], data_bytes);
    EXPECT_EQ(info["params"]["total"], params);

    auto human = run_volt("info --model " + shell_quote(kTiny.string()));
    ASSERT_EQ(human.exit_code, 0) << human.err;
    EXPECT_NE(human.out.find("all " + std::to_string(st.tensors().size()) + " expected tensors present"), std::string::npos)
        << human.out;
    EXPECT_NE(human.out.find(pattern), std::string::npos) << human.out;
}

TEST(CliInfo, ShardedFixtureMatchesSingleFile) {
    const fs::path sharded = kData / "tiny-text-sharded";
    if (!fs::exists(sharded)) GTEST_SKIP() << "no sharded fixture at " << sharded;
    auto r = run_volt("info --json --model " + shell_quote(sharded.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json info = json::parse(r.out);
    EXPECT_GT(info["checkpoint"]["files"].get<int>(), 1);
    EXPECT_EQ(info["checkpoint"]["complete"], true);
}

TEST(CliInfo, UsageErrorsExitTwo) {
    EXPECT_EQ(run_volt("info").exit_code, 2);
    EXPECT_EQ(run_volt("").exit_code, 2);
    EXPECT_EQ(run_volt("frobnicate").exit_code, 2);
    EXPECT_EQ(run_volt("info --model a --bogus").exit_code, 2);
    auto help = run_volt("info --help");
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("--model"), std::string::npos);
}

TEST(CliInfo, MissingDirectoryIsBadInput) {
    auto r = run_volt("info --model /nonexistent/model");
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("/nonexistent/model"), std::string::npos) << r.err;
}

TEST(CliInfo, CorruptCheckpointIsOneClearLine) {
    ASSERT_TRUE(fs::exists(kTiny / "config.json"));
    TempDir dir;
    copy_model(kTiny, dir.path());
    {  // truncate the checkpoint: the data section is cut short
        auto size = fs::file_size(dir.path() / "model.safetensors");
        fs::resize_file(dir.path() / "model.safetensors", size / 2);
    }
    auto r = run_volt("info --model " + shell_quote(dir.path().string()));
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("file truncated?"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliInfo, BadConfigNamesTheField) {
    TempDir dir;
    copy_model(kTiny, dir.path());
    json cfg = read_json(dir.path() / "config.json");
    cfg["attn_type_list"].erase(0);
    std::ofstream(dir.path() / "config.json") << cfg.dump();
    auto r = run_volt("info --model " + shell_quote(dir.path().string()));
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("config.json: attn_type_list: has"), std::string::npos) << r.err;
}

TEST(CliInfo, MismatchedCheckpointListsTheTensors) {
    TempDir dir;
    copy_model(kTiny, dir.path());
    json cfg = read_json(dir.path() / "config.json");
    cfg["num_local_experts"] = cfg["num_local_experts"].get<int>() + 1;  // one more expert than the file has
    std::ofstream(dir.path() / "config.json") << cfg.dump();
    auto r = run_volt("info --model " + shell_quote(dir.path().string()));
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.out.find("missing"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("wrong shape"), std::string::npos) << r.out;  // the router gate grows by a row
    EXPECT_NE(r.err.find("does not match"), std::string::npos) << r.err;
}

TEST(CliInfo, TokenizerOnlyDirectoryIsValid) {
    TempDir dir;
    std::ofstream(dir.path() / "tokenizer.json") << "{}";
    auto r = run_volt("info --model " + shell_quote(dir.path().string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("tokenizer-only"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace volt
