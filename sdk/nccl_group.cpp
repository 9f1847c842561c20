#include "sdk/nccl_group.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <vector>

#include "sdk/cuda_check.h"

namespace volt {

struct NcclGroup::Impl {
    std::vector<ncclComm_t> comms;  // this process's, in rank order
    std::vector<int> devices;
    int first_rank = 0;
    int size = 0;
    std::atomic<bool> aborted{false};
    std::mutex abort_mu;
};

namespace {

Status nccl_status(ncclResult_t r, const char* what) {
    if (r == ncclSuccess) return Status::ok();
    return internal_error(what, ": NCCL ", ncclGetErrorString(r), " (", ncclGetLastError(nullptr), ")");
}

Expected<ncclDataType_t> nccl_type(DType dtype, const char* what) {
    switch (dtype) {
        case DType::kBF16: return ncclBfloat16;
        case DType::kF32: return ncclFloat32;
        case DType::kI32: return ncclInt32;
        default: return invalid_argument(what, ": dtype ", dtype_name(dtype), " (expected BF16, F32 or I32)");
    }
}

// The communicator of `rank` (one of this process's), unless the group was aborted.
Expected<ncclComm_t> comm_of(const NcclGroup::Impl& impl, int rank) {
    if (impl.aborted)
        return internal_error("the GPUs' NCCL group was aborted after an earlier failure; load the model again");
    const int local = rank - impl.first_rank;
    if (local < 0 || local >= static_cast<int>(impl.comms.size()))
        return invalid_argument("rank ", rank, " is not one of this process's (", impl.first_rank, "..",
                                impl.first_rank + int(impl.comms.size()) - 1, ")");
    return impl.comms[size_t(local)];
}

}  // namespace

NcclGroup::NcclGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NcclGroup::~NcclGroup() {
    if (!impl_) return;
    for (size_t r = 0; r < impl_->comms.size(); ++r) {
        if (!impl_->comms[r]) continue;
        (void)cudaSetDevice(impl_->devices[r]);
        if (impl_->aborted) continue;  // ncclCommAbort freed it
        (void)ncclCommDestroy(impl_->comms[r]);
    }
}

Expected<std::unique_ptr<NcclGroup>> NcclGroup::create(std::span<const int> devices, const ProcessGroup& processes) {
    if (devices.empty()) return invalid_argument("an NCCL group needs at least one GPU");
    if (processes.size < 1 || processes.rank < 0 || processes.rank >= processes.size)
        return invalid_argument("process ", processes.rank, " of ", processes.size, " (expected 0 <= rank < size)");
    int count = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&count));
    std::set<int> seen;
    for (int d : devices) {
        if (d < 0 || d >= count)
            return invalid_argument("GPU ", d, " does not exist (this machine has ", count, " GPUs)");
        if (!seen.insert(d).second) return invalid_argument("GPU ", d, " is listed twice");
    }
    // NVLink multicast stays off (shared machines); respect a caller who already set it.
    setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
    if (const char* v = std::getenv("NCCL_NVLS_ENABLE"); v && std::string(v) != "0")
        return invalid_argument("NCCL_NVLS_ENABLE=", v, ": Volt keeps NVLink multicast off; unset it or set it to 0");
    auto impl = std::make_unique<Impl>();
    const int local = static_cast<int>(devices.size());
    impl->devices.assign(devices.begin(), devices.end());
    impl->comms.assign(devices.size(), nullptr);
    impl->first_rank = processes.rank * local;
    impl->size = processes.size * local;
    if (processes.size == 1) {
        VOLT_RETURN_IF_ERROR(
            nccl_status(ncclCommInitAll(impl->comms.data(), local, impl->devices.data()), "ncclCommInitAll"));
    } else {
        ncclUniqueId id{};
        if (processes.rank == 0) VOLT_RETURN_IF_ERROR(nccl_status(ncclGetUniqueId(&id), "ncclGetUniqueId"));
        std::vector<uint8_t> blob(reinterpret_cast<uint8_t*>(&id), reinterpret_cast<uint8_t*>(&id) + sizeof id);
        VOLT_ASSIGN_OR_RETURN(blob, exchange_bootstrap(processes.rank, processes.size, processes.address, blob));
        if (blob.size() != sizeof id)
            return invalid_argument("bootstrap: rank 0 sent ", blob.size(), " bytes, not an NCCL id of ", sizeof id,
                                    " (another NCCL version there?)");
        std::memcpy(&id, blob.data(), sizeof id);
        VOLT_RETURN_IF_ERROR(nccl_status(ncclGroupStart(), "ncclGroupStart"));
        for (int i = 0; i < local; ++i) {
            VOLT_CUDA_RETURN_IF_ERROR(cudaSetDevice(impl->devices[size_t(i)]));
            VOLT_RETURN_IF_ERROR(nccl_status(
                ncclCommInitRank(&impl->comms[size_t(i)], impl->size, id, impl->first_rank + i), "ncclCommInitRank"));
        }
        VOLT_RETURN_IF_ERROR(nccl_status(ncclGroupEnd(), "ncclCommInitRank (group)"));
    }
    return std::unique_ptr<NcclGroup>(new NcclGroup(std::move(impl)));
}

int NcclGroup::size() const { return impl_->size; }
int NcclGroup::first_rank() const { return impl_->first_rank; }

Status NcclGroup::all_reduce(int rank, void* data, int64_t count, DType dtype, cudaStream_t stream,
                             ReduceOp op) const {
    VOLT_ASSIGN_OR_RETURN(ncclComm_t comm, comm_of(*impl_, rank));
    VOLT_ASSIGN_OR_RETURN(ncclDataType_t t, nccl_type(dtype, "all_reduce"));
    if (count == 0) return Status::ok();
    const ncclRedOp_t o = op == ReduceOp::kSum ? ncclSum : op == ReduceOp::kMax ? ncclMax : ncclMin;
    return nccl_status(ncclAllReduce(data, data, static_cast<size_t>(count), t, o, comm, stream), "ncclAllReduce");
}

Status NcclGroup::all_gather(int rank, const void* send, void* recv, int64_t count, DType dtype,
                             cudaStream_t stream) const {
    VOLT_ASSIGN_OR_RETURN(ncclComm_t comm, comm_of(*impl_, rank));
    VOLT_ASSIGN_OR_RETURN(ncclDataType_t t, nccl_type(dtype, "all_gather"));
    if (count == 0) return Status::ok();
    return nccl_status(ncclAllGather(send, recv, static_cast<size_t>(count), t, comm, stream), "ncclAllGather");
}

void NcclGroup::abort() {
    std::lock_guard<std::mutex> lock(impl_->abort_mu);
    if (impl_->aborted.exchange(true)) return;
    for (size_t r = 0; r < impl_->comms.size(); ++r) {
        (void)cudaSetDevice(impl_->devices[r]);
        (void)ncclCommAbort(impl_->comms[r]);
    }
}

bool NcclGroup::aborted() const { return impl_->aborted; }

}  // namespace volt
