// Internal: the two pixel decoders behind decode_image. Each returns 8-bit pixels in RGB(A)/grey order with the
// layout given by the decoded channel count; the caller applies the probe's palette rule, the cap and EXIF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "sdk/status.h"
#include "vision/image.h"
#include "vision/image_probe.h"

namespace volt::vision::detail {

bool opencv_compiled_in();
Expected<Image> decode_with_opencv(const uint8_t* data, size_t size, const ImageProbe& probe, const std::string& label);
Expected<Image> decode_with_stb(const uint8_t* data, size_t size, const ImageProbe& probe, const std::string& label);

// CMYK JPEGs through libjpeg directly (built when libjpeg is found): the raw, inverted CMYK samples PIL holds
// ("CMYK;I"), layout kCMYK, so resizing and the CMYK->RGB conversion can follow PIL exactly. OpenCV and stb_image
// only return their own RGB conversion.
bool libjpeg_compiled_in();
Expected<Image> decode_cmyk_jpeg(const uint8_t* data, size_t size, const std::string& label);

}  // namespace volt::vision::detail
