#include "sdk/engine/generate.h"

#include <algorithm>
#include <chrono>
#include <random>

namespace volt {

const char* stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::kMaxNewTokens: return "max_new_tokens";
        case StopReason::kStopId: return "stop_id";
        case StopReason::kContextFull: return "context_full";
        case StopReason::kCancelled: return "cancelled";
    }
    return "unknown";
}

Status validate(const GenerationOptions& options) {
    if (options.max_new_tokens < 0)
        return invalid_argument("max_new_tokens ", options.max_new_tokens, " must be >= 0");
    return validate(options.sampling);
}

Expected<GenerationResult> generate(Session& session, std::span<const int32_t> prompt, const GenerationOptions& options,
                                    const TokenCallback& on_token) {
    VOLT_RETURN_IF_ERROR(validate(options));
    const auto t0 = std::chrono::steady_clock::now();
    VOLT_ASSIGN_OR_RETURN(Tensor logits, session.prefill(prompt, LogitsMode::kLast));
    const double prefill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t reused = session.reused_tokens();
    VOLT_ASSIGN_OR_RETURN(GenerationResult result, continue_generation(session, std::move(logits), options, on_token));
    result.prompt_tokens = static_cast<int64_t>(prompt.size());
    result.reused_tokens = reused;
    result.prefill_seconds = prefill_seconds;
    return result;
}

double draw_uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

bool take_token(const Session& session, int32_t id, const GenerationOptions& options, const TokenCallback& on_token,
                GenerationResult& result) {
    result.ids.push_back(id);
    if (on_token && !on_token(id)) {
        result.reason = StopReason::kCancelled;
        return false;
    }
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), id) != options.stop_ids.end()) {
        result.reason = StopReason::kStopId;
        return false;
    }
    if (static_cast<int64_t>(result.ids.size()) == options.max_new_tokens) return false;  // the last id needs no step
    if (static_cast<int64_t>(session.tokens().size()) >= session.max_context()) {
        result.reason = StopReason::kContextFull;
        return false;
    }
    return true;
}

Expected<bool> next_token(const Session& session, const float* logits, int64_t vocab, const GenerationOptions& options,
                          std::mt19937_64& rng, const TokenCallback& on_token, GenerationResult& result) {
    if (static_cast<int64_t>(result.ids.size()) >= options.max_new_tokens) return false;
    const double u = draw_uniform(rng);
    const auto& history = session.tokens();
    VOLT_ASSIGN_OR_RETURN(int32_t id, cpu::sample({.logits = logits, .vocab_size = vocab, .sampling = options.sampling,
                                                   .history = history.data(),
                                                   .history_len = static_cast<int64_t>(history.size()),
                                                   .uniform = u}));
    return take_token(session, id, options, on_token, result);
}

Expected<GenerationResult> continue_generation(Session& session, Tensor logits, const GenerationOptions& options,
                                               const TokenCallback& on_token) {
    VOLT_RETURN_IF_ERROR(validate(options));
    if (logits.rank() != 2 || logits.dim(0) != 1 || logits.dtype() != DType::kF32)
        return invalid_argument("continue_generation: logits ", logits.shape().to_string(),
                                " must be f32 [1, vocab] (the last position's row)");
    using clock = std::chrono::steady_clock;
    GenerationResult result;
    const auto t1 = clock::now();
    std::mt19937_64 rng(options.seed);
    const int64_t V = logits.dim(1);
    // The first id from the given row, every later one picked where the step's logits are (decode_sample: on the
    // GPU for the CUDA backbone, so the host does not sort a vocabulary per token), with the same draws. The session
    // keeps each step's row: a later prompt equal to its tokens reuses it.
    VOLT_ASSIGN_OR_RETURN(bool goes_on, next_token(session, logits.data_as<float>(), V, options, rng, on_token, result));
    Session* const one[1] = {&session};
    while (goes_on) {
        const int32_t id[1] = {result.ids.back()};
        const TokenPick pick[1] = {{.sampling = options.sampling, .uniform = draw_uniform(rng)}};
        VOLT_ASSIGN_OR_RETURN(const std::vector<int32_t> next,
                              Session::append_each_sample(one, id, pick, /*keep_logits=*/true));
        goes_on = take_token(session, next[0], options, on_token, result);
    }
    result.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return result;
}

}  // namespace volt
