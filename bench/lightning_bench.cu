// Lightning attention benchmark on the GPU machine (run by scripts/device-test.sh next to the fla anchor and the
// torch copy/GEMM ceilings, tools/lightning_fla_anchor.py). Prints one JSON object per line:
//   {"op": "prefill", "T": 131072, "B": 1, "H": 64, "ms": ..., "bytes": ..., "flops": ...}
// Inputs are random (SiLU of a hashed normal-ish value), never zeros; every size is timed with CUDA events as the
// median of several runs after warm-up; decode rotates state sets so the timed state never sits in L2.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_common.cuh"
#include "kernels/lightning_attention.h"

namespace {

using namespace volt::bench;
constexpr int kD = 128;

}  // namespace

int main(int argc, char** argv) {
    std::string json_path;
    bool quick = false, prefill_only = false, silu = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
        if (!std::strcmp(argv[i], "--quick")) quick = true;
        if (!std::strcmp(argv[i], "--prefill-only")) prefill_only = true;
        if (!std::strcmp(argv[i], "--silu")) silu = true;  // SiLU on load, as the model runs it
    }
    // The prefill kernel variant the library picks (kernels/cuda/lightning_attention.cu reads the same variable).
    const char* variant_env = std::getenv("VOLT_LIGHTNING_PREFILL");
    const std::string variant = variant_env && *variant_env ? variant_env : "tma";
    if (!json_path.empty()) json_file() = std::fopen(json_path.c_str(), "w");
    cudaDeviceProp prop{};
    CHECK(cudaGetDeviceProperties(&prop, 0));
    char line[512];
    std::snprintf(line, sizeof line, "{\"op\": \"device\", \"name\": \"%s\", \"sms\": %d, \"l2_mb\": %.1f}", prop.name,
                  prop.multiProcessorCount, prop.l2CacheSize / 1048576.0);
    emit(line);

    const int H = 64;
    const std::vector<float> slopes = volt::lightning_decay_slopes(0, 80, H);  // layer 0: the strongest decays
    float* d_slope = nullptr;
    CHECK(cudaMalloc(&d_slope, H * sizeof(float)));
    CHECK(cudaMemcpy(d_slope, slopes.data(), H * sizeof(float), cudaMemcpyHostToDevice));

    // ---- device-to-device copy ceiling (bytes read + written) ----
    {
        const size_t bytes = size_t{2} << 30;
        void *src = nullptr, *dst = nullptr;
        CHECK(cudaMalloc(&src, bytes));
        CHECK(cudaMalloc(&dst, bytes));
        fill_activations<<<1024, 256>>>(static_cast<__nv_bfloat16*>(src), bytes / 2, 1);
        CHECK(cudaGetLastError());
        const double ms = median_ms([&](int) { CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice)); },
                                    3, 20);
        std::snprintf(line, sizeof line, "{\"op\": \"copy\", \"bytes\": %zu, \"ms\": %.4f, \"tbps\": %.3f}", 2 * bytes,
                      ms, 2.0 * bytes / ms / 1e9);
        emit(line);
        CHECK(cudaFree(src));
        CHECK(cudaFree(dst));
    }

    // ---- prefill, B = 1, H = 64, D = 128: buffers sized per length (a 64 GiB allocation for the 1M case made the
    // shorter lengths measured in it ~7% slower, so every length gets its own) ----
    {
        std::vector<int64_t> lengths = {8192, 32768, 131072, 1048576};
        if (quick) lengths = {8192, 131072};
        for (int64_t T : lengths) {
            size_t free_b = 0, total_b = 0;
            CHECK(cudaMemGetInfo(&free_b, &total_b));
            const size_t n = static_cast<size_t>(T) * H * kD;
            if (4 * n * 2 + (size_t{1} << 30) > free_b) {
                std::snprintf(line, sizeof line, "{\"op\": \"prefill_skipped\", \"T\": %lld, \"free_gb\": %.1f}",
                              static_cast<long long>(T), free_b / 1e9);
                emit(line);
                continue;
            }
            __nv_bfloat16 *q, *k, *v, *o;
            float* state;
            CHECK(cudaMalloc(&q, n * 2));
            CHECK(cudaMalloc(&k, n * 2));
            CHECK(cudaMalloc(&v, n * 2));
            CHECK(cudaMalloc(&o, n * 2));
            CHECK(cudaMalloc(&state, size_t{H} * kD * kD * 4));
            fill_activations<<<4096, 256>>>(q, n, 11);
            fill_activations<<<4096, 256>>>(k, n, 12);
            fill_activations<<<4096, 256>>>(v, n, 13);
            CHECK(cudaGetLastError());
            CHECK(cudaDeviceSynchronize());
            volt::LightningAttentionParams p;
            p.num_tokens = T;
            p.num_seqs = 1;
            p.num_heads = H;
            p.head_dim = kD;
            p.q = q;
            p.k = k;
            p.v = v;
            p.o = o;
            p.q_stride_token = p.k_stride_token = p.v_stride_token = p.o_stride_token = int64_t{H} * kD;
            p.q_stride_head = p.k_stride_head = p.v_stride_head = p.o_stride_head = kD;
            p.slope = d_slope;
            p.state_out = state;
            p.max_seqlen = T;
            p.silu_inputs = silu;
            const int reps = T >= 1048576 ? 5 : T >= 131072 ? 10 : 30;
            const double ms = median_ms([&](int) { CHECK_STATUS(volt::cuda::run(p, nullptr)); }, 2, reps);
            const double bytes = 4.0 * T * H * kD * 2 + double(H) * kD * kD * 4;
            // Useful FLOPs of the C = 64 chunked form: intra 2 * (C^2/2 + C/2) * D * 2, inter + update 4 * D * D.
            const double flops = double(T) * H * (2.0 * (64 + 1) * kD + 4.0 * kD * kD);
            std::snprintf(line, sizeof line,
                          "{\"op\": \"%s\", \"variant\": \"%s\", \"T\": %lld, \"B\": 1, \"H\": %d, "
                          "\"ms\": %.4f, \"bytes\": %.0f, \"flops\": %.0f, \"tbps\": %.3f, \"tflops\": %.1f}",
                          silu ? "prefill_silu" : "prefill", variant.c_str(), static_cast<long long>(T), H, ms, bytes,
                          flops, bytes / ms / 1e9,
                          flops / ms / 1e9);
            emit(line);
            CHECK(cudaFree(q));
            CHECK(cudaFree(k));
            CHECK(cudaFree(v));
            CHECK(cudaFree(o));
            CHECK(cudaFree(state));
        }
    }

    // ---- prefill with 8 heads (a tensor-parallel shard of the model's 64), T = 128K: one wave of 16 CTAs without
    // context-parallel segments, segments with the workspace the kernel asks for ----
    {
        const int H8 = 8;
        const int64_t T = 131072;
        const size_t n = static_cast<size_t>(T) * H8 * kD;
        __nv_bfloat16 *q, *k, *v, *o;
        float* state;
        CHECK(cudaMalloc(&q, n * 2));
        CHECK(cudaMalloc(&k, n * 2));
        CHECK(cudaMalloc(&v, n * 2));
        CHECK(cudaMalloc(&o, n * 2));
        CHECK(cudaMalloc(&state, size_t{H8} * kD * kD * 4));
        fill_activations<<<4096, 256>>>(q, n, 41);
        fill_activations<<<4096, 256>>>(k, n, 42);
        fill_activations<<<4096, 256>>>(v, n, 43);
        CHECK(cudaGetLastError());
        volt::LightningAttentionParams p;
        p.num_tokens = T;
        p.num_seqs = 1;
        p.num_heads = H8;
        p.head_dim = kD;
        p.q = q;
        p.k = k;
        p.v = v;
        p.o = o;
        p.q_stride_token = p.k_stride_token = p.v_stride_token = p.o_stride_token = int64_t{H8} * kD;
        p.q_stride_head = p.k_stride_head = p.v_stride_head = p.o_stride_head = kD;
        p.slope = d_slope;  // the first 8 of the 64-head slopes: any decay, the speed does not depend on it
        p.state_out = state;
        p.max_seqlen = T;
        const size_t ws_bytes = volt::cuda::prefill_workspace_bytes(p);
        void* ws = nullptr;
        if (ws_bytes) CHECK(cudaMalloc(&ws, ws_bytes));
        for (int cp = 0; cp < 2; ++cp) {
            p.workspace = cp ? ws : nullptr;
            p.workspace_bytes = cp ? ws_bytes : 0;
            const double ms = median_ms([&](int) { CHECK_STATUS(volt::cuda::run(p, nullptr)); }, 2, 10);
            const double bytes = 4.0 * T * H8 * kD * 2 + double(H8) * kD * kD * 4;
            std::snprintf(line, sizeof line,
                          "{\"op\": \"prefill_h8\", \"variant\": \"%s\", \"T\": %lld, \"H\": %d, \"segments\": %s, "
                          "\"workspace_mb\": %.1f, \"ms\": %.4f, \"bytes\": %.0f, \"tbps\": %.3f}",
                          variant.c_str(), static_cast<long long>(T), H8, cp ? "true" : "false",
                          cp ? ws_bytes / 1048576.0 : 0.0, ms, bytes, bytes / ms / 1e9);
            emit(line);
        }
        if (ws) CHECK(cudaFree(ws));
        CHECK(cudaFree(q));
        CHECK(cudaFree(k));
        CHECK(cudaFree(v));
        CHECK(cudaFree(o));
        CHECK(cudaFree(state));
    }

    // ---- decode: B sequences x 64 heads, state rotated over sets so it is read from HBM ----
    for (int B : {1, 8, 64}) {
        if (prefill_only) break;
        const size_t state_elems = static_cast<size_t>(B) * H * kD * kD;
        const int sets = std::max(2, static_cast<int>((size_t{512} << 20) / (state_elems * 4)));  // >= 512 MiB
        const size_t tok = static_cast<size_t>(B) * H * kD;
        __nv_bfloat16 *qkv, *o;
        float* states;
        CHECK(cudaMalloc(&qkv, 3 * tok * 2));
        CHECK(cudaMalloc(&o, tok * 2));
        CHECK(cudaMalloc(&states, sets * state_elems * 4));
        fill_activations<<<256, 256>>>(qkv, 3 * tok, 21);
        fill_state<<<4096, 256>>>(states, sets * state_elems, 22);
        CHECK(cudaGetLastError());
        volt::LightningAttentionParams p;
        p.phase = volt::LightningPhase::kDecode;
        p.num_tokens = B;
        p.num_seqs = B;
        p.num_heads = H;
        p.head_dim = kD;
        p.q = qkv;
        p.k = qkv + tok;
        p.v = qkv + 2 * tok;
        p.o = o;
        p.q_stride_token = p.k_stride_token = p.v_stride_token = p.o_stride_token = int64_t{H} * kD;
        p.q_stride_head = p.k_stride_head = p.v_stride_head = p.o_stride_head = kD;
        p.slope = d_slope;
        // Graph of `calls` back-to-back steps over rotating state sets (what a decode loop issues), timed per call.
        const int calls = 64;
        cudaStream_t s;
        CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        cudaGraph_t graph;
        cudaGraphExec_t exec;
        CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        for (int c = 0; c < calls; ++c) {
            p.state_in = p.state_out = states + (c % sets) * state_elems;
            CHECK_STATUS(volt::cuda::run(p, s));
        }
        CHECK(cudaStreamEndCapture(s, &graph));
        CHECK(cudaGraphInstantiate(&exec, graph, 0));
        Timer t;
        for (int w = 0; w < 3; ++w) CHECK(cudaGraphLaunch(exec, s));
        std::vector<double> ms;
        for (int r = 0; r < 15; ++r) {
            CHECK(cudaEventRecord(t.a, s));
            CHECK(cudaGraphLaunch(exec, s));
            CHECK(cudaEventRecord(t.b, s));
            CHECK(cudaEventSynchronize(t.b));
            float m = 0;
            CHECK(cudaEventElapsedTime(&m, t.a, t.b));
            ms.push_back(m / calls);
        }
        std::sort(ms.begin(), ms.end());
        const double med = ms[ms.size() / 2];
        const double bytes = 2.0 * state_elems * 4 + 4.0 * tok * 2;
        std::snprintf(line, sizeof line,
                      "{\"op\": \"decode\", \"B\": %d, \"H\": %d, \"ms\": %.5f, \"bytes\": %.0f, \"tbps\": %.3f, "
                      "\"state_sets\": %d}",
                      B, H, med, bytes, bytes / med / 1e9, sets);
        emit(line);
        CHECK(cudaGraphExecDestroy(exec));
        CHECK(cudaGraphDestroy(graph));
        CHECK(cudaStreamDestroy(s));
        CHECK(cudaFree(qkv));
        CHECK(cudaFree(o));
        CHECK(cudaFree(states));
    }

    // ---- RMSNorm + gate epilogue: T tokens x 8192 channels ----
    if (!prefill_only) {
        const int64_t T = 16384;
        const int W = H * kD;
        __nv_bfloat16 *x, *g, *w, *y;
        CHECK(cudaMalloc(&x, size_t(T) * W * 2));
        CHECK(cudaMalloc(&g, size_t(T) * W * 2));
        CHECK(cudaMalloc(&y, size_t(T) * W * 2));
        CHECK(cudaMalloc(&w, size_t(W) * 2));
        fill_activations<<<2048, 256>>>(x, size_t(T) * W, 31);
        fill_activations<<<2048, 256>>>(g, size_t(T) * W, 32);
        fill_activations<<<64, 256>>>(w, W, 33);
        CHECK(cudaGetLastError());
        volt::LightningNormGateParams p;
        p.num_tokens = T;
        p.width = W;
        p.o = x;
        p.gate = g;
        p.weight = w;
        p.out = y;
        p.o_stride_token = p.gate_stride_token = p.out_stride_token = W;
        const double ms = median_ms([&](int) { CHECK_STATUS(volt::cuda::run(p, nullptr)); }, 3, 30);
        const double bytes = 3.0 * T * W * 2;
        std::snprintf(line, sizeof line,
                      "{\"op\": \"norm_gate\", \"T\": %lld, \"W\": %d, \"ms\": %.4f, \"bytes\": %.0f, \"tbps\": %.3f}",
                      static_cast<long long>(T), W, ms, bytes, bytes / ms / 1e9);
        emit(line);
        CHECK(cudaFree(x));
        CHECK(cudaFree(g));
        CHECK(cudaFree(y));
        CHECK(cudaFree(w));
    }
    CHECK(cudaFree(d_slope));
    if (json_file()) std::fclose(json_file());
    return 0;
}
