// The MoE decode path's grouped GEMV with the weights streamed by TMA (Hopper) through shared-memory rings, for
// quantised experts (FP8 e4m3, int8; 128 x 128 block scales) multiplied as f16 products (GemvArgs::in_h).
//
// Why: gemv_mma_kernel (kernels/cuda/moe.cu) loads each warp's weights into its registers, a batch at a time, and
// multiplies them with no load in flight: its FP8 GEMVs stream ~2.0 TB/s at T = 1 on an H100 and an H200 alike
// (bench/RESULTS.md, sessions 28-31), the larger share of an H200's FP8 decode step (4.25 TB/s copy ceiling). Its
// load pattern alone streams at 85% of the ceiling (session 30's probe): what was missing is bytes in flight during
// the multiplies, which registers cannot hold. Here one producer thread per CTA keeps a ring of stages in flight
// whatever the consumers do.
//
// Work: a unit is (touched expert, 16 output rows, pass of up to 16 of its tokens), units dealt to the CTAs (two per
// SM) round-robin. A stage is the unit's 128 columns of K (one block-scale column): one TMA box of 16 rows x 128 bytes
// per matrix (gated: w1 and w3; rows past the end and columns past K read as zeros). Consumer warp w takes the stages s
// = w, w + 4, ... of each unit, through a ring of its own (3 stages gated, 6 down): it reads its rows from shared
// memory in gemv_mma_kernel's register layout (lane (g, q): bytes [64b + 16q, +16) of rows g and g + 8, for the stage's
// two 64-column steps b; the 8 lanes of a load phase read two rows' 64 bytes in the same banks, a 2-way conflict on an
// 8-instruction read per stage), releases the stage, widens the bytes to f16 and multiplies them with the tokens' f16
// columns (mma_step), scaling the stage's products by its block scale into fp32 sums. At the unit's end the 4
// consumers' sums go through shared memory (double-buffered, named barriers) to the epilogue warp, which adds them in
// warp order (deterministic) and stores the outputs (store_gemv_outputs) while the consumers go on with the next unit's
// stages.
//
// The shape, measured (bench/RESULTS.md, session 45; MoE at MiniMax sizes, FP8, T = 1 and 64, H100 and H200): boxes
// of 64 bytes x 16 rows streamed 20-30% slower than 128-byte ones even with the multiplies left out; a second producer
// thread per warp (4 lanes issuing in turn) was slower still; two CTAs per SM of one producer, 4 consumers and a 48 KiB
// ring each beat one CTA of 8 or 12 consumers and a 96 KiB ring (H200: T = 1 0.132 vs 0.166-0.172 ms, T = 64 1.58-1.59
// vs 2.26 ms; the register kernel 0.145-0.149 / 1.755-1.763 ms). Without the epilogue warp (the consumers meeting at
// each unit's end, the first of them storing) the ring stalled on the storing warp's next stage.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <memory>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/mbarrier.cuh"
#include "kernels/cuda/moe_gemv.cuh"
#include "kernels/cuda/quant_widen.cuh"
#include "kernels/cuda/tensor_map.h"
#include "sdk/cuda_check.h"

namespace volt::cuda {
namespace {

constexpr int kConsumers = 4;                   // consumer warps 0-3; warp 4 the producer, warp 5 the epilogue
constexpr int kThreads = 32 * (kConsumers + 2);
constexpr int kCtasPerSm = 2;
constexpr int kRingBytes = 48 * 1024;
constexpr int kStageCols = 128;                 // K columns per stage (one block-scale column, one TMA box)
constexpr int kBoxBytes = kStageCols * kMmaRows;  // a box: 16 rows x 128 bytes (WeightTile::kBytes128)

template <bool kGated>
struct Plan {
    static constexpr int kMats = kGated ? 2 : 1;
    static constexpr int kStageBytes = kMats * kBoxBytes;  // 4 KiB gated, 2 KiB down
    static constexpr int kStages = kRingBytes / kStageBytes;
    static constexpr int kSums = kMats * 2 * 4;  // a lane's fp32 sums: [kMats][2 n-tiles][4]
    // The consumers' sums at a unit's end, double-buffered by unit: [2][kConsumers][kSums][32 lanes] floats.
    static constexpr int kPartialsAt = kRingBytes;
    static constexpr int kBarsAt = kPartialsAt + 2 * kConsumers * kSums * 32 * 4;
    static constexpr int kSmemBytes = kBarsAt + 2 * kStages * 8 + 1024;  // + the ring's alignment slack
    static_assert(kSmemBytes <= 227 * 1024, "shared memory of one sm_90 block");
};

struct TmaParams {
    CUtensorMap maps[2 * kMoeDecodeTmaMaxExperts];  // gated: w1 of expert e at 2 e, w3 at 2 e + 1; down: w2 at 2 e
    GemvArgs a;
};

template <bool kGated, MoeWeightType kW>
__global__ void __launch_bounds__(kThreads, kCtasPerSm) gemv_tma_kernel(const __grid_constant__ TmaParams p) {
    using P = Plan<kGated>;
    constexpr int kMats = P::kMats;
    extern __shared__ uint8_t smem_raw[];
    __shared__ int touched[kMoeDecodeTmaMaxExperts];
    __shared__ int passes[kMoeDecodeTmaMaxExperts];
    __shared__ int64_t unit_end[kMoeDecodeTmaMaxExperts];  // units of the touched experts 0..j
    __shared__ int num_touched;
    const GemvArgs& a = p.a;
    const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
    float* partials = reinterpret_cast<float*>(smem_raw + (base - smem_u32(smem_raw)) + P::kPartialsAt);
    auto full = [&](uint32_t s) { return base + P::kBarsAt + 8 * s; };
    auto empty = [&](uint32_t s) { return base + P::kBarsAt + 8 * (P::kStages + s); };
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) {
        for (int s = 0; s < P::kStages; ++s) {
            mbar_init(full(s), 1);   // the producer's arrival + the TMA bytes
            mbar_init(empty(s), 1);  // the consuming warp's arrival
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh); the offsets come from permute_kernel
    const int64_t blocks = (a.rows_out + kMmaRows - 1) / kMmaRows;
    if (warp == 0) {
        int n = 0;
        for (int e0 = 0; e0 < a.E; e0 += 32) {
            const int e = e0 + lane;
            const int count = e < a.E ? a.offsets[e + 1] - a.offsets[e] : 0;
            const uint32_t mask = __ballot_sync(0xffffffffu, count > 0);
            if (count > 0) {
                const int j = n + __popc(mask & ((1u << lane) - 1u));
                touched[j] = e;
                passes[j] = (count + kMmaTokens - 1) / kMmaTokens;
            }
            n += __popc(mask);
        }
        __syncwarp();
        if (lane == 0) {
            int64_t units = 0;
            for (int j = 0; j < n; ++j) unit_end[j] = units += blocks * passes[j];
            num_touched = n;
        }
    }
    __syncthreads();
    const int64_t units = num_touched > 0 ? unit_end[num_touched - 1] : 0;
    const uint32_t stages = static_cast<uint32_t>((a.K + kStageCols - 1) / kStageCols);
    // Unit u: expert e, its output rows from row0, its tokens tile .. tile + nt (slots from off).
    struct Unit {
        int e, tile, nt;
        int32_t off;
        int64_t row0;
    };
    auto unit_at = [&](int64_t u) {
        int j = 0;
        while (unit_end[j] <= u) ++j;
        const int64_t r = u - (j > 0 ? unit_end[j - 1] : 0);
        Unit t;
        t.e = touched[j];
        t.row0 = r / passes[j] * kMmaRows;
        t.tile = static_cast<int>(r % passes[j]) * kMmaTokens;
        t.off = a.offsets[t.e];
        t.nt = min(kMmaTokens, a.offsets[t.e + 1] - t.off - t.tile);
        return t;
    };

    // Named barriers between the consumers and the epilogue warp, per half of the double-buffered sums: 1 + b "sums in
    // buffer b" (consumers arrive, the epilogue warp waits), 3 + b "buffer b read" (the reverse).
    constexpr int kSumsBarThreads = 32 * (kConsumers + 1);
    if (warp == kConsumers + 1) {  // the epilogue: each unit's sums added in warp order, the outputs stored
        int i = 0;
        const int64_t my_units = units > blockIdx.x ? (units - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
        for (int64_t u = blockIdx.x; u < units; u += gridDim.x, ++i) {
            const Unit t = unit_at(u);
            const int buf = i & 1;
            named_sync(1 + buf, kSumsBarThreads);
            const float* sums = partials + buf * kConsumers * P::kSums * 32;
            float acc[kMats][2][4];
#pragma unroll
            for (int m = 0; m < kMats; ++m)
#pragma unroll
                for (int n = 0; n < 2; ++n)
#pragma unroll
                    for (int r = 0; r < 4; ++r) {
                        float total = 0.0f;
                        for (int c = 0; c < kConsumers; ++c)
                            total += sums[(c * P::kSums + (m * 2 + n) * 4 + r) * 32 + lane];
                        acc[m][n][r] = total;
                    }
            if (i + 2 < my_units) named_arrive(3 + buf, kSumsBarThreads);  // the consumers' unit i + 2 may write
            store_gemv_outputs<kGated, true>(a, acc, t.row0, t.off, t.tile, t.nt, lane);
        }
        return;
    }
    // Each consumer warp has a ring of its own (kStages / kConsumers slots): stage s of the CTA's unit i is warp
    // w = s % kConsumers's (c = i * its stages per unit + s / kConsumers)-th, in slot c % kSlots of its ring, use
    // c / kSlots. (One ring shared in turn let a warp wait for a slot's next use while its previous fill, another
    // warp's, was still in flight, and the mbarrier's parity cannot tell those two phases apart: with 3 CTAs of 3
    // consumers and a 32 KiB ring per SM the MoE at T = 64 faulted, H200, session 45.)
    constexpr uint32_t kSlots = P::kStages / kConsumers;
    static_assert(P::kStages % kConsumers == 0 && kSlots >= 2, "whole rings of at least two stages per consumer");
    auto ring_pos = [&](int i, uint32_t s, uint32_t& slot, uint32_t& use) {
        const uint32_t w = s % kConsumers, per_unit = (stages - w + kConsumers - 1) / kConsumers;
        const uint32_t c = static_cast<uint32_t>(i) * per_unit + s / kConsumers;
        slot = w * kSlots + c % kSlots;
        use = c / kSlots;
    };
    if (warp == kConsumers) {  // the producer: one thread issues every stage's boxes
        if (lane != 0) return;
        int i = 0;  // the CTA's units before this one
        for (int64_t u = blockIdx.x; u < units; u += gridDim.x, ++i) {
            const Unit t = unit_at(u);
            for (uint32_t s = 0; s < stages; ++s) {
                uint32_t slot, use;
                ring_pos(i, s, slot, use);
                if (use > 0) mbar_wait(empty(slot), (use - 1) & 1u);
                // (A box reaching past K counts its zero fill: all of its bytes arrive.)
                mbar_arrive_expect_tx(full(slot), P::kStageBytes);
                for (int m = 0; m < kMats; ++m)
                    tma_load_2d(base + slot * P::kStageBytes + m * kBoxBytes, &p.maps[2 * t.e + m], full(slot),
                                static_cast<int>(s * kStageCols), static_cast<int>(t.row0));
            }
        }
        return;
    }

    const int g = lane >> 2, q = lane & 3;
    const int64_t scale_cols = (a.K + kBlk - 1) / kBlk;
    int i = 0;  // the CTA's units before this one
    for (int64_t u = blockIdx.x; u < units; u += gridDim.x, ++i) {
        const Unit un = unit_at(u);
        const int e = un.e, nt = un.nt, tile = un.tile;
        const int32_t off = un.off;
        const int64_t row0 = un.row0;
        const bool two = nt > 8;  // uniform: the second n-tile only when there are tokens for it
        // This lane's B rows: token g of each n-tile (null past the pass's tokens: zeros).
        const __half* xr[2];
#pragma unroll
        for (int n = 0; n < 2; ++n) {
            const int t = 8 * n + g;
            const int64_t src = t < nt ? (kGated ? a.perm[off + tile + t] / a.k : off + tile + t) : -1;
            xr[n] = src >= 0 ? a.in_h + src * a.K : nullptr;
        }
        const float* sr[kMats];
#pragma unroll
        for (int m = 0; m < kMats; ++m) sr[m] = (m == 0 ? a.s_a[e] : a.s_b[e]) + (row0 / kBlk) * scale_cols;
        float acc[kMats][2][4] = {};
        for (uint32_t s = warp; s < stages; s += kConsumers) {
            uint32_t slot, use;
            ring_pos(i, s, slot, use);
            const int64_t k0 = int64_t{s} * kStageCols;
            const bool second = k0 + kMmaStep < a.K;  // the stage's second step (uniform; K: a multiple of 64)
            // The scales and the tokens' columns first: they do not wait on the stage.
            float sc[kMats];
#pragma unroll
            for (int m = 0; m < kMats; ++m) sc[m] = __ldg(sr[m] + s);
            uint4 xv[2][2][2];  // [box][n-tile]: the lane's 16 f16 columns
#pragma unroll
            for (int b = 0; b < 2; ++b)
#pragma unroll
                for (int n = 0; n < 2; ++n) load_cols<false>(xr[n], k0 + b * kMmaStep + 16 * q, a.K, false, xv[b][n]);
            mbar_wait(full(slot), use & 1u);
            uint4 w[2][kMats][2];  // [step][matrix][row g, row g + 8]: 16 bytes each
#pragma unroll
            for (int b = 0; b < 2; ++b)
#pragma unroll
                for (int m = 0; m < kMats; ++m)
#pragma unroll
                    for (int h = 0; h < 2; ++h)
                        w[b][m][h] = b == 0 || second ? lds128(base + slot * P::kStageBytes + m * kBoxBytes +
                                                               (g + 8 * h) * kStageCols + b * kMmaStep + 16 * q)
                                                      : uint4{};
            __syncwarp();
            if (lane == 0) mbar_arrive(empty(slot));  // the bytes are in registers: the slot may refill
            float part[kMats][2][4] = {};
#pragma unroll
            for (int b = 0; b < 2; ++b) {
#pragma unroll
                for (int m = 0; m < kMats; ++m) {
                    uint4 lo[2], hi[2];
                    lo[0] = widen8_f16<kW>(make_uint2(w[b][m][0].x, w[b][m][0].y));
                    lo[1] = widen8_f16<kW>(make_uint2(w[b][m][0].z, w[b][m][0].w));
                    hi[0] = widen8_f16<kW>(make_uint2(w[b][m][1].x, w[b][m][1].y));
                    hi[1] = widen8_f16<kW>(make_uint2(w[b][m][1].z, w[b][m][1].w));
                    mma_step<true>(part[m][0], lo, hi, xv[b][0]);
                    if (two) mma_step<true>(part[m][1], lo, hi, xv[b][1]);
                }
            }
#pragma unroll
            for (int m = 0; m < kMats; ++m)
#pragma unroll
                for (int n = 0; n < 2; ++n)
#pragma unroll
                    for (int i = 0; i < 4; ++i) acc[m][n][i] = fmaf(sc[m], part[m][n][i], acc[m][n][i]);
        }
        // The warp's sums to the epilogue warp, without waiting for it (a consumer that waited here would hold up
        // the next unit's stages, the ring behind them, and so the bytes in flight).
        const int buf = i & 1;
        if (i >= 2) named_sync(3 + buf, kSumsBarThreads);  // the epilogue warp has read unit i - 2's
        float* mine = partials + (buf * kConsumers + warp) * P::kSums * 32;
#pragma unroll
        for (int m = 0; m < kMats; ++m)
#pragma unroll
            for (int n = 0; n < 2; ++n)
#pragma unroll
                for (int r = 0; r < 4; ++r) mine[((m * 2 + n) * 4 + r) * 32 + lane] = acc[m][n][r];
        named_arrive(1 + buf, kSumsBarThreads);
    }
}

template <bool kGated, MoeWeightType kW>
Status launch_typed(const TmaParams& p, int sms, cudaStream_t stream) {
    constexpr auto kernel = gemv_tma_kernel<kGated, kW>;
    constexpr int smem = Plan<kGated>::kSmemBytes;
    VOLT_RETURN_IF_ERROR(allow_smem<kernel>(smem));
    return launch_dependent(kernel, dim3(static_cast<unsigned>(sms * kCtasPerSm)), dim3(kThreads), smem, stream, p);
}

}  // namespace

const char* gemv_tma_unfit(MoeWeightType w, int experts, int64_t K, int64_t rows_out) {
    if (w == MoeWeightType::kBF16) return "the weights must be quantised (FP8 or int8)";
    if (experts < 1 || experts > kMoeDecodeTmaMaxExperts)
        return "1 to 64 experts (their tensor maps travel in the launch)";
    if (K <= 0 || K % kMmaStep != 0 || K > INT32_MAX || rows_out > INT32_MAX)
        return "K must be a positive multiple of 64, K and the output rows must fit 32 bits";
    if (tensor_map_encoder() == nullptr) return "the driver has no TMA tensor-map encoder";
    if (!on_hopper()) return "needs an sm_90 GPU (Hopper)";
    return nullptr;
}

Status launch_gemv_tma(const GemvArgs& a, bool gated, MoeWeightType w, cudaStream_t stream) {
    static_assert(sizeof(TmaParams) < 32000, "kernel parameters are limited to 32 KiB");
    if (const char* why = gemv_tma_unfit(w, a.E, a.K, a.rows_out))
        return unimplemented("MoE decode GEMV through TMA: ", why);
    if (a.in_h == nullptr || a.in_inv == nullptr)
        return invalid_argument("MoE decode GEMV through TMA: the input must come as scaled f16 rows");
    auto p = std::make_unique<TmaParams>();
    p->a = a;
    for (int e = 0; e < a.E; ++e) {
        for (int m = 0; m < (gated ? 2 : 1); ++m) {
            const void* wm = m == 0 ? a.w_a[e] : a.w_b[e];
            if (wm == nullptr) return invalid_argument("MoE decode GEMV through TMA: expert ", e, "'s weight is null");
            VOLT_ASSIGN_OR_RETURN(p->maps[2 * e + m],
                                  weight_tile_map(wm, a.rows_out, a.K, kMmaRows, WeightTile::kBytes128));
        }
    }
    VOLT_ASSIGN_OR_RETURN(const int sms, sm_count());
    if (gated) {
        return w == MoeWeightType::kInt8 ? launch_typed<true, MoeWeightType::kInt8>(*p, sms, stream)
                                         : launch_typed<true, MoeWeightType::kFp8E4M3>(*p, sms, stream);
    }
    return w == MoeWeightType::kInt8 ? launch_typed<false, MoeWeightType::kInt8>(*p, sms, stream)
                                     : launch_typed<false, MoeWeightType::kFp8E4M3>(*p, sms, stream);
}

}  // namespace volt::cuda
