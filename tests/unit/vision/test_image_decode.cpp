// Decoding: header probing, every fixture format through the default backend and from memory, stb_image against
// OpenCV on lossless formats, and refusal of empty, unknown, truncated, zero-sized and oversized inputs.
#include <random>

#include "sdk/status.h"
#include "vision/image_decode.h"
#include "vision/image_probe.h"
#include "vision_test_util.h"

namespace volt::vision {
namespace {

using test::image_path;
using test::manifest;
using test::read_bytes;

class TempFile {
public:
    explicit TempFile(const std::string& name)
        : path_(std::filesystem::temp_directory_path() / ("volt-vision-" + std::to_string(::getpid()) + "-" + name)) {}
    ~TempFile() {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

Status decode_bytes(const std::vector<uint8_t>& b, const std::string& label = "mem") {
    return decode_image(b.data(), b.size(), label).status();
}

TEST(ImageProbe, EveryFixtureReportsItsStoredSizeModeAndOrientation) {
    for (const auto& e : manifest()["images"]) {
        const std::string name = e["name"];
        SCOPED_TRACE(name);
        const auto bytes = read_bytes(image_path(name));
        auto p = probe_image(bytes.data(), bytes.size(), name);
        ASSERT_TRUE(p) << p.status().to_string();
        EXPECT_EQ(p->width, e["stored_w"].get<int64_t>());
        EXPECT_EQ(p->height, e["stored_h"].get<int64_t>());
        EXPECT_EQ(p->palette, e["pil_mode"] == "P" || e["pil_mode"] == "1");
        EXPECT_EQ(p->cmyk, e["pil_mode"] == "CMYK");
        const bool swapped = e["width"] != e["stored_w"];
        const int want_orientation = name.find("exif_rot") == 0 ? name[8] - '0' : 1;
        EXPECT_EQ(p->orientation, want_orientation);
        EXPECT_EQ(swapped, want_orientation >= 5);
    }
}

TEST(ImageDecode, EveryFixtureDecodesToItsDisplayedSizeFromFileAndMemory) {
    for (const auto& e : manifest()["images"]) {
        const std::string name = e["name"];
        SCOPED_TRACE(name);
        if (!test::format_supported(name)) {
            EXPECT_EQ(decode_image_file(image_path(name)).status().code(), StatusCode::kUnimplemented);
            continue;
        }
        auto from_file = decode_image_file(image_path(name));
        ASSERT_TRUE(from_file) << from_file.status().to_string();
        EXPECT_EQ(from_file->width, e["width"].get<int>());
        EXPECT_EQ(from_file->height, e["height"].get<int>());
        EXPECT_EQ(from_file->nearest_resample, e["pil_mode"] == "P");
        const std::string mode = e["pil_mode"];
        const PixelLayout want = mode == "L"                         ? PixelLayout::kGray
                                 : mode == "RGBA" || mode == "LA"     ? PixelLayout::kRGBA
                                 : mode == "CMYK" && cmyk_jpeg_exact() ? PixelLayout::kCMYK
                                                                       : PixelLayout::kRGB;
        if (mode != "LA" || opencv_available()) {  // stb keeps LA as 2 channels
            EXPECT_EQ(from_file->layout, want);
        }
        const auto bytes = read_bytes(image_path(name));
        auto from_memory = decode_image(bytes.data(), bytes.size(), "buffer");
        ASSERT_TRUE(from_memory) << from_memory.status().to_string();
        EXPECT_EQ(from_memory->pixels, from_file->pixels);
        // The header alone gives the displayed size (token counting before decoding).
        auto size = probe_image_size(bytes.data(), bytes.size(), "buffer");
        ASSERT_TRUE(size);
        EXPECT_EQ(size->width, from_file->width);
        EXPECT_EQ(size->height, from_file->height);
    }
}

TEST(ImageDecode, StbFallbackMatchesOpenCVOnLosslessFormats) {
    if (!opencv_available()) GTEST_SKIP() << "built without OpenCV: stb_image is the only decoder";
    for (const char* name : {"tiny_5x7.png", "drawing_1000x1000.png", "alpha_300x200.png", "palette_200x150.png",
                             "exif_rot8_160x90.png", "bmp24_123x77.bmp", "gray_alpha_90x60.png"}) {
        SCOPED_TRACE(name);
        DecodeOptions cv_opt, stb_opt;
        cv_opt.backend = DecoderBackend::kOpenCV;
        stb_opt.backend = DecoderBackend::kStb;
        auto a = decode_image_file(image_path(name), cv_opt);
        auto b = decode_image_file(image_path(name), stb_opt);
        ASSERT_TRUE(a) << a.status().to_string();
        ASSERT_TRUE(b) << b.status().to_string();
        // LA: OpenCV expands grey+alpha to RGBA, stb keeps 2 channels; compare as RGB + alpha.
        EXPECT_EQ(test::max_abs_diff(to_rgb(*a), to_rgb(*b)), 0);
        EXPECT_EQ(a->nearest_resample, b->nearest_resample);
    }
}

TEST(ImageDecode, OrientationMatchesPilExifTranspose) {
    // Orientation k applied to a 3x2 image with distinct pixels, against PIL's documented transposes.
    Image im = make_image(3, 2, PixelLayout::kGray);
    for (int i = 0; i < 6; ++i) im.pixels[i] = static_cast<uint8_t>(i);  // rows: [0 1 2] [3 4 5]
    const std::vector<std::pair<int, std::vector<uint8_t>>> cases = {
        {2, {2, 1, 0, 5, 4, 3}},  {3, {5, 4, 3, 2, 1, 0}},  {4, {3, 4, 5, 0, 1, 2}}, {5, {0, 3, 1, 4, 2, 5}},
        {6, {3, 0, 4, 1, 5, 2}},  {7, {5, 2, 4, 1, 3, 0}},  {8, {2, 5, 1, 4, 0, 3}}};
    for (const auto& [o, want] : cases) {
        SCOPED_TRACE(o);
        const Image r = apply_exif_orientation(im, o);
        EXPECT_EQ(r.width, o >= 5 ? 2 : 3);
        EXPECT_EQ(r.pixels, want);
    }
}

TEST(ImageDecode, EmptyAndUnknownDataAreInvalidArguments) {
    EXPECT_EQ(decode_bytes({}).code(), StatusCode::kInvalidArgument);
    const Status s = decode_bytes({'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}, "notes.txt");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("notes.txt"), std::string::npos);
    EXPECT_NE(s.message().find("PNG, JPEG"), std::string::npos);
    EXPECT_EQ(decode_image_file("/nonexistent/volt.png").status().code(), StatusCode::kNotFound);
}

TEST(ImageDecode, TruncatedFilesAreDataLoss) {
    for (const char* name : {"photo_640x480.jpg", "tiny_5x7.png", "drawing_1000x1000.png", "frame_120x90.gif",
                             "bmp24_123x77.bmp", "webp_210x140.webp", "big_2100x2100.jpg"}) {
        SCOPED_TRACE(name);
        const auto bytes = read_bytes(image_path(name));
        for (double frac : {0.5, 0.9}) {
            std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() * frac));
            const Status s = decode_bytes(cut, name);
            EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.to_string();
            EXPECT_NE(s.message().find(name), std::string::npos);
        }
    }
}

// A structurally complete PNG (signature, IHDR, empty IDAT, IEND) of any claimed size; CRCs are not checked by the
// probe, which is all these cases reach.
std::vector<uint8_t> png_header_only(uint32_t w, uint32_t h) {
    std::vector<uint8_t> b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    auto be32 = [&](uint32_t v) { for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s)); };
    auto chunk = [&](const char* type, const std::vector<uint8_t>& body) {
        be32(static_cast<uint32_t>(body.size()));
        b.insert(b.end(), type, type + 4);
        b.insert(b.end(), body.begin(), body.end());
        be32(0);  // CRC
    };
    std::vector<uint8_t> ihdr;
    for (uint32_t v : {w, h}) for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<uint8_t>(v >> s));
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
    chunk("IHDR", ihdr);
    chunk("IDAT", {});
    chunk("IEND", {});
    return b;
}

TEST(ImageDecode, ZeroSizedImagesAreInvalidArguments) {
    for (auto [w, h] : {std::pair<uint32_t, uint32_t>{0, 10}, {10, 0}, {0, 0}}) {
        const Status s = decode_bytes(png_header_only(w, h), "zero.png");
        EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
        EXPECT_NE(s.message().find("zero"), std::string::npos);
    }
}

TEST(ImageDecode, HugeImagesAreRefusedBeforeDecoding) {
    const Status png = decode_bytes(png_header_only(30000, 30000), "huge.png");
    EXPECT_EQ(png.code(), StatusCode::kResourceExhausted) << png.to_string();
    EXPECT_NE(png.message().find("30000x30000"), std::string::npos);
    EXPECT_NE(png.message().find("huge.png"), std::string::npos);

    // A real JPEG whose frame header claims 30000x30000.
    auto jpg = read_bytes(image_path("photo_640x480.jpg"));
    for (size_t i = 2; i + 9 < jpg.size(); ++i)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            jpg[i + 5] = 30000 >> 8; jpg[i + 6] = 30000 & 0xff; jpg[i + 7] = 30000 >> 8; jpg[i + 8] = 30000 & 0xff;
            break;
        }
    EXPECT_EQ(decode_bytes(jpg, "huge.jpg").code(), StatusCode::kResourceExhausted);

    // The cap is the caller's: a 640x480 image passes at 307200 pixels and fails at 307199.
    DecodeOptions opt;
    opt.max_pixels = 640 * 480;
    EXPECT_TRUE(decode_image_file(image_path("photo_640x480.jpg"), opt));
    opt.max_pixels -= 1;
    EXPECT_EQ(decode_image_file(image_path("photo_640x480.jpg"), opt).status().code(), StatusCode::kResourceExhausted);
}

TEST(ImageDecode, RandomCorruptionNeverCrashes) {
    // Flipped bytes anywhere (headers included): every call returns, either an image of the header's size or an
    // error; none may crash or hang. Sanitizer builds make this a memory-safety check too.
    std::mt19937 rng(7);
    for (const char* name : {"photo_640x480.jpg", "tiny_5x7.png", "frame_120x90.gif", "bmp24_123x77.bmp",
                             "webp_210x140.webp", "tiff_150x100.tif", "exif_rot6_320x240.jpg"}) {
        SCOPED_TRACE(name);
        const auto bytes = read_bytes(image_path(name));
        for (int trial = 0; trial < 40; ++trial) {
            auto b = bytes;
            const int flips = 1 + static_cast<int>(rng() % 8);
            for (int k = 0; k < flips; ++k) b[rng() % std::min<size_t>(b.size(), trial % 2 ? 64 : b.size())] ^= 1u << (rng() % 8);
            auto r = decode_image(b.data(), b.size(), name);
            if (r) {
                EXPECT_EQ(r->pixels.size(), static_cast<size_t>(r->width) * r->height * r->channels());
            }
        }
    }
}

}  // namespace
}  // namespace volt::vision
