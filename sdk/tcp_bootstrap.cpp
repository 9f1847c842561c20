#include "sdk/tcp_bootstrap.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <thread>

namespace volt {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr uint32_t kMagic = 0x566f6c74;  // "Volt": a stray connection is told apart from a rank

struct Fd {
    int fd = -1;
    explicit Fd(int f = -1) : fd(f) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

Status sys_error(const char* what) { return internal_error("bootstrap: ", what, ": ", std::strerror(errno)); }

int ms_left(clock_type::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
    return left > 0 ? static_cast<int>(std::min<int64_t>(left, 1 << 30)) : 0;
}

// All of `n` bytes, or a failure by the deadline.
Status io_all(int fd, void* data, size_t n, bool write, clock_type::time_point deadline, const std::string& peer) {
    auto* p = static_cast<uint8_t*>(data);
    while (n > 0) {
        pollfd pfd{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
        const int r = ::poll(&pfd, 1, ms_left(deadline));
        if (r == 0) return invalid_argument("bootstrap: ", peer, " did not ", write ? "read" : "send", " in time");
        if (r < 0) {
            if (errno == EINTR) continue;
            return sys_error("poll");
        }
        const ssize_t k = write ? ::send(fd, p, n, MSG_NOSIGNAL) : ::recv(fd, p, n, 0);
        if (k == 0) return invalid_argument("bootstrap: ", peer, " closed the connection");
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return sys_error(write ? "send" : "recv");
        }
        p += k, n -= static_cast<size_t>(k);
    }
    return Status::ok();
}

Expected<sockaddr_in> resolve(const BootstrapAddress& at) {
    if (at.port <= 0 || at.port > 65535) return invalid_argument("bootstrap: port ", at.port, " is not a TCP port");
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int e = ::getaddrinfo(at.host.c_str(), nullptr, &hints, &res); e != 0 || !res)
        return invalid_argument("bootstrap: cannot resolve host '", at.host, "': ", ::gai_strerror(e));
    sockaddr_in a = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
    ::freeaddrinfo(res);
    a.sin_port = htons(static_cast<uint16_t>(at.port));
    return a;
}

Expected<std::vector<uint8_t>> serve(int size, const BootstrapAddress& at, const std::vector<uint8_t>& blob,
                                     clock_type::time_point deadline) {
    if (at.port <= 0 || at.port > 65535) return invalid_argument("bootstrap: port ", at.port, " is not a TCP port");
    Fd s(::socket(AF_INET, SOCK_STREAM, 0));
    if (s.fd < 0) return sys_error("socket");
    const int one = 1;
    ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(at.port));
    if (::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        return invalid_argument("bootstrap: rank 0 cannot listen on port ", at.port, ": ", std::strerror(errno));
    if (::listen(s.fd, 64) != 0) return sys_error("listen");
    std::set<int> served;
    while (static_cast<int>(served.size()) < size - 1) {
        pollfd pfd{s.fd, POLLIN, 0};
        const int r = ::poll(&pfd, 1, ms_left(deadline));
        if (r == 0) {
            std::string missing;
            for (int k = 1; k < size; ++k)
                if (!served.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
            return invalid_argument("bootstrap: rank 0 on port ", at.port, " waited ", at.timeout_seconds,
                                    " s; ranks ", missing, " never connected (did they start, with this address?)");
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            return sys_error("poll");
        }
        Fd c(::accept(s.fd, nullptr, nullptr));
        if (c.fd < 0) continue;
        uint32_t hello[2] = {0, 0};  // magic, rank
        if (!io_all(c.fd, hello, sizeof hello, false, deadline, "a peer").is_ok() || ntohl(hello[0]) != kMagic)
            continue;  // not one of ours: ignore it
        const int peer = static_cast<int>(ntohl(hello[1]));
        const std::string who = "rank " + std::to_string(peer);
        if (peer < 1 || peer >= size || served.count(peer))
            return invalid_argument("bootstrap: ", who, " connected, but the ranks are 1..", size - 1,
                                    " and each connects once (two processes with the same rank?)");
        const uint32_t len = htonl(static_cast<uint32_t>(blob.size()));
        VOLT_RETURN_IF_ERROR(io_all(c.fd, const_cast<uint32_t*>(&len), sizeof len, true, deadline, who));
        VOLT_RETURN_IF_ERROR(io_all(c.fd, const_cast<uint8_t*>(blob.data()), blob.size(), true, deadline, who));
        served.insert(peer);
    }
    return blob;
}

Expected<std::vector<uint8_t>> fetch(int rank, const BootstrapAddress& at, clock_type::time_point deadline) {
    VOLT_ASSIGN_OR_RETURN(sockaddr_in a, resolve(at));
    const std::string where = at.host + ":" + std::to_string(at.port);
    for (;;) {
        Fd c(::socket(AF_INET, SOCK_STREAM, 0));
        if (c.fd < 0) return sys_error("socket");
        if (::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
            const uint32_t hello[2] = {htonl(kMagic), htonl(static_cast<uint32_t>(rank))};
            const std::string peer = "rank 0 at " + where;
            VOLT_RETURN_IF_ERROR(io_all(c.fd, const_cast<uint32_t*>(hello), sizeof hello, true, deadline, peer));
            uint32_t len = 0;
            VOLT_RETURN_IF_ERROR(io_all(c.fd, &len, sizeof len, false, deadline, peer));
            len = ntohl(len);
            if (len > (1u << 20)) return invalid_argument("bootstrap: ", peer, " announced ", len, " bytes (protocol)");
            std::vector<uint8_t> blob(len);
            VOLT_RETURN_IF_ERROR(io_all(c.fd, blob.data(), len, false, deadline, peer));
            return blob;
        }
        if (ms_left(deadline) == 0)
            return invalid_argument("bootstrap: rank ", rank, " could not reach rank 0 at ", where, " within ",
                                    at.timeout_seconds, " s (", std::strerror(errno), ")");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace

Expected<std::vector<uint8_t>> exchange_bootstrap(int rank, int size, const BootstrapAddress& at,
                                                  const std::vector<uint8_t>& blob) {
    if (size < 1 || rank < 0 || rank >= size)
        return invalid_argument("bootstrap: rank ", rank, " of ", size, " processes (expected 0 <= rank < size)");
    if (size == 1) return blob;
    const auto deadline = clock_type::now() + std::chrono::seconds(std::max(at.timeout_seconds, 1));
    return rank == 0 ? serve(size, at, blob, deadline) : fetch(rank, at, deadline);
}

}  // namespace volt
