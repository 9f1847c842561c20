// Image -> crops, exactly as MiniMax-VL-01's processor (anyres_preprocess): the thumbnail (whole image, 336x336,
// aspect not preserved) then the tiles of the zero-padded canvas, row-major; every crop rescaled by 1/255 and
// normalised with the CLIP mean/std in float32 in the order torchvision's ToTensor + Normalize use, so the values
// are bit-identical to the reference when the 8-bit crops are.
#pragma once

#include <array>
#include <filesystem>

#include "sdk/config.h"
#include "sdk/status.h"
#include "sdk/tensor.h"
#include "vision/anyres.h"
#include "vision/image.h"

namespace volt::vision {

struct NormalizeParams {
    std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};  // OpenAI CLIP
    std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
};

// image_mean / image_std from `model_dir`/preprocessor_config.json when present, else the CLIP values.
Expected<NormalizeParams> load_normalize_params(const std::filesystem::path& model_dir);

struct PreprocessedImage {
    AnyresLayout layout;
    std::vector<Image> crops_rgb8;  // num_crops RGB crops before normalisation (for tests and debugging)
    Tensor pixel_values;            // f32 [num_crops, 3, crop, crop]
};

Expected<PreprocessedImage> preprocess_image(const Image& image, const VLConfig& vl, const NormalizeParams& norm = {});

}  // namespace volt::vision
