// Paged device buffers (sdk/cuda_paged_buffer.h) and the GPU KV cache built on them (SequenceCache on a CUDA device):
// growing in place keeps the address and every byte, a fork shares the pages wholly below its prefix and owns a copy
// of the partial one (writes past the prefix on either side stay apart), clear() drops the pages so the next tokens
// cannot overwrite a clone's rows, and the errors (growing past the reservation).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include <cuda_runtime.h>

#include "sdk/cuda_paged_buffer.h"
#include "sdk/engine/causal_lm.h"
#include "tests/gpu/gpu_test_util.h"

namespace volt {
namespace {

using namespace volt::test;

class PagedKvGpu : public GpuTest {};

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
}

void put(void* dev, const std::vector<uint8_t>& b) {
    ASSERT_EQ(cudaMemcpy(dev, b.data(), b.size(), cudaMemcpyHostToDevice), cudaSuccess);
}

std::vector<uint8_t> get(const void* dev, size_t n) {
    std::vector<uint8_t> b(n);
    EXPECT_EQ(cudaMemcpy(b.data(), dev, n, cudaMemcpyDeviceToHost), cudaSuccess);
    return b;
}

TEST_F(PagedKvGpu, GrowsInPlaceKeepingItsBytes) {
    auto buf = CudaPagedBuffer::create(0, 64 << 20);
    ASSERT_TRUE(buf) << buf.status().to_string();
    CudaPagedBuffer& b = **buf;
    const size_t page = b.page_bytes();
    ASSERT_GT(page, 0u);
    EXPECT_EQ(b.mapped_bytes(), 0u);
    EXPECT_GE(b.max_bytes(), size_t{64} << 20);
    void* const base = b.data();
    ASSERT_TRUE(b.grow(page + 1).is_ok());
    EXPECT_EQ(b.mapped_bytes(), 2 * page);
    const auto first = random_bytes(2 * page, 1);
    put(base, first);
    ASSERT_TRUE(b.grow(5 * page + 3).is_ok());
    EXPECT_EQ(b.data(), base);  // the address never moves
    EXPECT_EQ(b.mapped_bytes(), 6 * page);
    EXPECT_EQ(get(base, first.size()), first);
    // Bytes across a page boundary written after growing.
    const auto across = random_bytes(page, 2);
    put(static_cast<char*>(base) + 5 * page - page / 2, across);
    EXPECT_EQ(get(static_cast<char*>(base) + 5 * page - page / 2, page), across);
    const Status too_big = b.grow(b.max_bytes() + 1);
    EXPECT_EQ(too_big.code(), StatusCode::kResourceExhausted) << too_big.to_string();
    EXPECT_EQ(b.mapped_bytes(), 6 * page);
    ASSERT_TRUE(b.release_pages().is_ok());
    EXPECT_EQ(b.mapped_bytes(), 0u);
    ASSERT_TRUE(b.grow(page).is_ok());  // the range is still reserved
    EXPECT_EQ(b.data(), base);
}

TEST_F(PagedKvGpu, ForkSharesWholePagesAndCopiesThePartialOne) {
    auto buf = CudaPagedBuffer::create(0, 32 << 20);
    ASSERT_TRUE(buf) << buf.status().to_string();
    CudaPagedBuffer& a = **buf;
    const size_t page = a.page_bytes(), keep = 2 * page + page / 3;
    ASSERT_TRUE(a.grow(4 * page).is_ok());
    const auto prefix = random_bytes(keep, 3);
    put(a.data(), prefix);
    auto forked = a.fork(keep, 4 * page);
    ASSERT_TRUE(forked) << forked.status().to_string();
    CudaPagedBuffer& f = **forked;
    EXPECT_NE(f.data(), a.data());
    EXPECT_EQ(f.mapped_bytes(), 4 * page);
    EXPECT_EQ(f.shared_pages(), 2u);
    EXPECT_EQ(a.shared_pages(), 2u);
    EXPECT_EQ(get(f.data(), keep), prefix);
    // Each side appends past the prefix (inside the partial page and beyond); the other does not see it.
    const auto mine = random_bytes(page, 4), theirs = random_bytes(page, 5);
    put(static_cast<char*>(a.data()) + keep, mine);
    put(static_cast<char*>(f.data()) + keep, theirs);
    EXPECT_EQ(get(static_cast<char*>(a.data()) + keep, page), mine);
    EXPECT_EQ(get(static_cast<char*>(f.data()) + keep, page), theirs);
    EXPECT_EQ(get(f.data(), keep), prefix);
    EXPECT_EQ(get(a.data(), keep), prefix);
    // The shared pages outlive the buffer they came from.
    buf->reset();
    EXPECT_EQ(f.shared_pages(), 0u);
    EXPECT_EQ(get(f.data(), keep), prefix);
}

// A GPU KV cache of two softmax layers (2 KV heads x 128, bf16: 512 bytes a row) and one recurrent layer.
SequenceCache gpu_cache(int64_t max_tokens) {
    SequenceCache c;
    c.set_max_tokens(max_tokens);
    c.set_kv_storage(Device::cuda(0), DType::kBF16);
    for (int i = 0; i < 3; ++i) {
        LayerCache l;
        l.head_dim = 128;
        l.kv_heads = i == 1 ? 0 : 2;
        c.layers.push_back(std::move(l));
    }
    return c;
}

TEST_F(PagedKvGpu, SequenceCacheGrowsPagesAndClonesShareThePrefix) {
    const int64_t row = 2 * 128 * 2;
    SequenceCache c = gpu_cache(100000);
    ASSERT_TRUE(c.reserve(10).is_ok());
    ASSERT_TRUE(c.layers[0].k_pages && c.layers[0].v_pages && c.layers[2].k_pages);
    EXPECT_FALSE(c.layers[1].k_pages);
    EXPECT_GE(c.capacity(), 10);
    const void* k0 = c.layers[0].k.data();
    EXPECT_EQ(k0, c.layers[0].k_pages->data());
    // Rows up to a page boundary and past it, written, then the cache grown several pages: nothing moves.
    const int64_t page_rows = static_cast<int64_t>(c.layers[0].k_pages->page_bytes()) / row;
    const int64_t n = page_rows + 100;
    ASSERT_TRUE(c.reserve(n).is_ok());
    const auto rows = random_bytes(static_cast<size_t>(n * row), 6);
    put(c.layers[0].k.data(), rows);
    put(c.layers[2].v.data(), rows);
    c.advance(n);
    ASSERT_TRUE(c.reserve(5 * page_rows).is_ok());
    EXPECT_EQ(c.layers[0].k.data(), k0);
    EXPECT_GE(c.capacity(), 5 * page_rows);
    EXPECT_EQ(c.layers[0].k.dim(0), c.capacity());
    EXPECT_EQ(get(c.layers[0].k.data(), rows.size()), rows);
    EXPECT_EQ(get(c.layers[2].v.data(), rows.size()), rows);
    // A clone shares the whole pages of the n rows and copies the one holding row n.
    auto cl = c.clone();
    ASSERT_TRUE(cl) << cl.status().to_string();
    EXPECT_EQ(cl->length(), n);
    EXPECT_EQ(cl->layers[0].k_pages->shared_pages(), static_cast<size_t>(n * row) / c.layers[0].k_pages->page_bytes());
    EXPECT_EQ(get(cl->layers[0].k.data(), rows.size()), rows);
    EXPECT_EQ(get(cl->layers[2].v.data(), rows.size()), rows);
    // Both go on from row n without touching the other's rows.
    ASSERT_TRUE(cl->reserve(n + 1).is_ok());
    const auto a_row = random_bytes(static_cast<size_t>(row), 7), b_row = random_bytes(static_cast<size_t>(row), 8);
    put(static_cast<char*>(c.layers[0].k.data()) + n * row, a_row);
    put(static_cast<char*>(cl->layers[0].k.data()) + n * row, b_row);
    EXPECT_EQ(get(static_cast<char*>(c.layers[0].k.data()) + n * row, a_row.size()), a_row);
    EXPECT_EQ(get(static_cast<char*>(cl->layers[0].k.data()) + n * row, b_row.size()), b_row);
    // clear() drops the original's pages (its next rows would overwrite shared ones); the clone keeps its rows.
    c.clear();
    EXPECT_EQ(c.capacity(), 0);
    EXPECT_EQ(c.layers[0].k_pages->mapped_bytes(), 0u);
    ASSERT_TRUE(c.reserve(n).is_ok());
    put(c.layers[0].k.data(), random_bytes(static_cast<size_t>(n * row), 9));
    EXPECT_EQ(get(cl->layers[0].k.data(), rows.size()), rows);
    // Beyond max_tokens: refused as before.
    EXPECT_EQ(c.reserve(100001).code(), StatusCode::kResourceExhausted);
    // max_tokens raised past the reservation: a new one, the rows held copied.
    cl->set_max_tokens(300000);
    ASSERT_TRUE(cl->reserve(200000).is_ok());
    EXPECT_GE(cl->capacity(), 200000);
    EXPECT_EQ(get(cl->layers[0].k.data(), rows.size()), rows);
}

}  // namespace
}  // namespace volt
