// GELU, exact form (erf), as config hidden_act / projector_hidden_act "gelu" selects (torch's default; CLIP
// ViT-L/14-336 in VL-01 uses it, not quick_gelu):  out = 0.5 * x * (1 + erf(x / sqrt(2))), with an optional bias
// added first (the bias of the Linear before it), broadcast over rows.
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct GeluParams {
    int64_t rows = 0;              // T
    int64_t width = 0;             // W
    const float* x = nullptr;      // [T, W] contiguous
    const float* bias = nullptr;   // optional [W]
    float* out = nullptr;          // [T, W] contiguous; may alias x
};

Status validate(const GeluParams& p);

namespace cpu {
Status gelu(const GeluParams& p);  // threaded over rows
}  // namespace cpu

}  // namespace volt
