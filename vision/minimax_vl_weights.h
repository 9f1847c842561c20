// The checkpoint table of MiniMax-VL-01's vision side in the original naming: the CLIP tower under
// `vision_tower.vision_model.` (no post_layernorm: the checkpoint has none), `multi_modal_projector.linear_{1,2}`
// and `image_newline`. The text backbone is minimax_text_weight_specs with prefix "language_model.".
#pragma once

#include <vector>

#include "sdk/config.h"
#include "sdk/weight_spec.h"

namespace volt {

std::vector<WeightSpec> minimax_vl_vision_weight_specs(const VLConfig& vl, int64_t text_hidden_size);

}  // namespace volt
