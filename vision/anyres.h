// MiniMax-VL-01's "anyres" plan for one image (minimax01-architecture.md §5), computed from the image size alone so
// that callers can count an image's tokens before encoding it:
//   - canvas: select_best_resolution over the configured grids (max effective resolution, ties -> least waste);
//   - the image is resized preserving its aspect ratio to fit the canvas (the long side fills it, the other side is
//     floor(...)), pasted centred on a zero canvas, and the canvas is cut into crop_size tiles, row-major;
//   - crop 0 is the whole image resized to crop_size x crop_size (aspect not preserved);
//   - features: thumbnail (p*p, p = crop_size / patch), then the (rows*p) x (cols*p) tile map with the rows (or
//     columns) that correspond to padding dropped, an image_newline after every row.
// The arithmetic follows the processor's integer formulas (keepratio_resize, get_w_h_num) so that the token count
// equals the number of features the packing produces.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "sdk/config.h"
#include "sdk/status.h"

namespace volt::vision {

struct AnyresLayout {
    int64_t image_w = 0, image_h = 0;     // input size (after EXIF orientation)
    int64_t crop_size = 0;                // vision image_size (336)
    int64_t canvas_w = 0, canvas_h = 0;   // the chosen grid
    int64_t resized_w = 0, resized_h = 0; // the image inside the canvas
    int64_t pad_left = 0, pad_top = 0;    // where it is pasted
    int64_t rows = 0, cols = 0;           // tiles
    int64_t patches_per_side = 0;         // p = crop_size / patch_size (24)
    int64_t feat_h = 0, feat_w = 0;       // tile feature map before unpadding: rows*p x cols*p
    int64_t unpad_top = 0, unpad_left = 0;      // feature rows/cols dropped at the top / left (same at the bottom / right)
    int64_t unpadded_h = 0, unpadded_w = 0;     // h', w'

    int64_t num_crops() const { return 1 + rows * cols; }
    int64_t thumbnail_tokens() const { return patches_per_side * patches_per_side; }
    // 576 + h' * w' + h' for VL-01.
    int64_t num_tokens() const { return thumbnail_tokens() + unpadded_h * (unpadded_w + 1); }
};

// (height, width) of the grid the reference picks for a width x height image; pinpoints are (height, width).
std::pair<int64_t, int64_t> select_best_resolution(int64_t width, int64_t height,
                                                   const std::vector<std::pair<int64_t, int64_t>>& pinpoints);

// INVALID_ARGUMENT for a non-positive size, grids that are not multiples of the crop size, or an aspect ratio so
// extreme that the resized image would be 0 pixels wide/high (the reference processor fails there too).
Expected<AnyresLayout> plan_anyres(int64_t width, int64_t height, const VLConfig& vl);

// Tokens one image of this size expands to in the prompt (plan_anyres(...).num_tokens()).
Expected<int64_t> count_image_tokens(int64_t width, int64_t height, const VLConfig& vl);

}  // namespace volt::vision
