#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>

#include "sdk/tensor.h"

namespace volt {
namespace {

Tensor iota_f32(const Shape& shape) {
    Tensor t = Tensor::empty(shape, DType::kF32).value();
    std::iota(t.data_as<float>(), t.data_as<float>() + t.numel(), 0.0f);
    return t;
}

TEST(Tensor, EmptyIsAlignedAndContiguous) {
    Tensor t = Tensor::empty({3, 5, 7}, DType::kBF16).value();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
    EXPECT_TRUE(t.is_contiguous());
    EXPECT_EQ(t.numel(), 105);
    EXPECT_EQ(t.nbytes(), 210u);
    EXPECT_EQ(t.stride(0), 35);
    EXPECT_EQ(t.stride(-1), 1);
    EXPECT_EQ(t.to_string(), "BF16[3, 5, 7] cpu");
    EXPECT_FALSE(Tensor::empty({2, -1}, DType::kF32).has_value());
}

TEST(Tensor, ZerosAndScalar) {
    Tensor z = Tensor::zeros({4}, DType::kF32).value();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(z.data_as<float>()[i], 0.0f);
    Tensor s = Tensor::empty(Shape{}, DType::kF32).value();  // rank 0
    EXPECT_EQ(s.numel(), 1);
    EXPECT_EQ(s.rank(), 0);
}

TEST(Tensor, ReshapeInfersAndRejects) {
    Tensor t = iota_f32({2, 6});
    Tensor r = t.reshape({3, -1}).value();
    EXPECT_EQ(r.shape(), (Shape{3, 4}));
    EXPECT_EQ(r.data(), t.data());  // a view
    EXPECT_FALSE(t.reshape({5, -1}).has_value());
    EXPECT_FALSE(t.reshape({-1, -1}).has_value());
    EXPECT_FALSE(t.reshape({7}).has_value());
    Tensor tr = t.transpose(0, 1).value();
    EXPECT_FALSE(tr.reshape({12}).has_value());  // non-contiguous
}

TEST(Tensor, SliceSelectTransposeAreViews) {
    Tensor t = iota_f32({3, 4});  // [[0..3],[4..7],[8..11]]
    Tensor row = t.select(0, 1).value();
    EXPECT_EQ(row.shape(), (Shape{4}));
    EXPECT_EQ(row.data_as<float>()[0], 4.0f);
    Tensor col = t.select(1, 2).value();  // [2, 6, 10], stride 4
    EXPECT_EQ(col.shape(), (Shape{3}));
    EXPECT_EQ(col.stride(0), 4);
    EXPECT_FALSE(col.is_contiguous());
    Tensor c = col.contiguous().value();
    EXPECT_EQ(c.data_as<float>()[2], 10.0f);
    Tensor s = t.slice(1, 1, 3).value();  // columns 1..2
    EXPECT_EQ(s.shape(), (Shape{3, 2}));
    Tensor sc = s.contiguous().value();
    const float expect[] = {1, 2, 5, 6, 9, 10};
    for (int i = 0; i < 6; ++i) EXPECT_EQ(sc.data_as<float>()[i], expect[i]);
    Tensor tt = t.transpose(0, 1).value().contiguous().value();
    EXPECT_EQ(tt.shape(), (Shape{4, 3}));
    EXPECT_EQ(tt.data_as<float>()[1], 4.0f);  // tt[0][1] = t[1][0]
    EXPECT_FALSE(t.slice(0, 2, 4).has_value());
    EXPECT_FALSE(t.slice(2, 0, 1).has_value());
    EXPECT_FALSE(t.select(0, 3).has_value());
}

TEST(Tensor, ConvertingCopies) {
    Tensor t = iota_f32({2, 3});
    Tensor b = t.to(DType::kBF16).value();
    EXPECT_EQ(b.dtype(), DType::kBF16);
    Tensor back = b.to(DType::kF32).value();
    for (int i = 0; i < 6; ++i) EXPECT_EQ(back.data_as<float>()[i], static_cast<float>(i));
    // Strided source converted in one pass.
    Tensor tb = t.transpose(0, 1).value().to(DType::kBF16).value().to(DType::kF32).value();
    EXPECT_EQ(tb.data_as<float>()[1], 3.0f);
    Tensor wrong = Tensor::empty({3, 2}, DType::kF32).value();
    EXPECT_FALSE(wrong.copy_from(t).is_ok());
}

TEST(Tensor, BorrowKeepsOwnerAlive) {
    auto owner = std::make_shared<std::vector<float>>(8, 2.5f);
    std::weak_ptr<std::vector<float>> weak = owner;
    Tensor view = Tensor::borrow(owner->data(), {2, 4}, DType::kF32, Device::cpu(), owner);
    owner.reset();
    EXPECT_FALSE(weak.expired());
    EXPECT_EQ(view.slice(1, 3, 4).value().data_as<float>()[0], 2.5f);
    view = Tensor();
    EXPECT_TRUE(weak.expired());
}

TEST(Tensor, CudaDeviceWithoutGpuIsAClearError) {
    auto t = Tensor::empty({4}, DType::kF32, Device::cuda(99));
    ASSERT_FALSE(t.has_value());
    EXPECT_NE(t.status().code(), StatusCode::kOk);
    EXPECT_NE(t.status().message().find("99"), std::string::npos) << t.status().message();
}

}  // namespace
}  // namespace volt
