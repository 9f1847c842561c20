// The checkpoint table of MiniMax-Text-01 in its original naming (also what transformers' native `minimax` writes):
// every tensor's name and shape as a function of the config. `prefix` is "" for Text-01 and "language_model." for
// the backbone inside VL-01.
#pragma once

#include <string>
#include <vector>

#include "sdk/config.h"
#include "sdk/weight_spec.h"

namespace volt {

std::vector<WeightSpec> minimax_text_weight_specs(const TextConfig& config, const std::string& prefix = "");

}  // namespace volt
