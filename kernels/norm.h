// RMSNorm (Llama style, fp32 statistics) with an optional fused DeepNorm residual in front:
//     s   = residual_alpha * residual + x_beta * x          (when residual is set; else s = x)
//     out = weight * (s * rsqrt(mean(s^2) + eps))
// MiniMax's post-norm decoder layer is h1 = xn*alpha + attn*beta followed by RMSNorm(h1) (architecture §1): one
// call with residual = xn, x = attn. sum_out (optional) receives s, which pre-norm residual streams keep.
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct RmsNormParams {
    int64_t num_tokens = 0;          // T
    int64_t width = 0;               // W
    const float* x = nullptr;        // [T, W], row stride x_stride
    int64_t x_stride = 0;
    float x_beta = 1.0f;             // scale of x when residual is set
    const float* residual = nullptr; // optional [T, W], row stride residual_stride
    int64_t residual_stride = 0;
    float residual_alpha = 1.0f;
    const float* weight = nullptr;   // [W]
    float eps = 1e-5f;
    float* out = nullptr;            // [T, W], row stride out_stride; may alias x or residual
    int64_t out_stride = 0;
    float* sum_out = nullptr;        // optional [T, W] s before normalisation, row stride sum_stride
    int64_t sum_stride = 0;
};

Status validate(const RmsNormParams& p);

namespace cpu {
Status rms_norm(const RmsNormParams& p);  // threaded over tokens
}  // namespace cpu

}  // namespace volt
