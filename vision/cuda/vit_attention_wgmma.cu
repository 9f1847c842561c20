// The ViT's bidirectional attention on sm_90a tensor cores, head_dim 64 (CPU twin: cpu::encoder_attention).
//
// o = softmax(scale q k^T) v per (sequence, head), online softmax over blocks of 64 keys (FlashAttention-2's
// recurrence). A CTA is two warpgroups, each owning 64 query rows; both walk the same key blocks, which all 256 threads
// stream with cp.async into a 5-stage ring of 128-byte-swizzled K and V tiles (rows past the sequence zero-filled).
// Per key block a warpgroup runs S = Q K^T (wgmma, Q as register fragments, K from shared memory), the softmax in
// registers (MUFU ex2), then O += P V (wgmma, P as register fragments, V MN-major from shared memory), which stays in
// flight while the next block's S is issued. Two CTAs share an SM (97 KiB of shared memory, <= 128 registers), so
// one warpgroup's exponentials overlap another's products: at d = 64 the two take about the same time.
//
// A crop of 577 tokens is 9 key blocks and 1 key: the last block runs 16-key-wide products (wgmma n16) for just the
// keys it has, and warps whose 16 query rows all lie past the sequence skip their softmax.
#include "vision/cuda/vit_attention_wgmma.h"

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/wgmma.cuh"
#include "sdk/cuda_check.h"

namespace volt::vision::cuda {
namespace {

namespace vc = ::volt::cuda;

constexpr int kHd = 64;                        // head dim: one 128-byte swizzle row
constexpr int kTile = 64;                      // query rows per warpgroup = keys per block
constexpr int kWarpgroups = 2;
constexpr int kThreads = 128 * kWarpgroups;
constexpr int kQRows = kTile * kWarpgroups;    // query rows per CTA
constexpr int kTileBytes = kTile * kHd * 2;    // 8 KiB
constexpr int kStageBytes = 2 * kTileBytes;    // K, V
// K/V ring: blocks are loaded kStages - 2 = 3 ahead (see the main loop); 2 ahead (4 stages) measured 1.3% slower.
constexpr int kStages = 5;
constexpr int kSmemBytes = kWarpgroups * kTileBytes + kStages * kStageBytes + 1024;  // 97 KiB with the 1 KiB slack

struct Args {
    const __nv_bfloat16* qkv;
    int64_t ts, bs, k_off, v_off;  // elements: token and sequence strides, K and V offsets from Q
    __nv_bfloat16* o;
    int64_t ots, obs;
    int T;
    float c;  // scale * log2(e)
};

__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Pins fragment registers here (see fence_regs): the compiler must not move their definitions past wgmma_fence.
__device__ __forceinline__ void pin(uint32_t (&r)[4][4]) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(r[i][e])::"memory");
}

// Key block kb's K and V rows (64 x 64 each) into a stage: 1024 16-byte chunks, 4 per thread; rows >= T zero-filled.
__device__ __forceinline__ void load_kv(const Args& a, const __nv_bfloat16* head, int kb, uint32_t stage, int tid) {
#pragma unroll
    for (int u = 0; u < 4; ++u) {
        const int i = tid + kThreads * u, half = i >> 9, row = (i >> 3) & 63, ch = i & 7;
        const int t = kb * kTile + row;
        const bool valid = t < a.T;
        const __nv_bfloat16* src = head + (half ? a.v_off : a.k_off) + int64_t(valid ? t : 0) * a.ts + ch * 8;
        vc::cp_async16(stage + half * kTileBytes + vc::swz<8>(row, ch * 8), src, valid ? 16 : 0);
    }
}

template <int kLen>
__device__ __forceinline__ void pin_acc(float (&d)[kLen]) {
#pragma unroll
    for (int i = 0; i < kLen; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// One online-softmax step over kNT 8-key column groups of scores s (a warp's rows g: elements e = 0, 1 and g + 8:
// e = 2, 3; the quad t4 = 0..3 holds a row's columns): keys >= valid masked (kMask); the running maxima m and sums l
// updated; P = exp2((s - m) c) into the bf16 A fragments pa[kK0 ..]; corr0 / corr1: what the output rows must be
// rescaled by (exp2 of the maxima's change; 0 on the first block, where m was -inf).
template <int kNT, bool kMask, int kK0, int kLen>
__device__ __forceinline__ void softmax_step(float (&s)[kLen], int valid, float c, int t4, float (&m)[2],
                                             float (&l)[2], uint32_t (&pa)[4][4], float& corr0, float& corr1) {
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
        if (kMask) {
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (8 * nt + 2 * t4 + (e & 1) >= valid) s[4 * nt + e] = -INFINITY;
        }
        mx0 = fmaxf(mx0, fmaxf(s[4 * nt + 0], s[4 * nt + 1]));
        mx1 = fmaxf(mx1, fmaxf(s[4 * nt + 2], s[4 * nt + 3]));
    }
#pragma unroll
    for (int d = 1; d <= 2; d <<= 1) {
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, d));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, d));
    }
    // Every step has a valid key, so the new maxima are finite.
    const float n0 = fmaxf(m[0], mx0), n1 = fmaxf(m[1], mx1);
    corr0 = ex2((m[0] - n0) * c), corr1 = ex2((m[1] - n1) * c);
    m[0] = n0, m[1] = n1;
    const float b0 = -n0 * c, b1 = -n1 * c;
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt) {
        const float p0 = ex2(fmaf(s[4 * nt + 0], c, b0)), p1 = ex2(fmaf(s[4 * nt + 1], c, b0));
        const float p2 = ex2(fmaf(s[4 * nt + 2], c, b1)), p3 = ex2(fmaf(s[4 * nt + 3], c, b1));
        sum0 += p0 + p1;
        sum1 += p2 + p3;
        pa[kK0 + (nt >> 1)][(nt & 1) * 2 + 0] = vc::pack_bf16(p0, p1);
        pa[kK0 + (nt >> 1)][(nt & 1) * 2 + 1] = vc::pack_bf16(p2, p3);
    }
    l[0] = fmaf(l[0], corr0, sum0);
    l[1] = fmaf(l[1], corr1, sum1);
}

__device__ __forceinline__ void rescale(float (&oacc)[32], float corr0, float corr1) {
#pragma unroll
    for (int i = 0; i < 32; i += 4) {
        oacc[i + 0] *= corr0;
        oacc[i + 1] *= corr0;
        oacc[i + 2] *= corr1;
        oacc[i + 3] *= corr1;
    }
}

// O += P V over the 16-key groups [kK0, kK1) of the block (V rows 16 kk.., 2 KiB each), issued, not waited for.
template <int kK0, int kK1>
__device__ __forceinline__ void issue_pv(float (&oacc)[32], uint32_t (&pa)[4][4], uint32_t sv) {
    vc::fence_regs(oacc);
    pin(pa);
    vc::wgmma_fence();
#pragma unroll
    for (int kk = kK0; kk < kK1; ++kk) vc::wgmma_m64n64k16_rs<1>(oacc, pa[kk], vc::sw128_desc(sv + kk * 2048, 8192, 1024));
    vc::wgmma_commit();
}

// S[:, 0 .. kN) = Q K^T for keys kfirst.. of the block (K rows from sk + 128 kfirst), issued and committed.
template <int kN, int kLen>
__device__ __forceinline__ void issue_scores(float (&s)[kLen], uint32_t (&qa)[4][4], uint32_t sk) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {  // k = head dim, 16 per step (32 bytes of the swizzled K rows)
        const uint64_t desc = vc::sw128_desc(sk + kk * 32, 16, 1024);
        if (kk == 0) vc::wgmma_m64nk16_rs<kN, 0, 0>(s, qa[kk], desc);
        else vc::wgmma_m64nk16_rs<kN, 0>(s, qa[kk], desc);
    }
    vc::wgmma_commit();
}

// One key block for one warpgroup: kN16 groups of 16 keys (4 = 64), keys >= valid masked when kMask. S = Q K^T,
// wait (which also retires the previous block's P V), softmax, rescale, issue O += P V without waiting.
// live: the warp has a query row inside the sequence (else P stays zero and its rows are never stored).
template <int kN16, bool kMask>
__device__ __forceinline__ void key_block(uint32_t (&qa)[4][4], uint32_t sk, uint32_t sv, int valid, float c,
                                          bool live, int t4, float (&oacc)[32], float (&m)[2], float (&l)[2],
                                          uint32_t (&pa)[4][4]) {
    float s[32];  // written by the first k step (scale-d 0), not read
    pin(qa);
    vc::wgmma_fence();
    issue_scores<16 * kN16>(s, qa, sk);
    vc::wgmma_wait0();
    pin_acc(s);
    vc::fence_regs(oacc);
    if (live) {
        float corr0, corr1;
        softmax_step<2 * kN16, kMask, 0>(s, valid, c, t4, m, l, pa, corr0, corr1);
        rescale(oacc, corr0, corr1);
    }
    issue_pv<0, kN16>(oacc, pa, sv);
}

// grid = (ceil(T / 128), heads, sequences); 256 threads.
__global__ void __launch_bounds__(kThreads, 2) vit_attention_wgmma_kernel(const Args a) {
    constexpr int kAhead = kStages - 2;  // key blocks in flight beyond the one being used
    extern __shared__ __align__(1024) char smem_raw[];
    // Dynamic shared memory is not promised 1 KiB alignment (the swizzle atoms need it): round up (slack allocated).
    char* base = smem_raw + ((1024 - (vc::smem_u32(smem_raw) & 1023)) & 1023);
    const uint32_t sq = vc::smem_u32(base), ring = sq + kWarpgroups * kTileBytes;

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    // Warpgroup index through a shuffle so the compiler sees it warp-uniform (else it serialises the wgmma ops).
    const int wg = __shfl_sync(0xffffffffu, tid >> 7, 0), rw = warp & 3;
    const int h = blockIdx.y;
    const int64_t seq = blockIdx.z;
    const int q_cta = blockIdx.x * kQRows, q0 = q_cta + wg * kTile;  // first query row of the CTA, the warpgroup
    const __nv_bfloat16* head = a.qkv + seq * a.bs + int64_t(h) * kHd;
    const bool live = q0 + 16 * rw < a.T;           // warp-uniform
    const int nkb = (a.T + kTile - 1) / kTile;
    const int tail = a.T - (nkb - 1) * kTile;      // keys in the last block, 1..64
    const int tail16 = (tail + 15) >> 4;

    // Prologue: group 0 = the CTA's 128 query rows, groups 1 .. kAhead = key blocks 0 .. kAhead - 1.
#pragma unroll
    for (int u = 0; u < 4; ++u) {
        const int i = tid + kThreads * u, row = i >> 3, ch = i & 7, t = q_cta + row;
        const bool valid = t < a.T;
        vc::cp_async16(sq + (row >> 6) * kTileBytes + vc::swz<8>(row & 63, ch * 8),
                       head + int64_t(valid ? t : 0) * a.ts + ch * 8, valid ? 16 : 0);
    }
    vc::cp_async_commit();
    load_kv(a, head, 0, ring, tid);
    vc::cp_async_commit();
#pragma unroll
    for (int kb = 1; kb < kAhead; ++kb) {
        if (kb < nkb) load_kv(a, head, kb, ring + kb * kStageBytes, tid);
        vc::cp_async_commit();
    }

    // The warpgroup's Q rows as m64k16 fragments: rows 16 rw + g (+ 8), d = 16 kk + 2 t4 (+ 8).
    vc::cp_async_wait<kAhead>();
    __syncthreads();
    uint32_t qa[4][4], pa[4][4] = {};  // pa: zeros for good in warps whose rows all lie past the sequence
    {
        const char* q = base + wg * kTileBytes;
        const int r0 = 16 * rw + g;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
            const int c0 = 16 * kk + 2 * t4;
            qa[kk][0] = *reinterpret_cast<const uint32_t*>(q + vc::swz<8>(r0, c0));
            qa[kk][1] = *reinterpret_cast<const uint32_t*>(q + vc::swz<8>(r0 + 8, c0));
            qa[kk][2] = *reinterpret_cast<const uint32_t*>(q + vc::swz<8>(r0, c0 + 8));
            qa[kk][3] = *reinterpret_cast<const uint32_t*>(q + vc::swz<8>(r0 + 8, c0 + 8));
        }
    }
    float oacc[32], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 32; ++i) oacc[i] = 0.0f;
    // Block kb has landed (kAhead - 1 younger groups may be in flight); after the barrier every warpgroup has retired
    // block kb - 2's products (its P V completed in block kb - 1's wait), so its stage takes block kb + kAhead.
    auto block_ready = [&](int kb) {
        vc::cp_async_wait<kAhead - 1>();
        vc::fence_proxy_async();
        __syncthreads();
        if (kb + kAhead < nkb) load_kv(a, head, kb + kAhead, ring + ((kb + kAhead) % kStages) * kStageBytes, tid);
        vc::cp_async_commit();
        return ring + (kb % kStages) * kStageBytes;  // K tile; V follows
    };
    for (int kb = 0; kb < nkb - 1; ++kb) {
        const uint32_t sk = block_ready(kb);
        key_block<4, false>(qa, sk, sk + kTileBytes, kTile, a.c, live, t4, oacc, m, l, pa);
    }
    const uint32_t sk = block_ready(nkb - 1), sv = sk + kTileBytes;
    switch (tail == kTile ? 0 : tail16) {  // the last block: only its keys' 16-wide groups, the rest masked
        case 0: key_block<4, false>(qa, sk, sv, kTile, a.c, live, t4, oacc, m, l, pa); break;
        case 1: key_block<1, true>(qa, sk, sv, tail, a.c, live, t4, oacc, m, l, pa); break;
        case 2: key_block<2, true>(qa, sk, sv, tail, a.c, live, t4, oacc, m, l, pa); break;
        case 3: key_block<3, true>(qa, sk, sv, tail, a.c, live, t4, oacc, m, l, pa); break;
        default: key_block<4, true>(qa, sk, sv, tail, a.c, live, t4, oacc, m, l, pa); break;
    }
    vc::wgmma_wait0();
    vc::fence_regs(oacc);

    // l: the quad's partial sums of each row; o = O / l (rows past the sequence are not stored: 0 / 0 there is moot).
    float l0 = l[0], l1 = l[1];
#pragma unroll
    for (int d = 1; d <= 2; d <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, d);
        l1 += __shfl_xor_sync(0xffffffffu, l1, d);
    }
    rescale(oacc, 1.0f / l0, 1.0f / l1);
    // The warpgroup's Q tile (in registers since the prologue) stages the output rows; a warpgroup wholly past the
    // sequence (T mod 128 in 1..64: it ran on zeros) stores none.
    vc::store_rows_bf16(base + wg * kTileBytes, oacc, rw, g, t4, lane, min(kTile, a.T - q0),
                        a.o + seq * a.obs + int64_t(q0) * a.ots + int64_t(h) * kHd, a.ots);
}

}  // namespace

const char* wgmma_attention_unfit(const VitAttentionParams& p) {
    if (p.head_dim != kHd) return "head_dim must be 64";
    if (!(p.scale > 0.0f)) return "scale must be positive";
    if (!vc::aligned16(p.qkv) || !vc::aligned16(p.o)) return "qkv and o must be 16-byte aligned";
    for (const int64_t s : {p.token_stride, p.batch_stride, p.k_offset, p.v_offset, p.o_token_stride,
                            p.o_batch_stride})
        if (s % 8 != 0) return "strides and offsets must be multiples of 8 elements";
    if (p.tokens > (int64_t{1} << 30)) return "at most 2^30 tokens per sequence";
    if (!vc::on_hopper()) return "needs an sm_90 GPU (Hopper)";
    return nullptr;
}

Status run_wgmma_attention(const VitAttentionParams& p, cudaStream_t stream) {
    if (const char* why = wgmma_attention_unfit(p))
        return unimplemented("ViT attention (CUDA, wgmma): ", why);
    VOLT_RETURN_IF_ERROR(vc::allow_smem<vit_attention_wgmma_kernel>(kSmemBytes));
    const Args a{static_cast<const __nv_bfloat16*>(p.qkv), p.token_stride, p.batch_stride, p.k_offset, p.v_offset,
                 static_cast<__nv_bfloat16*>(p.o), p.o_token_stride, p.o_batch_stride, static_cast<int>(p.tokens),
                 p.scale * 1.4426950408889634f};
    const dim3 grid(unsigned((p.tokens + kQRows - 1) / kQRows), unsigned(p.heads), unsigned(p.batch));
    vit_attention_wgmma_kernel<<<grid, kThreads, kSmemBytes, stream>>>(a);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace volt::vision::cuda
