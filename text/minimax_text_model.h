// The MiniMax-Text-01 backbone on the CPU (minimax01-architecture.md §1-§4): embedding, per layer RMSNorm ->
// lightning or softmax attention -> DeepNorm residual -> RMSNorm -> MoE -> DeepNorm residual, final RMSNorm, untied
// lm_head, fp32 logits. fp32 activations and accumulation; bf16/f16 checkpoint weights are widened to fp32 at load
// (the embedding table stays in its checkpoint dtype and rows widen on lookup).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "sdk/checkpoint.h"
#include "sdk/config.h"
#include "sdk/engine/causal_lm.h"
#include "sdk/weight_spec.h"
#include "text/minimax_text_layers.h"

namespace volt {

struct TextModelLoadOptions {
    // Host memory the fp32 weights may take. 0: MemAvailable from /proc/meminfo (no check when unreadable).
    // Loading stops with RESOURCE_EXHAUSTED before allocating when the widened weights would not fit (instead of
    // the OOM killer ending the process halfway).
    uint64_t host_memory_budget = 0;
    // A MiniMax-VL-01 directory: load its text backbone (the language_model.* tensors; the vision tower's tensors
    // are left alone). Off: VL directories are refused (UNIMPLEMENTED), since ids alone cannot carry images.
    bool language_model_of_vl = false;
    // Told the fraction of the weights loaded (bytes); an error it returns stops the load with that status.
    LoadCounter::Callback progress;
};

class MiniMaxTextModel final : public CausalLM {
public:
    // Longest piece of a prompt run through all layers at once; longer prompts run piece by piece (the lightning
    // state and KV cache carry over exactly), which bounds activation memory at ~ this many tokens.
    static constexpr int64_t kMaxChunkTokens = 2048;

    // Reads DIR/config.json and the checkpoint (single file or index + shards). Every tensor is checked against
    // the model's table first and all problems are reported at once (INVALID_ARGUMENT naming the checkpoint).
    static Expected<std::unique_ptr<MiniMaxTextModel>> load(const std::filesystem::path& dir,
                                                            const TextModelLoadOptions& options = {});
    // Bytes of host memory load() allocates for this checkpoint (weights widened to fp32; fp32 and the embedding
    // table are used in place).
    static uint64_t load_bytes(const TextConfig& config, const Checkpoint& checkpoint, const std::string& prefix = "");
    // From tensors named as in the checkpoint (benchmarks and tests build synthetic models this way); the same
    // checks as load(). Tensors may be any float dtype.
    static Expected<std::unique_ptr<MiniMaxTextModel>> from_tensors(const TextConfig& config,
                                                                     const std::unordered_map<std::string, Tensor>& tensors,
                                                                     const std::string& label = "tensors");

    const TextConfig& config() const { return config_; }
    int64_t vocab_size() const override { return config_.vocab_size; }
    int64_t hidden_size() const override { return config_.hidden_size; }
    int64_t max_context() const override { return config_.max_position_embeddings; }
    Expected<SequenceCache> new_cache(int64_t max_tokens) const override;
    // Thread-safe: concurrent calls (different caches) are serialised, since BLAS is threaded already.
    // `cancelled` is asked before every layer of every piece.
    Expected<Tensor> forward(std::span<const int32_t> ids, SequenceCache& cache, LogitsMode mode,
                             const CancelCheck& cancelled = {}) const override;
    Expected<Tensor> forward_embeddings(const Tensor& embeds, SequenceCache& cache, LogitsMode mode,
                                        const CancelCheck& cancelled = {}) const override;
    // Token embeddings fp32 [n, hidden] of `ids` (what forward() feeds the first layer): VL-01 splices image
    // features into these rows and runs forward_embeddings().
    Expected<Tensor> embed(std::span<const int32_t> ids) const override;

private:
    struct Layer {
        LayerKind kind;
        Tensor input_norm, post_norm;  // [H]
        LightningLayerWeights lightning;
        SoftmaxLayerWeights softmax;
        MoeWeights moe;
    };

    using Lookup = std::function<Expected<Tensor>(const std::string& name)>;
    static Expected<std::unique_ptr<MiniMaxTextModel>> build(const TextConfig& config, const Lookup& lookup);
    // One piece through every layer, from ids or (ids == nullptr) from embeddings [n, H].
    Status run_chunk(const int32_t* ids, const float* embeds, int64_t n, SequenceCache& cache, float* logits,
                     bool all_rows, const CancelCheck& cancelled) const;
    Expected<Tensor> run(const int32_t* ids, const float* embeds, int64_t n, SequenceCache& cache, LogitsMode mode,
                         const CancelCheck& cancelled) const;

    TextConfig config_;
    Checkpoint checkpoint_;  // keeps the mmapped embedding table alive
    Tensor embed_;           // [V, H] checkpoint dtype
    std::vector<Layer> layers_;
    Tensor final_norm_;      // [H]
    Tensor lm_head_;         // [V, H] fp32
    mutable std::mutex mu_;
};

}  // namespace volt
