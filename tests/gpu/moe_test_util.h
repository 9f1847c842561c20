// Shared by the MoE GPU tests (test_moe_gpu.cpp, test_moe_fp8_gpu.cpp): the routings they run (random; skewed: expert 3
// first for every token and experts >= 4 never chosen; all on one: every token's first slot on the last expert) and
// the per-token comparison of the outputs.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

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

}  // namespace volt::test
