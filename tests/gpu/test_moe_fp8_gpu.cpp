// Quantised (128 x 128 block-scaled) expert weights (issue 8), FP8 e4m3 and int8: the quantizer against its CPU twin
// bit for bit (edge values with hand-worked encodings: ties to even, subnormals, saturation at 448 / 127, NaN, zero
// blocks, partial edge blocks; then random matrices of mixed magnitudes), and the MoE experts with quantised weights
// on both paths (grouped GEMV decode, dequantise + cuBLASLt prefill) against cpu::moe_experts on the dequantised
// weights, with random, skewed and all-on-one routing and odd sizes: bf16 outputs <= 1e-2 relative; the prefill path's
// FP8 tensor-core GEMMs (FP8 activations, Hopper) against the twin that quantises the activations alike. The Fp8Cpu and
// Int8Cpu suites check the twins alone and run without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "kernels/moe.h"
#include "kernels/moe_cuda.h"
#include "sdk/env.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/moe_test_util.h"
#include "tests/unit/kernels/lightning_reference.h"

namespace volt {
namespace {

using namespace volt::test;
constexpr double kTol = 1e-2;

// Hand-worked e4m3 encodings at scale 1 (value -> byte).
struct Edge {
    float v;
    uint8_t byte;
};
const std::vector<Edge>& edges() {
    static const std::vector<Edge> e = {
        {448.0f, 0x7e},        {-448.0f, 0xfe},          {0.0f, 0x00},          {-0.0f, 0x80},
        {0x1p-9f, 0x01},       {-0x1p-9f, 0x81},         {0x1p-10f, 0x00},      // half the smallest subnormal: tie -> 0
        {0x3p-10f, 0x02},      // 1.5 units: tie -> 2 (even)
        {0x5p-10f, 0x02},      // 2.5 units: tie -> 2 (even)
        {0x7p-9f, 0x07},       // largest subnormal
        {0xfp-10f, 0x08},      // 7.5 units: tie -> 2^-6 (mantissa 0, even)
        {0x1p-6f, 0x08},       // smallest normal
        {1.0f, 0x38},          {1.0625f, 0x38},          // tie between 1 and 1.125 -> 1 (even)
        {1.1875f, 0x3a},       // tie between 1.125 and 1.25 -> 1.25 (even)
        {1.09375f, 0x39},      // above the tie -> 1.125
        {240.0f, 0x77},        {248.0f, 0x78},           // tie between 240 and 256 -> 256 (even)
        {-3.0f, 0xc4},         {0.75f, 0x34},            {416.0f, 0x7d},        {432.0f, 0x7e},  // tie 416|448 -> 448
    };
    return e;
}
// With a given scale of 1: what the encoding does beyond the finite range.
const std::vector<Edge>& saturating() {
    static const std::vector<Edge> e = {
        {464.0f, 0x7e}, {480.0f, 0x7e}, {1000.0f, 0x7e}, {-1e30f, 0xfe},
        {std::numeric_limits<float>::infinity(), 0x7e}, {-std::numeric_limits<float>::infinity(), 0xfe},
        {std::numeric_limits<float>::quiet_NaN(), 0x7f}, {1.0f, 0x38},
    };
    return e;
}

TEST(Fp8Cpu, EncodingEdgeValues) {
    for (const Edge& e : edges()) EXPECT_EQ(cpu::fp8e4m3_saturating(e.v), e.byte) << "value " << e.v;
    for (const Edge& e : saturating()) EXPECT_EQ(cpu::fp8e4m3_saturating(e.v), e.byte) << "value " << e.v;
    // Every finite byte decodes and re-encodes to itself (the twin's encoder is the inverse of the decoder).
    for (int b = 0; b < 256; ++b) {
        if ((b & 0x7f) == 0x7f) continue;
        EXPECT_EQ(cpu::fp8e4m3_saturating(fp8e4m3_to_f32(static_cast<uint8_t>(b))), b) << "byte " << b;
    }
}

// The block-scale round trips' matrix: [130, 136] small weights, four blocks, three partial; block (0, 1) all zero
// (its scale must be 1).
constexpr int64_t kRoundTripRows = 130, kRoundTripCols = 136;
std::vector<float> round_trip_matrix(uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<float> w = bf16_round(random_normal(kRoundTripRows * kRoundTripCols, rng, 0.02f));
    for (int64_t r = 0; r < 128; ++r)
        for (int64_t c = 128; c < kRoundTripCols; ++c) w[r * kRoundTripCols + c] = 0.0f;
    return w;
}

TEST(Fp8Cpu, BlockScalesAndRoundTrip) {
    const int64_t R = kRoundTripRows, C = kRoundTripCols;
    const std::vector<float> w = round_trip_matrix(5);
    std::vector<uint8_t> q(R * C);
    std::vector<float> s(cuda::block_scale_count(R, C)), back(R * C);
    ASSERT_EQ(s.size(), 4u);
    ASSERT_TRUE(cpu::fp8_block_quantize(R, C, w.data(), q.data(), s.data()).is_ok());
    ASSERT_TRUE(cpu::fp8_block_dequantize(R, C, q.data(), s.data(), back.data()).is_ok());
    EXPECT_EQ(s[1], 1.0f);
    for (int64_t r = 0; r < 128; ++r)
        for (int64_t c = 128; c < C; ++c) ASSERT_EQ(q[r * C + c], 0) << r << "," << c;
    // Each block's largest magnitude lands on 448 exactly; every element within half an e4m3 step (2^-4 relative
    // for normals, 2^-10 * scale absolute for subnormals).
    for (int64_t i = 0; i < R * C; ++i) {
        const int64_t b = (i / C / 128) * 2 + (i % C) / 128;
        EXPECT_LE(std::fabs(back[i] - w[i]), std::max(std::fabs(w[i]) / 16.0f, 0x1p-10f * s[b]) * 1.0001f) << i;
    }
    EXPECT_TRUE(!cpu::fp8_block_quantize(-1, 8, w.data(), q.data(), s.data()).is_ok());
    EXPECT_TRUE(!cpu::fp8_block_quantize(4, 8, nullptr, q.data(), s.data()).is_ok());
}

// Hand-worked int8 encodings at scale 1 (value -> byte): ties to even, clamping at +-127, NaN -> 0.
const std::vector<Edge>& int8_edges() {
    static const std::vector<Edge> e = {
        {0.0f, 0x00},   {0.5f, 0x00},   {1.5f, 0x02},   {2.5f, 0x02},    {-0.5f, 0x00},  {-1.5f, 0xfe},
        {-2.5f, 0xfe},  {0.49f, 0x00},  {0.51f, 0x01},  {126.5f, 0x7e},  {127.0f, 0x7f}, {-127.0f, 0x81},
        {127.4f, 0x7f}, {200.0f, 0x7f}, {-1e30f, 0x81}, {std::numeric_limits<float>::infinity(), 0x7f},
        {-std::numeric_limits<float>::infinity(), 0x81},  {std::numeric_limits<float>::quiet_NaN(), 0x00},
    };
    return e;
}

TEST(Int8Cpu, EncodingEdgeValues) {
    for (const Edge& e : int8_edges())
        EXPECT_EQ(static_cast<uint8_t>(cpu::int8_saturating(e.v)), e.byte) << "value " << e.v;
}

TEST(Int8Cpu, BlockScalesAndRoundTrip) {
    const int64_t R = kRoundTripRows, C = kRoundTripCols;
    const std::vector<float> w = round_trip_matrix(6);
    std::vector<int8_t> q(R * C);
    std::vector<float> s(cuda::block_scale_count(R, C)), back(R * C);
    ASSERT_TRUE(cpu::int8_block_quantize(R, C, w.data(), q.data(), s.data()).is_ok());
    ASSERT_TRUE(cpu::int8_block_dequantize(R, C, q.data(), s.data(), back.data()).is_ok());
    EXPECT_EQ(s[1], 1.0f);
    // Every element within half a step (scale / 2) of the weight; each block's largest magnitude is +-127 steps.
    for (int64_t i = 0; i < R * C; ++i) {
        const int64_t b = (i / C / 128) * 2 + (i % C) / 128;
        EXPECT_LE(std::fabs(back[i] - w[i]), s[b] * 0.5001f) << i;
    }
    int qmax = 0;
    for (const int8_t v : q) qmax = std::max(qmax, std::abs(int{v}));
    EXPECT_EQ(qmax, 127);
    EXPECT_TRUE(!cpu::int8_block_quantize(-1, 8, w.data(), q.data(), s.data()).is_ok());
    EXPECT_TRUE(!cpu::int8_block_quantize(4, 8, nullptr, q.data(), s.data()).is_ok());
}

// The twin of the FP8 prefill (fp8_activations) against the rule worked by hand for one token and one expert: x's
// row through e4m3 per 128 columns, the gate and up products, the SwiGLU rounded to bf16 and through e4m3, the down
// product. Also: the quantisation is really applied (the result moves against the unquantised one).
TEST(Fp8Cpu, MoeExpertsFp8ActivationsTwin) {
    const int64_t H = 256, I = 384;
    std::mt19937_64 rng(7);
    std::vector<float> x = bf16_round(random_normal(H, rng)), w1 = bf16_round(random_normal(I * H, rng, 0.06f)),
                       w3 = bf16_round(random_normal(I * H, rng, 0.06f)), w2 = bf16_round(random_normal(H * I, rng, 0.05f));
    for (int64_t i = 128; i < H; ++i) x[i] *= 20.0f;  // a second block with its own scale
    auto roundtrip = [](std::vector<float> v) {
        std::vector<uint8_t> q(v.size());
        std::vector<float> sc((v.size() + 127) / 128);
        EXPECT_TRUE(cpu::fp8_block_quantize(1, int64_t(v.size()), v.data(), q.data(), sc.data()).is_ok());
        EXPECT_TRUE(cpu::fp8_block_dequantize(1, int64_t(v.size()), q.data(), sc.data(), v.data()).is_ok());
        return v;
    };
    const std::vector<float> xq = roundtrip(x);
    std::vector<float> h(I), want(H, 0.0f);
    for (int64_t i = 0; i < I; ++i) {
        double g = 0, u = 0;
        for (int64_t j = 0; j < H; ++j) g += double(w1[i * H + j]) * xq[j], u += double(w3[i * H + j]) * xq[j];
        h[i] = bf16_round({float(g / (1.0 + std::exp(-g)) * u)})[0];
    }
    h = roundtrip(h);
    for (int64_t j = 0; j < H; ++j) {
        double acc = 0;
        for (int64_t i = 0; i < I; ++i) acc += double(w2[j * I + i]) * h[i];
        want[j] = float(acc);
    }
    const int32_t id = 0;
    const float weight = 1.0f;
    const float *p1 = w1.data(), *p3 = w3.data(), *p2 = w2.data();
    std::vector<float> got(H), plain(H);
    MoeExpertsParams p{.num_tokens = 1, .hidden = H, .intermediate = I, .num_experts = 1, .top_k = 1, .x = x.data(),
                       .expert_ids = &id, .weights = &weight, .w1 = &p1, .w3 = &p3, .w2 = &p2, .out = plain.data()};
    ASSERT_TRUE(cpu::moe_experts(p).is_ok());
    p.fp8_activations = true, p.out = got.data();
    ASSERT_TRUE(cpu::moe_experts(p).is_ok());
    EXPECT_LE(rel_error(got, want), 1e-4);
    EXPECT_GE(rel_error(plain, want), 1e-2);
}

class MoeFp8Gpu : public GpuTest {};
class MoeInt8Gpu : public GpuTest {};

// The CPU twin of the GPU quantizer for `type` (bytes as uint8_t).
Status cpu_quantize(cuda::MoeWeightType type, int64_t R, int64_t C, const float* w, uint8_t* q, float* s,
                    bool given = false) {
    if (type == cuda::MoeWeightType::kInt8)
        return cpu::int8_block_quantize(R, C, w, reinterpret_cast<int8_t*>(q), s, given);
    return cpu::fp8_block_quantize(R, C, w, q, s, given);
}
Status cpu_dequantize(cuda::MoeWeightType type, int64_t R, int64_t C, const uint8_t* q, const float* s, float* out) {
    if (type == cuda::MoeWeightType::kInt8)
        return cpu::int8_block_dequantize(R, C, reinterpret_cast<const int8_t*>(q), s, out);
    return cpu::fp8_block_dequantize(R, C, q, s, out);
}

// GPU quantizer on host float values (bf16-exact) -> bytes and scales, downloaded.
void gpu_quantize(int64_t R, int64_t C, const std::vector<float>& w, std::vector<uint8_t>& q, std::vector<float>& s,
                  bool given, cuda::MoeWeightType type = cuda::MoeWeightType::kFp8E4M3) {
    DevBuf<uint16_t> dw(R * C);
    DevBuf<uint8_t> dq(R * C);
    DevBuf<float> ds(cuda::block_scale_count(R, C));
    ASSERT_TRUE(dw.upload(to_bf16(w)) && dq.fill_bytes(0x55));
    if (given) {
        ASSERT_TRUE(ds.upload(s));
    } else {
        ASSERT_TRUE(ds.fill_bytes(0xff));
    }
    const Status st = cuda::run(cuda::BlockQuantizeParams{.type = type, .rows = R, .cols = C, .in = dw.ptr,
                                                          .out = dq.ptr, .scales = ds.ptr, .given_scales = given},
                                nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    q = dq.download();
    s = ds.download();
}

TEST_F(MoeFp8Gpu, QuantizerEdgeValuesExact) {
    const int64_t R = 130, C = 136;
    std::vector<float> w(R * C, 0.0f);
    const auto& ed = edges();
    for (size_t i = 0; i < ed.size(); ++i) w[i] = ed[i].v;  // row 0 of block (0, 0): amax 448 -> scale 1 exactly
    std::mt19937_64 rng(7);
    for (int64_t r = 128; r < R; ++r)  // blocks (1, 0) and (1, 1): random, partial
        for (int64_t c = 0; c < C; ++c) w[r * C + c] = bf16_round({random_normal(1, rng, 3.0f)[0]})[0];
    std::vector<uint8_t> q;
    std::vector<float> s;
    gpu_quantize(R, C, w, q, s, false);
    ASSERT_EQ(q.size(), size_t(R * C));
    ASSERT_EQ(s.size(), 4u);
    EXPECT_EQ(s[0], 1.0f);
    EXPECT_EQ(s[1], 1.0f);  // all-zero block
    for (size_t i = 0; i < ed.size(); ++i) EXPECT_EQ(q[i], ed[i].byte) << "value " << ed[i].v;
    std::vector<uint8_t> cq(R * C);
    std::vector<float> cs(4);
    ASSERT_TRUE(cpu::fp8_block_quantize(R, C, w.data(), cq.data(), cs.data()).is_ok());
    EXPECT_EQ(s, cs);
    EXPECT_EQ(q, cq);

    // Given scales (1 everywhere): saturation, infinities and NaN.
    const auto& sat = saturating();
    std::vector<float> w2(8 * 8, 0.0f);
    for (size_t i = 0; i < sat.size(); ++i) w2[i] = sat[i].v;
    std::vector<float> ones = {1.0f};
    gpu_quantize(8, 8, w2, q, ones, true);
    for (size_t i = 0; i < sat.size(); ++i) EXPECT_EQ(q[i], sat[i].byte) << "value " << sat[i].v;
    EXPECT_EQ(ones[0], 1.0f);  // given scales are not written
}

TEST_F(MoeInt8Gpu, QuantizerEdgeValuesExact) {
    // Given scales (1 everywhere): ties, clamping, infinities and NaN; then computed scales on random blocks.
    const auto& ed = int8_edges();
    std::vector<float> w(8 * 24, 0.0f);
    for (size_t i = 0; i < ed.size(); ++i) w[i] = ed[i].v;
    std::vector<uint8_t> q;
    std::vector<float> ones = {1.0f};
    gpu_quantize(8, 24, w, q, ones, true, cuda::MoeWeightType::kInt8);
    for (size_t i = 0; i < ed.size(); ++i) EXPECT_EQ(q[i], ed[i].byte) << "value " << ed[i].v;
    EXPECT_EQ(ones[0], 1.0f);
}

void quantizer_matches_twin(cuda::MoeWeightType type) {
    for (auto [R, C, seed] : {std::tuple{1000, 1032, 1}, std::tuple{9216, 640, 2}, std::tuple{7, 8, 3}}) {
        SCOPED_TRACE(testing::Message() << cuda::moe_weight_type_name(type) << " " << R << " x " << C);
        std::mt19937_64 rng(seed);
        std::vector<float> w = random_normal(int64_t{R} * C, rng, 0.02f);
        // Mixed magnitudes: every 5th row scaled up 300x, and some tiny values that become subnormals.
        for (int64_t r = 0; r < R; r += 5)
            for (int64_t c = 0; c < C; ++c) w[r * C + c] *= 300.0f;
        for (int64_t i = 3; i < int64_t{R} * C; i += 97) w[i] *= 1e-4f;
        w = bf16_round(w);
        std::vector<uint8_t> q, cq(w.size());
        std::vector<float> s, cs(cuda::block_scale_count(R, C));
        gpu_quantize(R, C, w, q, s, false, type);
        ASSERT_TRUE(cpu_quantize(type, R, C, w.data(), cq.data(), cs.data()).is_ok());
        ASSERT_EQ(s, cs);
        int64_t diff = 0;
        for (size_t i = 0; i < q.size(); ++i) diff += q[i] != cq[i];
        EXPECT_EQ(diff, 0);
    }
    std::vector<float> dummy(8);
    EXPECT_FALSE(cuda::run(cuda::BlockQuantizeParams{.type = type, .rows = 2, .cols = 12, .in = dummy.data(),
                                                     .out = dummy.data(), .scales = dummy.data()},
                           nullptr)
                     .is_ok());  // cols not a multiple of 8: an error before any launch
}

TEST_F(MoeFp8Gpu, QuantizerRandomMatchesCpuTwin) { quantizer_matches_twin(cuda::MoeWeightType::kFp8E4M3); }
TEST_F(MoeInt8Gpu, QuantizerRandomMatchesCpuTwin) {
    quantizer_matches_twin(cuda::MoeWeightType::kInt8);
    std::vector<float> dummy(8);
    EXPECT_FALSE(cuda::run(cuda::BlockQuantizeParams{.type = cuda::MoeWeightType::kBF16, .rows = 1, .cols = 8,
                                                     .in = dummy.data(), .out = dummy.data(), .scales = dummy.data()},
                           nullptr)
                     .is_ok());  // bf16 is not a quantised type
}

// ---- experts with quantised weights --------------------------------------------------------------------------------

struct QuantExpert {
    std::unique_ptr<DevBuf<uint8_t>> q;
    std::unique_ptr<DevBuf<float>> s;
};

// Quantises w [R, C] on the GPU into out (synchronised).
void quantize_on_gpu(cuda::MoeWeightType type, int64_t R, int64_t C, const std::vector<float>& w, QuantExpert& out) {
    DevBuf<uint16_t> dw(R * C);
    ASSERT_TRUE(dw.upload(to_bf16(w)));
    out.q = std::make_unique<DevBuf<uint8_t>>(R * C);
    out.s = std::make_unique<DevBuf<float>>(cuda::block_scale_count(R, C));
    ASSERT_TRUE(cuda::run(cuda::BlockQuantizeParams{.type = type, .rows = R, .cols = C, .in = dw.ptr,
                                                    .out = out.q->ptr, .scales = out.s->ptr},
                          nullptr)
                    .is_ok());
    CUDA_OK(cudaDeviceSynchronize());
}

// Quantises w on the GPU (and checks the bytes against the twin); `deq` gets the twin's dequantised weights.
void make_quantized(cuda::MoeWeightType type, int64_t R, int64_t C, const std::vector<float>& w, QuantExpert& out,
                    std::vector<float>& deq) {
    ASSERT_NO_FATAL_FAILURE(quantize_on_gpu(type, R, C, w, out));
    std::vector<uint8_t> cq(R * C);
    std::vector<float> cs(cuda::block_scale_count(R, C));
    ASSERT_TRUE(cpu_quantize(type, R, C, w.data(), cq.data(), cs.data()).is_ok());
    ASSERT_EQ(out.q->download(), cq);
    ASSERT_EQ(out.s->download(), cs);
    deq.resize(R * C);
    ASSERT_TRUE(cpu_dequantize(type, R, C, cq.data(), cs.data(), deq.data()).is_ok());
}

// fp8_mode: how the run's path (fp8_prefill for the GEMM path, fp8_decode for the grouped one) runs FP8 weights;
// kFp8Activations is checked against the CPU twin that quantises the activations the same way
// (MoeExpertsParams::fp8_activations, kernels/moe.h).
void check_quantized_experts(cuda::MoeWeightType type, int64_t T, int64_t H, int64_t I, int E, int k, Routing routing,
                             cuda::MoePath path, uint64_t seed,
                             cuda::MoeFp8Mode fp8_mode = cuda::MoeFp8Mode::kDequantize,
                             bool fuse_w13 = false, int gemm_streams = 0, float x_scale = 1.0f,
                             float w_scale = 1.0f) {
    SCOPED_TRACE(testing::Message() << cuda::moe_weight_type_name(type) << " T=" << T << " H=" << H << " I=" << I << " E=" << E << " k=" << k
                                    << " x_scale=" << x_scale << " w_scale=" << w_scale
                                    << " routing=" << static_cast<int>(routing) << " path=" << static_cast<int>(path)
                                    << " fp8_mode=" << cuda::moe_fp8_mode_name(fp8_mode)
                                    << " fuse_w13=" << fuse_w13 << " gemm_streams=" << gemm_streams);
    ASSERT_TRUE(!fuse_w13 || I % 128 == 0) << "w1 | w3 as one block: I a multiple of 128";
    // kAuto's documented choice: FP8 activations for FP8 weights on the GEMM path where they fit (the grouped path
    // stays weight-only).
    const bool gemm_path = path == cuda::MoePath::kGemm || (path == cuda::MoePath::kAuto && T > cuda::kMoeDecodeMaxTokens);
    const bool fp8_act = fp8_mode == cuda::MoeFp8Mode::kFp8Activations ||
                         (fp8_mode == cuda::MoeFp8Mode::kAuto && type == cuda::MoeWeightType::kFp8E4M3 &&
                          gemm_path && H % 128 == 0 && I % 128 == 0 && on_hopper());
    std::mt19937_64 rng(seed);
    std::vector<float> x = random_normal(T * H, rng);
    for (float& v : x) v *= x_scale;  // a power of two: inputs far outside f16's range keep bf16's precision
    x = bf16_round(x);
    std::vector<std::vector<float>> w1(E), w3(E), w2(E), d1(E), d3(E), d2(E);
    std::vector<QuantExpert> f1(E), f3(E), f2(E);
    for (int e = 0; e < E; ++e) {
        // (w_scale a power of two: weights far from the usual magnitudes, as exact in bf16 as the usual ones.)
        w1[e] = bf16_round(random_normal(I * H, rng, w_scale / std::sqrt(float(H))));
        w3[e] = bf16_round(random_normal(I * H, rng, w_scale / std::sqrt(float(H))));
        w2[e] = bf16_round(random_normal(H * I, rng, w_scale / std::sqrt(float(I))));
        if (e % 3 == 1)  // some experts with one hot block: its scale differs from its neighbours'
            for (int64_t i = 0; i < std::min<int64_t>(I * H, 4 * H); ++i) w1[e][i] *= 8.0f;
        if (fuse_w13) {  // w1 and w3 quantised as one [2I, H] matrix, as the model may store them (one GEMM of 2I)
            std::vector<float> w13 = w1[e], d13;
            w13.insert(w13.end(), w3[e].begin(), w3[e].end());
            ASSERT_NO_FATAL_FAILURE(make_quantized(type, 2 * I, H, w13, f1[e], d13));
            d1[e].assign(d13.begin(), d13.begin() + I * H);
            d3[e].assign(d13.begin() + I * H, d13.end());
        } else {
            ASSERT_NO_FATAL_FAILURE(make_quantized(type, I, H, w1[e], f1[e], d1[e]));
            ASSERT_NO_FATAL_FAILURE(make_quantized(type, I, H, w3[e], f3[e], d3[e]));
        }
        ASSERT_NO_FATAL_FAILURE(make_quantized(type, H, I, w2[e], f2[e], d2[e]));
    }
    const RoutingTable route = make_routing(T, E, k, routing, rng);
    const std::vector<int32_t>& ids = route.ids;
    const std::vector<float>& wts = route.weights;
    // References: the dequantised weights (what the kernels must compute) and the bf16 originals (what the
    // quantisation costs).
    auto reference = [&](const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b,
                         const std::vector<std::vector<float>>& c, bool act_fp8) {
        std::vector<const float*> p1(E), p3(E), p2(E);
        for (int e = 0; e < E; ++e) p1[e] = a[e].data(), p3[e] = b[e].data(), p2[e] = c[e].data();
        std::vector<float> ref(T * H);
        EXPECT_TRUE(cpu::moe_experts({.num_tokens = T, .hidden = H, .intermediate = I, .num_experts = E, .top_k = k,
                                      .x = x.data(), .expert_ids = ids.data(), .weights = wts.data(), .w1 = p1.data(),
                                      .w3 = p3.data(), .w2 = p2.data(), .out = ref.data(),
                                      .fp8_activations = act_fp8})
                        .is_ok());
        return ref;
    };
    const std::vector<float> ref = reference(d1, d3, d2, fp8_act), ref_bf16 = reference(w1, w3, w2, false);

    DevBuf<uint16_t> dx(x.size()), dout(T * H);
    DevBuf<int32_t> dids(ids.size());
    DevBuf<float> dw(wts.size());
    ASSERT_TRUE(dx.upload(to_bf16(x)) && dids.upload(ids) && dw.upload(wts) && dout.fill_bytes(0xff));
    std::vector<const void*> q1(E), q3(E), q2(E);
    std::vector<const float*> s1(E), s3(E), s2(E);
    for (int e = 0; e < E; ++e) {
        q1[e] = f1[e].q->ptr, q2[e] = f2[e].q->ptr;
        s1[e] = f1[e].s->ptr, s2[e] = f2[e].s->ptr;
        q3[e] = fuse_w13 ? static_cast<const void*>(f1[e].q->ptr + I * H) : f3[e].q->ptr;
        s3[e] = fuse_w13 ? f1[e].s->ptr + cuda::block_scale_count(I, H) : f3[e].s->ptr;
    }
    cuda::MoeExpertsParams p;
    p.num_tokens = T, p.hidden = H, p.intermediate = I, p.num_experts = E, p.top_k = k;
    p.x = dx.ptr, p.x_stride = H, p.expert_ids = dids.ptr, p.weights = dw.ptr;
    p.w1 = q1.data(), p.w3 = q3.data(), p.w2 = q2.data(), p.out = dout.ptr, p.out_stride = H, p.path = path;
    p.weight_type = type;
    p.s1 = s1.data(), p.s3 = s3.data(), p.s2 = s2.data();
    (gemm_path ? p.fp8_prefill : p.fp8_decode) = fp8_mode;
    p.gemm_streams = gemm_streams;
    // The grouped path's register kernel and bf16 widening explicitly (kAuto takes the TMA kernel on Hopper and the
    // f16 products from 2 tokens); the f16 products and the TMA kernel are compared with it below.
    p.decode_products = cuda::MoeDecodeProducts::kBf16;
    p.decode_kernel = cuda::MoeDecodeKernel::kRegisters;
    DevBuf<char> ws(cuda::moe_workspace_bytes(p));
    ASSERT_TRUE(ws.fill_bytes(0xff));
    p.workspace = ws.ptr, p.workspace_bytes = ws.n;
    // Without the scales: a clear error, no launch.
    cuda::MoeExpertsParams bad = p;
    bad.s3 = nullptr;
    EXPECT_FALSE(cuda::run(bad, nullptr).is_ok());
    const Status st = cuda::run(p, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> got = from_bf16(dout.download());
    ASSERT_EQ(count_nan(got), 0u) << "unwritten outputs";
    const double err = rel_error(got, ref), err_bf16 = rel_error(got, ref_bf16);
    std::printf("[%s experts%s] T=%lld H=%lld I=%lld E=%d path=%d: rel err vs dequantised ref %.2e, vs bf16 weights "
                "%.2e\n",
                cuda::moe_weight_type_name(type), fp8_act ? ", fp8 activations" : "", (long long)T, (long long)H,
                (long long)I, E, static_cast<int>(path), err, err_bf16);
    // FP8 activations: e4m3 rounding of the SwiGLU intermediate turns the GPU's and the twin's sub-ulp differences
    // (bf16 GEMM outputs against fp32, the tensor cores' accumulation: ~2e-3) into whole e4m3 steps (6-12%) for the
    // few elements near a rounding boundary. Measured on H100: 1.35-1.62e-2 overall, rows up to 2.3e-2. Bounds 2.5e-2
    // and 5e-2; and the result must sit clearly nearer the twin than the weight-only reference (~3e-2 further off:
    // the activations' own rounding), so activations that were not quantised, or quantised otherwise, fail.
    const double tol = fp8_act ? 2.5e-2 : kTol;
    EXPECT_LE(err, tol);
    if (fp8_act) {
        const double err_weight_only = rel_error(got, reference(d1, d3, d2, false));
        std::printf("  vs the weight-only reference %.2e\n", err_weight_only);
        EXPECT_LE(err, 0.75 * err_weight_only);
    }
    // What the quantisation costs against the bf16 weights: e4m3's 3 mantissa bits a few percent (~5%), never more
    // than 10% (with the activations in e4m3 too: 15%); int8's steps of block amax / 127 about a third of that
    // (measured 1.5-2.2%).
    EXPECT_LE(err_bf16, type == cuda::MoeWeightType::kInt8 ? 0.03 : fp8_act ? 0.15 : 0.1);
    expect_rows_close(got, ref, T, H, 2 * tol);
    if (!gemm_path && !fp8_act) {
        // f16 products (MoeExpertsParams::decode_products): the same products of the same exact weights, x and h
        // as f16 rows times a power of two each, so the result must be the bf16-widening one up to fp32 rounding and
        // h's bf16 rounding (also for inputs far outside f16's range, x_scale), and as near the reference.
        cuda::MoeExpertsParams ph = p;
        ph.decode_products = cuda::MoeDecodeProducts::kF16;
        // Its workspace holds the f16 rows too: the bf16 path's is refused with the size it needs.
        const Status small = cuda::run(ph, nullptr);
        EXPECT_EQ(small.code(), StatusCode::kInvalidArgument) << small.to_string();
        DevBuf<char> wsh(cuda::moe_workspace_bytes(ph));
        ASSERT_GT(wsh.n, ws.n);
        ASSERT_TRUE(wsh.fill_bytes(0xff));  // (NaN bits: what a run reads before it writes shows up as wrong outputs)
        ph.workspace = wsh.ptr, ph.workspace_bytes = wsh.n;
        // q's outputs, run into an output poisoned with NaNs, each one checked written and as near the reference.
        auto outputs_near_ref = [&](const cuda::MoeExpertsParams& q, const char* what, std::vector<float>& out) {
            ASSERT_TRUE(dout.fill_bytes(0xff));
            const Status sq = cuda::run(q, nullptr);
            ASSERT_TRUE(sq.is_ok()) << what << ": " << sq.to_string();
            CUDA_OK(cudaDeviceSynchronize());
            out = from_bf16(dout.download());
            ASSERT_EQ(count_nan(out), 0u) << what << ": unwritten outputs";
            EXPECT_LE(rel_error(out, ref), tol) << what << " vs the dequantised reference";
            expect_rows_close(out, ref, T, H, 2 * tol);
        };
        std::vector<float> halves;
        ASSERT_NO_FATAL_FAILURE(outputs_near_ref(ph, "f16 products", halves));
        EXPECT_LE(rel_error(halves, got), 2e-3) << "f16 products vs bf16 widening";
        // The TMA kernel (MoeExpertsParams::decode_kernel): the same f16 products, scaled per 128 columns instead of
        // 64, so equal to the register kernel's up to fp32 rounding; it must run wherever it fits, and twice the same.
        cuda::MoeExpertsParams pt = ph;
        pt.decode_kernel = cuda::MoeDecodeKernel::kTma;
        const bool fits = on_hopper() && H % 64 == 0 && I % 64 == 0 && E <= cuda::kMoeDecodeTmaMaxExperts;
        EXPECT_EQ(cuda::moe_decode_uses_tma(pt), fits);
        if (fits) {
            ASSERT_LE(cuda::moe_workspace_bytes(pt), wsh.n);
            std::vector<float> tma, again;
            ASSERT_NO_FATAL_FAILURE(outputs_near_ref(pt, "TMA kernel", tma));
            EXPECT_LE(rel_error(tma, halves), 2e-3) << "TMA kernel vs the register kernel's f16 products";
            ASSERT_NO_FATAL_FAILURE(outputs_near_ref(pt, "TMA kernel, second run", again));
            EXPECT_EQ(again, tma) << "TMA kernel: a second run differs";
        }
        // At most 8 token slots: the gated product cut in parts where its items leave warps idle (certainly with a
        // few hundred items at most and K of 2 batches or more), both ways of multiplying, against one warp per item.
        if (T * k <= 8) {
            const bool must_split = H >= 512 && I < 4096;
            ASSERT_NO_FATAL_FAILURE(expect_split_matches_one_warp_per_item(ph, halves, dout, must_split));
            ASSERT_TRUE(dout.fill_bytes(0xff));
            ASSERT_TRUE(cuda::run(p, nullptr).is_ok());
            CUDA_OK(cudaDeviceSynchronize());
            ASSERT_EQ(from_bf16(dout.download()), got) << "a second run differs (the split's counters)";
            expect_split_matches_one_warp_per_item(p, got, dout, must_split);
        }
    }
}

// Inputs whose magnitudes f16 cannot hold (2^40) or holds only as zeros (2^-40): the f16 products scale each row of x
// and h by a power of two first (every grouped case above compares them with the bf16 widening too).
TEST_F(MoeFp8Gpu, F16ProductsKeepTheRangeOfBf16Inputs) {
    using cuda::MoePath;
    for (const float scale : {0x1p40f, 0x1p-40f}) {
        check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 8, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGrouped,
                                51, cuda::MoeFp8Mode::kDequantize, false, 0, scale);
        check_quantized_experts(cuda::MoeWeightType::kInt8, 1, 1040, 1552, 8, 2, Routing::kRandom, MoePath::kGrouped,
                                52, cuda::MoeFp8Mode::kDequantize, false, 0, scale);
    }
}

// The GEMM path's own grouped GEMM multiplies the quantised w1 / w3 in f16 (GroupedGemmArgs::x_inv): x as f16 rows
// times a power of two each, each weight row block's scales times a power of two. Inputs and weights far outside f16's
// range (x 2^40, 2^-40; weights 2^20, 2^-24 times the usual) must come out as near the reference as usual ones.
TEST_F(MoeInt8Gpu, GemmPrefillF16ProductsKeepTheRangeOfBf16Inputs) {
    using cuda::MoePath;
    const auto kDeq = cuda::MoeFp8Mode::kDequantize;
    uint64_t seed = 95;
    for (const auto type : {cuda::MoeWeightType::kInt8, cuda::MoeWeightType::kFp8E4M3}) {
        for (const float xs : {0x1p40f, 0x1p-40f})
            check_quantized_experts(type, 200, 512, 768, 8, 2, Routing::kRandom, MoePath::kGemm, seed++, kDeq, false,
                                    0, xs);
        for (const float ws : {0x1p20f, 0x1p-24f})
            check_quantized_experts(type, 200, 512, 768, 8, 2, Routing::kRandom, MoePath::kGemm, seed++, kDeq, false,
                                    0, 1.0f, ws);
    }
}

TEST_F(MoeFp8Gpu, GroupedDecodePathAgainstCpu) {
    using cuda::MoePath;
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 1, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGrouped, 41);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 13, 512, 768, 16, 2, Routing::kRandom, MoePath::kGrouped, 42);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 512, 776, 8, 2, Routing::kSkewed, MoePath::kGrouped, 43);     // I = 776: partial blocks
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 264, 2056, 8, 2, Routing::kAllOnOne, MoePath::kGrouped, 44);  // H = 264: partial blocks
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 2, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGrouped, 45);    // MiniMax sizes
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 1, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGrouped, 40);    // one token
    // Enough work items for the tensor-core kernel's shallower variant; I = 2056: partial row and column blocks.
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 1024, 2056, 32, 2, Routing::kRandom, MoePath::kGrouped, 46);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 17, 1024, 2056, 32, 2, Routing::kAllOnOne, MoePath::kGrouped, 47);  // a second 16-token pass
    // K a multiple of 16 but not of 64 (a last, partial step and block), one token (the down product's two-warp
    // variant) and 64; three 16-token passes.
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 1, 1040, 1552, 8, 2, Routing::kRandom, MoePath::kGrouped, 48);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 1040, 1552, 32, 2, Routing::kSkewed, MoePath::kGrouped, 49);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 33, 1024, 1536, 8, 2, Routing::kAllOnOne, MoePath::kGrouped, 50);
}

// The TMA kernel's own edges (every grouped case above with H and I multiples of 64 and at most 64 experts runs it
// too): K = 576 and 320, multiples of 64 but not of 128 (a stage's second box past K), 64 experts, a 64-token pass
// count of 4 on one expert, int8 at MiniMax sizes.
TEST_F(MoeFp8Gpu, TmaDecodeKernelAgainstCpu) {
    using cuda::MoePath;
    const auto kF8 = cuda::MoeWeightType::kFp8E4M3, kI8 = cuda::MoeWeightType::kInt8;
    check_quantized_experts(kF8, 1, 576, 320, 64, 2, Routing::kRandom, MoePath::kGrouped, 81);
    check_quantized_experts(kF8, 64, 576, 1344, 32, 2, Routing::kAllOnOne, MoePath::kGrouped, 82);
    check_quantized_experts(kI8, 5, 1088, 704, 8, 2, Routing::kSkewed, MoePath::kGrouped, 83);
    check_quantized_experts(kI8, 1, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGrouped, 84);
}

// The TMA kernel's rings, double-buffered sums and programmatic launches under repetition: many runs of one input
// (FP8 and int8, 1 to 64 tokens, enough work for several units per CTA) must give the first run's output bit for bit.
// A slot read before its bytes land, or refilled before it is read, shows up as a run that differs.
TEST_F(MoeFp8Gpu, TmaDecodeKernelRunsAreBitwiseEqual) {
    if (!on_hopper()) GTEST_SKIP() << "the TMA kernel needs an sm_90 GPU";
    constexpr int64_t H = 2048, I = 3072, Tmax = 64;
    constexpr int E = 8, k = 2, kRuns = 60;
    std::mt19937_64 rng(91);
    DevBuf<uint16_t> dx(Tmax * H), dout(Tmax * H);
    ASSERT_TRUE(dx.upload(to_bf16(random_normal(Tmax * H, rng))));
    for (const auto type : {cuda::MoeWeightType::kFp8E4M3, cuda::MoeWeightType::kInt8}) {
        SCOPED_TRACE(cuda::moe_weight_type_name(type));
        // Weights quantised on the GPU (the quantiser has tests of its own): w1, w3 [I, H], w2 [H, I] per expert.
        std::vector<QuantExpert> q(3 * E);
        std::vector<const void*> w1(E), w3(E), w2(E);
        std::vector<const float*> s1(E), s3(E), s2(E);
        for (int m = 0; m < 3 * E; ++m) {
            const int64_t R = m < 2 * E ? I : H, C = m < 2 * E ? H : I;
            ASSERT_NO_FATAL_FAILURE(
                quantize_on_gpu(type, R, C, random_normal(R * C, rng, 1.0f / std::sqrt(float(C))), q[m]));
        }
        for (int e = 0; e < E; ++e) {
            w1[e] = q[e].q->ptr, w3[e] = q[E + e].q->ptr, w2[e] = q[2 * E + e].q->ptr;
            s1[e] = q[e].s->ptr, s3[e] = q[E + e].s->ptr, s2[e] = q[2 * E + e].s->ptr;
        }
        for (const int64_t T : {int64_t{1}, int64_t{2}, int64_t{8}, int64_t{33}, Tmax}) {
            SCOPED_TRACE(testing::Message() << "T=" << T);
            const RoutingTable route = make_routing(T, E, k, T == 33 ? Routing::kAllOnOne : Routing::kRandom, rng);
            DevBuf<int32_t> dids(T * k);
            DevBuf<float> dw(T * k);
            ASSERT_TRUE(dids.upload(route.ids) && dw.upload(route.weights));
            cuda::MoeExpertsParams p;
            p.num_tokens = T, p.hidden = H, p.intermediate = I, p.num_experts = E, p.top_k = k;
            p.x = dx.ptr, p.x_stride = H, p.expert_ids = dids.ptr, p.weights = dw.ptr;
            p.w1 = w1.data(), p.w3 = w3.data(), p.w2 = w2.data(), p.out = dout.ptr, p.out_stride = H;
            p.weight_type = type, p.s1 = s1.data(), p.s3 = s3.data(), p.s2 = s2.data();
            p.path = cuda::MoePath::kGrouped, p.decode_kernel = cuda::MoeDecodeKernel::kTma;
            ASSERT_TRUE(cuda::moe_decode_uses_tma(p));
            DevBuf<char> ws(cuda::moe_workspace_bytes(p));
            ASSERT_TRUE(ws.fill_bytes(0xff));
            p.workspace = ws.ptr, p.workspace_bytes = ws.n;
            std::vector<uint16_t> first;
            int differing = 0;
            for (int r = 0; r < kRuns; ++r) {
                if (r % 10 == 0) {
                    ASSERT_TRUE(dout.fill_bytes(0xff));  // (some runs into a poisoned output)
                }
                const Status st = cuda::run(p, nullptr);
                ASSERT_TRUE(st.is_ok()) << st.to_string();
                CUDA_OK(cudaDeviceSynchronize());
                std::vector<uint16_t> got = dout.download();
                got.resize(T * H);
                if (r == 0) first = std::move(got);
                else differing += got != first;
            }
            EXPECT_EQ(count_nan(from_bf16(first)), 0u);
            EXPECT_EQ(differing, 0) << "of " << kRuns - 1 << " runs differ from the first";
        }
    }
}

TEST_F(MoeFp8Gpu, GemmPrefillPathAgainstCpu) {
    using cuda::MoePath;
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 65, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kAuto, 51);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 300, 512, 776, 32, 2, Routing::kSkewed, MoePath::kGemm, 52);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 200, 264, 520, 8, 2, Routing::kAllOnOne, MoePath::kGemm, 53);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 7, 256, 384, 4, 3, Routing::kRandom, MoePath::kGemm, 54);
    // Weight-only (kDequantize) where the own grouped GEMM's mixed-input form takes the shapes: e4m3 bytes widened
    // inside it, also with w1 | w3 as one block.
    const auto kFp8 = cuda::MoeWeightType::kFp8E4M3;
    const auto kDq = cuda::MoeFp8Mode::kDequantize;
    check_quantized_experts(kFp8, 65, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGemm, 57, kDq);
    check_quantized_experts(kFp8, 200, 512, 768, 8, 2, Routing::kSkewed, MoePath::kGemm, 58, kDq, /*fuse_w13=*/true);
}

// The prefill path's FP8 tensor-core GEMMs (activations in e4m3 too) against the CPU twin that quantises them alike:
// empty experts, experts of 1-3 rows (their GEMMs padded to 4 rows), weight-scale rows padded (H / 128 = 3,
// I / 128 = 5), the MiniMax sizes.
TEST_F(MoeFp8Gpu, Fp8ActivationsPrefillAgainstCpuTwin) {
    if (!on_hopper()) GTEST_SKIP() << "cuBLASLt's block-scaled FP8 runs on sm_90 only";
    using cuda::MoePath;
    const auto kFp8 = cuda::MoeWeightType::kFp8E4M3;
    const auto kAct = cuda::MoeFp8Mode::kFp8Activations;
    check_quantized_experts(kFp8, 65, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kAuto, 55, kAct);
    check_quantized_experts(kFp8, 300, 512, 768, 32, 2, Routing::kSkewed, MoePath::kGemm, 56, kAct);
    check_quantized_experts(kFp8, 200, 384, 640, 8, 2, Routing::kAllOnOne, MoePath::kGemm, 57, kAct);
    check_quantized_experts(kFp8, 7, 256, 384, 4, 3, Routing::kRandom, MoePath::kGemm, 58, kAct);
    // w1 | w3 as one block (one GEMM of N = 2I): with padded scale rows (H / 128 = 3), and at the MiniMax sizes.
    check_quantized_experts(kFp8, 90, 384, 640, 4, 2, Routing::kSkewed, MoePath::kGemm, 60, kAct, true);
    check_quantized_experts(kFp8, 130, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGemm, 59, kAct, true);
    // Experts on one stream, and on four (their padded rows must not reach each other's: the padded row layout).
    check_quantized_experts(kFp8, 300, 512, 768, 32, 2, Routing::kSkewed, MoePath::kGemm, 67, kAct, false, 1);
    check_quantized_experts(kFp8, 150, 384, 640, 16, 3, Routing::kRandom, MoePath::kGemm, 68, kAct, true, 4);
}

// The grouped (decode) path on e4m3 tensor cores with the activations in e4m3 too, against the same twin: one token,
// a 13-token batch, skewed and all-on-one routing (a second 16-token pass), k = 3, the shallower kernel variant, w1 | w3
// as one block.
TEST_F(MoeFp8Gpu, Fp8ActivationsDecodeAgainstCpuTwin) {
    if (!on_hopper()) GTEST_SKIP() << "FP8 activations are enabled on sm_90 only";
    using cuda::MoePath;
    const auto kFp8 = cuda::MoeWeightType::kFp8E4M3;
    const auto kAct = cuda::MoeFp8Mode::kFp8Activations;
    check_quantized_experts(kFp8, 1, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGrouped, 81, kAct);
    check_quantized_experts(kFp8, 13, 512, 768, 16, 2, Routing::kRandom, MoePath::kGrouped, 82, kAct);
    check_quantized_experts(kFp8, 64, 512, 768, 8, 2, Routing::kSkewed, MoePath::kGrouped, 83, kAct);
    check_quantized_experts(kFp8, 40, 256, 2048, 8, 3, Routing::kAllOnOne, MoePath::kGrouped, 84, kAct);
    check_quantized_experts(kFp8, 64, 1024, 2048, 32, 2, Routing::kRandom, MoePath::kGrouped, 85, kAct);
    check_quantized_experts(kFp8, 2, 2048, 3072, 4, 2, Routing::kRandom, MoePath::kGrouped, 86, kAct, true);
    // kAuto on the grouped path: weight-only (the widening kernel), where FP8 activations would fit and where not.
    check_quantized_experts(kFp8, 9, 384, 640, 4, 2, Routing::kRandom, MoePath::kAuto, 87, cuda::MoeFp8Mode::kAuto);
    check_quantized_experts(kFp8, 9, 264, 640, 4, 2, Routing::kRandom, MoePath::kAuto, 88, cuda::MoeFp8Mode::kAuto);
}

// kAuto takes the FP8 activations where they fit (Hopper, H and I multiples of 128), and they are refused where
// asked for explicitly but they do not fit, or with int8 weights (for either path).
TEST_F(MoeFp8Gpu, Fp8PrefillModeResolution) {
    // (against the twin kAuto documents: with FP8 activations on Hopper, else without; H = 264 never)
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 70, 256, 384, 4, 2, Routing::kRandom, cuda::MoePath::kAuto,
                            64, cuda::MoeFp8Mode::kAuto);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 70, 264, 384, 4, 2, Routing::kRandom, cuda::MoePath::kAuto,
                            66, cuda::MoeFp8Mode::kAuto);
    cuda::MoeExpertsParams p;
    alignas(16) uint8_t dummy[16];
    const void* w[1] = {dummy};
    const float* s[1] = {reinterpret_cast<const float*>(dummy)};
    p.num_tokens = 100, p.hidden = 264, p.intermediate = 256, p.num_experts = 1, p.top_k = 1;
    p.x = dummy, p.x_stride = 264, p.expert_ids = reinterpret_cast<const int32_t*>(dummy), p.weights = s[0];
    p.w1 = p.w3 = p.w2 = w, p.out = dummy, p.out_stride = 264, p.s1 = p.s3 = p.s2 = s;
    p.weight_type = cuda::MoeWeightType::kFp8E4M3, p.fp8_prefill = cuda::MoeFp8Mode::kFp8Activations;
    EXPECT_EQ(cuda::validate(p).code(), StatusCode::kInvalidArgument);  // H = 264
    p.hidden = p.x_stride = p.out_stride = 256;
    EXPECT_EQ(cuda::validate(p).is_ok(), on_hopper());
    p.weight_type = cuda::MoeWeightType::kInt8;
    EXPECT_EQ(cuda::validate(p).code(), StatusCode::kInvalidArgument);
    // The same rules for the decode path's mode.
    p.weight_type = cuda::MoeWeightType::kFp8E4M3, p.fp8_prefill = cuda::MoeFp8Mode::kAuto;
    p.fp8_decode = cuda::MoeFp8Mode::kFp8Activations;
    EXPECT_EQ(cuda::validate(p).is_ok(), on_hopper());
    p.hidden = p.x_stride = p.out_stride = 264;
    EXPECT_EQ(cuda::validate(p).code(), StatusCode::kInvalidArgument);
    p.hidden = p.x_stride = p.out_stride = 256, p.weight_type = cuda::MoeWeightType::kInt8;
    EXPECT_EQ(cuda::validate(p).code(), StatusCode::kInvalidArgument);
    p.weight_type = cuda::MoeWeightType::kFp8E4M3, p.fp8_decode = static_cast<cuda::MoeFp8Mode>(7);
    EXPECT_EQ(cuda::validate(p).code(), StatusCode::kInvalidArgument);
}

// MoeDecodeProducts::kAuto takes the f16 products on the grouped path from kMoeDecodeF16MinTokens tokens (seen in the
// workspace, which holds the f16 rows only for them), never for bf16 experts, FP8 activations or the GEMM path; an
// unknown value is refused.
TEST_F(MoeFp8Gpu, DecodeProductsModeResolution) {
    // Read as the kernels read it (unset, empty or unknown: kAuto's own rule).
    if (env_choice_index("VOLT_MOE_DECODE_F16", {"auto", "0", "1"}) > 0)
        GTEST_SKIP() << "VOLT_MOE_DECODE_F16 overrides kAuto";
    alignas(16) uint8_t dummy[16];
    const void* w[1] = {dummy};
    const float* s[1] = {reinterpret_cast<const float*>(dummy)};
    cuda::MoeExpertsParams p;
    p.hidden = 256, p.intermediate = 384, p.num_experts = 1, p.top_k = 1, p.path = cuda::MoePath::kGrouped;
    p.x = dummy, p.x_stride = 256, p.expert_ids = reinterpret_cast<const int32_t*>(dummy), p.weights = s[0];
    p.w1 = p.w3 = p.w2 = w, p.out = dummy, p.out_stride = 256, p.s1 = p.s3 = p.s2 = s;
    auto bytes = [&](cuda::MoeWeightType type, int64_t T, cuda::MoeDecodeProducts products,
                     cuda::MoeFp8Mode mode = cuda::MoeFp8Mode::kAuto) {
        cuda::MoeExpertsParams q = p;
        q.weight_type = type, q.num_tokens = T, q.decode_products = products, q.fp8_decode = mode;
        q.decode_kernel = cuda::MoeDecodeKernel::kRegisters;  // (the TMA kernel's products are f16 whatever they say)
        return cuda::moe_workspace_bytes(q);
    };
    using cuda::MoeDecodeProducts;
    for (const auto type : {cuda::MoeWeightType::kFp8E4M3, cuda::MoeWeightType::kInt8}) {
        for (const int64_t T : {int64_t{1}, cuda::kMoeDecodeF16MinTokens - 1, cuda::kMoeDecodeF16MinTokens,
                                cuda::kMoeDecodeMaxTokens}) {
            const size_t bf16 = bytes(type, T, MoeDecodeProducts::kBf16), f16 = bytes(type, T, MoeDecodeProducts::kF16);
            ASSERT_GT(f16, bf16) << "T=" << T;
            EXPECT_EQ(bytes(type, T, MoeDecodeProducts::kAuto), T >= cuda::kMoeDecodeF16MinTokens ? f16 : bf16)
                << cuda::moe_weight_type_name(type) << " T=" << T;
        }
    }
    EXPECT_EQ(bytes(cuda::MoeWeightType::kBF16, 64, MoeDecodeProducts::kF16),
              bytes(cuda::MoeWeightType::kBF16, 64, MoeDecodeProducts::kBf16));
    if (on_hopper()) {
        EXPECT_EQ(bytes(cuda::MoeWeightType::kFp8E4M3, 64, MoeDecodeProducts::kF16,
                        cuda::MoeFp8Mode::kFp8Activations),
                  bytes(cuda::MoeWeightType::kFp8E4M3, 64, MoeDecodeProducts::kBf16,
                        cuda::MoeFp8Mode::kFp8Activations));
    }
    p.weight_type = cuda::MoeWeightType::kFp8E4M3, p.num_tokens = 8;
    EXPECT_TRUE(cuda::validate(p).is_ok());
    p.decode_products = static_cast<MoeDecodeProducts>(7);
    EXPECT_EQ(cuda::validate(p).code(), StatusCode::kInvalidArgument);
}

// Where the grouped path takes the TMA kernel (MoeExpertsParams::decode_kernel): kAuto and kTma on an sm_90 GPU with
// quantised weights, weight-only, at most 64 experts and H, I multiples of 64 (then with the f16 products' workspace
// and no split); never for bf16 experts, FP8 activations, the GEMM path or kRegisters; an unknown value is refused.
TEST_F(MoeFp8Gpu, DecodeKernelResolution) {
    if (env_choice_index("VOLT_MOE_DECODE_TMA", {"auto", "1", "0"}) == 2) GTEST_SKIP() << "VOLT_MOE_DECODE_TMA=0";
    alignas(16) uint8_t dummy[16];
    std::vector<const void*> w(65, dummy);
    std::vector<const float*> s(65, reinterpret_cast<const float*>(dummy));
    cuda::MoeExpertsParams p;
    p.num_tokens = 1, p.hidden = 6144, p.intermediate = 9216, p.num_experts = 32, p.top_k = 2;
    p.x = dummy, p.x_stride = 6144, p.expert_ids = reinterpret_cast<const int32_t*>(dummy), p.weights = s[0];
    p.w1 = p.w3 = p.w2 = w.data(), p.out = dummy, p.out_stride = 6144, p.s1 = p.s3 = p.s2 = s.data();
    p.weight_type = cuda::MoeWeightType::kFp8E4M3;
    using K = cuda::MoeDecodeKernel;
    auto uses = [&](auto&& change) {
        cuda::MoeExpertsParams q = p;
        change(q);
        EXPECT_TRUE(cuda::validate(q).is_ok());
        return cuda::moe_decode_uses_tma(q);
    };
    const bool hopper = on_hopper();
    for (const auto type : {cuda::MoeWeightType::kFp8E4M3, cuda::MoeWeightType::kInt8}) {
        SCOPED_TRACE(cuda::moe_weight_type_name(type));
        for (const int64_t T : {int64_t{1}, int64_t{2}, cuda::kMoeDecodeMaxTokens}) {
            EXPECT_EQ(uses([&](auto& q) { q.weight_type = type, q.num_tokens = T; }), hopper) << "T=" << T;
            EXPECT_EQ(uses([&](auto& q) { q.weight_type = type, q.num_tokens = T, q.decode_kernel = K::kTma; }),
                      hopper);
            EXPECT_FALSE(uses([&](auto& q) {
                q.weight_type = type, q.num_tokens = T, q.decode_kernel = K::kRegisters;
            }));
        }
        EXPECT_FALSE(uses([&](auto& q) { q.weight_type = type, q.num_tokens = cuda::kMoeDecodeMaxTokens + 1; }));
        EXPECT_EQ(uses([&](auto& q) { q.weight_type = type, q.num_experts = cuda::kMoeDecodeTmaMaxExperts; }), hopper);
        EXPECT_FALSE(uses([&](auto& q) { q.weight_type = type, q.num_experts = cuda::kMoeDecodeTmaMaxExperts + 1; }));
        EXPECT_FALSE(uses([&](auto& q) {
            q.weight_type = type, q.hidden = 6144 + 32, q.x_stride = q.out_stride = 6176;
        }));
        EXPECT_FALSE(uses([&](auto& q) { q.weight_type = type, q.intermediate = 9216 - 16; }));
    }
    EXPECT_FALSE(uses([&](auto& q) { q.weight_type = cuda::MoeWeightType::kBF16; }));
    if (hopper) {
        EXPECT_FALSE(uses([&](auto& q) { q.fp8_decode = cuda::MoeFp8Mode::kFp8Activations; }));
        // The f16 rows' workspace, without the split's partial sums.
        cuda::MoeExpertsParams f16 = p, tma = p;
        f16.decode_kernel = K::kRegisters, f16.decode_products = cuda::MoeDecodeProducts::kF16;
        f16.decode_split = false;
        EXPECT_EQ(cuda::moe_workspace_bytes(tma), cuda::moe_workspace_bytes(f16));
        tma.num_tokens = 2;
        auto parts = cuda::moe_decode_split_parts(tma);
        ASSERT_TRUE(parts);
        EXPECT_EQ(*parts, 1);
    }
    p.decode_kernel = static_cast<K>(7);
    EXPECT_EQ(cuda::validate(p).code(), StatusCode::kInvalidArgument);
}

// Where the gated product is cut in parts at MiniMax sizes (32 experts, top 2) on a 132-SM H100 / H200, as measured
// (MoeExpertsParams::decode_split, bench/RESULTS.md): not at T = 1 (one round of items at 73% of the warps: no
// faster), in 2 at T = 2 (a second round at 45%) for FP8, int8 and bf16 experts, never past 8 token slots or with
// the flag off.
TEST_F(MoeFp8Gpu, DecodeSplitPolicy) {
    if (env_choice_index("VOLT_MOE_DECODE_SPLIT", {"1", "0"}) > 0) GTEST_SKIP() << "VOLT_MOE_DECODE_SPLIT=0";
    int device = 0, sms = 0;
    CUDA_OK(cudaGetDevice(&device));
    CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    if (sms != 132) GTEST_SKIP() << "measured on 132-SM GPUs, this one has " << sms;
    alignas(16) uint8_t dummy[16];
    std::vector<const void*> w(32, dummy);
    std::vector<const float*> s(32, reinterpret_cast<const float*>(dummy));
    cuda::MoeExpertsParams p;
    p.hidden = 6144, p.intermediate = 9216, p.num_experts = 32, p.top_k = 2, p.path = cuda::MoePath::kAuto;
    p.x = dummy, p.x_stride = 6144, p.expert_ids = reinterpret_cast<const int32_t*>(dummy), p.weights = s[0];
    p.w1 = p.w3 = p.w2 = w.data(), p.out = dummy, p.out_stride = 6144, p.s1 = p.s3 = p.s2 = s.data();
    auto parts = [&](cuda::MoeWeightType type, int64_t T, bool split = true) {
        cuda::MoeExpertsParams q = p;
        q.weight_type = type, q.num_tokens = T, q.decode_split = split;
        q.decode_kernel = cuda::MoeDecodeKernel::kRegisters;  // (the TMA kernel does not split)
        auto n = cuda::moe_decode_split_parts(q);
        EXPECT_TRUE(n) << n.status().to_string();
        return n ? *n : -1;
    };
    for (const auto type : {cuda::MoeWeightType::kFp8E4M3, cuda::MoeWeightType::kInt8, cuda::MoeWeightType::kBF16}) {
        SCOPED_TRACE(cuda::moe_weight_type_name(type));
        EXPECT_EQ(parts(type, 1), 1);
        EXPECT_EQ(parts(type, 2), 2);
        EXPECT_EQ(parts(type, 2, false), 1);
        EXPECT_EQ(parts(type, 5), 1);   // 10 slots
        EXPECT_EQ(parts(type, 64), 1);
    }
}

TEST_F(MoeFp8Gpu, ShortSanitizerRun) {
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 3, 64, 136, 4, 2, Routing::kSkewed, cuda::MoePath::kGrouped, 61);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 1, 520, 136, 4, 2, Routing::kRandom,
                            cuda::MoePath::kGrouped, 64);  // the gated product split
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 64, 1064, 32, 2, Routing::kRandom, cuda::MoePath::kGrouped, 63);  // the shallower variant
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 3, 64, 136, 4, 2, Routing::kSkewed, cuda::MoePath::kGemm, 62);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 3, 128, 192, 4, 2, Routing::kSkewed,
                            cuda::MoePath::kGrouped, 66);  // the TMA kernel
    if (on_hopper()) {
        check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 5, 128, 384, 4, 2, Routing::kSkewed,
                                cuda::MoePath::kGemm, 65, cuda::MoeFp8Mode::kFp8Activations, false, 4);
        check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 5, 128, 384, 4, 2, Routing::kSkewed,
                                cuda::MoePath::kGrouped, 69, cuda::MoeFp8Mode::kFp8Activations);
    }
}

TEST_F(MoeInt8Gpu, GroupedDecodePathAgainstCpu) {
    using cuda::MoePath;
    const auto kI8 = cuda::MoeWeightType::kInt8;
    check_quantized_experts(kI8, 1, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGrouped, 71);
    check_quantized_experts(kI8, 64, 512, 776, 8, 2, Routing::kSkewed, MoePath::kGrouped, 72);     // partial blocks
    check_quantized_experts(kI8, 64, 264, 2056, 8, 2, Routing::kAllOnOne, MoePath::kGrouped, 73);  // H = 264
    check_quantized_experts(kI8, 2, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGrouped, 74);    // MiniMax sizes
    check_quantized_experts(kI8, 64, 1024, 2056, 32, 2, Routing::kRandom, MoePath::kGrouped, 75);
    check_quantized_experts(kI8, 1, 1040, 1552, 8, 2, Routing::kRandom, MoePath::kGrouped, 76);  // partial steps
    check_quantized_experts(kI8, 33, 1040, 1552, 8, 2, Routing::kAllOnOne, MoePath::kGrouped, 77);
}

TEST_F(MoeInt8Gpu, GemmPrefillPathAgainstCpu) {
    using cuda::MoePath;
    const auto kI8 = cuda::MoeWeightType::kInt8;
    check_quantized_experts(kI8, 65, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kAuto, 81);
    check_quantized_experts(kI8, 300, 512, 776, 32, 2, Routing::kSkewed, MoePath::kGemm, 82);
    check_quantized_experts(kI8, 7, 256, 384, 4, 3, Routing::kRandom, MoePath::kGemm, 83);
    // The own grouped GEMM's mixed-input form (the default for quantised experts on sm_90; the shapes above with H, I
    // multiples of 256 / 128 take it too): K = H = 320 (an odd count of 64-deep steps, the last scale block half
    // used) in the up product while the down product (N = 320) falls back to dequantising; w1 | w3 stored and
    // quantised as one block (w3's scales offset into w1's); experts of 1..3 rows beside empty ones; every row on one
    // expert (eight token tiles, the last 64 wide).
    const auto kDq = cuda::MoeFp8Mode::kDequantize;
    check_quantized_experts(kI8, 200, 320, 384, 4, 2, Routing::kSkewed, MoePath::kGemm, 84);
    check_quantized_experts(kI8, 300, 512, 768, 8, 2, Routing::kRandom, MoePath::kGemm, 85, kDq, /*fuse_w13=*/true);
    check_quantized_experts(kI8, 9, 256, 384, 16, 2, Routing::kSkewed, MoePath::kGemm, 86);
    check_quantized_experts(kI8, 700, 512, 1024, 4, 2, Routing::kAllOnOne, MoePath::kGemm, 87);
}

// Where the own grouped GEMM widens quantised experts itself (sm_90, both products, VOLT_MOE_OWN_GEMM unset or
// both), the GEMM path's workspace holds no dequantised expert copies: as many bytes as bf16 experts need, plus the
// gathered rows' scales of its f16 products. Where it
// does not take the shapes (I = 776), the copies are there. Sizes only: the weight addresses are never read.
TEST_F(MoeInt8Gpu, WorkspaceHoldsDequantisedCopiesOnlyWhereNeeded) {
    if (!on_hopper()) GTEST_SKIP() << "the own grouped GEMM runs on sm_90 only";
    if (env_choice_index("VOLT_MOE_OWN_GEMM", {"0", "up"}) >= 0) GTEST_SKIP() << "VOLT_MOE_OWN_GEMM=0|up";
    const int E = 8;
    const std::vector<const void*> w(E, reinterpret_cast<const void*>(uintptr_t{1} << 20));
    const std::vector<const float*> sc(E, reinterpret_cast<const float*>(uintptr_t{1} << 20));
    for (const int64_t I : {1536, 776}) {
        cuda::MoeExpertsParams p;
        p.num_tokens = 4096, p.hidden = 1024, p.intermediate = I, p.num_experts = E, p.top_k = 2;
        p.path = cuda::MoePath::kGemm;
        p.w1 = w.data(), p.w3 = w.data(), p.w2 = w.data();
        const size_t bf16 = cuda::moe_workspace_bytes(p);
        p.weight_type = cuda::MoeWeightType::kInt8;
        p.s1 = sc.data(), p.s3 = sc.data(), p.s2 = sc.data();
        const size_t int8 = cuda::moe_workspace_bytes(p);
        // The kernel's f16 products add the gathered rows' inverse scales (T k floats, aligned to 256 bytes).
        const size_t row_scales = (size_t(p.num_tokens * p.top_k) * sizeof(float) + 255) / 256 * 256;
        if (I % 128 == 0)
            EXPECT_EQ(int8, bf16 + row_scales) << "I = " << I << ": dequantised copies reserved for nothing";
        else EXPECT_GE(int8, bf16 + size_t(2 * I * 1024 * 2)) << "I = " << I << ": no room to dequantise an expert";
    }
}

TEST_F(MoeInt8Gpu, ShortSanitizerRun) {
    const auto kI8 = cuda::MoeWeightType::kInt8;
    check_quantized_experts(kI8, 3, 64, 136, 4, 2, Routing::kSkewed, cuda::MoePath::kGrouped, 91);
    check_quantized_experts(kI8, 2, 520, 136, 4, 2, Routing::kRandom, cuda::MoePath::kGrouped, 93);  // split
    check_quantized_experts(kI8, 3, 64, 136, 4, 2, Routing::kSkewed, cuda::MoePath::kGemm, 92);
    check_quantized_experts(kI8, 5, 256, 128, 4, 2, Routing::kRandom, cuda::MoePath::kGemm, 94);  // mixed-input GEMM
}

}  // namespace
}  // namespace volt
