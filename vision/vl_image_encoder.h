// Image -> prompt features for MiniMax-VL-01 on the CPU: decode (vision/image_decode.h), anyres preprocessing,
// CLIP ViT over the crops in batches, projector, packing. Loads only the vision side of a VL model directory
// (`vision_tower.vision_model.*`, `multi_modal_projector.*`, `image_newline`); the text backbone is separate.
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

struct ImageEncodeOptions {
    // Per-image token budget (0: none). An image that needs more is refused with RESOURCE_EXHAUSTED before any
    // work; it is never downscaled behind the caller's back. count_tokens() tells the cost up front.
    int64_t max_tokens_per_image = 0;
    int64_t crops_per_batch = 8;  // ViT batch: bounds activation memory (~40 MB a crop for VL-01)
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
    static Expected<std::unique_ptr<VLImageEncoder>> load(const std::filesystem::path& model_dir);

    const VLConfig& config() const { return vl_; }
    int64_t text_hidden() const { return projector_.text_hidden(); }

    // Tokens an image of this size (after EXIF orientation) takes in the prompt.
    Expected<int64_t> count_tokens(int64_t width, int64_t height) const { return count_image_tokens(width, height, vl_); }
    // The same, RESOURCE_EXHAUSTED (naming size, cost and budget) above `max_tokens` (0: no budget): the one check
    // behind ImageEncodeOptions::max_tokens_per_image and the chat sessions' budget.
    Expected<int64_t> count_tokens_within(int64_t width, int64_t height, int64_t max_tokens) const;

    Expected<EncodedImage> encode(const Image& image, const ImageEncodeOptions& options = {}) const;
    Expected<EncodedImage> encode_file(const std::filesystem::path& path, const ImageEncodeOptions& options = {}) const;

    // The tower's features of preprocessed crops, f32 [crops, 576, vision hidden] (tests and benchmarks).
    Expected<Tensor> vit_features(const Tensor& pixel_values, int64_t crops_per_batch = 8,
                                  const std::function<bool()>& cancelled = {}) const;

private:
    VLConfig vl_;
    NormalizeParams norm_;
    Checkpoint checkpoint_;
    ClipVisionTower tower_;
    VLProjector projector_;
};

}  // namespace volt::vision
