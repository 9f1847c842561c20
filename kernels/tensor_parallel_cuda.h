// The small kernels a backbone split over GPUs needs besides the single-GPU ops (text/parallel_mapping.h, issue 8).
// CUDA-only interface. Their reference is the unsplit op: tests/gpu/test_tensor_parallel_gpu.cpp checks that the
// split norm over every rank's columns equals the CUDA lightning_norm_gate over the full width (itself checked
// against cpu::lightning_norm_gate), and the local ids against a host loop.
//
// Local ids: a rank holding the rows [lo, hi) of a table (vocabulary-parallel embedding) or experts [lo, hi) maps
// global ids to local ones, -1 outside: the embedding gather writes a zero row for -1 and the MoE experts skip the
// slot, so the all-reduce that follows sums exactly one contribution per token.
//
// Lightning RMSNorm over heads split across ranks: the norm's statistic spans all heads, so each rank first writes
// its columns' sum of squares per token (fp32), the caller sums those over ranks, and then each rank normalises its
// columns with the total — the same arithmetic and roundings as LightningNormGateParams over the full width:
//   out = bf16( bf16(w * bf16(o * rsqrt(total / total_width + eps))) * sigmoid(gate) )
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

struct LocalIdsParams {
    int64_t n = 0;
    const int32_t* ids = nullptr;  // [n] device, global ids
    int64_t lo = 0, hi = 0;        // this rank's range [lo, hi)
    int32_t* out = nullptr;        // [n] device: id - lo inside the range, -1 outside (may alias ids)
};
Status run(const LocalIdsParams& p, cudaStream_t stream);

struct SquareSumParams {
    int64_t num_tokens = 0;     // T
    int width = 0;              // this rank's columns (a multiple of 8)
    const void* x = nullptr;    // [T, width] bf16, row stride x_stride (a multiple of 8, 16-byte aligned)
    int64_t x_stride = 0;
    float* out = nullptr;       // [T] fp32: sum of x^2 over the row
};
Status run(const SquareSumParams& p, cudaStream_t stream);

struct SplitNormGateParams {
    int64_t num_tokens = 0;            // T
    int width = 0;                     // this rank's columns (a multiple of 8)
    int64_t total_width = 0;           // the norm's full width (all ranks' columns)
    float eps = 0;
    const float* sum_squares = nullptr;  // [T] fp32: the sum over all ranks
    const void* o = nullptr;           // [T, width] bf16
    int64_t o_stride = 0;
    const void* gate = nullptr;        // [T, width] bf16 (pre-sigmoid)
    int64_t gate_stride = 0;
    const void* weight = nullptr;      // [width] bf16: this rank's slice of the norm weight
    void* out = nullptr;               // [T, width] bf16
    int64_t out_stride = 0;
};
Status run(const SplitNormGateParams& p, cudaStream_t stream);

}  // namespace volt::cuda
