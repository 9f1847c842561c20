// A prefill piece's softmax attention in blocks of keys (kernels/attention_cuda.h, PrefillBlocks): one cuDNN SDPA
// call per block with its rows' softmax statistics, folded into an fp32 accumulator by merge_block_kernel. The blocks
// exist so that a long context's attention is many launches of bounded length, with stop points between them.
//
// Merge of block i (natural-log statistics, the form cuDNN writes):
//     lse = log(exp(lse_acc) + exp(lse_i)),  acc = acc * exp(lse_acc - lse) + o_i * exp(lse_i - lse)
// Block 0 only copies; the last block writes bf16 o. The accumulated statistics alternate between two buffers (16
// threads read a row's value while one of them writes the new one).
//
// Bucketed shapes (PrefillBlocks::query_pieces, a chat turn after a long prefix): each query piece's queries are
// copied into the last T of Tb staged rows (its block 0 does it), every block runs on the staged rows into a staged
// output, and the merges read the piece's rows of it; the piece's last merge writes its rows of o. The blocks are
// aligned to the piece's end, so their shapes are (Tb, block_keys) with a padding mask and (Tb, Tb) causal whatever
// the prefix length.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention_cuda.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/device_common.cuh"
#include "sdk/cuda_check.h"
#include "sdk/log.h"

namespace volt::cuda {
namespace {

constexpr int kD = 128;
constexpr int kChunk = 8;               // bf16 elements per thread (one 16-byte load)
constexpr int kChunksPerRow = kD / kChunk;
constexpr int kMergeThreads = 256;

struct MergeArgs {
    const __nv_bfloat16* blk;  // this block's output: query t, head h at blk[t * blk_st + h * blk_sh]
    int64_t blk_st, blk_sh;
    __nv_bfloat16* o;          // the piece's output [T, Hq, D] at o[t * o_st + h * o_sh + d]: the last merge's result
    int64_t o_st, o_sh;
    float* acc;                // [T, Hq, D] contiguous
    const float* lse_blk;      // this block's statistics: query t, head h at lse_blk[h * lse_blk_sh + t]
    int64_t lse_blk_sh;
    const float* lse_in;       // [Hq, T] the accumulated statistics so far (unused by the first block)
    float* lse_out;            // [Hq, T] after this block (unused by the last)
    int64_t T;
    int Hq;
    bool first, last;
};

__global__ void __launch_bounds__(kMergeThreads) merge_block_kernel(MergeArgs a) {
    const int64_t i = int64_t(blockIdx.x) * kMergeThreads + threadIdx.x;
    if (i >= a.T * a.Hq * kChunksPerRow) return;
    const int c = static_cast<int>(i % kChunksPerRow);
    const int64_t row = i / kChunksPerRow;  // t * Hq + h
    const int h = static_cast<int>(row % a.Hq);
    const int64_t t = row / a.Hq;
    const int64_t stat = int64_t(h) * a.T + t;
    __nv_bfloat16* o = a.o + t * a.o_st + h * a.o_sh + c * kChunk;
    float* acc = a.acc + row * kD + c * kChunk;
    float x[kChunk];
    unpack8(*reinterpret_cast<const uint4*>(a.blk + t * a.blk_st + h * a.blk_sh + c * kChunk), x);
    const float lb = a.lse_blk[h * a.lse_blk_sh + t];
    if (a.first) {
        if (a.last) {  // one block: its output is the attention
            *reinterpret_cast<uint4*>(o) = pack8(x);
            return;
        }
        reinterpret_cast<float4*>(acc)[0] = make_float4(x[0], x[1], x[2], x[3]);
        reinterpret_cast<float4*>(acc)[1] = make_float4(x[4], x[5], x[6], x[7]);
        if (c == 0) a.lse_out[stat] = lb;
        return;
    }
    const float la = a.lse_in[stat];
    const float m = fmaxf(la, lb);
    const float wa = __expf(la - m), wb = __expf(lb - m), inv = 1.0f / (wa + wb);
    const float4 a0 = reinterpret_cast<const float4*>(acc)[0], a1 = reinterpret_cast<const float4*>(acc)[1];
    const float y[kChunk] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
#pragma unroll
    for (int j = 0; j < kChunk; ++j) x[j] = (y[j] * wa + x[j] * wb) * inv;
    if (a.last) {
        *reinterpret_cast<uint4*>(o) = pack8(x);
        return;
    }
    reinterpret_cast<float4*>(acc)[0] = make_float4(x[0], x[1], x[2], x[3]);
    reinterpret_cast<float4*>(acc)[1] = make_float4(x[4], x[5], x[6], x[7]);
    if (c == 0) a.lse_out[stat] = m + __logf(wa + wb);
}

struct StageArgs {
    const __nv_bfloat16* q;  // [T, Hq, D] at q[t * q_st + h * q_sh + d]
    int64_t q_st, q_sh;
    __nv_bfloat16* staged;   // [Tb, Hq, D] contiguous: rows [0, Tb - T) zero, then the piece's T queries
    int32_t* lens;           // [2]: Tb (block 0's valid queries), block 0's valid keys (its padding mask)
    int64_t T, Tb;
    int Hq;
    int32_t first_keys;
};

__global__ void __launch_bounds__(kMergeThreads) stage_queries_kernel(StageArgs a) {
    const int64_t i = int64_t(blockIdx.x) * kMergeThreads + threadIdx.x;
    if (i == 0) {
        a.lens[0] = static_cast<int32_t>(a.Tb);
        a.lens[1] = a.first_keys;
    }
    if (i >= a.Tb * a.Hq * kChunksPerRow) return;
    const int c = static_cast<int>(i % kChunksPerRow);
    const int64_t row = i / kChunksPerRow;  // r * Hq + h
    const int h = static_cast<int>(row % a.Hq);
    const int64_t t = row / a.Hq - (a.Tb - a.T);  // the piece's query, < 0 in the padding rows
    uint4 x = make_uint4(0, 0, 0, 0);
    if (t >= 0) x = *reinterpret_cast<const uint4*>(a.q + t * a.q_st + h * a.q_sh + c * kChunk);
    *reinterpret_cast<uint4*>(a.staged + row * kD + c * kChunk) = x;
}

int64_t keys_of(const AttentionParams& p) { return p.kv_len_host > 0 ? p.kv_len_host : p.num_tokens; }

// Byte offsets of a plan's workspace parts (each 256-byte aligned): the block's statistics ([Hq, Tb or T]); with
// more than one block the two accumulated statistics ([Hq, T]) and the fp32 accumulator; bucketed, the staged
// queries, the staged block output and block 0's two lengths.
struct WorkspaceLayout {
    size_t lse_blk = 0, lse_even = 0, lse_odd = 0, acc = 0, q_staged = 0, o_staged = 0, lens = 0, total = 0;
};

WorkspaceLayout workspace_layout(int64_t T, int64_t Tb, int heads, int count) {
    WorkspaceLayout l;
    auto take = [&](size_t bytes) {
        const size_t at = l.total;
        l.total += align256(bytes);
        return at;
    };
    l.lse_blk = take(size_t(Tb > 0 ? Tb : T) * heads * sizeof(float));
    if (count > 1) {
        l.lse_even = take(size_t(T) * heads * sizeof(float));
        l.lse_odd = take(size_t(T) * heads * sizeof(float));
        l.acc = take(size_t(T) * heads * kD * sizeof(float));
    }
    if (Tb > 0) {
        l.q_staged = take(size_t(Tb) * heads * kD * sizeof(__nv_bfloat16));
        l.o_staged = take(size_t(Tb) * heads * kD * sizeof(__nv_bfloat16));
        l.lens = take(2 * sizeof(int32_t));
    }
    return l;
}

// Keys a block of `rows` query rows may hold within max_block_flops (4 rows keys Hq D flops), clamped to int64.
int64_t keys_within(const AttentionParams& p, int64_t rows, double max_block_flops) {
    const double per_key = 4.0 * double(rows) * double(p.num_heads) * double(p.head_dim);
    return static_cast<int64_t>(std::min(max_block_flops / per_key, 9.0e15));
}

// One run of key blocks for one query piece: the plan's blocks (not bucketed: staged_queries 0) or one bucketed
// query piece's (PrefillBlocks::QueryPiece, with p narrowed to its queries by piece_params).
struct BlockShape {
    int count = 1;
    int64_t block_keys = 0, staged_queries = 0, first_keys = 0;
};

BlockShape shape_of(const PrefillBlocks& plan) { return {plan.count, plan.block_keys, 0, 0}; }
BlockShape shape_of(const PrefillBlocks::QueryPiece& q) {
    return {q.count, q.block_keys, q.staged_queries, q.first_keys};
}

// p narrowed to queries [q0, q0 + n) of its T: the keys its last query sees end T - q0 - n before p's.
AttentionParams piece_params(const AttentionParams& p, int64_t q0, int64_t n) {
    AttentionParams pp = p;
    pp.num_tokens = n;
    pp.q = static_cast<const __nv_bfloat16*>(p.q) + q0 * p.q_stride_token;
    pp.o = static_cast<__nv_bfloat16*>(p.o) + q0 * p.o_stride_token;
    pp.kv_len_host = keys_of(p) - (p.num_tokens - q0 - n);
    pp.max_seqlen_q = n;
    pp.max_seqlen_kv = pp.kv_len_host;
    return pp;
}

// Block `block`'s first key and key count.
std::pair<int64_t, int64_t> block_range(const AttentionParams& p, const BlockShape& sh, int block) {
    if (sh.staged_queries > 0) {
        if (block + 1 == sh.count) return {keys_of(p) - sh.staged_queries, sh.staged_queries};
        if (block == 0) return {0, sh.first_keys};
        return {sh.first_keys + int64_t(block - 1) * sh.block_keys, sh.block_keys};
    }
    const int64_t begin = int64_t(block) * sh.block_keys;
    const int64_t end = block + 1 < sh.count ? begin + sh.block_keys : keys_of(p);
    return {begin, end - begin};
}

CudnnSdpaSpec block_spec(const AttentionParams& p, const BlockShape& sh, int block) {
    const bool last = block + 1 == sh.count;
    if (sh.staged_queries == 0)
        return prefill_sdpa_spec(p, block_range(p, sh, block).second, /*causal=*/last, /*stats=*/true,
                                 /*transient=*/true);
    // Staged rows [Tb, Hq, D] in and out; every block but the last sees block_keys keys, block 0 through the padding
    // mask when it holds fewer (the mask costs ~20% on every key, so whole blocks go without it). Three shapes per
    // (Tb, block_keys), so the graphs stay for the process.
    const int64_t Tb = sh.staged_queries;
    CudnnSdpaSpec s = staged_block_spec(p, Tb, last ? Tb : sh.block_keys, /*causal=*/last);
    s.seq_lens = block == 0 && !last && sh.first_keys < sh.block_keys;
    return s;
}

// The graphs of a shape's blocks built (its first, a middle and its last block's): a shape cuDNN rejects is an error
// under the cuDNN backends; under kAuto the plan becomes "the piece whole on the own kernel".
Status prepare_blocks(const AttentionParams& p, const BlockShape& sh, AttentionBackend backend, PrefillBlocks& plan) {
    for (int block : {0, std::min(1, sh.count - 1), sh.count - 1}) {
        const Status st = cudnn_sdpa_prepare(block_spec(p, sh, block), "attention");
        if (st.is_ok()) continue;
        if (backend != AttentionBackend::kAuto) return st;
        static std::atomic<bool> warned{false};
        if (!warned.exchange(true))
            VOLT_LOG(kWarn, kKernel, "attention: cuDNN SDPA rejected a key block, using the own prefill kernel: ",
                     st.to_string());
        const int count = plan.count;
        plan = PrefillBlocks{};
        plan.count = count;
        plan.whole_in_first = true;
        break;
    }
    return Status::ok();
}

// p's blocks of block_keys keys (a multiple of p.num_tokens) with their graphs built.
Expected<PrefillBlocks> plan_blocks(const AttentionParams& p, int64_t block_keys, AttentionBackend backend) {
    PrefillBlocks plan;
    const int64_t T = p.num_tokens, S = keys_of(p);
    plan.cudnn = true;
    if (S > block_keys) {
        // Blocks at multiples of block_keys; the last one holds the piece's own keys [S - T, S) whole.
        const int64_t full = (S - T) / block_keys;
        if (full + 1 > (int64_t{1} << 30)) return invalid_argument("attention (CUDA): too many key blocks");
        plan.block_keys = block_keys;
        plan.count = static_cast<int>(full + 1);
    }
    plan.workspace_bytes = workspace_layout(T, 0, p.num_heads, plan.count).total;
    VOLT_RETURN_IF_ERROR(prepare_blocks(p, shape_of(plan), backend, plan));
    return plan;
}

// The query pieces of a bucketed piece of T queries: a power of two's worth first whenever that and a bucket for the
// rest stage fewer rows than one bucket for all (2062 = 2048 + 14 stages 2048 + 128 rows instead of 4096; 1000 stays
// whole in 1024); at most 7 pieces (8192 / 128 + the rest).
std::vector<int64_t> split_query_pieces(int64_t T) {
    std::vector<int64_t> pieces;
    while (T > 0) {
        int64_t whole = 1;
        while (whole * 2 <= T) whole *= 2;
        if (whole < kCudnnBucketMinRows || whole == T ||
            whole + bucket_query_rows(T - whole) >= bucket_query_rows(T)) {
            pieces.push_back(T);
            break;
        }
        pieces.push_back(whole);
        T -= whole;
    }
    return pieces;
}

// One query piece's bucketed blocks (bucketed_prefill_shape; p narrowed to the piece): Tb staged rows, a causal
// last block of Tb keys, and before it blocks of block_keys aligned to it. block_keys: the power of two at most
// kCudnnBucketMaxBlockKeys, the keys within max_block_flops and the P keys before the last block (so at least one
// block is whole and block 0's padded extent holds real keys), but at least kCudnnBucketMinRows (<= Tb <= S).
Expected<PrefillBlocks::QueryPiece> plan_query_piece(const AttentionParams& p, double max_block_flops) {
    const int64_t T = p.num_tokens, S = keys_of(p), Tb = bucket_query_rows(T);
    const int64_t prefix = S - Tb;  // keys before the last block
    const int64_t cap = std::min({kCudnnBucketMaxBlockKeys, keys_within(p, Tb, max_block_flops), prefix});
    int64_t block_keys = kCudnnBucketMinRows;
    while (block_keys * 2 <= cap) block_keys *= 2;
    const int64_t before = (prefix + block_keys - 1) / block_keys;
    if (before + 1 > (int64_t{1} << 28)) return invalid_argument("attention (CUDA): too many key blocks");
    PrefillBlocks::QueryPiece q;
    q.tokens = T;
    q.staged_queries = Tb;
    q.block_keys = block_keys;
    q.first_keys = before > 0 ? prefix - (before - 1) * block_keys : 0;
    q.count = static_cast<int>(before + 1);
    return q;
}

// A bucketed piece's query pieces (split_query_pieces) one after another with their blocks, and the workspace the
// largest needs; no graph built yet.
Expected<PrefillBlocks> lay_out_bucketed(const AttentionParams& p, double max_block_flops) {
    PrefillBlocks plan;
    plan.cudnn = true;
    plan.count = 0;
    int64_t q0 = 0;
    for (int64_t n : split_query_pieces(p.num_tokens)) {
        if (plan.query_pieces == PrefillBlocks::kMaxQueryPieces)
            return internal_error("attention (CUDA): more query pieces than ", PrefillBlocks::kMaxQueryPieces);
        const AttentionParams pp = piece_params(p, q0, n);
        VOLT_ASSIGN_OR_RETURN(PrefillBlocks::QueryPiece q, plan_query_piece(pp, max_block_flops));
        q.first_query = q0;
        q.first_block = plan.count;
        plan.count += q.count;
        plan.workspace_bytes = std::max(
            plan.workspace_bytes, workspace_layout(n, q.staged_queries, p.num_heads, q.count).total);
        plan.piece[plan.query_pieces++] = q;
        q0 += n;
    }
    return plan;
}

// lay_out_bucketed with each query piece's graphs built.
Expected<PrefillBlocks> plan_bucketed(const AttentionParams& p, double max_block_flops, AttentionBackend backend) {
    VOLT_ASSIGN_OR_RETURN(PrefillBlocks plan, lay_out_bucketed(p, max_block_flops));
    for (int i = 0; i < plan.query_pieces && plan.cudnn; ++i) {
        const PrefillBlocks::QueryPiece& q = plan.piece[i];
        VOLT_RETURN_IF_ERROR(prepare_blocks(piece_params(p, q.first_query, q.tokens), shape_of(q), backend, plan));
    }
    return plan;
}

// A fresh (packed) prefill of more than kTileAboveTokens queries runs as pieces of kQueryTile queries, piece j over
// keys [0, (j + 1) kQueryTile) in blocks of kTileBlockKeys: one cuDNN call over 128K causal keys runs at ~545
// TFLOP/s on an H100, these pieces at ~600 (torch's SDPA: 562); at 32K the single call is as fast (~615).
constexpr int64_t kTileAboveTokens = 32768, kQueryTile = 8192, kTileBlockKeys = 8 * kQueryTile;

bool tiles_queries(const AttentionParams& p) {
    return p.phase == AttentionPhase::kPrefill && p.num_seqs == 1 && !p.cu_seqlens && !p.kv_start && !p.kv_lens &&
           p.kv_len_host == 0 && p.num_tokens > kTileAboveTokens;
}

// Block `block` of one shape's blocks on p (narrowed to its query piece), the workspace checked by the caller.
Status run_block(const AttentionParams& p, const BlockShape& sh, int block, cudaStream_t stream) {
    const int64_t T = p.num_tokens, Tb = sh.staged_queries;
    const WorkspaceLayout l = workspace_layout(T, Tb, p.num_heads, sh.count);
    auto* base = static_cast<unsigned char*>(p.workspace);
    auto* lse_blk = reinterpret_cast<float*>(base + l.lse_blk);
    auto* q_staged = reinterpret_cast<__nv_bfloat16*>(base + l.q_staged);
    auto* o_staged = reinterpret_cast<__nv_bfloat16*>(base + l.o_staged);
    auto* lens = reinterpret_cast<int32_t*>(base + l.lens);
    if (Tb > 0 && block == 0) {
        StageArgs sa{};
        sa.q = static_cast<const __nv_bfloat16*>(p.q);
        sa.q_st = p.q_stride_token, sa.q_sh = p.q_stride_head;
        sa.staged = q_staged;
        sa.lens = lens;
        sa.T = T, sa.Tb = Tb, sa.Hq = p.num_heads;
        sa.first_keys = static_cast<int32_t>(sh.first_keys);
        const int64_t threads = Tb * p.num_heads * kChunksPerRow;
        stage_queries_kernel<<<static_cast<unsigned>((threads + kMergeThreads - 1) / kMergeThreads), kMergeThreads,
                               0, stream>>>(sa);
        VOLT_CUDA_CHECK_LAUNCH();
    }

    const int64_t begin = block_range(p, sh, block).first;
    const auto* k = static_cast<const __nv_bfloat16*>(p.k) + begin * p.k_stride_token;
    const auto* v = static_cast<const __nv_bfloat16*>(p.v) + begin * p.v_stride_token;
    const void* q = Tb > 0 ? static_cast<const void*>(q_staged) : p.q;
    void* o = Tb > 0 ? static_cast<void*>(o_staged) : p.o;
    VOLT_RETURN_IF_ERROR(cudnn_sdpa(block_spec(p, sh, block), q, k, v, o, stream, "attention", lse_blk, lens,
                                    lens + 1));
    if (sh.count == 1 && Tb == 0) return Status::ok();  // o is the attention

    MergeArgs a{};
    const int64_t row = int64_t(p.num_heads) * kD;
    if (Tb > 0) {  // the piece's rows of the staged output and statistics: the last T of Tb
        a.blk = o_staged + (Tb - T) * row;
        a.blk_st = row, a.blk_sh = kD;
        a.lse_blk = lse_blk + (Tb - T);
        a.lse_blk_sh = Tb;
    } else {  // in place in o
        a.blk = static_cast<const __nv_bfloat16*>(p.o);
        a.blk_st = p.o_stride_token, a.blk_sh = p.o_stride_head;
        a.lse_blk = lse_blk;
        a.lse_blk_sh = T;
    }
    a.o = static_cast<__nv_bfloat16*>(p.o);
    a.o_st = p.o_stride_token, a.o_sh = p.o_stride_head;
    a.acc = reinterpret_cast<float*>(base + l.acc);
    a.lse_in = reinterpret_cast<float*>(base + (block % 2 ? l.lse_even : l.lse_odd));  // written by the block before
    a.lse_out = reinterpret_cast<float*>(base + (block % 2 ? l.lse_odd : l.lse_even));
    a.T = T;
    a.Hq = p.num_heads;
    a.first = block == 0;
    a.last = block + 1 == sh.count;
    const int64_t threads = T * p.num_heads * kChunksPerRow;
    merge_block_kernel<<<static_cast<unsigned>((threads + kMergeThreads - 1) / kMergeThreads), kMergeThreads, 0,
                         stream>>>(a);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace

bool bucketed_prefill_shape(const AttentionParams& p, AttentionBackend backend) {
    // One sequence after a cached prefix, its key count known on the host, at least the last query piece's bucket of
    // keys (its last block is a square of the bucket's rows ending at the piece's last key; the other pieces' keys
    // always hold theirs).
    if (p.phase != AttentionPhase::kPrefill || p.num_seqs != 1 || !p.kv_lens || p.kv_len_host <= 0 || p.kv_start ||
        p.cu_seqlens || p.num_tokens <= 0 || p.num_tokens > kCudnnMinTokens)
        return false;
    if (p.kv_len_host < bucket_query_rows(split_query_pieces(p.num_tokens).back())) return false;
    if (backend == AttentionBackend::kCudnnBuckets) return true;
    return backend == AttentionBackend::kAuto && !cudnn_prefill_shape(p, backend) &&
           prefill_attention_flops(p) >= kCudnnBucketMinFlops;
}

size_t tiled_prefill_workspace_bytes(const AttentionParams& p) {
    return tiles_queries(p) ? workspace_layout(kQueryTile, 0, p.num_heads, 2).total : 0;
}

size_t bucketed_prefill_workspace_bytes(const AttentionParams& p) {
    // Any bound lays out the same buffers: a piece merges (needs accumulators) exactly when it has keys before its
    // causal square, whatever its block size.
    const Expected<PrefillBlocks> plan = lay_out_bucketed(p, std::numeric_limits<double>::infinity());
    return plan.has_value() ? plan->workspace_bytes : 0;
}

Status run_bucketed_prefill(const AttentionParams& p, cudaStream_t stream) {
    VOLT_ASSIGN_OR_RETURN(const PrefillBlocks plan,
                          plan_bucketed(p, std::numeric_limits<double>::infinity(),
                                        resolve_prefill_backend(p.prefill_backend)));
    for (int b = 0; b < plan.count; ++b) VOLT_RETURN_IF_ERROR(run_prefill_block(p, plan, b, stream));
    return Status::ok();
}

Status run_tiled_prefill(const AttentionParams& p, cudaStream_t stream) {
    const int64_t T = p.num_tokens;
    for (int64_t q0 = 0; q0 < T; q0 += kQueryTile) {
        // Keys [0, q0 + Q) from row 0 (none counted on the device).
        const AttentionParams piece = piece_params(p, q0, std::min(kQueryTile, T - q0));
        VOLT_ASSIGN_OR_RETURN(const PrefillBlocks plan, plan_blocks(piece, kTileBlockKeys, AttentionBackend::kCudnn));
        for (int b = 0; b < plan.count; ++b) VOLT_RETURN_IF_ERROR(run_prefill_block(piece, plan, b, stream));
    }
    return Status::ok();
}

Expected<PrefillBlocks> plan_prefill_blocks(const AttentionParams& p, double max_block_flops) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const AttentionBackend backend = resolve_prefill_backend(p.prefill_backend);
    const bool bucketed = bucketed_prefill_shape(p, backend);
    if (p.num_tokens == 0 || !p.kv_lens || !(bucketed || cudnn_prefill_shape(p, backend)) || !cudnn_sdpa_available())
        return PrefillBlocks{};
    if (!(max_block_flops > 0.0)) return invalid_argument("attention (CUDA): max_block_flops must be positive");
    if (bucketed) return plan_bucketed(p, max_block_flops, backend);
    const int64_t T = p.num_tokens;
    // Keys per block: the work bound, at least T and a multiple of T (a prompt's pieces then share graph shapes).
    return plan_blocks(p, std::max<int64_t>(1, keys_within(p, T, max_block_flops) / T) * T, backend);
}

Status run_prefill_block(const AttentionParams& p, const PrefillBlocks& plan, int block, cudaStream_t stream) {
    if (block < 0 || block >= plan.count)
        return invalid_argument("attention (CUDA): key block ", block, " of a plan of ", plan.count);
    if (!plan.cudnn) {
        if (block > 0) return Status::ok();  // whole_in_first: block 0 did it all
        AttentionParams whole = p;
        if (plan.whole_in_first) whole.prefill_backend = AttentionBackend::kOwn;
        return run(whole, stream);
    }
    VOLT_RETURN_IF_ERROR(validate(p));
    if (!workspace_fits(p, plan.workspace_bytes))
        return invalid_argument("attention (CUDA): key blocks need a 256-byte aligned workspace of ",
                                plan.workspace_bytes, " bytes, got ", p.workspace_bytes);
    if (plan.query_pieces == 0) return run_block(p, shape_of(plan), block, stream);
    int i = 0;
    while (i + 1 < plan.query_pieces && block >= plan.piece[i + 1].first_block) ++i;
    const PrefillBlocks::QueryPiece& q = plan.piece[i];
    if (q.first_query + q.tokens > p.num_tokens || q.staged_queries < q.tokens)
        return invalid_argument("attention (CUDA): a plan's query piece [", q.first_query, ", ",
                                q.first_query + q.tokens, ") does not fit a piece of ", p.num_tokens, " queries");
    const AttentionParams pp = piece_params(p, q.first_query, q.tokens);
    if (keys_of(pp) < q.staged_queries)
        return invalid_argument("attention (CUDA): a plan of ", q.staged_queries, " staged queries does not fit ",
                                keys_of(pp), " keys");
    return run_block(pp, shape_of(q), block - q.first_block, stream);
}

}  // namespace volt::cuda
