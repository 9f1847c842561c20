#include "vision/image_preprocess.h"

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "vision/pil_resample.h"

namespace volt::vision {

Expected<NormalizeParams> load_normalize_params(const std::filesystem::path& model_dir) {
    NormalizeParams p;
    const auto path = model_dir / "preprocessor_config.json";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return p;
    std::ifstream f(path);
    const nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return invalid_argument(path.string(), ": not a JSON object");
    for (const char* key : {"image_mean", "image_std"}) {
        if (!j.contains(key)) continue;
        const auto& a = j[key];
        if (!a.is_array() || a.size() != 3 || !a[0].is_number() || !a[1].is_number() || !a[2].is_number())
            return invalid_argument(path.string(), ": '", key, "' must be a list of 3 numbers");
        auto& dst = std::strcmp(key, "image_mean") == 0 ? p.mean : p.std;
        for (int c = 0; c < 3; ++c) dst[c] = a[c].get<float>();
    }
    for (int c = 0; c < 3; ++c)
        if (!(p.std[c] > 0)) return invalid_argument(path.string(), ": image_std must be positive");
    return p;
}

Expected<PreprocessedImage> preprocess_image(const Image& image, const VLConfig& vl, const NormalizeParams& norm) {
    PreprocessedImage out;
    VOLT_ASSIGN_OR_RETURN(out.layout, plan_anyres(image.width, image.height, vl));
    const AnyresLayout& L = out.layout;
    const int S = static_cast<int>(L.crop_size);

    // Resizing happens in the source's own mode (premultiplied alpha, NEAREST for palettes) and only then is the
    // result converted to RGB, as the reference does.
    VOLT_ASSIGN_OR_RETURN(Image thumb, pil_resize(image, S, S));
    out.crops_rgb8.push_back(to_rgb(thumb));

    VOLT_ASSIGN_OR_RETURN(Image resized, pil_resize(image, static_cast<int>(L.resized_w), static_cast<int>(L.resized_h)));
    const Image rgb = to_rgb(resized);
    Image canvas = make_image(static_cast<int>(L.canvas_w), static_cast<int>(L.canvas_h), PixelLayout::kRGB);
    for (int y = 0; y < rgb.height; ++y)
        std::memcpy(canvas.row(static_cast<int>(L.pad_top) + y) + L.pad_left * 3, rgb.row(y), rgb.row_bytes());
    for (int64_t r = 0; r < L.rows; ++r)
        for (int64_t c = 0; c < L.cols; ++c) {
            Image tile = make_image(S, S, PixelLayout::kRGB);
            for (int y = 0; y < S; ++y)
                std::memcpy(tile.row(y), canvas.row(static_cast<int>(r * S) + y) + c * S * 3, tile.row_bytes());
            out.crops_rgb8.push_back(std::move(tile));
        }

    VOLT_ASSIGN_OR_RETURN(out.pixel_values, Tensor::empty({L.num_crops(), 3, S, S}, DType::kF32));
    float* px = out.pixel_values.data_as<float>();
    const size_t plane = static_cast<size_t>(S) * S;
    for (size_t k = 0; k < out.crops_rgb8.size(); ++k) {
        const uint8_t* s = out.crops_rgb8[k].pixels.data();
        float* d = px + k * 3 * plane;
        for (size_t i = 0; i < plane; ++i)
            for (int c = 0; c < 3; ++c) {
                // torchvision: ToTensor is u8 / 255 in float32, Normalize is (x - mean) / std in float32.
                const float x = static_cast<float>(s[i * 3 + c]) / 255.0f;
                d[c * plane + i] = (x - norm.mean[c]) / norm.std[c];
            }
    }
    return out;
}

}  // namespace volt::vision
