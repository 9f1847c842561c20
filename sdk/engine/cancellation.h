// Cancelling one run of a long operation from another thread. Each run takes a new id; cancel() marks the run in
// progress only, so a cancel that arrives when nothing runs cannot stop a later run (no stale flag).
#pragma once

#include <atomic>
#include <cstdint>

namespace volt {

class RunCanceller {
public:
    uint64_t begin() {
        const uint64_t run = current_.fetch_add(1) + 1;
        running_.store(true);
        return run;
    }
    void end() { running_.store(false); }
    void cancel() {  // any thread; idempotent
        if (running_.load()) cancelled_.store(current_.load());
    }
    bool cancelled(uint64_t run) const { return cancelled_.load() == run; }

private:
    std::atomic<uint64_t> current_{0};
    std::atomic<bool> running_{false};
    std::atomic<uint64_t> cancelled_{0};
};

}  // namespace volt
