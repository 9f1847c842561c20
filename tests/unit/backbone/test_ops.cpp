// CPU ops of the backbone against straightforward fp64 loops written from the formulas in the op headers.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/lightning_attention.h"
#include "kernels/moe.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "sdk/dtype.h"

namespace volt {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

double max_rel(const std::vector<float>& got, const std::vector<double>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        num = std::max(num, std::abs(got[i] - want[i]));
        den = std::max(den, std::abs(want[i]));
    }
    return num / std::max(den, 1e-30);
}

// ---- gemm ----------------------------------------------------------------------------------------------------------

void check_gemm(int64_t M, int64_t N, int64_t K, bool bt, float beta) {
    auto a = randn(M * K, 1), b = randn(N * K, 2), c = randn(M * N, 3);
    std::vector<double> want(M * N);
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k) s += double(a[i * K + k]) * (bt ? b[j * K + k] : b[k * N + j]);
            want[i * N + j] = 0.5 * s + beta * c[i * N + j];
        }
    ASSERT_TRUE(cpu::gemm({.m = M, .n = N, .k = K, .a = a.data(), .lda = K, .b = b.data(), .ldb = bt ? K : N,
                           .b_transposed = bt, .c = c.data(), .ldc = N, .alpha = 0.5f, .beta = beta})
                    .is_ok());
    EXPECT_LT(max_rel(c, want), 1e-5) << M << "x" << N << "x" << K << " bt=" << bt;
}

TEST(Gemm, MatchesNaiveProduct) {
    check_gemm(7, 33, 65, true, 0.0f);
    check_gemm(64, 96, 64, true, 1.0f);
    check_gemm(5, 17, 9, false, 0.25f);
}

TEST(Gemm, SingleRowUsesGemvAndMatches) {
    check_gemm(1, 300, 70, true, 0.0f);
    check_gemm(1, 31, 40, false, 1.0f);
}

TEST(Gemm, CountsBlasTime) {
    cpu::reset_blas_stats();
    check_gemm(8, 8, 8, true, 0.0f);
    EXPECT_EQ(cpu::blas_stats().calls, 1);
    EXPECT_DOUBLE_EQ(cpu::blas_stats().flops, 2.0 * 8 * 8 * 8);
}

TEST(Gemm, RejectsBadStrides) {
    std::vector<float> a(16), b(16), c(16);
    Status st = cpu::gemm({.m = 4, .n = 4, .k = 4, .a = a.data(), .lda = 2, .b = b.data(), .ldb = 4, .c = c.data(), .ldc = 4});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("lda"), std::string::npos);
}

// ---- rms_norm ------------------------------------------------------------------------------------------------------

TEST(RmsNorm, PlainAndWithDeepNormResidual) {
    const int64_t T = 5, W = 70;
    auto x = randn(T * W, 4), r = randn(T * W, 5), w = randn(W, 6);
    const float alpha = 3.5565588f, beta = 0.75f, eps = 1e-5f;
    for (bool with_res : {false, true}) {
        std::vector<float> out(T * W), sum(T * W);
        std::vector<double> want(T * W), want_sum(T * W);
        for (int64_t t = 0; t < T; ++t) {
            double ss = 0;
            for (int64_t i = 0; i < W; ++i) {
                const double s = with_res ? double(alpha) * r[t * W + i] + double(beta) * x[t * W + i] : x[t * W + i];
                want_sum[t * W + i] = s;
                ss += s * s;
            }
            const double inv = 1.0 / std::sqrt(ss / W + eps);
            for (int64_t i = 0; i < W; ++i) want[t * W + i] = w[i] * want_sum[t * W + i] * inv;
        }
        RmsNormParams p{.num_tokens = T, .width = W, .x = x.data(), .x_stride = W, .x_beta = beta,
                        .weight = w.data(), .eps = eps, .out = out.data(), .out_stride = W,
                        .sum_out = sum.data(), .sum_stride = W};
        if (with_res) p.residual = r.data(), p.residual_stride = W, p.residual_alpha = alpha;
        ASSERT_TRUE(cpu::rms_norm(p).is_ok());
        EXPECT_LT(max_rel(out, want), 1e-6);
        EXPECT_LT(max_rel(sum, want_sum), 1e-6);
    }
}

// ---- rope ----------------------------------------------------------------------------------------------------------

TEST(Rope, RotatesOnlyRotaryDimsWithHalfSplitPairs) {
    const int64_t T = 9, H = 3, D = 16, R = 8, start = 1000;
    const double theta = 1e7;
    auto x = randn(T * H * D, 7);
    const auto orig = x;
    std::vector<double> want(orig.begin(), orig.end());
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < R / 2; ++i) {
                const double a = double(start + t) * std::pow(theta, -2.0 * i / R);
                const size_t b = (t * H + h) * D;
                const double x1 = orig[b + i], x2 = orig[b + i + R / 2];
                want[b + i] = x1 * std::cos(a) - x2 * std::sin(a);
                want[b + i + R / 2] = x2 * std::cos(a) + x1 * std::sin(a);
            }
    ASSERT_TRUE(cpu::rope({.num_tokens = T, .num_heads = H, .head_dim = D, .rotary_dim = R, .theta = theta,
                           .start_position = start, .x = x.data(), .stride_token = H * D, .stride_head = D})
                    .is_ok());
    // fp32 angles at position ~1000 carry ~1e-4 rad of rounding, as in the reference implementation.
    EXPECT_LT(max_rel(x, want), 5e-4);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t d = R; d < D; ++d) EXPECT_EQ(x[(t * H + h) * D + d], orig[(t * H + h) * D + d]);
}

TEST(Rope, RejectsOddRotaryDim) {
    float x[8] = {};
    EXPECT_EQ(cpu::rope({.num_tokens = 1, .num_heads = 1, .head_dim = 8, .rotary_dim = 3, .x = x}).code(),
              StatusCode::kInvalidArgument);
}

// ---- attention -----------------------------------------------------------------------------------------------------

TEST(Attention, CausalGqaWithCacheMatchesNaive) {
    const int64_t P = 37, T = 11, Hq = 8, Hkv = 2, D = 24, S = P + T;
    auto q = randn(T * Hq * D, 8), k = randn(S * Hkv * D, 9), v = randn(S * Hkv * D, 10);
    const double scale = 1.0 / std::sqrt(double(D));
    std::vector<double> want(T * Hq * D, 0.0);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < Hq; ++h) {
            const int64_t g = h / (Hq / Hkv), n = P + t + 1;
            std::vector<double> s(n);
            double mx = -1e300, sum = 0;
            for (int64_t j = 0; j < n; ++j) {
                double d = 0;
                for (int64_t e = 0; e < D; ++e) d += double(q[(t * Hq + h) * D + e]) * k[(j * Hkv + g) * D + e];
                s[j] = d * scale;
                mx = std::max(mx, s[j]);
            }
            for (auto& e : s) sum += e = std::exp(e - mx);
            for (int64_t j = 0; j < n; ++j)
                for (int64_t e = 0; e < D; ++e) want[(t * Hq + h) * D + e] += s[j] / sum * v[(j * Hkv + g) * D + e];
        }
    std::vector<float> o(T * Hq * D);
    ASSERT_TRUE(cpu::attention({.num_tokens = T, .past_len = P, .num_heads = Hq, .num_kv_heads = Hkv, .head_dim = D,
                                .scale = float(scale), .q = q.data(), .q_stride_token = Hq * D, .q_stride_head = D,
                                .k = k.data(), .k_stride_token = Hkv * D, .k_stride_head = D, .v = v.data(),
                                .v_stride_token = Hkv * D, .v_stride_head = D, .o = o.data(),
                                .o_stride_token = Hq * D, .o_stride_head = D})
                    .is_ok());
    EXPECT_LT(max_rel(o, want), 1e-5);
}

TEST(Attention, RejectsKvHeadsThatDoNotDivide) {
    float x[64] = {};
    Status st = cpu::attention({.num_tokens = 1, .num_heads = 4, .num_kv_heads = 3, .head_dim = 4, .scale = 0.5f,
                                .q = x, .k = x, .v = x, .o = x});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
}

// ---- moe -----------------------------------------------------------------------------------------------------------

TEST(MoeRoute, TopKOfSoftmaxRenormalised) {
    const float logits[2 * 4] = {0.1f, 2.0f, -1.0f, 1.5f,   // top-2: 1, 3
                                 3.0f, 3.0f, 0.0f, 3.0f};   // ties: lowest indices first
    int32_t ids[4];
    float w[4];
    ASSERT_TRUE(cpu::moe_route({.num_tokens = 2, .num_experts = 4, .top_k = 2, .logits = logits,
                                .logits_stride = 4, .expert_ids = ids, .weights = w})
                    .is_ok());
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(ids[1], 3);
    const double e1 = std::exp(2.0), e3 = std::exp(1.5);
    EXPECT_NEAR(w[0], e1 / (e1 + e3), 1e-6);
    EXPECT_NEAR(w[1], e3 / (e1 + e3), 1e-6);
    EXPECT_EQ(ids[2], 0);
    EXPECT_EQ(ids[3], 1);
    EXPECT_NEAR(w[2], 0.5, 1e-6);
}

TEST(MoeExperts, SwigluExpertsMatchNaive) {
    const int64_t T = 13, H = 24, I = 40;
    const int E = 5, k = 2;
    auto x = randn(T * H, 11);
    std::vector<std::vector<float>> w1, w3, w2;
    std::vector<const float*> p1, p3, p2;
    for (int e = 0; e < E; ++e) {
        w1.push_back(randn(I * H, 20 + e, 0.2f));
        w3.push_back(randn(I * H, 40 + e, 0.2f));
        w2.push_back(randn(H * I, 60 + e, 0.2f));
        p1.push_back(w1.back().data()), p3.push_back(w3.back().data()), p2.push_back(w2.back().data());
    }
    std::vector<int32_t> ids(T * k);
    std::vector<float> wt(T * k);
    std::mt19937 g(3);
    for (int64_t t = 0; t < T; ++t) {
        ids[t * k] = static_cast<int32_t>(g() % E);
        ids[t * k + 1] = static_cast<int32_t>((ids[t * k] + 1 + g() % (E - 1)) % E);
        wt[t * k] = 0.3f + 0.01f * t;
        wt[t * k + 1] = 1.0f - wt[t * k];
    }
    std::vector<double> want(T * H, 0.0);
    for (int64_t t = 0; t < T; ++t)
        for (int j = 0; j < k; ++j) {
            const int e = ids[t * k + j];
            std::vector<double> hmid(I);
            for (int64_t i = 0; i < I; ++i) {
                double a = 0, b = 0;
                for (int64_t c = 0; c < H; ++c) a += double(w1[e][i * H + c]) * x[t * H + c], b += double(w3[e][i * H + c]) * x[t * H + c];
                hmid[i] = a / (1 + std::exp(-a)) * b;
            }
            for (int64_t c = 0; c < H; ++c) {
                double s = 0;
                for (int64_t i = 0; i < I; ++i) s += double(w2[e][c * I + i]) * hmid[i];
                want[t * H + c] += wt[t * k + j] * s;
            }
        }
    std::vector<float> out(T * H);
    ASSERT_TRUE(cpu::moe_experts({.num_tokens = T, .hidden = H, .intermediate = I, .num_experts = E, .top_k = k,
                                  .x = x.data(), .expert_ids = ids.data(), .weights = wt.data(), .w1 = p1.data(),
                                  .w3 = p3.data(), .w2 = p2.data(), .out = out.data()})
                    .is_ok());
    EXPECT_LT(max_rel(out, want), 1e-5);
    ids[3] = E;  // out of range
    EXPECT_EQ(cpu::moe_experts({.num_tokens = T, .hidden = H, .intermediate = I, .num_experts = E, .top_k = k,
                                .x = x.data(), .expert_ids = ids.data(), .weights = wt.data(), .w1 = p1.data(),
                                .w3 = p3.data(), .w2 = p2.data(), .out = out.data()})
                  .code(),
              StatusCode::kInvalidArgument);
}

// ---- embedding -----------------------------------------------------------------------------------------------------

TEST(Embedding, Bf16RowsWidenExactlyAndIdsAreChecked) {
    const int64_t V = 6, H = 5;
    auto f = randn(V * H, 12);
    std::vector<uint16_t> table(V * H);
    for (size_t i = 0; i < table.size(); ++i) table[i] = f32_to_bf16(f[i]);
    const int32_t ids[3] = {5, 0, 5};
    std::vector<float> out(3 * H);
    ASSERT_TRUE(cpu::embedding({.num_tokens = 3, .ids = ids, .vocab_size = V, .hidden = H, .table = table.data(),
                                .table_dtype = DType::kBF16, .out = out.data(), .out_stride = H})
                    .is_ok());
    for (int64_t i = 0; i < H; ++i) {
        EXPECT_EQ(out[i], bf16_to_f32(table[5 * H + i]));
        EXPECT_EQ(out[H + i], bf16_to_f32(table[i]));
    }
    const int32_t bad[2] = {1, 6};
    Status st = cpu::embedding({.num_tokens = 2, .ids = bad, .vocab_size = V, .hidden = H, .table = table.data(),
                                .table_dtype = DType::kBF16, .out = out.data(), .out_stride = H});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("token id 6 at position 1"), std::string::npos) << st.message();
}

// ---- lightning attention: chunked prefill == the pure recurrence ---------------------------------------------------

// Runs the op's prefill over T tokens from a random initial state, and the same tokens one decode step at a time,
// then compares outputs and final states. T crosses the 256-token block boundary.
void check_chunked_equals_recurrence(int64_t T, int H, int D) {
    const int64_t W = int64_t(H) * D;
    auto qkv = randn(T * 3 * W, 100 + T, 0.5f);  // pre-SiLU projections, per-head interleaved [q|k|v]
    auto s0 = randn(int64_t(H) * D * D, 7, 0.1f);
    const auto slopes = lightning_decay_slopes(2, 8, H);
    std::vector<float> o_chunk(T * W), o_rec(T * W), s_chunk = s0, s_rec = s0;
    LightningAttentionParams p;
    p.dtype = DType::kF32;
    p.silu_inputs = true;
    p.num_heads = H;
    p.head_dim = D;
    p.q_stride_token = p.k_stride_token = p.v_stride_token = 3 * W;
    p.q_stride_head = p.k_stride_head = p.v_stride_head = 3 * D;
    p.o_stride_token = W;
    p.o_stride_head = D;
    p.slope = slopes.data();
    p.num_seqs = 1;
    // Chunked prefill.
    p.phase = LightningPhase::kPrefill;
    p.num_tokens = T;
    p.q = qkv.data(), p.k = qkv.data() + D, p.v = qkv.data() + 2 * D, p.o = o_chunk.data();
    p.state_in = s_chunk.data(), p.state_out = s_chunk.data();
    ASSERT_TRUE(cpu::lightning_attention(p).is_ok());
    // Token by token.
    p.phase = LightningPhase::kDecode;
    p.num_tokens = 1;
    p.state_in = s_rec.data(), p.state_out = s_rec.data();
    for (int64_t t = 0; t < T; ++t) {
        const float* row = qkv.data() + t * 3 * W;
        p.q = row, p.k = row + D, p.v = row + 2 * D, p.o = o_rec.data() + t * W;
        ASSERT_TRUE(cpu::lightning_attention(p).is_ok());
    }
    std::vector<double> o_ref(o_rec.begin(), o_rec.end()), s_ref(s_rec.begin(), s_rec.end());
    EXPECT_LT(max_rel(o_chunk, o_ref), 1e-5) << "T=" << T;
    EXPECT_LT(max_rel(s_chunk, s_ref), 1e-5) << "T=" << T;
}

TEST(LightningAttention, ChunkedPrefillEqualsRecurrenceAcrossBlocks) {
    for (int64_t T : {1, 255, 256, 257, 600}) check_chunked_equals_recurrence(T, 4, 16);
}

// ---- sampling ------------------------------------------------------------------------------------------------------

TEST(Sampling, GreedyAndFiltersThatLeaveOneTokenPickTheArgmax) {
    const std::vector<float> l = {0.5f, 2.0f, 1.9f, -1.0f, 2.0f};
    auto pick = [&](SamplingParams s, double u) {
        auto r = cpu::sample({.logits = l.data(), .vocab_size = 5, .sampling = s, .uniform = u});
        EXPECT_TRUE(r.has_value()) << r.status().to_string();
        return r.has_value() ? *r : -1;
    };
    EXPECT_EQ(pick({.temperature = 0}, 0.9), 1);  // ties: the lower id
    EXPECT_EQ(pick({.top_k = 1}, 0.999), 1);
    EXPECT_EQ(pick({.top_p = 1e-6f}, 0.999), 1);
    // min_p = 1 keeps only the most probable ids: here the two tied at the top.
    EXPECT_EQ(pick({.min_p = 1.0f}, 0.2), 1);
    EXPECT_EQ(pick({.min_p = 1.0f}, 0.8), 4);
    // top_k = 2 keeps ids 1 and 4 (equal logits): u below one half -> 1, above -> 4.
    EXPECT_EQ(pick({.top_k = 2}, 0.49), 1);
    EXPECT_EQ(pick({.top_k = 2}, 0.51), 4);
}

TEST(Sampling, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
    const std::vector<float> l = {1.0f, 1.2f, -0.5f};
    const int32_t hist[2] = {1, 1};
    auto r = cpu::sample({.logits = l.data(), .vocab_size = 3, .sampling = {.temperature = 0, .repetition_penalty = 1.5f},
                          .history = hist, .history_len = 2});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, 0);  // 1.2 / 1.5 = 0.8 < 1.0
}

// The record of a sequence's ids the GPU sampler reads instead of its history: one bit per distinct id in range.
TEST(Sampling, RecordIdsSetsOneBitPerDistinctIdInRange) {
    const int64_t V = 70;  // three words, the last partly used
    std::vector<uint32_t> bits(3, 0);
    const std::vector<int32_t> ids = {0, 31, 32, 69, 5, 5, -1, 70, 1000};
    cpu::record_ids(ids, V, bits.data());
    EXPECT_EQ(bits[0], (1u << 0) | (1u << 5) | (1u << 31));
    EXPECT_EQ(bits[1], 1u << 0);
    EXPECT_EQ(bits[2], 1u << (69 - 64));
    // The penalty over a history equals the penalty over the ids its record holds.
    std::mt19937 g(7);
    std::uniform_int_distribution<int32_t> uid(0, int32_t(V) - 1);
    std::vector<int32_t> hist(40);
    for (auto& id : hist) id = uid(g);
    std::vector<uint32_t> rec(3, 0);
    cpu::record_ids(hist, V, rec.data());
    std::vector<int32_t> from_record;
    for (int32_t id = 0; id < V; ++id)
        if (rec[size_t(id) >> 5] >> (id & 31) & 1u) from_record.push_back(id);
    const std::vector<float> l = randn(size_t(V), 8);
    for (double u : {0.1, 0.5, 0.9}) {
        const SamplingParams s{.temperature = 0.8f, .top_k = 20, .repetition_penalty = 1.4f};
        auto a = cpu::sample({.logits = l.data(), .vocab_size = V, .sampling = s, .history = hist.data(),
                              .history_len = int64_t(hist.size()), .uniform = u});
        auto b = cpu::sample({.logits = l.data(), .vocab_size = V, .sampling = s, .history = from_record.data(),
                              .history_len = int64_t(from_record.size()), .uniform = u});
        ASSERT_TRUE(a && b);
        EXPECT_EQ(*a, *b) << "u = " << u;
    }
}

TEST(Sampling, DrawsFollowTheTemperedDistribution) {
    const std::vector<float> l = {0.0f, std::log(3.0f)};  // p = 1/4, 3/4 at temperature 1
    int ones = 0;
    const int n = 1000;
    for (int i = 0; i < n; ++i) {
        auto r = cpu::sample({.logits = l.data(), .vocab_size = 2, .sampling = {}, .uniform = (i + 0.5) / n});
        ASSERT_TRUE(r.has_value());
        ones += *r;
    }
    EXPECT_EQ(ones, 750);  // candidates sorted by probability: id 1 owns [0, 0.75) of the CDF
    ones = 0;
    for (int i = 0; i < n; ++i)
        ones += *cpu::sample({.logits = l.data(), .vocab_size = 2, .sampling = {.temperature = 2.0f}, .uniform = (i + 0.5) / n});
    // temperature 2: p1 = sqrt(3) / (1 + sqrt(3)) = 0.63397 -> id 1 takes draws 0..633 of the evenly spaced ones
    EXPECT_EQ(ones, 634);
}

TEST(Sampling, RejectsOutOfRangeOptions) {
    EXPECT_EQ(validate(SamplingParams{.temperature = -1}).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(validate(SamplingParams{.top_p = 0}).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(validate(SamplingParams{.min_p = 1.5f}).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(validate(SamplingParams{.repetition_penalty = 0}).code(), StatusCode::kInvalidArgument);
    EXPECT_NE(validate(SamplingParams{.top_k = -2}).message().find("top_k"), std::string::npos);
}

}  // namespace
}  // namespace volt
