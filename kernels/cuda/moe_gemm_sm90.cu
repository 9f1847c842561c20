// The MoE GEMM path's grouped GEMM on sm_90a (moe_gemm_sm90.h): wgmma m64n256k16, a 4-stage shared-memory ring
// filled by TMA, the SwiGLU of the up projection in the epilogue.
//
// CTA tile 128 rows x 256 columns x 64 k, three warpgroups: one thread of warpgroup 0 issues each k step's tile loads
// (A: 128 rows of x, 16 KiB; B: 256 weight rows, 32 KiB; 128-byte swizzle) into a stage whose "full" mbarrier counts
// the bytes in; the two consumer warpgroups each multiply 64 of the rows by all 256 columns (4 wgmma per k step, one
// k step in flight while the next is issued) and release the stage on "empty". Gated: B's rows 0..127 are w1's rows
// 128 j.., rows 128..255 w3's same rows, so the thread that holds gate column c holds up column c in the same
// register position 64 further: SiLU(gate) * up is formed from the fp32 sums and stored as bf16. Each expert's
// weights are their own allocation, so each has a tensor map (cached on the host by pointer and shape), passed with
// the launch.
//
// Persistent: one CTA per SM walks the tiles with a stride of the grid, the ring running on into its next tile while
// the consumers store. Tiles are numbered expert by expert, and within an expert column tile by column tile with its
// row tiles next to each other, so the CTAs running together share one B column tile (read once from HBM, then from
// L2) and the expert's rows stay in L2. A row tile may run past its expert's last row into the next expert's rows (or
// zeros past the end): those rows are computed and not stored.
#include "kernels/cuda/moe_gemm_sm90.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/mbarrier.cuh"
#include "kernels/cuda/tensor_map.h"
#include "kernels/cuda/wgmma.cuh"
#include "sdk/cuda_check.h"

namespace volt::cuda::moe_gemm {
namespace {

constexpr int kBM = 128, kBN = 256, kBK = 64;
constexpr int kStages = 4;
constexpr int kABytes = kBM * kBK * 2;  // 16 KiB
constexpr int kBBytes = kBN * kBK * 2;  // 32 KiB
constexpr int kStageBytes = kABytes + kBBytes;
constexpr int kThreads = 384;  // producer warpgroup + two consumer warpgroups
constexpr int kSmemBytes = kStages * kStageBytes + 2 * kStages * 8 + 1024;  // + barriers + alignment slack
constexpr int kProducerRegs = 40, kConsumerRegs = 232;  // 128 * 40 + 256 * 232 <= 65536

struct Params {
    CUtensorMap a;                         // x [rows, K], boxes of 64 k x 128 rows
    CUtensorMap b[2 * kMaxTmaExperts];     // gated: w1 of expert e at 2 e, w3 at 2 e + 1 (64 x 128); plain: w2 at 2 e
                                           // (64 x 256)
    const int32_t* off;
    int E;
    int64_t k, rows;
    __nv_bfloat16* out;
    int64_t os;
    int n_tiles;    // column tiles per expert: n / 128 (gated) or n / 256 (plain)
    int64_t tiles;  // over all experts (the CTAs walk them with a stride of the grid)
};

// One 2-D tile (columns c0.., rows r0..) into shared memory, completion counted in bytes on `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, uint32_t bar, int c0, int r0) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];\n"
        ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(r0)
        : "memory");
}

// Block b's expert e, row tile i (rows off[e] + 128 i ..) and column tile j.
__device__ __forceinline__ void tile_of(const Params& p, int64_t b, int& e, int64_t& i, int64_t& j) {
    int64_t base = 0;
    for (e = 0; e < p.E; ++e) {
        const int64_t mt = (p.off[e + 1] - p.off[e] + kBM - 1) / kBM;
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

template <bool kGated>
__global__ void __launch_bounds__(kThreads, 1) grouped_gemm_kernel(const __grid_constant__ Params p) {
    extern __shared__ __align__(1024) char smem_raw[];
    char* tiles = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    const uint32_t ring = smem_u32(tiles), bars = ring + kStages * kStageBytes;
    auto full = [&](int s) { return bars + 8 * s; };
    auto empty = [&](int s) { return bars + 8 * (kStages + s); };
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);
    if (tid == 0) {
        for (int s = 0; s < kStages; ++s) {
            mbar_init(full(s), 1);   // the issuing thread's arrival + the TMA bytes
            mbar_init(empty(s), 8);  // one arrival per consumer warp
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    const int ksteps = static_cast<int>(p.k / kBK);

    if (wg == 0) {  // ---- producer ---------------------------------------------------------------------------------
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
        // `it` counts k steps over all of this CTA's tiles: the ring runs on into the next tile while the consumers
        // store.
        if (tid != 0) return;
        int it = 0;
        for (int64_t b = blockIdx.x; b < p.tiles; b += gridDim.x) {
            int e;
            int64_t i, j;
            tile_of(p, b, e, i, j);
            const int row0 = static_cast<int>(p.off[e] + i * kBM);
            for (int ks = 0; ks < ksteps; ++ks, ++it) {
                const int s = it % kStages;
                if (it >= kStages) mbar_wait(empty(s), (it / kStages - 1) & 1);
                const uint32_t sa = ring + s * kStageBytes, sb = sa + kABytes;
                mbar_arrive_expect_tx(full(s), kStageBytes);
                tma_load_2d(sa, &p.a, full(s), ks * kBK, row0);
                if constexpr (kGated) {
                    tma_load_2d(sb, &p.b[2 * e], full(s), ks * kBK, static_cast<int>(j * 128));
                    tma_load_2d(sb + kBBytes / 2, &p.b[2 * e + 1], full(s), ks * kBK, static_cast<int>(j * 128));
                } else {
                    tma_load_2d(sb, &p.b[2 * e], full(s), ks * kBK, static_cast<int>(j * kBN));
                }
            }
        }
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));

    // ---- consumers: rows 64 c .. of each tile -----------------------------------------------------------------------
    const int c = wg - 1, w = warp & 3, g = lane >> 2, t4 = lane & 3;
    float acc[128];
    int it = 0;
    auto release = [&](int step) {
        __syncwarp();
        if (lane == 0) mbar_arrive(empty(step % kStages));
    };
    for (int64_t b = blockIdx.x; b < p.tiles; b += gridDim.x) {
        int e;
        int64_t i, j;
        tile_of(p, b, e, i, j);
        const int64_t row0 = p.off[e] + i * kBM, row_end = p.off[e + 1];
#pragma unroll
        for (int q = 0; q < 128; ++q) acc[q] = 0.0f;
        for (int ks = 0; ks < ksteps; ++ks, ++it) {
            const int s = it % kStages;
            mbar_wait(full(s), (it / kStages) & 1);
            const uint32_t sa = ring + s * kStageBytes + c * (kABytes / 2), sb = ring + s * kStageBytes + kABytes;
            fence_regs(acc);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < 4; ++kk)
                wgmma_m64n256k16_ss(acc, sw128_desc(sa + kk * 32, 16, 1024), sw128_desc(sb + kk * 32, 16, 1024));
            wgmma_commit();
            wgmma_wait1();  // the previous k step's products are done: its stage can be refilled
            fence_regs(acc);
            if (ks > 0) release(it - 1);
        }
        wgmma_wait0();
        fence_regs(acc);
        release(it - 1);

        // ---- epilogue: rows 64 c + 16 w + g (+ 8) -------------------------------------------------------------------
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int64_t row = row0 + 64 * c + 16 * w + g + 8 * h;
            if (row >= row_end) continue;
            if constexpr (kGated) {
                __nv_bfloat16* o = p.out + row * p.os + j * 128 + 2 * t4;
#pragma unroll
                for (int q = 0; q < 16; ++q) {
                    const float g0 = acc[4 * q + 2 * h], g1 = acc[4 * q + 2 * h + 1];
                    const float u0 = acc[4 * (q + 16) + 2 * h], u1 = acc[4 * (q + 16) + 2 * h + 1];
                    *reinterpret_cast<uint32_t*>(o + 8 * q) = pack_bf16(swiglu_f(g0, u0), swiglu_f(g1, u1));
                }
            } else {
                __nv_bfloat16* o = p.out + row * p.os + j * kBN + 2 * t4;
#pragma unroll
                for (int q = 0; q < 32; ++q)
                    *reinterpret_cast<uint32_t*>(o + 8 * q) = pack_bf16(acc[4 * q + 2 * h], acc[4 * q + 2 * h + 1]);
            }
        }
    }
}

// A weight's tensor map, encoded once per (pointer, shape, box): the weights live as long as the model, and a map
// holds only the address, shape and layout, so a later allocation at the same address and shape reuses it rightly.
Expected<CUtensorMap> weight_map(const void* w, int64_t rows, int64_t cols, int box_rows) {
    static std::mutex mu;
    static std::map<std::tuple<const void*, int64_t, int64_t, int>, CUtensorMap> cache;
    const auto key = std::make_tuple(w, rows, cols, box_rows);
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    VOLT_ASSIGN_OR_RETURN(const CUtensorMap map, bf16_tile_map(w, rows, cols, cols, box_rows));
    cache.emplace(key, map);
    return map;
}

}  // namespace

const char* grouped_gemm_unfit(const GroupedGemmArgs& a) {
    if (a.num_experts < 1 || a.num_experts > kMaxTmaExperts) return "1 to 64 experts";
    if (a.k <= 0 || a.k % kBK != 0) return "K must be a positive multiple of 64";
    if (a.n <= 0 || a.n % (a.gated ? 128 : kBN) != 0) return "N must be a multiple of 128 (gated) or 256 (plain)";
    if (a.rows > INT32_MAX || a.n > INT32_MAX || a.k > INT32_MAX) return "rows, N and K must fit 32 bits";
    if (!aligned16(a.x) || !aligned16(a.out) || a.x_stride % 8 != 0 || a.out_stride % 8 != 0)
        return "x and out must be 16-byte aligned with strides of multiples of 8";
    for (int e = 0; e < a.num_experts; ++e)
        if (!aligned16(a.w_a[e]) || (a.gated && !aligned16(a.w_b[e]))) return "weights must be 16-byte aligned";
    if (tensor_map_encoder() == nullptr) return "the driver has no TMA tensor-map encoder";
    if (!on_hopper()) return "needs an sm_90 GPU (Hopper)";
    return nullptr;
}

Status run_grouped_gemm(const GroupedGemmArgs& a, const int32_t* host_offsets, cudaStream_t stream) {
    if (const char* why = grouped_gemm_unfit(a)) return unimplemented("MoE grouped GEMM (sm_90): ", why);
    static_assert(sizeof(Params) < 32000, "kernel parameters are limited to 32 KiB");
    auto p = std::make_unique<Params>();
    const int n_tiles = static_cast<int>(a.n / (a.gated ? 128 : kBN));
    int64_t blocks = 0;
    for (int e = 0; e < a.num_experts; ++e) {
        const int64_t count = int64_t{host_offsets[e + 1]} - host_offsets[e];
        if (count == 0) continue;  // no tile reads an empty expert's map
        blocks += (count + kBM - 1) / kBM * n_tiles;
        if (a.gated) {
            VOLT_ASSIGN_OR_RETURN(p->b[2 * e], weight_map(a.w_a[e], a.n, a.k, 128));
            VOLT_ASSIGN_OR_RETURN(p->b[2 * e + 1], weight_map(a.w_b[e], a.n, a.k, 128));
        } else {
            VOLT_ASSIGN_OR_RETURN(p->b[2 * e], weight_map(a.w_a[e], a.n, a.k, kBN));
        }
    }
    if (blocks == 0) return Status::ok();
    VOLT_ASSIGN_OR_RETURN(p->a, bf16_tile_map(a.x, a.rows, a.k, a.x_stride, kBM));
    p->off = a.offsets;
    p->E = a.num_experts;
    p->k = a.k;
    p->rows = a.rows;
    p->out = static_cast<__nv_bfloat16*>(a.out);
    p->os = a.out_stride;
    p->n_tiles = n_tiles;
    p->tiles = blocks;
    auto kernel = a.gated ? grouped_gemm_kernel<true> : grouped_gemm_kernel<false>;
    if (a.gated) VOLT_RETURN_IF_ERROR(allow_smem<grouped_gemm_kernel<true>>(kSmemBytes));
    else VOLT_RETURN_IF_ERROR(allow_smem<grouped_gemm_kernel<false>>(kSmemBytes));
    // Persistent: one CTA per SM walking the tiles.
    VOLT_ASSIGN_OR_RETURN(const int sms, sm_count());
    const int64_t grid = std::min<int64_t>(blocks, sms);
    kernel<<<static_cast<unsigned>(grid), kThreads, kSmemBytes, stream>>>(*p);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace volt::cuda::moe_gemm
