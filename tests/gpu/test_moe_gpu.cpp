// GPU MoE against the CPU twins: the fp32 router + top-k + renormalisation (ids in the twin's order, ties to the
// lower expert index) and the experts on both paths (grouped GEMV decode path, per-expert cuBLASLt path), with
// balanced and skewed routing (one expert takes every token, others none), on fresh random inputs with poisoned
// outputs. bf16 outputs <= 1e-2 relative.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

class MoeGpu : public GpuTest {};

// ---- router -----------------------------------------------------------------------------------------------------------
void check_router(int64_t T, int64_t H, int E, int k, bool plant_ties, uint64_t seed) {
    SCOPED_TRACE(testing::Message() << "T=" << T << " H=" << H << " E=" << E << " k=" << k << " ties=" << plant_ties);
    std::mt19937_64 rng(seed);
    std::vector<float> x = bf16_round(random_normal(T * H, rng));
    std::vector<float> wg = random_normal(E * H, rng, 1.0f / std::sqrt(float(H)));
    if (plant_ties)  // experts 5 and 2 (and 9 and 4) get identical rows: equal logits, lower index must win
        for (int64_t i = 0; i < H; ++i) {
            wg[5 * H + i] = wg[2 * H + i] * 4.0f;  // and large, so they are the top 2 for most tokens
            wg[2 * H + i] = wg[5 * H + i];
            wg[9 * H + i] = wg[4 * H + i];
        }
    // fp32 logits from a plain fp64 dot (identical weight rows give bit-identical logits: planted ties stay ties).
    std::vector<float> logits(T * E);
    for (int64_t t = 0; t < T; ++t)
        for (int e = 0; e < E; ++e) {
            double acc = 0;
            for (int64_t i = 0; i < H; ++i) acc += double(x[t * H + i]) * double(wg[e * H + i]);
            logits[t * E + e] = static_cast<float>(acc);
        }
    std::vector<int32_t> ids(T * k);
    std::vector<float> w(T * k);
    ASSERT_TRUE(cpu::moe_route({.num_tokens = T, .num_experts = E, .top_k = k, .logits = logits.data(),
                                .logits_stride = E, .expert_ids = ids.data(), .weights = w.data()})
                    .is_ok());
    DevBuf<uint16_t> dx(x.size());
    DevBuf<float> dwg(wg.size()), dlog(T * E), dw(T * k);
    DevBuf<int32_t> dids(T * k);
    ASSERT_TRUE(dx.upload(to_bf16(x)) && dwg.upload(wg) && dids.fill_bytes(0xff) && dw.fill_bytes(0xff));
    cuda::MoeRouterParams p;
    p.num_tokens = T, p.hidden = H, p.num_experts = E, p.top_k = k, p.x = dx.ptr, p.x_stride = H;
    p.gate_weight = dwg.ptr, p.logits = dlog.ptr, p.expert_ids = dids.ptr, p.weights = dw.ptr;
    ASSERT_TRUE(cuda::run(p, nullptr).is_ok());
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<int32_t> gids = dids.download();
    const std::vector<float> gw = dw.download(), glog = dlog.download();
    EXPECT_LE(rel_error(glog, logits), 1e-5);
    int64_t near_tie_swaps = 0;
    for (int64_t t = 0; t < T; ++t)
        for (int j = 0; j < k; ++j) {
            const int64_t i = t * k + j;
            if (gids[i] != ids[i]) {
                // Only acceptable where the twin's own logits of the two experts agree to rounding (the GPU sums
                // the dot products in another order); planted exact ties must never flip.
                ASSERT_GE(gids[i], 0);
                ASSERT_LT(gids[i], E);
                const float a = logits[t * E + gids[i]], b = logits[t * E + ids[i]];
                ASSERT_LE(std::fabs(a - b), 1e-5f * (1.0f + std::fabs(b))) << "token " << t << " slot " << j;
                ++near_tie_swaps;
                continue;
            }
            ASSERT_NEAR(gw[i], w[i], 1e-5f) << "token " << t << " slot " << j;
        }
    EXPECT_LE(near_tie_swaps, 2);
}

TEST_F(MoeGpu, RouterMatchesCpu) {
    check_router(1, 6144, 32, 2, false, 1);
    check_router(33, 6144, 32, 2, false, 2);
    check_router(1000, 512, 32, 2, false, 3);
    check_router(70, 136, 13, 3, false, 4);
    check_router(200, 256, 32, 2, true, 5);
    check_router(40, 256, 32, 2, true, 6);  // small-batch path with planted ties
    check_router(64, 6144, 32, 2, false, 7);
}

// ---- experts ----------------------------------------------------------------------------------------------------------

// adjacent_w13: each expert's w1 and w3 in one [2I, H] allocation (the GEMM path then fuses them into one GEMM).
// gemm_streams: MoeExpertsParams::gemm_streams (0: the default).
void check_experts(int64_t T, int64_t H, int64_t I, int E, int k, Routing routing, cuda::MoePath path,
                   uint64_t seed, bool adjacent_w13 = false, int gemm_streams = 0) {
    SCOPED_TRACE(testing::Message() << "T=" << T << " H=" << H << " I=" << I << " E=" << E << " k=" << k
                                    << " routing=" << static_cast<int>(routing) << " path=" << static_cast<int>(path)
                                    << " gemm_streams=" << gemm_streams);
    std::mt19937_64 rng(seed);
    const std::vector<float> x = bf16_round(random_normal(T * H, rng));
    std::vector<std::vector<float>> w1(E), w3(E), w2(E);
    for (int e = 0; e < E; ++e) {
        w1[e] = bf16_round(random_normal(I * H, rng, 1.0f / std::sqrt(float(H))));
        w3[e] = bf16_round(random_normal(I * H, rng, 1.0f / std::sqrt(float(H))));
        w2[e] = bf16_round(random_normal(H * I, rng, 1.0f / std::sqrt(float(I))));
    }
    const RoutingTable route = make_routing(T, E, k, routing, rng);
    const std::vector<int32_t>& ids = route.ids;
    const std::vector<float>& wts = route.weights;
    std::vector<const float*> p1(E), p3(E), p2(E);
    for (int e = 0; e < E; ++e) p1[e] = w1[e].data(), p3[e] = w3[e].data(), p2[e] = w2[e].data();
    std::vector<float> ref(T * H);
    ASSERT_TRUE(cpu::moe_experts({.num_tokens = T, .hidden = H, .intermediate = I, .num_experts = E, .top_k = k,
                                  .x = x.data(), .expert_ids = ids.data(), .weights = wts.data(), .w1 = p1.data(),
                                  .w3 = p3.data(), .w2 = p2.data(), .out = ref.data()})
                    .is_ok());

    DevBuf<uint16_t> dx(x.size()), dout(T * H);
    DevBuf<int32_t> dids(ids.size());
    DevBuf<float> dw(wts.size());
    ASSERT_TRUE(dx.upload(to_bf16(x)) && dids.upload(ids) && dw.upload(wts) && dout.fill_bytes(0xff));
    std::vector<std::unique_ptr<DevBuf<uint16_t>>> d1, d3, d2;
    std::vector<const void*> q1(E), q3(E), q2(E);
    for (int e = 0; e < E; ++e) {
        if (adjacent_w13) {
            std::vector<float> w13 = w1[e];
            w13.insert(w13.end(), w3[e].begin(), w3[e].end());
            d1.push_back(std::make_unique<DevBuf<uint16_t>>(2 * I * H));
            ASSERT_TRUE(d1[e]->upload(to_bf16(w13)));
            q1[e] = d1[e]->ptr, q3[e] = d1[e]->ptr + I * H;
        } else {
            d1.push_back(std::make_unique<DevBuf<uint16_t>>(I * H));
            d3.push_back(std::make_unique<DevBuf<uint16_t>>(I * H));
            ASSERT_TRUE(d1[e]->upload(to_bf16(w1[e])) && d3[e]->upload(to_bf16(w3[e])));
            q1[e] = d1[e]->ptr, q3[e] = d3[e]->ptr;
        }
        d2.push_back(std::make_unique<DevBuf<uint16_t>>(H * I));
        ASSERT_TRUE(d2[e]->upload(to_bf16(w2[e])));
        q2[e] = d2[e]->ptr;
    }
    cuda::MoeExpertsParams p;
    p.num_tokens = T, p.hidden = H, p.intermediate = I, p.num_experts = E, p.top_k = k;
    p.x = dx.ptr, p.x_stride = H, p.expert_ids = dids.ptr, p.weights = dw.ptr;
    p.w1 = q1.data(), p.w3 = q3.data(), p.w2 = q2.data(), p.out = dout.ptr, p.out_stride = H, p.path = path;
    p.gemm_streams = gemm_streams;
    DevBuf<char> ws(cuda::moe_workspace_bytes(p));
    ASSERT_TRUE(ws.fill_bytes(0xff));  // poisoned scratch: every intermediate must be written before it is read
    p.workspace = ws.ptr, p.workspace_bytes = ws.n;
    const Status st = cuda::run(p, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> got = from_bf16(dout.download());
    ASSERT_EQ(count_nan(got), 0u) << "unwritten outputs";
    EXPECT_LE(rel_error(got, ref), kTol);
    expect_rows_close(got, ref, T, H, 2 * kTol);
    // At most 8 token slots on the grouped path: the gated product cut in parts where its items leave warps idle
    // (certainly with a few hundred items at most and K of 8 batches or more), compared with one warp per item.
    if (path != cuda::MoePath::kGemm && T * k <= 8)
        expect_split_matches_one_warp_per_item(p, got, dout, H >= 512 && I < 4096);
}

TEST_F(MoeGpu, GroupedDecodePathAgainstCpu) {
    using cuda::MoePath;
    check_experts(1, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGrouped, 11);
    check_experts(5, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kGrouped, 12);
    check_experts(64, 512, 768, 16, 2, Routing::kRandom, MoePath::kGrouped, 13);
    check_experts(64, 512, 776, 8, 2, Routing::kSkewed, MoePath::kGrouped, 14);     // odd I (not a multiple of 16)
    check_experts(64, 264, 2056, 8, 2, Routing::kAllOnOne, MoePath::kGrouped, 15);  // 64 tokens on one expert
    check_experts(3, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGrouped, 16);    // MiniMax sizes, 2 experts
    check_experts(1, 6144, 9216, 2, 2, Routing::kRandom, MoePath::kGrouped, 19);    // one token (its items split)
    // Enough work items (32 experts x 129 row blocks) for the tensor-core kernel's variant with fewer loads in flight
    // per lane (the cases above take the deeper one); I = 2056: a partial row block and a K tail of 8 columns.
    check_experts(64, 1024, 2056, 32, 2, Routing::kRandom, MoePath::kGrouped, 17);
    check_experts(17, 1024, 2056, 32, 2, Routing::kAllOnOne, MoePath::kGrouped, 18);  // a second pass of 1 token
}

TEST_F(MoeGpu, GemmPrefillPathAgainstCpu) {
    using cuda::MoePath;
    check_experts(65, 1024, 1536, 8, 2, Routing::kRandom, MoePath::kAuto, 21);
    check_experts(300, 512, 768, 32, 2, Routing::kSkewed, MoePath::kGemm, 22);
    check_experts(200, 264, 520, 8, 2, Routing::kAllOnOne, MoePath::kGemm, 23);
    check_experts(7, 256, 384, 4, 3, Routing::kRandom, MoePath::kGemm, 24);
    check_experts(300, 512, 768, 8, 2, Routing::kRandom, MoePath::kGemm, 25, /*adjacent_w13=*/true);
    check_experts(9, 512, 768, 8, 2, Routing::kRandom, MoePath::kGrouped, 26, /*adjacent_w13=*/true);
    // The experts on one stream and spread over four (some experts empty, one with all first slots).
    check_experts(300, 512, 768, 32, 2, Routing::kSkewed, MoePath::kGemm, 27, false, /*gemm_streams=*/1);
    check_experts(300, 512, 768, 32, 2, Routing::kRandom, MoePath::kGemm, 28, true, /*gemm_streams=*/4);
    check_experts(200, 264, 520, 8, 2, Routing::kAllOnOne, MoePath::kGemm, 29, false, /*gemm_streams=*/3);
    // Shapes the own grouped GEMM takes (VOLT_MOE_OWN_GEMM=up|both; H, I multiples of 256 / 128): every row on one
    // expert (row tiles past the expert's end run into zeros), and experts of 1..3 rows beside empty ones.
    check_experts(200, 512, 768, 8, 2, Routing::kAllOnOne, MoePath::kGemm, 30);
    check_experts(9, 256, 384, 16, 2, Routing::kSkewed, MoePath::kGemm, 37);
}

TEST_F(MoeGpu, ShortSanitizerRun) {
    check_router(5, 64, 8, 2, false, 31);
    check_experts(3, 64, 96, 4, 2, Routing::kSkewed, cuda::MoePath::kGrouped, 32);
    check_experts(2, 520, 136, 4, 2, Routing::kRandom, cuda::MoePath::kGrouped, 36);  // the gated product split
    check_experts(64, 64, 1064, 32, 2, Routing::kRandom, cuda::MoePath::kGrouped, 34);  // the shallower variant
    check_experts(3, 64, 96, 4, 2, Routing::kSkewed, cuda::MoePath::kGemm, 33);
    check_experts(5, 256, 128, 4, 2, Routing::kRandom, cuda::MoePath::kGemm, 38);  // the own grouped GEMM's shapes
    check_experts(5, 512, 256, 4, 2, Routing::kRandom, cuda::MoePath::kGemm, 39);  // every tile width (1-5 rows)
    check_experts(9, 64, 96, 4, 2, Routing::kRandom, cuda::MoePath::kGemm, 35, false, /*gemm_streams=*/4);
}

}  // namespace
}  // namespace volt
