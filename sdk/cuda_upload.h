// Host tensors to the GPU through pinned staging (issue 12): weights come from mmapped safetensors (pageable memory,
// which a plain cudaMemcpy copies synchronously through the driver's own small staging). A CudaUploader holds a few
// pinned host buffers of a fixed size for one load and copies each tensor through them in chunks: while chunk i
// goes to the GPU asynchronously, the CPU packs chunk i + 1 (a copy, the gather of a strided slice, or a dtype
// conversion such as f32 -> bf16) into the next buffer; an event per buffer keeps a buffer from being packed again
// before its copy finished. Values are bitwise those of `host.to(dtype).to(Device::cuda(device))`.
//
// One uploader per loading thread (it is not thread-safe); create it for a load and let it go after (the pinned
// buffers are allocated at the first upload and freed with the uploader). In a build without CUDA every upload
// returns UNIMPLEMENTED.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt {

struct CudaUploadOptions {
    size_t buffer_bytes = size_t{32} << 20;  // each pinned buffer (one chunk of a tensor)
    int buffers = 2;                         // chunks in flight (at least 2 for any overlap)
    int pack_threads = 8;                    // CPU threads packing a chunk, the caller's included (at most the
                                             // machine's hardware threads)
};

class CudaUploader {
public:
    explicit CudaUploader(CudaUploadOptions options = {});
    ~CudaUploader();  // waits for the copies in flight (their errors are dropped: call finish() to see them)
    CudaUploader(const CudaUploader&) = delete;
    CudaUploader& operator=(const CudaUploader&) = delete;

    // A contiguous copy of host tensor `host` (any strides; same dtype, or float -> float converted while packing)
    // as `dtype` on GPU `device`. The copy is ordered on that device's legacy default stream, the stream of Volt's
    // allocator and model kernels: work issued there later sees the data, anything else must call finish() first.
    // The host tensor may go away when this returns. `label` names the tensor in errors (with bytes and device).
    Expected<Tensor> upload(const Tensor& host, DType dtype, int device, std::string_view label = {});

    // Waits for every copy in flight; the first failure names its tensor, bytes and device.
    Status finish();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace volt
