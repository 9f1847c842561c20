// GPU RMSNorm (+ DeepNorm residual), partial RoPE, embedding gather and sampling against their CPU twins on fresh
// random inputs with poisoned outputs. bf16 outputs <= 1e-2 relative; sampled ids must equal the twin's exactly.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <span>
#include <vector>

#include "kernels/embedding.h"
#include "kernels/embedding_cuda.h"
#include "kernels/norm.h"
#include "kernels/norm_cuda.h"
#include "kernels/rope.h"
#include "kernels/rope_cuda.h"
#include "kernels/sampling.h"
#include "kernels/sampling_cuda.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/kernels/lightning_reference.h"

namespace volt {
namespace {

using namespace volt::test;
constexpr double kTol = 1e-2;
constexpr float kMiniMaxAlpha = 3.5565588200778455f;

class SmallOpsGpu : public GpuTest {};

// ---- RMSNorm ----------------------------------------------------------------------------------------------------------
void check_rms_norm(int64_t T, int64_t W, bool residual, bool in_place, uint64_t seed) {
    SCOPED_TRACE(testing::Message() << "T=" << T << " W=" << W << " residual=" << residual << " in_place=" << in_place);
    std::mt19937_64 rng(seed);
    const int64_t stride = W + 8;  // strided rows
    const std::vector<float> x = bf16_round(random_normal(T * stride, rng, 2.0f));
    const std::vector<float> r = bf16_round(random_normal(T * stride, rng));
    const std::vector<float> w = bf16_round(random_normal(W, rng, 0.3f));
    std::vector<float> ref(T * stride), sum_ref(T * stride);
    RmsNormParams cp;
    cp.num_tokens = T, cp.width = W, cp.x = x.data(), cp.x_stride = stride;
    if (residual) cp.residual = r.data(), cp.residual_stride = stride, cp.residual_alpha = kMiniMaxAlpha;
    cp.weight = w.data(), cp.eps = 1e-5f, cp.out = ref.data(), cp.out_stride = stride;
    cp.sum_out = sum_ref.data(), cp.sum_stride = stride;
    ASSERT_TRUE(cpu::rms_norm(cp).is_ok());

    DevBuf<uint16_t> dx(x.size()), dr(r.size()), dw(W), dout(x.size()), dsum(x.size());
    ASSERT_TRUE(dx.upload(to_bf16(x)) && dr.upload(to_bf16(r)) && dw.upload(to_bf16(w)) && dout.fill_bytes(0xff) &&
                dsum.fill_bytes(0xff));
    cuda::RmsNormParams p;
    p.num_tokens = T, p.width = W, p.x = dx.ptr, p.x_stride = stride;
    if (residual) p.residual = dr.ptr, p.residual_stride = stride, p.residual_alpha = kMiniMaxAlpha;
    p.weight = dw.ptr, p.eps = 1e-5f;
    p.out = in_place ? dx.ptr : dout.ptr, p.out_stride = stride;
    p.sum_out = residual ? (in_place ? dr.ptr : dsum.ptr) : nullptr, p.sum_stride = stride;
    ASSERT_TRUE(cuda::run(p, nullptr).is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> out = from_bf16((in_place ? dx : dout).download());
    const std::vector<float> sum = from_bf16((in_place ? dr : dsum).download());
    std::vector<float> o, orf, s, srf;
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < W; ++i) {
            o.push_back(out[t * stride + i]);
            orf.push_back(ref[t * stride + i]);
            s.push_back(sum[t * stride + i]);
            srf.push_back(sum_ref[t * stride + i]);
        }
    ASSERT_EQ(count_nan(o), 0u);
    EXPECT_LE(rel_error(o, orf), kTol);
    if (residual) {
        ASSERT_EQ(count_nan(s), 0u);
        EXPECT_LE(rel_error(s, srf), kTol);
    }
}

TEST_F(SmallOpsGpu, RmsNormAgainstCpu) {
    check_rms_norm(1, 6144, false, false, 1);
    check_rms_norm(5, 6144, true, false, 2);   // MiniMax post-norm: residual = xn * 3.5566 + attn
    check_rms_norm(37, 8192, true, true, 3);   // out and sum_out over the inputs
    check_rms_norm(3, 16384, false, true, 4);
    check_rms_norm(300, 24, true, false, 5);
}

// ---- RoPE -------------------------------------------------------------------------------------------------------------
void check_rope(int64_t T, int Hq, int Hkv, int64_t start, bool positions, uint64_t seed, int R = 64) {
    SCOPED_TRACE(testing::Message() << "T=" << T << " start=" << start << " positions=" << positions << " R=" << R);
    std::mt19937_64 rng(seed);
    constexpr int D = 128;
    const double theta = 1e7;
    std::vector<float> q = bf16_round(random_normal(T * Hq * D, rng)), k = bf16_round(random_normal(T * Hkv * D, rng));
    std::vector<int32_t> pos(T);
    for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(positions ? (start + 7 * t) % 1000003 : start + t);
    // CPU twin per token (its position contract is start_position + t).
    std::vector<float> qr = q, kr = k;
    for (int64_t t = 0; t < T; ++t) {
        RopeParams rp;
        rp.num_tokens = 1, rp.num_heads = Hq, rp.head_dim = D, rp.rotary_dim = R, rp.theta = theta;
        rp.start_position = pos[t], rp.x = &qr[t * Hq * D], rp.stride_token = Hq * D, rp.stride_head = D;
        ASSERT_TRUE(cpu::rope(rp).is_ok());
        rp.num_heads = Hkv, rp.x = &kr[t * Hkv * D], rp.stride_token = Hkv * D;
        ASSERT_TRUE(cpu::rope(rp).is_ok());
    }
    DevBuf<uint16_t> dq(q.size()), dk(k.size());
    DevBuf<int32_t> dpos(T);
    ASSERT_TRUE(dq.upload(to_bf16(q)) && dk.upload(to_bf16(k)) && dpos.upload(pos));
    cuda::RopeParams p;
    p.num_tokens = T, p.head_dim = D, p.rotary_dim = R, p.theta = theta;
    p.positions = positions ? dpos.ptr : nullptr, p.start_position = start;
    p.x = dq.ptr, p.num_heads = Hq, p.stride_token = Hq * D, p.stride_head = D;
    p.x2 = dk.ptr, p.num_heads2 = Hkv, p.stride_token2 = Hkv * D, p.stride_head2 = D;
    ASSERT_TRUE(cuda::run(p, nullptr).is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> gq = from_bf16(dq.download()), gk = from_bf16(dk.download());
    EXPECT_LE(rel_error(gq, qr), kTol);
    EXPECT_LE(rel_error(gk, kr), kTol);
    // The pass-through half is untouched, bit for bit.
    for (int64_t t = 0; t < T; ++t)
        for (int h = 0; h < Hq; ++h)
            for (int d = R; d < D; ++d) ASSERT_EQ(gq[(t * Hq + h) * D + d], q[(t * Hq + h) * D + d]);
}

TEST_F(SmallOpsGpu, PartialRopeAgainstCpu) {
    check_rope(1, 64, 8, 0, false, 11);
    check_rope(127, 64, 8, 5, false, 12);
    check_rope(33, 16, 2, 131000, false, 13);   // long-context positions
    check_rope(64, 64, 8, 900000, true, 14);    // per-token positions (decode batch)
    check_rope(9, 4, 2, 77, false, 15, 12);     // rotary_dim 12: the one-pair-per-thread variant
}

// ---- embedding --------------------------------------------------------------------------------------------------------
TEST_F(SmallOpsGpu, EmbeddingGatherAgainstCpu) {
    std::mt19937_64 rng(21);
    const int64_t V = 5003, H = 6144, T = 77;
    const std::vector<float> table = bf16_round(random_normal(V * H, rng));
    std::vector<int32_t> ids(T);
    std::uniform_int_distribution<int32_t> uid(0, V - 1);
    for (auto& id : ids) id = uid(rng);
    ids[3] = 0;
    ids[4] = V - 1;
    std::vector<float> ref(T * H);
    ASSERT_TRUE(cpu::embedding({.num_tokens = T, .ids = ids.data(), .vocab_size = V, .hidden = H,
                                .table = table.data(), .table_dtype = DType::kF32, .out = ref.data(), .out_stride = H})
                    .is_ok());
    // Two invalid ids appended: zero rows, counted.
    std::vector<int32_t> ids_bad = ids;
    ids_bad.push_back(-1);
    ids_bad.push_back(static_cast<int32_t>(V));
    DevBuf<uint16_t> dtable(table.size()), dout((T + 2) * H);
    DevBuf<int32_t> dids(T + 2), dcount(1);
    ASSERT_TRUE(dtable.upload(to_bf16(table)) && dids.upload(ids_bad) && dout.fill_bytes(0xff) &&
                dcount.fill_bytes(0));
    ASSERT_TRUE(cuda::run(cuda::EmbeddingParams{.num_tokens = T + 2, .ids = dids.ptr, .vocab_size = V, .hidden = H,
                                                .table = dtable.ptr, .out = dout.ptr, .out_stride = H,
                                                .invalid_count = dcount.ptr},
                          nullptr)
                    .is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> got = from_bf16(dout.download());
    for (int64_t i = 0; i < T * H; ++i) ASSERT_EQ(got[i], ref[i]) << "element " << i;  // a copy: exact
    for (int64_t i = T * H; i < (T + 2) * H; ++i) ASSERT_EQ(got[i], 0.0f);
    EXPECT_EQ(dcount.download()[0], 2);
}

// ---- sampling ---------------------------------------------------------------------------------------------------------
// flat_odd_rows: odd rows' logits scaled by 0.01 (a near-uniform distribution: a top-p prefix far beyond the GPU
// prefix path's capacity, so those rows take its full-sort fallback while the even rows do not).
// records (with a history): the rows' per-sequence records (SampleParams::records) in three kinds, n % 3: 0 reads
// its record (history length -1; the record holds the history's ids, the staged row holds other ids that must not
// count), 1 has a history and a record of stale bits that the call must rewrite from the history, 2 has no record.
void check_sampling(int64_t N, int64_t V, SamplingParams s, bool with_history, uint64_t seed, bool ties = false,
                    bool flat_odd_rows = false, bool records = false) {
    SCOPED_TRACE(testing::Message() << "N=" << N << " V=" << V << " T=" << s.temperature << " top_k=" << s.top_k
                                    << " top_p=" << s.top_p << " min_p=" << s.min_p
                                    << " penalty=" << s.repetition_penalty << " ties=" << ties
                                    << " flat_odd_rows=" << flat_odd_rows << " records=" << records);
    std::mt19937_64 rng(seed);
    std::vector<float> logits = random_normal(N * V, rng, 3.0f);
    if (ties)  // coarse values: many equal logits, including the maximum
        for (auto& l : logits) l = std::round(l);
    if (flat_odd_rows)
        for (int64_t n = 1; n < N; n += 2)
            for (int64_t i = 0; i < V; ++i) logits[n * V + i] *= 0.01f;
    const int64_t hist_stride = 40;
    std::vector<int32_t> hist(N * hist_stride), hist_len(N);
    std::uniform_int_distribution<int32_t> uid(-2, static_cast<int32_t>(V) + 1);  // some ids out of range
    for (int64_t n = 0; n < N; ++n) {
        hist_len[n] = static_cast<int32_t>(n % hist_stride);
        for (int64_t i = 0; i < hist_stride; ++i) hist[n * hist_stride + i] = uid(rng);
        if (hist_len[n] > 2) hist[n * hist_stride + 1] = hist[n * hist_stride];  // a repeated id counts once
    }
    std::uniform_real_distribution<double> ud(0.0, 1.0);
    std::vector<double> u(N);
    for (auto& x : u) x = ud(rng);
    std::vector<int32_t> ref(N);
    for (int64_t n = 0; n < N; ++n) {
        SampleParams cp;
        cp.logits = &logits[n * V], cp.vocab_size = V, cp.sampling = s;
        cp.history = with_history ? &hist[n * hist_stride] : nullptr;
        cp.history_len = with_history ? hist_len[n] : 0;
        cp.uniform = u[n];
        auto id = cpu::sample(cp);
        ASSERT_TRUE(id.has_value());
        ref[n] = *id;
    }
    const int64_t words = (V + 31) / 32;
    std::vector<uint32_t> rec(N * words, 0xa5a5a5a5u), want_rec(N * words, 0);
    std::vector<int32_t> staged_hist = hist, staged_len = hist_len;
    for (int64_t n = 0; n < N && records; ++n) {
        cpu::record_ids(std::span(&hist[n * hist_stride], size_t(hist_len[n])), V, &want_rec[n * words]);
        if (n % 3 == 0) {
            std::copy_n(&want_rec[n * words], words, &rec[n * words]);
            staged_len[n] = -1;
            for (int64_t i = 0; i < hist_stride; ++i) staged_hist[n * hist_stride + i] = int32_t((i * 7919) % V);
        }
    }
    DevBuf<float> dl(logits.size());
    DevBuf<int32_t> dh(hist.size()), dhl(N), dout(N);
    DevBuf<double> du(N);
    DevBuf<uint32_t> drec(rec.size());
    DevBuf<uint32_t*> dtable(N);
    std::vector<uint32_t*> table(N);
    for (int64_t n = 0; n < N; ++n) table[n] = n % 3 == 2 ? nullptr : drec.ptr + n * words;
    ASSERT_TRUE(dl.upload(logits) && dh.upload(staged_hist) && dhl.upload(staged_len) && du.upload(u) &&
                dout.fill_bytes(0xff) && drec.upload(rec) && dtable.upload(table));
    cuda::SampleParams p;
    p.num_rows = N, p.vocab_size = V, p.logits = dl.ptr, p.logits_stride = V, p.sampling = s;
    if (with_history) p.history = dh.ptr, p.history_stride = hist_stride, p.history_len = dhl.ptr;
    if (records) p.records = dtable.ptr;
    p.uniform = du.ptr, p.out_ids = dout.ptr;
    DevBuf<char> ws(cuda::sample_workspace_bytes(p));
    p.workspace = ws.ptr, p.workspace_bytes = ws.n;
    const Status st = cuda::run(p, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<int32_t> got = dout.download();
    for (int64_t n = 0; n < N; ++n) EXPECT_EQ(got[n], ref[n]) << "row " << n;
    if (!records) return;
    const std::vector<uint32_t> after = drec.download();
    for (int64_t n = 0; n < N; ++n) {
        const uint32_t* expect = n % 3 == 2 ? &rec[n * words] : &want_rec[n * words];  // no record: untouched
        for (int64_t w = 0; w < words; ++w)
            ASSERT_EQ(after[n * words + w], expect[w]) << "row " << n << " (kind " << n % 3 << ") word " << w;
    }
}

// cuda::RecordIdsParams against cpu::record_ids: a decode step's rows (one record each, some null) and a prompt's
// ids into one record, ids out of range skipped, repeated ids, records holding earlier bits.
TEST_F(SmallOpsGpu, RecordIdsAgainstCpu) {
    std::mt19937_64 rng(51);
    for (const int64_t V : {int64_t(200064), int64_t(77)}) {
        const int64_t words = (V + 31) / 32, B = 67;
        std::uniform_int_distribution<int32_t> uid(-3, int32_t(V) + 2);
        std::vector<int32_t> ids(B);
        for (auto& id : ids) id = uid(rng);
        ids[1] = ids[0];
        std::vector<uint32_t> bits(B * words);
        for (auto& w : bits) w = uint32_t(rng());
        std::vector<uint32_t> want = bits;
        for (int64_t b = 0; b < B; ++b)
            if (b % 5 != 4) cpu::record_ids(std::span(&ids[b], 1), V, &want[b * words]);
        DevBuf<int32_t> dids(B);
        DevBuf<uint32_t> dbits(bits.size());
        DevBuf<uint32_t*> dtable(B);
        std::vector<uint32_t*> table(B);
        for (int64_t b = 0; b < B; ++b) table[b] = b % 5 == 4 ? nullptr : dbits.ptr + b * words;
        ASSERT_TRUE(dids.upload(ids) && dbits.upload(bits) && dtable.upload(table));
        ASSERT_TRUE(cuda::run(cuda::RecordIdsParams{.ids = dids.ptr, .n = B, .vocab_size = V, .records = dtable.ptr},
                              nullptr)
                        .is_ok());
        CUDA_OK(cudaDeviceSynchronize());
        EXPECT_EQ(dbits.download(), want) << "V = " << V << ", one record per id";
        // A prompt: every id into the first record.
        std::vector<int32_t> prompt(5000);
        for (auto& id : prompt) id = uid(rng);
        DevBuf<int32_t> dprompt(prompt.size());
        ASSERT_TRUE(dprompt.upload(prompt));
        std::vector<uint32_t> one(want.begin(), want.begin() + words);
        cpu::record_ids(prompt, V, one.data());
        ASSERT_TRUE(cuda::run(cuda::RecordIdsParams{.ids = dprompt.ptr, .n = int64_t(prompt.size()), .vocab_size = V,
                                                    .record = dbits.ptr},
                              nullptr)
                        .is_ok());
        CUDA_OK(cudaDeviceSynchronize());
        const std::vector<uint32_t> got = dbits.download();
        EXPECT_TRUE(std::equal(one.begin(), one.end(), got.begin())) << "V = " << V << ", a prompt into one record";
        EXPECT_TRUE(std::equal(want.begin() + words, want.end(), got.begin() + words)) << "the others untouched";
    }
    EXPECT_EQ(cuda::run(cuda::RecordIdsParams{.ids = nullptr, .n = 3, .vocab_size = 10}, nullptr).code(),
              StatusCode::kInvalidArgument);
    // The sampler reads records only with history lengths (-1 marks a row that reads its record).
    uint32_t* const none[1] = {nullptr};
    cuda::SampleParams sp;
    sp.num_rows = 1, sp.vocab_size = 10, sp.logits_stride = 10, sp.sampling = {.temperature = 0.0f};
    sp.logits = reinterpret_cast<const float*>(16), sp.out_ids = reinterpret_cast<int32_t*>(16), sp.records = none;
    const Status bad = cuda::validate(sp);
    EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad.message().find("history_len"), std::string::npos) << bad.message();
}

TEST_F(SmallOpsGpu, SamplingMatchesCpuExactly) {
    SamplingParams greedy{.temperature = 0.0f};
    check_sampling(16, 200064, greedy, false, 31);
    check_sampling(16, 1000, greedy, true, 32, /*ties=*/true);
    check_sampling(8, 200064, {.temperature = 0.0f, .repetition_penalty = 1.3f}, true, 33);
    check_sampling(16, 1000, {.temperature = 0.7f}, false, 34);                       // full-vocabulary CDF
    check_sampling(4, 200064, {.temperature = 1.0f}, false, 35);
    check_sampling(16, 200064, {.temperature = 0.8f, .top_k = 50}, false, 36);
    check_sampling(16, 1000, {.temperature = 1.2f, .top_k = 5}, true, 37, /*ties=*/true);
    check_sampling(16, 200064, {.temperature = 0.9f, .top_p = 0.9f}, false, 38);
    check_sampling(16, 200064, {.temperature = 1.0f, .top_k = 100, .top_p = 0.8f, .min_p = 0.05f,
                                .repetition_penalty = 1.1f},
                   true, 39);
}

// The prefix path's edges (top-k up to 4096 and top-p without top-k skip the full sort): k at the capacity and just
// past it (full sort), ties straddling the k-th place (the lowest ids of the tie), top-p over coarse ties, rows whose
// top-p prefix overflows the capacity next to rows that fit, the penalty with top-p, and small vocabularies.
TEST_F(SmallOpsGpu, SamplingPrefixPathMatchesCpuExactly) {
    check_sampling(8, 200064, {.temperature = 0.8f, .top_k = 4096}, false, 61);
    check_sampling(4, 200064, {.temperature = 0.8f, .top_k = 4097}, false, 62);
    check_sampling(8, 200064, {.temperature = 0.8f, .top_k = 50}, false, 63, /*ties=*/true);
    check_sampling(8, 200064, {.temperature = 1.0f, .top_k = 3000, .top_p = 0.5f}, false, 64, /*ties=*/true);
    check_sampling(8, 200064, {.temperature = 0.9f, .top_p = 0.95f}, false, 65, /*ties=*/true);
    check_sampling(8, 200064, {.temperature = 0.8f, .top_p = 0.9f}, false, 66, false, /*flat_odd_rows=*/true);
    check_sampling(8, 200064, {.temperature = 0.7f, .top_p = 0.8f, .min_p = 0.02f, .repetition_penalty = 1.3f},
                   true, 67);
    check_sampling(8, 1000, {.temperature = 1.1f, .top_p = 0.97f}, true, 68);
    // Per-sequence records read, rewritten and absent, on the greedy, prefix, prefix-fallback and full-sort paths.
    check_sampling(9, 200064, {.temperature = 0.0f, .repetition_penalty = 1.3f}, true, 71, false, false, true);
    check_sampling(9, 200064, {.temperature = 0.8f, .top_k = 50, .repetition_penalty = 1.3f}, true, 72, false, false,
                   true);
    check_sampling(9, 200064, {.temperature = 0.8f, .top_p = 0.9f, .repetition_penalty = 1.2f}, true, 73, false,
                   /*flat_odd_rows=*/true, true);
    check_sampling(9, 1000, {.temperature = 0.9f, .repetition_penalty = 1.5f}, true, 74, true, false, true);
    check_sampling(8, 7, {.temperature = 1.0f, .top_k = 3}, false, 69, /*ties=*/true);
    check_sampling(8, 300, {.temperature = 2.0f, .top_p = 0.999f}, false, 70);
}

TEST_F(SmallOpsGpu, ShortSanitizerRun) {
    check_rms_norm(3, 24, true, false, 41);
    check_rope(3, 4, 2, 9, true, 42);
    check_sampling(3, 300, {.temperature = 0.0f, .repetition_penalty = 1.2f}, true, 43);
    check_sampling(3, 300, {.temperature = 0.8f, .top_k = 20, .top_p = 0.9f, .min_p = 0.01f}, true, 44);
    check_sampling(4, 5000, {.temperature = 0.8f, .top_p = 0.9f}, true, 45, false, /*flat_odd_rows=*/true);
    check_sampling(3, 5000, {.temperature = 0.8f, .top_k = 7}, false, 46, /*ties=*/true);
    check_sampling(3, 300, {.temperature = 0.0f, .repetition_penalty = 1.2f}, true, 47, false, false, /*records=*/true);
}

}  // namespace
}  // namespace volt
