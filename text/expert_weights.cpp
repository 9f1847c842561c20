#include "text/expert_weights.h"

namespace volt {

const char* expert_weights_name(ExpertWeights w) {
    switch (w) {
        case ExpertWeights::kBf16: return "bf16";
        case ExpertWeights::kFp8: return "fp8";
        case ExpertWeights::kInt8: return "int8";
    }
    return "unknown";
}

Expected<ExpertWeights> parse_expert_weights(const std::string& name, bool fp8_flag) {
    ExpertWeights w = ExpertWeights::kBf16;
    if (name == "fp8") w = ExpertWeights::kFp8;
    else if (name == "int8") w = ExpertWeights::kInt8;
    else if (!name.empty() && name != "bf16")
        return invalid_argument("--expert-weights '", name, "': expected bf16, fp8 or int8");
    if (fp8_flag) {
        if (!name.empty() && w != ExpertWeights::kFp8)
            return invalid_argument("--fp8-experts contradicts --expert-weights ", name);
        w = ExpertWeights::kFp8;
    }
    return w;
}

}  // namespace volt
