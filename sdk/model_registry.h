// The model registry: from a parsed config to the checkpoint table of that architecture. One entry per
// supported model type (config.h lists them); adding an architecture means adding its table here.
#pragma once

#include <vector>

#include "sdk/config.h"
#include "sdk/weight_spec.h"

namespace volt {

std::vector<WeightSpec> expected_weights(const ModelConfig& config);

}  // namespace volt
