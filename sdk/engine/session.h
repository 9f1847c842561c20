// A Session is one conversation with a model: it owns the sequence's cache (lightning states + softmax KV) and
// the tokens run so far. Prefill any length, then decode one token at a time; a new prompt that extends the
// session's tokens reuses them (only the new suffix runs). Sessions are independent; one model may serve many, one
// call at a time per session. A session refers to its model, which must outlive it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sdk/engine/causal_lm.h"

namespace volt {

struct SessionOptions {
    int64_t max_context = 0;  // tokens the session may hold; 0: the model's max_context (max_position_embeddings)
};

class Session {
public:
    static Expected<Session> create(const CausalLM& model, const SessionOptions& options = {});
    // The tokens a session made with `options` may hold (INVALID_ARGUMENT for a negative max_context or one beyond
    // the model's): create() checks this before allocating anything.
    static Expected<int64_t> context_limit(const CausalLM& model, const SessionOptions& options);

    // Runs `ids` after the session's tokens and returns their logits (`mode`). Errors, all before any compute:
    // INVALID_ARGUMENT for an empty list or an id outside the vocabulary (naming its position and value),
    // RESOURCE_EXHAUSTED when the session would exceed its context. A failure during compute resets the session;
    // so does a stop by `cancelled` (asked between layers: CANCELLED).
    Expected<Tensor> append(std::span<const int32_t> ids, LogitsMode mode = LogitsMode::kLast,
                            const CancelCheck& cancelled = {});

    // Runs input embeddings fp32 [n, hidden] (VL-01: token embeddings with image features spliced in); `ids` (n of
    // them, e.g. the prompt with its image-token ids) are what tokens() records. Since ids no longer describe what
    // ran, a later prefill() does not reuse these positions (it starts over). Same errors as append().
    Expected<Tensor> append_embeddings(const Tensor& embeds, std::span<const int32_t> ids,
                                       LogitsMode mode = LogitsMode::kLast, const CancelCheck& cancelled = {});

    // One token for each of several sessions of one model in one batched step (CausalLM::decode, continuous
    // batching): ids[b] after sessions[b]'s tokens. Returns logits [B, vocab] (row b: session b); each session's
    // last_logits() views its row. Errors before any compute: INVALID_ARGUMENT (counts differ, a null or repeated
    // session, sessions of different models, a bad id), RESOURCE_EXHAUSTED (a session's context is full). A failure
    // during compute resets every session of the batch.
    static Expected<Tensor> append_each(std::span<Session* const> sessions, std::span<const int32_t> ids,
                                        const CancelCheck& cancelled = {});
    // append_each, then each session's next token picked where the logits are (CausalLM::decode_sample: on the GPU
    // for the CUDA backbone): picks[b] gives session b's sampling options and draw; its history is session b's
    // tokens with ids[b] (whatever history the pick holds is replaced). Returns the B picked ids. With keep_logits
    // each session's last_logits() holds its row as after append_each (the rows cross to the host); without, it is
    // undefined (a prefill() of exactly the session's tokens then starts over). Errors as append_each's, plus
    // INVALID_ARGUMENT for a picks count other than B or bad sampling options.
    static Expected<std::vector<int32_t>> append_each_sample(std::span<Session* const> sessions,
                                                             std::span<const int32_t> ids,
                                                             std::span<const TokenPick> picks, bool keep_logits,
                                                             const CancelCheck& cancelled = {});
    // Runs a whole prompt, reusing the session's tokens when they are a proper prefix of it (then only the rest
    // runs; reused_tokens() says how many were skipped); otherwise starts over. A prompt equal to the session's
    // tokens returns the logits kept from the last call (kLast only). kAll returns rows for the tokens run.
    Expected<Tensor> prefill(std::span<const int32_t> prompt, LogitsMode mode = LogitsMode::kLast);

    void reset();                               // forget every token (memory is kept)
    Expected<Session> fork() const;             // an independent copy (share a prompt prefix across requests)

    const std::vector<int32_t>& tokens() const { return tokens_; }
    int64_t max_context() const { return cache_.max_tokens(); }
    int64_t reused_tokens() const { return reused_; }
    const Tensor& last_logits() const { return last_logits_; }  // [1, vocab] of the last token run, or undefined
    const SequenceCache& cache() const { return cache_; }
    const CausalLM& model() const { return *model_; }

private:
    // append_each's input checks (each session's own check, one model), giving the sessions' caches.
    static Expected<std::vector<SequenceCache*>> batch_caches(std::span<Session* const> sessions,
                                                              std::span<const int32_t> ids);
    // A batched step's failure: refused input (INVALID_ARGUMENT) changed nothing; any other failure resets every
    // session of the batch. Returns `status`.
    static Status batch_failed(std::span<Session* const> sessions, const Status& status);
    Session(const CausalLM* model, SequenceCache cache) : model_(model), cache_(std::move(cache)) {}
    Status check(std::span<const int32_t> ids) const;
    Expected<Tensor> finish(Expected<Tensor> logits, std::span<const int32_t> ids, LogitsMode mode);

    const CausalLM* model_ = nullptr;
    SequenceCache cache_;
    std::vector<int32_t> tokens_;
    Tensor last_logits_;
    int64_t reused_ = 0;
    bool holds_embeddings_ = false;  // some positions ran from embeddings: no prefix reuse
};

}  // namespace volt
