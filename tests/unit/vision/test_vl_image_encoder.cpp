// The vision path end to end on the tiny VL model (tools/make_vision_fixture.py): ViT features against
// transformers' CLIPVisionModel, packed projector features against the torch projector + LLaVA-NeXT packing, token
// counts against the processor formula, another vision_feature_layer, the per-image token budget, and model
// directories with missing or mis-shaped vision tensors.
#include <cmath>
#include <sstream>

#include "sdk/checkpoint.h"
#include "sdk/npy.h"
#include "sdk/safetensors.h"
#include "vision/clip_vision_tower.h"
#include "vision/vl_image_encoder.h"
#include "vision_test_util.h"

namespace volt::vision {
namespace {

std::filesystem::path model_dir() { return test::vision_data() / "tiny-vl"; }

const nlohmann::json& feature_manifest() {
    static const nlohmann::json m = [] {
        std::ifstream f(model_dir() / "reference" / "manifest.json");
        return nlohmann::json::parse(f);
    }();
    return m;
}

const VLImageEncoder& encoder() {
    static const std::unique_ptr<VLImageEncoder> enc = [] {
        auto e = VLImageEncoder::load(model_dir());
        EXPECT_TRUE(e) << e.status().to_string();
        return e ? std::move(e).value() : nullptr;
    }();
    return *enc;
}

// max |a - b| / max |b|
double rel_err(const Tensor& a, const Tensor& b) {
    EXPECT_EQ(a.shape(), b.shape());
    if (!(a.shape() == b.shape())) return 1e30;
    double m = 0, s = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
        m = std::max(m, double(std::fabs(a.data_as<float>()[i] - b.data_as<float>()[i])));
        s = std::max(s, double(std::fabs(b.data_as<float>()[i])));
    }
    return m / s;
}

TEST(VLImageEncoder, PackedFeaturesMatchTheReference) {
    int checked = 0;
    for (const auto& e : feature_manifest()["images"]) {
        SCOPED_TRACE(e["image"].get<std::string>());
        ++checked;
        if (!test::decode_exact(e["image"])) continue;  // stb_image JPEG: pixels differ slightly from PIL's
        auto out = encoder().encode_file(test::image_path(e["image"]));
        ASSERT_TRUE(out) << out.status().to_string();
        EXPECT_EQ(out->layout.num_crops(), e["crops"].get<int64_t>());
        EXPECT_EQ(out->layout.num_tokens(), e["tokens"].get<int64_t>());
        EXPECT_EQ(out->features.dim(0), e["tokens"].get<int64_t>());
        EXPECT_EQ(out->features.dim(1), encoder().text_hidden());
        auto ref = read_npy(model_dir() / e["packed"].get<std::string>());
        ASSERT_TRUE(ref);
        const double err = rel_err(out->features, *ref);
        EXPECT_LE(err, 1e-4);
        std::ostringstream os;
        os << std::scientific << err;
        RecordProperty(e["image"].get<std::string>() + "_packed_rel_err", os.str());
    }
    EXPECT_EQ(checked, static_cast<int>(feature_manifest()["images"].size()));
    EXPECT_GE(checked, 4);
}

TEST(VLImageEncoder, VitFeaturesMatchClipVisionModel) {
    for (const auto& e : feature_manifest()["images"]) {
        if (!e.contains("vit") || !test::decode_exact(e["image"])) continue;
        auto im = decode_image_file(test::image_path(e["image"]));
        ASSERT_TRUE(im);
        auto pre = preprocess_image(*im, encoder().config());
        ASSERT_TRUE(pre);
        for (int64_t batch : {1, 3, 8}) {  // batching over crops must not change anything
            auto f = encoder().vit_features(pre->pixel_values, batch);
            ASSERT_TRUE(f) << f.status().to_string();
            auto ref = read_npy(model_dir() / e["vit"].get<std::string>());
            ASSERT_TRUE(ref);
            EXPECT_LE(rel_err(*f, *ref), 1e-4) << "batch " << batch;
        }
    }
}

TEST(VLImageEncoder, HonoursOtherFeatureLayers) {
    auto cfg = load_model_config(model_dir());
    ASSERT_TRUE(cfg);
    auto ck = Checkpoint::open(model_dir());
    ASSERT_TRUE(ck);
    VLConfig vl = *cfg->vl;
    vl.vision_feature_layer = -2;
    auto tower = ClipVisionTower::load(vl, [&](const std::string& n) { return ck->view(n); });
    ASSERT_TRUE(tower) << tower.status().to_string();
    EXPECT_EQ(tower->layers_run(), static_cast<int>(vl.vision.num_layers) - 1);
    for (const auto& e : feature_manifest()["images"]) {
        if (!e.contains("vit_layer-2")) continue;
        auto im = decode_image_file(test::image_path(e["image"]));
        auto pre = preprocess_image(*im, vl);
        ASSERT_TRUE(pre);
        auto f = tower->encode(pre->pixel_values);
        ASSERT_TRUE(f);
        auto ref = read_npy(model_dir() / e["vit_layer-2"].get<std::string>());
        ASSERT_TRUE(ref);
        EXPECT_LE(rel_err(*f, *ref), 1e-4);
    }
    // A transposed weight (same element count) is refused, naming the tensor.
    const std::string fc1 = "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight";
    auto transposed = ClipVisionTower::load(vl, [&](const std::string& n) -> Expected<Tensor> {
        VOLT_ASSIGN_OR_RETURN(Tensor t, ck->view(n));
        return n == fc1 ? t.transpose(0, 1) : Expected<Tensor>(t);
    });
    EXPECT_EQ(transposed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(transposed.status().message().find(fc1), std::string::npos);
    vl.vision_feature_layer = 7;  // beyond the 3 layers
    EXPECT_EQ(ClipVisionTower::load(vl, [&](const std::string& n) { return ck->view(n); }).status().code(),
              StatusCode::kInvalidArgument);
}

TEST(VLImageEncoder, TokenBudgetIsCheckedBeforeEncodingAndNeverDownscales) {
    auto im = decode_image_file(test::image_path("tiny_5x7.png"));
    ASSERT_TRUE(im);
    auto n = encoder().count_tokens(im->width, im->height);
    ASSERT_TRUE(n);
    ImageEncodeOptions opt;
    opt.max_tokens_per_image = *n - 1;
    const Status s = encoder().encode(*im, opt).status();
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
    EXPECT_NE(s.message().find(std::to_string(*n)), std::string::npos);
    opt.max_tokens_per_image = *n;
    auto ok = encoder().encode(*im, opt);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->features.dim(0), *n);
}

TEST(VLImageEncoder, CorruptImagesNameTheFile) {
    const auto bytes = test::read_bytes(test::image_path("photo_640x480.jpg"));
    const auto path = std::filesystem::temp_directory_path() / ("volt-vl-trunc-" + std::to_string(::getpid()) + ".jpg");
    test::write_bytes(path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 3));
    const Status s = encoder().encode_file(path).status();
    std::filesystem::remove(path);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find(path.filename().string()), std::string::npos);
}

// A copy of tiny-vl's config with only the vision tensors, edited by `edit`.
class BrokenModel {
public:
    template <typename Edit>
    explicit BrokenModel(Edit edit)
        : dir_(std::filesystem::temp_directory_path() / ("volt-vl-broken-" + std::to_string(::getpid()) + "-" +
                                                         std::to_string(counter_++))) {
        std::filesystem::create_directories(dir_);
        std::filesystem::copy_file(model_dir() / "config.json", dir_ / "config.json");
        auto ck = Checkpoint::open(model_dir());
        EXPECT_TRUE(ck);
        std::vector<NamedTensor> tensors;
        for (const auto& n : ck->names())
            if (n.rfind("language_model.", 0) != 0) tensors.push_back({n, ck->view(n).value()});
        edit(tensors);
        EXPECT_TRUE(write_safetensors(dir_ / "model.safetensors", tensors));
    }
    ~BrokenModel() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    const std::filesystem::path& dir() const { return dir_; }

private:
    static inline int counter_ = 0;
    std::filesystem::path dir_;
};

TEST(VLImageEncoder, MissingAndMisShapedVisionTensorsAreReportedTogether) {
    const BrokenModel broken([](std::vector<NamedTensor>& t) {
        std::erase_if(t, [](const NamedTensor& x) {
            return x.name == "vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight" || x.name == "image_newline";
        });
        for (auto& x : t)
            if (x.name == "multi_modal_projector.linear_1.weight")
                x.tensor = x.tensor.reshape({x.tensor.dim(1), x.tensor.dim(0)}).value();  // transposed shape
    });
    const Status s = VLImageEncoder::load(broken.dir()).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    for (const char* name : {"layers.1.mlp.fc2.weight", "image_newline", "multi_modal_projector.linear_1.weight"})
        EXPECT_NE(s.message().find(name), std::string::npos) << name << " not in: " << s.message();
}

TEST(VLImageEncoder, VisionOnlyCheckpointLoadsAndTextModelsAreRefused) {
    const BrokenModel vision_only([](std::vector<NamedTensor>&) {});
    EXPECT_TRUE(VLImageEncoder::load(vision_only.dir()));  // language_model.* is not the encoder's business
    const Status s = VLImageEncoder::load(test::vision_data().parent_path() / "tiny-text").status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("vision"), std::string::npos);
}

}  // namespace
}  // namespace volt::vision
