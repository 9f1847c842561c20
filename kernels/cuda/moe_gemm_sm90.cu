// The MoE GEMM path's grouped GEMM on sm_90a (moe_gemm_sm90.h): wgmma with the weights as A and the tokens as B, a
// shared-memory ring filled by TMA (3 stages, 4 with quantised weights), the SwiGLU of the up projection in the
// epilogue.
//
// The products are computed transposed (out^T = W x^T): a tile is 256 weight rows by 192 tokens by 64 k, and the
// tokens sit on wgmma's N side, which may be any multiple of 8. So an expert's last token tile runs only as wide as
// its tokens need (rounded up to 32) instead of a whole M tile: with ~512 tokens per expert, 128-row M tiles
// computed 11-12% of rows that were never stored. 192 tokens (not 128) cut the L2 reads per product by ~17%: the
// kernel is bound by L2 throughput (~87% of peak), not by the tensor cores.
//
// Three warpgroups: one thread of warpgroup 0 issues each k step's loads (192 tokens of x, 24 KiB; 256 weight rows,
// 32 KiB; 128-byte swizzle) into a stage whose "full" mbarrier counts the bytes in; each consumer warpgroup
// multiplies two 64-row slices of the weight rows by the tile's tokens (two wgmma per k16, one k step in flight
// while the next is issued) and releases the stage on "empty". Gated: the weight rows are w1's rows 128 j.. and
// w3's same rows, and consumer c takes w1's 64 c.. and w3's 64 c.., so the thread that holds gate(column, token)
// holds up(column, token) in the same register position: SiLU(gate) * up is formed from the fp32 sums. The
// epilogue writes a warpgroup's 64 columns x tokens transposed into shared memory (stmatrix .trans) and copies each
// token's 128 bytes out with 16-byte stores. Each expert's weights are their own allocation, so each has a tensor
// map (cached on the host by pointer and shape), passed with the launch.
//
// Quantised weights (int8, FP8 e4m3; one fp32 scale per 128 x 128 block) come as bytes (16 KiB a k step instead of
// 32, in the x ring's stage, 64-byte swizzled) and are widened, times their block scales, in registers straight into
// wgmma's A fragments (A from registers): each thread reads the 4 bytes of each of its 4 rows a k16 step needs,
// widens them and issues that step's two products; one k16 step's products stay in flight while the next is widened.
// Each value is rounded once. The kernel reads each weight byte once from HBM, where dequantising first wrote and
// re-read a bf16 copy of every touched expert (~27 GB of traffic for a MiniMax layer at 8192 tokens instead of ~5.4).
// Reading 4 consecutive bytes puts weight columns 4 t4 .. 4 t4 + 3 where the fragment wants k 2 t4, 2 t4 + 1,
// 2 t4 + 8, 2 t4 + 9, so x comes in that k order (GroupedGemmArgs). The up (gated) product widens to f16 (an int8
// pair in three instructions, an e4m3 pair in two) and takes x as f16 times a power of two per row
// (GroupedGemmArgs::x_inv), each weight row block's scales times another (row_block_power), both undone before the
// SwiGLU; it writes h in the down product's k order. The down (plain) product widens to bf16 (its input, the SwiGLU
// output, would need a scaling pass to go to f16).
// History (H100, MiniMax sizes, 8192 tokens): widening both products to bf16 tiles in shared memory made the MoE
// ~1.3x the bf16 kernel's time (session 35: ~3.75 instructions a value beside 192 accumulators, issue 38% active);
// the up product in f16, still through shared memory, 11.2-11.4 ms against bf16's 9.1-9.3 (session 36: without any
// widening it would take 8.0-8.3; the shared-memory round trip and the per-step barriers were what was left); both
// products in registers (session 37): int8 10.1-10.3 ms, FP8 9.5-9.8 against bf16's 9.3-9.7 (cuBLAS) in the same
// runs; the up kernel's tensor pipe 75% active, its warps waiting mostly on their wgmma groups.
// Three warps of warpgroup 0 widening for both consumers measured slower still (one warp per scheduler was the
// critical path).
#include "kernels/cuda/moe_gemm_sm90.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <memory>
#include <type_traits>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/mbarrier.cuh"
#include "kernels/cuda/quant_widen.cuh"
#include "kernels/cuda/tensor_map.h"
#include "kernels/cuda/wgmma.cuh"
#include "sdk/cuda_check.h"

namespace volt::cuda::moe_gemm {
namespace {

constexpr int kBW = 256, kBK = 64;  // weight rows and k per tile
constexpr int kWBytes = kBW * kBK * 2;  // a bf16 weight tile: 32 KiB
constexpr int kW8Bytes = kBW * kBK;     // a quantised one: 16 KiB
constexpr int kThreads = 384;           // producer warpgroup + two consumer warpgroups

constexpr int kBT = 192;  // tokens per tile
constexpr int kXBytes = kBT * kBK * 2;  // 24 KiB
constexpr int kOutBytes = kBT * 64 * 2;  // a consumer's 64 output columns x kBT tokens, bf16: 24 KiB

// The gated product of quantised weights runs as f16 products (GroupedGemmArgs::x_inv); the plain one widens to
// bf16; bf16 weights load as they are.
template <bool kGated, MoeWeightType kW>
constexpr bool kF16Products = kGated && kW != MoeWeightType::kBF16;

// Shared memory of a weight type: a ring of stages of x and weight tiles, then the two output stagings. bf16: 3
// stages (218 KiB of the 227 KiB an sm_90 block may have); quantised (16 KiB of bytes a stage): 4 (209 KiB).
template <MoeWeightType kW>
struct Plan {
    static constexpr bool kQuant = kW != MoeWeightType::kBF16;
    static constexpr int kStages = kQuant ? 4 : 3;
    static constexpr int kWTileBytes = kQuant ? kW8Bytes : kWBytes;
    static constexpr int kStageBytes = kXBytes + kWTileBytes;
    static constexpr int kStagingAt = kStages * kStageBytes;
    static constexpr int kBarsAt = kStagingAt + 2 * kOutBytes;
    static constexpr int kSmemBytes = kBarsAt + 2 * kStages * 8 + 1024;  // + alignment slack
    static_assert(kSmemBytes <= 227 * 1024, "shared memory of one sm_90 block");
    static_assert(kStageBytes % 1024 == 0, "stages keep the tiles' swizzle atoms aligned");
};
// Consumers hold 2 x 96 fp32 accumulators a thread: 240 registers, the producer warpgroup 24. setmaxnreg moves
// registers only within what the block was launched with (168 a thread for 384 threads on one SM): a split summing to
// more waits in setmaxnreg.inc forever.
constexpr int kProducerRegs = 24, kConsumerRegs = 240;
static_assert(128 * kProducerRegs + 256 * kConsumerRegs <= 168 * kThreads, "registers the block launches with");

struct Params {
    CUtensorMap a;                         // x [rows, K], boxes of 64 k x kBT rows
    CUtensorMap b[2 * kMaxTmaExperts];     // gated: w1 of expert e at 2 e, w3 at 2 e + 1 (64 x 128); plain: w2 at 2 e
                                           // (64 x 256); bf16 or bytes
    const float* sa[kMaxTmaExperts];       // quantised: block scales of w1 (gated) or w2, per expert
    const float* sb[kMaxTmaExperts];       // quantised, gated: of w3
    const int32_t* off;
    int E;
    int64_t k;
    __nv_bfloat16* out;
    int64_t os;
    int n_tiles;  // weight tiles per expert: n / 128 (gated) or n / 256 (plain)
    const float* x_inv;  // f16 products: x row r is f16 times a power of two whose inverse is x_inv[r]
    bool out_frag;       // gated: out's 16-column groups in the k order of the fragments (GroupedGemmArgs)
};
// f16 products: a weight row block's scales times the power of two that puts their largest in [1, 2)
// (row_block_power), so that its widened f16 weights are at most 448 * 2 and, in blocks with scales down to 2^-14 of
// the largest, normal f16 whatever the weights' magnitude; undone with x's row scale in the epilogue.
__device__ __forceinline__ float row_block_power(const float* scales, int64_t kb, int lane) {
    float m = 0.0f;
    for (int64_t b = lane; b < kb; b += 32) m = fmaxf(m, __ldg(scales + b));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    // (fmaxf skips NaNs, which then propagate through the widened weights; zero or infinite scales leave it at 1.)
    return m > 0.0f && isfinite(m) ? ldexpf(1.0f, max(-ilogbf(m), -120)) : 1.0f;
}

// Block b's expert e, token tile i (tokens off[e] + kBT i ..) and weight tile j.
__device__ __forceinline__ void tile_of(const Params& p, int64_t b, int& e, int64_t& i, int64_t& j) {
    int64_t base = 0;
    for (e = 0; e < p.E; ++e) {
        const int64_t mt = (p.off[e + 1] - p.off[e] + kBT - 1) / kBT;
        const int64_t tiles = mt * p.n_tiles;
        if (b < base + tiles) {
            j = (b - base) / mt;
            i = (b - base) % mt;
            return;
        }
        base += tiles;
    }
    e = -1;  // the grid is sized from the same offsets, so no block gets here
}

// The ring, the stagings and the ring's mbarriers: "full" (TMA bytes landed) and "empty" (one arrival per consumer
// warp once done with the stage).
template <class P>
struct Ring {
    uint32_t base;
    int ksteps;
    __device__ uint32_t x(int s) const { return base + s * P::kStageBytes; }
    __device__ uint32_t w(int s) const { return x(s) + kXBytes; }  // bf16, or bytes
    __device__ uint32_t staging(int c) const { return base + P::kStagingAt + c * kOutBytes; }
    __device__ uint32_t full(int s) const { return base + P::kBarsAt + 8 * s; }
    __device__ uint32_t empty(int s) const { return full(P::kStages + s); }
};

__device__ __forceinline__ uint64_t desc(uint32_t addr) { return sw128_desc(addr, 16, 1024); }

// A consumer warpgroup's 64 output columns x kN tokens (v: the fragment of out^T, v[4 q + e] = column 16 w + g +
// 8 (e >> 1), token 8 q + 2 t4 + (e & 1)) as bf16 to out[tok0 + n, col0 ..], tokens n < ntok, through the
// warpgroup's staging tile `stage` ([kBT tokens][64 columns], 16-byte chunks XOR-swizzled by token). bar: the
// warpgroup's named barrier. frag: each 16 columns' bf16 pairs in the order 0, 2, 4, 6, 1, 3, 5, 7 (the k order in
// which the plain product of quantised weights takes its x).
template <int kN>
__device__ __forceinline__ void store_cols(const float (&v)[kN / 2], uint32_t stage, int bar, int ntok, int wtid,
                                           __nv_bfloat16* out, int64_t os, int64_t tok0, int64_t col0,
                                           bool frag = false) {
    const int w = wtid >> 5, lane = wtid & 31;
    named_sync(bar, 128);  // the previous tile's copy-out has read the staging tile
#pragma unroll
    for (int q = 0; q < kN / 8; q += 2) {
        const int i = lane >> 3, n = 8 * (q + (i >> 1)) + (lane & 7), chunk = 2 * w + (i & 1);
        stsm_x4_t(stage + n * 128 + ((chunk ^ (n & 7)) << 4), pack_bf16(v[4 * q], v[4 * q + 1]),
                  pack_bf16(v[4 * q + 2], v[4 * q + 3]), pack_bf16(v[4 * q + 4], v[4 * q + 5]),
                  pack_bf16(v[4 * q + 6], v[4 * q + 7]));
    }
    named_sync(bar, 128);
    auto chunk = [&](int n, int ch) { return lds128(stage + n * 128 + ((ch ^ (n & 7)) << 4)); };
    if (frag) {
        for (int idx = wtid; idx < ntok * 4; idx += 128) {
            const int n = idx >> 2, gr = idx & 3;
            const uint4 a = chunk(n, 2 * gr), b = chunk(n, 2 * gr + 1);  // pairs 0-3 and 4-7 of 16 columns
            uint4* o = reinterpret_cast<uint4*>(out + (tok0 + n) * os + col0 + gr * 16);
            o[0] = make_uint4(a.x, a.z, b.x, b.z);
            o[1] = make_uint4(a.y, a.w, b.y, b.w);
        }
    } else {
        for (int idx = wtid; idx < ntok * 8; idx += 128) {
            const int n = idx >> 3, ch = idx & 7;
            *reinterpret_cast<uint4*>(out + (tok0 + n) * os + col0 + ch * 8) = chunk(n, ch);
        }
    }
}

// The plain product's epilogue: consumer c's two 64-row slices (w2's rows 256 j + 128 c.. and + 64..) as out's
// columns.
template <int kN>
__device__ __forceinline__ void store_plain(const float (&acc0)[kN / 2], const float (&acc1)[kN / 2], uint32_t stage,
                                            int c, int ntok, int wtid, const Params& p, int64_t tok0, int64_t j) {
    store_cols<kN>(acc0, stage, 1 + c, ntok, wtid, p.out, p.os, tok0, j * kBW + 128 * c);
    store_cols<kN>(acc1, stage, 1 + c, ntok, wtid, p.out, p.os, tok0, j * kBW + 128 * c + 64);
}

// The end of a tile's k loop: its last products done (the accumulators readable), its last stage released.
template <int N, class Release>
__device__ __forceinline__ void finish_products(float (&acc0)[N], float (&acc1)[N], const Release& release,
                                                int last) {
    wgmma_wait0();
    fence_regs(acc0);
    fence_regs(acc1);
    release(last);
}

// Consumer warpgroup c's part of a tile of bf16 weights, kN tokens wide: the k loop over the ring (one k step in
// flight while the next is issued; a stage is released once its products are done), then the epilogue.
template <int kN, bool kGated, class P>
__device__ __forceinline__ void tile(const Ring<P>& r, const Params& p, int c, int ntok, int64_t tok0, int64_t j) {
    static_assert(!P::kQuant, "tile_regs takes quantised weights");
    const int wtid = threadIdx.x - 128 * (c + 1), lane = wtid & 31;
    // Byte offsets of the warpgroup's two 64-row weight slices in a weight tile (rows of 128 bytes).
    const uint32_t a0 = kGated ? c * 8192 : c * 16384, a1 = kGated ? 16384 + c * 8192 : c * 16384 + 8192;
    // Each width its own accumulators: one set shared by the widths left ptxas short of registers for the wgmma
    // pipeline (it serialised the products).
    float acc0[kN / 2], acc1[kN / 2];
#pragma unroll
    for (int q = 0; q < kN / 2; ++q) acc0[q] = acc1[q] = 0.0f;
    auto release = [&](int ks) {
        __syncwarp();
        if (lane == 0) mbar_arrive(r.empty(ks % P::kStages));
    };
    for (int ks = 0; ks < r.ksteps; ++ks) {
        const int s = ks % P::kStages;
        mbar_wait(r.full(s), (ks / P::kStages) & 1);
        const uint32_t x = r.x(s), w = r.w(s);
        fence_regs(acc0);
        fence_regs(acc1);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
            const uint64_t bx = desc(x + kk * 32);
            wgmma_m64nk16_ss<kN, 1>(acc0, desc(w + a0 + kk * 32), bx);
            wgmma_m64nk16_ss<kN, 1>(acc1, desc(w + a1 + kk * 32), bx);
        }
        wgmma_commit();
        wgmma_wait1();  // the previous k step's products are done: its stage can be reused
        fence_regs(acc0);
        fence_regs(acc1);
        if (ks > 0) release(ks - 1);
    }
    finish_products(acc0, acc1, release, r.ksteps - 1);
    const uint32_t stage = r.staging(c);
    if constexpr (kGated) {
#pragma unroll
        for (int q = 0; q < kN / 2; ++q) acc0[q] = swiglu_f(acc0[q], acc1[q]);
        store_cols<kN>(acc0, stage, 1 + c, ntok, wtid, p.out, p.os, tok0, j * 128 + 64 * c, p.out_frag);
    } else {
        store_plain<kN>(acc0, acc1, stage, c, ntok, wtid, p, tok0, j);
    }
}

// The A fragments of one k16 step of quantised weights: the thread's 4 bytes of k16 step q (bytes 16 q + 4 t4 ..)
// of its rows g and g + 8 (u) widened times their scale, to f16 (kF16; an f16 pair) or bf16 (an fp32 scale).
// wgmma wants k 2 t4, 2 t4 + 1 in a[0] (row g) and a[1] (row g + 8), k 2 t4 + 8, + 9 in a[2], a[3]: bytes 0, 1 go
// there, bytes 2, 3 to the k + 8 pair, which is the k order x comes in.
template <MoeWeightType kW, bool kF16, class Scale>
__device__ __forceinline__ void widen_fragment(const uint2& u, Scale scale, uint32_t (&a)[4]) {
    uint4 v;  // rows g: pairs (0, 1), (2, 3); g + 8: the same
    if constexpr (kF16) v = widen8_f16_scaled<kW>(u, scale);
    else v = widen8_scaled<kW>(u, scale);
    a[0] = v.x, a[1] = v.z, a[2] = v.y, a[3] = v.w;
}

// Consumer warpgroup c's part of a tile of quantised weights, kN tokens wide, widened in registers. Its two 64-row
// slices: gated, w1's and w3's rows 64 c.. (tile rows 64 c.. and 128 + 64 c..); plain, w2's 128 c.. and 128 c + 64..
// Per k16 step each thread reads 4 bytes of each of its 4 rows (16 w + g and + 8 of both slices; the 64-byte swizzle
// puts a warp's 32 reads in 32 banks), widens them into the A fragments of one of two buffers and issues the step's
// two products; the step before stays in flight, and a buffer is written again only once wgmma_wait1 has seen its
// products done. A stage is released once the next k step's second products are issued (its last were then done).
template <int kN, bool kGated, MoeWeightType kW, class P>
__device__ __forceinline__ void tile_regs(const Ring<P>& r, const Params& p, int c, int ntok, int e, int64_t tok0,
                                          int64_t j) {
    static_assert(P::kQuant);
    constexpr bool kF16 = kF16Products<kGated, kW>;
    using Scale = std::conditional_t<kF16, __half2, float>;
    const int wtid = threadIdx.x - 128 * (c + 1), lane = wtid & 31, g = lane >> 2;
    // The thread's rows' bytes in a stage's weight tile (rows of 64 bytes): slice 0's row, + 8, and slice 1's (kSlice
    // bytes on). All four share (row >> 1) & 3 = (g >> 1) & 3, the swizzle's XOR of the 16-byte chunk.
    const uint32_t row_at = ((kGated ? 64 : 128) * c + 16 * (wtid >> 5) + g) * 64 + 4 * (lane & 3);
    constexpr uint32_t kSlice = (kGated ? 128 : 64) * 64;
    const int chunk_xor = (g >> 1) & 3;
    auto load_bytes = [&](int s, int q, uint32_t (&u)[4]) {
        const uint32_t at = r.w(s) + row_at + ((q ^ chunk_xor) << 4);
        asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(u[0]) : "r"(at));
        asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(u[1]) : "r"(at + 8 * 64));
        asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(u[2]) : "r"(at + kSlice));
        asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(u[3]) : "r"(at + kSlice + 8 * 64));
    };
    float acc0[kN / 2], acc1[kN / 2];
#pragma unroll
    for (int q = 0; q < kN / 2; ++q) acc0[q] = acc1[q] = 0.0f;
    auto release = [&](int ks) {
        __syncwarp();
        if (lane == 0) mbar_arrive(r.empty(ks % P::kStages));
    };
    // The block scales of the slices' row blocks (gated: w1's and w3's block row j; plain: w2's 2 j + c for both), a
    // block per two k steps, each step's loaded a step ahead; f16 products: times their row blocks' powers of two.
    const int64_t kb = (p.k + 127) / 128;
    const float* s0 = p.sa[e] + (kGated ? j : 2 * j + c) * kb;
    const float* s1 = kGated ? p.sb[e] + j * kb : s0;
    const float pw0 = kF16 ? row_block_power(s0, kb, lane) : 1.0f, pw1 = kF16 ? row_block_power(s1, kb, lane) : 1.0f;
    auto scale = [](float sc, float pw) -> Scale {
        if constexpr (kF16) return __float2half2_rn(sc * pw);
        else return sc;
    };
    Scale h0 = scale(__ldg(s0), pw0), h1 = scale(__ldg(s1), pw1);
    float sc0 = __ldg(s0), sc1 = __ldg(s1);  // step 1: block 0
    uint32_t u[4];             // the next k16 step's bytes
    uint32_t a[2][2][4] = {};  // two buffers of the slices' fragments, for alternate k16 steps
    mbar_wait(r.full(0), 0);
    load_bytes(0, 0, u);
    for (int ks = 0; ks < r.ksteps; ++ks) {
        const int s = ks % P::kStages;
        const uint32_t x = r.x(s);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            uint32_t(&f)[2][4] = a[q & 1];
            wgmma_wait1();  // the k16 step before the last is done: its buffer may be written again
            fence_regs(f[0]);
            fence_regs(f[1]);
            widen_fragment<kW, kF16>(make_uint2(u[0], u[1]), h0, f[0]);
            widen_fragment<kW, kF16>(make_uint2(u[2], u[3]), h1, f[1]);
            fence_regs(f[0]);  // widened before the fence: ptxas serialises products whose A is written after it
            fence_regs(f[1]);
            fence_regs(acc0);
            fence_regs(acc1);
            wgmma_fence();
            const uint64_t bx = desc(x + q * 32);
            wgmma_m64nk16_rs<kN, 0, 1, kF16>(acc0, f[0], bx);
            wgmma_m64nk16_rs<kN, 0, 1, kF16>(acc1, f[1], bx);
            wgmma_commit();
            // (Released here, after the products are issued: released between the wait and the widening, ptxas
            // serialised every product.)
            if (q == 1 && ks > 0) release(ks - 1);
            if (q < 3) {
                load_bytes(s, q + 1, u);
            } else if (ks + 1 < r.ksteps) {
                const int sn = (ks + 1) % P::kStages;
                mbar_wait(r.full(sn), ((ks + 1) / P::kStages) & 1);
                load_bytes(sn, 0, u);
                h0 = scale(sc0, pw0), h1 = scale(sc1, pw1);
                if (ks + 2 < r.ksteps) sc0 = __ldg(s0 + (ks + 2) / 2), sc1 = __ldg(s1 + (ks + 2) / 2);
            }
        }
    }
    finish_products(acc0, acc1, release, r.ksteps - 1);
    const uint32_t stage = r.staging(c);
    if constexpr (kGated) {
        // x's row scale undone (token 8 q + 2 t4 + (e & 1) of v[4 q + e]), with the row blocks' powers, then the
        // SwiGLU.
        auto unscale = [&](int q, int e) {
            const int n = 8 * q + 2 * (lane & 3) + e;
            return n < ntok ? __ldg(p.x_inv + tok0 + n) : 0.0f;
        };
#pragma unroll
        for (int q = 0; q < kN / 8; ++q)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const float f = unscale(q, e), f0 = f / pw0, f1 = f / pw1;
                const int i0 = 4 * q + e, i1 = i0 + 2;
                acc0[i0] = swiglu_f(acc0[i0] * f0, acc1[i0] * f1);
                acc0[i1] = swiglu_f(acc0[i1] * f0, acc1[i1] * f1);
            }
        store_cols<kN>(acc0, stage, 1 + c, ntok, wtid, p.out, p.os, tok0, j * 128 + 64 * c, p.out_frag);
    } else {
        store_plain<kN>(acc0, acc1, stage, c, ntok, wtid, p, tok0, j);
    }
}

// Step ks's weight tile (tile_bytes: bf16 or bytes) into dst, counted on bar: w1's 128 rows 128 j.. then w3's same
// rows (gated), or w2's 256 rows 256 j.. (plain).
template <bool kGated>
__device__ __forceinline__ void load_weights(const Params& p, int e, int64_t j, int ks, uint32_t dst, int tile_bytes,
                                             uint32_t bar) {
    if constexpr (kGated) {
        tma_load_2d(dst, &p.b[2 * e], bar, ks * kBK, static_cast<int>(j * 128));
        tma_load_2d(dst + tile_bytes / 2, &p.b[2 * e + 1], bar, ks * kBK, static_cast<int>(j * 128));
    } else {
        tma_load_2d(dst, &p.b[2 * e], bar, ks * kBK, static_cast<int>(j * kBW));
    }
}

template <bool kGated, MoeWeightType kW>
__global__ void __launch_bounds__(kThreads, 1) grouped_gemm_kernel(const __grid_constant__ Params p) {
    using P = Plan<kW>;
    extern __shared__ __align__(1024) char smem_raw[];
    char* tiles = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    const Ring<P> r{smem_u32(tiles), static_cast<int>(p.k / kBK)};
    const int tid = threadIdx.x;
    const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);
    if (tid == 0) {
        for (int s = 0; s < P::kStages; ++s) {
            mbar_init(r.full(s), 1);   // the issuing thread's arrival + the TMA bytes
            mbar_init(r.empty(s), 8);  // one arrival per consumer warp
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    int e;
    int64_t i, j;
    tile_of(p, blockIdx.x, e, i, j);

    if (wg == 0) {  // ---- producer: thread 0 fills the ring ---------------------------------------------------------
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
        if (tid == 0) {
            const int tok0 = static_cast<int>(p.off[e] + i * kBT);
            for (int ks = 0; ks < r.ksteps; ++ks) {
                const int s = ks % P::kStages;
                if (ks >= P::kStages) mbar_wait(r.empty(s), (ks / P::kStages - 1) & 1);
                mbar_arrive_expect_tx(r.full(s), P::kStageBytes);
                tma_load_2d(r.x(s), &p.a, r.full(s), ks * kBK, tok0);
                load_weights<kGated>(p, e, j, ks, r.w(s), P::kWTileBytes, r.full(s));
            }
        }
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));

    // ---- consumers ----------------------------------------------------------------------------------------------
    const int c = wg - 1;
    const int64_t tok0 = p.off[e] + i * kBT;
    const int ntok = static_cast<int>(std::min<int64_t>(kBT, p.off[e + 1] - tok0));
    // The tile's width: its tokens rounded up to 32.
    auto run = [&](auto width) {
        constexpr int kN = decltype(width)::value;
        if constexpr (P::kQuant) tile_regs<kN, kGated, kW>(r, p, c, ntok, e, tok0, j);
        else tile<kN, kGated>(r, p, c, ntok, tok0, j);
    };
    switch ((ntok + 31) / 32) {
        case 1: run(std::integral_constant<int, 32>{}); break;
        case 2: run(std::integral_constant<int, 64>{}); break;
        case 3: run(std::integral_constant<int, 96>{}); break;
        case 4: run(std::integral_constant<int, 128>{}); break;
        case 5: run(std::integral_constant<int, 160>{}); break;
        default: run(std::integral_constant<int, 192>{}); break;
    }
}

// A weight's tensor map (weight_tile_map): bytes come 64-byte swizzled (tile_regs' 4-byte reads).
Expected<CUtensorMap> weight_map(const void* w, int64_t rows, int64_t cols, int box_rows, bool bytes) {
    return weight_tile_map(w, rows, cols, box_rows, bytes ? WeightTile::kBytesSwizzle64 : WeightTile::kBf16);
}

template <bool kGated, MoeWeightType kW>
Status launch_kernel(const Params& p, int64_t blocks, cudaStream_t stream) {
    constexpr auto kernel = grouped_gemm_kernel<kGated, kW>;
    constexpr int smem = Plan<kW>::kSmemBytes;
    VOLT_RETURN_IF_ERROR(allow_smem<kernel>(smem));
    kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(p);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

template <bool kGated>
Status launch_typed(const GroupedGemmArgs& a, const Params& p, int64_t blocks, cudaStream_t stream) {
    switch (a.weights) {
        case MoeWeightType::kBF16: return launch_kernel<kGated, MoeWeightType::kBF16>(p, blocks, stream);
        case MoeWeightType::kInt8: return launch_kernel<kGated, MoeWeightType::kInt8>(p, blocks, stream);
        case MoeWeightType::kFp8E4M3: return launch_kernel<kGated, MoeWeightType::kFp8E4M3>(p, blocks, stream);
    }
    return invalid_argument("MoE grouped GEMM: unknown weight type");
}

Status launch(const GroupedGemmArgs& a, const int32_t* host_offsets, cudaStream_t stream) {
    static_assert(sizeof(Params) < 32000, "kernel parameters are limited to 32 KiB");
    auto p = std::make_unique<Params>();
    const bool bytes = a.weights != MoeWeightType::kBF16;
    const int n_tiles = static_cast<int>(a.n / (a.gated ? 128 : kBW));
    int64_t blocks = 0;
    for (int e = 0; e < a.num_experts; ++e) {
        const int64_t count = int64_t{host_offsets[e + 1]} - host_offsets[e];
        if (count == 0) continue;  // no tile reads an empty expert's map
        blocks += (count + kBT - 1) / kBT * n_tiles;
        if (a.gated) {
            VOLT_ASSIGN_OR_RETURN(p->b[2 * e], weight_map(a.w_a[e], a.n, a.k, 128, bytes));
            VOLT_ASSIGN_OR_RETURN(p->b[2 * e + 1], weight_map(a.w_b[e], a.n, a.k, 128, bytes));
        } else {
            VOLT_ASSIGN_OR_RETURN(p->b[2 * e], weight_map(a.w_a[e], a.n, a.k, kBW, bytes));
        }
        if (bytes) {
            p->sa[e] = a.s_a[e];
            p->sb[e] = a.gated ? a.s_b[e] : nullptr;
        }
    }
    if (blocks == 0) return Status::ok();
    // (f16 rows of x too: the map moves 2-byte elements, and both types fill out-of-bounds rows with zeros.)
    VOLT_ASSIGN_OR_RETURN(p->a, bf16_tile_map(a.x, a.rows, a.k, a.x_stride, kBT));
    p->off = a.offsets;
    p->E = a.num_experts;
    p->k = a.k;
    p->out = static_cast<__nv_bfloat16*>(a.out);
    p->os = a.out_stride;
    p->n_tiles = n_tiles;
    p->x_inv = a.x_inv;
    p->out_frag = a.out_fragment_order;
    // One CTA per tile, dispatched in order: the CTAs running at once hold consecutive tiles, which share their
    // weight tiles through L2. (A persistent grid striding over the tiles drifted apart and read the weights ~4x
    // from DRAM: 30 GB for the up projection's 7.3 GB.)
    if (blocks > INT32_MAX) return invalid_argument("MoE grouped GEMM: ", blocks, " tiles exceed one launch's grid");
    return a.gated ? launch_typed<true>(a, *p, blocks, stream) : launch_typed<false>(a, *p, blocks, stream);
}

}  // namespace

const char* grouped_gemm_unfit(const GroupedGemmArgs& a) {
    if (a.num_experts < 1 || a.num_experts > kMaxTmaExperts) return "1 to 64 experts";
    if (a.w_a == nullptr || (a.gated && a.w_b == nullptr)) return "the weights' pointer lists are missing";
    if (a.k <= 0 || a.k % kBK != 0) return "K must be a positive multiple of 64";
    if (a.n <= 0 || a.n % (a.gated ? 128 : kBW) != 0) return "N must be a multiple of 128 (gated) or 256 (plain)";
    if (a.rows > INT32_MAX || a.n > INT32_MAX || a.k > INT32_MAX) return "rows, N and K must fit 32 bits";
    if (!aligned16(a.x) || !aligned16(a.out) || a.x_stride % 8 != 0 || a.out_stride % 8 != 0)
        return "x and out must be 16-byte aligned with strides of multiples of 8";
    const bool bytes = a.weights != MoeWeightType::kBF16;
    if (bytes && (a.s_a == nullptr || (a.gated && a.s_b == nullptr))) return "quantised weights need their scales";
    if ((a.x_inv != nullptr) != (bytes && a.gated))
        return "x as scaled f16 rows (x_inv) with quantised gated weights, as bf16 rows otherwise";
    if (a.out_fragment_order && !a.gated) return "only the gated product writes its output in fragment order";
    for (int e = 0; e < a.num_experts; ++e) {
        if (!aligned16(a.w_a[e]) || (a.gated && !aligned16(a.w_b[e]))) return "weights must be 16-byte aligned";
        if (bytes && (a.s_a[e] == nullptr || (a.gated && a.s_b[e] == nullptr)))
            return "quantised weights need their scales";
    }
    if (tensor_map_encoder() == nullptr) return "the driver has no TMA tensor-map encoder";
    if (!on_hopper()) return "needs an sm_90 GPU (Hopper)";
    return nullptr;
}

Status run_grouped_gemm(const GroupedGemmArgs& a, const int32_t* host_offsets, cudaStream_t stream) {
    if (const char* why = grouped_gemm_unfit(a)) return unimplemented("MoE grouped GEMM (sm_90): ", why);
    return launch(a, host_offsets, stream);
}

}  // namespace volt::cuda::moe_gemm
