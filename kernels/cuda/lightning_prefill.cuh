// Shared by the two lightning prefill translation units (lightning_attention.cu: the cp.async kernels, the decode
// and norm kernels, the dispatch; lightning_prefill_tma.cu: the TMA-fed kernel): the chunk geometry, the prefill
// arguments, the segment and chunk helpers, the 128-byte-swizzled tile layout and the sm_90a wgmma / fence wrappers.
// Include only from .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_common.cuh"
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

// SiLU with the approximate divide (MUFU reciprocal + multiply, ~2 ulp; the result is rounded to bf16): the IEEE
// divide's extra instructions made the prefill's SiLU on load (20480 elements per chunk and CTA) issue-bound. A
// one-MUFU form (Newton steps for the reciprocal) measured slower still: issue, not MUFU, is the limit.
__device__ __forceinline__ float silu_fast(float x) { return __fdividef(x, 1.0f + __expf(-x)); }

// SiLU in place over one 16-byte chunk of 8 bf16 in shared memory.
__device__ __forceinline__ void silu_chunk(char* p) {
    uint4 u = *reinterpret_cast<uint4*>(p);
    uint32_t* w = reinterpret_cast<uint32_t*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 f = unpack_bf16(w[i]);
        w[i] = pack_bf16(silu_fast(f.x), silu_fast(f.y));
    }
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

// Shared-memory matrix descriptor, 128-byte swizzle (PTX ISA "matrix descriptor"): start address, leading and
// stride byte offsets (>> 4), layout type 1 = SWIZZLE_128B in bits 62-63; base offset 0 (atoms 1 KiB-aligned).
__device__ __forceinline__ uint64_t sw128_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
    return static_cast<uint64_t>((saddr & 0x3ffff) >> 4) | (static_cast<uint64_t>((lbo >> 4) & 0x3fff) << 16) |
           (static_cast<uint64_t>((sbo >> 4) & 0x3fff) << 32) | (uint64_t{1} << 62);
}

// Pins accumulator registers at this point of the program (CUTLASS's warpgroup_fence_operand): keeps the compiler
// from moving their ordinary uses across the wgmma fence/wait, which would make it inject serialising waits.
__device__ __forceinline__ void fence_regs(float (&d)[32]) {
#pragma unroll
    for (int i = 0; i < 32; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait1() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Generic-proxy shared-memory writes (cp.async, st.shared) made visible to the async proxy (wgmma operand reads).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// D[64 x 64] (+)= A[64 x 16] (registers, the m16k16 fragment of each warp's 16 rows) * B[16 x 64] (shared memory,
// descriptor). kTransB = 0: B is K-major (each of its 64 columns contiguous along k); 1: MN-major (rows along k).
// Asynchronous: wgmma_commit + wgmma_wait before the accumulators or A registers are touched again.
template <int kTransB>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %37;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "n"(kTransB));
}

// D[64 x 64] (+)= A[64 x 16] * B[16 x 64], both from shared memory (descriptors); A K-major.
template <int kTransB>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.eq.u32 p, 1, 1;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, %34;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(desc_a), "l"(desc_b), "n"(kTransB));
}

// The TMA-fed prefill kernel (lightning_prefill_tma.cu): false when the driver offers no cuTensorMapEncodeTiled.
bool tma_prefill_available();
// Launches it over `grid` = (slices, heads, sequences x segments), as a 2-CTA cluster per head when `cluster`.
Status launch_tma_prefill(const PrefillArgs& a, dim3 grid, bool cluster, cudaStream_t stream);

}  // namespace volt::cuda::lightning
