// GEMM: C = alpha * A * op(B) + beta * C in fp32, row-major. The CPU backend calls OpenBLAS (multi-threaded);
// model code uses it for every projection (weights are nn.Linear-style [out, in], hence op(B) = B^T by default).
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct GemmParams {
    int64_t m = 0, n = 0, k = 0;
    const float* a = nullptr;  // [M, K] row-major, row stride lda (>= K)
    int64_t lda = 0;
    const float* b = nullptr;  // b_transposed: [N, K] (a Linear weight), row stride ldb >= K; else [K, N], ldb >= N
    int64_t ldb = 0;
    bool b_transposed = true;
    float* c = nullptr;        // [M, N] row-major, row stride ldc (>= N)
    int64_t ldc = 0;
    float alpha = 1.0f;
    float beta = 0.0f;         // 0: C is overwritten (its previous contents may be garbage)
};

Status validate(const GemmParams& p);

namespace cpu {
Status gemm(const GemmParams& p);

// BLAS accounting for benchmarks: wall time spent inside gemm() calls (all threads' calls summed) and the
// number of calls since the last reset. Cheap (two steady_clock reads per call).
struct BlasStats {
    double seconds = 0;
    int64_t calls = 0;
    double flops = 0;  // 2*M*N*K summed
};
BlasStats blas_stats();
void reset_blas_stats();
// Threads OpenBLAS may use (<= 0: leave its default, i.e. OPENBLAS_NUM_THREADS or the core count).
void set_blas_threads(int n);
int blas_threads();
}  // namespace cpu

}  // namespace volt
