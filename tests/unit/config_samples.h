// config.json texts used by the config and weight-table tests: the real MiniMax-Text-01 / VL-01 geometry (fields
// as in minimax01-architecture.md §1, §5) and a tiny one.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace volt::test {

inline nlohmann::json text01_config() {
    nlohmann::json attn = nlohmann::json::array();
    for (int i = 0; i < 80; ++i) attn.push_back((i + 1) % 8 == 0 ? 1 : 0);
    return {
        {"architectures", {"MiniMaxText01ForCausalLM"}}, {"model_type", "minimax_text_01"},
        {"attn_type_list", attn}, {"hidden_size", 6144}, {"num_hidden_layers", 80}, {"num_attention_heads", 64},
        {"num_key_value_heads", 8}, {"head_dim", 128}, {"vocab_size", 200064}, {"intermediate_size", 9216},
        {"num_local_experts", 32}, {"num_experts_per_tok", 2}, {"rope_theta", 10000000}, {"rotary_dim", 64},
        {"max_position_embeddings", 10240000}, {"rms_norm_eps", 1e-5}, {"hidden_act", "silu"}, {"postnorm", true},
        {"layernorm_full_attention_alpha", 3.5565588200778455}, {"layernorm_full_attention_beta", 1.0},
        {"layernorm_linear_attention_alpha", 3.5565588200778455}, {"layernorm_linear_attention_beta", 1.0},
        {"layernorm_mlp_alpha", 3.5565588200778455}, {"layernorm_mlp_beta", 1.0},
        {"shared_intermediate_size", 0}, {"tie_word_embeddings", false}, {"bos_token_id", nullptr},
        {"eos_token_id", nullptr}};
}

inline nlohmann::json vl01_config() {
    nlohmann::json pinpoints = nlohmann::json::array();
    const int hs[] = {336, 672, 1008, 1344, 1680, 2016};
    const int counts[] = {6, 6, 6, 4, 3, 3};
    for (int i = 0; i < 6; ++i)
        for (int j = 0; j < counts[i]; ++j) pinpoints.push_back({hs[i], 336 * (j + 1)});
    nlohmann::json text = text01_config();
    text["max_position_embeddings"] = 8192;
    return {{"architectures", {"MiniMaxVL01ForConditionalGeneration"}}, {"model_type", "minimax_vl_01"},
            {"text_config", text},
            {"vision_config", {{"model_type", "clip_vision_model"}, {"hidden_size", 1024}, {"image_size", 336},
                               {"intermediate_size", 4096}, {"num_attention_heads", 16}, {"num_hidden_layers", 24},
                               {"patch_size", 14}, {"projection_dim", 6144}, {"hidden_act", "gelu"}}},
            {"image_token_index", 200025}, {"vision_feature_layer", -1}, {"vision_feature_select_strategy", "default"},
            {"image_grid_pinpoints", pinpoints}, {"projector_hidden_act", "gelu"}, {"image_seq_length", 576}};
}

inline nlohmann::json tiny_text_config() {
    return {{"model_type", "minimax_text_01"}, {"attn_type_list", {0, 1, 0}}, {"hidden_size", 32},
            {"num_hidden_layers", 3}, {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 8},
            {"vocab_size", 100}, {"intermediate_size", 48}, {"num_local_experts", 4}, {"num_experts_per_tok", 2},
            {"rotary_dim", 4}, {"rope_theta", 10000.0}, {"postnorm", true}, {"max_position_embeddings", 512}};
}

}  // namespace volt::test
