// Continuous batching (issue 12): several generation requests share one model. Each step runs at most one prefill
// piece of one admitted request and then one batched decode step (Session::append_each_sample ->
// CausalLM::decode_sample: the next ids picked where the logits are) for every request that is generating, so a
// new request starts while the others keep decoding (prefill chunks and decode steps mixed, as MiniMax's report
// describes). A request's tokens are exactly what generate() gives it alone with the
// same options: the same sampling (its own seeded RNG and history), stop ids, max_new_tokens and context rules; the
// batched step is what makes the GPU read the weights once for all of them.
//
// A long-running server cancels requests (cancel(): a queued one never runs, a running one leaves the batch before
// the next step and its cache memory goes back to the budget) and forgets finished ones (release()).
//
// Single-threaded: the caller drives step() (or run()) from one thread; token callbacks run on it, and submit(),
// cancel(), release() and result() are called on it between steps (a token callback stops its own request by
// returning false; cancel() and release() from inside step() are refused).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "sdk/engine/generate.h"
#include "sdk/engine/session.h"

namespace volt {

struct BatchOptions {
    int max_batch = 64;              // requests generating at once (more wait in the queue)
    int64_t prefill_chunk = 8192;    // prompt tokens run per step for the request being prefilled
    // Memory for the running requests' caches (0: no limit but max_batch). A request is admitted only when the
    // worst case of every running cache plus its own fits: its states plus twice the KV rows of prompt +
    // max_new_tokens positions (a growing cache briefly holds its old rows and the new ones), so no admitted request
    // runs out of memory mid-generation. Requests wait in order; one that alone exceeds the budget is refused at
    // submit (RESOURCE_EXHAUSTED, with the numbers).
    int64_t memory_budget_bytes = 0;
};

class BatchGenerator {
public:
    using RequestId = int64_t;

    // INVALID_ARGUMENT for max_batch < 1 or prefill_chunk < 1.
    static Expected<BatchGenerator> create(const CausalLM& model, const BatchOptions& options = {});
    BatchGenerator(BatchGenerator&&) noexcept;
    BatchGenerator& operator=(BatchGenerator&&) noexcept;
    ~BatchGenerator();

    // Queues a request; checked now (INVALID_ARGUMENT: empty prompt, an id outside the vocabulary, bad options or
    // session options; RESOURCE_EXHAUSTED: the prompt alone exceeds the context). `on_token` is called with each new
    // id; returning false ends that request (kCancelled). Ids count up from 0 and are never reused (not after
    // release() either).
    Expected<RequestId> submit(std::vector<int32_t> prompt, const GenerationOptions& options,
                               TokenCallback on_token = {}, const SessionOptions& session = {});

    // One step: admit queued requests up to max_batch, run one prefill piece, then one batched decode step. Errors
    // of one request's compute end that request (its result holds the error); step() itself fails only when the
    // batch cannot run at all. Returns the requests not finished yet (queued or running).
    Expected<int64_t> step();
    // step() until every submitted request has finished.
    Status run();

    // Ends a request now, between steps. Queued: it leaves the queue without running anything (its result: reason
    // kCancelled, no ids, prefill_seconds 0). Admitted: it leaves the batch, whether it is in its prompt (no further
    // piece runs) or decoding (no further step; its result keeps the ids chosen so far, each already told to its
    // callback, reason kCancelled); its session (cache memory) is freed and its memory-budget reservation returned,
    // so the next step may admit queued requests in its place. The others' tokens do not change. Either way the
    // request is finished: result() gives an OK result with reason kCancelled, as generate() reports a callback's
    // stop. OK and no change for a finished request; NOT_FOUND for an id never returned or released;
    // INVALID_ARGUMENT from inside step() (a token callback).
    Status cancel(RequestId id);
    // Forgets a finished request (its prompt, ids and result): later result(), cancel() and release() of its id give
    // NOT_FOUND ("released") and finished() false; its id is not reused. INVALID_ARGUMENT for a request not finished
    // (cancel() it first) or from inside step(); NOT_FOUND for an id never returned or already released.
    Status release(RequestId id);

    bool finished(RequestId id) const;  // false for an unknown or released id
    int64_t running() const { return static_cast<int64_t>(running_.size()); }  // admitted, not finished
    int64_t queued() const { return static_cast<int64_t>(queued_.size()); }
    // A finished request's result, or its error; NOT_FOUND for an unknown or released id, INVALID_ARGUMENT while
    // it runs.
    Expected<GenerationResult> result(RequestId id) const;

private:
    struct Request;
    explicit BatchGenerator(const CausalLM& model, const BatchOptions& options);
    // The request `id` (not released); NOT_FOUND naming `what` (the caller) for an unknown or released id.
    Expected<Request*> find(RequestId id, const char* what) const;
    // A finished admitted request's session (its cache memory) and memory-budget reservation go back.
    void free_cache(Request& r);
    Status prefill_step(Request& r);
    // Samples r's first new id from its prompt's last `logits` [1, vocab] and applies the stop rules; true when r
    // goes on decoding (later ids are picked in the batched step, Session::append_each_sample).
    Expected<bool> take_first_token(Request& r, const float* logits, int64_t vocab);

    // Worst-case cache bytes of a request of `tokens` positions (prompt + max_new_tokens); 0 without a budget.
    int64_t cache_bytes(int64_t tokens) const;

    const CausalLM* model_;
    BatchOptions options_;
    size_t state_bytes_ = 0, kv_bytes_per_token_ = 0;  // of this model's caches (measured on one at create)
    int64_t reserved_bytes_ = 0;                       // the running requests' worst cases
    std::unordered_map<RequestId, std::unique_ptr<Request>> requests_;  // by id; released ones are erased
    RequestId next_id_ = 0;                                             // ids are never reused
    std::deque<Request*> queued_;
    std::vector<Request*> running_;                   // admitted, in admission order
    bool stepping_ = false;                           // inside step(): cancel() and release() are refused
};

}  // namespace volt
