// `volt logits` and `volt generate` as a user runs them (design.md CLI contract, exit codes 0/2/3/4).
#include <gtest/gtest.h>

#include "backbone_test_util.h"
#include "tests/integration/cli_runner.h"

namespace volt {
namespace {

using namespace volt::test;

struct Tmp {
    fs::path dir = fs::temp_directory_path() / ("volt-cli-backbone-" + std::to_string(::getpid()));
    Tmp() { fs::create_directories(dir); }
    ~Tmp() { fs::remove_all(dir); }
    std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

const fs::path kTiny = kData / "tiny-text";
const fs::path kRef = kTiny / "reference";

TEST(CliLogits, MatchesTheReference) {
    Tmp t;
    auto r = run_volt("logits --model " + shell_quote(kTiny.string()) + " --ids-file " +
                      shell_quote((kRef / "ids_257.json").string()) + " --out " + shell_quote(t / "l.npy"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto got = read_npy(t / "l.npy");
    auto want = read_npy(kRef / "logits_257.npy");
    ASSERT_TRUE(got.has_value() && want.has_value());
    ASSERT_EQ(got->shape(), want->shape());
    EXPECT_LE(rel_fro(got->data_as<float>(), want->data_as<float>(), want->numel()), 1e-4);
}

TEST(CliLogits, IncrementalEqualsFullPrefill) {
    Tmp t;
    const std::string base = "logits --model " + shell_quote(kTiny.string()) + " --ids-file " +
                             shell_quote((kRef / "ids_600.json").string());
    ASSERT_EQ(run_volt(base + " --out " + shell_quote(t / "full.npy")).exit_code, 0);
    auto r = run_volt(base + " --incremental 250 --out " + shell_quote(t / "inc.npy"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto full = read_npy(t / "full.npy");
    auto inc = read_npy(t / "inc.npy");
    ASSERT_TRUE(full.has_value() && inc.has_value());
    ASSERT_EQ(full->shape(), inc->shape());
    EXPECT_LE(rel_fro(inc->data_as<float>(), full->data_as<float>(), full->numel()), 1e-5);
}

// MiniMax-VL-01 (the vision side's fixture, tools/make_vision_fixture.py): image tokens expand to the images'
// features, spliced into the backbone's input embeddings; the logits cover the expanded prompt.
TEST(CliLogits, VisionLanguagePromptsMatchTheReference) {
    const fs::path vl = kData / "vision" / "tiny-vl";
    if (!fs::exists(vl / "reference" / "manifest.json")) GTEST_SKIP() << "no VL fixture at " << vl;
    const auto manifest = read_json(vl / "reference" / "manifest.json");
    Tmp t;
    int checked = 0;
    for (const auto& p : manifest["prompts"]) {
        std::string images;
        for (const auto& img : p["images"]) images += " --image " + shell_quote((kData / "vision" / "images" / img.get<std::string>()).string());
        const std::string base = "logits --model " + shell_quote(vl.string()) + " --ids-file " +
                                 shell_quote((vl / p["ids"].get<std::string>()).string()) + images;
        auto r = run_volt(base + " --out " + shell_quote(t / "vl.npy"));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        auto got = read_npy(t / "vl.npy");
        auto want = read_npy(vl / p["logits"].get<std::string>());
        ASSERT_TRUE(got.has_value() && want.has_value());
        ASSERT_EQ(got->shape(), want->shape());
        const double err = rel_fro(got->data_as<float>(), want->data_as<float>(), want->numel());
        std::printf("  %s: %lld expanded positions, rel_fro %.3e\n", p["name"].get<std::string>().c_str(),
                    (long long)want->dim(0), err);
        EXPECT_LE(err, 1e-4) << p["name"];
        if (checked++ == 0) {
            // Decode steps through image positions (embedding rows) equal the full prefill.
            auto inc = run_volt(base + " --incremental 300 --out " + shell_quote(t / "vl_inc.npy"));
            ASSERT_EQ(inc.exit_code, 0) << inc.err;
            auto gi = read_npy(t / "vl_inc.npy");
            ASSERT_TRUE(gi.has_value());
            EXPECT_LE(rel_fro(gi->data_as<float>(), got->data_as<float>(), got->numel()), 1e-5);
        }
    }
    EXPECT_EQ(checked, 2);
    // One image token, no --image: the counts are named.
    auto r = run_volt("logits --model " + shell_quote(vl.string()) + " --ids-file " +
                      shell_quote((vl / "reference" / "ids_1img.json").string()) + " --out " + shell_quote(t / "x.npy"));
    EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST(CliGenerate, GreedyMatchesTheReference) {
    Tmp t;
    auto r = run_volt("generate --model " + shell_quote(kTiny.string()) + " --ids-file " +
                      shell_quote((kRef / "ids_257.json").string()) + " --max-new-tokens 12 --greedy --out " +
                      shell_quote(t / "new.json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_ids(t / "new.json"), read_ids(kRef / "greedy_257.json"));
}

TEST(CliGenerate, SamplingIsReproducibleWithASeed) {
    Tmp t;
    const std::string base = "generate --model " + shell_quote(kTiny.string()) + " --ids-file " +
                             shell_quote((kRef / "ids_1.json").string()) +
                             " --max-new-tokens 16 --temperature 1.2 --top-k 40 --top-p 0.9 --min-p 0.02 "
                             "--repetition-penalty 1.1";
    ASSERT_EQ(run_volt(base + " --seed 7 --out " + shell_quote(t / "a.json")).exit_code, 0);
    ASSERT_EQ(run_volt(base + " --seed 7 --out " + shell_quote(t / "b.json")).exit_code, 0);
    ASSERT_EQ(run_volt(base + " --seed 8 --out " + shell_quote(t / "c.json")).exit_code, 0);
    const auto a = read_ids(t / "a.json");
    EXPECT_EQ(a.size(), 16u);
    EXPECT_EQ(a, read_ids(t / "b.json"));
    EXPECT_NE(a, read_ids(t / "c.json"));
}

// Several prompts in one file run with continuous batching; each gets what it gets alone.
TEST(CliGenerate, SeveralPromptsGetWhatEachGetsAlone) {
    Tmp t;
    const std::vector<std::vector<int32_t>> prompts = {read_ids(kRef / "ids_257.json"), read_ids(kRef / "ids_1.json"),
                                                       {5, 6, 7, 8, 9}};
    std::ofstream(t / "many.json") << nlohmann::json(prompts).dump();
    const std::string base = "generate --model " + shell_quote(kTiny.string()) +
                             " --max-new-tokens 10 --temperature 1.1 --top-k 30 --seed 3";
    auto r = run_volt(base + " --max-batch 2 --ids-file " + shell_quote(t / "many.json") + " --out " +
                      shell_quote(t / "many_out.json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ifstream in(t / "many_out.json");
    const auto got = nlohmann::json::parse(in).get<std::vector<std::vector<int32_t>>>();
    ASSERT_EQ(got.size(), prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
        const auto one = t / ("one" + std::to_string(i) + ".json");
        std::ofstream(one) << nlohmann::json(prompts[i]).dump();
        auto a = run_volt(base + " --ids-file " + shell_quote(one) + " --out " + shell_quote(t / "alone.json"));
        ASSERT_EQ(a.exit_code, 0) << a.err;
        EXPECT_EQ(got[i], read_ids(t / "alone.json")) << "prompt " << i;
    }
    // A bad prompt is named.
    std::ofstream(t / "bad.json") << "[[1, 2], [], [3]]";
    auto bad = run_volt(base + " --ids-file " + shell_quote(t / "bad.json") + " --out " + shell_quote(t / "x.json"));
    EXPECT_EQ(bad.exit_code, 3);
    EXPECT_NE(bad.err.find("prompt 1"), std::string::npos) << bad.err;
}

TEST(CliBadInput, ExitCodesAndOneLineMessages) {
    Tmp t;
    const std::string model = " --model " + shell_quote(kTiny.string());
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(t / name) << text;
        return shell_quote(t / name);
    };
    struct Case {
        std::string args, needle;
        int code;
    };
    const std::vector<Case> cases = {
        {"logits" + model + " --ids-file " + write("oob.json", "[1, 2, 512]") + " --out x.npy",
         "token id 512 at position 2 is outside the vocabulary", 3},
        {"logits" + model + " --ids-file " + write("empty.json", "[]") + " --out x.npy", "empty", 3},
        {"logits" + model + " --ids-file " + write("obj.json", "{\"ids\": [1]}") + " --out x.npy", "expected a JSON array", 3},
        {"logits" + model + " --ids-file " + write("str.json", "[1, \"a\"]") + " --out x.npy", "element 1", 3},
        {"logits" + model + " --ids-file " + shell_quote(t / "nope.json") + " --out x.npy", "nope.json", 3},
        {"logits --model " + shell_quote(t / "no-model") + " --ids-file " + write("ok.json", "[1]") + " --out x.npy", "no-model", 3},
        {"logits" + model + " --ids-file " + write("ok2.json", "[1, 2]") + " --incremental 3 --out x.npy", "--incremental", 3},
        {"logits" + model + " --ids-file " + write("ok3.json", "[1]") + " --image a.png --out x.npy", "text-only", 3},
        {"logits" + model + " --ids-file " + write("long.json", nlohmann::json(std::vector<int>(4097, 1)).dump()) +
             " --out x.npy", "exceeds the context of 4096 tokens", 4},
        {"logits" + model + " --out x.npy", "--ids-file", 2},
        {"generate" + model + " --ids-file " + write("g.json", "[1]") + " --max-new-tokens 2 --greedy --temperature 0.5 --out y.json", "", 2},
        {"generate" + model + " --ids-file " + write("g2.json", "[1]") + " --max-new-tokens 2 --top-p 1.5 --out y.json", "top_p", 3},
        // GPU lists: checked before the model is read (also on machines without a GPU).
        {"logits" + model + " --ids-file " + write("gi.json", "[1]") + " --out x.npy --device cuda --gpu-ids 1,x",
         "'x' is not a GPU index", 3},
        {"logits" + model + " --ids-file " + write("gi2.json", "[1]") + " --out x.npy --device cuda --gpu-ids 2,2",
         "GPU 2 is listed twice", 3},
        {"logits" + model + " --ids-file " + write("gi3.json", "[1]") + " --out x.npy --gpu-ids 1", "needs --device cuda", 3},
        {"generate" + model + " --ids-file " + write("gi4.json", "[1]") +
             " --max-new-tokens 2 --out y.json --device cuda --gpus 3 --gpu-ids 0,1", "disagree", 3},
        // Quantised expert weights: CUDA only, one of three names, not two contradicting flags.
        {"logits" + model + " --ids-file " + write("q1.json", "[1]") + " --out x.npy --expert-weights int8",
         "int8 expert weights need the CUDA device", 3},
        {"logits" + model + " --ids-file " + write("q2.json", "[1]") + " --out x.npy --fp8-experts",
         "fp8 expert weights need the CUDA device", 3},
        {"logits" + model + " --ids-file " + write("q3.json", "[1]") + " --out x.npy --expert-weights int4",
         "--expert-weights", 2},
        {"generate" + model + " --ids-file " + write("q4.json", "[1]") +
             " --max-new-tokens 2 --out y.json --fp8-experts --expert-weights int8",
         "--fp8-experts contradicts --expert-weights int8", 3},
    };
    for (const auto& c : cases) {
        auto r = run_volt(c.args);
        EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.err;
        EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.args << "\n" << r.err;
        if (c.code == 3 || c.code == 4) {
            EXPECT_EQ(r.err.rfind("volt: ", 0), 0u) << r.err;
        }
    }
}

}  // namespace
}  // namespace volt
