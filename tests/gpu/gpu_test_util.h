// Helpers shared by the GPU tests (tests/gpu): a self-freeing device buffer, bf16 <-> fp32 vectors, the NaN count
// that proves every output was written (buffers are poisoned with 0xff bytes, a NaN in bf16 and fp32), random
// inputs, and the fixture that skips on machines without a GPU (CI).
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "sdk/cuda_memory.h"
#include "sdk/dtype.h"

namespace volt::test {

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr << ": " << cudaGetErrorString(cudaGetLastError())

// Device buffer that frees itself.
template <typename T>
struct DevBuf {
    T* ptr = nullptr;
    size_t n = 0;
    DevBuf() = default;
    explicit DevBuf(size_t count) : n(count) {
        if (cudaMalloc(&ptr, std::max<size_t>(count, 1) * sizeof(T)) != cudaSuccess) ptr = nullptr;
    }
    ~DevBuf() { cudaFree(ptr); }
    DevBuf(const DevBuf&) = delete;
    DevBuf& operator=(const DevBuf&) = delete;
    bool upload(const std::vector<T>& h) {
        return cudaMemcpy(ptr, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess;
    }
    std::vector<T> download() const {
        std::vector<T> h(n);
        if (cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess) h.clear();
        return h;
    }
    bool fill_bytes(int byte) { return cudaMemset(ptr, byte, std::max<size_t>(n, 1) * sizeof(T)) == cudaSuccess; }
};

// Skips every test of a fixture derived from it when the machine has no GPU.
class GpuTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU on this machine: GPU tests run on the device";
    }
};

// Whether device 0 is a Hopper GPU (sm_90: cuBLASLt's block-scaled FP8 GEMMs run there only).
inline bool on_hopper() {
    int major = 0;
    return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess && major == 9;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
    std::vector<uint16_t> b(x.size());
    for (size_t i = 0; i < x.size(); ++i) b[i] = f32_to_bf16(x[i]);
    return b;
}
inline std::vector<float> from_bf16(const std::vector<uint16_t>& b) {
    std::vector<float> x(b.size());
    for (size_t i = 0; i < b.size(); ++i) x[i] = bf16_to_f32(b[i]);
    return x;
}
// Rounds fp32 values to bf16 and back: the exact values a bf16 tensor holds.
inline std::vector<float> bf16_round(const std::vector<float>& x) { return from_bf16(to_bf16(x)); }
inline size_t count_nan(const std::vector<float>& x) {
    size_t n = 0;
    for (float e : x) n += std::isnan(e) ? 1 : 0;
    return n;
}
// Normal(0, scale) values, never all zero.
inline std::vector<float> random_normal(size_t n, std::mt19937_64& rng, float scale = 1.0f) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> x(n);
    for (auto& e : x) e = nd(rng);
    return x;
}

}  // namespace volt::test
