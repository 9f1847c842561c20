// CPU benchmark of MiniMax-VL-01's vision path at the real sizes (CLIP ViT-L/14-336: hidden 1024, 24 layers,
// 16 heads, MLP 4096, exact GELU; projector 1024 -> 6144 -> 6144; random fp32 weights): ms per 336x336 crop through
// the tower, and a whole 2016x2016 image (anyres picks the 1344x1344 grid: 16 tiles + thumbnail = 17 crops)
// through preprocessing, tower, projector and packing. Anchor: one large sgemm in the same run (the GEMM roofline
// of this machine), against which the tower's GFLOP/s is read. Prints a markdown table (bench/RESULTS.md).
//
// Usage: volt_bench_vision_cpu [--layers N] [--reps R] [--batch B] [--no-image]   (--layers < 24: a quick look;
//        --no-image: the single-crop timing only)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kernels/ceilings.h"
#include "kernels/gemm.h"
#include "sdk/thread_pool.h"
#include "vision/clip_vision_tower.h"
#include "vision/image_packing.h"
#include "vision/image_preprocess.h"
#include "vision/minimax_vl_weights.h"
#include "vision/vl_projector.h"

namespace {

using namespace volt;
using namespace volt::vision;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

VLConfig vl01_config(int layers) {
    VLConfig vl;
    VisionConfig& v = vl.vision;
    v.hidden_size = 1024;
    v.intermediate_size = 4096;
    v.num_layers = layers;
    v.num_heads = 16;
    v.image_size = 336;
    v.patch_size = 14;
    v.hidden_act = "gelu";
    v.layer_norm_eps = 1e-5;
    vl.vision_feature_layer = -1;
    vl.vision_feature_select_strategy = "default";
    for (int64_t h : {336, 672, 1008})
        for (int64_t w : {336, 672, 1008, 1344, 1680, 2016}) vl.grid_pinpoints.emplace_back(h, w);
    for (int64_t w : {336, 672, 1008, 1344}) vl.grid_pinpoints.emplace_back(1344, w);
    for (int64_t h : {1680, 2016})
        for (int64_t w : {336, 672, 1008}) vl.grid_pinpoints.emplace_back(h, w);
    return vl;
}


}  // namespace

int main(int argc, char** argv) {
    int layers = 24, reps = 2;
    int64_t batch = 8;
    bool image = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--no-image") image = false;
        else if (a == "--layers" && has_value) layers = std::atoi(argv[++i]);
        else if (a == "--reps" && has_value) reps = std::atoi(argv[++i]);
        else if (a == "--batch" && has_value) batch = std::atoll(argv[++i]);
        else {
            std::fprintf(stderr, "usage: %s [--layers N] [--reps R] [--batch B] [--no-image]\n", argv[0]);
            return 2;
        }
    }
    const VLConfig vl = vl01_config(layers);
    const int64_t Ht = 6144, D = 1024, F = 4096, T = 577;

    // Random weights for every tensor of the VL-01 vision table.
    std::unordered_map<std::string, Tensor> w;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (const WeightSpec& s : minimax_vl_vision_weight_specs(vl, Ht)) {
        if (s.optional) continue;
        Tensor t = Tensor::empty(s.shape, DType::kF32).value();
        const bool norm_weight = s.name.find("layer_norm") != std::string::npos || s.name.find("layrnorm") != std::string::npos;
        const float scale = s.shape.rank() == 1 ? 0.02f : 1.0f / std::sqrt(float(s.shape[s.shape.rank() - 1]));
        float* p = t.data_as<float>();
        for (int64_t i = 0; i < t.numel(); ++i) p[i] = (norm_weight && s.name.ends_with("weight") ? 1.0f : 0.0f) + scale * nd(rng);
        w.emplace(s.name, std::move(t));
    }
    auto lookup = [&](const std::string& n) -> Expected<Tensor> {
        auto it = w.find(n);
        if (it == w.end()) return not_found(n);
        return it->second;
    };
    auto tower = ClipVisionTower::load(vl, lookup);
    auto projector = VLProjector::load(D, Ht, lookup);
    if (!tower || !projector) {
        std::fprintf(stderr, "load failed: %s %s\n", tower.status().to_string().c_str(), projector.status().to_string().c_str());
        return 1;
    }
    const double roof = cpu::measure_sgemm_gflops(2048, 3);

    const double layer_flops = 2.0 * T * (4.0 * D * D + 2.0 * D * F) + 4.0 * T * T * D;
    const double crop_flops = layers * layer_flops + 2.0 * 576 * 588 * D;
    const double proj_flops = 2.0 * 576 * (D * Ht + Ht * Ht);

    // One crop through the tower.
    Tensor one = Tensor::empty({1, 3, 336, 336}, DType::kF32).value();
    for (int64_t i = 0; i < one.numel(); ++i) one.data_as<float>()[i] = nd(rng);
    (void)tower->encode(one);  // warm-up (page faults, BLAS buffers)
    double crop_s = 1e30;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = clock_type::now();
        auto f = tower->encode(one);
        crop_s = std::min(crop_s, seconds_since(t0));
        if (!f) return 1;
    }

    std::printf("| measurement | value |\n|---|---|\n");
    std::printf("| CPU threads (pool / hardware) | %d / %u |\n", ThreadPool::global().num_threads(), std::thread::hardware_concurrency());
    std::printf("| sgemm 2048^3 anchor | %.1f GFLOP/s |\n", roof);
    std::printf("| ViT layers | %d |\n", layers);
    std::printf("| tower, 1 crop 336^2 (best of %d) | %.1f ms (%.1f GFLOP/s, %.0f%% of sgemm) |\n", reps, crop_s * 1e3,
                crop_flops / crop_s * 1e-9, 100.0 * crop_flops / crop_s * 1e-9 / roof);
    if (!image) return 0;

    // A 2016x2016 image end to end (decoding excluded: an in-memory RGB image).
    Image im = make_image(2016, 2016, PixelLayout::kRGB);
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>((i * 2654435761u) >> 24);
    auto t0 = clock_type::now();
    auto pre = preprocess_image(im, vl);
    const double pre_s = seconds_since(t0);
    if (!pre) return 1;
    const int64_t crops = pre->layout.num_crops();
    t0 = clock_type::now();
    Tensor feats = Tensor::empty({crops, 576, D}, DType::kF32).value();
    for (int64_t c0 = 0; c0 < crops; c0 += batch) {
        const int64_t c1 = std::min(crops, c0 + batch);
        auto f = tower->encode(pre->pixel_values.slice(0, c0, c1).value());
        if (!f) return 1;
        std::memcpy(feats.data_as<float>() + c0 * 576 * D, f->data(), f->nbytes());
    }
    const double vit_s = seconds_since(t0);
    t0 = clock_type::now();
    auto proj = projector->project(feats.reshape({crops * 576, D}).value());
    if (!proj) return 1;
    auto packed = pack_image_features(proj->reshape({crops, 576, Ht}).value(), pre->layout, projector->image_newline());
    const double proj_s = seconds_since(t0);
    if (!packed) return 1;

    std::printf("| 2016^2 image: grid / crops / tokens | %lldx%lld / %lld / %lld |\n", (long long)pre->layout.rows,
                (long long)pre->layout.cols, (long long)crops, (long long)pre->layout.num_tokens());
    std::printf("| 2016^2 preprocessing (resize, tiles, normalise) | %.1f ms |\n", pre_s * 1e3);
    std::printf("| 2016^2 tower (%lld crops, batch %lld) | %.1f ms (%.1f ms/crop, %.1f GFLOP/s) |\n", (long long)crops,
                (long long)batch, vit_s * 1e3, vit_s * 1e3 / crops, crops * crop_flops / vit_s * 1e-9);
    std::printf("| 2016^2 projector + packing | %.1f ms (%.1f GFLOP/s) |\n", proj_s * 1e3, crops * proj_flops / proj_s * 1e-9);
    std::printf("| 2016^2 total (no decode) | %.1f ms |\n", (pre_s + vit_s + proj_s) * 1e3);
    return 0;
}
