// Shared helpers of the backbone tests: the fixture directories and their reference manifests, error measures.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/npy.h"
#include "sdk/tensor.h"
#include "text/minimax_text_model.h"

namespace volt::test {

namespace fs = std::filesystem;
inline const fs::path kData = VOLT_TEST_DATA_DIR;
inline const char* const kFixtures[] = {"tiny-text", "tiny-text-sharded", "tiny-text-top1", "tiny-text-prenorm-tied"};

inline nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

inline std::vector<int32_t> read_ids(const fs::path& p) { return read_json(p).get<std::vector<int32_t>>(); }

// ||a - b||_F / ||b||_F over float tensors of the same shape.
inline double rel_fro(const float* a, const float* b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(a[i]) - b[i];
        num += d * d;
        den += double(b[i]) * b[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

inline int64_t argmax_row(const float* row, int64_t V) {
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i)
        if (row[i] > row[best]) best = i;
    return best;
}

// Positions whose argmax differs.
inline int64_t argmax_mismatches(const float* a, const float* b, int64_t rows, int64_t V) {
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; ++r) bad += argmax_row(a + r * V, V) != argmax_row(b + r * V, V);
    return bad;
}

inline std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
    std::mt19937 g(seed);
    std::vector<int32_t> ids(n);
    for (auto& x : ids) x = static_cast<int32_t>(g() % vocab);
    return ids;
}

inline std::unique_ptr<MiniMaxTextModel> load_fixture(const std::string& name) {
    auto m = MiniMaxTextModel::load(kData / name);
    EXPECT_TRUE(m.has_value()) << m.status().to_string();
    return m.has_value() ? std::move(*m) : nullptr;
}

}  // namespace volt::test
