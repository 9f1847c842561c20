// OpenCV decoder (built when VOLT_HAVE_OPENCV). IMREAD_UNCHANGED keeps grey as grey, alpha as alpha and skips
// OpenCV's own EXIF rotation (decode_image applies PIL's); BGR(A) is swapped to RGB(A), 16-bit keeps the high byte.
#include <exception>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "vision/decode_backends.h"

namespace volt::vision::detail {

bool opencv_compiled_in() { return true; }

Expected<Image> decode_with_opencv(const uint8_t* data, size_t size, const ImageProbe& probe, const std::string& label) {
    if (size > static_cast<size_t>(INT32_MAX)) return resource_exhausted(label, ": file larger than 2 GiB");
    cv::Mat m;
    try {
        const cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
        m = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
    } catch (const std::exception& e) {
        return data_loss(label, ": OpenCV could not decode the ", image_format_name(probe.format), " data: ", e.what());
    }
    if (m.empty())
        return data_loss(label, ": OpenCV could not decode the ", image_format_name(probe.format),
                         " data (corrupt, or a variant this OpenCV build does not read)");
    if (m.depth() == CV_16U) {
        // PIL keeps the high byte (x >> 8); cv::convertTo would round x / 256 instead.
        cv::Mat m8(m.rows, m.cols, CV_MAKETYPE(CV_8U, m.channels()));
        for (int y = 0; y < m.rows; ++y) {
            const uint16_t* s = m.ptr<uint16_t>(y);
            uint8_t* d = m8.ptr<uint8_t>(y);
            for (int i = 0; i < m.cols * m.channels(); ++i) d[i] = static_cast<uint8_t>(s[i] >> 8);
        }
        m = m8;
    } else if (m.depth() != CV_8U) {
        return invalid_argument(label, ": unsupported sample type (only 8- and 16-bit images are read)");
    }
    const int c = m.channels();
    if (c != 1 && c != 3 && c != 4) return invalid_argument(label, ": unsupported channel count ", c);
    Image im = make_image(m.cols, m.rows, c == 1 ? PixelLayout::kGray : c == 3 ? PixelLayout::kRGB : PixelLayout::kRGBA);
    for (int y = 0; y < m.rows; ++y) {
        const uint8_t* s = m.ptr<uint8_t>(y);
        uint8_t* d = im.row(y);
        for (int x = 0; x < m.cols; ++x, s += c, d += c) {
            if (c == 1) {
                d[0] = s[0];
            } else {
                d[0] = s[2];
                d[1] = s[1];
                d[2] = s[0];
                if (c == 4) d[3] = s[3];
            }
        }
    }
    return im;
}

}  // namespace volt::vision::detail
