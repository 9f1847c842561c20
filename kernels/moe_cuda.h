// Mixture of experts on the GPU (MiniMax block_sparse_moe, architecture §4). CUDA-only interface; the CPU twins are
// cpu::moe_route and cpu::moe_experts (kernels/moe.h), whose rules these follow:
//   router:  logits = x W_gate^T in fp32 (bf16 x widened, fp32 gate weight), p = softmax(logits) over all E experts,
//            the top k (most probable first, equal probabilities: lower expert index first), renormalised to sum 1.
//   experts: out[t] = sum over t's k experts, in top-k order, of weight * W2_e (SiLU(W1_e x_t) * (W3_e x_t)).
// bf16 activations and weights, fp32 accumulation; the SwiGLU intermediate is rounded to bf16 once.
//
// Expert paths (MoeExpertsParams::path):
//   kGrouped (decode, T <= kMoeDecodeMaxTokens): a stable counting sort of the T*k (token, slot) assignments by
//     expert, then two grouped GEMV-style kernels over (expert, row block) work items — w1 and w3 with the SwiGLU
//     fused, then w2 — in a persistent grid that skips experts no token chose, so each touched expert's weights are
//     read once per 16 tokens (on tensor cores); a combine kernel sums each token's slots in top-k order. No host
//     synchronisation. FP8 weights with MoeFp8Mode::kFp8Activations: x and the SwiGLU intermediate quantised to e4m3
//     first (one small pass each), the products on e4m3 tensor cores.
//   kGemm (prefill): the same sort, the tokens gathered in expert order, per-expert cuBLASLt GEMMs (w1 and w3 into
//     the two halves of one [rows, 2I] buffer — one GEMM of N = 2I when an expert's w3 directly follows its w1 in
//     memory (and, quantised, its scales after w1's), so allocate them as one [2I, H] block — the SwiGLU pass, w2),
//     the combine. Reads the per-expert counts back to the host (one stream synchronisation), so it is not CUDA-graph
//     capturable. VOLT_MOE_OWN_GEMM=up|both (sm_90): one grouped GEMM launch for w1/w3 with the SwiGLU in its
//     epilogue (and for w2) instead (kernels/cuda/moe_gemm_sm90.h). bf16 experts: off by default (`up` at parity
//     with cuBLASLt within the run-to-run spread, `both` ~8% slower); quantised experts weight-only: `both` by default
//     (the bytes widened inside the kernel: 1.2-1.3x faster than dequantising first at 8192 tokens, H100).
//
// Quantised expert weights (MoeExpertsParams::weight_type, issue 8): each expert matrix is stored as one byte per
// element (same shape and layout as the bf16 one) plus one fp32 scale per 128 x 128 block (DeepSeek-V3 style block
// scaling; BlockQuantizeParams makes them): kFp8E4M3, scale = block amax / 448, byte = e4m3(w / scale) rounded to
// nearest even, saturating at +-448; kInt8 (weight-only int8, the format vLLM serves MiniMax's experts in), scale =
// block amax / 127, byte = w / scale rounded to nearest even, clamped to +-127: ~16x finer steps than e4m3's 3-bit
// mantissa at the same size. weight = byte's value * its block's scale. kGrouped reads the bytes and widens them to
// bf16 in registers (exactly), the block scale applied to each 64-column step's fp32 products (or, for FP8 weights with
// FP8 activations, multiplies the bytes as they are, MoeFp8Mode); kGemm (MoeFp8Mode::kDequantize: activations,
// accumulation and outputs as with bf16 weights) widens the bytes times their scales inside the own grouped GEMM on
// Hopper where the shapes fit it (each value rounded once: to f16 for w1/w3, whose products run in f16 on the tokens
// as scaled f16 rows, exactly; to bf16 for w2, as dequantising rounds it), else dequantises each
// touched expert to bf16 into the workspace (w1 and w3 as one [2I, H] block) and runs the same cuBLASLt GEMMs; or, for
// FP8 weights on Hopper, runs FP8 tensor-core GEMMs on activations quantised too (kFp8Activations, see there).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

inline constexpr int kMoeMaxExperts = 32;        // router: E <= 32 (one warp lane per expert); experts: E <= 256
inline constexpr int64_t kMoeDecodeMaxTokens = 64;

struct MoeRouterParams {
    int64_t num_tokens = 0;            // T
    int64_t hidden = 0;                // H: a multiple of 8
    int num_experts = 0;               // E <= kMoeMaxExperts
    int top_k = 0;                     // k <= E
    bool renormalize = true;           // MiniMax: true
    const void* x = nullptr;           // [T, H] bf16, row stride x_stride (multiple of 8, 16-byte aligned rows)
    int64_t x_stride = 0;
    const float* gate_weight = nullptr;  // [E, H] fp32 contiguous (the router's Linear weight, kept in fp32)
    float* logits = nullptr;           // optional out [T, E] fp32
    int32_t* expert_ids = nullptr;     // [T, k] out
    float* weights = nullptr;          // [T, k] out
};
Status run(const MoeRouterParams& p, cudaStream_t stream);

enum class MoePath : uint8_t { kAuto, kGrouped, kGemm };
enum class MoeWeightType : uint8_t { kBF16, kFp8E4M3, kInt8 };
const char* moe_weight_type_name(MoeWeightType t);  // "bf16", "fp8_e4m3", "int8"

inline constexpr int64_t kQuantBlockSize = 128;  // quantised weights: one fp32 scale per 128 x 128 block
inline constexpr float kFp8E4M3Max = 448.0f;
inline constexpr float kInt8Max = 127.0f;
// Scales of a [rows, cols] matrix: [ceil(rows / 128), ceil(cols / 128)] row-major.
inline int64_t block_scale_count(int64_t rows, int64_t cols) {
    return ((rows + kQuantBlockSize - 1) / kQuantBlockSize) * ((cols + kQuantBlockSize - 1) / kQuantBlockSize);
}

// bf16 [rows, cols] -> bytes [rows, cols] + fp32 block scales. Per 128 x 128 block (partial at the edges):
// kFp8E4M3: scale = amax / 448 (1 for an all-zero block), byte = e4m3(w / scale) rounded to nearest even,
// saturating at +-448 (NaN stays NaN: 0x7f / 0xff); kInt8: scale = amax / 127, byte = int8(w / scale) rounded to
// nearest even, clamped to +-127 (NaN -> 0). given_scales: the scales are inputs (e.g. a checkpoint's own) and only
// the bytes are written. CPU twins: cpu::fp8_block_quantize, cpu::int8_block_quantize (kernels/moe.h), bit-exact.
struct BlockQuantizeParams {
    MoeWeightType type = MoeWeightType::kFp8E4M3;  // kFp8E4M3 or kInt8
    int64_t rows = 0, cols = 0;  // cols a multiple of 8
    const void* in = nullptr;    // [rows, cols] bf16 contiguous, 16-byte aligned
    void* out = nullptr;         // [rows, cols] bytes, 16-byte aligned
    float* scales = nullptr;     // [block_scale_count(rows, cols)] fp32
    bool given_scales = false;
};
Status run(const BlockQuantizeParams& p, cudaStream_t stream);

// How a path multiplies FP8 expert weights: MoeExpertsParams::fp8_prefill (the GEMM path), fp8_decode (the grouped
// path).
enum class MoeFp8Mode : uint8_t {
    kAuto,            // GEMM path: kFp8Activations where it applies (sm_90, H and I multiples of 128), else
                      // kDequantize; grouped path: kDequantize (FP8 activations gain at most 7% there, at T = 64, for
                      // a third more error). VOLT_MOE_FP8_PREFILL / VOLT_MOE_FP8_DECODE = dequantize | fp8_activations
                      // override kAuto (fp8_activations still only where it applies).
    kDequantize,      // weight-only: the weights widened to bf16 (GEMM path: inside the own grouped GEMM on sm_90,
                      // w1/w3 to f16 there; else each touched expert in the workspace; grouped path: in registers),
                      // bf16 activations
    kFp8Activations,  // the activations quantised too, e4m3 with one fp32 scale per (row, 128 columns) block (scale =
                      // block amax / 448, as the weights'): x, and the SwiGLU intermediate after its bf16 rounding.
                      // GEMM path: cuBLASLt's block-scaled FP8 GEMMs (~2x the bf16 rate); grouped path: mma.sync e4m3
                      // on the bytes as stored (no widening); both apply the two scales per 64- or 128-deep step in
                      // fp32. The CPU twin: cpu::moe_experts with fp8_activations.
};
const char* moe_fp8_mode_name(MoeFp8Mode m);  // "auto", "dequantize", "fp8_activations"

// How the grouped (decode) path multiplies quantised weights, weight-only (kBF16 experts and FP8 activations ignore
// it). kF16 widens the weights to f16 (one cvt per e4m3 pair; int8 a byte permute and one f16x2 subtraction, against
// ~5 instructions per pair to bf16) and multiplies them with x and h as f16 rows scaled by a power of two each (two
// small conversion launches; the scale is undone per token in the epilogue, so bf16's range is kept). H100, FP8:
// 4-5% faster at 64 tokens, 2-3% at 4 to 16, 1.6% at 2, 2-3% slower at 1 (the launches; int8: -3% at 64, even at 2);
// the output equals the bf16 widening's to ~1e-3 (bench/RESULTS.md "f16 products").
enum class MoeDecodeProducts : uint8_t {
    kAuto,  // kF16 from kMoeDecodeF16MinTokens tokens, else kBf16; VOLT_MOE_DECODE_F16 = auto | 0 | 1 overrides kAuto
    kBf16,  // the weights widened to bf16, bf16 inputs
    kF16,   // the weights widened to f16, inputs as scaled f16 rows
};
inline constexpr int64_t kMoeDecodeF16MinTokens = 2;

// Which kernel the grouped (decode) path multiplies quantised weights with, weight-only (kBF16 experts and FP8
// activations always take kRegisters). kTma: TMA streams the weights through shared-memory rings that one thread per
// CTA keeps full, as f16 products (kernels/cuda/moe_gemv_tma.cu): H200, FP8, MiniMax sizes, the experts 11% faster at
// 1 token and 8-10% at 64 than kRegisters' fastest form (H100: 9% / 4%), an 8-layer FP8 decode step 10% faster
// (bench/RESULTS.md, session 45).
enum class MoeDecodeKernel : uint8_t {
    kAuto,       // kTma where it fits (moe_decode_uses_tma), else kRegisters; VOLT_MOE_DECODE_TMA = 0 turns it off
    kRegisters,  // each warp loads its weight rows into its registers, a batch at a time (gemv_mma_kernel)
    kTma,        // where it fits: an sm_90 GPU with TMA tensor maps, at most kMoeDecodeTmaMaxExperts experts, H and I
                 // multiples of 64 (else kRegisters). The products are f16 whatever decode_products says.
};
inline constexpr int kMoeDecodeTmaMaxExperts = 64;  // kTma: every expert's weights get a tensor map in the launch

struct MoeExpertsParams {
    int64_t num_tokens = 0;               // T
    int64_t hidden = 0;                   // H: a multiple of 8
    int64_t intermediate = 0;             // I (per expert): a multiple of 8
    int num_experts = 0;                  // E <= 256
    int top_k = 0;                        // k slots per token (k may exceed E when the slots of experts held
                                          // elsewhere carry ids outside [0, E): expert parallelism)
    const void* x = nullptr;              // [T, H] bf16, row stride x_stride
    int64_t x_stride = 0;
    const int32_t* expert_ids = nullptr;  // [T, k] device (ids outside [0, E) are skipped: their slot adds nothing)
    const float* weights = nullptr;       // [T, k] device
    // Host arrays of E device pointers (copied by value into the launch; the arrays may be freed after run()).
    const void* const* w1 = nullptr;      // [E] each [I, H] bf16 contiguous (gate projection)
    const void* const* w3 = nullptr;      // [E] each [I, H] bf16 contiguous (up projection)
    const void* const* w2 = nullptr;      // [E] each [H, I] bf16 contiguous (down projection)
    void* out = nullptr;                  // [T, H] bf16, row stride out_stride; overwritten
    int64_t out_stride = 0;
    MoePath path = MoePath::kAuto;        // kAuto: kGrouped for T <= kMoeDecodeMaxTokens, else kGemm
    void* workspace = nullptr;            // device scratch of moe_workspace_bytes(p) bytes
    size_t workspace_bytes = 0;
    // Quantised experts (kFp8E4M3, kInt8): w1/w3/w2 then point to bytes of the same shapes, and s1/s3/s2 are host
    // arrays of E device pointers to their fp32 block scales ([ceil(I/128), ceil(H/128)], the same, [ceil(H/128),
    // ceil(I/128)]).
    MoeWeightType weight_type = MoeWeightType::kBF16;
    const float* const* s1 = nullptr;
    const float* const* s3 = nullptr;
    const float* const* s2 = nullptr;
    MoeFp8Mode fp8_prefill = MoeFp8Mode::kAuto;  // FP8 weights on the GEMM path (int8: kAuto / kDequantize)
    MoeFp8Mode fp8_decode = MoeFp8Mode::kAuto;   // FP8 weights on the grouped path (int8: kAuto / kDequantize)
    // Grouped path, quantised weights, weight-only: the products in bf16 or f16 (MoeDecodeProducts).
    MoeDecodeProducts decode_products = MoeDecodeProducts::kAuto;
    // Grouped path, quantised weights, weight-only: the kernel (MoeDecodeKernel; kTma implies f16 products).
    MoeDecodeKernel decode_kernel = MoeDecodeKernel::kAuto;
    // Grouped path, at most 8 token slots (T k <= 8: a batch of one to four tokens), bf16 or widened weights: the gated
    // product's work items (expert, 16 rows) cut along K into parts on several warps where its last round of items
    // would leave many warps idle (T = 2 at MiniMax sizes: 2 parts, 7% faster for FP8 experts, 12% for bf16 on an
    // H100; not at T = 1, where it measured no faster), the parts' sums added in a fixed order (a workspace up to
    // ~6 MB larger). false, or VOLT_MOE_DECODE_SPLIT=0: one warp per item.
    bool decode_split = true;
    // GEMM path: the per-expert GEMMs spread round-robin over this many streams (forked from and joined back into the
    // run's stream; the tail of one expert's last wave of tiles runs the next's), 1-4; 0: VOLT_MOE_GEMM_STREAMS, else
    // 4 for FP8 GEMMs, 1 for bf16 ones and 2 for the dequantising path (int8; FP8 without FP8 activations), whose
    // streams each dequantise into a bf16 expert copy of their own in the workspace (measured, kernels/cuda/moe.cu).
    int gemm_streams = 0;
};

Status validate(const MoeExpertsParams& p);
size_t moe_workspace_bytes(const MoeExpertsParams& p);
// The parts the grouped path cuts each item of the gated product into for this call on the current device
// (MoeExpertsParams::decode_split; 1: one warp per item), e.g. for benchmarks and tests to report.
Expected<int> moe_decode_split_parts(const MoeExpertsParams& p);
// Whether this call's grouped GEMVs run the TMA kernel (MoeExpertsParams::decode_kernel) on the current device.
bool moe_decode_uses_tma(const MoeExpertsParams& p);
// Device memory the GEMM path keeps beyond its workspace with experts of `type` at the default stream count: the
// cuBLASLt workspaces of the side streams its experts spread over (created at the first call on a device and kept,
// as the streams are), for load-time fit checks.
size_t moe_side_stream_bytes(MoeWeightType type);
Status run(const MoeExpertsParams& p, cudaStream_t stream);

}  // namespace volt::cuda
