// Shared helpers of the vision tests: fixture paths, the manifest written by tools/make_vision_fixture.py, and a
// VLConfig with MiniMax-VL-01's preprocessing geometry.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sdk/config.h"
#include "vision/image.h"
#include "vision/image_decode.h"

namespace volt::vision::test {

inline std::filesystem::path vision_data() { return std::filesystem::path(VOLT_TEST_DATA_DIR) / "vision"; }
inline std::filesystem::path image_path(const std::string& name) { return vision_data() / "images" / name; }
inline std::filesystem::path reference_path(const std::string& name) { return vision_data() / "reference" / name; }

inline const nlohmann::json& manifest() {
    static const nlohmann::json m = [] {
        std::ifstream f(reference_path("manifest.json"));
        return nlohmann::json::parse(f);
    }();
    return m;
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& b) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// MiniMax-VL-01's vision geometry (336 crops, 14-pixel patches, the 28 grids from the manifest).
inline VLConfig vl01_geometry() {
    VLConfig vl;
    vl.vision.image_size = 336;
    vl.vision.patch_size = 14;
    for (const auto& p : manifest()["pinpoints"]) vl.grid_pinpoints.emplace_back(p[0].get<int64_t>(), p[1].get<int64_t>());
    return vl;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
// WebP and TIFF need OpenCV; builds without it (stb_image only) refuse them with UNIMPLEMENTED.
inline bool format_supported(const std::string& name) {
    return opencv_available() || !(ends_with(name, ".webp") || ends_with(name, ".tif"));
}
// Whether decoding is expected to be byte-identical to PIL: libjpeg (through OpenCV) is; stb_image's JPEG IDCT
// differs by +-1 on some pixels.
inline bool decode_exact(const std::string& name) { return opencv_available() || !ends_with(name, ".jpg"); }

// Largest absolute difference of two same-sized 8-bit images (255+1 if their shapes differ).
inline int max_abs_diff(const Image& a, const Image& b) {
    if (a.width != b.width || a.height != b.height || a.layout != b.layout) return 256;
    int m = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i) m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
    return m;
}

}  // namespace volt::vision::test
