// Softmax attention (kernels/attention_cuda.h): split-KV GQA decode and a FlashAttention-2-style causal prefill, both
// on mma.sync m16n8k16 (bf16 operands, fp32 accumulators), scores in the log2 domain (exp2 of s * scale * log2 e).
//
// Decode: CTA = (kv head g, key split, sequence n), 4 warps. The G = Hq / Hkv query heads of the group are the 16
//   rows of the MMA A operand (rows >= G are zero), so each K/V tile is read once for the whole group. Every warp
//   streams its own tiles of 32 keys (tiles w, w + 4, ... of the split) through a private 3-stage cp.async ring and
//   keeps its own online-softmax state; the 4 warps merge in shared memory at the end. With several splits each CTA
//   writes a normalised partial and its log2-sum-exp; a combine kernel merges the splits per (sequence, head).
// Prefill: CTA = (query head, 64-query tile, sequence), 4 warps x 16 query rows; K/V tiles of 64 keys double
//   buffered by cp.async; tiles past the causal diagonal are skipped, the diagonal tiles masked; query tiles run
//   heaviest first and the heads of one KV group are adjacent in the grid so their K/V reads hit L2.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "kernels/attention_cuda.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/device_common.cuh"
#include "sdk/cuda_check.h"
#include "sdk/env.h"
#include "sdk/log.h"

namespace volt::cuda {
namespace {

constexpr int kD = 128;
constexpr float kLog2e = 1.4426950408889634f;

struct AttnArgs {
    const __nv_bfloat16* q;
    const __nv_bfloat16* k;
    const __nv_bfloat16* v;
    __nv_bfloat16* o;
    int64_t q_st, q_sh, k_st, k_sh, v_st, v_sh, o_st, o_sh;
    const int32_t* cu_seqlens;
    const int32_t* kv_lens;
    const int32_t* kv_start;
    const void* const* k_seqs;  // decode: [N] each sequence's own key / value rows (replace k / v + kv_start)
    const void* const* v_seqs;
    int64_t num_tokens;
    int group;          // G = Hq / Hkv
    float scale_log2;   // scale * log2(e)
    // decode split-KV
    int splits;
    float* part_o;      // [N, Hq, splits, D] normalised partial outputs
    float* part_lse;    // [N, Hq, splits] log2-sum-exp of each partial
    int num_heads;
};

__device__ __forceinline__ int64_t q_begin(const AttnArgs& a, int n) { return a.cu_seqlens ? a.cu_seqlens[n] : 0; }
__device__ __forceinline__ int64_t q_len(const AttnArgs& a, int n) {
    return a.cu_seqlens ? a.cu_seqlens[n + 1] - a.cu_seqlens[n] : a.num_tokens;
}

// Loads the A fragments (16 rows x 128 cols, 8 k-steps) of rows `rows[0..1]` (this thread's g and g + 8) straight
// from global memory; invalid rows are zero.
__device__ __forceinline__ void load_q_frag(uint32_t (&qa)[8][4], const __nv_bfloat16* r0, const __nv_bfloat16* r1,
                                            int t4) {
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
        const int c = 16 * kk + 2 * t4;
        qa[kk][0] = r0 ? *reinterpret_cast<const uint32_t*>(r0 + c) : 0u;
        qa[kk][1] = r1 ? *reinterpret_cast<const uint32_t*>(r1 + c) : 0u;
        qa[kk][2] = r0 ? *reinterpret_cast<const uint32_t*>(r0 + c + 8) : 0u;
        qa[kk][3] = r1 ? *reinterpret_cast<const uint32_t*>(r1 + c + 8) : 0u;
    }
}

// One warp's online-softmax step for a tile of kN keys: s (16 x kN scores, already masked to -inf and scaled to
// log2 units) -> P in bf16 A fragments, running max / sum and the rescale of o (16 x 128).
template <int kN>
__device__ __forceinline__ void softmax_step(float (&s)[kN / 8][4], float (&m)[2], float (&l)[2], float (&o)[16][4],
                                             uint32_t (&pa)[kN / 16][4]) {
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        float mx = m[hf];
#pragma unroll
        for (int nt = 0; nt < kN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * hf], s[nt][2 * hf + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // Rows that have seen only masked keys keep mx = -inf: use 0 as the base so exp2 gives exact zeros.
        const float base = mx == -INFINITY ? 0.0f : mx;
        const float corr = exp2f(m[hf] - base);  // m = -inf at the start: 0
        float rs = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kN / 8; ++nt) {
            s[nt][2 * hf] = exp2f(s[nt][2 * hf] - base);
            s[nt][2 * hf + 1] = exp2f(s[nt][2 * hf + 1] - base);
            rs += s[nt][2 * hf] + s[nt][2 * hf + 1];
        }
        l[hf] = l[hf] * corr + rs;  // per-thread partial row sum (the quad reduces at the end)
        m[hf] = mx;
#pragma unroll
        for (int nt = 0; nt < 16; ++nt) {
            o[nt][2 * hf] *= corr;
            o[nt][2 * hf + 1] *= corr;
        }
    }
#pragma unroll
    for (int nt = 0; nt < kN / 8; ++nt) {
        pa[nt >> 1][(nt & 1) * 2 + 0] = pack_bf16(s[nt][0], s[nt][1]);
        pa[nt >> 1][(nt & 1) * 2 + 1] = pack_bf16(s[nt][2], s[nt][3]);
    }
}

// s[nt] = Q K^T for kN keys of a K tile in shared memory (rows = keys, 128 d, swz<16> layout).
template <int kN>
__device__ __forceinline__ void qk_tile(float (&s)[kN / 8][4], const uint32_t (&qa)[8][4], const char* sk, int lane) {
#pragma unroll
    for (int nt = 0; nt < kN / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
#pragma unroll
        for (int np = 0; np < kN / 16; ++np) {
            const int nrow = 16 * np + (lane & 7) + 8 * (lane >> 4);
            const int kcol = 16 * kk + 8 * ((lane >> 3) & 1);
            uint32_t b0, b1, b2, b3;
            ldsm_x4(smem_u32(sk + swz<16>(nrow, kcol)), b0, b1, b2, b3);
            mma_bf16(s[2 * np], qa[kk], b0, b1);
            mma_bf16(s[2 * np + 1], qa[kk], b2, b3);
        }
    }
}

// o += P V for kN keys of a V tile in shared memory (rows = keys, 128 d, swz<16>).
template <int kN>
__device__ __forceinline__ void pv_tile(float (&o)[16][4], const uint32_t (&pa)[kN / 16][4], const char* sv,
                                        int lane) {
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
#pragma unroll
        for (int np = 0; np < 8; ++np) {
            const int krow = 16 * kk + (lane & 7) + 8 * ((lane >> 3) & 1);
            const int ncol = 16 * np + 8 * (lane >> 4);
            uint32_t b0, b1, b2, b3;
            ldsm_x4_t(smem_u32(sv + swz<16>(krow, ncol)), b0, b1, b2, b3);
            mma_bf16(o[2 * np], pa[kk], b0, b1);
            mma_bf16(o[2 * np + 1], pa[kk], b2, b3);
        }
    }
}

// cp.async of `rows` rows (keys) of K and V starting at key j0 into a tile; rows >= valid are zero-filled.
template <int kRows, int kThreadsCopying>
__device__ __forceinline__ void load_kv_tile(char* sk, char* sv, const __nv_bfloat16* kbase, const __nv_bfloat16* vbase,
                                             int64_t k_st, int64_t v_st, int64_t j0, int valid, int tid) {
#pragma unroll
    for (int it = 0; it < kRows * 16 / kThreadsCopying; ++it) {
        const int idx = it * kThreadsCopying + tid;
        const int row = idx >> 4, ch = idx & 15;
        const bool in = row < valid;
        const int64_t j = j0 + (in ? row : 0);
        cp_async16(smem_u32(sk + swz<16>(row, ch * 8)), kbase + j * k_st + ch * 8, in ? 16 : 0);
        cp_async16(smem_u32(sv + swz<16>(row, ch * 8)), vbase + j * v_st + ch * 8, in ? 16 : 0);
    }
}

// ---- decode ---------------------------------------------------------------------------------------------------------
constexpr int kDecWarps = 4;
constexpr int kDecThreads = kDecWarps * 32;
constexpr int kDecTile = 32;    // keys per warp tile
constexpr int kDecStages = 3;
constexpr int kDecTileBytes = kDecTile * kD * 2;                    // 8 KiB of K (and of V)
constexpr int kDecWarpBytes = kDecStages * 2 * kDecTileBytes;       // 48 KiB per warp
constexpr int kDecSmem = kDecWarps * kDecWarpBytes;                 // 192 KiB
constexpr int kDecMinSplitKeys = kDecWarps * kDecTile * 4;          // 512: each warp gets >= 4 tiles

__global__ void __launch_bounds__(kDecThreads, 1) decode_kernel(const AttnArgs a) {
    extern __shared__ __align__(128) char smem[];
    // Started by launch_dependent (device_common.cuh): q, the cache and the lengths are earlier kernels' output. The
    // combine (or the next kernel) may be scheduled from then on; it waits for this grid's completion itself.
    start_dependent_kernel();
    // kv heads vary fastest in the grid: the CTAs resident together read all heads of neighbouring key ranges, i.e.
    // whole [Hkv, D] cache rows (with splits fastest, B = 1 at 256K keys ran at 78-82% of the copy ceiling).
    const int g = blockIdx.x, split = blockIdx.y, n = blockIdx.z;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int gr = lane >> 2, t4 = lane & 3;
    const int64_t L = a.kv_lens[n];
    const int64_t kv0 = a.kv_start ? a.kv_start[n] : 0;
    // This split's key range, in whole tiles.
    const int64_t per = (((L + a.splits - 1) / a.splits) + kDecTile - 1) / kDecTile * kDecTile;
    const int64_t j_begin = std::min<int64_t>(per * split, L), j_end = std::min<int64_t>(j_begin + per, L);
    const int ntiles = static_cast<int>((j_end - j_begin + kDecTile - 1) / kDecTile);

    // Q fragments: rows = the group's query heads (query token n).
    uint32_t qa[8][4];
    {
        const int h0 = g * a.group + gr, h1 = h0 + 8;
        const __nv_bfloat16* r0 = gr < a.group ? a.q + n * a.q_st + int64_t{h0} * a.q_sh : nullptr;
        const __nv_bfloat16* r1 = gr + 8 < a.group ? a.q + n * a.q_st + int64_t{h1} * a.q_sh : nullptr;
        load_q_frag(qa, r0, r1, t4);
    }
    const __nv_bfloat16* k0 = a.k_seqs ? static_cast<const __nv_bfloat16*>(a.k_seqs[n]) : a.k + kv0 * a.k_st;
    const __nv_bfloat16* v0 = a.v_seqs ? static_cast<const __nv_bfloat16*>(a.v_seqs[n]) : a.v + kv0 * a.v_st;
    const __nv_bfloat16* kbase = k0 + int64_t{g} * a.k_sh;
    const __nv_bfloat16* vbase = v0 + int64_t{g} * a.v_sh;
    char* ring = smem + warp * kDecWarpBytes;

    float o[16][4];
#pragma unroll
    for (int i = 0; i < 16; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

    // Warp-private pipeline over tiles warp, warp + 4, ...
    const int my_tiles = ntiles > warp ? (ntiles - warp + kDecWarps - 1) / kDecWarps : 0;
#pragma unroll
    for (int st = 0; st < kDecStages - 1; ++st) {
        if (st < my_tiles) {
            const int64_t j0 = j_begin + int64_t{warp + st * kDecWarps} * kDecTile;
            char* sk = ring + st * 2 * kDecTileBytes;
            load_kv_tile<kDecTile, 32>(sk, sk + kDecTileBytes, kbase, vbase, a.k_st, a.v_st, j0,
                                       static_cast<int>(std::min<int64_t>(kDecTile, j_end - j0)), lane);
        }
        cp_async_commit();
    }
    for (int i = 0; i < my_tiles; ++i) {
        cp_async_wait<kDecStages - 2>();
        __syncwarp();
        {
            const int nx = i + kDecStages - 1;
            if (nx < my_tiles) {
                const int64_t j0 = j_begin + int64_t{warp + nx * kDecWarps} * kDecTile;
                char* sk = ring + (nx % kDecStages) * 2 * kDecTileBytes;
                load_kv_tile<kDecTile, 32>(sk, sk + kDecTileBytes, kbase, vbase, a.k_st, a.v_st, j0,
                                           static_cast<int>(std::min<int64_t>(kDecTile, j_end - j0)), lane);
            }
            cp_async_commit();
        }
        const char* sk = ring + (i % kDecStages) * 2 * kDecTileBytes;
        const int64_t j0 = j_begin + int64_t{warp + i * kDecWarps} * kDecTile;
        const int valid = static_cast<int>(std::min<int64_t>(kDecTile, j_end - j0));
        float s[kDecTile / 8][4];
        qk_tile<kDecTile>(s, qa, sk, lane);
#pragma unroll
        for (int nt = 0; nt < kDecTile / 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int j = 8 * nt + 2 * t4 + (e & 1);
                s[nt][e] = j < valid ? s[nt][e] * a.scale_log2 : -INFINITY;
            }
        uint32_t pa[kDecTile / 16][4];
        softmax_step<kDecTile>(s, m, l, o, pa);
        pv_tile<kDecTile>(o, pa, sk + kDecTileBytes, lane);
        __syncwarp();  // every lane is done with this stage before it is refilled
    }
    cp_async_wait<0>();
    // Row sums across the quad.
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        l[hf] += __shfl_xor_sync(0xffffffffu, l[hf], 1);
        l[hf] += __shfl_xor_sync(0xffffffffu, l[hf], 2);
    }
    __syncthreads();  // all warps done with their rings: reuse shared memory for the merge
    float* sm_o = reinterpret_cast<float*>(smem);                   // [4 warps][16 rows][128]
    float* sm_m = sm_o + kDecWarps * 16 * kD;                       // [4][16]
    float* sm_l = sm_m + kDecWarps * 16;                            // [4][16]
#pragma unroll
    for (int nt = 0; nt < 16; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int row = gr + 8 * (e >> 1), col = 8 * nt + 2 * t4 + (e & 1);
            sm_o[(warp * 16 + row) * kD + col] = o[nt][e];
        }
    if (t4 == 0) {
        sm_m[warp * 16 + gr] = m[0];
        sm_m[warp * 16 + gr + 8] = m[1];
        sm_l[warp * 16 + gr] = l[0];
        sm_l[warp * 16 + gr + 8] = l[1];
    }
    __syncthreads();
    // Merge: thread = column d (128 threads), loop over the group's rows.
    const int d = tid;
    for (int row = 0; row < a.group; ++row) {
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < kDecWarps; ++w) M = fmaxf(M, sm_m[w * 16 + row]);
        const float base = M == -INFINITY ? 0.0f : M;
        float Ls = 0.0f, acc = 0.0f;
#pragma unroll
        for (int w = 0; w < kDecWarps; ++w) {
            const float f = exp2f(sm_m[w * 16 + row] - base);
            Ls += sm_l[w * 16 + row] * f;
            acc += sm_o[(w * 16 + row) * kD + d] * f;
        }
        const int h = g * a.group + row;
        const float out = Ls > 0.0f ? acc / Ls : 0.0f;
        if (a.splits == 1) {
            a.o[n * a.o_st + int64_t{h} * a.o_sh + d] = __float2bfloat16_rn(out);
        } else {
            const size_t idx = (static_cast<size_t>(n) * a.num_heads + h) * a.splits + split;
            a.part_o[idx * kD + d] = out;
            if (d == 0) a.part_lse[idx] = Ls > 0.0f ? base + log2f(Ls) : -INFINITY;
        }
    }
}

// out[n, h] = sum_s part_o[s] * 2^(lse_s - LSE), LSE = log2 sum_s 2^lse_s. One CTA of 256 threads per (head, seq),
// parallel over the splits (a serial walk over 132 splits per column cost ~80 us of L2 round trips at B = 1 x 256K):
// the weights come from one block max / sum over the splits' lse, then thread (group r, column quad c) sums the
// float4 columns 4c..4c+3 over splits r, r + 8, ... (independent loads, all in flight), and the 8 groups are added
// in shared memory.
constexpr int kCmbThreads = 256;
constexpr int kCmbGroups = kCmbThreads / (kD / 4);  // 8 split groups x 32 column quads
constexpr int kMaxSplits = 256;
static_assert(kMaxSplits <= kCmbThreads, "one split lse per combine thread");

__device__ __forceinline__ float block_reduce_cmb(float v, float* red, bool is_max) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float x = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, x) : v + x;
    }
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float r = red[0];
#pragma unroll
    for (int w = 1; w < kCmbThreads / 32; ++w) r = is_max ? fmaxf(r, red[w]) : r + red[w];
    __syncthreads();  // red is reused by the next reduction
    return r;
}

__global__ void __launch_bounds__(kCmbThreads) decode_combine_kernel(const AttnArgs a) {
    __shared__ float w[kMaxSplits];
    __shared__ float red[kCmbThreads / 32];
    __shared__ float4 part[kCmbGroups][kD / 4];
    // Launched as a programmatic dependent of decode_kernel (run()): its CTAs are resident before the splits finish;
    // this waits until they have, their partials visible.
    start_dependent_kernel();
    const int h = blockIdx.x, n = blockIdx.y, tid = threadIdx.x;
    const size_t base = (static_cast<size_t>(n) * a.num_heads + h) * a.splits;
    const float lse = tid < a.splits ? a.part_lse[base + tid] : -INFINITY;
    const float M = block_reduce_cmb(lse, red, true);
    const float mb = M == -INFINITY ? 0.0f : M;
    const float ws = lse == -INFINITY ? 0.0f : exp2f(lse - mb);
    if (tid < a.splits) w[tid] = ws;
    const float wsum = block_reduce_cmb(ws, red, false);  // its barrier also publishes w[]
    const int grp = tid / (kD / 4), c4 = tid % (kD / 4);
    const float4* po = reinterpret_cast<const float4*>(a.part_o + base * kD) + c4;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 4
    for (int s = grp; s < a.splits; s += kCmbGroups) {
        const float f = w[s];
        const float4 x = po[static_cast<size_t>(s) * (kD / 4)];
        acc.x += f * x.x, acc.y += f * x.y, acc.z += f * x.z, acc.w += f * x.w;
    }
    part[grp][c4] = acc;
    __syncthreads();
    if (tid < kD) {
        const float* pf = reinterpret_cast<const float*>(part);
        float o = 0.0f;
#pragma unroll
        for (int g = 0; g < kCmbGroups; ++g) o += pf[g * kD + tid];
        a.o[n * a.o_st + int64_t{h} * a.o_sh + tid] = __float2bfloat16_rn(wsum > 0.0f ? o / wsum : 0.0f);
    }
}

// ---- prefill --------------------------------------------------------------------------------------------------------
constexpr int kPreWarps = 4;
constexpr int kPreThreads = kPreWarps * 32;
constexpr int kBq = 64;  // queries per CTA
constexpr int kBk = 64;  // keys per tile
constexpr int kPreTileBytes = kBk * kD * 2;                 // 16 KiB
constexpr int kPreSmem = kBq * kD * 2 + 2 * 2 * kPreTileBytes;  // Q + 2 stages of K, V = 80 KiB

__global__ void __launch_bounds__(kPreThreads, 2) prefill_kernel(const AttnArgs a, int q_tiles) {
    extern __shared__ __align__(128) char smem[];
    char* sq = smem;
    char* ring = smem + kBq * kD * 2;
    const int h = blockIdx.x, n = blockIdx.z;
    const int qt = q_tiles - 1 - static_cast<int>(blockIdx.y);  // heaviest (last) query tiles first
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int gr = lane >> 2, t4 = lane & 3;
    const int64_t qb = q_begin(a, n), qlen = q_len(a, n);
    const int64_t i0 = int64_t{qt} * kBq;
    if (i0 >= qlen) return;
    const int64_t L = a.kv_lens ? a.kv_lens[n] : qlen;
    const int64_t past = L - qlen;
    const int64_t kv0 = a.kv_start ? a.kv_start[n] : qb;
    const int g = h / a.group;
    const __nv_bfloat16* kbase = a.k + kv0 * a.k_st + int64_t{g} * a.k_sh;
    const __nv_bfloat16* vbase = a.v + kv0 * a.v_st + int64_t{g} * a.v_sh;
    // Keys this tile needs: [0, min(L, past + i0 + kBq)).
    const int64_t j_end = std::min<int64_t>(L, past + i0 + kBq);
    const int ntiles = static_cast<int>((j_end + kBk - 1) / kBk);
    const int qvalid = static_cast<int>(std::min<int64_t>(kBq, qlen - i0));

    // Q tile -> shared (zero rows past the sequence), then K/V tiles 0 and 1 in flight.
#pragma unroll
    for (int it = 0; it < kBq * 16 / kPreThreads; ++it) {
        const int idx = it * kPreThreads + tid;
        const int row = idx >> 4, ch = idx & 15;
        const bool in = row < qvalid;
        const int64_t t = qb + i0 + (in ? row : 0);
        cp_async16(smem_u32(sq + swz<16>(row, ch * 8)), a.q + t * a.q_st + int64_t{h} * a.q_sh + ch * 8, in ? 16 : 0);
    }
    auto load_tile = [&](int tile, int stage) {
        char* sk = ring + stage * 2 * kPreTileBytes;
        const int64_t j0 = int64_t{tile} * kBk;
        load_kv_tile<kBk, kPreThreads>(sk, sk + kPreTileBytes, kbase, vbase, a.k_st, a.v_st, j0,
                                       static_cast<int>(std::min<int64_t>(kBk, j_end - j0)), tid);
    };
    load_tile(0, 0);
    cp_async_commit();
    if (ntiles > 1) load_tile(1, 1);
    cp_async_commit();

    float o[16][4];
#pragma unroll
    for (int i = 0; i < 16; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    uint32_t qa[8][4];
    // Query positions of this thread's two rows.
    const int64_t pos0 = past + i0 + 16 * warp + gr, pos1 = pos0 + 8;

    for (int tile = 0; tile < ntiles; ++tile) {
        cp_async_wait<1>();
        __syncthreads();
        if (tile == 0) {
#pragma unroll
            for (int kk = 0; kk < 8; ++kk) {
                const int arow = 16 * warp + (lane & 7) + 8 * ((lane >> 3) & 1);
                const int acol = 16 * kk + 8 * (lane >> 4);
                ldsm_x4(smem_u32(sq + swz<16>(arow, acol)), qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3]);
            }
        }
        const char* sk = ring + (tile & 1) * 2 * kPreTileBytes;
        const int64_t j0 = int64_t{tile} * kBk;
        float s[kBk / 8][4];
        qk_tile<kBk>(s, qa, sk, lane);
        const bool needs_mask = j0 + kBk - 1 > past + i0 + 16 * warp || j0 + kBk > L;
#pragma unroll
        for (int nt = 0; nt < kBk / 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int64_t j = j0 + 8 * nt + 2 * t4 + (e & 1);
                const int64_t pos = e < 2 ? pos0 : pos1;
                s[nt][e] = (!needs_mask || (j <= pos && j < L)) ? s[nt][e] * a.scale_log2 : -INFINITY;
            }
        uint32_t pa[kBk / 16][4];
        softmax_step<kBk>(s, m, l, o, pa);
        pv_tile<kBk>(o, pa, sk + kPreTileBytes, lane);
        __syncthreads();  // the stage is free for tile + 2
        if (tile + 2 < ntiles) load_tile(tile + 2, tile & 1);
        cp_async_commit();
    }
    cp_async_wait<0>();
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        l[hf] += __shfl_xor_sync(0xffffffffu, l[hf], 1);
        l[hf] += __shfl_xor_sync(0xffffffffu, l[hf], 2);
    }
    // Stage the bf16 outputs in the (now free) Q tile, then 16-byte stores.
    __syncthreads();
    const float inv0 = l[0] > 0.0f ? 1.0f / l[0] : 0.0f, inv1 = l[1] > 0.0f ? 1.0f / l[1] : 0.0f;
    const int r0 = 16 * warp + gr;
#pragma unroll
    for (int nt = 0; nt < 16; ++nt) {
        const int col = 8 * nt + 2 * t4;
        *reinterpret_cast<uint32_t*>(sq + swz<16>(r0, col)) = pack_bf16(o[nt][0] * inv0, o[nt][1] * inv0);
        *reinterpret_cast<uint32_t*>(sq + swz<16>(r0 + 8, col)) = pack_bf16(o[nt][2] * inv1, o[nt][3] * inv1);
    }
    __syncthreads();
#pragma unroll
    for (int it = 0; it < kBq * 16 / kPreThreads; ++it) {
        const int idx = it * kPreThreads + tid;
        const int row = idx >> 4, ch = idx & 15;
        if (row < qvalid)
            *reinterpret_cast<uint4*>(a.o + (qb + i0 + row) * a.o_st + int64_t{h} * a.o_sh + ch * 8) =
                *reinterpret_cast<const uint4*>(sq + swz<16>(row, ch * 8));
    }
}

// Splits per sequence for decode. The CTAs (N * Hkv * splits, one per SM at a time) should make at least 2 waves and
// not many more: each CTA pays a pipeline fill and drain, so fewer, longer CTAs win once the merge is parallel — at
// B = 1 x 256K keys (8 kv heads) 33 splits (2 waves) ran 0.361 ms, 66 0.368, 132 0.373, 256 0.377 (run v4; with the
// old serial merge 132 splits cost 0.448). Among the counts from there to twice that, the one whose last wave is
// fullest. Each split keeps >= kDecMinSplitKeys keys, and at most kMaxSplits splits.
// VOLT_ATTENTION_DECODE_SPLITS=n (read on every call, for A/B timing in the benchmark) replaces the count by n, still
// clamped to the limits; attention_workspace_bytes reads it too.
int plan_splits(const AttentionParams& p, int sms) {
    const int64_t max_kv = p.max_seqlen_kv > 0 ? p.max_seqlen_kv : p.num_tokens;
    const int64_t base = int64_t{p.num_seqs} * p.num_kv_heads;
    const int64_t max_splits = std::clamp<int64_t>(max_kv / kDecMinSplitKeys, 1, kMaxSplits);
    if (const char* e = std::getenv("VOLT_ATTENTION_DECODE_SPLITS"); e && std::atoi(e) > 0)
        return static_cast<int>(std::clamp<int64_t>(std::atoi(e), 1, max_splits));
    const int64_t first = std::clamp<int64_t>((2 * int64_t{sms} + base - 1) / base, 1, max_splits);
    int best = static_cast<int>(first);
    double best_eff = 0.0;
    for (int64_t s = first; s <= std::min<int64_t>(2 * first, max_splits); ++s) {
        const int64_t ctas = base * s, waves = (ctas + sms - 1) / sms;
        const double eff = static_cast<double>(ctas) / static_cast<double>(waves * sms);
        if (eff > best_eff + 1e-3) {
            best_eff = eff;
            best = static_cast<int>(s);
        }
    }
    return best;
}

size_t split_bytes(const AttentionParams& p, int splits) {
    if (splits <= 1) return 0;
    const size_t rows = static_cast<size_t>(p.num_seqs) * p.num_heads * splits;
    return rows * kD * sizeof(float) + align256(rows * sizeof(float));
}

}  // namespace

// kAuto resolved through VOLT_ATTENTION_PREFILL (read once per process; for A/B timing in the benchmark).
AttentionBackend resolve_prefill_backend(AttentionBackend b) {
    if (b != AttentionBackend::kAuto) return b;
    static const AttentionBackend env = env_choice(
        "VOLT_ATTENTION_PREFILL",
        {{"own", AttentionBackend::kOwn},
         {"cudnn", AttentionBackend::kCudnn},
         {"cudnn_buckets", AttentionBackend::kCudnnBuckets}},
        AttentionBackend::kAuto);
    return env;
}

bool cudnn_prefill_shape(const AttentionParams& p, AttentionBackend backend) {
    // One sequence, its keys at row 0: packed like q, or counted by kv_lens with the count known on the host (then
    // under kAuto only pieces whose work pays for a graph per length pair: long ones, or short ones after a long
    // cached prefix).
    const bool known_keys = !p.kv_lens || p.kv_len_host > 0;
    const double flops = prefill_attention_flops(p);
    return (backend == AttentionBackend::kAuto || backend == AttentionBackend::kCudnn) &&
           p.phase == AttentionPhase::kPrefill && p.num_seqs == 1 && known_keys && !p.kv_start && !p.cu_seqlens &&
           (!p.kv_lens || backend == AttentionBackend::kCudnn || p.num_tokens >= kCudnnMinTokens ||
            flops >= kCudnnMinFlops);
}

Status validate(const AttentionParams& p) {
    if (p.num_tokens < 0 || p.num_seqs < 0)
        return invalid_argument("attention (CUDA): negative num_tokens (", p.num_tokens, ") or num_seqs");
    if (p.num_heads <= 0 || p.num_kv_heads <= 0 || p.num_heads % p.num_kv_heads != 0 ||
        p.num_heads / p.num_kv_heads > 16)
        return invalid_argument("attention (CUDA): num_kv_heads (", p.num_kv_heads, ") must divide num_heads (",
                                p.num_heads, ") with at most 16 query heads per kv head");
    if (p.head_dim != kD) return invalid_argument("attention (CUDA): head_dim must be 128, got ", p.head_dim);
    if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) return invalid_argument("attention (CUDA): scale must be positive");
    if (p.num_tokens == 0 || p.num_seqs == 0) return Status::ok();
    if (p.num_heads > 65535 || p.num_seqs > 65535) return invalid_argument("attention (CUDA): at most 65535 heads and sequences");
    if (!p.k_seqs != !p.v_seqs) return invalid_argument("attention (CUDA): set both k_seqs and v_seqs, or neither");
    if (p.k_seqs && p.phase != AttentionPhase::kDecode)
        return invalid_argument("attention (CUDA): k_seqs / v_seqs are for decode only");
    const bool own_rows = p.k_seqs != nullptr;  // k / v unused
    if (!p.q || !p.o || (!own_rows && (!p.k || !p.v)))
        return invalid_argument("attention (CUDA): q, k, v and o (or decode's k_seqs / v_seqs) must be set");
    if (!aligned16(p.q) || !aligned16(p.k) || !aligned16(p.v) || !aligned16(p.o))
        return invalid_argument("attention (CUDA): q, k, v, o must be 16-byte aligned");
    for (int64_t s : {p.q_stride_token, p.q_stride_head, p.k_stride_token, p.k_stride_head, p.v_stride_token,
                      p.v_stride_head, p.o_stride_token, p.o_stride_head})
        if (s % 8 != 0 || s < 0) return invalid_argument("attention (CUDA): strides must be non-negative multiples of 8");
    if (p.phase == AttentionPhase::kDecode) {
        if (p.num_tokens != p.num_seqs) return invalid_argument("attention (CUDA): decode takes one query per sequence");
        if (!p.kv_lens) return invalid_argument("attention (CUDA): decode needs kv_lens");
        if (p.num_seqs > 1 && !p.kv_start && !own_rows)
            return invalid_argument("attention (CUDA): decode of N > 1 needs kv_start or k_seqs / v_seqs");
    } else if (!p.cu_seqlens && p.num_seqs != 1) {
        return invalid_argument("attention (CUDA): prefill of several sequences needs cu_seqlens");
    }
    if (p.kv_len_host != 0 && (p.phase != AttentionPhase::kPrefill || p.num_seqs != 1 || p.cu_seqlens ||
                               p.kv_start || p.kv_len_host < p.num_tokens))
        return invalid_argument("attention (CUDA): kv_len_host (", p.kv_len_host, ") is for the prefill of one "
                                "sequence (no cu_seqlens or kv_start) and counts at least its ", p.num_tokens, " queries");
    return Status::ok();
}

size_t attention_workspace_bytes(const AttentionParams& p) {
    if (p.phase == AttentionPhase::kPrefill) {
        const AttentionBackend backend = resolve_prefill_backend(p.prefill_backend);
        if (!cudnn_sdpa_available()) return 0;
        if (bucketed_prefill_shape(p, backend)) return bucketed_prefill_workspace_bytes(p);
        if (cudnn_prefill_shape(p, backend)) return tiled_prefill_workspace_bytes(p);
        return ragged_prefill_shape(p, backend) && cudnn_sdpa_ragged_available() ? ragged_prefill_workspace_bytes(p)
                                                                                 : 0;
    }
    if (p.num_seqs == 0) return 0;
    auto sms = sm_count();
    return sms.has_value() ? split_bytes(p, plan_splits(p, *sms)) : 0;
}

int decode_splits(const AttentionParams& p) {
    if (p.phase != AttentionPhase::kDecode || p.num_seqs == 0) return 1;
    auto sms = sm_count();
    return sms.has_value() ? plan_splits(p, *sms) : 1;
}

bool cudnn_attention_available() { return cudnn_sdpa_available(); }

namespace {

// A cuDNN prefill route that keeps its staging, merges or index in p.workspace (`need` bytes, 256-byte aligned). The
// backend that names the route (`forced`) is refused without the workspace and reports the route's failure; kAuto
// goes on to the own kernel in both cases (a failure warned once through `warned`). Empty: go on to the own kernel.
std::optional<Status> run_workspace_route(const AttentionParams& p, size_t need, bool forced, const char* route,
                                          Status (*run_route)(const AttentionParams&, cudaStream_t),
                                          std::atomic<bool>& warned, cudaStream_t stream) {
    if (!workspace_fits(p, need)) {
        if (!forced) return std::nullopt;
        return invalid_argument("attention (CUDA): ", route, " needs a 256-byte aligned workspace of ", need,
                                " bytes (attention_workspace_bytes), got ", p.workspace_bytes);
    }
    const Status st = run_route(p, stream);
    if (st.is_ok() || forced) return st;
    if (!warned.exchange(true))
        VOLT_LOG(kWarn, kKernel, "attention: ", route, " failed, using the own prefill kernel: ", st.to_string());
    return std::nullopt;
}

}  // namespace

Status run(const AttentionParams& p, cudaStream_t stream) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.num_tokens == 0 || p.num_seqs == 0) return Status::ok();
    AttnArgs a{};
    a.q = static_cast<const __nv_bfloat16*>(p.q);
    a.k = static_cast<const __nv_bfloat16*>(p.k);
    a.v = static_cast<const __nv_bfloat16*>(p.v);
    a.o = static_cast<__nv_bfloat16*>(p.o);
    a.q_st = p.q_stride_token, a.q_sh = p.q_stride_head;
    a.k_st = p.k_stride_token, a.k_sh = p.k_stride_head;
    a.v_st = p.v_stride_token, a.v_sh = p.v_stride_head;
    a.o_st = p.o_stride_token, a.o_sh = p.o_stride_head;
    a.cu_seqlens = p.cu_seqlens;
    a.kv_lens = p.kv_lens;
    a.kv_start = p.kv_start;
    a.k_seqs = p.k_seqs;
    a.v_seqs = p.v_seqs;
    a.num_tokens = p.num_tokens;
    a.group = p.num_heads / p.num_kv_heads;
    a.scale_log2 = p.scale * kLog2e;
    a.num_heads = p.num_heads;
    a.splits = 1;

    if (p.phase == AttentionPhase::kDecode) {
        VOLT_ASSIGN_OR_RETURN(const int sms, sm_count());
        int splits = plan_splits(p, sms);
        const size_t need = split_bytes(p, splits);
        if (splits > 1 && (!p.workspace || p.workspace_bytes < need || !aligned16(p.workspace))) splits = 1;
        a.splits = splits;
        if (splits > 1) {
            a.part_o = static_cast<float*>(p.workspace);
            a.part_lse = a.part_o + static_cast<size_t>(p.num_seqs) * p.num_heads * splits * kD;
        }
        VOLT_RETURN_IF_ERROR(allow_smem<decode_kernel>(kDecSmem));
        VOLT_RETURN_IF_ERROR(launch_dependent(decode_kernel, dim3(p.num_kv_heads, splits, p.num_seqs),
                                              dim3(kDecThreads), kDecSmem, stream, a));
        // The combine's CTAs launch while the last splits still run and wait in start_dependent_kernel, so the merge
        // starts as the splits end instead of after a kernel launch.
        if (splits == 1) return Status::ok();
        return launch_dependent(decode_combine_kernel, dim3(p.num_heads, p.num_seqs), dim3(kCmbThreads), 0, stream, a);
    }

    const AttentionBackend backend = resolve_prefill_backend(p.prefill_backend);
    if (bucketed_prefill_shape(p, backend) && cudnn_sdpa_available()) {
        // A short piece after a long cached prefix: bucketed cuDNN shapes when the workspace is given.
        static std::atomic<bool> warned{false};
        const std::optional<Status> st =
            run_workspace_route(p, bucketed_prefill_workspace_bytes(p), backend == AttentionBackend::kCudnnBuckets,
                                "bucketed cuDNN SDPA", run_bucketed_prefill, warned, stream);
        if (st) return *st;
    } else if (backend == AttentionBackend::kCudnnBuckets) {
        return unimplemented("attention (CUDA): VOLT_ATTENTION_PREFILL=cudnn_buckets but ",
                             cudnn_sdpa_available()
                                 ? "this batch is not one sequence after a cached prefix of known length with at "
                                   "least its query bucket of keys"
                                 : "cuDNN SDPA is not available in this build or machine");
    }
    const bool cudnn_shape = cudnn_prefill_shape(p, backend);
    if (cudnn_shape && cudnn_sdpa_available()) {
        // A long fresh sequence in query pieces when the workspace for their merges is given, else one call.
        const size_t tiled = tiled_prefill_workspace_bytes(p);
        const bool tile = tiled > 0 && workspace_fits(p, tiled);
        const Status st = tile ? run_tiled_prefill(p, stream) : cudnn_sdpa_prefill(p, stream);
        // kAuto falls back to the own kernel when cuDNN rejects this shape (reported once); kCudnn reports it.
        if (st.is_ok() || backend == AttentionBackend::kCudnn) return st;
        static std::atomic<bool> warned{false};
        if (!warned.exchange(true))
            VOLT_LOG(kWarn, kKernel, "attention: cuDNN SDPA failed, using the own prefill kernel: ", st.to_string());
    }
    const bool ragged_shape = ragged_prefill_shape(p, backend);
    if (ragged_shape && cudnn_sdpa_ragged_available()) {
        // Several sequences, or keys in a cache: cuDNN's ragged layout when the workspace for its index is given.
        static std::atomic<bool> warned{false};
        const std::optional<Status> st =
            run_workspace_route(p, ragged_prefill_workspace_bytes(p), backend == AttentionBackend::kCudnn,
                                "ragged cuDNN SDPA", run_ragged_prefill, warned, stream);
        if (st) return *st;
    }
    if (backend == AttentionBackend::kCudnn)
        return unimplemented("attention (CUDA): VOLT_ATTENTION_PREFILL=cudnn but ",
                             !cudnn_sdpa_available() ? "cuDNN SDPA is not available in this build or machine"
                             : ragged_shape          ? "this batch needs cuDNN's ragged layout (cuDNN 9.6 or newer)"
                                                     : "this batch's key count is unknown on the host (set "
                                                       "max_seqlen_kv to bound every sequence's keys)");
    const int64_t max_q = p.max_seqlen_q > 0 ? p.max_seqlen_q : p.num_tokens;
    const int64_t q_tiles = (max_q + kBq - 1) / kBq;
    if (q_tiles > 65535) return invalid_argument("attention (CUDA): at most ", 65535 * kBq, " queries per sequence");
    VOLT_RETURN_IF_ERROR(allow_smem<prefill_kernel>(kPreSmem));
    prefill_kernel<<<dim3(p.num_heads, static_cast<unsigned>(q_tiles), p.num_seqs), kPreThreads, kPreSmem, stream>>>(
        a, static_cast<int>(q_tiles));
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace volt::cuda
