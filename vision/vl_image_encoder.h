// Image -> prompt features for MiniMax-VL-01: decode (vision/image_decode.h), anyres preprocessing, CLIP ViT over
// the crops, projector, packing. Loads only the vision side of a VL model directory (`vision_tower.vision_model.*`,
// `multi_modal_projector.*`, `image_newline`); the text backbone is separate. The ViT and the projector run on the
// CPU (fp32, in batches of crops_per_batch) or on one CUDA GPU (vision/cuda: bf16, all crops of an image in one
// forward, CUDA graphs per crop count); decoding, preprocessing and packing run on the host either way, and the
// features come back as host f32.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "sdk/checkpoint.h"
#include "sdk/config.h"
#include "sdk/status.h"
#include "sdk/tensor.h"
#include "vision/anyres.h"
#include "vision/clip_vision_tower.h"
#include "vision/image.h"
#include "vision/image_decode.h"
#include "vision/image_preprocess.h"
#include "vision/vl_projector.h"

namespace volt::vision {

class ClipVisionTowerCuda;  // vision/cuda/clip_vision_tower_cuda.h (CUDA builds)

struct ImageEncodeOptions {
    // Per-image token budget (0: none). An image that needs more is refused with RESOURCE_EXHAUSTED before any
    // work; it is never downscaled behind the caller's back. count_tokens() tells the cost up front.
    int64_t max_tokens_per_image = 0;
    int64_t crops_per_batch = 8;  // CPU ViT batch: bounds activation memory (~40 MB a crop for VL-01); the GPU
                                  // runs all crops of an image at once (~14 MB a crop)
    DecodeOptions decode;
    // Asked between ViT layers (may be empty): true stops the encoding with CANCELLED.
    std::function<bool()> cancelled;
};

struct EncodedImage {
    AnyresLayout layout;
    Tensor pixel_values;  // f32 [crops, 3, S, S]
    Tensor features;      // f32 [layout.num_tokens(), text hidden], prompt order
};

class VLImageEncoder {
public:
    // DIR/config.json must describe a VL model; its checkpoint must hold every vision tensor with the configured
    // shapes (all problems reported at once, naming the checkpoint). Text tensors are not read.
    // `device`: the CPU, or one CUDA GPU (a build with CUDA; UNIMPLEMENTED otherwise): the vision weights then live
    // on that GPU as bf16 (the CPU copies are not made).
    static Expected<std::unique_ptr<VLImageEncoder>> load(const std::filesystem::path& model_dir,
                                                          Device device = Device::cpu());
    VLImageEncoder();
    ~VLImageEncoder();

    Device device() const { return device_; }

    const VLConfig& config() const { return vl_; }
    int64_t text_hidden() const { return text_hidden_; }

    // Tokens an image of this size (after EXIF orientation) takes in the prompt.
    Expected<int64_t> count_tokens(int64_t width, int64_t height) const { return count_image_tokens(width, height, vl_); }
    // The same, RESOURCE_EXHAUSTED (naming size, cost and budget) above `max_tokens` (0: no budget): the one check
    // behind ImageEncodeOptions::max_tokens_per_image and the chat sessions' budget.
    Expected<int64_t> count_tokens_within(int64_t width, int64_t height, int64_t max_tokens) const;

    Expected<EncodedImage> encode(const Image& image, const ImageEncodeOptions& options = {}) const;
    Expected<EncodedImage> encode_file(const std::filesystem::path& path, const ImageEncodeOptions& options = {}) const;

    // The tower's features of preprocessed crops, f32 [crops, 576, vision hidden] (tests and benchmarks);
    // crops_per_batch applies on the CPU.
    Expected<Tensor> vit_features(const Tensor& pixel_values, int64_t crops_per_batch = 8,
                                  const std::function<bool()>& cancelled = {}) const;
    // The projector alone: f32 [rows, vision hidden] (host) -> f32 [rows, text hidden] (host), on the encoder's
    // device (tests).
    Expected<Tensor> project(const Tensor& features) const;

    // The GPU tower when device() is CUDA, else null (benchmarks).
    const ClipVisionTowerCuda* cuda_tower() const;

    struct Gpu;  // the CUDA tower + projector (vision/cuda), when device() is CUDA

private:
    // f32 [crops, N, text hidden] of preprocessed crops: ViT + projector on the encoder's device.
    Expected<Tensor> crop_features(const Tensor& pixel_values, const ImageEncodeOptions& options) const;

    VLConfig vl_;
    NormalizeParams norm_;
    Checkpoint checkpoint_;
    Device device_ = Device::cpu();
    int64_t text_hidden_ = 0;
    Tensor newline_;  // f32 [text hidden], host
    ClipVisionTower tower_;  // CPU only
    VLProjector projector_;  // CPU only
    std::unique_ptr<Gpu> gpu_;
};

}  // namespace volt::vision
