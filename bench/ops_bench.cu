// Benchmark of the issue-7 CUDA ops on the GPU machine (run by scripts/device-test.sh next to the torch anchors of
// tools/ops_torch_anchor.py, joined by tools/ops_report.py): dense GEMMs (cuBLASLt) at MiniMax shapes, the MoE
// (router, grouped decode path, per-expert GEMM prefill path), softmax attention (causal GQA prefill: own kernel and
// cuDNN SDPA; split-KV decode), and the small fused kernels, with the copy ceiling measured in the same process.
// One JSON object per line, e.g. {"op": "gemm", "name": "square", "m": 8192, ..., "ms": ..., "tflops": ...}.
// Inputs are random (hashed normals), never zeros; times are CUDA-event medians after warm-up.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "bench/bench_common.cuh"
#include "kernels/attention_cuda.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/embedding_cuda.h"
#include "kernels/gemm_cuda.h"
#include "kernels/moe_cuda.h"
#include "kernels/norm_cuda.h"
#include "kernels/rope_cuda.h"
#include "kernels/sampling_cuda.h"
#include "sdk/dtype.h"
#include "vision/cuda/vit_kernels.h"

namespace {

using namespace volt::bench;
namespace vc = volt::cuda;
constexpr int kD = 128;

char g_line[1024];
template <typename... A>
void emitf(const char* fmt, A... a) {
    std::snprintf(g_line, sizeof g_line, fmt, a...);
    emit(g_line);
}

template <typename T>
T* dalloc(size_t n) {
    void* p = nullptr;
    CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    return static_cast<T*>(p);
}
__nv_bfloat16* rand_bf16(size_t n, uint64_t seed, float scale = 1.0f) {
    auto* p = dalloc<__nv_bfloat16>(n);
    fill_normal<<<4096, 256>>>(p, n, seed, scale);
    CHECK(cudaGetLastError());
    return p;
}

// The anchors' timing (triton's do_bench): before every timed call a 256 MiB memset flushes L2 and keeps the GPU busy,
// so the host-side launch cost of the call is hidden behind it; median of `reps` CUDA-event times. median_ms (every
// call starts on an idle GPU, inputs still in L2 from the previous call) is kept beside it for the earlier runs.
void* g_flush = nullptr;
constexpr size_t kFlushBytes = size_t{256} << 20;
template <typename F>
double flush_ms(F&& fn, int warmup, int reps) {
    if (!g_flush) CHECK(cudaMalloc(&g_flush, kFlushBytes));
    return median_ms(fn, warmup, reps, [](int i) { CHECK(cudaMemsetAsync(g_flush, i & 0xff, kFlushBytes)); });
}

// ---- GEMM ---------------------------------------------------------------------------------------------------------
// GEMM + bias + GELU at the CLIP fc1 shape, taken apart (same process): the op, the GEMM with cuBLASLt's bias
// epilogue, the GEMM alone, and the GELU pass (with the bias) alone.
void bench_gelu_parts() {
    const int64_t m = 4616, n = 4096, k = 1024;
    __nv_bfloat16* a = rand_bf16(m * k, 1);
    __nv_bfloat16* b = rand_bf16(n * k, 2, 1.0f / std::sqrt(float(k)));
    __nv_bfloat16* bias = rand_bf16(n, 3);
    auto* c = dalloc<__nv_bfloat16>(m * n);
    auto emit_one = [&](const char* variant, auto&& fn) {
        const double ms = median_ms(fn, 5, 50), fms = flush_ms(fn, 5, 100);
        emitf("{\"op\": \"gemm_part\", \"name\": \"vit_fc1\", \"variant\": \"%s\", \"m\": %lld, \"n\": %lld, "
              "\"k\": %lld, \"ms\": %.4f, \"ms_flush\": %.4f}",
              variant, (long long)m, (long long)n, (long long)k, ms, fms);
    };
    vc::GemmParams p;
    p.m = m, p.n = n, p.k = k, p.a = a, p.lda = k, p.b = b, p.ldb = k, p.c = c, p.ldc = n;
    for (auto [variant, epi] : {std::pair{"bias_gelu", vc::GemmEpilogue::kBiasGelu},
                                std::pair{"bias", vc::GemmEpilogue::kBias},
                                std::pair{"plain", vc::GemmEpilogue::kNone}}) {
        p.epilogue = epi;
        p.bias = epi == vc::GemmEpilogue::kNone ? nullptr : bias;
        emit_one(variant, [&](int) { CHECK_STATUS(vc::run(p, nullptr)); });
    }
    vc::GeluParams g;
    g.rows = m, g.width = n, g.x = c, g.x_stride = n, g.bias = bias, g.out = c, g.out_stride = n;
    emit_one("gelu_pass_with_bias", [&](int) { CHECK_STATUS(vc::run(g, nullptr)); });
    dfree(a, b, bias, c);
}

// Every algorithm among cuBLASLt's first 24 for each of `shapes` (GemmPlan::time_algorithms), against rank 0, the one
// run() launches: the ViT's four GEMMs at 37 crops (21,349 rows; vision/cuda: qkv + bias, out + bias into the residual,
// fc1 + bias + tanh-GELU epilogue, fc2 + bias into the residual), or the backbone's decode products at batch 1 and 64
// (text/cuda: the lightning layers' fused qkv, output gate and out projection, the softmax layer's k / v, the
// lm_head), which stream their weights once.
struct AlgoShape {
    const char* name;
    int64_t m, n, k;
    vc::GemmEpilogue epi;
    float beta;
};
void bench_gemm_algos(const char* op, std::initializer_list<AlgoShape> shapes) {
    auto plan = vc::GemmPlan::create();
    CHECK_STATUS(plan.status());
    for (const AlgoShape& s : shapes) {
        __nv_bfloat16* a = rand_bf16(s.m * s.k, 1);
        __nv_bfloat16* b = rand_bf16(s.n * s.k, 2, 1.0f / std::sqrt(float(s.k)));
        __nv_bfloat16* bias = rand_bf16(s.n, 3);
        __nv_bfloat16* c = rand_bf16(s.m * s.n, 4);
        vc::GemmParams p;
        p.m = s.m, p.n = s.n, p.k = s.k, p.a = a, p.lda = s.k, p.b = b, p.ldb = s.k, p.c = c, p.ldc = s.n;
        p.epilogue = s.epi, p.bias = s.epi == vc::GemmEpilogue::kNone ? nullptr : bias, p.beta = s.beta;
        auto timings = (*plan)->time_algorithms(p, 24, 10, nullptr);
        CHECK_STATUS(timings.status());
        const double flops = 2.0 * s.m * s.n * s.k, bytes = 2.0 * (s.m * s.k + s.n * s.k + s.m * s.n);
        for (const vc::GemmAlgoTiming& t : *timings)
            emitf("{\"op\": \"%s\", \"name\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, "
                  "\"rank\": %d, \"config\": \"%s\", \"workspace\": %zu, \"ms\": %.4f, \"tflops\": %.1f, "
                  "\"tbps\": %.3f, \"error\": %s}",
                  op, s.name, (long long)s.m, (long long)s.n, (long long)s.k, t.rank, t.config.c_str(),
                  t.workspace_bytes, t.ms, t.ms > 0 ? flops / t.ms / 1e9 : 0.0, t.ms > 0 ? bytes / t.ms / 1e9 : 0.0,
                  t.error.empty() ? "null" : "\"failed\"");
        dfree(a, b, bias, c);
    }
}

void bench_vit_gemm_algos() {
    const int64_t m = 37 * 577;
    using E = vc::GemmEpilogue;
    bench_gemm_algos("gemm_algos", {{"vit_qkv", m, 3072, 1024, E::kBias, 0.0f},
                                    {"vit_out_residual", m, 1024, 1024, E::kBias, 1.0f},
                                    {"vit_fc1_gelu_tanh", m, 4096, 1024, E::kBiasGeluTanh, 0.0f},
                                    {"vit_fc2_residual", m, 1024, 4096, E::kBias, 1.0f}});
}

void bench_decode_gemm_algos() {
    using E = vc::GemmEpilogue;
    for (const int64_t m : {int64_t{1}, int64_t{64}})
        bench_gemm_algos("decode_gemm_algos", {{"qkv", m, 24576, 6144, E::kNone, 0.0f},
                                               {"gate", m, 8192, 6144, E::kNone, 0.0f},
                                               {"out", m, 6144, 8192, E::kNone, 0.0f},
                                               {"kv", m, 1024, 6144, E::kNone, 0.0f},
                                               {"lm_head", m, 200064, 6144, E::kNone, 0.0f}});
}

void bench_gemm(bool quick) {
    struct Shape {
        const char* name;
        int64_t m, n, k;
        vc::GemmEpilogue epi;
    };
    std::vector<Shape> shapes = {
        {"square_8192", 8192, 8192, 8192, vc::GemmEpilogue::kNone},
        {"qkv_prefill", 4096, 24576, 6144, vc::GemmEpilogue::kNone},
        {"out_prefill", 4096, 6144, 8192, vc::GemmEpilogue::kNone},
        {"vit_fc1_bias_gelu", 4616, 4096, 1024, vc::GemmEpilogue::kBiasGelu},
        {"qkv_decode", 1, 24576, 6144, vc::GemmEpilogue::kNone},
        {"out_decode_b8", 8, 6144, 8192, vc::GemmEpilogue::kNone},
        {"lm_head_decode", 1, 200064, 6144, vc::GemmEpilogue::kNone},
    };
    if (quick) shapes.erase(shapes.begin() + 2, shapes.begin() + 4);
    for (const Shape& s : shapes) {
        __nv_bfloat16* a = rand_bf16(s.m * s.k, 1);
        __nv_bfloat16* b = rand_bf16(s.n * s.k, 2, 1.0f / std::sqrt(float(s.k)));
        __nv_bfloat16* bias = rand_bf16(s.n, 3);
        auto* c = dalloc<__nv_bfloat16>(s.m * s.n);
        vc::GemmParams p;
        p.m = s.m, p.n = s.n, p.k = s.k, p.a = a, p.lda = s.k, p.b = b, p.ldb = s.k, p.c = c, p.ldc = s.n;
        p.epilogue = s.epi;
        p.bias = s.epi == vc::GemmEpilogue::kNone ? nullptr : bias;
        auto fn = [&](int) { CHECK_STATUS(vc::run(p, nullptr)); };
        const double ms = median_ms(fn, 5, s.m == 8192 ? 20 : 50);
        const double fms = flush_ms(fn, 5, s.m == 8192 ? 40 : 100);
        const double flops = 2.0 * s.m * s.n * s.k;
        const double bytes = 2.0 * (s.m * s.k + s.n * s.k + s.m * s.n);
        emitf("{\"op\": \"gemm\", \"name\": \"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, \"ms\": %.4f, "
              "\"ms_flush\": %.4f, \"tflops\": %.1f, \"tbps\": %.3f}",
              s.name, (long long)s.m, (long long)s.n, (long long)s.k, ms, fms, flops / ms / 1e9, bytes / ms / 1e9);
        dfree(a, b, bias, c);
    }
    // The FP8 ceiling the MoE's FP8 prefill GEMMs read against: the square product on block-scaled e4m3 inputs
    // (cuBLASLt, Hopper only: elsewhere the row says why it is missing).
    const int64_t n = 8192;
    __nv_bfloat16* a = rand_bf16(n * n, 1);
    __nv_bfloat16* b = rand_bf16(n * n, 2, 1.0f / std::sqrt(float(n)));
    auto *qa = dalloc<uint8_t>(n * n), *qb = dalloc<uint8_t>(n * n);
    auto *sa_blocks = dalloc<float>(vc::block_scale_count(n, n)), *sb = dalloc<float>(vc::block_scale_count(n, n));
    auto* sa = dalloc<float>(n / 128 * n);
    auto* c = dalloc<__nv_bfloat16>(n * n);
    for (auto [in, q, sc] : {std::tuple{a, qa, sa_blocks}, std::tuple{b, qb, sb}})
        CHECK_STATUS(vc::run(vc::BlockQuantizeParams{.rows = n, .cols = n, .in = in, .out = q, .scales = sc}, nullptr));
    std::vector<float> row_scales(n / 128 * n);
    for (size_t i = 0; i < row_scales.size(); ++i) row_scales[i] = (1.0f + float(i % 7) / 8) / 448.0f;
    CHECK(cudaMemcpy(sa, row_scales.data(), row_scales.size() * 4, cudaMemcpyHostToDevice));
    vc::GemmParams p;
    p.m = p.n = p.k = n, p.a = qa, p.lda = n, p.b = qb, p.ldb = n, p.c = c, p.ldc = n;
    p.inputs = vc::GemmInputs::kFp8E4M3BlockScaled, p.a_scales = sa, p.b_scales = sb;
    const volt::Status st = vc::run(p, nullptr);
    if (st.is_ok()) {
        auto fn = [&](int) { CHECK_STATUS(vc::run(p, nullptr)); };
        const double ms = median_ms(fn, 5, 20);
        emitf("{\"op\": \"gemm\", \"name\": \"square_8192_fp8_block\", \"m\": %lld, \"n\": %lld, \"k\": %lld, "
              "\"ms\": %.4f, \"tflops\": %.1f}",
              (long long)n, (long long)n, (long long)n, ms, 2.0 * n * n * n / ms / 1e9);
    } else {
        std::fprintf(stderr, "square_8192_fp8_block: %s\n", st.to_string().c_str());
        emitf("{\"op\": \"gemm\", \"name\": \"square_8192_fp8_block\", \"error\": \"unavailable (sm_90 only)\"}");
    }
    dfree(a, b, qa, qb, sa_blocks, sb, sa, c);
}

// ---- MoE ----------------------------------------------------------------------------------------------------------
// MiniMax's MoE layer: 32 experts 6144 -> 9216, top-2, random bf16 weights ([w1 | w3 | w2] per expert, 10.9 GB) and an
// fp32 router.
struct MoeWeights {
    static constexpr int E = 32, k = 2;
    static constexpr int64_t H = 6144, I = 9216;
    static constexpr size_t per = static_cast<size_t>(I * H);
    __nv_bfloat16* w = nullptr;
    float* gate = nullptr;
    std::vector<const void*> w1, w3, w2;
    MoeWeights() : w1(E), w3(E), w2(E) {
        w = rand_bf16(3 * E * per, 11, 0.02f);
        for (int e = 0; e < E; ++e) {
            w1[e] = w + (3 * e) * per;
            w3[e] = w + (3 * e + 1) * per;
            w2[e] = w + (3 * e + 2) * per;
        }
        gate = dalloc<float>(E * H);
        fill_normal_f32<<<1024, 256>>>(gate, E * H, 12, 1.0f / std::sqrt(float(H)));
        CHECK(cudaGetLastError());
    }
    ~MoeWeights() { dfree(w, gate); }
};

// T random tokens routed by the weights' router (run once here), and the experts call over them (no workspace yet).
struct MoeTokens {
    __nv_bfloat16 *x = nullptr, *out = nullptr;
    int32_t* ids = nullptr;
    float *wts = nullptr, *logits = nullptr;
    vc::MoeRouterParams router;
    vc::MoeExpertsParams experts;
    MoeTokens(const MoeWeights& m, int64_t T, uint64_t seed) {
        const int64_t H = MoeWeights::H;
        x = rand_bf16(T * H, seed);
        out = dalloc<__nv_bfloat16>(T * H);
        ids = dalloc<int32_t>(T * MoeWeights::k);
        wts = dalloc<float>(T * MoeWeights::k);
        logits = dalloc<float>(T * MoeWeights::E);
        vc::MoeRouterParams& r = router;
        r.num_tokens = T, r.hidden = H, r.num_experts = MoeWeights::E, r.top_k = MoeWeights::k, r.x = x, r.x_stride = H;
        r.gate_weight = m.gate, r.logits = logits, r.expert_ids = ids, r.weights = wts;
        CHECK_STATUS(vc::run(r, nullptr));
        vc::MoeExpertsParams& p = experts;
        p.num_tokens = T, p.hidden = H, p.intermediate = MoeWeights::I, p.num_experts = MoeWeights::E;
        p.top_k = MoeWeights::k, p.x = x, p.x_stride = H, p.expert_ids = ids, p.weights = wts;
        p.w1 = m.w1.data(), p.w3 = m.w3.data(), p.w2 = m.w2.data(), p.out = out, p.out_stride = H;
    }
    ~MoeTokens() { dfree(x, out, ids, wts, logits); }
};

// moe_tokens: the batch sizes to run (empty: 1, 8, 64, 8192; quick: 1, 64, 8192).
void bench_moe(bool quick, const std::vector<int64_t>& moe_tokens) {
    constexpr int E = MoeWeights::E, k = MoeWeights::k;
    constexpr int64_t H = MoeWeights::H, I = MoeWeights::I;
    constexpr size_t per = MoeWeights::per;
    const MoeWeights weights;
    __nv_bfloat16* w = weights.w;
    // The same experts quantised (1 byte per weight + 128 x 128 block scales, quantised here): FP8 e4m3 and int8,
    // 5.4 GB each.
    const int64_t sc = vc::block_scale_count(I, H);  // = block_scale_count(H, I) at these sizes (both multiples of 128)
    struct Quantised {
        vc::MoeWeightType type;
        uint8_t* bytes;
        float* scales;
        std::vector<const void*> q1, q3, q2;
        std::vector<const float*> s1, s3, s2;
    };
    std::vector<Quantised> quantised;
    for (const auto type : {vc::MoeWeightType::kFp8E4M3, vc::MoeWeightType::kInt8}) {
        Quantised qd{type, dalloc<uint8_t>(3 * E * per), dalloc<float>(3 * E * sc), {}, {}, {}, {}, {}, {}};
        for (int e = 0; e < E; ++e) {
            for (int m = 0; m < 3; ++m) {
                const bool down = m == 2;
                CHECK_STATUS(vc::run(vc::BlockQuantizeParams{.type = type, .rows = down ? H : I, .cols = down ? I : H,
                                                             .in = w + (3 * e + m) * per,
                                                             .out = qd.bytes + (3 * e + m) * per,
                                                             .scales = qd.scales + (3 * e + m) * sc},
                                     nullptr));
            }
            qd.q1.push_back(qd.bytes + (3 * e) * per), qd.q3.push_back(qd.bytes + (3 * e + 1) * per);
            qd.q2.push_back(qd.bytes + (3 * e + 2) * per);
            qd.s1.push_back(qd.scales + (3 * e) * sc), qd.s3.push_back(qd.scales + (3 * e + 1) * sc);
            qd.s2.push_back(qd.scales + (3 * e + 2) * sc);
        }
        quantised.push_back(std::move(qd));
    }
    CHECK(cudaDeviceSynchronize());
    std::vector<int64_t> tokens = {1, 8, 64, 8192};
    if (quick) tokens = {1, 64, 8192};
    if (!moe_tokens.empty()) tokens = moe_tokens;
    for (int64_t T : tokens) {
        MoeTokens tok(weights, T, 13 + T);
        const vc::MoeRouterParams& r = tok.router;
        __nv_bfloat16* out = tok.out;
        const double router_ms = median_ms([&](int) { CHECK_STATUS(vc::run(r, nullptr)); }, 3, 20);
        std::vector<int32_t> hids(T * k);
        CHECK(cudaMemcpy(hids.data(), tok.ids, hids.size() * 4, cudaMemcpyDeviceToHost));
        const std::set<int32_t> touched(hids.begin(), hids.end());
        vc::MoeExpertsParams p = tok.experts;
        const size_t ws_bytes = vc::moe_workspace_bytes(p);
        void* ws = dalloc<char>(ws_bytes);
        p.workspace = ws, p.workspace_bytes = ws_bytes;
        const double ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 3, T >= 1024 ? 10 : 50);
        const volt::Expected<int> split_parts = vc::moe_decode_split_parts(p);
        CHECK_STATUS(split_parts.status());
        const double total_ms = median_ms(
            [&](int) {
                CHECK_STATUS(vc::run(r, nullptr));
                CHECK_STATUS(vc::run(p, nullptr));
            },
            3, T >= 1024 ? 10 : 50);
        const double flops = 2.0 * 3 * T * k * H * I;
        const double bytes = 3.0 * touched.size() * per * 2 + 4.0 * T * H;
        emitf("{\"op\": \"moe\", \"T\": %lld, \"experts_touched\": %zu, \"path\": \"%s\", \"ms\": %.4f, "
              "\"router_ms\": %.4f, \"total_ms\": %.4f, \"tflops\": %.1f, \"tbps\": %.3f, \"w13_fused\": true, "
              "\"gated_parts\": %d}",
              (long long)T, touched.size(), T <= vc::kMoeDecodeMaxTokens ? "grouped" : "gemm", ms, router_ms,
              total_ms, flops / ms / 1e9, bytes / ms / 1e9, *split_parts);
        // Quantised experts (FP8, int8), same routing and inputs (same process, right after the bf16 row): time, bytes
        // moved, and how far the output moves from the bf16 one.
        std::vector<uint16_t> out_bf16(T * H), out_q(T * H);
        CHECK(cudaMemcpy(out_bf16.data(), out, T * H * 2, cudaMemcpyDeviceToHost));
        // p with qd's experts, FP8 run as fp8_mode says (either path), with a workspace of its own in *ws_out (freed by
        // the caller).
        // tma: the grouped path's TMA kernel, else its register kernel (MoeExpertsParams::decode_kernel).
        auto quantised_params = [&](const Quantised& qd, vc::MoeFp8Mode fp8_mode, void** ws_out, bool f16 = false,
                                    bool tma = false) {
            vc::MoeExpertsParams pq = p;
            pq.decode_products = f16 ? vc::MoeDecodeProducts::kF16 : vc::MoeDecodeProducts::kBf16;
            pq.decode_kernel = tma ? vc::MoeDecodeKernel::kTma : vc::MoeDecodeKernel::kRegisters;
            pq.w1 = qd.q1.data(), pq.w3 = qd.q3.data(), pq.w2 = qd.q2.data();
            pq.weight_type = qd.type;
            pq.s1 = qd.s1.data(), pq.s3 = qd.s3.data(), pq.s2 = qd.s2.data();
            pq.fp8_prefill = pq.fp8_decode = fp8_mode;
            pq.workspace_bytes = vc::moe_workspace_bytes(pq);
            pq.workspace = *ws_out = dalloc<char>(pq.workspace_bytes);
            return pq;
        };
        // FP8 both ways on either path: weight-only (dequantised to bf16 in the workspace, or widened in registers),
        // and on e4m3 tensor cores with the activations in e4m3 too.
        const bool gemm_path = T > vc::kMoeDecodeMaxTokens;
        struct Variant {
            const Quantised* qd;
            vc::MoeFp8Mode fp8_mode;
            bool f16 = false;  // the grouped path's f16 products (MoeExpertsParams::decode_products), else bf16
            bool one_warp = false;  // the gated product one warp per item (MoeExpertsParams::decode_split off)
            bool tma = false;       // the TMA kernel (MoeExpertsParams::decode_kernel), else the register one
        };
        // At most 8 token slots: each grouped row also with the gated product one warp per item (not cut in parts),
        // right after it in the same process: "..._one_warp" rows.
        const bool split_ab = !gemm_path && T * k <= 8;
        std::vector<Variant> variants;
        for (const Quantised& qd : quantised) {
            for (const bool one_warp : {false, true}) {
                if (one_warp && !split_ab) continue;
                variants.push_back({&qd, vc::MoeFp8Mode::kDequantize, false, one_warp});
                // Right after the bf16 widening, in the same process: "grouped_f16" rows.
                if (!gemm_path) variants.push_back({&qd, vc::MoeFp8Mode::kDequantize, true, one_warp});
            }
            // The TMA kernel right after the register kernel's rows: "grouped_tma" rows.
            if (!gemm_path) variants.push_back({&qd, vc::MoeFp8Mode::kDequantize, true, false, true});
            if (qd.type == vc::MoeWeightType::kFp8E4M3) variants.push_back({&qd, vc::MoeFp8Mode::kFp8Activations});
        }
        if (split_ab) {
            vc::MoeExpertsParams one = p;
            one.decode_split = false;
            const double one_ms = median_ms([&](int) { CHECK_STATUS(vc::run(one, nullptr)); }, 3, 50);
            emitf("{\"op\": \"moe_one_warp\", \"T\": %lld, \"ms\": %.4f, \"split_ms\": %.4f}", (long long)T, one_ms,
                  ms);
        }
        for (const Variant& v : variants) {
            const Quantised& qd = *v.qd;
            void* wsq = nullptr;
            vc::MoeExpertsParams pq = quantised_params(qd, v.fp8_mode, &wsq, v.f16, v.tma);
            pq.decode_split = !v.one_warp;
            if (v.tma && !vc::moe_decode_uses_tma(pq)) {  // (not an sm_90 GPU, or no tensor maps)
                dfree(wsq);
                continue;
            }
            const volt::Expected<int> parts = vc::moe_decode_split_parts(pq);
            CHECK_STATUS(parts.status());
            const double msq = median_ms([&](int) { CHECK_STATUS(vc::run(pq, nullptr)); }, 3, T >= 1024 ? 10 : 50);
            CHECK(cudaMemcpy(out_q.data(), out, T * H * 2, cudaMemcpyDeviceToHost));
            double num = 0, den = 0;
            uint64_t hash = 1469598103934665603ull;  // FNV-1a of the output bits: kernel variants must agree exactly
            for (int64_t i = 0; i < T * H; ++i) {
                hash = (hash ^ out_q[i]) * 1099511628211ull;
                const double a = volt::bf16_to_f32(out_q[i]), b = volt::bf16_to_f32(out_bf16[i]);
                num += (a - b) * (a - b), den += b * b;
            }
            const double bytesq = 3.0 * touched.size() * (per + sc * 4.0) + 4.0 * T * H;
            emitf("{\"op\": \"moe_%s\", \"T\": %lld, \"experts_touched\": %zu, \"path\": \"%s\", \"ms\": %.4f, "
                  "\"bf16_ms\": %.4f, \"speedup\": %.2f, \"tflops\": %.1f, \"tbps\": %.3f, \"rel_diff_vs_bf16\": %.3e, "
                  "\"out_hash\": \"%016llx\", \"gated_parts\": %d}",
                  qd.type == vc::MoeWeightType::kInt8 ? "int8" : "fp8", (long long)T, touched.size(),
                  v.fp8_mode == vc::MoeFp8Mode::kFp8Activations ? (gemm_path ? "gemm_fp8_activations"
                                                                              : "grouped_fp8_activations")
                  : gemm_path                ? "gemm_dequant"
                  : v.tma                    ? "grouped_tma"
                  : v.f16 && v.one_warp      ? "grouped_f16_one_warp"
                  : v.f16                    ? "grouped_f16"
                  : v.one_warp               ? "grouped_one_warp"
                                             : "grouped",
                  msq, ms, ms / msq, flops / msq / 1e9,
                  bytesq / msq / 1e9, std::sqrt(num / std::max(den, 1e-30)), (unsigned long long)hash, *parts);
            dfree(wsq);
        }
        // The GEMM path's experts on 1, 2 and 4 streams (MoeExpertsParams::gemm_streams): bf16 GEMMs, FP8 GEMMs, and
        // int8 weights dequantised per stream (its workspace sized for 4 streams' copies).
        if (gemm_path) {
            void *wsq = nullptr, *wsi = nullptr;
            vc::MoeExpertsParams pq = quantised_params(quantised[0], vc::MoeFp8Mode::kFp8Activations, &wsq);
            vc::MoeExpertsParams pi = quantised_params(quantised[1], vc::MoeFp8Mode::kAuto, &wsi);
            dfree(wsi);
            pi.gemm_streams = 4;
            pi.workspace_bytes = vc::moe_workspace_bytes(pi);
            pi.workspace = wsi = dalloc<char>(pi.workspace_bytes);
            for (int streams : {1, 2, 4, 1, 2, 4}) {
                vc::MoeExpertsParams pb = p;
                pb.gemm_streams = pq.gemm_streams = pi.gemm_streams = streams;
                const double bms = median_ms([&](int) { CHECK_STATUS(vc::run(pb, nullptr)); }, 3, 10);
                const double fms = median_ms([&](int) { CHECK_STATUS(vc::run(pq, nullptr)); }, 3, 10);
                const double ims = median_ms([&](int) { CHECK_STATUS(vc::run(pi, nullptr)); }, 3, 10);
                emitf("{\"op\": \"moe_gemm_streams\", \"T\": %lld, \"streams\": %d, \"bf16_ms\": %.4f, "
                      "\"bf16_tflops\": %.1f, \"fp8_activations_ms\": %.4f, \"fp8_tflops\": %.1f, "
                      "\"int8_dequant_ms\": %.4f, \"int8_tflops\": %.1f}",
                      (long long)T, streams, bms, flops / bms / 1e9, fms, flops / fms / 1e9, ims, flops / ims / 1e9);
            }
            dfree(wsq);
            dfree(wsi);
            // bf16 w3 in its own allocations (not right after w1: two GEMMs of N = I per expert instead of one of 2I).
            auto* w3_apart = dalloc<__nv_bfloat16>(E * per);
            std::vector<const void*> w3s(E);
            for (int e = 0; e < E; ++e) {
                CHECK(cudaMemcpy(w3_apart + e * per, p.w3[e], per * 2, cudaMemcpyDeviceToDevice));
                w3s[e] = w3_apart + e * per;
            }
            vc::MoeExpertsParams pa = p;
            pa.w3 = w3s.data();
            const double sep_ms = median_ms([&](int) { CHECK_STATUS(vc::run(pa, nullptr)); }, 3, 10);
            const double fused_ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 3, 10);
            emitf("{\"op\": \"moe_bf16_w13\", \"T\": %lld, \"separate_ms\": %.4f, \"one_block_ms\": %.4f}",
                  (long long)T, sep_ms, fused_ms);
            dfree(w3_apart);
        }
        dfree(ws);
    }
    for (Quantised& qd : quantised) dfree(qd.bytes, qd.scales);
}

// Does a prefill piece on one stream and decode steps on another pay on one GPU (issue 12)? The MoE, the bulk of both:
// an 8192-token piece (cuBLASLt GEMMs, compute-bound) and 4 decode steps of 64 tokens (grouped GEMV, memory-bound)
// timed alone, one after the other on one stream, and launched together on two streams (decode first, so the
// piece's host synchronisation does not delay their launch). Events on the GPU; median of 5.
void bench_overlap() {
    const int steps = 4;
    const int64_t Tp = 8192, Td = 64;
    const MoeWeights weights;
    MoeTokens pre(weights, Tp, 101), dec(weights, Td, 102);
    void* workspaces[2];
    for (MoeTokens* t : {&pre, &dec}) {
        t->experts.workspace_bytes = vc::moe_workspace_bytes(t->experts);
        t->experts.workspace = workspaces[t == &dec] = dalloc<char>(t->experts.workspace_bytes);
    }
    cudaStream_t s1, s2;
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    cudaEvent_t e0, e_pre, e_dec, e_end;
    for (cudaEvent_t* e : {&e0, &e_pre, &e_dec, &e_end}) CHECK(cudaEventCreate(e));
    auto decode = [&](cudaStream_t st) {
        for (int i = 0; i < steps; ++i) CHECK_STATUS(vc::run(dec.experts, st));
    };
    auto elapsed = [](cudaEvent_t a, cudaEvent_t b) {
        float ms = 0;
        CHECK(cudaEventElapsedTime(&ms, a, b));
        return double(ms);
    };
    std::vector<double> t_pre, t_dec, t_seq, t_conc, t_conc_dec;
    for (int rep = 0; rep < 6; ++rep) {
        CHECK(cudaEventRecord(e0, s1));
        CHECK_STATUS(vc::run(pre.experts, s1));
        CHECK(cudaEventRecord(e_pre, s1));
        decode(s1);
        CHECK(cudaEventRecord(e_end, s1));
        CHECK(cudaEventSynchronize(e_end));
        if (rep) t_pre.push_back(elapsed(e0, e_pre)), t_dec.push_back(elapsed(e_pre, e_end)),
                 t_seq.push_back(elapsed(e0, e_end));
        CHECK(cudaEventRecord(e0, s1));
        CHECK(cudaStreamWaitEvent(s2, e0));
        decode(s2);
        CHECK(cudaEventRecord(e_dec, s2));
        CHECK_STATUS(vc::run(pre.experts, s1));
        CHECK(cudaStreamWaitEvent(s1, e_dec));
        CHECK(cudaEventRecord(e_end, s1));
        CHECK(cudaEventSynchronize(e_end));
        if (rep) t_conc.push_back(elapsed(e0, e_end)), t_conc_dec.push_back(elapsed(e0, e_dec));
    }
    auto med = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    emitf("{\"op\": \"overlap\", \"prefill_T\": %lld, \"decode_T\": %lld, \"decode_steps\": %d, \"prefill_ms\": %.3f, "
          "\"decode_ms\": %.3f, \"sequential_ms\": %.3f, \"concurrent_ms\": %.3f, \"concurrent_over_sequential\": %.3f, "
          "\"decode_done_concurrent_ms\": %.3f}",
          (long long)Tp, (long long)Td, steps, med(t_pre), med(t_dec), med(t_seq), med(t_conc),
          med(t_conc) / med(t_seq), med(t_conc_dec));
    dfree(workspaces[0], workspaces[1]);
    for (cudaEvent_t e : {e0, e_pre, e_dec, e_end}) CHECK(cudaEventDestroy(e));
    CHECK(cudaStreamDestroy(s1));
    CHECK(cudaStreamDestroy(s2));
}

// ---- attention ----------------------------------------------------------------------------------------------------
void bench_attention_prefill(bool quick, bool cudnn_only = false) {
    const int Hq = 64, Hkv = 8;
    std::vector<int64_t> lengths = {8192, 32768, 131072};
    if (quick) lengths = {8192, 32768};
    if (cudnn_only) lengths = {32768, 131072};
    for (int64_t T : lengths) {
        __nv_bfloat16* q = rand_bf16(T * Hq * kD, 21);
        __nv_bfloat16* kk = rand_bf16(T * Hkv * kD, 22);
        __nv_bfloat16* v = rand_bf16(T * Hkv * kD, 23);
        auto* o = dalloc<__nv_bfloat16>(T * Hq * kD);
        // own and cudnn on the model's token-major layout [T, H, D]; cudnn_bhsd on head-major [H, T, D] buffers
        // (the layout torch's SDPA anchor uses), to separate layout effects from kernel speed; cudnn_bhsd_in: q, k, v
        // head-major, o token-major (what a RoPE pass writing head-major would give the out projection).
        // cudnn: one call (no workspace); cudnn_tiled: with attention_workspace_bytes, so that a sequence of more
        // than 32K queries runs in pieces of 8192 queries and blocks of keys (kernels/cuda/attention_blocks.cu).
        for (const char* variant : {"own", "cudnn", "cudnn_bhsd", "cudnn_bhsd_in", "cudnn_tiled"}) {
            const std::string_view name = variant;
            const bool own = variant[0] == 'o', tiled = name == "cudnn_tiled";
            const bool bhsd = name.starts_with("cudnn_bhsd"), o_bhsd = name == "cudnn_bhsd";
            if (cudnn_only && own) continue;
            if (tiled && T <= 32768) continue;
            if (!own && !vc::cudnn_attention_available()) {
                emitf("{\"op\": \"attn_prefill\", \"backend\": \"%s\", \"T\": %lld, \"ms\": null, "
                      "\"note\": \"cuDNN SDPA unavailable\"}",
                      variant, (long long)T);
                continue;
            }
            vc::AttentionParams p;
            p.prefill_backend = own ? vc::AttentionBackend::kOwn : vc::AttentionBackend::kCudnn;
            p.num_tokens = T, p.num_seqs = 1, p.num_heads = Hq, p.num_kv_heads = Hkv;
            p.scale = 1.0f / std::sqrt(float(kD));
            const int64_t tq = bhsd ? kD : Hq * kD, hq = bhsd ? T * kD : kD;
            const int64_t tk = bhsd ? kD : Hkv * kD, hk = bhsd ? T * kD : kD;
            p.q = q, p.q_stride_token = tq, p.q_stride_head = hq;
            p.k = kk, p.k_stride_token = tk, p.k_stride_head = hk;
            p.v = v, p.v_stride_token = tk, p.v_stride_head = hk;
            p.o = o, p.o_stride_token = o_bhsd ? kD : Hq * kD, p.o_stride_head = o_bhsd ? T * kD : kD;
            const int reps = T >= 131072 ? 3 : T >= 32768 ? 5 : 20;
            void* ws = nullptr;
            if (tiled) {
                p.workspace_bytes = vc::attention_workspace_bytes(p);
                ws = p.workspace = dalloc<uint8_t>(p.workspace_bytes);
            }
            const double ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 1, reps);
            if (ws) dfree(ws);
            const double flops = 2.0 * T * T * kD * Hq;  // causal: half of 4 T^2 D H
            emitf("{\"op\": \"attn_prefill\", \"backend\": \"%s\", \"T\": %lld, \"Hq\": %d, \"Hkv\": %d, "
                  "\"ms\": %.3f, \"tflops\": %.1f}",
                  variant, (long long)T, Hq, Hkv, ms,
                  flops / ms / 1e9);
        }
        dfree(q, kk, v, o);
    }
}

// Several sequences in one prefill call (an API user's ragged batch; the backbone makes none): the own kernel against
// cuDNN's ragged layout (kernels/cuda/attention_ragged.cu). "fresh": 8 sequences of 1K-8K tokens (32K in all), keys
// packed like the queries, the longest first ("fresh_reversed": the same in the opposite order); "prefixed": 4 chunks
// of 2048 new tokens after cached prefixes of 0-60K keys, each sequence's keys in its own cache region (kv_start).
// Flops: the causal work, 2 q (2 P + q) Hq D per sequence. tools/ops_torch_anchor.py --only sdpa_ragged runs the same
// batches through torch.
void bench_attention_ragged() {
    const int Hq = 64, Hkv = 8;
    struct Case {
        const char* name;
        std::vector<int> q, past;
    };
    const Case cases[] = {{"fresh", {8192, 4096, 4096, 2048, 2048, 1024, 6144, 5120}, std::vector<int>(8, 0)},
                          {"fresh_reversed", {5120, 6144, 1024, 2048, 2048, 4096, 4096, 8192}, std::vector<int>(8, 0)},
                          {"prefixed", {2048, 2048, 2048, 2048}, {30000, 10000, 60000, 0}}};
    for (const Case& c : cases) {
        const int N = static_cast<int>(c.q.size());
        std::vector<int32_t> cu{0}, lens, start;
        int64_t rows = 0, max_q = 0, max_kv = 0;
        double flops = 0;
        for (int n = 0; n < N; ++n) {
            cu.push_back(cu.back() + c.q[n]);
            lens.push_back(c.past[n] + c.q[n]);
            start.push_back(static_cast<int32_t>(rows));
            rows += lens.back();
            max_q = std::max<int64_t>(max_q, c.q[n]), max_kv = std::max<int64_t>(max_kv, lens.back());
            flops += 2.0 * c.q[n] * (2.0 * c.past[n] + c.q[n]) * Hq * kD;
        }
        const int64_t T = cu.back();
        const bool fresh = rows == T;
        __nv_bfloat16* q = rand_bf16(T * Hq * kD, 51);
        __nv_bfloat16* kk = rand_bf16(rows * Hkv * kD, 52);
        __nv_bfloat16* v = rand_bf16(rows * Hkv * kD, 53);
        auto* o = dalloc<__nv_bfloat16>(T * Hq * kD);
        auto* dcu = dalloc<int32_t>(N + 1);
        auto* dlens = dalloc<int32_t>(N);
        auto* dstart = dalloc<int32_t>(N);
        CHECK(cudaMemcpy(dcu, cu.data(), (N + 1) * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(dlens, lens.data(), N * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(dstart, start.data(), N * 4, cudaMemcpyHostToDevice));
        vc::AttentionParams p;
        p.num_tokens = T, p.num_seqs = N, p.num_heads = Hq, p.num_kv_heads = Hkv;
        p.scale = 1.0f / std::sqrt(float(kD));
        p.q = q, p.q_stride_token = Hq * kD, p.q_stride_head = kD;
        p.k = kk, p.k_stride_token = Hkv * kD, p.k_stride_head = kD;
        p.v = v, p.v_stride_token = Hkv * kD, p.v_stride_head = kD;
        p.o = o, p.o_stride_token = Hq * kD, p.o_stride_head = kD;
        p.cu_seqlens = dcu, p.max_seqlen_q = max_q, p.max_seqlen_kv = max_kv;
        if (!fresh) p.kv_lens = dlens, p.kv_start = dstart;
        for (const char* backend : {"own", "cudnn"}) {
            const bool own = backend[0] == 'o';
            if (!own && !vc::cudnn_attention_available()) continue;
            p.prefill_backend = own ? vc::AttentionBackend::kOwn : vc::AttentionBackend::kCudnn;
            const size_t ws_bytes = vc::attention_workspace_bytes(p);
            void* ws = ws_bytes ? dalloc<uint8_t>(ws_bytes) : nullptr;
            p.workspace = ws, p.workspace_bytes = ws_bytes;
            auto fn = [&](int) { CHECK_STATUS(vc::run(p, nullptr)); };
            const double ms = median_ms(fn, 2, 10), fms = flush_ms(fn, 2, 10);
            emitf("{\"op\": \"attn_prefill_ragged\", \"batch\": \"%s\", \"backend\": \"%s\", \"N\": %d, "
                  "\"T\": %lld, \"keys\": %lld, \"ms\": %.3f, \"flush_ms\": %.3f, \"tflops\": %.1f}",
                  c.name, backend, N, (long long)T, (long long)rows, ms, fms, flops / fms / 1e9);
            if (ws) dfree(ws);
            p.workspace = nullptr, p.workspace_bytes = 0;
        }
        dfree(q, kk, v, o, dcu, dlens, dstart);
    }
}

// A prefill piece after a long cached prefix (the backbone's 8192-token pieces of a 128K / 1M prompt): its attention
// in one cuDNN call against the same in blocks of keys (plan_prefill_blocks at the backbone's default 2e13 flops per
// unit): the throughput the blocks cost and the longest block (what bounds a stop).
// Every plan cuDNN's heuristics (A, B, fallback) offer for the shapes Volt runs, timed (cudnn_sdpa_time_plans), against
// the plan the cache runs (the heuristics' first choice):
// the ViT's attention (37 crops and 1 crop of 577 tokens, 16 heads of 64, packed q|k|v rows) and the backbone's
// causal prefill (64 / 8 heads of 128: 8K, 32K, and an 8192-query piece over a 65536-key block with statistics).
void bench_cudnn_plans() {
    if (!vc::cudnn_attention_available()) {
        emit("{\"op\": \"cudnn_plans\", \"ms\": null, \"note\": \"cuDNN SDPA unavailable\"}");
        return;
    }
    struct Shape {
        const char* name;
        vc::CudnnSdpaSpec spec;
        double flops;
        int reps;
    };
    std::vector<Shape> shapes;
    for (int64_t crops : {int64_t{37}, int64_t{1}}) {
        const int64_t T = 577, H = 16, D = 64, row = 3 * H * D;
        vc::CudnnSdpaSpec s{.batch = crops, .tokens = T, .heads = H, .kv_heads = H, .head_dim = D,
                            .q_stride_b = T * row, .q_stride_h = D, .q_stride_t = row,
                            .k_stride_b = T * row, .k_stride_h = D, .k_stride_t = row,
                            .v_stride_b = T * row, .v_stride_h = D, .v_stride_t = row,
                            .o_stride_b = T * H * D, .o_stride_h = D, .o_stride_t = H * D,
                            .scale = 0.125f};
        shapes.push_back({crops == 37 ? "vit_37_crops" : "vit_1_crop", s, 4.0 * crops * H * T * T * D, 20});
    }
    // The backbone's token-major [T, H, D] layout, as the model's prefill builds it (prefill_sdpa_spec).
    auto backbone = [](int64_t T, int64_t keys, bool causal, bool stats) {
        vc::AttentionParams p;
        p.num_tokens = T, p.num_heads = 64, p.num_kv_heads = 8, p.head_dim = kD;
        p.scale = 1.0f / std::sqrt(float(kD));
        p.q_stride_token = p.o_stride_token = 64 * kD, p.k_stride_token = p.v_stride_token = 8 * kD;
        p.q_stride_head = p.k_stride_head = p.v_stride_head = p.o_stride_head = kD;
        return vc::prefill_sdpa_spec(p, keys, causal, stats, /*transient=*/false);
    };
    for (int64_t T : {int64_t{8192}, int64_t{32768}})
        shapes.push_back({T == 8192 ? "causal_8k" : "causal_32k", backbone(T, T, true, false), 2.0 * T * T * kD * 64,
                          T > 8192 ? 3 : 10});
    shapes.push_back({"block_8k_x_64k_stats", backbone(8192, 65536, false, true), 4.0 * 8192 * 65536 * kD * 64, 5});
    for (const Shape& sh : shapes) {
        const vc::CudnnSdpaSpec& s = sh.spec;
        const int64_t S = s.kv_tokens > 0 ? s.kv_tokens : s.tokens;
        const bool packed = sh.name[0] == 'v';  // the ViT: q | k | v in one row
        const size_t q_elems = size_t(s.batch) * s.q_stride_b, kv_elems = size_t(s.batch) * S * s.k_stride_t;
        __nv_bfloat16* q = rand_bf16(q_elems, 41);
        __nv_bfloat16* k = packed ? q + s.heads * s.head_dim : rand_bf16(kv_elems, 42);
        __nv_bfloat16* v = packed ? q + 2 * s.heads * s.head_dim : rand_bf16(kv_elems, 43);
        auto* o = dalloc<__nv_bfloat16>(size_t(s.batch) * s.tokens * s.heads * s.head_dim);
        float* stats = s.stats ? dalloc<float>(size_t(s.batch) * s.heads * s.tokens) : nullptr;
        auto plans = vc::cudnn_sdpa_time_plans(s, q, k, v, o, nullptr, "A,B,fallback", sh.reps, stats);
        if (!plans.has_value()) {
            emitf("{\"op\": \"cudnn_plans\", \"shape\": \"%s\", \"ms\": null, \"error\": \"%s\"}", sh.name,
                  plans.status().to_string().c_str());
        } else {
            for (size_t i = 0; i < plans->size(); ++i) {
                const vc::CudnnPlanTiming& t = (*plans)[i];
                std::string err = t.error.substr(0, 300);
                std::replace(err.begin(), err.end(), '"', '\'');
                std::replace(err.begin(), err.end(), '\n', ' ');
                emitf("{\"op\": \"cudnn_plans\", \"shape\": \"%s\", \"index\": %d, \"plan\": \"%s\", "
                      "\"workspace\": %lld, \"ms\": %.4f, \"tflops\": %.1f, \"error\": \"%s\"}",
                      sh.name, int(i), t.name.c_str(), (long long)t.workspace_bytes, t.ms,
                      t.ms > 0 ? sh.flops / t.ms / 1e9 : 0.0, err.c_str());
            }
        }
        // What the cache runs (the heuristics' first choice), timed the same way.
        const double ms = median_ms(
            [&](int) { CHECK_STATUS(vc::cudnn_sdpa(s, q, k, v, o, nullptr, "cudnn_plans", stats)); }, 2, sh.reps);
        emitf("{\"op\": \"cudnn_plans\", \"shape\": \"%s\", \"plan\": \"cache (heuristics A)\", \"ms\": %.4f, "
              "\"tflops\": %.1f}",
              sh.name, ms, sh.flops / ms / 1e9);
        dfree(q, o);
        if (!packed) dfree(k, v);
        if (stats) dfree(stats);
    }
}

// The ViT's attention (CLIP ViT-L/14-336: crops of 577 tokens, 16 heads of 64, packed q|k|v rows as the fused
// projection writes them) through each backend that takes it; tools/ops_torch_anchor.py --only vit_attn times torch's
// SDPA on the same shapes. "flush": L2 flushed before each call (the anchors' timing); "warm": back to back.
void bench_vit_attention() {
    namespace vv = volt::vision::cuda;
    const int64_t H = 16, Dh = 64, D = H * Dh;
    // The ViT's 577 tokens at 37 crops and 1 crop; 576 and 640 tokens at 37 crops show what the 577th token costs (its
    // query row a 64-row tile of its own, its key a narrow 64-key block).
    struct Shape {
        int64_t crops, T;
    };
    for (const Shape sh : {Shape{37, 577}, Shape{1, 577}, Shape{37, 576}, Shape{37, 640}}) {
        const int64_t crops = sh.crops, T = sh.T;
        __nv_bfloat16* qkv = rand_bf16(size_t(crops * T * 3 * D), 51);
        auto* o = dalloc<__nv_bfloat16>(size_t(crops * T * D));
        const double flops = 4.0 * double(crops * H) * double(T * T * Dh);
        for (const auto backend : {vv::VitAttentionBackend::kCudnn, vv::VitAttentionBackend::kWgmma}) {
            const char* name = vv::vit_attention_backend_name(backend);
            vv::VitAttentionParams p;
            p.backend = backend;
            p.batch = crops, p.tokens = T, p.heads = int(H), p.head_dim = int(Dh), p.scale = 0.125f;
            p.qkv = qkv, p.token_stride = 3 * D, p.batch_stride = T * 3 * D, p.k_offset = D, p.v_offset = 2 * D;
            p.o = o, p.o_token_stride = D, p.o_batch_stride = T * D;
            const volt::Status first = vv::run(p, nullptr);
            if (!first.is_ok()) {
                emitf("{\"op\": \"vit_attn\", \"crops\": %lld, \"T\": %lld, \"backend\": \"%s\", \"ms\": null, "
                      "\"error\": \"%s\"}",
                      (long long)crops, (long long)T, name, first.to_string().c_str());
                continue;
            }
            auto call = [&](int) { CHECK_STATUS(vv::run(p, nullptr)); };
            const double flush = flush_ms(call, 3, 50), warm = median_ms(call, 3, 50);
            emitf("{\"op\": \"vit_attn\", \"crops\": %lld, \"T\": %lld, \"backend\": \"%s\", \"ms\": %.4f, "
                  "\"warm_ms\": %.4f, \"tflops\": %.1f}",
                  (long long)crops, (long long)T, name, flush, warm, flops / flush / 1e9);
        }
        dfree(qkv, o);
    }
}

// A prefill piece of T queries after a cached prefix, S keys in all, at the backbone's shape (64 / 8 heads of 128,
// token-major, one sequence, its key count known on the host): random q, k, v (seeds seed, seed + 1, seed + 2).
struct PrefixedPiece {
    static constexpr int Hq = 64, Hkv = 8;
    int64_t T, S;
    __nv_bfloat16 *q, *k, *v, *o;
    int32_t* len;
    vc::AttentionParams p;
    PrefixedPiece(int64_t T_, int64_t S_, uint64_t seed) : T(T_), S(S_) {
        q = rand_bf16(T * Hq * kD, seed);
        k = rand_bf16(S * Hkv * kD, seed + 1);
        v = rand_bf16(S * Hkv * kD, seed + 2);
        o = dalloc<__nv_bfloat16>(T * Hq * kD);
        len = dalloc<int32_t>(1);
        const int32_t s32 = static_cast<int32_t>(S);
        CHECK(cudaMemcpy(len, &s32, 4, cudaMemcpyHostToDevice));
        p.num_tokens = T, p.num_seqs = 1, p.num_heads = Hq, p.num_kv_heads = Hkv;
        p.scale = 1.0f / std::sqrt(float(kD));
        p.q = q, p.q_stride_token = Hq * kD, p.q_stride_head = kD;
        p.k = k, p.k_stride_token = Hkv * kD, p.k_stride_head = kD;
        p.v = v, p.v_stride_token = Hkv * kD, p.v_stride_head = kD;
        p.o = o, p.o_stride_token = Hq * kD, p.o_stride_head = kD;
        p.kv_lens = len, p.kv_len_host = S, p.max_seqlen_q = T, p.max_seqlen_kv = S;
    }
    ~PrefixedPiece() { dfree(q, k, v, o, len); }
    PrefixedPiece(const PrefixedPiece&) = delete;
    PrefixedPiece& operator=(const PrefixedPiece&) = delete;
    double flops() const { return 4.0 * T * (double(S) - T / 2.0) * Hq * kD; }  // causal over the piece's own keys
};

void bench_attention_blocks() {
    const int64_t T = 8192;
    if (!vc::cudnn_attention_available()) {
        emit("{\"op\": \"attn_blocks\", \"ms\": null, \"note\": \"cuDNN SDPA unavailable\"}");
        return;
    }
    for (int64_t S : {int64_t{131072}, int64_t{1} << 20}) {
        PrefixedPiece piece(T, S, 31);
        vc::AttentionParams& p = piece.p;
        p.prefill_backend = vc::AttentionBackend::kCudnn;
        const int reps = S > 131072 ? 3 : 10;
        const double whole_ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 1, reps);
        auto plan = vc::plan_prefill_blocks(p, 2e13);
        CHECK_STATUS(plan.status());
        void* ws = dalloc<uint8_t>(plan->workspace_bytes);
        p.workspace = ws, p.workspace_bytes = plan->workspace_bytes;
        const double blocks_ms = median_ms(
            [&](int) {
                for (int b = 0; b < plan->count; ++b) CHECK_STATUS(vc::run_prefill_block(p, *plan, b, nullptr));
            },
            1, reps);
        // Each block alone (a full one and the last, causal one): the longest unit of work a stop waits for.
        double longest_ms = 0.0;
        for (int b : {0, plan->count - 1})
            longest_ms = std::max(longest_ms, median_ms([&](int) { CHECK_STATUS(vc::run_prefill_block(p, *plan, b, nullptr)); }, 1, reps));
        const double flops = piece.flops();
        emitf("{\"op\": \"attn_blocks\", \"T\": %lld, \"S\": %lld, \"blocks\": %d, \"block_keys\": %lld, "
              "\"whole_ms\": %.3f, \"blocks_ms\": %.3f, \"ratio\": %.4f, \"longest_block_ms\": %.3f, "
              "\"whole_tflops\": %.1f, \"blocks_tflops\": %.1f}",
              (long long)T, (long long)S, plan->count, (long long)plan->block_keys, whole_ms, blocks_ms,
              blocks_ms / whole_ms, longest_ms, flops / whole_ms / 1e9, flops / blocks_ms / 1e9);
        dfree(ws);
    }
}

// A chat turn: a short piece (T queries) after a long cached prefix (S keys in all). Own kernel, cuDNN with the exact
// lengths' graph (its first call, the graph build, timed apart) and cuDNN in bucketed shapes (kCudnnBuckets, what
// kAuto now picks: its first call builds the bucket's graphs, and a second turn of other lengths in the same bucket
// is timed on its first call: no build).
void bench_attention_turn() {
    if (!vc::cudnn_attention_available()) {
        emit("{\"op\": \"attn_turn\", \"ms\": null, \"note\": \"cuDNN SDPA unavailable\"}");
        return;
    }
    auto first_call_ms = [](const vc::AttentionParams& p) {
        CHECK(cudaDeviceSynchronize());
        const auto t0 = std::chrono::steady_clock::now();
        CHECK_STATUS(vc::run(p, nullptr));
        CHECK(cudaDeviceSynchronize());
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    // 40000: a context between powers of two, whose next turn (1000 keys fewer) keeps its block size.
    // 600 and 2062: just past a power of two, two query pieces (512 + 88, 2048 + 14).
    for (auto [T, S] : {std::pair<int64_t, int64_t>{512, 32768}, {512, 40000}, {512, 131072}, {2048, 131072},
                        {100, 131072}, {600, 131072}, {2062, 131072}}) {
        PrefixedPiece piece(T, S, 41);
        vc::AttentionParams& p = piece.p;
        const bool auto_cudnn = vc::cudnn_prefill_shape(p, vc::AttentionBackend::kAuto);
        const bool auto_buckets = vc::bucketed_prefill_shape(p, vc::AttentionBackend::kAuto);
        p.prefill_backend = vc::AttentionBackend::kOwn;
        const double own_ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 2, 10);
        p.prefill_backend = vc::AttentionBackend::kCudnn;
        const double first_ms = first_call_ms(p);  // builds this length pair's graph
        const double cudnn_ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 1, 10);

        p.prefill_backend = vc::AttentionBackend::kCudnnBuckets;
        const size_t ws_bytes = vc::attention_workspace_bytes(p);
        auto* ws = dalloc<unsigned char>(ws_bytes);
        p.workspace = ws, p.workspace_bytes = ws_bytes;
        const double bucket_first_ms = first_call_ms(p);  // the bucket's graphs, unless an earlier case built them
        const double bucket_ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 1, 10);
        // The next turn: other lengths in the same bucket (fewer queries, fewer keys), timed on its first call.
        vc::AttentionParams next = p;
        next.num_tokens = T - 13, next.max_seqlen_q = T - 13;
        next.kv_len_host = S - 1000, next.max_seqlen_kv = S - 1000;
        const double next_first_ms = first_call_ms(next);
        dfree(ws);
        const double flops = piece.flops();
        emitf("{\"op\": \"attn_turn\", \"T\": %lld, \"S\": %lld, \"auto_takes_cudnn\": %s, \"auto_takes_buckets\": %s, "
              "\"own_ms\": %.3f, \"cudnn_ms\": %.3f, \"cudnn_first_call_ms\": %.1f, \"buckets_ms\": %.3f, "
              "\"buckets_first_call_ms\": %.1f, \"buckets_next_turn_first_call_ms\": %.2f, \"own_tflops\": %.1f, "
              "\"cudnn_tflops\": %.1f, \"buckets_tflops\": %.1f, \"buckets_vs_own\": %.2f}",
              (long long)T, (long long)S, auto_cudnn ? "true" : "false", auto_buckets ? "true" : "false", own_ms,
              cudnn_ms, first_ms, bucket_ms, bucket_first_ms, next_first_ms, flops / own_ms / 1e9,
              flops / cudnn_ms / 1e9, flops / bucket_ms / 1e9, own_ms / bucket_ms);
    }
}

// Where a bucketed chat turn's time goes (512 queries after 128K keys): the whole run at block sizes of 16K, 32K and
// 64K keys, each block of the 64K plan alone, and one 64K-key block's cuDNN call with and without the padding mask
// (the same keys, all valid): what the mask and the block count cost beside the exact-lengths graph.
void bench_attention_turn_parts() {
    if (!vc::cudnn_attention_available()) return;
    PrefixedPiece piece(512, 131072, 43);
    vc::AttentionParams& p = piece.p;
    p.prefill_backend = vc::AttentionBackend::kCudnnBuckets;
    const double per_key = 4.0 * 512 * PrefixedPiece::Hq * kD;
    for (int64_t bk : {int64_t{16384}, int64_t{32768}, int64_t{65536}}) {
        auto plan = vc::plan_prefill_blocks(p, double(bk) * per_key);
        CHECK_STATUS(plan.status());
        auto* ws = dalloc<unsigned char>(plan->workspace_bytes);
        p.workspace = ws, p.workspace_bytes = plan->workspace_bytes;
        const double ms = median_ms([&](int) {
            for (int b = 0; b < plan->count; ++b) CHECK_STATUS(vc::run_prefill_block(p, *plan, b, nullptr));
        }, 2, 10);
        std::string blocks;
        if (bk == 65536)
            for (int b = 0; b < plan->count; ++b)
                blocks += (b ? ", " : "") + std::to_string(median_ms([&](int) {
                    CHECK_STATUS(vc::run_prefill_block(p, *plan, b, nullptr));
                }, 2, 10));
        emitf("{\"op\": \"attn_turn_parts\", \"T\": 512, \"S\": 131072, \"block_keys\": %lld, \"blocks\": %d, "
              "\"ms\": %.3f, \"block_ms\": [%s]}",
              (long long)plan->piece[0].block_keys, plan->count, ms, blocks.c_str());
        dfree(ws);
    }
    // One block of 65536 keys, 512 staged queries, with statistics: padding mask (all keys valid) or none.
    const int64_t Tb = 512, Bk = 65536, row = int64_t(PrefixedPiece::Hq) * kD;
    vc::CudnnSdpaSpec s = vc::staged_block_spec(p, Tb, Bk, /*causal=*/false);
    float* stats = dalloc<float>(Tb * PrefixedPiece::Hq);
    int32_t* lens = dalloc<int32_t>(2);
    const int32_t h_lens[2] = {int32_t(Tb), int32_t(Bk)};
    CHECK(cudaMemcpy(lens, h_lens, sizeof h_lens, cudaMemcpyHostToDevice));
    for (int mask = 0; mask < 2; ++mask)
        for (int with_stats = 0; with_stats < 2; ++with_stats) {
            s.seq_lens = mask, s.stats = with_stats;
            const double ms = median_ms([&](int) {
                CHECK_STATUS(vc::cudnn_sdpa(s, piece.q, piece.k, piece.v, piece.o, nullptr, "bench", stats, lens,
                                            lens + 1));
            }, 2, 10);
            emitf("{\"op\": \"attn_turn_block\", \"Tb\": 512, \"keys\": 65536, \"padding_mask\": %s, "
                  "\"stats\": %s, \"ms\": %.3f, \"tflops\": %.1f}",
                  mask ? "true" : "false", with_stats ? "true" : "false", ms, 4.0 * Tb * Bk * row / ms / 1e9);
        }
    dfree(stats, lens);
}

void bench_attention_decode(bool quick) {
    const int Hq = 64, Hkv = 8;
    struct Case {
        int B;
        int64_t L;
    };
    std::vector<Case> cases = {{1, 262144}, {16, 32768}, {64, 4096}};
    if (quick) cases.pop_back();
    for (const Case& c : cases) {
        __nv_bfloat16* q = rand_bf16(c.B * Hq * kD, 31);
        __nv_bfloat16* kk = rand_bf16(c.B * c.L * Hkv * kD, 32);
        __nv_bfloat16* v = rand_bf16(c.B * c.L * Hkv * kD, 33);
        auto* o = dalloc<__nv_bfloat16>(c.B * Hq * kD);
        std::vector<int32_t> lens(c.B, static_cast<int32_t>(c.L)), start(c.B);
        for (int n = 0; n < c.B; ++n) start[n] = static_cast<int32_t>(n * c.L);
        auto* dlens = dalloc<int32_t>(c.B);
        auto* dstart = dalloc<int32_t>(c.B);
        CHECK(cudaMemcpy(dlens, lens.data(), c.B * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(dstart, start.data(), c.B * 4, cudaMemcpyHostToDevice));
        vc::AttentionParams p;
        p.phase = vc::AttentionPhase::kDecode;
        p.num_tokens = c.B, p.num_seqs = c.B, p.num_heads = Hq, p.num_kv_heads = Hkv;
        p.scale = 1.0f / std::sqrt(float(kD));
        p.q = q, p.q_stride_token = Hq * kD, p.q_stride_head = kD;
        p.k = kk, p.k_stride_token = Hkv * kD, p.k_stride_head = kD;
        p.v = v, p.v_stride_token = Hkv * kD, p.v_stride_head = kD;
        p.o = o, p.o_stride_token = Hq * kD, p.o_stride_head = kD;
        p.kv_lens = dlens, p.kv_start = dstart, p.max_seqlen_kv = c.L;
        const double bytes = 2.0 * 2 * c.B * c.L * Hkv * kD + 2.0 * 2 * c.B * Hq * kD;
        // The planned split count (first), then forced ones (VOLT_ATTENTION_DECODE_SPLITS) for A/B: the earlier plan's
        // counts (132 / 9 / 3 at B = 1 / 16 / 64) and one between.
        std::vector<int> forced = {0};
        if (!quick) forced = c.B == 1 ? std::vector<int>{0, 66, 132} : c.B == 16 ? std::vector<int>{0, 9}
                                                                                 : std::vector<int>{0, 3};
        for (int f : forced) {
            if (f > 0) setenv("VOLT_ATTENTION_DECODE_SPLITS", std::to_string(f).c_str(), 1);
            const size_t ws_bytes = vc::attention_workspace_bytes(p);
            void* ws = dalloc<char>(ws_bytes);
            p.workspace = ws, p.workspace_bytes = ws_bytes;
            auto fn = [&](int) { CHECK_STATUS(vc::run(p, nullptr)); };
            const double ms = median_ms(fn, 5, 50), fms = flush_ms(fn, 5, 100);
            const int splits = ws_bytes == 0 ? 1
                                             : static_cast<int>(ws_bytes / (size_t(c.B) * Hq * (kD + 1) * sizeof(float)));
            emitf("{\"op\": \"attn_decode\", \"B\": %d, \"L\": %lld, \"Hq\": %d, \"Hkv\": %d, \"ms\": %.4f, "
                  "\"ms_flush\": %.4f, \"tbps\": %.3f, \"tbps_flush\": %.3f, \"workspace_mb\": %.1f, "
                  "\"splits\": %d, \"forced\": %s}",
                  c.B, (long long)c.L, Hq, Hkv, ms, fms, bytes / ms / 1e9, bytes / fms / 1e9, ws_bytes / 1048576.0,
                  splits, f > 0 ? "true" : "false");
            dfree(ws);
            if (f > 0) unsetenv("VOLT_ATTENTION_DECODE_SPLITS");
        }
        dfree(q, kk, v, o, dlens, dstart);
    }
}

// ---- small kernels ------------------------------------------------------------------------------------------------
void bench_sampling();
void bench_small() {
    const int64_t T = 8192, W = 6144;
    {
        __nv_bfloat16* x = rand_bf16(T * W, 41);
        __nv_bfloat16* r = rand_bf16(T * W, 42);
        __nv_bfloat16* w = rand_bf16(W, 43);
        auto* out = dalloc<__nv_bfloat16>(T * W);
        auto* sum = dalloc<__nv_bfloat16>(T * W);
        vc::RmsNormParams p;
        p.num_tokens = T, p.width = W, p.x = x, p.x_stride = W, p.residual = r, p.residual_stride = W;
        p.residual_alpha = 3.5566f, p.weight = w, p.out = out, p.out_stride = W, p.sum_out = sum, p.sum_stride = W;
        const double ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 5, 50);
        emitf("{\"op\": \"rms_norm_residual\", \"T\": %lld, \"W\": %lld, \"ms\": %.4f, \"tbps\": %.3f}",
              (long long)T, (long long)W, ms, 4.0 * 2 * T * W / ms / 1e9);
        __nv_bfloat16* q = rand_bf16(T * 64 * kD, 44);
        __nv_bfloat16* kh = rand_bf16(T * 8 * kD, 45);
        vc::RopeParams rp;
        rp.num_tokens = T, rp.head_dim = kD, rp.rotary_dim = 64, rp.theta = 1e7, rp.start_position = 100000;
        rp.x = q, rp.num_heads = 64, rp.stride_token = 64 * kD, rp.stride_head = kD;
        rp.x2 = kh, rp.num_heads2 = 8, rp.stride_token2 = 8 * kD, rp.stride_head2 = kD;
        const double rms = median_ms([&](int) { CHECK_STATUS(vc::run(rp, nullptr)); }, 5, 50);
        // Bytes touched: the rotated halves only (read + write).
        emitf("{\"op\": \"rope\", \"T\": %lld, \"heads\": 72, \"ms\": %.4f, \"tbps\": %.3f}", (long long)T, rms,
              2.0 * 2 * T * 72 * 64 / rms / 1e9);
        dfree(q, kh);
        vc::SwigluParams sp;
        sp.rows = T / 2, sp.width = W, sp.gate = x, sp.gate_stride = 2 * W, sp.up = x + W, sp.up_stride = 2 * W;
        sp.out = out, sp.out_stride = W;
        const double sms = median_ms([&](int) { CHECK_STATUS(vc::run(sp, nullptr)); }, 5, 50);
        emitf("{\"op\": \"swiglu\", \"rows\": %lld, \"I\": %lld, \"ms\": %.4f, \"tbps\": %.3f}", (long long)(T / 2),
              (long long)W, sms, 3.0 * 2 * (T / 2) * W / sms / 1e9);
        dfree(x, r, w, out, sum);
    }
    const int64_t V = 200064;
    {
        __nv_bfloat16* table = rand_bf16(V * W, 51);
        std::vector<int32_t> ids(T);
        for (int64_t t = 0; t < T; ++t) ids[t] = static_cast<int32_t>((t * 7919) % V);
        auto* dids = dalloc<int32_t>(T);
        CHECK(cudaMemcpy(dids, ids.data(), T * 4, cudaMemcpyHostToDevice));
        auto* out = dalloc<__nv_bfloat16>(T * W);
        vc::EmbeddingParams p{.num_tokens = T, .ids = dids, .vocab_size = V, .hidden = W, .table = table,
                              .out = out, .out_stride = W};
        const double ms = median_ms([&](int) { CHECK_STATUS(vc::run(p, nullptr)); }, 5, 50);
        emitf("{\"op\": \"embedding\", \"T\": %lld, \"H\": %lld, \"ms\": %.4f, \"tbps\": %.3f}", (long long)T,
              (long long)W, ms, 2.0 * 2 * T * W / ms / 1e9);
        dfree(table, dids, out);
    }
    bench_sampling();
}

void bench_sampling() {
    const int64_t V = 200064;
    {
        const int64_t N = 64;
        auto* logits = dalloc<float>(N * V);
        fill_gaussian_f32<<<4096, 256>>>(logits, N * V, 61, 3.0f);
        CHECK(cudaGetLastError());
        std::vector<double> u(N);
        for (int64_t i = 0; i < N; ++i) u[i] = (i * 0.618033988749895) - std::floor(i * 0.618033988749895);
        auto* du = dalloc<double>(N);
        CHECK(cudaMemcpy(du, u.data(), N * 8, cudaMemcpyHostToDevice));
        auto* out = dalloc<int32_t>(N);
        struct Mode {
            const char* name;
            volt::SamplingParams s;
        };
        const Mode modes[] = {{"greedy", {.temperature = 0.0f}},
                              {"top_k50", {.temperature = 0.8f, .top_k = 50}},
                              {"top_p0.9", {.temperature = 0.8f, .top_p = 0.9f}},
                              {"top_k50_top_p0.9", {.temperature = 0.8f, .top_k = 50, .top_p = 0.9f}},
                              {"top_k5000_full_sort", {.temperature = 0.8f, .top_k = 5000}}};
        for (const Mode& m : modes) {
            vc::SampleParams p;
            p.num_rows = N, p.vocab_size = V, p.logits = logits, p.logits_stride = V, p.sampling = m.s;
            p.uniform = du, p.out_ids = out;
            const size_t ws_bytes = vc::sample_workspace_bytes(p);
            void* ws = dalloc<char>(ws_bytes);
            p.workspace = ws, p.workspace_bytes = ws_bytes;
            auto fn = [&](int) { CHECK_STATUS(vc::run(p, nullptr)); };
            const double ms = median_ms(fn, 3, 20), fms = flush_ms(fn, 3, 50);
            emitf("{\"op\": \"sample\", \"mode\": \"%s\", \"N\": %lld, \"V\": %lld, \"ms\": %.4f, "
                  "\"ms_flush\": %.4f, \"tbps\": %.3f}",
                  m.name, (long long)N, (long long)V, ms, fms, 4.0 * N * V / ms / 1e9);
            dfree(ws);
        }
        dfree(logits, du, out);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string json_path, only;
    bool quick = false;
    std::vector<int64_t> moe_tokens;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        // Comma-separated parts: gemm,gelu,moe,prefill,prefill_cudnn,prefill_ragged,decode,small,sample,vit_attn,
        // blocks,turn,overlap (default: all but the subsets gelu, prefill_cudnn, sample, which run inside gemm,
        // prefill, small, and the experiments blocks (1M keys), turn (a chat turn after a long prefix: own kernel vs
        // cuDNN) and overlap (a prefill piece and decode steps on two streams)).
        if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        // Comma-separated MoE batch sizes (e.g. 1,64), for a profiler run of one shape.
        if (!std::strcmp(argv[i], "--moe-tokens") && i + 1 < argc)
            for (std::string_view list = argv[++i]; !list.empty();) {
                const size_t comma = list.find(',');
                moe_tokens.push_back(std::atoll(std::string(list.substr(0, comma)).c_str()));
                if (moe_tokens.back() <= 0) {
                    std::fprintf(stderr, "--moe-tokens: expected positive batch sizes, e.g. 1,64\n");
                    return 2;
                }
                list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
            }
    }
    if (!json_path.empty()) json_file() = std::fopen(json_path.c_str(), "w");
    cudaDeviceProp prop{};
    CHECK(cudaGetDeviceProperties(&prop, 0));
    emitf("{\"op\": \"device\", \"name\": \"%s\", \"sms\": %d, \"l2_mb\": %.1f, \"cudnn\": %s}", prop.name,
          prop.multiProcessorCount, prop.l2CacheSize / 1048576.0, vc::cudnn_attention_available() ? "true" : "false");
    {
        const size_t bytes = size_t{2} << 30;
        void *src = nullptr, *dst = nullptr;
        CHECK(cudaMalloc(&src, bytes));
        CHECK(cudaMalloc(&dst, bytes));
        fill_normal<<<1024, 256>>>(static_cast<__nv_bfloat16*>(src), bytes / 2, 1, 1.0f);
        CHECK(cudaGetLastError());
        const double ms =
            median_ms([&](int) { CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice)); }, 3, 20);
        emitf("{\"op\": \"copy\", \"bytes\": %zu, \"ms\": %.4f, \"tbps\": %.3f}", 2 * bytes, ms, 2.0 * bytes / ms / 1e9);
        dfree(src, dst);
    }
    auto want = [&](const char* s) { return only.empty() || ("," + only + ",").find("," + std::string(s) + ",") != std::string::npos; };
    if (want("gemm")) bench_gemm(quick);
    if (want("gemm") || want("gelu")) bench_gelu_parts();
    if (want("moe")) bench_moe(quick, moe_tokens);
    if (want("decode")) bench_attention_decode(quick);
    if (want("small")) bench_small();
    if (!want("small") && want("sample")) bench_sampling();
    if (want("prefill")) bench_attention_prefill(quick);
    if (!want("prefill") && want("prefill_cudnn")) bench_attention_prefill(quick, true);
    if (want("prefill_ragged")) bench_attention_ragged();
    if (want("vit_attn")) bench_vit_attention();
    if (!only.empty() && want("blocks")) bench_attention_blocks();
    if (!only.empty() && want("turn")) bench_attention_turn();
    if (!only.empty() && want("turn_parts")) bench_attention_turn_parts();
    if (!only.empty() && want("overlap")) bench_overlap();
    if (!only.empty() && want("cudnn_plans")) bench_cudnn_plans();
    if (!only.empty() && want("gemm_algos")) bench_vit_gemm_algos();
    if (!only.empty() && want("decode_gemm_algos")) bench_decode_gemm_algos();
    if (json_file()) std::fclose(json_file());
    return 0;
}
