// Quantised expert weights (FP8 e4m3, int8; one fp32 scale per 128 x 128 block) widened to bf16 or f16 on the GPU:
// shared by the MoE kernels (kernels/cuda/moe.cu: the grouped decode path in registers, the dequantising pass) and
// the own grouped GEMM's mixed-input form (kernels/cuda/moe_gemm_sm90.cu: widened in shared memory).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/cuda/device_common.cuh"
#include "kernels/moe_cuda.h"

namespace volt::cuda {

// 8 e4m3 bytes (element 0 in the lowest byte) -> 8 bf16, exactly: e4m3x2 -> f16x2 in one cvt, the f16 bits moved
// into bf16 position (which is the value times 2^-112), then times 2^112 in one bf16x2 multiply. A NaN byte, which the
// quantiser makes only from a NaN weight, comes out as a finite ~2^16.
__device__ __forceinline__ uint4 e4m3x8_to_bf16(const uint2& u) {
    const uint32_t w[2] = {u.x, u.y};
    uint4 out;
    uint32_t* o = reinterpret_cast<uint32_t*>(&out);
    const __nv_bfloat162 two_112 = __floats2bfloat162_rn(0x1p112f, 0x1p112f);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(
                static_cast<__nv_fp8x2_storage_t>((w[i] >> (16 * j)) & 0xffffu), __NV_E4M3);
            const uint32_t bits = uint32_t{h.x} | (uint32_t{h.y} << 16);
            uint32_t b = ((bits >> 3) & 0x0fff0fffu) | (bits & 0x80008000u);
            __nv_bfloat162 v = __hmul2(*reinterpret_cast<__nv_bfloat162*>(&b), two_112);
            o[2 * i + j] = *reinterpret_cast<uint32_t*>(&v);
        }
    }
    return out;
}

// Byte k (0-3) of w, a word of int8 bytes each XORed with 0x80 (b + 128 as unsigned), as b in fp32, exactly: the
// byte placed in the mantissa of 2^23 by one byte permute (the float 2^23 + b + 128), minus 2^23 + 128.
__device__ __forceinline__ float s8_biased_to_f32(uint32_t w, int k) {
    // result bytes, low to high: byte k of w, 0, 0, 0x4b (from 0x4b000000)
    return __uint_as_float(__byte_perm(w, 0x4b000000u, 0x7540u + k)) - 8388736.0f;
}

// 8 int8 bytes (element 0 in the lowest byte) times `scale` -> 8 bf16, two floats packed per bf16x2: each byte's
// float is exact, so a value is rounded once (exactly none with scale 1).
__device__ __forceinline__ uint4 s8x8_scaled_to_bf16(const uint2& u, float scale) {
    const uint32_t w[2] = {u.x ^ 0x80808080u, u.y ^ 0x80808080u};  // b + 128 as unsigned bytes
    uint4 out;
    uint32_t* o = reinterpret_cast<uint32_t*>(&out);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            o[2 * i + j] = pack_bf16(s8_biased_to_f32(w[i], 2 * j) * scale, s8_biased_to_f32(w[i], 2 * j + 1) * scale);
    return out;
}

// 8 int8 bytes -> 8 bf16, exactly.
__device__ __forceinline__ uint4 s8x8_to_bf16(const uint2& u) { return s8x8_scaled_to_bf16(u, 1.0f); }

// 8 bytes of a quantised weight type -> 8 bf16, exactly.
template <MoeWeightType kW>
__device__ __forceinline__ uint4 widen8(const uint2& u) {
    static_assert(kW == MoeWeightType::kFp8E4M3 || kW == MoeWeightType::kInt8);
    if constexpr (kW == MoeWeightType::kFp8E4M3) return e4m3x8_to_bf16(u);
    else return s8x8_to_bf16(u);
}

// 8 bytes of a quantised weight type -> 8 f16, exactly, in fewer instructions than to bf16 (the f16 products of
// gemv_mma_kernel's kHalf): e4m3 pairs by one cvt each (f16 holds every e4m3 value); int8 as 1024 + (b + 128) (one
// byte permute into the f16 0x64xx, exact up to 2048) minus 1152 in one f16x2 subtraction.
template <MoeWeightType kW>
__device__ __forceinline__ uint4 widen8_f16(const uint2& u) {
    static_assert(kW == MoeWeightType::kFp8E4M3 || kW == MoeWeightType::kInt8);
    uint4 out;
    if constexpr (kW == MoeWeightType::kFp8E4M3) {
        asm("{\n .reg .b16 a, b, c, d;\n mov.b32 {a, b}, %4;\n mov.b32 {c, d}, %5;\n"
            " cvt.rn.f16x2.e4m3x2 %0, a;\n cvt.rn.f16x2.e4m3x2 %1, b;\n"
            " cvt.rn.f16x2.e4m3x2 %2, c;\n cvt.rn.f16x2.e4m3x2 %3, d;\n}\n"
            : "=r"(out.x), "=r"(out.y), "=r"(out.z), "=r"(out.w)
            : "r"(u.x), "r"(u.y));
    } else {
        const uint32_t w[2] = {u.x ^ 0x80808080u, u.y ^ 0x80808080u};  // b + 128 as unsigned bytes
        const __half2 bias = __halves2half2(__ushort_as_half(0x6480), __ushort_as_half(0x6480));  // 1152
        uint32_t* o = reinterpret_cast<uint32_t*>(&out);
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                uint32_t bits = __byte_perm(w[i], 0x64646464u, j == 0 ? 0x4140u : 0x4342u);
                const __half2 v = __hsub2(*reinterpret_cast<const __half2*>(&bits), bias);
                o[2 * i + j] = *reinterpret_cast<const uint32_t*>(&v);
            }
    }
    return out;
}

// 8 quantised bytes times `scale` (an f16 pair) as 8 f16: widened exactly (widen8_f16), then one packed multiply, so
// each value is rounded once. Three instructions a pair for int8 (byte permute, subtract, multiply), two for e4m3
// (cvt, multiply), against ~7 through fp32 to bf16: the own grouped GEMM's gated product (kernels/cuda/
// moe_gemm_sm90.cu), whose widening inside the mainloop is latency-bound.
template <MoeWeightType kW>
__device__ __forceinline__ uint4 widen8_f16_scaled(const uint2& u, __half2 scale) {
    uint4 v = widen8_f16<kW>(u);
    uint32_t* w = reinterpret_cast<uint32_t*>(&v);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const __half2 h = __hmul2(*reinterpret_cast<const __half2*>(&w[j]), scale);
        w[j] = *reinterpret_cast<const uint32_t*>(&h);
    }
    return v;
}

// 8 quantised bytes (consecutive weights of a row, element 0 in the lowest byte) times their block's scale as 8
// bf16: each value float(byte) * scale rounded once to bf16 (the dequantising pass, and the own grouped GEMM's
// widening). int8 without the exact bf16 step between: a byte permute and a subtraction to the float, one multiply,
// one pack per two. e4m3 through f16 (exact: one cvt a pair, then one conversion a value to fp32), ~6 instructions
// a pair where through bf16 (e4m3x8_to_bf16) and then fp32 took ~9.
template <MoeWeightType kW>
__device__ __forceinline__ uint4 widen8_scaled(const uint2& u, float scale) {
    if constexpr (kW == MoeWeightType::kInt8) {
        return s8x8_scaled_to_bf16(u, scale);
    } else {
        const uint4 h = widen8_f16<kW>(u);
        const uint32_t* hw = reinterpret_cast<const uint32_t*>(&h);
        uint4 out;
        uint32_t* o = reinterpret_cast<uint32_t*>(&out);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&hw[j]));
            o[j] = pack_bf16(f.x * scale, f.y * scale);
        }
        return out;
    }
}

}  // namespace volt::cuda
