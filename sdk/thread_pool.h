// A fixed pool of worker threads for CPU work. parallel_for splits a range into chunks that the workers and the
// calling thread claim from a shared counter, so nested calls from inside a worker cannot deadlock: the caller
// finishes any chunks nobody else took.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace volt {

class ThreadPool {
public:
    explicit ThreadPool(int num_threads);  // total parallelism including the caller; <= 1 means run inline
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls fn(begin, end) over [0, n) in chunks of at least `min_chunk`; returns when all chunks are done.
    // If fn throws, the first exception is rethrown here after every started chunk has finished.
    void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn, int64_t min_chunk = 1);

    // The process-wide pool: VOLT_NUM_THREADS threads, else the hardware concurrency.
    static ThreadPool& global();

private:
    void worker_loop();
    void enqueue(std::function<void()> task);

    std::vector<std::thread> workers_;
    std::deque<std::function<void()>> queue_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
};

}  // namespace volt
