#include "vision/pil_resample.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "sdk/thread_pool.h"

namespace volt::vision {
namespace {

// Pillow: 8 bits for the result, 2 bits of headroom for negative lobes and sums above 1.0.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_filter(double x) {  // Keys cubic, a = -0.5
    constexpr double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}
constexpr double kBicubicSupport = 2.0;

// Per output sample: the first input index, the tap count and the fixed-point weights (Pillow precompute_coeffs
// followed by normalize_coeffs_8bpc; same double arithmetic in the same order).
struct Coeffs {
    int ksize = 0;
    std::vector<int> first, count;
    std::vector<int32_t> k;  // [out, ksize]
};

Coeffs precompute_coeffs(int in_size, int out_size) {
    // PIL passes the box as floats: (in1 - in0) is evaluated in float, then widened.
    const float in0 = 0.0f, in1 = static_cast<float>(in_size);
    const double scale = static_cast<double>(in1 - in0) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = kBicubicSupport * filterscale;
    Coeffs c;
    c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    c.first.resize(out_size);
    c.count.resize(out_size);
    c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
    std::vector<double> w(c.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = in0 + (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            w[x] = bicubic_filter((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
        for (int x = 0; x < xmax; ++x) {
            const double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                         : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
        }
        c.first[xx] = xmin;
        c.count[xx] = xmax;
    }
    return c;
}

inline uint8_t clip8(int32_t v) {
    const int32_t s = v >> kPrecisionBits;  // arithmetic shift, as Pillow's table lookup index
    return static_cast<uint8_t>(s < 0 ? 0 : s > 255 ? 255 : s);
}

// out rows [0, rows) = horizontal filter of src rows [row0, row0 + rows).
void resample_horizontal(const Image& src, int row0, const Coeffs& c, Image& out) {
    const int C = src.channels(), W = out.width;
    ThreadPool::global().parallel_for(out.height, [&](int64_t y0, int64_t y1) {
        for (int64_t y = y0; y < y1; ++y) {
            const uint8_t* s = src.row(static_cast<int>(y) + row0);
            uint8_t* d = out.row(static_cast<int>(y));
            for (int xx = 0; xx < W; ++xx) {
                const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
                const uint8_t* p = s + static_cast<size_t>(c.first[xx]) * C;
                int32_t acc[4] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1),
                                  1 << (kPrecisionBits - 1)};
                for (int x = 0; x < c.count[xx]; ++x, p += C)
                    for (int ch = 0; ch < C; ++ch) acc[ch] += p[ch] * k[x];
                for (int ch = 0; ch < C; ++ch) d[static_cast<size_t>(xx) * C + ch] = clip8(acc[ch]);
            }
        }
    }, 8);
}

void resample_vertical(const Image& src, const Coeffs& c, int first_offset, Image& out) {
    const size_t row_len = out.row_bytes();
    ThreadPool::global().parallel_for(out.height, [&](int64_t y0, int64_t y1) {
        std::vector<int32_t> acc(row_len);
        for (int64_t yy = y0; yy < y1; ++yy) {
            const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
            std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
            const int ymin = c.first[yy] - first_offset;
            for (int y = 0; y < c.count[yy]; ++y) {
                const uint8_t* s = src.row(ymin + y);
                const int32_t ky = k[y];
                for (size_t i = 0; i < row_len; ++i) acc[i] += s[i] * ky;
            }
            uint8_t* d = out.row(static_cast<int>(yy));
            for (size_t i = 0; i < row_len; ++i) d[i] = clip8(acc[i]);
        }
    }, 4);
}

}  // namespace

Image pil_resize_bicubic(const Image& src, int out_w, int out_h) {
    // Pillow ImagingResampleInner (Pillow 13): two passes with an 8-bit rounded intermediate. The horizontal pass
    // runs first (over just the source rows the vertical filter will read), unless the height shrinks by more than
    // twice as many pixels as the width: then the vertical pass runs first. The order changes the result (the
    // intermediate is rounded), so it is part of the contract. Older Pillow releases always ran the horizontal pass
    // first; the fixtures pin Pillow 13.0.0.
    const bool need_h = out_w != src.width, need_v = out_h != src.height;
    const int dh = src.height - out_h, dw = src.width - out_w;
    const bool horizontal_first = !(dh > 0 && dh > dw * 2);
    const Coeffs cv = precompute_coeffs(src.height, out_h);
    Image out;
    if (horizontal_first) {
        const int ybox_first = cv.first[0];
        const int ybox_last = cv.first[out_h - 1] + cv.count[out_h - 1];
        Image tmp;
        const Image* in = &src;
        int offset = 0;
        if (need_h) {
            const Coeffs ch = precompute_coeffs(src.width, out_w);
            tmp = make_image(out_w, ybox_last - ybox_first, src.layout);
            resample_horizontal(src, ybox_first, ch, tmp);
            in = &tmp;
            offset = ybox_first;
        }
        if (need_v) {
            out = make_image(in->width, out_h, src.layout);
            resample_vertical(*in, cv, offset, out);
        } else {
            out = need_h ? std::move(tmp) : src;
        }
    } else {
        Image tmp = make_image(src.width, out_h, src.layout);  // need_v holds: the height shrinks
        resample_vertical(src, cv, 0, tmp);
        if (need_h) {
            const Coeffs ch = precompute_coeffs(src.width, out_w);
            out = make_image(out_w, out_h, src.layout);
            resample_horizontal(tmp, 0, ch, out);
        } else {
            out = std::move(tmp);
        }
    }
    out.nearest_resample = src.nearest_resample;
    return out;
}

Image pil_resize_nearest(const Image& src, int out_w, int out_h) {
    // Pillow _resize -> ImagingScaleAffine: a[0] = in_w / out_w, start at a[0] / 2, accumulate (not multiply).
    const double ax = static_cast<double>(static_cast<float>(src.width)) / out_w;
    const double ay = static_cast<double>(static_cast<float>(src.height)) / out_h;
    auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
    std::vector<int> xs(out_w);
    double xo = 0.0 + ax * 0.5;
    for (int x = 0; x < out_w; ++x, xo += ax) xs[x] = std::clamp(coord(xo), 0, src.width - 1);
    Image out = make_image(out_w, out_h, src.layout);
    out.nearest_resample = src.nearest_resample;
    const int C = src.channels();
    double yo = 0.0 + ay * 0.5;
    for (int y = 0; y < out_h; ++y, yo += ay) {
        const uint8_t* s = src.row(std::clamp(coord(yo), 0, src.height - 1));
        uint8_t* d = out.row(y);
        for (int x = 0; x < out_w; ++x)
            for (int ch = 0; ch < C; ++ch) d[static_cast<size_t>(x) * C + ch] = s[static_cast<size_t>(xs[x]) * C + ch];
    }
    return out;
}

void pil_premultiply_alpha(Image& im) {
    if (!has_alpha(im.layout)) return;
    const int C = im.channels();
    for (size_t i = 0; i < im.pixels.size(); i += C) {
        const unsigned a = im.pixels[i + C - 1];
        for (int ch = 0; ch < C - 1; ++ch) {
            const unsigned t = im.pixels[i + ch] * a + 128;  // MULDIV255
            im.pixels[i + ch] = static_cast<uint8_t>(((t >> 8) + t) >> 8);
        }
    }
}

void pil_unpremultiply_alpha(Image& im) {
    if (!has_alpha(im.layout)) return;
    const int C = im.channels();
    for (size_t i = 0; i < im.pixels.size(); i += C) {
        const unsigned a = im.pixels[i + C - 1];
        if (a == 0 || a == 255) continue;
        for (int ch = 0; ch < C - 1; ++ch)
            im.pixels[i + ch] = static_cast<uint8_t>(std::min(255u, 255u * im.pixels[i + ch] / a));
    }
}

Expected<Image> pil_resize(const Image& src, int out_w, int out_h) {
    if (out_w < 1 || out_h < 1) return invalid_argument("resize to ", out_w, "x", out_h, ": sizes must be >= 1");
    if (src.width < 1 || src.height < 1) return invalid_argument("resize of an empty image");
    if (out_w == src.width && out_h == src.height) return src;
    if (src.nearest_resample) return pil_resize_nearest(src, out_w, out_h);
    if (!has_alpha(src.layout)) return pil_resize_bicubic(src, out_w, out_h);
    Image pre = src;
    pil_premultiply_alpha(pre);
    Image out = pil_resize_bicubic(pre, out_w, out_h);
    pil_unpremultiply_alpha(out);
    return out;
}

}  // namespace volt::vision
