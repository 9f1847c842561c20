// CUDA-event timing of the work a callable enqueues on a stream, for plan-time measurements (cuDNN plan and cuBLASLt
// algorithm timings) and the CLI's benchmarks. Include only from CUDA builds (VOLT_HAVE_CUDA).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "sdk/cuda_check.h"
#include "sdk/status.h"

namespace volt {

// Milliseconds of each of `reps` calls of `fn` (a Status-returning callable that enqueues work on `stream`), each
// between two events and waited for, after `warmup` untimed calls. The first failing call's Status is returned.
template <typename Fn>
Expected<std::vector<double>> cuda_event_ms(int warmup, int reps, Fn&& fn, cudaStream_t stream) {
    cudaEvent_t ev[2] = {nullptr, nullptr};
    std::shared_ptr<void> guard(nullptr, [&](void*) {
        for (cudaEvent_t e : ev)
            if (e) cudaEventDestroy(e);
    });
    VOLT_CUDA_RETURN_IF_ERROR(cudaEventCreate(&ev[0]));
    VOLT_CUDA_RETURN_IF_ERROR(cudaEventCreate(&ev[1]));
    for (int w = 0; w < warmup; ++w) VOLT_RETURN_IF_ERROR(fn());
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) {
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev[0], stream));
        VOLT_RETURN_IF_ERROR(fn());
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev[1], stream));
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(ev[1]));
        float ms = 0;
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, ev[0], ev[1]));
        times.push_back(ms);
    }
    return times;
}

// The median of a non-empty list (the upper one of an even count).
inline double median_of(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

}  // namespace volt
