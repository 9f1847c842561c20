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
    // The twin of the GPU's FP8 prefill (cuda::MoeFp8Mode::kFp8Activations): each expert's input rows, and its
    // SwiGLU intermediate after rounding to bf16, go through e4m3 with one scale per (row, 128 columns) block
    // (fp8_block_quantize of each row, then fp8_block_dequantize) before their GEMMs.
    bool fp8_activations = false;
};

Status validate(const MoeRouteParams& p);
Status validate(const MoeExpertsParams& p);  // also checks every expert id is in [0, E)

namespace cpu {
Status moe_route(const MoeRouteParams& p);
// Groups tokens by expert, then per expert: gather rows, two GEMMs (gate, up) through BLAS, SwiGLU, one GEMM
// (down), weighted scatter-add. Each token's contributions are added in its top-k order, so a token's result does
// not depend on which other tokens share the batch (beyond BLAS's own blocking).
Status moe_experts(const MoeExpertsParams& p);

// FP8 (e4m3) block-scaled weights, the twin of cuda::BlockQuantizeParams (kernels/moe_cuda.h), bit-exact: per 128 x 128
// block of a row-major [rows, cols] matrix, scale = amax / 448 (1 when the block is all zeros), byte =
// fp8e4m3_saturating(w / scale) (fp32 division). scales: [ceil(rows/128), ceil(cols/128)] row-major; given_scales:
// they are inputs. dequantize: w = e4m3 value * scale (fp32).
uint8_t fp8e4m3_saturating(float v);  // round to nearest even; beyond +-448 (and +-inf) -> +-448; NaN -> 0x7f/0xff
Status fp8_block_quantize(int64_t rows, int64_t cols, const float* in, uint8_t* out, float* scales,
                          bool given_scales = false);
Status fp8_block_dequantize(int64_t rows, int64_t cols, const uint8_t* in, const float* scales, float* out);

// int8 block-scaled weights (weight-only, as vLLM's int8 experts), the twin of cuda::BlockQuantizeParams with
// MoeWeightType::kInt8, bit-exact: per 128 x 128 block scale = amax / 127 (1 for an all-zero block), q =
// int8_saturating(w / scale) (fp32 division). dequantize: w = q * scale (fp32).
int8_t int8_saturating(float v);  // round to nearest even, clamped to [-127, 127]; NaN -> 0
Status int8_block_quantize(int64_t rows, int64_t cols, const float* in, int8_t* out, float* scales,
                           bool given_scales = false);
Status int8_block_dequantize(int64_t rows, int64_t cols, const int8_t* in, const float* scales, float* out);
}  // namespace cpu

}  // namespace volt
