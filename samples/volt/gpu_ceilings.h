// The GPU ceilings GPU benchmarks read their numbers against, measured in the calling process (`volt bench e2e`,
// `volt bench vision --device cuda`): a bf16 8192^3 GEMM through cuBLASLt and a 1 GiB device-to-device copy, on random
// non-zero data, event-timed best of 5 after a warm-up. Include only from CUDA builds (VOLT_HAVE_CUDA).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/gemm_cuda.h"
#include "kernels/random_fill_cuda.h"
#include "sdk/cuda_check.h"
#include "sdk/cuda_timing.h"
#include "sdk/tensor.h"

namespace volt::cli {

// Event-timed best of `reps` for `fn` (which enqueues work on `stream`), after one warm-up call; seconds.
template <typename Fn>
Expected<double> time_gpu(int reps, Fn&& fn, cudaStream_t stream = nullptr) {
    if (reps < 1) return invalid_argument("time_gpu: reps ", reps, ", expected >= 1");
    VOLT_ASSIGN_OR_RETURN(const std::vector<double> ms, cuda_event_ms(1, reps, fn, stream));
    return *std::min_element(ms.begin(), ms.end()) * 1e-3;
}

struct Ceilings {
    double gemm_tflops = 0;  // bf16 8192^3 through cuBLASLt
    double copy_tbs = 0;     // device-to-device copy of 1 GiB, (read + write) bytes / time
};

inline Expected<Ceilings> measure_gpu_ceilings(int device) {
    Ceilings c;
    const int64_t n = 8192;
    VOLT_ASSIGN_OR_RETURN(Tensor a, Tensor::empty({n, n}, DType::kBF16, Device::cuda(device)));
    VOLT_ASSIGN_OR_RETURN(Tensor b, Tensor::empty({n, n}, DType::kBF16, Device::cuda(device)));
    VOLT_ASSIGN_OR_RETURN(Tensor d, Tensor::empty({n, n}, DType::kBF16, Device::cuda(device)));
    for (auto [t, seed] : {std::pair{&a, 1}, std::pair{&b, 2}})
        VOLT_RETURN_IF_ERROR(cuda::run(cuda::RandomFillParams{.out = t->data(), .n = t->numel(), .scale = 0.05f,
                                                              .seed = uint64_t(seed)},
                                       nullptr));
    cuda::GemmParams g;
    g.m = g.n = g.k = n;
    g.a = a.data(), g.lda = n, g.b = b.data(), g.ldb = n, g.c = d.data(), g.ldc = n;
    VOLT_ASSIGN_OR_RETURN(double gemm_s, time_gpu(5, [&] { return cuda::run(g, nullptr); }));
    c.gemm_tflops = 2.0 * double(n) * n * n / gemm_s / 1e12;
    const int64_t bytes = int64_t{1} << 30;
    VOLT_ASSIGN_OR_RETURN(Tensor src, Tensor::empty({bytes / 2}, DType::kBF16, Device::cuda(device)));
    VOLT_ASSIGN_OR_RETURN(Tensor dst, Tensor::empty({bytes / 2}, DType::kBF16, Device::cuda(device)));
    VOLT_RETURN_IF_ERROR(cuda::run(cuda::RandomFillParams{.out = src.data(), .n = src.numel(), .seed = 3}, nullptr));
    VOLT_ASSIGN_OR_RETURN(double copy_s, time_gpu(5, [&] {
        return VOLT_CUDA_STATUS(cudaMemcpyAsync(dst.data(), src.data(), size_t(bytes), cudaMemcpyDeviceToDevice));
    }));
    c.copy_tbs = 2.0 * double(bytes) / copy_s / 1e12;
    return c;
}

}  // namespace volt::cli
