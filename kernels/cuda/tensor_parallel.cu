// Kernels of kernels/tensor_parallel_cuda.h (see there for what and why).
#include "kernels/tensor_parallel_cuda.h"

#include "kernels/cuda/device_common.cuh"

namespace volt::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void local_ids_kernel(const int32_t* __restrict__ ids, int32_t* out, int64_t n, int64_t lo, int64_t hi) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int64_t id = ids[i];
    out[i] = (id >= lo && id < hi) ? static_cast<int32_t>(id - lo) : -1;
}

// One block per token.
__global__ void __launch_bounds__(kThreads) square_sum_kernel(const __nv_bfloat16* __restrict__ x, int64_t stride,
                                                              int width, float* __restrict__ out) {
    const uint4* row = reinterpret_cast<const uint4*>(x + static_cast<int64_t>(blockIdx.x) * stride);
    float ss = 0.0f;
    for (int v = threadIdx.x; v < width / 8; v += kThreads) {
        float f[8];
        unpack8(row[v], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) ss = fmaf(f[e], f[e], ss);
    }
    ss = block_sum_once<kThreads>(ss);
    if (threadIdx.x == 0) out[blockIdx.x] = ss;
}

// One block per token; 16-byte vectors of o, gate and weight.
__global__ void __launch_bounds__(kThreads) split_norm_gate_kernel(
    const float* __restrict__ sum_squares, float total_width, float eps, const __nv_bfloat16* __restrict__ o,
    int64_t o_st, const __nv_bfloat16* __restrict__ gate, int64_t g_st, const __nv_bfloat16* __restrict__ weight,
    __nv_bfloat16* __restrict__ out, int64_t out_st, int width) {
    const int64_t t = blockIdx.x;
    const float inv = rsqrtf(sum_squares[t] / total_width + eps);
    const uint4* orow = reinterpret_cast<const uint4*>(o + t * o_st);
    const uint4* grow = reinterpret_cast<const uint4*>(gate + t * g_st);
    const uint4* wrow = reinterpret_cast<const uint4*>(weight);
    uint4* yrow = reinterpret_cast<uint4*>(out + t * out_st);
    for (int v = threadIdx.x; v < width / 8; v += kThreads) {
        float fo[8], fg[8], fw[8], y[8];
        unpack8(orow[v], fo);
        unpack8(grow[v], fg);
        unpack8(wrow[v], fw);
#pragma unroll
        for (int e = 0; e < 8; ++e) y[e] = round_bf16(fw[e] * round_bf16(fo[e] * inv)) / (1.0f + expf(-fg[e]));
        yrow[v] = pack8(y);
    }
}

bool rows_ok(const void* p, int64_t stride) {
    return aligned16(p) && stride % 8 == 0;
}

}  // namespace

Status run(const LocalIdsParams& p, cudaStream_t stream) {
    if (p.n < 0 || p.lo > p.hi) return invalid_argument("local_ids (CUDA): n >= 0 and lo <= hi");
    if (p.n == 0) return Status::ok();
    if (!p.ids || !p.out) return invalid_argument("local_ids (CUDA): ids and out must be set");
    const int64_t blocks = (p.n + kThreads - 1) / kThreads;
    if (blocks > 0x7fffffff) return invalid_argument("local_ids (CUDA): too many ids");
    local_ids_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p.ids, p.out, p.n, p.lo, p.hi);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

Status run(const SquareSumParams& p, cudaStream_t stream) {
    if (p.num_tokens < 0 || p.width <= 0 || p.width % 8 != 0)
        return invalid_argument("square_sum (CUDA): num_tokens >= 0 and width a positive multiple of 8, got ",
                                p.num_tokens, " and ", p.width);
    if (p.num_tokens == 0) return Status::ok();
    if (!p.x || !p.out || !rows_ok(p.x, p.x_stride) || p.x_stride < p.width)
        return invalid_argument("square_sum (CUDA): x 16-byte aligned with a stride >= width and a multiple of 8");
    if (p.num_tokens > 0x7fffffff) return invalid_argument("square_sum (CUDA): too many tokens");
    square_sum_kernel<<<static_cast<unsigned>(p.num_tokens), kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(p.x), p.x_stride, p.width, p.out);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

Status run(const SplitNormGateParams& p, cudaStream_t stream) {
    if (p.num_tokens < 0 || p.width <= 0 || p.width % 8 != 0 || p.total_width < p.width)
        return invalid_argument("split_norm_gate (CUDA): num_tokens >= 0, width a positive multiple of 8, "
                                "total_width >= width; got ", p.num_tokens, ", ", p.width, ", ", p.total_width);
    if (p.num_tokens == 0) return Status::ok();
    if (!p.sum_squares || !p.o || !p.gate || !p.weight || !p.out || !aligned16(p.weight) ||
        !rows_ok(p.o, p.o_stride) || !rows_ok(p.gate, p.gate_stride) || !rows_ok(p.out, p.out_stride))
        return invalid_argument("split_norm_gate (CUDA): pointers set and 16-byte aligned, strides multiples of 8");
    if (p.num_tokens > 0x7fffffff) return invalid_argument("split_norm_gate (CUDA): too many tokens");
    split_norm_gate_kernel<<<static_cast<unsigned>(p.num_tokens), kThreads, 0, stream>>>(
        p.sum_squares, static_cast<float>(p.total_width), p.eps, static_cast<const __nv_bfloat16*>(p.o),
        p.o_stride, static_cast<const __nv_bfloat16*>(p.gate), p.gate_stride,
        static_cast<const __nv_bfloat16*>(p.weight), static_cast<__nv_bfloat16*>(p.out), p.out_stride, p.width);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace volt::cuda
