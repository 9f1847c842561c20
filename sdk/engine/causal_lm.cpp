#include "sdk/engine/causal_lm.h"

#include <cstring>
#include <unordered_set>

namespace volt {

Status check_token_ids(std::span<const int32_t> ids, int64_t vocab_size) {
    if (ids.empty()) return invalid_argument("empty token list: at least one token id is needed");
    for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] < 0 || ids[i] >= vocab_size)
            return invalid_argument("token id ", ids[i], " at position ", i, " is outside the vocabulary [0, ",
                                    vocab_size, ")");
    return Status::ok();
}

Status check_decode_batch(std::span<const int32_t> ids, std::span<SequenceCache* const> caches, int64_t vocab_size) {
    if (ids.empty()) return invalid_argument("empty decode batch: at least one sequence is needed");
    if (ids.size() != caches.size())
        return invalid_argument("decode batch: ", ids.size(), " token ids for ", caches.size(), " caches");
    VOLT_RETURN_IF_ERROR(check_token_ids(ids, vocab_size));
    std::unordered_set<const SequenceCache*> seen;
    for (size_t b = 0; b < caches.size(); ++b) {
        const SequenceCache* c = caches[b];
        if (!c) return invalid_argument("decode batch: cache ", b, " is null");
        if (!seen.insert(c).second)
            return invalid_argument("decode batch: cache ", b, " is given twice (one token per sequence and step)");
        if (c->length() + 1 > c->max_tokens())
            return resource_exhausted("decode batch: sequence ", b, " is full (", c->length(), " of ",
                                      c->max_tokens(), " tokens)");
    }
    return Status::ok();
}

Expected<Tensor> CausalLM::decode(std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                                  const CancelCheck& cancelled) const {
    VOLT_RETURN_IF_ERROR(check_decode_batch(ids, caches, vocab_size()));
    const int64_t B = static_cast<int64_t>(ids.size()), V = vocab_size();
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({B, V}, DType::kF32));
    for (int64_t b = 0; b < B; ++b) {
        VOLT_ASSIGN_OR_RETURN(Tensor row, forward(ids.subspan(size_t(b), 1), *caches[size_t(b)], LogitsMode::kLast,
                                                  cancelled));
        std::memcpy(out.data_as<float>() + b * V, row.data_as<float>(), size_t(V) * sizeof(float));  // f32 [1, V]
    }
    return out;
}

Status check_token_picks(std::span<const TokenPick> picks, size_t batch) {
    if (picks.size() != batch)
        return invalid_argument("decode_sample: ", picks.size(), " token picks for ", batch, " sequences");
    for (size_t b = 0; b < picks.size(); ++b) {
        VOLT_RETURN_IF_ERROR(validate(picks[b].sampling).with_context(str_cat("sequence ", b)));
        if (!(picks[b].uniform >= 0.0 && picks[b].uniform < 1.0))
            return invalid_argument("decode_sample: sequence ", b, ": uniform draw ", picks[b].uniform,
                                    " is outside [0, 1)");
    }
    return Status::ok();
}

Expected<std::vector<int32_t>> CausalLM::decode_sample(std::span<const int32_t> ids,
                                                       std::span<SequenceCache* const> caches,
                                                       std::span<const TokenPick> picks, Tensor* rows,
                                                       const CancelCheck& cancelled) const {
    VOLT_RETURN_IF_ERROR(check_token_picks(picks, ids.size()));
    VOLT_ASSIGN_OR_RETURN(const Tensor logits, decode(ids, caches, cancelled));
    if (rows) *rows = logits;
    const int64_t V = logits.dim(1);
    std::vector<int32_t> out(ids.size());
    for (size_t b = 0; b < ids.size(); ++b) {
        const TokenPick& pick = picks[b];
        VOLT_ASSIGN_OR_RETURN(out[b], cpu::sample({.logits = logits.data_as<float>() + int64_t(b) * V,
                                                   .vocab_size = V,
                                                   .sampling = pick.sampling,
                                                   .history = pick.history.data(),
                                                   .history_len = static_cast<int64_t>(pick.history.size()),
                                                   .uniform = pick.uniform}));
    }
    return out;
}

}  // namespace volt
