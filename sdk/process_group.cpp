// ProcessGroup::from_environment (sdk/nccl_group.h): built with or without NCCL, so every build reads the launcher's
// variables the same way and a CPU-only build can say what it would have done.
#include <cstdlib>
#include <string>

#include "sdk/nccl_group.h"

namespace volt {

namespace {

// The first of `names` that is set, as an integer in [lo, hi]; `fallback` when none is set.
Expected<int> env_int(std::initializer_list<const char*> names, int fallback, int lo, int hi) {
    for (const char* name : names) {
        const char* v = std::getenv(name);
        if (!v) continue;
        char* end = nullptr;
        const long x = std::strtol(v, &end, 10);
        if (!*v || *end || x < lo || x > hi)
            return invalid_argument("environment variable ", name, "='", v, "': expected an integer in [", lo, ", ",
                                    hi, "]");
        return static_cast<int>(x);
    }
    return fallback;
}

}  // namespace

Expected<ProcessGroup> ProcessGroup::from_environment() {
    ProcessGroup p;
    VOLT_ASSIGN_OR_RETURN(p.size, env_int({"VOLT_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE"}, 1, 1, 1 << 20));
    VOLT_ASSIGN_OR_RETURN(p.rank, env_int({"VOLT_RANK", "OMPI_COMM_WORLD_RANK"}, 0, 0, 1 << 20));
    if (p.rank >= p.size)
        return invalid_argument("environment: process rank ", p.rank, " is not below the world size ", p.size);
    VOLT_ASSIGN_OR_RETURN(p.local_rank, env_int({"VOLT_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"}, p.rank, 0, 1 << 20));
    if (const char* host = std::getenv("VOLT_MASTER_ADDR"); host && *host) p.address.host = host;
    VOLT_ASSIGN_OR_RETURN(p.address.port, env_int({"VOLT_MASTER_PORT"}, p.address.port, 1, 65535));
    VOLT_ASSIGN_OR_RETURN(p.address.timeout_seconds,
                          env_int({"VOLT_BOOTSTRAP_TIMEOUT"}, p.address.timeout_seconds, 1, 86400));
    return p;
}

}  // namespace volt
