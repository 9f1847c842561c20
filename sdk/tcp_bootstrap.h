// The first meeting of processes that will share NCCL communicators (one process per GPU group under a launcher):
// rank 0 listens on a TCP port and hands a small blob (NCCL's unique id) to each of the other ranks, which connect
// with retries until a deadline. Plain POSIX sockets; nothing persists after the exchange.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sdk/status.h"

namespace volt {

struct BootstrapAddress {
    std::string host = "127.0.0.1";  // rank 0's host (name or IPv4)
    int port = 29500;
    int timeout_seconds = 300;       // rank 0 waits this long for everyone; the others retry connecting this long
};

// Rank 0 serves `blob` to ranks 1 .. size-1 (each connection announces its rank; each rank once) and returns it;
// the other ranks return the blob read from rank 0. INVALID_ARGUMENT for bad ranks, for a deadline passed (naming
// the address and who is missing: usually a wrong address or a process that did not start) and for a peer that
// breaks the protocol; INTERNAL with the system's message when a socket call fails.
Expected<std::vector<uint8_t>> exchange_bootstrap(int rank, int size, const BootstrapAddress& at,
                                                  const std::vector<uint8_t>& blob);

}  // namespace volt
