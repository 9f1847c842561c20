#include <gtest/gtest.h>

#include "config_samples.h"
#include "sdk/model_info.h"
#include "sdk/model_registry.h"
#include "test_helpers.h"

namespace volt {
namespace {

// The tables reproduce the published checkpoint inventory: Text-01 has 8,243 tensors and VL-01 8,637
// (minimax01-architecture.md §7), ~456B parameters with 45.9B active per token.
TEST(WeightTables, MatchTheRealCheckpointInventory) {
    auto text = parse_model_config(test::text01_config(), "config.json").value();
    auto specs = expected_weights(text);
    EXPECT_EQ(specs.size(), 8243u);
    int64_t total = 0;
    for (const auto& s : specs) total += s.shape.numel();
    EXPECT_NEAR(static_cast<double>(total), 456.09e9, 0.01e9);

    auto vl = parse_model_config(test::vl01_config(), "config.json").value();
    auto vspecs = expected_weights(vl);
    size_t required = 0;
    for (const auto& s : vspecs) required += !s.optional;
    EXPECT_EQ(required, 8637u);
    bool found_qkv = false;
    for (const auto& s : vspecs) {
        if (s.name == "language_model.model.layers.0.self_attn.qkv_proj.weight") {
            EXPECT_EQ(s.shape, (Shape{24576, 6144}));
            found_qkv = true;
        }
        if (s.name == "language_model.model.layers.7.self_attn.k_proj.weight") {
            EXPECT_EQ(s.shape, (Shape{1024, 6144}));
        }
        if (s.name == "vision_tower.vision_model.embeddings.position_embedding.weight") {
            EXPECT_EQ(s.shape, (Shape{577, 1024}));
        }
        if (s.name == "multi_modal_projector.linear_1.weight") {
            EXPECT_EQ(s.shape, (Shape{6144, 1024}));
        }
    }
    EXPECT_TRUE(found_qkv);
}

TEST(WeightTables, ActiveParametersFollowMiniMaxConvention) {
    test::TempDir dir;
    test::write_file(dir / "config.json", test::text01_config().dump());
    auto info = inspect_model(dir.path());
    ASSERT_TRUE(info.has_value()) << info.status().to_string();
    EXPECT_NEAR(static_cast<double>(info->active_params_per_token), 45.9e9, 0.1e9);
    EXPECT_FALSE(info->has_checkpoint);
}

// A checkpoint written from the tiny config's own table binds cleanly; every kind of damage is reported, all at once.
TEST(Binding, ReportsEveryProblemAtOnce) {
    auto cfg = parse_model_config(test::tiny_text_config(), "config.json").value();
    auto specs = expected_weights(cfg);
    std::vector<NamedTensor> tensors;
    for (const auto& s : specs) tensors.push_back({s.name, Tensor::zeros(s.shape, DType::kBF16).value()});
    test::TempDir good;
    ASSERT_TRUE(write_safetensors(good / "model.safetensors", tensors).is_ok());
    auto ck = Checkpoint::open(good.path()).value();
    BindingReport ok = bind_checkpoint(ck, specs);
    EXPECT_TRUE(ok.ok());
    EXPECT_EQ(ok.present, specs.size());
    EXPECT_TRUE(ok.to_status("x").is_ok());

    // Damage: drop one, reshape one, make one integer, add a stray one.
    std::vector<NamedTensor> bad;
    for (const auto& t : tensors) {
        if (t.name == "model.layers.1.self_attn.k_proj.weight") continue;
        if (t.name == "model.layers.0.self_attn.qkv_proj.weight") {
            bad.push_back({t.name, Tensor::zeros({97, 32}, DType::kBF16).value()});
            continue;
        }
        if (t.name == "model.norm.weight") {
            bad.push_back({t.name, Tensor::zeros({32}, DType::kI32).value()});
            continue;
        }
        bad.push_back(t);
    }
    bad.push_back({"model.layers.9.extra.weight", Tensor::zeros({2}, DType::kF32).value()});
    test::TempDir dir;
    ASSERT_TRUE(write_safetensors(dir / "model.safetensors", bad).is_ok());
    auto ck2 = Checkpoint::open(dir.path()).value();
    BindingReport r = bind_checkpoint(ck2, specs);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.missing, std::vector<std::string>{"model.layers.1.self_attn.k_proj.weight"});
    ASSERT_EQ(r.mis_shaped.size(), 1u);
    EXPECT_EQ(r.mis_shaped[0].expected, (Shape{96, 32}));
    EXPECT_EQ(r.mis_shaped[0].actual, (Shape{97, 32}));
    EXPECT_EQ(r.bad_dtype, std::vector<std::string>{"model.norm.weight: I32"});
    EXPECT_EQ(r.unexpected, std::vector<std::string>{"model.layers.9.extra.weight"});
    Status s = r.to_status(ck2.description());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    for (const char* frag : {"1 missing", "k_proj", "expected [96, 32], found [97, 32]", "I32", "extra.weight"})
        EXPECT_NE(s.message().find(frag), std::string::npos) << frag << " in " << s.message();
}

TEST(Binding, TiedEmbeddingsMakeLmHeadOptional) {
    auto j = test::tiny_text_config();
    j["tie_word_embeddings"] = true;
    auto cfg = parse_model_config(j, "config.json").value();
    auto specs = expected_weights(cfg);
    std::vector<NamedTensor> tensors;
    for (const auto& s : specs)
        if (s.name != "lm_head.weight") tensors.push_back({s.name, Tensor::zeros(s.shape, DType::kF32).value()});
    test::TempDir dir;
    ASSERT_TRUE(write_safetensors(dir / "model.safetensors", tensors).is_ok());
    EXPECT_TRUE(bind_checkpoint(Checkpoint::open(dir.path()).value(), specs).ok());
}

}  // namespace
}  // namespace volt
