// LayerNorm over the last dimension (CLIP's pre_layrnorm, layer_norm1/2): mean and variance in fp32 over each row,
//     out = (x - mean) / sqrt(var + eps) * weight + bias        (var: biased, as torch.nn.LayerNorm)
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct LayerNormParams {
    int64_t rows = 0;               // T
    int64_t width = 0;              // W
    const float* x = nullptr;       // [T, W], row stride x_stride
    int64_t x_stride = 0;
    const float* weight = nullptr;  // [W]
    const float* bias = nullptr;    // [W]
    float eps = 1e-5f;
    float* out = nullptr;           // [T, W], row stride out_stride; may alias x
    int64_t out_stride = 0;
};

Status validate(const LayerNormParams& p);

namespace cpu {
Status layer_norm(const LayerNormParams& p);  // threaded over rows
}  // namespace cpu

}  // namespace volt
