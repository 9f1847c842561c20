// Causal softmax attention with grouped KV heads on the GPU (MiniMax softmax layers, architecture §3). CUDA-only
// interface; the CPU twin is cpu::attention (kernels/attention.h): query i of a sequence with P cached positions sits
// at position P + i and attends to keys [0, P + i]:
//     o_{t,h} = sum_j softmax_j(scale * q_{t,h} . k_{j,g}) v_{j,g},   g = h / (Hq / Hkv)
// bf16 q/k/v/o, fp32 scores, softmax and accumulation, head_dim 128 (partial RoPE already applied to q and k).
//
// Sequences are batched: sequence n owns queries [cu_seqlens[n], cu_seqlens[n+1]) of q/o and keys
// [kv_start[n], kv_start[n] + kv_lens[n]) of k/v (a packed prefill batch, or a KV cache with one region per
// sequence); its cached prefix is P_n = kv_lens[n] - q_len_n >= 0.
//   kDecode: exactly one query per sequence (query n belongs to sequence n; cu_seqlens ignored). Split-KV
//     ("flash decoding"): one CTA per (key split, kv head, sequence) scores all Hq/Hkv query heads of the group
//     against each key on tensor cores, so every K/V element is read once per group; splits are sized to fill the
//     GPU and merged by a second kernel (needs the workspace, else one split per sequence).
//   kPrefill: FlashAttention-2-style CTAs of 64 queries x one head (mma.sync, online softmax, causal tiles skipped);
//     with cudnn-frontend at build time (VOLT_HAVE_CUDNN_FRONTEND) and libcudnn loadable at run time, a single
//     sequence goes to cuDNN's SDPA instead: k/v packed like q (no kv_lens), or keys counted by kv_lens whose number
//     the host knows (kv_len_host; after a cached prefix the causal diagonal is bottom-right aligned) when the piece
//     is long enough to pay for a graph build (kCudnnMinTokens, kCudnnMinFlops: cuDNN builds one graph per
//     query/key length pair).
//     A shorter piece after a long cached prefix (a chat turn) goes to cuDNN in bucketed shapes instead
//     (kCudnnBuckets, needs the workspace): its queries copied into a buffer of a power-of-two number of rows (the
//     piece in the last ones), its keys in blocks aligned to the piece's end, so that one process builds a couple of
//     graphs per query bucket, not one per turn (see PrefillBlocks).
//     Any other batch (several sequences through cu_seqlens, keys at kv_start rows of a cache) goes to cuDNN's ragged
//     layout (cuDNN 9.6 or newer, needs the workspace and a host bound on every sequence's keys: max_seqlen_kv, or
//     kv_len_host for one sequence): per-sequence offsets and lengths, the causal diagonal bottom-right aligned per
//     sequence; kAuto sends it there when 4 T max_seqlen_kv Hq D >= kCudnnBucketMinFlops (its graphs are keyed by
//     power-of-two bounds, a few per process).
//     AttentionParams::prefill_backend; kAuto reads VOLT_ATTENTION_PREFILL=own|cudnn|cudnn_buckets once per process
//     (A/B timing).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

enum class AttentionPhase : uint8_t { kPrefill, kDecode };
// Prefill kernel: kAuto = cuDNN when the batch qualifies and cuDNN is available, else the own kernel; kCudnn (one
// graph of the exact lengths) and kCudnnBuckets (bucketed graphs; one sequence after a cached prefix of known length,
// at least as many keys as the query bucket) fail with UNIMPLEMENTED / INVALID_ARGUMENT when they cannot be used.
enum class AttentionBackend : uint8_t { kAuto, kOwn, kCudnn, kCudnnBuckets };
// Shortest kv_lens piece (the backbone's prefill pieces) that kAuto sends to cuDNN: each new (queries, keys) pair
// builds a cuDNN graph (tens of ms), which a chat turn of a few hundred tokens would not earn back; long pieces run
// ~3x faster there than in the own kernel (64 / 8 heads: 645 vs 212 TFLOP/s at 8K).
constexpr int64_t kCudnnMinTokens = 8192;
// ... or a shorter piece whose attention is at least this much work (4 * T * keys * Hq * D flops: a few thousand
// tokens after a cached prefix of hundreds of thousands; ~50 ms in the own kernel, ~17 ms in cuDNN).
constexpr double kCudnnMinFlops = 1e13;
// Shorter pieces after a cached prefix that kAuto sends to cuDNN in bucketed shapes (kCudnnBuckets), and batches it
// sends to cuDNN's ragged layout (a bound: 4 T max_seqlen_kv Hq D): at least this much attention work (~1 ms per
// layer in the own kernel, ~0.3 ms in cuDNN). Below it a chat over a small context would pay cuDNN's one-time start
// (~1.5 s) and its bucket graphs (~0.1 s each) to save little per turn.
constexpr double kCudnnBucketMinFlops = 2e11;
// Query buckets: the piece's T queries sit in the last T of max(kCudnnBucketMinRows, next power of two >= T) rows.
constexpr int64_t kCudnnBucketMinRows = 128;
// Keys of each bucketed block but the last (a power of two, at most this; fewer when the flop bound asks).
constexpr int64_t kCudnnBucketMaxBlockKeys = 65536;

struct AttentionParams {
    AttentionPhase phase = AttentionPhase::kPrefill;
    AttentionBackend prefill_backend = AttentionBackend::kAuto;
    int64_t num_tokens = 0;     // T: queries of all sequences (decode: T == N)
    int num_seqs = 0;           // N
    int num_heads = 0;          // Hq
    int num_kv_heads = 0;       // Hkv, divides Hq; Hq / Hkv <= 16
    int head_dim = 128;         // D (128 only)
    float scale = 0.0f;         // usually 1/sqrt(D)

    const void* q = nullptr;    // [T, Hq, D] bf16: (t, h, d) at q[t*q_stride_token + h*q_stride_head + d]
    int64_t q_stride_token = 0, q_stride_head = 0;
    const void* k = nullptr;    // [rows, Hkv, D] bf16
    int64_t k_stride_token = 0, k_stride_head = 0;
    const void* v = nullptr;    // [rows, Hkv, D] bf16
    int64_t v_stride_token = 0, v_stride_head = 0;
    void* o = nullptr;          // [T, Hq, D] bf16
    int64_t o_stride_token = 0, o_stride_head = 0;

    // [N + 1] device, prefill only: cu_seqlens[0] == 0, sequence n owns queries [cu_seqlens[n], cu_seqlens[n+1]),
    // last == T. Null: one sequence of T queries (N must be 1).
    const int32_t* cu_seqlens = nullptr;
    // [N] device keys of each sequence (cached prefix + its new tokens). Null: kv_lens[n] = q_len_n (prefill without
    // a prefix); required in decode.
    const int32_t* kv_lens = nullptr;
    // [N] device row of k/v where sequence n's key 0 sits. Null: cu_seqlens[n] (k/v packed like q; 0 without
    // cu_seqlens); required in decode when N > 1.
    const int32_t* kv_start = nullptr;
    // Decode only, instead of k/v + kv_start: [N] device arrays of device pointers to sequence n's key / value row 0
    // (16-byte aligned; rows k_stride_token / v_stride_token apart, heads *_stride_head): a decode batch of
    // sequences whose caches live apart (continuous batching). Set both or neither.
    const void* const* k_seqs = nullptr;
    const void* const* v_seqs = nullptr;
    // Host-side upper bounds used to size the grid (0: T): queries per sequence and keys per sequence. cuDNN's
    // ragged layout sizes its graph by them (rounded up to powers of two); a sequence longer than that gets NaN
    // outputs there (never an attention over cut-off keys).
    int64_t max_seqlen_q = 0;
    int64_t max_seqlen_kv = 0;
    // Prefill of one sequence (no cu_seqlens / kv_start): its exact key count (cached prefix + T, equal to kv_lens[0])
    // when the host knows it, so that a long piece (after a cached prefix or not) can go to cuDNN; 0: unknown.
    int64_t kv_len_host = 0;

    // Device scratch of attention_workspace_bytes(p) bytes, 256-byte aligned: decode's split-KV partials; a fresh
    // cuDNN prefill of more than 32K queries, which then runs in pieces of 8192 queries and blocks of keys merged by
    // their softmax statistics (~1.1x one call at 128K); a piece in bucketed cuDNN shapes (kCudnnBuckets). Null or
    // too small: decode runs one split per sequence, such a long prefill one cuDNN call and such a piece the own
    // kernel under kAuto (all correct, slower); kCudnnBuckets reports it. cuDNN's ragged layout keeps each
    // sequence's lengths and offsets here (a few bytes per sequence); without it such a batch runs on the own kernel
    // under kAuto, and kCudnn reports it.
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
};

Status validate(const AttentionParams& p);
// Scratch bytes `run` wants for this call on the current device (depends on shapes, max_seqlen_kv, the SM count).
size_t attention_workspace_bytes(const AttentionParams& p);
// Key splits per sequence a decode launch of `p` uses with that workspace on the current device (1 for prefill):
// the only thing its launch takes from the host's max_seqlen_kv, so a CUDA graph of decode steps captured for one
// count replays every max_seqlen_kv that plans the same count.
int decode_splits(const AttentionParams& p);
Status run(const AttentionParams& p, cudaStream_t stream);

// A prefill piece's attention in blocks of keys, so that no single launch holds the GPU for long (a stop is seen
// between launches: an 8192-token piece after 1M cached keys is 2.7e14 flops, ~0.5 s in one cuDNN call) and the
// caller may stop between blocks. Blocks start at multiples of block_keys from key 0: every block but the last is
// seen whole by every query (no mask); the last one ends at the piece's last key and holds its causal diagonal
// (bottom-right aligned). Each block is one cuDNN SDPA call writing o and its rows' softmax statistics; a merge
// kernel folds it into an fp32 accumulator in the workspace (o = sum_i exp(lse_i - lse) o_i), and the last block's
// merge writes o. With pieces of T tokens and block_keys a multiple of T (as planned), a prompt's pieces share at
// most block_keys / T + 1 graph shapes.
//   A single-sequence prefill after a cached prefix that is routed to cuDNN (see kPrefill above) takes this path
// even as one block (its graphs then are the last-block shapes the longer pieces use too); anything else is one
// block that run_prefill_block(p, plan, 0) runs as run(p).
struct PrefillBlocks {
    int count = 1;               // run_prefill_block calls, blocks 0 .. count - 1 in order
    int64_t block_keys = 0;      // keys of each block but the last (0: one block)
    bool cudnn = false;          // the blocks run through cuDNN with statistics (else block 0 is run(p))
    size_t workspace_bytes = 0;  // p.workspace the blocks need: 3 x [Hq, T] fp32 statistics + [T, Hq, D] fp32
                                 // accumulator (only the block's statistics when count == 1); bucketed, also
                                 // the staged queries and their block output, for the largest query piece
    // cuDNN could not build a block's graph (kAuto): block 0 runs the whole piece on the own kernel, the others
    // nothing (the count stays what the shapes give, so several GPUs of one split model agree on it).
    bool whole_in_first = false;
    // Bucketed shapes (kCudnnBuckets): the piece's queries in up to kMaxQueryPieces consecutive query pieces, each
    // staged in a power-of-two bucket (a piece just past a power of two, e.g. 2062 = 2048 + 14, runs as two instead
    // of in a bucket twice its size), the pieces' blocks one after the other; 0: not bucketed.
    int query_pieces = 0;
    struct QueryPiece {
        int64_t first_query = 0, tokens = 0;  // the piece's queries [first_query, first_query + tokens) of p's
        // Tb >= tokens rows in the workspace, the piece's queries in the last ones (the first Tb - tokens zero: their
        // outputs are dropped). Its last block is the Tb keys ending at its last query's key, causal (a square whose
        // last rows are the piece's); the P keys before them are blocks of block_keys (a power of two) aligned to
        // it, so its block 0 holds the remainder first_keys (1 .. block_keys) and, when that is less, cuDNN's
        // padding mask drops the rest of its block_keys, which are real keys of its block 1 (nothing past the
        // piece's keys is read). Three graphs per (Tb, block_keys) serve every turn.
        int64_t staged_queries = 0;
        int64_t block_keys = 0, first_keys = 0;
        int first_block = 0, count = 0;  // its blocks: the plan's [first_block, first_block + count)
    };
    static constexpr int kMaxQueryPieces = 8;
    QueryPiece piece[kMaxQueryPieces];
};
// Plans p's blocks so that each one's work (4 * T * keys * Hq * D flops) stays within max_block_flops (at least one
// piece-length of keys per block), and builds their cuDNN graphs. p as for run(); its workspace is not looked at.
Expected<PrefillBlocks> plan_prefill_blocks(const AttentionParams& p, double max_block_flops);
// Block `block` of `plan` (p and the plan unchanged between the calls; p.workspace at least plan.workspace_bytes).
Status run_prefill_block(const AttentionParams& p, const PrefillBlocks& plan, int block, cudaStream_t stream);

// Whether this build and machine can route prefill to cuDNN (cudnn-frontend compiled in, libcudnn loadable).
bool cudnn_attention_available();

}  // namespace volt::cuda
