// What an encoded image's header says before any pixel is decoded: the container format, the size (so that a
// 30000x30000 file is refused before 2.7 GB are allocated), whether PIL would hold it as a palette/bilevel image
// (which PIL resizes with NEAREST), the EXIF orientation, and whether the file is complete (decoders such as
// libjpeg fill a truncated JPEG with grey and report success; PIL refuses it, so do we).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sdk/status.h"

namespace volt::vision {

enum class ImageFormat : uint8_t { kPNG, kJPEG, kGIF, kBMP, kWebP, kTIFF };
std::string_view image_format_name(ImageFormat f);

struct ImageProbe {
    ImageFormat format = ImageFormat::kPNG;
    int64_t width = 0, height = 0;  // as stored, before the EXIF orientation is applied
    bool palette = false;           // PIL mode "P" or "1": PNG colour type 3 or 1-bit grey, GIF, BMP <= 8 bpp
    bool cmyk = false;              // a 4-component JPEG
    int orientation = 1;            // EXIF orientation 1..8 (1 when absent or invalid)
};

// Reads the header (and for JPEG/PNG walks the segment/chunk structure to the end marker). `label` names the
// source in errors. INVALID_ARGUMENT: not an image of a supported format, or a zero/negative size; DATA_LOSS:
// truncated or structurally corrupt.
Expected<ImageProbe> probe_image(const uint8_t* data, size_t size, const std::string& label);

// EXIF orientation (tag 0x0112) from a TIFF-structured EXIF blob ("II*\0..." or "MM\0*..."), 1 if absent/invalid.
int exif_orientation_from_tiff(const uint8_t* data, size_t size);

}  // namespace volt::vision
