// Lightning attention (MiniMax-01 linear attention with per-head exponential decay): one interface, a CPU twin
// (volt::cpu, fp32 arithmetic) and CUDA kernels (volt::cuda, bf16 I/O, fp32 state).
//
// Exact math (minimax01-architecture.md §2), per sequence and head, state S in R^{D x D} indexed [d_k][d_v]:
//     S_t = lambda * S_{t-1} + k_t^T v_t,      o_t = q_t S_t,      lambda = exp(-slope_h)
// No 1/sqrt(d) scale, no normaliser. q, k, v are the SiLU outputs of the fused qkv projection (set silu_inputs to
// apply the SiLU on load instead). Prefill uses the chunked form (block B, local position i in [0, m)):
//     o_i = lambda^{i+1} q_i KV_b + sum_{j<=i} (q_i . k_j) lambda^{i-j} v_j
//     KV_{b+1} = lambda^m KV_b + sum_j lambda^{m-1-j} k_j^T v_j
// which is the recurrence exactly; the block size changes the algorithm, not the result.
//
// Layouts: q, k, v and o are addressed through strides (in elements) so that the per-head interleaved output of the
// fused projection [T, H, 3*D] (q_h | k_h | v_h per head) is consumed in place: q = qkv, k = qkv + D, v = qkv + 2*D,
// stride_token = 3*H*D, stride_head = 3*D. The innermost dimension (D) is always contiguous.
// States are fp32 [slots, H, D, D] (d_k major), one slot per sequence, chosen through state_slots.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "sdk/dtype.h"
#include "sdk/status.h"

#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace volt {

// The reference implementation's prefill block (BLOCK = 256 in the remote code); the CPU twin uses exactly it.
inline constexpr int kLightningBlock = 256;
// The lightning RMSNorm epsilon of the reference (module default; vLLM/SGLang hard-code 1e-5).
inline constexpr float kLightningNormEps = 1e-6f;

enum class LightningPhase : uint8_t {
    kPrefill,  // any number of tokens per sequence, sequences packed by cu_seqlens
    kDecode,   // exactly one token per sequence: token n belongs to sequence n, state updated (in place allowed)
};

struct LightningAttentionParams {
    LightningPhase phase = LightningPhase::kPrefill;
    DType dtype = DType::kBF16;  // element type of q, k, v, o: kBF16 (CPU and CUDA) or kF32 (CPU only)
    bool silu_inputs = false;    // q, k, v are pre-activation projection outputs: apply SiLU on load (fp32)

    int64_t num_tokens = 0;  // T: packed tokens of all sequences (decode: T == num_seqs)
    int num_seqs = 0;        // N
    int num_heads = 0;       // H
    int head_dim = 128;      // D (CUDA: 128 only)

    const void* q = nullptr;  // [T, H, D] element (t, h, d) at q[t*q_stride_token + h*q_stride_head + d]
    int64_t q_stride_token = 0, q_stride_head = 0;
    const void* k = nullptr;  // [T, H, D]
    int64_t k_stride_token = 0, k_stride_head = 0;
    const void* v = nullptr;  // [T, H, D]
    int64_t v_stride_token = 0, v_stride_head = 0;
    void* o = nullptr;        // [T, H, D] output
    int64_t o_stride_token = 0, o_stride_head = 0;

    // [N + 1] prefill: cu_seqlens[0] == 0, sequence n owns tokens [cu_seqlens[n], cu_seqlens[n+1]), last == T.
    // Null: a single sequence of T tokens (N must be 1). Ignored in decode. Host pointer for the CPU twin, device
    // pointer for CUDA. Zero-length sequences are allowed (their state is copied from state_in, or zeroed).
    const int32_t* cu_seqlens = nullptr;
    // Host-side upper bound of any sequence's length (CUDA prefill sizes its grid with it; 0: T).
    int64_t max_seqlen = 0;

    const float* slope = nullptr;  // [H] fp32 decay rate s_h > 0; lambda_h = exp(-s_h) (lightning_decay_slope)

    // [N] the state slot of sequence n (index into the slot dimension of state_in/state_out); null: slot n.
    const int32_t* state_slots = nullptr;
    // [slots, H, D(k), D(v)] fp32 state before the first token (prefix reuse / decode); null: zeros.
    const float* state_in = nullptr;
    // [slots, H, D(k), D(v)] fp32 state after the last token; may alias state_in (updated in place).
    // Null: not written (prefill only; decode needs it or state_ptrs).
    float* state_out = nullptr;
    // Decode only, instead of state_slots / state_in / state_out: [N] pointers to each sequence's own state
    // [H, D(k), D(v)], read and updated in place (a decode batch of sequences whose caches live apart: continuous
    // batching). CUDA: an array in device memory of 16-byte aligned device pointers; CPU twin: host pointers.
    float* const* state_ptrs = nullptr;

    // CUDA prefill only: device scratch of cuda::prefill_workspace_bytes(params) bytes. When the (value slice,
    // head, sequence) CTAs cannot fill the GPU (few heads per GPU under tensor parallelism, one long sequence), the
    // kernel cuts sequences into context-parallel segments and needs it; null or too small: no segments (correct,
    // slower). Unused by the CPU twin and by decode.
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
};

// y = RMSNorm over all H*D channels of one token (fp32 statistics), times weight, times sigmoid(gate):
//     y = sigmoid(gate) * (weight * (o * rsqrt(mean(o^2) + eps)))        (§2 steps 6-7)
// bf16: the normalised value is rounded to bf16 before the weight multiply, as the reference does.
struct LightningNormGateParams {
    DType dtype = DType::kBF16;  // element type of o, gate, weight, out: kBF16 (CPU and CUDA) or kF32 (CPU only)
    int64_t num_tokens = 0;      // T
    int width = 0;               // W = H * D (CUDA: a multiple of 8)
    float eps = kLightningNormEps;

    const void* o = nullptr;      // [T, W] attention output, element (t, c) at o[t*o_stride_token + c]
    int64_t o_stride_token = 0;
    const void* gate = nullptr;   // [T, W] pre-sigmoid gate x W_gate^T
    int64_t gate_stride_token = 0;
    const void* weight = nullptr; // [W] RMSNorm weight
    void* out = nullptr;          // [T, W]
    int64_t out_stride_token = 0;
};

// Decay rate of head `head` of `num_heads` in global layer `layer` of `num_layers` (softmax layers counted):
//     2^(-8 (h+1) / H) * (1 - l / (L-1) + 1e-5)        (L == 1: factor 1 + 1e-5)
// computed in double and rounded once to fp32 (the reference computes it in fp32; the difference is < 1 ulp).
float lightning_decay_slope(int layer, int num_layers, int head, int num_heads);
// All H slopes of one layer.
std::vector<float> lightning_decay_slopes(int layer, int num_layers, int num_heads);

// Checks shapes, strides and pointers common to both backends (not the contents of device memory).
Status validate(const LightningAttentionParams& p);
Status validate(const LightningNormGateParams& p);

namespace cpu {
// Prefill: chunked with block kLightningBlock exactly as §2.5; decode: the token-by-token step. Threaded over
// (sequence, head) on ThreadPool::global(). Arithmetic in fp32 (bf16 inputs are widened exactly).
Status lightning_attention(const LightningAttentionParams& p);
Status lightning_norm_gate(const LightningNormGateParams& p);
}  // namespace cpu

#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
namespace cuda {
// All pointers are device pointers. bf16 q/k/v/o, fp32 slopes and states, head_dim 128; q/k/v/o and states 16-byte
// aligned, strides multiples of 8 elements; at most 65535 heads and sequences per call. Asynchronous on `stream`;
// returns the launch status only. Prefill runs one CTA per (64-column value slice, head, sequence), so a single
// sequence fills the GPU only with >= ~64 heads (2 CTAs per head); the kernel variant can be forced with
// VOLT_LIGHTNING_PREFILL=tma (default) | tma_cluster | wgmma_cluster | wgmma | mma_sync (for A/B timing).
Status run(const LightningAttentionParams& p, cudaStream_t stream);
// Scratch bytes `run` wants in p.workspace for this prefill on the current device (0: none). Depends on the shapes,
// max_seqlen and the device's SM count, not on pointers.
size_t prefill_workspace_bytes(const LightningAttentionParams& p);
// Norm + gate: width a multiple of 8, at most 16384.
Status run(const LightningNormGateParams& p, cudaStream_t stream);
}  // namespace cuda
#endif

}  // namespace volt
