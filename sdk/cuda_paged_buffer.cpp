#include "sdk/cuda_paged_buffer.h"

#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "sdk/cuda_check.h"

namespace volt {
namespace {

// The driver's virtual memory calls, looked up through the runtime (Volt links only cudart, so a binary built with
// CUDA still starts on a machine without a driver; there the lookup fails and create() says so).
struct Vmm {
    CUresult (*granularity)(size_t*, const CUmemAllocationProp*, CUmemAllocationGranularity_flags) = nullptr;
    CUresult (*reserve)(CUdeviceptr*, size_t, size_t, CUdeviceptr, unsigned long long) = nullptr;
    CUresult (*free_range)(CUdeviceptr, size_t) = nullptr;
    CUresult (*create)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*, unsigned long long) = nullptr;
    CUresult (*release)(CUmemGenericAllocationHandle) = nullptr;
    CUresult (*map)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long) = nullptr;
    CUresult (*unmap)(CUdeviceptr, size_t) = nullptr;
    CUresult (*set_access)(CUdeviceptr, size_t, const CUmemAccessDesc*, size_t) = nullptr;
    bool ok = false;
};

template <typename F>
bool lookup(const char* name, F& f) {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess || !p) {
        cudaGetLastError();
        return false;
    }
    f = reinterpret_cast<F>(p);
    return true;
}

const Vmm& vmm() {
    static const Vmm v = [] {
        Vmm r;
        r.ok = lookup("cuMemGetAllocationGranularity", r.granularity) && lookup("cuMemAddressReserve", r.reserve) &&
               lookup("cuMemAddressFree", r.free_range) && lookup("cuMemCreate", r.create) &&
               lookup("cuMemRelease", r.release) && lookup("cuMemMap", r.map) && lookup("cuMemUnmap", r.unmap) &&
               lookup("cuMemSetAccess", r.set_access);
        return r;
    }();
    return v;
}

Status cu_status(CUresult r, const char* what, int device) {
    if (r == CUDA_SUCCESS) return Status::ok();
    if (r == CUDA_ERROR_OUT_OF_MEMORY) return resource_exhausted("cuda:", device, ": ", what, ": out of device memory");
    return internal_error("cuda:", device, ": ", what, " failed (CUresult ", static_cast<int>(r), ")");
}

CUmemAllocationProp page_prop(int device) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device;
    return prop;
}

}  // namespace

struct CudaPagedBuffer::Page {
    CUmemGenericAllocationHandle handle = 0;
    ~Page() {
        if (handle) vmm().release(handle);
    }
};

Expected<std::shared_ptr<CudaPagedBuffer>> CudaPagedBuffer::create(int device, size_t max_bytes) {
    const Vmm& v = vmm();
    if (!v.ok) return unimplemented("cuda:", device, ": the driver offers no virtual memory management");
    CudaDeviceScope scope(device);
    VOLT_CUDA_RETURN_IF_ERROR(cudaFree(nullptr));  // the device's primary context, which the driver calls use
    const CUmemAllocationProp prop = page_prop(device);
    size_t page = 0;
    if (v.granularity(&page, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS || page == 0)
        return unimplemented("cuda:", device, " does not support virtual memory management");
    const size_t max = std::max<size_t>(1, (max_bytes + page - 1) / page) * page;
    CUdeviceptr base = 0;
    // Out of address space (many very long reservations): UNIMPLEMENTED too, so the caller allocates contiguously.
    if (const CUresult r = v.reserve(&base, max, page, 0, 0); r != CUDA_SUCCESS)
        return unimplemented("cuda:", device, ": cannot reserve ", max, " bytes of address space (CUresult ",
                             static_cast<int>(r), ")");
    return std::shared_ptr<CudaPagedBuffer>(new CudaPagedBuffer(device, reinterpret_cast<void*>(base), page, max));
}

CudaPagedBuffer::~CudaPagedBuffer() {
    (void)release_pages();
    vmm().free_range(reinterpret_cast<CUdeviceptr>(base_), max_);
}

size_t CudaPagedBuffer::shared_pages() const {
    return static_cast<size_t>(
        std::count_if(pages_.begin(), pages_.end(), [](const auto& p) { return p.use_count() > 1; }));
}

Status CudaPagedBuffer::map_page(std::shared_ptr<Page> page) {
    const Vmm& v = vmm();
    const CUdeviceptr at = reinterpret_cast<CUdeviceptr>(base_) + pages_.size() * page_;
    VOLT_RETURN_IF_ERROR(cu_status(v.map(at, page_, 0, page->handle, 0), "mapping a page", device_));
    CUmemAccessDesc access{};
    access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    access.location.id = device_;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    const Status granted = cu_status(v.set_access(at, page_, &access, 1), "granting access to a page", device_);
    if (!granted.is_ok()) {
        v.unmap(at, page_);
        return granted;
    }
    pages_.push_back(std::move(page));
    return Status::ok();
}

Status CudaPagedBuffer::grow(size_t bytes) {
    if (bytes > max_)
        return resource_exhausted("cuda:", device_, ": a paged buffer of ", max_, " bytes cannot grow to ", bytes);
    const Vmm& v = vmm();
    CudaDeviceScope scope(device_);
    const CUmemAllocationProp prop = page_prop(device_);
    while (mapped_bytes() < bytes) {
        auto page = std::make_shared<Page>();
        VOLT_RETURN_IF_ERROR(cu_status(v.create(&page->handle, page_, &prop, 0), "allocating a page", device_)
                                 .with_context(str_cat("growing a paged buffer to ", bytes, " bytes")));
        VOLT_RETURN_IF_ERROR(map_page(std::move(page)));
    }
    return Status::ok();
}

Status CudaPagedBuffer::release_pages() {
    if (pages_.empty()) return Status::ok();
    CudaDeviceScope scope(device_);
    // Work still queued may read or write these pages (stream-ordered frees do not apply to mappings).
    const Status synced = VOLT_CUDA_STATUS(cudaDeviceSynchronize());
    const CUresult r = vmm().unmap(reinterpret_cast<CUdeviceptr>(base_), mapped_bytes());
    pages_.clear();
    VOLT_RETURN_IF_ERROR(synced);
    return cu_status(r, "unmapping pages", device_);
}

Expected<std::shared_ptr<CudaPagedBuffer>> CudaPagedBuffer::fork(size_t keep_bytes, size_t mapped_bytes) const {
    keep_bytes = std::min(keep_bytes, this->mapped_bytes());
    VOLT_ASSIGN_OR_RETURN(std::shared_ptr<CudaPagedBuffer> f, create(device_, max_));
    const size_t whole = keep_bytes / page_;
    for (size_t i = 0; i < whole; ++i) VOLT_RETURN_IF_ERROR(f->map_page(pages_[i]));
    VOLT_RETURN_IF_ERROR(f->grow(std::max(keep_bytes, mapped_bytes)));
    if (const size_t tail = keep_bytes - whole * page_; tail > 0) {
        CudaDeviceScope scope(device_);
        const size_t at = whole * page_;
        VOLT_CUDA_RETURN_IF_ERROR(cudaMemcpy(static_cast<char*>(f->base_) + at, static_cast<const char*>(base_) + at,
                                             tail, cudaMemcpyDeviceToDevice));
    }
    return f;
}

}  // namespace volt
