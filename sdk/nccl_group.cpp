#include "sdk/nccl_group.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <vector>

#include "sdk/cuda_check.h"

namespace volt {

struct NcclGroup::Impl {
    std::vector<ncclComm_t> comms;
    std::vector<int> devices;
    std::atomic<bool> aborted{false};
    std::mutex abort_mu;
};

namespace {

Status nccl_status(ncclResult_t r, const char* what) {
    if (r == ncclSuccess) return Status::ok();
    return internal_error(what, ": NCCL ", ncclGetErrorString(r), " (", ncclGetLastError(nullptr), ")");
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

Expected<std::unique_ptr<NcclGroup>> NcclGroup::create(std::span<const int> devices) {
    if (devices.empty()) return invalid_argument("an NCCL group needs at least one GPU");
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
    impl->devices.assign(devices.begin(), devices.end());
    impl->comms.assign(devices.size(), nullptr);
    VOLT_RETURN_IF_ERROR(nccl_status(
        ncclCommInitAll(impl->comms.data(), static_cast<int>(devices.size()), impl->devices.data()),
        "ncclCommInitAll"));
    return std::unique_ptr<NcclGroup>(new NcclGroup(std::move(impl)));
}

int NcclGroup::size() const { return static_cast<int>(impl_->comms.size()); }

Status NcclGroup::all_reduce_sum(int rank, void* data, int64_t count, DType dtype, cudaStream_t stream) const {
    if (impl_->aborted) return internal_error("the GPUs' NCCL group was aborted after an earlier failure; load the model again");
    if (rank < 0 || rank >= size()) return invalid_argument("rank ", rank, " is outside [0, ", size(), ")");
    ncclDataType_t t;
    switch (dtype) {
        case DType::kBF16: t = ncclBfloat16; break;
        case DType::kF32: t = ncclFloat32; break;
        default: return invalid_argument("all_reduce_sum: dtype ", dtype_name(dtype), " (expected BF16 or F32)");
    }
    if (count == 0) return Status::ok();
    return nccl_status(ncclAllReduce(data, data, static_cast<size_t>(count), t, ncclSum, impl_->comms[rank], stream),
                       "ncclAllReduce");
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
