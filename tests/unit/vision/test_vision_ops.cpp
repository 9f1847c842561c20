// The vision tower's CPU ops against plain float64 loops: LayerNorm, exact GELU, patch embedding (conv as
// im2col + GEMM) and bidirectional multi-head attention.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/encoder_attention.h"
#include "kernels/gelu.h"
#include "kernels/layer_norm.h"
#include "kernels/patch_embed.h"

namespace volt {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = offset + scale * d(rng);
    return v;
}

double max_rel(const std::vector<float>& a, const std::vector<double>& b) {
    double m = 0, s = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        m = std::max(m, std::fabs(a[i] - b[i]));
        s = std::max(s, std::fabs(b[i]));
    }
    return m / std::max(s, 1e-30);
}

TEST(VisionOps, LayerNormMatchesFloat64WithLargeRowMeans) {
    const int64_t T = 37, W = 96;
    auto x = randn(T * W, 1, 3.0f, 250.0f);  // a large mean: a one-pass variance would cancel
    auto w = randn(W, 2), b = randn(W, 3);
    std::vector<float> out(T * W);
    LayerNormParams p;
    p.rows = T; p.width = W; p.x = x.data(); p.x_stride = W; p.weight = w.data(); p.bias = b.data(); p.eps = 1e-5f;
    p.out = out.data(); p.out_stride = W;
    ASSERT_TRUE(cpu::layer_norm(p));
    std::vector<double> ref(T * W);
    for (int64_t t = 0; t < T; ++t) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < W; ++i) mean += x[t * W + i];
        mean /= W;
        for (int64_t i = 0; i < W; ++i) var += (x[t * W + i] - mean) * (x[t * W + i] - mean);
        var /= W;
        for (int64_t i = 0; i < W; ++i) ref[t * W + i] = (x[t * W + i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i];
    }
    EXPECT_LT(max_rel(out, ref), 1e-5);
    p.eps = 0;
    EXPECT_EQ(cpu::layer_norm(p).code(), StatusCode::kInvalidArgument);
}

TEST(VisionOps, GeluIsTheExactErfFormWithBias) {
    const int64_t T = 5, W = 64;
    auto x = randn(T * W, 4, 3.0f), b = randn(W, 5);
    std::vector<float> out(T * W);
    GeluParams p;
    p.rows = T; p.width = W; p.x = x.data(); p.bias = b.data(); p.out = out.data();
    ASSERT_TRUE(cpu::gelu(p));
    std::vector<double> ref(T * W);
    for (int64_t i = 0; i < T * W; ++i) {
        const double v = double(x[i]) + b[i % W];
        ref[i] = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    }
    EXPECT_LT(max_rel(out, ref), 1e-6);
    // quick_gelu (x * sigmoid(1.702 x)) differs from it by far more than that at x = -1.
    const double quick = -1.0 / (1 + std::exp(1.702)), exact = 0.5 * -1.0 * (1 + std::erf(-1.0 / std::sqrt(2.0)));
    EXPECT_GT(std::fabs(quick - exact), 1e-3);
}

TEST(VisionOps, PatchEmbedEqualsTheConvolution) {
    const int64_t B = 2, C = 3, S = 28, P = 14, D = 10, G = S / P, N = G * G;
    auto px = randn(B * C * S * S, 6), w = randn(D * C * P * P, 7, 0.1f);
    std::vector<float> out(B * N * D);
    PatchEmbedParams p;
    p.batch = B; p.channels = C; p.image_size = S; p.patch = P; p.hidden = D; p.pixels = px.data(); p.weight = w.data();
    p.out = out.data(); p.out_stride = D; p.out_batch_stride = N * D;
    ASSERT_TRUE(cpu::patch_embed(p));
    std::vector<double> ref(B * N * D, 0.0);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t d = 0; d < D; ++d) {
                double s = 0;
                for (int64_t c = 0; c < C; ++c)
                    for (int64_t i = 0; i < P; ++i)
                        for (int64_t j = 0; j < P; ++j)
                            s += double(w[((d * C + c) * P + i) * P + j]) *
                                 px[((b * C + c) * S + (n / G) * P + i) * S + (n % G) * P + j];
                ref[(b * N + n) * D + d] = s;
            }
    EXPECT_LT(max_rel(out, ref), 1e-5);
    p.image_size = 27;
    EXPECT_EQ(cpu::patch_embed(p).code(), StatusCode::kInvalidArgument);
}

TEST(VisionOps, EncoderAttentionIsBidirectionalPerSequence) {
    const int64_t B = 2, T = 19, H = 3, D = 8, W = H * D;
    auto qkv = randn(B * T * 3 * W, 8);  // fused [B, T, 3W] like the tower's buffer
    std::vector<float> out(B * T * W);
    EncoderAttentionParams p;
    p.batch = B; p.tokens = T; p.heads = H; p.head_dim = D; p.scale = 1.0f / std::sqrt(float(D));
    p.q = qkv.data(); p.k = qkv.data() + W; p.v = qkv.data() + 2 * W;
    p.qkv_token_stride = 3 * W; p.qkv_batch_stride = T * 3 * W;
    p.o = out.data(); p.o_token_stride = W; p.o_batch_stride = T * W;
    ASSERT_TRUE(cpu::encoder_attention(p));
    std::vector<double> ref(B * T * W);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t t = 0; t < T; ++t) {
                std::vector<double> s(T);
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j < T; ++j) {
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d)
                        dot += double(qkv[(b * T + t) * 3 * W + h * D + d]) * qkv[(b * T + j) * 3 * W + W + h * D + d];
                    s[j] = dot / std::sqrt(double(D));
                    mx = std::max(mx, s[j]);
                }
                for (auto& v : s) sum += (v = std::exp(v - mx));
                for (int64_t d = 0; d < D; ++d) {
                    double o = 0;
                    for (int64_t j = 0; j < T; ++j) o += s[j] / sum * qkv[(b * T + j) * 3 * W + 2 * W + h * D + d];
                    ref[(b * T + t) * W + h * D + d] = o;
                }
            }
    EXPECT_LT(max_rel(out, ref), 1e-5);
}

}  // namespace
}  // namespace volt
