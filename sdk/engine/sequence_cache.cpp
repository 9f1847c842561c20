#include <algorithm>
#include <cstring>

#include "sdk/engine/causal_lm.h"

#include "sdk/cuda_memory.h"
#include "sdk/cuda_paged_buffer.h"

namespace volt {

namespace {

// Rows [0, n) of `src` into rows [0, n) of `dst` (same dtype and device).
Status copy_rows(Tensor& dst, const Tensor& src, int64_t n) {
    if (n == 0) return Status::ok();
    VOLT_ASSIGN_OR_RETURN(Tensor to, dst.slice(0, 0, n));
    VOLT_ASSIGN_OR_RETURN(Tensor from, src.slice(0, 0, n));
    return to.copy_from(from);
}

// Paged KV buffers map this many rows past a sequence's reserved ones: an attention kernel may load a tile past the
// last row (and not use it), which must not touch an unmapped page.
constexpr int64_t kSlackRows = 256;

size_t row_bytes(const LayerCache& l, DType dtype) {
    return static_cast<size_t>(l.kv_heads * l.head_dim) * dtype_size(dtype);
}

Expected<Tensor> view_pages(const std::shared_ptr<CudaPagedBuffer>& pages, int64_t rows, const LayerCache& l,
                            DType dtype, Device device) {
    return Tensor::borrow(pages->data(), {rows, l.kv_heads, l.head_dim}, dtype, device, pages);
}

}  // namespace

TokenRecord::Use TokenRecord::plan_step(int64_t length, bool penalised, std::span<const int32_t> history,
                                        int32_t step_id) const {
    if (!bits.defined()) return Use::kNone;
    const bool valid = count == length;
    // The pick's history must be the sequence's tokens and this step's id (TokenPick): its length and last id, and
    // against a valid record its first id and the id before the step's.
    const bool sequence = int64_t(history.size()) == length + 1 && history.back() == step_id;
    const bool same = sequence && (length == 0 || (history.front() == first && history[size_t(length) - 1] == last));
    if (valid && (!penalised || same)) return Use::kAdd;
    if (!valid && penalised && sequence) return Use::kRebuild;
    return Use::kNone;
}

void TokenRecord::after_step(Use use, int64_t length, std::span<const int32_t> history, int32_t step_id) {
    if (use == Use::kRebuild) count = length, first = history.front();  // the history's ids before the step's
    if (use == Use::kNone) return;
    if (count == 0) first = step_id;
    last = step_id;
    count += 1;
}

void TokenRecord::after_ids(std::span<const int32_t> ids) {
    if (ids.empty()) return;
    if (count == 0) first = ids.front();
    last = ids.back();
    count += static_cast<int64_t>(ids.size());
}

size_t SequenceCache::bytes() const {
    size_t b = token_record.bits.defined() ? token_record.bits.nbytes() : 0;
    for (const auto& l : layers) b += l.state.nbytes() + l.k.nbytes() + l.v.nbytes();
    return b;
}

size_t SequenceCache::state_bytes() const {
    size_t b = token_record.bits.defined() ? token_record.bits.nbytes() : 0;
    for (const auto& l : layers) b += l.state.nbytes();
    return b;
}

size_t SequenceCache::kv_bytes_per_token() const {
    size_t b = 0;
    for (const auto& l : layers) b += 2 * row_bytes(l, kv_dtype_);
    return b;
}

Status SequenceCache::reserve(int64_t tokens) {
    if (tokens > max_tokens_)
        return resource_exhausted("sequence of ", tokens, " tokens exceeds the context limit of ", max_tokens_,
                                  " tokens");
    if (tokens <= capacity_) return Status::ok();
    if (const Status paged = reserve_paged(tokens); paged.code() != StatusCode::kUnimplemented) return paged;
    // Geometric growth (x2, at least 256 rows) so a long decode reallocates O(log n) times.
    const int64_t cap = std::min(max_tokens_, std::max({tokens, capacity_ * 2, int64_t{256}}));
    std::vector<std::pair<Tensor, Tensor>> grown;
    for (const auto& l : layers) {
        if (l.kv_heads == 0) {
            grown.emplace_back();
            continue;
        }
        const Shape shape{cap, l.kv_heads, l.head_dim};
        const Device device = l.kv_device.value_or(kv_device_);
        auto k = Tensor::empty(shape, kv_dtype_, device);
        auto v = Tensor::empty(shape, kv_dtype_, device);
        if (!k || !v)
            return resource_exhausted("cannot allocate the KV cache for ", cap, " tokens on ", device.to_string(),
                                      " (", (k ? v.status() : k.status()).message(), ")");
        VOLT_RETURN_IF_ERROR(copy_rows(*k, l.k, length_));
        VOLT_RETURN_IF_ERROR(copy_rows(*v, l.v, length_));
        grown.emplace_back(std::move(*k), std::move(*v));
    }
    for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i].kv_heads != 0) {
            layers[i].k = std::move(grown[i].first);
            layers[i].v = std::move(grown[i].second);
        }
    capacity_ = cap;
    return Status::ok();
}

Status SequenceCache::reserve_paged(int64_t tokens) {
    for (const auto& l : layers) {
        if (l.kv_heads == 0) continue;
        if (!l.kv_device.value_or(kv_device_).is_cuda()) return unimplemented("KV rows on the host");
        if (l.k.defined() && !l.k_pages) return unimplemented("KV rows already in ordinary allocations");
    }
    // Every KV layer is paged or none is: the first reservation decides (a failure there leaves ordinary allocations
    // to reserve(); later, with rows held in pages, it is an error).
    const bool first = std::none_of(layers.begin(), layers.end(), [](const LayerCache& l) { return bool(l.k_pages); });
    auto refuse = [&](const Status& s) -> Status {
        if (!first) return resource_exhausted("KV cache of ", tokens, " tokens: ", s.message());
        for (auto& l : layers) l.k_pages.reset(), l.v_pages.reset();
        return s;
    };
    int64_t rows = max_tokens_;
    for (auto& l : layers) {
        if (l.kv_heads == 0) continue;
        const Device device = l.kv_device.value_or(kv_device_);
        const size_t row = row_bytes(l, kv_dtype_);
        const size_t need = static_cast<size_t>(tokens + kSlackRows) * row;
        const size_t reserve_bytes = static_cast<size_t>(max_tokens_ + kSlackRows) * row;
        if (!l.k_pages || l.k_pages->max_bytes() < need) {
            // First rows, or max_tokens raised past the reservation: a new one (the rows held so far copied).
            auto k = CudaPagedBuffer::create(device.index, reserve_bytes);
            if (!k) return refuse(k.status());
            auto v = CudaPagedBuffer::create(device.index, reserve_bytes);
            if (!v) return refuse(v.status());
            VOLT_RETURN_IF_ERROR((*k)->grow(need));
            VOLT_RETURN_IF_ERROR((*v)->grow(need));
            if (l.k_pages && length_ > 0) {
                VOLT_ASSIGN_OR_RETURN(Tensor nk, view_pages(*k, length_, l, kv_dtype_, device));
                VOLT_ASSIGN_OR_RETURN(Tensor nv, view_pages(*v, length_, l, kv_dtype_, device));
                VOLT_RETURN_IF_ERROR(copy_rows(nk, l.k, length_));
                VOLT_RETURN_IF_ERROR(copy_rows(nv, l.v, length_));
            }
            l.k_pages = std::move(*k);
            l.v_pages = std::move(*v);
        }
        VOLT_RETURN_IF_ERROR(l.k_pages->grow(need).with_context(str_cat("KV cache of ", tokens, " tokens")));
        VOLT_RETURN_IF_ERROR(l.v_pages->grow(need).with_context(str_cat("KV cache of ", tokens, " tokens")));
        const size_t mapped = std::min(l.k_pages->mapped_bytes(), l.v_pages->mapped_bytes());
        rows = std::min(rows, static_cast<int64_t>(mapped / row) - kSlackRows);
    }
    for (auto& l : layers) {
        if (l.kv_heads == 0) continue;
        const Device device = l.kv_device.value_or(kv_device_);
        VOLT_ASSIGN_OR_RETURN(l.k, view_pages(l.k_pages, rows, l, kv_dtype_, device));
        VOLT_ASSIGN_OR_RETURN(l.v, view_pages(l.v_pages, rows, l, kv_dtype_, device));
    }
    capacity_ = rows;
    return Status::ok();
}

void SequenceCache::clear() {
    for (auto& l : layers) {
        if (!l.state.defined() || l.state.numel() == 0) continue;
        if (l.state.device().is_cpu()) {
            std::memset(l.state.data(), 0, l.state.nbytes());
        } else {
            // A failure here means the device is gone; the next forward reports it.
            (void)cuda_memset_zero(l.state.device().index, l.state.data(), l.state.nbytes());
        }
    }
    // Paged rows may be shared with a clone, and the next tokens would overwrite them: drop the pages (a failure
    // means the device is gone; the next forward reports it).
    bool paged = false;
    for (auto& l : layers) {
        if (!l.k_pages) continue;
        (void)l.k_pages->release_pages();
        (void)l.v_pages->release_pages();
        l.k = Tensor(), l.v = Tensor();
        paged = true;
    }
    if (paged) capacity_ = 0;
    length_ = 0;
    // An empty sequence's record: no ids (valid again).
    Tensor& bits = token_record.bits;
    if (bits.defined() && bits.nbytes() > 0) {
        if (bits.device().is_cpu()) std::memset(bits.data(), 0, bits.nbytes());
        else (void)cuda_memset_zero(bits.device().index, bits.data(), bits.nbytes());
    }
    token_record.count = 0;
    token_record.first = token_record.last = -1;
}

Expected<SequenceCache> SequenceCache::clone() const {
    SequenceCache c;
    c.length_ = length_;
    c.capacity_ = length_;  // only the used rows are copied; the copy grows on demand
    c.max_tokens_ = max_tokens_;
    c.kv_device_ = kv_device_;
    c.kv_dtype_ = kv_dtype_;
    c.token_record = token_record;
    if (token_record.bits.defined()) {
        VOLT_ASSIGN_OR_RETURN(c.token_record.bits, token_record.bits.to(token_record.bits.device()));  // a copy
    }
    for (const auto& l : layers) {
        LayerCache n;
        n.kv_heads = l.kv_heads;
        n.head_dim = l.head_dim;
        n.kv_device = l.kv_device;
        if (l.state.defined() && l.state.numel() > 0) {
            VOLT_ASSIGN_OR_RETURN(n.state, l.state.to(l.state.device()));  // a copy
        }
        if (l.k_pages) {
            // The prefix's whole pages shared, the page holding its end copied (see LayerCache).
            const size_t row = row_bytes(l, kv_dtype_), keep = static_cast<size_t>(length_) * row;
            const size_t mapped = static_cast<size_t>(length_ + kSlackRows) * row;
            VOLT_ASSIGN_OR_RETURN(n.k_pages, l.k_pages->fork(keep, mapped));
            VOLT_ASSIGN_OR_RETURN(n.v_pages, l.v_pages->fork(keep, mapped));
            const Device device = l.kv_device.value_or(kv_device_);
            VOLT_ASSIGN_OR_RETURN(n.k, view_pages(n.k_pages, length_, l, kv_dtype_, device));
            VOLT_ASSIGN_OR_RETURN(n.v, view_pages(n.v_pages, length_, l, kv_dtype_, device));
        } else if (l.kv_heads != 0 && length_ > 0) {
            VOLT_ASSIGN_OR_RETURN(Tensor k, l.k.slice(0, 0, length_));
            VOLT_ASSIGN_OR_RETURN(Tensor v, l.v.slice(0, 0, length_));
            VOLT_ASSIGN_OR_RETURN(n.k, k.to(k.device()));
            VOLT_ASSIGN_OR_RETURN(n.v, v.to(v.device()));
        }
        c.layers.push_back(std::move(n));
    }
    return c;
}

}  // namespace volt
