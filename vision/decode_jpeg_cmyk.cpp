// libjpeg decoder for CMYK JPEGs (see decode_backends.h). libjpeg reports fatal errors through error_exit, which
// must not return: it longjmps back here. No object with a destructor lives between setjmp and the jump.
#include <csetjmp>
#include <cstdio>
#include <vector>

#include <jpeglib.h>

#include "vision/decode_backends.h"

namespace volt::vision::detail {
namespace {

struct ErrorManager {
    jpeg_error_mgr pub;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

void on_warning(j_common_ptr cinfo, int level) {
    // Corrupt-data warnings (level -1) mean libjpeg substituted data; PIL raises for truncation, which
    // probe_image already refuses, and tolerates the rest. Stay quiet like PIL.
    (void)cinfo;
    (void)level;
}

}  // namespace

bool libjpeg_compiled_in() { return true; }

Expected<Image> decode_cmyk_jpeg(const uint8_t* data, size_t size, const std::string& label) {
    jpeg_decompress_struct cinfo;
    ErrorManager err;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_warning;
    Image* out = new Image();  // raw pointer: survives a longjmp, freed on both paths
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        delete out;
        return data_loss(label, ": libjpeg could not decode the CMYK JPEG: ", err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components != 4) {
        jpeg_destroy_decompress(&cinfo);
        delete out;
        return invalid_argument(label, ": expected a 4-component (CMYK) JPEG, found ", cinfo.num_components);
    }
    cinfo.out_color_space = JCS_CMYK;  // YCCK files are converted to CMYK by libjpeg, as PIL asks too
    jpeg_start_decompress(&cinfo);
    out->width = static_cast<int>(cinfo.output_width);
    out->height = static_cast<int>(cinfo.output_height);
    out->layout = PixelLayout::kCMYK;
    out->pixels.resize(static_cast<size_t>(out->width) * out->height * 4);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out->pixels.data() + static_cast<size_t>(cinfo.output_scanline) * out->width * 4;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    // PIL reads every CMYK JPEG as "CMYK;I" (Adobe's inverted convention): v -> 255 - v.
    for (uint8_t& v : out->pixels) v = static_cast<uint8_t>(255 - v);
    Image result = std::move(*out);
    delete out;
    return result;
}

}  // namespace volt::vision::detail
