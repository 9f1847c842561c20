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

}  // namespace volt
