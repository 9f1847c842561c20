#include "kernels/ceilings.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <vector>

#include "kernels/gemm.h"
#include "sdk/thread_pool.h"

namespace volt::cpu {
namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

// Uniform in [0.5, 1.5): no zeros, no denormals. xorshift64 (fast enough for 128 M values).
std::vector<float> random_floats(int64_t n, uint64_t seed) {
    std::vector<float> v(static_cast<size_t>(n));
    uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (float& f : v) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        f = 0.5f + float(x >> 40) * (1.0f / 16777216.0f);
    }
    return v;
}

}  // namespace

double measure_sgemm_gflops(int64_t n, int reps) {
    const std::vector<float> a = random_floats(n * n, 1), b = random_floats(n * n, 2);
    std::vector<float> c(static_cast<size_t>(n * n));
    const GemmParams g{.m = n, .n = n, .k = n, .a = a.data(), .lda = n, .b = b.data(), .ldb = n, .c = c.data(), .ldc = n};
    (void)gemm(g);  // warm-up: thread start, page faults
    double best = 1e30;
    for (int r = 0; r < std::max(reps, 1); ++r) {
        const auto t0 = clock_type::now();
        (void)gemm(g);
        best = std::min(best, seconds_since(t0));
    }
    return 2.0 * double(n) * double(n) * double(n) / best * 1e-9;
}

double measure_read_gbs(int64_t bytes, int reps) {
    constexpr int64_t kChunks = 64;
    const int64_t n = std::max<int64_t>(bytes / 4 / (kChunks * 16), 1) * kChunks * 16;
    const std::vector<float> a = random_floats(n, 3);
    double expected = 0;
    for (float x : a) expected += x;
    double best = 0;
    for (int r = 0; r < std::max(reps, 1) + 1; ++r) {  // the first pass warms the pages
        std::vector<double> part(kChunks, 0.0);
        const auto t0 = clock_type::now();
        ThreadPool::global().parallel_for(kChunks, [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
                float acc[16] = {};
                const float* p = a.data() + c * (n / kChunks);
                for (int64_t i = 0; i < n / kChunks; i += 16)
                    for (int l = 0; l < 16; ++l) acc[l] += p[i + l];
                for (float x : acc) part[c] += x;
            }
        });
        const double dt = seconds_since(t0);
        double total = 0;
        for (double x : part) total += x;
        // The sum is used (and checked loosely: fp32 partial sums round), so the loop cannot be optimised away.
        if (std::abs(total - expected) > 1e-3 * expected) std::fprintf(stderr, "read bandwidth: checksum mismatch\n");
        if (r > 0) best = std::max(best, double(n) * 4.0 / dt / 1e9);
    }
    return best;
}

}  // namespace volt::cpu
