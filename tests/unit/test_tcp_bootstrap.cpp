// sdk/tcp_bootstrap: rank 0 hands its blob to every other rank over TCP (how processes share NCCL's id); wrong ranks,
// a missing rank 0 and a rank that connects twice are clear errors within the deadline, never a hang.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "sdk/tcp_bootstrap.h"

namespace volt {
namespace {

// A port nothing listens on right now (bound to 0, read back, closed).
int free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

TEST(TcpBootstrap, RankZeroHandsItsBlobToEveryRank) {
    const BootstrapAddress at{.host = "127.0.0.1", .port = free_port(), .timeout_seconds = 20};
    const std::vector<uint8_t> id = {1, 2, 3, 250, 0, 7};
    std::vector<Expected<std::vector<uint8_t>>> got(4, std::vector<uint8_t>{});
    std::vector<std::thread> ranks;
    for (int r = 3; r >= 0; --r)  // the others first: they retry until rank 0 listens
        ranks.emplace_back([&, r] { got[r] = exchange_bootstrap(r, 4, at, r == 0 ? id : std::vector<uint8_t>{}); });
    for (auto& t : ranks) t.join();
    for (int r = 0; r < 4; ++r) {
        ASSERT_TRUE(got[r]) << "rank " << r << ": " << got[r].status().to_string();
        EXPECT_EQ(*got[r], id) << "rank " << r;
    }
}

TEST(TcpBootstrap, MistakesAreClearErrorsWithinTheDeadline) {
    EXPECT_EQ(exchange_bootstrap(2, 2, {}, {}).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(exchange_bootstrap(0, 1, {}, {9}).value(), std::vector<uint8_t>{9});  // alone: nothing to exchange
    // Nobody at rank 0's address.
    const BootstrapAddress nobody{.host = "127.0.0.1", .port = free_port(), .timeout_seconds = 1};
    auto lost = exchange_bootstrap(1, 2, nobody, {});
    ASSERT_FALSE(lost);
    EXPECT_EQ(lost.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(lost.status().message().find("could not reach rank 0"), std::string::npos) << lost.status().to_string();
    // Rank 0 waiting for a rank that never comes names it.
    const BootstrapAddress alone{.host = "127.0.0.1", .port = free_port(), .timeout_seconds = 1};
    auto waited = exchange_bootstrap(0, 3, alone, {1});
    ASSERT_FALSE(waited);
    EXPECT_NE(waited.status().message().find("ranks 1, 2 never connected"), std::string::npos)
        << waited.status().to_string();
    // Two processes claiming the same rank.
    const BootstrapAddress twice{.host = "127.0.0.1", .port = free_port(), .timeout_seconds = 5};
    Expected<std::vector<uint8_t>> zero = std::vector<uint8_t>{};
    std::thread server([&] { zero = exchange_bootstrap(0, 3, twice, {5}); });
    auto a = exchange_bootstrap(1, 3, twice, {});
    auto b = exchange_bootstrap(1, 3, twice, {});
    server.join();
    EXPECT_TRUE(a);
    EXPECT_FALSE(b);
    ASSERT_FALSE(zero);
    EXPECT_NE(zero.status().message().find("each connects once"), std::string::npos) << zero.status().to_string();
    EXPECT_FALSE(exchange_bootstrap(1, 2, {.host = "no-such-host.invalid", .port = 1, .timeout_seconds = 1}, {}));
}

}  // namespace
}  // namespace volt
