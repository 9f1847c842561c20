#include "kernels/embedding.h"

namespace volt {

Status validate(const EmbeddingParams& p) {
    if (p.num_tokens < 0 || p.vocab_size <= 0 || p.hidden <= 0)
        return invalid_argument("embedding: num_tokens (", p.num_tokens, ") must be >= 0, vocab_size (", p.vocab_size,
                                ") and hidden (", p.hidden, ") positive");
    if (p.table_dtype != DType::kF32 && p.table_dtype != DType::kBF16 && p.table_dtype != DType::kF16)
        return invalid_argument("embedding: table dtype must be F32, BF16 or F16, got ", dtype_name(p.table_dtype));
    if (p.num_tokens == 0) return Status::ok();
    if (!p.ids || !p.table || !p.out) return invalid_argument("embedding: ids, table and out must be set");
    if (p.num_tokens > 1 && p.out_stride < p.hidden)
        return invalid_argument("embedding: out_stride ", p.out_stride, " < hidden ", p.hidden);
    for (int64_t t = 0; t < p.num_tokens; ++t)
        if (p.ids[t] < 0 || p.ids[t] >= p.vocab_size)
            return invalid_argument("token id ", p.ids[t], " at position ", t, " is outside the vocabulary [0, ",
                                    p.vocab_size, ")");
    return Status::ok();
}

namespace cpu {

Status embedding(const EmbeddingParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const size_t row_bytes = static_cast<size_t>(p.hidden) * dtype_size(p.table_dtype);
    for (int64_t t = 0; t < p.num_tokens; ++t) {
        const auto* row = static_cast<const uint8_t*>(p.table) + static_cast<size_t>(p.ids[t]) * row_bytes;
        convert(row, p.table_dtype, p.out + t * p.out_stride, DType::kF32, static_cast<size_t>(p.hidden));
    }
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
