// How the MiniMax-Text-01 backbone is split over GPUs (issue 8): one object says, for one rank, which attention heads,
// key/value heads, experts and vocabulary rows it holds, and which slice of every checkpoint tensor that is.
//   tensor parallel (tp_size ranks): lightning and softmax attention by heads (qkv / q / k / v / output_gate rows,
//     out_proj / o_proj columns: row-parallel, summed over ranks), the lightning RMSNorm's weight by heads (its
//     variance is summed over ranks), embedding and lm_head by vocabulary rows;
//   expert parallel (ep_size 1 or tp_size): each rank holds experts [e0, e1) and adds the slots routed there (the
//     router runs on every rank); ep_size 1 keeps every expert on every rank, whole or (slice_experts) as the
//     rank's slice [i0, i1) of the intermediate dimension (w1 / w3 rows, w2 columns), each rank adding its part
//     of every routed expert: all ranks read 1/tp_size of each touched expert, balanced at small batches where
//     spread experts leave most ranks idle;
//   replicated: RMSNorm weights, the router's gate, the residual stream.
// Ranges are contiguous and nearly equal (the first n % parts ranks get one more), so any vocabulary or expert count
// splits; head counts must divide (a head is never split).
#pragma once

#include <cstdint>
#include <string>

#include "sdk/config.h"
#include "sdk/status.h"
#include "sdk/weight_spec.h"

namespace volt {

struct IndexRange {
    int64_t begin = 0;
    int64_t size = 0;
    int64_t end() const { return begin + size; }
    bool contains(int64_t i) const { return i >= begin && i < end(); }
    bool operator==(const IndexRange&) const = default;
};

// Part `part` of [0, n) cut into `parts` contiguous pieces whose sizes differ by at most one (larger ones first).
IndexRange split_range(int64_t n, int parts, int part);

// Which part of a checkpoint tensor one rank holds: all of it (dim -1), the rows or columns [begin, begin + size)
// along `dim`, or nothing (an expert on another rank).
struct WeightSlice {
    int dim = -1;
    IndexRange range;
    bool absent = false;
    Shape shape_of(const Shape& full) const;  // the slice's shape
};

struct ParallelMapping {
    int tp_size = 1;  // ranks that split heads, projections and the vocabulary
    int ep_size = 1;  // 1 (experts replicated) or tp_size (experts spread over the same ranks)
    int rank = 0;     // this rank, in [0, tp_size)
    bool slice_experts = false;  // ep_size 1 only: every expert on every rank, sliced along its intermediate dim

    // INVALID_ARGUMENT for sizes out of range, UNIMPLEMENTED for splits the layers cannot do (head counts that
    // tp_size does not divide, more expert ranks than experts), each naming the config field.
    Status validate(const TextConfig& c) const;
    IndexRange heads(const TextConfig& c) const { return split_range(c.num_heads, tp_size, rank); }
    IndexRange kv_heads(const TextConfig& c) const { return split_range(c.num_kv_heads, tp_size, rank); }
    IndexRange experts(const TextConfig& c) const {
        return ep_size == 1 ? IndexRange{0, c.num_experts} : split_range(c.num_experts, ep_size, rank);
    }
    IndexRange vocab(const TextConfig& c) const { return split_range(c.vocab_size, tp_size, rank); }
    // This rank's part of every expert's intermediate dimension (all of it unless slice_experts).
    IndexRange expert_intermediate(const TextConfig& c) const {
        return slice_experts ? split_range(c.intermediate_size, tp_size, rank) : IndexRange{0, c.intermediate_size};
    }
    // Whether every expert's intermediate dimension splits over `ranks` in slices the kernels take (multiples of 8):
    // what slice_experts needs (validate) and what an automatic placement asks.
    static bool experts_slice_evenly(const TextConfig& c, int ranks) {
        return ranks >= 1 && c.intermediate_size % (8 * int64_t{ranks}) == 0;
    }
    // Whether each rank's MoE output is a part of the layer's (spread or sliced experts), summed over the ranks.
    bool moe_output_is_partial() const { return ep_size > 1 || (slice_experts && tp_size > 1); }
    // The slice of the Text-01 weight `name` (checkpoint naming without a VL prefix, as minimax_text_weight_specs
    // gives it) this rank holds.
    WeightSlice slice_of(const std::string& name, const TextConfig& c) const;
    std::string to_string() const;
};

}  // namespace volt
