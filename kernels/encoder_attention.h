// Bidirectional multi-head softmax attention within each sequence of a batch (ViT encoder layers: every token of a
// crop attends to every token of the same crop, no mask, no cache):
//     o[b, t, h] = sum_j softmax_j(scale * q[b, t, h] . k[b, j, h]) v[b, j, h]
// Scores, softmax and accumulation in fp32. Element (b, t, h, d) of q/k/v/o sits at
// ptr[b*batch_stride + t*token_stride + h*head_dim + d] (a fused [T, 3*H*D] qkv buffer is addressed this way).
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct EncoderAttentionParams {
    int64_t batch = 0;      // B sequences
    int64_t tokens = 0;     // T per sequence
    int64_t heads = 0;      // H
    int64_t head_dim = 0;   // D
    float scale = 0.0f;     // usually 1/sqrt(D)
    const float* q = nullptr;  // [B, T, H, D] strided as above
    const float* k = nullptr;
    const float* v = nullptr;
    int64_t qkv_token_stride = 0, qkv_batch_stride = 0;  // shared by q, k and v
    float* o = nullptr;        // [B, T, H, D]
    int64_t o_token_stride = 0, o_batch_stride = 0;
};

Status validate(const EncoderAttentionParams& p);

namespace cpu {
// Per (sequence, head): scores by GEMM, row softmax threaded, output by GEMM (BLAS threads the GEMMs).
Status encoder_attention(const EncoderAttentionParams& p);
}  // namespace cpu

}  // namespace volt
