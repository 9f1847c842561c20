#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "sdk/dtype.h"

namespace volt {
namespace {

TEST(DType, NamesAndSizes) {
    EXPECT_EQ(dtype_name(DType::kBF16), "BF16");
    EXPECT_EQ(dtype_name(DType::kF8E4M3), "F8_E4M3");
    EXPECT_EQ(dtype_size(DType::kF32), 4u);
    EXPECT_EQ(dtype_size(DType::kI64), 8u);
    EXPECT_EQ(dtype_size(DType::kF8E4M3), 1u);
    for (int i = 0; i < kDTypeCount; ++i) {
        DType t = static_cast<DType>(i);
        auto back = dtype_from_name(dtype_name(t));
        ASSERT_TRUE(back.has_value());
        EXPECT_EQ(*back, t);
    }
    EXPECT_FALSE(dtype_from_name("F128").has_value());
    EXPECT_FALSE(dtype_from_name("bf16").has_value());  // safetensors names are case-sensitive
}

// Every bf16 / f16 bit pattern that is not NaN survives f32 and back exactly.
TEST(DType, Bf16AndF16RoundTripEveryPattern) {
    for (uint32_t b = 0; b < 65536; ++b) {
        uint16_t bits = static_cast<uint16_t>(b);
        float f = bf16_to_f32(bits);
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
        } else {
            EXPECT_EQ(f32_to_bf16(f), bits) << b;
        }
        float h = f16_to_f32(bits);
        if (std::isnan(h)) {
            EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(h))));
        } else {
            EXPECT_EQ(f32_to_f16(h), bits) << b;
        }
    }
}

TEST(DType, Fp8RoundTripEveryPattern) {
    for (uint32_t b = 0; b < 256; ++b) {
        uint8_t bits = static_cast<uint8_t>(b);
        float a = fp8e4m3_to_f32(bits);
        if (std::isnan(a)) EXPECT_TRUE(std::isnan(fp8e4m3_to_f32(f32_to_fp8e4m3(a))));
        else EXPECT_EQ(f32_to_fp8e4m3(a), bits) << b;
        float c = fp8e5m2_to_f32(bits);
        if (std::isnan(c)) EXPECT_TRUE(std::isnan(fp8e5m2_to_f32(f32_to_fp8e5m2(c))));
        else EXPECT_EQ(f32_to_fp8e5m2(c), bits) << b;
    }
}

TEST(DType, KnownValues) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
    EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);   // f16 max
    EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);   // rounds to infinity
    EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
    EXPECT_EQ(fp8e4m3_to_f32(0x7e), 448.0f);   // e4m3fn max
    EXPECT_EQ(fp8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
    EXPECT_TRUE(std::isnan(fp8e4m3_to_f32(f32_to_fp8e4m3(1000.0f))));  // out of range -> NaN (torch)
    EXPECT_EQ(f32_to_fp8e4m3(460.0f), 0x7e);   // rounds down to 448
    EXPECT_EQ(fp8e5m2_to_f32(0x7b), 57344.0f); // e5m2 max
    EXPECT_TRUE(std::isinf(fp8e5m2_to_f32(f32_to_fp8e5m2(1e6f))));
}

// Rounding is to nearest, ties to even, for values between representable neighbours.
TEST(DType, RoundToNearestEven) {
    // bf16 around 1.0: spacing 2^-7. 1 + 2^-8 is a tie -> even (1.0); 1 + 3*2^-8 -> 1 + 2^-6 (even mantissa).
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
    // e4m3 around 1.0: spacing 1/8. 1.0625 ties to 1.0; 1.1875 ties to 1.25.
    EXPECT_EQ(fp8e4m3_to_f32(f32_to_fp8e4m3(1.0625f)), 1.0f);
    EXPECT_EQ(fp8e4m3_to_f32(f32_to_fp8e4m3(1.1875f)), 1.25f);
    // Random values: the result is one of the two neighbours and the nearer one.
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-300.0f, 300.0f);
    for (int i = 0; i < 20000; ++i) {
        float x = u(rng);
        float r = fp8e4m3_to_f32(f32_to_fp8e4m3(x));
        float rb = bf16_to_f32(f32_to_bf16(x));
        // Within half a unit in the last place of each format.
        int e;
        std::frexp(std::fabs(x), &e);
        EXPECT_LE(std::fabs(r - x), std::ldexp(1.0f, std::max(e - 1, -6) - 3) * 0.5f + 1e-6f) << x;
        EXPECT_LE(std::fabs(rb - x), std::ldexp(1.0f, e - 1 - 7) * 0.5f) << x;
    }
}

TEST(DType, BulkConvert) {
    std::vector<float> src = {0.0f, -1.5f, 3.25f, 1e-3f, -65504.0f};
    std::vector<uint16_t> bf(src.size());
    convert(src.data(), DType::kF32, bf.data(), DType::kBF16, src.size());
    std::vector<float> back(src.size());
    convert(bf.data(), DType::kBF16, back.data(), DType::kF32, src.size());
    for (size_t i = 0; i < src.size(); ++i) EXPECT_EQ(back[i], bf16_to_f32(f32_to_bf16(src[i])));

    std::vector<float> f = {1.9f, -2.7f, 1e20f, -1e20f, std::numeric_limits<float>::quiet_NaN()};
    std::vector<int8_t> i8(f.size());
    convert(f.data(), DType::kF32, i8.data(), DType::kI8, f.size());
    EXPECT_EQ(i8[0], 1);    // truncation toward zero
    EXPECT_EQ(i8[1], -2);
    EXPECT_EQ(i8[2], 127);  // saturation
    EXPECT_EQ(i8[3], -128);
    EXPECT_EQ(i8[4], 0);    // NaN -> 0
    std::vector<int64_t> big = {(int64_t(1) << 40) + 1};
    std::vector<double> d(1);
    convert(big.data(), DType::kI64, d.data(), DType::kF64, 1);
    EXPECT_EQ(d[0], static_cast<double>((int64_t(1) << 40) + 1));  // exact through f64
}

}  // namespace
}  // namespace volt
