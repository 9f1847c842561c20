// The CLIP ViT's own GPU ops (what kernels/*_cuda.h lack), CUDA-only interface; the CPU twins are
// cpu::patch_embed, cpu::layer_norm and cpu::encoder_attention (kernels/patch_embed.h, layer_norm.h,
// encoder_attention.h). bf16 activations, fp32 arithmetic and statistics. One params struct + run(params, stream).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sdk/status.h"

namespace volt::vision::cuda {

// Patch im2col: pixels f32 [B, C, S, S] -> cols bf16 [B * (S/P)^2, cols_width], column c*P*P + i*P + j (the
// flattening of a conv weight [D, C, P, P]); columns C*P*P .. cols_width-1 are zero (K padded to a multiple of 8 for
// the GEMM).
struct PatchIm2colParams {
    int64_t batch = 0, channels = 3, image_size = 0, patch = 0;
    const float* pixels = nullptr;
    void* cols = nullptr;
    int64_t cols_width = 0;  // >= C*P*P
};
Status run(const PatchIm2colParams& p, cudaStream_t stream);

// LayerNorm with bias over rows of width W: out = (x - mean) / sqrt(var + eps) * weight + bias, fp32 statistics.
// With `patches` set the input row is assembled first (the CLIP embeddings + pre_layrnorm in one pass): row t of crop
// b is class_emb + pos[0] for t == 0, else patches[b * (T-1) + t - 1] + pos[t]; x is then ignored.
// Widths that are multiples of 256 up to 2048 keep the row in registers (one read of x); VOLT_VIT_LN_REREAD=1 forces
// the two-read path (A/B timing; the results are bit-identical).
struct VitLayerNormParams {
    int64_t rows = 0, width = 0;
    const void* x = nullptr;         // [rows, W] bf16, contiguous
    const void* weight = nullptr;    // [W] bf16
    const void* bias = nullptr;      // [W] bf16
    float eps = 1e-5f;
    void* out = nullptr;             // [rows, W] bf16; may alias x
    // embeddings mode
    const void* patches = nullptr;   // [B * (T-1), W] bf16
    const void* class_emb = nullptr; // [W] bf16
    const void* pos_emb = nullptr;   // [T, W] bf16
    int64_t tokens = 0;              // T (rows = B * T)
};
Status run(const VitLayerNormParams& p, cudaStream_t stream);

// Bidirectional (non-causal) multi-head attention of B sequences of T tokens, packed qkv rows as the fused
// q|k|v projection writes them: head h of token t of crop b reads q at qkv[b*batch_stride + t*token_stride + h*hd],
// k at + k_offset, v at + v_offset; o[b*o_batch_stride + t*o_token_stride + h*hd].
//   o = softmax(scale * q k^T) v
// Backends: kWgmma, the own Hopper tensor-core kernel (vit_attention_wgmma.h: head_dim 64, 16-byte-aligned rows, an
// sm_90 GPU); kCudnn, cuDNN SDPA when built with cudnn-frontend and libcudnn loads (head_dim a multiple of 8, <= 128);
// kOwn, fp32 CUDA-core math (head_dim 8, 16, 32 or 64; a correct fallback, not the fast path). kAuto takes the first
// of the three that fits. VOLT_VIT_ATTENTION=own|cudnn|wgmma overrides kAuto (A/B timing).
enum class VitAttentionBackend : uint8_t { kAuto, kOwn, kCudnn, kWgmma };
struct VitAttentionParams {
    VitAttentionBackend backend = VitAttentionBackend::kAuto;
    int64_t batch = 0, tokens = 0;
    int heads = 0, head_dim = 0;
    float scale = 0.0f;
    const void* qkv = nullptr;
    int64_t token_stride = 0, batch_stride = 0, k_offset = 0, v_offset = 0;
    void* o = nullptr;
    int64_t o_token_stride = 0, o_batch_stride = 0;
};
Status run(const VitAttentionParams& p, cudaStream_t stream);
// "auto", "own", "cudnn" or "wgmma" (the names VOLT_VIT_ATTENTION takes).
const char* vit_attention_backend_name(VitAttentionBackend b);
// Which backend kAuto picks for these shapes on this machine ("wgmma", "cudnn" or "own").
const char* vit_attention_backend_name(const VitAttentionParams& p);

// bf16 -> f32, n elements (n a multiple of 8 runs vectorised).
Status bf16_to_f32(const void* in, float* out, int64_t n, cudaStream_t stream);

}  // namespace volt::vision::cuda
