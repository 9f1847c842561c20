// Element types, their safetensors names, and exact scalar/bulk conversions. Rounding is round-to-nearest-even
// everywhere (what PyTorch and the CUDA intrinsics do), NaN stays NaN, and fp8 e4m3fn (no infinities, max 448)
// maps out-of-range values to NaN like torch's float8_e4m3fn cast.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace volt {

enum class DType : uint8_t {
    kF64, kF32, kF16, kBF16, kF8E4M3, kF8E5M2,
    kI64, kI32, kI16, kI8, kU8, kBool,
};
inline constexpr int kDTypeCount = 12;

size_t dtype_size(DType t);                 // bytes per element
std::string_view dtype_name(DType t);       // safetensors spelling: "F32", "BF16", "F8_E4M3", ...
std::optional<DType> dtype_from_name(std::string_view safetensors_name);
bool dtype_is_float(DType t);

// ---- scalar conversions ----
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
float fp8e4m3_to_f32(uint8_t bits);
uint8_t f32_to_fp8e4m3(float value);
float fp8e5m2_to_f32(uint8_t bits);
uint8_t f32_to_fp8e5m2(float value);

// Reads element i of a buffer of type `t` as float (integers convert exactly up to 2^24).
float load_as_f32(const void* data, DType t, size_t i);

// Converts n elements between any two types. Float→int truncates toward zero and saturates.
void convert(const void* src, DType src_type, void* dst, DType dst_type, size_t n);

}  // namespace volt
