// Dense bf16 (and block-scaled FP8) GEMM through cuBLASLt (kernels/gemm_cuda.h), plus the SwiGLU and erf-GELU
// elementwise passes (kBiasGeluTanh is cuBLASLt's own GELU_BIAS epilogue, no pass).
//
// Row-major C[M, N] = A[M, K] op(B) is computed as the column-major product C^T[N, M] = op(B)^T-ish x A^T: cuBLASLt's
// "A" operand is the weight (stored column-major as [K, N] with ld = ldb when b_transposed, op = T — the "TN"
// layout cuBLASLt is fastest at), its "B" operand the activations ([K, M], ld = lda, op = N), and the output [N, M]
// with ld = ldc. The bias is then per row of the column-major output, i.e. per output feature, as cuBLASLt's BIAS
// epilogue wants. Heuristic results are cached per shape, strides, epilogue and pointer alignment (the heuristic
// excludes kernels that need more alignment than the pointers have; it assumes 256 bytes unless told).
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cuda/device_common.cuh"
#include "kernels/gemm_cuda.h"
#include "sdk/cuda_check.h"
#include "sdk/cuda_timing.h"
#include "sdk/env.h"
#include "sdk/log.h"

namespace volt::cuda {
namespace {

Status cublas_status(cublasStatus_t st, const char* expr, int line) {
    if (st == CUBLAS_STATUS_SUCCESS) return Status::ok();
    const StatusCode code = st == CUBLAS_STATUS_ALLOC_FAILED ? StatusCode::kResourceExhausted
                            : st == CUBLAS_STATUS_NOT_SUPPORTED ? StatusCode::kUnimplemented
                                                                 : StatusCode::kInternal;
    return Status(code, str_cat(cublasLtGetStatusName(st), " (", cublasLtGetStatusString(st), ") from ", expr,
                                " at kernels/cuda/gemm.cu:", line));
}
#define VOLT_CUBLAS_RETURN_IF_ERROR(expr) VOLT_RETURN_IF_ERROR(cublas_status((expr), #expr, __LINE__))

// Largest power of two (<= 256) dividing the address: what the heuristic may assume about a buffer.
uint32_t alignment_of(const void* p) {
    const auto a = reinterpret_cast<uintptr_t>(p);
    uint32_t al = 256;
    while (al > 1 && (a & (al - 1)) != 0) al >>= 1;
    return al;
}

cublasLtEpilogue_t lt_epilogue(GemmEpilogue e) {
    switch (e) {
        case GemmEpilogue::kBias:
        case GemmEpilogue::kBiasGelu: return CUBLASLT_EPILOGUE_BIAS;
        case GemmEpilogue::kBiasGeluTanh: return CUBLASLT_EPILOGUE_GELU_BIAS;
        default: return CUBLASLT_EPILOGUE_DEFAULT;
    }
}
bool has_bias(GemmEpilogue e) {
    return e == GemmEpilogue::kBias || e == GemmEpilogue::kBiasGelu || e == GemmEpilogue::kBiasGeluTanh;
}
// The erf GELU as a pass over C (the tanh form is cuBLASLt's own epilogue).
bool has_gelu(GemmEpilogue e) { return e == GemmEpilogue::kGelu || e == GemmEpilogue::kBiasGelu; }

// ---- elementwise passes ---------------------------------------------------------------------------------------------
constexpr int kEwThreads = 256;

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

// One thread per 16-byte vector (8 elements) of a [rows, width] matrix: blockIdx.y walks rows (grid-stride beyond
// 65535), x covers the row's vectors; no 64-bit division in the index math.
__global__ void swiglu_kernel(const __nv_bfloat16* __restrict__ gate, int64_t gs, const __nv_bfloat16* __restrict__ up,
                              int64_t us, __nv_bfloat16* out, int64_t os, int64_t rows, int vec_per_row) {
    const int v = blockIdx.x * blockDim.x + threadIdx.x;
    if (v >= vec_per_row) return;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        float g[8], u[8], y[8];
        unpack8(*reinterpret_cast<const uint4*>(gate + r * gs + v * 8), g);
        unpack8(*reinterpret_cast<const uint4*>(up + r * us + v * 8), u);
#pragma unroll
        for (int e = 0; e < 8; ++e) y[e] = swiglu_f(g[e], u[e]);
        *reinterpret_cast<uint4*>(out + r * os + v * 8) = pack8(y);
    }
}

// Two rows per thread and iteration (both loads in flight before the erf math): blockIdx.y walks row pairs.
__global__ void gelu_kernel(const __nv_bfloat16* x, int64_t xs, const __nv_bfloat16* __restrict__ bias,
                            __nv_bfloat16* out, int64_t os, int64_t rows, int vec_per_row) {
    const int v = blockIdx.x * blockDim.x + threadIdx.x;
    if (v >= vec_per_row) return;
    float b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (bias) unpack8(*reinterpret_cast<const uint4*>(bias + v * 8), b);
    for (int64_t r = 2 * int64_t{blockIdx.y}; r < rows; r += 2 * int64_t{gridDim.y}) {
        const bool two = r + 1 < rows;
        const uint4 u0 = *reinterpret_cast<const uint4*>(x + r * xs + v * 8);
        const uint4 u1 = two ? *reinterpret_cast<const uint4*>(x + (r + 1) * xs + v * 8) : u0;
        float v0[8], v1[8];
        unpack8(u0, v0);
        unpack8(u1, v1);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            v0[e] = gelu_erf(v0[e] + b[e]);
            v1[e] = gelu_erf(v1[e] + b[e]);
        }
        *reinterpret_cast<uint4*>(out + r * os + v * 8) = pack8(v0);
        if (two) *reinterpret_cast<uint4*>(out + (r + 1) * os + v * 8) = pack8(v1);
    }
}

dim3 ew_grid(int64_t rows, int64_t vec_per_row) {
    return dim3(static_cast<unsigned>((vec_per_row + kEwThreads - 1) / kEwThreads),
                static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
}
dim3 gelu_grid(int64_t rows, int64_t vec_per_row) { return ew_grid((rows + 1) / 2, vec_per_row); }

bool ew_layout_ok(const void* p, int64_t stride) { return aligned16(p) && stride % 8 == 0; }

}  // namespace

Status validate(const GemmParams& p) {
    if (p.m < 0 || p.n < 0 || p.k < 0) return invalid_argument("gemm (CUDA): negative size M=", p.m, " N=", p.n, " K=", p.k);
    if (p.m == 0 || p.n == 0) return Status::ok();
    if (p.k == 0) return invalid_argument("gemm (CUDA): K must be positive");
    if (!p.a || !p.b || !p.c) return invalid_argument("gemm (CUDA): A, B and C must be set");
    if (p.lda < p.k) return invalid_argument("gemm (CUDA): lda ", p.lda, " < K ", p.k);
    if (p.ldb < (p.b_transposed ? p.k : p.n)) return invalid_argument("gemm (CUDA): ldb ", p.ldb, " too small");
    if (p.ldc < p.n) return invalid_argument("gemm (CUDA): ldc ", p.ldc, " < N ", p.n);
    if (p.epilogue > GemmEpilogue::kBiasGeluTanh) return invalid_argument("gemm (CUDA): unknown epilogue");
    if (has_bias(p.epilogue) != (p.bias != nullptr))
        return invalid_argument("gemm (CUDA): bias must be set exactly for the bias epilogues");
    if (has_gelu(p.epilogue) && (p.n % 8 != 0 || !ew_layout_ok(p.c, p.ldc) || (p.bias && !aligned16(p.bias))))
        return invalid_argument("gemm (CUDA): the GELU epilogues need N and ldc multiples of 8 and 16-byte aligned C");
    if (p.inputs == GemmInputs::kFp8E4M3BlockScaled) {
        if (!p.b_transposed || p.k % 128 != 0 || p.m % 4 != 0 || p.lda % 16 != 0 || p.ldb % 16 != 0)
            return invalid_argument("gemm (CUDA): FP8 block-scaled inputs need a [N, K] weight B, K a multiple of 128 "
                                    "and M of 4, lda and ldb multiples of 16 (M=", p.m, " K=", p.k, " lda=", p.lda,
                                    " ldb=", p.ldb, ")");
        if (p.epilogue != GemmEpilogue::kNone || p.beta != 0.0f)
            return invalid_argument("gemm (CUDA): FP8 block-scaled inputs take no epilogue and beta 0");
        if (!p.a_scales || !p.b_scales || !aligned16(p.a_scales) || !aligned16(p.b_scales))
            return invalid_argument("gemm (CUDA): FP8 block-scaled inputs need 16-byte aligned a_scales and b_scales");
    } else if (p.inputs != GemmInputs::kBF16) {
        return invalid_argument("gemm (CUDA): unknown input type ", static_cast<int>(p.inputs));
    }
    if (p.c_fp32 && (p.inputs != GemmInputs::kBF16 || p.epilogue != GemmEpilogue::kNone))
        return invalid_argument("gemm (CUDA): an fp32 C takes bf16 inputs and no epilogue");
    if (p.tune_scratch && p.tune_scratch == p.c)
        return invalid_argument("gemm (CUDA): tune_scratch must be another buffer than C (the timing runs write it)");
    const int64_t limit = 0x7fffffff;
    if (p.m > limit || p.n > limit || p.k > limit)
        return invalid_argument("gemm (CUDA): a size exceeds 2^31-1 (M=", p.m, " N=", p.n, " K=", p.k, ")");
    return Status::ok();
}

namespace {

// The per-call pointers a cached descriptor carries: the bias and the FP8 block scales (cuBLASLt's heuristic already
// wants the scale pointers: without them it answers CUBLAS_STATUS_INVALID_VALUE).
Status set_pointers(const GemmParams& p, cublasLtMatmulDesc_t desc) {
    if (p.bias)
        VOLT_CUBLAS_RETURN_IF_ERROR(
            cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
    if (p.inputs == GemmInputs::kFp8E4M3BlockScaled) {
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                                   &p.b_scales, sizeof p.b_scales));
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                                   &p.a_scales, sizeof p.a_scales));
    }
    return Status::ok();
}


// Configurations of the heuristic's first algorithm that GemmParams::tune_configs times beside it: its sm_90 kernel
// (algo 66 in cuBLAS 13.0) with N tiles of 144-168 (its N is our M) and custom option 1 or 3. Found by timing every
// configuration cuBLASLt accepts for the ViT's four products (H100, session 42; bench/runs/s42_vit/call9_algo_search):
// at 10,963 rows (a 37-crop forward's half) qkv 0.0895-0.0908 ms vs the heuristic's 0.0963, fc1 + GELU 0.1213-0.1228
// vs 0.1391, outputs bitwise the heuristic's (split-K 1: each output summed over K in the same order). An entry the
// algorithm does not take (another cuBLAS, another GPU) fails cublasLtMatmulAlgoCheck and is passed over.
struct ConfigCandidate {
    uint32_t tile, custom;
    uint16_t cluster;
};
constexpr ConfigCandidate kConfigCandidates[] = {
    {CUBLASLT_MATMUL_TILE_128x160, 1, CUBLASLT_CLUSTER_SHAPE_2x1x1},
    {CUBLASLT_MATMUL_TILE_128x152, 1, CUBLASLT_CLUSTER_SHAPE_2x1x1},
    {CUBLASLT_MATMUL_TILE_128x168, 1, CUBLASLT_CLUSTER_SHAPE_2x1x1},
    {CUBLASLT_MATMUL_TILE_128x168, 3, CUBLASLT_CLUSTER_SHAPE_2x1x1},
    {CUBLASLT_MATMUL_TILE_128x144, 1, CUBLASLT_CLUSTER_SHAPE_2x1x1},
};

// cuBLASLt's configuration of an algorithm, for people: "algo 66 tile 18 stages 20 splitk 1 swizzle 0 cluster 2
// custom 0".
std::string algo_config(const cublasLtMatmulAlgo_t& algo) {
    int32_t id = 0, splitk = 0;
    uint32_t tile = 0, stages = 0, swizzle = 0, custom = 0;
    uint16_t cluster = 0;
    size_t got = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &got);
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &got);
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &got);
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &got);
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swizzle, sizeof swizzle, &got);
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof cluster, &got);
    cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &custom, sizeof custom, &got);
    return str_cat("algo ", id, " tile ", tile, " stages ", stages, " splitk ", splitk, " swizzle ", swizzle,
                   " cluster ", cluster, " custom ", custom);
}

}  // namespace

// ---- the plan -------------------------------------------------------------------------------------------------------
struct GemmPlan::Impl {
    using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, int, bool, uint32_t, uint32_t,
                           uint32_t, uint32_t, GemmInputs, bool, bool>;
    struct Entry {
        cublasLtMatmulDesc_t desc = nullptr;
        cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
        cublasLtMatmulAlgo_t algo{};
        bool tuned = false;  // algo picked by timing (a decode product, tune_configs), not the heuristic's first
        ~Entry() {
            if (la) cublasLtMatrixLayoutDestroy(la);
            if (lb) cublasLtMatrixLayoutDestroy(lb);
            if (lc) cublasLtMatrixLayoutDestroy(lc);
            if (desc) cublasLtMatmulDescDestroy(desc);
        }
    };
    cublasLtHandle_t handle = nullptr;
    std::shared_ptr<void> workspace;
    size_t workspace_bytes = 0;
    int device = 0;
    mutable std::mutex mu;
    std::map<Key, std::unique_ptr<Entry>> cache;

    ~Impl() {
        cache.clear();
        if (handle) cublasLtDestroy(handle);
    }

    // The matmul descriptor and the three layouts of `p`'s shape, strides and epilogue.
    Status describe(const GemmParams& p, Entry& e) {
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&e.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t ta = p.b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
        VOLT_CUBLAS_RETURN_IF_ERROR(
            cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
        VOLT_CUBLAS_RETURN_IF_ERROR(
            cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
        const cublasLtEpilogue_t epi = lt_epilogue(p.epilogue);
        VOLT_CUBLAS_RETURN_IF_ERROR(
            cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        if (epi == CUBLASLT_EPILOGUE_BIAS || epi == CUBLASLT_EPILOGUE_GELU_BIAS) {
            const cudaDataType_t bt = CUDA_R_16BF;
            VOLT_CUBLAS_RETURN_IF_ERROR(
                cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
        }
        const bool fp8 = p.inputs == GemmInputs::kFp8E4M3BlockScaled;
        if (fp8) {
            // cuBLASLt's "A" is our weight (128 x 128 blocks), its "B" our activations (1 x 128 blocks along K).
            const cublasLtMatmulMatrixScale_t wmode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F,
                                              xmode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
            VOLT_CUBLAS_RETURN_IF_ERROR(
                cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &wmode, sizeof wmode));
            VOLT_CUBLAS_RETURN_IF_ERROR(
                cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &xmode, sizeof xmode));
        }
        const cudaDataType_t in_type = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
        // Stored (pre-op) shapes of the column-major operands.
        const uint64_t a_rows = p.b_transposed ? p.k : p.n, a_cols = p.b_transposed ? p.n : p.k;
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&e.la, in_type, a_rows, a_cols, p.ldb));
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&e.lb, in_type, p.k, p.m, p.lda));
        VOLT_CUBLAS_RETURN_IF_ERROR(
            cublasLtMatrixLayoutCreate(&e.lc, p.c_fp32 ? CUDA_R_32F : CUDA_R_16BF, p.n, p.m, p.ldc));
        return Status::ok();
    }

    // One product with `algo` on `stream` (no GELU pass), into p.c or, for a timing run, into `d` (C still read from
    // p.c when beta != 0).
    Status launch(const GemmParams& p, const Entry& e, const cublasLtMatmulAlgo_t& algo, cudaStream_t stream,
                  void* d = nullptr) {
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle, e.desc, &p.alpha, p.b, e.la, p.a, e.lb, &p.beta, p.c, e.lc,
                                                   d ? d : p.c, e.lc, &algo, workspace.get(), workspace_bytes,
                                                   stream));
        return Status::ok();
    }

    // How the first run of p's shape picks its algorithm (gemm_cuda.h): the heuristic's first, the fastest of its
    // ranked algorithms (decode products), or the fastest of kConfigCandidates and it (tune_configs); never under
    // capture, and with beta != 0 only where the timing runs have a scratch output aligned at least as C (they would
    // add to C again).
    enum class Tuning { kNone, kRanked, kConfigs };
    static Expected<Tuning> tuning(const GemmParams& p, cudaStream_t stream) {
        static const bool enabled = env_choice("VOLT_GEMM_TUNE", {{"0", false}, {"1", true}}, true);
        // (A scratch less aligned than C could be denied C's algorithm: such a product is not timed.)
        const bool scratch_fits = p.tune_scratch && alignment_of(p.tune_scratch) >= alignment_of(p.c);
        if (!enabled || (p.beta != 0.0f && !scratch_fits)) return Tuning::kNone;
        const int64_t weight_bytes = p.n * p.k * (p.inputs == GemmInputs::kBF16 ? 2 : 1);
        Tuning t = Tuning::kNone;
        if (p.beta == 0.0f && p.m <= kGemmTuneMaxRows && weight_bytes >= kGemmTuneMinWeightBytes) t = Tuning::kRanked;
        else if (p.tune_configs && p.inputs == GemmInputs::kBF16 && p.m * p.n * p.k >= kGemmConfigTuneMinMacs)
            t = Tuning::kConfigs;
        if (t == Tuning::kNone) return t;
        cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
        VOLT_CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(stream, &capture));
        return capture == cudaStreamCaptureStatusNone ? t : Tuning::kNone;
    }

    // The fastest of `algos` on p's buffers, each launched once untimed and three times timed (median); one that fails
    // to launch is passed over. index -1: none ran; first: algos[0]'s time (0 when it did not run). Waits for stream.
    struct Fastest {
        int index = -1;
        double ms = 0, first = 0;
    };
    // (A pointer and a count: nvcc 13.0's front end fails an assertion on a std::vector of this C struct.)
    // The runs write `d` instead of C when given.
    Fastest fastest(const GemmParams& p, const Entry& e, const cublasLtMatmulAlgo_t* algos, int count,
                    cudaStream_t stream, void* d = nullptr) {
        Fastest f;
        for (int i = 0; i < count; ++i) {
            auto ms = cuda_event_ms(1, 3, [&] { return launch(p, e, algos[i], stream, d); }, stream);
            if (!ms.has_value()) {
                cudaGetLastError();  // a launch error of this algorithm only
                continue;
            }
            const double t = median_of(*ms);
            if (i == 0) f.first = t;
            if (f.index < 0 || t < f.ms) f.index = i, f.ms = t;
        }
        return f;
    }

    // algo = `first` in candidate configuration c; false when the algorithm does not take it within the workspace.
    bool configured(const Entry& e, const cublasLtMatmulAlgo_t& first, const ConfigCandidate& c,
                    cublasLtMatmulAlgo_t& algo) const {
        algo = first;
        const int32_t splitk = 1;
        const auto set = [&algo](cublasLtMatmulAlgoConfigAttributes_t attr, const void* v, size_t n) {
            return cublasLtMatmulAlgoConfigSetAttribute(&algo, attr, v, n) == CUBLAS_STATUS_SUCCESS;
        };
        cublasLtMatmulHeuristicResult_t check{};
        if (!set(CUBLASLT_ALGO_CONFIG_TILE_ID, &c.tile, sizeof c.tile) ||
            !set(CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION, &c.custom, sizeof c.custom) ||
            !set(CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &c.cluster, sizeof c.cluster) ||
            !set(CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk) ||
            cublasLtMatmulAlgoCheck(handle, e.desc, e.la, e.lb, e.lc, e.lc, &algo, &check) != CUBLAS_STATUS_SUCCESS ||
            check.workspaceSize > workspace_bytes)
            return false;
        return true;
    }

    // e.algo = the fastest of the heuristic's first choice (e.algo on entry) and kConfigCandidates applied to it (those
    // the algorithm takes); with beta != 0 the timing runs write p.tune_scratch. Waits for stream.
    Status tune_configs(const GemmParams& p, Entry& e, cudaStream_t stream) {
        cublasLtMatmulAlgo_t algos[1 + std::size(kConfigCandidates)];
        int n = 0;
        algos[n++] = e.algo;
        for (const ConfigCandidate& c : kConfigCandidates)
            if (configured(e, e.algo, c, algos[n])) ++n;
        const Fastest f = fastest(p, e, algos, n, stream, p.beta != 0.0f ? p.tune_scratch : nullptr);
        if (f.index > 0) e.algo = algos[f.index], e.tuned = true;
        VOLT_LOG(kDebug, kKernel, "gemm plan M=", p.m, " N=", p.n, " K=", p.k, ": ", f.ms, " ms (heuristic ", f.first,
                 " ms), ", algo_config(e.algo));
        return Status::ok();
    }

    // e.algo = the fastest of the heuristic's first kGemmTuneCandidates algorithms (~30 ms for the lm_head, ~3 ms for
    // a 100 MB projection). Waits for stream.
    Status tune(const GemmParams& p, Entry& e, cudaStream_t stream) {
        std::unique_ptr<cublasLtMatmulHeuristicResult_t[]> results(
            new cublasLtMatmulHeuristicResult_t[kGemmTuneCandidates]());
        VOLT_ASSIGN_OR_RETURN(const int found, heuristics(p, e, kGemmTuneCandidates, results.get()));
        if (found < 2) return Status::ok();  // nothing to choose (FP8 block-scaled products have one algorithm)
        cublasLtMatmulAlgo_t algos[kGemmTuneCandidates];
        for (int i = 0; i < found; ++i) algos[i] = results[size_t(i)].algo;
        const Fastest f = fastest(p, e, algos, found, stream);
        if (f.index >= 0) e.algo = algos[f.index], e.tuned = true;
        VOLT_LOG(kDebug, kKernel, "gemm plan M=", p.m, " N=", p.n, " K=", p.k, ": rank ", std::max(f.index, 0), " of ",
                 found, " (", f.ms, " ms; rank 0 ", f.first, " ms), ", algo_config(e.algo));
        return Status::ok();
    }

    // Up to `count` algorithms cuBLASLt's heuristic ranks for `e` (best first), within the plan's workspace and the
    // pointers' alignment; how many it found.
    Expected<int> heuristics(const GemmParams& p, Entry& e, int count, cublasLtMatmulHeuristicResult_t* results) {
        cublasLtMatmulPreference_t pref = nullptr;
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref));
        std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, decltype(&cublasLtMatmulPreferenceDestroy)>
            pref_guard(pref, cublasLtMatmulPreferenceDestroy);
        const uint64_t ws = workspace_bytes;
        VOLT_CUBLAS_RETURN_IF_ERROR(
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        const uint32_t al_a = alignment_of(p.b), al_b = alignment_of(p.a), al_c = alignment_of(p.c);
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof al_c));
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof al_c));
        int found = 0;
        VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulAlgoGetHeuristic(handle, e.desc, e.la, e.lb, e.lc, e.lc, pref,
                                                                   count, results, &found));
        return found;
    }

    Expected<Entry*> plan(const GemmParams& p, cudaStream_t stream) {
        const Key key{p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.b_transposed, static_cast<int>(lt_epilogue(p.epilogue)),
                      p.beta != 0.0f, alignment_of(p.a), alignment_of(p.b), alignment_of(p.c),
                      p.bias ? alignment_of(p.bias) : 256u, p.inputs, p.c_fp32, p.tune_configs};
        auto it = cache.find(key);
        if (it != cache.end()) return it->second.get();
        auto e = std::make_unique<Entry>();
        VOLT_RETURN_IF_ERROR(describe(p, *e));
        VOLT_RETURN_IF_ERROR(set_pointers(p, e->desc));
        cublasLtMatmulHeuristicResult_t result{};
        VOLT_ASSIGN_OR_RETURN(int found, heuristics(p, *e, 1, &result));
        if (found < 1)
            return unimplemented("gemm (CUDA): cuBLASLt has no algorithm for M=", p.m, " N=", p.n, " K=", p.k,
                                 " lda=", p.lda, " ldb=", p.ldb, " ldc=", p.ldc,
                                 p.inputs == GemmInputs::kFp8E4M3BlockScaled
                                     ? " with FP8 block-scaled inputs (Hopper, sm_90, only)"
                                     : "");
        e->algo = result.algo;
        VOLT_ASSIGN_OR_RETURN(const Tuning t, tuning(p, stream));
        if (t == Tuning::kRanked) VOLT_RETURN_IF_ERROR(tune(p, *e, stream));
        if (t == Tuning::kConfigs) VOLT_RETURN_IF_ERROR(tune_configs(p, *e, stream));
        Entry* raw = e.get();
        cache.emplace(key, std::move(e));
        return raw;
    }
};


GemmPlan::GemmPlan(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GemmPlan::~GemmPlan() = default;

Expected<std::unique_ptr<GemmPlan>> GemmPlan::create(size_t workspace_bytes) {
    auto impl = std::make_unique<Impl>();
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&impl->device));
    VOLT_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&impl->handle));
    if (workspace_bytes > 0) {
        void* ws = nullptr;
        VOLT_CUDA_RETURN_IF_ERROR(cudaMalloc(&ws, workspace_bytes));
        impl->workspace = std::shared_ptr<void>(ws, [](void* q) { cudaFree(q); });
    }
    impl->workspace_bytes = workspace_bytes;
    return std::unique_ptr<GemmPlan>(new GemmPlan(std::move(impl)));
}

size_t GemmPlan::cached_shapes() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->cache.size();
}

size_t GemmPlan::tuned_shapes() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return static_cast<size_t>(
        std::count_if(impl_->cache.begin(), impl_->cache.end(), [](const auto& kv) { return kv.second->tuned; }));
}

Expected<std::vector<GemmAlgoTiming>> GemmPlan::time_algorithms(const GemmParams& p, int count, int reps,
                                                                cudaStream_t stream) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.m == 0 || p.n == 0) return invalid_argument("gemm (CUDA): time_algorithms of an empty product");
    if (count < 1 || reps < 1) return invalid_argument("gemm (CUDA): time_algorithms count and reps must be >= 1");
    std::lock_guard<std::mutex> lock(impl_->mu);
    Impl::Entry e;
    VOLT_RETURN_IF_ERROR(impl_->describe(p, e));
    VOLT_RETURN_IF_ERROR(set_pointers(p, e.desc));
    // (a unique_ptr array: nvcc 13.0's front end fails an assertion on a std::vector of this C struct)
    std::unique_ptr<cublasLtMatmulHeuristicResult_t[]> results(new cublasLtMatmulHeuristicResult_t[size_t(count)]());
    VOLT_ASSIGN_OR_RETURN(const int found, impl_->heuristics(p, e, count, results.get()));
    std::vector<GemmAlgoTiming> out;
    for (int i = 0; i < found; ++i) {
        GemmAlgoTiming t;
        t.rank = i;
        t.config = algo_config(results[size_t(i)].algo);
        t.workspace_bytes = results[size_t(i)].workspaceSize;
        auto ms = cuda_event_ms(2, reps, [&] { return impl_->launch(p, e, results[size_t(i)].algo, stream); }, stream);
        if (ms.has_value()) t.ms = median_of(*ms);
        else t.error = ms.status().to_string();
        out.push_back(std::move(t));
    }
    return out;
}

Status GemmPlan::run(const GemmParams& p, cudaStream_t stream) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.m == 0 || p.n == 0) return Status::ok();
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        VOLT_ASSIGN_OR_RETURN(Impl::Entry * e, impl_->plan(p, stream));
        VOLT_RETURN_IF_ERROR(set_pointers(p, e->desc));
        VOLT_RETURN_IF_ERROR(impl_->launch(p, *e, e->algo, stream));
    }
    if (has_gelu(p.epilogue)) {
        // The bias is already in C (cuBLASLt epilogue); GELU in place.
        const int64_t vpr = p.n / 8;
        gelu_kernel<<<gelu_grid(p.m, vpr), kEwThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(p.c), p.ldc,
                                                                   nullptr, static_cast<__nv_bfloat16*>(p.c), p.ldc,
                                                                   p.m, static_cast<int>(vpr));
        VOLT_CUDA_CHECK_LAUNCH();
    }
    return Status::ok();
}

namespace {

// The free run()'s plans, one per (device, stream). Never destroyed: cuBLASLt handles must not be torn down after
// the CUDA context at process exit.
std::mutex g_plans_mu;
auto* g_plans = new std::map<std::pair<int, cudaStream_t>, std::unique_ptr<GemmPlan>>();

}  // namespace

void release_stream_plans(cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(g_plans_mu);
    std::erase_if(*g_plans, [stream](const auto& entry) { return entry.first.second == stream; });
}

Status run(const GemmParams& p, cudaStream_t stream) {
    int device = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    GemmPlan* plan = nullptr;
    {
        std::lock_guard<std::mutex> lock(g_plans_mu);
        auto& slot = (*g_plans)[{device, stream}];
        if (!slot) {
            VOLT_ASSIGN_OR_RETURN(slot, GemmPlan::create());
        }
        plan = slot.get();
    }
    return plan->run(p, stream);
}

Status run(const SwigluParams& p, cudaStream_t stream) {
    if (p.rows < 0 || p.width <= 0 || p.width % 8 != 0)
        return invalid_argument("swiglu (CUDA): rows (", p.rows, ") >= 0 and width (", p.width,
                                ") a positive multiple of 8");
    if (p.rows == 0) return Status::ok();
    if (!p.gate || !p.up || !p.out) return invalid_argument("swiglu (CUDA): gate, up and out must be set");
    if (!ew_layout_ok(p.gate, p.gate_stride) || !ew_layout_ok(p.up, p.up_stride) || !ew_layout_ok(p.out, p.out_stride) ||
        (p.rows > 1 && (p.gate_stride < p.width || p.up_stride < p.width || p.out_stride < p.width)))
        return invalid_argument("swiglu (CUDA): 16-byte aligned rows, strides >= width and multiples of 8");
    const int64_t vpr = p.width / 8;
    swiglu_kernel<<<ew_grid(p.rows, vpr), kEwThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(p.gate), p.gate_stride, static_cast<const __nv_bfloat16*>(p.up),
        p.up_stride, static_cast<__nv_bfloat16*>(p.out), p.out_stride, p.rows, static_cast<int>(vpr));
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

Status run(const GeluParams& p, cudaStream_t stream) {
    if (p.rows < 0 || p.width <= 0 || p.width % 8 != 0)
        return invalid_argument("gelu (CUDA): rows (", p.rows, ") >= 0 and width (", p.width,
                                ") a positive multiple of 8");
    if (p.rows == 0) return Status::ok();
    if (!p.x || !p.out) return invalid_argument("gelu (CUDA): x and out must be set");
    if (!ew_layout_ok(p.x, p.x_stride) || !ew_layout_ok(p.out, p.out_stride) || (p.bias && !aligned16(p.bias)) ||
        (p.rows > 1 && (p.x_stride < p.width || p.out_stride < p.width)))
        return invalid_argument("gelu (CUDA): 16-byte aligned rows, strides >= width and multiples of 8");
    const int64_t vpr = p.width / 8;
    gelu_kernel<<<gelu_grid(p.rows, vpr), kEwThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(p.x), p.x_stride, static_cast<const __nv_bfloat16*>(p.bias),
        static_cast<__nv_bfloat16*>(p.out), p.out_stride, p.rows, static_cast<int>(vpr));
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace volt::cuda
