// RMSNorm on the GPU with MiniMax's fused DeepNorm residual (CUDA-only interface; the CPU twin is kernels/norm.h):
//     s   = bf16(residual_alpha * residual + x_beta * x)     (residual set; else s = x)
//     out = bf16(weight * bf16(s * rsqrt(mean(s^2) + eps)))
// bf16 tensors, fp32 statistics. The rounding follows the reference (minimax01-architecture.md §1): the decoder's
// residual stream is bf16, the normalised value is cast back to bf16 before the weight multiply. Post-norm layers
// call it with residual = xn (the previous normalised tensor), x = the attention / MoE output, alpha = 3.5566,
// beta = 1; sum_out (optional) keeps s for pre-norm residual streams.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

struct RmsNormParams {
    int64_t num_tokens = 0;          // T
    int64_t width = 0;               // W: a multiple of 8, at most 16384
    const void* x = nullptr;         // [T, W] bf16, row stride x_stride
    int64_t x_stride = 0;
    float x_beta = 1.0f;             // scale of x when residual is set
    const void* residual = nullptr;  // optional [T, W] bf16, row stride residual_stride
    int64_t residual_stride = 0;
    float residual_alpha = 1.0f;
    const void* weight = nullptr;    // [W] bf16
    float eps = 1e-5f;
    void* out = nullptr;             // [T, W] bf16, row stride out_stride; may alias x or residual
    int64_t out_stride = 0;
    void* sum_out = nullptr;         // optional [T, W] bf16 s, row stride sum_stride; may alias x or residual
    int64_t sum_stride = 0;
};

// One CTA per token; all pointers 16-byte aligned, strides multiples of 8. Asynchronous on `stream`.
Status run(const RmsNormParams& p, cudaStream_t stream);

}  // namespace volt::cuda
