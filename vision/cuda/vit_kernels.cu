// The CLIP ViT's own GPU ops behind vision/cuda/vit_kernels.h: patch im2col, LayerNorm with bias (optionally fused
// with the embeddings' assembly), bidirectional attention (cuDNN SDPA, or the own fp32 kernel as the fallback),
// bf16 -> f32.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/device_common.cuh"
#include "sdk/cuda_check.h"
#include "sdk/env.h"
#include "vision/cuda/vit_attention_wgmma.h"
#include "vision/cuda/vit_kernels.h"

namespace volt::vision::cuda {
namespace {

using volt::cuda::aligned16;
using volt::cuda::pack8;
using volt::cuda::unpack8;

__device__ __forceinline__ float ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }

// ---- im2col ---------------------------------------------------------------------------------------------------------
__global__ void im2col_kernel(const float* __restrict__ px, __nv_bfloat16* __restrict__ cols, int64_t total, int C,
                              int S, int P, int grid, int K, int width) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int col = int(i % width);
    const int64_t row = i / width;  // b * grid^2 + patch
    float v = 0.0f;
    if (col < K) {
        const int per = grid * grid;
        const int64_t b = row / per;
        const int patch = int(row % per), py = patch / grid, pxl = patch % grid;
        const int c = col / (P * P), rem = col % (P * P), y = rem / P, x = rem % P;
        v = px[((b * C + c) * S + (py * P + y)) * int64_t(S) + pxl * P + x];
    }
    cols[i] = __float2bfloat16_rn(v);
}

// ---- LayerNorm: one warp per row, fp32 two-pass statistics over the row (re-read from L1) --------------------------
constexpr int kLnWarps = 4;

struct RowSource {
    const __nv_bfloat16* x;  // plain mode: the row
    const __nv_bfloat16* a;  // embeddings mode: class or patch row
    const __nv_bfloat16* pos;
    __device__ __forceinline__ float get(int i) const { return x ? ld(x + i) : ld(a + i) + ld(pos + i); }
    __device__ __forceinline__ void get8(int i, float (&f)[8]) const {
        if (x) {
            unpack8(*reinterpret_cast<const uint4*>(x + i), f);
        } else {
            float g[8];
            unpack8(*reinterpret_cast<const uint4*>(a + i), f);
            unpack8(*reinterpret_cast<const uint4*>(pos + i), g);
#pragma unroll
            for (int e = 0; e < 8; ++e) f[e] += g[e];
        }
    }
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    return v;
}

// kRegs > 0: W == 256 * kRegs, the row is read once into registers (kRegs 16-byte vectors per lane) and both
// statistics and the output come from there; same summation order as the vectorised two-read path (bit-identical).
// kRegs == 0: vectorised (kVec) or scalar, the row re-read for each pass.
template <bool kVec, int kRegs>
__global__ void layer_norm_kernel(const __nv_bfloat16* x, const __nv_bfloat16* __restrict__ w,
                                  const __nv_bfloat16* __restrict__ bias, __nv_bfloat16* out, int64_t rows, int W,
                                  float eps, const __nv_bfloat16* __restrict__ patches,
                                  const __nv_bfloat16* __restrict__ cls, const __nv_bfloat16* __restrict__ pos,
                                  int64_t T) {
    const int64_t row = int64_t(blockIdx.x) * kLnWarps + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    RowSource src{};
    if (patches) {
        const int64_t b = row / T, t = row % T;
        src.a = t == 0 ? cls : patches + (b * (T - 1) + t - 1) * W;
        src.pos = pos + t * W;
    } else {
        src.x = x + row * W;
    }
    __nv_bfloat16* o = out + row * W;
    if constexpr (kRegs > 0) {
        float f[kRegs][8];
        float sum = 0.0f;
#pragma unroll
        for (int r = 0; r < kRegs; ++r) {
            src.get8(lane * 8 + r * 256, f[r]);
#pragma unroll
            for (int e = 0; e < 8; ++e) sum += f[r][e];
        }
        const float mean = warp_sum(sum) / float(W);
        float sq = 0.0f;
#pragma unroll
        for (int r = 0; r < kRegs; ++r)
#pragma unroll
            for (int e = 0; e < 8; ++e) sq += (f[r][e] - mean) * (f[r][e] - mean);
        const float rstd = rsqrtf(warp_sum(sq) / float(W) + eps);
#pragma unroll
        for (int r = 0; r < kRegs; ++r) {
            const int i = lane * 8 + r * 256;
            float g[8], bb[8];
            unpack8(*reinterpret_cast<const uint4*>(w + i), g);
            unpack8(*reinterpret_cast<const uint4*>(bias + i), bb);
#pragma unroll
            for (int e = 0; e < 8; ++e) f[r][e] = (f[r][e] - mean) * rstd * g[e] + bb[e];
            *reinterpret_cast<uint4*>(o + i) = pack8(f[r]);
        }
        return;
    }
    float sum = 0.0f;
    if constexpr (kVec) {
        for (int i = lane * 8; i < W; i += 256) {
            float f[8];
            src.get8(i, f);
#pragma unroll
            for (int e = 0; e < 8; ++e) sum += f[e];
        }
    } else {
        for (int i = lane; i < W; i += 32) sum += src.get(i);
    }
    const float mean = warp_sum(sum) / float(W);
    float sq = 0.0f;
    if constexpr (kVec) {
        for (int i = lane * 8; i < W; i += 256) {
            float f[8];
            src.get8(i, f);
#pragma unroll
            for (int e = 0; e < 8; ++e) sq += (f[e] - mean) * (f[e] - mean);
        }
    } else {
        for (int i = lane; i < W; i += 32) {
            const float d = src.get(i) - mean;
            sq += d * d;
        }
    }
    const float rstd = rsqrtf(warp_sum(sq) / float(W) + eps);
    if constexpr (kVec) {
        for (int i = lane * 8; i < W; i += 256) {
            float f[8], g[8], bb[8];
            src.get8(i, f);
            unpack8(*reinterpret_cast<const uint4*>(w + i), g);
            unpack8(*reinterpret_cast<const uint4*>(bias + i), bb);
#pragma unroll
            for (int e = 0; e < 8; ++e) f[e] = (f[e] - mean) * rstd * g[e] + bb[e];
            *reinterpret_cast<uint4*>(o + i) = pack8(f);
        }
    } else {
        for (int i = lane; i < W; i += 32) o[i] = __float2bfloat16_rn((src.get(i) - mean) * rstd * ld(w + i) + ld(bias + i));
    }
}

// ---- attention (own kernel): one thread per query, K/V tiles in shared memory (broadcast reads) ---------------------
constexpr int kAttThreads = 128;
constexpr int kAttKeys = 32;

template <int HD>
__global__ void __launch_bounds__(kAttThreads) vit_attention_kernel(const __nv_bfloat16* __restrict__ qkv,
                                                                    int64_t ts, int64_t bs, int64_t k_off,
                                                                    int64_t v_off, __nv_bfloat16* __restrict__ o,
                                                                    int64_t ots, int64_t obs, int T,
                                                                    float scale_log2e) {
    __shared__ float4 ks[kAttKeys][HD / 4];
    __shared__ float4 vs[kAttKeys][HD / 4];
    const int h = blockIdx.y;
    const int64_t b = blockIdx.z;
    const int t = blockIdx.x * kAttThreads + threadIdx.x;
    const bool valid = t < T;
    const __nv_bfloat16* base = qkv + b * bs + int64_t(h) * HD;
    float q[HD], acc[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) {
        q[d] = valid ? ld(base + int64_t(t) * ts + d) * scale_log2e : 0.0f;
        acc[d] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int k0 = 0; k0 < T; k0 += kAttKeys) {
        const int n = min(kAttKeys, T - k0);
        __syncthreads();
        for (int i = threadIdx.x; i < kAttKeys * HD; i += kAttThreads) {
            const int j = i / HD, d = i % HD;
            float kv = 0.0f, vv = 0.0f;
            if (j < n) {
                const __nv_bfloat16* r = base + int64_t(k0 + j) * ts + d;
                kv = ld(r + k_off);
                vv = ld(r + v_off);
            }
            reinterpret_cast<float*>(ks[j])[d] = kv;
            reinterpret_cast<float*>(vs[j])[d] = vv;
        }
        __syncthreads();
        float s[kAttKeys];
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < kAttKeys; ++j) {
            float dot = 0.0f;
#pragma unroll
            for (int d4 = 0; d4 < HD / 4; ++d4) {
                const float4 kk = ks[j][d4];
                dot += q[4 * d4] * kk.x + q[4 * d4 + 1] * kk.y + q[4 * d4 + 2] * kk.z + q[4 * d4 + 3] * kk.w;
            }
            s[j] = j < n ? dot : -INFINITY;
            tile_max = fmaxf(tile_max, s[j]);
        }
        const float m_new = fmaxf(m, tile_max);
        const float corr = exp2f(m - m_new);  // m == -inf on the first tile: 0
        l *= corr;
#pragma unroll
        for (int d = 0; d < HD; ++d) acc[d] *= corr;
#pragma unroll
        for (int j = 0; j < kAttKeys; ++j) {
            const float p = exp2f(s[j] - m_new);
            l += p;
#pragma unroll
            for (int d4 = 0; d4 < HD / 4; ++d4) {
                const float4 vv = vs[j][d4];
                acc[4 * d4] += p * vv.x;
                acc[4 * d4 + 1] += p * vv.y;
                acc[4 * d4 + 2] += p * vv.z;
                acc[4 * d4 + 3] += p * vv.w;
            }
        }
        m = m_new;
    }
    if (!valid) return;
    const float inv = 1.0f / l;
    __nv_bfloat16* out = o + b * obs + int64_t(t) * ots + int64_t(h) * HD;
#pragma unroll
    for (int d = 0; d < HD; ++d) out[d] = __float2bfloat16_rn(acc[d] * inv);
}

template <int HD>
Status launch_attention(const VitAttentionParams& p, cudaStream_t stream) {
    const dim3 grid(unsigned((p.tokens + kAttThreads - 1) / kAttThreads), unsigned(p.heads), unsigned(p.batch));
    vit_attention_kernel<HD><<<grid, kAttThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(p.qkv), p.token_stride, p.batch_stride, p.k_offset, p.v_offset,
        static_cast<__nv_bfloat16*>(p.o), p.o_token_stride, p.o_batch_stride, int(p.tokens),
        p.scale * 1.4426950408889634f);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

Status run_own(const VitAttentionParams& p, cudaStream_t stream) {
    switch (p.head_dim) {
        case 8: return launch_attention<8>(p, stream);
        case 16: return launch_attention<16>(p, stream);
        case 32: return launch_attention<32>(p, stream);
        case 64: return launch_attention<64>(p, stream);
        default:
            return unimplemented("ViT attention (CUDA): head_dim ", p.head_dim,
                                 " needs cuDNN (the own kernel runs 8, 16, 32 and 64)");
    }
}

VitAttentionBackend env_backend() {
    static const VitAttentionBackend b = env_choice("VOLT_VIT_ATTENTION",
                                                    {{"own", VitAttentionBackend::kOwn},
                                                     {"cudnn", VitAttentionBackend::kCudnn},
                                                     {"wgmma", VitAttentionBackend::kWgmma}},
                                                    VitAttentionBackend::kAuto);
    return b;
}

bool cudnn_fits(const VitAttentionParams& p) {
    return p.head_dim % 8 == 0 && p.head_dim <= 128 && volt::cuda::cudnn_sdpa_available();
}

// The packed q|k|v rows as cuDNN's {B, H, T, hd} with strides {batch, hd, token, 1}; no mask. The heuristics' plan is
// the fastest cuDNN has for these shapes (all plans timed: volt_ops_bench --only cudnn_plans, bench/vision_notes.md).
Status cudnn_attention(const VitAttentionParams& p, cudaStream_t stream) {
    const volt::cuda::CudnnSdpaSpec spec{
        .batch = p.batch, .tokens = p.tokens, .heads = p.heads, .kv_heads = p.heads, .head_dim = p.head_dim,
        .q_stride_b = p.batch_stride, .q_stride_h = p.head_dim, .q_stride_t = p.token_stride,
        .k_stride_b = p.batch_stride, .k_stride_h = p.head_dim, .k_stride_t = p.token_stride,
        .v_stride_b = p.batch_stride, .v_stride_h = p.head_dim, .v_stride_t = p.token_stride,
        .o_stride_b = p.o_batch_stride, .o_stride_h = p.head_dim, .o_stride_t = p.o_token_stride,
        .causal = false, .scale = p.scale};
    const auto* base = static_cast<const uint16_t*>(p.qkv);
    return volt::cuda::cudnn_sdpa(spec, base, base + p.k_offset, base + p.v_offset, p.o, stream, "ViT attention");
}

VitAttentionBackend resolve(const VitAttentionParams& p) {
    VitAttentionBackend b = p.backend == VitAttentionBackend::kAuto ? env_backend() : p.backend;
    if (b == VitAttentionBackend::kAuto)
        b = !wgmma_attention_unfit(p) ? VitAttentionBackend::kWgmma
            : cudnn_fits(p)           ? VitAttentionBackend::kCudnn
                                      : VitAttentionBackend::kOwn;
    return b;
}

__global__ void bf16_to_f32_kernel(const __nv_bfloat16* __restrict__ in, float* __restrict__ out, int64_t n, bool vec) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (vec) {
        if (i * 8 >= n) return;
        float f[8];
        unpack8(*reinterpret_cast<const uint4*>(in + i * 8), f);
        reinterpret_cast<float4*>(out + i * 8)[0] = make_float4(f[0], f[1], f[2], f[3]);
        reinterpret_cast<float4*>(out + i * 8)[1] = make_float4(f[4], f[5], f[6], f[7]);
    } else if (i < n) {
        out[i] = __bfloat162float(in[i]);
    }
}

}  // namespace

Status run(const PatchIm2colParams& p, cudaStream_t stream) {
    if (p.batch < 0 || p.channels <= 0 || p.patch <= 0 || p.image_size <= 0 || p.image_size % p.patch != 0)
        return invalid_argument("patch im2col (CUDA): image_size ", p.image_size, " must be a positive multiple of patch ",
                                p.patch);
    if (p.cols_width < p.channels * p.patch * p.patch)
        return invalid_argument("patch im2col (CUDA): cols_width ", p.cols_width, " < C*P*P");
    if (!p.pixels || !p.cols) return invalid_argument("patch im2col (CUDA): pixels and cols must be set");
    const int64_t grid = p.image_size / p.patch;
    const int64_t total = p.batch * grid * grid * p.cols_width;
    if (total == 0) return Status::ok();
    im2col_kernel<<<unsigned((total + 255) / 256), 256, 0, stream>>>(
        p.pixels, static_cast<__nv_bfloat16*>(p.cols), total, int(p.channels), int(p.image_size), int(p.patch),
        int(grid), int(p.channels * p.patch * p.patch), int(p.cols_width));
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

Status run(const VitLayerNormParams& p, cudaStream_t stream) {
    if (p.rows < 0 || p.width <= 0) return invalid_argument("layer norm (CUDA): rows >= 0 and width > 0");
    if (p.rows == 0) return Status::ok();
    const bool embed = p.patches != nullptr;
    if (!p.weight || !p.bias || !p.out || (!embed && !p.x) || (embed && (!p.class_emb || !p.pos_emb || p.tokens < 1 ||
                                                                          p.rows % p.tokens != 0)))
        return invalid_argument("layer norm (CUDA): missing pointers, or rows not a multiple of tokens");
    const bool vec = p.width % 8 == 0 && aligned16(p.weight) && aligned16(p.bias) && aligned16(p.out) &&
                     (embed ? aligned16(p.patches) && aligned16(p.class_emb) && aligned16(p.pos_emb) : aligned16(p.x));
    const auto* x = static_cast<const __nv_bfloat16*>(p.x);
    const auto* w = static_cast<const __nv_bfloat16*>(p.weight);
    const auto* b = static_cast<const __nv_bfloat16*>(p.bias);
    auto* o = static_cast<__nv_bfloat16*>(p.out);
    const auto* pa = static_cast<const __nv_bfloat16*>(p.patches);
    const auto* ce = static_cast<const __nv_bfloat16*>(p.class_emb);
    const auto* pe = static_cast<const __nv_bfloat16*>(p.pos_emb);
    const unsigned blocks = unsigned((p.rows + kLnWarps - 1) / kLnWarps);
    auto launch = [&](auto kernel) {
        kernel<<<blocks, kLnWarps * 32, 0, stream>>>(x, w, b, o, p.rows, int(p.width), p.eps, pa, ce, pe, p.tokens);
    };
    static const bool reread = env_choice("VOLT_VIT_LN_REREAD", {{"0", false}, {"1", true}}, false);  // A/B timing
    const int64_t regs = vec && p.width % 256 == 0 && !reread ? p.width / 256 : 0;
    switch (regs) {  // the widths CLIP towers have (768, 1024, 1280, 1664, 2048 ...) up to 2048
        case 1: launch(layer_norm_kernel<true, 1>); break;
        case 2: launch(layer_norm_kernel<true, 2>); break;
        case 3: launch(layer_norm_kernel<true, 3>); break;
        case 4: launch(layer_norm_kernel<true, 4>); break;
        case 5: launch(layer_norm_kernel<true, 5>); break;
        case 6: launch(layer_norm_kernel<true, 6>); break;
        case 7: launch(layer_norm_kernel<true, 7>); break;
        case 8: launch(layer_norm_kernel<true, 8>); break;
        default:
            if (vec) launch(layer_norm_kernel<true, 0>);
            else launch(layer_norm_kernel<false, 0>);
    }
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

const char* vit_attention_backend_name(VitAttentionBackend b) {
    switch (b) {
        case VitAttentionBackend::kAuto: return "auto";
        case VitAttentionBackend::kOwn: return "own";
        case VitAttentionBackend::kCudnn: return "cudnn";
        case VitAttentionBackend::kWgmma: return "wgmma";
    }
    return "unknown";
}

const char* vit_attention_backend_name(const VitAttentionParams& p) { return vit_attention_backend_name(resolve(p)); }

Status run(const VitAttentionParams& p, cudaStream_t stream) {
    if (p.batch < 0 || p.tokens < 0 || p.heads <= 0 || p.head_dim <= 0 || p.scale <= 0.0f)
        return invalid_argument("ViT attention (CUDA): bad sizes (batch ", p.batch, ", tokens ", p.tokens, ", heads ",
                                p.heads, ", head_dim ", p.head_dim, ", scale ", p.scale, ")");
    if (p.batch == 0 || p.tokens == 0) return Status::ok();
    if (!p.qkv || !p.o) return invalid_argument("ViT attention (CUDA): qkv and o must be set");
    if (p.batch > 65535 || p.tokens > (int64_t{1} << 30))
        return invalid_argument("ViT attention (CUDA): at most 65535 sequences");
    const VitAttentionBackend b = resolve(p);
    if (b == VitAttentionBackend::kCudnn) {
        if (!cudnn_fits(p))
            return unimplemented("ViT attention (CUDA): cuDNN SDPA is not available for head_dim ", p.head_dim,
                                 " in this build / on this machine");
        return cudnn_attention(p, stream);
    }
    if (b == VitAttentionBackend::kWgmma) return run_wgmma_attention(p, stream);  // UNIMPLEMENTED with the reason
    return run_own(p, stream);  // UNIMPLEMENTED for head sizes it does not run
}

Status bf16_to_f32(const void* in, float* out, int64_t n, cudaStream_t stream) {
    if (n < 0 || (n > 0 && (!in || !out))) return invalid_argument("bf16_to_f32 (CUDA): bad arguments");
    if (n == 0) return Status::ok();
    const bool vec = n % 8 == 0 && aligned16(in) && aligned16(out);
    const int64_t threads = vec ? n / 8 : n;
    bf16_to_f32_kernel<<<unsigned((threads + 255) / 256), 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(in), out,
                                                                           n, vec);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace volt::vision::cuda
