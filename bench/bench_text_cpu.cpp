// CPU benchmark of the MiniMax-Text-01 backbone: prefill and decode tokens/s and the share of wall time spent in
// BLAS (OpenBLAS sgemm/sgemv), for the committed fixture model and a larger synthetic config
// (hidden 1024, 8 layers of which one softmax, 8 experts top-2, 8 heads x 128, vocab 32768, random weights).
// Anchor: the GEMM roofline of this machine, measured in the same run (one big sgemm), so BLAS efficiency can be
// read against it. Prints a markdown table (bench/RESULTS.md, CPU section).
//
// Usage: volt_bench_text_cpu [--fixture DIR] [--no-synthetic] [--quick]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kernels/attention.h"
#include "kernels/ceilings.h"
#include "kernels/gemm.h"
#include "kernels/lightning_attention.h"
#include "sdk/engine/generate.h"
#include "sdk/engine/session.h"
#include "sdk/thread_pool.h"
#include "text/minimax_text_model.h"
#include "text/minimax_text_weights.h"

namespace {

using namespace volt;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

TextConfig synthetic_config() {
    TextConfig c;
    c.model_type = "minimax_text_01";
    c.vocab_size = 32768;
    c.hidden_size = 1024;
    c.num_layers = 8;
    c.num_heads = 8;
    c.num_kv_heads = 1;  // GQA group 8, as Text-01 (64 / 8)
    c.head_dim = 128;
    c.intermediate_size = 1536;  // 1.5 x hidden, as Text-01 (9216 / 6144)
    c.num_experts = 8;
    c.experts_per_token = 2;
    c.rotary_dim = 64;
    c.rope_theta = 1e7;
    c.max_position_embeddings = 65536;
    c.softmax_alpha = c.lightning_alpha = c.mlp_alpha = std::pow(2.0 * 8, 0.25);  // DeepNorm (2L)^(1/4)
    for (int l = 0; l < c.num_layers; ++l) c.layer_kinds.push_back((l + 1) % 8 == 0 ? LayerKind::kSoftmax : LayerKind::kLightning);
    return c;
}

// Random fp32 weights with the fixture script's scales: N(0,1)-like embedding, 1/sqrt(fan_in) linears, norms ~1.
Expected<std::unique_ptr<MiniMaxTextModel>> synthetic_model(const TextConfig& c) {
    std::unordered_map<std::string, Tensor> w;
    uint64_t seed = 1;
    for (const WeightSpec& s : minimax_text_weight_specs(c)) {
        VOLT_ASSIGN_OR_RETURN(Tensor t, Tensor::empty(s.shape, DType::kF32));
        const bool norm = s.shape.rank() == 1;
        const float scale = norm ? 0.1f
                            : s.component == WeightComponent::kEmbedding ? 1.0f
                                                                          : 1.0f / std::sqrt(float(s.shape[1]));
        float* p = t.data_as<float>();
        const int64_t n = t.numel();
        const uint64_t base = seed++ * 0x9E3779B97F4A7C15ull;
        ThreadPool::global().parallel_for(n, [&](int64_t i0, int64_t i1) {
            uint64_t x = base ^ (uint64_t(i0) * 0xBF58476D1CE4E5B9ull) ^ 0x94D049BB133111EBull;
            for (int64_t i = i0; i < i1; ++i) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
                const float u = float(x >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;  // [-1, 1)
                p[i] = (norm ? 1.0f : 0.0f) + scale * 1.7320508f * u;  // uniform with std = scale
            }
        }, 1 << 16);
        w.emplace(s.name, std::move(t));
    }
    return MiniMaxTextModel::from_tensors(c, w, "synthetic");
}

struct Row {
    std::string model, phase;
    int64_t tokens = 0;
    double seconds = 0, blas_seconds = 0, blas_gflop = 0;
    double weight_bytes_per_token = 0;  // decode: fp32 weights a step reads (attention, router, top-k experts, lm_head)
};

// fp32 bytes of the weights one decode step touches.
double active_weight_bytes(const TextConfig& c) {
    const double H = double(c.hidden_size), W = double(c.num_heads * c.head_dim), KV = double(c.num_kv_heads * c.head_dim);
    double params = 0;
    for (LayerKind k : c.layer_kinds) {
        params += k == LayerKind::kLightning ? 3 * W * H + W * H + H * W : W * H + 2 * KV * H + H * W;
        params += double(c.num_experts) * H + double(c.experts_per_token) * 3 * double(c.intermediate_size) * H;
    }
    params += double(c.vocab_size) * H;  // lm_head
    return params * 4;
}

void print_row(const Row& r) {
    const double tps = r.tokens / r.seconds;
    char gbs[32] = "-";
    if (r.weight_bytes_per_token > 0) std::snprintf(gbs, sizeof gbs, "%.1f", r.weight_bytes_per_token * tps / 1e9);
    std::printf("| %s | %s | %lld | %.3f | %.1f | %.0f%% | %.1f | %.1f | %s |\n", r.model.c_str(), r.phase.c_str(),
                (long long)r.tokens, r.seconds, tps, 100.0 * r.blas_seconds / r.seconds,
                r.blas_seconds > 0 ? r.blas_gflop / r.blas_seconds : 0.0, r.blas_gflop / r.seconds, gbs);
    std::fflush(stdout);
}

// Prefill `n` random tokens (fresh session), best of `reps`.
Row bench_prefill(const std::string& name, const MiniMaxTextModel& m, int64_t n, int reps) {
    std::mt19937 g(7);
    std::vector<int32_t> ids(n);
    for (auto& x : ids) x = int32_t(g() % m.vocab_size());
    Row best{name, "prefill", n, 1e30};
    for (int r = 0; r < reps; ++r) {
        auto s = Session::create(m);
        cpu::reset_blas_stats();
        auto t0 = clock_type::now();
        auto out = s->append(ids, LogitsMode::kLast);
        const double dt = seconds_since(t0);
        if (!out) {
            std::fprintf(stderr, "prefill failed: %s\n", out.status().to_string().c_str());
            std::exit(1);
        }
        if (dt < best.seconds) best = {name, "prefill", n, dt, cpu::blas_stats().seconds, cpu::blas_stats().flops / 1e9};
    }
    return best;
}

// Greedy decode after a `context`-token prompt; times the decode steps only.
Row bench_decode(const std::string& name, const MiniMaxTextModel& m, int64_t context, int64_t steps) {
    std::mt19937 g(8);
    std::vector<int32_t> ids(context);
    for (auto& x : ids) x = int32_t(g() % m.vocab_size());
    auto s = Session::create(m);
    if (!s->prefill(ids)) std::exit(1);
    std::vector<int32_t> next = {1};
    // Three windows of `steps` greedy steps; the fastest window is reported (the machine is shared).
    Row best{name, "decode @" + std::to_string(context), steps, 1e30, 0, 0, active_weight_bytes(m.config())};
    for (int w = 0; w < 3; ++w) {
        cpu::reset_blas_stats();
        auto t0 = clock_type::now();
        for (int64_t i = 0; i < steps; ++i) {
            auto l = s->append(next, LogitsMode::kLast);
            if (!l) std::exit(1);
            next[0] = int32_t(std::max_element(l->data_as<float>(), l->data_as<float>() + m.vocab_size()) -
                              l->data_as<float>());
        }
        const double dt = seconds_since(t0);
        if (dt < best.seconds) best.seconds = dt, best.blas_seconds = cpu::blas_stats().seconds,
                               best.blas_gflop = cpu::blas_stats().flops / 1e9;
    }
    return best;
}

// The 1-minute load average: this machine is shared, so every table says how busy it was.
std::string loadavg() {
    std::FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f) return "?";
    char buf[64] = {};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string s(buf, n);
    return s.substr(0, s.find(' '));
}

// The non-BLAS ops of one synthetic prefill of T tokens, timed alone at the model's shapes (best of 3): where the
// time outside BLAS goes. Inputs are random; costs do not depend on values (except denormals, noted in RESULTS).
void op_breakdown(const TextConfig& c, int64_t T) {
    const int64_t Hq = c.num_heads, D = c.head_dim, W = Hq * D, Hkv = c.num_kv_heads;
    std::vector<float> qkv(T * 3 * W), o(T * W), q(T * W), k(T * Hkv * D), v(T * Hkv * D);
    std::mt19937 g(3);
    std::uniform_real_distribution<float> u(-1, 1);
    for (auto* buf : {&qkv, &q, &k, &v})
        for (auto& x : *buf) x = u(g);
    std::vector<float> state(Hq * D * D, 0.0f);
    const auto slopes = lightning_decay_slopes(0, int(c.num_layers), int(Hq));
    auto best = [](auto&& fn) {
        double b = 1e30;
        for (int r = 0; r < 3; ++r) {
            auto t0 = clock_type::now();
            fn();
            b = std::min(b, seconds_since(t0));
        }
        return b;
    };
    const double lightning = best([&] {
        LightningAttentionParams p;
        p.dtype = DType::kF32;
        p.silu_inputs = true;
        p.num_tokens = T, p.num_seqs = 1, p.num_heads = int(Hq), p.head_dim = int(D);
        p.q = qkv.data(), p.k = qkv.data() + D, p.v = qkv.data() + 2 * D;
        p.q_stride_token = p.k_stride_token = p.v_stride_token = 3 * W;
        p.q_stride_head = p.k_stride_head = p.v_stride_head = 3 * D;
        p.o = o.data(), p.o_stride_token = W, p.o_stride_head = D;
        p.slope = slopes.data(), p.state_in = state.data(), p.state_out = state.data();
        (void)cpu::lightning_attention(p);
    });
    const double attention = best([&] {
        (void)cpu::attention({.num_tokens = T, .past_len = 0, .num_heads = int(Hq), .num_kv_heads = int(Hkv),
                              .head_dim = int(D), .scale = 1.0f / std::sqrt(float(D)), .q = q.data(),
                              .q_stride_token = W, .q_stride_head = D, .k = k.data(), .k_stride_token = Hkv * D,
                              .k_stride_head = D, .v = v.data(), .v_stride_token = Hkv * D, .v_stride_head = D,
                              .o = o.data(), .o_stride_token = W, .o_stride_head = D});
    });
    const int64_t nl = c.num_lightning_layers(), ns = c.num_softmax_layers();
    std::printf("\nnon-BLAS ops of one %lld-token prefill (each timed alone, best of 3):\n", (long long)T);
    std::printf("  lightning_attention (CPU op, 1 layer): %.3f s  x %lld layers = %.3f s\n", lightning, (long long)nl,
                lightning * nl);
    std::printf("  softmax attention   (1 layer):         %.3f s  x %lld layers = %.3f s\n", attention, (long long)ns,
                attention * ns);
}

}  // namespace

int main(int argc, char** argv) {
    std::string fixture = VOLT_TEST_DATA_DIR "/tiny-text";
    bool synthetic = true, quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--fixture") && i + 1 < argc) fixture = argv[++i];
        else if (!std::strcmp(argv[i], "--no-synthetic")) synthetic = false;
        else if (!std::strcmp(argv[i], "--quick")) quick = true;
        else {
            std::fprintf(stderr, "usage: %s [--fixture DIR] [--no-synthetic] [--quick]\n", argv[0]);
            return 2;
        }
    }
    std::printf("threads: volt pool %d, OpenBLAS %d, hardware %u\n", ThreadPool::global().num_threads(),
                cpu::blas_threads(), std::thread::hardware_concurrency());
    std::printf("load average at start: %s\n", loadavg().c_str());
    std::printf("anchor: sgemm 1024^3 = %.1f GFLOP/s (best of 5); read bandwidth %.1f GB/s (512 MiB, best of 3)\n\n",
                cpu::measure_sgemm_gflops(1024, 5), cpu::measure_read_gbs());
    std::printf("| model | phase | tokens | seconds | tokens/s | BLAS share | GFLOP/s in BLAS | GEMM GFLOP/s over wall | "
                "weights GB/s |\n|---|---|---|---|---|---|---|---|---|\n");

    auto tiny = MiniMaxTextModel::load(fixture);
    if (!tiny) {
        std::fprintf(stderr, "%s\n", tiny.status().to_string().c_str());
        return 3;
    }
    for (int64_t n : {256, 600}) print_row(bench_prefill("tiny-text", **tiny, n, 5));
    print_row(bench_decode("tiny-text", **tiny, 256, 128));

    if (synthetic) {
        const TextConfig c = synthetic_config();
        auto t0 = clock_type::now();
        auto big = synthetic_model(c);
        if (!big) {
            std::fprintf(stderr, "%s\n", big.status().to_string().c_str());
            return 3;
        }
        std::fprintf(stderr, "synthetic model built in %.1f s\n", seconds_since(t0));
        const std::string name = "synthetic-1024x8";
        for (int64_t n : quick ? std::vector<int64_t>{128} : std::vector<int64_t>{128, 512, 2048})
            print_row(bench_prefill(name, **big, n, quick ? 1 : 3));
        print_row(bench_decode(name, **big, quick ? 128 : 512, quick ? 8 : 16));
        op_breakdown(c, quick ? 128 : 2048);
    }
    std::printf("\nload average at end: %s\n", loadavg().c_str());
    return 0;
}
