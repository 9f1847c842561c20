#include "sdk/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "sdk/cuda_memory.h"

namespace volt {

std::string Device::to_string() const { return is_cpu() ? "cpu" : str_cat("cuda:", index); }

Shape::Shape(std::initializer_list<int64_t> dims) {
    for (int64_t d : dims) push_back(d);
}

void Shape::push_back(int64_t d) {
    if (rank_ == kMaxDims) std::abort();  // programming error: no model tensor has more than 8 dims
    dims_[rank_++] = d;
}

int64_t Shape::numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
}

std::string Shape::to_string() const {
    std::ostringstream os;
    os << '[';
    for (int i = 0; i < rank_; ++i) os << (i ? ", " : "") << dims_[i];
    os << ']';
    return os.str();
}

bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
        if (a.dims_[i] != b.dims_[i]) return false;
    return true;
}

Expected<std::shared_ptr<void>> allocate_host(size_t bytes) {
    constexpr size_t kAlign = 64;
    size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
    if (!p) return resource_exhausted("host allocation of ", bytes, " bytes failed");
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

void Tensor::set_contiguous_strides() {
    int64_t s = 1;
    for (int i = shape_.rank() - 1; i >= 0; --i) {
        strides_[i] = s;
        s *= shape_[i];
    }
}

Expected<Tensor> Tensor::empty(const Shape& shape, DType dtype, Device device) {
    for (int64_t d : shape)
        if (d < 0) return invalid_argument("negative dimension in shape ", shape.to_string());
    Tensor t;
    t.shape_ = shape;
    t.dtype_ = dtype;
    t.device_ = device;
    t.set_contiguous_strides();
    size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
    if (device.is_cpu()) {
        VOLT_ASSIGN_OR_RETURN(t.keepalive_, allocate_host(bytes));
    } else {
        VOLT_ASSIGN_OR_RETURN(t.keepalive_, cuda_allocate(device.index, bytes));
    }
    t.data_ = t.keepalive_.get();
    return t;
}

Expected<Tensor> Tensor::zeros(const Shape& shape, DType dtype, Device device) {
    VOLT_ASSIGN_OR_RETURN(Tensor t, empty(shape, dtype, device));
    if (device.is_cpu()) {
        std::memset(t.data_, 0, t.nbytes());
    } else {
        VOLT_RETURN_IF_ERROR(cuda_memset_zero(device.index, t.data_, t.nbytes()));
    }
    return t;
}

Tensor Tensor::borrow(void* data, const Shape& shape, DType dtype, Device device, std::shared_ptr<void> keepalive) {
    Tensor t;
    t.keepalive_ = std::move(keepalive);
    t.data_ = data;
    t.shape_ = shape;
    t.dtype_ = dtype;
    t.device_ = device;
    t.set_contiguous_strides();
    return t;
}

bool Tensor::is_contiguous() const {
    int64_t s = 1;
    for (int i = rank() - 1; i >= 0; --i) {
        if (shape_[i] != 1 && strides_[i] != s) return false;
        s *= shape_[i];
    }
    return true;
}

Expected<Tensor> Tensor::reshape(const Shape& shape) const {
    if (!is_contiguous()) return invalid_argument("reshape of a non-contiguous tensor ", to_string());
    Shape out = shape;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < out.rank(); ++i) {
        if (out[i] == -1) {
            if (infer >= 0) return invalid_argument("reshape to ", shape.to_string(), ": more than one -1");
            infer = i;
        } else if (out[i] < 0) {
            return invalid_argument("reshape to ", shape.to_string(), ": negative dimension");
        } else {
            known *= out[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || numel() % known != 0)
            return invalid_argument("cannot reshape ", to_string(), " to ", shape.to_string());
        out[infer] = numel() / known;
    }
    if (out.numel() != numel()) return invalid_argument("cannot reshape ", to_string(), " to ", shape.to_string());
    Tensor t = *this;
    t.shape_ = out;
    t.set_contiguous_strides();
    return t;
}

Expected<Tensor> Tensor::slice(int dim, int64_t begin, int64_t end) const {
    if (dim < 0) dim += rank();
    if (dim < 0 || dim >= rank()) return invalid_argument("slice: dim ", dim, " out of range for ", to_string());
    if (begin < 0 || end < begin || end > shape_[dim])
        return invalid_argument("slice [", begin, ", ", end, ") out of range for dim ", dim, " of ", to_string());
    Tensor t = *this;
    t.data_ = static_cast<std::byte*>(data_) + begin * strides_[dim] * static_cast<int64_t>(dtype_size(dtype_));
    t.shape_[dim] = end - begin;
    return t;
}

Expected<Tensor> Tensor::select(int dim, int64_t index) const {
    if (dim < 0) dim += rank();
    VOLT_ASSIGN_OR_RETURN(Tensor t, slice(dim, index, index + 1));
    Shape s;
    std::array<int64_t, Shape::kMaxDims> st{};
    int j = 0;
    for (int i = 0; i < rank(); ++i) {
        if (i == dim) continue;
        s.push_back(shape_[i]);
        st[j++] = strides_[i];
    }
    t.shape_ = s;
    t.strides_ = st;
    return t;
}

Expected<Tensor> Tensor::transpose(int d0, int d1) const {
    if (d0 < 0) d0 += rank();
    if (d1 < 0) d1 += rank();
    if (d0 < 0 || d1 < 0 || d0 >= rank() || d1 >= rank())
        return invalid_argument("transpose(", d0, ", ", d1, ") out of range for ", to_string());
    Tensor t = *this;
    std::swap(t.shape_[d0], t.shape_[d1]);
    std::swap(t.strides_[d0], t.strides_[d1]);
    return t;
}

namespace {

// Calls fn(src_offset, dst_offset) for every element (offsets in elements), iterating a strided source in
// row-major order of its shape. Used for host copies of non-contiguous views.
template <typename Fn>
void for_each_strided(const Shape& shape, const std::array<int64_t, Shape::kMaxDims>& strides, Fn fn) {
    int64_t n = shape.numel();
    if (n == 0) return;
    std::array<int64_t, Shape::kMaxDims> idx{};
    int64_t off = 0;
    for (int64_t linear = 0; linear < n; ++linear) {
        fn(off, linear);
        for (int d = shape.rank() - 1; d >= 0; --d) {
            if (++idx[d] < shape[d]) {
                off += strides[d];
                break;
            }
            off -= strides[d] * (shape[d] - 1);
            idx[d] = 0;
        }
    }
}

}  // namespace

Status Tensor::copy_from(const Tensor& src) {
    if (!(src.shape_ == shape_))
        return invalid_argument("copy_from: shape ", src.shape_.to_string(), " into ", shape_.to_string());
    if (!is_contiguous()) return invalid_argument("copy_from: destination must be contiguous");
    if (device_.is_cpu() && src.device_.is_cpu()) {
        if (src.is_contiguous()) {
            convert(src.data_, src.dtype_, data_, dtype_, static_cast<size_t>(numel()));
            return Status::ok();
        }
        size_t es = dtype_size(src.dtype_), ed = dtype_size(dtype_);
        const std::byte* s = static_cast<const std::byte*>(src.data_);
        std::byte* d = static_cast<std::byte*>(data_);
        for_each_strided(src.shape_, src.strides_, [&](int64_t so, int64_t dOff) {
            convert(s + so * static_cast<int64_t>(es), src.dtype_, d + dOff * static_cast<int64_t>(ed), dtype_, 1);
        });
        return Status::ok();
    }
    if (src.dtype_ != dtype_) return unimplemented("copy_from: dtype conversion across devices");
    if (!src.is_contiguous()) return unimplemented("copy_from: non-contiguous source across devices");
    return cuda_copy(data_, device_, src.data_, src.device_, nbytes());
}

Expected<Tensor> Tensor::to(DType dtype) const {
    if (!device_.is_cpu() && dtype != dtype_) return unimplemented("dtype conversion of a device tensor");
    VOLT_ASSIGN_OR_RETURN(Tensor t, empty(shape_, dtype, device_));
    VOLT_RETURN_IF_ERROR(t.copy_from(*this));
    return t;
}

Expected<Tensor> Tensor::to(Device device) const {
    VOLT_ASSIGN_OR_RETURN(Tensor t, empty(shape_, dtype_, device));
    if (!device_.is_cpu() || !device.is_cpu()) {
        VOLT_ASSIGN_OR_RETURN(Tensor c, contiguous());
        VOLT_RETURN_IF_ERROR(t.copy_from(c));
    } else {
        VOLT_RETURN_IF_ERROR(t.copy_from(*this));
    }
    return t;
}

Expected<Tensor> Tensor::contiguous() const {
    if (is_contiguous()) return *this;
    if (!device_.is_cpu()) return unimplemented("contiguous() of a non-contiguous device tensor");
    return to(dtype_);
}

std::string Tensor::to_string() const { return str_cat(dtype_name(dtype_), shape_.to_string(), " ", device_.to_string()); }

}  // namespace volt
