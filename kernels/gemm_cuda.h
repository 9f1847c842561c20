// Dense GEMM on the GPU through cuBLASLt, and the fused SwiGLU (SiLU(gate) * up) that sits between the MoE / MLP
// projections. CUDA-only interface (include from CUDA-enabled code); the CPU twin is kernels/gemm.h (fp32 OpenBLAS)
// and kernels/activation.h.
//
//     C = alpha * A * op(B) + beta * C   [+ bias]   [GELU]
// bf16 A, B, C (and bias; C may be fp32 instead), fp32 accumulation and epilogue arithmetic, row-major like the CPU
// twin: A [M, K], B a Linear weight [N, K] (op = transpose, the default) or [K, N], C [M, N]. The bias is per output
// column (N).
// GELU is the exact erf form (config "gelu": the CLIP tower and the VL projector). cuBLASLt's own GELU epilogue is
// the tanh approximation, so GELU runs as one vectorised pass over C after the (bias) epilogue. kBiasGeluTanh asks
// for cuBLASLt's fused GELU_BIAS epilogue instead (no extra pass over C; the tanh form
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), which differs from the erf form by at most 4.7e-4 absolute; on
// the ViT's fc1 the bf16 outputs stay within one bf16 step + 1.5e-3 of the erf path, tests/gpu/vision): only for
// callers that accept that (the ViT's fc1, see vision/cuda/clip_vision_tower_cuda.h).
//
// Plan/run split: a GemmPlan owns a cuBLASLt handle, a workspace and a cache of matmul descriptors + the heuristic's
// algorithm per shape (M, N, K, strides, op, epilogue, beta != 0); the first run of a shape queries the heuristic,
// later runs only launch. A plan serves one stream at a time (its workspace is shared by the launches it enqueues);
// the free run() keeps one plan per (device, stream).
//
// Decode products (M <= kGemmTuneMaxRows, B a weight of >= kGemmTuneMinWeightBytes, beta 0) stream their weight once
// and cuBLASLt's first-ranked algorithm is not always the fastest at it (H100, M = 1: the lm_head 0.873 ms at rank 0,
// 0.826 at rank 5; M = 64: the lightning qkv 0.135 vs 0.113 ms): the first run of such a shape times the heuristic's
// first kGemmTuneCandidates algorithms on the caller's buffers (C is overwritten, A and B only read) and keeps the
// fastest. That waits for the stream and costs ~30 ms for the lm_head, a few ms for a 100 MB projection, once per
// shape: the first step of each batch size pays it (and the MoE GEMM path's bf16 experts once per row count up to
// 64). Not while the stream is being captured (the first-ranked one is kept then), not when the heuristic offers one
// algorithm, and not with VOLT_GEMM_TUNE=0 (A/B timing; read once).
//
// Large products whose caller asks (GemmParams::tune_configs: bf16, at least kGemmConfigTuneMinMacs multiply-adds;
// beta 0, or beta != 0 with a tune_scratch for the timing runs to write) time a few configurations of the heuristic's
// first algorithm beside it at their first run (kernels/cuda/gemm.cu: kConfigCandidates; ~3 ms a shape, same
// conditions as above): on the ViT's qkv and fc1 products the heuristic's wide tiles were 7-13% slower than narrower
// ones, on its out projection into the residual stream 15-25%, with bitwise the same outputs.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sdk/status.h"

namespace volt::cuda {

enum class GemmEpilogue : uint8_t {
    kNone,      // C = alpha A op(B) + beta C
    kBias,      // ... + bias[n]
    kGelu,      // GELU(alpha A op(B) + beta C)
    kBiasGelu,  // GELU(alpha A op(B) + beta C + bias[n])
    kBiasGeluTanh,  // GELU_tanh(alpha A op(B) + beta C + bias[n]), fused in cuBLASLt's epilogue
};

// The operands' element type. kFp8E4M3BlockScaled: Hopper's FP8 tensor cores through cuBLASLt's DeepSeek-V3-style
// block scaling (value = e4m3 byte * its block's fp32 scale, fp32 accumulation with the scales applied per 128-deep
// step, bf16 C): A's scales one per (row, 128 columns) block, B's one per 128 x 128 block. Needs sm_90, B a Linear
// weight (b_transposed), K a multiple of 128, M a multiple of 4 (cuBLASLt's layout of A's scales: pad the rows),
// lda / ldb multiples of 16, kNone, beta 0. The CPU twin: cpu::gemm on the dequantised operands
// (cpu::fp8_block_dequantize, kernels/moe.h).
enum class GemmInputs : uint8_t { kBF16, kFp8E4M3BlockScaled };

struct GemmParams {
    int64_t m = 0, n = 0, k = 0;  // M, N, K
    const void* a = nullptr;      // [M, K] bf16 row-major, row stride lda (>= K)
    int64_t lda = 0;
    const void* b = nullptr;      // b_transposed: [N, K] bf16 (a Linear weight), row stride ldb >= K; else [K, N]
    int64_t ldb = 0;
    bool b_transposed = true;
    void* c = nullptr;            // [M, N] bf16 row-major, row stride ldc (>= N)
    int64_t ldc = 0;
    const void* bias = nullptr;   // [N] bf16, for kBias / kBiasGelu / kBiasGeluTanh
    GemmEpilogue epilogue = GemmEpilogue::kNone;
    float alpha = 1.0f;
    float beta = 0.0f;            // 0: C is overwritten (its previous contents may be garbage)
    bool c_fp32 = false;          // C fp32 instead of bf16 (bf16 inputs and kNone only: the lm_head's logits)
    GemmInputs inputs = GemmInputs::kBF16;  // kFp8E4M3BlockScaled: A and B hold e4m3 bytes, scaled by:
    const float* a_scales = nullptr;  // [K / 128, M] fp32, M contiguous (cuBLASLt's VEC128 layout), 16-byte aligned
    const float* b_scales = nullptr;  // [ceil(N / 128), round_up(K / 128, 4)] fp32 row-major (BLK128x128): the
                                      // block_quantize layout when K / 128 is a multiple of 4 (else pad each row)
    bool tune_configs = false;    // a large product: its first run times the candidate configurations (see above)
    void* tune_scratch = nullptr;  // tune_configs with beta != 0: [M, ldc] of C's type, not C, that the timing runs
                                   // write (reading C, leaving it as it was); less aligned than C: the product is
                                   // not timed; unused otherwise
};

// Shape, pointer and stride checks (device contents are not read). 16-byte alignment of A, B, C and strides that
// are multiples of 8 elements let cuBLASLt use its fastest kernels; other layouts are still accepted.
Status validate(const GemmParams& p);

// One cuBLASLt algorithm for a shape, timed (GemmPlan::time_algorithms).
struct GemmAlgoTiming {
    int rank = 0;                // the heuristic's order; 0 is what run() launches unless it tunes the shape
    std::string config;          // cuBLASLt's algorithm id, tile, stages, split-K, swizzle and cluster ids
    size_t workspace_bytes = 0;
    double ms = 0;               // median; 0 when it did not run (error says why)
    std::string error;
};

inline constexpr size_t kGemmPlanWorkspaceBytes = size_t{32} << 20;  // a plan's default cuBLASLt workspace
// The decode products whose algorithm the first run times (see the top of this file): at most this many rows,
inline constexpr int64_t kGemmTuneMaxRows = 64;
// a weight larger than Hopper's 50 MB L2 (so that the timings stream it as the model does),
inline constexpr int64_t kGemmTuneMinWeightBytes = int64_t{64} << 20;
// among this many of cuBLASLt's ranked algorithms.
inline constexpr int kGemmTuneCandidates = 8;
// GemmParams::tune_configs applies from this many multiply-adds (M N K) on: the ViT's qkv product from 3 crops on.
inline constexpr int64_t kGemmConfigTuneMinMacs = int64_t{1} << 32;

class GemmPlan {
public:
    // A plan for the current device with `workspace_bytes` of cuBLASLt workspace (32 MiB suits Hopper).
    static Expected<std::unique_ptr<GemmPlan>> create(size_t workspace_bytes = kGemmPlanWorkspaceBytes);
    ~GemmPlan();
    GemmPlan(const GemmPlan&) = delete;
    GemmPlan& operator=(const GemmPlan&) = delete;

    // Asynchronous on `stream`; returns the launch status. Thread-safe (the shape cache is locked), but launches from
    // several threads on different streams share the workspace: give each stream its own plan.
    Status run(const GemmParams& p, cudaStream_t stream);
    size_t cached_shapes() const;  // distinct shapes planned so far
    size_t tuned_shapes() const;   // of which the algorithm was picked by timing (decode products, tune_configs)
    // The first `count` algorithms cuBLASLt's heuristic ranks for p's shape, each launched on p's buffers (C is
    // overwritten, or accumulated into when beta != 0) two times untimed, then `reps` times timed (median of CUDA
    // events; the cuBLASLt call only, without kGelu / kBiasGelu's erf pass): what the heuristic's first choice leaves
    // (volt_ops_bench --only gemm_algos). Waits for `stream`.
    Expected<std::vector<GemmAlgoTiming>> time_algorithms(const GemmParams& p, int count, int reps,
                                                          cudaStream_t stream);

    struct Impl;

private:
    explicit GemmPlan(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Through the calling thread's device's plan for `stream` (created on first use, kept until
// release_stream_plans(stream)).
Status run(const GemmParams& p, cudaStream_t stream);
// Drops the plans run() keeps for `stream` (with their workspaces): call before destroying a stream that GEMMs ran on,
// since a later stream may get the same handle, and each plan holds 32 MiB of GPU memory.
void release_stream_plans(cudaStream_t stream);

// out = SiLU(gate) * up, elementwise in fp32 on bf16 rows; gate/up may be the two halves of one [T, 2I] buffer
// (the w1 | w3 GEMM output). The CPU twin is cpu::swiglu (kernels/activation.h).
struct SwigluParams {
    int64_t rows = 0;             // T
    int64_t width = 0;            // I (a multiple of 8)
    const void* gate = nullptr;   // [T, I] bf16, row stride gate_stride
    int64_t gate_stride = 0;
    const void* up = nullptr;     // [T, I] bf16, row stride up_stride
    int64_t up_stride = 0;
    void* out = nullptr;          // [T, I] bf16, row stride out_stride; may alias gate or up
    int64_t out_stride = 0;
};
Status run(const SwigluParams& p, cudaStream_t stream);

// out = GELU(x + bias) (exact erf), in place allowed: the pass GemmEpilogue::kGelu uses, exposed for the MLP paths
// that keep an fp32-free bf16 stream. The CPU twin is cpu::gelu (kernels/gelu.h).
struct GeluParams {
    int64_t rows = 0;             // T
    int64_t width = 0;            // W (a multiple of 8)
    const void* x = nullptr;      // [T, W] bf16, row stride x_stride
    int64_t x_stride = 0;
    const void* bias = nullptr;   // optional [W] bf16
    void* out = nullptr;          // [T, W] bf16, row stride out_stride; may alias x
    int64_t out_stride = 0;
};
Status run(const GeluParams& p, cudaStream_t stream);

}  // namespace volt::cuda
