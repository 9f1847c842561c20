#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "sdk/cuda_memory.h"
#include "sdk/gpu_energy.h"
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace volt {
namespace {

// A bus id that names no GPU is an error with a reason (no driver on CI: NVML cannot be opened; on the GPU machine:
// no such GPU). On the GPU machine the first GPU's counter rises while it idles (tens of watts) and its clock reads.
TEST(GpuEnergy, ReadsTheDriversCounterOrSaysWhyNot) {
    const Expected<GpuEnergyMeter> bad = GpuEnergyMeter::open("0000:ff:1f.7");
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.status().message().find("GPU energy"), std::string::npos) << bad.status().message();
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: " << bad.status().message();
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
    char bus[32] = {};
    ASSERT_EQ(cudaDeviceGetPCIBusId(bus, sizeof bus, 0), cudaSuccess);
    const Expected<GpuEnergyMeter> meter = GpuEnergyMeter::open(bus);
    ASSERT_TRUE(meter.has_value()) << meter.status().message();
    const Expected<double> j0 = meter->joules();
    ASSERT_TRUE(j0.has_value()) << j0.status().message();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const Expected<double> j1 = meter->joules();
    ASSERT_TRUE(j1.has_value());
    EXPECT_GT(*j1, *j0);
    EXPECT_LT(*j1 - *j0, 0.3 * 2000.0) << "more than 2 kW while idle";
    const Expected<int> mhz = meter->sm_clock_mhz();
    ASSERT_TRUE(mhz.has_value()) << mhz.status().message();
    EXPECT_GT(*mhz, 0);
#endif
}

}  // namespace
}  // namespace volt
