// A prefill piece's softmax attention in blocks of keys (kernels/attention_cuda.h, PrefillBlocks): one cuDNN SDPA
// call per block with its rows' softmax statistics, folded into an fp32 accumulator by merge_block_kernel. The blocks
// exist so that a long context's attention is many launches of bounded length, with stop points between them.
//
// Merge of block i (natural-log statistics, the form cuDNN writes):
//     lse = log(exp(lse_acc) + exp(lse_i)),  acc = acc * exp(lse_acc - lse) + o_i * exp(lse_i - lse)
// Block 0 only copies; the last block writes bf16 o. The accumulated statistics alternate between two buffers (16
// threads read a row's value while one of them writes the new one).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>

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
    __nv_bfloat16* o;       // [T, Hq, D] at o[t * o_st + h * o_sh + d]: this block's output; the last merge's result
    int64_t o_st, o_sh;
    float* acc;             // [T, Hq, D] contiguous
    const float* lse_blk;   // [Hq, T] this block's statistics
    const float* lse_in;    // [Hq, T] the accumulated statistics so far (unused by the first block)
    float* lse_out;         // [Hq, T] after this block (unused by the last)
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
    unpack8(*reinterpret_cast<const uint4*>(o), x);
    const float lb = a.lse_blk[stat];
    if (a.first) {
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

constexpr size_t align256(size_t b) { return (b + 255) / 256 * 256; }

int64_t keys_of(const AttentionParams& p) { return p.kv_len_host > 0 ? p.kv_len_host : p.num_tokens; }

size_t stats_bytes(int64_t T, int heads) { return align256(size_t(T) * heads * sizeof(float)); }
size_t blocks_workspace_bytes(int64_t T, int heads, int count) {
    return count == 1 ? stats_bytes(T, heads) : 3 * stats_bytes(T, heads) + align256(size_t(T) * heads * kD * 4);
}

// Block `block`'s first key and key count.
std::pair<int64_t, int64_t> block_range(const AttentionParams& p, const PrefillBlocks& plan, int block) {
    const int64_t begin = int64_t(block) * plan.block_keys;
    const int64_t end = block + 1 < plan.count ? begin + plan.block_keys : keys_of(p);
    return {begin, end - begin};
}

CudnnSdpaSpec block_spec(const AttentionParams& p, const PrefillBlocks& plan, int block) {
    return prefill_sdpa_spec(p, block_range(p, plan, block).second, /*causal=*/block + 1 == plan.count,
                             /*stats=*/true, /*transient=*/true);
}

// p's blocks of block_keys keys (a multiple of p.num_tokens) with their graphs built; a graph cuDNN rejects is an
// error under kCudnn, else the plan runs the piece whole on the own kernel.
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
    plan.workspace_bytes = blocks_workspace_bytes(T, p.num_heads, plan.count);
    // Build the graphs (a full block, the last one) now: a shape cuDNN rejects is known before any launch.
    for (int block : {0, plan.count - 1}) {
        const Status st = cudnn_sdpa_prepare(block_spec(p, plan, block), "attention");
        if (st.is_ok()) continue;
        if (backend == AttentionBackend::kCudnn) return st;
        static std::atomic<bool> warned{false};
        if (!warned.exchange(true))
            VOLT_LOG(kWarn, kKernel, "attention: cuDNN SDPA rejected a key block, using the own prefill kernel: ",
                     st.to_string());
        plan.cudnn = false;
        plan.whole_in_first = true;
        plan.workspace_bytes = 0;
        break;
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

}  // namespace

size_t tiled_prefill_workspace_bytes(const AttentionParams& p) {
    return tiles_queries(p) ? blocks_workspace_bytes(kQueryTile, p.num_heads, 2) : 0;
}

Status run_tiled_prefill(const AttentionParams& p, cudaStream_t stream) {
    const int64_t T = p.num_tokens;
    for (int64_t q0 = 0; q0 < T; q0 += kQueryTile) {
        AttentionParams piece = p;
        piece.num_tokens = std::min(kQueryTile, T - q0);
        piece.q = static_cast<const __nv_bfloat16*>(p.q) + q0 * p.q_stride_token;
        piece.o = static_cast<__nv_bfloat16*>(p.o) + q0 * p.o_stride_token;
        piece.kv_len_host = q0 + piece.num_tokens;  // keys [0, q0 + Q) from row 0 (none counted on the device)
        piece.max_seqlen_q = piece.num_tokens;
        piece.max_seqlen_kv = piece.kv_len_host;
        VOLT_ASSIGN_OR_RETURN(const PrefillBlocks plan, plan_blocks(piece, kTileBlockKeys, AttentionBackend::kCudnn));
        for (int b = 0; b < plan.count; ++b) VOLT_RETURN_IF_ERROR(run_prefill_block(piece, plan, b, stream));
    }
    return Status::ok();
}

Expected<PrefillBlocks> plan_prefill_blocks(const AttentionParams& p, double max_block_flops) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const AttentionBackend backend = resolve_prefill_backend(p.prefill_backend);
    if (p.num_tokens == 0 || !p.kv_lens || !cudnn_prefill_shape(p, backend) || !cudnn_sdpa_available())
        return PrefillBlocks{};
    if (!(max_block_flops > 0.0)) return invalid_argument("attention (CUDA): max_block_flops must be positive");
    const int64_t T = p.num_tokens;
    // Keys per block: the work bound, at least T and a multiple of T (a prompt's pieces then share graph shapes).
    const double per_key = 4.0 * double(T) * double(p.num_heads) * double(p.head_dim);
    const int64_t fit = static_cast<int64_t>(std::min(max_block_flops / per_key, 9.0e15));
    return plan_blocks(p, std::max<int64_t>(1, fit / T) * T, backend);
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
    if (!p.workspace || p.workspace_bytes < plan.workspace_bytes || reinterpret_cast<uintptr_t>(p.workspace) % 256)
        return invalid_argument("attention (CUDA): key blocks need a 256-byte aligned workspace of ",
                                plan.workspace_bytes, " bytes, got ", p.workspace_bytes);
    const int64_t T = p.num_tokens;
    const size_t stat_bytes = stats_bytes(T, p.num_heads);
    auto* base = static_cast<unsigned char*>(p.workspace);
    float* lse_blk = reinterpret_cast<float*>(base);
    float* lse_even = reinterpret_cast<float*>(base + stat_bytes);
    float* lse_odd = reinterpret_cast<float*>(base + 2 * stat_bytes);
    float* acc = reinterpret_cast<float*>(base + 3 * stat_bytes);

    const int64_t begin = block_range(p, plan, block).first;
    const auto* k = static_cast<const __nv_bfloat16*>(p.k) + begin * p.k_stride_token;
    const auto* v = static_cast<const __nv_bfloat16*>(p.v) + begin * p.v_stride_token;
    VOLT_RETURN_IF_ERROR(cudnn_sdpa(block_spec(p, plan, block), p.q, k, v, p.o, stream, "attention", lse_blk));
    if (plan.count == 1) return Status::ok();  // o is the attention

    MergeArgs a{};
    a.o = static_cast<__nv_bfloat16*>(p.o);
    a.o_st = p.o_stride_token, a.o_sh = p.o_stride_head;
    a.acc = acc;
    a.lse_blk = lse_blk;
    a.lse_in = block % 2 ? lse_even : lse_odd;  // written by the block before
    a.lse_out = block % 2 ? lse_odd : lse_even;
    a.T = T;
    a.Hq = p.num_heads;
    a.first = block == 0;
    a.last = block + 1 == plan.count;
    const int64_t threads = T * p.num_heads * kChunksPerRow;
    merge_block_kernel<<<static_cast<unsigned>((threads + kMergeThreads - 1) / kMergeThreads), kMergeThreads, 0,
                         stream>>>(a);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace volt::cuda
