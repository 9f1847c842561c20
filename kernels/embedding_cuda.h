// Embedding gather on the GPU (CUDA-only interface; CPU twin kernels/embedding.h): out[t] = table[ids[t]], bf16 rows
// copied with 16-byte vectors (no scaling: MiniMax's embed_scale is 1). Ids live on the device (the sampler writes
// them there), so they are not validated on the host: an id outside [0, V) yields a zero row and is counted in
// *invalid_count (when set; the caller zeroes it) instead of reading out of bounds.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

struct EmbeddingParams {
    int64_t num_tokens = 0;          // T
    const int32_t* ids = nullptr;    // [T] device
    int64_t vocab_size = 0;          // V
    int64_t hidden = 0;              // H: a multiple of 8
    const void* table = nullptr;     // [V, H] bf16 contiguous
    void* out = nullptr;             // [T, H] bf16, row stride out_stride (a multiple of 8)
    int64_t out_stride = 0;
    int32_t* invalid_count = nullptr;  // optional device counter of out-of-range ids
};

Status run(const EmbeddingParams& p, cudaStream_t stream);

}  // namespace volt::cuda
