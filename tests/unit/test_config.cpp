#include <gtest/gtest.h>

#include "config_samples.h"
#include "sdk/config.h"
#include "test_helpers.h"

namespace volt {
namespace {

using json = nlohmann::json;

TEST(Config, MiniMaxText01) {
    auto c = parse_model_config(test::text01_config(), "config.json");
    ASSERT_TRUE(c.has_value()) << c.status().to_string();
    EXPECT_FALSE(c->is_vl());
    const TextConfig& t = c->text;
    EXPECT_EQ(t.num_layers, 80);
    EXPECT_EQ(t.num_softmax_layers(), 10);
    EXPECT_EQ(t.num_lightning_layers(), 70);
    EXPECT_EQ(t.layer_kinds[7], LayerKind::kSoftmax);
    EXPECT_EQ(t.layer_kinds[79], LayerKind::kSoftmax);
    EXPECT_EQ(t.layer_kinds[8], LayerKind::kLightning);
    EXPECT_EQ(t.head_dim, 128);
    EXPECT_EQ(t.num_kv_heads, 8);
    EXPECT_EQ(t.rotary_dim, 64);
    EXPECT_DOUBLE_EQ(t.rope_theta, 1e7);
    EXPECT_DOUBLE_EQ(t.lightning_alpha, 3.5565588200778455);
    EXPECT_TRUE(t.postnorm);
    EXPECT_DOUBLE_EQ(t.lightning_norm_eps, 1e-6);
    EXPECT_FALSE(t.eos_token_id.has_value());
    EXPECT_TRUE(c->notes.empty()) << c->notes.front();
}

TEST(Config, MiniMaxVL01) {
    auto c = parse_model_config(test::vl01_config(), "config.json");
    ASSERT_TRUE(c.has_value()) << c.status().to_string();
    ASSERT_TRUE(c->is_vl());
    EXPECT_EQ(c->vl->vision.num_layers, 24);
    EXPECT_EQ(c->vl->vision.num_patches(), 576);
    EXPECT_EQ(c->vl->vision.hidden_act, "gelu");
    EXPECT_EQ(c->vl->grid_pinpoints.size(), 28u);
    EXPECT_EQ(c->vl->grid_pinpoints.front(), (std::pair<int64_t, int64_t>{336, 336}));
    EXPECT_EQ(c->vl->image_token_index, 200025);
    EXPECT_EQ(c->text.max_position_embeddings, 8192);
    // The CLIP defaults (layer_norm_eps, num_channels) are not notes: they are not sizes.
    for (const auto& n : c->notes) EXPECT_EQ(n.find("hidden_size"), std::string::npos) << n;
}

TEST(Config, VisionDefaultsFollowClipAndAreNoted) {
    json j = test::vl01_config();
    j["vision_config"].erase("hidden_act");
    auto c = parse_model_config(j, "config.json");
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->vl->vision.hidden_act, "quick_gelu");
    bool noted = false;
    for (const auto& n : c->notes) noted |= n.find("vision_config.hidden_act") != std::string::npos;
    EXPECT_TRUE(noted);
}

TEST(Config, NativeTransformersNames) {
    json j = test::tiny_text_config();
    j["model_type"] = "minimax";
    j.erase("attn_type_list");
    j["layer_types"] = {"linear_attention", "full_attention", "linear_attention"};
    j["full_attn_alpha_factor"] = 2.0;
    j["mlp_beta_factor"] = 0.5;
    auto c = parse_model_config(j, "config.json");
    ASSERT_TRUE(c.has_value()) << c.status().to_string();
    EXPECT_EQ(c->text.layer_kinds[1], LayerKind::kSoftmax);
    EXPECT_DOUBLE_EQ(c->text.softmax_alpha, 2.0);
    EXPECT_DOUBLE_EQ(c->text.mlp_beta, 0.5);
    EXPECT_TRUE(c->text.postnorm);
}

TEST(Config, DefaultsAreNoted) {
    json j = test::tiny_text_config();
    j.erase("rotary_dim");
    j.erase("num_key_value_heads");
    auto c = parse_model_config(j, "config.json");
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->text.rotary_dim, 8);
    EXPECT_EQ(c->text.num_kv_heads, 4);
    EXPECT_EQ(c->notes.size(), 2u);
}

struct Invalid {
    const char* what;
    std::function<void(json&)> mutate;
    StatusCode code;
    const char* fragment;
};

TEST(Config, InvalidConfigsNameTheField) {
    const std::vector<Invalid> cases = {
        {"unknown model type", [](json& j) { j["model_type"] = "llama"; }, StatusCode::kInvalidArgument, "model_type: unsupported model type 'llama'"},
        {"missing model type", [](json& j) { j.erase("model_type"); }, StatusCode::kInvalidArgument, "model_type: missing"},
        {"missing size", [](json& j) { j.erase("num_hidden_layers"); }, StatusCode::kInvalidArgument, "num_hidden_layers: missing"},
        {"size as string", [](json& j) { j["num_attention_heads"] = "4"; }, StatusCode::kInvalidArgument, "num_attention_heads: expected a positive integer, got \"4\""},
        {"zero size", [](json& j) { j["hidden_size"] = 0; }, StatusCode::kInvalidArgument, "hidden_size: expected a positive integer, got 0"},
        {"fractional size", [](json& j) { j["vocab_size"] = 99.5; }, StatusCode::kInvalidArgument, "vocab_size"},
        {"attn_type_list too short", [](json& j) { j["attn_type_list"] = {0, 1}; }, StatusCode::kInvalidArgument, "attn_type_list: has 2 entries but num_hidden_layers is 3"},
        {"attn_type_list bad entry", [](json& j) { j["attn_type_list"] = {0, 2, 0}; }, StatusCode::kInvalidArgument, "entries 0 (lightning) or 1 (softmax)"},
        {"missing attn_type_list", [](json& j) { j.erase("attn_type_list"); }, StatusCode::kInvalidArgument, "attn_type_list: missing"},
        {"kv heads do not divide heads", [](json& j) { j["num_key_value_heads"] = 3; }, StatusCode::kInvalidArgument, "num_key_value_heads: 3 does not divide"},
        {"head_dim inferable only when divisible", [](json& j) { j.erase("head_dim"); j["hidden_size"] = 30; }, StatusCode::kInvalidArgument, "not divisible by num_attention_heads"},
        {"odd rotary_dim", [](json& j) { j["rotary_dim"] = 5; }, StatusCode::kInvalidArgument, "rotary_dim: 5 must be even"},
        {"rotary_dim beyond head_dim", [](json& j) { j["rotary_dim"] = 16; }, StatusCode::kInvalidArgument, "at most head_dim 8"},
        {"top-k beyond experts", [](json& j) { j["num_experts_per_tok"] = 5; }, StatusCode::kInvalidArgument, "exceeds num_local_experts"},
        {"unsupported activation", [](json& j) { j["hidden_act"] = "gelu"; }, StatusCode::kUnimplemented, "hidden_act: 'gelu'"},
        {"shared expert", [](json& j) { j["shared_intermediate_size"] = 64; }, StatusCode::kUnimplemented, "shared_intermediate_size"},
        {"postnorm not bool", [](json& j) { j["postnorm"] = "yes"; }, StatusCode::kInvalidArgument, "postnorm: expected true or false"},
        {"negative eps", [](json& j) { j["rms_norm_eps"] = -1; }, StatusCode::kInvalidArgument, "rms_norm_eps"},
        {"implausible layer count", [](json& j) { j["num_hidden_layers"] = 100000; }, StatusCode::kInvalidArgument, "num_hidden_layers: 100000 exceeds the supported maximum"},
        {"implausible vocabulary", [](json& j) { j["vocab_size"] = int64_t(1) << 40; }, StatusCode::kInvalidArgument, "vocab_size"},
        {"native residual scale not a number", [](json& j) { j["model_type"] = "minimax"; j["layer_types"] = {"linear_attention", "full_attention", "linear_attention"}; j["mlp_alpha_factor"] = "x"; }, StatusCode::kInvalidArgument, "mlp_alpha_factor: expected a finite number"},
    };
    for (const auto& c : cases) {
        json j = test::tiny_text_config();
        c.mutate(j);
        auto r = parse_model_config(j, "dir/config.json");
        ASSERT_FALSE(r.has_value()) << c.what;
        EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status().message();
        EXPECT_NE(r.status().message().find(c.fragment), std::string::npos) << c.what << ": " << r.status().message();
        EXPECT_EQ(r.status().message().rfind("dir/config.json", 0), 0u) << c.what << ": " << r.status().message();
    }
}

TEST(Config, InvalidVLConfigs) {
    const std::vector<Invalid> cases = {
        {"no vision config", [](json& j) { j.erase("vision_config"); }, StatusCode::kInvalidArgument, "vision_config: missing"},
        {"no text config", [](json& j) { j.erase("text_config"); }, StatusCode::kInvalidArgument, "text_config: missing"},
        {"text config error is nested", [](json& j) { j["text_config"]["num_attention_heads"] = -1; }, StatusCode::kInvalidArgument, "text_config.num_attention_heads"},
        {"non-CLIP vision", [](json& j) { j["vision_config"]["model_type"] = "siglip_vision_model"; }, StatusCode::kInvalidArgument, "vision_config.model_type"},
        {"patch does not divide", [](json& j) { j["vision_config"]["patch_size"] = 15; }, StatusCode::kInvalidArgument, "patch_size: 15 does not divide"},
        {"bad pinpoints", [](json& j) { j["image_grid_pinpoints"] = {{336}}; }, StatusCode::kInvalidArgument, "image_grid_pinpoints"},
        {"feature layer out of range", [](json& j) { j["vision_feature_layer"] = -30; }, StatusCode::kInvalidArgument, "vision_feature_layer"},
        {"image token outside vocab", [](json& j) { j["image_token_index"] = 300000; }, StatusCode::kInvalidArgument, "outside the vocabulary"},
        {"bad strategy", [](json& j) { j["vision_feature_select_strategy"] = "cls"; }, StatusCode::kInvalidArgument, "vision_feature_select_strategy"},
    };
    for (const auto& c : cases) {
        json j = test::vl01_config();
        c.mutate(j);
        auto r = parse_model_config(j, "config.json");
        ASSERT_FALSE(r.has_value()) << c.what;
        EXPECT_EQ(r.status().code(), c.code) << c.what << ": " << r.status().message();
        EXPECT_NE(r.status().message().find(c.fragment), std::string::npos) << c.what << ": " << r.status().message();
    }
}

TEST(Config, LoadFromDirectory) {
    test::TempDir dir;
    auto missing = load_model_config(dir.path());
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
    test::write_file(dir / "config.json", "{not json");
    auto bad = load_model_config(dir.path());
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.status().message().find("not valid JSON"), std::string::npos);
    test::write_file(dir / "config.json", test::tiny_text_config().dump());
    EXPECT_TRUE(load_model_config(dir.path()).has_value());
}

}  // namespace
}  // namespace volt
