// GPU softmax attention against the CPU twin (cpu::attention, fp32 on the widened bf16 inputs): causal GQA prefill
// at 1, 127, 128 and 4097 tokens (own kernel, and cuDNN's SDPA where available), 40000 and 131072 (cuDNN in query
// pieces and key blocks, sampled rows), pieces in blocks of keys, ragged batches with cached prefixes (own kernel, and
// cuDNN's ragged layout), and split-KV decode over a batch of sequences of different lengths (with and without the
// split workspace).
// Fresh random inputs, poisoned outputs; bf16 outputs <= 1e-2 relative per (sequence, head).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/attention_cuda.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/kv_cache_cuda.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/kernels/lightning_reference.h"

namespace volt {
namespace {

using namespace volt::test;
constexpr int kD = 128;
constexpr double kTol = 1e-2;

class AttentionGpu : public GpuTest {};

// A batch of sequences: new query lengths q_lens, cached prefix lengths past (keys = past + q_len each). K/V rows of
// sequence n sit in its own region of a cache (capacity rows apart, with a gap so that reading past the end shows).
struct Batch {
    std::vector<int> q_lens, past;
    int Hq = 0, Hkv = 0;
    int64_t capacity = 0;
    std::vector<int32_t> cu{0}, kv_lens, kv_start;
    std::vector<float> q, k, v;  // bf16-exact values
    int64_t T() const { return cu.back(); }
    int N() const { return static_cast<int>(q_lens.size()); }
};

Batch make_batch(const std::vector<int>& q_lens, const std::vector<int>& past, int Hq, int Hkv, uint64_t seed) {
    Batch b;
    b.q_lens = q_lens, b.past = past, b.Hq = Hq, b.Hkv = Hkv;
    for (size_t n = 0; n < q_lens.size(); ++n) {
        b.cu.push_back(b.cu.back() + q_lens[n]);
        b.kv_lens.push_back(past[n] + q_lens[n]);
        b.capacity = std::max<int64_t>(b.capacity, past[n] + q_lens[n] + 16);
    }
    for (int n = 0; n < b.N(); ++n) b.kv_start.push_back(static_cast<int32_t>(n * b.capacity));
    std::mt19937_64 rng(seed);
    b.q = bf16_round(random_normal(b.T() * Hq * kD, rng));
    // Keys with a larger spread so that the softmax is peaked (not close to a plain average).
    b.k = bf16_round(random_normal(b.N() * b.capacity * Hkv * kD, rng, 2.0f));
    b.v = bf16_round(random_normal(b.N() * b.capacity * Hkv * kD, rng));
    return b;
}

// CPU twin per sequence: queries at positions past .. past + q_len - 1 of that sequence's cache region.
std::vector<float> cpu_reference(const Batch& b, float scale) {
    std::vector<float> o(b.T() * b.Hq * kD, NAN);
    for (int n = 0; n < b.N(); ++n) {
        AttentionParams a;
        a.num_tokens = b.q_lens[n], a.past_len = b.past[n], a.num_heads = b.Hq, a.num_kv_heads = b.Hkv;
        a.head_dim = kD, a.scale = scale;
        a.q = &b.q[b.cu[n] * b.Hq * kD], a.q_stride_token = b.Hq * kD, a.q_stride_head = kD;
        a.k = &b.k[b.kv_start[n] * b.Hkv * kD], a.k_stride_token = b.Hkv * kD, a.k_stride_head = kD;
        a.v = &b.v[b.kv_start[n] * b.Hkv * kD], a.v_stride_token = b.Hkv * kD, a.v_stride_head = kD;
        a.o = &o[b.cu[n] * b.Hq * kD], a.o_stride_token = b.Hq * kD, a.o_stride_head = kD;
        EXPECT_TRUE(cpu::attention(a).is_ok());
    }
    return o;
}

void compare(const Batch& b, const std::vector<float>& got, const std::vector<float>& ref) {
    ASSERT_EQ(count_nan(got), 0u) << "unwritten outputs";
    for (int n = 0; n < b.N(); ++n)
        for (int h = 0; h < b.Hq; ++h) {
            std::vector<float> x, y;
            for (int64_t t = b.cu[n]; t < b.cu[n + 1]; ++t)
                for (int d = 0; d < kD; ++d) {
                    x.push_back(got[(t * b.Hq + h) * kD + d]);
                    y.push_back(ref[(t * b.Hq + h) * kD + d]);
                }
            ASSERT_LE(rel_error(x, y), kTol) << "sequence " << n << " head " << h;
        }
}

enum class Layout { kPacked, kPrefixed, kCache };

// A batch on the device: bf16 q, k, v, the output filled with `poison` bytes, cu_seqlens / kv_lens / kv_start, and
// token-major AttentionParams over them. kPacked: one sequence, k/v packed like q; kPrefixed: one sequence after a
// cached prefix with kv_len_host (both cuDNN-eligible); kCache: the batch's cache regions through cu_seqlens /
// kv_lens / kv_start, the bounds max_seqlen_q / max_seqlen_kv exact.
struct DeviceBatch {
    DevBuf<uint16_t> q, k, v, out;
    DevBuf<int32_t> cu, len, start;
    cuda::AttentionParams p;
    bool uploaded = false;
    DeviceBatch(const Batch& b, Layout layout, cuda::AttentionBackend backend, float scale, int poison = 0xff)
        : q(b.q.size()), k(b.k.size()), v(b.v.size()), out(b.q.size()), cu(b.cu.size()), len(b.N()), start(b.N()) {
        uploaded = q.upload(to_bf16(b.q)) && k.upload(to_bf16(b.k)) && v.upload(to_bf16(b.v)) && cu.upload(b.cu) &&
                   len.upload(b.kv_lens) && start.upload(b.kv_start) && out.fill_bytes(poison);
        p.prefill_backend = backend;
        p.num_tokens = b.T(), p.num_seqs = b.N(), p.num_heads = b.Hq, p.num_kv_heads = b.Hkv, p.scale = scale;
        p.q = q.ptr, p.q_stride_token = b.Hq * kD, p.q_stride_head = kD;
        p.k = k.ptr, p.k_stride_token = b.Hkv * kD, p.k_stride_head = kD;
        p.v = v.ptr, p.v_stride_token = b.Hkv * kD, p.v_stride_head = kD;
        p.o = out.ptr, p.o_stride_token = b.Hq * kD, p.o_stride_head = kD;
        if (layout == Layout::kPrefixed) {
            // One sequence after its cached prefix, keys from row 0, the key count known on the host.
            p.kv_lens = len.ptr, p.kv_len_host = b.kv_lens[0], p.max_seqlen_kv = b.kv_lens[0];
        }
        if (layout == Layout::kCache) {
            p.cu_seqlens = cu.ptr, p.kv_lens = len.ptr, p.kv_start = start.ptr;
            for (int n = 0; n < b.N(); ++n) {
                p.max_seqlen_q = std::max<int64_t>(p.max_seqlen_q, b.q_lens[n]);
                p.max_seqlen_kv = std::max<int64_t>(p.max_seqlen_kv, b.kv_lens[n]);
            }
        }
    }
};

// Prefill through cuda::run on a DeviceBatch of `layout`. With block_flops > 0: through plan_prefill_blocks(p,
// block_flops) and every run_prefill_block in order, expecting `blocks` blocks.
void check_prefill(const Batch& b, Layout layout, cuda::AttentionBackend backend, double block_flops = 0,
                   int blocks = 1, int query_pieces = 0) {
    SCOPED_TRACE(testing::Message() << "N=" << b.N() << " T=" << b.T() << " layout=" << static_cast<int>(layout)
                                    << " backend=" << static_cast<int>(backend));
    const float scale = 1.0f / std::sqrt(float(kD));
    const std::vector<float> ref = cpu_reference(b, scale);
    DeviceBatch db(b, layout, backend, scale);
    ASSERT_TRUE(db.uploaded);
    cuda::AttentionParams& p = db.p;
    DevBuf<uint16_t>& dout = db.out;
    if (block_flops > 0) {
        auto plan = cuda::plan_prefill_blocks(p, block_flops);
        ASSERT_TRUE(plan) << plan.status().to_string();
        ASSERT_EQ(plan->count, blocks);
        ASSERT_FALSE(plan->whole_in_first);
        EXPECT_EQ(plan->cudnn, backend != cuda::AttentionBackend::kOwn);  // a prefixed piece on cuDNN: even one block
        EXPECT_EQ(plan->query_pieces > 0, backend == cuda::AttentionBackend::kCudnnBuckets);
        if (query_pieces > 0) {
            EXPECT_EQ(plan->query_pieces, query_pieces);
        }
        DevBuf<uint8_t> ws(std::max<size_t>(plan->workspace_bytes, 1));
        ASSERT_TRUE(ws.fill_bytes(0xff));  // NaN accumulators: the first block must not read them
        p.workspace = ws.ptr, p.workspace_bytes = plan->workspace_bytes;
        if (blocks > 1) {  // too little workspace is refused, not overrun
            cuda::AttentionParams small = p;
            small.workspace_bytes = plan->workspace_bytes - 1;
            EXPECT_EQ(cuda::run_prefill_block(small, *plan, 0, nullptr).code(), StatusCode::kInvalidArgument);
        }
        EXPECT_EQ(cuda::run_prefill_block(p, *plan, blocks, nullptr).code(), StatusCode::kInvalidArgument);
        for (int i = 0; i < plan->count; ++i) {
            const Status st = cuda::run_prefill_block(p, *plan, i, nullptr);
            ASSERT_TRUE(st.is_ok()) << "block " << i << ": " << st.to_string();
        }
    } else {
        // Bucketed shapes and cuDNN's ragged layout need their workspace (the other paths here run without one).
        const bool wants_ws = backend == cuda::AttentionBackend::kCudnnBuckets || layout == Layout::kCache;
        const size_t ws_bytes = wants_ws ? cuda::attention_workspace_bytes(p) : 0;
        DevBuf<uint8_t> ws(std::max<size_t>(ws_bytes, 1));
        ASSERT_TRUE(ws.fill_bytes(0xff));
        if (ws_bytes > 0) p.workspace = ws.ptr, p.workspace_bytes = ws_bytes;
        const Status st = cuda::run(p, nullptr);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
    }
    CUDA_OK(cudaDeviceSynchronize());
    compare(b, from_bf16(dout.download()), ref);
}

TEST_F(AttentionGpu, PrefillOwnKernelAgainstCpu) {
    for (int T : {1, 127, 128, 4097}) {
        check_prefill(make_batch({T}, {0}, 16, 2, 100 + T), Layout::kPacked, cuda::AttentionBackend::kOwn);
    }
    check_prefill(make_batch({200}, {0}, 64, 8, 7), Layout::kPacked, cuda::AttentionBackend::kOwn);  // MiniMax heads
}

TEST_F(AttentionGpu, PrefillCudnnAgainstCpu) {
    if (!cuda::cudnn_attention_available()) GTEST_SKIP() << "cuDNN SDPA not available in this build/machine";
    for (int T : {1, 127, 128, 4097}) {
        check_prefill(make_batch({T}, {0}, 16, 2, 200 + T), Layout::kPacked, cuda::AttentionBackend::kCudnn);
    }
    check_prefill(make_batch({300}, {0}, 64, 8, 8), Layout::kPacked, cuda::AttentionBackend::kCudnn);
}

// The plan timings volt_ops_bench --only cudnn_plans reads: every plan heuristics A offers for a small bidirectional
// shape built, at least one run and timed, the output finite; bad modes and counts refused.
TEST_F(AttentionGpu, CudnnPlanTimings) {
    if (!cuda::cudnn_attention_available()) GTEST_SKIP() << "cuDNN SDPA not available in this build/machine";
    const int64_t B = 2, T = 96, H = 4, D = 64;
    std::mt19937_64 rng(91);
    DevBuf<uint16_t> q(B * T * H * D), k(B * T * H * D), v(B * T * H * D), o(B * T * H * D);
    ASSERT_TRUE(q.upload(to_bf16(random_normal(q.n, rng))) && k.upload(to_bf16(random_normal(k.n, rng))) &&
                v.upload(to_bf16(random_normal(v.n, rng))) && o.fill_bytes(0xff));
    const cuda::CudnnSdpaSpec s{.batch = B, .tokens = T, .heads = H, .kv_heads = H, .head_dim = D,
                                .q_stride_b = T * H * D, .q_stride_h = D, .q_stride_t = H * D,
                                .k_stride_b = T * H * D, .k_stride_h = D, .k_stride_t = H * D,
                                .v_stride_b = T * H * D, .v_stride_h = D, .v_stride_t = H * D,
                                .o_stride_b = T * H * D, .o_stride_h = D, .o_stride_t = H * D, .scale = 0.125f};
    auto plans = cuda::cudnn_sdpa_time_plans(s, q.ptr, k.ptr, v.ptr, o.ptr, nullptr, "A", 2);
    ASSERT_TRUE(plans.has_value()) << plans.status().to_string();
    ASSERT_GE(plans->size(), 1u);
    int ran = 0;
    for (const cuda::CudnnPlanTiming& t : *plans) {
        EXPECT_FALSE(t.name.empty());
        ran += t.ms > 0 && t.error.empty();
    }
    EXPECT_GE(ran, 1);
    EXPECT_EQ(count_nan(from_bf16(o.download())), 0u);
    EXPECT_EQ(cuda::cudnn_sdpa_time_plans(s, q.ptr, k.ptr, v.ptr, o.ptr, nullptr, "A,C", 2).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(cuda::cudnn_sdpa_time_plans(s, q.ptr, k.ptr, v.ptr, o.ptr, nullptr, "A", 0).status().code(),
              StatusCode::kInvalidArgument);
}

// A piece's attention in blocks of keys (cuDNN per block + the fp32 merge by softmax statistics) equals the CPU twin:
// block sizes a multiple of the piece, prefixes that are and are not multiples of the block, a last block of exactly
// the piece (a causal square), single queries, MiniMax's 64 / 8 heads; a bound that fits everything is one block
// (run() itself), and the own kernel is never split.
TEST_F(AttentionGpu, PrefillInKeyBlocksAgainstCpu) {
    if (!cuda::cudnn_attention_available()) GTEST_SKIP() << "cuDNN SDPA not available in this build/machine";
    struct Case {
        int T, P, Hq, Hkv;
        int64_t target_keys;  // the bound in keys (flops = 4 T keys Hq D)
        int blocks;           // floor(P / block_keys) + 1 with block_keys = max(1, target / T) * T
    };
    const std::vector<Case> cases = {
        {64, 1000, 16, 2, 128, 8},   // 1000 / 128 -> 7 full blocks, a last one of 1064 - 896 = 168 keys
        {256, 2048, 16, 2, 512, 5},  // the last block is the piece alone
        {300, 4000, 64, 8, 1000, 5}, // block_keys 900
        {1, 5000, 16, 2, 700, 8},    // one query
        {128, 640, 16, 2, 100, 6},   // a bound below the piece: blocks of the piece's length
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(testing::Message() << "T=" << c.T << " P=" << c.P << " blocks=" << c.blocks);
        const double flops = 4.0 * c.T * double(c.target_keys) * c.Hq * kD;
        check_prefill(make_batch({c.T}, {c.P}, c.Hq, c.Hkv, 700 + c.T + c.P), Layout::kPrefixed,
                      cuda::AttentionBackend::kCudnn, flops, c.blocks);
    }
    // Everything within the bound: one block (cuDNN with its statistics, no merge).
    check_prefill(make_batch({200}, {900}, 16, 2, 77), Layout::kPrefixed, cuda::AttentionBackend::kCudnn, 1e15, 1);
    // The own kernel (and packed keys under it) runs whole.
    check_prefill(make_batch({200}, {900}, 16, 2, 78), Layout::kPrefixed, cuda::AttentionBackend::kOwn, 1e6, 1);
}

// A fresh sequence of more than 32K queries given the workspace runs in query pieces and key blocks: its output
// equals one cuDNN call's (no workspace) on sampled rows and the CPU twin on rows at the pieces' edges; 40000 queries
// end in a partial piece; 131072 (issue 7's longest length) with fewer heads to keep the host reference small.
TEST_F(AttentionGpu, LongPrefillInQueryPiecesAgainstOneCallAndCpu) {
    if (!cuda::cudnn_attention_available()) GTEST_SKIP() << "cuDNN SDPA not available in this build/machine";
    struct Case {
        int64_t T;
        int Hq, Hkv;
    };
    for (const Case& c : {Case{40000, 16, 2}, Case{131072, 8, 2}}) {
        const int64_t T = c.T;
        const int Hq = c.Hq, Hkv = c.Hkv;
        SCOPED_TRACE(testing::Message() << "T=" << T);
        std::mt19937_64 rng(4242 + T);
        const std::vector<float> q = bf16_round(random_normal(T * Hq * kD, rng));
        const std::vector<float> k = bf16_round(random_normal(T * Hkv * kD, rng, 2.0f));
        const std::vector<float> v = bf16_round(random_normal(T * Hkv * kD, rng));
        DevBuf<uint16_t> dq(q.size()), dk(k.size()), dv(v.size()), tiled(q.size()), whole(q.size());
        ASSERT_TRUE(dq.upload(to_bf16(q)) && dk.upload(to_bf16(k)) && dv.upload(to_bf16(v)) &&
                    tiled.fill_bytes(0xff) && whole.fill_bytes(0xff));
        cuda::AttentionParams p;
        p.prefill_backend = cuda::AttentionBackend::kCudnn;
        p.num_tokens = T, p.num_seqs = 1, p.num_heads = Hq, p.num_kv_heads = Hkv;
        p.scale = 1.0f / std::sqrt(float(kD));
        p.q = dq.ptr, p.q_stride_token = Hq * kD, p.q_stride_head = kD;
        p.k = dk.ptr, p.k_stride_token = Hkv * kD, p.k_stride_head = kD;
        p.v = dv.ptr, p.v_stride_token = Hkv * kD, p.v_stride_head = kD;
        p.o = whole.ptr, p.o_stride_token = Hq * kD, p.o_stride_head = kD;
        ASSERT_TRUE(cuda::run(p, nullptr).is_ok());
        const size_t ws_bytes = cuda::attention_workspace_bytes(p);
        ASSERT_GT(ws_bytes, 0u);
        DevBuf<uint8_t> ws(ws_bytes);
        ASSERT_TRUE(ws.fill_bytes(0xff));
        p.o = tiled.ptr, p.workspace = ws.ptr, p.workspace_bytes = ws_bytes;
        const Status st = cuda::run(p, nullptr);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
        CUDA_OK(cudaDeviceSynchronize());
        const std::vector<float> a = from_bf16(tiled.download()), b = from_bf16(whole.download());
        ASSERT_EQ(count_nan(a), 0u) << "unwritten outputs";
        for (int h = 0; h < Hq; ++h) {
            std::vector<float> x, y;
            for (int64_t t = 0; t < T; t += 7)
                for (int d = 0; d < kD; ++d)
                    x.push_back(a[(t * Hq + h) * kD + d]), y.push_back(b[(t * Hq + h) * kD + d]);
            ASSERT_LE(rel_error(x, y), kTol) << "head " << h;
        }
        for (int64_t t : {int64_t{0}, int64_t{8191}, int64_t{8192}, int64_t{20000}, int64_t{32768}, int64_t{65537},
                          int64_t{73727}, T - 1}) {
            if (t >= T) continue;
            std::vector<float> ref(Hq * kD, NAN);
            AttentionParams r;
            r.num_tokens = 1, r.past_len = t, r.num_heads = Hq, r.num_kv_heads = Hkv, r.head_dim = kD, r.scale = p.scale;
            r.q = &q[t * Hq * kD], r.q_stride_token = Hq * kD, r.q_stride_head = kD;
            r.k = k.data(), r.k_stride_token = Hkv * kD, r.k_stride_head = kD;
            r.v = v.data(), r.v_stride_token = Hkv * kD, r.v_stride_head = kD;
            r.o = ref.data(), r.o_stride_token = Hq * kD, r.o_stride_head = kD;
            ASSERT_TRUE(cpu::attention(r).is_ok());
            const std::vector<float> got(a.begin() + t * Hq * kD, a.begin() + (t + 1) * Hq * kD);
            const std::vector<float> one(b.begin() + t * Hq * kD, b.begin() + (t + 1) * Hq * kD);
            EXPECT_LE(rel_error(got, ref), kTol) << "row " << t << " (tiled)";
            EXPECT_LE(rel_error(one, ref), kTol) << "row " << t << " (one call)";
        }
    }
}

// A piece after a cached prefix (a long prompt's second chunk, a chat turn): cuDNN with the diagonal bottom-right
// aligned, against the CPU twin, for prefixes shorter and longer than the piece and pieces of 1 and odd lengths; the
// own kernel on the same input; and more distinct (queries, keys) pairs than the prefixed-graph cache keeps, so its
// eviction runs (each pair again afterwards is rebuilt and still right).
TEST_F(AttentionGpu, PrefillAfterCachedPrefixCudnnAgainstCpu) {
    if (!cuda::cudnn_attention_available()) GTEST_SKIP() << "cuDNN SDPA not available in this build/machine";
    const std::vector<std::pair<int, int>> shapes = {{1, 5}, {127, 1}, {128, 128}, {300, 4000}, {4097, 60}, {64, 9000}};
    for (const auto& [T, P] : shapes) {
        check_prefill(make_batch({T}, {P}, 16, 2, 300 + T + P), Layout::kPrefixed, cuda::AttentionBackend::kCudnn);
        check_prefill(make_batch({T}, {P}, 16, 2, 300 + T + P), Layout::kPrefixed, cuda::AttentionBackend::kOwn);
    }
    check_prefill(make_batch({500}, {700}, 64, 8, 9), Layout::kPrefixed, cuda::AttentionBackend::kCudnn);  // MiniMax
    for (int i = 0; i < 36; ++i)  // more (T, S) pairs than the 32 graphs kept
        check_prefill(make_batch({40 + i}, {100 + 3 * i}, 16, 2, 900 + i), Layout::kPrefixed,
                      cuda::AttentionBackend::kCudnn);
    for (const auto& [T, P] : shapes)
        check_prefill(make_batch({T}, {P}, 16, 2, 300 + T + P), Layout::kPrefixed, cuda::AttentionBackend::kCudnn);
    // kv_len_host is refused where it does not apply: several sequences, fewer keys than queries.
    cuda::AttentionParams p;
    p.num_tokens = 8, p.num_seqs = 1, p.num_heads = 16, p.num_kv_heads = 2, p.scale = 0.1f, p.kv_len_host = 4;
    void* fake = reinterpret_cast<void*>(uintptr_t{1} << 20);  // validate only checks alignment
    p.q = p.k = p.v = p.o = fake;
    p.q_stride_token = p.o_stride_token = 16 * kD, p.k_stride_token = p.v_stride_token = 2 * kD;
    p.q_stride_head = p.k_stride_head = p.v_stride_head = p.o_stride_head = kD;
    const Status fewer = cuda::validate(p);
    EXPECT_EQ(fewer.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(fewer.message().find("kv_len_host"), std::string::npos) << fewer.to_string();
    p.kv_len_host = 0;
    EXPECT_TRUE(cuda::validate(p).is_ok());
}

// A short piece after a cached prefix in bucketed cuDNN shapes (kCudnnBuckets): the queries staged in the last rows
// of a power-of-two bucket (a piece just past a power of two split in query pieces), the keys in blocks aligned to
// each piece's end with a padded first block. Against the CPU twin for pieces below, at and across a bucket's size,
// one query, a piece whose keys are exactly its bucket (one causal block), remainders of one key and of a whole
// block, two and three query pieces, MiniMax's 64 / 8 heads; through run() with the workspace too. Refused: too few
// keys for the bucket, no workspace.
TEST_F(AttentionGpu, PrefillInBucketedShapesAgainstCpu) {
    if (!cuda::cudnn_attention_available()) GTEST_SKIP() << "cuDNN SDPA not available in this build/machine";
    using cuda::AttentionBackend;
    struct Case {
        int T, P, Hq, Hkv;
        int64_t target_keys;  // the bound in keys of the bucket's rows (flops = 4 Tb keys Hq D)
        int blocks;           // per query piece ceil(P' / block_keys) + 1: P' = its keys - its Tb, block_keys the power
                              // of two <= min(target, P') (at least 128)
        int pieces;           // query pieces: 2^k queries first while that and the rest's bucket stage fewer rows
    };
    const std::vector<Case> cases = {
        {37, 1000, 16, 2, 256, 5, 1},      // Tb 128, 909 keys before the square: 141 + 3 x 256
        {100, 28, 16, 2, 1 << 20, 1, 1},   // S = Tb = 128: the causal square alone, 28 padding rows
        {128, 0, 16, 2, 1 << 20, 1, 1},    // a full bucket, no prefix
        {1, 5000, 16, 2, 1000, 11, 1},     // one query; blocks of 512, the first 265 keys
        {60, 453, 16, 2, 128, 5, 1},       // 453 + 60 - 128 = 385 = 1 + 3 x 128: a first block of one key
        {64, 576, 16, 2, 128, 5, 1},       // 640 - 128 = 512 = 4 x 128: a first block that is whole
        {300, 4000, 64, 8, 1 << 20, 6, 2}, // 256 (blocks of 2048 over 4000) + 44 (Tb 128, blocks of 4096)
        {513, 600, 16, 2, 1 << 20, 6, 2},  // 512 (a first block of 88 keys in 512) + 1 (Tb 128 over 1113 keys)
        {2062, 3000, 16, 2, 1 << 20, 6, 2},// 2048 + 14, not one bucket of 4096
        {2318, 3000, 16, 2, 1 << 20, 9, 3},// 2048 + 256 + 14
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(testing::Message() << "T=" << c.T << " P=" << c.P << " blocks=" << c.blocks);
        int64_t Tb = 128;
        while (Tb < c.T) Tb *= 2;
        const double flops = 4.0 * double(Tb) * double(c.target_keys) * c.Hq * kD;
        check_prefill(make_batch({c.T}, {c.P}, c.Hq, c.Hkv, 1700 + c.T + c.P), Layout::kPrefixed,
                      AttentionBackend::kCudnnBuckets, flops, c.blocks, c.pieces);
    }
    // run() plans the blocks itself (the largest block_keys) given attention_workspace_bytes.
    check_prefill(make_batch({37}, {3000}, 16, 2, 1801), Layout::kPrefixed, AttentionBackend::kCudnnBuckets);
    check_prefill(make_batch({200}, {900}, 64, 8, 1802), Layout::kPrefixed, AttentionBackend::kCudnnBuckets);
    check_prefill(make_batch({300}, {700}, 16, 2, 1804), Layout::kPrefixed, AttentionBackend::kCudnnBuckets);

    // Fewer keys than the bucket's rows; no workspace.
    const Batch b = make_batch({100}, {10}, 16, 2, 1803);
    DevBuf<uint16_t> dq(b.q.size()), dk(b.k.size()), dv(b.v.size()), dout(b.q.size());
    DevBuf<int32_t> dlen(1);
    ASSERT_TRUE(dlen.upload(b.kv_lens));
    cuda::AttentionParams p;
    p.prefill_backend = AttentionBackend::kCudnnBuckets;
    p.num_tokens = b.T(), p.num_seqs = 1, p.num_heads = b.Hq, p.num_kv_heads = b.Hkv, p.scale = 0.1f;
    p.q = dq.ptr, p.q_stride_token = b.Hq * kD, p.q_stride_head = kD;
    p.k = dk.ptr, p.k_stride_token = b.Hkv * kD, p.k_stride_head = kD;
    p.v = dv.ptr, p.v_stride_token = b.Hkv * kD, p.v_stride_head = kD;
    p.o = dout.ptr, p.o_stride_token = b.Hq * kD, p.o_stride_head = kD;
    p.kv_lens = dlen.ptr, p.kv_len_host = b.kv_lens[0];
    EXPECT_EQ(cuda::run(p, nullptr).code(), StatusCode::kUnimplemented);
    p.num_tokens = 1;  // 1 query over 110 keys: still under the 128-row bucket
    p.kv_len_host = 110;
    EXPECT_EQ(cuda::run(p, nullptr).code(), StatusCode::kUnimplemented);
    p.kv_len_host = 128;
    const Status none = cuda::run(p, nullptr);
    EXPECT_EQ(none.code(), StatusCode::kInvalidArgument) << none.to_string();
    EXPECT_NE(none.message().find("workspace"), std::string::npos) << none.to_string();
}

// kAuto sends a short piece after a long prefix (work >= kCudnnBucketMinFlops) to the bucketed shapes, through the
// model's entry (plan_prefill_blocks, a stop bound of 2e13 flops) and run(); both equal the own kernel's output.
// A piece below the bound stays on the own kernel.
TEST_F(AttentionGpu, AutoRoutesChatTurnsToBucketedShapes) {
    if (!cuda::cudnn_attention_available()) GTEST_SKIP() << "cuDNN SDPA not available in this build/machine";
    using cuda::AttentionBackend;
    const int T = 200, P = 70000, Hq = 64, Hkv = 8;  // 4 T S Hq D = 4.6e11 flops
    std::mt19937_64 rng(2024);
    const int64_t S = P + T;
    const std::vector<float> q = random_normal(int64_t(T) * Hq * kD, rng);
    const std::vector<float> k = random_normal(S * Hkv * kD, rng, 2.0f);
    const std::vector<float> v = random_normal(S * Hkv * kD, rng);
    DevBuf<uint16_t> dq(q.size()), dk(k.size()), dv(v.size()), own(q.size()), via_blocks(q.size()), via_run(q.size());
    DevBuf<int32_t> dlen(1);
    ASSERT_TRUE(dq.upload(to_bf16(q)) && dk.upload(to_bf16(k)) && dv.upload(to_bf16(v)) &&
                dlen.upload(std::vector<int32_t>{int32_t(S)}) && own.fill_bytes(0xff) && via_blocks.fill_bytes(0xff) &&
                via_run.fill_bytes(0xff));
    cuda::AttentionParams p;
    p.num_tokens = T, p.num_seqs = 1, p.num_heads = Hq, p.num_kv_heads = Hkv, p.scale = 1.0f / std::sqrt(float(kD));
    p.q = dq.ptr, p.q_stride_token = Hq * kD, p.q_stride_head = kD;
    p.k = dk.ptr, p.k_stride_token = Hkv * kD, p.k_stride_head = kD;
    p.v = dv.ptr, p.v_stride_token = Hkv * kD, p.v_stride_head = kD;
    p.kv_lens = dlen.ptr, p.kv_len_host = S, p.max_seqlen_q = T, p.max_seqlen_kv = S;
    ASSERT_GE(4.0 * T * double(S) * Hq * kD, cuda::kCudnnBucketMinFlops);

    p.prefill_backend = AttentionBackend::kOwn;
    p.o = own.ptr, p.o_stride_token = Hq * kD, p.o_stride_head = kD;
    ASSERT_TRUE(cuda::run(p, nullptr).is_ok());

    p.prefill_backend = AttentionBackend::kAuto;
    p.o = via_blocks.ptr;
    auto plan = cuda::plan_prefill_blocks(p, 2e13);
    ASSERT_TRUE(plan) << plan.status().to_string();
    EXPECT_TRUE(plan->cudnn);
    ASSERT_EQ(plan->query_pieces, 1);  // 128 + a bucket of 128 for the other 72 is no less than one of 256
    EXPECT_EQ(plan->piece[0].staged_queries, 256);
    EXPECT_EQ(plan->piece[0].block_keys, 65536);
    EXPECT_EQ(plan->count, 3);  // 69944 keys before the square: 4408 + 65536
    EXPECT_EQ(plan->piece[0].first_keys, S - 256 - 65536);
    DevBuf<uint8_t> ws(std::max(plan->workspace_bytes, cuda::attention_workspace_bytes(p)));
    ASSERT_TRUE(ws.fill_bytes(0xff));
    p.workspace = ws.ptr, p.workspace_bytes = plan->workspace_bytes;
    for (int i = 0; i < plan->count; ++i) ASSERT_TRUE(cuda::run_prefill_block(p, *plan, i, nullptr).is_ok());
    p.o = via_run.ptr, p.workspace_bytes = ws.n;
    ASSERT_TRUE(cuda::run(p, nullptr).is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> ref = from_bf16(own.download());
    for (const DevBuf<uint16_t>* got : {&via_blocks, &via_run}) {
        const std::vector<float> x = from_bf16(got->download());
        ASSERT_EQ(count_nan(x), 0u);
        EXPECT_LE(rel_error(x, ref), kTol);
    }

    // A short prefix: below the bound, one block on the own kernel.
    p.kv_len_host = 2000, p.max_seqlen_kv = 2000;
    ASSERT_TRUE(dlen.upload(std::vector<int32_t>{2000}));
    auto small = cuda::plan_prefill_blocks(p, 2e13);
    ASSERT_TRUE(small) << small.status().to_string();
    EXPECT_FALSE(small->cudnn);
    EXPECT_EQ(small->count, 1);
    EXPECT_EQ(cuda::attention_workspace_bytes(p), 0u);
}

TEST_F(AttentionGpu, PrefillRaggedBatchWithCachedPrefix) {
    // New tokens after cached prefixes (chunked prefill / prefix reuse) and a sequence without one, side by side.
    check_prefill(make_batch({1, 127, 128, 300, 65}, {0, 5, 128, 1000, 0}, 16, 2, 9), Layout::kCache,
                  cuda::AttentionBackend::kAuto);
    check_prefill(make_batch({64, 3}, {4097, 0}, 64, 8, 10), Layout::kCache, cuda::AttentionBackend::kAuto);
}

// Several sequences in one call on cuDNN's ragged layout (kCudnn, with its workspace): with and without cached
// prefixes, keys in cache regions (kv_start, gaps between them), sequence counts that are not a power of two (the
// graph's extra batch entries are empty), one query after a long prefix, one sequence through cu_seqlens, MiniMax
// heads.
TEST_F(AttentionGpu, PrefillRaggedBatchCudnnAgainstCpu) {
    if (!cuda::cudnn_sdpa_ragged_available()) GTEST_SKIP() << "cuDNN's ragged SDPA not available in this build/machine";
    using cuda::AttentionBackend;
    check_prefill(make_batch({1, 127, 128, 300, 65}, {0, 5, 128, 1000, 0}, 16, 2, 11), Layout::kCache,
                  AttentionBackend::kCudnn);
    check_prefill(make_batch({64, 3}, {4097, 0}, 64, 8, 12), Layout::kCache, AttentionBackend::kCudnn);
    check_prefill(make_batch({4097}, {0}, 16, 2, 13), Layout::kCache, AttentionBackend::kCudnn);
    check_prefill(make_batch({1, 1, 1}, {3000, 17, 0}, 64, 8, 14), Layout::kCache, AttentionBackend::kCudnn);
    check_prefill(make_batch({513, 1000, 2, 700, 129, 64, 1}, {0, 0, 40, 0, 2000, 0, 127}, 64, 8, 15), Layout::kCache,
                  AttentionBackend::kCudnn);
    // Cache regions out of sequence order, and two sequences reading the same region (a shared prefix).
    Batch shared = make_batch({100, 300, 50}, {700, 200, 0}, 64, 8, 17);
    shared.kv_start = {static_cast<int32_t>(2 * shared.capacity), 0, static_cast<int32_t>(2 * shared.capacity)};
    check_prefill(shared, Layout::kCache, AttentionBackend::kCudnn);
}

// What routes to the ragged layout, and how a batch it cannot take is refused.
TEST_F(AttentionGpu, RaggedRoutingAndRefusals) {
    if (!cuda::cudnn_sdpa_ragged_available()) GTEST_SKIP() << "cuDNN's ragged SDPA not available in this build/machine";
    using cuda::AttentionBackend;
    const Batch b = make_batch({300, 200}, {100, 0}, 16, 2, 16);
    DeviceBatch db(b, Layout::kCache, AttentionBackend::kCudnn, 0.088f);
    ASSERT_TRUE(db.uploaded);
    cuda::AttentionParams& p = db.p;
    // Keys counted on the device with no host bound: cuDNN's key dimension would be unknown.
    p.max_seqlen_kv = 0;
    EXPECT_FALSE(cuda::ragged_prefill_shape(p, AttentionBackend::kCudnn));
    Status st = cuda::run(p, nullptr);
    EXPECT_EQ(st.code(), StatusCode::kUnimplemented) << st.to_string();
    EXPECT_NE(st.to_string().find("max_seqlen_kv"), std::string::npos) << st.to_string();
    p.max_seqlen_kv = 400;
    EXPECT_TRUE(cuda::ragged_prefill_shape(p, AttentionBackend::kCudnn));
    const size_t need = cuda::attention_workspace_bytes(p);
    EXPECT_GT(need, 0u);
    st = cuda::run(p, nullptr);  // no workspace: refused with the bytes it needs
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_NE(st.to_string().find(std::to_string(need)), std::string::npos) << st.to_string();
    // kAuto: this small batch stays on the own kernel; one whose work bound reaches kCudnnBucketMinFlops goes to cuDNN.
    EXPECT_FALSE(cuda::ragged_prefill_shape(p, AttentionBackend::kAuto));
    p.num_heads = 64, p.num_kv_heads = 8, p.max_seqlen_kv = 16384;
    ASSERT_GE(4.0 * double(p.num_tokens) * 16384 * 64 * kD, cuda::kCudnnBucketMinFlops);
    EXPECT_TRUE(cuda::ragged_prefill_shape(p, AttentionBackend::kAuto));
    EXPECT_FALSE(cuda::ragged_prefill_shape(p, AttentionBackend::kOwn));
}

// A sequence with more keys than the host's bound promised (max_seqlen_kv too small) on cuDNN's ragged layout: its
// outputs are NaN, never an attention over a cut-off prefix; the other sequences are right.
TEST_F(AttentionGpu, RaggedSequencePastItsBoundGivesNaN) {
    if (!cuda::cudnn_sdpa_ragged_available()) GTEST_SKIP() << "cuDNN's ragged SDPA not available in this build/machine";
    const Batch b = make_batch({300, 200}, {100, 0}, 16, 2, 18);  // 400 and 200 keys
    const float scale = 1.0f / std::sqrt(float(kD));
    const std::vector<float> ref = cpu_reference(b, scale);
    DeviceBatch db(b, Layout::kCache, cuda::AttentionBackend::kCudnn, scale, /*poison=*/0);
    ASSERT_TRUE(db.uploaded);
    cuda::AttentionParams& p = db.p;
    p.max_seqlen_kv = 200;  // the graph's key bound: 256 < 400
    DevBuf<uint8_t> ws(cuda::attention_workspace_bytes(p));
    p.workspace = ws.ptr, p.workspace_bytes = ws.n;
    const Status st = cuda::run(p, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> got = from_bf16(db.out.download());
    const size_t first = size_t(b.cu[1]) * b.Hq * kD;
    for (size_t i = 0; i < first; ++i) ASSERT_TRUE(std::isnan(got[i])) << "sequence 0, element " << i;
    const std::vector<float> x(got.begin() + first, got.end()), y(ref.begin() + first, ref.end());
    EXPECT_LE(rel_error(x, y), kTol) << "sequence 1";
}

// own_rows: each sequence's rows reached through k_seqs / v_seqs (caches that live apart) instead of kv_start.
void check_decode(const std::vector<int>& lens, int Hq, int Hkv, bool with_workspace, uint64_t seed,
                  bool own_rows = false) {
    SCOPED_TRACE(testing::Message() << "decode N=" << lens.size() << " workspace=" << with_workspace
                                    << " own_rows=" << own_rows);
    std::vector<int> past;
    for (int l : lens) past.push_back(l - 1);
    const Batch b = make_batch(std::vector<int>(lens.size(), 1), past, Hq, Hkv, seed);
    const float scale = 1.0f / std::sqrt(float(kD));
    const std::vector<float> ref = cpu_reference(b, scale);
    DevBuf<uint16_t> dq(b.q.size()), dk(b.k.size()), dv(b.v.size()), dout(b.q.size());
    DevBuf<int32_t> dlen(b.N()), dstart(b.N());
    ASSERT_TRUE(dq.upload(to_bf16(b.q)) && dk.upload(to_bf16(b.k)) && dv.upload(to_bf16(b.v)) &&
                dlen.upload(b.kv_lens) && dstart.upload(b.kv_start) && dout.fill_bytes(0xff));
    cuda::AttentionParams p;
    p.phase = cuda::AttentionPhase::kDecode;
    p.num_tokens = b.N(), p.num_seqs = b.N(), p.num_heads = Hq, p.num_kv_heads = Hkv, p.scale = scale;
    p.q = dq.ptr, p.q_stride_token = Hq * kD, p.q_stride_head = kD;
    p.k = dk.ptr, p.k_stride_token = Hkv * kD, p.k_stride_head = kD;
    p.v = dv.ptr, p.v_stride_token = Hkv * kD, p.v_stride_head = kD;
    p.o = dout.ptr, p.o_stride_token = Hq * kD, p.o_stride_head = kD;
    p.kv_lens = dlen.ptr, p.kv_start = dstart.ptr;
    p.max_seqlen_kv = *std::max_element(lens.begin(), lens.end());
    DevBuf<const void*> k_seqs(own_rows ? b.N() : 0), v_seqs(own_rows ? b.N() : 0);
    if (own_rows) {
        std::vector<const void*> kp, vp;
        for (int n = 0; n < b.N(); ++n) {
            kp.push_back(dk.ptr + int64_t{b.kv_start[n]} * Hkv * kD);
            vp.push_back(dv.ptr + int64_t{b.kv_start[n]} * Hkv * kD);
        }
        ASSERT_TRUE(k_seqs.upload(kp) && v_seqs.upload(vp));
        p.k = p.v = nullptr, p.kv_start = nullptr;
        p.k_seqs = k_seqs.ptr, p.v_seqs = v_seqs.ptr;
    }
    DevBuf<char> ws(with_workspace ? cuda::attention_workspace_bytes(p) : 0);
    if (with_workspace) {
        ASSERT_TRUE(ws.fill_bytes(0xff));
        p.workspace = ws.ptr, p.workspace_bytes = ws.n;
    }
    const Status st = cuda::run(p, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    compare(b, from_bf16(dout.download()), ref);
}

TEST_F(AttentionGpu, DecodeSplitKvAgainstCpu) {
    check_decode({1}, 64, 8, true, 21);
    check_decode({1, 127, 128, 4097, 20000}, 64, 8, true, 22);
    check_decode({1, 127, 128, 4097, 20000}, 64, 8, false, 23);  // one split per sequence
    check_decode({70000}, 64, 8, true, 24);                      // long context: many splits
    check_decode({33, 1000, 2}, 16, 1, true, 25);                // group of 16 query heads
    check_decode({500, 9}, 6, 3, true, 26);                      // group of 2
}

// A decode batch whose sequences' caches live apart (continuous batching): rows through k_seqs / v_seqs.
TEST_F(AttentionGpu, DecodeOverSeparateCachesAgainstCpu) {
    check_decode({1, 127, 4097, 20000}, 64, 8, true, 41, /*own_rows=*/true);
    check_decode({300, 5}, 16, 2, false, 42, /*own_rows=*/true);
    cuda::AttentionParams p;  // both or neither, decode only
    p.phase = cuda::AttentionPhase::kDecode;
    p.num_tokens = p.num_seqs = 2, p.num_heads = 8, p.num_kv_heads = 2, p.scale = 0.1f;
    int dummy[4] = {};
    const void* ptrs[2] = {dummy, dummy};
    p.q = p.o = dummy, p.kv_lens = dummy, p.k_seqs = ptrs;
    EXPECT_EQ(cuda::run(p, nullptr).code(), StatusCode::kInvalidArgument);
    p.v_seqs = ptrs, p.phase = cuda::AttentionPhase::kPrefill;
    EXPECT_EQ(cuda::run(p, nullptr).code(), StatusCode::kInvalidArgument);
}

// The new keys/values of a decode batch land in row positions[b] of each sequence's cache and nowhere else.
TEST_F(AttentionGpu, KvAppendWritesEachSequencesRow) {
    const int B = 5, W = 8 * kD;
    const int64_t rows = 40;
    const std::vector<int32_t> pos = {0, 39, 7, 8, 20};
    std::mt19937_64 rng(51);
    const std::vector<float> kn = bf16_round(random_normal(B * W, rng)), vn = bf16_round(random_normal(B * W, rng));
    // Each sequence's cache is its own region (rows + a gap apart) of one allocation.
    const int64_t region = (rows + 3) * W;
    DevBuf<uint16_t> kc(B * region), vc(B * region);
    ASSERT_TRUE(kc.fill_bytes(0x11) && vc.fill_bytes(0x22));
    std::vector<void*> kp, vp;
    for (int b = 0; b < B; ++b) kp.push_back(kc.ptr + b * region), vp.push_back(vc.ptr + b * region);
    DevBuf<uint16_t> dk(kn.size()), dv(vn.size());
    DevBuf<int32_t> dpos(B);
    DevBuf<void*> dkp(B), dvp(B);
    ASSERT_TRUE(dk.upload(to_bf16(kn)) && dv.upload(to_bf16(vn)) && dpos.upload(pos) && dkp.upload(kp) && dvp.upload(vp));
    const Status st = cuda::run(cuda::KvAppendParams{.num_seqs = B, .width = W, .k_new = dk.ptr, .v_new = dv.ptr,
                                                     .new_stride = W, .positions = dpos.ptr, .k_seqs = dkp.ptr,
                                                     .v_seqs = dvp.ptr, .row_stride = W},
                                nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    const auto kb = to_bf16(kn), vb = to_bf16(vn);
    const auto gk = kc.download(), gv = vc.download();
    for (int b = 0; b < B; ++b)
        for (int64_t r = 0; r < region / W; ++r)
            for (int c = 0; c < W; ++c) {
                const bool row = r == pos[size_t(b)];
                const size_t i = size_t(b * region + r * W + c);
                ASSERT_EQ(gk[i], row ? kb[size_t(b * W + c)] : uint16_t{0x1111}) << "sequence " << b << " row " << r;
                ASSERT_EQ(gv[i], row ? vb[size_t(b * W + c)] : uint16_t{0x2222}) << "sequence " << b << " row " << r;
            }
    EXPECT_EQ(cuda::run(cuda::KvAppendParams{.num_seqs = B, .width = 12}, nullptr).code(), StatusCode::kInvalidArgument);
}

// The split merge with the most splits it allows (256; VOLT_ATTENTION_DECODE_SPLITS overrides the plan) and with
// sequences so short that most of their splits are empty (log-sum-exp -inf).
TEST_F(AttentionGpu, DecodeManySplitsAgainstCpu) {
    ASSERT_EQ(setenv("VOLT_ATTENTION_DECODE_SPLITS", "256", 1), 0);
    check_decode({2, 5000, 131072}, 64, 8, true, 27);
    ASSERT_EQ(setenv("VOLT_ATTENTION_DECODE_SPLITS", "37", 1), 0);
    check_decode({40000, 1, 777}, 16, 2, true, 28);
    ASSERT_EQ(unsetenv("VOLT_ATTENTION_DECODE_SPLITS"), 0);
}

TEST_F(AttentionGpu, ShortSanitizerRun) {
    check_prefill(make_batch({70}, {0}, 4, 2, 31), Layout::kPacked, cuda::AttentionBackend::kOwn);
    check_prefill(make_batch({3, 66}, {5, 0}, 4, 2, 32), Layout::kCache, cuda::AttentionBackend::kOwn);
    check_decode({1, 700}, 8, 2, true, 33);
    check_decode({1, 700}, 8, 2, false, 34);
    ASSERT_EQ(setenv("VOLT_ATTENTION_DECODE_SPLITS", "4", 1), 0);  // the split merge under the sanitizer
    check_decode({3, 2100}, 8, 2, true, 35);
    ASSERT_EQ(unsetenv("VOLT_ATTENTION_DECODE_SPLITS"), 0);
}

}  // namespace
}  // namespace volt
