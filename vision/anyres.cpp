#include "vision/anyres.h"

#include <algorithm>
#include <limits>
#include <tuple>

namespace volt::vision {

std::pair<int64_t, int64_t> select_best_resolution(int64_t w0, int64_t h0,
                                                   const std::vector<std::pair<int64_t, int64_t>>& pinpoints) {
    // Same double arithmetic as the Python reference: scale = min(W / w0, H / h0), int() truncation.
    std::pair<int64_t, int64_t> best{0, 0};
    int64_t max_effective = 0;
    int64_t min_wasted = std::numeric_limits<int64_t>::max();
    bool found = false;
    for (const auto& [H, W] : pinpoints) {
        const double scale = std::min(static_cast<double>(W) / static_cast<double>(w0),
                                      static_cast<double>(H) / static_cast<double>(h0));
        const int64_t dw = static_cast<int64_t>(static_cast<double>(w0) * scale);
        const int64_t dh = static_cast<int64_t>(static_cast<double>(h0) * scale);
        const int64_t effective = std::min(dw * dh, w0 * h0);
        const int64_t wasted = W * H - effective;
        if (!found || effective > max_effective || (effective == max_effective && wasted < min_wasted)) {
            // `!found` mirrors Python, where the first candidate wins against the initial (0, inf) even at 0.
            found = true;
            max_effective = effective;
            min_wasted = wasted;
            best = {H, W};
        }
    }
    return best;
}

Expected<AnyresLayout> plan_anyres(int64_t w0, int64_t h0, const VLConfig& vl) {
    if (w0 <= 0 || h0 <= 0) return invalid_argument("image size ", w0, "x", h0, ": must be positive");
    const VisionConfig& v = vl.vision;
    if (v.image_size <= 0 || v.patch_size <= 0 || v.image_size % v.patch_size != 0)
        return invalid_argument("vision_config: image_size ", v.image_size, " is not a multiple of patch_size ",
                                v.patch_size);
    if (vl.grid_pinpoints.empty()) return invalid_argument("image_grid_pinpoints: empty");
    for (const auto& [H, W] : vl.grid_pinpoints)
        if (H <= 0 || W <= 0 || H % v.image_size != 0 || W % v.image_size != 0)
            return invalid_argument("image_grid_pinpoints: [", H, ", ", W, "] is not a multiple of the crop size ",
                                    v.image_size);
    AnyresLayout L;
    L.image_w = w0;
    L.image_h = h0;
    L.crop_size = v.image_size;
    L.patches_per_side = v.image_size / v.patch_size;
    std::tie(L.canvas_h, L.canvas_w) = select_best_resolution(w0, h0, vl.grid_pinpoints);
    const int64_t W = L.canvas_w, H = L.canvas_h;
    // keepratio_resize: `if w / h > W / H` in floating point; the other side is int(W * h / w).
    if (static_cast<double>(w0) / static_cast<double>(h0) > static_cast<double>(W) / static_cast<double>(H)) {
        L.resized_w = W;
        L.resized_h = static_cast<int64_t>(static_cast<double>(W * h0) / static_cast<double>(w0));
        L.pad_top = (H - L.resized_h) / 2;
    } else {
        L.resized_h = H;
        L.resized_w = static_cast<int64_t>(static_cast<double>(H * w0) / static_cast<double>(h0));
        L.pad_left = (W - L.resized_w) / 2;
    }
    if (L.resized_w < 1 || L.resized_h < 1)
        return invalid_argument("image size ", w0, "x", h0, ": aspect ratio too extreme; it would be resized to ",
                                L.resized_w, "x", L.resized_h, " inside the ", W, "x", H, " grid");
    L.rows = H / v.image_size;
    L.cols = W / v.image_size;
    // get_w_h_num / unpad_image in feature units (one feature per patch).
    const int64_t Hf = H / v.patch_size, Wf = W / v.patch_size;
    L.feat_h = Hf;
    L.feat_w = Wf;
    if (static_cast<double>(w0) / static_cast<double>(h0) > static_cast<double>(Wf) / static_cast<double>(Hf)) {
        const int64_t new_h = (h0 * Wf) / w0;
        L.unpad_top = (Hf - new_h) / 2;
    } else {
        const int64_t new_w = (w0 * Hf) / h0;
        L.unpad_left = (Wf - new_w) / 2;
    }
    L.unpadded_h = Hf - 2 * L.unpad_top;
    L.unpadded_w = Wf - 2 * L.unpad_left;
    return L;
}

Expected<int64_t> count_image_tokens(int64_t width, int64_t height, const VLConfig& vl) {
    VOLT_ASSIGN_OR_RETURN(const AnyresLayout L, plan_anyres(width, height, vl));
    return L.num_tokens();
}

}  // namespace volt::vision
