// Prefill batches that are not one packed sequence (several sequences through cu_seqlens, keys at kv_start rows of a
// cache, a cached prefix whose length the host does not know) on cuDNN's ragged layout: each sequence's queries,
// keys, values and outputs start at a device offset, its lengths come from cuDNN's padding mask, and the causal
// diagonal is bottom-right aligned per sequence (query i of a sequence with q_len queries over kv_len keys sees keys
// [0, kv_len - q_len + i]), which is exactly AttentionParams' cached prefix. One small kernel turns cu_seqlens /
// kv_lens / kv_start into cuDNN's lengths and offsets in the workspace; the graph is keyed by bucketed bounds (the
// sequence count and both length bounds rounded up to powers of two, the extra batch entries empty), so that a serving
// process builds a few graphs, not one per batch.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/attention_cuda.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/device_common.cuh"
#include "sdk/cuda_check.h"

namespace volt::cuda {
namespace {

// The graph's bounds for p: batch entries, queries and keys per entry (powers of two; see the file comment).
struct RaggedBounds {
    int64_t batch = 0, queries = 0, keys = 0;
};

// The host's bound on any sequence's keys: max_seqlen_kv, or kv_len_host for one sequence, or (keys = queries) the
// query bound; 0 when kv_lens is set and none of these is known (the graph's key dimension must bound every
// sequence's keys).
int64_t key_bound(const AttentionParams& p, int64_t query_bound) {
    if (!p.kv_lens) return query_bound;
    if (p.max_seqlen_kv > 0) return p.max_seqlen_kv;
    return p.kv_len_host;
}

int64_t query_bound(const AttentionParams& p) {
    return p.max_seqlen_q > 0 ? std::min(p.max_seqlen_q, p.num_tokens) : p.num_tokens;
}

RaggedBounds bounds_of(const AttentionParams& p) {
    const int64_t q = query_bound(p);
    return RaggedBounds{.batch = pow2_at_least(p.num_seqs, 1),
                        .queries = pow2_at_least(q, kCudnnBucketMinRows),
                        .keys = pow2_at_least(key_bound(p, q), kCudnnBucketMinRows)};
}

// Workspace: seq_len_q, seq_len_kv ([batch] int32), then the q, k, v, o offsets ([batch + 1] int64 each).
struct RaggedLayout {
    size_t seq_len_q = 0, seq_len_kv = 0, offsets[4] = {}, total = 0;
};

RaggedLayout layout_of(int64_t batch) {
    RaggedLayout l;
    const size_t lens = align256(size_t(batch) * sizeof(int32_t)), offs = align256(size_t(batch + 1) * 8);
    l.seq_len_kv = lens;
    for (int i = 0; i < 4; ++i) l.offsets[i] = 2 * lens + i * offs;
    l.total = 2 * lens + 4 * offs;
    return l;
}

struct IndexArgs {
    const int32_t* cu_seqlens;  // [N + 1] or null (one sequence of T queries)
    const int32_t* kv_lens;     // [N] or null (keys = queries)
    const int32_t* kv_start;    // [N] or null (keys packed like the queries)
    int64_t T;
    int N;
    int64_t batch, max_q, max_kv;  // the graph's bounds
    int64_t q_st, k_st, v_st, o_st;
    int32_t* seq_len_q;
    int32_t* seq_len_kv;
    int64_t *q_off, *k_off, *v_off, *o_off;
    uint16_t* o;  // outputs of a sequence past the bounds are set to NaN: [T, Hq, D] bf16 at o_st / o_sh
    int64_t o_sh;
    int Hq, D;
};

// Sequence n's first query row, query count, first key row and key count. One that the graph's bounds do not hold
// (the caller's max_seqlen_* promised they would) gets an empty entry (`fits` false), so that nothing is read or
// written past the graph's extent, and its outputs are set to NaN instead of a wrong attention.
struct SeqRows {
    int64_t q0, ql, k0, kl;
    bool fits;
};

__device__ SeqRows seq_rows(const IndexArgs& a, int n) {
    SeqRows r;
    r.q0 = a.cu_seqlens ? a.cu_seqlens[n] : 0;
    r.ql = (a.cu_seqlens ? a.cu_seqlens[n + 1] : a.T) - r.q0;
    r.kl = a.kv_lens ? a.kv_lens[n] : r.ql;
    r.k0 = a.kv_start ? a.kv_start[n] : r.q0;
    r.fits = r.ql >= 0 && r.ql <= a.max_q && r.kl >= 0 && r.kl <= a.max_kv;
    return r;
}

// Entry n < N holds sequence n (in sequence order: putting the most work first measured the same, cuDNN schedules its
// own tiles); entries N .. batch - 1 are empty, and their offsets and the closing one (entry `batch`) point past the
// last sequence's rows.
__global__ void ragged_index_kernel(IndexArgs a) {
    __shared__ int out_of_bounds;
    if (threadIdx.x == 0) out_of_bounds = 0;
    __syncthreads();
    const SeqRows last = seq_rows(a, a.N - 1);
    const int64_t end_q = last.q0 + last.ql, end_k = last.k0 + last.kl;
    for (int64_t e = threadIdx.x; e <= a.batch; e += blockDim.x) {
        if (e >= a.N) {
            if (e < a.batch) a.seq_len_q[e] = 0, a.seq_len_kv[e] = 0;
            a.q_off[e] = end_q * a.q_st, a.o_off[e] = end_q * a.o_st;
            a.k_off[e] = end_k * a.k_st, a.v_off[e] = end_k * a.v_st;
            continue;
        }
        const SeqRows r = seq_rows(a, static_cast<int>(e));
        if (!r.fits) out_of_bounds = 1;
        a.seq_len_q[e] = r.fits ? static_cast<int32_t>(r.ql) : 0;
        a.seq_len_kv[e] = r.fits ? static_cast<int32_t>(r.kl) : 0;
        a.q_off[e] = r.q0 * a.q_st, a.o_off[e] = r.q0 * a.o_st;
        a.k_off[e] = r.k0 * a.k_st, a.v_off[e] = r.k0 * a.v_st;
    }
    __syncthreads();
    if (!out_of_bounds) return;
    // The rare broken promise: every such sequence's output rows (within [0, T)) become NaN, the block together.
    for (int n = 0; n < a.N; ++n) {
        const SeqRows r = seq_rows(a, n);
        if (r.fits) continue;
        const int64_t t0 = min(max(r.q0, int64_t{0}), a.T), t1 = min(max(r.q0 + r.ql, t0), a.T);
        const int64_t per_row = int64_t(a.Hq) * a.D;
        for (int64_t i = threadIdx.x; i < (t1 - t0) * per_row; i += blockDim.x) {
            const int64_t t = t0 + i / per_row, h = i % per_row / a.D, d = i % a.D;
            a.o[t * a.o_st + h * a.o_sh + d] = 0x7fc0;  // bf16 NaN
        }
    }
}

}  // namespace

bool ragged_prefill_shape(const AttentionParams& p, AttentionBackend backend) {
    if (p.phase != AttentionPhase::kPrefill || p.num_tokens <= 0 || p.num_seqs <= 0) return false;
    if (backend != AttentionBackend::kAuto && backend != AttentionBackend::kCudnn) return false;
    // The other cuDNN routes take theirs first.
    if (cudnn_prefill_shape(p, backend) || bucketed_prefill_shape(p, backend)) return false;
    if (!p.cu_seqlens && !p.kv_start && !p.kv_lens) return false;  // one packed sequence below kAuto's bounds
    const int64_t q = query_bound(p), kv = key_bound(p, q);
    if (kv <= 0 || kv > INT32_MAX || q > INT32_MAX) return false;
    if (backend == AttentionBackend::kCudnn) return true;
    return attention_flops(p, kv) >= kCudnnBucketMinFlops;
}

size_t ragged_prefill_workspace_bytes(const AttentionParams& p) { return layout_of(bounds_of(p).batch).total; }

Status run_ragged_prefill(const AttentionParams& p, cudaStream_t stream) {
    const RaggedBounds b = bounds_of(p);
    const RaggedLayout l = layout_of(b.batch);  // run() checked that p.workspace holds it (run_workspace_route)
    auto* base = static_cast<unsigned char*>(p.workspace);
    IndexArgs a{};
    a.cu_seqlens = p.cu_seqlens, a.kv_lens = p.kv_lens, a.kv_start = p.kv_start;
    a.T = p.num_tokens, a.N = p.num_seqs;
    a.batch = b.batch, a.max_q = b.queries, a.max_kv = b.keys;
    a.q_st = p.q_stride_token, a.k_st = p.k_stride_token, a.v_st = p.v_stride_token, a.o_st = p.o_stride_token;
    a.o = static_cast<uint16_t*>(p.o), a.o_sh = p.o_stride_head, a.Hq = p.num_heads, a.D = p.head_dim;
    a.seq_len_q = reinterpret_cast<int32_t*>(base + l.seq_len_q);
    a.seq_len_kv = reinterpret_cast<int32_t*>(base + l.seq_len_kv);
    int64_t* off[4];
    for (int i = 0; i < 4; ++i) off[i] = reinterpret_cast<int64_t*>(base + l.offsets[i]);
    a.q_off = off[0], a.k_off = off[1], a.v_off = off[2], a.o_off = off[3];
    ragged_index_kernel<<<1, 256, 0, stream>>>(a);
    VOLT_CUDA_CHECK_LAUNCH();

    // One sequence's spec over the bounds, then B entries of them at the offsets (stride_b unused by cuDNN there).
    CudnnSdpaSpec spec = prefill_sdpa_spec(p, b.keys, /*causal=*/true, /*stats=*/false, /*transient=*/true);
    spec.batch = b.batch, spec.tokens = b.queries;
    spec.q_stride_b = b.queries * p.q_stride_token, spec.o_stride_b = b.queries * p.o_stride_token;
    spec.seq_lens = spec.ragged = true;
    const CudnnRaggedOffsets offsets{.q = off[0], .k = off[1], .v = off[2], .o = off[3]};
    return cudnn_sdpa(spec, p.q, p.k, p.v, p.o, stream, "attention", nullptr, a.seq_len_q, a.seq_len_kv, &offsets);
}

}  // namespace volt::cuda
