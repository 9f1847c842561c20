// Packing one image's projected crop features into prompt order (LLaVA-NeXT "anyres" + "unpad", as VL-01's
// pack_image_features): the thumbnail's p*p features, then the tiles assembled into a (rows*p) x (cols*p) map,
// the rows (or columns) that cover the canvas padding dropped per AnyresLayout, and image_newline after every row.
// Output rows = layout.num_tokens().
#pragma once

#include "sdk/status.h"
#include "sdk/tensor.h"
#include "vision/anyres.h"

namespace volt::vision {

// crop_features: f32 [num_crops, p*p, H] (crop 0 = thumbnail, then tiles row-major); newline: f32 [H].
// Returns f32 [num_tokens, H].
Expected<Tensor> pack_image_features(const Tensor& crop_features, const AnyresLayout& layout, const Tensor& newline);

}  // namespace volt::vision
