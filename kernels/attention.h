// Causal softmax attention with grouped KV heads over a KV cache (MiniMax softmax layers, architecture §3).
// The T new queries sit at positions past_len .. past_len+T-1; keys/values hold positions 0 .. past_len+T-1 (the
// caller appends the new tokens' k/v to the cache first). Query t attends to keys [0, past_len + t]:
//     o_{t,h} = sum_j softmax_j(scale * q_{t,h} . k_{j,g}) v_{j,g},   g = h / (num_heads / num_kv_heads)
// Scores, softmax and accumulation in fp32.
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct AttentionParams {
    int64_t num_tokens = 0;   // T: new queries
    int64_t past_len = 0;     // P: cached positions before the first query
    int num_heads = 0;        // Hq
    int num_kv_heads = 0;     // Hkv, divides Hq
    int head_dim = 0;         // D
    float scale = 0.0f;       // usually 1/sqrt(D)

    const float* q = nullptr;  // [T, Hq, D]: element (t, h, d) at q[t*q_stride_token + h*q_stride_head + d]
    int64_t q_stride_token = 0, q_stride_head = 0;
    const float* k = nullptr;  // [P+T, Hkv, D]
    int64_t k_stride_token = 0, k_stride_head = 0;
    const float* v = nullptr;  // [P+T, Hkv, D]
    int64_t v_stride_token = 0, v_stride_head = 0;
    float* o = nullptr;        // [T, Hq, D]
    int64_t o_stride_token = 0, o_stride_head = 0;
};

Status validate(const AttentionParams& p);

namespace cpu {
// Threaded over (kv head, query); each work item scores all heads of its group against one pass over the keys.
Status attention(const AttentionParams& p);
}  // namespace cpu

}  // namespace volt
