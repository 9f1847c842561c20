#include "sdk/cuda_memory.h"

#include <cstdint>
#include <mutex>

#include <cuda_runtime.h>

#include "sdk/cuda_check.h"

namespace volt {
namespace {

// Raises each device's default pool release threshold once, so cudaFreeAsync keeps blocks cached.
Status prepare_pool(int device) {
    static std::once_flag flags[64];
    if (device < 0 || device >= 64) return invalid_argument("CUDA device index ", device, " out of range");
    Status status;
    std::call_once(flags[device], [&] {
        cudaMemPool_t pool;
        status = VOLT_CUDA_STATUS(cudaDeviceGetDefaultMemPool(&pool, device));
        if (!status.is_ok()) return;
        uint64_t threshold = UINT64_MAX;
        status = VOLT_CUDA_STATUS(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    });
    return status;
}

}  // namespace

int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device" error
        return 0;
    }
    return n;
}

Expected<std::shared_ptr<void>> cuda_allocate(int device, size_t bytes, void* stream) {
    int n = cuda_device_count();
    if (device < 0 || device >= n) return invalid_argument("CUDA device ", device, " does not exist (", n, " found)");
    VOLT_RETURN_IF_ERROR(prepare_pool(device));
    CudaDeviceScope guard(device);
    void* p = nullptr;
    cudaError_t err = cudaMallocAsync(&p, bytes == 0 ? 1 : bytes, static_cast<cudaStream_t>(stream));
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return resource_exhausted("cuda:", device, ": cannot allocate ", bytes, " bytes (", free_b, " of ", total_b,
                                  " bytes free)");
    }
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(err));
    return std::shared_ptr<void>(p, [device, stream](void* q) {
        CudaDeviceScope g(device);
        cudaFreeAsync(q, static_cast<cudaStream_t>(stream));
    });
}

Status cuda_memset_zero(int device, void* ptr, size_t bytes, void* stream) {
    CudaDeviceScope guard(device);
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemsetAsync(ptr, 0, bytes, static_cast<cudaStream_t>(stream))));
    return VOLT_CUDA_STATUS(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
}

Status cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
    CudaDeviceScope guard(dst_device.is_cuda() ? dst_device.index : src_device.index);
    if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index)
        return VOLT_CUDA_STATUS(cudaMemcpyPeer(dst, dst_device.index, src, src_device.index, bytes));
    return VOLT_CUDA_STATUS(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

Expected<CudaMemoryStats> cuda_memory_stats(int device) {
    VOLT_RETURN_IF_ERROR(prepare_pool(device));
    CudaDeviceScope guard(device);
    cudaMemPool_t pool;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaDeviceGetDefaultMemPool(&pool, device)));
    CudaMemoryStats s;
    uint64_t v = 0;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &v)));
    s.used_bytes = v;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &v)));
    s.reserved_bytes = v;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemGetInfo(&s.free_bytes, &s.total_bytes)));
    return s;
}

}  // namespace volt
