// Built without OpenCV: decode_image uses stb_image for every format it reads.
#include "vision/decode_backends.h"

namespace volt::vision::detail {

bool opencv_compiled_in() { return false; }

Expected<Image> decode_with_opencv(const uint8_t*, size_t, const ImageProbe& probe, const std::string& label) {
    return unimplemented(label, ": decoding ", image_format_name(probe.format), " needs OpenCV, which this build lacks");
}

}  // namespace volt::vision::detail
