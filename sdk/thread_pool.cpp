#include "sdk/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <memory>

namespace volt {

ThreadPool::ThreadPool(int num_threads) {
    for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop() {
    for (;;) {
        std::function<void()> task;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping and drained
            task = std::move(queue_.front());
            queue_.pop_front();
        }
        task();
    }
}

void ThreadPool::enqueue(std::function<void()> task) {
    {
        std::lock_guard lock(mu_);
        queue_.push_back(std::move(task));
    }
    cv_.notify_one();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk) {
    if (n <= 0) return;
    min_chunk = std::max<int64_t>(min_chunk, 1);
    int64_t max_chunks = (n + min_chunk - 1) / min_chunk;
    int64_t chunks = std::min<int64_t>(max_chunks, static_cast<int64_t>(num_threads()) * 4);
    if (chunks <= 1 || workers_.empty()) {
        fn(0, n);
        return;
    }
    // Shared by the caller and helpers; helpers that start after all chunks are claimed just return.
    struct State {
        std::atomic<int64_t> next{0};
        std::atomic<int64_t> done{0};
        int64_t chunks, n;
        const std::function<void(int64_t, int64_t)>* fn;
        std::mutex mu;
        std::condition_variable cv;
        std::exception_ptr error;
    };
    auto st = std::make_shared<State>();
    st->chunks = chunks;
    st->n = n;
    st->fn = &fn;
    auto run = [](const std::shared_ptr<State>& s) {
        for (;;) {
            int64_t c = s->next.fetch_add(1);
            if (c >= s->chunks) return;
            int64_t begin = s->n * c / s->chunks, end = s->n * (c + 1) / s->chunks;
            try {
                (*s->fn)(begin, end);
            } catch (...) {
                std::lock_guard lock(s->mu);
                if (!s->error) s->error = std::current_exception();
            }
            if (s->done.fetch_add(1) + 1 == s->chunks) {
                std::lock_guard lock(s->mu);
                s->cv.notify_all();
            }
        }
    };
    int helpers = static_cast<int>(std::min<int64_t>(chunks - 1, static_cast<int64_t>(workers_.size())));
    for (int i = 0; i < helpers; ++i) enqueue([st, run] { run(st); });
    run(st);
    std::unique_lock lock(st->mu);
    st->cv.wait(lock, [&] { return st->done.load() == st->chunks; });
    if (st->error) std::rethrow_exception(st->error);
}

ThreadPool& ThreadPool::global() {
    static ThreadPool pool([] {
        if (const char* v = std::getenv("VOLT_NUM_THREADS")) {
            int n = std::atoi(v);
            if (n > 0) return n;
        }
        return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    }());
    return pool;
}

}  // namespace volt
