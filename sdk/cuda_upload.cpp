#include "sdk/cuda_upload.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <cuda_runtime.h>

#include "sdk/cuda_check.h"
#include "sdk/cuda_memory.h"
#include "sdk/thread_pool.h"

namespace volt {
namespace {

// The elements of a host tensor in row-major order as runs of contiguous elements: the innermost dims whose strides
// are those of a contiguous block merge into one run of `run` elements; the outer dims index the runs.
struct Runs {
    const std::byte* base = nullptr;
    size_t elem_size = 0;
    int64_t run = 1;
    int outer_rank = 0;
    int64_t outer_dims[Shape::kMaxDims] = {};
    int64_t outer_strides[Shape::kMaxDims] = {};

    explicit Runs(const Tensor& t) : base(static_cast<const std::byte*>(t.data())), elem_size(dtype_size(t.dtype())) {
        int d = t.rank() - 1;
        for (; d >= 0 && (t.dim(d) == 1 || t.stride(d) == run); --d) run *= t.dim(d);
        for (int i = 0; i <= d; ++i) {
            if (t.dim(i) == 1) continue;
            outer_dims[outer_rank] = t.dim(i);
            outer_strides[outer_rank++] = t.stride(i);
        }
    }
    // The address of logical element e.
    const std::byte* at(int64_t e) const {
        int64_t r = e / run, offset = e - r * run;
        for (int i = outer_rank - 1; i >= 0 && r > 0; --i) {
            offset += (r % outer_dims[i]) * outer_strides[i];
            r /= outer_dims[i];
        }
        return base + offset * static_cast<int64_t>(elem_size);
    }
    // Elements [begin, end) converted from `from` into `dst` (of type `to`), run by run.
    void pack(int64_t begin, int64_t end, DType from, std::byte* dst, DType to) const {
        const size_t out_size = dtype_size(to);
        for (int64_t e = begin; e < end;) {
            const int64_t n = std::min(run - e % run, end - e);
            convert(at(e), from, dst + (e - begin) * static_cast<int64_t>(out_size), to, static_cast<size_t>(n));
            e += n;
        }
    }
    // The bytes that hold elements [begin, end): a hint for the kernel to read them ahead from the file.
    void prefetch(int64_t begin, int64_t end) const {
        if (begin >= end) return;
        static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
        const std::byte* a = at(begin);
        const std::byte* b = at(end - 1) + elem_size;
        if (b < a) std::swap(a, b);  // negative strides do not occur, but a hint must never be a wrong range
        const uintptr_t lo = reinterpret_cast<uintptr_t>(a) & ~(page - 1);
        (void)posix_madvise(reinterpret_cast<void*>(lo), reinterpret_cast<uintptr_t>(b) - lo, POSIX_MADV_WILLNEED);
    }
};

std::string describe(std::string_view label, const Tensor& host, DType dtype, int device) {
    return str_cat("uploading ", label.empty() ? std::string_view("a tensor") : label, " (", host.to_string(), " as ",
                   dtype_name(dtype), ", ", host.numel() * int64_t(dtype_size(dtype)), " bytes) to cuda:", device);
}

}  // namespace

struct CudaUploader::Impl {
    struct Slot {
        void* host = nullptr;            // pinned, buffer_bytes
        cudaEvent_t copied = nullptr;    // recorded after the copy out of `host`, on `device`'s legacy stream
        bool in_flight = false;
        std::string what;                // the upload the copy belongs to, for errors
    };
    CudaUploadOptions options;
    std::vector<Slot> slots;
    size_t next = 0;
    int device = -1;  // the device the events were created on
    std::unique_ptr<ThreadPool> pool;
    Status first_error;  // of a copy that failed in flight, until finish() reports it

    // Waits for slot s's copy; a failure is kept (naming that copy's tensor) and returned.
    Status wait(Slot& s) {
        if (!s.in_flight) return Status::ok();
        s.in_flight = false;
        Status st = VOLT_CUDA_STATUS(cudaEventSynchronize(s.copied)).with_context(s.what);
        if (!st.is_ok() && first_error.is_ok()) first_error = st;
        return st;
    }
    Status drain() {
        Status first;
        for (Slot& s : slots) {
            Status st = wait(s);
            if (first.is_ok()) first = st;
        }
        return first;
    }
    // The events go with the device they were made on (after the copies they mark finished).
    void destroy_events() {
        for (Slot& s : slots) {
            if (!s.copied) continue;
            CudaDeviceScope scope(device);
            (void)cudaEventDestroy(s.copied);
            s.copied = nullptr;
        }
        device = -1;
    }
    void release() {
        (void)drain();
        destroy_events();
        for (Slot& s : slots)
            if (s.host) (void)cudaFreeHost(s.host);
        slots.clear();
    }
    // Buffers (once) and events on `dev` (again when the device changes, after the copies in flight finished).
    Status prepare(int dev) {
        if (slots.empty()) {
            slots.resize(static_cast<size_t>(options.buffers));
            for (size_t i = 0; i < slots.size(); ++i) {
                Status st = VOLT_CUDA_STATUS(cudaHostAlloc(&slots[i].host, options.buffer_bytes, cudaHostAllocPortable));
                if (st.is_ok()) continue;
                slots[i].host = nullptr;
                st = st.with_context(str_cat("allocating ", slots.size(), " pinned staging buffers of ",
                                             options.buffer_bytes, " bytes"));
                release();
                return st;
            }
        }
        if (device == dev) return Status::ok();
        VOLT_RETURN_IF_ERROR(drain());
        destroy_events();
        CudaDeviceScope scope(dev);
        device = dev;
        for (Slot& s : slots) {
            Status st = VOLT_CUDA_STATUS(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
            if (!st.is_ok()) {
                s.copied = nullptr;
                destroy_events();
                return st;
            }
        }
        return Status::ok();
    }
};

CudaUploader::CudaUploader(CudaUploadOptions options) : impl_(std::make_unique<Impl>()) {
    options.buffers = std::max(options.buffers, 1);
    const int hardware = static_cast<int>(std::thread::hardware_concurrency());
    options.pack_threads = std::clamp(options.pack_threads, 1, std::max(hardware, 1));
    options.buffer_bytes = std::max<size_t>(options.buffer_bytes, 64);
    impl_->options = options;
}

CudaUploader::~CudaUploader() { impl_->release(); }

Status CudaUploader::finish() {
    Status st = impl_->drain();
    if (!impl_->first_error.is_ok()) st = impl_->first_error;
    impl_->first_error = Status::ok();
    return st;
}

Expected<Tensor> CudaUploader::upload(const Tensor& host, DType dtype, int device, std::string_view label) {
    Impl& m = *impl_;
    const std::string what = describe(label, host, dtype, device);
    if (!host.device().is_cpu()) return invalid_argument(what, ": the source is not a host tensor");
    if (host.dtype() != dtype && !(dtype_is_float(host.dtype()) && dtype_is_float(dtype)))
        return invalid_argument(what, ": converts between floating-point types only");
    if (!host.defined()) return invalid_argument(what, ": the source has no data");
    const int count = cuda_device_count();
    if (device < 0 || device >= count)
        return invalid_argument(what, ": CUDA device ", device, " does not exist (", count, " found)");
    if (!m.first_error.is_ok()) return m.first_error;  // an earlier copy failed: the device may be unusable
    auto out = Tensor::empty(host.shape(), dtype, Device::cuda(device));
    if (!out) return out.status().with_context(what);
    const int64_t n = host.numel();
    if (n == 0) return out;
    VOLT_RETURN_IF_ERROR(m.prepare(device).with_context(what));
    if (!m.pool && m.options.pack_threads > 1) m.pool = std::make_unique<ThreadPool>(m.options.pack_threads);
    CudaDeviceScope scope(device);
    const Runs runs(host);
    const size_t out_size = dtype_size(dtype);
    const int64_t chunk = std::max<int64_t>(static_cast<int64_t>(m.options.buffer_bytes / out_size), 1);
    // At least 256 KiB of output per packing thread: smaller pieces cost more in handing out than they save.
    const int64_t min_piece = std::max<int64_t>(int64_t{256 << 10} / static_cast<int64_t>(out_size), 1);
    auto* dst = static_cast<std::byte*>(out->data());
    runs.prefetch(0, std::min(n, chunk));
    for (int64_t begin = 0; begin < n; begin += chunk) {
        const int64_t end = std::min(n, begin + chunk);
        runs.prefetch(end, std::min(n, end + chunk));  // the next chunk's pages, read while this one is packed
        Impl::Slot& s = m.slots[m.next];
        m.next = (m.next + 1) % m.slots.size();
        VOLT_RETURN_IF_ERROR(m.wait(s));
        auto* buf = static_cast<std::byte*>(s.host);
        auto pack = [&](int64_t b, int64_t e) {
            runs.pack(begin + b, begin + e, host.dtype(), buf + b * static_cast<int64_t>(out_size), dtype);
        };
        if (m.pool) m.pool->parallel_for(end - begin, pack, min_piece);
        else pack(0, end - begin);
        const size_t bytes = static_cast<size_t>(end - begin) * out_size;
        s.what = what;
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemcpyAsync(dst + begin * static_cast<int64_t>(out_size), buf, bytes,
                                                              cudaMemcpyHostToDevice, nullptr))
                                 .with_context(what));
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventRecord(s.copied, nullptr)).with_context(what));
        s.in_flight = true;
    }
    return out;
}

}  // namespace volt
