// Random tensors filled on the GPU (synthetic weights for benchmarks at full size, where generating billions of
// values on the host and copying them would take minutes): uniform in [offset - sqrt(3) scale, offset + sqrt(3) scale)
// so the standard deviation is `scale`; a counter-based hash of (seed, index), so the values do not depend on the
// launch shape. Never zeros unless asked for (scale 0, offset 0).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

struct RandomFillParams {
    void* out = nullptr;   // [n] bf16 or fp32 (device)
    bool bf16 = true;      // element type of out
    int64_t n = 0;
    float scale = 1.0f;    // standard deviation
    float offset = 0.0f;   // mean
    uint64_t seed = 0;
};

Status run(const RandomFillParams& p, cudaStream_t stream);

}  // namespace volt::cuda
