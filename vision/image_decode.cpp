#include "vision/image_decode.h"

#include <fstream>
#include <vector>

#include "vision/decode_backends.h"

namespace volt::vision {

bool opencv_available() { return detail::opencv_compiled_in(); }
bool cmyk_jpeg_exact() { return detail::libjpeg_compiled_in(); }

Image apply_exif_orientation(const Image& src, int orientation) {
    if (orientation < 2 || orientation > 8) return src;
    const bool swap = orientation >= 5;  // transpose-like: width and height trade places
    const int W = src.width, H = src.height;
    Image out = make_image(swap ? H : W, swap ? W : H, src.layout);
    out.nearest_resample = src.nearest_resample;
    const int c = src.channels();
    for (int y = 0; y < out.height; ++y) {
        uint8_t* d = out.row(y);
        for (int x = 0; x < out.width; ++x, d += c) {
            int sx = x, sy = y;
            switch (orientation) {
                case 2: sx = W - 1 - x; break;                      // FLIP_LEFT_RIGHT
                case 3: sx = W - 1 - x; sy = H - 1 - y; break;      // ROTATE_180
                case 4: sy = H - 1 - y; break;                      // FLIP_TOP_BOTTOM
                case 5: sx = y; sy = x; break;                      // TRANSPOSE
                case 6: sx = y; sy = H - 1 - x; break;              // ROTATE_270 (90 clockwise)
                case 7: sx = W - 1 - y; sy = H - 1 - x; break;      // TRANSVERSE
                case 8: sx = W - 1 - y; sy = x; break;              // ROTATE_90 (90 counter-clockwise)
                default: break;
            }
            const uint8_t* s = src.row(sy) + static_cast<size_t>(sx) * c;
            for (int k = 0; k < c; ++k) d[k] = s[k];
        }
    }
    return out;
}

namespace {

Status check_pixel_cap(const ImageProbe& probe, const std::string& label, int64_t max_pixels) {
    if (probe.width > max_pixels / probe.height)
        return resource_exhausted(label, ": ", probe.width, "x", probe.height, " image has ", probe.width * probe.height,
                                  " pixels, above the limit of ", max_pixels,
                                  " (DecodeOptions::max_pixels); downscale it before passing it in");
    return Status::ok();
}

}  // namespace

Expected<ImageSize> probe_image_size(const uint8_t* data, size_t size, const std::string& label,
                                     const DecodeOptions& opt) {
    VOLT_ASSIGN_OR_RETURN(const ImageProbe probe, probe_image(data, size, label));
    VOLT_RETURN_IF_ERROR(check_pixel_cap(probe, label, opt.max_pixels));
    const bool swap = opt.apply_exif_orientation && probe.orientation >= 5;
    return ImageSize{swap ? probe.height : probe.width, swap ? probe.width : probe.height};
}

Expected<Image> decode_image(const uint8_t* data, size_t size, const std::string& label, const DecodeOptions& opt) {
    VOLT_ASSIGN_OR_RETURN(const ImageProbe probe, probe_image(data, size, label));
    VOLT_RETURN_IF_ERROR(check_pixel_cap(probe, label, opt.max_pixels));
    DecoderBackend backend = opt.backend;
    if (backend == DecoderBackend::kAuto)
        backend = (detail::opencv_compiled_in() && probe.format != ImageFormat::kGIF) ? DecoderBackend::kOpenCV
                                                                                      : DecoderBackend::kStb;
    if (backend == DecoderBackend::kOpenCV && !detail::opencv_compiled_in())
        return unimplemented(label, ": this build has no OpenCV decoder");
    const bool raw_cmyk = probe.cmyk && opt.backend == DecoderBackend::kAuto && detail::libjpeg_compiled_in();
    Expected<Image> decoded = raw_cmyk ? detail::decode_cmyk_jpeg(data, size, label)
                              : backend == DecoderBackend::kOpenCV ? detail::decode_with_opencv(data, size, probe, label)
                                                                   : detail::decode_with_stb(data, size, probe, label);
    if (!decoded) return decoded.status();
    Image im = std::move(decoded).value();
    if (im.width != probe.width || im.height != probe.height)
        return data_loss(label, ": decoder produced ", im.width, "x", im.height, " but the header says ", probe.width,
                         "x", probe.height);
    if (probe.palette) {
        // PIL holds these as "P"/"1": its convert("RGB") ignores palette transparency, and resizes use NEAREST.
        if (has_alpha(im.layout)) im = to_rgb(im);
        im.nearest_resample = true;
    }
    if (opt.apply_exif_orientation) im = apply_exif_orientation(im, probe.orientation);
    return im;
}

Expected<Image> decode_image_file(const std::filesystem::path& path, const DecodeOptions& opt) {
    const std::string label = path.string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return not_found(label, ": no such image file");
    std::ifstream f(path, std::ios::binary);
    if (!f) return not_found(label, ": cannot open image file");
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return not_found(label, ": cannot read the file size: ", ec.message());
    // A compressed file larger than the raw pixel cap (4 bytes a pixel) cannot be a valid image we accept.
    if (size > static_cast<uintmax_t>(opt.max_pixels) * 4 + (1u << 20))
        return resource_exhausted(label, ": file of ", size, " bytes exceeds what an image of at most ", opt.max_pixels,
                                  " pixels needs");
    std::vector<uint8_t> bytes(size);
    if (size && !f.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
        return data_loss(label, ": read failed");
    return decode_image(bytes.data(), bytes.size(), label, opt);
}

}  // namespace volt::vision
