#include "sdk/model_registry.h"

#include "text/minimax_text_weights.h"
#include "vision/minimax_vl_weights.h"

namespace volt {

std::vector<WeightSpec> expected_weights(const ModelConfig& config) {
    if (!config.is_vl()) return minimax_text_weight_specs(config.text);
    std::vector<WeightSpec> w = minimax_text_weight_specs(config.text, "language_model.");
    std::vector<WeightSpec> v = minimax_vl_vision_weight_specs(*config.vl, config.text.hidden_size);
    w.insert(w.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
    return w;
}

}  // namespace volt
