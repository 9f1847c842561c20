#include "vision/image_packing.h"

#include <cstring>

namespace volt::vision {

Expected<Tensor> pack_image_features(const Tensor& feats, const AnyresLayout& L, const Tensor& newline) {
    const int64_t p = L.patches_per_side, pp = p * p;
    if (feats.dtype() != DType::kF32 || feats.rank() != 3 || feats.dim(0) != L.num_crops() || feats.dim(1) != pp)
        return invalid_argument("pack_image_features: expected f32 [", L.num_crops(), ", ", pp, ", hidden], got ",
                                feats.to_string());
    const int64_t H = feats.dim(2);
    if (newline.dtype() != DType::kF32 || newline.numel() != H)
        return invalid_argument("pack_image_features: image_newline must be f32 [", H, "], got ", newline.to_string());
    VOLT_ASSIGN_OR_RETURN(const Tensor f, feats.contiguous());
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({L.num_tokens(), H}, DType::kF32));
    const float* src = f.data_as<float>();
    float* dst = out.data_as<float>();
    const size_t row_bytes = sizeof(float) * H;
    std::memcpy(dst, src, row_bytes * pp);  // thumbnail
    dst += pp * H;
    for (int64_t y = L.unpad_top; y < L.feat_h - L.unpad_top; ++y) {
        for (int64_t x = L.unpad_left; x < L.feat_w - L.unpad_left; ++x) {
            const int64_t crop = 1 + (y / p) * L.cols + (x / p);
            const int64_t idx = (y % p) * p + (x % p);
            std::memcpy(dst, src + (crop * pp + idx) * H, row_bytes);
            dst += H;
        }
        std::memcpy(dst, newline.data(), row_bytes);
        dst += H;
    }
    return out;
}

}  // namespace volt::vision
