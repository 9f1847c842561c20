// A description of a model directory without loading weights: its config, which checkpoint tensors are present,
// missing or mis-shaped, parameter counts by component, bytes by dtype, and which tokenizer files are there.
// `volt info` prints this; the C ABI's model info comes from it too.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sdk/config.h"
#include "sdk/weight_spec.h"

namespace volt {

struct ModelInfo {
    std::filesystem::path dir;
    std::optional<ModelConfig> config;                 // absent for a tokenizer-only directory
    bool has_checkpoint = false;
    std::string checkpoint_description;                // index or file path
    size_t checkpoint_files = 0;
    size_t checkpoint_tensors = 0;
    BindingReport binding;                             // against expected_weights(config)
    std::array<int64_t, kWeightComponentCount> params_by_component{};  // from the table (checkpoint-independent)
    int64_t total_params = 0;
    int64_t active_params_per_token = 0;               // decoder only, top-k experts (MiniMax's "45.9B active")
    std::map<DType, uint64_t> bytes_by_dtype;          // of the tensors in the checkpoint
    std::vector<std::string> tokenizer_files;          // tokenizer.json, tokenizer_config.json, ...
};

// NOT_FOUND when `dir` is not a directory or holds neither config.json nor tokenizer files; config and
// checkpoint errors (corrupt files) are returned as they are. A checkpoint that does not match the config is
// not an error here: the report says what is wrong.
Expected<ModelInfo> inspect_model(const std::filesystem::path& dir);

}  // namespace volt
