// Kernels of a backbone split over GPUs (kernels/tensor_parallel_cuda.h) against their unsplit references, and the
// NCCL group (sdk/nccl_group.h) on the machine's GPUs (skipped with fewer than 2).
#include <gtest/gtest.h>

#include <thread>

#include "kernels/lightning_attention.h"
#include "kernels/tensor_parallel_cuda.h"
#include "sdk/nccl_group.h"
#include "sdk/rank_threads.h"
#include "tests/gpu/gpu_test_util.h"

namespace volt {
namespace {

using test::DevBuf;

class TensorParallelGpu : public test::GpuTest {};

TEST_F(TensorParallelGpu, LocalIdsKeepTheRankRangeAndMarkTheRest) {
    std::mt19937_64 g(3);
    std::vector<int32_t> ids(1000);
    for (auto& x : ids) x = int32_t(g() % 300) - 20;  // some negative, some past the table
    DevBuf<int32_t> in(ids.size()), out(ids.size());
    ASSERT_TRUE(in.upload(ids));
    ASSERT_TRUE(out.fill_bytes(0x55));
    ASSERT_TRUE(cuda::run(cuda::LocalIdsParams{.n = int64_t(ids.size()), .ids = in.ptr, .lo = 100, .hi = 200,
                                               .out = out.ptr},
                          nullptr));
    const auto got = out.download();
    ASSERT_EQ(got.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i)
        ASSERT_EQ(got[i], ids[i] >= 100 && ids[i] < 200 ? ids[i] - 100 : -1) << i;
    EXPECT_FALSE(cuda::run(cuda::LocalIdsParams{.n = 4, .ids = in.ptr, .lo = 5, .hi = 4, .out = out.ptr}, nullptr));
}

// The norm over W columns computed in `parts` pieces (sum of squares per piece, summed, then each piece normalised)
// equals the one-GPU lightning norm + gate over all W columns.
TEST_F(TensorParallelGpu, SplitNormGateEqualsTheFullWidthNorm) {
    const int64_t T = 37;
    const int W = 1024;
    std::mt19937_64 g(5);
    const auto o = test::to_bf16(test::random_normal(T * W, g, 0.7f));
    const auto gate = test::to_bf16(test::random_normal(T * W, g));
    auto wf = test::random_normal(W, g, 0.1f);
    for (auto& x : wf) x += 1.0f;
    const auto w = test::to_bf16(wf);
    DevBuf<uint16_t> d_o(T * W), d_g(T * W), d_w(W), full(T * W), split(T * W);
    ASSERT_TRUE(d_o.upload(o) && d_g.upload(gate) && d_w.upload(w));
    ASSERT_TRUE(full.fill_bytes(0xff) && split.fill_bytes(0xff));
    LightningNormGateParams n;
    n.dtype = DType::kBF16;
    n.num_tokens = T;
    n.width = W;
    n.eps = 1e-6f;
    n.o = d_o.ptr, n.o_stride_token = W;
    n.gate = d_g.ptr, n.gate_stride_token = W;
    n.weight = d_w.ptr;
    n.out = full.ptr, n.out_stride_token = W;
    ASSERT_TRUE(cuda::run(n, nullptr));
    const auto ref = test::from_bf16(full.download());
    for (int parts : {2, 4, 8}) {
        const int w_part = W / parts;
        DevBuf<float> ss(T * parts), total(T);
        for (int p = 0; p < parts; ++p)
            ASSERT_TRUE(cuda::run(cuda::SquareSumParams{.num_tokens = T, .width = w_part, .x = d_o.ptr + p * w_part,
                                                        .x_stride = W, .out = ss.ptr + p * T},
                                  nullptr));
        // The all-reduce, done on the host here.
        const auto parts_ss = ss.download();
        std::vector<float> sum(T, 0.0f);
        for (int64_t t = 0; t < T; ++t) {
            double exact = 0;
            for (int64_t c = 0; c < W; ++c) exact += double(bf16_to_f32(o[t * W + c])) * bf16_to_f32(o[t * W + c]);
            for (int p = 0; p < parts; ++p) sum[t] += parts_ss[p * T + t];
            EXPECT_NEAR(sum[t], exact, 1e-5 * exact) << "token " << t;
        }
        ASSERT_TRUE(total.upload(sum));
        for (int p = 0; p < parts; ++p)
            ASSERT_TRUE(cuda::run(cuda::SplitNormGateParams{.num_tokens = T, .width = w_part, .total_width = W,
                                                            .eps = 1e-6f, .sum_squares = total.ptr,
                                                            .o = d_o.ptr + p * w_part, .o_stride = W,
                                                            .gate = d_g.ptr + p * w_part, .gate_stride = W,
                                                            .weight = d_w.ptr + p * w_part,
                                                            .out = split.ptr + p * w_part, .out_stride = W},
                                  nullptr));
        const auto got = test::from_bf16(split.download());
        ASSERT_EQ(test::count_nan(got), 0u) << "unwritten outputs";
        double num = 0, den = 0;
        int64_t differ = 0;
        for (size_t i = 0; i < got.size(); ++i) {
            num += double(got[i] - ref[i]) * (got[i] - ref[i]);
            den += double(ref[i]) * ref[i];
            differ += got[i] != ref[i];
        }
        // The statistic is summed in another order, so a few values round to the neighbouring bf16.
        EXPECT_LE(std::sqrt(num / den), 1e-3) << parts << " parts";
        EXPECT_LE(double(differ) / double(got.size()), 0.01) << parts << " parts";
    }
}

TEST_F(TensorParallelGpu, NcclGroupSumsOverTheGpusAndAborts) {
    const int gpus = cuda_device_count();
    if (gpus < 2) GTEST_SKIP() << "one GPU: the NCCL group needs 2 (run on nvidia-h200-x2)";
    std::vector<int> devices(static_cast<size_t>(gpus));
    for (int d = 0; d < gpus; ++d) devices[static_cast<size_t>(d)] = d;
    auto group = NcclGroup::create(devices);
    ASSERT_TRUE(group) << group.status().to_string();
    RankThreads ranks(gpus);
    const int64_t n = 4099;
    std::vector<std::vector<float>> got(static_cast<size_t>(gpus));
    std::vector<std::vector<uint16_t>> got_bf16(static_cast<size_t>(gpus));
    ASSERT_TRUE(ranks.run([&](int r) -> Status {
        if (cudaSetDevice(r) != cudaSuccess) return internal_error("cudaSetDevice");
        std::vector<float> x(n);
        for (int64_t i = 0; i < n; ++i) x[i] = float((i % 7) + r);
        DevBuf<float> buf(n);
        DevBuf<uint16_t> buf16(n);
        if (!buf.upload(x) || !buf16.upload(test::to_bf16(x))) return internal_error("upload");
        VOLT_RETURN_IF_ERROR((*group)->all_reduce(r, buf.ptr, n, DType::kF32, nullptr));
        VOLT_RETURN_IF_ERROR((*group)->all_reduce(r, buf16.ptr, n, DType::kBF16, nullptr));
        if (cudaDeviceSynchronize() != cudaSuccess) return internal_error("sync");
        got[r] = buf.download();
        got_bf16[r] = buf16.download();
        return Status::ok();
    }));
    const float rank_sum = float(gpus * (gpus - 1) / 2);
    for (int r = 0; r < gpus; ++r) {
        ASSERT_EQ(got[r].size(), size_t(n));
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(got[r][i], float(gpus * (i % 7)) + rank_sum) << "rank " << r << " element " << i;
            ASSERT_EQ(bf16_to_f32(got_bf16[r][i]), float(gpus * (i % 7)) + rank_sum) << "rank " << r;
        }
    }
    EXPECT_EQ((*group)->all_reduce(0, nullptr, 1, DType::kF64, nullptr).code(), StatusCode::kInvalidArgument);
    (*group)->abort();
    EXPECT_TRUE((*group)->aborted());
    EXPECT_EQ((*group)->all_reduce(0, nullptr, 1, DType::kF32, nullptr).code(), StatusCode::kInternal);
    const int twice[2] = {0, 0};
    EXPECT_EQ(NcclGroup::create(twice).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace volt
