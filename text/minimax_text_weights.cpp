#include "text/minimax_text_weights.h"

namespace volt {

std::vector<WeightSpec> minimax_text_weight_specs(const TextConfig& c, const std::string& prefix) {
    using C = WeightComponent;
    const int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
    const int64_t q_dim = c.num_heads * c.head_dim;      // 8192 for Text-01
    const int64_t kv_dim = c.num_kv_heads * c.head_dim;  // 1024
    const std::string m = prefix + "model.";

    std::vector<WeightSpec> w;
    w.push_back({m + "embed_tokens.weight", {V, H}, C::kEmbedding});
    for (int l = 0; l < c.num_layers; ++l) {
        const std::string p = m + "layers." + std::to_string(l) + ".";
        w.push_back({p + "input_layernorm.weight", {H}, C::kNorm, l});
        w.push_back({p + "post_attention_layernorm.weight", {H}, C::kNorm, l});
        if (c.layer_kinds[l] == LayerKind::kLightning) {
            // qkv_proj rows are per-head interleaved [q_h | k_h | v_h] (minimax01-architecture.md §2).
            w.push_back({p + "self_attn.qkv_proj.weight", {3 * q_dim, H}, C::kLightningAttention, l});
            w.push_back({p + "self_attn.output_gate.weight", {q_dim, H}, C::kLightningAttention, l});
            w.push_back({p + "self_attn.norm.weight", {q_dim}, C::kLightningAttention, l});
            w.push_back({p + "self_attn.out_proj.weight", {H, q_dim}, C::kLightningAttention, l});
        } else {
            w.push_back({p + "self_attn.q_proj.weight", {q_dim, H}, C::kSoftmaxAttention, l});
            w.push_back({p + "self_attn.k_proj.weight", {kv_dim, H}, C::kSoftmaxAttention, l});
            w.push_back({p + "self_attn.v_proj.weight", {kv_dim, H}, C::kSoftmaxAttention, l});
            w.push_back({p + "self_attn.o_proj.weight", {H, q_dim}, C::kSoftmaxAttention, l});
        }
        w.push_back({p + "block_sparse_moe.gate.weight", {c.num_experts, H}, C::kRouter, l});
        for (int e = 0; e < c.num_experts; ++e) {
            const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
            w.push_back({x + "w1.weight", {I, H}, C::kExperts, l});  // gate
            w.push_back({x + "w3.weight", {I, H}, C::kExperts, l});  // up
            w.push_back({x + "w2.weight", {H, I}, C::kExperts, l});  // down
        }
    }
    w.push_back({m + "norm.weight", {H}, C::kNorm});
    w.push_back({prefix + "lm_head.weight", {V, H}, C::kLmHead, -1, /*optional=*/c.tie_word_embeddings});
    return w;
}

Expected<TextCheckpoint> open_text_checkpoint(const std::filesystem::path& dir, bool language_model_of_vl) {
    TextCheckpoint t;
    VOLT_ASSIGN_OR_RETURN(t.config, load_model_config(dir));
    if (t.config.is_vl() && !language_model_of_vl)
        return unimplemented((dir / "config.json").string(), ": model_type '", t.config.model_type,
                             "' is MiniMax-VL-01; this command runs MiniMax-Text-01 model directories only");
    if (!Checkpoint::exists_in(dir))
        return not_found(dir.string(), ": no model.safetensors or model.safetensors.index.json");
    VOLT_ASSIGN_OR_RETURN(t.checkpoint, Checkpoint::open(dir));
    t.prefix = t.config.is_vl() ? "language_model." : "";
    BindingReport report = bind_checkpoint(t.checkpoint, minimax_text_weight_specs(t.config.text, t.prefix));
    // In a VL checkpoint the vision tower and projector tensors belong to the vision side.
    std::erase_if(report.unexpected, [&](const std::string& n) { return n.rfind(t.prefix, 0) != 0; });
    VOLT_RETURN_IF_ERROR(report.to_status(t.checkpoint.description()));
    return t;
}

}  // namespace volt
