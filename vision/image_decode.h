// Image decoding for the vision pipeline: files and memory buffers (the C ABI passes bytes) in PNG, JPEG (grey,
// colour, CMYK), GIF (first frame), BMP, and WebP/TIFF when OpenCV is present. OpenCV decodes when the build has it
// (imdecode, IMREAD_UNCHANGED so that nothing is converted behind our back), stb_image otherwise and always for GIF
// (OpenCV 4.6 has no GIF reader). The header is probed first: the pixel cap is enforced before any allocation and
// truncated files are refused. The EXIF orientation is applied afterwards, as transformers' load_image does with
// PIL.ImageOps.exif_transpose before the processor runs.
//
// CMYK JPEGs are read with libjpeg directly when the build has it (raw inverted CMYK, resized in CMYK and converted
// with PIL's formula afterwards, as PIL does).
// Differences from PIL that remain (tests pin the rest to exact equality): without libjpeg, CMYK JPEGs are
// converted to RGB by OpenCV's or stb_image's formula before resizing; stb_image's JPEG IDCT differs from libjpeg's by
// +-1 on some pixels; transparent pixels of a GIF decoded by stb_image are black where PIL shows the palette colour;
// 16-bit images keep their high byte (PIL does the same for RGB, but resizes 16-bit grey in 32-bit mode).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "sdk/status.h"
#include "vision/image.h"
#include "vision/image_probe.h"

namespace volt::vision {

// PIL refuses images above 2 * Image.MAX_IMAGE_PIXELS (DecompressionBombError); so do we by default.
inline constexpr int64_t kDefaultMaxImagePixels = 178956970;

enum class DecoderBackend : uint8_t { kAuto, kOpenCV, kStb };

struct DecodeOptions {
    int64_t max_pixels = kDefaultMaxImagePixels;  // width*height above this: RESOURCE_EXHAUSTED
    DecoderBackend backend = DecoderBackend::kAuto;
    bool apply_exif_orientation = true;
};

bool opencv_available();  // this build decodes with OpenCV
bool cmyk_jpeg_exact();    // this build reads CMYK JPEGs with libjpeg (PIL-exact)

// `label` names the source in errors (a path, or e.g. "image #2 (memory)").
Expected<Image> decode_image(const uint8_t* data, size_t size, const std::string& label,
                             const DecodeOptions& options = {});
Expected<Image> decode_image_file(const std::filesystem::path& path, const DecodeOptions& options = {});

// The size the image will have after decoding and EXIF orientation, from the header alone (no pixel is decoded):
// what callers need to count an image's tokens (count_image_tokens) before paying for decoding. Same checks as
// decode_image up to the pixel cap.
struct ImageSize {
    int64_t width = 0, height = 0;
};
Expected<ImageSize> probe_image_size(const uint8_t* data, size_t size, const std::string& label,
                                     const DecodeOptions& options = {});

// PIL's ImageOps.exif_transpose for orientation 1..8 (2: mirror, 3: rotate 180, 6: rotate 90 clockwise, ...).
Image apply_exif_orientation(const Image& image, int orientation);

}  // namespace volt::vision
