// Helpers shared by the GPU benchmarks (bench/*.cu): checked CUDA calls, random fills (never zeros), event timing
// (median of repeats after warm-up) and JSON-lines output.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sdk/status.h"

namespace volt::bench {

#define CHECK(expr)                                                                                   \
    do {                                                                                              \
        cudaError_t e_ = (expr);                                                                      \
        if (e_ != cudaSuccess) {                                                                      \
            std::fprintf(stderr, "%s failed: %s (%s:%d)\n", #expr, cudaGetErrorString(e_), __FILE__, \
                         __LINE__);                                                                   \
            std::exit(1);                                                                             \
        }                                                                                             \
    } while (0)
#define CHECK_STATUS(expr)                                                          \
    do {                                                                            \
        ::volt::Status s_ = (expr);                                                 \
        if (!s_.is_ok()) {                                                          \
            std::fprintf(stderr, "%s failed: %s\n", #expr, s_.to_string().c_str()); \
            std::exit(1);                                                           \
        }                                                                           \
    } while (0)

static __device__ uint32_t hash32(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return static_cast<uint32_t>(x);
}

// An approximately standard normal value (sum of 4 uniforms, rescaled) for element i of stream `seed`.
static __device__ float hash_normal(uint64_t seed, size_t i, size_t n) {
    const uint32_t a = hash32(seed * 0x9e3779b97f4a7c15ULL + i);
    const uint32_t b = hash32(seed * 0x9e3779b97f4a7c15ULL + i + 0x1234567ULL * n);
    const float u = ((a & 0xffff) + (a >> 16) + (b & 0xffff) + (b >> 16)) / 65536.0f;  // mean 2, var 1/3
    return (u - 2.0f) * 1.7320508f;
}

// SiLU of a normal value, as bf16 (lightning attention's q/k/v distribution).
static __global__ void fill_activations(__nv_bfloat16* p, size_t n, uint64_t seed) {
    for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
        const float z = hash_normal(seed, i, n);
        p[i] = __float2bfloat16_rn(z / (1.0f + __expf(-z)));
    }
}
// scale * a normal value, as bf16.
static __global__ void fill_normal(__nv_bfloat16* p, size_t n, uint64_t seed, float scale) {
    for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x)
        p[i] = __float2bfloat16_rn(scale * hash_normal(seed, i, n));
}
static __global__ void fill_normal_f32(float* p, size_t n, uint64_t seed, float scale) {
    for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x)
        p[i] = scale * hash_normal(seed, i, n);
}
// scale * a Gaussian value (Box-Muller: unbounded tails, unlike hash_normal's sum of 4 uniforms, which ends at
// +-3.46 and so has a flat top): logits for the sampling benchmark, where the top of the distribution decides how
// many tokens a top-p cut keeps.
static __global__ void fill_gaussian_f32(float* p, size_t n, uint64_t seed, float scale) {
    for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
        const uint64_t base = seed * 0x9e3779b97f4a7c15ULL + 2 * i;
        const uint32_t a = hash32(base), b = hash32(base + 1);
        const float u1 = ((a >> 8) + 1) / 16777217.0f, u2 = (b >> 8) / 16777216.0f;  // u1 in (0, 1]
        p[i] = scale * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
    }
}
// Uniform in [-0.5, 0.5).
static __global__ void fill_state(float* p, size_t n, uint64_t seed) {
    for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x)
        p[i] = (hash32(seed + i) & 0xffffff) / 16777216.0f - 0.5f;
}

// cudaFree of every argument, checked.
template <typename... P>
void dfree(P*... p) {
    for (void* q : {static_cast<void*>(p)...}) CHECK(cudaFree(q));
}

struct Timer {
    cudaEvent_t a, b;
    Timer() {
        CHECK(cudaEventCreate(&a));
        CHECK(cudaEventCreate(&b));
    }
    ~Timer() {
        cudaEventDestroy(a);
        cudaEventDestroy(b);
    }
};

// Median time of fn(i) over `reps` runs after `warmup` runs, CUDA events on the default stream; before(i), untimed,
// is enqueued ahead of each timed run (e.g. an L2 flush).
struct NoBefore {
    void operator()(int) const {}
};
template <typename F, typename B = NoBefore>
double median_ms(F&& fn, int warmup, int reps, B&& before = {}) {
    Timer t;
    for (int i = 0; i < warmup; ++i) fn(i);
    CHECK(cudaDeviceSynchronize());
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
        before(i);
        CHECK(cudaEventRecord(t.a));
        fn(warmup + i);
        CHECK(cudaEventRecord(t.b));
        CHECK(cudaEventSynchronize(t.b));
        float m = 0;
        CHECK(cudaEventElapsedTime(&m, t.a, t.b));
        ms.push_back(m);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

// One JSON object per line, to stdout and (when opened) the --json file.
inline FILE*& json_file() {
    static FILE* f = nullptr;
    return f;
}
inline void emit(const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    if (json_file()) {
        std::fprintf(json_file(), "%s\n", line.c_str());
        std::fflush(json_file());
    }
}

}  // namespace volt::bench
