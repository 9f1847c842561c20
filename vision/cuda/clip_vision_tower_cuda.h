// The CLIP ViT of MiniMax-VL-01 on one NVIDIA GPU: the CUDA twin of vision/clip_vision_tower.h (same wiring, same
// feature selection: hidden_states[vision_feature_layer], CLS dropped for "default"), and the projector
// (vision/vl_projector.h) on the same GPU. Numerics (design.md): bf16 weights and activations (the residual stream
// included, as Hugging Face runs the tower in bf16), fp32 accumulation, LayerNorm statistics and softmax.
//   patch embedding: im2col (K padded to a multiple of 8) + one cuBLASLt GEMM; embeddings + pre_layrnorm fused;
//   per layer: LN1 -> fused q|k|v GEMM (+bias) -> bidirectional attention (cuDNN SDPA, own kernel as fallback) ->
//   out_proj GEMM accumulating into the residual (beta 1, +bias) -> LN2 -> fc1 (+bias, exact GELU) -> fc2 into the
//   residual.
// CUDA graphs: the first forward of a crop count runs eagerly (GEMM heuristics, cuDNN graph build), then the forward
// is captured for that count as one graph per layer (plus one for the embeddings), and later calls replay them. The
// per-layer split is what lets `cancelled` be asked between layers, as on the CPU. VOLT_VIT_GRAPHS=0 disables
// capture. Calls are serialised (one stream, one set of activation buffers sized for the largest batch seen).
// Built only with CUDA (VOLT_HAVE_CUDA).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sdk/config.h"
#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt::vision {

// CLIP ViT-L/14-336, MiniMax-VL-01's tower (minimax01-architecture.md §5): the geometry of the synthetic benchmark
// and of the full-size GPU test.
VLConfig vit_l_14_336_config();

class ClipVisionTowerCuda {
public:
    // Host tensors by checkpoint name (prefix `vision_tower.vision_model.` included), any float dtype; converted to
    // bf16 and uploaded to `device`. Same checks and errors as ClipVisionTower::load.
    using Lookup = std::function<Expected<Tensor>(const std::string& name)>;
    static Expected<std::unique_ptr<ClipVisionTowerCuda>> load(const VLConfig& vl, const Lookup& lookup, int device);
    // Random bf16 weights generated on the GPU (benchmarks at full geometry, no files): linears 1/sqrt(fan_in),
    // biases and embeddings 0.02, LayerNorm weights 1 +- 0.1.
    static Expected<std::unique_ptr<ClipVisionTowerCuda>> synthetic(const VLConfig& vl, int device, uint64_t seed = 1);
    ~ClipVisionTowerCuda();
    ClipVisionTowerCuda(const ClipVisionTowerCuda&) = delete;
    ClipVisionTowerCuda& operator=(const ClipVisionTowerCuda&) = delete;

    // As ClipVisionTower::encode: host f32 [B, 3, S, S] -> host f32 [B, N, D]. `cancelled` (may be empty) is asked
    // before every layer: true stops with CANCELLED, the tower stays usable.
    Expected<Tensor> encode(const Tensor& pixel_values, const std::function<bool()>& cancelled = {}) const;
    // The same features left on the GPU: bf16 [B * N, D], a view of the tower's buffer that stays valid until the
    // next call (the projector reads it on stream()).
    Expected<Tensor> encode_device(const Tensor& pixel_values, const std::function<bool()>& cancelled = {}) const;

    // Benchmarks: fills the input of `crops` crops with random normalised pixels on the GPU, then runs the forward on
    // them (graphs as configured) without host copies; asynchronous on stream().
    Status fill_random_pixels(int64_t crops, uint64_t seed) const;
    Status run_resident(int64_t crops) const;
    void set_use_graphs(bool on) const;

    int64_t tokens_per_crop() const;  // N
    int64_t hidden_size() const { return cfg_.hidden_size; }
    int layers_run() const { return layers_run_; }
    int device() const { return device_; }
    void* stream() const;  // cudaStream_t
    // Matmul FLOPs of one crop's forward (patch GEMM, projections, MLP, attention's two products).
    double flops_per_crop() const;
    const char* attention_backend() const;

    struct Impl;

private:
    ClipVisionTowerCuda() = default;
    using DeviceLookup = std::function<Expected<Tensor>(const std::string& name, const Shape& shape)>;
    static Expected<std::unique_ptr<ClipVisionTowerCuda>> build(const VLConfig& vl, const DeviceLookup& lookup,
                                                                int device);
    // The callers hold mu_ and a DeviceScope.
    Status reserve(int64_t crops) const;  // activation buffers for `crops` crops
    Status forward(const Tensor* host_pixels, int64_t crops, const std::function<bool()>& cancelled) const;
    Expected<Tensor> features_locked(const Tensor& pixel_values, const std::function<bool()>& cancelled) const;

    VisionConfig cfg_;
    bool keep_cls_ = false;
    int layers_run_ = 0;
    int device_ = 0;
    std::unique_ptr<Impl> impl_;
    mutable std::mutex mu_;
};

// The VL-01 projector on the GPU: linear_1 (+bias, exact GELU), linear_2 (+bias), bf16 with fp32 accumulation.
class VLProjectorCuda {
public:
    using Lookup = std::function<Expected<Tensor>(const std::string& name)>;
    static Expected<std::unique_ptr<VLProjectorCuda>> load(int64_t vision_hidden, int64_t text_hidden,
                                                           const Lookup& lookup, int device);
    static Expected<std::unique_ptr<VLProjectorCuda>> synthetic(int64_t vision_hidden, int64_t text_hidden, int device,
                                                                uint64_t seed = 2);
    // bf16 [rows, vision_hidden] on the GPU -> host f32 [rows, text_hidden] (what the backbones splice), computed on
    // `stream` (a cudaStream_t; the tower's).
    Expected<Tensor> project(const Tensor& features, void* stream) const;
    int64_t text_hidden() const { return text_hidden_; }

private:
    int64_t vision_hidden_ = 0, text_hidden_ = 0;
    int device_ = 0;
    Tensor w1_, b1_, w2_, b2_;  // bf16 device
};

}  // namespace volt::vision
