// Expanding image tokens and splicing features, against the fixture's VL prompts (their expanded lengths come
// from tools/make_vision_fixture.py) and the error cases.
#include <fstream>

#include "vision/image_prompt.h"
#include "vision/vl_image_encoder.h"
#include "vision_test_util.h"

namespace volt::vision {
namespace {

TEST(ImagePrompt, ExpansionMatchesTheFixturePrompts) {
    const auto dir = test::vision_data() / "tiny-vl";
    std::ifstream mf(dir / "reference" / "manifest.json");
    const auto m = nlohmann::json::parse(mf);
    const int32_t image_token = m["image_token_index"];
    for (const auto& p : m["prompts"]) {
        SCOPED_TRACE(p["name"].get<std::string>());
        std::ifstream f(dir / p["ids"].get<std::string>());
        const std::vector<int32_t> ids = nlohmann::json::parse(f).get<std::vector<int32_t>>();
        std::vector<int64_t> counts;
        for (const auto& name : p["images"]) {
            const auto bytes = test::read_bytes(test::image_path(name));
            auto size = probe_image_size(bytes.data(), bytes.size(), name);
            ASSERT_TRUE(size);
            auto n = count_image_tokens(size->width, size->height, test::vl01_geometry());
            ASSERT_TRUE(n);
            counts.push_back(*n);
        }
        auto e = expand_image_tokens(ids, image_token, counts);
        ASSERT_TRUE(e) << e.status().to_string();
        EXPECT_EQ(static_cast<int64_t>(e->ids.size()), p["expanded_tokens"].get<int64_t>());
        ASSERT_EQ(e->spans.size(), counts.size());
        int64_t text = 0;
        for (size_t i = 0; i < e->ids.size(); ++i) text += e->ids[i] != image_token;
        EXPECT_EQ(text, static_cast<int64_t>(ids.size() - counts.size()));
        for (const auto& s : e->spans)
            for (int64_t i = 0; i < s.length; ++i) EXPECT_EQ(e->ids[s.begin + i], image_token);
    }
}

TEST(ImagePrompt, SplicesRowsInOrderAndChecksShapes) {
    const std::vector<int32_t> ids = {1, 9, 2, 9, 3};
    const std::vector<int64_t> counts = {2, 3};
    auto e = expand_image_tokens(ids, 9, counts);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->ids, (std::vector<int32_t>{1, 9, 9, 2, 9, 9, 9, 3}));
    Tensor emb = Tensor::zeros({8, 2}, DType::kF32).value();
    Tensor a = Tensor::empty({2, 2}, DType::kF32).value(), b = Tensor::empty({3, 2}, DType::kF32).value();
    for (int i = 0; i < 4; ++i) a.data_as<float>()[i] = 10.0f + i;
    for (int i = 0; i < 6; ++i) b.data_as<float>()[i] = 20.0f + i;
    const std::vector<Tensor> feats = {a, b};
    ASSERT_TRUE(splice_image_features(emb, *e, feats));
    const std::vector<float> want = {0, 0, 10, 11, 12, 13, 0, 0, 20, 21, 22, 23, 24, 25, 0, 0};
    EXPECT_EQ(std::vector<float>(emb.data_as<float>(), emb.data_as<float>() + 16), want);
    const std::vector<Tensor> swapped = {b, a};
    EXPECT_EQ(splice_image_features(emb, *e, swapped).code(), StatusCode::kInvalidArgument);
}

TEST(ImagePrompt, ImageCountMustMatchTheImageTokens) {
    const std::vector<int32_t> ids = {1, 9, 2};
    const std::vector<int64_t> two = {5, 5}, none = {};
    const Status s = expand_image_tokens(ids, 9, two).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("1 image token"), std::string::npos);
    EXPECT_EQ(expand_image_tokens(ids, 9, none).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace volt::vision
