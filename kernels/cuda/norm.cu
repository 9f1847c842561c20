// RMSNorm with the fused DeepNorm residual (kernels/norm_cuda.h). One CTA of 256 threads per token keeps the whole
// row in registers (kVec 16-byte vectors per thread), so x and the residual are read once and out written once; the
// row is fully read before anything is written, so out / sum_out may alias the inputs.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/device_common.cuh"
#include "kernels/norm_cuda.h"
#include "sdk/cuda_check.h"

namespace volt::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxVec = 8;  // 256 threads * 8 vectors * 8 elements = 16384

struct NormArgs {
    const __nv_bfloat16* x;
    int64_t xs;
    float beta;
    const __nv_bfloat16* r;
    int64_t rs;
    float alpha;
    const __nv_bfloat16* w;
    float eps;
    __nv_bfloat16* out;
    int64_t os;
    __nv_bfloat16* sum;
    int64_t ss;
    int width;
};

template <int kVec>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(const NormArgs a) {
    start_dependent_kernel();  // started by launch_dependent: x and the residual are the previous kernels' output
    const int64_t t = blockIdx.x;
    const int tid = threadIdx.x;
    const int nvec = a.width / 8;
    const uint4* xrow = reinterpret_cast<const uint4*>(a.x + t * a.xs);
    const uint4* rrow = a.r ? reinterpret_cast<const uint4*>(a.r + t * a.rs) : nullptr;
    uint4 xv[kVec], rv[kVec];
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
        const int vi = tid + i * kThreads;
        if (vi < nvec) {
            xv[i] = xrow[vi];
            if (rrow) rv[i] = rrow[vi];
        }
    }
    float sq = 0.0f;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
        const int vi = tid + i * kThreads;
        if (vi < nvec) {
            float s[8];
            unpack8(xv[i], s);
            if (rrow) {
                float r[8];
                unpack8(rv[i], r);
#pragma unroll
                for (int e = 0; e < 8; ++e) s[e] = fmaf(a.alpha, r[e], a.beta * s[e]);
                xv[i] = pack8(s);  // the bf16 residual stream value s
                unpack8(xv[i], s);
            }
#pragma unroll
            for (int e = 0; e < 8; ++e) sq = fmaf(s[e], s[e], sq);
        }
    }
    const float inv = rsqrtf(block_sum_once<kThreads>(sq) / static_cast<float>(a.width) + a.eps);

    const uint4* wrow = reinterpret_cast<const uint4*>(a.w);
    uint4* orow = reinterpret_cast<uint4*>(a.out + t * a.os);
    uint4* srow = a.sum ? reinterpret_cast<uint4*>(a.sum + t * a.ss) : nullptr;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
        const int vi = tid + i * kThreads;
        if (vi < nvec) {
            float s[8], w[8], y[8];
            unpack8(xv[i], s);
            unpack8(wrow[vi], w);
#pragma unroll
            for (int e = 0; e < 8; ++e) y[e] = w[e] * round_bf16(s[e] * inv);
            if (srow) srow[vi] = xv[i];
            orow[vi] = pack8(y);
        }
    }
}

bool ok_layout(const void* p, int64_t stride) { return aligned16(p) && stride % 8 == 0; }

}  // namespace

Status run(const RmsNormParams& p, cudaStream_t stream) {
    if (p.num_tokens < 0 || p.width <= 0 || p.width % 8 != 0 || p.width > kThreads * kMaxVec * 8)
        return invalid_argument("rms_norm (CUDA): num_tokens (", p.num_tokens, ") >= 0 and width (", p.width,
                                ") a multiple of 8 in [8, ", kThreads * kMaxVec * 8, "]");
    if (p.num_tokens == 0) return Status::ok();
    if (p.num_tokens > 0x7fffffff) return invalid_argument("rms_norm (CUDA): too many tokens");
    if (!p.x || !p.weight || !p.out) return invalid_argument("rms_norm (CUDA): x, weight and out must be set");
    if (!(p.eps > 0.0f)) return invalid_argument("rms_norm (CUDA): eps must be positive");
    if (!ok_layout(p.x, p.x_stride) || !ok_layout(p.out, p.out_stride) || !aligned16(p.weight) ||
        (p.residual && !ok_layout(p.residual, p.residual_stride)) || (p.sum_out && !ok_layout(p.sum_out, p.sum_stride)))
        return invalid_argument("rms_norm (CUDA): pointers 16-byte aligned, strides multiples of 8");
    if (p.num_tokens > 1 && (p.x_stride < p.width || p.out_stride < p.width ||
                             (p.residual && p.residual_stride < p.width) || (p.sum_out && p.sum_stride < p.width)))
        return invalid_argument("rms_norm (CUDA): row strides must be >= width (", p.width, ")");
    const NormArgs a{static_cast<const __nv_bfloat16*>(p.x), p.x_stride, p.x_beta,
                     static_cast<const __nv_bfloat16*>(p.residual), p.residual_stride, p.residual_alpha,
                     static_cast<const __nv_bfloat16*>(p.weight), p.eps, static_cast<__nv_bfloat16*>(p.out),
                     p.out_stride, static_cast<__nv_bfloat16*>(p.sum_out), p.sum_stride, static_cast<int>(p.width)};
    const unsigned grid = static_cast<unsigned>(p.num_tokens);
    const auto kernel = p.width <= kThreads * 2 * 8   ? rms_norm_kernel<2>
                        : p.width <= kThreads * 4 * 8 ? rms_norm_kernel<4>
                                                      : rms_norm_kernel<kMaxVec>;
    return launch_dependent(kernel, dim3(grid), dim3(kThreads), 0, stream, a);
}

}  // namespace volt::cuda
