// text/parallel_mapping: how the backbone splits over GPUs. The ranges must tile [0, n) exactly, every checkpoint
// tensor's slices over all ranks must put every element on exactly one rank (or on all of them, for replicated
// tensors), and splits the layers cannot make must be refused with the config field named.
#include <gtest/gtest.h>

#include <map>

#include "text/minimax_text_weights.h"
#include "text/parallel_mapping.h"

namespace volt {
namespace {

TextConfig config(int64_t heads = 8, int64_t kv_heads = 2, int64_t experts = 6, int64_t vocab = 1001) {
    TextConfig c;
    c.model_type = "minimax_text_01";
    c.vocab_size = vocab;
    c.hidden_size = 64;
    c.num_layers = 2;
    c.num_heads = heads;
    c.num_kv_heads = kv_heads;
    c.head_dim = 16;
    c.rotary_dim = 8;
    c.intermediate_size = 32;
    c.num_experts = experts;
    c.experts_per_token = 2;
    c.max_position_embeddings = 256;
    c.layer_kinds = {LayerKind::kLightning, LayerKind::kSoftmax};
    return c;
}

ParallelMapping mapping(int tp, int ep, int rank) { return {.tp_size = tp, .ep_size = ep, .rank = rank}; }

TEST(SplitRange, TilesTheRangeWithSizesDifferingByAtMostOne) {
    for (int64_t n : {0, 1, 7, 8, 200064}) {
        for (int parts : {1, 2, 3, 8}) {
            int64_t next = 0, lo = n, hi = 0;
            for (int p = 0; p < parts; ++p) {
                const IndexRange r = split_range(n, parts, p);
                EXPECT_EQ(r.begin, next) << n << " / " << parts << " part " << p;
                next = r.end();
                lo = std::min(lo, r.size), hi = std::max(hi, r.size);
            }
            EXPECT_EQ(next, n);
            EXPECT_LE(hi - lo, 1);
        }
    }
    EXPECT_EQ(split_range(10, 3, 0), (IndexRange{0, 4}));
    EXPECT_EQ(split_range(10, 3, 2), (IndexRange{7, 3}));
}

TEST(ParallelMapping, RefusesSplitsTheLayersCannotMake) {
    const TextConfig c = config();
    EXPECT_TRUE(mapping(2, 2, 1).validate(c));
    EXPECT_TRUE(mapping(2, 1, 0).validate(c));
    const Status heads = mapping(3, 3, 0).validate(c);
    EXPECT_EQ(heads.code(), StatusCode::kUnimplemented);
    EXPECT_NE(heads.message().find("num_attention_heads 8"), std::string::npos) << heads.message();
    const Status kv = mapping(4, 4, 0).validate(c);
    EXPECT_EQ(kv.code(), StatusCode::kUnimplemented);
    EXPECT_NE(kv.message().find("num_key_value_heads 2"), std::string::npos) << kv.message();
    EXPECT_EQ(mapping(2, 4, 0).validate(c).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(mapping(2, 2, 2).validate(c).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(mapping(0, 1, 0).validate(c).code(), StatusCode::kInvalidArgument);
    const Status experts =
        mapping(2, 2, 0).validate(config(8, 2, /*experts=*/1));
    EXPECT_EQ(experts.code(), StatusCode::kUnimplemented);
    EXPECT_NE(experts.message().find("num_local_experts 1"), std::string::npos) << experts.message();
}

// Over all ranks, each element of a split tensor is held exactly once; replicated tensors are held whole by every
// rank; each expert lives on exactly one rank (spread) or on all (replicated).
TEST(ParallelMapping, EveryWeightElementHasItsRanks) {
    const TextConfig c = config();
    for (int tp : {1, 2}) {
        for (int ep : {1, tp}) {
            std::map<std::string, int64_t> held;  // elements summed over ranks
            for (int r = 0; r < tp; ++r) {
                const ParallelMapping m{.tp_size = tp, .ep_size = ep, .rank = r};
                ASSERT_TRUE(m.validate(c));
                for (const WeightSpec& s : minimax_text_weight_specs(c)) {
                    const WeightSlice slice = m.slice_of(s.name, c);
                    if (!slice.absent) {
                        ASSERT_LE(slice.range.end(), slice.dim < 0 ? 0 : s.shape[slice.dim]) << s.name;
                        held[s.name] += slice.shape_of(s.shape).numel();
                    }
                }
            }
            for (const WeightSpec& s : minimax_text_weight_specs(c)) {
                const bool expert = s.name.find(".experts.") != std::string::npos;
                const bool split = s.name.find("embed_tokens") != std::string::npos ||
                                   s.name.find("lm_head") != std::string::npos ||
                                   (s.name.find("self_attn.") != std::string::npos &&
                                    s.name.find("layernorm") == std::string::npos);
                const int copies = expert ? (ep == 1 ? tp : 1) : split ? 1 : tp;
                EXPECT_EQ(held[s.name], copies * s.shape.numel()) << s.name << " tp " << tp << " ep " << ep;
            }
        }
    }
}

// Sliced experts: every rank holds every expert, rows [i0, i1) of w1 / w3 and those columns of w2; over the ranks
// each expert element is held exactly once, and the MoE output is a per-rank part (summed over ranks).
TEST(ParallelMapping, SlicedExpertsTileEveryExpertsIntermediateDimension) {
    const TextConfig c = config(8, 4);  // intermediate 32
    for (int tp : {1, 2, 4}) {
        std::map<std::string, int64_t> held;
        for (int r = 0; r < tp; ++r) {
            const ParallelMapping m{.tp_size = tp, .ep_size = 1, .rank = r, .slice_experts = true};
            ASSERT_TRUE(m.validate(c)) << m.to_string();
            EXPECT_EQ(m.experts(c), (IndexRange{0, 6}));
            EXPECT_EQ(m.expert_intermediate(c), (IndexRange{r * 32 / tp, 32 / tp}));
            EXPECT_EQ(m.moe_output_is_partial(), tp > 1);
            for (const WeightSpec& s : minimax_text_weight_specs(c)) {
                const WeightSlice slice = m.slice_of(s.name, c);
                ASSERT_FALSE(slice.absent) << s.name;
                if (s.name.find(".experts.") != std::string::npos && tp > 1) {
                    const bool w2 = s.name.find(".w2.") != std::string::npos;
                    EXPECT_EQ(slice.dim, w2 ? 1 : 0) << s.name;
                    EXPECT_EQ(slice.range, m.expert_intermediate(c)) << s.name;
                }
                held[s.name] += slice.shape_of(s.shape).numel();
            }
        }
        for (const WeightSpec& s : minimax_text_weight_specs(c)) {
            if (s.name.find(".experts.") != std::string::npos) {
                EXPECT_EQ(held[s.name], s.shape.numel()) << s.name << " tp " << tp;
            }
        }
    }
    const ParallelMapping spread{.tp_size = 2, .ep_size = 2, .rank = 0};
    EXPECT_TRUE(spread.moe_output_is_partial());
    EXPECT_FALSE((ParallelMapping{.tp_size = 2, .ep_size = 1, .rank = 0}).moe_output_is_partial());
    // Slices must stay multiples of 8 (the kernels' granularity) and the experts all on every rank.
    const Status odd = ParallelMapping{.tp_size = 8, .ep_size = 1, .rank = 0, .slice_experts = true}.validate(
        config(8, 8, 6, 1001));
    EXPECT_EQ(odd.code(), StatusCode::kUnimplemented);
    EXPECT_NE(odd.message().find("intermediate_size 32"), std::string::npos) << odd.message();
    EXPECT_EQ((ParallelMapping{.tp_size = 2, .ep_size = 2, .rank = 0, .slice_experts = true}).validate(c).code(),
              StatusCode::kInvalidArgument);
}

TEST(ParallelMapping, SlicesFollowTheHeadsOfEachRank) {
    const TextConfig c = config();  // 8 heads, 2 kv heads, D 16
    const ParallelMapping m{.tp_size = 2, .ep_size = 2, .rank = 1};
    EXPECT_EQ(m.heads(c), (IndexRange{4, 4}));
    EXPECT_EQ(m.kv_heads(c), (IndexRange{1, 1}));
    EXPECT_EQ(m.experts(c), (IndexRange{3, 3}));
    EXPECT_EQ(m.vocab(c), (IndexRange{501, 500}));
    // qkv rows are per-head interleaved [q_h | k_h | v_h]: heads 4..7 are rows 3*16*4 .. 3*16*8.
    const WeightSlice qkv = m.slice_of("model.layers.0.self_attn.qkv_proj.weight", c);
    EXPECT_EQ(qkv.dim, 0);
    EXPECT_EQ(qkv.range, (IndexRange{192, 192}));
    const WeightSlice out = m.slice_of("model.layers.0.self_attn.out_proj.weight", c);
    EXPECT_EQ(out.dim, 1);
    EXPECT_EQ(out.range, (IndexRange{64, 64}));
    EXPECT_EQ(m.slice_of("model.layers.1.self_attn.k_proj.weight", c).range, (IndexRange{16, 16}));
    EXPECT_TRUE(m.slice_of("model.layers.1.block_sparse_moe.experts.2.w1.weight", c).absent);
    EXPECT_FALSE(m.slice_of("model.layers.1.block_sparse_moe.experts.3.w1.weight", c).absent);
    EXPECT_EQ(m.slice_of("model.layers.1.block_sparse_moe.gate.weight", c).dim, -1);
    EXPECT_EQ(m.slice_of("model.layers.1.input_layernorm.weight", c).dim, -1);
}

}  // namespace
}  // namespace volt
