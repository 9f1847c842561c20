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

// ---- the f16 products' inputs -------------------------------------------------------------------------------------
// Quantised weights widen to f16 more cheaply than to bf16, and f16 products need f16 inputs: each bf16 input row is
// multiplied by a power of two, 2^(14 - floor(log2 amax)) for its largest magnitude amax, so that amax lands in
// [2^14, 2^15), where f16 holds every bf16 value of the row down to 2^-28 of it (the copy is exact but for smaller
// ones); the products are divided by it again in the epilogue. 1 for a row of zeros or a non-finite amax (which then
// propagates); a row below 2^-111 gets 2^125, not more.
__device__ __forceinline__ float f16_row_scale(float amax) {
    return amax > 0.0f && isfinite(amax) ? ldexpf(1.0f, min(14 - ilogbf(amax), 125)) : 1.0f;
}
// 8 bf16 (a 16-byte vector) times s, as 8 f16 (round to nearest).
__device__ __forceinline__ uint4 bf16x8_to_scaled_f16(const uint4& v, float s) {
    float f[8];
    unpack8(v, f);
    uint4 o;
    uint32_t* w = reinterpret_cast<uint32_t*>(&o);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const __half2 h = __floats2half2_rn(f[2 * j] * s, f[2 * j + 1] * s);
        w[j] = *reinterpret_cast<const uint32_t*>(&h);
    }
    return o;
}
// One bf16 row `src` of `width` columns (a multiple of 8) as f16 times its power of two into `dst`, the power's
// inverse into *inv, by a CTA of kThreads threads (block_max_once: at most once per kernel). fragment_order (width a
// multiple of 16): each 16 columns' f16 pairs stored in the order 0, 2, 4, 6, 1, 3, 5, 7, the k order of the own
// grouped GEMM's weights as they sit in wgmma's A fragments (GroupedGemmArgs::x_inv).
template <int kThreads>
__device__ __forceinline__ void row_to_scaled_f16(const __nv_bfloat16* src, int64_t width, __half* dst, float* inv,
                                                  bool fragment_order = false) {
    const uint4* row = reinterpret_cast<const uint4*>(src);
    const int64_t vecs = width / 8;
    float amax = 0.0f;
    for (int64_t i = threadIdx.x; i < vecs; i += kThreads) {
        float f[8];
        unpack8(__ldg(row + i), f);
#pragma unroll
        for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(f[j]));  // (fmaxf skips NaNs, which then propagate)
    }
    const float s = f16_row_scale(block_max_once<kThreads>(amax));
    if (threadIdx.x == 0) *inv = 1.0f / s;
    uint4* out = reinterpret_cast<uint4*>(dst);
    if (fragment_order) {
        for (int64_t i = threadIdx.x; i < vecs / 2; i += kThreads) {
            const uint4 a = bf16x8_to_scaled_f16(__ldg(row + 2 * i), s);  // pairs 0-3 and 4-7 of 16 columns
            const uint4 b = bf16x8_to_scaled_f16(__ldg(row + 2 * i + 1), s);
            out[2 * i] = make_uint4(a.x, a.z, b.x, b.z);
            out[2 * i + 1] = make_uint4(a.y, a.w, b.y, b.w);
        }
    } else {
        for (int64_t i = threadIdx.x; i < vecs; i += kThreads) out[i] = bf16x8_to_scaled_f16(__ldg(row + i), s);
    }
}

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
