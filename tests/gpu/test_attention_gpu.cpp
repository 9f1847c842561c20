// GPU softmax attention against the CPU twin (cpu::attention, fp32 on the widened bf16 inputs): causal GQA prefill
// at 1, 127, 128 and 4097 tokens (own kernel, and cuDNN's SDPA where available), ragged batches with cached prefixes,
// and split-KV decode over a batch of sequences of different lengths (with and without the split workspace).
// Fresh random inputs, poisoned outputs; bf16 outputs <= 1e-2 relative per (sequence, head).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/attention_cuda.h"
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

enum class Layout { kPacked, kCache };

// Prefill through cuda::run. kPacked: one sequence, k/v packed like q (the cuDNN-eligible form); kCache: the
// batch's cache regions through cu_seqlens / kv_lens / kv_start.
void check_prefill(const Batch& b, Layout layout, cuda::AttentionBackend backend) {
    SCOPED_TRACE(testing::Message() << "N=" << b.N() << " T=" << b.T() << " layout=" << static_cast<int>(layout)
                                    << " backend=" << static_cast<int>(backend));
    const float scale = 1.0f / std::sqrt(float(kD));
    const std::vector<float> ref = cpu_reference(b, scale);
    DevBuf<uint16_t> dq(b.q.size()), dk(b.k.size()), dv(b.v.size()), dout(b.q.size());
    DevBuf<int32_t> dcu(b.cu.size()), dlen(b.N()), dstart(b.N());
    ASSERT_TRUE(dq.upload(to_bf16(b.q)) && dk.upload(to_bf16(b.k)) && dv.upload(to_bf16(b.v)) &&
                dcu.upload(b.cu) && dlen.upload(b.kv_lens) && dstart.upload(b.kv_start) && dout.fill_bytes(0xff));
    cuda::AttentionParams p;
    p.prefill_backend = backend;
    p.num_tokens = b.T(), p.num_seqs = b.N(), p.num_heads = b.Hq, p.num_kv_heads = b.Hkv, p.scale = scale;
    p.q = dq.ptr, p.q_stride_token = b.Hq * kD, p.q_stride_head = kD;
    p.k = dk.ptr, p.k_stride_token = b.Hkv * kD, p.k_stride_head = kD;
    p.v = dv.ptr, p.v_stride_token = b.Hkv * kD, p.v_stride_head = kD;
    p.o = dout.ptr, p.o_stride_token = b.Hq * kD, p.o_stride_head = kD;
    if (layout == Layout::kCache) {
        p.cu_seqlens = dcu.ptr, p.kv_lens = dlen.ptr, p.kv_start = dstart.ptr;
        int64_t mq = 0, mk = 0;
        for (int n = 0; n < b.N(); ++n) mq = std::max<int64_t>(mq, b.q_lens[n]), mk = std::max<int64_t>(mk, b.kv_lens[n]);
        p.max_seqlen_q = mq, p.max_seqlen_kv = mk;
    }
    const Status st = cuda::run(p, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
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

TEST_F(AttentionGpu, PrefillRaggedBatchWithCachedPrefix) {
    // New tokens after cached prefixes (chunked prefill / prefix reuse) and a sequence without one, side by side.
    check_prefill(make_batch({1, 127, 128, 300, 65}, {0, 5, 128, 1000, 0}, 16, 2, 9), Layout::kCache,
                  cuda::AttentionBackend::kAuto);
    check_prefill(make_batch({64, 3}, {4097, 0}, 64, 8, 10), Layout::kCache, cuda::AttentionBackend::kAuto);
}

void check_decode(const std::vector<int>& lens, int Hq, int Hkv, bool with_workspace, uint64_t seed) {
    SCOPED_TRACE(testing::Message() << "decode N=" << lens.size() << " workspace=" << with_workspace);
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
