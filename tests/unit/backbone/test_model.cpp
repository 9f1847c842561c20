// The backbone against the transformers reference logits of every fixture (tools/make_text_fixture.py), incremental
// decode against full prefill, and the model's errors for bad checkpoints and bad ids.
#include <gtest/gtest.h>

#include <algorithm>

#include <cstdio>

#include "backbone_test_util.h"
#include "sdk/checkpoint.h"
#include "sdk/config.h"
#include "sdk/engine/session.h"
#include "sdk/safetensors.h"

namespace volt {
namespace {

using namespace volt::test;

class FixtureLogits : public ::testing::TestWithParam<const char*> {};

TEST_P(FixtureLogits, MatchReferenceAtEveryPromptLength) {
    const fs::path dir = kData / GetParam();
    const auto manifest = read_json(dir / "reference" / "manifest.json");
    const double tol = manifest["tolerance"]["logits_rel_fro"].get<double>();
    auto model = load_fixture(GetParam());
    ASSERT_TRUE(model);
    ASSERT_FALSE(manifest["cases"].empty());
    for (const auto& c : manifest["cases"]) {
        const auto ids = read_ids(dir / "reference" / c["ids"].get<std::string>());
        auto ref = read_npy(dir / "reference" / c["logits"].get<std::string>());
        ASSERT_TRUE(ref.has_value()) << ref.status().to_string();
        const int64_t n = static_cast<int64_t>(ids.size()), V = model->vocab_size();
        ASSERT_EQ(ref->shape(), (Shape{n, V}));
        auto session = Session::create(*model);
        ASSERT_TRUE(session.has_value());
        auto logits = session->append(ids, LogitsMode::kAll);
        ASSERT_TRUE(logits.has_value()) << logits.status().to_string();
        ASSERT_EQ(logits->shape(), (Shape{n, V}));
        const double err = rel_fro(logits->data_as<float>(), ref->data_as<float>(), n * V);
        const int64_t bad = argmax_mismatches(logits->data_as<float>(), ref->data_as<float>(), n, V);
        std::printf("  %s n=%lld rel_fro=%.3e argmax mismatches=%lld\n", GetParam(), (long long)n, err, (long long)bad);
        EXPECT_LE(err, tol) << GetParam() << " n=" << n;
        EXPECT_EQ(bad, 0) << GetParam() << " n=" << n;
    }
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, FixtureLogits, ::testing::ValuesIn(kFixtures));

// Prefill N tokens, then one decode step per token: the rows must equal the full prefill's (the lightning decode
// recurrence vs the chunked prefill, the KV cache vs a fresh attention, RoPE positions after the prefix).
TEST(Incremental, DecodeStepsEqualFullPrefill) {
    auto model = load_fixture("tiny-text");
    ASSERT_TRUE(model);
    const fs::path ref = kData / "tiny-text" / "reference";
    const auto ids = read_ids(ref / "ids_600.json");
    const int64_t n = static_cast<int64_t>(ids.size()), V = model->vocab_size();
    auto full_s = Session::create(*model);
    auto full = full_s->append(ids, LogitsMode::kAll);
    ASSERT_TRUE(full.has_value());
    for (int64_t N : {0, 1, 250, 256, 599}) {
        auto s = Session::create(*model);
        std::vector<float> got(n * V);
        if (N > 0) {
            auto rows = s->append(std::span(ids).first(N), LogitsMode::kAll);
            ASSERT_TRUE(rows.has_value()) << rows.status().to_string();
            std::copy_n(rows->data_as<float>(), N * V, got.data());
        }
        for (int64_t i = N; i < n; ++i) {
            auto row = s->append(std::span(ids).subspan(i, 1), LogitsMode::kLast);
            ASSERT_TRUE(row.has_value()) << row.status().to_string();
            std::copy_n(row->data_as<float>(), V, got.data() + i * V);
        }
        const double err = rel_fro(got.data(), full->data_as<float>(), n * V);
        std::printf("  incremental N=%lld of %lld: rel_fro vs full prefill %.3e\n", (long long)N, (long long)n, err);
        EXPECT_LE(err, 1e-5) << "N=" << N;
        EXPECT_EQ(argmax_mismatches(got.data(), full->data_as<float>(), n, V), 0) << "N=" << N;
    }
}

// A prompt longer than the model's per-pass chunk runs piece by piece; the result must not depend on where the
// pieces (or separate append calls) split it.
TEST(Incremental, LongPromptsSplitAnywhereGiveTheSameLogits) {
    auto model = load_fixture("tiny-text-top1");
    ASSERT_TRUE(model);
    const int64_t n = MiniMaxTextModel::kMaxChunkTokens + 300, V = model->vocab_size();
    const auto ids = random_ids(n, V, 5);
    auto a = Session::create(*model);
    auto whole = a->append(ids, LogitsMode::kAll);
    ASSERT_TRUE(whole.has_value()) << whole.status().to_string();
    auto b = Session::create(*model);
    auto p1 = b->append(std::span(ids).first(777), LogitsMode::kAll);
    auto p2 = b->append(std::span(ids).subspan(777), LogitsMode::kAll);
    ASSERT_TRUE(p1.has_value() && p2.has_value());
    EXPECT_LE(rel_fro(p1->data_as<float>(), whole->data_as<float>(), 777 * V), 1e-5);
    EXPECT_LE(rel_fro(p2->data_as<float>(), whole->data_as<float>() + 777 * V, (n - 777) * V), 1e-5);
    auto c = Session::create(*model);
    auto last = c->append(ids, LogitsMode::kLast);
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->shape(), (Shape{1, V}));
    EXPECT_LE(rel_fro(last->data_as<float>(), whole->data_as<float>() + (n - 1) * V, V), 1e-6);
}

// ---- bad input -----------------------------------------------------------------------------------------------------

// Copies a fixture's config and rewrites its checkpoint through `edit` (a map of name -> tensor).
fs::path broken_copy(const std::string& name, const std::function<void(std::map<std::string, Tensor>&)>& edit) {
    const fs::path dst = fs::temp_directory_path() / ("volt-backbone-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dst);
    fs::create_directories(dst);
    fs::copy_file(kData / "tiny-text" / "config.json", dst / "config.json");
    auto ck = Checkpoint::open(kData / "tiny-text");
    EXPECT_TRUE(ck.has_value());
    std::map<std::string, Tensor> t;
    for (const auto& n : ck->names()) t[n] = *ck->view(n);
    edit(t);
    std::vector<NamedTensor> out;
    for (auto& [n, v] : t) out.push_back({n, v});
    EXPECT_TRUE(write_safetensors(dst / "model.safetensors", out).is_ok());
    return dst;
}

TEST(BadInput, MissingTensorIsNamed) {
    const fs::path dir = broken_copy("missing", [](auto& t) { t.erase("model.layers.2.self_attn.out_proj.weight"); });
    auto m = MiniMaxTextModel::load(dir);
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find("missing"), std::string::npos) << m.status().message();
    EXPECT_NE(m.status().message().find("model.layers.2.self_attn.out_proj.weight"), std::string::npos);
    fs::remove_all(dir);
}

TEST(BadInput, WrongShapeIsNamedWithBothShapes) {
    const fs::path dir = broken_copy("shape", [](auto& t) {
        const std::string n = "model.layers.1.block_sparse_moe.experts.3.w2.weight";
        t[n] = *t[n].slice(1, 0, 95);
    });
    auto m = MiniMaxTextModel::load(dir);
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    const std::string msg = m.status().message();  // status() returns a copy
    EXPECT_NE(msg.find("model.layers.1.block_sparse_moe.experts.3.w2.weight: expected [64, 96], found [64, 95]"),
              std::string::npos) << msg;
    fs::remove_all(dir);
}

TEST(BadInput, DirectoryWithoutCheckpoint) {
    const fs::path dir = fs::temp_directory_path() / ("volt-backbone-nockpt-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::copy_file(kData / "tiny-text" / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
    auto m = MiniMaxTextModel::load(dir);
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
    EXPECT_NE(m.status().message().find("model.safetensors"), std::string::npos);
    fs::remove_all(dir);
}

// The load reports its progress in growing fractions ending at 1, and a callback that says stop ends it there.
TEST(Load, ReportsProgressAndStopsWhenTold) {
    std::vector<float> seen;
    auto m = MiniMaxTextModel::load(kData / "tiny-text", {.progress = [&](float f) {
                                        seen.push_back(f);
                                        return Status::ok();
                                    }});
    ASSERT_TRUE(m.has_value()) << m.status().to_string();
    ASSERT_GE(seen.size(), 3u);
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    EXPECT_GT(seen.front(), 0.0f);
    EXPECT_EQ(seen.back(), 1.0f);
    int calls = 0;
    auto stopped = MiniMaxTextModel::load(kData / "tiny-text", {.progress = [&](float f) {
                                              ++calls;
                                              return f > 0.3f ? cancelled("load cancelled by the user") : Status::ok();
                                          }});
    ASSERT_FALSE(stopped.has_value());
    EXPECT_EQ(stopped.status().code(), StatusCode::kCancelled);
    EXPECT_LT(calls, static_cast<int>(seen.size()));
}

TEST(BadInput, WeightsThatDoNotFitInHostMemory) {
    auto ck = Checkpoint::open(kData / "tiny-text");
    ASSERT_TRUE(ck.has_value());
    auto cfg = load_model_config(kData / "tiny-text");
    ASSERT_TRUE(cfg.has_value());
    // Everything but the bf16 embedding is widened to fp32.
    const uint64_t need = MiniMaxTextModel::load_bytes(cfg->text, *ck);
    EXPECT_EQ(need, (427'712ull - 512 * 64) * 4);  // parameters (volt info) minus the embedding table, x 4 bytes
    auto m = MiniMaxTextModel::load(kData / "tiny-text", {.host_memory_budget = need - 1});
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(m.status().message().find("host memory"), std::string::npos) << m.status().message();
    EXPECT_TRUE(MiniMaxTextModel::load(kData / "tiny-text", {.host_memory_budget = need}).has_value());
}

TEST(BadInput, IdsOutsideVocabularyAndEmptyPrompts) {
    auto model = load_fixture("tiny-text");
    ASSERT_TRUE(model);
    auto s = Session::create(*model);
    const std::vector<int32_t> bad = {3, 511, 512};
    auto r = s->append(bad);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("token id 512 at position 2 is outside the vocabulary [0, 512)"),
              std::string::npos) << r.status().message();
    const std::vector<int32_t> neg = {-1};
    EXPECT_EQ(s->append(neg).status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(s->tokens().empty());  // rejected before any compute
    const std::vector<int32_t> none;
    EXPECT_EQ(s->append(none).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s->prefill(none).status().code(), StatusCode::kInvalidArgument);
    // The model itself checks too (callers that bypass the session).
    auto cache = model->new_cache(16);
    ASSERT_TRUE(cache.has_value());
    EXPECT_EQ(model->forward(bad, *cache, LogitsMode::kLast).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(cache->length(), 0);
}

}  // namespace
}  // namespace volt
