#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "sdk/thread_pool.h"

namespace volt {
namespace {

TEST(ThreadPool, CoversRangeExactlyOnce) {
    ThreadPool pool(4);
    for (int64_t n : {1, 2, 7, 100, 1001}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
    }
}

TEST(ThreadPool, MinChunkIsHonoured) {
    ThreadPool pool(4);
    std::atomic<int> chunks{0};
    pool.parallel_for(100, [&](int64_t b, int64_t e) {
        EXPECT_GE(e - b, 50);
        chunks++;
    }, 50);
    EXPECT_LE(chunks.load(), 2);
}

TEST(ThreadPool, NestedCallsDoNotDeadlock) {
    ThreadPool pool(3);
    std::atomic<int64_t> sum{0};
    pool.parallel_for(16, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
            pool.parallel_for(16, [&](int64_t b2, int64_t e2) { sum += e2 - b2; });
    });
    EXPECT_EQ(sum.load(), 256);
}

TEST(ThreadPool, ExceptionReachesCaller) {
    ThreadPool pool(4);
    EXPECT_THROW(pool.parallel_for(64, [&](int64_t b, int64_t) {
        if (b == 0) throw std::runtime_error("chunk failed");
    }), std::runtime_error);
    std::atomic<int> after{0};  // the pool still works
    pool.parallel_for(8, [&](int64_t b, int64_t e) { after += static_cast<int>(e - b); });
    EXPECT_EQ(after.load(), 8);
}

TEST(ThreadPool, SingleThreadRunsInline) {
    ThreadPool pool(1);
    EXPECT_EQ(pool.num_threads(), 1);
    int calls = 0;
    pool.parallel_for(10, [&](int64_t b, int64_t e) { calls++; EXPECT_EQ(e - b, 10); });
    EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace volt
