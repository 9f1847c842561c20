// VL logits on the tiny VL model against the reference (tools/make_vision_fixture.py: the tiny-text reference model
// run on inputs_embeds with the packed features spliced in), for prompts with 1 and 2 images: images encoded by
// VLImageEncoder, image tokens expanded, token embeddings from the backbone with the features spliced in, and the
// backbone's embeddings forward (the path `volt logits --image` takes, tested there through the CLI).
#include <cmath>
#include <sstream>

#include "sdk/npy.h"
#include "text/minimax_text_model.h"
#include "vision/image_prompt.h"
#include "vision/vl_image_encoder.h"
#include "vision_test_util.h"

namespace volt::vision {
namespace {

double rel_fro(const Tensor& a, const Tensor& b) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < b.numel(); ++i) {
        const double d = double(a.data_as<float>()[i]) - b.data_as<float>()[i];
        num += d * d;
        den += double(b.data_as<float>()[i]) * b.data_as<float>()[i];
    }
    return std::sqrt(num / den);
}

TEST(VLLogits, OneAndTwoImagePromptsMatchTheReference) {
    const auto dir = test::vision_data() / "tiny-vl";
    auto cfg = load_model_config(dir);
    ASSERT_TRUE(cfg) << cfg.status().to_string();
    auto encoder = VLImageEncoder::load(dir);
    ASSERT_TRUE(encoder) << encoder.status().to_string();
    auto model = MiniMaxTextModel::load(dir, {.language_model_of_vl = true});
    ASSERT_TRUE(model) << model.status().to_string();
    std::ifstream mf(dir / "reference" / "manifest.json");
    const auto manifest = nlohmann::json::parse(mf);
    const int32_t image_token = static_cast<int32_t>(cfg->vl->image_token_index);
    int checked = 0;
    for (const auto& p : manifest["prompts"]) {
        SCOPED_TRACE(p["name"].get<std::string>());
        std::ifstream f(dir / p["ids"].get<std::string>());
        const auto ids = nlohmann::json::parse(f).get<std::vector<int32_t>>();
        std::vector<Tensor> feats;
        std::vector<int64_t> counts;
        for (const auto& name : p["images"]) {
            if (!test::decode_exact(name)) GTEST_SKIP() << "stb_image JPEG differs from PIL";
            auto e = encoder->get()->encode_file(test::image_path(name));
            ASSERT_TRUE(e) << e.status().to_string();
            counts.push_back(e->features.dim(0));
            feats.push_back(e->features);
        }
        auto prompt = expand_image_tokens(ids, image_token, counts);
        ASSERT_TRUE(prompt) << prompt.status().to_string();
        auto emb = model->get()->embed(prompt->ids);
        ASSERT_TRUE(emb) << emb.status().to_string();
        ASSERT_TRUE(splice_image_features(*emb, *prompt, feats));
        auto cache = model->get()->new_cache(static_cast<int64_t>(prompt->ids.size()));
        ASSERT_TRUE(cache);
        auto logits = model->get()->forward_embeddings(*emb, *cache, LogitsMode::kAll);
        ASSERT_TRUE(logits) << logits.status().to_string();
        auto ref = read_npy(dir / p["logits"].get<std::string>());
        ASSERT_TRUE(ref);
        ASSERT_EQ(logits->shape(), ref->shape());
        const double err = rel_fro(*logits, *ref);
        EXPECT_LE(err, 1e-4);
        std::ostringstream os;
        os << std::scientific << err;
        RecordProperty(p["name"].get<std::string>() + "_logits_rel_fro", os.str());
        // Splicing the images in the wrong order must show: the check is not blind to the features.
        if (feats.size() == 2) {
            auto swapped = expand_image_tokens(ids, image_token, std::vector<int64_t>{counts[1], counts[0]});
            ASSERT_TRUE(swapped);
            auto emb2 = model->get()->embed(swapped->ids);
            ASSERT_TRUE(emb2);
            const std::vector<Tensor> rev = {feats[1], feats[0]};
            ASSERT_TRUE(splice_image_features(*emb2, *swapped, rev));
            auto cache2 = model->get()->new_cache(static_cast<int64_t>(swapped->ids.size()));
            auto wrong = model->get()->forward_embeddings(*emb2, *cache2, LogitsMode::kAll);
            ASSERT_TRUE(wrong);
            EXPECT_GT(rel_fro(*wrong, *ref), 1e-2);
        }
        ++checked;
    }
    EXPECT_EQ(checked, 2);
}

}  // namespace
}  // namespace volt::vision
