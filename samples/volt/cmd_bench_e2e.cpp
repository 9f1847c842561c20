// volt bench e2e --synthetic CONFIG [--layers N] --device cuda [--gpus G [--experts auto|sliced|spread|replicated]]
//                [--expert-weights bf16|fp8|int8 | --fp8-experts]
//                [--prompt-tokens T]...
//                [--decode-context C] [--decode-steps S] [--decode-batch B]... [--turn-tokens N]...
//                [--reps R] [--warmup W] [--json F]
// The text backbone end to end on one GPU, or split over G (text/parallel_mapping.h), with random bf16 weights
// generated on the GPUs (no files), at any geometry:
// CONFIG is "minimax-text-01" (the real geometry) or a config.json (file or model directory); --layers N keeps the
// first N layers of the period (N < 8: the last one is the softmax layer, so 2 = one lightning + one softmax, as the
// transformers anchor in issue 12; 8 = one 7 + 1 period). Reports prefill time and rate per prompt length and the
// decode step at a context, against the GPU's GEMM and copy ceilings measured in the same run; --turn-tokens: chat
// turns of about N tokens after that context (each a different length, each extending the conversation, as in a chat).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "samples/volt/cli.h"
#include "sdk/config.h"
#include "sdk/env.h"
#include "sdk/engine/session.h"
#include "text/backbone.h"
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include "kernels/gemm_cuda.h"
#include "kernels/random_fill_cuda.h"
#include "samples/volt/gpu_ceilings.h"
#include "sdk/cuda_check.h"
#include "sdk/cuda_memory.h"
#include "text/cuda/minimax_text_model_cuda.h"
#endif

namespace volt::cli {
namespace {

struct E2eOptions {
    std::string synthetic, json;
    int64_t layers = 0, decode_context = 4096, decode_steps = 32;
    std::vector<int64_t> prompt_tokens{8192, 32768};
    std::vector<int64_t> decode_batch;  // batched decode steps (continuous batching) of this many sequences
    std::vector<int64_t> turn_tokens;   // chat turns of this many tokens after the decode context
    int reps = 3;
    DeviceFlags where{.device = "cuda"};  // --device (cuda only), --gpus, --gpu-ids
    int warmup = 1;  // untimed runs of each prefill before the timed ones
    std::string experts = "auto";  // where a split model keeps its experts
    ExpertWeightsFlags experts_flags;  // --expert-weights, --fp8-experts
    double unit_flops = 2e13;                 // CudaTextModelOptions::max_unit_flops
    std::vector<double> cancel_at{0.5};       // stop the longest prefill at these fractions of its time
};

// MiniMax-Text-01's geometry (minimax01-architecture.md §0; config.json of MiniMaxAI/MiniMax-Text-01).
TextConfig minimax_text_01_config() {
    TextConfig c;
    c.model_type = "minimax_text_01";
    c.vocab_size = 200064;
    c.hidden_size = 6144;
    c.num_layers = 80;
    c.num_heads = 64;
    c.num_kv_heads = 8;
    c.head_dim = 128;
    c.rotary_dim = 64;
    c.rope_theta = 10000000.0;
    c.intermediate_size = 9216;
    c.num_experts = 32;
    c.experts_per_token = 2;
    c.max_position_embeddings = 10240000;
    c.softmax_alpha = c.lightning_alpha = c.mlp_alpha = 3.5565588200778455;  // (2 * 80)^(1/4)
    for (int l = 0; l < 80; ++l) c.layer_kinds.push_back((l + 1) % 8 == 0 ? LayerKind::kSoftmax : LayerKind::kLightning);
    return c;
}

Expected<TextConfig> synthetic_config(const E2eOptions& o) {
    TextConfig c;
    if (o.synthetic == "minimax-text-01") {
        c = minimax_text_01_config();
    } else {
        std::filesystem::path p = o.synthetic;
        if (std::filesystem::is_directory(p)) p /= "config.json";
        std::ifstream in(p);
        if (!in) return not_found(p.string(), ": no such config (or use --synthetic minimax-text-01)");
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        VOLT_ASSIGN_OR_RETURN(ModelConfig mc, parse_model_config_text(text, p.string()));
        c = mc.text;
    }
    if (o.layers < 0 || o.layers > c.num_layers)
        return invalid_argument("--layers ", o.layers, ": the config has ", c.num_layers, " layers");
    if (o.layers > 0 && o.layers < c.num_layers) {
        c.layer_kinds.resize(static_cast<size_t>(o.layers));
        if (o.layers < 8) {  // keep one softmax layer: the period's last
            std::fill(c.layer_kinds.begin(), c.layer_kinds.end(), LayerKind::kLightning);
            c.layer_kinds.back() = LayerKind::kSoftmax;
        }
        c.num_layers = o.layers;
    }
    return c;
}

#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA

using clock_type = std::chrono::steady_clock;
constexpr int64_t kTurnLengthStep = 7;  // --turn-tokens N: turn r of the series has N + 7 r tokens
double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

// Weights the linear layers of one token touch (batch 1: top-k experts per layer), in parameters.
double linear_params_per_token(const TextConfig& c) {
    const double H = double(c.hidden_size), W = double(c.num_heads * c.head_dim), KV = double(c.num_kv_heads * c.head_dim);
    double p = 0;
    for (LayerKind k : c.layer_kinds) {
        p += k == LayerKind::kLightning ? 3 * W * H + W * H + H * W : W * H + 2 * KV * H + H * W;
        p += double(c.experts_per_token) * 3 * double(c.intermediate_size) * H;
    }
    return p;
}

Status bench_e2e(const E2eOptions& o) {
    VOLT_ASSIGN_OR_RETURN(TextConfig c, synthetic_config(o));
    if (o.where.device != "cuda") return unimplemented("volt bench e2e runs on the GPU (--device cuda)");
    if (o.reps < 1 || o.decode_context < 1 || o.decode_steps < 1)
        return invalid_argument("--reps, --decode-context and --decode-steps must be >= 1");
    if (o.warmup < 0) return invalid_argument("--warmup ", o.warmup, " must be >= 0");
    for (double f : o.cancel_at)
        if (!(f > 0.0 && f < 1.0)) return invalid_argument("--cancel-at ", f, " must be a fraction in (0, 1)");
    for (int64_t B : o.decode_batch)
        if (B < 1 || B > 4096) return invalid_argument("--decode-batch ", B, " must be in [1, 4096]");
    for (int64_t N : o.turn_tokens)
        if (N < 1 || N > 1048576) return invalid_argument("--turn-tokens ", N, " must be in [1, 1048576]");
    if (cuda_device_count() == 0) return invalid_argument("volt bench e2e: this machine has no CUDA GPU");
    VOLT_ASSIGN_OR_RETURN(const DeviceChoice dc, device_choice(o.where));
    VOLT_ASSIGN_OR_RETURN(const ExpertWeights weights, expert_weights(o.experts_flags));
    ExpertPlacement experts = ExpertPlacement::kAuto;  // --experts, by expert_placement_name (checked by CLI11)
    for (ExpertPlacement e : kExpertPlacements)
        if (o.experts == expert_placement_name(e)) experts = e;
    const CudaTextModelOptions options{.device = dc.device.index, .gpus = dc.gpus, .device_ids = dc.gpu_ids,
                                       .experts = experts, .expert_weights = weights,
                                       .max_unit_flops = o.unit_flops};
    VOLT_ASSIGN_OR_RETURN(const std::vector<int> devices, MiniMaxTextModelCuda::local_devices(options));
    const int gpus = dc.gpus, gpu0 = devices.front();
    for (int64_t t : o.prompt_tokens)
        if (t < 1 || t > c.max_position_embeddings) return invalid_argument("--prompt-tokens ", t, " is out of range");
    VOLT_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu0));
    VOLT_ASSIGN_OR_RETURN(Ceilings ceil, measure_gpu_ceilings(gpu0));
    const auto load0 = clock_type::now();
    VOLT_ASSIGN_OR_RETURN(auto model, MiniMaxTextModelCuda::synthetic(c, options, 7));
    for (int d : devices) {
        VOLT_CUDA_RETURN_IF_ERROR(cudaSetDevice(d));
        VOLT_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
    }
    VOLT_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu0));
    const double load_s = seconds_since(load0);
    cudaDeviceProp prop{};
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, gpu0));

    nlohmann::ordered_json j;
    j["bench"] = "e2e";
    j["gpu"] = prop.name;
    j["config"] = o.synthetic;
    j["layers"] = c.num_layers;
    j["softmax_layers"] = c.num_softmax_layers();
    j["gpus"] = gpus;
    j["gpu_ids"] = devices;
    const ExpertPlacement placement = MiniMaxTextModelCuda::expert_placement(c, options);
    j["experts"] = expert_placement_name(placement);
    j["expert_weights"] = weights == ExpertWeights::kFp8    ? "fp8_e4m3_block128"
                          : weights == ExpertWeights::kInt8 ? "int8_block128"
                                                            : "bf16";
    j["ceilings"] = {{"gemm_tflops", ceil.gemm_tflops}, {"copy_tbs", ceil.copy_tbs}};
    j["synthetic_weights_seconds"] = load_s;
    std::printf("| e2e (%s, %lld layers, %d x %s%s%s) | value |\n|---|---|\n", o.synthetic.c_str(),
                (long long)c.num_layers, gpus, prop.name,
                weights == ExpertWeights::kBf16 ? "" : (std::string(", ") + expert_weights_name(weights) + " experts").c_str(),
                gpus == 1 ? "" : (std::string(", experts ") + expert_placement_name(placement)).c_str());
    std::printf("| ceiling: bf16 GEMM 8192^3 (cuBLASLt, best of 5) | %.0f TFLOP/s |\n", ceil.gemm_tflops);
    std::printf("| ceiling: device copy 1 GiB (best of 5) | %.2f TB/s |\n", ceil.copy_tbs);

    const double gemm_flops_per_token = 2.0 * linear_params_per_token(c);
    std::mt19937 g(11);
    nlohmann::ordered_json prefill = nlohmann::ordered_json::array();
    for (int64_t T : o.prompt_tokens) {
        std::vector<int32_t> ids(static_cast<size_t>(T));
        for (auto& x : ids) x = int32_t(g() % uint32_t(c.vocab_size));
        double best = 1e30;
        for (int r = 0; r < o.warmup + o.reps; ++r) {  // warm-ups build plans and fill the allocator
            VOLT_ASSIGN_OR_RETURN(SequenceCache cache, model->new_cache(T));
            const auto t0 = clock_type::now();
            VOLT_ASSIGN_OR_RETURN(Tensor logits, model->forward(ids, cache, LogitsMode::kLast));
            if (r >= o.warmup) best = std::min(best, seconds_since(t0));
        }
        // FLOPs: the linear layers, plus softmax attention's causal QK^T and PV (lightning's core is not counted).
        const double attn = double(c.num_softmax_layers()) * 2.0 * 2.0 * double(T) * double(T) / 2.0 *
                            double(c.num_heads * c.head_dim);
        const double flops = gemm_flops_per_token * double(T) + attn + 2.0 * double(c.vocab_size) * c.hidden_size;
        const double tflops = flops / best / 1e12;
        const double ceiling = ceil.gemm_tflops * gpus;  // G GPUs: G times one GPU's measured ceiling
        prefill.push_back({{"tokens", T}, {"ms", best * 1e3}, {"tokens_per_second", double(T) / best},
                           {"tflops", tflops}, {"fraction_of_gemm", tflops / ceiling}});
        std::printf("| prefill %lld tokens (best of %d) | %.1f ms, %.0f tok/s, %.0f TFLOP/s = %.0f%% of %s GEMM |\n",
                    (long long)T, o.reps, best * 1e3, double(T) / best, tflops, 100 * tflops / ceiling,
                    gpus > 1 ? "the GPUs'" : "the");
        std::fflush(stdout);
    }
    j["prefill"] = prefill;

    // Stop latency: cancel the longest prefill at the --cancel-at fractions of its time (from another thread, as the
    // desktop app's Stop does) and time from the request to forward() returning CANCELLED; the longest of them is
    // the figure (a stop waits for the unit running and the one queued, so where it lands matters). The decode below
    // then runs on the same model.
    {
        const int64_t T = *std::max_element(o.prompt_tokens.begin(), o.prompt_tokens.end());
        double prefill_ms = 0.0;
        for (const auto& p : prefill)
            if (p["tokens"].get<int64_t>() == T) prefill_ms = p["ms"].get<double>();
        nlohmann::ordered_json cancels = nlohmann::ordered_json::array();
        double worst_ms = 0.0;
        for (double f : o.cancel_at) {
            std::vector<int32_t> ids(static_cast<size_t>(T));
            for (auto& x : ids) x = int32_t(g() % uint32_t(c.vocab_size));
            VOLT_ASSIGN_OR_RETURN(SequenceCache cache, model->new_cache(T));
            const double after_s = prefill_ms * 1e-3 * f;
            std::atomic<bool> stop{false};
            Status result;
            clock_type::time_point returned;
            std::thread run([&] {
                result = model->forward(ids, cache, LogitsMode::kLast, [&] { return stop.load(); }).status();
                returned = clock_type::now();
            });
            std::this_thread::sleep_for(std::chrono::duration<double>(after_s));
            const auto asked = clock_type::now();
            stop = true;
            run.join();
            const double latency_ms = std::chrono::duration<double>(returned - asked).count() * 1e3;
            const bool stopped = result.code() == StatusCode::kCancelled;
            worst_ms = std::max(worst_ms, latency_ms);
            cancels.push_back({{"tokens", T}, {"after_ms", after_s * 1e3}, {"stopped", stopped},
                               {"latency_ms", latency_ms}, {"where", result.message()}});
            std::printf("| cancel %lld-token prefill after %.0f ms | %s %.1f ms after the request (%s) |\n",
                        (long long)T, after_s * 1e3, stopped ? "stopped" : "finished (not stopped)", latency_ms,
                        result.message().c_str());
            std::fflush(stdout);
        }
        j["cancel"] = cancels;
        j["cancel_worst_ms"] = worst_ms;
        j["unit_flops"] = o.unit_flops;
    }

    // Decode at a context: one session, prefill, then timed single-token steps (each returns its logits to the host).
    int64_t turn_room = 0;  // each turn series runs 1 + reps turns, all extending the session
    for (int64_t N : o.turn_tokens) turn_room += (1 + o.reps) * (N + kTurnLengthStep * o.reps);
    VOLT_ASSIGN_OR_RETURN(Session s, Session::create(*model, {.max_context = o.decode_context + o.decode_steps + 1 +
                                                                             turn_room}));
    std::vector<int32_t> ctx(static_cast<size_t>(o.decode_context));
    for (auto& x : ctx) x = int32_t(g() % uint32_t(c.vocab_size));
    VOLT_ASSIGN_OR_RETURN(Tensor first, s.append(ctx));
    const int32_t one[1] = {17};
    VOLT_ASSIGN_OR_RETURN(Tensor warm, s.append(one));
    const auto t1 = clock_type::now();
    for (int64_t i = 0; i < o.decode_steps; ++i) {
        VOLT_ASSIGN_OR_RETURN(Tensor step, s.append(one));
    }
    const double step_s = seconds_since(t1) / double(o.decode_steps);
    // Bytes a step of B sequences must read: the attention weights once, the experts the B tokens touch (expected
    // count under uniform top-k routing: E (1 - (1 - k/E)^B)), the lm_head once, and every sequence's KV rows and
    // lightning states (read and written).
    const double kv = double(c.num_softmax_layers()) * double(o.decode_context) * double(c.num_kv_heads * c.head_dim) * 2 * 2;
    const double state = double(c.num_lightning_layers()) * double(c.num_heads * c.head_dim * c.head_dim) * 4 * 2;
    const double expert_params = 3.0 * double(c.intermediate_size) * double(c.hidden_size);
    const double expert_bytes = weights == ExpertWeights::kBf16 ? 2.0 : 1.0;  // quantised: 1 byte per weight
    auto step_bytes = [&](int64_t B) {
        const double E = double(c.num_experts), k = double(c.experts_per_token);
        const double touched = E * (1.0 - std::pow(1.0 - k / E, double(B)));
        return (linear_params_per_token(c) - double(c.num_layers) * k * expert_params) * 2 +
               double(c.num_layers) * touched * expert_params * expert_bytes + double(c.vocab_size) * c.hidden_size * 2 +
               double(B) * (kv + state) + double(c.num_layers) * double(c.num_experts) * c.hidden_size * 4;
    };
    // Split over G GPUs the bytes are read in parallel: the ideal is the single-GPU roofline over G (the touched
    // experts may sit on fewer GPUs than that, so with experts spread this is a lower bound).
    auto roofline_ms = [&](int64_t B) { return step_bytes(B) / (ceil.copy_tbs * 1e12) * 1e3 / gpus; };
    j["decode"] = {{"context", o.decode_context}, {"steps", o.decode_steps}, {"ms_per_token", step_s * 1e3},
                   {"bytes_per_token", step_bytes(1)}, {"roofline_ms", roofline_ms(1)},
                   {"fraction_of_roofline", roofline_ms(1) / (step_s * 1e3)}};
    std::printf("| decode step at %lld context, batch 1, incl. lm_head (%lld steps) | %.2f ms (bytes roofline %.2f ms: "
                "%.0f%%) |\n",
                (long long)o.decode_context, (long long)o.decode_steps, step_s * 1e3, roofline_ms(1),
                100 * roofline_ms(1) / (step_s * 1e3));
    std::fflush(stdout);

    // Batched decode steps (CausalLM::decode, continuous batching): B copies of the session's cache (each read on
    // its own, as B different conversations would be), one token each per step.
    nlohmann::ordered_json batched = nlohmann::ordered_json::array();
    for (int64_t B : o.decode_batch) {
        std::vector<SequenceCache> caches;
        for (int64_t b = 0; b < B; ++b) {
            VOLT_ASSIGN_OR_RETURN(SequenceCache copy, s.cache().clone());
            copy.set_max_tokens(copy.length() + 4 * (o.decode_steps + 1));  // the warm-ups and the four timed loops
            caches.push_back(std::move(copy));
        }
        std::vector<SequenceCache*> ptrs;
        for (auto& cache : caches) ptrs.push_back(&cache);
        std::vector<int32_t> ids(static_cast<size_t>(B));
        for (auto& x : ids) x = int32_t(g() % uint32_t(c.vocab_size));
        VOLT_ASSIGN_OR_RETURN(Tensor warm_b, model->decode(ids, ptrs));
        const auto tb = clock_type::now();
        for (int64_t i = 0; i < o.decode_steps; ++i) {
            VOLT_ASSIGN_OR_RETURN(Tensor step, model->decode(ids, ptrs));
        }
        const double batch_s = seconds_since(tb) / double(o.decode_steps);
        // The step with each next token picked (top-k 50, top-p 0.9, temperature 0.7): on the host from the returned
        // rows (cpu::sample per row) and where the logits are (decode_sample: on the GPU).
        const std::vector<TokenPick> picks(static_cast<size_t>(B),
                                           TokenPick{.sampling = {.temperature = 0.7f, .top_k = 50, .top_p = 0.9f},
                                                     .uniform = 0.5});
        auto host_pick_step = [&]() -> Status {
            VOLT_ASSIGN_OR_RETURN(Tensor rows, model->decode(ids, ptrs));
            for (int64_t b = 0; b < B; ++b) {
                VOLT_RETURN_IF_ERROR(cpu::sample({.logits = rows.data_as<float>() + b * c.vocab_size,
                                                  .vocab_size = c.vocab_size,
                                                  .sampling = picks[0].sampling,
                                                  .uniform = picks[0].uniform})
                                         .status());
            }
            return Status::ok();
        };
        VOLT_RETURN_IF_ERROR(host_pick_step());
        const auto th = clock_type::now();
        for (int64_t i = 0; i < o.decode_steps; ++i) VOLT_RETURN_IF_ERROR(host_pick_step());
        const double host_pick_s = seconds_since(th) / double(o.decode_steps);
        VOLT_RETURN_IF_ERROR(model->decode_sample(ids, ptrs, picks).status());
        // VOLT_BENCH_PROFILE=decode_sample: these timed steps (of the first batch size) are the profiler's window
        // (e.g. `ncu --profile-from-start off`), so a step's kernels can be listed without the prefill's.
        const bool profiled = env_choice_index("VOLT_BENCH_PROFILE", {"decode_sample"}) == 0 && B == o.decode_batch[0];
        if (profiled) VOLT_CUDA_RETURN_IF_ERROR(cudaProfilerStart());
        const auto tg = clock_type::now();
        for (int64_t i = 0; i < o.decode_steps; ++i) VOLT_RETURN_IF_ERROR(model->decode_sample(ids, ptrs, picks).status());
        const double gpu_pick_s = seconds_since(tg) / double(o.decode_steps);
        if (profiled) VOLT_CUDA_RETURN_IF_ERROR(cudaProfilerStop());
        // The same picks with a repetition penalty (1.1): each row's history is its sequence's tokens (the session's,
        // then the id every step so far ran), which the GPU reads from the caches' token records: only the ids cross
        // PCIe. With VOLT_TOKEN_RECORDS=0 every history is sent each step.
        std::vector<std::vector<int32_t>> histories(static_cast<size_t>(B), s.tokens());
        for (int64_t b = 0; b < B; ++b)
            histories[size_t(b)].resize(size_t(caches[size_t(b)].length()), ids[size_t(b)]);
        std::vector<TokenPick> penalised = picks;
        for (TokenPick& p : penalised) p.sampling.repetition_penalty = 1.1f;
        auto penalised_step = [&]() -> Status {
            for (int64_t b = 0; b < B; ++b) {
                histories[size_t(b)].push_back(ids[size_t(b)]);
                penalised[size_t(b)].history = histories[size_t(b)];
            }
            return model->decode_sample(ids, ptrs, penalised).status();
        };
        VOLT_RETURN_IF_ERROR(penalised_step());
        const auto tp = clock_type::now();
        for (int64_t i = 0; i < o.decode_steps; ++i) VOLT_RETURN_IF_ERROR(penalised_step());
        const double penalty_s = seconds_since(tp) / double(o.decode_steps);
        batched.push_back({{"batch", B}, {"context", o.decode_context}, {"ms_per_step", batch_s * 1e3},
                           {"tokens_per_s", double(B) / batch_s}, {"bytes_per_step", step_bytes(B)},
                           {"roofline_ms", roofline_ms(B)}, {"fraction_of_roofline", roofline_ms(B) / (batch_s * 1e3)},
                           {"ms_per_step_host_pick", host_pick_s * 1e3},
                           {"ms_per_step_decode_sample", gpu_pick_s * 1e3},
                           {"ms_per_step_decode_sample_penalty", penalty_s * 1e3}});
        std::printf("| batched decode step, %lld sequences at %lld context, incl. lm_head (%lld steps) | %.2f ms, %.0f "
                    "tok/s (bytes roofline %.2f ms: %.0f%%) |\n",
                    (long long)B, (long long)o.decode_context, (long long)o.decode_steps, batch_s * 1e3,
                    double(B) / batch_s, roofline_ms(B), 100 * roofline_ms(B) / (batch_s * 1e3));
        std::printf("| ... that step + top-k/top-p pick, %lld sequences | host pick %.2f ms, decode_sample %.2f ms "
                    "(%.0f tok/s) |\n",
                    (long long)B, host_pick_s * 1e3, gpu_pick_s * 1e3, double(B) / gpu_pick_s);
        std::printf("| ... with a repetition penalty (histories of %lld tokens) | decode_sample %.2f ms "
                    "(%.0f tok/s) |\n",
                    (long long)histories[0].size(), penalty_s * 1e3, double(B) / penalty_s);
        std::fflush(stdout);
    }
    if (!batched.empty()) j["decode_batched"] = batched;

    // Chat turns after the context: new tokens appended (prefill after the cached prefix, the last token's logits to
    // the host). As in a chat, no two turns have the same length: turn r of the N series has N + 7 r tokens, so a
    // cost paid per new shape shows in every turn. The first turn of a series is timed apart (it may build kernels'
    // plans, e.g. cuDNN graphs for the softmax attention's query bucket); then reps turns, each after the one before.
    nlohmann::ordered_json turns = nlohmann::ordered_json::array();
    for (int64_t N : o.turn_tokens) {
        auto turn = [&](int r) -> Expected<double> {
            std::vector<int32_t> ids(static_cast<size_t>(N + kTurnLengthStep * r));
            for (auto& x : ids) x = int32_t(g() % uint32_t(c.vocab_size));
            const auto t = clock_type::now();
            VOLT_ASSIGN_OR_RETURN(Tensor logits, s.append(ids));
            return seconds_since(t) * 1e3;
        };
        const int64_t before = static_cast<int64_t>(s.tokens().size());
        VOLT_ASSIGN_OR_RETURN(const double first_ms, turn(0));
        std::vector<double> ms;
        for (int r = 1; r <= o.reps; ++r) {
            VOLT_ASSIGN_OR_RETURN(const double t, turn(r));
            ms.push_back(t);
        }
        const std::vector<double> in_order = ms;
        std::sort(ms.begin(), ms.end());
        const double median = ms[ms.size() / 2];
        turns.push_back({{"tokens", N}, {"length_step", kTurnLengthStep}, {"context_before", before},
                         {"first_ms", first_ms}, {"turn_ms", in_order}, {"best_ms", ms.front()}, {"median_ms", median},
                         {"tokens_per_s", double(N) / (median * 1e-3)}});
        std::printf("| chat turns of %lld, %lld, ... tokens after %lld (%d after the first) | first %.1f ms; best %.2f "
                    "ms, median %.2f ms (%.0f tok/s) |\n",
                    (long long)N, (long long)(N + kTurnLengthStep), (long long)before, o.reps, first_ms, ms.front(),
                    median, double(N) / (median * 1e-3));
        std::fflush(stdout);
    }
    if (!turns.empty()) j["turns"] = turns;
    // Batched steps of up to 64 sequences replay CUDA graphs unless VOLT_CUDA_GRAPHS=0 (A/B in one script).
    j["decode_graph_replays"] = model->decode_graph_replays();
    std::printf("| decode steps replayed from CUDA graphs | %zu |\n", model->decode_graph_replays());
    if (!o.json.empty()) {
        std::ofstream out(o.json);
        out << j.dump(2) << "\n";
        if (!out) return invalid_argument(o.json, ": cannot write the JSON report");
    }
    return Status::ok();
}

#else

Status bench_e2e(const E2eOptions& o) {
    VOLT_RETURN_IF_ERROR(synthetic_config(o).status());  // the config errors come first, as on a GPU build
    return unimplemented("volt bench e2e: this build has no CUDA backend (configured without CUDA)");
}

#endif

}  // namespace

CommandRunner add_bench_e2e_command(CLI::App* bench) {
    auto o = std::make_shared<E2eOptions>();
    CLI::App* cmd = bench->add_subcommand("e2e", "The text backbone on one GPU with synthetic weights (no files)");
    cmd->add_option("--synthetic", o->synthetic, "minimax-text-01, or a config.json (file or model directory)")
        ->required();
    cmd->add_option("--layers", o->layers, "Keep the first N layers (N < 8: the last is the softmax layer)");
    cmd->add_option("--prompt-tokens", o->prompt_tokens, "Prefill lengths to time (repeatable)");
    cmd->add_option("--decode-context", o->decode_context, "Context of the timed decode steps");
    cmd->add_option("--decode-steps", o->decode_steps, "Decode steps to time");
    cmd->add_option("--turn-tokens", o->turn_tokens,
                    "Chat turns of N, N + 7, ... tokens to time after the decode context (repeatable)");
    cmd->add_option("--decode-batch", o->decode_batch,
                    "Also time batched decode steps of this many sequences at the same context (repeatable)");
    cmd->add_option("--reps", o->reps, "Repetitions of each prefill (the best is reported)");
    cmd->add_option("--warmup", o->warmup,
                    "Untimed runs of each prefill first (default 1; 0 for prompts so long that plan building is "
                    "noise against their minutes)");
    cmd->add_option("--json", o->json, "Also write the numbers as JSON to this file");
    cmd->add_option("--unit-flops", o->unit_flops,
                    "Longest unit of work between two stop points, flops per GPU (default 2e13)");
    cmd->add_option("--cancel-at", o->cancel_at,
                    "Stop the longest prefill at these fractions of its time (repeatable; default 0.5)");
    add_device_options(cmd, &o->where, "cuda (the only device this command runs on)");
    cmd->add_option("--experts", o->experts,
                    "With --gpus: sliced (every GPU a slice of each expert's intermediate dimension), spread (whole "
                    "experts over the GPUs), replicated (every expert on every GPU) or auto (default: sliced where "
                    "the intermediate size splits into multiples of 8, else spread)")
        ->check(CLI::IsMember({"auto", "sliced", "spread", "replicated"}));
    add_expert_weights_options(cmd, &o->experts_flags);
    return [o, cmd]() -> int {
        if (!cmd->parsed()) return -1;
        Status s = bench_e2e(*o);
        return s.is_ok() ? kExitOk : report_error(s);
    };
}

}  // namespace volt::cli
