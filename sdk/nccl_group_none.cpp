// NcclGroup in builds without NCCL: nothing can be made, so nothing else is ever called.
#include "sdk/nccl_group.h"

namespace volt {

struct NcclGroup::Impl {};

NcclGroup::NcclGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NcclGroup::~NcclGroup() = default;

Expected<std::unique_ptr<NcclGroup>> NcclGroup::create(std::span<const int>, const ProcessGroup&) {
    return unimplemented("this build has no NCCL (configured without it), so a model cannot span several GPUs");
}
int NcclGroup::size() const { return 0; }
int NcclGroup::first_rank() const { return 0; }
Status NcclGroup::all_reduce(int, void*, int64_t, DType, cudaStream_t, ReduceOp) const {
    return unimplemented("this build has no NCCL");
}
Status NcclGroup::all_gather(int, const void*, void*, int64_t, DType, cudaStream_t) const {
    return unimplemented("this build has no NCCL");
}
void NcclGroup::abort() {}
bool NcclGroup::aborted() const { return false; }

}  // namespace volt
