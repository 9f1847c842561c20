// PIL-compatible resizing (Pillow's Resample.c and Geometry.c, reproduced to the byte). The reference processor
// resizes with PIL's BICUBIC, which is a separable convolution whose support grows with the shrink factor (so it
// antialiases when shrinking), computed in 22-bit fixed point with an 8-bit rounded intermediate between the
// horizontal and the vertical pass. OpenCV's INTER_CUBIC samples a fixed 4x4 neighbourhood and differs.
//
// pil_resize follows PIL's Image.resize dispatch: same size -> copy; palette/bilevel sources -> NEAREST (PIL
// ignores the requested filter for "P" and "1"); layouts with alpha -> premultiply, filter, un-premultiply
// ("RGBA" -> "RGBa" -> "RGBA"); otherwise BICUBIC per channel.
#pragma once

#include "sdk/status.h"
#include "vision/image.h"

namespace volt::vision {

// [out_h, out_w, C] from [H, W, C]; out_w, out_h >= 1.
Expected<Image> pil_resize(const Image& src, int out_w, int out_h);

// The raw filters, on whatever channels the image holds (no alpha handling).
Image pil_resize_bicubic(const Image& src, int out_w, int out_h);
Image pil_resize_nearest(const Image& src, int out_w, int out_h);

// PIL's RGBA <-> RGBa conversions (alpha premultiplication in 8 bits), in place; no-ops without alpha.
void pil_premultiply_alpha(Image& image);
void pil_unpremultiply_alpha(Image& image);

}  // namespace volt::vision
