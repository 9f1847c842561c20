// The GPUs of one process joined by NCCL (issue 8): one communicator per local GPU (ncclCommInitAll), driven from
// one host thread per GPU (sdk/rank_threads.h). Builds without NCCL compile nccl_group_none.cpp, whose create()
// says UNIMPLEMENTED. NVLink multicast (NVLS) is never enabled: create() sets NCCL_NVLS_ENABLE=0 unless the
// environment already says 0 — a program using it can put shared GPUs out of service.
#pragma once

#include <memory>
#include <span>

#include "sdk/status.h"
#include "sdk/tensor.h"

typedef struct CUstream_st* cudaStream_t;

namespace volt {

class NcclGroup {
public:
    // devices[r] is rank r's GPU (distinct). INVALID_ARGUMENT for repeated or missing devices; UNIMPLEMENTED
    // without NCCL; INTERNAL with NCCL's message when the communicators cannot be made.
    static Expected<std::unique_ptr<NcclGroup>> create(std::span<const int> devices);
    ~NcclGroup();
    NcclGroup(const NcclGroup&) = delete;
    NcclGroup& operator=(const NcclGroup&) = delete;

    int size() const;
    // In-place sum over all ranks of `count` elements (kBF16 or kF32) on rank `rank`'s GPU, enqueued on `stream`
    // (asynchronous; call from that rank's thread with its device current). Every rank must make the same calls in
    // the same order.
    Status all_reduce_sum(int rank, void* data, int64_t count, DType dtype, cudaStream_t stream) const;
    // Ends every pending collective (after one rank failed, so the others do not wait for it forever). The group is
    // unusable afterwards: all_reduce_sum says INTERNAL.
    void abort();
    bool aborted() const;

    struct Impl;

private:
    explicit NcclGroup(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace volt
