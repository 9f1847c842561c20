// stb_image decoder (Debian libstb): PNG, JPEG, GIF (first frame), BMP. Used for GIF always and for everything
// when the build has no OpenCV.
#include <climits>
#include <memory>

#include <stb/stb_image.h>

#include "vision/decode_backends.h"

namespace volt::vision::detail {

Expected<Image> decode_with_stb(const uint8_t* data, size_t size, const ImageProbe& probe, const std::string& label) {
    if (probe.format == ImageFormat::kWebP || probe.format == ImageFormat::kTIFF)
        return unimplemented(label, ": ", image_format_name(probe.format),
                             " images need OpenCV, which this build lacks (stb_image reads PNG, JPEG, GIF, BMP)");
    if (size > static_cast<size_t>(INT_MAX)) return resource_exhausted(label, ": file larger than 2 GiB");
    int w = 0, h = 0, c = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> px(
        stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &c, 0), stbi_image_free);
    if (!px) {
        const char* why = stbi_failure_reason();
        return data_loss(label, ": stb_image could not decode the ", image_format_name(probe.format),
                         " data: ", why ? why : "unknown error");
    }
    if (c < 1 || c > 4) return invalid_argument(label, ": unsupported channel count ", c);
    Image im = make_image(w, h, static_cast<PixelLayout>(c));
    std::copy(px.get(), px.get() + im.pixels.size(), im.pixels.begin());
    return im;
}

}  // namespace volt::vision::detail
