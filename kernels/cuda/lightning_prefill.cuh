// Shared by the two lightning prefill translation units (lightning_attention.cu: the cp.async kernels, the decode
// and norm kernels, the dispatch; lightning_prefill_tma.cu: the TMA-fed kernel): the chunk geometry, the prefill
// arguments, the segment and chunk helpers, the 128-byte-swizzled tile layout (the wgmma wrappers: wgmma.cuh).
// Include only from .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/wgmma.cuh"
#include "sdk/cuda_check.h"
#include "sdk/status.h"

namespace volt::cuda::lightning {

constexpr int kD = 128;          // head dim (q/k/v)
constexpr int kC = 64;           // tokens per chunk
constexpr int kDVS = 64;         // value columns per prefill CTA
constexpr int kSlices = kD / kDVS;
constexpr float kLog2e = 1.4426950408889634f;

// Shared-memory layout of the prefill CTA (bytes). Q/K rows are 256 B (16 chunks of 16 B), V/S/O rows 128 B.
constexpr int kQBytes = kC * kD * 2;       // 16 KiB
constexpr int kKBytes = kC * kD * 2;       // 16 KiB
constexpr int kVBytes = kC * kDVS * 2;     //  8 KiB
constexpr int kSBytes = kD * kDVS * 2;     // 16 KiB: bf16 copy of the state slice, double-buffered
constexpr int kOBytes = kC * kDVS * 2;     //  8 KiB: output staging

struct PrefillArgs {
    const __nv_bfloat16* q;
    const __nv_bfloat16* k;
    const __nv_bfloat16* v;
    __nv_bfloat16* o;
    int64_t q_st, q_sh, k_st, k_sh, v_st, v_sh, o_st, o_sh;
    const int32_t* cu_seqlens;
    int64_t num_tokens;
    const float* slope;
    const int32_t* state_slots;
    const float* state_in;
    float* state_out;
    int num_heads;
    bool silu;
    // Context-parallel segments (wgmma kernel only): every sequence is cut into `segs` segments of whole chunks and
    // blockIdx.z = n * segs + p. segs == 1: no cut, states come from state_in/state_out directly.
    int segs;
    float* seg_start;        // [N * segs, H, D, D] state entering each segment (written by the combine kernel)
    float* seg_local;        // [N * segs, H, D, D] each segment's end state from a zero start (state-only pass)
};

// Tokens [begin, begin + len) of segment p of sequence n: ceil(L / segs) rounded up to whole chunks, so every segment
// but the last starts chunk-aligned relative to its sequence and the decay algebra is the same as one pass.
__device__ __forceinline__ void segment_range(const PrefillArgs& a, int n, int p, int64_t& begin, int64_t& len) {
    const int64_t b0 = a.cu_seqlens ? a.cu_seqlens[n] : 0;
    const int64_t total = a.cu_seqlens ? a.cu_seqlens[n + 1] - b0 : a.num_tokens;
    const int64_t per = ((total + a.segs - 1) / a.segs + kC - 1) / kC * kC;
    const int64_t s0 = per * p < total ? per * p : total;
    begin = b0 + s0;
    len = (s0 + per < total ? s0 + per : total) - s0;
}

// Rows of chunk c of a sequence of `len` tokens.
__device__ __forceinline__ int chunk_rows(int64_t len, int c) {
    const int64_t rest = len - int64_t{c} * kC;
    return rest < kC ? static_cast<int>(rest) : kC;
}

// SiLU of two packed bf16 as h + h tanh(h) with h = x / 2 (= x sigmoid(x)): the halving in one packed bf16 multiply
// (exact), then per value one MUFU tanh (fp32, relative error ~2^-11) and one fma, rounded once to bf16: 8
// instructions a pair instead of 13 through exp and reciprocal (two MUFU ops a value); the prefill's SiLU on load
// (20480 values per chunk and CTA) is issue-bound. The tanh in packed bf16 (tanh.approx.bf16x2, ~2^-8) was cheaper
// still but moved the model's logits past their tolerance (worst row 5.5e-2 vs 4.9e-2 against the CPU).
__device__ __forceinline__ uint32_t silu_bf16x2(uint32_t x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uint32_t h;
    asm("mul.rn.bf16x2 %0, %1, %2;\n" : "=r"(h) : "r"(x), "r"(0x3f003f00u));  // 0.5 in both halves
    const float2 f = unpack_bf16(h);
    float t0, t1;
    asm("tanh.approx.f32 %0, %1;\n" : "=f"(t0) : "f"(f.x));
    asm("tanh.approx.f32 %0, %1;\n" : "=f"(t1) : "f"(f.y));
    return pack_bf16(fmaf(f.x, t0, f.x), fmaf(f.y, t1, f.y));
#else  // fp32 with the approximate divide (MUFU reciprocal + multiply)
    const float2 f = unpack_bf16(x);
    return pack_bf16(__fdividef(f.x, 1.0f + __expf(-f.x)), __fdividef(f.y, 1.0f + __expf(-f.y)));
#endif
}

// SiLU in place over one 16-byte chunk of 8 bf16 in shared memory.
__device__ __forceinline__ void silu_chunk(char* p) {
    uint4 u = *reinterpret_cast<uint4*>(p);
    u.x = silu_bf16x2(u.x), u.y = silu_bf16x2(u.y), u.z = silu_bf16x2(u.z), u.w = silu_bf16x2(u.w);
    *reinterpret_cast<uint4*>(p) = u;
}

// Prefill tiles of the wgmma kernels: a stage holds Q, K (64 x 128) and the V slice (64 x 64), each 1 KiB-aligned.
constexpr int kWgStageBytes = kQBytes + kKBytes + kVBytes;  // 40 KiB, a multiple of 1 KiB

// Byte offset of (row, col) in a tile of kRows rows whose 128-wide rows are split into 64-column blocks.
template <int kRows>
__device__ __forceinline__ uint32_t swz128(int row, int col) {
    const int cb = col >> 6, c = col & 63;
    return static_cast<uint32_t>(cb * kRows * 128 + row * 128 + ((((c >> 3) ^ row) & 7) << 4) + (c & 7) * 2);
}

// Where a prefill CTA's state slice (head h, value columns slice * 64 ..) comes from and goes to. One pass: the
// slot's state_in (or zeros) and state_out. Context-parallel main pass (segs > 1): the combine's start state of the
// segment, and state_out from the last segment only. kStateOnly (the first context-parallel pass): zeros in, the
// segment's local end state out.
template <bool kStateOnly>
__device__ __forceinline__ void state_slice_ptrs(const PrefillArgs& a, int n, int seg, int h, int slice,
                                                 const float*& in, float*& out) {
    const int64_t slot = a.state_slots ? a.state_slots[n] : n;
    const size_t head_state = static_cast<size_t>(a.num_heads) * kD * kD;
    const size_t seg_off = (static_cast<size_t>(blockIdx.z) * a.num_heads + h) * kD * kD + slice * kDVS;
    const size_t user_off = static_cast<size_t>(slot) * head_state + static_cast<size_t>(h) * kD * kD + slice * kDVS;
    in = kStateOnly ? nullptr : a.segs > 1 ? a.seg_start + seg_off : a.state_in ? a.state_in + user_off : nullptr;
    out = kStateOnly           ? a.seg_local + seg_off
          : seg == a.segs - 1 ? (a.state_out ? a.state_out + user_off : nullptr)
                              : nullptr;
}

// ---- the per-chunk math both wgmma kernels run (prefill_wgmma_kernel, prefill_tma_kernel) --------------------------
// Fragment coordinates of a thread in its warpgroup: rw = warp (0..3), g = lane / 4, t4 = lane % 4.
// State slice in registers: sacc[mt][4 nt + e] = S[64 mt + 16 rw + g + 8 (e >> 1)][8 nt + 2 t4 + (e & 1)].

// The state warps' chunk-invariant decays lambda^{C-1-j} of the decayed-K fragments' key pairs j, j + 1 (j = 16 kk +
// 2 t4 + 8 p) as packed bf16 hi + lo (hi + lo = the fp32 value to ~2^-17).
struct StateDecay {
    uint32_t hi[4][2], lo[4][2];
};

// Chunk-invariant decay factors (MUFU ex2 would otherwise sit on each chunk's critical path). Output warps:
// dec[4 nt + e] = lambda^{i-j} (0 above the diagonal) for the score elements of rows row0, row0 + 8, and the
// inter-term row factors f0 = lambda^{row0+1}, f1 = lambda^{row0+9}; state warps: StateDecay (a shorter last chunk
// recomputes its factors).
__device__ __forceinline__ void output_decay_table(float nl2, int row0, int t4, float (&dec)[32], float& f0,
                                                   float& f1) {
    f0 = exp2f(nl2 * static_cast<float>(row0 + 1));
    f1 = exp2f(nl2 * static_cast<float>(row0 + 9));
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int i = row0 + 8 * (e >> 1), j = 8 * nt + 2 * t4 + (e & 1);
            dec[4 * nt + e] = j <= i ? exp2f(nl2 * static_cast<float>(i - j)) : 0.0f;
        }
}
// The pair (x0, x1) as packed bf16 hi (rounded) + lo (the rest, rounded): hi + lo = x to ~2^-17.
__device__ __forceinline__ void split_bf16_hi_lo(float x0, float x1, uint32_t& hi, uint32_t& lo) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(x0, x1);
    const float2 hf = __bfloat1622float2(h);
    hi = *reinterpret_cast<const uint32_t*>(&h);
    lo = pack_bf16(x0 - hf.x, x1 - hf.y);
}

__device__ __forceinline__ void state_decay_table(float nl2, int t4, StateDecay& sd) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
#pragma unroll
        for (int p = 0; p < 2; ++p) {
            const int j = 16 * kk + 2 * t4 + 8 * p;
            split_bf16_hi_lo(exp2f(nl2 * static_cast<float>(kC - 1 - j)), exp2f(nl2 * static_cast<float>(kC - 2 - j)),
                             sd.hi[kk][p], sd.lo[kk][p]);
        }
}

// d = a * b + c on packed bf16 pairs, one rounding.
__device__ __forceinline__ uint32_t fma_bf16x2(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t d;
    asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

// bf16 copy of the state for the output warps' next chunk.
__device__ __forceinline__ void write_state_bf16(char* s_next, const float (&sacc)[2][32], int rw, int g, int t4) {
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
            const int r = 64 * mt + 16 * rw + g, col = 8 * nt + 2 * t4;
            *reinterpret_cast<uint32_t*>(s_next + swz128<kD>(r, col)) =
                pack_bf16(sacc[mt][4 * nt + 0], sacc[mt][4 * nt + 1]);
            *reinterpret_cast<uint32_t*>(s_next + swz128<kD>(r + 8, col)) =
                pack_bf16(sacc[mt][4 * nt + 2], sacc[mt][4 * nt + 3]);
        }
}

// f(mt, i, r, c) for every column pair sacc[mt][i], sacc[mt][i + 1] of the thread's state fragment: d_k row r =
// 64 mt + 16 rw + g + 8 hf, columns c, c + 1 (c = 8 nt + 2 t4) of the slice.
template <class F>
__device__ __forceinline__ void for_each_state_pair(int rw, int g, int t4, F&& f) {
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int hf = 0; hf < 2; ++hf)
                f(mt, 4 * nt + 2 * hf, 64 * mt + 16 * rw + g + 8 * hf, 8 * nt + 2 * t4);
}

// The state slice from st_in (fp32 [128 d_k][128] rows, this CTA's 64 columns; null: zeros) into sacc and, as bf16,
// into s_state (the copy the output warps multiply by).
__device__ __forceinline__ void load_state_slice(const float* st_in, float (&sacc)[2][32], char* s_state, int rw,
                                                 int g, int t4) {
    for_each_state_pair(rw, g, t4, [&](int mt, int i, int r, int c) {
        const float2 v2 = st_in ? *reinterpret_cast<const float2*>(st_in + r * kD + c) : make_float2(0.0f, 0.0f);
        sacc[mt][i] = v2.x;
        sacc[mt][i + 1] = v2.y;
    });
    write_state_bf16(s_state, sacc, rw, g, t4);
}
__device__ __forceinline__ void store_state_slice(float* st_out, const float (&sacc)[2][32], int rw, int g, int t4) {
    for_each_state_pair(rw, g, t4, [&](int mt, int i, int r, int c) {
        *reinterpret_cast<float2*>(st_out + r * kD + c) = make_float2(sacc[mt][i], sacc[mt][i + 1]);
    });
}

// The outputs of one chunk (output warpgroup): o = lambda^{i+1} Q S_prev + (Q K^T . decay, causal) V, in oacc. Three
// commit groups so the masking of P overlaps the inter product: (1) P = Q K^T, (2) O = Q S_prev; wait for (1) only
// and mask P; (3) the intra term P V into its own accumulators; wait for all. Hooks: after_scores() between the
// issue of (1) and (2) (the TMA kernel waits for S_prev there), after_inter() once (1) and (2) are in flight (the
// cp.async kernel issues its next loads), after_products() when every product is done (the stage and S_prev are
// free). kMaskTail: keys at or past m are zeroed in P (their rows hold the next sequence's data, not zeros).
template <bool kMaskTail, class AfterScores, class AfterInter, class AfterProducts>
__device__ __forceinline__ void output_chunk(uint32_t sq_u32, uint32_t sk_u32, uint32_t sv_u32, uint32_t sprev_u32,
                                             const float (&dec)[32], float f0, float f1, int m, int t4,
                                             float (&oacc)[32], AfterScores&& after_scores, AfterInter&& after_inter,
                                             AfterProducts&& after_products) {
    float pacc[32], iacc[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) oacc[i] = pacc[i] = iacc[i] = 0.0f;
    fence_regs(oacc);
    fence_regs(pacc);
    fence_regs(iacc);
    wgmma_fence();
    // intra scores: P = Q K^T; A = Q straight from shared memory (K-major: token rows of d_k, k step = 32 B within a
    // 64-column block), B = K (K-major: key rows of d_k).
#pragma unroll
    for (int kk = 0; kk < 8; ++kk)
        wgmma_m64n64k16_ss<0>(pacc, sw128_desc(sq_u32 + (kk >> 2) * (kC * 128) + (kk & 3) * 32, 16, 1024),
                              sw128_desc(sk_u32 + (kk >> 2) * (kC * 128) + (kk & 3) * 32, 16, 1024));
    wgmma_commit();
    after_scores();
    // inter: O = Q S_prev, B = S_prev rows d_k (MN-major), 16 rows = 2 KiB per k step.
#pragma unroll
    for (int kk = 0; kk < 8; ++kk)
        wgmma_m64n64k16_ss<1>(oacc, sw128_desc(sq_u32 + (kk >> 2) * (kC * 128) + (kk & 3) * 32, 16, 1024),
                              sw128_desc(sprev_u32 + kk * 2048, 8192, 1024));
    wgmma_commit();
    after_inter();
    wgmma_wait1();
    fence_regs(pacc);
    uint32_t pa[4][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
        float w[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) w[e] = pacc[4 * nt + e] * dec[4 * nt + e];
        if (kMaskTail && m < kC)  // zero, not 0 * (whatever the next sequence holds)
#pragma unroll
            for (int e = 0; e < 4; ++e) w[e] = 8 * nt + 2 * t4 + (e & 1) < m ? w[e] : 0.0f;
        pa[nt >> 1][(nt & 1) * 2 + 0] = pack_bf16(w[0], w[1]);
        pa[nt >> 1][(nt & 1) * 2 + 1] = pack_bf16(w[2], w[3]);
    }
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma_m64n64k16_rs<1>(iacc, pa[kk], sw128_desc(sv_u32 + kk * 2048, 8192, 1024));
    wgmma_commit();
    wgmma_wait0();
    fence_regs(oacc);
    fence_regs(iacc);
    after_products();
#pragma unroll
    for (int i = 0; i < 32; i += 4) {  // o_i = lambda^{i+1} (q_i S_prev) + intra_i
        oacc[i + 0] = fmaf(f0, oacc[i + 0], iacc[i + 0]);
        oacc[i + 1] = fmaf(f0, oacc[i + 1], iacc[i + 1]);
        oacc[i + 2] = fmaf(f1, oacc[i + 2], iacc[i + 2]);
        oacc[i + 3] = fmaf(f1, oacc[i + 3], iacc[i + 3]);
    }
}

// The state update of one chunk (state warpgroup): S = lambda^m S + (diag(lambda^{m-1-j}) K)^T V with the decayed K
// as bf16 hi + lo (exact to ~2^-16, so the fp32 state keeps ~1e-5 accuracy). A whole chunk forms them with three
// packed bf16 FMAs a key pair against the StateDecay table: hi = k d_hi, r = k d_hi - hi (exact: the product has 16
// significant bits, hi holds the top 8), lo = k d_lo + r. That is 4 instructions a pair where the fp32 form (widen,
// multiply, round, widen, subtract, round) took 10. The state chain was the TMA kernel's long pole (H100, T = 128K,
// the loads switched off: state warpgroup alone 3.22 ms, output warpgroup alone 2.12; the loads alone ~2.9): now
// 2.15 ms alone, and the kernel 3.17 ms instead of 3.62 (bench/lightning_notes.md, v11).
// after_issue(): once the products are in flight (the cp.async kernel issues its next loads). kMaskTail: keys at or
// past m are zeroed (see output_chunk).
template <bool kMaskTail, class AfterIssue>
__device__ __forceinline__ void state_chunk(float (&sacc)[2][32], const char* sk, uint32_t sv_u32, int m, float slope,
                                            float nl2, const StateDecay& sd, int rw, int lane, int t4,
                                            AfterIssue&& after_issue) {
    // lambda^m S as S - mu S, mu = -expm1(-slope m): no bias from rounding lambda^m near 1 (see the decode kernel).
    const float mu = -expm1f(-slope * static_cast<float>(m));
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int i = 0; i < 32; ++i) sacc[mt][i] = fmaf(-mu, sacc[mt][i], sacc[mt][i]);
    // A = (decayed K)^T as bf16 hi + lo fragments: rows d_k (64 mt + 16 rw ..), k = key index; register e of a
    // fragment holds keys 16 kk + 2 t4 + 8 (e >> 1) + {0, 1}. Whole chunks and the last partial one as separate
    // straight-line instantiations (a branch per register kept the compiler from interleaving the registers'
    // chains: +0.5 us a chunk).
    uint32_t ahi[4][2][4], alo[4][2][4];
    auto decayed_k = [&](auto whole) {
        constexpr bool kWhole = decltype(whole)::value;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
            [[maybe_unused]] float kd[4];
            if constexpr (!kWhole) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int j = 16 * kk + 2 * t4 + (e & 1) + 8 * (e >> 1);
                    kd[e] = j < m ? exp2f(nl2 * static_cast<float>(m - 1 - j)) : 0.0f;
                }
            }
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
                const int krow = 16 * kk + (lane & 7) + 8 * (lane >> 4);
                const int mcol = 64 * mt + 16 * rw + 8 * ((lane >> 3) & 1);
                uint32_t r[4];
                ldsm_x4_t(smem_u32(sk + swz128<kC>(krow, mcol)), r[0], r[1], r[2], r[3]);
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    if constexpr (kWhole) {
                        const uint32_t dh = sd.hi[kk][e >> 1];
                        const uint32_t hi = fma_bf16x2(r[e], dh, 0x80008000u);  // + (-0): keeps k d_hi's sign
                        const uint32_t rest = fma_bf16x2(r[e], dh, hi ^ 0x80008000u);
                        ahi[kk][mt][e] = hi;
                        alo[kk][mt][e] = fma_bf16x2(r[e], sd.lo[kk][e >> 1], rest);
                    } else {
                        const float2 f = unpack_bf16(r[e]);
                        float x0 = f.x * kd[(e >> 1) * 2], x1 = f.y * kd[(e >> 1) * 2 + 1];
                        if (kMaskTail) {  // keys past the sequence's end
                            const int j = 16 * kk + 2 * t4 + 8 * (e >> 1);
                            x0 = j < m ? x0 : 0.0f;
                            x1 = j + 1 < m ? x1 : 0.0f;
                        }
                        split_bf16_hi_lo(x0, x1, ahi[kk][mt][e], alo[kk][mt][e]);
                    }
                }
            }
        }
    };
    if (m == kC) decayed_k(std::true_type{});
    else decayed_k(std::false_type{});
    fence_regs(sacc[0]);
    fence_regs(sacc[1]);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
        const uint64_t dv = sw128_desc(sv_u32 + kk * 2048, 8192, 1024);
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
            wgmma_m64n64k16_rs<1>(sacc[mt], ahi[kk][mt], dv);
            wgmma_m64n64k16_rs<1>(sacc[mt], alo[kk][mt], dv);
        }
    }
    wgmma_commit();
    after_issue();
    wgmma_wait0();
    fence_regs(sacc[0]);
    fence_regs(sacc[1]);
}

// Launches a prefill kernel over grid = (slices, heads, sequences x segments) with `threads` threads and `smem` bytes
// of dynamic shared memory, the two value slices of a head as a 2-CTA cluster when `cluster` (co-scheduled on one
// GPC, so the second slice's q/k reads hit L2).
template <auto kKernel, class... Args>
Status launch_prefill(dim3 grid, int threads, int smem, bool cluster, cudaStream_t stream, const Args&... args) {
    VOLT_RETURN_IF_ERROR(allow_smem<kKernel>(smem));
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = dim3(threads);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = kSlices;
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    if (cluster) {
        cfg.attrs = &attr;
        cfg.numAttrs = 1;
    }
    VOLT_CUDA_RETURN_IF_ERROR(cudaLaunchKernelEx(&cfg, kKernel, args...));
    return Status::ok();
}

// The TMA-fed prefill kernel (lightning_prefill_tma.cu): false when the driver offers no cuTensorMapEncodeTiled.
bool tma_prefill_available();
// Launches it over `grid` = (slices, heads, sequences x segments), as a 2-CTA cluster per head when `cluster`.
Status launch_tma_prefill(const PrefillArgs& a, dim3 grid, bool cluster, cudaStream_t stream);

}  // namespace volt::cuda::lightning
