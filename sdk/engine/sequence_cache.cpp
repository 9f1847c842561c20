#include <algorithm>
#include <cstring>

#include "sdk/engine/causal_lm.h"

namespace volt {

size_t SequenceCache::bytes() const {
    size_t b = 0;
    for (const auto& l : layers) b += l.state.nbytes() + l.k.nbytes() + l.v.nbytes();
    return b;
}

Status SequenceCache::reserve(int64_t tokens) {
    if (tokens > max_tokens_)
        return resource_exhausted("sequence of ", tokens, " tokens exceeds the context limit of ", max_tokens_,
                                  " tokens");
    if (tokens <= capacity_) return Status::ok();
    // Geometric growth (x2, at least 256 rows) so a long decode reallocates O(log n) times.
    const int64_t cap = std::min(max_tokens_, std::max({tokens, capacity_ * 2, int64_t{256}}));
    std::vector<std::pair<Tensor, Tensor>> grown;
    for (const auto& l : layers) {
        if (l.kv_heads == 0) {
            grown.emplace_back();
            continue;
        }
        const Shape shape{cap, l.kv_heads, l.head_dim};
        auto k = Tensor::empty(shape, DType::kF32);
        auto v = Tensor::empty(shape, DType::kF32);
        if (!k || !v)
            return resource_exhausted("cannot allocate the KV cache for ", cap, " tokens (",
                                      (k ? v.status() : k.status()).message(), ")");
        const size_t row = static_cast<size_t>(l.kv_heads * l.head_dim) * sizeof(float);
        if (length_ > 0) {
            std::memcpy(k->data(), l.k.data(), row * static_cast<size_t>(length_));
            std::memcpy(v->data(), l.v.data(), row * static_cast<size_t>(length_));
        }
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

void SequenceCache::clear() {
    for (auto& l : layers)
        if (l.state.defined() && l.state.numel() > 0) std::memset(l.state.data(), 0, l.state.nbytes());
    length_ = 0;
}

Expected<SequenceCache> SequenceCache::clone() const {
    SequenceCache c;
    c.length_ = length_;
    c.capacity_ = length_;  // only the used rows are copied; the copy grows on demand
    c.max_tokens_ = max_tokens_;
    for (const auto& l : layers) {
        LayerCache n;
        n.kv_heads = l.kv_heads;
        n.head_dim = l.head_dim;
        if (l.state.defined() && l.state.numel() > 0) {
            VOLT_ASSIGN_OR_RETURN(n.state, l.state.to(DType::kF32));  // a copy
        }
        if (l.kv_heads != 0 && length_ > 0) {
            VOLT_ASSIGN_OR_RETURN(Tensor k, l.k.slice(0, 0, length_));
            VOLT_ASSIGN_OR_RETURN(Tensor v, l.v.slice(0, 0, length_));
            VOLT_ASSIGN_OR_RETURN(n.k, k.to(DType::kF32));
            VOLT_ASSIGN_OR_RETURN(n.v, v.to(DType::kF32));
        }
        c.layers.push_back(std::move(n));
    }
    return c;
}

}  // namespace volt
