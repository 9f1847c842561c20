// Next-token selection from one row of logits. Processing order follows transformers' generate():
// repetition penalty -> temperature -> top-k -> top-p -> min-p, then one draw from the remaining distribution
// by inverse CDF with the caller's uniform number (the engine owns the seeded RNG, so results are reproducible).
//   repetition_penalty r (CTRL rule): for each distinct id already in `history`, logit > 0 ? logit / r : logit * r
//   temperature 0 means greedy: the argmax after the penalty (lowest id on ties)
//   top_k 0 = off; top_p 1 = off (keeps the smallest most-probable set whose mass reaches p); min_p 0 = off
//   (keeps ids with probability >= min_p * the largest probability). At least one id always survives.
#pragma once

#include <cstdint>
#include <span>

#include "sdk/status.h"

namespace volt {

struct SamplingParams {
    float temperature = 1.0f;
    int64_t top_k = 0;
    float top_p = 1.0f;
    float min_p = 0.0f;
    float repetition_penalty = 1.0f;
    bool operator==(const SamplingParams&) const = default;
};

struct SampleParams {
    const float* logits = nullptr;       // [V]
    int64_t vocab_size = 0;              // V
    SamplingParams sampling;
    const int32_t* history = nullptr;    // [history_len] ids the penalty applies to (prompt + generated)
    int64_t history_len = 0;
    double uniform = 0.0;                // in [0, 1): the draw (ignored when greedy)
};

Status validate(const SamplingParams& p);  // names the offending option and its valid range
Status validate(const SampleParams& p);

namespace cpu {
Expected<int32_t> sample(const SampleParams& p);
// A record of the ids seen as the GPU sampler keeps one per sequence (cuda::SampleParams::records): the bit of each
// id in [0, vocab) set in bits (uint32 [ceil(vocab / 32)]: id i is bit i % 32 of word i / 32); others are skipped.
void record_ids(std::span<const int32_t> ids, int64_t vocab, uint32_t* bits);
}  // namespace cpu

}  // namespace volt
