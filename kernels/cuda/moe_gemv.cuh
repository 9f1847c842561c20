// The MoE decode path's grouped GEMV pieces shared by its two kernels (kernels/cuda/moe.cu's gemv_mma_kernel, the
// weights loaded by each warp into registers; kernels/cuda/moe_gemv_tma.cu's, the weights streamed by TMA into a
// shared-memory ring): the launch arguments, a lane's loads of its columns, one 64-column step of mma.sync, and the
// epilogue that stores an item's outputs. Include only from .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/device_common.cuh"
#include "kernels/moe_cuda.h"
#include "sdk/status.h"

namespace volt::cuda {

constexpr int kMaxExperts = 256;
constexpr int kBlk = static_cast<int>(kQuantBlockSize);
constexpr int kMmaRows = 16;     // output rows per warp item
constexpr int kMmaTokens = 16;   // tokens per pass over an item's weights (two n-tiles)
constexpr int kMmaStep = 64;     // K columns per step

struct GemvArgs {
    const void* w_a[kMaxExperts];  // gated: w1; down: w2
    const void* w_b[kMaxExperts];  // gated: w3
    const float* s_a[kMaxExperts];  // FP8: the block scales of w_a, w_b
    const float* s_b[kMaxExperts];
    const __nv_bfloat16* in;       // gated: x [T, H] (rows gathered through perm / k); down: h [rows, I] (permuted)
    int64_t in_stride;
    // FP8 activations (kAct): the input as e4m3 rows [padded rows, K] in expert order, each expert's from its padded
    // slot (x gathered, or h), and their per-(row, 128 columns) scales in the same layout as the GEMM path's
    // (quantize_activations_kernel); in and perm are then not read.
    const uint8_t* in_q;
    const float* in_scales;
    // f16 products (kHalf): the input as scaled f16 rows [rows of in, K] (x's from permute_kernel, h's from
    // rows_to_f16_kernel) and each row's inverse scale; in is then not read (its rows are found the same way).
    const __half* in_h;
    const float* in_inv;
    const int32_t* perm;
    const int32_t* offsets;
    int k;
    int E;
    int64_t rows_out;  // I (gated) or H (down)
    int64_t K;         // H (gated) or I (down)
    __nv_bfloat16* out;  // gated: h [rows, I]; down: y [rows, H] (permuted order)
    int64_t out_stride;
    // kSplit (gated, at most 8 token slots): the pieces' sums, [items * parts][kMats][16 rows][split_tokens] floats
    // (split_tokens: min(T k, 8), at least the tokens of any expert), and per item the count of its pieces done
    // (zeroed by permute_kernel).
    float* split_partials;
    int32_t* split_count;
    int64_t split_tokens;
};

// A lane's 16 columns of one row from `col` on: bf16 as two 16-byte vectors; bytes as one 16-byte vector (its two
// 8-byte halves loaded apart when `split`: K not a multiple of 16). Pieces of 8 columns past K read zeros (K is a
// multiple of 8, so a piece is wholly inside or outside).
template <bool kStream>
__device__ __forceinline__ uint4 load_vec(const void* p) {
    return kStream ? __ldcs(static_cast<const uint4*>(p)) : __ldg(static_cast<const uint4*>(p));
}
template <bool kStream, typename T>
    requires(sizeof(T) == 2)  // bf16, or f16 (kHalf's input)
__device__ __forceinline__ void load_cols(const T* p, int64_t col, int64_t K, bool, uint4 (&v)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) v[h] = p != nullptr && col + 8 * h < K ? load_vec<kStream>(p + col + 8 * h) : uint4{};
}
template <bool kStream>
__device__ __forceinline__ void load_cols(const uint8_t* p, int64_t col, int64_t K, bool split, uint4& v) {
    if (!split && col + 16 <= K) {
        v = load_vec<kStream>(p + col);
        return;
    }
    const uint2 lo = col < K ? __ldcs(reinterpret_cast<const uint2*>(p + col)) : uint2{};
    const uint2 hi = col + 8 < K ? __ldcs(reinterpret_cast<const uint2*>(p + col + 8)) : uint2{};
    v = make_uint4(lo.x, lo.y, hi.x, hi.y);
}

// acc (16 rows x 8 tokens) += A rows (lo: row g, hi: row g + 8) x B (token g), one 64-column step (4 mma).
// kHalf: f16 operands (mma_f16) instead of bf16.
template <bool kHalf = false>
__device__ __forceinline__ void mma_step(float (&acc)[4], const uint4 (&lo)[2], const uint4 (&hi)[2],
                                         const uint4 (&x)[2]) {
    const uint32_t* l = reinterpret_cast<const uint32_t*>(lo);
    const uint32_t* h = reinterpret_cast<const uint32_t*>(hi);
    const uint32_t* b = reinterpret_cast<const uint32_t*>(x);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const uint32_t a[4] = {l[2 * j], h[2 * j], l[2 * j + 1], h[2 * j + 1]};
        if constexpr (kHalf) mma_f16(acc, a, b[2 * j], b[2 * j + 1]);
        else mma_bf16(acc, a, b[2 * j], b[2 * j + 1]);
    }
}
// The epilogue of an item (16 output rows from row0) and pass (tokens tile .. tile + nt of the expert's, whose slots
// start at off): acc[m][n][i] holds row g + 8 (i / 2), token 8n + 2q + (i % 2) of the pass (lane = 4g + q) of
// matrix m (gated: w1, w3); out gets SiLU(w1 x) * (w3 x) or w2 x in bf16, with f16 products (kHalf) after the input
// row's power of two is undone.
template <bool kGated, bool kHalf, int kMats>
__device__ __forceinline__ void store_gemv_outputs(const GemvArgs& a, const float (&acc)[kMats][2][4], int64_t row0,
                                                   int32_t off, int tile, int nt, int lane) {
    const int g = lane >> 2, q = lane & 3;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int t = 8 * n + 2 * q + (i & 1);
            const int64_t row = row0 + g + 8 * (i >> 1);
            if (t >= nt || row >= a.rows_out) continue;
            float y = acc[0][n][i];
            float y3 = acc[kMats - 1][n][i];
            if constexpr (kHalf) {  // undo the input row's power of two
                const int64_t src = kGated ? a.perm[off + tile + t] / a.k : off + tile + t;
                const float inv = __ldg(a.in_inv + src);
                y *= inv, y3 *= inv;
            }
            if constexpr (kGated) y = swiglu_f(y, y3);
            a.out[int64_t{off + tile + t} * a.out_stride + row] = __float2bfloat16_rn(y);
        }
    }
}

// ---- the TMA form (kernels/cuda/moe_gemv_tma.cu) --------------------------------------------------------------------
// Quantised weights only, as f16 products (a.in_h, a.in_inv); every expert's weights get a tensor map in the launch
// (at most kMoeDecodeTmaMaxExperts).
// Why the TMA form cannot run a product of these weights and shape on the current device (nullptr: it can):
// quantised weights, 1 to 64 experts, K a multiple of 64, K and the output rows within 32 bits, an sm_90 GPU and a
// driver with tensor maps. (Its inputs must also come as f16 rows: GemvArgs::in_h, in_inv.)
const char* gemv_tma_unfit(MoeWeightType w, int experts, int64_t K, int64_t rows_out);
// One grouped GEMV (gated: SiLU(w1 x) * (w3 x) into a.out; else w2 x), asynchronous on `stream` as a programmatic
// dependent launch; the arguments as gemv_mma_kernel's with kHalf (the split fields unused).
Status launch_gemv_tma(const GemvArgs& a, bool gated, MoeWeightType w, cudaStream_t stream);

}  // namespace volt::cuda
