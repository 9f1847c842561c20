#include "sdk/model_info.h"

#include "sdk/checkpoint.h"
#include "sdk/model_registry.h"

namespace volt {

namespace fs = std::filesystem;

Expected<ModelInfo> inspect_model(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return not_found(dir.string(), ": not a directory");
    ModelInfo info;
    info.dir = dir;
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "chat_template.json",
                          "vocab.json", "merges.txt", "special_tokens_map.json", "preprocessor_config.json"})
        if (fs::exists(dir / f)) info.tokenizer_files.push_back(f);

    if (!fs::exists(dir / "config.json")) {
        if (info.tokenizer_files.empty())
            return not_found(dir.string(), ": no config.json and no tokenizer files (not a model directory)");
        return info;  // tokenizer-only directory: valid for tokenizer commands
    }
    VOLT_ASSIGN_OR_RETURN(info.config, load_model_config(dir));
    const ModelConfig& cfg = *info.config;
    const std::vector<WeightSpec> specs = expected_weights(cfg);

    int64_t expert_params = 0;
    for (const WeightSpec& s : specs) {
        if (s.optional) continue;
        info.params_by_component[static_cast<int>(s.component)] += s.shape.numel();
        info.total_params += s.shape.numel();
        if (s.component == WeightComponent::kExperts) expert_params += s.shape.numel();
    }
    const int64_t vision = info.params_by_component[static_cast<int>(WeightComponent::kVisionTower)] +
                           info.params_by_component[static_cast<int>(WeightComponent::kProjector)];
    // MiniMax's convention (45.9B of 456B for Text-01): the decoder weights one token touches, i.e. without the
    // vision side, the embedding and lm_head, and with only experts_per_token of num_experts experts.
    const int64_t embeddings = info.params_by_component[static_cast<int>(WeightComponent::kEmbedding)] +
                               info.params_by_component[static_cast<int>(WeightComponent::kLmHead)];
    info.active_params_per_token = info.total_params - vision - embeddings - expert_params +
                                   expert_params / cfg.text.num_experts * cfg.text.experts_per_token;

    if (Checkpoint::exists_in(dir)) {
        VOLT_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::open(dir));
        info.has_checkpoint = true;
        info.checkpoint_description = ck.description();
        info.checkpoint_files = ck.files().size();
        info.checkpoint_tensors = ck.num_tensors();
        info.binding = bind_checkpoint(ck, specs);
        for (const std::string& name : ck.names()) {
            const auto* e = ck.find(name);
            info.bytes_by_dtype[e->info->dtype] += e->info->end - e->info->begin;
        }
    }
    return info;
}

}  // namespace volt
