// Small fp32 vector helpers for the CPU kernels. GCC vector extensions: the same source compiles to SSE2 in the
// portable build and to AVX2 / AVX-512 inside functions marked VOLT_CPU_CLONES, which are built once per ISA and
// dispatched at load time (the project builds without -march). Unaligned, aliasing-safe loads.
#pragma once

#include <cstdint>

// The helpers below are always inlined into their (cloned) callers, so no vector crosses an ABI boundary.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace volt::cpu::simd {

// Not under ThreadSanitizer: the clones' IFUNC resolvers run during relocation, before its runtime is up (crash).
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define VOLT_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VOLT_CPU_CLONES
#endif

typedef float vf16 __attribute__((vector_size(64), aligned(4), may_alias));

static inline __attribute__((always_inline)) vf16 load16(const float* p) { return *reinterpret_cast<const vf16*>(p); }
static inline __attribute__((always_inline)) void store16(float* p, vf16 v) { *reinterpret_cast<vf16*>(p) = v; }

static inline __attribute__((always_inline)) float hsum(vf16 v) {
    float s = 0;
    for (int l = 0; l < 16; ++l) s += v[l];
    return s;
}

static inline __attribute__((always_inline)) float dot(const float* a, const float* b, int64_t n) {
    vf16 acc = {};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) acc += load16(a + i) * load16(b + i);
    float s = hsum(acc);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

// y += a * x
static inline __attribute__((always_inline)) void axpy(float a, const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) store16(y + i, load16(y + i) + a * load16(x + i));
    for (; i < n; ++i) y[i] += a * x[i];
}

}  // namespace volt::cpu::simd
