// The new tokens' keys and values of a decode batch into each sequence's own KV cache (continuous batching: the
// sequences' caches live apart, so the k/v projections write a [B, W] block that this scatters). CUDA-only; the
// reference is a host loop (tests/gpu/test_attention_gpu.cpp, KvAppendWritesEachSequencesRow):
//     k_seqs[b][positions[b] * row_stride + c] = k_new[b * new_stride + c]   for c < width (v alike)
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

struct KvAppendParams {
    int num_seqs = 0;               // B
    int64_t width = 0;              // W = Hkv * D elements per row (a multiple of 8)
    const void* k_new = nullptr;    // [B, W] bf16, row b at k_new + b * new_stride (16-byte aligned)
    const void* v_new = nullptr;    // [B, W] bf16
    int64_t new_stride = 0;         // elements between rows of k_new / v_new (a multiple of 8, >= W)
    const int32_t* positions = nullptr;  // [B] device: the row of sequence b's cache to write
    void* const* k_seqs = nullptr;  // [B] device array of device pointers: sequence b's key row 0 (16-byte aligned)
    void* const* v_seqs = nullptr;  // [B] the same for values
    int64_t row_stride = 0;         // elements between cache rows (a multiple of 8, >= W)
};
Status run(const KvAppendParams& p, cudaStream_t stream);

}  // namespace volt::cuda
