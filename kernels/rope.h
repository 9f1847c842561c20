// Partial rotary position embedding (MiniMax softmax layers, architecture §3): only the first rotary_dim dims of each
// head rotate, NeoX/half-split pairing inside them, (i, i + rotary_dim/2) for i < rotary_dim/2:
//     x_i' = x_i cos(a) - x_{i+r/2} sin(a),   x_{i+r/2}' = x_{i+r/2} cos(a) + x_i sin(a),   a = pos * inv_freq_i
//     inv_freq_i = theta^(-2i / rotary_dim)
// Dims rotary_dim..head_dim-1 pass through. inv_freq, the angles and cos/sin are fp32, computed as the reference
// does (float32 pow, float32 product with the position), so long positions round identically.
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct RopeParams {
    int64_t num_tokens = 0;            // T
    int num_heads = 0;                 // H (of this tensor: query heads or kv heads)
    int head_dim = 0;                  // D
    int rotary_dim = 0;                // R: even, <= D
    double theta = 10000.0;
    int64_t start_position = 0;        // token t sits at position start_position + t
    float* x = nullptr;                // [T, H, D] rotated in place: element (t, h, d) at x[t*stride_token + h*stride_head + d]
    int64_t stride_token = 0, stride_head = 0;
};

Status validate(const RopeParams& p);

namespace cpu {
Status rope(const RopeParams& p);
}  // namespace cpu

}  // namespace volt
