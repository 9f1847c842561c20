// Quantised (128 x 128 block-scaled) expert weights (issue 8), FP8 e4m3 and int8: the quantizer against its CPU twin
// bit for bit (edge values with hand-worked encodings: ties to even, subnormals, saturation at 448 / 127, NaN, zero
// blocks, partial edge blocks; then random matrices of mixed magnitudes), and the MoE experts with quantised weights
// on both paths (grouped GEMV decode, dequantise + cuBLASLt prefill) against cpu::moe_experts on the dequantised
// weights, with random, skewed and all-on-one routing and odd sizes: bf16 outputs <= 1e-2 relative. The Fp8Cpu and
// Int8Cpu suites check the twins alone and run without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "kernels/moe.h"
#include "kernels/moe_cuda.h"
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

TEST(Fp8Cpu, BlockScalesAndRoundTrip) {
    // [130, 136]: four blocks, three partial; block (0, 1) all zero -> scale 1.
    const int64_t R = 130, C = 136;
    std::mt19937_64 rng(5);
    std::vector<float> w = bf16_round(random_normal(R * C, rng, 0.02f));
    for (int64_t r = 0; r < 128; ++r)
        for (int64_t c = 128; c < C; ++c) w[r * C + c] = 0.0f;
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
    const int64_t R = 130, C = 136;  // four blocks, three partial; block (0, 1) all zero -> scale 1
    std::mt19937_64 rng(6);
    std::vector<float> w = bf16_round(random_normal(R * C, rng, 0.02f));
    for (int64_t r = 0; r < 128; ++r)
        for (int64_t c = 128; c < C; ++c) w[r * C + c] = 0.0f;
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

// Quantises w on the GPU (and checks the bytes against the twin); `deq` gets the twin's dequantised weights.
void make_quantized(cuda::MoeWeightType type, int64_t R, int64_t C, const std::vector<float>& w, QuantExpert& out,
                    std::vector<float>& deq) {
    DevBuf<uint16_t> dw(R * C);
    ASSERT_TRUE(dw.upload(to_bf16(w)));
    out.q = std::make_unique<DevBuf<uint8_t>>(R * C);
    out.s = std::make_unique<DevBuf<float>>(cuda::block_scale_count(R, C));
    ASSERT_TRUE(cuda::run(cuda::BlockQuantizeParams{.type = type, .rows = R, .cols = C, .in = dw.ptr,
                                                    .out = out.q->ptr, .scales = out.s->ptr},
                          nullptr)
                    .is_ok());
    std::vector<uint8_t> cq(R * C);
    std::vector<float> cs(cuda::block_scale_count(R, C));
    ASSERT_TRUE(cpu_quantize(type, R, C, w.data(), cq.data(), cs.data()).is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    ASSERT_EQ(out.q->download(), cq);
    ASSERT_EQ(out.s->download(), cs);
    deq.resize(R * C);
    ASSERT_TRUE(cpu_dequantize(type, R, C, cq.data(), cs.data(), deq.data()).is_ok());
}

void check_quantized_experts(cuda::MoeWeightType type, int64_t T, int64_t H, int64_t I, int E, int k, Routing routing,
                             cuda::MoePath path, uint64_t seed) {
    SCOPED_TRACE(testing::Message() << cuda::moe_weight_type_name(type) << " T=" << T << " H=" << H << " I=" << I << " E=" << E << " k=" << k
                                    << " routing=" << static_cast<int>(routing) << " path=" << static_cast<int>(path));
    std::mt19937_64 rng(seed);
    const std::vector<float> x = bf16_round(random_normal(T * H, rng));
    std::vector<std::vector<float>> w1(E), w3(E), w2(E), d1(E), d3(E), d2(E);
    std::vector<QuantExpert> f1(E), f3(E), f2(E);
    for (int e = 0; e < E; ++e) {
        w1[e] = bf16_round(random_normal(I * H, rng, 1.0f / std::sqrt(float(H))));
        w3[e] = bf16_round(random_normal(I * H, rng, 1.0f / std::sqrt(float(H))));
        w2[e] = bf16_round(random_normal(H * I, rng, 1.0f / std::sqrt(float(I))));
        if (e % 3 == 1)  // some experts with one hot block: its scale differs from its neighbours'
            for (int64_t i = 0; i < std::min<int64_t>(I * H, 4 * H); ++i) w1[e][i] *= 8.0f;
        ASSERT_NO_FATAL_FAILURE(make_quantized(type, I, H, w1[e], f1[e], d1[e]));
        ASSERT_NO_FATAL_FAILURE(make_quantized(type, I, H, w3[e], f3[e], d3[e]));
        ASSERT_NO_FATAL_FAILURE(make_quantized(type, H, I, w2[e], f2[e], d2[e]));
    }
    const RoutingTable route = make_routing(T, E, k, routing, rng);
    const std::vector<int32_t>& ids = route.ids;
    const std::vector<float>& wts = route.weights;
    // References: the dequantised weights (what the kernels must compute) and the bf16 originals (what the
    // quantisation costs).
    auto reference = [&](const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b,
                         const std::vector<std::vector<float>>& c) {
        std::vector<const float*> p1(E), p3(E), p2(E);
        for (int e = 0; e < E; ++e) p1[e] = a[e].data(), p3[e] = b[e].data(), p2[e] = c[e].data();
        std::vector<float> ref(T * H);
        EXPECT_TRUE(cpu::moe_experts({.num_tokens = T, .hidden = H, .intermediate = I, .num_experts = E, .top_k = k,
                                      .x = x.data(), .expert_ids = ids.data(), .weights = wts.data(), .w1 = p1.data(),
                                      .w3 = p3.data(), .w2 = p2.data(), .out = ref.data()})
                        .is_ok());
        return ref;
    };
    const std::vector<float> ref = reference(d1, d3, d2), ref_bf16 = reference(w1, w3, w2);

    DevBuf<uint16_t> dx(x.size()), dout(T * H);
    DevBuf<int32_t> dids(ids.size());
    DevBuf<float> dw(wts.size());
    ASSERT_TRUE(dx.upload(to_bf16(x)) && dids.upload(ids) && dw.upload(wts) && dout.fill_bytes(0xff));
    std::vector<const void*> q1(E), q3(E), q2(E);
    std::vector<const float*> s1(E), s3(E), s2(E);
    for (int e = 0; e < E; ++e) {
        q1[e] = f1[e].q->ptr, q3[e] = f3[e].q->ptr, q2[e] = f2[e].q->ptr;
        s1[e] = f1[e].s->ptr, s3[e] = f3[e].s->ptr, s2[e] = f2[e].s->ptr;
    }
    cuda::MoeExpertsParams p;
    p.num_tokens = T, p.hidden = H, p.intermediate = I, p.num_experts = E, p.top_k = k;
    p.x = dx.ptr, p.x_stride = H, p.expert_ids = dids.ptr, p.weights = dw.ptr;
    p.w1 = q1.data(), p.w3 = q3.data(), p.w2 = q2.data(), p.out = dout.ptr, p.out_stride = H, p.path = path;
    p.weight_type = type;
    p.s1 = s1.data(), p.s3 = s3.data(), p.s2 = s2.data();
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
    std::printf("[%s experts] T=%lld H=%lld I=%lld E=%d path=%d: rel err vs dequantised ref %.2e, vs bf16 weights %.2e\n",
                cuda::moe_weight_type_name(type), (long long)T, (long long)H, (long long)I, E, static_cast<int>(path),
                err, err_bf16);
    EXPECT_LE(err, kTol);
    // What the quantisation costs against the bf16 weights: e4m3's 3 mantissa bits a few percent (~5%), never more
    // than 10%; int8's steps of block amax / 127 about a third of that (measured 1.5-2.2%).
    EXPECT_LE(err_bf16, type == cuda::MoeWeightType::kInt8 ? 0.03 : 0.1);
    expect_rows_close(got, ref, T, H, 2 * kTol);
}

TEST_F(MoeFp8Gpu, GroupedDecodePathAgainstCpu) {
    using cuda::MoePath;
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 1, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGrouped, 41);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 13, 512, 768, 16, 2, Routing::kRandom, MoePath::kGrouped, 42);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 512, 776, 8, 2, Routing::kSkewed, MoePath::kGrouped, 43);     // I = 776: partial blocks
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 264, 2056, 8, 2, Routing::kAllOnOne, MoePath::kGrouped, 44);  // H = 264: partial blocks
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 2, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGrouped, 45);    // MiniMax sizes
    // Enough work items for the tensor-core kernel's shallower variant; I = 2056: partial row and column blocks.
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 1024, 2056, 32, 2, Routing::kRandom, MoePath::kGrouped, 46);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 17, 1024, 2056, 32, 2, Routing::kAllOnOne, MoePath::kGrouped, 47);  // a second 16-token pass
}

TEST_F(MoeFp8Gpu, GemmPrefillPathAgainstCpu) {
    using cuda::MoePath;
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 65, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kAuto, 51);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 300, 512, 776, 32, 2, Routing::kSkewed, MoePath::kGemm, 52);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 200, 264, 520, 8, 2, Routing::kAllOnOne, MoePath::kGemm, 53);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 7, 256, 384, 4, 3, Routing::kRandom, MoePath::kGemm, 54);
}

TEST_F(MoeFp8Gpu, ShortSanitizerRun) {
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 3, 64, 136, 4, 2, Routing::kSkewed, cuda::MoePath::kGrouped, 61);
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 64, 64, 1064, 32, 2, Routing::kRandom, cuda::MoePath::kGrouped, 63);  // the shallower variant
    check_quantized_experts(cuda::MoeWeightType::kFp8E4M3, 3, 64, 136, 4, 2, Routing::kSkewed, cuda::MoePath::kGemm, 62);
}

TEST_F(MoeInt8Gpu, GroupedDecodePathAgainstCpu) {
    using cuda::MoePath;
    const auto kI8 = cuda::MoeWeightType::kInt8;
    check_quantized_experts(kI8, 1, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGrouped, 71);
    check_quantized_experts(kI8, 64, 512, 776, 8, 2, Routing::kSkewed, MoePath::kGrouped, 72);     // partial blocks
    check_quantized_experts(kI8, 64, 264, 2056, 8, 2, Routing::kAllOnOne, MoePath::kGrouped, 73);  // H = 264
    check_quantized_experts(kI8, 2, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGrouped, 74);    // MiniMax sizes
    check_quantized_experts(kI8, 64, 1024, 2056, 32, 2, Routing::kRandom, MoePath::kGrouped, 75);
}

TEST_F(MoeInt8Gpu, GemmPrefillPathAgainstCpu) {
    using cuda::MoePath;
    const auto kI8 = cuda::MoeWeightType::kInt8;
    check_quantized_experts(kI8, 65, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kAuto, 81);
    check_quantized_experts(kI8, 300, 512, 776, 32, 2, Routing::kSkewed, MoePath::kGemm, 82);
    check_quantized_experts(kI8, 7, 256, 384, 4, 3, Routing::kRandom, MoePath::kGemm, 83);
}

TEST_F(MoeInt8Gpu, ShortSanitizerRun) {
    const auto kI8 = cuda::MoeWeightType::kInt8;
    check_quantized_experts(kI8, 3, 64, 136, 4, 2, Routing::kSkewed, cuda::MoePath::kGrouped, 91);
    check_quantized_experts(kI8, 3, 64, 136, 4, 2, Routing::kSkewed, cuda::MoePath::kGemm, 92);
}

}  // namespace
}  // namespace volt
