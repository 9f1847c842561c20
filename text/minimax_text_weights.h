// The checkpoint table of MiniMax-Text-01 in its original naming (also what transformers' native `minimax` writes):
// every tensor's name and shape as a function of the config. `prefix` is "" for Text-01 and "language_model." for
// the backbone inside VL-01.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sdk/checkpoint.h"
#include "sdk/config.h"
#include "sdk/weight_spec.h"

namespace volt {

std::vector<WeightSpec> minimax_text_weight_specs(const TextConfig& config, const std::string& prefix = "");

// A model directory's backbone checkpoint, checked against the table before anything is loaded (every missing,
// mis-shaped or unexpected tensor reported at once, naming the checkpoint). VL-01 directories are refused
// (UNIMPLEMENTED) unless `language_model_of_vl`: then the backbone is the language_model.* tensors and the vision
// side's tensors are left alone.
struct TextCheckpoint {
    ModelConfig config;
    Checkpoint checkpoint;
    std::string prefix;  // "" or "language_model."
};
Expected<TextCheckpoint> open_text_checkpoint(const std::filesystem::path& dir, bool language_model_of_vl);

}  // namespace volt
