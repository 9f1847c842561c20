// Embedding lookup: out[t] = table[ids[t]] widened to fp32 (no scaling: MiniMax's embed_scale is 1). The table stays
// in its checkpoint dtype (bf16 for MiniMax: 2.4 GB instead of 4.9 GB in fp32 for Text-01) and rows convert on use.
#pragma once

#include <cstdint>

#include "sdk/dtype.h"
#include "sdk/status.h"

namespace volt {

struct EmbeddingParams {
    int64_t num_tokens = 0;          // T
    const int32_t* ids = nullptr;    // [T], each in [0, vocab_size)
    int64_t vocab_size = 0;          // V
    int64_t hidden = 0;              // H
    const void* table = nullptr;     // [V, H] contiguous, element type table_dtype (F32, BF16 or F16)
    DType table_dtype = DType::kF32;
    float* out = nullptr;            // [T, H], row stride out_stride
    int64_t out_stride = 0;
};

// Also checks every id: INVALID_ARGUMENT naming the first position whose id is outside [0, V).
Status validate(const EmbeddingParams& p);

namespace cpu {
Status embedding(const EmbeddingParams& p);
}  // namespace cpu

}  // namespace volt
