// The MoE GEMM path's own grouped GEMM on Hopper tensor cores (kernels/cuda/moe_gemm_sm90.cu), used by
// kernels/cuda/moe.cu in place of one cuBLASLt GEMM per expert plus a SwiGLU pass when the shapes fit it.
//
// One launch covers every expert: out rows [off[e], off[e + 1]) = x rows [off[e], off[e + 1]) times expert e's
// weight. Gated (the up projection): out[:, 0 .. I) = SiLU(x w1^T) * (x w3^T), the SiLU * mul in the epilogue, so
// the [rows, 2I] gate|up intermediate and its SwiGLU pass are never made. Plain (the down projection):
// out[:, 0 .. N) = x w2^T. Quantised weights (int8, FP8 e4m3 with 128 x 128 block scales) are read as bytes and widened
// (times their scales) in registers inside the kernel: the mixed-input form, in place of a dequantising pass that
// writes a bf16 copy of each expert and a GEMM that reads it again; the gated product widens to f16 and takes x as
// scaled f16 rows (x_inv), the plain one widens to bf16.
#pragma once

#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/moe_cuda.h"
#include "sdk/status.h"

namespace volt::cuda::moe_gemm {

constexpr int kMaxTmaExperts = 64;  // the weights' tensor maps travel in the launch's parameters (<= 32 KiB)

struct GroupedGemmArgs {
    // [rows, K] bf16 in expert order (the gathered tokens), row stride x_stride. Quantised weights: each 16 columns'
    // pairs in the order 0, 2, 4, 6, 1, 3, 5, 7 (fragment order: the k order in which the weights' bytes, read 4 at a
    // time, land in wgmma's A fragments; rows_to_f16_kernel's fragment_order, or the gated product's output with
    // out_fragment_order).
    const void* x = nullptr;
    int64_t x_stride = 0;
    // Quantised weights, gated: x is f16 instead, row r times a power of two whose inverse is x_inv[r] (device,
    // [rows]), and the weights widen to f16 (cheaper inside the kernel than to bf16; the plain product widens to bf16).
    const float* x_inv = nullptr;
    int64_t rows = 0;                  // offsets[E] (the host's copy), for the grid and the zero fill past the end
    const int32_t* offsets = nullptr;  // [E + 1] device: expert e's rows are [offsets[e], offsets[e + 1])
    int num_experts = 0;
    bool gated = false;
    // Per expert (host arrays of E device pointers, copied into the launch): gated: a = w1, b = w3, each [N, K];
    // plain: a = w2 [N, K], b unused. Elements of `weights`, rows contiguous (row stride K).
    const void* const* w_a = nullptr;
    const void* const* w_b = nullptr;
    MoeWeightType weights = MoeWeightType::kBF16;
    // Quantised weights: per expert their fp32 block scales, [ceil(N / 128), ceil(K / 128)] (s_b with w_b).
    const float* const* s_a = nullptr;
    const float* const* s_b = nullptr;
    int64_t n = 0;  // output columns: I (gated) or H (plain)
    int64_t k = 0;  // H (gated) or I (plain)
    void* out = nullptr;  // [rows, n] bf16, row stride out_stride
    int64_t out_stride = 0;
    // Gated: out's 16-column groups in fragment order, the x of a plain product of quantised weights.
    bool out_fragment_order = false;
};

// Why the kernel cannot run these arguments on the current device (nullptr: it can): an sm_90 GPU, K a multiple
// of 64, N a multiple of 128 (gated) or 256 (plain), 16-byte aligned pointers and strides, at most kMaxTmaExperts
// experts, a driver with TMA tensor maps, scales with quantised weights.
const char* grouped_gemm_unfit(const GroupedGemmArgs& a);
// `host_offsets`: the host's copy of a.offsets ([E + 1]), which sizes the grid. Asynchronous on `stream`.
Status run_grouped_gemm(const GroupedGemmArgs& a, const int32_t* host_offsets, cudaStream_t stream);

}  // namespace volt::cuda::moe_gemm
#endif
