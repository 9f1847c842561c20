#include "text/parallel_mapping.h"

#include <algorithm>
#include <cstdlib>

namespace volt {

IndexRange split_range(int64_t n, int parts, int part) {
    const int64_t base = n / parts, extra = n % parts;
    const int64_t begin = part * base + std::min<int64_t>(part, extra);
    return {begin, base + (part < extra ? 1 : 0)};
}

Shape WeightSlice::shape_of(const Shape& full) const {
    if (absent) return Shape{};
    if (dim < 0) return full;
    Shape s = full;
    s[dim] = range.size;
    return s;
}

Status ParallelMapping::validate(const TextConfig& c) const {
    if (tp_size < 1) return invalid_argument("tensor-parallel size ", tp_size, " must be at least 1");
    if (rank < 0 || rank >= tp_size) return invalid_argument("rank ", rank, " is outside [0, ", tp_size, ")");
    if (ep_size != 1 && ep_size != tp_size)
        return invalid_argument("expert-parallel size ", ep_size, " must be 1 or the tensor-parallel size ", tp_size);
    if (c.num_heads % tp_size != 0)
        return unimplemented("num_attention_heads ", c.num_heads, " does not split over ", tp_size,
                             " GPUs (heads are never split; use a GPU count that divides it)");
    if (c.num_kv_heads % tp_size != 0)
        return unimplemented("num_key_value_heads ", c.num_kv_heads, " does not split over ", tp_size,
                             " GPUs (key/value heads are not replicated yet; use a GPU count that divides it)");
    if (c.vocab_size < tp_size) return unimplemented("vocab_size ", c.vocab_size, " is smaller than ", tp_size, " GPUs");
    if (c.num_experts < ep_size)
        return unimplemented("num_local_experts ", c.num_experts, " is smaller than ", ep_size, " expert ranks");
    if (slice_experts && ep_size != 1)
        return invalid_argument("sliced experts keep every expert on every rank: expert-parallel size ", ep_size,
                                " must be 1");
    if (slice_experts && !experts_slice_evenly(c, tp_size))
        return unimplemented("intermediate_size ", c.intermediate_size, " does not split over ", tp_size,
                             " GPUs in multiples of 8 (sliced experts); spread the experts instead");
    return Status::ok();
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The expert index in "....block_sparse_moe.experts.<e>.w1.weight", or -1.
int64_t expert_of(const std::string& name) {
    const std::string key = ".block_sparse_moe.experts.";
    const size_t at = name.find(key);
    if (at == std::string::npos) return -1;
    return std::strtoll(name.c_str() + at + key.size(), nullptr, 10);
}

}  // namespace

WeightSlice ParallelMapping::slice_of(const std::string& name, const TextConfig& c) const {
    const int64_t D = c.head_dim;
    const IndexRange h = heads(c), kv = kv_heads(c);
    auto rows = [](IndexRange r) { return WeightSlice{0, r, false}; };
    auto cols = [](IndexRange r) { return WeightSlice{1, r, false}; };
    if (const int64_t e = expert_of(name); e >= 0) {
        if (!experts(c).contains(e)) return WeightSlice{-1, {}, true};
        if (!slice_experts || tp_size == 1) return {};
        // w1, w3 [I, H]: rows; w2 [H, I]: columns.
        return WeightSlice{ends_with(name, ".w2.weight") ? 1 : 0, expert_intermediate(c), false};
    }
    if (tp_size == 1) return {};
    if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return rows(vocab(c));
    if (ends_with(name, ".self_attn.qkv_proj.weight")) return rows({3 * D * h.begin, 3 * D * h.size});
    if (ends_with(name, ".self_attn.output_gate.weight") || ends_with(name, ".self_attn.norm.weight") ||
        ends_with(name, ".self_attn.q_proj.weight"))
        return rows({D * h.begin, D * h.size});
    if (ends_with(name, ".self_attn.k_proj.weight") || ends_with(name, ".self_attn.v_proj.weight"))
        return rows({D * kv.begin, D * kv.size});
    if (ends_with(name, ".self_attn.out_proj.weight") || ends_with(name, ".self_attn.o_proj.weight"))
        return cols({D * h.begin, D * h.size});
    return {};  // norms, the router's gate: every rank holds all of it
}

std::string ParallelMapping::to_string() const {
    if (slice_experts) return str_cat("rank ", rank, " of ", tp_size, " (experts sliced over ", tp_size, ")");
    return str_cat("rank ", rank, " of ", tp_size, " (experts over ", ep_size, ")");
}

}  // namespace volt
