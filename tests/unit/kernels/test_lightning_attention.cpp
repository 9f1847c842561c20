// CPU twin of lightning attention against the float64 token-by-token recurrence: chunked prefill across block
// boundaries (255/256/257), ragged batches, initial states and state slots, prefill + decode == one prefill, prefix
// continuation, the fused qkv layout with SiLU on load, bf16 I/O, the decay-slope rule and the norm+gate epilogue.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/lightning_attention.h"
#include "sdk/dtype.h"
#include "tests/unit/kernels/lightning_reference.h"

namespace volt {
namespace {

using test::rel_error;

constexpr int kD = 128;

// A packed batch with separate q/k/v buffers [T, H, D] in fp32.
struct Batch {
    int H = 0;
    std::vector<int32_t> cu{0};
    std::vector<float> q, k, v, slopes;
    int64_t T() const { return cu.back(); }
    int N() const { return static_cast<int>(cu.size()) - 1; }
};

Batch make_batch(const std::vector<int>& lens, int H, std::mt19937_64& rng) {
    Batch b;
    b.H = H;
    for (int l : lens) b.cu.push_back(b.cu.back() + l);
    const size_t n = static_cast<size_t>(b.T()) * H * kD;
    // Scale 0.5 keeps the long-window heads' outputs O(10..100) rather than O(1e3): the test is about structure.
    b.q = test::random_activations(n, rng, 0.5f);
    b.k = test::random_activations(n, rng, 0.5f);
    b.v = test::random_activations(n, rng, 0.5f);
    // Real slopes of a mid layer plus one strong decay (lambda ~ 0.4, the layer-0 head-0 value).
    b.slopes = lightning_decay_slopes(40, 80, H);
    b.slopes[0] = lightning_decay_slope(0, 80, 0, 64);
    return b;
}

LightningAttentionParams params_for(const Batch& b, std::vector<float>& o, LightningPhase phase) {
    LightningAttentionParams p;
    p.phase = phase;
    p.dtype = DType::kF32;
    p.num_tokens = b.T();
    p.num_seqs = b.N();
    p.num_heads = b.H;
    p.head_dim = kD;
    p.q = b.q.data();
    p.k = b.k.data();
    p.v = b.v.data();
    o.assign(b.q.size(), NAN);  // poison: every element must be written
    p.o = o.data();
    p.q_stride_token = p.k_stride_token = p.v_stride_token = p.o_stride_token = int64_t{b.H} * kD;
    p.q_stride_head = p.k_stride_head = p.v_stride_head = p.o_stride_head = kD;
    p.cu_seqlens = phase == LightningPhase::kPrefill ? b.cu.data() : nullptr;
    p.slope = b.slopes.data();
    return p;
}

// Float64 recurrence of sequence n, head h of `b`, from state S (updated).
std::vector<double> reference(const Batch& b, int n, int h, std::vector<double>& S) {
    const int64_t t0 = b.cu[n], len = b.cu[n + 1] - t0;
    std::vector<double> q(len * kD), k(len * kD), v(len * kD), o;
    for (int64_t t = 0; t < len; ++t)
        for (int d = 0; d < kD; ++d) {
            const size_t src = ((t0 + t) * b.H + h) * kD + d;
            q[t * kD + d] = b.q[src];
            k[t * kD + d] = b.k[src];
            v[t * kD + d] = b.v[src];
        }
    test::lightning_recurrence_f64(q, k, v, len, kD, b.slopes[h], S, o);
    return o;
}

// Gathers sequence n, head h of a [T, H, D] output.
std::vector<float> gather(const Batch& b, const std::vector<float>& o, int n, int h) {
    std::vector<float> out;
    for (int64_t t = b.cu[n]; t < b.cu[n + 1]; ++t)
        for (int d = 0; d < kD; ++d) out.push_back(o[(t * b.H + h) * kD + d]);
    return out;
}

TEST(LightningAttentionCpu, ChunkedPrefillMatchesRecurrenceAcrossBlockBoundaries) {
    std::mt19937_64 rng(1);
    const Batch b = make_batch({1, 255, 256, 257, 513}, 2, rng);
    std::vector<float> o;
    std::vector<float> state(static_cast<size_t>(b.N()) * b.H * kD * kD, NAN);
    LightningAttentionParams p = params_for(b, o, LightningPhase::kPrefill);
    p.state_out = state.data();
    ASSERT_TRUE(cpu::lightning_attention(p).is_ok());
    for (int n = 0; n < b.N(); ++n)
        for (int h = 0; h < b.H; ++h) {
            std::vector<double> S(kD * kD, 0.0);
            const auto ref = reference(b, n, h, S);
            EXPECT_LT(rel_error(gather(b, o, n, h), ref), 1e-5) << "seq " << n << " head " << h;
            const float* st = &state[(static_cast<size_t>(n) * b.H + h) * kD * kD];
            EXPECT_LT(rel_error(std::vector<float>(st, st + kD * kD), S), 1e-5) << "state seq " << n << " head " << h;
        }
}

TEST(LightningAttentionCpu, InitialStateThroughSlots) {
    std::mt19937_64 rng(2);
    const Batch b = make_batch({100, 300}, 2, rng);
    const int slots = 3;
    const size_t per_slot = static_cast<size_t>(b.H) * kD * kD;
    std::vector<float> state_in = test::random_activations(slots * per_slot, rng);
    std::vector<float> state_out(slots * per_slot, -7.0f);  // slot 1 is nobody's and must stay untouched
    const std::vector<int32_t> slot_of = {2, 0};
    std::vector<float> o;
    LightningAttentionParams p = params_for(b, o, LightningPhase::kPrefill);
    p.state_slots = slot_of.data();
    p.state_in = state_in.data();
    p.state_out = state_out.data();
    ASSERT_TRUE(cpu::lightning_attention(p).is_ok());
    for (int n = 0; n < b.N(); ++n)
        for (int h = 0; h < b.H; ++h) {
            const size_t off = slot_of[n] * per_slot + static_cast<size_t>(h) * kD * kD;
            std::vector<double> S(state_in.begin() + off, state_in.begin() + off + kD * kD);
            const auto ref = reference(b, n, h, S);
            EXPECT_LT(rel_error(gather(b, o, n, h), ref), 1e-5);
            EXPECT_LT(rel_error(std::vector<float>(&state_out[off], &state_out[off] + kD * kD), S), 1e-5);
        }
    for (size_t i = per_slot; i < 2 * per_slot; ++i) ASSERT_EQ(state_out[i], -7.0f) << "unused slot written";
}

TEST(LightningAttentionCpu, PrefillThenDecodeEqualsOneLongPrefill) {
    std::mt19937_64 rng(3);
    const int prompt = 257, steps = 4, H = 2;
    const Batch whole = make_batch({prompt + steps}, H, rng);
    std::vector<float> o_whole, state_whole(static_cast<size_t>(H) * kD * kD);
    LightningAttentionParams pw = params_for(whole, o_whole, LightningPhase::kPrefill);
    pw.state_out = state_whole.data();
    ASSERT_TRUE(cpu::lightning_attention(pw).is_ok());

    // The prompt alone, then one decode call per token on the same (in-place) state.
    Batch head = whole;
    head.cu = {0, prompt};
    std::vector<float> o_head, state(static_cast<size_t>(H) * kD * kD);
    LightningAttentionParams pp = params_for(head, o_head, LightningPhase::kPrefill);
    pp.state_out = state.data();
    ASSERT_TRUE(cpu::lightning_attention(pp).is_ok());
    const size_t row = static_cast<size_t>(H) * kD;
    for (int s = 0; s < steps; ++s) {
        const size_t t = prompt + s;
        Batch step;
        step.H = H;
        step.cu = {0, 1};
        step.q.assign(whole.q.begin() + t * row, whole.q.begin() + (t + 1) * row);
        step.k.assign(whole.k.begin() + t * row, whole.k.begin() + (t + 1) * row);
        step.v.assign(whole.v.begin() + t * row, whole.v.begin() + (t + 1) * row);
        step.slopes = whole.slopes;
        std::vector<float> o_step;
        LightningAttentionParams pd = params_for(step, o_step, LightningPhase::kDecode);
        pd.state_in = state.data();
        pd.state_out = state.data();
        ASSERT_TRUE(cpu::lightning_attention(pd).is_ok());
        EXPECT_LT(rel_error(o_step, std::vector<float>(o_whole.begin() + t * row, o_whole.begin() + (t + 1) * row)),
                  1e-5)
            << "decode step " << s;
    }
    EXPECT_LT(rel_error(state, state_whole), 1e-5);
}

TEST(LightningAttentionCpu, PrefixContinuationEqualsOnePrefill) {
    std::mt19937_64 rng(4);
    const int first = 200, rest = 313, H = 2;
    const Batch whole = make_batch({first + rest}, H, rng);
    std::vector<float> o_whole, s_whole(static_cast<size_t>(H) * kD * kD);
    LightningAttentionParams pw = params_for(whole, o_whole, LightningPhase::kPrefill);
    pw.state_out = s_whole.data();
    ASSERT_TRUE(cpu::lightning_attention(pw).is_ok());

    const size_t row = static_cast<size_t>(H) * kD;
    Batch a = whole, c = whole;
    a.cu = {0, first};
    c.cu = {0, rest};
    for (auto* vec : {&c.q, &c.k, &c.v}) vec->erase(vec->begin(), vec->begin() + first * row);
    std::vector<float> o_a, o_c, state(s_whole.size());
    LightningAttentionParams pa = params_for(a, o_a, LightningPhase::kPrefill);
    pa.num_tokens = first;
    pa.state_out = state.data();
    ASSERT_TRUE(cpu::lightning_attention(pa).is_ok());
    LightningAttentionParams pc = params_for(c, o_c, LightningPhase::kPrefill);
    pc.state_in = state.data();
    pc.state_out = state.data();
    ASSERT_TRUE(cpu::lightning_attention(pc).is_ok());
    EXPECT_LT(rel_error(o_c, std::vector<float>(o_whole.begin() + first * row, o_whole.end())), 1e-5);
    EXPECT_LT(rel_error(state, s_whole), 1e-5);
}

// The weakest decay of the model (last layer, lambda = 0.99995) over 30K decode steps: the steady state amplifies any
// bias of lambda by 1 / (1 - lambda) = 2e4, so fp32 lambda * S would drift ~1e-3 from float64; S - mu S must not.
TEST(LightningAttentionCpu, LongDecodeWithWeakDecayTracksFloat64) {
    const int D = 32, steps = 30000;
    std::mt19937_64 rng(8);
    const std::vector<float> q = test::random_activations(static_cast<size_t>(steps) * D, rng),
                             k = test::random_activations(static_cast<size_t>(steps) * D, rng),
                             v = test::random_activations(static_cast<size_t>(steps) * D, rng);
    const float slope = lightning_decay_slope(78, 80, 63, 64);
    std::vector<float> state(D * D, 0.0f), o(static_cast<size_t>(steps) * D, NAN);
    LightningAttentionParams p;
    p.phase = LightningPhase::kDecode;
    p.dtype = DType::kF32;
    p.num_tokens = p.num_seqs = p.num_heads = 1;
    p.head_dim = D;
    p.q_stride_token = p.k_stride_token = p.v_stride_token = p.o_stride_token = D;
    p.q_stride_head = p.k_stride_head = p.v_stride_head = p.o_stride_head = D;
    p.slope = &slope;
    p.state_in = p.state_out = state.data();
    for (int t = 0; t < steps; ++t) {
        p.q = &q[static_cast<size_t>(t) * D];
        p.k = &k[static_cast<size_t>(t) * D];
        p.v = &v[static_cast<size_t>(t) * D];
        p.o = &o[static_cast<size_t>(t) * D];
        ASSERT_TRUE(cpu::lightning_attention(p).is_ok());
    }
    std::vector<double> S(D * D, 0.0), ref;
    std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end());
    test::lightning_recurrence_f64(qd, kd, vd, steps, D, slope, S, ref);
    EXPECT_LT(rel_error(state, S), 1e-4);
    EXPECT_LT(rel_error(o, ref), 1e-4);
}

TEST(LightningAttentionCpu, FusedQkvLayoutWithSiluAndBf16) {
    std::mt19937_64 rng(5);
    const int T = 300, H = 3;
    // Raw projection output [T, H, 3D] (q_h | k_h | v_h per head), values representable in bf16.
    std::normal_distribution<float> nd(0.0f, 0.6f);
    std::vector<float> qkv(static_cast<size_t>(T) * H * 3 * kD);
    for (auto& e : qkv) e = bf16_to_f32(f32_to_bf16(nd(rng)));
    std::vector<uint16_t> qkv_bf16(qkv.size());
    for (size_t i = 0; i < qkv.size(); ++i) qkv_bf16[i] = f32_to_bf16(qkv[i]);

    // Reference: SiLU applied outside, separate contiguous q/k/v.
    Batch b;
    b.H = H;
    b.cu = {0, T};
    b.slopes = lightning_decay_slopes(10, 80, H);
    for (int t = 0; t < T; ++t)
        for (int h = 0; h < H; ++h)
            for (int part = 0; part < 3; ++part)
                for (int d = 0; d < kD; ++d) {
                    const float x = qkv[((static_cast<size_t>(t) * H + h) * 3 + part) * kD + d];
                    (part == 0 ? b.q : part == 1 ? b.k : b.v).push_back(x / (1.0f + std::exp(-x)));
                }
    std::vector<float> o_ref;
    LightningAttentionParams pr = params_for(b, o_ref, LightningPhase::kPrefill);
    ASSERT_TRUE(cpu::lightning_attention(pr).is_ok());

    for (DType dt : {DType::kF32, DType::kBF16}) {
        LightningAttentionParams p = pr;
        p.dtype = dt;
        p.silu_inputs = true;
        const void* base = dt == DType::kF32 ? static_cast<const void*>(qkv.data()) : qkv_bf16.data();
        const size_t esz = dt == DType::kF32 ? 4 : 2;
        p.q = base;
        p.k = static_cast<const char*>(base) + kD * esz;
        p.v = static_cast<const char*>(base) + 2 * kD * esz;
        p.q_stride_token = p.k_stride_token = p.v_stride_token = int64_t{3} * H * kD;
        p.q_stride_head = p.k_stride_head = p.v_stride_head = 3 * kD;
        std::vector<float> o32(o_ref.size(), NAN);
        std::vector<uint16_t> o16(o_ref.size(), 0x7fc0);  // bf16 NaN
        p.o = dt == DType::kF32 ? static_cast<void*>(o32.data()) : o16.data();
        ASSERT_TRUE(cpu::lightning_attention(p).is_ok());
        if (dt == DType::kBF16)
            for (size_t i = 0; i < o16.size(); ++i) o32[i] = bf16_to_f32(o16[i]);
        // fp32: identical arithmetic; bf16: inputs are widened exactly and SiLU runs in fp32, so only the final
        // bf16 rounding of o (~2^-9 relative per element) remains.
        EXPECT_LT(rel_error(o32, o_ref), dt == DType::kF32 ? 1e-6 : 4e-3) << dtype_name(dt);
    }
}

TEST(LightningAttentionCpu, DecaySlopeRule) {
    // Examples of minimax01-architecture.md §2.3 (64 heads, 80 layers).
    EXPECT_NEAR(std::exp(-lightning_decay_slope(0, 80, 0, 64)), 0.400, 5e-4);
    EXPECT_NEAR(std::exp(-lightning_decay_slope(0, 80, 63, 64)), 0.9961, 5e-5);
    EXPECT_NEAR(std::exp(-lightning_decay_slope(39, 80, 0, 64)), 0.629, 5e-4);
    EXPECT_NEAR(std::exp(-lightning_decay_slope(78, 80, 0, 64)), 0.9885, 5e-5);
    EXPECT_NEAR(std::exp(-lightning_decay_slope(78, 80, 63, 64)), 0.99995, 5e-6);
    // ALiBi power-of-two start 2^(-8/H) and the 1e-5 floor at the last layer.
    EXPECT_FLOAT_EQ(lightning_decay_slope(0, 80, 0, 8), static_cast<float>(0.5 * (1 + 1e-5)));
    EXPECT_FLOAT_EQ(lightning_decay_slope(79, 80, 7, 8), static_cast<float>(1.0 / 256 * 1e-5));
    EXPECT_FLOAT_EQ(lightning_decay_slope(0, 1, 0, 8), static_cast<float>(0.5 * (1 + 1e-5)));
    const auto all = lightning_decay_slopes(5, 80, 64);
    ASSERT_EQ(all.size(), 64u);
    EXPECT_EQ(all[17], lightning_decay_slope(5, 80, 17, 64));
}

TEST(LightningAttentionCpu, NormGateMatchesFloat64) {
    std::mt19937_64 rng(6);
    const int T = 5, W = 2 * kD;
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> o(T * W), g(T * W), w(W), out(T * W, NAN);
    for (auto* v : {&o, &g, &w})
        for (auto& e : *v) e = nd(rng);
    LightningNormGateParams p;
    p.dtype = DType::kF32;
    p.num_tokens = T;
    p.width = W;
    p.o = o.data();
    p.gate = g.data();
    p.weight = w.data();
    p.out = out.data();
    p.o_stride_token = p.gate_stride_token = p.out_stride_token = W;
    ASSERT_TRUE(cpu::lightning_norm_gate(p).is_ok());
    std::vector<double> ref(T * W);
    for (int t = 0; t < T; ++t) {
        double ss = 0;
        for (int c = 0; c < W; ++c) ss += double(o[t * W + c]) * o[t * W + c];
        const double inv = 1.0 / std::sqrt(ss / W + 1e-6);
        for (int c = 0; c < W; ++c)
            ref[t * W + c] = w[c] * o[t * W + c] * inv / (1.0 + std::exp(-double(g[t * W + c])));
    }
    EXPECT_LT(rel_error(out, ref), 1e-6);
}

TEST(LightningAttentionCpu, RejectsMalformedParams) {
    std::mt19937_64 rng(7);
    const Batch b = make_batch({4, 4}, 1, rng);
    std::vector<float> o;
    LightningAttentionParams p = params_for(b, o, LightningPhase::kPrefill);
    ASSERT_TRUE(cpu::lightning_attention(p).is_ok());
    auto bad = p;
    bad.dtype = DType::kF16;
    EXPECT_EQ(cpu::lightning_attention(bad).code(), StatusCode::kInvalidArgument);
    bad = p;
    bad.cu_seqlens = nullptr;  // two sequences need cu_seqlens
    EXPECT_EQ(cpu::lightning_attention(bad).code(), StatusCode::kInvalidArgument);
    bad = p;
    bad.slope = nullptr;
    EXPECT_EQ(cpu::lightning_attention(bad).code(), StatusCode::kInvalidArgument);
    bad = p;
    bad.num_tokens = 7;  // cu_seqlens ends at 8
    EXPECT_EQ(cpu::lightning_attention(bad).code(), StatusCode::kInvalidArgument);
    bad = p;
    bad.phase = LightningPhase::kDecode;  // 8 tokens for 2 sequences, and no state_out
    EXPECT_EQ(cpu::lightning_attention(bad).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace volt
