// `volt bench` (design.md CLI contract): each subcommand runs on the fixture models, prints its table, and writes
// JSON whose numbers are positive and consistent (the ceilings are measured, rates agree with times); bad use exits
// with the contract's codes.
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

const fs::path kData = VOLT_TEST_DATA_DIR;

nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

fs::path temp_json(const char* name) {
    return fs::temp_directory_path() / (std::string(name) + "-" + std::to_string(::getpid()) + ".json");
}

TEST(CliBench, TextPrefillAndDecode) {
    const fs::path out = temp_json("volt-bench-text");
    auto r = run_volt("bench text --model " + shell_quote((kData / "tiny-chat").string()) +
                      " --prompt-tokens 64 --decode-tokens 8 --reps 1 --json " + shell_quote(out.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| prefill 64 tokens"), std::string::npos) << r.out;
    const auto j = read_json(out);
    fs::remove(out);
    EXPECT_GT(j["ceilings"]["sgemm_gflops"].get<double>(), 0);
    EXPECT_GT(j["ceilings"]["read_gbs"].get<double>(), 0);
    EXPECT_EQ(j["prefill"]["tokens"], 64);
    EXPECT_NEAR(j["prefill"]["tokens_per_second"].get<double>() * j["prefill"]["seconds"].get<double>(), 64, 1e-6);
    EXPECT_EQ(j["decode"]["steps"].get<double>(), 7);  // 8 tokens: the last needs no step
    EXPECT_GT(j["decode"]["tokens_per_second"].get<double>(), 0);
}

TEST(CliBench, VisionAndEndToEnd) {
    const fs::path out = temp_json("volt-bench-vision");
    const std::string vl = " --model " + shell_quote((kData / "tiny-vl-chat").string());
    auto v = run_volt("bench vision" + vl + " --size 672x336 --reps 1 --json " + shell_quote(out.string()));
    ASSERT_EQ(v.exit_code, 0) << v.err;
    auto j = read_json(out);
    EXPECT_EQ(j["image"]["crops"], 3);        // 672x336: two tiles and the thumbnail
    EXPECT_EQ(j["image"]["tokens"], 1752);    // 576 + 48*24 + 24
    EXPECT_GT(j["crop"]["ms"].get<double>(), 0);
    const std::string photo = shell_quote((kData / "vision" / "images" / "photo_640x480.jpg").string());
    auto e = run_volt("bench run" + vl + " --image " + photo + " --prompt 'What is it?' --max-new-tokens 4 --json " +
                      shell_quote(out.string()));
    ASSERT_EQ(e.exit_code, 0) << e.err;
    j = read_json(out);
    fs::remove(out);
    EXPECT_GT(j["prompt_tokens"].get<int64_t>(), 2340);  // the image's tokens and the question
    EXPECT_EQ(j["new_tokens"], 4);
    EXPECT_GT(j["time_to_first_token_seconds"].get<double>(), 0);
}

TEST(CliBench, BadUse) {
    EXPECT_EQ(run_volt("bench").exit_code, 2);  // a subcommand is required
    auto text_model = run_volt("bench vision --model " + shell_quote((kData / "tiny-chat").string()));
    EXPECT_EQ(text_model.exit_code, 3);
    EXPECT_NE(text_model.err.find("vision"), std::string::npos) << text_model.err;
    auto size = run_volt("bench vision --model " + shell_quote((kData / "tiny-vl-chat").string()) + " --size 12by7");
    EXPECT_EQ(size.exit_code, 3);
    EXPECT_NE(size.err.find("--size 12by7"), std::string::npos) << size.err;
    // The vision tower runs on one GPU: more is refused before anything loads (also in builds without CUDA).
    auto gpus = run_volt("bench vision --device cuda --synthetic vit-l-336 --gpus 2");
    EXPECT_EQ(gpus.exit_code, 3) << gpus.err;
    EXPECT_NE(gpus.err.find("volt bench vision runs on one GPU, but --gpus 2 asks for 2"), std::string::npos)
        << gpus.err;
    auto sustain = run_volt("bench vision --device cuda --synthetic vit-l-336 --sustain -1");
    EXPECT_EQ(sustain.exit_code, 3) << sustain.err;
    EXPECT_NE(sustain.err.find("--sustain -1: expected 0..600 seconds"), std::string::npos) << sustain.err;
    auto idle = run_volt("bench vision --device cuda --synthetic vit-l-336 --from-idle 101");
    EXPECT_EQ(idle.exit_code, 3) << idle.err;
    EXPECT_NE(idle.err.find("--from-idle 101: expected 0..100 forwards"), std::string::npos) << idle.err;
    auto context = run_volt("bench text --model " + shell_quote((kData / "tiny-chat").string()) +
                            " --prompt-tokens 5000 --reps 1");
    EXPECT_EQ(context.exit_code, 4) << context.err;
}

}  // namespace
}  // namespace volt
