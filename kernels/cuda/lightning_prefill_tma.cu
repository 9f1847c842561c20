// Lightning attention prefill fed by the Tensor Memory Accelerator (sm_90a): the algorithm, chunking and numerics of
// prefill_wgmma_kernel (lightning_attention.cu), with the loads taken off the compute warps.
//
// Warpgroups of a CTA (one CTA per (value slice, head, sequence segment)):
//   producer (warpgroup 0, and 1 when the SiLU is applied on load): one thread issues the TMA tile loads of each
//     chunk (Q and K as two 64-column boxes each, the V slice as one; 128-byte swizzle, the wgmma operand layout)
//     into a ring of kStages stages, each with a "full" mbarrier that counts the bytes in. With pre-activation inputs
//     every producer warp applies the SiLU in place and signals "ready" (the SiLU is issue-bound: one warpgroup made
//     the kernel 8.0 ms at T = 128K, two 6.5 ms; the cp.async kernel, SiLU on all its warps, 7.2 ms). A sequence's
//     last, partial chunk is loaded whole (the box reads the next sequence's rows, or zeros past the tensor): its V
//     rows past the end are zeroed here and the consumers mask those keys, so nothing of another sequence, not even
//     an Inf, reaches this one.
//   output and state (the last two warpgroups, 224 registers each): the two wgmma chains of the cp.async kernel.
//     They no longer meet at a CTA barrier per chunk: the state warpgroup hands S_c to the output warpgroup through
//     kSBufs bf16 buffers guarded by mbarriers (sfull / sempty) and may run up to kSBufs - 1 chunks ahead; both release
//     a stage with one arrival per warp on its "empty" mbarrier.
// Why: the cp.async kernel spends 20 load instructions per thread and chunk on the compute warps and joins the two
// chains at __syncthreads every chunk; decoupling them with cp.async made the state chain the long pole
// (bench/lightning_notes.md, v8). Measurements: bench/lightning_notes.md (v9).
// Mbarrier parity waits only tell the current phase from the previous one, so every waiter below waits on a barrier
// at most one phase ahead of it: each role walks the chunks in order and waits on every phase it depends on.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/lightning_prefill.cuh"
#include "kernels/cuda/mbarrier.cuh"
#include "kernels/cuda/tensor_map.h"
#include "sdk/cuda_check.h"
#include "sdk/env.h"

namespace volt::cuda::lightning {
namespace {

constexpr int kStages = 4;
constexpr int kSBufs = 3;
// Chunks the producer loads ahead of the consumers' last release (plain inputs). Fewer loads in flight keep the 128
// CTAs' reads closer together in DRAM: H100, T = 8K / 128K, three interleaved rounds: 4 ahead (the whole ring) 0.251
// / 2.90-2.92 ms, 3 ahead 0.234 / 2.88-2.89, 2 ahead 0.230 / 3.22-3.24 (bench/lightning_notes.md, v11). The loads
// probe agrees: 5 stages in flight stream 25% slower than 4.
constexpr int kLoadLead = 3;
// Producer warpgroups (1 or 2): the SiLU on load is issue-bound, so pre-activation inputs get more producer warps.
// Registers: 128 * kPWgs * producer + 256 * 224 <= 65536.
template <int kPWgs>
struct TmaShape {
    static constexpr int kProducerThreads = 128 * kPWgs;
    static constexpr int kThreads = kProducerThreads + 256;
    static constexpr int kProducerRegs = kPWgs == 1 ? 56 : 32;
};
constexpr int kConsumerRegs = 224;
// Tiles 1 KiB-aligned first, then the barriers: full, ready, empty per stage; sfull, sempty per state buffer.
constexpr int kTileBytes = kStages * kWgStageBytes + kSBufs * kSBytes + kOBytes;
constexpr int kBarriers = 3 * kStages + 2 * kSBufs;
constexpr int kSmemBytes = kTileBytes + kBarriers * 8 + 1024;  // + alignment slack

struct TmaMaps {
    CUtensorMap q, k, v;  // [T, H, 128] bf16, box {64 columns, 1 head, 64 tokens}, 128-byte swizzle
};

// ---- the kernel -----------------------------------------------------------------------------------------------------
template <int kPWgs>
__global__ void __launch_bounds__(TmaShape<kPWgs>::kThreads, 1)
    prefill_tma_kernel(const __grid_constant__ PrefillArgs a, const __grid_constant__ TmaMaps maps) {
    constexpr int kProducerThreads = TmaShape<kPWgs>::kProducerThreads;
    constexpr int kProducerRegs = TmaShape<kPWgs>::kProducerRegs;
    extern __shared__ __align__(1024) char smem_raw[];
    char* tiles = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    char* s_state = tiles + kStages * kWgStageBytes;  // kSBufs x [128 d_k][64 d_v] bf16, swizzled 128-byte rows
    char* s_out = s_state + kSBufs * kSBytes;         // [64 rows][64 d_v] bf16
    const uint32_t bars = smem_u32(tiles + kTileBytes);
    auto full = [&](int st) { return bars + 8 * st; };
    auto ready = [&](int st) { return bars + 8 * (kStages + st); };
    auto empty = [&](int st) { return bars + 8 * (2 * kStages + st); };
    auto sfull = [&](int b) { return bars + 8 * (3 * kStages + b); };
    auto sempty = [&](int b) { return bars + 8 * (3 * kStages + kSBufs + b); };

    const int slice = blockIdx.x, h = blockIdx.y, n = blockIdx.z / a.segs, seg = blockIdx.z % a.segs;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int wg = __shfl_sync(0xffffffffu, tid / 128, 0);  // warp-uniform for the compiler
    if (tid == 0) {
        for (int st = 0; st < kStages; ++st) {
            mbar_init(full(st), 1);
            mbar_init(ready(st), 1);
            mbar_init(empty(st), 8);  // one arrival per consumer warp
        }
        for (int b = 0; b < kSBufs; ++b) {
            mbar_init(sfull(b), 4);   // state warps
            mbar_init(sempty(b), 4);  // output warps
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    int64_t tok_begin, len;
    segment_range(a, n, seg, tok_begin, len);
    const int nchunks = static_cast<int>((len + kC - 1) / kC);
    // A stage is waited on through "full" (TMA bytes landed) when the producer warps have nothing to do to it, else
    // through "ready" (SiLU applied / partial chunk's tail zeroed). Only a segment's last chunk can be partial, so each
    // barrier's phase count is the number of chunks that used it before: parity (c / kStages) & 1, or 0 for the one
    // partial chunk when "ready" is not used otherwise.
    auto wait_stage = [&](int c) {
        const int st = c % kStages;
        const bool partial = chunk_rows(len, c) < kC;
        if (!a.silu && !partial) mbar_wait(full(st), (c / kStages) & 1);
        else mbar_wait(ready(st), a.silu ? (c / kStages) & 1 : 0);
    };

    if (wg < kProducerThreads / 128) {  // ---- producer ---------------------------------------------------------------
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
        // TMA loads of chunks [issued, upto] by one thread, each once the consumers released the chunk that used its
        // stage before. A partial last chunk is loaded whole too: rows past the sequence are the next sequence's
        // (or zeros past the tensor); make_ready zeroes their V rows and the consumers mask their K columns, so
        // nothing of another sequence (not even an Inf) reaches this one.
        // Plain inputs: at most kLoadLead chunks in flight past the consumers' last release (each wait is on the next
        // chunk's phase, so the one-phase rule holds). With the SiLU the issue runs kStages - 2 ahead of it instead.
        const int lead = a.silu ? kStages : kLoadLead;
        int issued = 0;
        auto issue_upto = [&](int upto) {
            for (; issued <= upto && issued < nchunks; ++issued) {
                const int c = issued, st = c % kStages;
                // Chunk c - lead released, and with it (lead <= kStages) the stage chunk c reuses.
                if (c >= lead) mbar_wait(empty((c - lead) % kStages), ((c - lead) / kStages) & 1);
                const uint32_t sq = smem_u32(tiles + st * kWgStageBytes), sk = sq + kQBytes, sv = sk + kKBytes;
                const int t = static_cast<int>(tok_begin + int64_t{c} * kC);
                mbar_arrive_expect_tx(full(st), kWgStageBytes);
                tma_load_3d(sq, &maps.q, full(st), 0, h, t);
                tma_load_3d(sq + kC * 128, &maps.q, full(st), 64, h, t);
                tma_load_3d(sk, &maps.k, full(st), 0, h, t);
                tma_load_3d(sk + kC * 128, &maps.k, full(st), 64, h, t);
                tma_load_3d(sv, &maps.v, full(st), slice * kDVS, h, t);
            }
        };
        // Stage of chunk c made ready by `nt` threads (index i) once its bytes landed: the SiLU in place when asked,
        // the V rows past a partial chunk's end zeroed, then one arrival on "ready".
        auto make_ready = [&](int c, int i, int nt, int bar_id) {
            const int st = c % kStages, m = chunk_rows(len, c);
            char* sq = tiles + st * kWgStageBytes;
            char* sk = sq + kQBytes;
            char* sv = sk + kKBytes;
            mbar_wait(full(st), (c / kStages) & 1);
            if (a.silu)
                for (int idx = i; idx < kC * kD / 8; idx += nt) {
                    const uint32_t off = swz128<kC>(idx >> 4, (idx & 15) * 8);
                    silu_chunk(sq + off);
                    silu_chunk(sk + off);
                }
            // V: each 16-byte chunk by one thread, SiLU or zero (past the end), so the two never race.
            if (a.silu || m < kC)
                for (int idx = i; idx < kC * kDVS / 8; idx += nt) {
                    char* p = sv + swz128<kC>(idx >> 3, (idx & 7) * 8);
                    if ((idx >> 3) >= m) *reinterpret_cast<uint4*>(p) = make_uint4(0, 0, 0, 0);
                    else if (a.silu) silu_chunk(p);
                }
            fence_proxy_async();  // generic-proxy writes -> the consumers' wgmma reads
            named_sync(bar_id, nt);
            if (i == 0) mbar_arrive(ready(st));
        };
        if (tid == 0) {
            asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&maps.q)) : "memory");
            asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&maps.k)) : "memory");
            asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&maps.v)) : "memory");
        }
        if (a.silu) {
            // SiLU on every chunk by every producer warp. The issuing thread keeps the TMA kStages - 2 chunks ahead
            // of the SiLU, so its wait on "empty" is for a chunk the consumers had a whole SiLU pass to finish.
            for (int c = 0; c < nchunks; ++c) {
                if (tid == 0) issue_upto(c + kStages - 2);
                make_ready(c, tid, kProducerThreads, 1);
            }
        } else if (warp == 0) {
            if (lane == 0) issue_upto(nchunks - 1);
            // A partial last chunk, by this warp: after its own issue, so its parity wait on "full" is for the phase
            // right after the one the issuer saw released (a warp that skipped ahead could mistake an old phase).
            __syncwarp();
            if (nchunks > 0 && chunk_rows(len, nchunks - 1) < kC) make_ready(nchunks - 1, lane, 32, 1);
        }
        return;
    }
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));

    const int g = lane >> 2, t4 = lane & 3;
    const int rw = warp & 3;  // warp index within its warpgroup
    const float slope = a.slope[h];
    const float nl2 = -slope * kLog2e;

    if (wg == kProducerThreads / 128) {  // ---- output: O = lambda^{i+1} Q S_prev + (Q K^T . decay, causal) V --------
        const int row0 = 16 * rw + g;  // chunk-local rows row0 and row0 + 8 of this thread
        float dec[32], f0, f1;
        output_decay_table(nl2, row0, t4, dec, f0, f1);
        for (int c = 0; c < nchunks; ++c) {
            const int st = c % kStages, m = chunk_rows(len, c), sb = c % kSBufs;
            wait_stage(c);
            const uint32_t sq_u32 = smem_u32(tiles + st * kWgStageBytes), sk_u32 = sq_u32 + kQBytes;
            float oacc[32];
            output_chunk<true>(
                sq_u32, sk_u32, sk_u32 + kKBytes, smem_u32(s_state + sb * kSBytes), dec, f0, f1, m, t4, oacc,
                [&] {  // S_prev of this chunk, written by the state warpgroup
                    mbar_wait(sfull(sb), (c / kSBufs) & 1);
                    wgmma_fence();
                },
                [] {},
                [&] {  // this warp is done with the stage and with S_prev
                    __syncwarp();
                    if (lane == 0) {
                        mbar_arrive(empty(st));
                        mbar_arrive(sempty(sb));
                    }
                });
            const int64_t tok0 = tok_begin + int64_t{c} * kC;
            store_rows_bf16(s_out, oacc, rw, g, t4, lane, m, a.o + tok0 * a.o_st + h * a.o_sh + slice * kDVS,
                              a.o_st);
        }
        return;
    }

    // ---- state: S = lambda^m S + (diag(lambda^{m-1-j}) K)^T V --------------------------------------------------------
    const float* st_in;
    float* st_out;
    state_slice_ptrs<false>(a, n, seg, h, slice, st_in, st_out);
    float sacc[2][32];
    load_state_slice(st_in, sacc, s_state, rw, g, t4);
    fence_proxy_async();
    __syncwarp();
    if (lane == 0) mbar_arrive(sfull(0));
    StateDecay kd_table;
    state_decay_table(nl2, t4, kd_table);
    for (int c = 0; c < nchunks; ++c) {
        const int st = c % kStages, m = chunk_rows(len, c);
        wait_stage(c);
        const char* sk = tiles + st * kWgStageBytes + kQBytes;
        state_chunk<true>(sacc, sk, smem_u32(sk) + kKBytes, m, slope, nl2, kd_table, rw, lane, t4, [] {});
        __syncwarp();
        if (lane == 0) mbar_arrive(empty(st));
        if (c + 1 < nchunks) {  // S_{c+1} in bf16 for the output warpgroup's chunk c + 1
            const int nb = (c + 1) % kSBufs;
            if (c + 1 >= kSBufs) mbar_wait(sempty(nb), ((c + 1) / kSBufs - 1) & 1);
            write_state_bf16(s_state + nb * kSBytes, sacc, rw, g, t4);
            fence_proxy_async();
            __syncwarp();
            if (lane == 0) mbar_arrive(sfull(nb));
        }
    }
    if (st_out) store_state_slice(st_out, sacc, rw, g, t4);
}

// ---- host side ------------------------------------------------------------------------------------------------------
// [T, H, 128] bf16 with element (t, h, d) at base[t * st_tok + h * st_head + d]; boxes of 64 columns x 1 head x 64
// tokens, swizzled like swz128 so the tiles land in the wgmma operand layout. Rows past T read as zeros.
Expected<CUtensorMap> tensor_map(const void* base, int64_t tokens, int heads, int64_t st_tok, int64_t st_head) {
    CUtensorMap map;
    const cuuint64_t dims[3] = {static_cast<cuuint64_t>(kD), static_cast<cuuint64_t>(heads),
                                static_cast<cuuint64_t>(tokens)};
    const cuuint64_t strides[2] = {static_cast<cuuint64_t>(st_head) * 2, static_cast<cuuint64_t>(st_tok) * 2};
    const cuuint32_t box[3] = {64, 1, kC};
    const cuuint32_t elem_strides[3] = {1, 1, 1};
    const CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims,
                                            strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return internal_error("lightning_attention (CUDA): cuTensorMapEncodeTiled failed (CUresult ", int(r),
                              ") for tokens ", tokens, ", heads ", heads, ", strides ", st_tok, "/", st_head);
    return map;
}

}  // namespace

bool tma_prefill_available() { return tensor_map_encoder() != nullptr; }

Status launch_tma_prefill(const PrefillArgs& a, dim3 grid, bool cluster, cudaStream_t stream) {
    if (a.num_tokens == 0) return Status::ok();
    if (a.num_tokens > INT32_MAX)
        return invalid_argument("lightning_attention (CUDA): the TMA prefill takes at most 2^31-1 tokens per call");
    TmaMaps maps;
    VOLT_ASSIGN_OR_RETURN(maps.q, tensor_map(a.q, a.num_tokens, a.num_heads, a.q_st, a.q_sh));
    VOLT_ASSIGN_OR_RETURN(maps.k, tensor_map(a.k, a.num_tokens, a.num_heads, a.k_st, a.k_sh));
    VOLT_ASSIGN_OR_RETURN(maps.v, tensor_map(a.v, a.num_tokens, a.num_heads, a.v_st, a.v_sh));
    // Producer warpgroups: 2 when the SiLU is applied on load (VOLT_LIGHTNING_TMA_PRODUCERS=1|2 overrides, for A/B).
    static const int forced = env_choice("VOLT_LIGHTNING_TMA_PRODUCERS", {{"1", 1}, {"2", 2}}, 0);
    const int pwgs = forced ? forced : a.silu ? 2 : 1;
    if (pwgs == 2)
        return launch_prefill<prefill_tma_kernel<2>>(grid, TmaShape<2>::kThreads, kSmemBytes, cluster, stream, a, maps);
    return launch_prefill<prefill_tma_kernel<1>>(grid, TmaShape<1>::kThreads, kSmemBytes, cluster, stream, a, maps);
}

}  // namespace volt::cuda::lightning
