#include "kernels/random_fill_cuda.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "sdk/cuda_check.h"

namespace volt::cuda {
namespace {

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

template <typename T>
__global__ void random_fill_kernel(T* out, int64_t n, float half_width, float offset, uint64_t seed) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        const uint64_t r = splitmix64(seed * 0xD1B54A32D192ED03ull + uint64_t(i));
        const float u = float(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;  // [-1, 1)
        const float v = offset + half_width * u;
        if constexpr (sizeof(T) == 2) out[i] = __float2bfloat16(v);
        else out[i] = v;
    }
}

}  // namespace

Status run(const RandomFillParams& p, cudaStream_t stream) {
    if (!p.out || p.n < 0) return invalid_argument("random fill: out is null or n < 0");
    if (p.n == 0) return Status::ok();
    const float half_width = 1.7320508f * p.scale;  // uniform with std `scale`
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((p.n + threads - 1) / threads, 65535 * 8);
    if (p.bf16) {
        random_fill_kernel<<<unsigned(blocks), threads, 0, stream>>>(static_cast<__nv_bfloat16*>(p.out), p.n,
                                                                     half_width, p.offset, p.seed);
    } else {
        random_fill_kernel<<<unsigned(blocks), threads, 0, stream>>>(static_cast<float*>(p.out), p.n, half_width,
                                                                     p.offset, p.seed);
    }
    return VOLT_CUDA_STATUS(cudaGetLastError());
}

}  // namespace volt::cuda
