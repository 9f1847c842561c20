// Test-only float64 models of lightning attention, shared by the CPU unit tests and the GPU tests: the plain
// token-by-token recurrence (§2 step 4) and random-input helpers. Deliberately the simplest possible code.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace volt::test {

// Token-by-token recurrence for one sequence and head in float64: S = lambda S + k^T v, o = q S.
// q, k, v: [len][D] (already activated); S: [D][D] in/out; o: [len][D] out.
inline void lightning_recurrence_f64(const std::vector<double>& q, const std::vector<double>& k,
                                     const std::vector<double>& v, int64_t len, int D, double slope,
                                     std::vector<double>& S, std::vector<double>& o) {
    const double lambda = std::exp(-slope);
    o.assign(static_cast<size_t>(len) * D, 0.0);
    for (int64_t t = 0; t < len; ++t) {
        for (int a = 0; a < D; ++a) {
            const double kv = k[t * D + a], qv = q[t * D + a];
            for (int b = 0; b < D; ++b) {
                double& s = S[static_cast<size_t>(a) * D + b];
                s = lambda * s + kv * v[t * D + b];
                o[t * D + b] += qv * s;
            }
        }
    }
}

// ||a - b|| / ||b|| over two equally long ranges (b's norm floored to avoid 0/0 on tiny references).
template <typename A, typename B>
double rel_error(const A& a, const B& b) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < b.size(); ++i) {
        const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
        num += d * d;
        den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
    }
    if (std::isnan(num)) return INFINITY;
    return std::sqrt(num) / std::sqrt(std::max(den, 1e-300));
}

// SiLU of a standard normal: the value distribution lightning attention sees (mean ~0.2, mostly in [-0.28, 3]).
inline std::vector<float> random_activations(size_t n, std::mt19937_64& rng, float scale = 1.0f) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> x(n);
    for (auto& e : x) {
        const float z = nd(rng);
        e = z / (1.0f + std::exp(-z));
    }
    return x;
}

}  // namespace volt::test
