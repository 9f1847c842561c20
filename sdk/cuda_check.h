// Checking CUDA calls: every runtime call's result goes through one of these. Include only from CUDA-enabled code.
#pragma once

#include <cuda_runtime.h>

#include "sdk/status.h"

namespace volt {

inline Status cuda_status(cudaError_t err, const char* expr, const char* file, int line) {
    if (err == cudaSuccess) return Status::ok();
    StatusCode code = err == cudaErrorMemoryAllocation ? StatusCode::kResourceExhausted : StatusCode::kInternal;
    return Status(code, str_cat(cudaGetErrorName(err), " (", cudaGetErrorString(err), ") from ", expr, " at ", file,
                                ":", line));
}

// Makes `device` current for a scope and restores the previous device after (cudaSetDevice only when it differs).
class CudaDeviceScope {
public:
    explicit CudaDeviceScope(int device) {
        cudaGetDevice(&previous_);
        if (previous_ != device) cudaSetDevice(device);
    }
    ~CudaDeviceScope() { cudaSetDevice(previous_); }
    CudaDeviceScope(const CudaDeviceScope&) = delete;
    CudaDeviceScope& operator=(const CudaDeviceScope&) = delete;

private:
    int previous_ = 0;
};

}  // namespace volt

// Status of one CUDA runtime call.
#define VOLT_CUDA_STATUS(expr) ::volt::cuda_status((expr), #expr, __FILE__, __LINE__)
// Returns from the enclosing Status/Expected function when a CUDA call fails.
#define VOLT_CUDA_RETURN_IF_ERROR(expr) VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(expr))
// After a kernel launch: the launch error (bad config) and nothing else; does not synchronise.
#define VOLT_CUDA_CHECK_LAUNCH() VOLT_CUDA_RETURN_IF_ERROR(cudaGetLastError())
