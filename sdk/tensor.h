// Tensor: a typed, strided view of memory on one device. Owning tensors keep their storage alive through a shared
// keep-alive handle; borrowed tensors (views of mmapped checkpoints, caller buffers) share their owner's handle or
// none at all. Views (reshape, slice, select, transpose) never copy.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "sdk/dtype.h"
#include "sdk/status.h"

namespace volt {

struct Device {
    enum class Kind : uint8_t { kCPU, kCUDA };
    Kind kind = Kind::kCPU;
    int index = 0;

    static Device cpu() { return {Kind::kCPU, 0}; }
    static Device cuda(int index) { return {Kind::kCUDA, index}; }
    bool is_cpu() const { return kind == Kind::kCPU; }
    bool is_cuda() const { return kind == Kind::kCUDA; }
    std::string to_string() const;  // "cpu", "cuda:1"
    friend bool operator==(const Device&, const Device&) = default;
};

// A small fixed-capacity list of dimensions (no heap allocation on hot paths).
class Shape {
public:
    static constexpr int kMaxDims = 8;
    Shape() = default;
    Shape(std::initializer_list<int64_t> dims);
    template <typename It> static Shape from(It first, It last) {
        Shape s;
        for (; first != last; ++first) s.push_back(static_cast<int64_t>(*first));
        return s;
    }

    int rank() const { return rank_; }
    int64_t operator[](int i) const { return dims_[i]; }
    int64_t& operator[](int i) { return dims_[i]; }
    void push_back(int64_t d);
    int64_t numel() const;  // 1 for rank 0
    const int64_t* begin() const { return dims_.data(); }
    const int64_t* end() const { return dims_.data() + rank_; }
    std::string to_string() const;  // "[2, 3]"
    friend bool operator==(const Shape& a, const Shape& b);

private:
    std::array<int64_t, kMaxDims> dims_{};
    int rank_ = 0;
};

class Tensor {
public:
    Tensor() = default;

    // Allocates uninitialised, contiguous storage (host: 64-byte aligned; CUDA: the device's caching allocator).
    static Expected<Tensor> empty(const Shape& shape, DType dtype, Device device = Device::cpu());
    static Expected<Tensor> zeros(const Shape& shape, DType dtype, Device device = Device::cpu());
    // Wraps memory Volt does not own; `keepalive` (may be null) is held for as long as any view exists.
    static Tensor borrow(void* data, const Shape& shape, DType dtype, Device device = Device::cpu(),
                         std::shared_ptr<void> keepalive = nullptr);

    bool defined() const { return data_ != nullptr || shape_.numel() == 0; }
    void* data() const { return data_; }
    template <typename T> T* data_as() const { return static_cast<T*>(data_); }
    DType dtype() const { return dtype_; }
    Device device() const { return device_; }
    const Shape& shape() const { return shape_; }
    int rank() const { return shape_.rank(); }
    int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
    int64_t stride(int i) const { return strides_[i < 0 ? i + rank() : i]; }  // in elements
    int64_t numel() const { return shape_.numel(); }
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }  // of the elements viewed
    bool is_contiguous() const;
    const std::shared_ptr<void>& keepalive() const { return keepalive_; }

    // ---- views (no copies) ----
    Expected<Tensor> reshape(const Shape& shape) const;         // contiguous tensors only; one dim may be -1
    Expected<Tensor> slice(int dim, int64_t begin, int64_t end) const;  // [begin, end) along dim
    Expected<Tensor> select(int dim, int64_t index) const;     // removes dim
    Expected<Tensor> transpose(int dim0, int dim1) const;

    // ---- copies ----
    // A contiguous copy on `device` converted to `dtype` (dtype conversion on the host only).
    Expected<Tensor> to(DType dtype) const;
    Expected<Tensor> to(Device device) const;
    Expected<Tensor> contiguous() const;
    // Copies `src` into this tensor (same shape; dtypes may differ on the host).
    Status copy_from(const Tensor& src);

    std::string to_string() const;  // "bf16[2, 3] cpu"

private:
    std::shared_ptr<void> keepalive_;
    void* data_ = nullptr;
    DType dtype_ = DType::kF32;
    Device device_{};
    Shape shape_;
    std::array<int64_t, Shape::kMaxDims> strides_{};

    void set_contiguous_strides();
};

// Host memory: 64-byte aligned (cache line / AVX-512), freed when the last holder lets go.
Expected<std::shared_ptr<void>> allocate_host(size_t bytes);

}  // namespace volt
