// Partial rotary position embedding on the GPU (CUDA-only interface; CPU twin kernels/rope.h, same math): the first
// rotary_dim dims of every head rotate with NeoX half-split pairing (i, i + R/2), the rest pass through.
//     x_i' = x_i cos(a) - x_{i+R/2} sin(a),   x_{i+R/2}' = x_{i+R/2} cos(a) + x_i sin(a),   a = pos * inv_freq_i
// inv_freq is computed on the host exactly as the CPU twin does (float32 pow) and passed by value; the angle is the
// same fp32 product, cos/sin in fp32 (full-range argument reduction, no fast-math), bf16 in and out.
// q and k of a softmax layer rotate in one launch (x and x2, e.g. 64 query heads and 8 kv heads).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

struct RopeParams {
    int64_t num_tokens = 0;              // T
    int head_dim = 0;                    // D
    int rotary_dim = 0;                  // R: even, <= D, <= 256
    double theta = 10000.0;
    // Position of token t: positions[t] when set (device [T] int32: per-sequence positions of a packed or decode
    // batch), else start_position + t.
    const int32_t* positions = nullptr;
    int64_t start_position = 0;
    void* x = nullptr;                   // [T, H, D] bf16, rotated in place: (t, h, d) at x[t*stride_token + h*stride_head + d]
    int num_heads = 0;                   // H
    int64_t stride_token = 0, stride_head = 0;
    void* x2 = nullptr;                  // optional second tensor [T, H2, D] bf16 (e.g. k), same positions
    int num_heads2 = 0;                  // H2
    int64_t stride_token2 = 0, stride_head2 = 0;
};

Status run(const RopeParams& p, cudaStream_t stream);

}  // namespace volt::cuda
