// What the engine needs from a language model: a per-sequence cache it can create, and a forward pass that runs
// tokens after the cache's contents. The MiniMax text backbone (text/minimax_text_model.h) implements it; the engine
// (session.h, generate.h) never sees layers or kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "kernels/sampling.h"
#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt {

// Which logits a forward pass returns.
enum class LogitsMode : uint8_t {
    kAll,   // [n, vocab]: one row per token run
    kLast,  // [1, vocab]: the last token's row only (the lm_head runs on that row alone)
    kNone,  // no logits (an undefined tensor): fills the cache only
};

// One decoder layer's per-sequence state. Recurrent (lightning) layers use `state`; softmax layers use k/v.
class CudaPagedBuffer;

struct LayerCache {
    Tensor state;             // fp32 [H, D, D] (d_k major), zeros before the first token
    Tensor k, v;              // [capacity, Hkv, D] (kv_dtype on the cache's device); rows [0, length) hold
                              // positions 0 .. length-1
    int64_t kv_heads = 0;     // Hkv (0 for recurrent layers)
    int64_t head_dim = 0;     // D
    std::optional<Device> kv_device;  // where k/v live when not on the cache's kv_device() (a model split over
                                      // several GPUs keeps each GPU's layers on that GPU)
    // On a GPU: the paged buffers k and v view (sdk/cuda_paged_buffer.h; null where the driver offers no virtual
    // memory management and k/v are ordinary allocations). Rows below the cache's length are never written again
    // while they may be shared with a clone.
    std::shared_ptr<CudaPagedBuffer> k_pages, v_pages;
};

// The ids of a sequence's tokens as a set, kept where a model picks tokens (the CUDA backbone: on its first GPU), so
// that a repetition penalty reads it there instead of the whole history crossing to the GPU every step (at 128K
// tokens and 64 sequences, 32 MB a step). The model adds the ids it runs; it is valid while it covers every token
// run (count == the cache's length): a forward from embeddings (rows without ids) leaves it behind until a penalised
// step rebuilds it from that pick's history. A pick's history is checked against it in O(1) (its length, its first
// and last ids and this step's id): TokenPick::history must be the sequence's tokens, which Session guarantees.
struct TokenRecord {
    Tensor bits;          // int32 [ceil(vocab / 32)] used as bits: id i is present when bit i % 32 of word i / 32 is
                          // set; undefined where the model keeps no record (the CPU backbone)
    int64_t count = 0;    // tokens recorded
    int32_t first = -1;   // the ids at positions 0 and count - 1 (-1 while empty)
    int32_t last = -1;

    // What a decode step running `step_id` after `length` tokens does with the record (the model decides on the host,
    // then sets the bits on its GPU):
    enum class Use : uint8_t {
        kNone,     // not kept this step: a penalised row's history is sent; the record (if any) falls behind
        kAdd,      // valid: it gains the step's id, and a penalised row's penalty reads it (no history sent)
        kRebuild,  // fallen behind, and the penalised row's history has the sequence's length and ends with the
                   // step's id: the history is sent and rewrites the record
    };
    // `history`: the pick's when its row is penalised (TokenPick::history), else empty.
    Use plan_step(int64_t length, bool penalised, std::span<const int32_t> history, int32_t step_id) const;
    // After the step ran (`history` as given to plan_step): the count and the first and last ids follow.
    void after_step(Use use, int64_t length, std::span<const int32_t> history, int32_t step_id);
    // After a forward of `ids` while the record was valid (the model added them to the bits).
    void after_ids(std::span<const int32_t> ids);
};

// Everything a model keeps for one sequence. KV rows grow up to max_tokens: on a GPU in place, page by page (an
// address range reserved for max_tokens rows, 2 MiB pages mapped as rows are needed: nothing is copied and a clone
// shares the pages of its prefix); on the host (or without the driver's virtual memory management) geometrically,
// copied into each larger allocation. Recurrent states are fixed-size (MiniMax-Text-01: 4 MiB per lightning layer,
// independent of the context length).
class SequenceCache {
public:
    std::vector<LayerCache> layers;
    TokenRecord token_record;  // kept by the model (see TokenRecord); cleared and cloned with the cache

    int64_t length() const { return length_; }          // tokens already run
    bool token_record_valid() const { return token_record.bits.defined() && token_record.count == length_; }
    int64_t max_tokens() const { return max_tokens_; }  // hard limit set at creation
    int64_t capacity() const { return capacity_; }      // KV rows allocated
    size_t bytes() const;                                // memory held (states + KV rows allocated)
    // What a cache of this model needs besides its KV rows (the recurrent states, the token record), and per KV row
    // (every softmax layer's keys and values of one position): the memory planning of a batch (BatchGenerator).
    size_t state_bytes() const;
    size_t kv_bytes_per_token() const;

    void set_max_tokens(int64_t n) { max_tokens_ = n; }
    // Where the KV rows live and their element type (default: host fp32, the CPU backend's; the CUDA backend keeps
    // bf16 rows on its GPU). Set before the first reserve(); states are allocated by the model on the same device.
    void set_kv_storage(Device device, DType dtype) { kv_device_ = device, kv_dtype_ = dtype; }
    Device kv_device() const { return kv_device_; }
    DType kv_dtype() const { return kv_dtype_; }
    // Makes room for `tokens` positions in every KV layer (RESOURCE_EXHAUSTED beyond max_tokens or when memory
    // runs out). Existing rows are kept.
    Status reserve(int64_t tokens);
    void advance(int64_t n) { length_ += n; }  // called by the model after a successful forward
    // Back to zero tokens: states zeroed, KV rows forgotten (host memory kept; a GPU's pages released, since a clone
    // may share them).
    void clear();
    // A copy to go on from (prefix sharing: fork a cache after a common prompt): states copied; KV rows copied, or on
    // a GPU the pages of the prefix shared (the page holding its end copied).
    Expected<SequenceCache> clone() const;

private:
    Status reserve_paged(int64_t tokens);  // UNIMPLEMENTED: no paged buffers here (then reserve() allocates)

    int64_t length_ = 0;
    int64_t capacity_ = 0;
    int64_t max_tokens_ = 0;
    Device kv_device_ = Device::cpu();
    DType kv_dtype_ = DType::kF32;
};

// INVALID_ARGUMENT for an empty list or an id outside [0, vocab_size) (naming its position and value): the check
// every forward, embedding lookup and session append makes before any work.
Status check_token_ids(std::span<const int32_t> ids, int64_t vocab_size);

// Asked between layers during a forward pass (may be empty): true stops it with CANCELLED, leaving the cache
// unusable like any failure during compute. Long prompts run for minutes, so a stop cannot wait for the next token.
using CancelCheck = std::function<bool()>;

// What every batched decode step checks before any work (INVALID_ARGUMENT / RESOURCE_EXHAUSTED, naming the sequence):
// as many ids as caches (at least one), each id in the vocabulary, no cache null or given twice, and room for one
// more token in each.
Status check_decode_batch(std::span<const int32_t> ids, std::span<SequenceCache* const> caches, int64_t vocab_size);

// How one sequence of a decode step picks its next token (CausalLM::decode_sample): cpu::sample's options and draw.
struct TokenPick {
    SamplingParams sampling;
    std::span<const int32_t> history;  // ids the repetition penalty sees: the sequence's tokens, this step's included
    double uniform = 0.0;              // the draw in [0, 1) (ignored when greedy)
};

class CausalLM {
public:
    virtual ~CausalLM() = default;
    virtual int64_t vocab_size() const = 0;
    virtual int64_t hidden_size() const = 0;
    virtual int64_t max_context() const = 0;  // the config's max_position_embeddings
    // A cache for one sequence of at most max_tokens tokens (KV memory is allocated as it fills).
    virtual Expected<SequenceCache> new_cache(int64_t max_tokens) const = 0;
    // Runs `ids` (non-empty, each in [0, vocab)) at positions cache.length() .. cache.length()+n-1, updates the
    // cache and returns fp32 logits as `mode` asks. Invalid input is reported before the cache changes; any later
    // failure leaves the cache unusable (the caller must clear it).
    virtual Expected<Tensor> forward(std::span<const int32_t> ids, SequenceCache& cache, LogitsMode mode,
                                     const CancelCheck& cancelled = {}) const = 0;
    // The same from input embeddings instead of ids: embeds fp32 [n, hidden] (CPU), e.g. a VL-01 prompt's token
    // embeddings with the image features spliced in. Same cache and logits rules.
    virtual Expected<Tensor> forward_embeddings(const Tensor& embeds, SequenceCache& cache, LogitsMode mode,
                                                const CancelCheck& cancelled = {}) const = 0;
    // Token embeddings fp32 [n, hidden] on the host (what forward() feeds the first layer, as forward_embeddings
    // takes it): VL-01 splices image features into these rows.
    virtual Expected<Tensor> embed(std::span<const int32_t> ids) const = 0;
    // One new token for each of several sequences in one step (continuous batching's decode): ids[b] runs at
    // position caches[b]->length() of sequence b; returns fp32 logits [B, vocab] (row b: sequence b) and advances
    // every cache by one. Input is checked (check_decode_batch) before any cache changes; a later failure leaves
    // every cache of the batch unusable. The default runs one forward per sequence: the reference a batched backend
    // (the CUDA backbone: one pass through the layers for all B) is tested against.
    virtual Expected<Tensor> decode(std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                                    const CancelCheck& cancelled = {}) const;
    // decode() followed by one token pick per sequence (picks[b] for row b): returns the B chosen ids, each exactly
    // what cpu::sample picks from that row. The default samples decode()'s rows on the host; the CUDA backbone
    // samples on the GPU, so the B x vocab logits never cross PCIe (51 MB per step at batch 64). Same cache and
    // error rules as decode(); a picks count other than B or invalid sampling options are refused before any work,
    // and a row whose logits hold a NaN fails the step (the caches have advanced: the caller resets them).
    // With `logits` the rows come back too (f32 [B, vocab] on the host, as decode() returns them): a session that
    // must keep its last row (generate(): a later prompt equal to its tokens reuses it) pays for the copy, a batch
    // does not.
    virtual Expected<std::vector<int32_t>> decode_sample(std::span<const int32_t> ids,
                                                         std::span<SequenceCache* const> caches,
                                                         std::span<const TokenPick> picks, Tensor* logits = nullptr,
                                                         const CancelCheck& cancelled = {}) const;
};

// What decode_sample checks before any work besides check_decode_batch: one pick per sequence, each pick's options
// valid, and a draw in [0, 1).
Status check_token_picks(std::span<const TokenPick> picks, size_t batch);

}  // namespace volt
