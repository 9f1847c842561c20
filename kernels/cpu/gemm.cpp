// CPU GEMM through OpenBLAS. M == 1 (a decode step) goes to sgemv: OpenBLAS's sgemm packs both operands first,
// which costs more than the product for a single row.
#include <atomic>
#include <chrono>

#include <cblas.h>

#include "kernels/gemm.h"

namespace volt {

Status validate(const GemmParams& p) {
    if (p.m < 0 || p.n < 0 || p.k < 0) return invalid_argument("gemm: negative size M=", p.m, " N=", p.n, " K=", p.k);
    if (p.m == 0 || p.n == 0) return Status::ok();
    if (!p.a && p.k > 0) return invalid_argument("gemm: A is null");
    if (!p.b && p.k > 0) return invalid_argument("gemm: B is null");
    if (!p.c) return invalid_argument("gemm: C is null");
    if (p.lda < p.k) return invalid_argument("gemm: lda ", p.lda, " < K ", p.k);
    if (p.ldb < (p.b_transposed ? p.k : p.n)) return invalid_argument("gemm: ldb ", p.ldb, " too small");
    if (p.ldc < p.n) return invalid_argument("gemm: ldc ", p.ldc, " < N ", p.n);
    // OpenBLAS takes blasint (32-bit in the distribution builds) sizes and strides.
    const int64_t limit = 0x7fffffff;
    if (p.m > limit || p.n > limit || p.k > limit || p.lda > limit || p.ldb > limit || p.ldc > limit)
        return invalid_argument("gemm: a size or stride exceeds 2^31-1 (M=", p.m, " N=", p.n, " K=", p.k, ")");
    return Status::ok();
}

namespace cpu {
namespace {
std::atomic<int64_t> g_ns{0}, g_calls{0};
std::atomic<double> g_flops{0};
}  // namespace

Status gemm(const GemmParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.m == 0 || p.n == 0) return Status::ok();
    const auto t0 = std::chrono::steady_clock::now();
    const blasint M = static_cast<blasint>(p.m), N = static_cast<blasint>(p.n), K = static_cast<blasint>(p.k);
    if (p.k == 0) {
        // BLAS leaves C untouched for K == 0 only when beta == 1; make the contract explicit.
        for (int64_t i = 0; i < p.m; ++i)
            for (int64_t j = 0; j < p.n; ++j) p.c[i * p.ldc + j] = p.beta == 0.0f ? 0.0f : p.beta * p.c[i * p.ldc + j];
    } else if (p.m == 1) {
        // c[0, :] = alpha * B' a + beta * c. b_transposed: B is [N, K] -> y = B a (NoTrans); else [K, N] -> B^T a.
        cblas_sgemv(CblasRowMajor, p.b_transposed ? CblasNoTrans : CblasTrans, p.b_transposed ? N : K,
                    p.b_transposed ? K : N, p.alpha, p.b, static_cast<blasint>(p.ldb), p.a, 1, p.beta, p.c, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, p.b_transposed ? CblasTrans : CblasNoTrans, M, N, K, p.alpha, p.a,
                    static_cast<blasint>(p.lda), p.b, static_cast<blasint>(p.ldb), p.beta, p.c,
                    static_cast<blasint>(p.ldc));
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    g_ns.fetch_add(ns, std::memory_order_relaxed);
    g_calls.fetch_add(1, std::memory_order_relaxed);
    g_flops.fetch_add(2.0 * double(p.m) * double(p.n) * double(p.k), std::memory_order_relaxed);
    return Status::ok();
}

BlasStats blas_stats() {
    return {g_ns.load() * 1e-9, g_calls.load(), g_flops.load()};
}

void reset_blas_stats() {
    g_ns = 0;
    g_calls = 0;
    g_flops = 0;
}

void set_blas_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}

int blas_threads() { return openblas_get_num_threads(); }

}  // namespace cpu
}  // namespace volt
