// The separable PIL filter against Pillow's own output (written by tools/make_vision_fixture.py): shrinking by
// large and small factors, enlarging, one axis only, RGBA (premultiplied) and palette (NEAREST) sources. Equality
// is exact: the reference resizes are 8-bit PNGs.
#include "vision/image_decode.h"
#include "vision/pil_resample.h"
#include "vision_test_util.h"

namespace volt::vision {
namespace {

TEST(PilResample, MatchesPillowByteForByte) {
    int checked = 0;
    for (const auto& r : test::manifest()["resizes"]) {
        const std::string file = r["file"];
        SCOPED_TRACE(file);
        auto src = decode_image_file(test::image_path(r["source"]));
        auto ref = decode_image_file(test::reference_path(file));
        ASSERT_TRUE(src && ref);
        auto out = pil_resize(*src, r["width"].get<int>(), r["height"].get<int>());
        ASSERT_TRUE(out) << out.status().to_string();
        EXPECT_EQ(test::max_abs_diff(to_rgb(*out), *ref), 0);
        ++checked;
    }
    EXPECT_GE(checked, 9);
}

TEST(PilResample, OpenCVStyleFixedTapCubicWouldNotMatch) {
    // Guard against a regression to a fixed 4-tap cubic: shrinking 1000 -> 336 must spread each output over
    // ceil(2 * 1000/336) * 2 + 1 = 13 input taps; a black/white stripe pattern keeps the difference visible.
    Image im = make_image(1000, 1, PixelLayout::kGray);
    for (int x = 0; x < 1000; ++x) im.pixels[x] = (x / 2) % 2 ? 255 : 0;
    const Image out = pil_resize_bicubic(im, 336, 1);
    int lo = 255, hi = 0;
    for (int x = 10; x < 326; ++x) { lo = std::min<int>(lo, out.pixels[x]); hi = std::max<int>(hi, out.pixels[x]); }
    EXPECT_LT(hi - lo, 60) << "antialiasing filter should average the 2-pixel stripes towards grey";
}

TEST(PilResample, PremultiplicationRoundTripsOpaquePixelsAndZeroesTransparentOnes) {
    Image im = make_image(2, 1, PixelLayout::kRGBA);
    im.pixels = {200, 100, 50, 255, 200, 100, 50, 0};
    pil_premultiply_alpha(im);
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{200, 100, 50, 255, 0, 0, 0, 0}));
    Image half = make_image(1, 1, PixelLayout::kRGBA);
    half.pixels = {200, 100, 50, 128};
    pil_premultiply_alpha(half);
    EXPECT_EQ(half.pixels, (std::vector<uint8_t>{100, 50, 25, 128}));
    pil_unpremultiply_alpha(half);
    EXPECT_EQ(half.pixels, (std::vector<uint8_t>{199, 99, 49, 128}));  // 255*100/128 = 199 (integer division)
}

TEST(PilResample, RejectsEmptyTargets) {
    const Image im = make_image(4, 4, PixelLayout::kRGB);
    EXPECT_EQ(pil_resize(im, 0, 4).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(pil_resize(im, 4, -1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace volt::vision
