// The pinned-staging uploader (sdk/cuda_upload.h, issue 12) against the path it replaced, host conversion + a
// synchronous copy (`host.to(dtype).to(Device::cuda(0))`), bitwise: random tensors sized around the chunk boundaries
// (1 element, chunk - 1, chunk, chunk + 1, several chunks, odd sizes), contiguous and sliced along dim 0 and dim 1
// (tensor-parallel ranks take such slices), f32 / f16 -> bf16, bf16 -> bf16 and bf16 -> f32 (the router), with one to
// four packing threads, two or three buffers, several uploads in flight before finish(); plus its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sdk/cuda_upload.h"
#include "tests/gpu/gpu_test_util.h"

namespace volt {
namespace {

using namespace volt::test;

class CudaUploadGpu : public GpuTest {};

// Random values of `dtype` (all finite and non-zero for bf16/f16 but for a few specials: NaN, infinities, a
// subnormal, -0 when there is room), so an unwritten or misplaced element cannot pass.
Tensor random_host(const Shape& shape, DType dtype, std::mt19937_64& rng) {
    Tensor f = *Tensor::empty(shape, DType::kF32);
    std::normal_distribution<float> nd(0.0f, 3.0f);
    float* p = f.data_as<float>();
    for (int64_t i = 0; i < f.numel(); ++i) p[i] = nd(rng);
    const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), 1e-40f, -0.0f, 1.00390625f};
    for (int64_t i = 0; i < 6 && i < f.numel(); ++i) p[(i * 7919) % f.numel()] = specials[i];
    return dtype == DType::kF32 ? f : *f.to(dtype);
}

std::vector<std::byte> download(const Tensor& d) {
    Tensor h = *d.to(Device::cpu());
    const auto* b = static_cast<const std::byte*>(h.data());
    return std::vector<std::byte>(b, b + h.nbytes());
}

// The old path's bytes for `host` as `dtype`.
std::vector<std::byte> reference(const Tensor& host, DType dtype) {
    Tensor c = *host.to(dtype);
    const auto* b = static_cast<const std::byte*>(c.data());
    return std::vector<std::byte>(b, b + c.nbytes());
}

struct Case {
    std::string what;
    Tensor host;
    DType dtype;
};

// Sources for a chunk of `chunk` output elements: 1-D sizes around the boundaries, then 2-D tensors whose slices
// (rows, columns) land on and around them.
std::vector<Case> cases(int64_t chunk, DType from, DType to, std::mt19937_64& rng) {
    std::vector<Case> out;
    for (int64_t n : {int64_t{1}, chunk - 1, chunk, chunk + 1, 3 * chunk + 7, int64_t{12345}})
        out.push_back({str_cat("1-D n=", n), random_host({n}, from, rng), to});
    const int64_t cols = 97, rows = (2 * chunk) / cols + 3;  // odd row length; a bit over two chunks
    Tensor full = random_host({rows, cols}, from, rng);
    out.push_back({"2-D whole", full, to});
    out.push_back({"rows [3, rows-2)", *full.slice(0, 3, rows - 2), to});
    out.push_back({"cols [0, 48)", *full.slice(1, 0, 48), to});
    out.push_back({"cols [48, 97)", *full.slice(1, 48, 97), to});
    out.push_back({"cols [1, 2)", *full.slice(1, 1, 2), to});
    Tensor three = random_host({5, chunk / 64 + 1, 64}, from, rng);
    out.push_back({"3-D middle [1, 4) x cols [8, 40)", *(*three.slice(0, 1, 4)).slice(2, 8, 40), to});
    return out;
}

// Uploads every case through one uploader (all in flight, then finish()) and compares each with the old path.
void check(const CudaUploadOptions& opt, DType from, DType to, uint64_t seed) {
    SCOPED_TRACE(testing::Message() << dtype_name(from) << " -> " << dtype_name(to) << ", buffer " << opt.buffer_bytes
                                    << " B x " << opt.buffers << ", " << opt.pack_threads << " threads");
    std::mt19937_64 rng(seed);
    const int64_t chunk = static_cast<int64_t>(opt.buffer_bytes / dtype_size(to));
    std::vector<Case> cs = cases(chunk, from, to, rng);
    CudaUploader up(opt);
    std::vector<Tensor> got;
    for (const Case& c : cs) {
        auto d = up.upload(c.host, c.dtype, 0, c.what);
        ASSERT_TRUE(d) << c.what << ": " << d.status().to_string();
        EXPECT_EQ(d->device(), Device::cuda(0));
        EXPECT_EQ(d->dtype(), c.dtype);
        EXPECT_TRUE(d->shape() == c.host.shape());
        EXPECT_TRUE(d->is_contiguous());
        got.push_back(*d);
    }
    ASSERT_TRUE(up.finish().is_ok());
    for (size_t i = 0; i < cs.size(); ++i) {
        const auto ref = reference(cs[i].host, cs[i].dtype);
        auto old = cs[i].host.to(cs[i].dtype)->to(Device::cuda(0));  // the whole old path, through the GPU too
        ASSERT_TRUE(old);
        EXPECT_EQ(download(*old), ref) << cs[i].what;
        const auto bytes = download(got[i]);
        ASSERT_EQ(bytes.size(), ref.size()) << cs[i].what;
        EXPECT_EQ(std::memcmp(bytes.data(), ref.data(), ref.size()), 0) << cs[i].what << ": differs from the old path";
    }
}

TEST_F(CudaUploadGpu, EqualsTheOldPathAroundChunkBoundaries) {
    uint64_t seed = 1;
    for (const auto& [from, to] : {std::pair{DType::kF32, DType::kBF16}, std::pair{DType::kBF16, DType::kBF16},
                                   std::pair{DType::kF16, DType::kBF16}, std::pair{DType::kBF16, DType::kF32}}) {
        for (const CudaUploadOptions& opt : {CudaUploadOptions{.buffer_bytes = 4096, .buffers = 2, .pack_threads = 1},
                                             CudaUploadOptions{.buffer_bytes = 6000, .buffers = 3, .pack_threads = 4},
                                             CudaUploadOptions{.buffer_bytes = 1 << 20, .buffers = 2, .pack_threads = 4}})
            check(opt, from, to, seed++);
    }
}

// The default options (32 MiB buffers): a tensor of several chunks and one just over a chunk, bf16 from a mapped-like
// contiguous source and f32 converted.
TEST_F(CudaUploadGpu, DefaultBuffersSeveralChunks) {
    std::mt19937_64 rng(7);
    const int64_t chunk = int64_t{32 << 20} / 2;
    CudaUploader up;
    std::vector<Case> cs = {{"bf16 2.5 chunks", random_host({5, chunk / 2}, DType::kBF16, rng), DType::kBF16},
                            {"f32 chunk + 1", random_host({chunk + 1}, DType::kF32, rng), DType::kBF16}};
    cs.push_back({"bf16 cols half", *cs[0].host.slice(1, chunk / 4, chunk / 2), DType::kBF16});
    std::vector<Tensor> got;
    for (const Case& c : cs) got.push_back(*up.upload(c.host, c.dtype, 0, c.what));
    ASSERT_TRUE(up.finish().is_ok());
    for (size_t i = 0; i < cs.size(); ++i) EXPECT_EQ(download(got[i]), reference(cs[i].host, cs[i].dtype)) << cs[i].what;
}

TEST_F(CudaUploadGpu, RefusesWithClearErrors) {
    std::mt19937_64 rng(3);
    CudaUploader up({.buffer_bytes = 4096});
    const Tensor h = random_host({10, 10}, DType::kF32, rng);
    auto bad_device = up.upload(h, DType::kBF16, 4096, "w.bad");
    ASSERT_FALSE(bad_device);
    EXPECT_EQ(bad_device.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(bad_device.status().message().find("w.bad"), std::string::npos) << bad_device.status().to_string();
    EXPECT_NE(bad_device.status().message().find("cuda:4096"), std::string::npos) << bad_device.status().to_string();
    EXPECT_NE(bad_device.status().message().find("200 bytes"), std::string::npos) << bad_device.status().to_string();
    const Tensor ints = *Tensor::zeros({4}, DType::kI32);
    auto to_float = up.upload(ints, DType::kBF16, 0, "ids");
    ASSERT_FALSE(to_float);
    EXPECT_EQ(to_float.status().code(), StatusCode::kInvalidArgument);
    auto on_gpu = up.upload(*h.to(Device::cuda(0)), DType::kF32, 0, "already there");
    ASSERT_FALSE(on_gpu);
    EXPECT_NE(on_gpu.status().message().find("not a host tensor"), std::string::npos);
    // Same-dtype integers go through; an empty tensor is an empty device tensor; the uploader still works after.
    const Tensor ids = random_host({33}, DType::kF32, rng);
    auto same = up.upload(*ids.to(DType::kI32), DType::kI32, 0, "ids");
    ASSERT_TRUE(same) << same.status().to_string();
    auto empty = up.upload(*Tensor::empty({0, 5}, DType::kF32), DType::kBF16, 0, "empty");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->numel(), 0);
    ASSERT_TRUE(up.finish().is_ok());
    EXPECT_EQ(download(*same), reference(*ids.to(DType::kI32), DType::kI32));
}

}  // namespace
}  // namespace volt
