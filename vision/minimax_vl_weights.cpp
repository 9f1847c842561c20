#include "vision/minimax_vl_weights.h"

namespace volt {

std::vector<WeightSpec> minimax_vl_vision_weight_specs(const VLConfig& vl, int64_t text_hidden) {
    using C = WeightComponent;
    const VisionConfig& v = vl.vision;
    const int64_t D = v.hidden_size, F = v.intermediate_size, P = v.patch_size;
    const std::string t = "vision_tower.vision_model.";
    std::vector<WeightSpec> w;
    w.push_back({t + "embeddings.class_embedding", {D}, C::kVisionTower});
    w.push_back({t + "embeddings.patch_embedding.weight", {D, v.num_channels, P, P}, C::kVisionTower});
    w.push_back({t + "embeddings.position_embedding.weight", {v.num_patches() + 1, D}, C::kVisionTower});
    w.push_back({t + "pre_layrnorm.weight", {D}, C::kVisionTower});  // sic: CLIP's spelling
    w.push_back({t + "pre_layrnorm.bias", {D}, C::kVisionTower});
    for (int l = 0; l < v.num_layers; ++l) {
        const std::string p = t + "encoder.layers." + std::to_string(l) + ".";
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
            w.push_back({p + "self_attn." + proj + ".weight", {D, D}, C::kVisionTower, l});
            w.push_back({p + "self_attn." + proj + ".bias", {D}, C::kVisionTower, l});
        }
        for (const char* ln : {"layer_norm1", "layer_norm2"}) {
            w.push_back({p + ln + ".weight", {D}, C::kVisionTower, l});
            w.push_back({p + ln + ".bias", {D}, C::kVisionTower, l});
        }
        w.push_back({p + "mlp.fc1.weight", {F, D}, C::kVisionTower, l});
        w.push_back({p + "mlp.fc1.bias", {F}, C::kVisionTower, l});
        w.push_back({p + "mlp.fc2.weight", {D, F}, C::kVisionTower, l});
        w.push_back({p + "mlp.fc2.bias", {D}, C::kVisionTower, l});
    }
    // A post_layernorm is not in VL-01's checkpoint and not used (features come from an encoder layer), but
    // checkpoints converted from a full CLIPVisionModel carry one: accept it.
    w.push_back({t + "post_layernorm.weight", {D}, C::kVisionTower, -1, true});
    w.push_back({t + "post_layernorm.bias", {D}, C::kVisionTower, -1, true});
    w.push_back({"multi_modal_projector.linear_1.weight", {text_hidden, D}, C::kProjector});
    w.push_back({"multi_modal_projector.linear_1.bias", {text_hidden}, C::kProjector});
    w.push_back({"multi_modal_projector.linear_2.weight", {text_hidden, text_hidden}, C::kProjector});
    w.push_back({"multi_modal_projector.linear_2.bias", {text_hidden}, C::kProjector});
    w.push_back({"image_newline", {text_hidden}, C::kProjector});
    return w;
}

}  // namespace volt
