// sdk/rank_threads: every rank runs the job on its own thread; the first failure is reported with its rank; the
// failure handler runs once and can release ranks that wait for the failed one (as an NCCL abort does), so run()
// never hangs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "sdk/rank_threads.h"

namespace volt {
namespace {

TEST(RankThreads, RunsEveryRankOnItsOwnThreadEachTime) {
    RankThreads ranks(4);
    for (int round = 0; round < 3; ++round) {
        std::mutex mu;
        std::set<int> seen;
        std::set<std::thread::id> threads;
        ASSERT_TRUE(ranks.run([&](int r) {
            std::lock_guard<std::mutex> lock(mu);
            seen.insert(r);
            threads.insert(std::this_thread::get_id());
            return Status::ok();
        }));
        EXPECT_EQ(seen, (std::set<int>{0, 1, 2, 3}));
        EXPECT_EQ(threads.size(), 4u);
        EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
    }
}

TEST(RankThreads, AFailureReleasesTheWaitingRanksThroughTheHandler) {
    RankThreads ranks(3);
    std::atomic<bool> released{false};
    std::atomic<int> handler_calls{0};
    const Status s = ranks.run(
        [&](int r) -> Status {
            if (r == 1) return invalid_argument("bad shard");
            // The other ranks wait for rank 1 the way a collective would, until the handler aborts.
            while (!released) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            return internal_error("aborted");
        },
        [&](const Status& failure) {
            ++handler_calls;
            if (failure.code() == StatusCode::kInvalidArgument) released = true;
        });
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), "rank 1: bad shard");
    EXPECT_EQ(handler_calls, 3);  // each rank's failure, the first one releasing the others
    // Still usable afterwards.
    EXPECT_TRUE(ranks.run([](int) { return Status::ok(); }));
}

TEST(RankThreads, AnAgreedStopGivesWayToARealFailure) {
    RankThreads ranks(2);
    std::atomic<bool> cancelled_first{false};
    const Status s = ranks.run([&](int r) -> Status {
        if (r == 0) {
            cancelled_first = true;
            return cancelled("stopped");
        }
        while (!cancelled_first) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return data_loss("bad weights");
    });
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_EQ(s.message(), "rank 1: bad weights");
}

// AllReadyGate: every rank returns together; OK only when all were ready; a failed rank gets its own status back, the
// others INTERNAL naming it (or CANCELLED when the only failures were stops), whatever the arrival order.
TEST(AllReadyGate, EveryRankGoesOnOnlyWhenAllWereReady) {
    RankThreads ranks(4);
    struct Case {
        std::vector<Status> prepared;  // per rank
        std::vector<StatusCode> want;
    };
    const std::vector<Case> cases = {
        {{Status::ok(), Status::ok(), Status::ok(), Status::ok()},
         {StatusCode::kOk, StatusCode::kOk, StatusCode::kOk, StatusCode::kOk}},
        {{Status::ok(), invalid_argument("staging"), Status::ok(), Status::ok()},
         {StatusCode::kInternal, StatusCode::kInvalidArgument, StatusCode::kInternal, StatusCode::kInternal}},
        {{cancelled("stop"), cancelled("stop"), Status::ok(), Status::ok()},
         {StatusCode::kCancelled, StatusCode::kCancelled, StatusCode::kCancelled, StatusCode::kCancelled}},
        {{cancelled("stop"), Status::ok(), resource_exhausted("memory"), Status::ok()},
         {StatusCode::kCancelled, StatusCode::kInternal, StatusCode::kResourceExhausted, StatusCode::kInternal}},
    };
    for (size_t ci = 0; ci < cases.size(); ++ci) {
        for (int late = 0; late < 4; ++late) {  // each rank in turn arrives last, well after the others
            SCOPED_TRACE(testing::Message() << "case " << ci << ", rank " << late << " last");
            AllReadyGate gate(4);
            std::vector<Status> got(4);
            std::atomic<int> returned{0};
            (void)ranks.run([&](int r) {
                if (r == late) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    EXPECT_EQ(returned.load(), 0) << "a rank went on before the last one arrived";
                }
                got[size_t(r)] = gate.arrive(cases[ci].prepared[size_t(r)]);
                ++returned;
                return Status::ok();
            });
            for (int r = 0; r < 4; ++r) {
                EXPECT_EQ(got[size_t(r)].code(), cases[ci].want[size_t(r)])
                    << "rank " << r << ": " << got[size_t(r)].to_string();
                if (cases[ci].want[size_t(r)] == StatusCode::kInternal) {
                    EXPECT_NE(got[size_t(r)].message().find("another rank could not start"), std::string::npos);
                }
            }
        }
    }
}

}  // namespace
}  // namespace volt
