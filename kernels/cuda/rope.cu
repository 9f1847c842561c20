// Partial RoPE (kernels/rope_cuda.h). One thread per (token, head, 8 rotary pairs): 16-byte loads of x_i..x_{i+7}
// and x_{i+R/2}..x_{i+R/2+7}, both written back; the pass-through dims are never touched. Layouts that do not allow
// 16-byte vectors take a one-pair-per-thread variant. inv_freq arrives by value, computed on the host as the CPU twin
// computes it, so positions up to the 1M-token contexts round exactly as the reference's fp32 angles do.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda/device_common.cuh"
#include "kernels/rope_cuda.h"
#include "sdk/cuda_check.h"

namespace volt::cuda {
namespace {

constexpr int kMaxHalf = 128;

struct RopeArgs {
    float inv_freq[kMaxHalf];
    int half;
    const int32_t* positions;
    int64_t start;
    __nv_bfloat16* x;
    int heads;
    int64_t st, sh;
    __nv_bfloat16* x2;
    int heads2;
    int64_t st2, sh2;
};

// kVec: one thread per (token, head, 8 consecutive pairs), 16-byte loads of x_i..x_{i+7} and x_{i+R/2}..; else one
// thread per (token, head, pair) with 2-byte accesses (any layout).
template <bool kVec>
__global__ void rope_kernel(const RopeArgs a, int64_t total) {
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    constexpr int kPairs = kVec ? 8 : 1;
    const int groups = a.half / kPairs;
    const int64_t per_token = int64_t{a.heads + a.heads2} * groups;
    for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
        const int64_t t = i / per_token;
        const int rem = static_cast<int>(i - t * per_token);
        const int hh = rem / groups, j0 = (rem - hh * groups) * kPairs;
        __nv_bfloat16* base = hh < a.heads ? a.x + t * a.st + int64_t{hh} * a.sh
                                           : a.x2 + t * a.st2 + int64_t{hh - a.heads} * a.sh2;
        const float pos = static_cast<float>(a.positions ? int64_t{a.positions[t]} : a.start + t);
        float x1[kPairs], x2[kPairs];
        if constexpr (kVec) {
            unpack8(*reinterpret_cast<const uint4*>(base + j0), x1);
            unpack8(*reinterpret_cast<const uint4*>(base + j0 + a.half), x2);
        } else {
            x1[0] = __bfloat162float(base[j0]);
            x2[0] = __bfloat162float(base[j0 + a.half]);
        }
        float y1[kPairs], y2[kPairs];
#pragma unroll
        for (int e = 0; e < kPairs; ++e) {
            float sn, cs;
            sincosf(pos * a.inv_freq[j0 + e], &sn, &cs);
            y1[e] = x1[e] * cs - x2[e] * sn;
            y2[e] = x2[e] * cs + x1[e] * sn;
        }
        if constexpr (kVec) {
            *reinterpret_cast<uint4*>(base + j0) = pack8(y1);
            *reinterpret_cast<uint4*>(base + j0 + a.half) = pack8(y2);
        } else {
            base[j0] = __float2bfloat16_rn(y1[0]);
            base[j0 + a.half] = __float2bfloat16_rn(y2[0]);
        }
    }
}

}  // namespace

Status run(const RopeParams& p, cudaStream_t stream) {
    if (p.num_tokens < 0 || p.num_heads <= 0 || p.head_dim <= 0 || p.num_heads2 < 0)
        return invalid_argument("rope (CUDA): num_tokens (", p.num_tokens, ") >= 0, num_heads (", p.num_heads,
                                ") and head_dim (", p.head_dim, ") positive");
    if (p.rotary_dim < 0 || p.rotary_dim % 2 != 0 || p.rotary_dim > p.head_dim || p.rotary_dim > 2 * kMaxHalf)
        return invalid_argument("rope (CUDA): rotary_dim ", p.rotary_dim, " must be even and in [0, min(head_dim ",
                                p.head_dim, ", ", 2 * kMaxHalf, ")]");
    if (!(p.theta > 0)) return invalid_argument("rope (CUDA): theta must be positive");
    if (p.start_position < 0) return invalid_argument("rope (CUDA): negative start_position");
    if (p.num_tokens > 0 && (!p.x || (p.num_heads2 > 0 && !p.x2)))
        return invalid_argument("rope (CUDA): x (and x2 when num_heads2 > 0) must be set");
    if ((p.num_heads > 1 && p.stride_head < p.head_dim) || (p.num_heads2 > 1 && p.stride_head2 < p.head_dim))
        return invalid_argument("rope (CUDA): stride_head < head_dim");
    const int half = p.rotary_dim / 2;
    if (half == 0 || p.num_tokens == 0) return Status::ok();
    RopeArgs a{};
    // inv_freq exactly as the CPU twin (and torch): 1 / (theta ** (arange(0, R, 2).float() / R)) in float32.
    const float theta = static_cast<float>(p.theta);
    for (int i = 0; i < half; ++i)
        a.inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(p.rotary_dim));
    a.half = half;
    a.positions = p.positions;
    a.start = p.start_position;
    a.x = static_cast<__nv_bfloat16*>(p.x);
    a.heads = p.num_heads;
    a.st = p.stride_token;
    a.sh = p.stride_head;
    a.x2 = static_cast<__nv_bfloat16*>(p.x2);
    a.heads2 = p.x2 ? p.num_heads2 : 0;
    a.st2 = p.stride_token2;
    a.sh2 = p.stride_head2;
    const bool vec = half % 8 == 0 && aligned16(p.x) && p.stride_token % 8 == 0 && p.stride_head % 8 == 0 &&
                     (!p.x2 || (aligned16(p.x2) && p.stride_token2 % 8 == 0 && p.stride_head2 % 8 == 0));
    const int64_t total = p.num_tokens * (a.heads + a.heads2) * (vec ? half / 8 : half);
    const int threads = 256;
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total + threads - 1) / threads, 65535 * 16));
    return launch_dependent(vec ? rope_kernel<true> : rope_kernel<false>, dim3(blocks), dim3(threads), 0, stream, a,
                            total);
}

}  // namespace volt::cuda
