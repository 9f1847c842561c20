// An 8-bit image as the vision pipeline sees it after decoding: interleaved channels, row-major, no padding.
// The channel layout and the resampling rule mirror the PIL image modes the reference processor works on, because
// PIL resamples differently per mode (MiniMax-VL-01's processor resizes the PIL image it was given, then converts
// the result to RGB):
//   kGray (PIL "L")          1 channel, bicubic per channel
//   kGrayAlpha (PIL "LA")    2 channels, bicubic on alpha-premultiplied values, then un-premultiplied
//   kRGB (PIL "RGB")         3 channels, bicubic per channel
//   kRGBA (PIL "RGBA")       4 channels, premultiplied like kGrayAlpha
//   kCMYK (PIL "CMYK")       4 channels (PIL's inverted-Adobe convention), bicubic per channel; converted to RGB
//                            with PIL's cmyk2rgb after resizing
// `nearest_resample` marks images PIL holds as palette ("P") or bilevel ("1"): PIL silently resizes those with
// NEAREST whatever filter is asked for, so the reference does too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace volt::vision {

enum class PixelLayout : uint8_t { kGray = 1, kGrayAlpha = 2, kRGB = 3, kRGBA = 4, kCMYK = 5 };

inline int channel_count(PixelLayout l) { return l == PixelLayout::kCMYK ? 4 : static_cast<int>(l); }
inline bool has_alpha(PixelLayout l) { return l == PixelLayout::kGrayAlpha || l == PixelLayout::kRGBA; }

struct Image {
    int width = 0;
    int height = 0;
    PixelLayout layout = PixelLayout::kRGB;
    bool nearest_resample = false;  // PIL "P" / "1" source: resized with NEAREST (see above)
    std::vector<uint8_t> pixels;    // [height, width, channels]

    int channels() const { return channel_count(layout); }
    size_t row_bytes() const { return static_cast<size_t>(width) * channels(); }
    const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * row_bytes(); }
    uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * row_bytes(); }
};

// A blank image of the given size and layout (zero-filled).
Image make_image(int width, int height, PixelLayout layout);

// The image as RGB, as PIL's convert("RGB"): grey replicated, alpha dropped without compositing, CMYK through
// PIL's cmyk2rgb (r = 255 - k - c * (255 - k) / 255 in 8-bit fixed point).
Image to_rgb(const Image& image);

}  // namespace volt::vision
