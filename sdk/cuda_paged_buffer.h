// A device buffer that grows in place (the KV cache's paged blocks): a virtual address range reserved once for the
// largest size, backed by physical pages (the device's allocation granularity: 2 MiB on Hopper) mapped as it grows
// (CUDA virtual memory management, as vAttention does instead of PagedAttention's block tables). Its address never
// changes, so the attention kernels read a sequence's rows as one contiguous array, growing copies nothing and holds
// no second copy, and a fork maps the pages of a prefix instead of copying them.
//
// Sharing rule: after fork(keep), the pages wholly below `keep` belong to both buffers, and neither may write below
// `keep` again (a KV cache only appends; clearing one drops its pages first: release_pages()).
// In a build without CUDA, or when the driver lacks virtual memory management, create() returns UNIMPLEMENTED and
// callers allocate contiguously.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "sdk/status.h"

namespace volt {

class CudaPagedBuffer {
public:
    // Reserves `max_bytes` of address space on `device` (rounded up to whole pages); nothing is mapped yet.
    // UNIMPLEMENTED when there is no VMM or the address space is exhausted (the caller then allocates contiguously).
    static Expected<std::shared_ptr<CudaPagedBuffer>> create(int device, size_t max_bytes);
    ~CudaPagedBuffer();  // waits for the device's work, then unmaps and frees
    CudaPagedBuffer(const CudaPagedBuffer&) = delete;
    CudaPagedBuffer& operator=(const CudaPagedBuffer&) = delete;

    void* data() const { return base_; }
    int device() const { return device_; }
    size_t page_bytes() const { return page_; }
    size_t max_bytes() const { return max_; }
    size_t mapped_bytes() const { return pages_.size() * page_; }
    size_t shared_pages() const;  // pages another buffer maps too

    // Maps fresh pages until mapped_bytes() >= bytes (RESOURCE_EXHAUSTED when the device is out of memory, or beyond
    // max_bytes()). Mapped bytes keep their contents.
    Status grow(size_t bytes);
    // Unmaps every page (waits for the device's work first); the address range stays reserved.
    Status release_pages();
    // A buffer of the same size whose first keep_bytes are this one's: whole pages mapped (shared), the page holding
    // keep_bytes (when partial) a fresh page with this one's bytes copied, then fresh pages up to `mapped_bytes`.
    Expected<std::shared_ptr<CudaPagedBuffer>> fork(size_t keep_bytes, size_t mapped_bytes) const;

    struct Page;  // one physical allocation (released with its last mapping)

private:
    CudaPagedBuffer(int device, void* base, size_t page, size_t max)
        : device_(device), base_(base), page_(page), max_(max) {}
    Status map_page(std::shared_ptr<Page> page);  // at the end of the mapped range

    int device_;
    void* base_;
    size_t page_, max_;
    std::vector<std::shared_ptr<Page>> pages_;
};

}  // namespace volt
