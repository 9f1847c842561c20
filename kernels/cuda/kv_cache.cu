// Kernel of kernels/kv_cache_cuda.h (see there).
#include "kernels/kv_cache_cuda.h"

#include <algorithm>

#include "kernels/cuda/device_common.cuh"

namespace volt::cuda {
namespace {

constexpr int kThreads = 128;

// Grid (row chunks, B, 2: keys then values); 16-byte copies.
__global__ void __launch_bounds__(kThreads) kv_append_kernel(const KvAppendParams p) {
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    const int b = blockIdx.y;
    const bool values = blockIdx.z == 1;
    const auto* src = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(values ? p.v_new : p.k_new) +
                                                     b * p.new_stride);
    auto* dst = reinterpret_cast<uint4*>(static_cast<uint16_t*>((values ? p.v_seqs : p.k_seqs)[b]) +
                                         int64_t{p.positions[b]} * p.row_stride);
    for (int64_t i = int64_t{blockIdx.x} * kThreads + threadIdx.x; i < p.width / 8; i += int64_t{gridDim.x} * kThreads)
        dst[i] = src[i];
}

}  // namespace

Status run(const KvAppendParams& p, cudaStream_t stream) {
    if (p.num_seqs < 0 || p.num_seqs > 65535) return invalid_argument("kv_append (CUDA): 0 to 65535 sequences, got ", p.num_seqs);
    if (p.num_seqs == 0) return Status::ok();
    if (p.width <= 0 || p.width % 8 || p.new_stride < p.width || p.new_stride % 8 || p.row_stride < p.width ||
        p.row_stride % 8)
        return invalid_argument("kv_append (CUDA): width (", p.width, "), new_stride (", p.new_stride,
                                ") and row_stride (", p.row_stride, ") must be multiples of 8 with strides >= width");
    if (!p.k_new || !p.v_new || !p.positions || !p.k_seqs || !p.v_seqs)
        return invalid_argument("kv_append (CUDA): k_new, v_new, positions, k_seqs and v_seqs must be set");
    if (!aligned16(p.k_new) || !aligned16(p.v_new))
        return invalid_argument("kv_append (CUDA): k_new and v_new must be 16-byte aligned");
    const int64_t vecs = p.width / 8;
    const unsigned chunks = static_cast<unsigned>(std::min<int64_t>((vecs + kThreads - 1) / kThreads, 64));
    return launch_dependent(kv_append_kernel, dim3(chunks, static_cast<unsigned>(p.num_seqs), 2), dim3(kThreads), 0,
                            stream, p);
}

}  // namespace volt::cuda
