// Mixture of experts (MiniMax block_sparse_moe, architecture §4).
// Routing: p = softmax(router_logits) in fp32 over all E experts, keep the top k, renormalise them to sum to 1.
// Experts: SwiGLU, y_e(x) = W2_e (SiLU(W1_e x) * (W3_e x)); out[t] = sum over t's k experts of weight * y_e(x_t).
// Full capacity: every token reaches its k experts (no dropping).
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct MoeRouteParams {
    int64_t num_tokens = 0;           // T
    int num_experts = 0;              // E
    int top_k = 0;                    // k <= E
    bool renormalize = true;          // MiniMax: true
    const float* logits = nullptr;    // [T, E] router logits (x W_gate^T), row stride logits_stride
    int64_t logits_stride = 0;
    int32_t* expert_ids = nullptr;    // [T, k] out: chosen experts, most probable first (ties: lower index first)
    float* weights = nullptr;         // [T, k] out: their (renormalised) probabilities
};

struct MoeExpertsParams {
    int64_t num_tokens = 0;           // T
    int64_t hidden = 0;               // H
    int64_t intermediate = 0;         // I (per expert)
    int num_experts = 0;              // E
    int top_k = 0;                    // k
    const float* x = nullptr;         // [T, H] contiguous
    const int32_t* expert_ids = nullptr;  // [T, k]
    const float* weights = nullptr;       // [T, k]
    const float* const* w1 = nullptr; // [E] pointers, each [I, H] contiguous (gate projection)
    const float* const* w3 = nullptr; // [E] pointers, each [I, H] contiguous (up projection)
    const float* const* w2 = nullptr; // [E] pointers, each [H, I] contiguous (down projection)
    float* out = nullptr;             // [T, H] contiguous, overwritten
};

Status validate(const MoeRouteParams& p);
Status validate(const MoeExpertsParams& p);  // also checks every expert id is in [0, E)

namespace cpu {
Status moe_route(const MoeRouteParams& p);
// Groups tokens by expert, then per expert: gather rows, two GEMMs (gate, up) through BLAS, SwiGLU, one GEMM
// (down), weighted scatter-add. Each token's contributions are added in its top-k order, so a token's result does
// not depend on which other tokens share the batch (beyond BLAS's own blocking).
Status moe_experts(const MoeExpertsParams& p);
}  // namespace cpu

}  // namespace volt
