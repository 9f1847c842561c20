// One worker thread per rank for a process that drives several GPUs itself (the desktop app, the C ABI): each GPU
// keeps one host thread, so its launches and host synchronisations never wait on another GPU's. run() hands the same
// function to every worker and waits for all of them.
//
// Collectives make failures dangerous: when one rank fails before a collective, the others block in it forever.
// run() therefore calls `on_failure(status)` for each failing rank as soon as it fails (from the calling thread) —
// the caller aborts its communicator there so the blocked ranks return, unless the failure is one all ranks take at
// the same point, like an agreed stop — and still waits for every rank before returning.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "sdk/status.h"

namespace volt {

class RankThreads {
public:
    explicit RankThreads(int ranks);
    ~RankThreads();
    RankThreads(const RankThreads&) = delete;
    RankThreads& operator=(const RankThreads&) = delete;

    int size() const { return static_cast<int>(workers_.size()); }
    // fn(rank) on every worker at once. Returns OK, or the first failure (by time; one that is not CANCELLED
    // before any CANCELLED) prefixed with its rank. Calls are serialised (one job at a time).
    Status run(const std::function<Status(int rank)>& fn,
               const std::function<void(const Status&)>& on_failure = {});

private:
    void work(int rank);

    std::mutex run_mu_;  // one run() at a time
    std::mutex mu_;
    std::condition_variable wake_, done_;
    const std::function<Status(int)>* job_ = nullptr;
    uint64_t generation_ = 0;  // bumped per job: a worker runs each generation once
    int pending_ = 0;
    Status first_failure_;
    bool failed_ = false;
    std::vector<Status> unhandled_;  // failures not yet given to on_failure
    bool stop_ = false;
    std::vector<std::thread> workers_;
};

// Every rank ready, or none goes on: for work that cannot be taken back once one rank starts it (a CUDA graph whose
// NCCL collectives would wait forever for a rank that never launches, and that an abort cannot free). Each of the
// `ranks` threads calls arrive() exactly once with the status of its preparation; all of them return together.
class AllReadyGate {
public:
    explicit AllReadyGate(int ranks) : left_(ranks) {}
    // OK when every rank arrived ready. Else what this rank returns: its own failure; CANCELLED when the only
    // failures were CANCELLED (an agreed stop); or INTERNAL naming the first other failure.
    Status arrive(const Status& mine);

private:
    std::mutex mu_;
    std::condition_variable all_arrived_;
    int left_;
    bool any_cancelled_ = false;
    Status first_error_;  // the first failure that is not CANCELLED
};

}  // namespace volt
