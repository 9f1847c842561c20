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
    const bool cmyk = src.layout == PixelLayout::kCMYK;
    for (size_t i = 0; i < n; ++i, s += c, d += 3) {
        if (cmyk) {
            // Pillow Convert.c cmyk2rgb: nk = 255 - k; out = CLIP8(nk - MULDIV255(c, nk)).
            const int nk = 255 - s[3];
            for (int ch = 0; ch < 3; ++ch) {
                const int t = s[ch] * nk + 128;
                const int v = nk - (((t >> 8) + t) >> 8);
                d[ch] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        } else if (c <= 2) {
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
