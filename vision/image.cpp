#include "vision/image.h"

namespace volt::vision {

Image make_image(int width, int height, PixelLayout layout) {
    Image im;
    im.width = width;
    im.height = height;
    im.layout = layout;
    im.pixels.assign(static_cast<size_t>(width) * height * channel_count(layout), 0);
    return im;
}

Image to_rgb(const Image& src) {
    if (src.layout == PixelLayout::kRGB) return src;
    Image out = make_image(src.width, src.height, PixelLayout::kRGB);
    out.nearest_resample = src.nearest_resample;
    const size_t n = static_cast<size_t>(src.width) * src.height;
    const int c = src.channels();
    const uint8_t* s = src.pixels.data();
    uint8_t* d = out.pixels.data();
    for (size_t i = 0; i < n; ++i, s += c, d += 3) {
        if (c <= 2) {
            d[0] = d[1] = d[2] = s[0];
        } else {
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
    return out;
}

}  // namespace volt::vision
