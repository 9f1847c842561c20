// Built without libjpeg: CMYK JPEGs go through OpenCV / stb_image and their own CMYK->RGB conversion.
#include "vision/decode_backends.h"

namespace volt::vision::detail {

bool libjpeg_compiled_in() { return false; }

Expected<Image> decode_cmyk_jpeg(const uint8_t*, size_t, const std::string& label) {
    return unimplemented(label, ": exact CMYK JPEG decoding needs libjpeg, which this build lacks");
}

}  // namespace volt::vision::detail
