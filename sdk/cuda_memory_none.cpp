// cuda_memory.h for builds without CUDA: the CPU backend works, anything on a GPU says why it cannot.
#include "sdk/cuda_memory.h"

namespace volt {
namespace {
Status no_cuda() { return unimplemented("this build of Volt has no CUDA backend (configure with nvcc present)"); }
}  // namespace

int cuda_device_count() { return 0; }
Expected<std::shared_ptr<void>> cuda_allocate(int device, size_t bytes, void*) {
    return no_cuda().with_context(str_cat("allocating ", bytes, " bytes on cuda:", device));
}
Status cuda_memset_zero(int, void*, size_t, void*) { return no_cuda(); }
Status cuda_copy(void*, Device, const void*, Device, size_t) { return no_cuda(); }
Expected<CudaMemoryStats> cuda_memory_stats(int) { return no_cuda(); }

}  // namespace volt
