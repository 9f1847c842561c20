// sm_90a warpgroup MMA (wgmma) helpers shared by the Hopper kernels (the lightning prefill kernels, the ViT
// attention): shared-memory matrix descriptors for 128-byte-swizzled tiles, the fence / commit / wait wrappers, the
// m64n64k16 bf16 products with A from registers or shared memory, and the store of an m64n64 accumulator as bf16.
// Tiles are rows of 128 bytes (64 bf16) XOR-swizzled in 16-byte chunks (swz<8> in device_common.cuh), 1 KiB-aligned:
// the layout TMA's SWIZZLE_128B writes and wgmma's layout type 1 reads. Include only from .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/mbarrier.cuh"

namespace volt::cuda {

// Shared-memory matrix descriptor, 128-byte swizzle (PTX ISA "matrix descriptor"): start address, leading and
// stride byte offsets (>> 4), layout type 1 = SWIZZLE_128B in bits 62-63; base offset 0 (atoms 1 KiB-aligned).
__device__ __forceinline__ uint64_t sw128_desc(uint32_t saddr, uint32_t lbo, uint32_t sbo) {
    return static_cast<uint64_t>((saddr & 0x3ffff) >> 4) | (static_cast<uint64_t>((lbo >> 4) & 0x3fff) << 16) |
           (static_cast<uint64_t>((sbo >> 4) & 0x3fff) << 32) | (uint64_t{1} << 62);
}

// Pins accumulator registers at this point of the program (CUTLASS's warpgroup_fence_operand): keeps the compiler
// from moving their ordinary uses across the wgmma fence/wait, which would make it inject serialising waits. On A
// fragments, after the wait that saw their products done: keeps their registers from being reused before.
template <int N>
__device__ __forceinline__ void fence_regs(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_regs(uint32_t (&a)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+r"(a[i])::"memory");
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait1() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// At most kN committed groups still in flight.
template <int kN>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kN) : "memory");
}
// Generic-proxy shared-memory writes (cp.async, st.shared) made visible to the async proxy (wgmma operand reads).

// The wgmma forms below, one asm template per operand source: TY the operand type ("bf16" or "f16"), N the width,
// REGS the accumulators' operand list (%0 ...), then the operand numbers of A (registers: four, "%a, %b, %c, %d"; or
// a descriptor), B's descriptor, B's transpose (registers only) and the scale-d predicate, then the accumulators'
// constraints.
#define VOLT_WGMMA_F4(i) "+f"(d[i]), "+f"(d[(i) + 1]), "+f"(d[(i) + 2]), "+f"(d[(i) + 3])
#define VOLT_WGMMA_F8(i) VOLT_WGMMA_F4(i), VOLT_WGMMA_F4((i) + 4)
#define VOLT_WGMMA_F16(i) VOLT_WGMMA_F8(i), VOLT_WGMMA_F8((i) + 8)
// The accumulators' operand lists ("%0, %1, ...") and constraints, by count.
#define VOLT_WGMMA_R8 "%0, %1, %2, %3, %4, %5, %6, %7"
#define VOLT_WGMMA_R16 VOLT_WGMMA_R8 ", %8, %9, %10, %11, %12, %13, %14, %15"
#define VOLT_WGMMA_R24 VOLT_WGMMA_R16 ", %16, %17, %18, %19, %20, %21, %22, %23"
#define VOLT_WGMMA_R32 VOLT_WGMMA_R24 ", %24, %25, %26, %27, %28, %29, %30, %31"
#define VOLT_WGMMA_R48 VOLT_WGMMA_R32 ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"
#define VOLT_WGMMA_R64 VOLT_WGMMA_R48 ", %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define VOLT_WGMMA_R80 VOLT_WGMMA_R64 ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79"
#define VOLT_WGMMA_R96 VOLT_WGMMA_R80 ", %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"
#define VOLT_WGMMA_C8 VOLT_WGMMA_F8(0)
#define VOLT_WGMMA_C16 VOLT_WGMMA_F16(0)
#define VOLT_WGMMA_C24 VOLT_WGMMA_C16, VOLT_WGMMA_F8(16)
#define VOLT_WGMMA_C32 VOLT_WGMMA_C16, VOLT_WGMMA_F16(16)
#define VOLT_WGMMA_C48 VOLT_WGMMA_C32, VOLT_WGMMA_F16(32)
#define VOLT_WGMMA_C64 VOLT_WGMMA_C48, VOLT_WGMMA_F16(48)
#define VOLT_WGMMA_C80 VOLT_WGMMA_C64, VOLT_WGMMA_F16(64)
#define VOLT_WGMMA_C96 VOLT_WGMMA_C80, VOLT_WGMMA_F16(80)
#define VOLT_WGMMA_RS_T(TY, N, REGS, A, DB, TB, P, ...)                                                        \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #P ", 0;\nwgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY \
                 "." TY " {" REGS "}, {" A "}, %" #DB ", p, 1, 1, %" #TB ";\n}\n"                                   \
                 : __VA_ARGS__                                                                                 \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "n"(kTransB), "n"(kScaleD))
#define VOLT_WGMMA_SS_T(TY, N, REGS, DA, DB, P, ...)                                                            \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #P ", 0;\nwgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY \
                 "." TY " {" REGS "}, %" #DA ", %" #DB ", p, 1, 1, 0, 0;\n}\n"                                      \
                 : __VA_ARGS__                                                                                  \
                 : "l"(desc_a), "l"(desc_b), "n"(kScaleD))
#define VOLT_WGMMA_TYPED(FORM, ...)              \
    do {                                         \
        if constexpr (kF16)                      \
            FORM("f16", __VA_ARGS__);            \
        else                                     \
            FORM("bf16", __VA_ARGS__);           \
    } while (0)

// D[64 x kN] (+)= A[64 x 16] (registers, the m16k16 fragment of each warp's 16 rows: a[0] row g, k 2 t4 and
// 2 t4 + 1; a[1] row g + 8, same k; a[2], a[3] the same rows at k + 8) * B[16 x kN] (shared memory, descriptor),
// kN = 16, 32, 48, 64, 96, 128, 160 or 192; operands bf16, or f16 with kF16. kTransB = 0: B is K-major (each of its
// columns contiguous along k); 1: MN-major (rows along k). Asynchronous: wgmma_commit + wgmma_wait before the
// accumulators or A registers are touched again. kScaleD = 0: D = A * B (D's previous values are not read: the first
// k step of a product needs no zeroed accumulators). d[0 .. kN/2) as in the n64 fragment: d[4 j + e] is row
// 16 w + g + 8 (e >> 1), column 8 j + 2 t4 + (e & 1). One instruction per k step however narrow (several n16
// products in flight at once leave ptxas short of registers for the wgmma pipeline: it serialises them all).
template <int kN, int kTransB, int kScaleD = 1, bool kF16 = false, int kLen>
__device__ __forceinline__ void wgmma_m64nk16_rs(float (&d)[kLen], const uint32_t (&a)[4], uint64_t desc_b) {
    static_assert(kN == 16 || kN == 32 || kN == 48 || (kN % 32 == 0 && kN >= 64 && kN <= 192),
                  "n16, n32, n48, n64, n96, n128, n160 or n192");
    static_assert(kLen >= kN / 2, "kN / 2 accumulators per thread");
    if constexpr (kN == 16)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_RS_T, 16, VOLT_WGMMA_R8, "%8, %9, %10, %11", 12, 13, 14,
                         VOLT_WGMMA_C8);
    if constexpr (kN == 32)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_RS_T, 32, VOLT_WGMMA_R16, "%16, %17, %18, %19", 20, 21, 22,
                         VOLT_WGMMA_C16);
    if constexpr (kN == 48)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_RS_T, 48, VOLT_WGMMA_R24, "%24, %25, %26, %27", 28, 29, 30,
                         VOLT_WGMMA_C24);
    if constexpr (kN == 64)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_RS_T, 64, VOLT_WGMMA_R32, "%32, %33, %34, %35", 36, 37, 38,
                         VOLT_WGMMA_C32);
    if constexpr (kN == 96)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_RS_T, 96, VOLT_WGMMA_R48, "%48, %49, %50, %51", 52, 53, 54,
                         VOLT_WGMMA_C48);
    if constexpr (kN == 128)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_RS_T, 128, VOLT_WGMMA_R64, "%64, %65, %66, %67", 68, 69, 70,
                         VOLT_WGMMA_C64);
    if constexpr (kN == 160)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_RS_T, 160, VOLT_WGMMA_R80, "%80, %81, %82, %83", 84, 85, 86,
                         VOLT_WGMMA_C80);
    if constexpr (kN == 192)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_RS_T, 192, VOLT_WGMMA_R96, "%96, %97, %98, %99", 100, 101, 102,
                         VOLT_WGMMA_C96);
}

// D[64 x 64] (+)= A[64 x 16] (registers) * B[16 x 64] (shared memory): wgmma_m64nk16_rs's n64 bf16 form.
template <int kTransB, int kScaleD = 1>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
    wgmma_m64nk16_rs<64, kTransB, kScaleD>(d, a, desc_b);
}

// D[64 x 64] (+)= A[64 x 16] * B[16 x 64], both from shared memory (descriptors); A K-major.
template <int kTransB, int kScaleD = 1>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %35, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, %34;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(desc_a), "l"(desc_b), "n"(kTransB), "n"(kScaleD));
}

// D[64 x kN] (+)= A[64 x 16] (shared memory) * B[16 x kN] (shared memory), both K-major, kN = 32, 64, ..., 192:
// a GEMM tile whose N side is cut to what is left (the MoE grouped GEMM's last tokens of an expert). d as in
// wgmma_m64nk16_rs. Operands bf16, or f16 with kF16.
template <int kN, int kScaleD = 1, bool kF16 = false, int kLen>
__device__ __forceinline__ void wgmma_m64nk16_ss(float (&d)[kLen], uint64_t desc_a, uint64_t desc_b) {
    static_assert(kN % 32 == 0 && kN >= 32 && kN <= 192, "n32, n64, n96, n128, n160 or n192");
    static_assert(kLen >= kN / 2, "kN / 2 accumulators per thread");
    if constexpr (kN == 32)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_SS_T, 32, VOLT_WGMMA_R16, 16, 17, 18, VOLT_WGMMA_C16);
    if constexpr (kN == 64)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_SS_T, 64, VOLT_WGMMA_R32, 32, 33, 34, VOLT_WGMMA_C32);
    if constexpr (kN == 96)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_SS_T, 96, VOLT_WGMMA_R48, 48, 49, 50, VOLT_WGMMA_C48);
    if constexpr (kN == 128)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_SS_T, 128, VOLT_WGMMA_R64, 64, 65, 66, VOLT_WGMMA_C64);
    if constexpr (kN == 160)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_SS_T, 160, VOLT_WGMMA_R80, 80, 81, 82, VOLT_WGMMA_C80);
    if constexpr (kN == 192)
        VOLT_WGMMA_TYPED(VOLT_WGMMA_SS_T, 192, VOLT_WGMMA_R96, 96, 97, 98, VOLT_WGMMA_C96);
}
#undef VOLT_WGMMA_TYPED
#undef VOLT_WGMMA_R8
#undef VOLT_WGMMA_C8
#undef VOLT_WGMMA_R16
#undef VOLT_WGMMA_C16
#undef VOLT_WGMMA_R24
#undef VOLT_WGMMA_C24
#undef VOLT_WGMMA_R32
#undef VOLT_WGMMA_C32
#undef VOLT_WGMMA_R48
#undef VOLT_WGMMA_C48
#undef VOLT_WGMMA_R64
#undef VOLT_WGMMA_C64
#undef VOLT_WGMMA_R80
#undef VOLT_WGMMA_C80
#undef VOLT_WGMMA_R96
#undef VOLT_WGMMA_C96
#undef VOLT_WGMMA_SS_T
#undef VOLT_WGMMA_RS_T
#undef VOLT_WGMMA_F16
#undef VOLT_WGMMA_F8
#undef VOLT_WGMMA_F4

// Warp rw's 16 rows of a 64 x 64 fp32 accumulator (the m64n64 fragment: acc[4 nt + e] = row 16 rw + g + 8 (e >> 1),
// column 8 nt + 2 t4 + (e & 1)) as bf16 through a 64 x 64 swizzled staging tile (s_out, 8 KiB; the warp touches only
// its own 16 rows) to 16-byte coalesced stores: row r goes to out + r * out_stride; rows >= m are not stored.
__device__ __forceinline__ void store_rows_bf16(char* s_out, const float (&oacc)[32], int rw, int g, int t4, int lane,
                                                int m, __nv_bfloat16* out, int64_t out_stride) {
    const int row0 = 16 * rw + g;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
        const int col = 8 * nt + 2 * t4;
        *reinterpret_cast<uint32_t*>(s_out + swz<8>(row0, col)) = pack_bf16(oacc[4 * nt + 0], oacc[4 * nt + 1]);
        *reinterpret_cast<uint32_t*>(s_out + swz<8>(row0 + 8, col)) = pack_bf16(oacc[4 * nt + 2], oacc[4 * nt + 3]);
    }
    __syncwarp();
#pragma unroll
    for (int it = 0; it < 4; ++it) {
        const int idx = it * 32 + lane;
        const int row = 16 * rw + (idx >> 3), ch = idx & 7;
        if (row < m) {
            const uint4 val = *reinterpret_cast<const uint4*>(s_out + swz<8>(row, ch * 8));
            *reinterpret_cast<uint4*>(out + row * out_stride + ch * 8) = val;
        }
    }
    __syncwarp();
}

}  // namespace volt::cuda
