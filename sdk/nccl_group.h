// GPUs joined by NCCL (issue 8): one communicator per local GPU, driven from one host thread per GPU
// (sdk/rank_threads.h). Either one process holds every GPU (ncclCommInitAll), or several processes started by a
// launcher (mpirun, a scheduler) each hold some and meet once at rank 0's TCP address to share NCCL's id
// (sdk/tcp_bootstrap.h). Builds without NCCL compile nccl_group_none.cpp, whose create() says UNIMPLEMENTED. NVLink
// multicast (NVLS) is never enabled: create() sets NCCL_NVLS_ENABLE=0 unless the environment already says 0 — a
// program using it can put shared GPUs out of service.
#pragma once

#include <memory>
#include <span>

#include "sdk/status.h"
#include "sdk/tcp_bootstrap.h"
#include "sdk/tensor.h"

typedef struct CUstream_st* cudaStream_t;

namespace volt {

// Which of several processes this is. Every process holds the same number of GPUs; process p's i-th GPU is rank
// p * gpus + i of the group.
struct ProcessGroup {
    int rank = 0;       // this process, in [0, size)
    int size = 1;       // processes (1: this process holds the whole group)
    int local_rank = 0; // this process among those on its machine (picks its GPUs)
    BootstrapAddress address;
    // From the launcher's environment: VOLT_RANK / VOLT_WORLD_SIZE / VOLT_LOCAL_RANK / VOLT_MASTER_ADDR /
    // VOLT_MASTER_PORT, or mpirun's OMPI_COMM_WORLD_RANK / _SIZE / _LOCAL_RANK (the address then still from
    // VOLT_MASTER_*). One process when none is set; INVALID_ARGUMENT naming the variable for malformed values.
    static Expected<ProcessGroup> from_environment();
};

enum class ReduceOp : uint8_t { kSum, kMax, kMin };

class NcclGroup {
public:
    // devices[i] is this process's i-th GPU (distinct), rank processes.rank * devices.size() + i of the group.
    // INVALID_ARGUMENT for repeated or missing devices; UNIMPLEMENTED without NCCL; the bootstrap's errors; INTERNAL
    // with NCCL's message when the communicators cannot be made.
    static Expected<std::unique_ptr<NcclGroup>> create(std::span<const int> devices, const ProcessGroup& processes = {});
    ~NcclGroup();
    NcclGroup(const NcclGroup&) = delete;
    NcclGroup& operator=(const NcclGroup&) = delete;

    int size() const;        // ranks in the group (all processes)
    int first_rank() const;  // this process's first rank
    // In-place reduction over all ranks of `count` elements (kBF16, kF32 or kI32) on rank `rank`'s GPU (one of this
    // process's), enqueued on `stream` (asynchronous; call from that rank's thread with its device current). Every
    // rank must make the same calls in the same order.
    Status all_reduce(int rank, void* data, int64_t count, DType dtype, cudaStream_t stream,
                      ReduceOp op = ReduceOp::kSum) const;
    // recv[size() * count] = every rank's send[count], in rank order.
    Status all_gather(int rank, const void* send, void* recv, int64_t count, DType dtype, cudaStream_t stream) const;
    // Ends every pending collective (after one rank failed, so the others do not wait for it forever). The group is
    // unusable afterwards: its collectives say INTERNAL.
    void abort();
    bool aborted() const;

    struct Impl;

private:
    explicit NcclGroup(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace volt
