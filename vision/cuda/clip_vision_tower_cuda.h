// The CLIP ViT of MiniMax-VL-01 on one NVIDIA GPU: the CUDA twin of vision/clip_vision_tower.h (same wiring, same
// feature selection: hidden_states[vision_feature_layer], CLS dropped for "default"), and the projector
// (vision/vl_projector.h) on the same GPU. Numerics (design.md): bf16 weights and activations (the residual stream
// included, as Hugging Face runs the tower in bf16), fp32 accumulation, LayerNorm statistics and softmax.
//   patch embedding: im2col (K padded to a multiple of 8) + one cuBLASLt GEMM; embeddings + pre_layrnorm fused;
//   per layer: LN1 -> fused q|k|v GEMM (+bias) -> bidirectional attention (cuDNN SDPA, own kernel as fallback) ->
//   out_proj GEMM accumulating into the residual (beta 1, +bias) -> LN2 -> fc1 (+bias, GELU: see VitGelu) -> fc2
//   into the residual. Bias and residual adds live in the cuBLASLt epilogues (no passes of their own).
// CUDA graphs: the first forward of a crop count runs eagerly (GEMM heuristics, cuDNN graph build), then the forward
// is captured for that count and later calls replay it: as one graph for the whole forward when no `cancelled` is
// given (one launch: 1 crop 1.46 vs 1.55 ms on an H200), else as one graph per layer (plus one for the embeddings),
// which lets `cancelled` be asked between layers, as on the CPU. Only batches of up to kGraphMaxCrops crops replay
// graphs: above that the launches hide behind the GPU's work and the replays measured slower than the eager forward
// (37 crops: ~1 ms with the whole-forward graph, ~2 ms with per-layer ones; bench/vision_notes.md), so larger batches
// run eagerly (still asking `cancelled` between layers). VOLT_VIT_GRAPHS=0 disables capture for the process
// (set_use_graphs cannot turn it back on), VOLT_VIT_GRAPHS=layers always captures per layer and VOLT_VIT_GRAPHS=all
// captures at any crop count (A/B timing).
// Calls are serialised (one set of activation buffers sized for the largest batch seen). A batch of >= 8 crops runs as
// two halves, the second on a second stream, so that one half's memory-bound kernels and GEMM tails overlap the
// other's GEMMs (37 crops on an H100, graphs: 25.9 vs 26.7 ms; VOLT_VIT_STREAMS=1 keeps one stream); the whole-forward
// graph of such a batch holds both halves (captured across both streams, their kernels interleaved as eager enqueues
// them), the per-layer graphs are each half's own, and the tower's stream() waits for both halves at the end of every
// call. A batch's GEMMs ask for tuned cuBLASLt configurations (GemmParams::tune_configs), the out projection and fc2
// into the residual stream with a free activation buffer as the timing runs' scratch (VOLT_VIT_TUNE_RESIDUAL=0: not
// those two, A/B timing).
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

// fc1's GELU. The config's "gelu" is the exact erf form (the CPU tower's and transformers' function).
//   kTanhEpilogue: cuBLASLt's fused GELU_BIAS epilogue, the tanh form (no pass over the [rows, intermediate]
//                  activations; |GELU_tanh - GELU_erf| <= 4.7e-4 absolute, below the bf16 rounding of those
//                  activations for |values| > 0.06; the features' error against the CPU tower is measured in
//                  tests/gpu/vision and bench/RESULTS.md)
//   kErf:          the bias epilogue, then the exact erf pass over the activations (kernels/gemm_cuda.h kBiasGelu)
// VOLT_VIT_GELU=tanh|erf picks it at load (A/B timing); default kTanhEpilogue (37 crops on an H200: 23.5-24.5 ms
// vs 26.2-26.7 ms with kErf; features against the CPU tower 1.01e-2 vs 1.02e-2 with kErf: bench/RESULTS.md).
enum class VitGelu : uint8_t { kTanhEpilogue, kErf };

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
    static constexpr int64_t kGraphMaxCrops = 15;
    // Whether a forward of `crops` crops replays CUDA graphs (from its second call on) as configured now.
    bool replays_graphs(int64_t crops) const;
    // Drops the captured graphs.
    Status set_gelu(VitGelu mode) const;
    VitGelu gelu() const;

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
