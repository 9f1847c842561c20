// anyres planning and token counting against the processor's formulas, evaluated in Python for every fixture image
// (tools/make_vision_fixture.py), plus the grid-selection edge cases.
#include "vision/anyres.h"
#include "vision_test_util.h"

namespace volt::vision {
namespace {

TEST(Anyres, LayoutAndTokenCountMatchTheProcessorForEveryFixture) {
    const VLConfig vl = test::vl01_geometry();
    for (const auto& e : test::manifest()["images"]) {
        SCOPED_TRACE(e["name"].get<std::string>());
        auto L = plan_anyres(e["width"], e["height"], vl);
        ASSERT_TRUE(L) << L.status().to_string();
        EXPECT_EQ(L->canvas_w, e["canvas_w"].get<int64_t>());
        EXPECT_EQ(L->canvas_h, e["canvas_h"].get<int64_t>());
        EXPECT_EQ(L->resized_w, e["resized_w"].get<int64_t>());
        EXPECT_EQ(L->resized_h, e["resized_h"].get<int64_t>());
        EXPECT_EQ(L->pad_left, e["pad_left"].get<int64_t>());
        EXPECT_EQ(L->pad_top, e["pad_top"].get<int64_t>());
        EXPECT_EQ(L->rows, e["rows"].get<int64_t>());
        EXPECT_EQ(L->cols, e["cols"].get<int64_t>());
        EXPECT_EQ(L->num_crops(), e["crops"].get<int64_t>());
        EXPECT_EQ(L->unpadded_h, e["unpadded_h"].get<int64_t>());
        EXPECT_EQ(L->unpadded_w, e["unpadded_w"].get<int64_t>());
        EXPECT_EQ(L->unpad_top, e["unpad_top"].get<int64_t>());
        EXPECT_EQ(L->unpad_left, e["unpad_left"].get<int64_t>());
        EXPECT_EQ(L->num_tokens(), e["tokens"].get<int64_t>());
        // The formula: 576 + h' * w' + h'.
        EXPECT_EQ(L->num_tokens(), 576 + L->unpadded_h * L->unpadded_w + L->unpadded_h);
        auto n = count_image_tokens(e["width"], e["height"], vl);
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, L->num_tokens());
    }
}

TEST(Anyres, ArchitectureDocExample) {
    // minimax01-architecture.md §5: 1000x1000 -> 1008x1008 grid (3x3 tiles) -> 576 + 72*72 + 72 = 5832 tokens.
    auto L = plan_anyres(1000, 1000, test::vl01_geometry());
    ASSERT_TRUE(L);
    EXPECT_EQ(L->canvas_w, 1008);
    EXPECT_EQ(L->rows, 3);
    EXPECT_EQ(L->num_tokens(), 5832);
}

TEST(Anyres, TiesGoToTheLeastWastedCanvas) {
    // A 100x100 image fits every grid without loss (effective = 10000 everywhere): least waste is 336x336.
    const auto [h, w] = select_best_resolution(100, 100, test::vl01_geometry().grid_pinpoints);
    EXPECT_EQ(h, 336);
    EXPECT_EQ(w, 336);
}

TEST(Anyres, BadSizesAndGridsAreInvalidArguments) {
    const VLConfig vl = test::vl01_geometry();
    EXPECT_EQ(plan_anyres(0, 10, vl).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(plan_anyres(10, -1, vl).status().code(), StatusCode::kInvalidArgument);
    // 1 x 100000: the reference would resize it to 0 pixels wide; we say so instead of failing later.
    const Status s = plan_anyres(1, 100000, vl).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("aspect ratio"), std::string::npos);
    VLConfig bad = vl;
    bad.grid_pinpoints = {{336, 500}};
    EXPECT_EQ(plan_anyres(100, 100, bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace volt::vision
