// The MiniMax-Text-01 backbone on one NVIDIA GPU: the CUDA twin of text/minimax_text_model.h, layer for layer the
// same wiring (minimax01-architecture.md §1-§4) over the CUDA kernels of kernels/*_cuda.h and
// kernels/lightning_attention.h. Numerics (design.md): bf16 weights, activations and KV cache, fp32 accumulation;
// fp32 lightning states, decay slopes, RoPE angles, RMSNorm statistics, router (fp32 gate weight) and final logits.
// Built only with CUDA (VOLT_HAVE_CUDA); the kernels need head_dim 128 (MiniMax-Text-01's).
//
// Several GPUs (issue 8): with options.gpus > 1 the model is split as text/parallel_mapping.h describes (heads,
// projections and vocabulary over every GPU, experts sliced, spread or replicated), one host thread per GPU
// (sdk/rank_threads.h) and NCCL all-reduces (sdk/nccl_group.h) after each attention block's output projection, the
// MoE (experts sliced or spread) and the embedding gather, and of the lightning norm's per-token statistic. Each GPU writes
// its vocabulary columns of the logits straight into the host result. The one-GPU model is the same code with one
// rank and no collectives.
#pragma once

#include <array>
#include <atomic>
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
#include "sdk/nccl_group.h"
#include "sdk/weight_spec.h"
#include "sdk/tensor.h"
#include "text/parallel_mapping.h"
#include "text/expert_weights.h"

namespace volt {

class AllReadyGate;
class RankThreads;

enum class ExpertPlacement { kAuto, kSliced, kSpread, kReplicated };
inline constexpr ExpertPlacement kExpertPlacements[] = {ExpertPlacement::kAuto, ExpertPlacement::kSliced,
                                                        ExpertPlacement::kSpread, ExpertPlacement::kReplicated};
const char* expert_placement_name(ExpertPlacement e);  // "auto", "sliced", "spread", "replicated"

struct CudaTextModelOptions {
    int device = 0;                     // CUDA device index (the first of `gpus`)
    int gpus = 1;                       // GPUs device .. device + gpus - 1, tensor parallel (needs NCCL when > 1)
    // When not empty: this process's GPUs in rank order instead of device .. device + gpus - 1 (any distinct devices,
    // e.g. {2, 5} or {1, 0}); its size must be `gpus` and its first entry `device`.
    std::vector<int> device_ids;
    // Where the experts of a model split over GPUs live (one GPU: everywhere, whole). kSliced: every GPU holds its
    // slice of every expert's intermediate dimension (w1 / w3 rows, w2 columns) and adds its part of each routed
    // expert, so every GPU reads 1/gpus of each touched expert (2 x H200, 8 layers: batch-1 decode steps 2.55-2.67 ms
    // vs 2.98-3.03 spread, prefill and batch 64 the same; bench/RESULTS.md); needs intermediate_size to split into
    // multiples of 8. kSpread: GPU r holds experts [e0, e1) whole (a batch-1 token's two experts on at most two
    // GPUs). kReplicated: every GPU holds every expert (no MoE all-reduce; gpus times the expert memory). Spread and
    // sliced sum the MoE output with one all-reduce. kAuto (default): sliced where the config allows, else spread.
    ExpertPlacement experts = ExpertPlacement::kAuto;
    bool language_model_of_vl = false;  // a MiniMax-VL-01 directory: load its language_model.* backbone
    // Expert weights as loaded (bf16), or quantised on the GPU at load time to FP8 e4m3 or int8 with one fp32 scale
    // per 128 x 128 block (each expert uploaded as bf16, quantised, the bf16 freed): half the expert bytes (the full
    // model on one 8-GPU node). text/expert_weights.h.
    ExpertWeights expert_weights = ExpertWeights::kBf16;
    // Decode steps of up to kSmallPieceTokens sequences replayed as CUDA graphs (one launch instead of ~20 per
    // layer), captured per batch size and attention split count; the GPUs of a split model in one process capture
    // theirs with the NCCL collectives inside and launch only when all of them are ready (a model split over several
    // processes runs eagerly). VOLT_CUDA_GRAPHS=0 turns them off too.
    bool cuda_graphs = true;
    // A split model's prompt pieces of >= CommOverlap::kMinRows tokens sum their partial rows in chunks on a second
    // stream per GPU while the first computes (the output projection's rows as they are made; the MoE's while the
    // next layer's input norm and first projections consume the chunks already summed; 2 x H200, 8 layers: prefill
    // 8K / 32K 1.2% / 1.5% faster, bench/RESULTS.md). VOLT_TP_OVERLAP=0 turns it off too.
    bool comm_overlap = true;
    // Work of the longest unit a prompt's forward queues between two stop points, in flops per GPU: a half-layer
    // (attention, MoE) of one piece, or one block of keys of a softmax layer's attention over a long context. A stop
    // waits for at most two units (~70 ms on an H100 at the default); larger units cost fewer pieces and launches.
    double max_unit_flops = 2e13;
    // One process per GPU group under a launcher (size > 1): every process holds `gpus` GPUs and runs the same calls
    // on the same inputs (SPMD); the model is split over all processes' GPUs, and each gets the whole result. A
    // process that fails (or dies) mid-forward leaves the others waiting in a collective (NCCL has no timeout): the
    // launcher ends the job, as with any SPMD program.
    ProcessGroup processes;
    // load(): told the fraction of this process's weight slices uploaded; an error it returns stops the load with
    // that status (what was uploaded is freed).
    LoadCounter::Callback progress;
};

class MiniMaxTextModelCuda final : public CausalLM {
public:
    // Longest piece of a prompt run through all layers at once; the caches carry over. Long pieces keep the GEMMs
    // large and the softmax layers on cuDNN's SDPA (pieces of >= cuda::kCudnnMinTokens); the piece actually used is
    // the largest that fits the GPU's free memory and keeps every unit of work within options.max_unit_flops
    // (chunk_tokens()).
    static constexpr int64_t kMaxChunkTokens = 65536;
    static constexpr int64_t kMinChunkTokens = 1024;  // pieces are never cut smaller than this
    // Pieces of at most this many tokens (decode steps, small batches) run in activations each GPU keeps across
    // forwards; longer ones allocate theirs per piece (and give them back to the caching allocator).
    static constexpr int64_t kSmallPieceTokens = 64;

    // DIR/config.json + checkpoint, checked against the model's weight table first (all problems at once); the
    // weights are converted to bf16 (the router's gate to fp32) and uploaded, each GPU reading only its slices of
    // the mmapped shards. RESOURCE_EXHAUSTED when they do not fit a GPU's free memory; UNIMPLEMENTED for shapes the
    // kernels do not run (head_dim != 128, > 32 experts) or splits the mapping cannot make; INVALID_ARGUMENT for
    // GPUs that do not exist.
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
    // This process's GPUs in rank order (options.device_ids, or device .. device + gpus - 1), checked against the
    // machine: each exists, none twice (INVALID_ARGUMENT naming the entry). What load() and synthetic() use.
    static Expected<std::vector<int>> local_devices(const CudaTextModelOptions& o);
    // The placement options.experts resolves to for this config (kAuto: kSliced where the slices are multiples of 8,
    // else kSpread); the others as given.
    static ExpertPlacement expert_placement(const TextConfig& config, const CudaTextModelOptions& o);
    ~MiniMaxTextModelCuda() override;

    const TextConfig& config() const { return config_; }
    int device() const;  // the first GPU
    int gpus() const { return static_cast<int>(ranks_.size()); }
    int64_t vocab_size() const override { return config_.vocab_size; }
    int64_t hidden_size() const override { return config_.hidden_size; }
    int64_t max_context() const override { return config_.max_position_embeddings; }
    // Lightning states fp32 and KV rows bf16, each GPU's heads on that GPU (layers rank-major: GPU r's layer l is
    // cache.layers[r * num_layers + l]).
    Expected<SequenceCache> new_cache(int64_t max_tokens) const override;
    // ids on the host; logits come back to the host as fp32 (mode as in CausalLM; a single row lives in pinned
    // memory, reused once the returned tensor and its views are gone). Calls are serialised.
    // `cancelled` is asked before each half-layer (attention, MoE) is queued; while it is set, the host stays at most
    // two half-layers ahead of the GPU so that a stop takes effect within about one layer's time, and all GPUs stop
    // at the same point.
    Expected<Tensor> forward(std::span<const int32_t> ids, SequenceCache& cache, LogitsMode mode,
                             const CancelCheck& cancelled = {}) const override;
    // embeds: host fp32 [n, hidden] (e.g. VL-01 token embeddings with image features spliced in), run as bf16.
    Expected<Tensor> forward_embeddings(const Tensor& embeds, SequenceCache& cache, LogitsMode mode,
                                        const CancelCheck& cancelled = {}) const override;
    // Gathered on the GPU from the bf16 table, returned as host fp32 (exact: bf16 widens exactly).
    Expected<Tensor> embed(std::span<const int32_t> ids) const override;
    // One token for each of B sequences in one pass through the layers (continuous batching): the rows of the
    // norms, projections and MoE are the B tokens; the lightning layers update each sequence's own state and the
    // softmax layers append each sequence's key/value row and attend over its own cache (split-KV decode over
    // sequences of different lengths), through device tables of the caches' pointers sent with the ids. Logits
    // [B, vocab] fp32 on the host. With options.cuda_graphs, a step of B <= kSmallPieceTokens sequences runs eagerly
    // the first time (and whenever a buffer it uses has grown) and is captured as a CUDA graph, which later steps of
    // the same B (and attention split count) replay in one launch; `cancelled` is then asked once, before the launch.
    Expected<Tensor> decode(std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                            const CancelCheck& cancelled = {}) const override;
    // The same step with each row's token picked on the GPU (cuda::SampleParams: cpu::sample's rules exactly): only
    // the B ids and draws cross PCIe, plus the rows when `logits` asks; a penalised row's penalty reads its cache's
    // TokenRecord, and sends its history only when the record has fallen behind or does not match it. B == 1
    // runs the batched path too. With the vocabulary split over GPUs, every GPU's columns are gathered (NCCL) and each
    // process's first GPU picks (every process the same ids).
    Expected<std::vector<int32_t>> decode_sample(std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                                                 std::span<const TokenPick> picks, Tensor* logits = nullptr,
                                                 const CancelCheck& cancelled = {}) const override;

    // Decode steps replayed from CUDA graphs so far (diagnostics and benchmarks).
    size_t decode_graph_replays() const {
        std::lock_guard<std::mutex> lock(mu_);
        return graph_replays_;
    }
    // Pieces (per GPU) whose partial sums overlapped with compute so far (options.comm_overlap; diagnostics, tests).
    size_t overlapped_pieces() const { return overlapped_pieces_.load(); }
    // History ids sent to the GPU for penalised rows so far (diagnostics and benchmarks): a row whose cache holds a
    // valid TokenRecord sends none (VOLT_TOKEN_RECORDS=0 turns the records off: every penalised row sends its history).
    size_t history_ids_staged() const {
        std::lock_guard<std::mutex> lock(mu_);
        return history_ids_staged_;
    }

    struct Layer;      // device weights of one decoder layer on one GPU (defined in the .cpp)
    struct Rank;       // one GPU's part of the model
    class StopPoint;   // where every GPU stops after a cancel
    class PinnedRowPool;  // pinned host buffers for returned logits
    struct DecodeBatch;   // one batched decode step's device tables (positions, KV lengths, cache pointers)
    struct DecodePlan;    // what every GPU does in a decode step (replay its CUDA graph or run eagerly)

private:
    MiniMaxTextModelCuda();
    // The slice `slice` of the named weight (Text-01 checkpoint naming) as a tensor of `dtype` on GPU `device`.
    using DeviceLookup =
        std::function<Expected<Tensor>(const std::string& name, DType dtype, const WeightSlice& slice, int device)>;
    static Expected<std::unique_ptr<MiniMaxTextModelCuda>> build(const TextConfig& config, const DeviceLookup& lookup,
                                                                 const CudaTextModelOptions& options);
    // The mappings of options.gpus ranks, checked against the config and the machine.
    static Expected<std::vector<ParallelMapping>> mappings(const TextConfig& config, const CudaTextModelOptions& o);
    Expected<Tensor> run(const Tensor& ids_or_embeds, bool from_ids, SequenceCache& cache, LogitsMode mode,
                         const CancelCheck& cancelled) const;
    // GPU r's share of one forward: every piece of the input through its layers, then its logits columns into
    // `host_logits` ([rows, V] fp32, null for kNone); with `record` the first GPU adds the ids to the cache's record.
    Status run_rank(int r, const Tensor& input, bool from_ids, SequenceCache& cache, int64_t chunk, LogitsMode mode,
                    float* host_logits, StopPoint* stop, bool record) const;
    // `piece`: this piece's index in the forward (stop points are numbered by it);
    // `kv_len_dev`: past + T on the GPU (the softmax layers' key count). With `batch` the T rows are one token of
    // each of T sequences (a decode step) whose caches the batch's tables point at; caches, past and kv_len_dev are
    // then unused.
    Status run_chunk(const Rank& rank, const void* ids_dev, const void* embeds_dev, int64_t T,
                     std::span<LayerCache> caches, int64_t past, const int32_t* kv_len_dev, float* logits_dev,
                     bool all_rows, StopPoint* stop, int64_t piece, const DecodeBatch* batch = nullptr) const;
    // What a batched decode step returns: the logits rows [B, V] into host_logits (decode; decode_sample when it asks
    // for them), and/or one id per row picked on the GPU with picks[b] into picked[b] (decode_sample: by the process's
    // first GPU; -1 for a row holding a NaN).
    struct DecodeOutput {
        float* host_logits = nullptr;
        std::span<const TokenPick> picks;
        int32_t* picked = nullptr;
    };
    // decode()'s and decode_sample()'s input checks (check_decode_batch, at most 65535 sequences, this model's caches).
    Status check_decode(std::span<const int32_t> ids, std::span<SequenceCache* const> caches) const;
    // One batched decode step over checked input on every GPU: the caches grow by one, the logits rows come back
    // when `rows` asks (host fp32 [B, V], else an undefined tensor), and with `picked` each row's id picked on the GPU.
    Expected<Tensor> decode_step(std::span<const int32_t> ids, std::span<SequenceCache* const> caches, bool rows,
                                 std::span<const TokenPick> picks, int32_t* picked, const CancelCheck& cancelled) const;
    // GPU r's share of a batched decode step: the batch's tables (and the draws and histories when sampling) up,
    // run_chunk, then the logits to the host or the sampler's ids.
    Status decode_rank(int r, std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                       const DecodeOutput& output, const DecodePlan& plan, StopPoint* stop, AllReadyGate* gate) const;
    // Before a decode step starts (under mu_): the staging, what each row does with its TokenRecord, the graph key
    // of every GPU and whether all of them replay a captured graph.
    Expected<DecodePlan> plan_decode(std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                                     const DecodeOutput& output) const;
    // The kept device buffers a captured decode step uses on `rank` (CudaGraphCache's staleness check).
    static std::array<const void*, 4> graph_buffers(const Rank& rank);
    // Host fp32 [rows, V] for returned logits: pinned from logits_rows_ when it has a buffer (under mu_).
    Expected<Tensor> host_logits(int64_t rows) const;
    // INTERNAL once a failure aborted the GPUs' NCCL group (under mu_): the model must be loaded again.
    Status check_usable() const;
    // INVALID_ARGUMENT unless `cache` was made by this model (its layers on these GPUs).
    Status check_cache(const SequenceCache& cache) const;
    // The cache's TokenRecord bits on this process's first GPU (the one that picks tokens), valid or not; null where
    // the cache holds none there or records are off.
    uint32_t* record_bits(const SequenceCache& cache) const;
    // `bytes` of pinned staging and as many on the GPU for rank's next inputs (after its last copy has left).
    Status stage_inputs(const Rank& rank, size_t bytes) const;
    // rank's vocabulary columns [rows, V_r] of the logits into the host rows [rows, V] (several processes: gathered
    // so that every process gets every column).
    Status logits_to_host(const Rank& rank, int r, const float* logits_dev, int64_t rows, float* host) const;
    // Embedding rows of device ids [n] into out [n, H] bf16 on `rank`'s GPU (vocabulary-parallel: each GPU gathers
    // its rows, zeros elsewhere, then the sum over GPUs, with the local ids in `local_ids` [n], else allocated).
    Status gather_embeddings(const Rank& rank, const int32_t* ids, int64_t n, void* out,
                             int32_t* local_ids = nullptr) const;
    // Every rank's logits columns [rows, V_r] gathered on every GPU (a collective), then copied into `out` [rows, V]
    // (host memory with to_host, else this GPU's; null: not copied here). Several processes use it so that each gets
    // every column; decode_sample so that the first GPU picks from whole rows.
    Status gather_logits(const Rank& rank, const float* logits_dev, int64_t rows, float* out, bool to_host) const;
    // Several processes: `value` reduced over every rank (a collective: every rank calls it at the same point), on
    // `stream` (null: the rank's; a piece that overlaps its sums passes the comm stream, where its collectives go).
    Expected<int32_t> agree(const Rank& rank, int32_t value, ReduceOp op, cudaStream_t stream = nullptr) const;
    // In-place sum over the GPUs (nothing with one GPU).
    Status all_reduce(const Rank& rank, void* data, int64_t count, DType dtype) const;
    // fn(r) for every GPU: inline with one, else on the rank threads, aborting the NCCL group when one fails.
    Status on_ranks(const std::function<Status(int rank)>& fn) const;
    // Tokens per piece of a forward that ends at `context` positions: kMaxChunkTokens, or fewer when the
    // activations of that many would not fit in 70% of some GPU's free memory (at least kMinChunkTokens), when a
    // piece's MoE or its attention's causal diagonal would exceed unit_flops_, or when its attention over the whole
    // context would (at least cuda::kCudnnMinTokens: longer contexts split the keys into blocks instead); the same on
    // every GPU, so they make the same collectives.
    int64_t chunk_tokens(int64_t context) const;

    TextConfig config_;
    std::vector<std::unique_ptr<Rank>> ranks_;
    std::unique_ptr<NcclGroup> comm_;       // null with one GPU
    std::unique_ptr<RankThreads> threads_;  // null with one GPU
    int processes_ = 1;                     // processes sharing the split (ProcessGroup::size)
    bool graphs_ = true;                    // decode steps as CUDA graphs (options.cuda_graphs)
    double unit_flops_ = 2e13;              // options.max_unit_flops
    mutable std::atomic<bool> graphs_failed_{false};  // a capture failed: eager from then on
    mutable size_t graph_replays_ = 0;      // under mu_
    bool token_records_ = true;             // TokenRecord kept per cache (VOLT_TOKEN_RECORDS)
    bool overlap_comm_ = true;              // options.comm_overlap and VOLT_TP_OVERLAP
    mutable std::atomic<size_t> overlapped_pieces_{0};
    mutable size_t history_ids_staged_ = 0; // under mu_
    mutable std::mutex mu_;
    mutable std::shared_ptr<PinnedRowPool> logits_rows_;  // made at the first decode step (under mu_)
};

}  // namespace volt
