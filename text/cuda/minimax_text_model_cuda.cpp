#include "text/cuda/minimax_text_model_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <initializer_list>
#include <map>
#include <mutex>

#include "kernels/attention_cuda.h"
#include "kernels/embedding_cuda.h"
#include "kernels/gemm_cuda.h"
#include "kernels/kv_cache_cuda.h"
#include "kernels/lightning_attention.h"
#include "kernels/moe_cuda.h"
#include "kernels/norm_cuda.h"
#include "kernels/random_fill_cuda.h"
#include "kernels/rope_cuda.h"
#include "kernels/sampling_cuda.h"
#include "kernels/tensor_parallel_cuda.h"
#include "sdk/cuda_check.h"
#include "sdk/cuda_graph_cache.h"
#include "sdk/cuda_memory.h"
#include "sdk/cuda_upload.h"
#include "sdk/env.h"
#include "sdk/log.h"
#include "sdk/nccl_group.h"
#include "sdk/rank_threads.h"
#include "sdk/weight_spec.h"
#include "text/cuda/comm_overlap.h"
#include "text/minimax_text_weights.h"

namespace volt {

// Shapes are this GPU's: Hq, Hkv its heads, E its experts (all of them without a split).
struct MiniMaxTextModelCuda::Layer {
    LayerKind kind = LayerKind::kLightning;
    Tensor input_norm, post_norm;  // [H] bf16
    // lightning
    Tensor qkv;          // [3*Hq*D, H], rows per-head interleaved [q_h | k_h | v_h]
    Tensor output_gate;  // [Hq*D, H]
    Tensor norm;         // [Hq*D]
    Tensor out_proj;     // [H, Hq*D]
    Tensor slopes;       // [Hq] fp32
    // softmax
    Tensor q_proj, k_proj, v_proj, o_proj;  // [Hq*D, H], [Hkv*D, H] x2, [H, Hq*D]
    // MoE
    Tensor router;                       // [E_all, H] fp32 (every GPU routes every token)
    std::vector<Tensor> w1, w2;          // E x [w1; w3] as one [2I, H] block, [H, I]: bf16 or quantised bytes
    std::vector<const void*> w1p, w3p, w2p;
    std::vector<Tensor> s1, s2;          // quantised: E x fp32 128 x 128 block scales of [w1; w3] and w2
    std::vector<const float*> s1p, s3p, s2p;
    cuda::MoeWeightType weight_type = cuda::MoeWeightType::kBF16;  // of w1, w3, w2
};

namespace {

// Pinned host memory (freed with the owner). Portable: every GPU of a split model copies into it at full speed.
struct PinnedHost {
    void* ptr = nullptr;
    size_t bytes = 0;
    PinnedHost() = default;
    PinnedHost(const PinnedHost&) = delete;
    PinnedHost& operator=(const PinnedHost&) = delete;
    ~PinnedHost() {
        if (ptr) (void)cudaFreeHost(ptr);
    }
    Status grow(size_t need) {
        if (need <= bytes) return Status::ok();
        if (ptr) VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaFreeHost(ptr)));
        ptr = nullptr, bytes = 0;
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaHostAlloc(&ptr, need, cudaHostAllocPortable)));
        bytes = need;
        return Status::ok();
    }
};

// The activations of one piece on one GPU (bf16 unless noted) and the scratch its kernels share.
struct PieceBuffers {
    int64_t tokens = 0;  // rows allocated
    Tensor h, xn, a, yn, mo;    // [T, H]
    Tensor wide;                // [T, 3W]: qkv / q
    Tensor att, gate, gated;    // [T, W]: attention output, lightning gate, norm(o) * sigmoid(gate)
    Tensor expert_ids;          // [T, K] i32
    Tensor expert_w;            // [T, K] f32
    Tensor local_experts;       // [T, K] i32, experts split over GPUs: ids made local
    Tensor square_sums;         // [T] f32, heads split over GPUs: the lightning norm statistic
    Tensor local_ids;           // [T] i32, vocabulary split over GPUs: the ids made local for the embedding gather
    Tensor workspace;           // grown to the largest user
    size_t workspace_bytes = 0;
};

}  // namespace

// Pinned host buffers that back returned logits (a decode step's row, a batched step's B rows): the GPUs copy
// straight into them (no pageable staging by the driver, no fresh host pages per step: a batch of 64 rows of a
// 200K vocabulary is 51 MB, which pageable memory took ~40 ms per step to receive). Buffers hold a power-of-two
// number of rows; one comes back when the last tensor viewing it goes, and the deleter holds the pool, so tensors
// may outlive the model. At most kMax of each size exist: a caller that keeps more gets ordinary host memory.
class MiniMaxTextModelCuda::PinnedRowPool : public std::enable_shared_from_this<PinnedRowPool> {
public:
    explicit PinnedRowPool(size_t row_bytes) : row_bytes_(row_bytes) {}
    ~PinnedRowPool() {
        for (auto& [rows, list] : free_)
            for (void* p : list) (void)cudaFreeHost(p);
    }
    // A buffer of at least `rows` rows, or null when kMax of its size are in use.
    Expected<std::shared_ptr<void>> take(int64_t rows) {
        int64_t cap = 1;
        while (cap < rows) cap *= 2;
        void* p = nullptr;
        {
            std::lock_guard<std::mutex> lock(mu_);
            auto& list = free_[cap];
            if (!list.empty()) {
                p = list.back();
                list.pop_back();
            } else if (made_[cap] == kMax) {
                return std::shared_ptr<void>();
            } else {
                ++made_[cap];
            }
        }
        if (!p) {
            Status st = VOLT_CUDA_STATUS(cudaHostAlloc(&p, row_bytes_ * size_t(cap), cudaHostAllocPortable));
            if (!st.is_ok()) {
                std::lock_guard<std::mutex> lock(mu_);
                --made_[cap];
                return st;
            }
        }
        return std::shared_ptr<void>(p, [pool = shared_from_this(), cap](void* q) {
            std::lock_guard<std::mutex> lock(pool->mu_);
            pool->free_[cap].push_back(q);
        });
    }

private:
    static constexpr size_t kMax = 4;
    const size_t row_bytes_;
    std::mutex mu_;
    std::map<int64_t, std::vector<void*>> free_;  // by rows
    std::map<int64_t, size_t> made_;
};

// Host logits [rows, V] fp32, pinned when the pool has a buffer (under mu_).
Expected<Tensor> MiniMaxTextModelCuda::host_logits(int64_t rows) const {
    const int64_t V = config_.vocab_size;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaSetDevice(device())));
    if (!logits_rows_) logits_rows_ = std::make_shared<PinnedRowPool>(static_cast<size_t>(V) * sizeof(float));
    VOLT_ASSIGN_OR_RETURN(std::shared_ptr<void> buffer, logits_rows_->take(rows));
    if (buffer) return Tensor::borrow(buffer.get(), {rows, V}, DType::kF32, Device::cpu(), buffer);
    return Tensor::empty({rows, V}, DType::kF32);
}

struct MiniMaxTextModelCuda::Rank {
    int device = 0;
    ParallelMapping map;
    int64_t heads = 0, kv_heads = 0;  // this GPU's query and key/value heads
    IndexRange experts, vocab;        // this GPU's experts and vocabulary rows
    Tensor embed;                     // [V_r, H] bf16
    std::vector<std::unique_ptr<Layer>> layers;
    Tensor final_norm;                // [H] bf16
    Tensor lm_head;                   // [V_r, H] bf16 (the embedding slice when tied)
    // Every forward and decode step of this GPU runs on `stream` (a blocking stream: ordered with the legacy stream,
    // on which tensors are allocated, freed and copied; unlike it, capturable into CUDA graphs).
    cudaStream_t stream = nullptr;
    // Kept across forwards (calls are serialised and only this GPU's thread touches them), so a decode step
    // allocates nothing and copies to the device without waiting: the activations of short pieces
    // (<= kSmallPieceTokens tokens), one fp32 logits row [V_r], and the ids plus each piece's KV length staged in
    // pinned memory, sent in one asynchronous copy to `inputs_dev` (`inputs_sent` marks its completion).
    mutable PieceBuffers small;
    mutable Tensor logits_row;
    mutable PinnedHost inputs_host;
    mutable Tensor inputs_dev;  // i32
    mutable cudaEvent_t inputs_sent = nullptr;
    mutable Tensor sample_workspace;  // the GPU sampler's scratch (decode_sample), grown as needed
    mutable Tensor decode_logits;     // a batched decode step's fp32 logits [B, V_r], grown to the largest B
    mutable CudaGraphCache decode_graphs;  // decode steps captured per (B, attention splits)
    // Several GPUs: the stream on which long prefill pieces sum their partial rows (text/cuda/comm_overlap.h).
    std::unique_ptr<CommOverlap> overlap;
    ~Rank() {
        (void)cudaSetDevice(device);
        decode_graphs.clear();
        if (inputs_sent) cudaEventDestroy(inputs_sent);
        if (stream) {
            (void)cudaStreamSynchronize(stream);
            cuda::release_stream_plans(stream);
            (void)cudaStreamDestroy(stream);
        }
    }
};

namespace {

// Loading (uploads, quantisation, synthetic fills) runs on the legacy default stream, the caching allocator's; the
// forwards run on each rank's own stream (Rank::stream).
constexpr cudaStream_t kStream = nullptr;

Status check_config(const TextConfig& c) {
    if (c.layer_kinds.size() != static_cast<size_t>(c.num_layers))
        return invalid_argument("config: ", c.layer_kinds.size(), " layer kinds for ", c.num_layers, " layers");
    if (c.num_heads % c.num_kv_heads != 0)
        return invalid_argument("config: num_key_value_heads ", c.num_kv_heads, " does not divide num_attention_heads ",
                                c.num_heads);
    if (c.head_dim != 128)
        return unimplemented("the CUDA backend runs head_dim 128 (MiniMax-Text-01's); this config has ", c.head_dim);
    if (c.num_experts > cuda::kMoeMaxExperts)
        return unimplemented("the CUDA router takes at most ", cuda::kMoeMaxExperts, " experts; this config has ",
                             c.num_experts);
    if (c.hidden_size % 8 != 0 || c.intermediate_size % 8 != 0)
        return unimplemented("the CUDA kernels need hidden_size and intermediate_size multiples of 8");
    if (c.num_heads / c.num_kv_heads > 16) return unimplemented("the CUDA attention takes at most 16 query heads per kv head");
    return Status::ok();
}

// A host tensor (any float dtype, any strides: tensor-parallel ranks take slices) as `dtype` on the GPU: through a
// load's pinned staging (`staging`, ordered on the legacy stream; `label` names the tensor in errors), else
// converted on the host and copied synchronously (inputs at run time).
Expected<Tensor> upload(const Tensor& host, DType dtype, int device, CudaUploader* staging = nullptr,
                        std::string_view label = {}) {
    if (staging) return staging->upload(host, dtype, device, label);
    Tensor t = host;
    if (t.dtype() != dtype || !t.is_contiguous()) {
        VOLT_ASSIGN_OR_RETURN(t, t.to(dtype));
    }
    return t.to(Device::cuda(device));
}

// The part of `full` a rank holds (a view: the bytes are read when it is uploaded).
Expected<Tensor> take(const Tensor& full, const WeightSlice& slice) {
    if (slice.dim < 0) return full;
    return full.slice(slice.dim, slice.range.begin, slice.range.end());
}

Expected<Tensor> device_buffer(int64_t elements, DType dtype, int device) {
    auto t = Tensor::empty({std::max<int64_t>(elements, 1)}, dtype, Device::cuda(device));
    if (!t) return resource_exhausted("GPU ", device, ": cannot allocate ", elements * int64_t(dtype_size(dtype)),
                                      " bytes of activations (", t.status().message(), ")");
    return t;
}

uint16_t* bf16(const Tensor& t) { return static_cast<uint16_t*>(t.data()); }

// `b` sized for pieces of up to T tokens (kept when it already is): W this GPU's attention width, K experts per token.
Status reserve_piece(PieceBuffers& b, int64_t T, int64_t H, int64_t W, int64_t K, bool split_heads,
                     bool split_experts, int dev) {
    if (T <= b.tokens) return Status::ok();
    b.tokens = 0;  // stays 0 unless every buffer is allocated
    for (Tensor* t : {&b.h, &b.xn, &b.a, &b.yn, &b.mo}) {
        VOLT_ASSIGN_OR_RETURN(*t, device_buffer(T * H, DType::kBF16, dev));
    }
    VOLT_ASSIGN_OR_RETURN(b.wide, device_buffer(T * 3 * W, DType::kBF16, dev));
    for (Tensor* t : {&b.att, &b.gate, &b.gated}) {
        VOLT_ASSIGN_OR_RETURN(*t, device_buffer(T * W, DType::kBF16, dev));
    }
    VOLT_ASSIGN_OR_RETURN(b.expert_ids, device_buffer(T * K, DType::kI32, dev));
    VOLT_ASSIGN_OR_RETURN(b.expert_w, device_buffer(T * K, DType::kF32, dev));
    if (split_experts) {
        VOLT_ASSIGN_OR_RETURN(b.local_experts, device_buffer(T * K, DType::kI32, dev));
    }
    if (split_heads) {  // split heads come with a split vocabulary
        VOLT_ASSIGN_OR_RETURN(b.square_sums, device_buffer(T, DType::kF32, dev));
        VOLT_ASSIGN_OR_RETURN(b.local_ids, device_buffer(T, DType::kI32, dev));
    }
    b.tokens = T;
    return Status::ok();
}

// RESOURCE_EXHAUSTED (naming `what` and the numbers) unless `weight_bytes` plus `headroom` fit in the device's free
// memory: checked before anything is uploaded or generated. Makes `device` current.
Status check_fits_on_gpu(uint64_t weight_bytes, uint64_t headroom, int device, const std::string& what,
                         const char* advice) {
    size_t free_b = 0, total_b = 0;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaSetDevice(device)));
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemGetInfo(&free_b, &total_b)));
    if (weight_bytes + headroom <= free_b) return Status::ok();
    return resource_exhausted(what, ": the weights need ", weight_bytes >> 20, " MiB",
                              headroom ? str_cat(" (+ ", headroom >> 20, " MiB for activations)") : std::string(),
                              " on GPU ", device, ", which has ", free_b >> 20, " MiB free (", advice, ")");
}

// Bytes one GPU holds for the weight `spec` of local shape `shape`: bf16 (the router's fp32 counted as 2 bytes,
// as before), quantised expert matrices 1 byte per element plus their fp32 block scales.
uint64_t weight_bytes_on_gpu(const WeightSpec& spec, const Shape& shape, ExpertWeights experts) {
    const auto n = static_cast<uint64_t>(shape.numel());
    if (experts == ExpertWeights::kBf16 || spec.component != WeightComponent::kExperts) return n * 2;
    return n + static_cast<uint64_t>(cuda::block_scale_count(shape[0], shape[1])) * 4;
}

cuda::MoeWeightType moe_weight_type(ExpertWeights w) {
    switch (w) {
        case ExpertWeights::kFp8: return cuda::MoeWeightType::kFp8E4M3;
        case ExpertWeights::kInt8: return cuda::MoeWeightType::kInt8;
        default: return cuda::MoeWeightType::kBF16;
    }
}

// What the GPU holds beyond the final weights: while one expert loads, its three bf16 matrices before they are
// quantised (quantised) or the w1 | w3 block while w1 and w3 still sit apart (bf16); and from the first prefill on,
// the MoE's side-stream GEMM workspaces (FP8: 4 x 32 MiB).
uint64_t expert_staging_bytes(const TextConfig& c, ExpertWeights experts) {
    const auto matrix = static_cast<uint64_t>(c.intermediate_size * c.hidden_size * 2);
    return (experts != ExpertWeights::kBf16 ? 3 * matrix : 2 * matrix) +
           cuda::moe_side_stream_bytes(moe_weight_type(experts));
}

// bf16 [rows, cols] weights on `device`, stacked, as bytes of `type` (e4m3 or int8) + fp32 128 x 128 block scales
// (kernels/moe_cuda.h), each quantised on its own: q [sum rows, cols], scales [sum ceil(rows / 128), ceil(cols / 128)].
// w1 and w3 go as one such block: the FP8 prefill then runs one GEMM of N = 2I for both (MoeExpertsParams).
Status quantize_experts(std::initializer_list<const Tensor*> ws, int device, cuda::MoeWeightType type, Tensor& q,
                        Tensor& scales) {
    const int64_t C = (*ws.begin())->dim(1), B = cuda::kQuantBlockSize, cb = (C + B - 1) / B;
    int64_t rows = 0, block_rows = 0;
    for (const Tensor* w : ws) rows += w->dim(0), block_rows += (w->dim(0) + B - 1) / B;
    const DType bytes = type == cuda::MoeWeightType::kInt8 ? DType::kI8 : DType::kF8E4M3;
    VOLT_ASSIGN_OR_RETURN(q, Tensor::empty({rows, C}, bytes, Device::cuda(device)));
    VOLT_ASSIGN_OR_RETURN(scales, Tensor::empty({block_rows, cb}, DType::kF32, Device::cuda(device)));
    auto* out = static_cast<uint8_t*>(q.data());
    float* sc = scales.data_as<float>();
    for (const Tensor* w : ws) {
        const int64_t R = w->dim(0);
        VOLT_RETURN_IF_ERROR(cuda::run(
            cuda::BlockQuantizeParams{.type = type, .rows = R, .cols = C, .in = w->data(), .out = out, .scales = sc},
            kStream));
        out += R * C, sc += (R + B - 1) / B * cb;
    }
    return Status::ok();
}

// y[T, out] = x[T, in] W^T through cuBLASLt (bf16 in and out, fp32 accumulation).
Status linear(const void* x, int64_t T, const Tensor& W, void* y, cudaStream_t stream, int64_t ldy = 0) {
    const int64_t out = W.dim(0), in = W.dim(1);
    cuda::GemmParams g;
    g.m = T, g.n = out, g.k = in;
    g.a = x, g.lda = in;
    g.b = W.data(), g.ldb = in, g.b_transposed = true;
    g.c = y, g.ldc = ldy ? ldy : out;
    return cuda::run(g, stream);
}

}  // namespace

MiniMaxTextModelCuda::MiniMaxTextModelCuda() = default;
MiniMaxTextModelCuda::~MiniMaxTextModelCuda() {
    // Captured decode steps hold NCCL's resources for their collectives: they go (after their last launch) before the
    // communicators do, which wait for them.
    for (const auto& rk : ranks_) {
        (void)cudaSetDevice(rk->device);
        if (rk->stream) (void)cudaStreamSynchronize(rk->stream);
        rk->decode_graphs.clear();
    }
    comm_.reset();
}

int MiniMaxTextModelCuda::device() const { return ranks_.front()->device; }

Expected<std::vector<int>> MiniMaxTextModelCuda::local_devices(const CudaTextModelOptions& o) {
    if (o.gpus < 1) return invalid_argument("GPU count ", o.gpus, " must be at least 1");
    const int count = cuda_device_count();
    if (o.device_ids.empty()) {
        if (o.device < 0 || o.device + o.gpus > count)
            return invalid_argument(o.gpus == 1 ? str_cat("CUDA device ", o.device)
                                                : str_cat("GPUs ", o.device, "..", o.device + o.gpus - 1),
                                    " do not exist (this machine has ", count, " GPUs)");
        std::vector<int> ids(size_t(o.gpus));
        for (int i = 0; i < o.gpus; ++i) ids[size_t(i)] = o.device + i;
        return ids;
    }
    if (static_cast<int>(o.device_ids.size()) != o.gpus)
        return invalid_argument("device_ids lists ", o.device_ids.size(), " GPUs for a split over ", o.gpus);
    if (o.device_ids.front() != o.device)
        return invalid_argument("device_ids starts at GPU ", o.device_ids.front(), ", device is ", o.device);
    for (size_t i = 0; i < o.device_ids.size(); ++i) {
        const int d = o.device_ids[i];
        if (d < 0 || d >= count)
            return invalid_argument("device_ids entry ", i, ": GPU ", d, " does not exist (",
                                    count == 0 ? std::string("this machine has no CUDA GPU")
                                               : str_cat("this machine has ", count, " GPUs: 0..", count - 1),
                                    ")");
        for (size_t j = 0; j < i; ++j)
            if (o.device_ids[j] == d)
                return invalid_argument("device_ids entries ", j, " and ", i, " are both GPU ", d,
                                        ": each GPU holds one rank");
    }
    return o.device_ids;
}

const char* expert_placement_name(ExpertPlacement e) {
    switch (e) {
        case ExpertPlacement::kAuto: return "auto";
        case ExpertPlacement::kSliced: return "sliced";
        case ExpertPlacement::kSpread: return "spread";
        case ExpertPlacement::kReplicated: return "replicated";
    }
    return "unknown";
}

ExpertPlacement MiniMaxTextModelCuda::expert_placement(const TextConfig& c, const CudaTextModelOptions& o) {
    if (o.experts != ExpertPlacement::kAuto) return o.experts;
    return ParallelMapping::experts_slice_evenly(c, o.gpus * std::max(o.processes.size, 1)) ? ExpertPlacement::kSliced
                                                                                              : ExpertPlacement::kSpread;
}

Expected<std::vector<ParallelMapping>> MiniMaxTextModelCuda::mappings(const TextConfig& c,
                                                                      const CudaTextModelOptions& o) {
    if (!(o.max_unit_flops >= 1e9) || !std::isfinite(o.max_unit_flops))
        return invalid_argument("max_unit_flops (", o.max_unit_flops, ") must be a finite number of at least 1e9");
    VOLT_RETURN_IF_ERROR(local_devices(o).status());
    if (o.processes.size < 1 || o.processes.rank < 0 || o.processes.rank >= o.processes.size)
        return invalid_argument("process ", o.processes.rank, " of ", o.processes.size);
    // Process p holds ranks p * gpus .. p * gpus + gpus - 1 of the split over every process's GPUs.
    const ExpertPlacement placement = expert_placement(c, o);
    if (placement != ExpertPlacement::kSliced && placement != ExpertPlacement::kSpread &&
        placement != ExpertPlacement::kReplicated)
        return invalid_argument("expert placement ", static_cast<int>(o.experts), " is not one of auto, sliced, "
                                "spread, replicated");
    const int tp = o.gpus * o.processes.size;
    std::vector<ParallelMapping> maps;
    for (int i = 0; i < o.gpus; ++i) {
        ParallelMapping m{.tp_size = tp,
                          .ep_size = placement == ExpertPlacement::kSpread ? tp : 1,
                          .rank = o.processes.rank * o.gpus + i,
                          .slice_experts = placement == ExpertPlacement::kSliced};
        VOLT_RETURN_IF_ERROR(m.validate(c));
        maps.push_back(m);
    }
    return maps;
}

Expected<std::unique_ptr<MiniMaxTextModelCuda>> MiniMaxTextModelCuda::load(const std::filesystem::path& dir,
                                                                           const CudaTextModelOptions& options) {
    VOLT_ASSIGN_OR_RETURN(TextCheckpoint tc, open_text_checkpoint(dir, options.language_model_of_vl));
    const ModelConfig& mc = tc.config;
    const Checkpoint& ck = tc.checkpoint;
    const std::string& prefix = tc.prefix;
    // bf16 weights on each GPU (the router gate fp32): refuse before uploading what would not fit.
    auto maps = mappings(mc.text, options);
    if (!maps) return maps.status().with_context(dir.string());
    VOLT_ASSIGN_OR_RETURN(const std::vector<int> devices, local_devices(options));
    uint64_t total = 0;  // what the progress counts: the slices this process reads, in checkpoint elements
    for (const ParallelMapping& m : *maps) {
        for (const WeightSpec& s : minimax_text_weight_specs(mc.text)) {
            const WeightSlice slice = m.slice_of(s.name, mc.text);
            if (ck.find(prefix + s.name) && !slice.absent) total += static_cast<uint64_t>(slice.shape_of(s.shape).numel());
        }
        uint64_t need = 0;
        for (const WeightSpec& s : minimax_text_weight_specs(mc.text))
            if (ck.find(prefix + s.name))
                need += weight_bytes_on_gpu(s, m.slice_of(s.name, mc.text).shape_of(s.shape), options.expert_weights);
        VOLT_RETURN_IF_ERROR(check_fits_on_gpu(need, expert_staging_bytes(mc.text, options.expert_weights),
                                               devices[size_t(m.rank % options.gpus)], ck.description(),
                                               "use more GPUs"));
    }
    const Checkpoint* ckp = &ck;
    LoadCounter counter(options.progress, total);
    CudaUploader staging;
    VOLT_ASSIGN_OR_RETURN(auto model, build(mc.text, [ckp, prefix, &counter, &staging](const std::string& name,
                                                                                     DType dtype,
                                                                                     const WeightSlice& slice,
                                                                                     int device) -> Expected<Tensor> {
        VOLT_ASSIGN_OR_RETURN(Tensor t, ckp->view(prefix + name));
        VOLT_ASSIGN_OR_RETURN(Tensor part, take(t, slice));
        VOLT_ASSIGN_OR_RETURN(Tensor up, upload(part, dtype, device, &staging, prefix + name));
        VOLT_RETURN_IF_ERROR(counter.add(static_cast<uint64_t>(part.numel())));
        return up;
    }, options));
    VOLT_RETURN_IF_ERROR(staging.finish());
    VOLT_RETURN_IF_ERROR(counter.finish());
    return model;
}

Expected<std::unique_ptr<MiniMaxTextModelCuda>> MiniMaxTextModelCuda::from_tensors(
    const TextConfig& config, const std::unordered_map<std::string, Tensor>& tensors, const CudaTextModelOptions& options,
    const std::string& label) {
    VOLT_RETURN_IF_ERROR(bind_tensors(tensors, minimax_text_weight_specs(config)).to_status(label));
    CudaUploader staging;
    VOLT_ASSIGN_OR_RETURN(auto model, build(config, [&tensors, &staging](const std::string& name, DType dtype,
                                                                         const WeightSlice& slice,
                                                                         int device) -> Expected<Tensor> {
        VOLT_ASSIGN_OR_RETURN(Tensor part, take(tensors.at(name), slice));
        return upload(part, dtype, device, &staging, name);
    }, options));
    VOLT_RETURN_IF_ERROR(staging.finish());
    return model;
}

Expected<std::unique_ptr<MiniMaxTextModelCuda>> MiniMaxTextModelCuda::synthetic(const TextConfig& config,
                                                                               const CudaTextModelOptions& options,
                                                                               uint64_t seed) {
    VOLT_RETURN_IF_ERROR(check_config(config));
    VOLT_ASSIGN_OR_RETURN(std::vector<ParallelMapping> maps, mappings(config, options));
    VOLT_ASSIGN_OR_RETURN(const std::vector<int> devices, local_devices(options));
    std::unordered_map<std::string, WeightSpec> specs;
    for (const WeightSpec& s : minimax_text_weight_specs(config))
        if (!s.optional) specs.emplace(s.name, s);
    // With room for activations: a synthetic model exists to be run.
    for (const ParallelMapping& m : maps) {
        uint64_t need = 0;
        for (const auto& [name, s] : specs)
            need += weight_bytes_on_gpu(s, m.slice_of(name, config).shape_of(s.shape), options.expert_weights);
        VOLT_RETURN_IF_ERROR(check_fits_on_gpu(need, (uint64_t{2} << 30) + expert_staging_bytes(config, options.expert_weights),
                                               devices[size_t(m.rank % options.gpus)], "synthetic model",
                                               "use fewer layers or more GPUs"));
    }
    // Each GPU draws its own slices: the split model is a random model, not a split of one drawn whole.
    uint64_t counter = seed * 1000003;
    return build(config, [&specs, &counter](const std::string& name, DType dtype, const WeightSlice& slice,
                                           int device) -> Expected<Tensor> {
        const WeightSpec& s = specs.at(name);
        VOLT_ASSIGN_OR_RETURN(Tensor t, Tensor::empty(slice.shape_of(s.shape), dtype, Device::cuda(device)));
        const bool norm = s.shape.rank() == 1;
        cuda::RandomFillParams f;
        f.out = t.data();
        f.bf16 = dtype == DType::kBF16;
        f.n = t.numel();
        f.scale = norm ? 0.1f
                  : s.component == WeightComponent::kEmbedding ? 1.0f
                                                                : 1.0f / std::sqrt(float(s.shape[s.shape.rank() - 1]));
        f.offset = norm ? 1.0f : 0.0f;
        f.seed = ++counter;
        VOLT_RETURN_IF_ERROR(cuda::run(f, kStream));
        return t;
    }, options);
}

Expected<std::unique_ptr<MiniMaxTextModelCuda>> MiniMaxTextModelCuda::build(const TextConfig& c,
                                                                            const DeviceLookup& get,
                                                                            const CudaTextModelOptions& options) {
    VOLT_RETURN_IF_ERROR(check_config(c));
    VOLT_ASSIGN_OR_RETURN(std::vector<ParallelMapping> maps, mappings(c, options));
    VOLT_ASSIGN_OR_RETURN(const std::vector<int> devices, local_devices(options));
    std::unique_ptr<MiniMaxTextModelCuda> m(new MiniMaxTextModelCuda());
    m->config_ = c;
    for (const ParallelMapping& map : maps) {
        auto rk = std::make_unique<Rank>();
        rk->device = devices[size_t(map.rank % options.gpus)];  // this process's (map.rank % gpus)-th GPU
        rk->map = map;
        rk->heads = map.heads(c).size;
        rk->kv_heads = map.kv_heads(c).size;
        rk->experts = map.experts(c);
        rk->vocab = map.vocab(c);
        const int dev = rk->device;
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaSetDevice(dev)));
        auto weight = [&](const std::string& name, DType dtype) { return get(name, dtype, map.slice_of(name, c), dev); };
        auto bf = [&](const std::string& name) { return weight(name, DType::kBF16); };
        const std::string p = "model.";
        VOLT_ASSIGN_OR_RETURN(rk->embed, bf(p + "embed_tokens.weight"));
        for (int l = 0; l < c.num_layers; ++l) {
            const std::string lp = p + "layers." + std::to_string(l) + ".";
            auto L = std::make_unique<Layer>();
            L->kind = c.layer_kinds[l];
            VOLT_ASSIGN_OR_RETURN(L->input_norm, bf(lp + "input_layernorm.weight"));
            VOLT_ASSIGN_OR_RETURN(L->post_norm, bf(lp + "post_attention_layernorm.weight"));
            if (L->kind == LayerKind::kLightning) {
                VOLT_ASSIGN_OR_RETURN(L->qkv, bf(lp + "self_attn.qkv_proj.weight"));
                VOLT_ASSIGN_OR_RETURN(L->output_gate, bf(lp + "self_attn.output_gate.weight"));
                VOLT_ASSIGN_OR_RETURN(L->norm, bf(lp + "self_attn.norm.weight"));
                VOLT_ASSIGN_OR_RETURN(L->out_proj, bf(lp + "self_attn.out_proj.weight"));
                // The layer index counts every layer (softmax ones too), per the decay rule; this GPU's heads.
                std::vector<float> s =
                    lightning_decay_slopes(l, static_cast<int>(c.num_layers), static_cast<int>(c.num_heads));
                const IndexRange h = map.heads(c);
                Tensor host = Tensor::borrow(s.data() + h.begin, {h.size}, DType::kF32);
                VOLT_ASSIGN_OR_RETURN(L->slopes, host.to(Device::cuda(dev)));
            } else {
                VOLT_ASSIGN_OR_RETURN(L->q_proj, bf(lp + "self_attn.q_proj.weight"));
                VOLT_ASSIGN_OR_RETURN(L->k_proj, bf(lp + "self_attn.k_proj.weight"));
                VOLT_ASSIGN_OR_RETURN(L->v_proj, bf(lp + "self_attn.v_proj.weight"));
                VOLT_ASSIGN_OR_RETURN(L->o_proj, bf(lp + "self_attn.o_proj.weight"));
            }
            VOLT_ASSIGN_OR_RETURN(L->router, weight(lp + "block_sparse_moe.gate.weight", DType::kF32));
            L->weight_type = moe_weight_type(options.expert_weights);
            for (int64_t e = rk->experts.begin; e < rk->experts.end(); ++e) {
                const std::string ep = lp + "block_sparse_moe.experts." + std::to_string(e) + ".";
                VOLT_ASSIGN_OR_RETURN(Tensor w1, bf(ep + "w1.weight"));
                VOLT_ASSIGN_OR_RETURN(Tensor w3, bf(ep + "w3.weight"));
                VOLT_ASSIGN_OR_RETURN(Tensor w2, bf(ep + "w2.weight"));
                if (L->weight_type != cuda::MoeWeightType::kBF16) {
                    // Quantised on the GPU (w1 | w3 as one block); the bf16 copies go at the end of the iteration.
                    Tensor q13, s13, q2, s2;
                    VOLT_RETURN_IF_ERROR(quantize_experts({&w1, &w3}, dev, L->weight_type, q13, s13));
                    VOLT_RETURN_IF_ERROR(quantize_experts({&w2}, dev, L->weight_type, q2, s2));
                    const int64_t B = cuda::kQuantBlockSize;
                    L->w1p.push_back(q13.data());
                    L->w3p.push_back(static_cast<const uint8_t*>(q13.data()) + w1.numel());
                    L->w2p.push_back(q2.data());
                    L->s1p.push_back(s13.data_as<float>());
                    L->s3p.push_back(s13.data_as<float>() + (w1.dim(0) + B - 1) / B * ((w1.dim(1) + B - 1) / B));
                    L->s2p.push_back(s2.data_as<float>());
                    L->w1.push_back(std::move(q13)), L->s1.push_back(std::move(s13));
                    L->w2.push_back(std::move(q2)), L->s2.push_back(std::move(s2));
                    continue;
                }
                // bf16: w1 | w3 as one [2I, H] block as well (the prefill's GEMM path then runs one GEMM of N = 2I).
                VOLT_ASSIGN_OR_RETURN(Tensor w13, Tensor::empty({2 * w1.dim(0), w1.dim(1)}, DType::kBF16,
                                                                Device::cuda(dev)));
                auto* w13b = static_cast<char*>(w13.data());
                VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(
                    cudaMemcpyAsync(w13b, w1.data(), w1.nbytes(), cudaMemcpyDeviceToDevice, kStream)));
                VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(
                    cudaMemcpyAsync(w13b + w1.nbytes(), w3.data(), w3.nbytes(), cudaMemcpyDeviceToDevice, kStream)));
                L->w1p.push_back(w13b);
                L->w3p.push_back(w13b + w1.nbytes());
                L->w2p.push_back(w2.data());
                L->w1.push_back(std::move(w13));
                L->w2.push_back(std::move(w2));
            }
            rk->layers.push_back(std::move(L));
        }
        VOLT_ASSIGN_OR_RETURN(rk->final_norm, bf(p + "norm.weight"));
        if (c.tie_word_embeddings) {
            rk->lm_head = rk->embed;
        } else {
            VOLT_ASSIGN_OR_RETURN(rk->lm_head, bf("lm_head.weight"));
        }
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaStreamCreateWithFlags(&rk->stream, cudaStreamDefault)));
        if (rk->map.tp_size > 1) {
            VOLT_ASSIGN_OR_RETURN(rk->overlap, CommOverlap::create());
        }
        m->ranks_.push_back(std::move(rk));
    }
    // VOLT_CUDA_GRAPHS=0: off, for A/B timing.
    m->graphs_ = options.cuda_graphs && env_choice("VOLT_CUDA_GRAPHS", {{"0", false}, {"1", true}}, true);
    m->token_records_ = env_choice("VOLT_TOKEN_RECORDS", {{"0", false}, {"1", true}}, true);
    // VOLT_TP_OVERLAP=0: a split model's sums in one collective each on the compute stream, for A/B timing.
    m->overlap_comm_ = options.comm_overlap && env_choice("VOLT_TP_OVERLAP", {{"0", false}, {"1", true}}, true);
    m->processes_ = options.processes.size;
    m->unit_flops_ = options.max_unit_flops;
    if (maps.front().tp_size > 1) {  // the ranks' GPUs, in rank order
        VOLT_ASSIGN_OR_RETURN(m->comm_, NcclGroup::create(devices, options.processes));
        if (devices.size() > 1) m->threads_ = std::make_unique<RankThreads>(static_cast<int>(devices.size()));
    }
    return m;
}

Expected<SequenceCache> MiniMaxTextModelCuda::new_cache(int64_t max_tokens) const {
    if (max_tokens < 1) return invalid_argument("cache size ", max_tokens, " must be positive");
    SequenceCache cache;
    cache.set_max_tokens(max_tokens);
    cache.set_kv_storage(Device::cuda(device()), DType::kBF16);
    const int64_t D = config_.head_dim;
    for (const auto& rk : ranks_) {
        for (const auto& L : rk->layers) {
            LayerCache lc;
            lc.head_dim = D;
            lc.kv_device = Device::cuda(rk->device);
            if (L->kind == LayerKind::kLightning) {
                auto s = Tensor::zeros({rk->heads, D, D}, DType::kF32, Device::cuda(rk->device));
                if (!s)
                    return resource_exhausted("GPU ", rk->device, ": cannot allocate a lightning state: ",
                                              s.status().message());
                lc.state = std::move(*s);
            } else {
                lc.kv_heads = rk->kv_heads;
            }
            cache.layers.push_back(std::move(lc));
        }
    }
    if (token_records_) {
        // The ids run, as a set, where tokens are picked (TokenRecord): 25 KB at MiniMax's vocabulary.
        auto bits = Tensor::zeros({(config_.vocab_size + 31) / 32}, DType::kI32, Device::cuda(device()));
        if (!bits)
            return resource_exhausted("GPU ", device(), ": cannot allocate a token record: ", bits.status().message());
        cache.token_record.bits = std::move(*bits);
    }
    return cache;
}

Expected<Tensor> MiniMaxTextModelCuda::forward(std::span<const int32_t> ids, SequenceCache& cache, LogitsMode mode,
                                               const CancelCheck& cancelled) const {
    // One token with its logits (a Session's decode step): the batched decode step of one sequence, which replays a
    // CUDA graph (decode() checks the id and the cache). Its logits are the same [1, V] fp32 row.
    if (ids.size() == 1 && mode != LogitsMode::kNone) {
        SequenceCache* const one[1] = {&cache};
        return decode(ids, one, cancelled);
    }
    VOLT_RETURN_IF_ERROR(check_token_ids(ids, config_.vocab_size));
    Tensor host = Tensor::borrow(const_cast<int32_t*>(ids.data()), {static_cast<int64_t>(ids.size())}, DType::kI32);
    return run(host, /*from_ids=*/true, cache, mode, cancelled);
}

Expected<Tensor> MiniMaxTextModelCuda::embed(std::span<const int32_t> ids) const {
    VOLT_RETURN_IF_ERROR(check_token_ids(ids, config_.vocab_size));
    std::lock_guard<std::mutex> lock(mu_);
    VOLT_RETURN_IF_ERROR(check_usable());
    const int64_t n = static_cast<int64_t>(ids.size()), H = config_.hidden_size;
    Tensor host_ids = Tensor::borrow(const_cast<int32_t*>(ids.data()), {n}, DType::kI32);
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({n, H}, DType::kBF16));
    VOLT_RETURN_IF_ERROR(on_ranks([&](int r) -> Status {
        const Rank& rk = *ranks_[r];
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaSetDevice(rk.device)));
        VOLT_ASSIGN_OR_RETURN(Tensor dev_ids, host_ids.to(Device::cuda(rk.device)));
        VOLT_ASSIGN_OR_RETURN(Tensor rows, Tensor::empty({n, H}, DType::kBF16, Device::cuda(rk.device)));
        VOLT_RETURN_IF_ERROR(gather_embeddings(rk, dev_ids.data_as<int32_t>(), n, rows.data()));
        if (r == 0) VOLT_RETURN_IF_ERROR(out.copy_from(rows));
        return Status::ok();
    }));
    return out.to(DType::kF32);
}

Expected<Tensor> MiniMaxTextModelCuda::forward_embeddings(const Tensor& embeds, SequenceCache& cache,
                                                          LogitsMode mode, const CancelCheck& cancelled) const {
    if (!embeds.device().is_cpu() || embeds.rank() != 2 || embeds.dim(1) != config_.hidden_size || embeds.dim(0) < 1 ||
        !dtype_is_float(embeds.dtype()))
        return invalid_argument("input embeddings must be a floating-point CPU tensor [n >= 1, hidden ",
                                config_.hidden_size, "], got ", embeds.to_string());
    return run(embeds, /*from_ids=*/false, cache, mode, cancelled);
}

// Where every GPU stops after a cancel. Each rank asks before queueing half-layer `step` (attention or MoE, counted
// over the whole forward); a rank that has asked about step p may have queued step p with its collectives, so once
// the cancel is seen the stop is put after the furthest step any other rank has started (or at the asker's own step
// when no other rank is that far), and every rank stops there: no rank waits in a collective the others never join.
class MiniMaxTextModelCuda::StopPoint {
public:
    StopPoint(const CancelCheck& cancelled, int ranks) : cancelled_(cancelled), asked_(size_t(ranks), -1) {}
    bool active() const { return static_cast<bool>(cancelled_); }
    bool requested() {  // the cancel check itself (several processes agree through a collective instead)
        std::lock_guard<std::mutex> lock(mu_);
        return cancelled_ && cancelled_();
    }
    bool stop_before(int rank, int64_t step) {
        if (!cancelled_) return false;
        std::lock_guard<std::mutex> lock(mu_);
        return ask(rank, step);
    }
    // Before queueing steps 0 .. steps - 1 at once (a CUDA graph of a decode step): asked about step 0 and, going
    // on, counted as having started the last one, so a rank that sees the cancel later stops after all of them.
    // Every rank of the step must ask this way (DecodePlan decides for all of them).
    bool stop_before_all(int rank, int64_t steps) {
        if (!cancelled_) return false;
        std::lock_guard<std::mutex> lock(mu_);
        if (ask(rank, 0)) return true;
        asked_[size_t(rank)] = steps - 1;
        return false;
    }

private:
    static constexpr int64_t kNever = INT64_MAX;
    const CancelCheck& cancelled_;
    std::mutex mu_;
    std::vector<int64_t> asked_;
    int64_t stop_ = kNever;

    bool ask(int rank, int64_t step) {  // under mu_
        asked_[size_t(rank)] = step;
        if (stop_ == kNever && cancelled_()) {
            int64_t others = -1;
            for (size_t r = 0; r < asked_.size(); ++r)
                if (r != size_t(rank)) others = std::max(others, asked_[r]);
            stop_ = std::max(step, others + 1);
        }
        return step >= stop_;
    }
};

Status MiniMaxTextModelCuda::check_usable() const {
    if (comm_ && comm_->aborted())
        return internal_error("the model's GPUs stopped after an earlier failure; load the model again");
    return Status::ok();
}

Status MiniMaxTextModelCuda::check_cache(const SequenceCache& cache) const {
    const size_t L = static_cast<size_t>(config_.num_layers);
    if (cache.layers.size() != L * ranks_.size())
        return invalid_argument("cache has ", cache.layers.size(), " layers, the model ", L * ranks_.size(),
                                ranks_.size() > 1 ? str_cat(" (", L, " on each of ", ranks_.size(), " GPUs)") : "");
    bool ours = cache.kv_device() == Device::cuda(device()) && cache.kv_dtype() == DType::kBF16;
    for (size_t i = 0; ours && i < cache.layers.size(); ++i)
        ours = cache.layers[i].kv_device == Device::cuda(ranks_[i / L]->device);
    if (!ours) return invalid_argument("the cache is not this model's (it lives on ", cache.kv_device().to_string(), ")");
    return Status::ok();
}

uint32_t* MiniMaxTextModelCuda::record_bits(const SequenceCache& cache) const {
    const Tensor& bits = cache.token_record.bits;
    if (!token_records_ || !bits.defined() || bits.device() != Device::cuda(device()) || bits.dtype() != DType::kI32 ||
        bits.numel() != (config_.vocab_size + 31) / 32)
        return nullptr;
    return static_cast<uint32_t*>(const_cast<void*>(bits.data()));
}

Expected<Tensor> MiniMaxTextModelCuda::run(const Tensor& input, bool from_ids, SequenceCache& cache,
                                           LogitsMode mode, const CancelCheck& cancelled) const {
    VOLT_RETURN_IF_ERROR(check_cache(cache));
    std::lock_guard<std::mutex> lock(mu_);
    VOLT_RETURN_IF_ERROR(check_usable());
    const int64_t n = input.dim(0), V = config_.vocab_size;
    VOLT_RETURN_IF_ERROR(cache.reserve(cache.length() + n));
    Tensor logits;
    const int64_t rows = mode == LogitsMode::kAll ? n : 1;
    if (mode != LogitsMode::kNone && rows == 1) {
        // One row (decode steps, prompts): into a pinned buffer the caller's tensor keeps.
        VOLT_ASSIGN_OR_RETURN(logits, host_logits(1));
    } else if (mode != LogitsMode::kNone) {
        VOLT_ASSIGN_OR_RETURN(logits, Tensor::empty({rows, V}, DType::kF32));
    }
    // Short inputs (decode steps) run as one piece without asking every GPU for its free memory.
    const int64_t chunk = n <= kMinChunkTokens ? n : chunk_tokens(cache.length() + n);
    StopPoint stop(cancelled, gpus());
    // The ids join the cache's record while it covers every token so far (run_rank adds them on the first GPU);
    // embeddings have no ids, so the record falls behind.
    const bool record = from_ids && record_bits(cache) && cache.token_record_valid();
    VOLT_RETURN_IF_ERROR(on_ranks([&](int r) {
        return run_rank(r, input, from_ids, cache, chunk, mode, logits.defined() ? logits.data_as<float>() : nullptr,
                        &stop, record);
    }));
    if (record) cache.token_record.after_ids(std::span(input.data_as<int32_t>(), size_t(n)));
    cache.advance(n);
    return logits;
}

Status MiniMaxTextModelCuda::run_rank(int r, const Tensor& input, bool from_ids, SequenceCache& cache, int64_t chunk,
                                      LogitsMode mode, float* host_logits, StopPoint* stop, bool record) const {
    const Rank& rk = *ranks_[r];
    const int dev = rk.device;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaSetDevice(dev)));
    const int64_t n = input.dim(0), H = config_.hidden_size, Vr = rk.vocab.size;
    if (processes_ > 1 && n > kMinChunkTokens) {
        // Every process must cut the input into the same pieces (the same collectives): the smallest piece wins.
        VOLT_ASSIGN_OR_RETURN(chunk, agree(rk, static_cast<int32_t>(chunk), ReduceOp::kMin));
    }
    const int64_t pieces = (n + chunk - 1) / chunk, past = cache.length();
    // The KV length after each piece, then the ids: staged in pinned memory and sent in one asynchronous copy (the
    // last forward's copy out of the staging buffer has finished before it is written again).
    const int64_t staged = pieces + (from_ids ? n : 0);
    VOLT_RETURN_IF_ERROR(stage_inputs(rk, static_cast<size_t>(staged) * sizeof(int32_t)));
    auto* staging = static_cast<int32_t*>(rk.inputs_host.ptr);
    for (int64_t i = 0; i < pieces; ++i) staging[i] = static_cast<int32_t>(past + std::min(n, (i + 1) * chunk));
    if (from_ids) std::copy_n(input.data_as<int32_t>(), n, staging + pieces);
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemcpyAsync(rk.inputs_dev.data(), staging,
                                                          static_cast<size_t>(staged) * sizeof(int32_t),
                                                          cudaMemcpyHostToDevice, rk.stream)));
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventRecord(rk.inputs_sent, rk.stream)));
    const int32_t* kv_lens = rk.inputs_dev.data_as<int32_t>();
    Tensor embeds;  // the whole input on this GPU as bf16
    if (!from_ids) {
        VOLT_ASSIGN_OR_RETURN(embeds, upload(input, DType::kBF16, dev));
    }
    const int64_t rows = mode == LogitsMode::kAll ? n : 1;
    float* logits_dev = nullptr;  // this GPU's vocabulary columns [rows, V_r]
    Tensor logits_rows;
    if (mode != LogitsMode::kNone && rows == 1) {
        if (!rk.logits_row.data()) {
            VOLT_ASSIGN_OR_RETURN(rk.logits_row, device_buffer(Vr, DType::kF32, dev));
        }
        logits_dev = rk.logits_row.data_as<float>();
    } else if (mode != LogitsMode::kNone) {
        VOLT_ASSIGN_OR_RETURN(logits_rows, device_buffer(rows * Vr, DType::kF32, dev));
        logits_dev = logits_rows.data_as<float>();
    }
    const size_t L = static_cast<size_t>(config_.num_layers);
    std::span<LayerCache> caches(cache.layers.data() + static_cast<size_t>(r) * L, L);
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t m = std::min(chunk, n - c0), piece = c0 / chunk;
        const bool last_chunk = c0 + m == n;
        float* out = nullptr;
        if (mode == LogitsMode::kAll) out = logits_dev + c0 * Vr;
        else if (mode == LogitsMode::kLast && last_chunk) out = logits_dev;
        const void* ids = from_ids ? kv_lens + pieces + c0 : nullptr;
        const void* emb = from_ids ? nullptr : static_cast<const uint16_t*>(embeds.data()) + c0 * H;
        VOLT_RETURN_IF_ERROR(run_chunk(rk, ids, emb, m, caches, past + c0, kv_lens + piece, out,
                                       mode == LogitsMode::kAll, stop, piece));
    }
    if (record && r == 0) {
        VOLT_RETURN_IF_ERROR(cuda::run(cuda::RecordIdsParams{.ids = kv_lens + pieces, .n = n,
                                                             .vocab_size = config_.vocab_size,
                                                             .record = record_bits(cache)},
                                       rk.stream));
    }
    // This GPU's columns into the host rows, then the end of its forward.
    if (mode != LogitsMode::kNone) VOLT_RETURN_IF_ERROR(logits_to_host(rk, r, logits_dev, rows, host_logits));
    return VOLT_CUDA_STATUS(cudaStreamSynchronize(rk.stream));
}

Status MiniMaxTextModelCuda::stage_inputs(const Rank& rk, size_t bytes) const {
    if (!rk.inputs_sent)
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventCreateWithFlags(&rk.inputs_sent, cudaEventDisableTiming)));
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventSynchronize(rk.inputs_sent)));
    if (rk.inputs_host.bytes < bytes) {
        // Grown by at least half: the histories of penalised rows lengthen by one id per decode step, and a moved
        // buffer makes the captured decode steps stale.
        const size_t cap = std::max<size_t>({bytes, rk.inputs_host.bytes * 3 / 2, 256});
        VOLT_RETURN_IF_ERROR(rk.inputs_host.grow(cap));
        VOLT_ASSIGN_OR_RETURN(rk.inputs_dev, device_buffer(static_cast<int64_t>((cap + 3) / 4), DType::kI32, rk.device));
    }
    return Status::ok();
}

Status MiniMaxTextModelCuda::logits_to_host(const Rank& rk, int r, const float* logits_dev, int64_t rows,
                                            float* host) const {
    if (processes_ > 1) return gather_logits(rk, logits_dev, rows, r == 0 ? host : nullptr, /*to_host=*/true);
    const int64_t V = config_.vocab_size, Vr = rk.vocab.size;
    return VOLT_CUDA_STATUS(cudaMemcpy2DAsync(host + rk.vocab.begin, static_cast<size_t>(V) * 4, logits_dev,
                                              static_cast<size_t>(Vr) * 4, static_cast<size_t>(Vr) * 4,
                                              static_cast<size_t>(rows), cudaMemcpyDeviceToHost, rk.stream));
}

// One batched decode step's tables on one GPU (device memory, sent with the ids in one copy).
struct MiniMaxTextModelCuda::DecodeBatch {
    int B = 0;
    const int32_t* positions = nullptr;  // [B]: each sequence's new position (its cache length before the step)
    const int32_t* kv_lens = nullptr;    // [B]: positions + 1
    // [layers][2][B] pointers into the caches on this GPU: a lightning layer's states in its first B entries, a
    // softmax layer's key rows then value rows.
    void* const* tables = nullptr;
    int64_t max_kv = 0;                  // host: the longest sequence's keys after the step
    void* const* layer(size_t l) const { return tables + l * 2 * size_t(B); }
};

Status MiniMaxTextModelCuda::check_decode(std::span<const int32_t> ids, std::span<SequenceCache* const> caches) const {
    VOLT_RETURN_IF_ERROR(check_decode_batch(ids, caches, config_.vocab_size));
    if (ids.size() > 65535) return invalid_argument("decode batch of ", ids.size(), " sequences: at most 65535");
    for (SequenceCache* c : caches) VOLT_RETURN_IF_ERROR(check_cache(*c));
    return Status::ok();
}

namespace {

size_t align8(size_t n) { return (n + 7) / 8 * 8; }

// One decode step's staging on one GPU (pinned host memory, mirrored on the GPU at the same offsets, 8-byte
// aligned): ids, positions, KV lengths (int32 [B] each), the pointer tables [L][2][B], the rows' token records
// ([B] pointers, null where a row's is not kept this step); when this GPU picks the ids, the draws (f64 [B]), the
// history lengths (int32 [B], -1 for a row whose penalty reads its record) and the staged histories (int32 [B, S]),
// then (device only) the picked ids. A CUDA graph of the step reads the tables at these offsets, which depend on B
// and L only.
struct DecodeLayout {
    size_t tables = 0, records = 0, uniform = 0, lens = 0, history = 0;
    size_t sent = 0;    // bytes copied up
    size_t picked = 0;  // device only
    size_t total = 0;
};

DecodeLayout decode_layout(size_t B, size_t L, size_t S, bool sample) {
    DecodeLayout d;
    d.tables = align8(3 * B * sizeof(int32_t));
    d.records = d.tables + L * 2 * B * sizeof(void*);
    const size_t records_end = d.records + B * sizeof(void*);
    d.uniform = records_end;
    d.lens = d.uniform + B * sizeof(double);
    d.history = d.lens + B * sizeof(int32_t);
    d.sent = sample ? d.history + B * S * sizeof(int32_t) : records_end;
    d.picked = align8(d.sent);
    d.total = sample ? d.picked + B * sizeof(int32_t) : d.sent;
    return d;
}

using RecordUse = TokenRecord::Use;

const CancelCheck kNeverCancelled;

}  // namespace

// Decided before any GPU starts (under mu_), so that either every GPU replays its captured graph or every GPU runs
// eagerly: their stop points must agree (StopPoint::stop_before_all).
struct MiniMaxTextModelCuda::DecodePlan {
    size_t history = 0;                      // S: the longest history a penalised row stages (the picking GPU's)
    std::vector<RecordUse> records;          // per row
    std::vector<uint32_t*> record_bits;      // per row: its record's bits where it is used (kAdd, kRebuild), else null
    bool any_record = false;                 // some row's record is used
    int64_t max_kv = 0;                      // the longest sequence's keys after the step
    bool capture = false;                    // CUDA graphs for this B: capture the step after running it eagerly
    bool replay = false;                     // every GPU has a graph for its key: launch those
    std::vector<std::array<int64_t, 2>> keys;  // per GPU: (B, attention splits)
    std::vector<cudaGraphExec_t> graphs;     // per GPU, when replaying
};

// The device buffers a captured decode step reads and writes besides the caches and weights (which it reaches
// through the staged tables, or which never move). All of them only grow, so a graph whose buffers are at the same
// addresses now is valid: everything it touches is still there and large enough.
std::array<const void*, 4> MiniMaxTextModelCuda::graph_buffers(const Rank& rk) {
    return {rk.small.h.data(), rk.small.workspace.data(), rk.inputs_dev.data(), rk.decode_logits.data()};
}

Expected<Tensor> MiniMaxTextModelCuda::decode_step(std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                                                   bool rows, std::span<const TokenPick> picks, int32_t* picked,
                                                   const CancelCheck& cancelled) const {
    std::lock_guard<std::mutex> lock(mu_);
    VOLT_RETURN_IF_ERROR(check_usable());
    // KV rows for the new token first (a grown cache moves its rows, so the tables are built after this).
    for (SequenceCache* c : caches) VOLT_RETURN_IF_ERROR(c->reserve(c->length() + 1));
    Tensor logits;
    if (rows) {
        VOLT_ASSIGN_OR_RETURN(logits, host_logits(static_cast<int64_t>(ids.size())));
    }
    const DecodeOutput output{.host_logits = rows ? logits.data_as<float>() : nullptr, .picks = picks, .picked = picked};
    VOLT_ASSIGN_OR_RETURN(const DecodePlan plan, plan_decode(ids, caches, output));
    StopPoint stop(cancelled, gpus());
    // A split model's replayed step holds NCCL collectives: no GPU launches it until every GPU's host work succeeded.
    AllReadyGate gate(gpus());
    VOLT_RETURN_IF_ERROR(on_ranks([&](int r) { return decode_rank(r, ids, caches, output, plan, &stop, &gate); }));
    for (size_t b = 0; b < caches.size(); ++b) {
        const bool penalised = output.picked && output.picks[b].sampling.repetition_penalty != 1.0f;
        const auto history = penalised ? output.picks[b].history : std::span<const int32_t>();
        caches[b]->token_record.after_step(plan.records[b], caches[b]->length(), history, ids[b]);
        if (penalised && plan.records[b] != RecordUse::kAdd) history_ids_staged_ += history.size();
        caches[b]->advance(1);
    }
    graph_replays_ += plan.replay;
    return logits;
}

Expected<MiniMaxTextModelCuda::DecodePlan> MiniMaxTextModelCuda::plan_decode(std::span<const int32_t> ids,
                                                                             std::span<SequenceCache* const> caches,
                                                                             const DecodeOutput& output) const {
    DecodePlan plan;
    const size_t B = caches.size(), L = static_cast<size_t>(config_.num_layers);
    plan.records.assign(B, RecordUse::kNone);
    plan.record_bits.assign(B, nullptr);
    for (size_t b = 0; b < B; ++b) {
        const SequenceCache& c = *caches[b];
        const bool penalised = output.picked && output.picks[b].sampling.repetition_penalty != 1.0f;
        const auto history = penalised ? output.picks[b].history : std::span<const int32_t>();
        uint32_t* bits = record_bits(c);
        const RecordUse use =
            bits ? c.token_record.plan_step(c.length(), penalised, history, ids[b]) : RecordUse::kNone;
        plan.records[b] = use;
        if (use != RecordUse::kNone) plan.record_bits[b] = bits, plan.any_record = true;
        if (penalised && use != RecordUse::kAdd) plan.history = std::max(plan.history, history.size());
    }
    for (SequenceCache* c : caches) plan.max_kv = std::max(plan.max_kv, c->length() + 1);
    // Larger batches take the MoE's grouped-GEMM path, which reads the experts' row counts back to the host. A model
    // split over several processes runs eagerly: a captured step holds NCCL collectives, so every GPU must be ready
    // before any launches (AllReadyGate), which one process can see and several cannot without a collective per step.
    plan.capture = graphs_ && !graphs_failed_ && processes_ == 1 &&
                   B <= size_t(std::min(kSmallPieceTokens, cuda::kMoeDecodeMaxTokens));
    if (!plan.capture) return plan;
    plan.replay = true;
    for (size_t r = 0; r < ranks_.size(); ++r) {
        const Rank& rk = *ranks_[r];
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaSetDevice(rk.device)));
        int64_t splits = 0;
        if (config_.num_softmax_layers() > 0) {
            cuda::AttentionParams ap;
            ap.phase = cuda::AttentionPhase::kDecode;
            ap.num_tokens = ap.num_seqs = static_cast<int>(B);
            ap.num_heads = static_cast<int>(rk.heads);
            ap.num_kv_heads = static_cast<int>(rk.kv_heads);
            ap.head_dim = static_cast<int>(config_.head_dim);
            ap.max_seqlen_kv = plan.max_kv;
            splits = cuda::decode_splits(ap);
        }
        plan.keys.push_back({int64_t(B), splits});
        // A buffer this step grows (staging for longer histories, logits for more rows, the first small piece)
        // moves: no replay, the eager step is captured again.
        const DecodeLayout lay = decode_layout(B, L, plan.history, output.picked && r == 0);
        const bool fits = rk.inputs_host.bytes >= lay.total && rk.small.tokens >= kSmallPieceTokens &&
                          rk.decode_logits.numel() >= int64_t(B) * rk.vocab.size;
        const auto buffers = graph_buffers(rk);
        plan.graphs.push_back(fits ? rk.decode_graphs.find(plan.keys.back(), buffers) : nullptr);
        if (!plan.graphs.back()) plan.replay = false;
    }
    return plan;
}

Expected<Tensor> MiniMaxTextModelCuda::decode(std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                                              const CancelCheck& cancelled) const {
    VOLT_RETURN_IF_ERROR(check_decode(ids, caches));
    return decode_step(ids, caches, /*rows=*/true, {}, nullptr, cancelled);
}

Expected<std::vector<int32_t>> MiniMaxTextModelCuda::decode_sample(std::span<const int32_t> ids,
                                                                   std::span<SequenceCache* const> caches,
                                                                   std::span<const TokenPick> picks, Tensor* logits,
                                                                   const CancelCheck& cancelled) const {
    VOLT_RETURN_IF_ERROR(check_token_picks(picks, ids.size()));
    VOLT_RETURN_IF_ERROR(check_decode(ids, caches));
    std::vector<int32_t> picked(ids.size());
    VOLT_ASSIGN_OR_RETURN(Tensor rows, decode_step(ids, caches, logits != nullptr, picks, picked.data(), cancelled));
    if (logits) *logits = std::move(rows);
    for (size_t b = 0; b < picked.size(); ++b)
        if (picked[b] < 0) return internal_error("sample: the logits of sequence ", b, " contain NaN");
    return picked;
}

Status MiniMaxTextModelCuda::decode_rank(int r, std::span<const int32_t> ids, std::span<SequenceCache* const> caches,
                                         const DecodeOutput& output, const DecodePlan& plan, StopPoint* stop,
                                         AllReadyGate* gate) const {
    const Rank& rk = *ranks_[r];
    const size_t B = ids.size(), L = static_cast<size_t>(config_.num_layers), S = plan.history;
    // This process's first GPU picks the ids (from every column: a split vocabulary is gathered on every GPU first).
    const bool sample = output.picked != nullptr && r == 0;
    const DecodeLayout lay = decode_layout(B, L, S, sample);
    char* dev = nullptr;
    DecodeBatch batch;
    const int64_t Vr = rk.vocab.size;
    // The host work before the step runs: the inputs staged and sent, the logits buffer, the stop check of a replay.
    auto prepare = [&]() -> Status {
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaSetDevice(rk.device)));
        VOLT_RETURN_IF_ERROR(stage_inputs(rk, lay.total));
        auto* host = static_cast<char*>(rk.inputs_host.ptr);
        auto* ints = reinterpret_cast<int32_t*>(host);
        auto* table = reinterpret_cast<void**>(host + lay.tables);
        for (size_t b = 0; b < B; ++b) {
            const int64_t past = caches[b]->length();
            ints[b] = ids[b];
            ints[B + b] = static_cast<int32_t>(past);
            ints[2 * B + b] = static_cast<int32_t>(past + 1);
            for (size_t l = 0; l < L; ++l) {
                LayerCache& lc = caches[b]->layers[static_cast<size_t>(r) * L + l];
                void** row = table + l * 2 * B;
                if (rk.layers[l]->kind == LayerKind::kLightning) {
                    row[b] = lc.state.data();
                    row[B + b] = nullptr;
                } else {
                    row[b] = lc.k.data();
                    row[B + b] = lc.v.data();
                }
            }
            const RecordUse use = plan.records[b];
            reinterpret_cast<void**>(host + lay.records)[b] = r == 0 ? plan.record_bits[b] : nullptr;
            if (sample) {
                const TokenPick& p = output.picks[b];
                reinterpret_cast<double*>(host + lay.uniform)[b] = p.uniform;
                const bool penalised = p.sampling.repetition_penalty != 1.0f;
                const bool staged = penalised && use != RecordUse::kAdd;
                reinterpret_cast<int32_t*>(host + lay.lens)[b] =
                    staged ? static_cast<int32_t>(p.history.size()) : (penalised ? -1 : 0);
                if (staged)
                    std::copy(p.history.begin(), p.history.end(),
                              reinterpret_cast<int32_t*>(host + lay.history) + b * S);
            }
        }
        dev = static_cast<char*>(rk.inputs_dev.data());
        VOLT_RETURN_IF_ERROR(
            VOLT_CUDA_STATUS(cudaMemcpyAsync(dev, host, lay.sent, cudaMemcpyHostToDevice, rk.stream)));
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventRecord(rk.inputs_sent, rk.stream)));
        batch.B = static_cast<int>(B);
        batch.positions = reinterpret_cast<const int32_t*>(dev) + B;
        batch.kv_lens = reinterpret_cast<const int32_t*>(dev) + 2 * B;
        batch.tables = reinterpret_cast<void* const*>(dev + lay.tables);
        batch.max_kv = plan.max_kv;
        if (rk.decode_logits.numel() < int64_t(B) * Vr) {
            VOLT_ASSIGN_OR_RETURN(rk.decode_logits, device_buffer(int64_t(B) * Vr, DType::kF32, rk.device));
        }
        // A replay is the whole step in one launch: a stop is asked only before it.
        if (plan.replay && stop->stop_before_all(rk.map.rank % gpus(), 2 * int64_t(L)))
            return cancelled("stopped before a decode step");
        return Status::ok();
    };
    Status ready = prepare();
    // Several GPUs replaying: all ready, or none launches.
    if (plan.replay && gpus() > 1) ready = gate->arrive(ready);
    VOLT_RETURN_IF_ERROR(ready);
    float* logits_dev = rk.decode_logits.data_as<float>();
    auto step = [&](StopPoint* at) {
        return run_chunk(rk, dev, nullptr, int64_t(B), {}, 0, nullptr, logits_dev, /*all_rows=*/true, at, 0, &batch);
    };
    if (plan.replay) {
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaGraphLaunch(plan.graphs[size_t(r)], rk.stream)));
    } else {
        VOLT_RETURN_IF_ERROR(step(stop));
        if (plan.capture) {
            // Recorded while the GPU runs the eager step (nothing is queued); replayed from the next step on.
            StopPoint never(kNeverCancelled, gpus());
            const auto buffers = graph_buffers(rk);
            Status captured =
                rk.decode_graphs.capture(plan.keys[size_t(r)], buffers, rk.stream, [&] { return step(&never); });
            if (!captured.is_ok()) {
                graphs_failed_ = true;  // the next steps' plans: every GPU runs eagerly from then on
                VOLT_LOG(kWarn, kText, "decode steps run without CUDA graphs: ", captured.to_string());
            }
        }
    }
    // The step's ids join the rows' records (before the sampler, whose penalty includes this step's id).
    auto* records_dev = reinterpret_cast<uint32_t* const*>(dev + lay.records);
    if (r == 0 && plan.any_record) {
        VOLT_RETURN_IF_ERROR(cuda::run(cuda::RecordIdsParams{.ids = reinterpret_cast<const int32_t*>(dev),
                                                             .n = int64_t(B),
                                                             .vocab_size = config_.vocab_size,
                                                             .records = records_dev},
                                       rk.stream));
    }
    if (output.host_logits) {
        VOLT_RETURN_IF_ERROR(logits_to_host(rk, r, logits_dev, int64_t(B), output.host_logits));
    }
    // The rows to pick from [B, V]: this GPU's own logits, or every GPU's column blocks gathered (every GPU joins).
    const int64_t V = config_.vocab_size;
    const float* rows_dev = logits_dev;
    Tensor gathered;
    if (output.picked && Vr != V) {
        if (sample) {
            VOLT_ASSIGN_OR_RETURN(gathered, device_buffer(int64_t(B) * V, DType::kF32, rk.device));
        }
        VOLT_RETURN_IF_ERROR(gather_logits(rk, rows_dev, int64_t(B), sample ? gathered.data_as<float>() : nullptr,
                                           /*to_host=*/false));
        if (sample) rows_dev = gathered.data_as<float>();
    }
    if (!sample) return VOLT_CUDA_STATUS(cudaStreamSynchronize(rk.stream));
    // One sampler launch per run of consecutive rows with the same options (one for a uniform batch), in pieces
    // that keep rows x vocab below 2^31.
    auto* picked_dev = reinterpret_cast<int32_t*>(dev + lay.picked);
    const size_t max_rows = static_cast<size_t>((int64_t{0x7fffffff} - 1) / V);
    for (size_t b0 = 0; b0 < B;) {
        size_t b1 = b0 + 1;
        while (b1 < B && b1 - b0 < max_rows && output.picks[b1].sampling == output.picks[b0].sampling) ++b1;
        const bool penalised = output.picks[b0].sampling.repetition_penalty != 1.0f;
        cuda::SampleParams p{
            .num_rows = int64_t(b1 - b0),
            .vocab_size = V,
            .logits = rows_dev + int64_t(b0) * V,
            .logits_stride = V,
            .sampling = output.picks[b0].sampling,
            .history = penalised ? reinterpret_cast<const int32_t*>(dev + lay.history) + b0 * S : nullptr,
            .history_stride = int64_t(S),
            .history_len = penalised ? reinterpret_cast<const int32_t*>(dev + lay.lens) + b0 : nullptr,
            .records = penalised ? records_dev + b0 : nullptr,
            .uniform = reinterpret_cast<const double*>(dev + lay.uniform) + b0,
            .out_ids = picked_dev + b0,
        };
        const size_t ws = cuda::sample_workspace_bytes(p);
        const size_t held = rk.sample_workspace.data() ? rk.sample_workspace.nbytes() : 0;
        if (ws > held) {
            VOLT_ASSIGN_OR_RETURN(rk.sample_workspace, device_buffer(int64_t(ws), DType::kU8, rk.device));
        }
        p.workspace = rk.sample_workspace.data(), p.workspace_bytes = std::max(ws, held);
        VOLT_RETURN_IF_ERROR(cuda::run(p, rk.stream));
        b0 = b1;
    }
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemcpyAsync(output.picked, picked_dev, B * sizeof(int32_t),
                                                          cudaMemcpyDeviceToHost, rk.stream)));
    return VOLT_CUDA_STATUS(cudaStreamSynchronize(rk.stream));
}

Expected<int32_t> MiniMaxTextModelCuda::agree(const Rank& rank, int32_t value, ReduceOp op,
                                              cudaStream_t stream) const {
    VOLT_ASSIGN_OR_RETURN(Tensor dev, device_buffer(1, DType::kI32, rank.device));
    Tensor host = Tensor::borrow(&value, {1}, DType::kI32);
    VOLT_RETURN_IF_ERROR(dev.copy_from(host));
    VOLT_RETURN_IF_ERROR(
        comm_->all_reduce(rank.map.rank, dev.data(), 1, DType::kI32, stream ? stream : rank.stream, op));
    VOLT_RETURN_IF_ERROR(host.copy_from(dev));  // synchronous: the value every rank agreed on
    return value;
}

Status MiniMaxTextModelCuda::all_reduce(const Rank& rank, void* data, int64_t count, DType dtype) const {
    if (!comm_) return Status::ok();
    return comm_->all_reduce(rank.map.rank, data, count, dtype, rank.stream);
}

Status MiniMaxTextModelCuda::on_ranks(const std::function<Status(int)>& fn) const {
    if (!threads_) {
        Status s = fn(0);
        if (!s.is_ok() && comm_ && s.code() != StatusCode::kCancelled) comm_->abort();
        return s;
    }
    // An agreed stop (CANCELLED) leaves no collective half-joined; anything else may, so the group is aborted.
    return threads_->run(fn, [this](const Status& failure) {
        if (failure.code() != StatusCode::kCancelled) comm_->abort();
    });
}

// The ranks' column blocks [rows, V_r] gathered on every GPU (padded to the largest block; a collective), then
// copied into `out` [rows, V] (host memory with to_host, else this GPU's; null: nothing copied on this GPU).
Status MiniMaxTextModelCuda::gather_logits(const Rank& rk, const float* logits_dev, int64_t rows, float* out,
                                           bool to_host) const {
    const TextConfig& c = config_;
    const int tp = rk.map.tp_size;
    const int64_t V = c.vocab_size, Vr = rk.vocab.size, Vmax = split_range(V, tp, 0).size;
    VOLT_ASSIGN_OR_RETURN(Tensor send, device_buffer(rows * Vmax, DType::kF32, rk.device));
    VOLT_ASSIGN_OR_RETURN(Tensor recv, device_buffer(int64_t(tp) * rows * Vmax, DType::kF32, rk.device));
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemcpy2DAsync(send.data(), size_t(Vmax) * 4, logits_dev, size_t(Vr) * 4,
                                                            size_t(Vr) * 4, size_t(rows), cudaMemcpyDeviceToDevice,
                                                            rk.stream)));
    VOLT_RETURN_IF_ERROR(comm_->all_gather(rk.map.rank, send.data(), recv.data(), rows * Vmax, DType::kF32, rk.stream));
    if (!out) return Status::ok();
    for (int g = 0; g < tp; ++g) {
        const IndexRange cols = split_range(V, tp, g);
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaMemcpy2DAsync(
            out + cols.begin, size_t(V) * 4, recv.data_as<float>() + int64_t(g) * rows * Vmax, size_t(Vmax) * 4,
            size_t(cols.size) * 4, size_t(rows), to_host ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice,
            rk.stream)));
    }
    return Status::ok();
}

// Rows of the embedding table for device ids [n] into out [n, H] bf16: with the vocabulary split, each GPU gathers
// the rows it holds (zeros for the others') and the sum over GPUs is the full gather.
Status MiniMaxTextModelCuda::gather_embeddings(const Rank& rk, const int32_t* ids, int64_t n, void* out,
                                               int32_t* local_ids) const {
    const int64_t H = config_.hidden_size;
    const int32_t* local = ids;
    Tensor remapped;
    if (comm_) {
        if (!local_ids) {
            VOLT_ASSIGN_OR_RETURN(remapped, device_buffer(n, DType::kI32, rk.device));
            local_ids = remapped.data_as<int32_t>();
        }
        VOLT_RETURN_IF_ERROR(cuda::run(
            cuda::LocalIdsParams{.n = n, .ids = ids, .lo = rk.vocab.begin, .hi = rk.vocab.end(), .out = local_ids},
            rk.stream));
        local = local_ids;
    }
    VOLT_RETURN_IF_ERROR(cuda::run(cuda::EmbeddingParams{.num_tokens = n, .ids = local, .vocab_size = rk.vocab.size,
                                                         .hidden = H, .table = rk.embed.data(), .out = out,
                                                         .out_stride = H},
                                   rk.stream));
    return all_reduce(rk, out, n * H, DType::kBF16);
}

int64_t MiniMaxTextModelCuda::chunk_tokens(int64_t context) const {
    const TextConfig& c = config_;
    const int64_t H = c.hidden_size, K = c.experts_per_token;
    const double unit = unit_flops_;
    auto whole_k = [](double tokens) { return static_cast<int64_t>(std::min(tokens, 1e12)) / 1024 * 1024; };
    int64_t tokens = kMaxChunkTokens;
    for (const auto& rk : ranks_) {
        const int64_t W = rk->heads * c.head_dim;
        // The MoE half-layer: each token's K experts, three H x I products each (on average this GPU's share of them:
        // its experts, or its slice of every expert).
        const int64_t I = rk->map.expert_intermediate(c).size;
        const double moe_per_token = double(K) * 6.0 * double(H) * double(I) * double(rk->experts.size) /
                                     double(std::max<int64_t>(c.num_experts, 1));
        tokens = std::min(tokens, std::max(kMinChunkTokens, whole_k(unit / moe_per_token)));
        if (c.num_softmax_layers() > 0) {
            // The causal diagonal of a piece of T tokens is one block of at least 2 T^2 W flops ...
            tokens = std::min(tokens, std::max(kMinChunkTokens, whole_k(std::sqrt(unit / (2.0 * double(W))))));
            // ... and pieces shrink with the context until the keys need blocks anyway (T * context * 4 * W flops).
            const int64_t floor = std::min<int64_t>(cuda::kCudnnMinTokens, tokens);
            tokens = std::min(tokens, std::max(floor, whole_k(unit / (double(context) * 4.0 * double(W)))));
        }
        // bf16 bytes per token: h, xn, a, yn, mo; qkv (3W), attention out, gate, gated; the MoE's gathered rows and
        // [w1 | w3] intermediate per routed slot; the key blocks' fp32 accumulator and statistics.
        int64_t per_token = 2 * (5 * H + 6 * W) + 2 * K * (H + 2 * I);
        if (c.num_softmax_layers() > 0) per_token += 4 * W + 12 * rk->heads;
        size_t free_b = 0, total_b = 0;
        if (cudaSetDevice(rk->device) != cudaSuccess || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess)
            return 8192;
        const int64_t fit = static_cast<int64_t>(0.7 * double(free_b)) / per_token;
        tokens = std::min(tokens, std::clamp<int64_t>(fit / 256 * 256, kMinChunkTokens, kMaxChunkTokens));
    }
    return tokens;
}

// One piece through every layer; the same residual wiring as MiniMaxTextModel::run_chunk (see there):
//   xn = RMSNorm_in(h); a = Attn(xn); yn = RMSNorm_post(r1*alpha + a*beta); mo = MoE(yn); pending = yn or h
//   With several GPUs (sizes below are this GPU's: Hq, Hkv heads, E experts, V vocabulary rows), `a` and `mo` are
//   partial sums completed by all-reduces, and the lightning norm's statistic is summed over GPUs before it is used.
Status MiniMaxTextModelCuda::run_chunk(const Rank& rk, const void* ids_dev, const void* embeds_dev, int64_t T,
                                       std::span<LayerCache> caches, int64_t past, const int32_t* kv_len,
                                       float* logits, bool all_rows, StopPoint* stop, int64_t piece,
                                       const DecodeBatch* batch) const {
    const TextConfig& c = config_;
    const int64_t H = c.hidden_size, V = rk.vocab.size, Hq = rk.heads, Hkv = rk.kv_heads, D = c.head_dim;
    const int64_t W = Hq * D, I = rk.map.expert_intermediate(c).size;  // this GPU's part of each expert's
    const int E_all = static_cast<int>(c.num_experts), E = static_cast<int>(rk.experts.size);
    const int K = static_cast<int>(c.experts_per_token);
    const bool split_heads = rk.map.tp_size > 1, split_experts = rk.map.ep_size > 1;
    const float eps = static_cast<float>(c.rms_norm_eps);
    const int dev = rk.device;
    const cudaStream_t stream = rk.stream;
    // Short pieces reuse this GPU's kept activations; long ones hold theirs for the piece only.
    PieceBuffers own;
    PieceBuffers& buf = T <= kSmallPieceTokens ? rk.small : own;
    VOLT_RETURN_IF_ERROR(reserve_piece(buf, T <= kSmallPieceTokens ? kSmallPieceTokens : T, H, W, K, split_heads,
                                       split_experts, dev));
    Tensor &h = buf.h, &xn = buf.xn, &a = buf.a, &yn = buf.yn, &mo = buf.mo, &wide = buf.wide, &att = buf.att;
    Tensor &gate = buf.gate, &gated = buf.gated, &expert_ids = buf.expert_ids, &expert_w = buf.expert_w;
    Tensor &local_experts = buf.local_experts, &square_sums = buf.square_sums;
    // A long piece split over GPUs sums its partial rows in chunks on the rank's comm stream while this stream works
    // on other rows (text/cuda/comm_overlap.h); every later collective of the piece then goes there too.
    const RowChunks chunks = rk.overlap && overlap_comm_ && !batch ? CommOverlap::chunks(T) : RowChunks{1, T, T};
    CommOverlap* const overlap = chunks.count > 1 ? rk.overlap.get() : nullptr;
    const CommOverlap::Reduce nccl_sum = [&](void* d, int64_t n, DType t, cudaStream_t s) {
        return comm_->all_reduce(rk.map.rank, d, n, t, s);
    };
    // An in-place sum over the GPUs that this stream needs at once.
    auto sum_now = [&](void* d, int64_t n, DType t) -> Status {
        return overlap ? overlap->reduce(stream, d, n, t, nccl_sum) : all_reduce(rk, d, n, t);
    };
    bool mo_in_flight = false;  // the last MoE's output is being summed in row chunks (CommOverlap::start_rows)
    if (overlap) ++overlapped_pieces_;

    if (ids_dev) {
        VOLT_RETURN_IF_ERROR(gather_embeddings(rk, static_cast<const int32_t*>(ids_dev), T, h.data(),
                                               split_heads ? buf.local_ids.data_as<int32_t>() : nullptr));
    } else {
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(
            cudaMemcpyAsync(h.data(), embeds_dev, static_cast<size_t>(T * H) * 2, cudaMemcpyDeviceToDevice, stream)));
    }

    // Scratch grown to the largest user.
    Tensor& workspace = buf.workspace;
    size_t& workspace_bytes = buf.workspace_bytes;
    auto ensure_workspace = [&](size_t bytes) -> Status {
        if (bytes <= workspace_bytes) return Status::ok();
        // The kept scratch grows by at least half: it moves less often, and with it the captured decode steps.
        if (&buf == &rk.small) bytes = std::max(bytes, workspace_bytes * 3 / 2);
        VOLT_ASSIGN_OR_RETURN(workspace, device_buffer(static_cast<int64_t>(bytes), DType::kU8, dev));
        workspace_bytes = bytes;
        return Status::ok();
    };

    const void* pending = nullptr;
    // A stop is asked before each unit of work: each half of a layer (attention, then the MoE) and, inside a softmax
    // layer's attention over a long context, each further block of keys (cuda::PrefillBlocks). While one can come,
    // the host stays within two units of the GPU (the events at the ends of the last two queued), so a stop waits for
    // at most the unit running and the one queued (options.max_unit_flops each); decode steps (T == 1) are short
    // enough as is. Units are numbered over the forward (the piece's index in the high bits), the same on every GPU.
    const bool bounded = stop->active() && T > 1 && !batch;
    cudaEvent_t unit_done[2] = {nullptr, nullptr};
    int64_t unit = 0;
    auto stop_point = [&](const char* before, size_t l) -> Status {
        const int64_t u = unit++;
        if (bounded && u >= 1) VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventRecord(unit_done[(u - 1) % 2], stream)));
        if (bounded && u >= 2) VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventSynchronize(unit_done[u % 2])));
        bool stop_here = false;
        if (processes_ > 1) {
            if (!bounded) return Status::ok();
            // Each unit's stop flag, maxed over every rank (this waits for every rank to reach the unit).
            VOLT_ASSIGN_OR_RETURN(const int32_t any, agree(rk, stop->requested() ? 1 : 0, ReduceOp::kMax,
                                                           overlap ? overlap->stream() : stream));
            stop_here = any != 0;
        } else {
            stop_here = stop->stop_before(rk.map.rank % gpus(), (piece << 32) + u);
        }
        if (!stop_here) return Status::ok();
        VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaStreamSynchronize(stream)));  // nothing of ours left running
        if (overlap) VOLT_RETURN_IF_ERROR(overlap->synchronize());
        return cancelled("stopped before ", before, l, " of a ", T, "-token piece");
    };
    struct EventsGuard {
        cudaEvent_t* e;
        ~EventsGuard() {
            for (int i = 0; i < 2; ++i)
                if (e[i]) cudaEventDestroy(e[i]);
        }
    } events_guard{unit_done};
    if (bounded)
        for (auto& e : unit_done) VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaEventCreateWithFlags(&e, cudaEventDisableTiming)));
    for (size_t l = 0; l < rk.layers.size(); ++l) {
        VOLT_RETURN_IF_ERROR(stop_point("layer ", l));
        const Layer& L = *rk.layers[l];
        LayerCache* lc = batch ? nullptr : &caches[l];  // a batch's caches are reached through its tables
        const bool lightning = L.kind == LayerKind::kLightning;
        // A softmax layer's new keys/values [T, Hkv, D]: straight into the cache rows, or (a batch: one row per
        // sequence's cache) into the lightning gate buffers, unused here, and then appended to each cache.
        uint16_t* k_rows = lightning ? nullptr : batch ? bf16(gate) : bf16(lc->k) + past * Hkv * D;
        uint16_t* v_rows = lightning ? nullptr : batch ? bf16(gated) : bf16(lc->v) + past * Hkv * D;
        // Rows [r0, r0 + n) of the input norm and the projections that read it first (qkv; q, k and v).
        auto layer_input = [&](int64_t r0, int64_t n) -> Status {
            cuda::RmsNormParams in{.num_tokens = n, .width = H, .x = bf16(h) + r0 * H, .x_stride = H,
                                   .weight = L.input_norm.data(), .eps = eps, .out = bf16(xn) + r0 * H,
                                   .out_stride = H};
            if (pending) {
                in.x = bf16(mo) + r0 * H;
                in.x_beta = static_cast<float>(c.mlp_beta);
                in.residual = static_cast<const uint16_t*>(pending) + r0 * H;
                in.residual_stride = H;
                in.residual_alpha = static_cast<float>(c.mlp_alpha);
                if (!c.postnorm) in.sum_out = bf16(h) + r0 * H, in.sum_stride = H;
            }
            VOLT_RETURN_IF_ERROR(cuda::run(in, stream));
            const uint16_t* x = bf16(xn) + r0 * H;
            if (lightning) return linear(x, n, L.qkv, bf16(wide) + r0 * 3 * W, stream);
            VOLT_RETURN_IF_ERROR(linear(x, n, L.q_proj, bf16(wide) + r0 * W, stream));
            VOLT_RETURN_IF_ERROR(linear(x, n, L.k_proj, k_rows + r0 * Hkv * D, stream));
            return linear(x, n, L.v_proj, v_rows + r0 * Hkv * D, stream);
        };
        if (mo_in_flight) {  // each chunk as soon as its sum is done
            for (int ch = 0; ch < chunks.count; ++ch) {
                VOLT_RETURN_IF_ERROR(overlap->wait_rows(stream, ch));
                VOLT_RETURN_IF_ERROR(layer_input(chunks.begin(ch), chunks.length(ch)));
            }
            mo_in_flight = false;
        } else {
            VOLT_RETURN_IF_ERROR(layer_input(0, T));
        }

        if (lightning) {
            LightningAttentionParams p;
            p.phase = T == 1 || batch ? LightningPhase::kDecode : LightningPhase::kPrefill;
            p.dtype = DType::kBF16;
            p.silu_inputs = true;
            p.num_tokens = T;
            p.num_seqs = batch ? batch->B : 1;
            p.num_heads = static_cast<int>(Hq);
            p.head_dim = static_cast<int>(D);
            p.q = bf16(wide);
            p.k = bf16(wide) + D;
            p.v = bf16(wide) + 2 * D;
            p.q_stride_token = p.k_stride_token = p.v_stride_token = 3 * W;
            p.q_stride_head = p.k_stride_head = p.v_stride_head = 3 * D;
            p.o = att.data();
            p.o_stride_token = W;
            p.o_stride_head = D;
            p.max_seqlen = batch ? 1 : T;
            p.slope = L.slopes.data_as<float>();
            if (batch) {
                p.state_ptrs = reinterpret_cast<float* const*>(batch->layer(l));
            } else {
                p.state_in = lc->state.data_as<float>();
                p.state_out = lc->state.data_as<float>();
            }
            if (p.phase == LightningPhase::kPrefill) {
                VOLT_RETURN_IF_ERROR(ensure_workspace(cuda::prefill_workspace_bytes(p)));
                p.workspace = workspace.data();
                p.workspace_bytes = workspace_bytes;
            }
            VOLT_RETURN_IF_ERROR(cuda::run(p, stream));
            VOLT_RETURN_IF_ERROR(linear(xn.data(), T, L.output_gate, gate.data(), stream));
            if (split_heads) {
                // The norm spans every GPU's heads: sum the per-token statistic over GPUs first.
                VOLT_RETURN_IF_ERROR(cuda::run(cuda::SquareSumParams{.num_tokens = T, .width = static_cast<int>(W),
                                                                     .x = att.data(), .x_stride = W,
                                                                     .out = square_sums.data_as<float>()},
                                               stream));
                VOLT_RETURN_IF_ERROR(sum_now(square_sums.data(), T, DType::kF32));
                VOLT_RETURN_IF_ERROR(cuda::run(
                    cuda::SplitNormGateParams{.num_tokens = T, .width = static_cast<int>(W),
                                              .total_width = c.num_heads * D,
                                              .eps = static_cast<float>(c.lightning_norm_eps),
                                              .sum_squares = square_sums.data_as<float>(), .o = att.data(),
                                              .o_stride = W, .gate = gate.data(), .gate_stride = W,
                                              .weight = L.norm.data(), .out = gated.data(), .out_stride = W},
                    stream));
            } else {
                LightningNormGateParams n;
                n.dtype = DType::kBF16;
                n.num_tokens = T;
                n.width = static_cast<int>(W);
                n.eps = static_cast<float>(c.lightning_norm_eps);
                n.o = att.data();
                n.o_stride_token = W;
                n.gate = gate.data();
                n.gate_stride_token = W;
                n.weight = L.norm.data();
                n.out = gated.data();
                n.out_stride_token = W;
                VOLT_RETURN_IF_ERROR(cuda::run(n, stream));
            }
        } else {
            cuda::RopeParams r;
            r.num_tokens = T;
            r.head_dim = static_cast<int>(D);
            r.rotary_dim = static_cast<int>(c.rotary_dim);
            r.theta = c.rope_theta;
            r.start_position = past;
            if (batch) r.positions = batch->positions;
            r.x = wide.data();
            r.num_heads = static_cast<int>(Hq);
            r.stride_token = Hq * D;
            r.stride_head = D;
            r.x2 = k_rows;
            r.num_heads2 = static_cast<int>(Hkv);
            r.stride_token2 = Hkv * D;
            r.stride_head2 = D;
            VOLT_RETURN_IF_ERROR(cuda::run(r, stream));
            if (batch)
                VOLT_RETURN_IF_ERROR(cuda::run(
                    cuda::KvAppendParams{.num_seqs = batch->B, .width = Hkv * D, .k_new = k_rows, .v_new = v_rows,
                                         .new_stride = Hkv * D, .positions = batch->positions,
                                         .k_seqs = batch->layer(l), .v_seqs = batch->layer(l) + batch->B,
                                         .row_stride = Hkv * D},
                    stream));
            cuda::AttentionParams ap;
            ap.phase = T == 1 || batch ? cuda::AttentionPhase::kDecode : cuda::AttentionPhase::kPrefill;
            ap.num_tokens = T;
            ap.num_seqs = batch ? batch->B : 1;
            ap.num_heads = static_cast<int>(Hq);
            ap.num_kv_heads = static_cast<int>(Hkv);
            ap.head_dim = static_cast<int>(D);
            ap.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
            ap.q = wide.data(), ap.q_stride_token = Hq * D, ap.q_stride_head = D;
            ap.k_stride_token = Hkv * D, ap.k_stride_head = D;
            ap.v_stride_token = Hkv * D, ap.v_stride_head = D;
            ap.o = att.data(), ap.o_stride_token = Hq * D, ap.o_stride_head = D;
            if (batch) {
                ap.k_seqs = batch->layer(l);
                ap.v_seqs = batch->layer(l) + batch->B;
                ap.kv_lens = batch->kv_lens;
                ap.max_seqlen_q = 1;
                ap.max_seqlen_kv = batch->max_kv;
            } else {
                ap.k = lc->k.data();
                ap.v = lc->v.data();
                ap.kv_lens = kv_len;
                ap.max_seqlen_q = T;
                ap.max_seqlen_kv = past + T;
                // Exact: a long piece (after a cached prefix or not) runs in cuDNN's SDPA.
                if (ap.phase == cuda::AttentionPhase::kPrefill) ap.kv_len_host = past + T;
            }
            // A long context's prefill attention runs in blocks of keys, each a unit with a stop point before it.
            cuda::PrefillBlocks blocks;
            if (ap.phase == cuda::AttentionPhase::kPrefill) {
                VOLT_ASSIGN_OR_RETURN(blocks, cuda::plan_prefill_blocks(ap, unit_flops_));
            }
            VOLT_RETURN_IF_ERROR(
                ensure_workspace(std::max(cuda::attention_workspace_bytes(ap), blocks.workspace_bytes)));
            ap.workspace = workspace.data();
            ap.workspace_bytes = workspace_bytes;
            for (int b = 0; b < blocks.count; ++b) {
                if (b > 0) VOLT_RETURN_IF_ERROR(stop_point(str_cat("key block ", b, " of ", blocks.count,
                                                                   " of the attention of layer ").c_str(), l));
                VOLT_RETURN_IF_ERROR(cuda::run_prefill_block(ap, blocks, b, stream));
            }
        }
        // The output projection. Row-parallel with the heads split: each GPU holds its heads' share of the sum, which
        // a long piece sums chunk by chunk as the rows are made.
        const uint16_t* o_in = bf16(lightning ? gated : att);
        const Tensor& o_weight = lightning ? L.out_proj : L.o_proj;
        auto output_rows = [&](int64_t r0, int64_t n) {
            return linear(o_in + r0 * W, n, o_weight, bf16(a) + r0 * H, stream);
        };
        if (split_heads && overlap) {
            VOLT_RETURN_IF_ERROR(
                overlap->reduce_as_made(stream, chunks, a.data(), H, DType::kBF16, output_rows, nccl_sum));
        } else {
            VOLT_RETURN_IF_ERROR(output_rows(0, T));
            if (split_heads) VOLT_RETURN_IF_ERROR(all_reduce(rk, a.data(), T * H, DType::kBF16));
        }
        VOLT_RETURN_IF_ERROR(stop_point("the MoE of layer ", l));
        cuda::RmsNormParams post{.num_tokens = T, .width = H, .x = a.data(), .x_stride = H,
                                 .x_beta = static_cast<float>(lightning ? c.lightning_beta : c.softmax_beta),
                                 .residual = c.postnorm ? xn.data() : h.data(), .residual_stride = H,
                                 .residual_alpha = static_cast<float>(lightning ? c.lightning_alpha : c.softmax_alpha),
                                 .weight = L.post_norm.data(), .eps = eps, .out = yn.data(), .out_stride = H};
        if (!c.postnorm) post.sum_out = h.data(), post.sum_stride = H;
        VOLT_RETURN_IF_ERROR(cuda::run(post, stream));

        cuda::MoeRouterParams rp;
        rp.num_tokens = T;
        rp.hidden = H;
        rp.num_experts = E_all;
        rp.top_k = K;
        rp.renormalize = true;
        rp.x = yn.data();
        rp.x_stride = H;
        rp.gate_weight = L.router.data_as<float>();
        rp.expert_ids = expert_ids.data_as<int32_t>();
        rp.weights = expert_w.data_as<float>();
        VOLT_RETURN_IF_ERROR(cuda::run(rp, stream));
        // Experts spread over GPUs: each adds the slots routed to the experts it holds (ids made local, -1 skipped).
        const int32_t* ids_for_experts = expert_ids.data_as<int32_t>();
        if (split_experts) {
            VOLT_RETURN_IF_ERROR(cuda::run(cuda::LocalIdsParams{.n = T * K, .ids = ids_for_experts,
                                                                .lo = rk.experts.begin, .hi = rk.experts.end(),
                                                                .out = local_experts.data_as<int32_t>()},
                                           stream));
            ids_for_experts = local_experts.data_as<int32_t>();
        }
        cuda::MoeExpertsParams ep;
        ep.num_tokens = T;
        ep.hidden = H;
        ep.intermediate = I;
        ep.num_experts = E;
        ep.top_k = K;
        ep.x = yn.data();
        ep.x_stride = H;
        ep.expert_ids = ids_for_experts;
        ep.weights = expert_w.data_as<float>();
        ep.w1 = L.w1p.data();
        ep.w3 = L.w3p.data();
        ep.w2 = L.w2p.data();
        ep.weight_type = L.weight_type;  // bf16: the scale lists are empty (null pointers, not read)
        ep.s1 = L.s1p.data(), ep.s3 = L.s3p.data(), ep.s2 = L.s2p.data();
        ep.out = mo.data();
        ep.out_stride = H;
        VOLT_RETURN_IF_ERROR(ensure_workspace(cuda::moe_workspace_bytes(ep)));
        ep.workspace = workspace.data();
        ep.workspace_bytes = workspace_bytes;
        VOLT_RETURN_IF_ERROR(cuda::run(ep, stream));
        if (rk.map.moe_output_is_partial()) {
            // A long piece's next layer starts on the chunks already summed (its input norm and first projections).
            if (overlap && l + 1 < rk.layers.size()) {
                VOLT_RETURN_IF_ERROR(overlap->start_rows(stream, chunks, mo.data(), H, DType::kBF16, nccl_sum));
                mo_in_flight = true;
            } else {
                VOLT_RETURN_IF_ERROR(sum_now(mo.data(), T * H, DType::kBF16));
            }
        }
        pending = c.postnorm ? yn.data() : h.data();
    }
    if (!logits) return VOLT_CUDA_STATUS(cudaGetLastError());
    // Final norm and lm_head on the rows asked for; logits in fp32 (cuBLAS: bf16 inputs, fp32 output and compute).
    const int64_t first = all_rows ? 0 : T - 1, rows = T - first;
    cuda::RmsNormParams fin{.num_tokens = rows, .width = H, .x = bf16(mo) + first * H, .x_stride = H,
                            .x_beta = static_cast<float>(c.mlp_beta),
                            .residual = static_cast<const uint16_t*>(pending) + first * H, .residual_stride = H,
                            .residual_alpha = static_cast<float>(c.mlp_alpha), .weight = rk.final_norm.data(),
                            .eps = eps, .out = xn.data(), .out_stride = H};
    VOLT_RETURN_IF_ERROR(cuda::run(fin, stream));
    // logits[rows, V] (fp32) = xn[rows, H] lm_head[V, H]^T through the stream's GEMM plan, which times the decode
    // rows' algorithms once (kernels/gemm_cuda.h: rank 0 streamed the 2.5 GB at 2.82 TB/s on an H100, rank 5 at 2.98).
    cuda::GemmParams g;
    g.m = rows, g.n = V, g.k = H;
    g.a = xn.data(), g.lda = H;
    g.b = rk.lm_head.data(), g.ldb = H, g.b_transposed = true;
    g.c = logits, g.ldc = V, g.c_fp32 = true;
    return cuda::run(g, stream);
}

}  // namespace volt
