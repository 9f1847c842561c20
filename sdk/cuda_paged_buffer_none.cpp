// cuda_paged_buffer.h for builds without CUDA: no paged buffers (KV caches then live on the host).
#include "sdk/cuda_paged_buffer.h"

namespace volt {

struct CudaPagedBuffer::Page {};

Expected<std::shared_ptr<CudaPagedBuffer>> CudaPagedBuffer::create(int device, size_t) {
    return unimplemented("this build of Volt has no CUDA backend (no paged buffer on cuda:", device, ")");
}
CudaPagedBuffer::~CudaPagedBuffer() = default;
size_t CudaPagedBuffer::shared_pages() const { return 0; }
Status CudaPagedBuffer::grow(size_t) { return unimplemented("no CUDA backend"); }
Status CudaPagedBuffer::release_pages() { return Status::ok(); }
Expected<std::shared_ptr<CudaPagedBuffer>> CudaPagedBuffer::fork(size_t, size_t) const {
    return unimplemented("no CUDA backend");
}
Status CudaPagedBuffer::map_page(std::shared_ptr<Page>) { return unimplemented("no CUDA backend"); }

}  // namespace volt
