// Shared by the MoE GPU tests (test_moe_gpu.cpp, test_moe_fp8_gpu.cpp): the routings they run (random; skewed: expert 3
// first for every token and experts >= 4 never chosen; all on one: every token's first slot on the last expert) and
// the per-token comparison of the outputs.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/moe_cuda.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/kernels/lightning_reference.h"

namespace volt::test {

enum class Routing { kRandom, kSkewed, kAllOnOne };

struct RoutingTable {
    std::vector<int32_t> ids;  // [T, k], k distinct experts per token
    std::vector<float> weights;  // [T, k], each token's summing to 1
};

inline RoutingTable make_routing(int64_t T, int E, int k, Routing routing, std::mt19937_64& rng) {
    RoutingTable r{std::vector<int32_t>(T * k), std::vector<float>(T * k)};
    std::uniform_int_distribution<int> ue(0, E - 1);
    std::uniform_real_distribution<float> uw(0.05f, 1.0f);
    for (int64_t t = 0; t < T; ++t) {
        std::vector<int> chosen;
        while (static_cast<int>(chosen.size()) < k) {
            int e = ue(rng);
            if (routing == Routing::kSkewed) e = chosen.empty() ? 3 : e % 3;
            if (routing == Routing::kAllOnOne) e = chosen.empty() ? E - 1 : static_cast<int>(chosen.size()) - 1;
            if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
        }
        float sum = 0;
        for (int j = 0; j < k; ++j) r.ids[t * k + j] = chosen[j], sum += r.weights[t * k + j] = uw(rng);
        for (int j = 0; j < k; ++j) r.weights[t * k + j] /= sum;
    }
    return r;
}

// Every token's row of `got` [T, H] within `tol` relative of `ref`: one wrong token must not hide in the batch norm.
inline void expect_rows_close(const std::vector<float>& got, const std::vector<float>& ref, int64_t T, int64_t H,
                              double tol) {
    for (int64_t t = 0; t < T; ++t) {
        std::vector<float> a(got.begin() + t * H, got.begin() + (t + 1) * H),
            b(ref.begin() + t * H, ref.begin() + (t + 1) * H);
        ASSERT_LE(rel_error(a, b), tol) << "token " << t;
    }
}

// The grouped path's gated product cut in parts (MoeExpertsParams::decode_split: at most 8 token slots) against one
// warp per item, for a run `p` whose output `got` came from `out` [T, H]: the same products summed in another order,
// so within fp32 rounding and h's bf16 rounding of it. With `must_split` (sizes whose few items leave most warps idle)
// the device must have cut them; otherwise only a split it chose is compared.
inline void expect_split_matches_one_warp_per_item(const cuda::MoeExpertsParams& p, const std::vector<float>& got,
                                                   DevBuf<uint16_t>& out, bool must_split) {
    auto parts = cuda::moe_decode_split_parts(p);
    ASSERT_TRUE(parts) << parts.status().to_string();
    cuda::MoeExpertsParams one = p;
    one.decode_split = false;
    auto one_parts = cuda::moe_decode_split_parts(one);
    ASSERT_TRUE(one_parts) << one_parts.status().to_string();
    EXPECT_EQ(*one_parts, 1);
    if (must_split) {
        EXPECT_GT(*parts, 1) << "the gated product was not split";
    }
    if (*parts == 1) return;
    std::printf("  gated product in %d parts; against one warp per item: ", *parts);
    DevBuf<char> ws(cuda::moe_workspace_bytes(one));
    ASSERT_TRUE(ws.fill_bytes(0xff) && out.fill_bytes(0xff));
    one.workspace = ws.ptr, one.workspace_bytes = ws.n;
    const Status st = cuda::run(one, nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> whole = from_bf16(out.download());
    const double diff = rel_error(got, whole);
    std::printf("%.2e\n", diff);
    EXPECT_LE(diff, 2e-3) << "split vs one warp per item";
    expect_rows_close(got, whole, p.num_tokens, p.hidden, 4e-3);
}

}  // namespace volt::test
