// The MiniMax-Text-01 backbone on one NVIDIA GPU: the CUDA twin of text/minimax_text_model.h, layer for layer the
// same wiring (minimax01-architecture.md §1-§4) over the CUDA kernels of kernels/*_cuda.h and
// kernels/lightning_attention.h. Numerics (design.md): bf16 weights, activations and KV cache, fp32 accumulation;
// fp32 lightning states, decay slopes, RoPE angles, RMSNorm statistics, router (fp32 gate weight) and final logits.
// Built only with CUDA (VOLT_HAVE_CUDA); the kernels need head_dim 128 (MiniMax-Text-01's).
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
#include "sdk/tensor.h"

namespace volt {

struct CudaTextModelOptions {
    int device = 0;                     // CUDA device index
    bool language_model_of_vl = false;  // a MiniMax-VL-01 directory: load its language_model.* backbone
};

class MiniMaxTextModelCuda final : public CausalLM {
public:
    // Longest piece of a prompt run through all layers at once; the caches carry over. Long pieces keep the softmax
    // layers on cuDNN's SDPA (which takes a sequence without a cached prefix) and the GEMMs large; the piece actually
    // used is the largest that fits the GPU's free memory (chunk_tokens()).
    static constexpr int64_t kMaxChunkTokens = 65536;

    // DIR/config.json + checkpoint, checked against the model's weight table first (all problems at once); the
    // weights are converted to bf16 (the router's gate to fp32) and uploaded. RESOURCE_EXHAUSTED when they do not
    // fit the GPU's free memory; UNIMPLEMENTED for shapes the kernels do not run (head_dim != 128, > 32 experts).
    static Expected<std::unique_ptr<MiniMaxTextModelCuda>> load(const std::filesystem::path& dir,
                                                                const CudaTextModelOptions& options = {});
    // From host tensors named as in a Text-01 checkpoint (tests, benchmarks); any float dtype.
    static Expected<std::unique_ptr<MiniMaxTextModelCuda>> from_tensors(
        const TextConfig& config, const std::unordered_map<std::string, Tensor>& tensors,
        const CudaTextModelOptions& options = {}, const std::string& label = "tensors");
    // Random bf16 weights generated on the GPU (no files): benchmarks at full geometry. Embedding ~N(0,1)-scaled,
    // linears 1/sqrt(fan_in), norms 1 +- 0.1, router fp32. RESOURCE_EXHAUSTED (with the numbers) when they do not fit.
    static Expected<std::unique_ptr<MiniMaxTextModelCuda>> synthetic(const TextConfig& config,
                                                                     const CudaTextModelOptions& options = {},
                                                                     uint64_t seed = 1);
    ~MiniMaxTextModelCuda() override;

    const TextConfig& config() const { return config_; }
    int device() const { return device_; }
    int64_t vocab_size() const override { return config_.vocab_size; }
    int64_t hidden_size() const override { return config_.hidden_size; }
    int64_t max_context() const override { return config_.max_position_embeddings; }
    // Lightning states fp32 and KV rows bf16, on the model's GPU.
    Expected<SequenceCache> new_cache(int64_t max_tokens) const override;
    // ids on the host; logits come back to the host as fp32 (mode as in CausalLM). Calls are serialised.
    Expected<Tensor> forward(std::span<const int32_t> ids, SequenceCache& cache, LogitsMode mode) const override;
    // embeds: host fp32 [n, hidden] (e.g. VL-01 token embeddings with image features spliced in), run as bf16.
    Expected<Tensor> forward_embeddings(const Tensor& embeds, SequenceCache& cache, LogitsMode mode) const override;
    // Gathered on the GPU from the bf16 table, returned as host fp32 (exact: bf16 widens exactly).
    Expected<Tensor> embed(std::span<const int32_t> ids) const override;

    struct Layer;  // device weights of one decoder layer (defined in the .cpp)

private:
    MiniMaxTextModelCuda() = default;
    // The named weight (Text-01 checkpoint naming) as a device tensor of `dtype`.
    using DeviceLookup = std::function<Expected<Tensor>(const std::string& name, DType dtype)>;
    static Expected<std::unique_ptr<MiniMaxTextModelCuda>> build(const TextConfig& config, const DeviceLookup& lookup,
                                                                 const CudaTextModelOptions& options);
    Expected<Tensor> run(const Tensor& ids_or_embeds, bool from_ids, SequenceCache& cache, LogitsMode mode) const;
    Status run_chunk(const void* ids_dev, const void* embeds_dev, int64_t T, SequenceCache& cache, float* logits_dev,
                     bool all_rows) const;
    // Tokens per piece: kMaxChunkTokens, or fewer when the activations of that many would not fit in 70% of the
    // free memory (at least 1024).
    int64_t chunk_tokens() const;

    TextConfig config_;
    int device_ = 0;
    Tensor embed_;       // [V, H] bf16 device
    std::vector<std::unique_ptr<Layer>> layers_;
    Tensor final_norm_;  // [H] bf16 device
    Tensor lm_head_;     // [V, H] bf16 device (the embedding when tied)
    void* blas_ = nullptr;  // cublasHandle_t for the fp32-output lm_head GEMM
    mutable std::mutex mu_;
};

}  // namespace volt
