// cuda_upload.h for builds without CUDA: an uploader exists (so load paths compile), and uploading says why not.
#include "sdk/cuda_upload.h"

namespace volt {

struct CudaUploader::Impl {};

CudaUploader::CudaUploader(CudaUploadOptions) : impl_(std::make_unique<Impl>()) {}
CudaUploader::~CudaUploader() = default;
Status CudaUploader::finish() { return Status::ok(); }
Expected<Tensor> CudaUploader::upload(const Tensor& host, DType dtype, int device, std::string_view label) {
    return unimplemented("this build of Volt has no CUDA backend (configure with nvcc present)")
        .with_context(str_cat("uploading ", label.empty() ? std::string_view("a tensor") : label, " (",
                              host.to_string(), " as ", dtype_name(dtype), ") to cuda:", device));
}

}  // namespace volt
