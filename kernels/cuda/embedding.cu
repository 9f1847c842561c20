// Embedding gather (kernels/embedding_cuda.h): one thread per 16-byte vector of an output row.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/device_common.cuh"
#include "kernels/embedding_cuda.h"
#include "sdk/cuda_check.h"

namespace volt::cuda {
namespace {

__global__ void embedding_kernel(const int32_t* __restrict__ ids, int64_t vocab, const uint4* __restrict__ table,
                                 int64_t vec_per_row, uint4* out, int64_t out_stride_vec, int64_t total,
                                 int32_t* invalid_count) {
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
        const int64_t t = i / vec_per_row, c = i - t * vec_per_row;
        const int64_t id = ids[t];
        const bool ok = id >= 0 && id < vocab;
        out[t * out_stride_vec + c] = ok ? table[id * vec_per_row + c] : make_uint4(0, 0, 0, 0);
        if (!ok && c == 0 && invalid_count) atomicAdd(invalid_count, 1);
    }
}

}  // namespace

Status run(const EmbeddingParams& p, cudaStream_t stream) {
    if (p.num_tokens < 0 || p.vocab_size <= 0 || p.hidden <= 0 || p.hidden % 8 != 0)
        return invalid_argument("embedding (CUDA): num_tokens (", p.num_tokens, ") >= 0, vocab_size (", p.vocab_size,
                                ") positive, hidden (", p.hidden, ") a positive multiple of 8");
    if (p.num_tokens == 0) return Status::ok();
    if (!p.ids || !p.table || !p.out) return invalid_argument("embedding (CUDA): ids, table and out must be set");
    if (!aligned16(p.table) || !aligned16(p.out) || p.out_stride % 8 != 0 || (p.num_tokens > 1 && p.out_stride < p.hidden))
        return invalid_argument("embedding (CUDA): table and out 16-byte aligned, out_stride >= hidden, multiple of 8");
    const int64_t vpr = p.hidden / 8, total = p.num_tokens * vpr;
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65535 * 16);
    return launch_dependent(embedding_kernel, dim3(static_cast<unsigned>(blocks)), dim3(threads), 0, stream, p.ids,
                            p.vocab_size, static_cast<const uint4*>(p.table), vpr, static_cast<uint4*>(p.out),
                            p.out_stride / 8, total, p.invalid_count);
}

}  // namespace volt::cuda
