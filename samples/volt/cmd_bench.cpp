// volt bench: timings on a real model directory, each read against this machine's ceilings measured in the same run
// (kernels/ceilings.h: one large sgemm, a threaded read of 512 MiB). Prints a markdown table; --json writes the same
// numbers (with the device, the command and the ceilings) for bench/RESULTS.md and tracking.
//   volt bench text   --model DIR [--prompt-tokens N] [--decode-tokens N] [--reps R] [--json F]
//       backbone prefill of N random token ids (best of R) and greedy decode steps after it
//   volt bench vision --model DIR [--image FILE | --size WxH] [--reps R] [--json F]        (MiniMax-VL-01)
//       one 336x336 crop through the ViT, and a whole image through preprocessing, ViT, projector and packing
//   volt bench vision --device cuda (--model DIR | --synthetic vit-l-336) [--crops N]... [--reps R] [--sustain S]
//       [--from-idle N] [--json F]
//       the ViT on the GPU for each crop count (CUDA graphs and eager, best and median of R), N single forwards each
//       after 2 s idle (one image's latency), then S seconds of back-to-back forwards (settled time, joules per
//       forward), against the GPU's GEMM ceiling measured in the same run; with --model also a whole image through
//       the encoder on the GPU. --synthetic: ViT-L/14-336 with random bf16 weights generated on the GPU (no files).
//       Anchor: tools/vit_hf_anchor.py (same shapes).
//   volt bench run    --model DIR [--image FILE]... [--doc FILE]... --prompt TEXT [--max-new-tokens N] [--json F]
//       end to end through a chat session: time to first token, prefill and decode rates
//   volt bench e2e    --synthetic CONFIG [--layers N] --device cuda ...   (cmd_bench_e2e.cpp: GPU, no files)
// Inputs are random (seeded) or the caller's; never zeros. --device cuda answers UNIMPLEMENTED until the CUDA
// backend runs whole models.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/ceilings.h"
#include "kernels/gemm.h"
#include "samples/volt/cli.h"
#include "sdk/engine/chat_session.h"
#include "sdk/engine/generate.h"
#include "sdk/thread_pool.h"
#include "text/backbone.h"
#include "vision/image.h"
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include "samples/volt/gpu_ceilings.h"
#include "sdk/cuda_memory.h"
#include "sdk/cuda_timing.h"
#include "sdk/gpu_energy.h"
#include "vision/cuda/clip_vision_tower_cuda.h"
#endif

namespace volt::cli {
namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

struct BenchOptions {
    std::string model, json, image_size = "1008x672", prompt, synthetic;
    std::vector<std::string> images, docs;
    std::vector<int64_t> crops{1, 37};
    int64_t prompt_tokens = 512, decode_tokens = 32, max_new_tokens = 32;
    int reps = 3;
    double sustain_seconds = 2.0;  // bench vision --device cuda: the back-to-back series after the best-of runs
    int from_idle = 0;             // bench vision --device cuda: single forwards, each after the GPU idled
    DeviceFlags where;  // --device, --gpus, --gpu-ids
};

struct Report {
    nlohmann::ordered_json json = nlohmann::ordered_json::object();
    std::vector<std::pair<std::string, std::string>> rows;  // markdown: measure, value

    void add(const std::string& measure, const std::string& value) { rows.emplace_back(measure, value); }
};

std::string fmt(const char* format, double a, double b = 0, double c = 0, double d = 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, format, a, b, c, d);
    return buf;
}

Status check_options(const BenchOptions& o) {
    if (o.reps < 1) return invalid_argument("--reps ", o.reps, " must be >= 1");
    if (!(o.sustain_seconds >= 0 && o.sustain_seconds <= 600))
        return invalid_argument("--sustain ", o.sustain_seconds, ": expected 0..600 seconds (0: no sustained series)");
    if (o.from_idle < 0 || o.from_idle > 100)
        return invalid_argument("--from-idle ", o.from_idle, ": expected 0..100 forwards (0: none)");
    return device_choice(o.where).status();
}

Report start_report(const char* what, const BenchOptions& o) {
    Report r;
    r.json["bench"] = what;
    r.json["model"] = o.model;
    r.json["device"] = o.where.device;
    r.json["threads"] = ThreadPool::global().num_threads();
    const double sgemm = cpu::measure_sgemm_gflops();
    const double read = cpu::measure_read_gbs();
    r.json["ceilings"] = {{"sgemm_gflops", sgemm}, {"read_gbs", read}};
    r.add("ceiling: sgemm 2048^3 (best of 3)", fmt("%.1f GFLOP/s", sgemm));
    r.add("ceiling: read 512 MiB (best of 3)", fmt("%.1f GB/s", read));
    return r;
}

Status finish(const Report& r, const BenchOptions& o) {
    std::printf("| %s | value |\n|---|---|\n", r.json["bench"].get<std::string>().c_str());
    for (const auto& [measure, value] : r.rows) std::printf("| %s | %s |\n", measure.c_str(), value.c_str());
    std::fflush(stdout);
    if (o.json.empty()) return Status::ok();
    std::ofstream out(o.json);
    out << r.json.dump(2) << "\n";
    if (!out) return invalid_argument(o.json, ": cannot write the JSON report");
    return Status::ok();
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
    std::mt19937 g(seed);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& x : ids) x = static_cast<int32_t>(g() % static_cast<uint32_t>(vocab));
    return ids;
}

Status bench_text(const BenchOptions& o) {
    VOLT_RETURN_IF_ERROR(check_options(o));
    if (o.prompt_tokens < 1 || o.decode_tokens < 0)
        return invalid_argument("--prompt-tokens must be >= 1 and --decode-tokens >= 0");
    VOLT_ASSIGN_OR_RETURN(const DeviceChoice dc, device_choice(o.where));
    const Device device = dc.device;
    VOLT_ASSIGN_OR_RETURN(auto model, ChatModel::load(o.model, {}, device, dc.gpus, ExpertWeights::kBf16, dc.gpu_ids));
    const CausalLM& lm = *model->lm;
    if (o.prompt_tokens + o.decode_tokens > lm.max_context())
        return resource_exhausted("--prompt-tokens + --decode-tokens = ", o.prompt_tokens + o.decode_tokens,
                                  " exceeds the model's context of ", lm.max_context());
    Report r = start_report("text", o);
    const std::vector<int32_t> ids = random_ids(o.prompt_tokens, lm.vocab_size(), 7);

    double best = 1e30, blas_s = 0, blas_gflop = 0;
    for (int rep = 0; rep < o.reps; ++rep) {
        VOLT_ASSIGN_OR_RETURN(Session s, Session::create(lm));
        cpu::reset_blas_stats();
        const auto t0 = clock_type::now();
        VOLT_ASSIGN_OR_RETURN(Tensor logits, s.append(ids, LogitsMode::kLast));
        const double dt = seconds_since(t0);
        if (dt < best) best = dt, blas_s = cpu::blas_stats().seconds, blas_gflop = cpu::blas_stats().flops / 1e9;
    }
    const double sgemm = r.json["ceilings"]["sgemm_gflops"].get<double>();
    r.json["prefill"] = {{"tokens", o.prompt_tokens}, {"seconds", best}, {"tokens_per_second", o.prompt_tokens / best},
                         {"blas_gflops", blas_gflop / best}, {"fraction_of_sgemm", blas_gflop / best / sgemm}};
    r.add(fmt("prefill %.0f tokens (best of %.0f)", double(o.prompt_tokens), double(o.reps)),
          fmt("%.3f s, %.1f tok/s", best, o.prompt_tokens / best));
    if (!device.is_cpu()) r.add("note", "GPU run: the ceilings above are the host's; GPU ceilings: scripts/device-test.sh");
    if (device.is_cpu()) r.add("prefill GEMM rate (whole prefill)", fmt("%.1f GFLOP/s = %.0f%% of sgemm (%.0f%% of the time in BLAS)",
                                                   blas_gflop / best, 100 * blas_gflop / best / sgemm,
                                                   100 * blas_s / best));
    if (o.decode_tokens > 0) {
        VOLT_ASSIGN_OR_RETURN(Session s, Session::create(lm));
        GenerationOptions g;
        g.max_new_tokens = o.decode_tokens;
        g.sampling.temperature = 0;
        VOLT_ASSIGN_OR_RETURN(GenerationResult gen, generate(s, ids, g));
        const double steps = std::max<double>(double(gen.ids.size()) - 1, 1);  // the last id needs no step
        const double per_token = gen.decode_seconds / steps;
        // fp32 weights one step reads (the CPU backend widens weights to fp32): the active decoder parameters and
        // the lm_head (the tied embedding when there is none).
        const auto& by = model->info.params_by_component;
        int64_t head = by[static_cast<int>(WeightComponent::kLmHead)];
        if (head == 0) head = by[static_cast<int>(WeightComponent::kEmbedding)];
        const double bytes = double(model->info.active_params_per_token + head) * 4.0;
        const double read = r.json["ceilings"]["read_gbs"].get<double>();
        r.json["decode"] = {{"context", o.prompt_tokens}, {"steps", steps}, {"ms_per_token", per_token * 1e3},
                            {"tokens_per_second", 1 / per_token}, {"weight_gbs", bytes / per_token / 1e9},
                            {"fraction_of_read", bytes / per_token / 1e9 / read}};
        r.add(fmt("decode after %.0f tokens (%.0f steps)", double(o.prompt_tokens), steps),
              fmt("%.2f ms/token, %.1f tok/s", per_token * 1e3, 1 / per_token));
        if (device.is_cpu()) r.add("decode weight stream (fp32 active weights)",
              fmt("%.1f GB/s = %.0f%% of the read ceiling", bytes / per_token / 1e9, 100 * bytes / per_token / 1e9 / read));
    }
    return finish(r, o);
}

Expected<vision::Image> bench_image(const BenchOptions& o, int* w, int* h) {
    if (std::sscanf(o.image_size.c_str(), "%dx%d", w, h) != 2 || *w < 1 || *h < 1 || *w > 30000 || *h > 30000)
        return invalid_argument("--size ", o.image_size, ": expected WIDTHxHEIGHT, e.g. 1008x672");
    vision::Image img = vision::make_image(*w, *h, vision::PixelLayout::kRGB);
    std::mt19937 g(11);
    for (uint8_t& p : img.pixels) p = static_cast<uint8_t>(1 + g() % 255);  // random, never all zeros
    return img;
}

#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
// The default forward back to back for about `seconds` (at least `min_runs` runs), one event between each two, so the
// GPU never idles: at its power cap it settles at the clock the work's power allows, which the best-of runs (each
// after an idle moment, the first ones on a cool GPU) do not show. Median of the second half (the settled part), the
// mean of all, and where the driver's energy counter is readable (`meter`), joules per run, mean power and the SM
// clock mid-series.
Expected<nlohmann::ordered_json> sustained_series(const vision::ClipVisionTowerCuda& tower, int64_t crops,
                                                  double seconds, double run_s, int min_runs,
                                                  const GpuEnergyMeter* meter) {
    const auto stream = static_cast<cudaStream_t>(tower.stream());
    const int runs = int(std::clamp(std::ceil(seconds / std::max(run_s, 1e-6)), double(min_runs), 100000.0));
    std::vector<cudaEvent_t> ev(size_t(runs) + 1, nullptr);
    std::shared_ptr<void> guard(nullptr, [&](void*) {
        for (cudaEvent_t e : ev)
            if (e) cudaEventDestroy(e);
    });
    for (cudaEvent_t& e : ev) VOLT_CUDA_RETURN_IF_ERROR(cudaEventCreate(&e));
    VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    double j0 = 0;
    if (meter) {
        VOLT_ASSIGN_OR_RETURN(j0, meter->joules());
    }
    const auto t0 = clock_type::now();
    VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev[0], stream));
    for (int i = 0; i < runs; ++i) {
        VOLT_RETURN_IF_ERROR(tower.run_resident(crops));
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev[size_t(i) + 1], stream));
    }
    int clock_mid = 0;
    if (meter) {
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(ev[size_t(runs) / 2]));
        VOLT_ASSIGN_OR_RETURN(clock_mid, meter->sm_clock_mhz());
    }
    VOLT_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(ev.back()));
    const double wall_s = seconds_since(t0);
    std::vector<double> ms(static_cast<size_t>(runs)), settled;
    for (int i = 0; i < runs; ++i) {
        float m = 0;
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&m, ev[size_t(i)], ev[size_t(i) + 1]));
        ms[size_t(i)] = m;
        if (i >= runs / 2) settled.push_back(m);
    }
    double sum = 0;
    for (double m : ms) sum += m;
    nlohmann::ordered_json j = {{"runs", runs}, {"seconds", wall_s}, {"ms_median_second_half", median_of(settled)},
                                {"ms_mean", sum / runs}};
    if (meter) {
        VOLT_ASSIGN_OR_RETURN(const double j1, meter->joules());
        j["joules_per_run"] = (j1 - j0) / runs;
        j["watts"] = (j1 - j0) / wall_s;
        j["sm_clock_mhz_mid"] = clock_mid;
    }
    return j;
}

// `count` single forwards, each after kIdleGapSeconds with nothing on the GPU: what one image costs a user whose GPU
// was idle (the desktop app's question about one picture), where the power controller has let the clock back up.
// Per run: ms and, where NVML reads, the SM clock just before it.
constexpr double kIdleGapSeconds = 2.0;
Expected<nlohmann::ordered_json> from_idle_runs(const vision::ClipVisionTowerCuda& tower, int64_t crops, int count,
                                                const GpuEnergyMeter* meter) {
    const auto stream = static_cast<cudaStream_t>(tower.stream());
    std::vector<double> ms;
    std::vector<int> clocks;
    for (int i = 0; i < count; ++i) {
        VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
        std::this_thread::sleep_for(std::chrono::duration<double>(kIdleGapSeconds));
        if (meter) {
            VOLT_ASSIGN_OR_RETURN(const int mhz, meter->sm_clock_mhz());
            clocks.push_back(mhz);
        }
        VOLT_ASSIGN_OR_RETURN(const std::vector<double> t,
                              cuda_event_ms(0, 1, [&] { return tower.run_resident(crops); }, stream));
        ms.push_back(t.front());
    }
    nlohmann::ordered_json j = {{"runs", count}, {"idle_seconds_before_each", kIdleGapSeconds},
                                {"ms_median", median_of(ms)}, {"ms_min", *std::min_element(ms.begin(), ms.end())},
                                {"ms_max", *std::max_element(ms.begin(), ms.end())}, {"ms_runs", ms}};
    if (meter) j["sm_clock_mhz_before"] = clocks;
    return j;
}

Status bench_vision_cuda(const BenchOptions& o) {
    if (cuda_device_count() == 0) return invalid_argument("volt bench vision --device cuda: this machine has no CUDA GPU");
    if (o.model.empty() == o.synthetic.empty())
        return invalid_argument("volt bench vision --device cuda: give --model DIR or --synthetic vit-l-336");
    if (!o.synthetic.empty() && o.synthetic != "vit-l-336")
        return invalid_argument("--synthetic ", o.synthetic, ": the one synthetic tower is vit-l-336");
    for (int64_t c : o.crops)
        if (c < 1 || c > 1024) return invalid_argument("--crops ", c, ": expected 1..1024");
    VOLT_ASSIGN_OR_RETURN(const DeviceChoice dc, device_choice(o.where));
    const int gpu = dc.device.index;  // the tower runs on one GPU (bench_vision refused more): GPU 0 or the one listed
    if (gpu >= cuda_device_count())
        return invalid_argument("--gpu-ids: GPU ", gpu, " does not exist (this machine has ", cuda_device_count(),
                                " GPUs)");
    VOLT_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu));
    VOLT_ASSIGN_OR_RETURN(const Ceilings ceil, measure_gpu_ceilings(gpu));
    std::unique_ptr<vision::VLImageEncoder> encoder;
    std::unique_ptr<vision::ClipVisionTowerCuda> synthetic;
    const auto load0 = clock_type::now();
    if (!o.synthetic.empty()) {
        VOLT_ASSIGN_OR_RETURN(synthetic, vision::ClipVisionTowerCuda::synthetic(vision::vit_l_14_336_config(), gpu, 1));
    } else {
        VOLT_ASSIGN_OR_RETURN(encoder, vision::VLImageEncoder::load(o.model, Device::cuda(gpu)));
    }
    const double load_s = seconds_since(load0);
    const vision::ClipVisionTowerCuda& tower = synthetic ? *synthetic : *encoder->cuda_tower();
    cudaDeviceProp prop{};
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, gpu));
    Report r;
    r.json["bench"] = "vision";
    r.json["device"] = prop.name;
    r.json["model"] = o.synthetic.empty() ? o.model : o.synthetic;
    r.json["attention"] = tower.attention_backend();
    r.json["load_seconds"] = load_s;
    r.json["ceilings"] = {{"gemm_tflops", ceil.gemm_tflops}, {"copy_tbs", ceil.copy_tbs}};
    r.add(std::string("device: ") + prop.name + ", attention: " + tower.attention_backend(),
          fmt("weights ready in %.2f s", load_s));
    r.add("ceiling: bf16 GEMM 8192^3 (cuBLASLt, best of 5)", fmt("%.0f TFLOP/s", ceil.gemm_tflops));
    std::optional<GpuEnergyMeter> meter;
    if (o.sustain_seconds > 0 || o.from_idle > 0) {
        char bus[32] = {};
        VOLT_CUDA_RETURN_IF_ERROR(cudaDeviceGetPCIBusId(bus, sizeof bus, gpu));
        Expected<GpuEnergyMeter> m = GpuEnergyMeter::open(bus);
        if (m) meter = *m;
        else r.add("energy", "not measured: " + m.status().message());
    }
    const auto stream = static_cast<cudaStream_t>(tower.stream());
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (int64_t crops : o.crops) {
        VOLT_RETURN_IF_ERROR(tower.fill_random_pixels(crops, 9));
        tower.set_use_graphs(true);
        for (int w = 0; w < 2; ++w) VOLT_RETURN_IF_ERROR(tower.run_resident(crops));  // eager once, then the capture
        // Eager and default runs (graphs where the tower replays them) alternate (best of each): a GPU at its power
        // cap slows down over a long series, so whichever mode ran second used to look ~2 ms slower at 37 crops
        // (bench/vision_notes.md, "Measuring").
        // Every run's time is kept (JSON ms_*_runs, in run order) beside the best and the median: a GPU at its power
        // cap can hold a process at one clock level for a whole series, which only the whole series shows.
        std::vector<double> eager_ms, default_ms;
        for (int rep = 0; rep < o.reps; ++rep)
            for (bool as_default : {false, true}) {
                tower.set_use_graphs(as_default);
                // Both modes ran above (eager, then the capture): no warm-up call before each timed one.
                VOLT_ASSIGN_OR_RETURN(const std::vector<double> ms,
                                      cuda_event_ms(0, 1, [&] { return tower.run_resident(crops); }, stream));
                (as_default ? default_ms : eager_ms).push_back(ms.front());
            }
        const double eager_s = *std::min_element(eager_ms.begin(), eager_ms.end()) * 1e-3;
        const double default_s = *std::min_element(default_ms.begin(), default_ms.end()) * 1e-3;
        tower.set_use_graphs(true);
        // The default forward: graphs up to kGraphMaxCrops crops, eager above (VOLT_VIT_GRAPHS=all: graphs always).
        const bool replays = tower.replays_graphs(crops);
        const double tflops = double(crops) * tower.flops_per_crop() / default_s / 1e12;
        rows.push_back({{"crops", crops}, {"ms_default", default_s * 1e3}, {"default_replays_graphs", replays},
                        {"ms_eager", eager_s * 1e3}, {"ms_default_median", median_of(default_ms)},
                        {"ms_eager_median", median_of(eager_ms)}, {"ms_default_runs", default_ms},
                        {"ms_eager_runs", eager_ms}, {"tflops", tflops},
                        {"fraction_of_gemm_ceiling", tflops / ceil.gemm_tflops}});
        r.add(str_cat("ViT, ", crops, " crop(s), default: ", replays ? "CUDA graphs" : "eager", " (best of ", o.reps,
                      ")"),
              fmt("%.3f ms (median %.3f), %.0f TFLOP/s = %.0f%% of the GEMM ceiling", default_s * 1e3,
                  median_of(default_ms), tflops, 100 * tflops / ceil.gemm_tflops));
        r.add(fmt("ViT, %.0f crop(s), eager", double(crops)),
              fmt("%.3f ms (median %.3f)", eager_s * 1e3, median_of(eager_ms)));
        if (o.from_idle > 0) {
            VOLT_ASSIGN_OR_RETURN(const nlohmann::ordered_json idle,
                                  from_idle_runs(tower, crops, o.from_idle, meter ? &*meter : nullptr));
            rows.back()["from_idle"] = idle;
            r.add(fmt("ViT, %.0f crop(s), default, each of %.0f runs after %.0f s idle", double(crops),
                      double(o.from_idle), kIdleGapSeconds),
                  fmt("median %.3f ms (%.3f .. %.3f)", idle["ms_median"].get<double>(), idle["ms_min"].get<double>(),
                      idle["ms_max"].get<double>()));
        }
        if (o.sustain_seconds > 0) {
            VOLT_ASSIGN_OR_RETURN(const nlohmann::ordered_json sus,
                                  sustained_series(tower, crops, o.sustain_seconds, default_s, o.reps,
                                                   meter ? &*meter : nullptr));
            rows.back()["sustained"] = sus;
            std::string value = fmt("median %.3f ms (second half), mean %.3f ms over %.0f runs",
                                    sus["ms_median_second_half"].get<double>(), sus["ms_mean"].get<double>(),
                                    sus["runs"].get<double>());
            if (meter)
                value += fmt("; %.3f J per forward at %.0f W, SM clock %.0f MHz mid-series",
                             sus["joules_per_run"].get<double>(), sus["watts"].get<double>(),
                             sus["sm_clock_mhz_mid"].get<double>());
            r.add(fmt("ViT, %.0f crop(s), default, sustained %.1f s", double(crops), sus["seconds"].get<double>()),
                  value);
        }
    }
    r.json["vit"] = rows;
    if (encoder) {  // a whole image through the encoder on the GPU (decode and preprocessing on the host)
        int w = 0, h = 0;
        VOLT_ASSIGN_OR_RETURN(const vision::Image image, o.images.empty() ? bench_image(o, &w, &h)
                                                                          : vision::decode_image_file(o.images.front()));
        double image_s = 1e30;
        int64_t n_crops = 0, tokens = 0;
        for (int rep = 0; rep < o.reps + 1; ++rep) {  // the first run captures the graphs of this crop count
            const auto t0 = clock_type::now();
            VOLT_ASSIGN_OR_RETURN(vision::EncodedImage e, encoder->encode(image));
            if (rep > 0) image_s = std::min(image_s, seconds_since(t0));
            n_crops = e.pixel_values.dim(0);
            tokens = e.features.dim(0);
        }
        r.json["image"] = {{"width", image.width}, {"height", image.height}, {"crops", n_crops}, {"tokens", tokens},
                           {"ms", image_s * 1e3}};
        r.add(fmt("image %.0fx%.0f: %.0f crops", image.width, image.height, double(n_crops)),
              fmt("%.1f ms end to end (preprocessing, ViT, projector, packing), %.0f tokens", image_s * 1e3,
                  double(tokens)));
    }
    return finish(r, o);
}
#endif

Status bench_vision(const BenchOptions& o) {
    VOLT_RETURN_IF_ERROR(check_options(o));
    if (o.where.device == "cuda") {
        VOLT_RETURN_IF_ERROR(device_choice(o.where, "volt bench vision").status());  // the tower runs on one GPU
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
        return bench_vision_cuda(o);
#else
        return unimplemented("volt bench vision --device cuda: this build has no CUDA backend");
#endif
    }
    if (!o.synthetic.empty()) return invalid_argument("--synthetic: only with --device cuda (no files on the CPU)");
    if (o.model.empty()) return invalid_argument("volt bench vision needs --model DIR");
    if (o.images.size() > 1) return invalid_argument("volt bench vision takes at most one --image");
    VOLT_ASSIGN_OR_RETURN(auto encoder, vision::VLImageEncoder::load(o.model));
    vision::Image image;
    std::string label;
    if (!o.images.empty()) {
        VOLT_ASSIGN_OR_RETURN(image, vision::decode_image_file(o.images.front()));
        label = o.images.front();
    } else {
        int w = 0, h = 0;
        VOLT_ASSIGN_OR_RETURN(image, bench_image(o, &w, &h));
        label = "of random pixels";
    }
    Report r = start_report("vision", o);
    // One crop: random normalised pixels [1, 3, S, S].
    const int64_t S = encoder->config().vision.image_size;
    VOLT_ASSIGN_OR_RETURN(Tensor crop, Tensor::empty({1, 3, S, S}, DType::kF32));
    std::mt19937 g(5);
    std::uniform_real_distribution<float> u(-1.5f, 1.5f);
    for (int64_t i = 0; i < crop.numel(); ++i) crop.data_as<float>()[i] = u(g);
    double crop_s = 1e30;
    for (int rep = 0; rep < o.reps; ++rep) {
        const auto t0 = clock_type::now();
        VOLT_ASSIGN_OR_RETURN(Tensor f, encoder->vit_features(crop));
        crop_s = std::min(crop_s, seconds_since(t0));
    }
    double image_s = 1e30;
    int64_t crops = 0, tokens = 0;
    for (int rep = 0; rep < o.reps; ++rep) {
        const auto t0 = clock_type::now();
        VOLT_ASSIGN_OR_RETURN(vision::EncodedImage e, encoder->encode(image));
        image_s = std::min(image_s, seconds_since(t0));
        crops = e.pixel_values.dim(0);
        tokens = e.features.dim(0);
    }
    r.json["crop"] = {{"size", S}, {"ms", crop_s * 1e3}};
    r.json["image"] = {{"source", label}, {"width", image.width}, {"height", image.height}, {"crops", crops},
                       {"tokens", tokens}, {"ms", image_s * 1e3}, {"ms_per_crop", image_s * 1e3 / double(crops)}};
    r.add(fmt("ViT, one %.0fx%.0f crop (best of %.0f)", double(S), double(S), double(o.reps)), fmt("%.1f ms", crop_s * 1e3));
    r.add("image " + label + fmt(" (%.0fx%.0f): %.0f crops", image.width, image.height, double(crops)),
          fmt("%.1f ms (%.1f ms per crop), %.0f tokens", image_s * 1e3, image_s * 1e3 / double(crops), double(tokens)));
    return finish(r, o);
}

Status bench_run(const BenchOptions& o) {
    VOLT_RETURN_IF_ERROR(check_options(o));
    if (o.prompt.empty()) return invalid_argument("volt bench run needs --prompt");
    VOLT_ASSIGN_OR_RETURN(const DeviceChoice dc, device_choice(o.where));
    const auto load0 = clock_type::now();
    VOLT_ASSIGN_OR_RETURN(auto model, ChatModel::load(o.model, {}, dc.device, dc.gpus, ExpertWeights::kBf16, dc.gpu_ids));
    const double load_s = seconds_since(load0);
    Report r = start_report("run", o);
    VOLT_ASSIGN_OR_RETURN(ChatSession chat, ChatSession::create(*model));
    for (const std::string& image : o.images) VOLT_RETURN_IF_ERROR(chat.attach_image(image).status());
    for (const std::string& doc : o.docs) VOLT_RETURN_IF_ERROR(chat.attach_document(doc).status());
    VOLT_RETURN_IF_ERROR(chat.add_message(Role::kUser, o.prompt));
    GenerationOptions g;
    g.max_new_tokens = o.max_new_tokens;
    g.sampling.temperature = 0;
    const auto t0 = clock_type::now();
    double first_token_s = -1;
    VOLT_ASSIGN_OR_RETURN(ChatSession::Reply reply, chat.reply(g, [&](int32_t, std::string_view) {
        if (first_token_s < 0) first_token_s = seconds_since(t0);
        return true;
    }));
    const GenerationResult& res = reply.generation.result;
    const double steps = std::max<double>(double(res.ids.size()) - 1, 1);
    r.json["load_seconds"] = load_s;
    r.json["prompt_tokens"] = res.prompt_tokens;
    r.json["time_to_first_token_seconds"] = first_token_s;
    r.json["prefill_tokens_per_second"] = double(res.prompt_tokens) / res.prefill_seconds;
    r.json["new_tokens"] = res.ids.size();
    r.json["decode_tokens_per_second"] = steps / std::max(res.decode_seconds, 1e-9);
    r.add("model load", fmt("%.2f s", load_s));
    r.add(fmt("prompt: %.0f tokens (%.0f images)", double(res.prompt_tokens), double(o.images.size())),
          fmt("prefill %.2f s (%.1f tok/s, image encoding included)", res.prefill_seconds,
              double(res.prompt_tokens) / res.prefill_seconds));
    r.add("time to first token", fmt("%.2f s", first_token_s));
    r.add(fmt("decode: %.0f new tokens", double(res.ids.size())),
          fmt("%.1f tok/s", steps / std::max(res.decode_seconds, 1e-9)));
    return finish(r, o);
}

CLI::App* add_common(CLI::App* cmd, BenchOptions& o, bool model_required = true) {
    auto* model = cmd->add_option("--model", o.model, "Model directory");
    if (model_required) model->required();
    cmd->add_option("--json", o.json, "Also write the numbers as JSON to this file");
    add_device_options(cmd, &o.where);
    return cmd;
}

}  // namespace

CommandRunner add_bench_command(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    CLI::App* bench = app.add_subcommand("bench", "Time a model against this machine's measured ceilings");
    bench->require_subcommand(1);
    CLI::App* text = add_common(bench->add_subcommand("text", "Backbone prefill and decode rates"), *o);
    text->add_option("--prompt-tokens", o->prompt_tokens, "Random prompt length");
    text->add_option("--decode-tokens", o->decode_tokens, "Greedy tokens to generate after the prompt");
    text->add_option("--reps", o->reps, "Repetitions (the best is reported)");
    CLI::App* vis = add_common(bench->add_subcommand("vision", "ViT per crop and a whole image (VL models)"), *o, false);
    vis->add_option("--synthetic", o->synthetic, "--device cuda: vit-l-336 with random weights instead of --model");
    vis->add_option("--crops", o->crops, "--device cuda: crop counts to time (repeatable; default 1 and 37)");
    vis->add_option("--image", o->images, "An image file (default: random pixels of --size)");
    vis->add_option("--size", o->image_size, "Random image size WIDTHxHEIGHT");
    vis->add_option("--reps", o->reps, "Repetitions (the best is reported)");
    vis->add_option("--sustain", o->sustain_seconds,
                    "--device cuda: seconds of back-to-back forwards after the best-of runs, with joules per forward "
                    "where the driver's energy counter is readable (default 2; 0: none)");
    vis->add_option("--from-idle", o->from_idle,
                    "--device cuda: single forwards, each after 2 s with the GPU idle (one image's latency for a "
                    "user; default 0: none)");
    CLI::App* run = add_common(bench->add_subcommand("run", "End to end through a chat session"), *o);
    run->add_option("--image", o->images, "An image to ask about (repeatable)");
    run->add_option("--doc", o->docs, "A document (repeatable)");
    run->add_option("--prompt", o->prompt, "The question")->required();
    run->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate at most");
    CommandRunner e2e = add_bench_e2e_command(bench);
    return [o, text, vis, run, e2e]() -> int {
        if (const int rc = e2e(); rc >= 0) return rc;
        Status s = text->parsed() ? bench_text(*o) : vis->parsed() ? bench_vision(*o) : bench_run(*o);
        return s.is_ok() ? kExitOk : report_error(s);
    };
}

}  // namespace volt::cli
