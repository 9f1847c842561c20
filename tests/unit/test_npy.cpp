#include <gtest/gtest.h>

#include "sdk/npy.h"
#include "test_helpers.h"

namespace volt {
namespace {

TEST(Npy, RoundTrip) {
    test::TempDir dir;
    Tensor a = Tensor::empty({3, 5}, DType::kF32).value();
    for (int i = 0; i < 15; ++i) a.data_as<float>()[i] = i * 0.25f - 1.0f;
    ASSERT_TRUE(write_npy(dir / "a.npy", a).is_ok());
    Tensor b = read_npy(dir / "a.npy").value();
    EXPECT_EQ(b.shape(), (Shape{3, 5}));
    EXPECT_EQ(b.dtype(), DType::kF32);
    for (int i = 0; i < 15; ++i) EXPECT_EQ(b.data_as<float>()[i], a.data_as<float>()[i]);
    // 1-D (numpy writes "(n,)"), int64, and bf16 (stored as float32).
    Tensor ids = Tensor::empty({4}, DType::kI64).value();
    for (int i = 0; i < 4; ++i) ids.data_as<int64_t>()[i] = 200000 + i;
    ASSERT_TRUE(write_npy(dir / "ids.npy", ids).is_ok());
    Tensor ids2 = read_npy(dir / "ids.npy").value();
    EXPECT_EQ(ids2.shape(), (Shape{4}));
    EXPECT_EQ(ids2.data_as<int64_t>()[3], 200003);
    ASSERT_TRUE(write_npy(dir / "bf.npy", a.to(DType::kBF16).value()).is_ok());
    EXPECT_EQ(read_npy(dir / "bf.npy").value().dtype(), DType::kF32);
    // Non-contiguous views are written in logical order.
    ASSERT_TRUE(write_npy(dir / "t.npy", a.transpose(0, 1).value()).is_ok());
    Tensor t = read_npy(dir / "t.npy").value();
    EXPECT_EQ(t.shape(), (Shape{5, 3}));
    EXPECT_EQ(t.data_as<float>()[1], a.data_as<float>()[5]);
}

TEST(Npy, HeaderIsAlignedAndVersion1) {
    test::TempDir dir;
    ASSERT_TRUE(write_npy(dir / "a.npy", Tensor::zeros({7}, DType::kF32).value()).is_ok());
    std::ifstream in(dir / "a.npy", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.substr(1, 5), "NUMPY");
    EXPECT_EQ(bytes[6], 1);
    EXPECT_EQ(bytes[7], 0);
    EXPECT_EQ((bytes.size() - 28) % 64, 0u);  // 28 = 7 floats of data: the header pads to 64
}

TEST(Npy, BadFiles) {
    test::TempDir dir;
    test::write_file(dir / "x.npy", "hello");
    EXPECT_EQ(read_npy(dir / "x.npy").status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(read_npy(dir / "none.npy").status().code(), StatusCode::kNotFound);
    ASSERT_TRUE(write_npy(dir / "a.npy", Tensor::zeros({8}, DType::kF32).value()).is_ok());
    std::ifstream in(dir / "a.npy", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    test::write_file(dir / "trunc.npy", bytes.substr(0, bytes.size() - 4));
    auto t = read_npy(dir / "trunc.npy");
    ASSERT_FALSE(t.has_value());
    EXPECT_NE(t.status().message().find("needs 32"), std::string::npos) << t.status().message();
}

}  // namespace
}  // namespace volt
