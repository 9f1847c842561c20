// Logits processing + sampling on the GPU (kernels/sampling_cuda.h), the CPU twin's algorithm step for step:
//   greedy:  one CTA per row: penalty (a bitmap of the history ids in shared memory, so each distinct id counts once)
//            and argmax with the lowest id on ties.
//   else:    prepare (one CTA per row: penalised logits + ids into the workspace, NaN check) ->
//            CUB segmented radix sort, descending and stable (equal logits keep ascending ids, the twin's order) ->
//            select (one CTA per row): fp64 probabilities exp(l/T - l0/T) over the top-k prefix, the top-p cut (first
//            cumulative probability >= top_p), the min-p cut, then the inverse CDF of the row's uniform draw — each
//            a block-wide scan over the sorted prefix in tiles.
// The full sort costs ~V log V per row; a radix-select of the top-k prefix would avoid it for small k (not done yet).
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda/device_common.cuh"
#include "kernels/sampling_cuda.h"
#include "sdk/cuda_check.h"

namespace volt::cuda {
namespace {

constexpr int kThreads = 1024;      // greedy / prepare: one CTA per row
constexpr int kSelThreads = 512;    // select: fp64 scans need the registers of a 512-thread CTA
constexpr int kItems = 8;           // sorted items per thread per tile of the select walk
constexpr int kTile = kSelThreads * kItems;

struct Penalty {
    const int32_t* history;
    int64_t stride;
    const int32_t* len;
    float r;  // 1: off
};

// Marks the row's history ids in the shared bitmap (words = ceil(V / 32)). Returns whether any penalty applies.
__device__ bool build_bitmap(uint32_t* bits, int64_t vocab, const Penalty& pen, int64_t row) {
    const bool active = pen.r != 1.0f && pen.history != nullptr;
    if (!active) return false;
    const int words = static_cast<int>((vocab + 31) / 32);
    for (int i = threadIdx.x; i < words; i += blockDim.x) bits[i] = 0;
    __syncthreads();
    const int32_t* h = pen.history + row * pen.stride;
    const int n = pen.len[row];
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const int32_t id = h[i];
        if (id >= 0 && id < vocab) atomicOr(&bits[id >> 5], 1u << (id & 31));
    }
    __syncthreads();
    return true;
}

__device__ __forceinline__ float penalised(float l, int64_t i, const uint32_t* bits, bool active, float r) {
    if (active && (bits[i >> 5] >> (i & 31) & 1u)) return l > 0.0f ? l / r : l * r;
    return l;
}

// ---- greedy ---------------------------------------------------------------------------------------------------------
__global__ void __launch_bounds__(kThreads) greedy_kernel(const float* __restrict__ logits, int64_t stride,
                                                          int64_t vocab, Penalty pen, int32_t* out) {
    extern __shared__ uint32_t bits[];
    const int64_t row = blockIdx.x;
    const bool active = build_bitmap(bits, vocab, pen, row);
    const float* l = logits + row * stride;
    float best = -INFINITY;
    int64_t best_i = vocab;  // "none yet" sorts after every real index
    bool nan = false;
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
        const float x = penalised(l[i], i, bits, active, pen.r);
        nan |= x != x;
        if (x > best || (x == best && i < best_i)) {
            best = x;
            best_i = i;
        }
    }
    // Block argmax: larger value, then lower index.
    warp_argmax(best, best_i);
    __shared__ float sv[kThreads / 32];
    __shared__ int64_t si[kThreads / 32];
    __shared__ int any_nan;
    if (threadIdx.x == 0) any_nan = 0;
    __syncthreads();
    if (nan) atomicOr(&any_nan, 1);
    if ((threadIdx.x & 31) == 0) {
        sv[threadIdx.x >> 5] = best;
        si[threadIdx.x >> 5] = best_i;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kThreads / 32; ++w)
            if (sv[w] > best || (sv[w] == best && si[w] < best_i)) {
                best = sv[w];
                best_i = si[w];
            }
        // All -inf: the twin's max_element returns the first element.
        out[row] = any_nan ? -1 : static_cast<int32_t>(best_i < vocab ? best_i : 0);
    }
}

// ---- sampling -------------------------------------------------------------------------------------------------------
__global__ void __launch_bounds__(kThreads) prepare_kernel(const float* __restrict__ logits, int64_t stride,
                                                           int64_t vocab, Penalty pen, float* keys, int32_t* ids,
                                                           int32_t* offsets, int32_t* nan_flag, int64_t rows) {
    extern __shared__ uint32_t bits[];
    const int64_t row = blockIdx.x;
    const bool active = build_bitmap(bits, vocab, pen, row);
    const float* l = logits + row * stride;
    float* k = keys + row * vocab;
    int32_t* id = ids + row * vocab;
    bool nan = false;
    for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
        const float x = penalised(l[i], i, bits, active, pen.r) + 0.0f;  // -0.0 -> +0.0: they tie, as in the twin
        nan |= x != x;
        k[i] = x;
        id[i] = static_cast<int32_t>(i);
    }
    nan = __syncthreads_or(nan);
    if (threadIdx.x == 0) {
        nan_flag[row] = nan ? 1 : 0;
        offsets[row] = static_cast<int32_t>(row * vocab);
        if (row == rows - 1) offsets[rows] = static_cast<int32_t>(rows * vocab);
    }
}

using BlockScan = cub::BlockScan<double, kSelThreads>;
using BlockReduce = cub::BlockReduce<double, kSelThreads>;

struct SelectShared {
    union {
        typename BlockScan::TempStorage scan;
        typename BlockReduce::TempStorage reduce;
    };
    double bcast;
    int first;
};

// Unnormalised probability of sorted position i: exp(l_i / T - l_0 / T) in fp64, as the twin computes it.
__device__ __forceinline__ double weight_at(const float* key, int64_t i, double temp, double mx) {
    return exp(static_cast<double>(key[i]) / temp - mx);
}

// Sum of scale * weight over sorted positions [0, n).
__device__ double block_sum(SelectShared& sh, const float* key, int64_t n, double temp, double mx, double scale) {
    double part = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += kSelThreads) part += scale * weight_at(key, i, temp, mx);
    const double tot = BlockReduce(sh.reduce).Sum(part);
    if (threadIdx.x == 0) sh.bcast = tot;
    __syncthreads();
    const double r = sh.bcast;
    __syncthreads();
    return r;
}

// First sorted position i in [from, n) whose running sum of scale * weight over [0, i] satisfies
// (strict ? target < cum : cum >= target); n when none. carry0 is the sum over [0, from).
__device__ int64_t first_crossing(SelectShared& sh, const float* key, int64_t from, int64_t n, double temp, double mx,
                                  double scale, double target, bool strict, double carry0) {
    double carry = carry0;
    for (int64_t base = from; base < n; base += kTile) {
        double w[kItems];
        double local = 0.0;
        const int64_t i0 = base + int64_t{threadIdx.x} * kItems;
#pragma unroll
        for (int j = 0; j < kItems; ++j) {
            w[j] = i0 + j < n ? scale * weight_at(key, i0 + j, temp, mx) : 0.0;
            local += w[j];
        }
        double before = 0.0, tile_total = 0.0;
        BlockScan(sh.scan).ExclusiveSum(local, before, tile_total);
        if (threadIdx.x == 0) sh.first = kTile;
        __syncthreads();
        double cum = carry + before;
#pragma unroll
        for (int j = 0; j < kItems; ++j) {
            if (i0 + j >= n) break;
            cum += w[j];
            if (strict ? target < cum : cum >= target) {
                atomicMin(&sh.first, threadIdx.x * kItems + j);
                break;
            }
        }
        __syncthreads();
        const int first = sh.first;
        __syncthreads();
        if (first < kTile) return base + first;
        carry += tile_total;
    }
    return n;
}

__global__ void __launch_bounds__(kSelThreads) select_kernel(const float* __restrict__ sorted_keys,
                                                          const int32_t* __restrict__ sorted_ids,
                                                          const int32_t* __restrict__ nan_flag, int64_t vocab,
                                                          volt::SamplingParams s, const double* __restrict__ uniform,
                                                          int32_t* out) {
    __shared__ SelectShared sh;
    const int64_t row = blockIdx.x;
    if (nan_flag[row]) {
        if (threadIdx.x == 0) out[row] = -1;
        return;
    }
    const float* key = sorted_keys + row * vocab;
    const int32_t* id = sorted_ids + row * vocab;
    const double temp = static_cast<double>(s.temperature);
    const double mx = static_cast<double>(key[0]) / temp;
    int64_t n = s.top_k > 0 && s.top_k < vocab ? s.top_k : vocab;
    const double z = block_sum(sh, key, n, temp, mx, 1.0);
    const double inv_z = 1.0 / z;
    // prob_i = weight_i / z; the twin divides each weight by the sum before accumulating, so do the same (scale).
    if (s.top_p < 1.0f) {
        const int64_t i = first_crossing(sh, key, 0, n, temp, mx, inv_z, static_cast<double>(s.top_p), false, 0.0);
        if (i < n) n = i + 1;
    }
    if (s.min_p > 0.0f) {
        // Survivors: the prefix with prob_i >= min_p * prob_0 (prob_0 = weight_0 / z, weight_0 = 1): the first
        // position from 1 on that falls below ends it.
        const double floor = static_cast<double>(s.min_p) * (weight_at(key, 0, temp, mx) * inv_z);
        int64_t keep = n;
        for (int64_t base = 1; base < n; base += kSelThreads) {
            const int64_t i = base + threadIdx.x;
            const bool below = i < n && weight_at(key, i, temp, mx) * inv_z < floor;
            if (threadIdx.x == 0) sh.first = kSelThreads;
            __syncthreads();
            if (below) atomicMin(&sh.first, static_cast<int>(threadIdx.x));
            __syncthreads();
            const int f = sh.first;
            __syncthreads();
            if (f < kSelThreads) {
                keep = base + f;
                break;
            }
        }
        n = keep;
    }
    const double total = block_sum(sh, key, n, temp, mx, inv_z);
    const double target = uniform[row] * total;
    int64_t i = first_crossing(sh, key, 0, n, temp, mx, inv_z, target, true, 0.0);
    if (i >= n) i = n - 1;  // rounding at the top end of the CDF
    if (threadIdx.x == 0) out[row] = id[i];
}

struct SortLayout {
    size_t keys_in = 0, ids_in = 0, keys_out = 0, ids_out = 0, offsets = 0, nan = 0, temp = 0, temp_bytes = 0,
           total = 0;
};

size_t align_up(size_t x) { return (x + 255) / 256 * 256; }

SortLayout sort_layout(int64_t rows, int64_t vocab) {
    SortLayout L;
    const size_t n = static_cast<size_t>(rows * vocab);
    size_t at = 0;
    L.keys_in = at, at += align_up(n * sizeof(float));
    L.ids_in = at, at += align_up(n * sizeof(int32_t));
    L.keys_out = at, at += align_up(n * sizeof(float));
    L.ids_out = at, at += align_up(n * sizeof(int32_t));
    L.offsets = at, at += align_up((rows + 1) * sizeof(int32_t));
    L.nan = at, at += align_up(rows * sizeof(int32_t));
    size_t temp = 0;
    cub::DeviceSegmentedRadixSort::SortPairsDescending(nullptr, temp, static_cast<const float*>(nullptr),
                                                       static_cast<float*>(nullptr), static_cast<const int32_t*>(nullptr),
                                                       static_cast<int32_t*>(nullptr), static_cast<int64_t>(n),
                                                       static_cast<int64_t>(rows), static_cast<const int32_t*>(nullptr),
                                                       static_cast<const int32_t*>(nullptr));
    L.temp = at, at += align_up(temp);
    L.temp_bytes = temp;
    L.total = at;
    return L;
}

bool greedy(const SampleParams& p) { return p.sampling.temperature == 0.0f; }

size_t bitmap_bytes(const SampleParams& p) {
    const bool active = p.sampling.repetition_penalty != 1.0f && p.history;
    return active ? static_cast<size_t>((p.vocab_size + 31) / 32) * 4 : 0;
}

}  // namespace

Status validate(const SampleParams& p) {
    VOLT_RETURN_IF_ERROR(volt::validate(p.sampling));
    if (p.num_rows < 0 || p.vocab_size <= 0 || p.vocab_size >= 0x7fffffff)
        return invalid_argument("sample (CUDA): num_rows (", p.num_rows, ") >= 0 and vocab_size (", p.vocab_size,
                                ") in [1, 2^31)");
    if (p.num_rows == 0) return Status::ok();
    if (p.num_rows * p.vocab_size >= 0x7fffffff)
        return invalid_argument("sample (CUDA): num_rows * vocab_size must stay below 2^31 (split the batch)");
    if (p.num_rows > 0x7fffffff) return invalid_argument("sample (CUDA): too many rows");
    if (!p.logits || !p.out_ids) return invalid_argument("sample (CUDA): logits and out_ids must be set");
    if (p.num_rows > 1 && p.logits_stride < p.vocab_size) return invalid_argument("sample (CUDA): logits_stride < V");
    if (p.history && !p.history_len) return invalid_argument("sample (CUDA): history needs history_len");
    if (!greedy(p) && !p.uniform) return invalid_argument("sample (CUDA): uniform draws must be set");
    if (bitmap_bytes(p) > 200 * 1024) return invalid_argument("sample (CUDA): vocabulary too large for the penalty");
    return Status::ok();
}

size_t sample_workspace_bytes(const SampleParams& p) {
    if (greedy(p) || p.num_rows <= 0 || p.vocab_size <= 0) return 0;
    return sort_layout(p.num_rows, p.vocab_size).total;
}

Status run(const SampleParams& p, cudaStream_t stream) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.num_rows == 0) return Status::ok();
    const Penalty pen{p.history, p.history_stride, p.history_len, p.history ? p.sampling.repetition_penalty : 1.0f};
    const size_t smem = bitmap_bytes(p);
    const unsigned rows = static_cast<unsigned>(p.num_rows);
    if (greedy(p)) {
        if (smem > 48 * 1024) VOLT_RETURN_IF_ERROR(allow_smem<greedy_kernel>(static_cast<int>(smem)));
        greedy_kernel<<<rows, kThreads, smem, stream>>>(p.logits, p.logits_stride, p.vocab_size, pen, p.out_ids);
        VOLT_CUDA_CHECK_LAUNCH();
        return Status::ok();
    }
    const SortLayout L = sort_layout(p.num_rows, p.vocab_size);
    if (!p.workspace || p.workspace_bytes < L.total)
        return invalid_argument("sample (CUDA): workspace of ", L.total, " bytes needed (sample_workspace_bytes)");
    char* ws = static_cast<char*>(p.workspace);
    auto* keys_in = reinterpret_cast<float*>(ws + L.keys_in);
    auto* ids_in = reinterpret_cast<int32_t*>(ws + L.ids_in);
    auto* keys_out = reinterpret_cast<float*>(ws + L.keys_out);
    auto* ids_out = reinterpret_cast<int32_t*>(ws + L.ids_out);
    auto* offsets = reinterpret_cast<int32_t*>(ws + L.offsets);
    auto* nan = reinterpret_cast<int32_t*>(ws + L.nan);
    if (smem > 48 * 1024) VOLT_RETURN_IF_ERROR(allow_smem<prepare_kernel>(static_cast<int>(smem)));
    prepare_kernel<<<rows, kThreads, smem, stream>>>(p.logits, p.logits_stride, p.vocab_size, pen, keys_in, ids_in,
                                                     offsets, nan, p.num_rows);
    VOLT_CUDA_CHECK_LAUNCH();
    size_t temp = L.temp_bytes;
    VOLT_CUDA_RETURN_IF_ERROR(cub::DeviceSegmentedRadixSort::SortPairsDescending(
        ws + L.temp, temp, keys_in, keys_out, ids_in, ids_out, p.num_rows * p.vocab_size, p.num_rows, offsets,
        offsets + 1, 0, static_cast<int>(sizeof(float) * 8), stream));
    select_kernel<<<rows, kSelThreads, 0, stream>>>(keys_out, ids_out, nan, p.vocab_size, p.sampling, p.uniform,
                                                 p.out_ids);
    VOLT_CUDA_CHECK_LAUNCH();
    return Status::ok();
}

}  // namespace volt::cuda
