// cuDNN SDPA (through the header-only cudnn-frontend graph API, libcudnn dlopen'ed at first use): the backbone's
// softmax-attention prefill (kernels/cuda/attention.cu) and the ViT's bidirectional attention (vision/cuda) run
// through one graph cache. Compiled only with cudnn-frontend (VOLT_HAVE_CUDNN_FRONTEND, see ops.cmake; targets
// that call it define it too); without it these report "unavailable".
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/attention_cuda.h"
#include "sdk/status.h"

namespace volt::cuda {

// One SDPA call: B sequences of T queries over S keys (S >= T: the first S - T keys are a cached prefix), Hq query heads
// over Hkv key/value heads of size D, bf16 in and out, fp32 softmax; each tensor's element (b, h, t, d) at
// ptr[b * stride_b + h * stride_h + t * stride_t + d].
struct CudnnSdpaSpec {
    int64_t batch = 1, tokens = 0, heads = 0, kv_heads = 0, head_dim = 0;
    int64_t kv_tokens = 0;  // S (0: T)
    int64_t q_stride_b = 0, q_stride_h = 0, q_stride_t = 0;
    int64_t k_stride_b = 0, k_stride_h = 0, k_stride_t = 0;
    int64_t v_stride_b = 0, v_stride_h = 0, v_stride_t = 0;
    int64_t o_stride_b = 0, o_stride_h = 0, o_stride_t = 0;
    bool causal = false;  // query t attends to keys [0, S - T + t] (the diagonal bottom-right aligned)
    float scale = 1.0f;
    // Also write each row's softmax statistic: the natural-log sum of exp(scale * q.k) over its keys, fp32 at
    // stats[(b * heads + h) * tokens + t] (what merges attention over separate blocks of keys).
    bool stats = false;
    // cuDNN's padding mask: batch entry b's valid queries and keys counted by device int32 seq_len_q[b] <= tokens and
    // seq_len_kv[b] <= kv_tokens (cudnn_sdpa's arguments); the rest of its rows are neither attended nor counted.
    bool seq_lens = false;
    // cuDNN's ragged layout (needs seq_lens): batch entry b of q / k / v / o starts at element offset
    // CudnnRaggedOffsets::q[b] / k[b] / v[b] / o[b] of its pointer (device int64 [batch + 1]), its tokens and heads
    // strided as above (the stride_b fields unused): several sequences packed in one buffer, or each at its own row
    // of a cache.
    bool ragged = false;
    // A shape that comes and goes (the backbone's prefill pieces: a graph per length pair): its graph is kept only
    // among the 32 most recently used. Others (the ViT's few fixed shapes, captured in CUDA graphs,
    // whose workspace must outlive the capture) stay for the process.
    bool transient = false;
};

// The device offset arrays of a ragged spec (CudnnSdpaSpec::ragged), in elements.
struct CudnnRaggedOffsets {
    const int64_t* q = nullptr;
    const int64_t* k = nullptr;
    const int64_t* v = nullptr;
    const int64_t* o = nullptr;
};

// One plan of a spec, timed (cudnn_sdpa_time_plans): cuDNN's name for it (engine and knobs), its workspace, the
// median time of its runs, or why it failed to build or run.
struct CudnnPlanTiming {
    std::string name;
    int64_t workspace_bytes = 0;
    double ms = 0;  // 0 when it did not run (error says why)
    std::string error;
};

// The spec of one sequence's prefill (AttentionParams' token-major q/k/v/o, B = 1) over `keys` keys from p.k / p.v
// on: the whole prefill (cudnn_sdpa_prefill) or one block of its keys (kernels/cuda/attention_blocks.cu).
inline CudnnSdpaSpec prefill_sdpa_spec(const AttentionParams& p, int64_t keys, bool causal, bool stats,
                                       bool transient) {
    const int64_t T = p.num_tokens, S = keys;
    return CudnnSdpaSpec{.batch = 1, .tokens = T, .heads = p.num_heads, .kv_heads = p.num_kv_heads,
                         .head_dim = p.head_dim, .kv_tokens = S,
                         .q_stride_b = T * p.q_stride_token, .q_stride_h = p.q_stride_head, .q_stride_t = p.q_stride_token,
                         .k_stride_b = S * p.k_stride_token, .k_stride_h = p.k_stride_head, .k_stride_t = p.k_stride_token,
                         .v_stride_b = S * p.v_stride_token, .v_stride_h = p.v_stride_head, .v_stride_t = p.v_stride_token,
                         .o_stride_b = T * p.o_stride_token, .o_stride_h = p.o_stride_head, .o_stride_t = p.o_stride_token,
                         .causal = causal, .scale = p.scale, .stats = stats, .transient = transient};
}

// The spec of one block of `keys` keys from p.k / p.v on for queries staged in the rows of their own [Tb, Hq, D] buffer
// (bucketed shapes, kernels/cuda/attention_blocks.cu: Tb = staged_queries), its output in the same layout, with the
// softmax statistics; kept for the process (a few shapes per query bucket).
inline CudnnSdpaSpec staged_block_spec(const AttentionParams& p, int64_t staged_queries, int64_t keys, bool causal) {
    const int64_t row = int64_t(p.num_heads) * p.head_dim;
    CudnnSdpaSpec s = prefill_sdpa_spec(p, keys, causal, /*stats=*/true, /*transient=*/false);
    s.tokens = staged_queries;
    s.q_stride_b = s.o_stride_b = staged_queries * row;
    s.q_stride_h = s.o_stride_h = p.head_dim;
    s.q_stride_t = s.o_stride_t = row;
    return s;
}

// Attention work of p's queries over `keys` keys each: 4 T keys Hq D flops (the causal half not taken off).
inline double attention_flops(const AttentionParams& p, int64_t keys) {
    return 4.0 * double(p.num_tokens) * double(keys) * double(p.num_heads) * double(p.head_dim);
}
// A prefill's attention work over its p.kv_len_host keys.
inline double prefill_attention_flops(const AttentionParams& p) { return attention_flops(p, p.kv_len_host); }

// The smallest power-of-two multiple of `floor` (a power of two) that is >= x: the bucketed and ragged cuDNN shapes.
inline int64_t pow2_at_least(int64_t x, int64_t floor) {
    int64_t r = floor;
    while (r < x) r *= 2;
    return r;
}

// The rows a query piece of T queries is staged in for bucketed cuDNN shapes (PrefillBlocks::QueryPiece).
inline int64_t bucket_query_rows(int64_t T) { return pow2_at_least(T, kCudnnBucketMinRows); }

// Whether p.workspace holds `need` bytes on a 256-byte boundary (the cuDNN routes carve it in 256-byte buffers).
inline bool workspace_fits(const AttentionParams& p, size_t need) {
    return p.workspace && p.workspace_bytes >= need && reinterpret_cast<uintptr_t>(p.workspace) % 256 == 0;
}

// The prefill routing that run() and the key blocks share (kernels/cuda/attention.cu): kAuto resolved through
// VOLT_ATTENTION_PREFILL (read once per process), and whether a prefill of that backend has a shape cuDNN takes.
AttentionBackend resolve_prefill_backend(AttentionBackend b);
bool cudnn_prefill_shape(const AttentionParams& p, AttentionBackend backend);
// A long fresh prefill (one packed sequence of more than 32K queries) on cuDNN in query pieces and key blocks
// (kernels/cuda/attention_blocks.cu): the workspace it needs (0: not tiled), and the run itself.
size_t tiled_prefill_workspace_bytes(const AttentionParams& p);
Status run_tiled_prefill(const AttentionParams& p, cudaStream_t stream);
// A short piece after a cached prefix in bucketed cuDNN shapes (PrefillBlocks::query_pieces): whether `backend`
// sends p there (kAuto: work of at least kCudnnBucketMinFlops on a piece kCudnnMinTokens / kCudnnMinFlops leave to the
// own kernel), the workspace its blocks need (the largest query piece's), and all of them in one run.
bool bucketed_prefill_shape(const AttentionParams& p, AttentionBackend backend);
size_t bucketed_prefill_workspace_bytes(const AttentionParams& p);
Status run_bucketed_prefill(const AttentionParams& p, cudaStream_t stream);
// Any other prefill (several sequences through cu_seqlens, keys at kv_start rows of a cache, a cached prefix of
// unknown length) on cuDNN's ragged layout (kernels/cuda/attention_ragged.cu): whether `backend` sends p there (kAuto:
// when its work bound, 4 T max_seqlen_kv Hq D, is at least kCudnnBucketMinFlops), the workspace for its per-sequence
// lengths and offsets, and the run (on a workspace its caller checked: workspace_fits).
bool ragged_prefill_shape(const AttentionParams& p, AttentionBackend backend);
size_t ragged_prefill_workspace_bytes(const AttentionParams& p);
Status run_ragged_prefill(const AttentionParams& p, cudaStream_t stream);

#if defined(VOLT_HAVE_CUDNN_FRONTEND) && VOLT_HAVE_CUDNN_FRONTEND
// libcudnn.so.9 loaded (dlopen, once per process; VOLT_CUDNN_LIBRARY overrides the name) and new enough for SDPA.
bool cudnn_sdpa_available();
// Runs the graph of `spec` on the current device's cuDNN handle, building it (heuristics A) and its workspace the
// first time that spec is seen on that device; later calls (CUDA graph capture included) only execute. Serialised.
// `who` names the caller in errors. Transient specs' graphs are kept up to 32 per device, least recently used dropped.
// `stats` is written when spec.stats (else unused, may be null); seq_len_q / seq_len_kv ([batch] device int32) are
// read when spec.seq_lens, `ragged`'s offsets when spec.ragged.
Status cudnn_sdpa(const CudnnSdpaSpec& spec, const void* q, const void* k, const void* v, void* o,
                  cudaStream_t stream, const char* who, float* stats = nullptr, const int32_t* seq_len_q = nullptr,
                  const int32_t* seq_len_kv = nullptr, const CudnnRaggedOffsets* ragged = nullptr);
// Whether the loaded cuDNN takes ragged specs with grouped KV heads (9.6 or newer).
bool cudnn_sdpa_ragged_available();
// Builds (or finds) the graph of `spec` on the current device without running it: a shape cuDNN rejects is known
// before any work is queued.
Status cudnn_sdpa_prepare(const CudnnSdpaSpec& spec, const char* who);
// The backbone's prefill: one sequence (cu_seqlens, kv_start null), causal GQA, after a cached prefix of
// p.kv_len_host - T keys when kv_lens is set.
Status cudnn_sdpa_prefill(const AttentionParams& p, cudaStream_t stream);
// Every plan that heuristics `modes` ("A", "B", "fallback", comma-separated) offer for `spec`, each built and timed
// on the given tensors (median of `reps` CUDA-event times after two warm-up runs, L2 not flushed) in the heuristics'
// order: what tuning could gain for a shape (volt_ops_bench --only cudnn_plans). Synchronises the device.
Expected<std::vector<CudnnPlanTiming>> cudnn_sdpa_time_plans(const CudnnSdpaSpec& spec, const void* q, const void* k,
                                                              const void* v, void* o, cudaStream_t stream,
                                                              const std::string& modes, int reps,
                                                              float* stats = nullptr);
#else
inline bool cudnn_sdpa_available() { return false; }
inline Status cudnn_sdpa(const CudnnSdpaSpec&, const void*, const void*, const void*, void*, cudaStream_t,
                         const char* who, float* = nullptr, const int32_t* = nullptr, const int32_t* = nullptr,
                         const CudnnRaggedOffsets* = nullptr) {
    return unimplemented(who, ": built without cudnn-frontend");
}
inline bool cudnn_sdpa_ragged_available() { return false; }
inline Status cudnn_sdpa_prepare(const CudnnSdpaSpec&, const char* who) {
    return unimplemented(who, ": built without cudnn-frontend");
}
inline Status cudnn_sdpa_prefill(const AttentionParams&, cudaStream_t) {
    return unimplemented("attention (CUDA): built without cudnn-frontend");
}
inline Expected<std::vector<CudnnPlanTiming>> cudnn_sdpa_time_plans(const CudnnSdpaSpec&, const void*, const void*,
                                                                     const void*, void*, cudaStream_t,
                                                                     const std::string&, int, float* = nullptr) {
    return unimplemented("cuDNN SDPA plans: built without cudnn-frontend");
}
#endif

}  // namespace volt::cuda
