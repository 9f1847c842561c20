#include "vision/image_probe.h"

#include <cstring>

namespace volt::vision {
namespace {

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[1] << 8 | p[0]); }
uint32_t le24(const uint8_t* p) { return uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }
uint32_t le32(const uint8_t* p) { return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0]; }

// Tags of a TIFF structure's first IFD that matter here (TIFF files and EXIF blobs share the layout).
struct TiffTags {
    int64_t width = 0, height = 0;
    int photometric = -1, bits_per_sample = 8, orientation = 1;
};

bool read_tiff_ifd0(const uint8_t* d, size_t n, TiffTags& t) {
    if (n < 8) return false;
    const bool le = d[0] == 'I' && d[1] == 'I';
    if (!le && !(d[0] == 'M' && d[1] == 'M')) return false;
    auto u16 = [&](size_t off) { return le ? le16(d + off) : be16(d + off); };
    auto u32 = [&](size_t off) { return le ? le32(d + off) : be32(d + off); };
    if (u16(2) != 42) return false;
    const size_t ifd = u32(4);
    if (ifd + 2 > n) return false;
    const size_t count = u16(ifd);
    for (size_t i = 0; i < count; ++i) {
        const size_t e = ifd + 2 + 12 * i;
        if (e + 12 > n) return false;
        const uint16_t tag = u16(e), type = u16(e + 2);
        int64_t value;
        if (type == 3) value = u16(e + 8);        // SHORT, inline
        else if (type == 4) value = u32(e + 8);   // LONG, inline
        else continue;
        switch (tag) {
            case 256: t.width = value; break;
            case 257: t.height = value; break;
            case 258: t.bits_per_sample = static_cast<int>(value); break;
            case 262: t.photometric = static_cast<int>(value); break;
            case 274: t.orientation = (value >= 1 && value <= 8) ? static_cast<int>(value) : 1; break;
            default: break;
        }
    }
    return true;
}

Status truncated(const std::string& label, std::string_view format, std::string_view what) {
    return data_loss(label, ": truncated or corrupt ", format, " file (", what, ")");
}

Status check_size(const std::string& label, int64_t w, int64_t h) {
    if (w <= 0 || h <= 0)
        return invalid_argument(label, ": image has a zero or negative size (", w, "x", h, ")");
    return Status::ok();
}

Expected<ImageProbe> probe_png(const uint8_t* d, size_t n, const std::string& label) {
    ImageProbe p;
    p.format = ImageFormat::kPNG;
    size_t pos = 8;
    bool seen_ihdr = false;
    for (;;) {
        if (pos + 8 > n) return truncated(label, "PNG", "no IEND chunk");
        const uint32_t len = be32(d + pos);
        const uint8_t* type = d + pos + 4;
        if (len > 0x7fffffffu) return truncated(label, "PNG", "chunk length out of range");
        if (pos + 12 + static_cast<size_t>(len) > n) return truncated(label, "PNG", "chunk runs past the end of the file");
        const uint8_t* body = d + pos + 8;
        if (!seen_ihdr) {
            if (std::memcmp(type, "IHDR", 4) != 0 || len < 13) return truncated(label, "PNG", "first chunk is not IHDR");
            seen_ihdr = true;
            p.width = be32(body);
            p.height = be32(body + 4);
            const int bit_depth = body[8], colour_type = body[9];
            p.palette = colour_type == 3 || (colour_type == 0 && bit_depth == 1);
        } else if (std::memcmp(type, "eXIf", 4) == 0) {
            p.orientation = exif_orientation_from_tiff(body, len);
        } else if (std::memcmp(type, "IEND", 4) == 0) {
            break;
        }
        pos += 12 + static_cast<size_t>(len);
    }
    VOLT_RETURN_IF_ERROR(check_size(label, p.width, p.height));
    return p;
}

bool is_sof(uint8_t m) { return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC; }

Expected<ImageProbe> probe_jpeg(const uint8_t* d, size_t n, const std::string& label) {
    ImageProbe p;
    p.format = ImageFormat::kJPEG;
    bool seen_sof = false, seen_exif = false;
    size_t pos = 2;
    for (;;) {
        if (pos >= n) return truncated(label, "JPEG", "no end-of-image marker");
        if (d[pos] != 0xFF) return truncated(label, "JPEG", "expected a marker");
        while (pos < n && d[pos] == 0xFF) ++pos;  // fill bytes
        if (pos >= n) return truncated(label, "JPEG", "no end-of-image marker");
        const uint8_t m = d[pos++];
        if (m == 0xD9) break;                                   // EOI
        if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;   // standalone markers
        if (pos + 2 > n) return truncated(label, "JPEG", "segment header past the end");
        const size_t len = be16(d + pos);
        if (len < 2 || pos + len > n) return truncated(label, "JPEG", "segment runs past the end of the file");
        const uint8_t* seg = d + pos + 2;
        const size_t seg_len = len - 2;
        if (m == 0xE1 && !seen_exif && seg_len >= 6 && std::memcmp(seg, "Exif\0\0", 6) == 0) {
            seen_exif = true;  // PIL reads the first Exif APP1 only
            p.orientation = exif_orientation_from_tiff(seg + 6, seg_len - 6);
        } else if (is_sof(m) && !seen_sof) {
            if (seg_len < 6) return truncated(label, "JPEG", "short frame header");
            seen_sof = true;
            p.height = be16(seg + 1);
            p.width = be16(seg + 3);
            p.cmyk = seg[5] == 4;
        }
        pos += len;
        if (m == 0xDA) {  // SOS: skip the entropy-coded data up to the next real marker
            if (!seen_sof) return truncated(label, "JPEG", "scan before the frame header");
            for (;;) {
                if (pos + 1 >= n) return truncated(label, "JPEG", "image data ends before the end-of-image marker");
                if (d[pos] == 0xFF) {
                    const uint8_t next = d[pos + 1];
                    if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) { pos += 2; continue; }
                    if (next == 0xFF) { ++pos; continue; }
                    break;
                }
                ++pos;
            }
        }
    }
    if (!seen_sof) return truncated(label, "JPEG", "no frame header");
    VOLT_RETURN_IF_ERROR(check_size(label, p.width, p.height));
    return p;
}

// Walks the GIF blocks up to the end of the first frame's image data (the only frame used).
Expected<ImageProbe> probe_gif(const uint8_t* d, size_t n, const std::string& label) {
    ImageProbe p;
    p.format = ImageFormat::kGIF;
    p.palette = true;
    if (n < 13) return truncated(label, "GIF", "short header");
    p.width = le16(d + 6);
    p.height = le16(d + 8);
    size_t pos = 13;
    if (d[10] & 0x80) pos += 3u << ((d[10] & 7) + 1);
    auto skip_sub_blocks = [&]() -> bool {
        for (;;) {
            if (pos >= n) return false;
            const size_t s = d[pos++];
            if (s == 0) return true;
            pos += s;
        }
    };
    for (;;) {
        if (pos >= n) return truncated(label, "GIF", "no image in the file");
        const uint8_t b = d[pos++];
        if (b == 0x21) {  // extension
            if (pos >= n) return truncated(label, "GIF", "extension past the end");
            ++pos;
            if (!skip_sub_blocks()) return truncated(label, "GIF", "extension past the end");
        } else if (b == 0x2C) {  // image descriptor
            if (pos + 9 > n) return truncated(label, "GIF", "image descriptor past the end");
            const uint8_t flags = d[pos + 8];
            pos += 9;
            if (flags & 0x80) pos += 3u << ((flags & 7) + 1);
            ++pos;  // LZW minimum code size
            if (!skip_sub_blocks()) return truncated(label, "GIF", "first frame's data ends early");
            break;
        } else if (b == 0x3B) {
            return truncated(label, "GIF", "no image in the file");
        } else {
            return truncated(label, "GIF", "unknown block");
        }
    }
    VOLT_RETURN_IF_ERROR(check_size(label, p.width, p.height));
    return p;
}

Expected<ImageProbe> probe_bmp(const uint8_t* d, size_t n, const std::string& label) {
    ImageProbe p;
    p.format = ImageFormat::kBMP;
    if (n < 26) return truncated(label, "BMP", "short header");
    const uint32_t data_offset = le32(d + 10), dib = le32(d + 14);
    int bpp = 0;
    uint32_t compression = 0, colours = 0;
    if (dib == 12) {
        p.width = le16(d + 18);
        p.height = le16(d + 20);
        bpp = le16(d + 24);
    } else {
        if (n < 54 || dib < 40) return truncated(label, "BMP", "short info header");
        p.width = static_cast<int32_t>(le32(d + 18));
        p.height = static_cast<int32_t>(le32(d + 22));
        if (p.height < 0) p.height = -p.height;  // top-down rows
        bpp = le16(d + 28);
        compression = le32(d + 30);
        colours = le32(d + 46);
    }
    VOLT_RETURN_IF_ERROR(check_size(label, p.width, p.height));
    if (bpp <= 8) {
        // PIL opens a palette BMP as "L" (or "1" for two colours) when the palette is the identity grey ramp
        // (0,255 for two colours), else as "P"; "P" and "1" are resized with NEAREST.
        const uint32_t n_colours = colours ? colours : (1u << bpp);
        const size_t entry = dib == 12 ? 3 : 4, table = 14 + dib;
        bool grey_ramp = table + entry * n_colours <= n;
        for (uint32_t i = 0; grey_ramp && i < n_colours; ++i) {
            const uint32_t v = n_colours == 2 ? (i ? 255 : 0) : i;
            const uint8_t* e = d + table + entry * i;  // B, G, R
            grey_ramp = e[0] == v && e[1] == v && e[2] == v;
        }
        p.palette = !grey_ramp || n_colours == 2;
    }
    if (compression == 0 || compression == 3) {  // uncompressed rows: the file must hold them all
        const uint64_t stride = ((static_cast<uint64_t>(p.width) * bpp + 31) / 32) * 4;
        if (static_cast<uint64_t>(data_offset) + stride * static_cast<uint64_t>(p.height) > n)
            return truncated(label, "BMP", "pixel data runs past the end of the file");
    }
    return p;
}

Expected<ImageProbe> probe_webp(const uint8_t* d, size_t n, const std::string& label) {
    ImageProbe p;
    p.format = ImageFormat::kWebP;
    if (n < 30) return truncated(label, "WebP", "short header");
    if (static_cast<uint64_t>(le32(d + 4)) + 8 > n) return truncated(label, "WebP", "RIFF size exceeds the file");
    const uint8_t* fourcc = d + 12;
    if (std::memcmp(fourcc, "VP8 ", 4) == 0) {
        if (d[23] != 0x9d || d[24] != 0x01 || d[25] != 0x2a) return truncated(label, "WebP", "bad VP8 start code");
        p.width = le16(d + 26) & 0x3fff;
        p.height = le16(d + 28) & 0x3fff;
    } else if (std::memcmp(fourcc, "VP8L", 4) == 0) {
        if (d[20] != 0x2f) return truncated(label, "WebP", "bad VP8L signature");
        const uint32_t b = le32(d + 21);
        p.width = (b & 0x3fff) + 1;
        p.height = ((b >> 14) & 0x3fff) + 1;
    } else if (std::memcmp(fourcc, "VP8X", 4) == 0) {
        p.width = static_cast<int64_t>(le24(d + 24)) + 1;
        p.height = static_cast<int64_t>(le24(d + 27)) + 1;
        for (size_t pos = 12; pos + 8 <= n;) {
            const size_t len = le32(d + pos + 4);
            if (pos + 8 + len > n) break;
            if (std::memcmp(d + pos, "EXIF", 4) == 0) {
                const uint8_t* e = d + pos + 8;
                const size_t skip = (len >= 6 && std::memcmp(e, "Exif\0\0", 6) == 0) ? 6 : 0;
                p.orientation = exif_orientation_from_tiff(e + skip, len - skip);
            }
            pos += 8 + len + (len & 1);
        }
    } else {
        return invalid_argument(label, ": unsupported WebP chunk layout");
    }
    VOLT_RETURN_IF_ERROR(check_size(label, p.width, p.height));
    return p;
}

Expected<ImageProbe> probe_tiff(const uint8_t* d, size_t n, const std::string& label) {
    ImageProbe p;
    p.format = ImageFormat::kTIFF;
    TiffTags t;
    if (!read_tiff_ifd0(d, n, t)) return truncated(label, "TIFF", "first IFD unreadable");
    p.width = t.width;
    p.height = t.height;
    p.orientation = t.orientation;
    p.palette = t.photometric == 3 || (t.bits_per_sample == 1 && (t.photometric == 0 || t.photometric == 1));
    VOLT_RETURN_IF_ERROR(check_size(label, p.width, p.height));
    return p;
}

}  // namespace

std::string_view image_format_name(ImageFormat f) {
    switch (f) {
        case ImageFormat::kPNG: return "PNG";
        case ImageFormat::kJPEG: return "JPEG";
        case ImageFormat::kGIF: return "GIF";
        case ImageFormat::kBMP: return "BMP";
        case ImageFormat::kWebP: return "WebP";
        case ImageFormat::kTIFF: return "TIFF";
    }
    return "?";
}

int exif_orientation_from_tiff(const uint8_t* data, size_t size) {
    TiffTags t;
    return read_tiff_ifd0(data, size, t) ? t.orientation : 1;
}

Expected<ImageProbe> probe_image(const uint8_t* d, size_t n, const std::string& label) {
    if (n == 0) return invalid_argument(label, ": empty file");
    if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return probe_png(d, n, label);
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return probe_jpeg(d, n, label);
    if (n >= 6 && (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0)) return probe_gif(d, n, label);
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') return probe_bmp(d, n, label);
    if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) return probe_webp(d, n, label);
    if (n >= 4 && (std::memcmp(d, "II*\0", 4) == 0 || std::memcmp(d, "MM\0*", 4) == 0)) return probe_tiff(d, n, label);
    return invalid_argument(label, ": not an image in a supported format (PNG, JPEG, GIF, BMP, WebP, TIFF)");
}

}  // namespace volt::vision
