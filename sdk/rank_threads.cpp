#include "sdk/rank_threads.h"

namespace volt {

RankThreads::RankThreads(int ranks) {
    workers_.reserve(static_cast<size_t>(ranks));
    for (int r = 0; r < ranks; ++r) workers_.emplace_back([this, r] { work(r); });
}

RankThreads::~RankThreads() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void RankThreads::work(int rank) {
    uint64_t seen = 0;
    for (;;) {
        const std::function<Status(int)>* job = nullptr;
        {
            std::unique_lock<std::mutex> lock(mu_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            job = job_;
        }
        Status s = (*job)(rank);
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (!s.is_ok()) {
                Status tagged(s.code(), str_cat("rank ", rank, ": ", s.message()));
                if (!failed_ || (first_failure_.code() == StatusCode::kCancelled && s.code() != StatusCode::kCancelled))
                    first_failure_ = tagged;
                failed_ = true;
                unhandled_.push_back(std::move(tagged));
            }
            --pending_;
        }
        done_.notify_all();
    }
}

Status RankThreads::run(const std::function<Status(int)>& fn, const std::function<void(const Status&)>& on_failure) {
    std::lock_guard<std::mutex> serial(run_mu_);
    std::unique_lock<std::mutex> lock(mu_);
    job_ = &fn;
    pending_ = size();
    failed_ = false;
    first_failure_ = Status::ok();
    unhandled_.clear();
    ++generation_;
    wake_.notify_all();
    for (;;) {
        done_.wait(lock, [&] { return pending_ == 0 || !unhandled_.empty(); });
        while (!unhandled_.empty()) {
            Status s = std::move(unhandled_.front());
            unhandled_.erase(unhandled_.begin());
            if (on_failure) {
                lock.unlock();  // the failure handler may wait for the workers' resources (e.g. ncclCommAbort)
                on_failure(s);
                lock.lock();
            }
        }
        if (pending_ == 0) break;
    }
    job_ = nullptr;
    return failed_ ? first_failure_ : Status::ok();
}

Status AllReadyGate::arrive(const Status& mine) {
    std::unique_lock<std::mutex> lock(mu_);
    if (mine.code() == StatusCode::kCancelled) any_cancelled_ = true;
    else if (!mine.is_ok() && first_error_.is_ok()) first_error_ = mine;
    if (--left_ == 0) all_arrived_.notify_all();
    else all_arrived_.wait(lock, [&] { return left_ <= 0; });
    if (!mine.is_ok()) return mine;
    if (!first_error_.is_ok()) return internal_error("another rank could not start: ", first_error_.to_string());
    if (any_cancelled_) return cancelled("stopped before the start (another rank was stopped)");
    return Status::ok();
}

}  // namespace volt
