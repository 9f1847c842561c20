// MoE router and experts on the GPU (kernels/moe_cuda.h).
//
// Router, large batches: one CTA per 32 tokens; the hidden dimension walks in chunks of 128 staged in shared memory
// (the fp32 gate weight chunk [E, 128], rows padded against bank conflicts, and the tokens' x chunk widened to fp32);
// lane e of a warp accumulates expert e's logit for the warp's 4 tokens, so the router weight is read from L2 once
// per 32 tokens. Softmax, top-k and renormalisation then run in the same warp (one lane per expert). Small batches
// (<= kMoeDecodeMaxTokens): a cluster of 8 CTAs of E warps per 8 tokens, each CTA over an eighth of H, each warp
// streaming its slice of one expert's weight row (the chunked kernel took 0.14 ms for one token, latency-bound on one
// SM; one CTA over all of H 17.5 us).
//
// Experts (see the header for the two paths). Decode batches: a tensor-core grouped GEMV (gemv_mma_kernel: warp work
// item = (expert, 16 output rows), the weights as the mma A operand straight from global memory, up to 16 tokens as
// B; FP8 weights widened to bf16 in registers, or with FP8 activations multiplied as bytes on e4m3 mma; see there).
// Quantised weights on Hopper, weight-only, take its TMA form by default instead (kernels/cuda/moe_gemv_tma.cu: the
// weights streamed through shared-memory rings, MoeExpertsParams::decode_kernel).
// The GEMM path dequantises each touched quantised expert to bf16 in the workspace ([w1; w3] as one [2I, H] block,
// then w2) before its cuBLASLt GEMM, or, for FP8 weights on Hopper (MoeFp8Mode::kFp8Activations), quantises the
// activations to e4m3 per (row, 128 columns) and runs cuBLASLt's block-scaled FP8 GEMMs (run_fp8_activations).
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/moe_gemm_sm90.h"
#include "kernels/cuda/moe_gemv.cuh"
#include "kernels/cuda/quant_widen.cuh"
#include "kernels/gemm_cuda.h"
#include "kernels/moe_cuda.h"
#include "sdk/cuda_check.h"
#include "sdk/env.h"

namespace volt::cuda {
namespace {

// ---- router ---------------------------------------------------------------------------------------------------------
constexpr int kRouterThreads = 256;
constexpr int kRouterTokensPerWarp = 4;
constexpr int kRouterTokens = kRouterThreads / 32 * kRouterTokensPerWarp;  // 32 per CTA
constexpr int kRouterChunk = 128;
constexpr int kRouterPad = kRouterChunk + 4;  // row stride of the weight chunk (floats): conflict-free float4 reads
constexpr int kRouterSmallTokens = 8;         // small batches: tokens per CTA of the per-expert logit kernel

// Softmax over the warp's E logits (lane e holds expert e's, lanes >= E hold -inf), then the top k by repeated warp
// argmax (larger probability, then lower index), renormalised. Run twice so that the renormalising sum is known
// before the weights are written (no per-thread arrays); lane 0 writes token t's ids and weights.
__device__ __forceinline__ void route_token(float l, int lane, int E, int k, bool renorm, int64_t t, int32_t* ids_out,
                                            float* w_out) {
    float mx = l;
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, d));
    const float ex = lane < E ? expf(l - mx) : 0.0f;
    float sum = ex;
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, d);
    const float prob = lane < E ? ex / sum : -1.0f;  // -1: never chosen
    float kept = 0.0f;
    for (int pass = 0; pass < 2; ++pass) {
        float mine = prob;
#pragma unroll 1
        for (int s = 0; s < k; ++s) {
            float bp = mine;
            int be = lane;
            warp_argmax(bp, be);
            if (lane == be) mine = -2.0f;  // taken
            if (pass == 0) {
                kept += bp;
            } else if (lane == 0) {
                ids_out[t * k + s] = be;
                w_out[t * k + s] = renorm ? bp / kept : bp;
            }
        }
    }
}

__global__ void __launch_bounds__(kRouterThreads) router_kernel(const __nv_bfloat16* __restrict__ x, int64_t xs,
                                                                const float* __restrict__ wg, int64_t T, int64_t H,
                                                                int E, int k, bool renorm, float* logits_out,
                                                                int32_t* ids_out, float* w_out) {
    __shared__ __align__(16) float sw[kMoeMaxExperts][kRouterPad];
    __shared__ __align__(16) float sx[kRouterTokens][kRouterChunk];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int64_t t0 = int64_t{blockIdx.x} * kRouterTokens;
    float acc[kRouterTokensPerWarp] = {};
    for (int64_t h0 = 0; h0 < H; h0 += kRouterChunk) {
        const int width = static_cast<int>(std::min<int64_t>(kRouterChunk, H - h0));  // a multiple of 8
        __syncthreads();
        for (int i = tid; i < E * (kRouterChunk / 4); i += kRouterThreads) {
            const int e = i / (kRouterChunk / 4), c = (i % (kRouterChunk / 4)) * 4;
            float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
            if (c < width) v = *reinterpret_cast<const float4*>(wg + e * H + h0 + c);  // H % 8 == 0: aligned
            *reinterpret_cast<float4*>(&sw[e][c]) = v;
        }
        for (int i = tid; i < kRouterTokens * (kRouterChunk / 8); i += kRouterThreads) {
            const int r = i / (kRouterChunk / 8), c = (i % (kRouterChunk / 8)) * 8;
            float f[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (t0 + r < T && c < width) unpack8(*reinterpret_cast<const uint4*>(x + (t0 + r) * xs + h0 + c), f);
#pragma unroll
            for (int e = 0; e < 8; ++e) sx[r][c + e] = f[e];
        }
        __syncthreads();
        if (lane < E) {
#pragma unroll 4
            for (int c = 0; c < width; c += 4) {
                const float4 w = *reinterpret_cast<const float4*>(&sw[lane][c]);
#pragma unroll
                for (int j = 0; j < kRouterTokensPerWarp; ++j) {
                    const float4 xv = *reinterpret_cast<const float4*>(&sx[warp * kRouterTokensPerWarp + j][c]);
                    acc[j] = fmaf(w.x, xv.x, fmaf(w.y, xv.y, fmaf(w.z, xv.z, fmaf(w.w, xv.w, acc[j]))));
                }
            }
        }
    }
    // Softmax + top-k per token, one lane per expert (unrolled: acc[j] stays in registers).
#pragma unroll
    for (int j = 0; j < kRouterTokensPerWarp; ++j) {
        const int64_t t = t0 + warp * kRouterTokensPerWarp + j;
        if (t >= T) break;
        const float l = lane < E ? acc[j] : -INFINITY;
        if (logits_out && lane < E) logits_out[t * E + lane] = l;
        route_token(l, lane, E, k, renorm, t, ids_out, w_out);
    }
}

// Small batches (decode): a cluster of kRouterSplit CTAs of E warps per 8 tokens, each CTA over its own 1/kRouterSplit
// of H; warp e streams its slice of expert e's fp32 weight row with 16-byte loads against the 8 tokens' x, so the
// router weight is read once per 8 tokens; the CTAs' logits meet in the first CTA's shared memory through the
// cluster (distributed shared memory), summed in CTA order, and its warp j routes token j. Summation order is fixed
// (per-lane strided sums, a fixed shuffle tree, then the CTAs in order). One CTA over all of H took 17.5 us per call
// at T = 1 and 67 us at T = 64 (one SM per 8 tokens streaming the 786 KB weight; H100, 4 layers: 2.4-2.7% of an FP8
// decode step).
constexpr int kRouterSplit = 8;
__global__ void __cluster_dims__(kRouterSplit, 1, 1) __launch_bounds__(32 * kMoeMaxExperts)
    router_small_kernel(const __nv_bfloat16* __restrict__ x, int64_t xs, const float* __restrict__ wg, int64_t T,
                        int64_t H, int E, int k, bool renorm, float* logits_out, int32_t* ids_out, float* w_out) {
    namespace cg = cooperative_groups;
    const cg::cluster_group cluster = cg::this_cluster();
    __shared__ float sl[kRouterSmallTokens][kMoeMaxExperts];
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    const int e = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int part = static_cast<int>(cluster.block_rank());
    const int64_t t0 = int64_t{blockIdx.x / kRouterSplit} * kRouterSmallTokens;
    const int nt = static_cast<int>(std::min<int64_t>(kRouterSmallTokens, T - t0));
    // This CTA's vectors of 8 columns: [v_begin, v_end).
    const int64_t vecs = H / 8, per = (vecs + kRouterSplit - 1) / kRouterSplit;
    const int64_t v_begin = part * per, v_end = std::min(vecs, v_begin + per);
    float acc[kRouterSmallTokens] = {};
    const float* w = wg + e * H;
#pragma unroll 4
    for (int64_t v = v_begin + lane; e < E && v < v_end; v += 32) {  // warps past E (E < 8) only route
        const float4 w0 = *reinterpret_cast<const float4*>(w + v * 8);
        const float4 w1 = *reinterpret_cast<const float4*>(w + v * 8 + 4);
#pragma unroll
        for (int j = 0; j < kRouterSmallTokens; ++j) {
            if (j >= nt) break;
            float f[8];
            unpack8(*reinterpret_cast<const uint4*>(x + (t0 + j) * xs + v * 8), f);
            acc[j] = fmaf(w0.x, f[0], fmaf(w0.y, f[1], fmaf(w0.z, f[2], fmaf(w0.w, f[3], acc[j]))));
            acc[j] = fmaf(w1.x, f[4], fmaf(w1.y, f[5], fmaf(w1.z, f[6], fmaf(w1.w, f[7], acc[j]))));
        }
    }
#pragma unroll
    for (int j = 0; j < kRouterSmallTokens; ++j) {
#pragma unroll
        for (int d = 16; d > 0; d >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], d);
        if (lane == 0 && e < E) sl[j][e] = acc[j];
    }
    cluster.sync();  // every CTA's partial logits written
    const int j = e;  // warp j of the first CTA routes token t0 + j
    if (part == 0 && j < nt) {
        const int64_t t = t0 + j;
        float l = -INFINITY;
        if (lane < E) {
            l = 0.0f;
            for (int r = 0; r < kRouterSplit; ++r) l += *cluster.map_shared_rank(&sl[j][lane], r);
        }
        if (logits_out && lane < E) logits_out[t * E + lane] = l;
        route_token(l, lane, E, k, renorm, t, ids_out, w_out);
    }
    cluster.sync();  // the other CTAs' shared memory stays until the first has read it
}

// ---- the f16 products' inputs -------------------------------------------------------------------------------------
// Quantised weights widen to f16 more cheaply than to bf16, and f16 products need f16 inputs: one bf16 row `src` of
// `width` columns (a multiple of 8) into `dst` as f16 times a power of two, 2^(14 - floor(log2 amax)) for its largest
// magnitude amax, so that amax lands in [2^14, 2^15), where f16 holds every bf16 value of the row down to 2^-28 of it
// (the copy is exact but for smaller ones); the power's inverse into *inv, for the epilogue to undo it (1 for a row of
// zeros or a non-finite amax, which then propagates; a row below 2^-111 gets 2^125, not more). By a CTA of kThreads
// threads (block_max_once: at most once per kernel): rows_to_f16_kernel's and permute_kernel's. fragment_order (width
// a multiple of 16): each 16 columns' f16 pairs stored in the order 0, 2, 4, 6, 1, 3, 5, 7, the k order of the own
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
    amax = block_max_once<kThreads>(amax);
    const float s = amax > 0.0f && isfinite(amax) ? ldexpf(1.0f, min(14 - ilogbf(amax), 125)) : 1.0f;
    if (threadIdx.x == 0) *inv = 1.0f / s;
    auto to_f16 = [s](const uint4& v) {  // 8 bf16 times s as 8 f16
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
    };
    uint4* out = reinterpret_cast<uint4*>(dst);
    if (fragment_order) {
        for (int64_t i = threadIdx.x; i < vecs / 2; i += kThreads) {
            const uint4 a = to_f16(__ldg(row + 2 * i)), b = to_f16(__ldg(row + 2 * i + 1));  // pairs 0-3, 4-7
            out[2 * i] = make_uint4(a.x, a.z, b.x, b.z);
            out[2 * i + 1] = make_uint4(a.y, a.w, b.y, b.w);
        }
    } else {
        for (int64_t i = threadIdx.x; i < vecs; i += kThreads) out[i] = to_f16(__ldg(row + i));
    }
}

// ---- permutation ----------------------------------------------------------------------------------------------------
constexpr int kPermThreads = 1024;
// The GEMM path's per-expert GEMMs spread over up to this many streams. Defaults (H100, MiniMax MoE at 8192 tokens,
// streams 1 / 2 / 4 alternated twice in one process): FP8 GEMMs 7.36-7.56 / 6.72-7.47 / 6.74-6.82 ms: 4; bf16 GEMMs
// 9.73-9.79 / 10.08-10.91 / 10.24-10.32 ms (its kernels for ~512-row products leave less idle, and concurrent ones
// contend): 1.
// Quantised experts without FP8 activations (int8; FP8 in the dequantize mode) dequantise each touched expert to bf16
// before its GEMMs, each stream into its own copy: on two streams one expert's dequantisation (memory-bound) can run
// beside the other stream's GEMMs (H100, int8, 4 layers, 8K prefill: 81.8-82.5 ms vs 84.3-84.6 on one stream).
constexpr int kMaxGemmStreams = 4;
constexpr int kDefaultFp8GemmStreams = 4, kDefaultBf16GemmStreams = 1, kDefaultDequantGemmStreams = 2;

// Stable counting sort of the n = T*k assignments by expert (one CTA): offsets[E+1], perm[pos] = assignment index,
// inv[assignment] = pos (-1 for ids outside [0, E)). Chunks of 1024 assignments: rank within a warp by match_any,
// per-warp expert counts in shared memory, running per-expert bases across chunks. Also zeroes `zero` [n_zero] (the
// split gated product's per-item counters, GemvArgs::split_count), so that no launch of its own is needed. CTAs 1 .. T
// (the grouped path's f16 products; else there is one CTA): x's rows [T, H] (row stride xs) as scaled f16 rows into
// x_h [T, H] and their inverse scales into x_inv [T] (rows_to_f16_kernel's form, GemvArgs::in_h / in_inv), so that no
// conversion launch of their own precedes the gated product.
__global__ void __launch_bounds__(kPermThreads) permute_kernel(const int32_t* __restrict__ ids, int64_t n, int E,
                                                               int32_t* offsets, int32_t* perm, int32_t* inv,
                                                               int32_t* zero, int64_t n_zero,
                                                               const __nv_bfloat16* __restrict__ x, int64_t xs,
                                                               int64_t H, __half* x_h, float* x_inv) {
    __shared__ int32_t count[kMaxExperts];
    __shared__ int32_t base[kMaxExperts];
    __shared__ int32_t warp_count[kPermThreads / 32][kMaxExperts];
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    if (blockIdx.x > 0) {
        const int64_t t = blockIdx.x - 1;
        row_to_scaled_f16<kPermThreads>(x + t * xs, H, x_h + t * H, x_inv + t);
        return;
    }
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    for (int64_t i = tid; i < n_zero; i += kPermThreads) zero[i] = 0;
    for (int e = tid; e < E; e += kPermThreads) count[e] = 0;
    __syncthreads();
    for (int64_t i = tid; i < n; i += kPermThreads) {
        const int e = ids[i];
        if (e >= 0 && e < E) atomicAdd(&count[e], 1);
    }
    __syncthreads();
    if (tid == 0) {
        int32_t run = 0;
        for (int e = 0; e < E; ++e) {
            offsets[e] = run;
            base[e] = run;
            run += count[e];
        }
        offsets[E] = run;
    }
    __syncthreads();
    for (int64_t c0 = 0; c0 < n; c0 += kPermThreads) {
        for (int e = lane; e < E; e += 32) warp_count[warp][e] = 0;
        __syncthreads();
        const int64_t i = c0 + tid;
        const int e = i < n ? ids[i] : -1;
        const bool valid = e >= 0 && e < E;
        const unsigned peers = __match_any_sync(0xffffffffu, valid ? e : -1);
        const int rank = __popc(peers & ((1u << lane) - 1));
        if (valid && rank == 0) warp_count[warp][e] = __popc(peers);
        __syncthreads();
        if (valid) {
            int before = 0;
            for (int w = 0; w < warp; ++w) before += warp_count[w][e];
            const int pos = base[e] + before + rank;
            perm[pos] = static_cast<int32_t>(i);
            inv[i] = pos;
        } else if (i < n) {
            inv[i] = -1;
        }
        __syncthreads();
        for (int ee = tid; ee < E; ee += kPermThreads) {
            int tot = 0;
            for (int w = 0; w < kPermThreads / 32; ++w) tot += warp_count[w][ee];
            base[ee] += tot;
        }
        __syncthreads();
    }
}

// x_perm[pos] = x[perm[pos] / k] for every placed assignment (GEMM path).
__global__ void gather_kernel(const __nv_bfloat16* __restrict__ x, int64_t xs, const int32_t* __restrict__ perm,
                              const int32_t* __restrict__ offsets, int E, int k, int64_t vec_per_row,
                              __nv_bfloat16* xp) {
    const int64_t rows = offsets[E];
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < rows * vec_per_row;
         i += int64_t{gridDim.x} * blockDim.x) {
        const int64_t r = i / vec_per_row, c = (i - r * vec_per_row) * 8;
        const int64_t t = perm[r] / k;
        *reinterpret_cast<uint4*>(xp + r * vec_per_row * 8 + c) = *reinterpret_cast<const uint4*>(x + t * xs + c);
    }
}

// out[t] = sum over slots s in order of weight[t, s] * y[inv[t*k + s]] (fp32), bf16 out.
__global__ void combine_kernel(const __nv_bfloat16* __restrict__ y, int64_t ys, const int32_t* __restrict__ inv,
                               const float* __restrict__ w, int64_t T, int k, int64_t vec_per_row, __nv_bfloat16* out,
                               int64_t os) {
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < T * vec_per_row;
         i += int64_t{gridDim.x} * blockDim.x) {
        const int64_t t = i / vec_per_row, c = (i - t * vec_per_row) * 8;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int s = 0; s < k; ++s) {
            const int32_t pos = inv[t * k + s];
            if (pos < 0) continue;
            const float ws = w[t * k + s];
            float v[8];
            unpack8(*reinterpret_cast<const uint4*>(y + pos * ys + c), v);
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[e] = fmaf(ws, v[e], acc[e]);
        }
        *reinterpret_cast<uint4*>(out + t * os + c) = pack8(acc);
    }
}

// ---- block-scaled weights: FP8 (e4m3) and int8 ---------------------------------------------------------------------
constexpr int kQuantThreads = 256;

// One weight (fp32, already divided by its block scale) as the quantised byte: RNE, saturating (see BlockQuantizeParams).
template <MoeWeightType kW>
__device__ __forceinline__ uint32_t encode_byte(float v) {
    if constexpr (kW == MoeWeightType::kFp8E4M3) return __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
    else return isnan(v) ? 0u : static_cast<uint32_t>(__float2int_rn(fminf(fmaxf(v, -127.0f), 127.0f))) & 0xffu;
}

// A block's scale from its largest magnitude: amax / qmax (448 e4m3, 127 int8), 1 for an all-zero block.
template <MoeWeightType kW>
__device__ __forceinline__ float block_scale(float amax) {
    constexpr float kMax = kW == MoeWeightType::kFp8E4M3 ? kFp8E4M3Max : kInt8Max;
    return amax > 0.0f ? __fdiv_rn(amax, kMax) : 1.0f;
}

// One CTA per 128 x 128 block (partial at the edges): the block's amax (unless the scale is given), then the bytes.
// Each thread takes vectors of 8 columns (16-byte loads, 8-byte stores).
template <MoeWeightType kW>
__global__ void __launch_bounds__(kQuantThreads) quantize_kernel(const __nv_bfloat16* __restrict__ in, int64_t rows,
                                                                 int64_t cols, uint8_t* out, float* scales,
                                                                 bool given) {
    const int64_t cb = (cols + kBlk - 1) / kBlk;
    const int64_t br = blockIdx.x / cb, bc = blockIdx.x - br * cb;
    const int64_t r0 = br * kBlk, c0 = bc * kBlk;
    const int nr = static_cast<int>(std::min<int64_t>(kBlk, rows - r0));
    const int nv = static_cast<int>(std::min<int64_t>(kBlk, cols - c0)) / 8;  // vectors per row
    const int tid = threadIdx.x;
    float scale;
    if (given) {
        scale = scales[blockIdx.x];
    } else {
        float amax = 0.0f;
        for (int i = tid; i < nr * nv; i += kQuantThreads) {
            const int r = i / nv, c = (i - r * nv) * 8;
            float f[8];
            unpack8(*reinterpret_cast<const uint4*>(in + (r0 + r) * cols + c0 + c), f);
#pragma unroll
            for (int q = 0; q < 8; ++q) amax = fmaxf(amax, fabsf(f[q]));
        }
        scale = block_scale<kW>(block_max_once<kQuantThreads>(amax));
        if (tid == 0) scales[blockIdx.x] = scale;
    }
    for (int i = tid; i < nr * nv; i += kQuantThreads) {
        const int r = i / nv, c = (i - r * nv) * 8;
        float f[8];
        unpack8(*reinterpret_cast<const uint4*>(in + (r0 + r) * cols + c0 + c), f);
        uint32_t w[2] = {0, 0};
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            const uint32_t b = encode_byte<kW>(__fdiv_rn(f[q], scale));
            w[q / 4] |= b << (8 * (q % 4));
        }
        *reinterpret_cast<uint2*>(out + (r0 + r) * cols + c0 + c) = make_uint2(w[0], w[1]);
    }
}

// bf16 out[rows, cols] = byte value * block scale (the GEMM path's per-expert dequantisation).
template <MoeWeightType kW>
__global__ void dequantize_kernel(const uint8_t* __restrict__ in, const float* __restrict__ scales, int64_t rows,
                                  int64_t cols, __nv_bfloat16* out) {
    const int64_t vpr = cols / 8, cb = (cols + kBlk - 1) / kBlk;
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < rows * vpr;
         i += int64_t{gridDim.x} * blockDim.x) {
        const int64_t r = i / vpr, c = (i - r * vpr) * 8;
        const float scale = __ldg(scales + (r / kBlk) * cb + c / kBlk);
        *reinterpret_cast<uint4*>(out + r * cols + c) =
            widen8_scaled<kW>(*reinterpret_cast<const uint2*>(in + r * cols + c), scale);
    }
}

// ---- FP8 activations (the GEMM path's MoeFp8Mode::kFp8Activations) ---------------------------------------------
// Rows in expert order as e4m3 bytes [rows, K] plus one fp32 scale per (row, 128 columns) block. cuBLASLt wants an
// expert's scales as [K / 128, M] with M contiguous and a multiple of 4, so each expert's GEMMs run on its rows rounded
// up to 4 (M_e = padded_rows(count)), and every buffer of this path keeps expert e's rows from padded position
// expert_slot(off[e], e) on (16-byte aligned scale columns, and room for M_e rows before expert e + 1's): the padding
// rows' results land in no other expert's rows, so experts may run concurrently. Row r of the sorted order (expert e)
// sits at padded_row = expert_slot + r - off[e]; its scale for block b at expert_slot * K/128 + b * M_e + r - off[e].
__host__ __device__ inline int64_t padded_rows(int64_t rows) { return (rows + 3) / 4 * 4; }
__host__ __device__ inline int64_t expert_slot(int64_t off_e, int e) { return padded_rows(off_e) + 4 * int64_t{e}; }

// Row r's expert: the last e with offsets[e] <= r (empty experts share their successor's offset).
__device__ inline int expert_of_row(const int32_t* __restrict__ offsets, int E, int64_t r) {
    int lo = 0, hi = E;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (offsets[mid] <= r) lo = mid;
        else hi = mid;
    }
    return lo;
}

// One warp per (row, 128-column block), four elements per lane, over the sorted rows [row_begin, row_end) (row_end < 0:
// all, offsets[E]). kSwiglu: the row is SwiGLU(gate, up) of the first GEMM's output [padded rows, 2 width] (gate |
// up), rounded to bf16 as the bf16 path's SwiGLU pass writes it; else row r of x gathered through perm. Scale = amax /
// 448 (1 for an all-zero block), byte = e4m3(v / scale): the weights' rule (quantize_kernel) on a 1 x 128 block.
// Bytes to padded rows. perm null: row r of src itself (h of the grouped path).
template <bool kSwiglu>
__global__ void __launch_bounds__(256) quantize_activations_kernel(const __nv_bfloat16* __restrict__ src,
                                                                   int64_t src_stride, int64_t width,
                                                                   const int32_t* __restrict__ perm, int k,
                                                                   const int32_t* __restrict__ offsets, int E,
                                                                   int64_t row_begin, int64_t row_end,
                                                                   uint8_t* __restrict__ q, float* __restrict__ scales) {
    const int64_t rows = (row_end < 0 ? offsets[E] : row_end) - row_begin, blocks = width / kBlk;
    const int lane = threadIdx.x & 31;
    const int64_t nwarps = (int64_t{gridDim.x} * blockDim.x) >> 5;
    for (int64_t w = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) >> 5; w < rows * blocks; w += nwarps) {
        const int64_t r = row_begin + w / blocks, b = w % blocks, c = b * kBlk + lane * 4;
        const int e = __shfl_sync(0xffffffffu, lane == 0 ? expert_of_row(offsets, E, r) : 0, 0);
        const int64_t within = r - offsets[e], slot = expert_slot(offsets[e], e), pr = slot + within;
        float v[4];
        if constexpr (kSwiglu) {
            const uint2 g = *reinterpret_cast<const uint2*>(src + pr * src_stride + c);
            const uint2 u = *reinterpret_cast<const uint2*>(src + pr * src_stride + width + c);
            const float2 g0 = unpack_bf16(g.x), g1 = unpack_bf16(g.y), u0 = unpack_bf16(u.x), u1 = unpack_bf16(u.y);
            v[0] = round_bf16(swiglu_f(g0.x, u0.x)), v[1] = round_bf16(swiglu_f(g0.y, u0.y));
            v[2] = round_bf16(swiglu_f(g1.x, u1.x)), v[3] = round_bf16(swiglu_f(g1.y, u1.y));
        } else {
            const int64_t sr = perm != nullptr ? int64_t{perm[r] / k} : r;
            const uint2 x = *reinterpret_cast<const uint2*>(src + sr * src_stride + c);
            const float2 x0 = unpack_bf16(x.x), x1 = unpack_bf16(x.y);
            v[0] = x0.x, v[1] = x0.y, v[2] = x1.x, v[3] = x1.y;
        }
        float amax = fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3])));
#pragma unroll
        for (int d = 16; d > 0; d >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, d));
        const float scale = block_scale<MoeWeightType::kFp8E4M3>(amax);
        uint32_t bytes = 0;
#pragma unroll
        for (int i = 0; i < 4; ++i) bytes |= encode_byte<MoeWeightType::kFp8E4M3>(__fdiv_rn(v[i], scale)) << (8 * i);
        *reinterpret_cast<uint32_t*>(q + pr * width + c) = bytes;
        if (lane == 0) scales[slot * blocks + b * padded_rows(offsets[e + 1] - offsets[e]) + within] = scale;
    }
}

// inv[i] (a sorted position, or -1) -> its padded row, for the combine.
__global__ void pad_positions_kernel(int32_t* inv, int64_t n, const int32_t* __restrict__ offsets, int E) {
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
        const int32_t r = inv[i];
        if (r < 0) continue;
        const int e = expert_of_row(offsets, E, r);
        inv[i] = static_cast<int32_t>(expert_slot(offsets[e], e) + r - offsets[e]);
    }
}

// A weight's [nb, kb] block scales with each row padded to round_up(kb, 4) (cuBLASLt's BLK128x128 layout).
__global__ void pad_scale_rows_kernel(const float* __restrict__ in, int64_t nb, int64_t kb, float* out) {
    const int64_t kb4 = (kb + 3) / 4 * 4;
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < nb * kb4; i += int64_t{gridDim.x} * blockDim.x) {
        const int64_t r = i / kb4, c = i - r * kb4;
        out[i] = c < kb ? in[r * kb + c] : 0.0f;
    }
}

// Row r of src (bf16, [rows, width], width a multiple of 8) as f16 times its power of two, inv[r] = the power's
// inverse (row_to_scaled_f16, one CTA per row): the input of gemv_mma_kernel's kHalf (h; x's rows come from
// permute_kernel) and of the own grouped GEMM's f16 products, where out row r is src row perm[r] / k (the GEMM path's
// gather in expert order) and CTAs past *rows_end have no row.
constexpr int kRowsToF16Threads = 256;
__global__ void __launch_bounds__(kRowsToF16Threads)
    rows_to_f16_kernel(const __nv_bfloat16* __restrict__ src, int64_t stride, int64_t width, __half* __restrict__ out,
                       float* __restrict__ inv, const int32_t* __restrict__ perm = nullptr, int k = 1,
                       const int32_t* __restrict__ rows_end = nullptr, bool fragment_order = false) {
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    const int64_t r = blockIdx.x;
    if (rows_end != nullptr && r >= *rows_end) return;
    row_to_scaled_f16<kRowsToF16Threads>(src + (perm ? perm[r] / k : r) * stride, width, out + r * width, inv + r,
                                         fragment_order);
}

// ---- tensor-core grouped GEMV (decode path) -------------------------------------------------------------------------
// At ~4 tokens per expert (T = 64, top 2 of 32) a CUDA-core GEMV (the earlier kernel: tokens staged in shared memory,
// each weight vector widened to fp32 and FMA'd against every token) was instruction-bound (Nsight Compute: 0.57
// issued warps per scheduler at 58% of DRAM throughput, bench/runs/ncu_v4_moe_t64_h200.txt). Here the multiply runs
// on mma.sync m16n8k16: a warp's work item is (expert, 16 output rows) over all of K, the weight rows are the A
// operand (16 x 16) straight from registers and up to 16 of the expert's tokens the B operand (two n-tiles of 8), so
// a weight element costs ~1/16 of an instruction whatever the token count, and an expert's weights are read once per
// 16 tokens (the CUDA-core kernel: per 8). H200, MiniMax sizes (bench/runs/moe_v5_*): T = 64 3.45 -> 2.60 ms bf16,
// 3.27 -> 2.2 ms FP8; T = 8 0.87 -> 0.85 / 0.72 -> 0.61 ms; T = 1 0.215 -> 0.19-0.20 / 0.176 -> 0.19 ms.
//
// Operand layout without shared memory: a dot product may sum K in any order as long as A and B use the same one.
// Lane (g = lane / 4, q = lane % 4) takes the 16 columns [16q, 16q + 16) of a 64-column step (its "physical" columns
// p = 0..15) of weight rows g and g + 8 (4 lanes read a row's contiguous 128 bytes in bf16, 64 in FP8) and the same
// columns of token g's input row (L1-cached: the warps of a CTA share the expert's tokens); mma j (0..3) of the step
// takes p = 4j + {0,1} as the logical k pair {2q, 2q+1} and p = 4j + {2,3} as {2q+8, 2q+9}, in A and in B alike.
// (Lanes taking [8q, 8q + 8) and [32 + 8q, 40 + 8q) instead, so that one load instruction reads whole 64-byte runs of
// a row, measured 6-14% slower in bf16 on the H200.)
//
// Quantised weights (FP8, int8): 16 bytes per lane and row (one 16-byte load where K is a multiple of 16, else two
// 8-byte ones), widened exactly to bf16 in registers (widen8), and a step's products are scaled by its 128 x 128
// block's scale in fp32 (a step's 16 x 64 tile never straddles a block).
constexpr int kMmaThreads = 128;
// Work items of a grouped GEMV: blocks of kMmaRows of each touched expert's rows_out output rows (the kernel counts
// them alike from the experts it finds touched).
__host__ __device__ constexpr int64_t gemv_items(int64_t touched, int64_t rows_out) {
    return touched * ((rows_out + kMmaRows - 1) / kMmaRows);
}
// Batches of a grouped GEMV over K columns: kMmaStep-column steps, `steps` of them a batch (the last may be short).
__host__ __device__ constexpr int64_t gemv_batches(int64_t K, int steps) {
    return ((K + kMmaStep - 1) / kMmaStep + steps - 1) / steps;
}
// The split gated product (gemv_mma_kernel's kSplit): for at most this many token slots (one pass of 8 tokens), in at
// most this many parts per item and pieces in all.
constexpr int64_t kSplitMaxSlots = 8;
constexpr int kSplitMaxParts = 8;
constexpr int64_t kSplitMaxPieces = 6144;  // items x parts (the partial sums' workspace: ~1.5 MB at T = 1, 6 at 4)

// kSplit's parts per item for `items` items of `batches` batches over `slots` warps (1: no split). The cost model: a
// round of pieces (one per warp) takes as long as its batches while at most 2/3 of the grid's warps stream (8 of 12
// per SM: each waits on its loads), and proportionally longer with more (they share the SM's bandwidth), so a round
// of n pieces costs max(n, 2/3 slots) x its batches. H100, FP8, MiniMax sizes: T = 1 (1152 items, one round at 73%)
// gains nothing from 4 parts (measured 3% slower) and the model says even; T = 2 (2304 items: a second round at 45%)
// gains 7% from 2 parts (bf16 12%), as the model says. The fewest parts among the cheapest.
__host__ __device__ inline int split_parts(int64_t items, int64_t slots, int64_t batches) {
    const int64_t busy = (2 * slots + 2) / 3;
    auto cost = [&](int64_t parts) {
        const int64_t pieces = items * parts, full = pieces / slots, last = pieces - full * slots;
        return (batches + parts - 1) / parts * (full * slots + (last > 0 ? (last > busy ? last : busy) : 0));
    };
    int parts = 1;
    int64_t best = cost(1);
    for (int pp = 2; pp <= kSplitMaxParts && pp <= batches && items * pp <= kSplitMaxPieces; ++pp) {
        const int64_t c = cost(pp);
        if (c < best) best = c, parts = pp;
    }
    return parts;
}

// acc (16 rows x 8 tokens) += A rows (lo: row g, hi: row g + 8) x B (token g), one 64-column step of e4m3 bytes (2 mma
// of k = 32): mma j takes the lane's bytes [8j, 8j + 4) as the logical k 4q..4q+3 and [8j + 4, 8j + 8) as 16 + 4q..,
// in A and in B alike.
__device__ __forceinline__ void mma_step_e4m3(float (&acc)[4], const uint4& lo, const uint4& hi, const uint4& x) {
    const uint32_t* l = reinterpret_cast<const uint32_t*>(&lo);
    const uint32_t* h = reinterpret_cast<const uint32_t*>(&hi);
    const uint32_t* b = reinterpret_cast<const uint32_t*>(&x);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        const uint32_t a[4] = {l[2 * j], h[2 * j], l[2 * j + 1], h[2 * j + 1]};
        mma_e4m3(acc, a, b[2 * j], b[2 * j + 1]);
    }
}

// kGated: out = SiLU(w1 x) * (w3 x); else out = w2 x. kW: bf16 weights, or bytes (FP8, int8) with 128 x 128 block
// scales. kSteps: 64-column steps whose weight loads are in flight together (per lane and step: 64 bytes per matrix
// row pair in bf16, 32 quantised).
//
// kAct (FP8 weights, K a multiple of 128): the input is e4m3 too (GemvArgs::in_q, one scale per (row, 128 columns)),
// so the bytes go to mma m16n8k32 e4m3 as they are (no widening: 30-40% fewer instructions) and each step's products
// are scaled by the weight block's scale times the token's.
//
// kHalf (quantised weights, weight-only; MoeExpertsParams::decode_products): the weights widen to f16
// (widen8_f16: an e4m3 pair in one cvt) and the input is f16 rows scaled by a power of two each (GemvArgs::in_h,
// in_inv; rows_to_f16_kernel), undone in the epilogue: the same exact products in fewer instructions than bf16's.
//
// Work items are numbered over the touched experts only (listed per CTA from the offsets), and item i goes to warp
// slot i / gridDim.x of CTA i % gridDim.x, so that however few experts the batch touches (2 for one token) the items
// spread evenly over every SM rather than crowding the first CTAs. kParts = 2 (launched when the items fill at most
// half of the grid's warps): a slot is 2 warps, each taking a contiguous half of K, and the first adds the second's
// partial sums (through shared memory) before the epilogue: at T = 1 the down projection's 768 items left half of the
// 1584 warps idle (Nsight Compute, H100: FP8 at 32% of DRAM bandwidth, bf16 57%).
//
// kSplit (the gated product of at most kSplitMaxSlots = 8 token slots): each item's K cut into `parts` pieces of
// whole batches (kSteps steps), chosen here from the items and the grid (split_parts: e.g. T = 2 at MiniMax sizes,
// 2304 items for 1584 warps, leaves a second round at 45% of the warps; in 2 parts, three rounds of half the work, 7%
// faster for FP8), the pieces going to warps as items otherwise do. Each piece leaves its sums in
// GemvArgs::split_partials; the warp that finishes an item's last piece (a counter per item) adds the pieces in part
// order (deterministic) and runs the epilogue.
//
// Three CTAs per SM (at most 168 registers; left free, the input's one-step-ahead load in multiply_batch took the
// deeper gated variants to 185, two CTAs per SM: too few warps for T = 1's 1152 items). The few bytes this spills
// cost less than that load gains (H100, session 30: FP8 T = 1 -1.5%, f16 products T = 2 -4.5%, T = 64 -2.5%).
template <bool kGated, MoeWeightType kW, int kSteps, bool kAct, int kParts = 1, bool kHalf = false, bool kSplit = false>
__global__ void __launch_bounds__(kMmaThreads, kAct ? 2 : 3) gemv_mma_kernel(const GemvArgs a) {
    static_assert(!kSplit || (kGated && kParts == 1 && !kAct), "the split is for the gated product");
    static_assert(!kAct || kW == MoeWeightType::kFp8E4M3, "FP8 activations go with FP8 weights");
    constexpr bool kQuant = kW != MoeWeightType::kBF16;
    static_assert(!kHalf || (kQuant && !kAct), "f16 products are for widened quantised weights");
    using W = std::conditional_t<kQuant, uint8_t, __nv_bfloat16>;
    using Cols = std::conditional_t<kQuant, uint4, uint4[2]>;  // a lane's 16 columns of a row
    constexpr int kMats = kGated ? 2 : 1;
    __shared__ int touched[kMaxExperts];
    __shared__ int num_touched;
    __shared__ float partials[kParts > 1 ? kMmaThreads / 32 : 1][kMats * 8][32];  // kParts > 1: warps' sums, by lane
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    if (threadIdx.x < 32) {
        int n = 0;
        for (int e0 = 0; e0 < a.E; e0 += 32) {
            const int e = e0 + lane;
            const bool has = e < a.E && a.offsets[e + 1] > a.offsets[e];
            const uint32_t mask = __ballot_sync(0xffffffffu, has);
            if (has) touched[n + __popc(mask & ((1u << lane) - 1u))] = e;
            n += __popc(mask);
        }
        if (lane == 0) num_touched = n;
    }
    __syncthreads();
    const int warp = threadIdx.x >> 5, part = warp % kParts, wslot = warp / kParts;
    const int64_t slots = int64_t{gridDim.x} * (kMmaThreads / 32 / kParts);
    const int64_t blocks_per_expert = (a.rows_out + kMmaRows - 1) / kMmaRows;
    const int64_t items = blocks_per_expert * num_touched;
    const int64_t scale_cols = (a.K + kBlk - 1) / kBlk;
    const bool split = a.K % 16 != 0;  // quantised rows then are only 8-byte aligned
    // This warp's part of K, [k_begin, k_end): whole batches of kSteps steps, so that only the last part ends inside
    // one (at K). (The batch loop still starts at 0 and skips the others' batches: a loop from k_begin cost the
    // quantised kernels ~50 registers.)
    const int64_t steps = (a.K + kMmaStep - 1) / kMmaStep;
    const int64_t part_span = ((steps + kParts - 1) / kParts + kSteps - 1) / kSteps * kSteps * kMmaStep;
    // kSplit: the parts per item (split_parts' cost model over the items actually touched); span: columns per part.
    int parts = 1;
    int64_t span = 0;
    if constexpr (kSplit) {
        const int64_t batches = gemv_batches(a.K, kSteps);
        parts = split_parts(items, slots, batches);
        span = (batches + parts - 1) / parts * kSteps * kMmaStep;
    }
    for (int64_t unit = wslot * int64_t{gridDim.x} + blockIdx.x; unit < items * parts; unit += slots) {
        // kSplit: item `item`, its part unit - item * parts.
        const int64_t item = kSplit ? unit / parts : unit;
        // This warp's K from k_begin: [k_begin, k_end) for kParts; kSplit's span is tested apart (below).
        const int64_t k_begin = kSplit ? (unit - item * parts) * span : part * part_span;
        const int64_t k_end = k_begin + part_span;
        const int j = static_cast<int>(item / blocks_per_expert);
        const int e = touched[j];
        const int64_t row0 = (item - j * blocks_per_expert) * kMmaRows;
        const int32_t off = a.offsets[e], count = a.offsets[e + 1] - off;
        // Weight rows g and g + 8 of each matrix (rows past the end clamp to the last row; not stored), and when
        // quantised the block-scale rows of the item's 16 rows (one 128-row block).
        const W* wr[kMats][2];
        const float* sr[kMats];
#pragma unroll
        for (int m = 0; m < kMats; ++m) {
#pragma unroll
            for (int h = 0; h < 2; ++h)
                wr[m][h] = static_cast<const W*>(m == 0 ? a.w_a[e] : a.w_b[e]) +
                           std::min<int64_t>(row0 + g + 8 * h, a.rows_out - 1) * a.K;
            if constexpr (kQuant) sr[m] = (m == 0 ? a.s_a[e] : a.s_b[e]) + (row0 / kBlk) * scale_cols;
        }
        for (int tile = 0; tile < count; tile += kMmaTokens) {
            const int nt = min(kMmaTokens, count - tile);
            const bool two = nt > 8;  // uniform: the second n-tile only when there are tokens for it
            // This lane's B rows: token g of each n-tile (null past the expert's tokens: zeros).
            using In = std::conditional_t<kAct, uint8_t, std::conditional_t<kHalf, __half, __nv_bfloat16>>;
            const In* xr[2];
            // kAct: the scales of this lane's output tokens 8n + 2q + i of the pass at xs_lane[8n + i], block b at
            // [b * padded count] (tokens past the expert's: not read, scale 0).
            const int64_t slot = kAct ? expert_slot(off, e) : 0, padded_count = padded_rows(count);
            const float* xs_lane = kAct ? a.in_scales + slot * (a.K / kBlk) + tile + 2 * q : nullptr;
#pragma unroll
            for (int n = 0; n < 2; ++n) {
                const int t = 8 * n + g;
                const int32_t pos = off + tile + t;
                if constexpr (kAct) {
                    xr[n] = t < nt ? a.in_q + (slot + tile + t) * a.K : nullptr;
                } else {
                    const int64_t src = kGated ? a.perm[t < nt ? pos : off] / a.k : pos;
                    if constexpr (kHalf) xr[n] = t < nt ? a.in_h + src * a.K : nullptr;
                    else xr[n] = t < nt ? a.in + src * a.in_stride : nullptr;
                }
            }
            float acc[kMats][2][4] = {};
            using Batch = Cols[kSteps][kMats][2];  // a lane's weights of kSteps steps
            // Quantised: the steps' weight block scales, loaded with the batch's weights (read in the multiply, each was
            // a dependent L2 round trip per step: an item's scales are its own).
            using Scales = float[kSteps][kMats];
            auto load_batch = [&](Batch& w, Scales& sc, int64_t k0) {
#pragma unroll
                for (int s = 0; s < kSteps; ++s)
#pragma unroll
                    for (int m = 0; m < kMats; ++m)
#pragma unroll
                        for (int h = 0; h < 2; ++h)
                            load_cols<true>(wr[m][h], k0 + s * kMmaStep + 16 * q, a.K, split, w[s][m][h]);
                if constexpr (kQuant) {
#pragma unroll
                    for (int s = 0; s < kSteps; ++s)
#pragma unroll
                        for (int m = 0; m < kMats; ++m)
                            sc[s][m] = k0 + s * kMmaStep < a.K ? __ldg(sr[m] + (k0 + s * kMmaStep) / kBlk) : 0.0f;
                }
            };
            auto multiply_batch = [&](const Batch& w, const Scales& sc, int64_t k0) {
                // The first n-tile's input columns one step ahead (L1 / L2 hits, but each one waited for in turn
                // was a stall of the multiply phase, with no weight load in flight).
                uint4 x_next[2];
                if constexpr (!kAct) load_cols<false>(xr[0], k0 + 16 * q, a.K, false, x_next);
#pragma unroll
                for (int s = 0; s < kSteps; ++s) {
                    const int64_t step0 = k0 + s * kMmaStep;
                    if (step0 >= a.K) break;
                    if constexpr (kAct) {
                        uint4 xv[2];
                        float xs[2][2];
#pragma unroll
                        for (int n = 0; n < 2; ++n) {
                            xv[n] = xr[n] != nullptr ? load_vec<false>(xr[n] + step0 + 16 * q) : uint4{};
#pragma unroll
                            for (int i = 0; i < 2; ++i)
                                xs[n][i] = 8 * n + 2 * q + i < nt
                                               ? __ldg(xs_lane + 8 * n + i + (step0 / kBlk) * padded_count)
                                               : 0.0f;
                        }
#pragma unroll
                        for (int m = 0; m < kMats; ++m) {
                            const float ws = sc[s][m];
                            float part[2][4] = {};
                            mma_step_e4m3(part[0], w[s][m][0], w[s][m][1], xv[0]);
                            if (two) mma_step_e4m3(part[1], w[s][m][0], w[s][m][1], xv[1]);
#pragma unroll
                            for (int n = 0; n < 2; ++n)
#pragma unroll
                                for (int i = 0; i < 4; ++i)
                                    acc[m][n][i] = fmaf(ws * xs[n][i & 1], part[n][i], acc[m][n][i]);
                        }
                    } else {
                        uint4 xv[2][2] = {{x_next[0], x_next[1]}, {}};
                        if (s + 1 < kSteps) load_cols<false>(xr[0], step0 + kMmaStep + 16 * q, a.K, false, x_next);
                        if (two) load_cols<false>(xr[1], step0 + 16 * q, a.K, false, xv[1]);
#pragma unroll
                        for (int m = 0; m < kMats; ++m) {
                            uint4 lo[2], hi[2];
#pragma unroll
                            for (int p = 0; p < 2; ++p) {
                                if constexpr (kQuant) {
                                    const uint4& l = w[s][m][0];
                                    const uint4& u = w[s][m][1];
                                    const uint2 lp = p == 0 ? make_uint2(l.x, l.y) : make_uint2(l.z, l.w);
                                    const uint2 hp = p == 0 ? make_uint2(u.x, u.y) : make_uint2(u.z, u.w);
                                    lo[p] = kHalf ? widen8_f16<kW>(lp) : widen8<kW>(lp);
                                    hi[p] = kHalf ? widen8_f16<kW>(hp) : widen8<kW>(hp);
                                } else {
                                    lo[p] = w[s][m][0][p];
                                    hi[p] = w[s][m][1][p];
                                }
                            }
                            if constexpr (kQuant) {
                                // This step's products in a fresh accumulator, then scaled into the total.
                                const float scale = sc[s][m];
                                float part[2][4] = {};
                                mma_step<kHalf>(part[0], lo, hi, xv[0]);
                                if (two) mma_step<kHalf>(part[1], lo, hi, xv[1]);
#pragma unroll
                                for (int n = 0; n < 2; ++n)
#pragma unroll
                                    for (int i = 0; i < 4; ++i) acc[m][n][i] = fmaf(scale, part[n][i], acc[m][n][i]);
                            } else {
                                mma_step(acc[m][0], lo, hi, xv[0]);
                                if (two) mma_step(acc[m][1], lo, hi, xv[1]);
                            }
                        }
                    }
                }
            };
            // All of a batch's weight loads are issued before its multiplies (loading the next batch during them
            // instead measured 5-30% slower: the registers it holds cost occupancy; with the registers of one batch,
            // two half batches alternating, the gated product at T = 1 measured +8% with the bf16 widening (spills)
            // and even with f16 products, H100, session 28). Streaming the quantised weights
            // through a per-warp cp.async ring in shared memory instead (2, 3 or 4 stages, the next batches in flight
            // during the widening) measured slower too, H100: 2-8% for the MoE at T = 1-64 with two stages, a decode
            // step of 4 layers at batch 64 13.94 -> 14.20 ms (two stages), 15.90 ms (four; bench/RESULTS.md). Asking L2
            // for the next one or two batches' row pieces (prefetch.global.L2, no registers) measured 15% slower at
            // T = 1 and 10% at T = 64 (session 30).
            for (int64_t k0 = 0; k0 < a.K; k0 += kMmaStep * kSteps) {
                if (kParts > 1 && (k0 < k_begin || k0 >= k_end)) continue;
                // (one 32-bit compare: the kParts form here cost the kSplit kernels ~18 registers and 3 CTAs per SM)
                if (kSplit && static_cast<uint32_t>(k0 - k_begin) >= static_cast<uint32_t>(span)) continue;
                Batch wv;
                Scales sc;
                load_batch(wv, sc, k0);
                multiply_batch(wv, sc, k0);
            }
            if constexpr (kParts > 1) {  // the slot's partial sums into its first warp, in part order
                if (part != 0)
#pragma unroll
                    for (int m = 0; m < kMats; ++m)
#pragma unroll
                        for (int n = 0; n < 2; ++n)
#pragma unroll
                            for (int i = 0; i < 4; ++i) partials[warp][(m * 2 + n) * 4 + i][lane] = acc[m][n][i];
                named_sync(1 + wslot, 32 * kParts);
                if (part == 0)
                    for (int p = 1; p < kParts; ++p)
#pragma unroll
                        for (int m = 0; m < kMats; ++m)
#pragma unroll
                            for (int n = 0; n < 2; ++n)
#pragma unroll
                                for (int i = 0; i < 4; ++i) acc[m][n][i] += partials[warp + p][(m * 2 + n) * 4 + i][lane];
                named_sync(1 + wslot, 32 * kParts);  // read before the next pass writes them
                if (part != 0) continue;
            }
            if constexpr (kSplit) {
                if (parts > 1) {  // the piece's sums out; the warp that finishes the item's last adds them up in order
                    // A piece: [kMats][16 rows][split_tokens] floats, the tokens of the expert's one pass (nt <= 8).
                    const int64_t piece = kMats * kMmaRows * a.split_tokens;
                    auto at = [&](int m, int i) {
                        return (m * kMmaRows + g + 8 * (i >> 1)) * a.split_tokens + 2 * q + (i & 1);
                    };
                    float* mine = a.split_partials + unit * piece;
#pragma unroll
                    for (int m = 0; m < kMats; ++m)
#pragma unroll
                        for (int i = 0; i < 4; ++i)
                            if (2 * q + (i & 1) < nt) __stcg(mine + at(m, i), acc[m][0][i]);
                    __threadfence();
                    __syncwarp();
                    int last = 0;
                    if (lane == 0) last = atomicAdd(a.split_count + item, 1) == parts - 1;
                    if (!__shfl_sync(0xffffffffu, last, 0)) continue;  // (one pass of tokens: ends the piece)
                    __threadfence();
#pragma unroll
                    for (int m = 0; m < kMats; ++m)
#pragma unroll
                        for (int i = 0; i < 4; ++i) {
                            float sum = 0.0f;
                            if (2 * q + (i & 1) < nt)
                                for (int pp = 0; pp < parts; ++pp)
                                    sum += __ldcg(a.split_partials + (item * parts + pp) * piece + at(m, i));
                            acc[m][0][i] = sum;
                        }
                }
            }
            store_gemv_outputs<kGated, kHalf>(a, acc, row0, off, tile, nt, lane);
        }
    }
}

// CTAs of `kernel` resident per SM, asked once per kernel and device, as sm_count() is: an eager decode step launches
// the GEMVs twice a layer.
template <auto kernel>
Expected<int> ctas_per_sm() {
    constexpr int kMaxDevices = 64;
    static std::atomic<int> cached[kMaxDevices];
    int device = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    int per_sm = device < kMaxDevices ? cached[device].load(std::memory_order_relaxed) : 0;
    if (per_sm == 0) {
        VOLT_CUDA_RETURN_IF_ERROR(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kMmaThreads, 0));
        per_sm = std::max(per_sm, 1);
        if (device < kMaxDevices) cached[device].store(per_sm, std::memory_order_relaxed);
    }
    return per_sm;
}

// A persistent grid of as many CTAs as fit on the device at once (the kernels stride over their work items).
template <auto kernel>
Status launch_mma(const GemvArgs& g, int sms, cudaStream_t stream) {
    VOLT_ASSIGN_OR_RETURN(const int per_sm, ctas_per_sm<kernel>());
    return launch_dependent(kernel, dim3(static_cast<unsigned>(per_sm * sms)), dim3(kMmaThreads), 0, stream, g);
}

// fn(w, h) with w an integral_constant of the run's weight type and h a bool_constant for f16 products (quantised
// weights only): the kernels' template arguments from a run's parameters.
template <typename Fn>
auto with_weight_kind(MoeWeightType type, bool half, Fn&& fn) {
    using T = MoeWeightType;
    constexpr std::true_type f16;
    constexpr std::false_type bf16;
    switch (type) {
        case T::kFp8E4M3:
            return half ? fn(std::integral_constant<T, T::kFp8E4M3>{}, f16)
                        : fn(std::integral_constant<T, T::kFp8E4M3>{}, bf16);
        case T::kInt8:
            return half ? fn(std::integral_constant<T, T::kInt8>{}, f16)
                        : fn(std::integral_constant<T, T::kInt8>{}, bf16);
        default: return fn(std::integral_constant<T, T::kBF16>{}, bf16);
    }
}

// The gated product cut in parts (kSplit): batches of twice the steps of the deeper variant's.
template <MoeWeightType kW>
constexpr int kSplitSteps = 2 * (kW != MoeWeightType::kBF16 ? 2 : 1);
template <MoeWeightType kW, bool kHalf>
constexpr auto split_gemv_kernel = gemv_mma_kernel<true, kW, kSplitSteps<kW>, false, 1, kHalf, true>;

// The parts split_gemv_kernel cuts each of `items` gated items of K columns into on this device (1: not worth it).
template <MoeWeightType kW, bool kHalf>
Expected<int> gated_split_parts(int64_t items, int64_t K, int sms) {
    VOLT_ASSIGN_OR_RETURN(const int per_sm, (ctas_per_sm<split_gemv_kernel<kW, kHalf>>()));
    return split_parts(items, int64_t{per_sm} * sms * (kMmaThreads / 32), gemv_batches(K, kSplitSteps<kW>));
}

// One grouped GEMV (gated or down) of a decode batch: 128 bytes of weights in flight per lane, twice that when `few`.
// The down product's few items (T = 1: 768 for 1584 warps) take two warps each where the grid holds twice as many
// (touched_max: an upper bound on the experts with tokens, min(E, T k)); the gated product's items (1152 at T = 1) are
// cut in parts (kSplit) where the workspace has room for it (g.split_count) and that shortens the busiest warp's work.
template <bool kGated, MoeWeightType kW, bool kAct = false, bool kHalf = false>
Status launch_gemv(const GemvArgs& g, bool few, int64_t touched_max, int sms, cudaStream_t stream) {
    constexpr int kSteps = (kGated ? 1 : 2) * (kW != MoeWeightType::kBF16 ? 2 : 1);
    if constexpr (kGated && !kAct) {
        if (g.split_count) {
            const int64_t items = gemv_items(touched_max, g.rows_out);
            VOLT_ASSIGN_OR_RETURN(const int parts, (gated_split_parts<kW, kHalf>(items, g.K, sms)));
            if (parts > 1) {
                return launch_mma<split_gemv_kernel<kW, kHalf>>(g, sms, stream);
            }
        }
    }
    if constexpr (!kGated) {
        constexpr auto halves = gemv_mma_kernel<kGated, kW, 2 * kSteps, kAct, 2, kHalf>;
        if (few) {
            VOLT_ASSIGN_OR_RETURN(const int per_sm, ctas_per_sm<halves>());
            const int64_t items = gemv_items(touched_max, g.rows_out);
            if (items * 2 <= int64_t{per_sm} * sms * (kMmaThreads / 32)) {
                return launch_mma<halves>(g, sms, stream);
            }
        }
    }
    if (few) return launch_mma<gemv_mma_kernel<kGated, kW, 2 * kSteps, kAct, 1, kHalf>>(g, sms, stream);
    return launch_mma<gemv_mma_kernel<kGated, kW, kSteps, kAct, 1, kHalf>>(g, sms, stream);
}

// ---- workspace ------------------------------------------------------------------------------------------------------
struct Layout {
    size_t offsets = 0, perm = 0, inv = 0, a = 0, b = 0, y = 0, wdq = 0, total = 0;
    size_t split_count = 0, split_partials = 0, split_items = 0, split_tokens = 0;  // kSplit (split_items 0: none)
    size_t xs = 0, hq = 0, hs = 0;  // FP8 activations: x's scales, the SwiGLU intermediate's bytes and scales
    size_t xh = 0, xinv = 0, hh = 0, hinv = 0;  // f16 products: x and h as scaled f16 rows, their inverse scales
    size_t ginv = 0;  // the own grouped GEMM's f16 products: the inverse scales of the gathered rows (a: f16 then)
    size_t wsc_stride = 0;          // FP8 activations: bytes of each GEMM stream's padded weight scales (at wdq)
    size_t wdq_stride = 0;          // dequantising: bytes of each GEMM stream's bf16 expert copy (at wdq)
};

bool use_gemm(const MoeExpertsParams& p) {
    return p.path == MoePath::kGemm || (p.path == MoePath::kAuto && p.num_tokens > kMoeDecodeMaxTokens);
}

// ---- streams of the GEMM path --------------------------------------------------------------------------------------
// cuBLASLt's kernel for one expert's product (M ~ T k / E rows) leaves part of its last wave of tiles idle; experts
// spread round-robin over a few streams fill it with the next expert's tiles. Per device, created on first use and never
// destroyed (as the GEMM plans, whose one per stream each of these streams' GEMMs uses); a per-device lock keeps one
// caller's fork-and-join of the shared events whole.
struct GemmStreams {
    std::mutex mu;
    cudaStream_t side[kMaxGemmStreams] = {};
    cudaEvent_t fork = nullptr, join[kMaxGemmStreams] = {};
};

Expected<GemmStreams*> gemm_streams() {
    constexpr int kMaxDevices = 64;
    static std::mutex mu;
    static GemmStreams* per_device[kMaxDevices] = {};
    int device = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    if (device >= kMaxDevices) return invalid_argument("moe_experts (CUDA): device ", device, " beyond ", kMaxDevices);
    std::lock_guard<std::mutex> lock(mu);
    if (!per_device[device]) {
        auto gs = std::make_unique<GemmStreams>();
        for (int i = 0; i < kMaxGemmStreams; ++i) {
            VOLT_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&gs->side[i], cudaStreamNonBlocking));
            VOLT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&gs->join[i], cudaEventDisableTiming));
        }
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&gs->fork, cudaEventDisableTiming));
        per_device[device] = gs.release();
    }
    return per_device[device];
}

// The GEMM path's products (VOLT_MOE_OWN_GEMM): off = cuBLASLt per expert + the SwiGLU pass (quantised weights:
// each expert dequantised first); up = the own grouped GEMM with the SwiGLU in its epilogue for [w1; w3]
// (kernels/cuda/moe_gemm_sm90.cu), cuBLASLt for w2; both = the own GEMM for w2 too.
enum class OwnGemm { kOff, kUp, kBoth };
// Which products the own grouped GEMM takes (moe_gemm_sm90.h) where it fits. bf16 weights: none by default (at
// parity with cuBLASLt's per-expert GEMMs plus the SwiGLU pass, bench/RESULTS.md); quantised weights: both (its
// mixed-input form reads each weight byte once, where the dequantising pass wrote and re-read a bf16 copy).
// VOLT_MOE_OWN_GEMM = 0 | up | both overrides either, e.g. for A/B timing.
OwnGemm own_gemm_choice(bool quant) {
    static const int env = env_choice("VOLT_MOE_OWN_GEMM", {{"auto", -1}, {"0", 0}, {"up", 1}, {"both", 2}}, -1);
    if (env < 0) return quant ? OwnGemm::kBoth : OwnGemm::kOff;
    return env == 0 ? OwnGemm::kOff : env == 1 ? OwnGemm::kUp : OwnGemm::kBoth;
}

// The own grouped GEMM's arguments for the up product ([w1; w3] with the SwiGLU, from the gathered rows xp into the
// first I columns of gu's [rows, 2I]) and the down product (w2, from gu into y).
// Quantised weights: xp holds the rows as scaled f16 and x_inv their inverse scales (the kernel's f16 products).
moe_gemm::GroupedGemmArgs own_up_args(const MoeExpertsParams& p, const void* xp, const float* x_inv, int64_t rows,
                                      const int32_t* offsets, void* gu) {
    const int64_t H = p.hidden, I = p.intermediate;
    return {.x = xp, .x_stride = H, .x_inv = p.weight_type != MoeWeightType::kBF16 ? x_inv : nullptr, .rows = rows,
            .offsets = offsets, .num_experts = p.num_experts, .gated = true, .w_a = p.w1, .w_b = p.w3,
            .weights = p.weight_type, .s_a = p.s1, .s_b = p.s3, .n = I, .k = H, .out = gu, .out_stride = 2 * I};
}
moe_gemm::GroupedGemmArgs own_down_args(const MoeExpertsParams& p, const void* gu, int64_t rows,
                                        const int32_t* offsets, void* y) {
    const int64_t H = p.hidden, I = p.intermediate;
    return {.x = gu, .x_stride = 2 * I, .rows = rows, .offsets = offsets, .num_experts = p.num_experts,
            .gated = false, .w_a = p.w2, .weights = p.weight_type, .s_a = p.s2, .n = H, .k = I, .out = y,
            .out_stride = H};
}
// Which products the GEMM path gives the own grouped GEMM: the choice, where the kernel can run them. Quantised
// experts with both products there need no dequantised copies in the workspace.
struct OwnProducts {
    bool up = false, down = false;
};
OwnProducts own_products(const MoeExpertsParams& p, const moe_gemm::GroupedGemmArgs& up,
                         const moe_gemm::GroupedGemmArgs& down) {
    const OwnGemm own = own_gemm_choice(p.weight_type != MoeWeightType::kBF16);
    OwnProducts o;
    o.up = own != OwnGemm::kOff && moe_gemm::grouped_gemm_unfit(up) == nullptr;
    o.down = o.up && own == OwnGemm::kBoth && moe_gemm::grouped_gemm_unfit(down) == nullptr;
    return o;
}
// own_products before the workspace exists: the gathered rows, the intermediate and the outputs live in the 16-byte
// aligned workspace, all the kernel asks of their addresses, so any such address stands in for them; T k rows at most.
bool own_takes_both(const MoeExpertsParams& p) {
    alignas(16) static char stand_in[16];
    const int64_t rows = p.num_tokens * p.top_k;
    return own_products(p, own_up_args(p, stand_in, reinterpret_cast<const float*>(stand_in), rows, nullptr, stand_in),
                        own_down_args(p, stand_in, rows, nullptr, stand_in))
        .down;
}

// The GEMM path's stream count for this call: FP8 GEMMs, bf16 GEMMs on bf16 weights, or bf16 GEMMs on dequantised
// copies of quantised weights.
enum class GemmKind { kFp8, kBf16, kDequantized };
constexpr int default_gemm_streams(GemmKind kind) {
    return kind == GemmKind::kFp8    ? kDefaultFp8GemmStreams
           : kind == GemmKind::kBf16 ? kDefaultBf16GemmStreams
                                     : kDefaultDequantGemmStreams;
}
int gemm_stream_count(const MoeExpertsParams& p, GemmKind kind) {
    if (p.gemm_streams > 0) return std::min(p.gemm_streams, kMaxGemmStreams);
    static const int env = env_choice("VOLT_MOE_GEMM_STREAMS", {{"1", 1}, {"2", 2}, {"3", 3}, {"4", 4}}, 0);
    return env > 0 ? env : default_gemm_streams(kind);
}

// fn(e, stream, slot) for every expert e with rows (off [E + 1], host), on `count` streams forked from `stream` and
// joined back into it (count 1: on `stream` itself); slot in [0, count) names the stream for per-stream scratch.
template <typename Fn>
Status for_each_expert(const int32_t* off, int E, int count, cudaStream_t stream, Fn&& fn) {
    if (count <= 1) {
        for (int e = 0; e < E; ++e)
            if (off[e + 1] > off[e]) VOLT_RETURN_IF_ERROR(fn(e, stream, 0));
        return Status::ok();
    }
    VOLT_ASSIGN_OR_RETURN(GemmStreams * gs, gemm_streams());
    std::lock_guard<std::mutex> lock(gs->mu);
    VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(gs->fork, stream));
    for (int i = 0; i < count; ++i) VOLT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(gs->side[i], gs->fork, 0));
    auto enqueue = [&]() -> Status {
        for (int e = 0, next = 0; e < E; ++e) {
            if (off[e + 1] == off[e]) continue;
            VOLT_RETURN_IF_ERROR(fn(e, gs->side[next], next));
            next = (next + 1) % count;
        }
        return Status::ok();
    };
    const Status st = enqueue();
    for (int i = 0; i < count; ++i) {  // joined even after an error: nothing may outlive the call unordered
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(gs->join[i], gs->side[i]));
        VOLT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, gs->join[i], 0));
    }
    return st;
}

bool fp8_activations_fit(const MoeExpertsParams& p) {
    return p.hidden % kQuantBlockSize == 0 && p.intermediate % kQuantBlockSize == 0 && on_hopper();
}

// Whether the run multiplies FP8 weights by FP8 activations (the mode of its path resolved; validate() refuses an
// explicit kFp8Activations that does not fit).
bool uses_fp8_activations(const MoeExpertsParams& p) {
    if (p.weight_type != MoeWeightType::kFp8E4M3) return false;
    const bool gemm = use_gemm(p);
    const MoeFp8Mode mode = gemm ? p.fp8_prefill : p.fp8_decode;
    if (mode != MoeFp8Mode::kAuto) return mode == MoeFp8Mode::kFp8Activations;
    // kAuto: FP8 activations on the GEMM path (1.4-1.5x faster than bf16 weights there, 2.3x the weight-only path),
    // weight-only on the grouped path, where e4m3 activations gain at most 7% (T = 64; nothing at T = 1 ... 8, H100)
    // for a third more error (MoE output vs bf16 weights 6.4e-2 instead of 4.7e-2). The environment overrides either,
    // e.g. for A/B timing.
    static const int prefill = env_choice("VOLT_MOE_FP8_PREFILL",
                                          {{"auto", 1}, {"dequantize", 0}, {"fp8_activations", 1}}, 1);
    static const int decode = env_choice("VOLT_MOE_FP8_DECODE",
                                         {{"auto", 0}, {"dequantize", 0}, {"fp8_activations", 1}}, 0);
    return (gemm ? prefill : decode) == 1 && fp8_activations_fit(p);
}

// Quantised weights on the grouped path, weight-only, through the TMA kernel (MoeExpertsParams::decode_kernel) where
// it fits both products (gated: K = H, I output rows; down: the reverse).
bool uses_decode_tma(const MoeExpertsParams& p) {
    if (use_gemm(p) || uses_fp8_activations(p)) return false;
    static const bool env = env_choice("VOLT_MOE_DECODE_TMA", {{"auto", 1}, {"1", 1}, {"0", 0}}, 1) == 1;
    const bool want = p.decode_kernel == MoeDecodeKernel::kAuto ? env : p.decode_kernel == MoeDecodeKernel::kTma;
    return want && !gemv_tma_unfit(p.weight_type, p.num_experts, p.hidden, p.intermediate) &&
           !gemv_tma_unfit(p.weight_type, p.num_experts, p.intermediate, p.hidden);
}

// Quantised weights on the grouped path, weight-only: widened to f16 and multiplied with the input as scaled f16 rows
// (rows_to_f16_kernel; gemv_mma_kernel's kHalf) instead of widened to bf16, as MoeExpertsParams::decode_products says.
bool uses_f16_products(const MoeExpertsParams& p) {
    if (p.weight_type == MoeWeightType::kBF16 || use_gemm(p) || uses_fp8_activations(p)) return false;
    if (uses_decode_tma(p)) return true;  // the TMA kernel's products are f16
    if (p.decode_products != MoeDecodeProducts::kAuto) return p.decode_products == MoeDecodeProducts::kF16;
    // kAuto: from 2 tokens, where the cheaper widening outweighed the two conversion launches (H100, FP8: -4 to -5% at
    // 64 tokens, -2 to -3% at 4 to 16, -1.6% at 2, +2 to +3% at 1; x's has since moved into permute_kernel); the
    // environment overrides it, e.g. for A/B timing.
    static const int env = env_choice("VOLT_MOE_DECODE_F16", {{"auto", -1}, {"0", 0}, {"1", 1}}, -1);
    return env < 0 ? p.num_tokens >= kMoeDecodeF16MinTokens : env == 1;
}

// Whether the grouped path's gated product may be cut in parts (gemv_mma_kernel's kSplit: at most kSplitMaxSlots token
// slots, bf16 or widened weights; whether it is, launch_gemv decides from the grid).
bool may_split(const MoeExpertsParams& p) {
    static const bool env = env_choice("VOLT_MOE_DECODE_SPLIT", {{"1", 1}, {"0", 0}}, 1) == 1;
    return p.decode_split && env && !use_gemm(p) && p.num_tokens * p.top_k <= kSplitMaxSlots &&
           !uses_fp8_activations(p) && !uses_decode_tma(p);
}

Layout layout(const MoeExpertsParams& p) {
    Layout L;
    const size_t n = static_cast<size_t>(p.num_tokens * p.top_k);
    const size_t H = static_cast<size_t>(p.hidden), I = static_cast<size_t>(p.intermediate);
    const bool fp8_act = uses_fp8_activations(p), gemm = use_gemm(p);
    // FP8 activations: every expert's rows from its padded slot (expert_slot), so this many rows in all.
    const size_t padded = static_cast<size_t>(expert_slot(static_cast<int64_t>(n), p.num_experts));
    const size_t rows = fp8_act && gemm ? padded : n;  // of b and y (the grouped path writes them unpadded)
    size_t at = 0;
    L.offsets = at, at += align256((p.num_experts + 1) * sizeof(int32_t));
    L.perm = at, at += align256(n * sizeof(int32_t));
    L.inv = at, at += align256(n * sizeof(int32_t));
    if (fp8_act) {  // x gathered in expert order and the SwiGLU intermediate, e4m3 with their scales, padded slots
        L.a = at, at += align256(padded * H);
        L.xs = at, at += align256(padded * (H / kQuantBlockSize) * sizeof(float));
        L.hq = at, at += align256(padded * I);
        L.hs = at, at += align256(padded * (I / kQuantBlockSize) * sizeof(float));
    }
    if (uses_f16_products(p)) {
        L.xh = at, at += align256(static_cast<size_t>(p.num_tokens) * H * 2);
        L.xinv = at, at += align256(static_cast<size_t>(p.num_tokens) * sizeof(float));
        L.hh = at, at += align256(n * I * 2);
        L.hinv = at, at += align256(n * sizeof(float));
    }
    if (fp8_act && gemm) {
        L.b = at, at += align256(rows * 2 * I * 2);                       // [w1 x | w3 x]
        // A weight's block scales with their rows padded to a multiple of 4, when they are not already: one copy per
        // GEMM stream.
        const size_t bi = I / kQuantBlockSize, bh = H / kQuantBlockSize;
        L.wsc_stride = align256(std::max(2 * bi * ((bh + 3) / 4 * 4), bh * ((bi + 3) / 4 * 4)) * sizeof(float));
        L.wdq = at, at += kMaxGemmStreams * L.wsc_stride;
    } else if (gemm) {
        L.a = at, at += align256(n * H * 2);            // x gathered in expert order
        L.b = at, at += align256(n * 2 * I * 2);        // [w1 x | w3 x], then the SwiGLU in the first half
        if (p.weight_type != MoeWeightType::kBF16) L.ginv = at, at += align256(n * sizeof(float));
        // Quantised, unless the own grouped GEMM widens them itself: per stream, one expert's [w1; w3] (then w2) as
        // bf16.
        if (p.weight_type != MoeWeightType::kBF16 && !own_takes_both(p)) {
            L.wdq_stride = align256(2 * I * H * 2);
            L.wdq = at, at += gemm_stream_count(p, GemmKind::kDequantized) * L.wdq_stride;
        }
    } else {
        L.b = at, at += align256(n * I * 2);            // SwiGLU intermediate
    }
    L.y = at, at += align256(rows * H * 2);             // expert outputs, permuted order
    if (may_split(p)) {
        L.split_items =
            static_cast<size_t>(gemv_items(std::min<int64_t>(p.num_experts, static_cast<int64_t>(n)), p.intermediate));
        L.split_tokens = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(n), kSplitMaxSlots));
        L.split_count = at, at += align256(L.split_items * sizeof(int32_t));
        L.split_partials = at,
        at += align256(std::min<size_t>(L.split_items * kSplitMaxParts, kSplitMaxPieces) * 2 * kMmaRows *
                       L.split_tokens * sizeof(float));
    }
    L.total = at;
    return L;
}

unsigned ew_grid(int64_t work) {
    return static_cast<unsigned>(std::clamp<int64_t>((work + 255) / 256, 1, 65535 * 8));
}

// out[t] = the sum of token t's slot outputs (y, permuted order) weighted in top-k order.
Status combine(const MoeExpertsParams& p, const Layout& L, char* ws, cudaStream_t stream) {
    const int64_t H = p.hidden;
    return launch_dependent(combine_kernel, dim3(ew_grid(p.num_tokens * (H / 8))), dim3(256), 0, stream,
                            reinterpret_cast<const __nv_bfloat16*>(ws + L.y), H,
                            reinterpret_cast<const int32_t*>(ws + L.inv), p.weights, p.num_tokens, p.top_k, H / 8,
                            static_cast<__nv_bfloat16*>(p.out), p.out_stride);
}

// The GEMM path with FP8 activations, after x was quantised in expert order (ws + L.a, L.xs, padded rows) and the
// per-expert row offsets `off` [E + 1] read back: per expert w1 and w3 (block-scaled FP8 GEMMs into the two halves of
// [rows, 2I]), the SwiGLU quantised to e4m3, w2 (each GEMM on the expert's rows rounded up to 4, experts spread over
// `streams` streams).
Status run_fp8_activations(const MoeExpertsParams& p, const Layout& L, char* ws, const int32_t* off, int streams,
                           cudaStream_t stream) {
    const int E = p.num_experts;
    const int64_t H = p.hidden, I = p.intermediate, bh = H / kBlk, bi = I / kBlk;
    const auto* xq = reinterpret_cast<const uint8_t*>(ws + L.a);
    const auto* xs = reinterpret_cast<const float*>(ws + L.xs);
    auto* gu = reinterpret_cast<__nv_bfloat16*>(ws + L.b);
    auto* hq = reinterpret_cast<uint8_t*>(ws + L.hq);
    auto* hs = reinterpret_cast<float*>(ws + L.hs);
    auto* y = reinterpret_cast<__nv_bfloat16*>(ws + L.y);
    // A [rows, cols] weight's block scales as cuBLASLt reads them: rows padded to a multiple of 4 blocks, in the
    // stream's own workspace copy (stream order keeps it until the GEMM has run).
    auto weight_scales = [&](const float* sc, int64_t rows, int64_t cols, cudaStream_t st,
                             int slot) -> Expected<const float*> {
        const int64_t nb = (rows + kBlk - 1) / kBlk, kb = cols / kBlk;
        if (kb % 4 == 0) return sc;
        auto* out = reinterpret_cast<float*>(ws + L.wdq + slot * L.wsc_stride);
        pad_scale_rows_kernel<<<ew_grid(nb * ((kb + 3) / 4 * 4)), 256, 0, st>>>(sc, nb, kb, out);
        VOLT_CUDA_RETURN_IF_ERROR(cudaGetLastError());
        return static_cast<const float*>(out);
    };
    // C[M, n] = A[M, k] W^T with A e4m3 rows (scales from `a_scales`) and W an e4m3 [n, k] weight.
    auto gemm = [&](int64_t m, int64_t n, int64_t k, const uint8_t* a, const float* a_scales, const void* w,
                    const float* w_scales, __nv_bfloat16* c, int64_t ldc, cudaStream_t st, int slot) -> Status {
        VOLT_ASSIGN_OR_RETURN(const float* bs, weight_scales(w_scales, n, k, st, slot));
        GemmParams gp;
        gp.m = m, gp.n = n, gp.k = k, gp.a = a, gp.lda = k, gp.b = w, gp.ldb = k, gp.c = c, gp.ldc = ldc;
        gp.inputs = GemmInputs::kFp8E4M3BlockScaled, gp.a_scales = a_scales, gp.b_scales = bs;
        return run(gp, st);
    };
    // Each expert's chain on its stream (no join between the products: an expert's down product starts when its own
    // SwiGLU is done, while the other streams' GEMMs keep the GPU busy).
    const auto* offsets = reinterpret_cast<const int32_t*>(ws + L.offsets);
    return for_each_expert(off, E, streams, stream, [&](int e, cudaStream_t st, int slot) -> Status {
        const int64_t m = padded_rows(off[e + 1] - off[e]), row = expert_slot(off[e], e);
        __nv_bfloat16* ge = gu + row * 2 * I;
        const uint8_t* xe = xq + row * H;
        if (p.w3[e] == static_cast<const uint8_t*>(p.w1[e]) + I * H && p.s3[e] == p.s1[e] + bi * bh) {
            // w3 and its scales stored right after w1's (one [2I, H] block): one GEMM of N = 2I writes both halves.
            VOLT_RETURN_IF_ERROR(gemm(m, 2 * I, H, xe, xs + row * bh, p.w1[e], p.s1[e], ge, 2 * I, st, slot));
        } else {
            VOLT_RETURN_IF_ERROR(gemm(m, I, H, xe, xs + row * bh, p.w1[e], p.s1[e], ge, 2 * I, st, slot));
            VOLT_RETURN_IF_ERROR(gemm(m, I, H, xe, xs + row * bh, p.w3[e], p.s3[e], ge + I, 2 * I, st, slot));
        }
        quantize_activations_kernel<true><<<ew_grid((off[e + 1] - off[e]) * bi * 32), 256, 0, st>>>(
            gu, 2 * I, I, nullptr, 1, offsets, E, off[e], off[e + 1], hq, hs);
        VOLT_CUDA_RETURN_IF_ERROR(cudaGetLastError());
        return gemm(m, H, I, hq + row * I, hs + row * bi, p.w2[e], p.s2[e], y + row * H, H, st, slot);
    });
}

}  // namespace

Status run(const MoeRouterParams& p, cudaStream_t stream) {
    if (p.num_tokens < 0 || p.hidden <= 0 || p.hidden % 8 != 0 || p.num_experts <= 0 ||
        p.num_experts > kMoeMaxExperts || p.top_k <= 0 || p.top_k > p.num_experts)
        return invalid_argument("moe_router (CUDA): need T >= 0, H a positive multiple of 8, 0 < E <= ", kMoeMaxExperts,
                                ", 0 < k <= E (T=", p.num_tokens, " H=", p.hidden, " E=", p.num_experts,
                                " k=", p.top_k, ")");
    if (p.num_tokens == 0) return Status::ok();
    if (!p.x || !p.gate_weight || !p.expert_ids || !p.weights)
        return invalid_argument("moe_router (CUDA): x, gate_weight, expert_ids and weights must be set");
    if (!aligned16(p.x) || !aligned16(p.gate_weight) || p.x_stride % 8 != 0 || (p.num_tokens > 1 && p.x_stride < p.hidden))
        return invalid_argument("moe_router (CUDA): x and gate_weight 16-byte aligned, x_stride >= H, multiple of 8");
    const auto* x = static_cast<const __nv_bfloat16*>(p.x);
    if (p.num_tokens <= kMoeDecodeMaxTokens) {
        // At least 8 warps so that warps 0..7 exist to route the 8 tokens of a CTA.
        const int threads = 32 * std::max(p.num_experts, kRouterSmallTokens);
        const unsigned blocks =
            static_cast<unsigned>((p.num_tokens + kRouterSmallTokens - 1) / kRouterSmallTokens * kRouterSplit);
        return launch_dependent(router_small_kernel, dim3(blocks), dim3(threads), 0, stream, x, p.x_stride,
                                p.gate_weight, p.num_tokens, p.hidden, p.num_experts, p.top_k, p.renormalize, p.logits,
                                p.expert_ids, p.weights);
    }
    const int64_t blocks = (p.num_tokens + kRouterTokens - 1) / kRouterTokens;
    if (blocks > 0x7fffffff) return invalid_argument("moe_router (CUDA): too many tokens");
    router_kernel<<<static_cast<unsigned>(blocks), kRouterThreads, 0, stream>>>(
        x, p.x_stride, p.gate_weight, p.num_tokens, p.hidden, p.num_experts, p.top_k, p.renormalize, p.logits,
        p.expert_ids, p.weights);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

const char* moe_weight_type_name(MoeWeightType t) {
    switch (t) {
        case MoeWeightType::kBF16: return "bf16";
        case MoeWeightType::kFp8E4M3: return "fp8_e4m3";
        case MoeWeightType::kInt8: return "int8";
    }
    return "unknown";
}

const char* moe_fp8_mode_name(MoeFp8Mode m) {
    switch (m) {
        case MoeFp8Mode::kAuto: return "auto";
        case MoeFp8Mode::kDequantize: return "dequantize";
        case MoeFp8Mode::kFp8Activations: return "fp8_activations";
    }
    return "unknown";
}

Status run(const BlockQuantizeParams& p, cudaStream_t stream) {
    if (p.type != MoeWeightType::kFp8E4M3 && p.type != MoeWeightType::kInt8)
        return invalid_argument("block_quantize (CUDA): type must be fp8_e4m3 or int8, not ",
                                moe_weight_type_name(p.type));
    if (p.rows < 0 || p.cols < 0 || p.cols % 8 != 0)
        return invalid_argument("block_quantize (CUDA): need rows >= 0 and cols a multiple of 8 (", p.rows, " x ",
                                p.cols, ")");
    if (p.rows == 0 || p.cols == 0) return Status::ok();
    if (!p.in || !p.out || !p.scales) return invalid_argument("block_quantize (CUDA): in, out and scales must be set");
    if (!aligned16(p.in) || !aligned16(p.out))
        return invalid_argument("block_quantize (CUDA): in and out must be 16-byte aligned");
    const int64_t blocks = block_scale_count(p.rows, p.cols);
    if (blocks > 0x7fffffff) return invalid_argument("block_quantize (CUDA): matrix too large");
    auto kernel = p.type == MoeWeightType::kInt8 ? quantize_kernel<MoeWeightType::kInt8>
                                                 : quantize_kernel<MoeWeightType::kFp8E4M3>;
    kernel<<<static_cast<unsigned>(blocks), kQuantThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(p.in), p.rows,
                                                                        p.cols, static_cast<uint8_t*>(p.out),
                                                                        p.scales, p.given_scales);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

Status validate(const MoeExpertsParams& p) {
    if (p.num_tokens < 0 || p.hidden <= 0 || p.hidden % 8 != 0 || p.intermediate <= 0 || p.intermediate % 8 != 0 ||
        p.num_experts <= 0 || p.num_experts > kMaxExperts || p.top_k <= 0 || p.top_k > kMaxExperts)
        return invalid_argument("moe_experts (CUDA): bad sizes T=", p.num_tokens, " H=", p.hidden, " I=",
                                p.intermediate, " E=", p.num_experts, " k=", p.top_k,
                                " (H, I multiples of 8; E and k in 1..", kMaxExperts, ")");
    if (p.num_tokens == 0) return Status::ok();
    if (p.num_tokens * p.top_k >= 0x7fffffff) return invalid_argument("moe_experts (CUDA): too many tokens");
    if (!p.x || !p.expert_ids || !p.weights || !p.w1 || !p.w2 || !p.w3 || !p.out)
        return invalid_argument("moe_experts (CUDA): x, expert_ids, weights, w1, w2, w3 and out must be set");
    for (int e = 0; e < p.num_experts; ++e) {
        if (!p.w1[e] || !p.w2[e] || !p.w3[e]) return invalid_argument("moe_experts (CUDA): expert ", e, " has a null weight");
        if (!aligned16(p.w1[e]) || !aligned16(p.w2[e]) || !aligned16(p.w3[e]))
            return invalid_argument("moe_experts (CUDA): expert ", e, "'s weights must be 16-byte aligned");
    }
    if (!aligned16(p.x) || !aligned16(p.out) || p.x_stride % 8 != 0 || p.out_stride % 8 != 0 ||
        (p.num_tokens > 1 && (p.x_stride < p.hidden || p.out_stride < p.hidden)))
        return invalid_argument("moe_experts (CUDA): x and out 16-byte aligned, strides >= H and multiples of 8");
    if (p.weight_type != MoeWeightType::kBF16 && p.weight_type != MoeWeightType::kFp8E4M3 &&
        p.weight_type != MoeWeightType::kInt8)
        return invalid_argument("moe_experts (CUDA): unknown weight type ", static_cast<int>(p.weight_type));
    if (p.weight_type != MoeWeightType::kBF16) {
        const char* type = moe_weight_type_name(p.weight_type);
        if (!p.s1 || !p.s3 || !p.s2)
            return invalid_argument("moe_experts (CUDA): ", type, " weights need the scale arrays s1, s3 and s2");
        for (int e = 0; e < p.num_experts; ++e)
            if (!p.s1[e] || !p.s3[e] || !p.s2[e])
                return invalid_argument("moe_experts (CUDA): expert ", e, " has a null ", type, " scale pointer");
    }
    for (const auto& [mode, field] : {std::pair{p.fp8_prefill, "fp8_prefill"}, std::pair{p.fp8_decode, "fp8_decode"}}) {
        if (mode > MoeFp8Mode::kFp8Activations)
            return invalid_argument("moe_experts (CUDA): unknown ", field, " ", static_cast<int>(mode));
        if (mode != MoeFp8Mode::kFp8Activations) continue;
        if (p.weight_type != MoeWeightType::kFp8E4M3)
            return invalid_argument("moe_experts (CUDA): ", field, " = fp8_activations needs FP8 weights, not ",
                                    moe_weight_type_name(p.weight_type));
        if (!fp8_activations_fit(p))
            return invalid_argument("moe_experts (CUDA): ", field, " = fp8_activations needs a Hopper GPU (sm_90) and "
                                    "H and I multiples of 128 (H=", p.hidden, " I=", p.intermediate, ")");
    }
    if (p.decode_products > MoeDecodeProducts::kF16)
        return invalid_argument("moe_experts (CUDA): unknown decode_products ", static_cast<int>(p.decode_products));
    if (p.decode_kernel > MoeDecodeKernel::kTma)
        return invalid_argument("moe_experts (CUDA): unknown decode_kernel ", static_cast<int>(p.decode_kernel));
    if (p.path == MoePath::kGrouped && p.num_tokens > kMoeDecodeMaxTokens * 64)
        return invalid_argument("moe_experts (CUDA): the grouped path is meant for decode batches");
    return Status::ok();
}

size_t moe_workspace_bytes(const MoeExpertsParams& p) { return p.num_tokens > 0 ? layout(p).total : 0; }

Expected<int> moe_decode_split_parts(const MoeExpertsParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const size_t items = p.num_tokens > 0 ? layout(p).split_items : 0;  // 0: the split does not apply
    if (items == 0) return 1;
    VOLT_ASSIGN_OR_RETURN(const int sms, sm_count());
    return with_weight_kind(p.weight_type, uses_f16_products(p), [&](auto w, auto h) {
        return gated_split_parts<decltype(w)::value, decltype(h)::value>(static_cast<int64_t>(items), p.hidden, sms);
    });
}

bool moe_decode_uses_tma(const MoeExpertsParams& p) { return uses_decode_tma(p); }

size_t moe_side_stream_bytes(MoeWeightType type) {
    // FP8 experts' GEMM path takes FP8 activations by default; int8 dequantises.
    const int streams = default_gemm_streams(type == MoeWeightType::kFp8E4M3 ? GemmKind::kFp8
                                             : type == MoeWeightType::kInt8  ? GemmKind::kDequantized
                                                                             : GemmKind::kBf16);
    return streams > 1 ? streams * kGemmPlanWorkspaceBytes : 0;  // one stream: the caller's own, no side stream
}

Status run(const MoeExpertsParams& p, cudaStream_t stream) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.num_tokens == 0) return Status::ok();
    const Layout L = layout(p);
    if (!p.workspace || p.workspace_bytes < L.total || !aligned16(p.workspace))
        return invalid_argument("moe_experts (CUDA): a 16-byte aligned workspace of ", L.total,
                                " bytes is needed (moe_workspace_bytes)");
    char* ws = static_cast<char*>(p.workspace);
    auto* offsets = reinterpret_cast<int32_t*>(ws + L.offsets);
    auto* perm = reinterpret_cast<int32_t*>(ws + L.perm);
    auto* inv = reinterpret_cast<int32_t*>(ws + L.inv);
    auto* y = reinterpret_cast<__nv_bfloat16*>(ws + L.y);
    const int64_t n = p.num_tokens * p.top_k;
    const int E = p.num_experts;
    const int64_t H = p.hidden, I = p.intermediate;
    const auto* x = static_cast<const __nv_bfloat16*>(p.x);

    // The grouped path's f16 products: permute_kernel's CTAs 1 .. T also make x's rows f16 (GemvArgs::in_h).
    const bool x_f16 = !use_gemm(p) && uses_f16_products(p);
    auto* split_count = L.split_items ? reinterpret_cast<int32_t*>(ws + L.split_count) : nullptr;
    auto* x_h = x_f16 ? reinterpret_cast<__half*>(ws + L.xh) : nullptr;
    auto* x_inv = x_f16 ? reinterpret_cast<float*>(ws + L.xinv) : nullptr;
    VOLT_RETURN_IF_ERROR(launch_dependent(permute_kernel, dim3(static_cast<unsigned>(x_f16 ? 1 + p.num_tokens : 1)),
                                          dim3(kPermThreads), 0, stream, p.expert_ids, n, E, offsets, perm, inv,
                                          split_count, static_cast<int64_t>(L.split_items), x, p.x_stride, H, x_h,
                                          x_inv));

    if (!use_gemm(p)) {
        auto* h = reinterpret_cast<__nv_bfloat16*>(ws + L.b);
        VOLT_ASSIGN_OR_RETURN(const int sms, sm_count());
        const bool quant = p.weight_type != MoeWeightType::kBF16;
        const bool fp8_act = uses_fp8_activations(p), half = uses_f16_products(p), tma = uses_decode_tma(p);
        // With few work items (few touched experts) the variant with twice the loads in flight per lane, since
        // fewer warps then carry the copy.
        const int64_t touched_max = std::min<int64_t>(E, n);
        const bool few = gemv_items(touched_max, std::max(H, I)) < int64_t{sms} * 16;
        GemvArgs g{};
        // One grouped GEMV (gated: w1/w3; else w2) for the run's weight type.
        auto gemv = [&](auto gated, bool few) -> Status {
            constexpr bool kGated = decltype(gated)::value;
            if (tma) return launch_gemv_tma(g, kGated, p.weight_type, stream);
            if (fp8_act) return launch_gemv<kGated, MoeWeightType::kFp8E4M3, true>(g, few, touched_max, sms, stream);
            return with_weight_kind(p.weight_type, half, [&](auto w, auto h) {
                return launch_gemv<kGated, decltype(w)::value, false, decltype(h)::value>(g, few, touched_max, sms,
                                                                                          stream);
            });
        };
        for (int e = 0; e < E; ++e) {
            g.w_a[e] = p.w1[e];
            g.w_b[e] = p.w3[e];
            g.s_a[e] = quant ? p.s1[e] : nullptr;
            g.s_b[e] = quant ? p.s3[e] : nullptr;
        }
        g.in = x;
        g.in_stride = p.x_stride;
        g.perm = perm;
        g.offsets = offsets;
        g.k = p.top_k;
        g.E = E;
        g.rows_out = I;
        g.K = H;
        g.out = h;
        g.out_stride = I;
        g.split_count = split_count;
        g.split_partials = L.split_items ? reinterpret_cast<float*>(ws + L.split_partials) : nullptr;
        g.split_tokens = static_cast<int64_t>(L.split_tokens);
        g.in_h = x_h;  // f16 products: x's rows from permute_kernel, then h's (below)
        g.in_inv = x_inv;
        // FP8 activations: x (gathered) and then h as e4m3 rows from the experts' padded slots, with their scales.
        auto quantize_rows = [&](const __nv_bfloat16* src, int64_t stride, int64_t width, const int32_t* rows_perm,
                                 size_t q_at, size_t s_at) -> Status {
            quantize_activations_kernel<false><<<ew_grid(n * (width / kBlk) * 32), 256, 0, stream>>>(
                src, stride, width, rows_perm, p.top_k, offsets, E, 0, -1, reinterpret_cast<uint8_t*>(ws + q_at),
                reinterpret_cast<float*>(ws + s_at));
            g.in_q = reinterpret_cast<const uint8_t*>(ws + q_at);
            g.in_scales = reinterpret_cast<const float*>(ws + s_at);
            return VOLT_CUDA_STATUS(cudaGetLastError());
        };
        if (fp8_act) VOLT_RETURN_IF_ERROR(quantize_rows(x, p.x_stride, H, perm, L.a, L.xs));
        VOLT_RETURN_IF_ERROR(gemv(std::true_type{}, few));
        if (fp8_act) VOLT_RETURN_IF_ERROR(quantize_rows(h, I, I, nullptr, L.hq, L.hs));
        if (half) {  // f16 products: h's rows as scaled f16 rows
            auto* hh = reinterpret_cast<__half*>(ws + L.hh);
            auto* hinv = reinterpret_cast<float*>(ws + L.hinv);
            VOLT_RETURN_IF_ERROR(launch_dependent(rows_to_f16_kernel, dim3(static_cast<unsigned>(n)),
                                                  dim3(kRowsToF16Threads), 0, stream, h, I, I, hh, hinv, nullptr, 1,
                                                  nullptr, false));
            g.in_h = hh;
            g.in_inv = hinv;
        }
        for (int e = 0; e < E; ++e) {
            g.w_a[e] = p.w2[e];
            g.w_b[e] = nullptr;
            g.s_a[e] = quant ? p.s2[e] : nullptr;
            g.s_b[e] = nullptr;
        }
        g.in = h;
        g.in_stride = I;
        g.rows_out = H;
        g.K = I;
        g.out = y;
        g.out_stride = H;
        VOLT_RETURN_IF_ERROR(gemv(std::false_type{}, few));
    } else {
        auto* xp = reinterpret_cast<__nv_bfloat16*>(ws + L.a);
        auto* gu = reinterpret_cast<__nv_bfloat16*>(ws + L.b);
        const bool fp8_act = uses_fp8_activations(p);
        // The products the own grouped GEMM takes (asked with T k rows, the most the offsets can give) decide the
        // gather's form: with quantised weights its up product takes the rows as scaled f16 (GroupedGemmArgs::x_inv).
        const bool quant = p.weight_type != MoeWeightType::kBF16;
        auto* x_inv = reinterpret_cast<float*>(ws + L.ginv);
        const OwnProducts own = fp8_act ? OwnProducts{}
                                        : own_products(p, own_up_args(p, xp, x_inv, n, offsets, gu),
                                                       own_down_args(p, gu, n, offsets, y));
        const bool f16_up = own.up && quant;
        if (fp8_act) {
            quantize_activations_kernel<false><<<ew_grid(n * (H / kBlk) * 32), 256, 0, stream>>>(
                x, p.x_stride, H, perm, p.top_k, offsets, E, 0, -1, reinterpret_cast<uint8_t*>(ws + L.a),
                reinterpret_cast<float*>(ws + L.xs));
            VOLT_CUDA_CHECK_LAUNCH();
            pad_positions_kernel<<<ew_grid(n), 256, 0, stream>>>(inv, n, offsets, E);  // the combine reads padded rows
        } else if (f16_up) {
            rows_to_f16_kernel<<<static_cast<unsigned>(std::max<int64_t>(n, 1)), kRowsToF16Threads, 0, stream>>>(
                x, p.x_stride, H, reinterpret_cast<__half*>(xp), x_inv, perm, p.top_k, offsets + E, true);
        } else {
            gather_kernel<<<ew_grid(n * (H / 8)), 256, 0, stream>>>(x, p.x_stride, perm, offsets, E, p.top_k, H / 8,
                                                                   xp);
        }
        VOLT_CUDA_CHECK_LAUNCH();
        // The per-expert row counts decide the GEMM shapes: read them back (pinned, per thread, grown as needed).
        thread_local std::unique_ptr<int32_t, decltype(&cudaFreeHost)> host_off(nullptr, cudaFreeHost);
        thread_local int host_cap = 0;
        if (host_cap < E + 1) {
            int32_t* ptr = nullptr;
            VOLT_CUDA_RETURN_IF_ERROR(cudaMallocHost(&ptr, (E + 1) * sizeof(int32_t)));
            host_off.reset(ptr);
            host_cap = E + 1;
        }
        VOLT_CUDA_RETURN_IF_ERROR(
            cudaMemcpyAsync(host_off.get(), offsets, (E + 1) * sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
        VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
        const int32_t* off = host_off.get();
        const int64_t rows = off[E];
        // C[c, n] = A[c, k] W^T for one expert's rows (W a Linear weight [n, k]).
        auto expert_gemm = [&](int64_t c, int64_t n, int64_t k, const void* a, int64_t lda, const void* w,
                                void* out, int64_t ldc, cudaStream_t st) {
            GemmParams gp;
            gp.m = c, gp.n = n, gp.k = k, gp.a = a, gp.lda = lda, gp.b = w, gp.ldb = k, gp.c = out, gp.ldc = ldc;
            return run(gp, st);
        };
        if (fp8_act) {
            VOLT_RETURN_IF_ERROR(run_fp8_activations(p, L, ws, off, gemm_stream_count(p, GemmKind::kFp8), stream));
            return combine(p, L, ws, stream);
        }
        // Quantised: each touched expert's weights dequantised to bf16 here first ([w1; w3] as one [2I, H] block,
        // then w2), into its stream's own workspace copy (stream order keeps it until that stream's GEMM has run).
        const int streams = gemm_stream_count(p, quant ? GemmKind::kDequantized : GemmKind::kBf16);
        auto wdq = [&](int slot) { return reinterpret_cast<__nv_bfloat16*>(ws + L.wdq + slot * L.wdq_stride); };
        auto dequantize = [&](const void* q, const float* scales, int64_t r, int64_t cols, __nv_bfloat16* out,
                              cudaStream_t st) {
            auto kernel = p.weight_type == MoeWeightType::kInt8 ? dequantize_kernel<MoeWeightType::kInt8>
                                                                : dequantize_kernel<MoeWeightType::kFp8E4M3>;
            kernel<<<ew_grid(r * cols / 8), 256, 0, st>>>(static_cast<const uint8_t*>(q), scales, r, cols, out);
            return VOLT_CUDA_STATUS(cudaGetLastError());
        };
        // The own grouped GEMM (Hopper; bf16 experts, or quantised ones widened inside it) in place of the products it
        // takes: [w1; w3] with the SwiGLU in its epilogue, h written where the SwiGLU pass writes it (the first I
        // columns of gu's rows), and w2.
        moe_gemm::GroupedGemmArgs up = own_up_args(p, xp, x_inv, rows, offsets, gu);
        const moe_gemm::GroupedGemmArgs down = own_down_args(p, gu, rows, offsets, y);
        const bool own_up = own.up, own_down = own.down;
        up.out_fragment_order = quant && own_down;  // h in the k order the quantised down product takes it
        if (quant && !own_down && L.wdq_stride == 0)  // layout() asked own_products the same question
            return internal_error("moe_experts (CUDA): the workspace has no room to dequantise experts");
        if (own_up) {
            VOLT_RETURN_IF_ERROR(moe_gemm::run_grouped_gemm(up, off, stream));
        } else {
            auto w13 = [&](int e, cudaStream_t st, int slot) -> Status {
                const int64_t c = off[e + 1] - off[e];
                const __nv_bfloat16* xe = xp + off[e] * H;
                __nv_bfloat16* ge = gu + off[e] * 2 * I;
                if (quant) {
                    VOLT_RETURN_IF_ERROR(dequantize(p.w1[e], p.s1[e], I, H, wdq(slot), st));
                    VOLT_RETURN_IF_ERROR(dequantize(p.w3[e], p.s3[e], I, H, wdq(slot) + I * H, st));
                    return expert_gemm(c, 2 * I, H, xe, H, wdq(slot), ge, 2 * I, st);
                }
                if (p.w3[e] == static_cast<const __nv_bfloat16*>(p.w1[e]) + I * H) {
                    // w3 right after w1 (one [2I, H] allocation per expert): one GEMM of N = 2I writes both halves.
                    return expert_gemm(c, 2 * I, H, xe, H, p.w1[e], ge, 2 * I, st);
                }
                VOLT_RETURN_IF_ERROR(expert_gemm(c, I, H, xe, H, p.w1[e], ge, 2 * I, st));
                return expert_gemm(c, I, H, xe, H, p.w3[e], ge + I, 2 * I, st);
            };
            VOLT_RETURN_IF_ERROR(for_each_expert(off, E, streams, stream, w13));
            VOLT_RETURN_IF_ERROR(run(SwigluParams{.rows = rows, .width = I, .gate = gu, .gate_stride = 2 * I,
                                                  .up = gu + I, .up_stride = 2 * I, .out = gu, .out_stride = 2 * I},
                                     stream));
        }
        if (own_down) {
            VOLT_RETURN_IF_ERROR(moe_gemm::run_grouped_gemm(down, off, stream));
        } else {
            auto w2 = [&](int e, cudaStream_t st, int slot) -> Status {
                const void* w = p.w2[e];
                if (quant) {
                    VOLT_RETURN_IF_ERROR(dequantize(p.w2[e], p.s2[e], H, I, wdq(slot), st));
                    w = wdq(slot);
                }
                return expert_gemm(off[e + 1] - off[e], H, I, gu + off[e] * 2 * I, 2 * I, w, y + off[e] * H, H, st);
            };
            VOLT_RETURN_IF_ERROR(for_each_expert(off, E, streams, stream, w2));
        }
    }
    return combine(p, L, ws, stream);
}

}  // namespace volt::cuda
