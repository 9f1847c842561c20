// GPU dense GEMM (cuBLASLt) and the SwiGLU / GELU passes against their CPU twins (cpu::gemm in fp32 on the widened
// bf16 inputs, cpu::swiglu, cpu::gelu), over odd shapes, strided operands, both weight layouts, beta != 0 and every
// epilogue; outputs poisoned first. Tolerance: bf16 outputs <= 1e-2 relative (issue 7). The FP8 block-scaled inputs
// (Hopper) against cpu::gemm on the operands the CPU quantizer twins make and dequantise.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <vector>

#include "kernels/activation.h"
#include "kernels/gelu.h"
#include "kernels/gemm.h"
#include "kernels/gemm_cuda.h"
#include "kernels/moe.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/kernels/lightning_reference.h"

namespace volt {
namespace {

using namespace volt::test;
constexpr double kTol = 1e-2;

class GemmGpu : public GpuTest {};

struct Case {
    int64_t m, n, k;
    int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // extra row-stride elements
    bool b_transposed = true;
    cuda::GemmEpilogue epilogue = cuda::GemmEpilogue::kNone;
    float alpha = 1.0f, beta = 0.0f;
    bool tune_configs = false;
};

void check_gemm(const Case& c, uint64_t seed, cuda::GemmPlan* plan = nullptr) {
    SCOPED_TRACE(testing::Message() << "M=" << c.m << " N=" << c.n << " K=" << c.k << " epilogue="
                                    << static_cast<int>(c.epilogue) << " bT=" << c.b_transposed << " beta=" << c.beta);
    std::mt19937_64 rng(seed);
    const int64_t lda = c.k + c.pad_a, ldb = (c.b_transposed ? c.k : c.n) + c.pad_b, ldc = c.n + c.pad_c;
    const int64_t b_rows = c.b_transposed ? c.n : c.k;
    const std::vector<float> a = bf16_round(random_normal(c.m * lda, rng));
    const std::vector<float> b = bf16_round(random_normal(b_rows * ldb, rng, 1.0f / std::sqrt(float(c.k))));
    const std::vector<float> bias = bf16_round(random_normal(c.n, rng, 0.5f));
    const std::vector<float> c0 = bf16_round(random_normal(c.m * ldc, rng));
    const bool with_bias = c.epilogue == cuda::GemmEpilogue::kBias || c.epilogue == cuda::GemmEpilogue::kBiasGelu;
    const bool with_gelu = c.epilogue == cuda::GemmEpilogue::kGelu || c.epilogue == cuda::GemmEpilogue::kBiasGelu;

    // CPU twin: fp32 GEMM, + bias, GELU.
    std::vector<float> ref = c0;
    ASSERT_TRUE(cpu::gemm({.m = c.m, .n = c.n, .k = c.k, .a = a.data(), .lda = lda, .b = b.data(), .ldb = ldb,
                           .b_transposed = c.b_transposed, .c = ref.data(), .ldc = ldc, .alpha = c.alpha,
                           .beta = c.beta})
                    .is_ok());
    if (with_bias)
        for (int64_t i = 0; i < c.m; ++i)
            for (int64_t j = 0; j < c.n; ++j) ref[i * ldc + j] += bias[j];
    if (with_gelu) {
        for (int64_t i = 0; i < c.m; ++i) {
            ASSERT_TRUE(cpu::gelu({.rows = 1, .width = c.n, .x = &ref[i * ldc], .out = &ref[i * ldc]}).is_ok());
        }
    }

    DevBuf<uint16_t> da(a.size()), db(b.size()), dbias(bias.size()), dc(c0.size());
    ASSERT_TRUE(da.upload(to_bf16(a)) && db.upload(to_bf16(b)) && dbias.upload(to_bf16(bias)));
    if (c.beta != 0.0f) {
        ASSERT_TRUE(dc.upload(to_bf16(c0)));
    } else {
        ASSERT_TRUE(dc.fill_bytes(0xff));  // NaN everywhere: beta == 0 must not read C
    }
    cuda::GemmParams p;
    p.m = c.m, p.n = c.n, p.k = c.k;
    p.a = da.ptr, p.lda = lda;
    p.b = db.ptr, p.ldb = ldb, p.b_transposed = c.b_transposed;
    p.c = dc.ptr, p.ldc = ldc;
    p.bias = with_bias ? dbias.ptr : nullptr;
    p.epilogue = c.epilogue;
    p.alpha = c.alpha, p.beta = c.beta;
    p.tune_configs = c.tune_configs;
    const Status st = plan ? plan->run(p, nullptr) : cuda::run(p, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> got = from_bf16(dc.download());
    std::vector<float> g, r;
    for (int64_t i = 0; i < c.m; ++i)
        for (int64_t j = 0; j < c.n; ++j) {
            g.push_back(got[i * ldc + j]);
            r.push_back(ref[i * ldc + j]);
        }
    ASSERT_EQ(count_nan(g), 0u) << "unwritten outputs";
    EXPECT_LE(rel_error(g, r), kTol);
}

TEST_F(GemmGpu, OddShapesEveryEpilogue) {
    using E = cuda::GemmEpilogue;
    uint64_t seed = 1;
    for (E e : {E::kNone, E::kBias, E::kGelu, E::kBiasGelu}) {
        check_gemm({.m = 1, .n = 8, .k = 8, .epilogue = e}, seed++);
        check_gemm({.m = 3, .n = 40, .k = 24, .epilogue = e}, seed++);
        check_gemm({.m = 17, .n = 136, .k = 72, .pad_a = 8, .pad_c = 16, .epilogue = e}, seed++);
        check_gemm({.m = 129, .n = 264, .k = 1000, .epilogue = e}, seed++);
        check_gemm({.m = 577, .n = 1024, .k = 1024, .epilogue = e}, seed++);  // a CLIP layer's projection
    }
    // Sizes with no multiple of 8 anywhere (no GELU: it wants N % 8 == 0).
    check_gemm({.m = 5, .n = 37, .k = 19}, seed++);
    check_gemm({.m = 33, .n = 7, .k = 131, .pad_a = 3, .pad_b = 5, .pad_c = 1, .epilogue = E::kBias}, seed++);
}

TEST_F(GemmGpu, LayoutsAlphaBeta) {
    check_gemm({.m = 45, .n = 96, .k = 200, .b_transposed = false}, 21);
    check_gemm({.m = 45, .n = 96, .k = 200, .alpha = 0.5f, .beta = 1.0f}, 22);
    check_gemm({.m = 8, .n = 64, .k = 64, .b_transposed = false, .epilogue = cuda::GemmEpilogue::kBiasGelu,
                .alpha = 2.0f, .beta = 0.25f},
               23);
}

TEST_F(GemmGpu, ModelShapesDecodeAndPrefill) {
    // MiniMax projections at decode (M = 1, 8) and a short prefill: qkv 6144 -> 24576 is trimmed to 3072 columns to
    // keep the fp32 CPU twin quick; K = 6144 and 8192 as in the model.
    check_gemm({.m = 1, .n = 3072, .k = 6144}, 31);
    check_gemm({.m = 8, .n = 1024, .k = 8192}, 32);
    check_gemm({.m = 300, .n = 2048, .k = 6144}, 33);
}

TEST_F(GemmGpu, PlanCachesShapes) {
    auto plan = cuda::GemmPlan::create(size_t{8} << 20);
    ASSERT_TRUE(plan.has_value()) << plan.status().to_string();
    check_gemm({.m = 64, .n = 128, .k = 256}, 41, plan->get());
    check_gemm({.m = 64, .n = 128, .k = 256}, 42, plan->get());
    EXPECT_EQ((*plan)->cached_shapes(), 1u);
    check_gemm({.m = 65, .n = 128, .k = 256}, 43, plan->get());
    EXPECT_EQ((*plan)->cached_shapes(), 2u);
}

// Decode products (M <= 64, a weight past L2's size, beta 0) get their algorithm by timing on the first run
// (kernels/gemm_cuda.h) and still match the CPU twin; smaller weights, beta != 0 and a first run under stream capture
// keep the heuristic's first. An fp32 C (the lm_head's logits) likewise.
TEST_F(GemmGpu, DecodeProductsPickTheirAlgorithmByTiming) {
    auto plan = cuda::GemmPlan::create(size_t{8} << 20);
    ASSERT_TRUE(plan.has_value()) << plan.status().to_string();
    const int64_t n = 8192, k = cuda::kGemmTuneMinWeightBytes / 2 / n;  // a weight of exactly the threshold
    check_gemm({.m = 1, .n = n, .k = k}, 61, plan->get());
    check_gemm({.m = 64, .n = n, .k = k}, 62, plan->get());
    EXPECT_EQ((*plan)->tuned_shapes(), 2u);
    check_gemm({.m = 65, .n = n, .k = k}, 63, plan->get());                // prefill rows
    check_gemm({.m = 1, .n = n, .k = k, .beta = 1.0f}, 64, plan->get());   // accumulates into C
    check_gemm({.m = 1, .n = 1024, .k = 1024}, 65, plan->get());           // a small weight
    EXPECT_EQ((*plan)->tuned_shapes(), 2u);
    EXPECT_EQ((*plan)->cached_shapes(), 5u);

    // fp32 C, tuned, against the fp32 CPU twin.
    std::mt19937_64 rng(66);
    const int64_t m = 3;
    const std::vector<float> a = bf16_round(random_normal(m * k, rng));
    const std::vector<float> b = bf16_round(random_normal(n * k, rng, 1.0f / std::sqrt(float(k))));
    std::vector<float> ref(m * n);
    ASSERT_TRUE(cpu::gemm({.m = m, .n = n, .k = k, .a = a.data(), .lda = k, .b = b.data(), .ldb = k,
                           .b_transposed = true, .c = ref.data(), .ldc = n})
                    .is_ok());
    DevBuf<uint16_t> da(a.size()), db(b.size());
    DevBuf<float> dc(ref.size());
    ASSERT_TRUE(da.upload(to_bf16(a)) && db.upload(to_bf16(b)) && dc.fill_bytes(0xff));
    cuda::GemmParams p;
    p.m = m, p.n = n, p.k = k, p.a = da.ptr, p.lda = k, p.b = db.ptr, p.ldb = k, p.c = dc.ptr, p.ldc = n;
    p.c_fp32 = true;
    ASSERT_TRUE((*plan)->run(p, nullptr).is_ok());
    EXPECT_EQ((*plan)->tuned_shapes(), 3u);
    std::vector<float> got = dc.download();
    ASSERT_EQ(count_nan(got), 0u);
    EXPECT_LE(rel_error(got, ref), 1e-5);
    p.epilogue = cuda::GemmEpilogue::kGelu;
    EXPECT_EQ((*plan)->run(p, nullptr).code(), StatusCode::kInvalidArgument);  // fp32 C takes no epilogue
    p.epilogue = cuda::GemmEpilogue::kNone;

    // A first run while the stream is captured (rows 0 and 1 only: a new shape): planned with the first-ranked
    // algorithm, and the graph computes it.
    p.m = 2;
    ASSERT_TRUE(dc.fill_bytes(0xff));
    cudaStream_t stream = nullptr;
    CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    const Status captured = (*plan)->run(p, stream);
    CUDA_OK(cudaStreamEndCapture(stream, &graph));
    ASSERT_TRUE(captured.is_ok()) << captured.to_string();
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    EXPECT_EQ((*plan)->tuned_shapes(), 3u);
    EXPECT_EQ((*plan)->cached_shapes(), 7u);
    got = dc.download();
    got.resize(2 * n), ref.resize(2 * n);
    EXPECT_EQ(count_nan(got), 0u);
    EXPECT_LE(rel_error(got, ref), 1e-5);
    CUDA_OK(cudaGraphExecDestroy(exec));
    CUDA_OK(cudaGraphDestroy(graph));
    CUDA_OK(cudaStreamDestroy(stream));
}

// Large products that ask for tune_configs (the ViT's qkv and fc1) time a few configurations beside the heuristic's
// first choice (kernels/gemm_cuda.h): whichever wins, the outputs are bitwise those of a plan that did not tune, for
// the bias and the tanh-GELU epilogues, and beta 1 with a scratch for the timing runs; beta != 0 without one (or with
// one less aligned than C) and a product under the size threshold are planned untimed.
TEST_F(GemmGpu, TunedConfigurationsGiveTheHeuristicsOutputsBitwise) {
    auto plain = cuda::GemmPlan::create(), tuned = cuda::GemmPlan::create();
    ASSERT_TRUE(plain.has_value() && tuned.has_value());
    std::mt19937_64 rng(71);
    const int64_t m = 4616, k = 1024;  // 8 crops' rows, ViT-L's width
    const std::vector<float> a = bf16_round(random_normal(m * k, rng));
    const std::vector<float> w = bf16_round(random_normal(4096 * k, rng, 1.0f / 32.0f));
    const std::vector<float> bias = bf16_round(random_normal(4096, rng, 0.5f));
    DevBuf<uint16_t> da(a.size()), dw(w.size()), dbias(bias.size()), c1(m * 4096), c2(m * 4096);
    ASSERT_TRUE(da.upload(to_bf16(a)) && dw.upload(to_bf16(w)) && dbias.upload(to_bf16(bias)));
    for (const auto& [n, epilogue] : {std::pair{int64_t{3072}, cuda::GemmEpilogue::kBias},
                                      std::pair{int64_t{4096}, cuda::GemmEpilogue::kBiasGeluTanh}}) {
        cuda::GemmParams p;
        p.m = m, p.n = n, p.k = k, p.a = da.ptr, p.lda = k, p.b = dw.ptr, p.ldb = k, p.ldc = n;
        p.bias = dbias.ptr, p.epilogue = epilogue;
        ASSERT_TRUE(c1.fill_bytes(0xff) && c2.fill_bytes(0xff));
        p.c = c1.ptr;
        ASSERT_TRUE((*plain)->run(p, nullptr).is_ok());
        p.c = c2.ptr, p.tune_configs = true;
        for (int i = 0; i < 2; ++i) ASSERT_TRUE((*tuned)->run(p, nullptr).is_ok());  // planned (and timed), then again
        CUDA_OK(cudaDeviceSynchronize());
        std::vector<uint16_t> want = c1.download(), got = c2.download();
        want.resize(size_t(m * n)), got.resize(size_t(m * n));  // the buffers hold the widest product's rows
        EXPECT_EQ(count_nan(from_bf16(got)), 0u);
        EXPECT_TRUE(want == got) << "N=" << n << ": the tuned plan's outputs differ from the heuristic's";
    }
    // Accumulating into C (the ViT's residual stream) with a scratch output: the timing runs write the scratch and
    // read C, so C holds C + A W^T + bias once, bitwise what the untuned plan leaves.
    {
        const int64_t n = 1024;
        const std::vector<uint16_t> c0 = to_bf16(bf16_round(random_normal(m * n, rng)));
        DevBuf<uint16_t> scratch(m * n);
        ASSERT_TRUE(c1.upload(c0) && c2.upload(c0) && scratch.fill_bytes(0xff));
        cuda::GemmParams p;
        p.m = m, p.n = n, p.k = k, p.a = da.ptr, p.lda = k, p.b = dw.ptr, p.ldb = k, p.ldc = n;
        p.bias = dbias.ptr, p.epilogue = cuda::GemmEpilogue::kBias, p.beta = 1.0f;
        p.c = c1.ptr;
        ASSERT_TRUE((*plain)->run(p, nullptr).is_ok());
        p.c = c2.ptr, p.tune_configs = true, p.tune_scratch = scratch.ptr;
        ASSERT_TRUE((*tuned)->run(p, nullptr).is_ok());
        CUDA_OK(cudaDeviceSynchronize());
        std::vector<uint16_t> want = c1.download(), got = c2.download();
        want.resize(size_t(m * n)), got.resize(size_t(m * n));
        EXPECT_EQ(count_nan(from_bf16(got)), 0u);
        EXPECT_TRUE(want == got) << "beta 1: the tuned plan's outputs differ from the heuristic's";
        EXPECT_EQ(count_nan(from_bf16(scratch.download())), 0u) << "the timing runs did not write the scratch";
        p.tune_scratch = p.c;  // the scratch must be another buffer
        EXPECT_EQ((*tuned)->run(p, nullptr).code(), StatusCode::kInvalidArgument);
        // A scratch less aligned than C (16 vs 256 bytes): the product (another row count, a new shape) is planned
        // untimed and the scratch left as it was.
        ASSERT_TRUE(scratch.fill_bytes(0xff));
        p.m = m - 16, p.tune_scratch = scratch.ptr + 8;
        ASSERT_TRUE((*tuned)->run(p, nullptr).is_ok());
        CUDA_OK(cudaDeviceSynchronize());
        const std::vector<float> untouched = from_bf16(scratch.download());
        EXPECT_EQ(count_nan(untouched), untouched.size()) << "a less aligned scratch was written";
    }
    EXPECT_EQ((*plain)->tuned_shapes(), 0u);
    const size_t tuned_before = (*tuned)->tuned_shapes();
    // Accumulating into C without a scratch (another row count: the plan caches by shape): timing runs would add the
    // product to C again each time, so it is planned untimed and C holds C + A W^T + bias once (the CPU twin).
    check_gemm({.m = 4608, .n = 1024, .k = 1024, .epilogue = cuda::GemmEpilogue::kBias, .beta = 1.0f,
                .tune_configs = true},
               72, tuned->get());
    cuda::GemmParams small;  // under kGemmConfigTuneMinMacs: planned untimed
    DevBuf<uint16_t> sc(64 * 3072);
    small.m = 64, small.n = 3072, small.k = 1024, small.a = da.ptr, small.lda = k, small.b = dw.ptr, small.ldb = k;
    small.c = sc.ptr, small.ldc = 3072, small.tune_configs = true;
    ASSERT_TRUE((*tuned)->run(small, nullptr).is_ok());
    EXPECT_EQ((*tuned)->tuned_shapes(), tuned_before);
    // qkv, fc1, beta 1 with a scratch, with a less aligned one and without one, the small one
    EXPECT_EQ((*tuned)->cached_shapes(), 6u);
}

// The algorithm timings the benchmark reads: the heuristic's ranks in order, each run and timed, C left finite; bad
// counts refused.
TEST_F(GemmGpu, TimeAlgorithmsTimesTheHeuristicsRanks) {
    auto plan = cuda::GemmPlan::create(size_t{8} << 20);
    ASSERT_TRUE(plan.has_value()) << plan.status().to_string();
    std::mt19937_64 rng(51);
    const int64_t m = 256, n = 512, k = 384;
    DevBuf<uint16_t> da(m * k), db(n * k), dbias(n), dc(m * n);
    ASSERT_TRUE(da.upload(to_bf16(random_normal(m * k, rng))) && db.upload(to_bf16(random_normal(n * k, rng, 0.05f))) &&
                dbias.upload(to_bf16(random_normal(n, rng))));
    cuda::GemmParams p;
    p.m = m, p.n = n, p.k = k, p.a = da.ptr, p.lda = k, p.b = db.ptr, p.ldb = k, p.c = dc.ptr, p.ldc = n;
    p.bias = dbias.ptr, p.epilogue = cuda::GemmEpilogue::kBias;
    auto t = (*plan)->time_algorithms(p, 4, 3, nullptr);
    ASSERT_TRUE(t.has_value()) << t.status().to_string();
    ASSERT_GE(t->size(), 1u);
    for (size_t i = 0; i < t->size(); ++i) {
        EXPECT_EQ((*t)[i].rank, int(i));
        EXPECT_TRUE((*t)[i].error.empty()) << (*t)[i].error;
        EXPECT_GT((*t)[i].ms, 0.0) << (*t)[i].config;
        EXPECT_NE((*t)[i].config.find("algo "), std::string::npos);
    }
    EXPECT_EQ(count_nan(from_bf16(dc.download())), 0u);
    EXPECT_EQ((*plan)->time_algorithms(p, 0, 3, nullptr).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*plan)->cached_shapes(), 0u);  // timing plans nothing
}

TEST_F(GemmGpu, RejectsBadParams) {
    cuda::GemmParams p;
    p.m = 4, p.n = 4, p.k = 4, p.lda = 2, p.ldb = 4, p.ldc = 4;
    uint16_t dummy[64];
    p.a = p.b = dummy;
    p.c = dummy;
    EXPECT_EQ(cuda::run(p, nullptr).code(), StatusCode::kInvalidArgument);  // lda < K
    p.lda = 4;
    p.epilogue = cuda::GemmEpilogue::kBias;  // no bias pointer
    EXPECT_EQ(cuda::run(p, nullptr).code(), StatusCode::kInvalidArgument);
}

// C = A W^T with A's rows quantised per 128 columns and W per 128 x 128 block (cpu::fp8_block_quantize, the GPU
// quantizers' bit-exact twin): the cuBLASLt block-scaled product against cpu::gemm on the dequantised operands.
void check_fp8_gemm(int64_t m, int64_t n, int64_t k, uint64_t seed) {
    SCOPED_TRACE(testing::Message() << "FP8 M=" << m << " N=" << n << " K=" << k);
    std::mt19937_64 rng(seed);
    const int64_t kb = k / 128, kb4 = (kb + 3) / 4 * 4, nb = (n + 127) / 128;
    std::vector<float> a = bf16_round(random_normal(m * k, rng)), w = bf16_round(random_normal(n * k, rng, 0.05f));
    for (int64_t i = 0; i < k; ++i) a[i] *= 30.0f;  // one row with a larger range: its own scales
    std::vector<uint8_t> aq(m * k), wq(n * k);
    std::vector<float> as_rows(m * kb), ws(nb * kb), a_deq(m * k), w_deq(n * k);
    for (int64_t r = 0; r < m; ++r) {
        ASSERT_TRUE(cpu::fp8_block_quantize(1, k, &a[r * k], &aq[r * k], &as_rows[r * kb]).is_ok());
        ASSERT_TRUE(cpu::fp8_block_dequantize(1, k, &aq[r * k], &as_rows[r * kb], &a_deq[r * k]).is_ok());
    }
    ASSERT_TRUE(cpu::fp8_block_quantize(n, k, w.data(), wq.data(), ws.data()).is_ok());
    ASSERT_TRUE(cpu::fp8_block_dequantize(n, k, wq.data(), ws.data(), w_deq.data()).is_ok());
    // cuBLASLt's layouts: A's scales [K/128, M] (M contiguous), W's rows of blocks padded to a multiple of 4.
    std::vector<float> as(kb * m), ws4(nb * kb4, 0.0f);
    for (int64_t r = 0; r < m; ++r)
        for (int64_t b = 0; b < kb; ++b) as[b * m + r] = as_rows[r * kb + b];
    for (int64_t r = 0; r < nb; ++r)
        for (int64_t b = 0; b < kb; ++b) ws4[r * kb4 + b] = ws[r * kb + b];
    std::vector<float> ref(m * n);
    ASSERT_TRUE(cpu::gemm({.m = m, .n = n, .k = k, .a = a_deq.data(), .lda = k, .b = w_deq.data(), .ldb = k,
                           .c = ref.data(), .ldc = n})
                    .is_ok());
    DevBuf<uint8_t> da(aq.size()), dw(wq.size());
    DevBuf<float> das(as.size()), dws(ws4.size());
    DevBuf<uint16_t> dc(m * n);
    ASSERT_TRUE(da.upload(aq) && dw.upload(wq) && das.upload(as) && dws.upload(ws4) && dc.fill_bytes(0xff));
    cuda::GemmParams p;
    p.m = m, p.n = n, p.k = k, p.a = da.ptr, p.lda = k, p.b = dw.ptr, p.ldb = k, p.c = dc.ptr, p.ldc = n;
    p.inputs = cuda::GemmInputs::kFp8E4M3BlockScaled, p.a_scales = das.ptr, p.b_scales = dws.ptr;
    const Status st = cuda::run(p, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> got = from_bf16(dc.download());
    ASSERT_EQ(count_nan(got), 0u) << "unwritten outputs";
    const double err = rel_error(got, ref);
    std::printf("[fp8 gemm] M=%lld N=%lld K=%lld: rel err vs the dequantised product %.2e\n", (long long)m,
                (long long)n, (long long)k, err);
    EXPECT_LE(err, kTol);
    for (int64_t r = 0; r < m; ++r) {  // every row: a wrong row scale must not hide in the norm
        const std::vector<float> g(got.begin() + r * n, got.begin() + (r + 1) * n),
            e(ref.begin() + r * n, ref.begin() + (r + 1) * n);
        ASSERT_LE(rel_error(g, e), 2 * kTol) << "row " << r;
    }
}

TEST_F(GemmGpu, Fp8BlockScaledAgainstCpu) {
    if (!on_hopper()) GTEST_SKIP() << "cuBLASLt's block-scaled FP8 runs on sm_90 only";
    check_fp8_gemm(4, 128, 128, 81);
    check_fp8_gemm(132, 264, 384, 82);    // a partial row of weight blocks; K / 128 = 3: padded scale rows
    check_fp8_gemm(36, 640, 640, 83);     // K / 128 = 5
    check_fp8_gemm(512, 1024, 2048, 84);
    check_fp8_gemm(8, 9216, 6144, 85);    // a MiniMax expert's w1
}

TEST_F(GemmGpu, Fp8BlockScaledRejectsBadParams) {
    uint8_t dummy[64];
    alignas(16) float scales[16];
    cuda::GemmParams p;
    p.m = 4, p.n = 16, p.k = 128, p.a = dummy, p.lda = 128, p.b = dummy, p.ldb = 128, p.c = dummy, p.ldc = 16;
    p.inputs = cuda::GemmInputs::kFp8E4M3BlockScaled, p.a_scales = scales, p.b_scales = scales;
    EXPECT_TRUE(cuda::validate(p).is_ok());
    for (auto bad : {+[](cuda::GemmParams& q) { q.m = 6; },  // M not a multiple of 4
                     +[](cuda::GemmParams& q) { q.k = 96, q.lda = q.ldb = 96; },  // K not a multiple of 128
                     +[](cuda::GemmParams& q) { q.b_transposed = false; },
                     +[](cuda::GemmParams& q) { q.beta = 1.0f; },
                     +[](cuda::GemmParams& q) { q.epilogue = cuda::GemmEpilogue::kGelu; },
                     +[](cuda::GemmParams& q) { q.a_scales = nullptr; }}) {
        cuda::GemmParams q = p;
        bad(q);
        EXPECT_EQ(cuda::validate(q).code(), StatusCode::kInvalidArgument);
    }
}

void check_swiglu(int64_t rows, int64_t width, bool fused_buffer, uint64_t seed) {
    SCOPED_TRACE(testing::Message() << "rows=" << rows << " width=" << width << " fused=" << fused_buffer);
    std::mt19937_64 rng(seed);
    const int64_t gs = fused_buffer ? 2 * width : width;
    const std::vector<float> gu = bf16_round(random_normal(rows * gs * (fused_buffer ? 1 : 2), rng, 2.0f));
    // gate = columns [0, I) of each row, up = [I, 2I) (fused) or the second block (separate).
    std::vector<float> gate(rows * width), up(rows * width), ref(rows * width);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < width; ++j) {
            gate[r * width + j] = fused_buffer ? gu[r * gs + j] : gu[r * width + j];
            up[r * width + j] = fused_buffer ? gu[r * gs + width + j] : gu[rows * width + r * width + j];
        }
    ASSERT_TRUE(cpu::swiglu({.num_elements = rows * width, .gate = gate.data(), .up = up.data(), .out = ref.data()})
                    .is_ok());
    DevBuf<uint16_t> dgu(gu.size()), dout(rows * width);
    ASSERT_TRUE(dgu.upload(to_bf16(gu)) && dout.fill_bytes(0xff));
    auto* base = static_cast<uint16_t*>(dgu.ptr);
    cuda::SwigluParams p;
    p.rows = rows, p.width = width;
    p.gate = base, p.gate_stride = gs;
    p.up = fused_buffer ? base + width : base + rows * width, p.up_stride = gs;
    p.out = dout.ptr, p.out_stride = width;
    ASSERT_TRUE(cuda::run(p, nullptr).is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> got = from_bf16(dout.download());
    ASSERT_EQ(count_nan(got), 0u);
    EXPECT_LE(rel_error(got, ref), kTol);
}

TEST_F(GemmGpu, SwigluAgainstCpu) {
    check_swiglu(1, 9216, true, 51);
    check_swiglu(7, 24, false, 52);
    check_swiglu(130, 1000, true, 53);
}

TEST_F(GemmGpu, GeluAgainstCpu) {
    std::mt19937_64 rng(61);
    const int64_t rows = 9, width = 4096;
    const std::vector<float> x = bf16_round(random_normal(rows * width, rng, 3.0f));
    const std::vector<float> bias = bf16_round(random_normal(width, rng));
    std::vector<float> ref(x.size());
    ASSERT_TRUE(cpu::gelu({.rows = rows, .width = width, .x = x.data(), .bias = bias.data(), .out = ref.data()}).is_ok());
    DevBuf<uint16_t> dx(x.size()), db(width);
    ASSERT_TRUE(dx.upload(to_bf16(x)) && db.upload(to_bf16(bias)));
    ASSERT_TRUE(cuda::run(cuda::GeluParams{.rows = rows, .width = width, .x = dx.ptr, .x_stride = width,
                                           .bias = db.ptr, .out = dx.ptr, .out_stride = width},
                          nullptr)
                    .is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    EXPECT_LE(rel_error(from_bf16(dx.download()), ref), kTol);
}

TEST_F(GemmGpu, ShortSanitizerRun) {
    check_gemm({.m = 3, .n = 40, .k = 24, .epilogue = cuda::GemmEpilogue::kBiasGelu}, 71);
    check_swiglu(3, 16, true, 72);
    if (on_hopper()) check_fp8_gemm(4, 136, 256, 73);
}

}  // namespace
}  // namespace volt
