// Typed model configurations parsed from a Hugging Face config.json. Supported model types:
//   minimax_text_01  MiniMax-Text-01 (original checkpoint config: attn_type_list, layernorm_*_alpha/beta, rotary_dim)
//   minimax          transformers' native MiniMax config (layer_types, *_alpha_factor), same architecture
//   minimax_vl_01    MiniMax-VL-01: text_config (one of the above) + vision_config (CLIP) + projector/anyres fields
// Sizes are always read from the file (never assumed); other fields fall back to the reference code's defaults,
// and each fallback is listed in ModelConfig::notes so `volt info` can show it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sdk/status.h"

namespace volt {

enum class LayerKind : uint8_t { kLightning = 0, kSoftmax = 1 };  // attn_type_list: 0 = lightning, 1 = softmax

struct TextConfig {
    std::string model_type;
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;
    int64_t num_layers = 0;
    int64_t num_heads = 0;          // query heads, both layer kinds
    int64_t num_kv_heads = 0;       // softmax layers (GQA)
    int64_t head_dim = 0;
    int64_t intermediate_size = 0;  // per expert
    int64_t num_experts = 0;
    int64_t experts_per_token = 0;
    int64_t rotary_dim = 0;         // leading dims of each softmax head that rotate (half-split pairing)
    double rope_theta = 0;
    int64_t max_position_embeddings = 0;
    double rms_norm_eps = 1e-5;     // decoder and final norms
    double lightning_norm_eps = 1e-6;  // the lightning output norm (reference module default)
    std::string hidden_act = "silu";
    bool postnorm = true;           // residual branch is the normalised tensor (DeepNorm)
    double softmax_alpha = 1, softmax_beta = 1;      // residual scales after softmax attention
    double lightning_alpha = 1, lightning_beta = 1;  // after lightning attention
    double mlp_alpha = 1, mlp_beta = 1;              // after the MoE
    int64_t block_size = 256;       // lightning prefill block
    bool tie_word_embeddings = false;
    std::optional<int64_t> bos_token_id, eos_token_id;
    std::vector<LayerKind> layer_kinds;  // one per layer

    int64_t num_softmax_layers() const;
    int64_t num_lightning_layers() const { return num_layers - num_softmax_layers(); }
};

struct VisionConfig {
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_layers = 0;
    int64_t num_heads = 0;
    int64_t image_size = 0;
    int64_t patch_size = 0;
    int64_t num_channels = 3;
    std::string hidden_act;  // "gelu" (exact erf) or "quick_gelu"
    double layer_norm_eps = 1e-5;

    int64_t head_dim() const { return hidden_size / num_heads; }
    int64_t patches_per_side() const { return image_size / patch_size; }
    int64_t num_patches() const { return patches_per_side() * patches_per_side(); }
};

struct VLConfig {
    VisionConfig vision;
    int64_t image_token_index = 0;
    int64_t vision_feature_layer = -1;                 // encoder layer whose output feeds the projector
    std::string vision_feature_select_strategy;        // "default" (drop CLS) or "full"
    std::vector<std::pair<int64_t, int64_t>> grid_pinpoints;  // candidate (height, width) canvases
    std::string projector_hidden_act = "gelu";
    int64_t image_seq_length = 0;
};

struct ModelConfig {
    enum class Architecture { kText, kVL };
    Architecture architecture = Architecture::kText;
    std::string model_type;  // top level
    TextConfig text;
    std::optional<VLConfig> vl;
    std::vector<std::string> notes;  // defaults that were applied

    bool is_vl() const { return architecture == Architecture::kVL; }
};

// `label` names the source in errors (usually the config.json path).
Expected<ModelConfig> parse_model_config(const nlohmann::json& j, const std::string& label);
Expected<ModelConfig> parse_model_config_text(std::string_view text, const std::string& label);
Expected<ModelConfig> load_model_config(const std::filesystem::path& model_dir);  // reads model_dir/config.json

}  // namespace volt
