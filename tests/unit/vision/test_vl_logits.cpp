// VL logits on the tiny VL model against the reference (tools/make_vision_fixture.py: the tiny-text reference model
// run on inputs_embeds with the packed features spliced in), for prompts with 1 and 2 images.
//
// The text backbone (text/minimax_text_model.h) takes token ids only, so this test feeds the spliced embeddings
// through its public from_tensors() by appending one embedding row per image token (holding that token's feature)
// and pointing the expanded image positions at those rows; lm_head gets matching zero rows, and only the real
// vocabulary's logits are compared. That checks everything the vision side contributes to VL logits (decoding,
// preprocessing, tower, projector, packing, token expansion and splice order) end to end; `volt logits --image`
// needs the backbone to accept embeddings directly, which is the text side's change.
#include <cmath>
#include <unordered_map>

#include "sdk/checkpoint.h"
#include "sdk/npy.h"
#include "text/minimax_text_model.h"
#include "vision/image_prompt.h"
#include "vision/vl_image_encoder.h"
#include "vision_test_util.h"

namespace volt::vision {
namespace {

double rel_fro(const float* a, const float* b, int64_t rows, int64_t cols, int64_t a_stride) {
    double num = 0, den = 0;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const double d = double(a[r * a_stride + c]) - b[r * cols + c];
            num += d * d;
            den += double(b[r * cols + c]) * b[r * cols + c];
        }
    return std::sqrt(num / den);
}

TEST(VLLogits, OneAndTwoImagePromptsMatchTheReference) {
    const auto dir = test::vision_data() / "tiny-vl";
    auto cfg = load_model_config(dir);
    ASSERT_TRUE(cfg) << cfg.status().to_string();
    auto encoder = VLImageEncoder::load(dir);
    ASSERT_TRUE(encoder) << encoder.status().to_string();
    auto ck = Checkpoint::open(dir);
    ASSERT_TRUE(ck);
    std::ifstream mf(dir / "reference" / "manifest.json");
    const auto manifest = nlohmann::json::parse(mf);
    const int32_t image_token = static_cast<int32_t>(cfg->vl->image_token_index);
    const int64_t V = cfg->text.vocab_size, H = cfg->text.hidden_size;
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
        const int64_t n = static_cast<int64_t>(prompt->ids.size()), extra = n;  // one spare row per position

        // Spliced embeddings [n, H]: token rows, then the image features in order.
        Tensor emb = Tensor::empty({n, H}, DType::kF32).value();
        const Tensor table = ck->view("language_model.model.embed_tokens.weight").value().to(DType::kF32).value();
        for (int64_t i = 0; i < n; ++i)
            std::copy_n(table.data_as<float>() + int64_t(prompt->ids[i]) * H, H, emb.data_as<float>() + i * H);
        ASSERT_TRUE(splice_image_features(emb, *prompt, feats));

        // A backbone whose vocabulary has a private row per position: id V + i embeds as emb[i].
        std::unordered_map<std::string, Tensor> w;
        for (const auto& name : ck->names())
            if (name.rfind("language_model.", 0) == 0) w.emplace(name.substr(15), ck->view(name).value());
        Tensor big_embed = Tensor::zeros({V + extra, H}, DType::kF32).value();
        Tensor big_head = Tensor::zeros({V + extra, H}, DType::kF32).value();
        std::copy_n(table.data_as<float>(), V * H, big_embed.data_as<float>());
        std::copy_n(emb.data_as<float>(), n * H, big_embed.data_as<float>() + V * H);
        const Tensor head = w.at("lm_head.weight").to(DType::kF32).value();
        std::copy_n(head.data_as<float>(), V * H, big_head.data_as<float>());
        w["model.embed_tokens.weight"] = big_embed;
        w["lm_head.weight"] = big_head;
        TextConfig tc = cfg->text;
        tc.vocab_size = V + extra;
        auto model = MiniMaxTextModel::from_tensors(tc, w, "tiny-vl language_model");
        ASSERT_TRUE(model) << model.status().to_string();
        std::vector<int32_t> run_ids(n);
        for (int64_t i = 0; i < n; ++i) run_ids[i] = static_cast<int32_t>(V + i);
        auto cache = model->get()->new_cache(n);
        ASSERT_TRUE(cache);
        auto logits = model->get()->forward(run_ids, *cache, LogitsMode::kAll);
        ASSERT_TRUE(logits) << logits.status().to_string();

        auto ref = read_npy(dir / p["logits"].get<std::string>());
        ASSERT_TRUE(ref);
        ASSERT_EQ(ref->dim(0), n);
        ASSERT_EQ(ref->dim(1), V);
        const double err = rel_fro(logits->data_as<float>(), ref->data_as<float>(), n, V, V + extra);
        EXPECT_LE(err, 1e-4);
        RecordProperty(p["name"].get<std::string>() + "_logits_rel_fro", std::to_string(err * 1e6) + "e-6");
        ++checked;
    }
    EXPECT_EQ(checked, 2);
}

}  // namespace
}  // namespace volt::vision
