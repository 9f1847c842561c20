// CUDA lightning attention (kernels/lightning_attention.h): prefill, decode and the RMSNorm + sigmoid-gate epilogue.
// Exact MiniMax math (no 1/sqrt(d) scale, decay lambda_h = exp(-slope_h)), bf16 I/O, fp32 state.
//
// Prefill (one CTA per (value-column slice, head, sequence), 8 warps, chunks of C = 64 tokens):
//   The CTA walks its sequence chunk by chunk keeping its slice of the state S[128 x 64] in fp32 registers (the
//   accumulators of the update), so q, k, v are read once and o written once. Warpgroup 0 produces the outputs of
//   chunk c, warpgroup 1 advances the state; both read only S_{c-1}, so they overlap:
//     inter  O  = diag(lambda^{i+1}) Q S_prev                      (S_prev as bf16 in smem)
//     intra  O += (Q K^T . lambda^{i-j} [j <= i]) V                (P kept in registers, FlashAttention-2 style)
//     update S  = lambda^m S + (diag(lambda^{m-1-j}) K)^T V         (decayed K split into bf16 hi + lo: exact to
//                                                                  ~2^-17 so the fp32 state keeps ~1e-5 accuracy)
//   The chunk of 64 keeps the FLOPs near the byte floor: per token and head 4*C*D (intra) + 4*D*D (inter + update).
//   The two value slices of a head run as a 2-CTA cluster, so their second read of q and k is served from L2.
//   Loads are cp.async 16 B into a 3-stage swizzled ring; outputs are staged through shared memory for 16-byte
//   coalesced stores. Two kernels: prefill_wgmma_kernel (default; wgmma m64n64k16, 128-byte-swizzled tiles) and
//   prefill_kernel (mma.sync m16n8k16, the portable baseline, VOLT_LIGHTNING_PREFILL=mma_sync).
//   When these CTAs cannot fill the GPU (few heads per GPU), sequences are cut into context-parallel segments:
//   a state-only pass, a prefix combine of the segment states, then all segments at once (needs a workspace).
//   Numbers, versions and what limits them: bench/lightning_notes.md.
//
// Decode (one CTA per (value slice, head, sequence)): S = lambda S + k^T v, o = q S over the fp32 state slice with
//   16-byte streaming loads/stores, all of a thread's loads in flight before the first use.
//
// Norm + gate (one CTA per token): fp32 sum of squares over all H*D channels, 16-byte vector I/O.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/lightning_prefill.cuh"
#include "kernels/lightning_attention.h"
#include "sdk/cuda_check.h"
#include "sdk/env.h"

namespace volt::cuda {
namespace {

using namespace lightning;

constexpr int kWarps = 8;  // 4 output warps + 4 state warps
constexpr int kThreads = kWarps * 32;
constexpr int kStages = 3;

constexpr int kStageBytes = kQBytes + kKBytes + kVBytes;
constexpr int kSmemBytes = kStages * kStageBytes + 2 * kSBytes + kOBytes;  // 160 KiB

// Issues the cp.async loads of chunk rows [c0, c0 + m) of one (sequence, head, slice) into stage `st`; rows >= m are
// zero-filled so that padded rows contribute exactly nothing (0 * anything finite).
__device__ __forceinline__ void load_chunk(const PrefillArgs& a, char* smem, int st, int64_t tok0, int m, int h,
                                           int slice, int tid) {
    char* sq = smem + st * kStageBytes;
    char* sk = sq + kQBytes;
    char* sv = sk + kKBytes;
#pragma unroll
    for (int it = 0; it < (kC * kD / 8) / kThreads; ++it) {  // 8 chunks of Q and of K per thread
        const int idx = it * kThreads + tid;
        const int row = idx >> 4, ch = idx & 15;
        const bool in = row < m;
        const int64_t t = tok0 + (in ? row : 0);
        cp_async16(smem_u32(sq + swz<16>(row, ch * 8)), a.q + t * a.q_st + h * a.q_sh + ch * 8, in ? 16 : 0);
        cp_async16(smem_u32(sk + swz<16>(row, ch * 8)), a.k + t * a.k_st + h * a.k_sh + ch * 8, in ? 16 : 0);
    }
#pragma unroll
    for (int it = 0; it < (kC * kDVS / 8) / kThreads; ++it) {  // 4 chunks of the V slice per thread
        const int idx = it * kThreads + tid;
        const int row = idx >> 3, ch = idx & 7;
        const bool in = row < m;
        const int64_t t = tok0 + (in ? row : 0);
        cp_async16(smem_u32(sv + swz<8>(row, ch * 8)), a.v + t * a.v_st + h * a.v_sh + slice * kDVS + ch * 8,
                   in ? 16 : 0);
    }
}

// The SiLU of the chunks this thread loaded (run after its cp.async group completed, before the CTA barrier).
__device__ __forceinline__ void silu_own_chunks(char* smem, int st, int tid) {
    char* sq = smem + st * kStageBytes;
    char* sk = sq + kQBytes;
    char* sv = sk + kKBytes;
#pragma unroll
    for (int it = 0; it < (kC * kD / 8) / kThreads; ++it) {
        const int idx = it * kThreads + tid;
        const int row = idx >> 4, ch = idx & 15;
        silu_chunk(sq + swz<16>(row, ch * 8));
        silu_chunk(sk + swz<16>(row, ch * 8));
    }
#pragma unroll
    for (int it = 0; it < (kC * kDVS / 8) / kThreads; ++it) {
        const int idx = it * kThreads + tid;
        silu_chunk(sv + swz<8>(idx >> 3, (idx & 7) * 8));
    }
}

// Warp roles (one CTA barrier per chunk): warps 0-3 produce the outputs of chunk c from S_{c-1}, warps 4-7 advance
// the state to S_c from the same S_{c-1}; both need only S_{c-1}, so they run concurrently, and the bf16 copy of S_c
// goes to the other half of a double buffer that the output warps read in chunk c+1.
__global__ void __launch_bounds__(kThreads, 1) prefill_kernel(const PrefillArgs a) {
    extern __shared__ __align__(128) char smem[];
    char* s_state = smem + kStages * kStageBytes;  // 2 x [128 d_k][64 d_v] bf16
    char* s_out = s_state + 2 * kSBytes;           // [64 rows][64 d_v] bf16

    const int slice = blockIdx.x, h = blockIdx.y, n = blockIdx.z;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t4 = lane & 3;
    const bool output_role = warp < kWarps / 2;
    const int rw = output_role ? warp : warp - kWarps / 2;  // warp index within its role
    const int64_t tok_begin = a.cu_seqlens ? a.cu_seqlens[n] : 0;
    const int64_t len = a.cu_seqlens ? a.cu_seqlens[n + 1] - tok_begin : a.num_tokens;
    const int64_t slot = a.state_slots ? a.state_slots[n] : n;
    const float slope = a.slope[h];
    const float nl2 = -slope * kLog2e;  // lambda^x = exp2(nl2 * x)

    // State warps: sacc[mt][nt] covers d_k rows 32 rw + 16 mt + {g, g+8}, d_v cols 8 nt + 2 t4 + {0,1} of the slice.
    float sacc[2][8][4];
    const size_t state_off = (static_cast<size_t>(slot) * a.num_heads + h) * kD * kD + slice * kDVS;
    if (!output_role) {
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int nt = 0; nt < 8; ++nt)
#pragma unroll
                for (int hf = 0; hf < 2; ++hf) {
                    const int r = 32 * rw + 16 * mt + g + 8 * hf, c = 8 * nt + 2 * t4;
                    float2 v2 = make_float2(0.0f, 0.0f);
                    if (a.state_in) v2 = *reinterpret_cast<const float2*>(a.state_in + state_off + r * kD + c);
                    sacc[mt][nt][2 * hf] = v2.x;
                    sacc[mt][nt][2 * hf + 1] = v2.y;
                    *reinterpret_cast<uint32_t*>(s_state + swz<8>(r, c)) = pack_bf16(v2.x, v2.y);
                }
    }

    const int nchunks = static_cast<int>((len + kC - 1) / kC);
    // Prologue: chunks 0 .. kStages-2 in flight. One commit group per chunk (possibly empty) keeps the counting exact.
#pragma unroll
    for (int c = 0; c < kStages - 1; ++c) {
        if (c < nchunks) load_chunk(a, smem, c, tok_begin + int64_t{c} * kC, chunk_rows(len, c), h, slice, tid);
        cp_async_commit();
    }

    for (int c = 0; c < nchunks; ++c) {
        const int st = c % kStages;
        const int m = chunk_rows(len, c);
        cp_async_wait<kStages - 2>();
        if (a.silu) silu_own_chunks(smem, st, tid);
        __syncthreads();  // chunk c and S_{c-1} visible to all; every warp is done with chunk c-1's stage and buffer
        {
            const int cn = c + kStages - 1;
            if (cn < nchunks) load_chunk(a, smem, cn % kStages, tok_begin + int64_t{cn} * kC, chunk_rows(len, cn), h,
                                         slice, tid);
            cp_async_commit();
        }
        const char* sq = smem + st * kStageBytes;
        const char* sk = sq + kQBytes;
        const char* sv = sk + kKBytes;

        if (output_role) {
            const char* s_prev = s_state + (c & 1) * kSBytes;
            // ---- inter: O = Q_w S_prev (16 x 64), Q fragments kept for the intra product ----------------------------
            uint32_t qa[8][4];
            float oacc[8][4];
#pragma unroll
            for (int nt = 0; nt < 8; ++nt) oacc[nt][0] = oacc[nt][1] = oacc[nt][2] = oacc[nt][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < 8; ++kk) {
                const int arow = 16 * rw + (lane & 7) + 8 * ((lane >> 3) & 1);
                const int acol = 16 * kk + 8 * (lane >> 4);
                ldsm_x4(smem_u32(sq + swz<16>(arow, acol)), qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3]);
#pragma unroll
                for (int np = 0; np < 4; ++np) {
                    const int krow = 16 * kk + (lane & 7) + 8 * ((lane >> 3) & 1);
                    const int ncol = 16 * np + 8 * (lane >> 4);
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4_t(smem_u32(s_prev + swz<8>(krow, ncol)), b0, b1, b2, b3);
                    mma_bf16(oacc[2 * np], qa[kk], b0, b1);
                    mma_bf16(oacc[2 * np + 1], qa[kk], b2, b3);
                }
            }
            const int row0 = 16 * rw + g;  // chunk-local rows row0 and row0 + 8 of this thread
            {
                const float f0 = exp2f(nl2 * static_cast<float>(row0 + 1));
                const float f1 = exp2f(nl2 * static_cast<float>(row0 + 9));
#pragma unroll
                for (int nt = 0; nt < 8; ++nt) {
                    oacc[nt][0] *= f0;
                    oacc[nt][1] *= f0;
                    oacc[nt][2] *= f1;
                    oacc[nt][3] *= f1;
                }
            }
            // ---- intra: P = Q_w K^T over key columns j < 16(rw+1), decayed and causally masked ----------------------
            float pacc[8][4];
#pragma unroll
            for (int nt = 0; nt < 8; ++nt) pacc[nt][0] = pacc[nt][1] = pacc[nt][2] = pacc[nt][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < 8; ++kk) {
#pragma unroll
                for (int np = 0; np < 4; ++np) {
                    if (np > rw) continue;  // key tiles entirely above the diagonal of this warp's rows
                    const int nrow = 16 * np + (lane & 7) + 8 * (lane >> 4);
                    const int kcol = 16 * kk + 8 * ((lane >> 3) & 1);
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4(smem_u32(sk + swz<16>(nrow, kcol)), b0, b1, b2, b3);
                    mma_bf16(pacc[2 * np], qa[kk], b0, b1);
                    mma_bf16(pacc[2 * np + 1], qa[kk], b2, b3);
                }
            }
            uint32_t pa[4][4];  // P as bf16 A fragments of the P V product (k = key index)
#pragma unroll
            for (int nt = 0; nt < 8; ++nt) {
                float w[4];
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int i = row0 + 8 * (e >> 1);
                    const int j = 8 * nt + 2 * t4 + (e & 1);
                    w[e] = j <= i ? pacc[nt][e] * exp2f(nl2 * static_cast<float>(i - j)) : 0.0f;
                }
                pa[nt >> 1][(nt & 1) * 2 + 0] = pack_bf16(w[0], w[1]);
                pa[nt >> 1][(nt & 1) * 2 + 1] = pack_bf16(w[2], w[3]);
            }
#pragma unroll
            for (int kk = 0; kk < 4; ++kk) {
                if (kk > rw) continue;
#pragma unroll
                for (int np = 0; np < 4; ++np) {
                    const int krow = 16 * kk + (lane & 7) + 8 * ((lane >> 3) & 1);
                    const int ncol = 16 * np + 8 * (lane >> 4);
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4_t(smem_u32(sv + swz<8>(krow, ncol)), b0, b1, b2, b3);
                    mma_bf16(oacc[2 * np], pa[kk], b0, b1);
                    mma_bf16(oacc[2 * np + 1], pa[kk], b2, b3);
                }
            }
            // ---- output: the warp's 16 rows staged in shared memory, then 16-byte coalesced stores ------------------
            // (oacc[nt][e] is the m64n64 fragment layout store_rows_bf16 takes, flattened: row g + 8 (e >> 1), column
            // 8 nt + 2 t4 + (e & 1) of the warp's rows.)
            const int64_t tok0 = tok_begin + int64_t{c} * kC;
            store_rows_bf16(s_out, reinterpret_cast<const float(&)[32]>(oacc), rw, g, t4, lane, m,
                            a.o + tok0 * a.o_st + h * a.o_sh + slice * kDVS, a.o_st);
        } else {
            char* s_next = s_state + ((c + 1) & 1) * kSBytes;
            // ---- update: S = lambda^m S + (diag(lambda^{m-1-j}) K)^T V, decayed K as bf16 hi + lo ------------------
            {
                // lambda^m S as S - mu S, mu = -expm1(-slope m): no bias from rounding lambda^m near 1 (see decode).
                const float mu = -expm1f(-slope * static_cast<float>(m));
#pragma unroll
                for (int mt = 0; mt < 2; ++mt)
#pragma unroll
                    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
                        for (int e = 0; e < 4; ++e) sacc[mt][nt][e] = fmaf(-mu, sacc[mt][nt][e], sacc[mt][nt][e]);
            }
#pragma unroll
            for (int kk = 0; kk < 4; ++kk) {
                // Key indices of this thread's A-fragment elements: j0 + {0,1} (regs 0,1) and j0 + 8 + {0,1} (2,3).
                const int j0 = 16 * kk + 2 * t4;
                float kd[4];
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int j = j0 + (e & 1) + 8 * (e >> 1);
                    kd[e] = j < m ? exp2f(nl2 * static_cast<float>(m - 1 - j)) : 0.0f;
                }
                uint32_t ahi[2][4], alo[2][4];
#pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                    const int krow = 16 * kk + (lane & 7) + 8 * (lane >> 4);
                    const int mcol = 32 * rw + 16 * mt + 8 * ((lane >> 3) & 1);
                    uint32_t r[4];
                    ldsm_x4_t(smem_u32(sk + swz<16>(krow, mcol)), r[0], r[1], r[2], r[3]);
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const float2 f = unpack_bf16(r[e]);
                        const float d0 = kd[(e >> 1) * 2], d1 = kd[(e >> 1) * 2 + 1];
                        split_bf16_hi_lo(f.x * d0, f.y * d1, ahi[mt][e], alo[mt][e]);
                    }
                }
#pragma unroll
                for (int np = 0; np < 4; ++np) {
                    const int krow = 16 * kk + (lane & 7) + 8 * ((lane >> 3) & 1);
                    const int ncol = 16 * np + 8 * (lane >> 4);
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4_t(smem_u32(sv + swz<8>(krow, ncol)), b0, b1, b2, b3);
#pragma unroll
                    for (int mt = 0; mt < 2; ++mt) {
                        mma_bf16(sacc[mt][2 * np], ahi[mt], b0, b1);
                        mma_bf16(sacc[mt][2 * np], alo[mt], b0, b1);
                        mma_bf16(sacc[mt][2 * np + 1], ahi[mt], b2, b3);
                        mma_bf16(sacc[mt][2 * np + 1], alo[mt], b2, b3);
                    }
                }
            }
            // bf16 copy of S_c for the output warps' next chunk (the buffer they are not reading now).
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
#pragma unroll
                for (int nt = 0; nt < 8; ++nt) {
                    const int r = 32 * rw + 16 * mt + g, col = 8 * nt + 2 * t4;
                    *reinterpret_cast<uint32_t*>(s_next + swz<8>(r, col)) =
                        pack_bf16(sacc[mt][nt][0], sacc[mt][nt][1]);
                    *reinterpret_cast<uint32_t*>(s_next + swz<8>(r + 8, col)) =
                        pack_bf16(sacc[mt][nt][2], sacc[mt][nt][3]);
                }
        }
    }
    cp_async_wait<0>();

    if (!output_role && a.state_out) {
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int nt = 0; nt < 8; ++nt)
#pragma unroll
                for (int hf = 0; hf < 2; ++hf) {
                    const int r = 32 * rw + 16 * mt + g + 8 * hf, col = 8 * nt + 2 * t4;
                    *reinterpret_cast<float2*>(a.state_out + state_off + r * kD + col) =
                        make_float2(sacc[mt][nt][2 * hf], sacc[mt][nt][2 * hf + 1]);
                }
    }
}

// ---- prefill on wgmma (sm_90a) --------------------------------------------------------------------------------------
// Same algorithm and warp roles as prefill_kernel, with the four products on warpgroup MMAs: warpgroup 0 (output)
// issues O = Q S_prev and P = Q K^T (8 + 8 wgmma m64n64k16, A = Q fragments from ldmatrix, B = S_prev / K from
// shared memory), then O += P V (4 wgmma, A = the masked P in registers); warpgroup 1 (state) issues
// S += Kd_hi^T V + Kd_lo^T V (2 x 2 x 4 wgmma). Shared tiles use the canonical 128-byte-swizzled layout: rows of
// 128 B (64 bf16) in 1 KiB atoms of 8 rows, 16-byte chunk index XOR row % 8; 128-wide tiles are two such column
// blocks. Every tile starts 1 KiB-aligned.
constexpr int kWgStages = 3;  // 4 stages measured 5% slower at T = 128K (bench/lightning_notes.md)
constexpr int kWgSmemBytes = kWgStages * kWgStageBytes + 2 * kSBytes + kOBytes + 1024;  // + alignment slack

// Per-thread cp.async plan of the wgmma kernel: with 256 threads each thread always copies the same 16-byte column
// chunk (tid & 15 of Q/K rows, tid & 7 of V rows) of rows tid / 16 + 16 it (Q, K) and tid / 8 + 32 it (V), so the
// global addresses are a fixed per-thread base plus the chunk's token offset.
struct WgLoadPlan {
    const __nv_bfloat16* q;  // row (tid >> 4) of the sequence, this thread's column chunk
    const __nv_bfloat16* k;
    const __nv_bfloat16* v;
    int64_t q_st, k_st, v_st;
    int qk_row, v_row;  // first row of this thread
};

template <bool kWithQ>
__device__ __forceinline__ void wg_load_chunk(const WgLoadPlan& lp, char* tiles, int st, int c, int m) {
    char* sq = tiles + st * kWgStageBytes;
    char* sk = sq + kQBytes;
    char* sv = sk + kKBytes;
    const int64_t t0 = int64_t{c} * kC;
    const int qch = (threadIdx.x & 15) * 8, vch = (threadIdx.x & 7) * 8;
#pragma unroll
    for (int it = 0; it < (kC * kD / 8) / kThreads; ++it) {
        const int row = lp.qk_row + 16 * it;
        const bool in = row < m;
        const int64_t t = t0 + (in ? row : 0);
        if constexpr (kWithQ) cp_async16(smem_u32(sq + swz128<kC>(row, qch)), lp.q + t * lp.q_st, in ? 16 : 0);
        cp_async16(smem_u32(sk + swz128<kC>(row, qch)), lp.k + t * lp.k_st, in ? 16 : 0);
    }
#pragma unroll
    for (int it = 0; it < (kC * kDVS / 8) / kThreads; ++it) {
        const int row = lp.v_row + 32 * it;
        const bool in = row < m;
        const int64_t t = t0 + (in ? row : 0);
        cp_async16(smem_u32(sv + swz128<kC>(row, vch)), lp.v + t * lp.v_st, in ? 16 : 0);
    }
}

template <bool kWithQ>
__device__ __forceinline__ void wg_silu_own_chunks(char* tiles, int st, int tid) {
    char* sq = tiles + st * kWgStageBytes;
    char* sk = sq + kQBytes;
    char* sv = sk + kKBytes;
#pragma unroll
    for (int it = 0; it < (kC * kD / 8) / kThreads; ++it) {
        const int idx = it * kThreads + tid;
        const int row = idx >> 4, ch = idx & 15;
        if constexpr (kWithQ) silu_chunk(sq + swz128<kC>(row, ch * 8));
        silu_chunk(sk + swz128<kC>(row, ch * 8));
    }
#pragma unroll
    for (int it = 0; it < (kC * kDVS / 8) / kThreads; ++it) {
        const int idx = it * kThreads + tid;
        silu_chunk(sv + swz128<kC>(idx >> 3, (idx & 7) * 8));
    }
}

// kStateOnly: the context-parallel first pass: only each segment's end state from a zero start (no Q, no outputs).
template <bool kStateOnly>
__global__ void __launch_bounds__(kThreads, 1) prefill_wgmma_kernel(const PrefillArgs a) {
    extern __shared__ __align__(1024) char smem_raw[];
    // Dynamic shared memory is not promised 1 KiB alignment: round the tile base up (slack is allocated).
    char* tiles = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    char* s_state = tiles + kWgStages * kWgStageBytes;  // 2 x [128 d_k][64 d_v] bf16, swizzled 128-byte rows
    char* s_out = s_state + 2 * kSBytes;              // [64 rows][64 d_v] bf16

    const int slice = blockIdx.x, h = blockIdx.y, n = blockIdx.z / a.segs, seg = blockIdx.z % a.segs;
    if (kStateOnly && seg == a.segs - 1) return;  // the last segment's end state is the combine's business
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t4 = lane & 3;
    // Warpgroup index through a shuffle so the compiler sees it warp-uniform (else it serialises the wgmma ops).
    const bool output_role = __shfl_sync(0xffffffffu, tid / 128, 0) == 0;
    const int rw = warp & 3;  // warp index within its warpgroup
    int64_t tok_begin, len;
    segment_range(a, n, seg, tok_begin, len);
    const float slope = a.slope[h];
    const float nl2 = -slope * kLog2e;
    const float* st_in;
    float* st_out;
    state_slice_ptrs<kStateOnly>(a, n, seg, h, slice, st_in, st_out);

    // State warpgroup: the slice in registers (lightning_prefill.cuh) and its bf16 copy for the output warps.
    float sacc[2][32];
    if (!output_role) {
        load_state_slice(st_in, sacc, s_state, rw, g, t4);
        fence_proxy_async();
    }

    // Chunk-invariant decay factors (output_decay_table, state_decay_table).
    const int row0 = 16 * rw + g;  // output warps: chunk-local rows row0 and row0 + 8 of this thread
    float dec[32], f0, f1;
    StateDecay kd_table;
    output_decay_table(nl2, row0, t4, dec, f0, f1);
    state_decay_table(nl2, t4, kd_table);

    const int nchunks = static_cast<int>((len + kC - 1) / kC);
    WgLoadPlan lp;
    lp.q = a.q + tok_begin * a.q_st + h * a.q_sh + (tid & 15) * 8;
    lp.k = a.k + tok_begin * a.k_st + h * a.k_sh + (tid & 15) * 8;
    lp.v = a.v + tok_begin * a.v_st + h * a.v_sh + slice * kDVS + (tid & 7) * 8;
    lp.q_st = a.q_st;
    lp.k_st = a.k_st;
    lp.v_st = a.v_st;
    lp.qk_row = tid >> 4;
    lp.v_row = tid >> 3;
#pragma unroll
    for (int c = 0; c < kWgStages - 1; ++c) {
        if (c < nchunks) wg_load_chunk<!kStateOnly>(lp, tiles, c, c, chunk_rows(len, c));
        cp_async_commit();
    }
    // Loads of chunk c + kWgStages - 1, issued by each role once its tensor-core work for chunk c is in flight.
    auto issue_next_loads = [&](int c) {
        const int cn = c + kWgStages - 1;
        if (cn < nchunks) wg_load_chunk<!kStateOnly>(lp, tiles, cn % kWgStages, cn, chunk_rows(len, cn));
        cp_async_commit();
    };

    for (int c = 0; c < nchunks; ++c) {
        const int st = c % kWgStages;
        const int m = chunk_rows(len, c);
        cp_async_wait<kWgStages - 2>();
        if (a.silu) wg_silu_own_chunks<!kStateOnly>(tiles, st, tid);
        fence_proxy_async();  // this thread's cp.async / SiLU writes -> wgmma operand reads
        __syncthreads();
        const char* sq = tiles + st * kWgStageBytes;
        const char* sk = sq + kQBytes;
        const char* sv = sk + kKBytes;
        const uint32_t sv_u32 = smem_u32(sv), sk_u32 = smem_u32(sk);

        if (kStateOnly && output_role) {
            issue_next_loads(c);  // the output warpgroup only shares the loading in the state-only pass
        } else if (output_role) {
            float oacc[32];
            output_chunk<false>(
                smem_u32(sq), sk_u32, sv_u32, smem_u32(s_state + (c & 1) * kSBytes), dec, f0, f1, m, t4, oacc, [] {},
                [&] { issue_next_loads(c); }, [] {});
            const int64_t tok0 = tok_begin + int64_t{c} * kC;
            store_rows_bf16(s_out, oacc, rw, g, t4, lane, m, a.o + tok0 * a.o_st + h * a.o_sh + slice * kDVS,
                              a.o_st);
        } else {
            state_chunk<false>(sacc, sk, sv_u32, m, slope, nl2, kd_table, rw, lane, t4, [&] { issue_next_loads(c); });
            write_state_bf16(s_state + ((c + 1) & 1) * kSBytes, sacc, rw, g, t4);
            fence_proxy_async();  // S_c (st.shared) -> next chunk's wgmma reads
        }
    }
    cp_async_wait<0>();

    if (!output_role && st_out) store_state_slice(st_out, sacc, rw, g, t4);
}

// Context-parallel combine: start state of every segment, S_0 = the sequence's initial state (or 0) and
// S_p = lambda^{len_{p-1}} S_{p-1} + local_{p-1}, the decay applied as S - mu S (mu = -expm1(-slope len)) like the
// kernels. One thread per float4 of a (sequence, head) state; grid (D*D/4/256, H, N).
__global__ void __launch_bounds__(256) segment_combine_kernel(const PrefillArgs a) {
    const int h = blockIdx.y, n = blockIdx.z;
    const int e4 = blockIdx.x * 256 + threadIdx.x;
    const int64_t slot = a.state_slots ? a.state_slots[n] : n;
    const size_t head4 = kD * kD / 4;
    float4 S = make_float4(0.f, 0.f, 0.f, 0.f);
    if (a.state_in)
        S = reinterpret_cast<const float4*>(a.state_in)[(static_cast<size_t>(slot) * a.num_heads + h) * head4 + e4];
    const float slope = a.slope[h];
    for (int p = 0; p < a.segs; ++p) {
        const size_t idx = ((static_cast<size_t>(n) * a.segs + p) * a.num_heads + h) * head4 + e4;
        if (p > 0) {
            int64_t b, len;
            segment_range(a, n, p - 1, b, len);
            const float mu = -expm1f(-slope * static_cast<float>(len));
            const float4 L = reinterpret_cast<const float4*>(a.seg_local)[idx - a.num_heads * head4];
            S.x = fmaf(-mu, S.x, S.x) + L.x;
            S.y = fmaf(-mu, S.y, S.y) + L.y;
            S.z = fmaf(-mu, S.z, S.z) + L.z;
            S.w = fmaf(-mu, S.w, S.w) + L.w;
        }
        reinterpret_cast<float4*>(a.seg_start)[idx] = S;
    }
}

// ---- decode ---------------------------------------------------------------------------------------------------------
struct DecodeArgs {
    const __nv_bfloat16* q;
    const __nv_bfloat16* k;
    const __nv_bfloat16* v;
    __nv_bfloat16* o;
    int64_t q_st, q_sh, k_st, k_sh, v_st, v_sh, o_st, o_sh;
    const float* slope;
    const int32_t* state_slots;
    const float* state_in;
    float* state_out;
    int num_heads;
    bool silu;
    float* const* state_ptrs;  // [N] each sequence's own state (replaces the three above)
};

constexpr int kDecodeThreads = 256;

// CTA = (value slice of kCols columns, head, sequence). Thread layout over the [128 x kCols] fp32 slice: kCols/4
// threads per row (one float4 each), kRowsPerPass rows per pass.
template <int kCols>
__global__ void __launch_bounds__(kDecodeThreads) decode_kernel(const DecodeArgs a) {
    constexpr int kTpr = kCols / 4;
    constexpr int kRowsPerPass = kDecodeThreads / kTpr;
    constexpr int kPasses = kD / kRowsPerPass;
    __shared__ float sq[kD], sk[kD], sv[kCols];
    __shared__ float4 red[kRowsPerPass][kTpr];
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)

    const int slice = blockIdx.x, h = blockIdx.y, n = blockIdx.z;
    const int tid = threadIdx.x;
    // This (sequence, head)'s state: in its own buffer (state_ptrs) or in slot n of the shared ones.
    float* const own = a.state_ptrs ? a.state_ptrs[n] : nullptr;
    const int64_t slot = own ? 0 : a.state_slots ? a.state_slots[n] : n;
    const size_t off = (static_cast<size_t>(slot) * a.num_heads + h) * kD * kD + slice * kCols;
    const float* const state_in = own ? own : a.state_in;
    float* const state_out = own ? own : a.state_out;
    const int c4 = tid % kTpr, r0 = tid / kTpr;

    // All state loads first (kPasses independent 16-byte loads per thread), evict-first: the state is touched once.
    const float* src = (state_in ? state_in : state_out) + off;
    float4 s[kPasses];
#pragma unroll
    for (int p = 0; p < kPasses; ++p) {
        if (state_in)
            s[p] = __ldcs(reinterpret_cast<const float4*>(src + (r0 + p * kRowsPerPass) * kD) + c4);
        else
            s[p] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    if (tid < kD) {
        float qv = __bfloat162float(a.q[n * a.q_st + h * a.q_sh + tid]);
        float kv = __bfloat162float(a.k[n * a.k_st + h * a.k_sh + tid]);
        if (a.silu) {
            qv = silu_f(qv);
            kv = silu_f(kv);
        }
        sq[tid] = qv;
        sk[tid] = kv;
    } else if (tid - kD < kCols) {
        float vv = __bfloat162float(a.v[n * a.v_st + h * a.v_sh + slice * kCols + (tid - kD)]);
        sv[tid - kD] = a.silu ? silu_f(vv) : vv;
    }
    __syncthreads();

    // lambda x as x - mu x with mu = 1 - lambda = -expm1(-slope): fp32 lambda near 1 (0.99995) would bias the
    // steady state by up to 2^-24 / (1 - lambda) ~ 1e-3; this form keeps 100K steps within ~1e-5 of float64.
    const float mu = -expm1f(-a.slope[h]);
    const float4 v4 = reinterpret_cast<const float4*>(sv)[c4];
    float4 o4 = make_float4(0.f, 0.f, 0.f, 0.f);
    float* dst = state_out + off;
#pragma unroll
    for (int p = 0; p < kPasses; ++p) {
        const int r = r0 + p * kRowsPerPass;
        const float kr = sk[r], qr = sq[r];
        float4 x = s[p];
        x.x = fmaf(kr, v4.x, fmaf(-mu, x.x, x.x));
        x.y = fmaf(kr, v4.y, fmaf(-mu, x.y, x.y));
        x.z = fmaf(kr, v4.z, fmaf(-mu, x.z, x.z));
        x.w = fmaf(kr, v4.w, fmaf(-mu, x.w, x.w));
        o4.x = fmaf(qr, x.x, o4.x);
        o4.y = fmaf(qr, x.y, o4.y);
        o4.z = fmaf(qr, x.z, o4.z);
        o4.w = fmaf(qr, x.w, o4.w);
        __stcs(reinterpret_cast<float4*>(dst + r * kD) + c4, x);
    }
    red[r0][c4] = o4;
    __syncthreads();
    if (tid < kCols) {
        float acc = 0.0f;
        const int col4 = tid >> 2, comp = tid & 3;
#pragma unroll 8
        for (int r = 0; r < kRowsPerPass; ++r) acc += reinterpret_cast<const float*>(&red[r][col4])[comp];
        a.o[n * a.o_st + h * a.o_sh + slice * kCols + tid] = __float2bfloat16_rn(acc);
    }
}

// ---- norm + gate ----------------------------------------------------------------------------------------------------
constexpr int kNormThreads = 256;
constexpr int kNormMaxVec = 8;  // 16-byte vectors per thread kept in registers: width <= 256 * 8 * 8 = 16384

// kVec 16-byte vectors per thread (registers hold the whole token): 4 for widths up to 8192, 8 up to 16384.
template <int kVec>
__global__ void __launch_bounds__(kNormThreads, 8 / kVec) norm_gate_kernel(const __nv_bfloat16* __restrict__ o, int64_t o_st,
                                                                 const __nv_bfloat16* __restrict__ gate,
                                                                 int64_t g_st,
                                                                 const __nv_bfloat16* __restrict__ weight,
                                                                 __nv_bfloat16* __restrict__ out, int64_t out_st,
                                                                 int width, float eps) {
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    const int64_t t = blockIdx.x;
    const int tid = threadIdx.x;
    const int nvec = width / 8;
    const uint4* orow = reinterpret_cast<const uint4*>(o + t * o_st);
    const uint4* grow = reinterpret_cast<const uint4*>(gate + t * g_st);
    // o and the gate are both loaded before the reduction so that all of a token's bytes are in flight at once.
    uint4 x[kVec], gv[kVec];
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
        const int vi = tid + i * kNormThreads;
        if (vi < nvec) {
            x[i] = orow[vi];
            gv[i] = grow[vi];
        }
    }
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
        const int vi = tid + i * kNormThreads;
        if (vi < nvec) {
            const uint32_t* w = reinterpret_cast<const uint32_t*>(&x[i]);
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float2 f = unpack_bf16(w[e]);
                ss = fmaf(f.x, f.x, fmaf(f.y, f.y, ss));
            }
        }
    }
    const float inv = rsqrtf(block_sum_once<kNormThreads>(ss) / static_cast<float>(width) + eps);

    const uint4* wrow = reinterpret_cast<const uint4*>(weight);
    uint4* yrow = reinterpret_cast<uint4*>(out + t * out_st);
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
        const int vi = tid + i * kNormThreads;
        if (vi < nvec) {
            const uint4 wv = wrow[vi];
            const uint32_t* xo = reinterpret_cast<const uint32_t*>(&x[i]);
            const uint32_t* xg = reinterpret_cast<const uint32_t*>(&gv[i]);
            const uint32_t* xw = reinterpret_cast<const uint32_t*>(&wv);
            uint4 res;
            uint32_t* r = reinterpret_cast<uint32_t*>(&res);
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float2 fo = unpack_bf16(xo[e]), fg = unpack_bf16(xg[e]), fw = unpack_bf16(xw[e]);
                // Reference rounding: normalised value to bf16, times the weight in bf16, then the gate.
                const float y0 = round_bf16(fw.x * round_bf16(fo.x * inv));
                const float y1 = round_bf16(fw.y * round_bf16(fo.y * inv));
                r[e] = pack_bf16(y0 / (1.0f + expf(-fg.x)), y1 / (1.0f + expf(-fg.y)));
            }
            yrow[vi] = res;
        }
    }
}

// Prefill kernel choice, read once per process from VOLT_LIGHTNING_PREFILL, for A/B timing in the benchmark:
//   tma (default): the TMA-fed kernel (lightning_prefill_tma.cu); tma_cluster: the same with the two value slices of
//   a head as a 2-CTA cluster (measured 1-4% slower); wgmma_cluster / wgmma: the cp.async wgmma kernel with / without
//   clusters (it also runs the context-parallel state-only pass, and stands in when the driver has no TMA encoder);
//   mma_sync: the portable baseline kernel.
enum class PrefillVariant { kTma, kTmaCluster, kWgmma, kWgmmaCluster, kMmaSync };
PrefillVariant prefill_variant() {
    static const PrefillVariant v = env_choice("VOLT_LIGHTNING_PREFILL",
                                               {{"tma", PrefillVariant::kTma},
                                                {"tma_cluster", PrefillVariant::kTmaCluster},
                                                {"wgmma", PrefillVariant::kWgmma},
                                                {"wgmma_cluster", PrefillVariant::kWgmmaCluster},
                                                {"mma_sync", PrefillVariant::kMmaSync}},
                                               PrefillVariant::kTma);
    return v;
}

template <bool kStateOnly>
Status launch_wgmma_prefill(const PrefillArgs& a, dim3 grid, bool cluster, cudaStream_t stream) {
    return launch_prefill<prefill_wgmma_kernel<kStateOnly>>(grid, kThreads, kWgSmemBytes, cluster, stream, a);
}

// Context-parallel segments per sequence for a prefill: 1 when the (slice, head, sequence) CTAs already fill the
// GPU once; else as many as fit in one wave (a second, partial wave would cost a whole extra step time), and each
// segment at least 8 chunks (512 tokens) so the extra state-only pass stays small against the main one.
Expected<int> plan_segments(const LightningAttentionParams& p) {
    if (p.phase != LightningPhase::kPrefill || prefill_variant() == PrefillVariant::kMmaSync) return 1;
    int device = 0, sms = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    VOLT_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    const int64_t ctas = int64_t{kSlices} * p.num_heads * p.num_seqs;
    const int64_t max_len = p.max_seqlen > 0 ? p.max_seqlen : p.num_tokens;
    int64_t segs = ctas > 0 ? sms / ctas : 1;
    segs = std::min<int64_t>(segs, max_len / (8 * kC));
    segs = std::min<int64_t>(segs, 64);
    segs = std::min<int64_t>(segs, 65535 / std::max(p.num_seqs, 1));
    return static_cast<int>(std::max<int64_t>(segs, 1));
}

// Two fp32 states per (segment, sequence, head): the segments' local end states and their start states.
size_t segment_workspace_bytes(const LightningAttentionParams& p, int segs) {
    if (segs <= 1) return 0;
    return 2 * static_cast<size_t>(segs) * p.num_seqs * p.num_heads * kD * kD * sizeof(float);
}

Status check_cuda_params(const LightningAttentionParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.dtype != DType::kBF16) return invalid_argument("lightning_attention (CUDA): dtype must be BF16");
    if (p.head_dim != kD) return invalid_argument("lightning_attention (CUDA): head_dim must be 128, got ", p.head_dim);
    if (p.num_heads > 65535 || p.num_seqs > 65535)
        return invalid_argument("lightning_attention (CUDA): at most 65535 heads and sequences per call");
    if (p.num_tokens > 0) {
        if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v) || !aligned16(p.o))
            return invalid_argument("lightning_attention (CUDA): q, k, v, o must be 16-byte aligned");
        for (int64_t s : {p.q_stride_token, p.q_stride_head, p.k_stride_token, p.k_stride_head, p.v_stride_token,
                          p.v_stride_head, p.o_stride_token, p.o_stride_head})
            if (s % 8 != 0) return invalid_argument("lightning_attention (CUDA): strides must be multiples of 8");
    }
    if ((p.state_in && !aligned16(p.state_in)) || (p.state_out && !aligned16(p.state_out)) ||
        (p.workspace && !aligned16(p.workspace)))
        return invalid_argument("lightning_attention (CUDA): states and workspace must be 16-byte aligned");
    return Status::ok();
}

}  // namespace

Status run(const LightningAttentionParams& p, cudaStream_t stream) {
    VOLT_RETURN_IF_ERROR(check_cuda_params(p));
    if (p.num_seqs == 0) return Status::ok();
    const auto* q = static_cast<const __nv_bfloat16*>(p.q);
    const auto* k = static_cast<const __nv_bfloat16*>(p.k);
    const auto* v = static_cast<const __nv_bfloat16*>(p.v);
    auto* o = static_cast<__nv_bfloat16*>(p.o);
    if (p.phase == LightningPhase::kDecode) {
        DecodeArgs a{q, k, v, o, p.q_stride_token, p.q_stride_head, p.k_stride_token, p.k_stride_head,
                     p.v_stride_token, p.v_stride_head, p.o_stride_token, p.o_stride_head, p.slope, p.state_slots,
                     p.state_in, p.state_out, p.num_heads, p.silu_inputs, p.state_ptrs};
        // Few (sequence, head) pairs: narrower slices so that every SM gets work (B=1 x 64 heads -> 256 CTAs).
        if (static_cast<int64_t>(p.num_seqs) * p.num_heads < 512)
            return launch_dependent(decode_kernel<32>, dim3(kD / 32, p.num_heads, p.num_seqs), dim3(kDecodeThreads), 0,
                                    stream, a);
        return launch_dependent(decode_kernel<64>, dim3(kD / 64, p.num_heads, p.num_seqs), dim3(kDecodeThreads), 0,
                                stream, a);
    }
    PrefillArgs a{q, k, v, o, p.q_stride_token, p.q_stride_head, p.k_stride_token, p.k_stride_head, p.v_stride_token,
                  p.v_stride_head, p.o_stride_token, p.o_stride_head, p.cu_seqlens, p.num_tokens, p.slope,
                  p.state_slots, p.state_in, p.state_out, p.num_heads, p.silu_inputs, 1, nullptr, nullptr};
    const PrefillVariant variant = prefill_variant();
    if (variant == PrefillVariant::kMmaSync) {
        VOLT_RETURN_IF_ERROR(allow_smem<prefill_kernel>(kSmemBytes));
        prefill_kernel<<<dim3(kSlices, p.num_heads, p.num_seqs), kThreads, kSmemBytes, stream>>>(a);
        VOLT_CUDA_CHECK_LAUNCH();
        return Status::ok();
    }
    const bool cluster = variant == PrefillVariant::kWgmmaCluster || variant == PrefillVariant::kTmaCluster;
    const bool tma = (variant == PrefillVariant::kTma || variant == PrefillVariant::kTmaCluster) &&
                     lightning::tma_prefill_available();
    // The main pass (every output): the TMA-fed kernel or the cp.async one.
    auto main_pass = [&](dim3 grid) {
        return tma ? lightning::launch_tma_prefill(a, grid, cluster, stream)
                   : launch_wgmma_prefill<false>(a, grid, cluster, stream);
    };
    VOLT_ASSIGN_OR_RETURN(const int segs, plan_segments(p));
    const size_t need = segment_workspace_bytes(p, segs);
    if (segs > 1 && p.workspace && p.workspace_bytes >= need) {
        // Context parallel: segment end states from k, v alone, the prefix combine, then every segment in parallel.
        const size_t half = need / 2;
        a.segs = segs;
        a.seg_local = static_cast<float*>(p.workspace);
        a.seg_start = reinterpret_cast<float*>(static_cast<char*>(p.workspace) + half);
        const dim3 grid(kSlices, p.num_heads, p.num_seqs * segs);
        VOLT_RETURN_IF_ERROR(launch_wgmma_prefill<true>(a, grid, cluster, stream));
        segment_combine_kernel<<<dim3(kD * kD / 4 / 256, p.num_heads, p.num_seqs), 256, 0, stream>>>(a);
        VOLT_CUDA_CHECK_LAUNCH();
        return main_pass(grid);
    }
    return main_pass(dim3(kSlices, p.num_heads, p.num_seqs));
}

size_t prefill_workspace_bytes(const LightningAttentionParams& p) {
    auto segs = plan_segments(p);
    return segs.has_value() ? segment_workspace_bytes(p, *segs) : 0;
}

Status run(const LightningNormGateParams& p, cudaStream_t stream) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.dtype != DType::kBF16) return invalid_argument("lightning_norm_gate (CUDA): dtype must be BF16");
    if (p.width % 8 != 0 || p.width > kNormThreads * kNormMaxVec * 8)
        return invalid_argument("lightning_norm_gate (CUDA): width must be a multiple of 8 and <= ",
                                kNormThreads * kNormMaxVec * 8, ", got ", p.width);
    if (p.num_tokens == 0) return Status::ok();
    if (!aligned16(p.o) || !aligned16(p.gate) || !aligned16(p.weight) || !aligned16(p.out) ||
        p.o_stride_token % 8 || p.gate_stride_token % 8 || p.out_stride_token % 8)
        return invalid_argument("lightning_norm_gate (CUDA): pointers 16-byte aligned, strides multiples of 8");
    if (p.num_tokens > 0x7fffffff) return invalid_argument("lightning_norm_gate (CUDA): too many tokens");
    auto* kernel = p.width <= kNormThreads * 4 * 8 ? norm_gate_kernel<4> : norm_gate_kernel<kNormMaxVec>;
    return launch_dependent(kernel, dim3(static_cast<unsigned>(p.num_tokens)), dim3(kNormThreads), 0, stream,
                            static_cast<const __nv_bfloat16*>(p.o), p.o_stride_token,
                            static_cast<const __nv_bfloat16*>(p.gate), p.gate_stride_token,
                            static_cast<const __nv_bfloat16*>(p.weight), static_cast<__nv_bfloat16*>(p.out),
                            p.out_stride_token, p.width, p.eps);
}

}  // namespace volt::cuda
