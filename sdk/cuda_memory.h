// Device memory for tensors. Allocation is stream-ordered and caching: it draws on each device's CUDA memory pool
// (cudaMallocAsync) with the release threshold raised, so freed blocks are kept for reuse instead of going back to
// the driver — the same policy as PyTorch's caching allocator, implemented by CUDA itself.
// In a build without CUDA every call returns UNIMPLEMENTED and cuda_device_count() is 0.
#pragma once

#include <cstddef>
#include <memory>

#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt {

int cuda_device_count();  // 0 when the build has no CUDA or the driver finds no GPU

// `stream` is a cudaStream_t (nullptr = the legacy default stream); the block is freed on the same stream.
Expected<std::shared_ptr<void>> cuda_allocate(int device, size_t bytes, void* stream = nullptr);
Status cuda_memset_zero(int device, void* ptr, size_t bytes, void* stream = nullptr);
// Synchronous copy between any two devices (host included); pageable host memory is fine.
Status cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

struct CudaMemoryStats {
    size_t used_bytes = 0;      // handed out to tensors now
    size_t reserved_bytes = 0;  // held by the pool (used + cached)
    size_t free_bytes = 0;      // free on the device, outside the pool
    size_t total_bytes = 0;
};
Expected<CudaMemoryStats> cuda_memory_stats(int device);

}  // namespace volt
