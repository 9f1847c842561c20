// The three layer kinds of the MiniMax-Text-01 decoder on the CPU, composed from kernels/ ops (no math here beyond
// wiring): lightning attention, softmax attention with partial RoPE and a KV cache, and the MoE block. Each takes
// the normalised layer input and writes the branch output; the decoder (minimax_text_model.cpp) does the DeepNorm
// residuals. Weights are fp32, [out, in] like nn.Linear.
#pragma once

#include <cstdint>
#include <vector>

#include "sdk/config.h"
#include "sdk/engine/causal_lm.h"
#include "sdk/tensor.h"

namespace volt {

struct LightningLayerWeights {
    Tensor qkv;                 // [3*Hq*D, H] rows per-head interleaved [q_h | k_h | v_h]
    Tensor output_gate;         // [Hq*D, H]
    Tensor norm;                // [Hq*D] RMSNorm over all heads jointly
    Tensor out_proj;            // [H, Hq*D]
    std::vector<float> slopes;  // [Hq] decay rates of this layer (lightning_decay_slopes)
};

struct SoftmaxLayerWeights {
    Tensor q_proj;  // [Hq*D, H]
    Tensor k_proj;  // [Hkv*D, H]
    Tensor v_proj;  // [Hkv*D, H]
    Tensor o_proj;  // [H, Hq*D]
};

struct MoeWeights {
    Tensor router;                        // [E, H]
    std::vector<Tensor> w1, w3, w2;       // E x [I, H] gate, [I, H] up, [H, I] down
    std::vector<const float*> w1p, w3p, w2p;  // their data pointers (what the moe op takes)
};

// xn: [T, H] normalised layer input; out: [T, H]. cache.state: fp32 [Hq, D, D], updated. T == 1 takes the decode
// recurrence; longer inputs the chunked prefill. Both continue from the cached state.
Status lightning_attention_layer(const TextConfig& c, const LightningLayerWeights& w, const float* xn, int64_t T,
                                 LayerCache& cache, float* out);

// xn: [T, H]; the new tokens sit at positions past .. past+T-1; their k/v are written to cache rows past..past+T-1
// (the caller reserved them). out: [T, H].
Status softmax_attention_layer(const TextConfig& c, const SoftmaxLayerWeights& w, const float* xn, int64_t T,
                               int64_t past, LayerCache& cache, float* out);

// yn: [T, H]; out: [T, H] = sum over the top-k experts of weight * SwiGLU expert(yn).
Status moe_layer(const TextConfig& c, const MoeWeights& w, const float* yn, int64_t T, float* out);

}  // namespace volt
