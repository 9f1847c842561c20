#include <gtest/gtest.h>

#include <vector>

#include "sdk/cuda_memory.h"

namespace volt {
namespace {

// Runs on the GPU machine; on CPU-only machines (CI) it checks the clear error and skips the rest.
TEST(CudaMemory, AllocateCopyAndCache) {
    if (cuda_device_count() == 0) {
        auto t = Tensor::empty({4}, DType::kF32, Device::cuda(0));
        ASSERT_FALSE(t.has_value());
        GTEST_SKIP() << "no CUDA device: " << t.status().message();
    }
    Tensor host = Tensor::empty({1024}, DType::kF32).value();
    for (int i = 0; i < 1024; ++i) host.data_as<float>()[i] = static_cast<float>(i) * 0.5f;
    Tensor dev = host.to(Device::cuda(0)).value();
    EXPECT_TRUE(dev.device().is_cuda());
    Tensor back = dev.to(Device::cpu()).value();
    for (int i = 0; i < 1024; ++i) ASSERT_EQ(back.data_as<float>()[i], host.data_as<float>()[i]);
    Tensor z = Tensor::zeros({256}, DType::kBF16, Device::cuda(0)).value();
    Tensor zh = z.to(Device::cpu()).value();
    for (int i = 0; i < 256; ++i) ASSERT_EQ(zh.data_as<uint16_t>()[i], 0);

    auto before = cuda_memory_stats(0).value();
    { Tensor big = Tensor::empty({64 << 20}, DType::kF32, Device::cuda(0)).value(); }
    auto after = cuda_memory_stats(0).value();
    EXPECT_GE(after.reserved_bytes, before.reserved_bytes + (256u << 20));  // freed block kept by the pool
    EXPECT_LE(after.used_bytes, before.used_bytes + 4096);
    auto huge = Tensor::empty({int64_t(1) << 42}, DType::kF32, Device::cuda(0));  // 16 TiB
    ASSERT_FALSE(huge.has_value());
    EXPECT_EQ(huge.status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace volt
