// This machine's CPU ceilings, measured in the calling process: what CPU benchmarks (`volt bench`, bench/*.cpp) read
// their numbers against. Random non-zero data (zeros can take fast paths), a warm-up, then the best of `reps`.
#pragma once

#include <cstdint>

namespace volt::cpu {

// GFLOP/s of one n x n x n fp32 GEMM through cpu::gemm (OpenBLAS): the compute roofline of prefill and the ViT.
double measure_sgemm_gflops(int64_t n = 2048, int reps = 3);
// GB/s of a threaded sum over `bytes` of fp32 (read-only): the ceiling of decode, which streams the active weights
// once per token.
double measure_read_gbs(int64_t bytes = int64_t{512} << 20, int reps = 3);

}  // namespace volt::cpu
