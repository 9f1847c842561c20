// `volt embed-image` as a user runs it (design.md CLI contract): FEATS and PIX against the fixture references,
// and exit codes 2 (usage), 3 (bad input, naming the file) and 4 (pixel cap, token budget).
#include <cmath>

#include "sdk/npy.h"
#include "tests/integration/cli_runner.h"
#include "vision_test_util.h"

namespace volt::vision {
namespace {

using volt::test::run_volt;
using volt::test::shell_quote;

struct Tmp {
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("volt-cli-vision-" + std::to_string(::getpid()));
    Tmp() { std::filesystem::create_directories(dir); }
    ~Tmp() { std::filesystem::remove_all(dir); }
    std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

std::string model() { return shell_quote((test::vision_data() / "tiny-vl").string()); }

double max_rel(const Tensor& a, const Tensor& b) {
    double m = 0, s = 0;
    for (int64_t i = 0; i < b.numel(); ++i) {
        m = std::max(m, double(std::fabs(a.data_as<float>()[i] - b.data_as<float>()[i])));
        s = std::max(s, double(std::fabs(b.data_as<float>()[i])));
    }
    return m / s;
}

TEST(CliEmbedImage, FeaturesAndPixelsMatchTheReferences) {
    Tmp t;
    auto r = run_volt("embed-image --model " + model() + " --image " +
                      shell_quote(test::image_path("tiny_5x7.png").string()) + " --out " + shell_quote(t / "f.npy") +
                      " --pixels-out " + shell_quote(t / "p.npy"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("1032 tokens"), std::string::npos) << r.out;
    auto feats = read_npy(t / "f.npy");
    auto feats_ref = read_npy(test::vision_data() / "tiny-vl" / "reference" / "tiny_5x7.packed.npy");
    ASSERT_TRUE(feats && feats_ref);
    ASSERT_EQ(feats->shape(), feats_ref->shape());
    EXPECT_LE(max_rel(*feats, *feats_ref), 1e-4);
    auto px = read_npy(t / "p.npy");
    auto px_ref = read_npy(test::reference_path("tiny_5x7.pixel_values.npy"));
    ASSERT_TRUE(px && px_ref);
    ASSERT_EQ(px->shape(), px_ref->shape());
    EXPECT_EQ(max_rel(*px, *px_ref), 0.0);
}

TEST(CliEmbedImage, ExitCodes) {
    Tmp t;
    const std::string out = " --out " + shell_quote(t / "f.npy");
    EXPECT_EQ(run_volt("embed-image --model " + model() + out).exit_code, 2);  // --image missing

    const auto bytes = test::read_bytes(test::image_path("photo_640x480.jpg"));
    test::write_bytes(t.dir / "cut.jpg", std::vector<uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
    auto r = run_volt("embed-image --model " + model() + " --image " + shell_quote(t / "cut.jpg") + out);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("cut.jpg"), std::string::npos) << r.err;

    r = run_volt("embed-image --model " + shell_quote((test::vision_data().parent_path() / "tiny-text").string()) +
                 " --image " + shell_quote(test::image_path("tiny_5x7.png").string()) + out);
    EXPECT_EQ(r.exit_code, 3) << r.err;

    // A PNG header claiming 30000x30000 pixels: refused before decoding.
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30, 8, 2, 0, 0, 0, 0, 0, 0, 0,
                                0, 0, 0, 0, 'I', 'E', 'N', 'D', 0, 0, 0, 0};
    test::write_bytes(t.dir / "huge.png", png);
    r = run_volt("embed-image --model " + model() + " --image " + shell_quote(t / "huge.png") + out);
    EXPECT_EQ(r.exit_code, 4);
    EXPECT_NE(r.err.find("30000x30000"), std::string::npos) << r.err;

    r = run_volt("embed-image --model " + model() + " --image " +
                 shell_quote(test::image_path("tiny_5x7.png").string()) + " --max-image-tokens 1000" + out);
    EXPECT_EQ(r.exit_code, 4);
    EXPECT_NE(r.err.find("1032"), std::string::npos) << r.err;

    // The encoder runs on one GPU: more is refused before anything loads (also on machines without a GPU), not
    // silently reduced to the first.
    const std::string image = " --image " + shell_quote(test::image_path("tiny_5x7.png").string());
    for (const std::string gpus : {" --gpus 2", " --gpu-ids 0,1"}) {
        r = run_volt("embed-image --model " + model() + image + " --device cuda" + gpus + out);
        EXPECT_EQ(r.exit_code, 3) << gpus << "\n" << r.err;
        EXPECT_NE(r.err.find("volt embed-image runs on one GPU, but" + gpus + " asks for 2"), std::string::npos)
            << r.err;
    }
}

}  // namespace
}  // namespace volt::vision
