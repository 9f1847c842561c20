#include "sdk/dtype.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace volt {
namespace {

struct DTypeInfo {
    std::string_view name;
    size_t size;
    bool is_float;
};

constexpr DTypeInfo kInfo[kDTypeCount] = {
    {"F64", 8, true},     {"F32", 4, true},     {"F16", 2, true}, {"BF16", 2, true},
    {"F8_E4M3", 1, true}, {"F8_E5M2", 1, true}, {"I64", 8, false}, {"I32", 4, false},
    {"I16", 2, false},    {"I8", 1, false},     {"U8", 1, false}, {"BOOL", 1, false},
};

template <typename I>
I saturate_cast(double v) {
    if (std::isnan(v)) return 0;
    if (v <= static_cast<double>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
    if (v >= static_cast<double>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
    return static_cast<I>(v);
}

double load_as_f64(const void* data, DType t, size_t i) {
    switch (t) {
        case DType::kF64: return static_cast<const double*>(data)[i];
        case DType::kI64: return static_cast<double>(static_cast<const int64_t*>(data)[i]);
        case DType::kI32: return static_cast<const int32_t*>(data)[i];
        default: return load_as_f32(data, t, i);
    }
}

void store_from_f64(void* data, DType t, size_t i, double v) {
    switch (t) {
        case DType::kF64: static_cast<double*>(data)[i] = v; break;
        case DType::kF32: static_cast<float*>(data)[i] = static_cast<float>(v); break;
        case DType::kF16: static_cast<uint16_t*>(data)[i] = f32_to_f16(static_cast<float>(v)); break;
        case DType::kBF16: static_cast<uint16_t*>(data)[i] = f32_to_bf16(static_cast<float>(v)); break;
        case DType::kF8E4M3: static_cast<uint8_t*>(data)[i] = f32_to_fp8e4m3(static_cast<float>(v)); break;
        case DType::kF8E5M2: static_cast<uint8_t*>(data)[i] = f32_to_fp8e5m2(static_cast<float>(v)); break;
        case DType::kI64: static_cast<int64_t*>(data)[i] = saturate_cast<int64_t>(v); break;
        case DType::kI32: static_cast<int32_t*>(data)[i] = saturate_cast<int32_t>(v); break;
        case DType::kI16: static_cast<int16_t*>(data)[i] = saturate_cast<int16_t>(v); break;
        case DType::kI8: static_cast<int8_t*>(data)[i] = saturate_cast<int8_t>(v); break;
        case DType::kU8: static_cast<uint8_t*>(data)[i] = saturate_cast<uint8_t>(v); break;
        case DType::kBool: static_cast<uint8_t*>(data)[i] = (v != 0.0) ? 1 : 0; break;
    }
}

// Rounds a finite float to a format with `mant` mantissa bits and minimum normal exponent `emin` (unbiased),
// returning the value (not bits); used for the fp8 encoders. Exact RNE via scaling by powers of two.
float round_to_format(float v, int mant, int emin) {
    if (v == 0.0f) return v;
    int e;
    std::frexp(std::fabs(v), &e);          // |v| = m * 2^e, m in [0.5, 1)
    int exp = std::max(e - 1, emin);       // unbiased exponent of the leading bit (subnormals clamp to emin)
    float quantum = std::ldexp(1.0f, exp - mant);
    return std::nearbyint(v / quantum) * quantum;  // default FP rounding mode is RNE
}

}  // namespace

size_t dtype_size(DType t) { return kInfo[static_cast<int>(t)].size; }
std::string_view dtype_name(DType t) { return kInfo[static_cast<int>(t)].name; }
bool dtype_is_float(DType t) { return kInfo[static_cast<int>(t)].is_float; }

std::optional<DType> dtype_from_name(std::string_view name) {
    for (int i = 0; i < kDTypeCount; ++i)
        if (kInfo[i].name == name) return static_cast<DType>(i);
    return std::nullopt;
}

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float value) {
    uint32_t u = std::bit_cast<uint32_t>(value);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN, sign kept
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even; overflow correctly carries into infinity
    return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf / nan
    if (exp == 0) {
        float v = std::ldexp(static_cast<float>(mant), -24);  // subnormal (or zero): exact in f32
        return sign ? -v : v;
    }
    return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float value) {
    uint32_t u = std::bit_cast<uint32_t>(value);
    uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return sign | 0x7e00u;  // NaN
    if (abs >= 0x477ff000u) return sign | 0x7c00u; // rounds to >= 65520 → inf
    if (abs < 0x38800000u) {                       // below the smallest f16 normal (2^-14): subnormal or zero
        float a = std::bit_cast<float>(abs);
        return sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f));  // units of 2^-24, RNE
    }
    uint32_t mant_odd = (abs >> 13) & 1u;
    abs += 0xfffu + mant_odd;  // round to nearest even at bit 13
    return sign | static_cast<uint16_t>(((abs >> 23) - 112u) << 10 | ((abs >> 13) & 0x3ffu));
}

float fp8e4m3_to_f32(uint8_t b) {
    bool neg = b & 0x80;
    int exp = (b >> 3) & 0xf;
    int mant = b & 0x7;
    if (exp == 0xf && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();  // e4m3fn has no infinity
    float v = exp == 0 ? std::ldexp(static_cast<float>(mant), -9) : std::ldexp(1.0f + mant / 8.0f, exp - 7);
    return neg ? -v : v;
}

uint8_t f32_to_fp8e4m3(float value) {
    uint8_t sign = std::signbit(value) ? 0x80 : 0;
    if (std::isnan(value)) return sign | 0x7f;
    float r = round_to_format(std::fabs(value), 3, -6);
    if (r > 448.0f) return sign | 0x7f;  // beyond the largest finite value: NaN (torch semantics)
    if (r == 0.0f) return sign;
    int e;
    std::frexp(r, &e);
    int exp = e - 1;
    if (exp < -6) return sign | static_cast<uint8_t>(r * 512.0f);  // subnormal: units of 2^-9
    int mant = static_cast<int>(std::ldexp(r, -exp) * 8.0f) - 8;
    return sign | static_cast<uint8_t>((exp + 7) << 3 | mant);
}

float fp8e5m2_to_f32(uint8_t b) { return f16_to_f32(static_cast<uint16_t>(b) << 8); }

uint8_t f32_to_fp8e5m2(float value) {
    // e5m2 is f16 without the low 8 mantissa bits. Rounding f32→f16→e5m2 would round twice, so round directly to
    // the e5m2 grid (2 mantissa bits, min normal exponent -14), then take the exact f16 bits of that value.
    uint8_t sign = std::signbit(value) ? 0x80 : 0;
    if (std::isnan(value)) return sign | 0x7e;
    if (std::isinf(value)) return sign | 0x7c;
    float r = round_to_format(std::fabs(value), 2, -14);
    if (r > 57344.0f) return sign | 0x7c;  // beyond the largest finite value: infinity (e5m2 has them)
    return sign | static_cast<uint8_t>(f32_to_f16(r) >> 8);
}

float load_as_f32(const void* data, DType t, size_t i) {
    switch (t) {
        case DType::kF64: return static_cast<float>(static_cast<const double*>(data)[i]);
        case DType::kF32: return static_cast<const float*>(data)[i];
        case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
        case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
        case DType::kF8E4M3: return fp8e4m3_to_f32(static_cast<const uint8_t*>(data)[i]);
        case DType::kF8E5M2: return fp8e5m2_to_f32(static_cast<const uint8_t*>(data)[i]);
        case DType::kI64: return static_cast<float>(static_cast<const int64_t*>(data)[i]);
        case DType::kI32: return static_cast<float>(static_cast<const int32_t*>(data)[i]);
        case DType::kI16: return static_cast<const int16_t*>(data)[i];
        case DType::kI8: return static_cast<const int8_t*>(data)[i];
        case DType::kU8: return static_cast<const uint8_t*>(data)[i];
        case DType::kBool: return static_cast<const uint8_t*>(data)[i] ? 1.0f : 0.0f;
    }
    return 0.0f;
}

void convert(const void* src, DType st, void* dst, DType dt, size_t n) {
    if (st == dt) {
        std::memcpy(dst, src, n * dtype_size(st));
        return;
    }
    // Hot paths for weight upcasting get tight loops; everything else goes through f64 (exact for all pairs).
    if (dt == DType::kF32 && (st == DType::kBF16 || st == DType::kF16)) {
        const uint16_t* s = static_cast<const uint16_t*>(src);
        float* d = static_cast<float*>(dst);
        if (st == DType::kBF16)
            for (size_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
        else
            for (size_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
        return;
    }
    if (st == DType::kF32 && dt == DType::kBF16) {
        const float* s = static_cast<const float*>(src);
        uint16_t* d = static_cast<uint16_t*>(dst);
        for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(s[i]);
        return;
    }
    for (size_t i = 0; i < n; ++i) store_from_f64(dst, dt, i, load_as_f64(src, st, i));
}

}  // namespace volt
