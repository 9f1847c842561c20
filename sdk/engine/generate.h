// Token generation on a Session: prefill (reusing the session's prefix), then sample / decode until a stop id,
// max_new_tokens, the context limit, or the callback asks to stop. Sampling options and their order are those of
// kernels/sampling.h; the RNG is a seeded 64-bit Mersenne Twister, so a seed reproduces a run exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "kernels/sampling.h"
#include "sdk/engine/session.h"

namespace volt {

struct GenerationOptions {
    int64_t max_new_tokens = 256;
    SamplingParams sampling;          // temperature 0 = greedy
    uint64_t seed = 0;
    std::vector<int32_t> stop_ids;    // generation ends after emitting one of these (it is included in the output)
};

enum class StopReason : uint8_t { kMaxNewTokens, kStopId, kContextFull, kCancelled };
const char* stop_reason_name(StopReason r);

struct GenerationResult {
    std::vector<int32_t> ids;         // new ids only
    StopReason reason = StopReason::kMaxNewTokens;
    int64_t prompt_tokens = 0;
    int64_t reused_tokens = 0;        // prompt tokens the session already held
    double prefill_seconds = 0;       // running the (non-reused) prompt
    double decode_seconds = 0;        // sampling + decode steps
};

// Called with each new id as it is chosen; return false to stop (reason kCancelled).
using TokenCallback = std::function<bool(int32_t id)>;

// INVALID_ARGUMENT for bad options (max_new_tokens < 0, a sampling option out of range) or a bad prompt;
// RESOURCE_EXHAUSTED when the prompt alone exceeds the session's context.
Expected<GenerationResult> generate(Session& session, std::span<const int32_t> prompt, const GenerationOptions& options,
                                    const TokenCallback& on_token = {});

// INVALID_ARGUMENT for max_new_tokens < 0 or a sampling option out of range (callers that run the prompt themselves
// check before paying for it).
Status validate(const GenerationOptions& options);

// One step of the rules above, for loops that run the model themselves (generate, BatchGenerator): unless
// result.ids already holds max_new_tokens, samples the next id from `logits` (f32 [vocab], the session's last
// position) with `rng` and the session's tokens as history, appends it to result.ids and tells `on_token`; false when
// generation ends there (result.reason set: cancelled, stop id, context full; max_new_tokens leaves the default),
// true when the id must run next.
Expected<bool> next_token(const Session& session, const float* logits, int64_t vocab, const GenerationOptions& options,
                          std::mt19937_64& rng, const TokenCallback& on_token, GenerationResult& result);

// next_token in two halves, for loops that pick ids where the logits are (BatchGenerator: on the GPU through
// Session::append_each_sample): draw_uniform is the draw next_token makes (53 random bits of `rng` -> [0, 1), the
// same on every platform), and take_token applies the rules after the pick: appends `id` to result.ids, tells
// `on_token`, and returns false where generation ends (cancelled, stop id, max_new_tokens, context full).
double draw_uniform(std::mt19937_64& rng);
bool take_token(const Session& session, int32_t id, const GenerationOptions& options, const TokenCallback& on_token,
                GenerationResult& result);

// The sampling/decode loop alone, for callers that ran the prompt themselves (e.g. from embeddings with image
// features spliced in): `logits` f32 [1, vocab] of the session's last position. Fills ids, reason and
// decode_seconds of the result; the prompt fields are the caller's. Each decode step picks its id with
// Session::append_each_sample (on the GPU for the CUDA backbone).
Expected<GenerationResult> continue_generation(Session& session, Tensor logits, const GenerationOptions& options,
                                               const TokenCallback& on_token = {});

}  // namespace volt
