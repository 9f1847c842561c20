// Logits processing + sampling on the GPU (kernels/sampling_cuda.h), the CPU twin's algorithm step for step:
//   greedy:  one CTA per row: penalty (a bitmap of the history ids in shared memory, so each distinct id counts once;
//            or the row's record copied in, see SampleParams::records) and argmax with the lowest id on ties.
//   top-k (k <= kCap), and top-p without top-k — the prefix path, no full sort:
//            prefix (a cluster of 8 CTAs per row, each over an eighth of it): a radix select over the order-preserving
//            32-bit image of the penalised logits (digits of 11, 11, 10 bits; per pass each CTA's shared-memory
//            histogram of its slice, summed over the cluster in CTA order) finds the bucket where the
//            running count from the top reaches k — or, for top-p, where the running probability mass (the row's
//            softmax, fp32 histogram with a 1e-3 margin; the exact fp64 normaliser Z over the whole row is summed in
//            the same pass) reaches top_p. The candidates (everything above that bucket, plus the bucket; for a
//            fully resolved tie at k, the lowest ids of the tie) — a prefix of the twin's sorted order, at most kCap —
//            are gathered and bitonic-sorted in shared memory by (logit descending, id ascending). A top-p row whose
//            prefix exceeds kCap (a flat distribution) writes its whole row for the sort below instead.
//   else:    prepare (one CTA per row: penalised logits + ids into the workspace, NaN check) ->
//            CUB segmented radix sort, descending and stable (equal logits keep ascending ids, the twin's order).
//   select (one CTA per row, both paths): fp64 probabilities exp(l/T - l0/T) over the top-k prefix (or the given Z),
//            the top-p cut (first cumulative probability >= top_p), the min-p cut, then the inverse CDF of the row's
//            uniform draw — each a block-wide scan over the sorted prefix in tiles.
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda/device_common.cuh"
#include "kernels/sampling_cuda.h"
#include "sdk/cuda_check.h"

namespace volt::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 1024;      // greedy / prepare: one CTA per row
constexpr int kSelThreads = 512;    // select: fp64 scans need the registers of a 512-thread CTA
constexpr int kItems = 8;           // sorted items per thread per tile of the select walk
constexpr int kTile = kSelThreads * kItems;
constexpr int kCap = 4096;          // prefix path: candidates per row (bitonic sort of kCap 64-bit keys in 32 KiB)
constexpr int kPreThreads = 1024;   // prefix path: threads per CTA
constexpr int kPickCluster = 8;     // prefix path: CTAs per row (a cluster), each over an eighth of the row

struct Penalty {
    const int32_t* history;
    int64_t stride;
    const int32_t* len;
    uint32_t* const* records;  // SampleParams::records
    float r;  // 1: off
};

// The row's penalty ids in the shared bitmap (words = ceil(V / 32)): read from its record (history length < 0), or
// marked from its history row, which then also rewrites the row's record if it has one (and `write_record`: one of the
// CTAs of a row). Returns whether any penalty applies.
__device__ bool build_bitmap(uint32_t* bits, int64_t vocab, const Penalty& pen, int64_t row, bool write_record = true) {
    const bool active = pen.r != 1.0f && (pen.history != nullptr || pen.records != nullptr);
    if (!active) return false;
    const int words = static_cast<int>((vocab + 31) / 32);
    uint32_t* record = pen.records ? pen.records[row] : nullptr;
    const int n = pen.len[row];
    if (n < 0) {
        for (int i = threadIdx.x; i < words; i += blockDim.x) bits[i] = record ? record[i] : 0u;
        __syncthreads();
        return true;
    }
    for (int i = threadIdx.x; i < words; i += blockDim.x) bits[i] = 0;
    __syncthreads();
    if (pen.history) {
        const int32_t* h = pen.history + row * pen.stride;
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            const int32_t id = h[i];
            if (id >= 0 && id < vocab) atomicOr(&bits[id >> 5], 1u << (id & 31));
        }
    }
    __syncthreads();
    if (record && write_record)
        for (int i = threadIdx.x; i < words; i += blockDim.x) record[i] = bits[i];
    return true;
}

__global__ void record_ids_kernel(RecordIdsParams p) {
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.n; i += int64_t(gridDim.x) * blockDim.x) {
        const int32_t id = p.ids[i];
        uint32_t* record = p.record ? p.record : p.records[i];
        if (record && id >= 0 && id < p.vocab_size) atomicOr(&record[id >> 5], 1u << (id & 31));
    }
}

__device__ __forceinline__ float penalised(float l, int64_t i, const uint32_t* bits, bool active, float r) {
    if (active && (bits[i >> 5] >> (i & 31) & 1u)) return l > 0.0f ? l / r : l * r;
    return l;
}

// ---- greedy ---------------------------------------------------------------------------------------------------------
__global__ void __launch_bounds__(kThreads) greedy_kernel(const float* __restrict__ logits, int64_t stride,
                                                          int64_t vocab, Penalty pen, int32_t* out) {
    extern __shared__ uint32_t bits[];
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
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

// The prefix path (prefix.len set): rows with prefix.len[row] > 0 read their sorted candidates from prefix.keys/ids
// (kCap per row) and, when prefix.z[row] > 0, use it as the normaliser (top-p without top-k: Z over the whole row);
// other rows (len 0: too many candidates) read the fully sorted row.
struct PrefixOut {
    float* keys;     // [rows, kCap]
    int32_t* ids;    // [rows, kCap]
    int32_t* len;    // [rows] candidates (0: the row went to the full sort)
    double* z;       // [rows] Z over the whole row (top-p without top-k), else 0
};

__global__ void __launch_bounds__(kSelThreads) select_kernel(const float* __restrict__ sorted_keys,
                                                          const int32_t* __restrict__ sorted_ids,
                                                          const int32_t* __restrict__ nan_flag, int64_t vocab,
                                                          volt::SamplingParams s, const double* __restrict__ uniform,
                                                          int32_t* out, PrefixOut prefix) {
    __shared__ SelectShared sh;
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    const int64_t row = blockIdx.x;
    if (nan_flag[row]) {
        if (threadIdx.x == 0) out[row] = -1;
        return;
    }
    const int64_t cand = prefix.len ? prefix.len[row] : 0;
    const float* key = cand > 0 ? prefix.keys + row * kCap : sorted_keys + row * vocab;
    const int32_t* id = cand > 0 ? prefix.ids + row * kCap : sorted_ids + row * vocab;
    const double temp = static_cast<double>(s.temperature);
    const double mx = static_cast<double>(key[0]) / temp;
    int64_t n = s.top_k > 0 && s.top_k < vocab ? s.top_k : vocab;
    if (cand > 0) n = std::min<int64_t>(n, cand);
    const double zg = cand > 0 ? prefix.z[row] : 0.0;
    const double z = zg > 0.0 ? zg : block_sum(sh, key, n, temp, mx, 1.0);
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

// ---- prefix path ----------------------------------------------------------------------------------------------------
// Order-preserving image of a float (no NaN here): larger float <-> larger unsigned; and back.
__device__ __forceinline__ uint32_t order_key(float x) {
    const uint32_t u = __float_as_uint(x);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t o) {
    return __uint_as_float((o & 0x80000000u) ? (o & 0x7fffffffu) : ~o);
}

constexpr int kBins = 2048;                      // 11-bit digits: bits 31..21, 20..10, then 9..0 (10 bits)
using PreScanI = cub::BlockScan<int, kPreThreads>;
using PreScanF = cub::BlockScan<float, kPreThreads>;
using PreReduceD = cub::BlockReduce<double, kPreThreads>;

struct PrefixShared {
    union {
        unsigned long long cand[kCap];           // the first CTA: gathered (~order_key << 32 | id), sorted ascending
        float mass[kBins];                       // top-p: this CTA's probability mass per bin (before the gather)
    } u;
    int hist[kBins];                             // this CTA's elements per bin
    int tot_hist[kBins];                         // the row's (the cluster's sum, in CTA order)
    float tot_mass[kBins];
    union {
        typename PreScanI::TempStorage si;
        typename PreScanF::TempStorage sf;
        typename PreReduceD::TempStorage rd;
    } t;
    float red[kPreThreads / 32];
    int warp_cnt[kPreThreads / 32];
    int sel_rank, cnt_before, n_cand, nan, tie_before;
    float mass_before, mx;
    double z;
};

// Over the digit's nb bins ordered from the top (bin nb - 1 first) of the row's histograms: the first bin where the
// running count (count mode) or mass reaches `remaining`. Sets sh.sel_rank (nb when none), sh.cnt_before,
// sh.mass_before.
__device__ void find_crossing(PrefixShared& sh, int nb, bool count_mode, int rem_c, float rem_m) {
    const int tid = threadIdx.x, r0 = 2 * tid, r1 = r0 + 1;
    const int c0 = r0 < nb ? sh.tot_hist[nb - 1 - r0] : 0, c1 = r1 < nb ? sh.tot_hist[nb - 1 - r1] : 0;
    const float m0 = !count_mode && r0 < nb ? sh.tot_mass[nb - 1 - r0] : 0.0f;
    const float m1 = !count_mode && r1 < nb ? sh.tot_mass[nb - 1 - r1] : 0.0f;
    int cb = 0;
    PreScanI(sh.t.si).ExclusiveSum(c0 + c1, cb);
    __syncthreads();
    float mb = 0.0f;
    if (!count_mode) {
        PreScanF(sh.t.sf).ExclusiveSum(m0 + m1, mb);
        __syncthreads();
    }
    if (tid == 0) sh.sel_rank = nb;
    __syncthreads();
    int hit = -1;
    if (count_mode) {
        if (cb < rem_c && cb + c0 >= rem_c) hit = r0;
        else if (cb + c0 < rem_c && cb + c0 + c1 >= rem_c) hit = r1;
    } else {
        if (mb < rem_m && mb + m0 >= rem_m) hit = r0;
        else if (mb + m0 < rem_m && mb + m0 + m1 >= rem_m) hit = r1;
    }
    if (hit >= 0 && hit < nb) atomicMin(&sh.sel_rank, hit);  // rounding in the fp32 scan: the highest bin wins
    __syncthreads();
    if (hit >= 0 && hit == sh.sel_rank) {
        sh.cnt_before = hit == r0 ? cb : cb + c0;
        sh.mass_before = hit == r0 ? mb : mb + m0;
    }
    __syncthreads();
}

// The row's histograms of the digit's nb bins: the cluster's CTAs' own, summed in CTA order (deterministic) into
// tot_hist / tot_mass. Every CTA's own must be complete (a cluster sync before) and stay until all have read them (a
// cluster sync after, before any rewrites its own).
__device__ void sum_cluster_hists(PrefixShared& sh, int nb, bool count_mode) {
    const cg::cluster_group cluster = cg::this_cluster();
    for (int b = threadIdx.x; b < nb; b += kPreThreads) {
        int c = 0;
        float m = 0.0f;
        for (int r = 0; r < kPickCluster; ++r) {
            const PrefixShared* o = cluster.map_shared_rank(&sh, r);
            c += o->hist[b];
            if (!count_mode) m += o->u.mass[b];
        }
        sh.tot_hist[b] = c;
        if (!count_mode) sh.tot_mass[b] = m;
    }
    __syncthreads();
}

// A cluster of kPickCluster CTAs per row, CTA r over its own contiguous slice of the row: the candidates of the row's
// sorted prefix (see the file comment) into po, or, when a top-p prefix does not fit kCap, the whole row into
// full_keys/ids with its sort segment [seg_begin, seg_end) (empty otherwise). Each pass builds the CTAs' own
// histograms, sums them across the cluster (distributed shared memory, CTA order), and every CTA finds the same
// bucket; the candidates go to the first CTA's shared memory, which sorts and writes them. (One CTA per row took
// 0.115 ms a step at batch 1 on an H100, 4.5% of a 4-layer FP8 decode step.)
__global__ void __cluster_dims__(kPickCluster, 1, 1) __launch_bounds__(kPreThreads)
    prefix_kernel(const float* __restrict__ logits, int64_t stride, int64_t vocab, Penalty pen, volt::SamplingParams s,
                  PrefixOut po, float* full_keys, int32_t* full_ids, int32_t* seg_begin, int32_t* seg_end,
                  int32_t* nan_flag) {
    extern __shared__ uint32_t bits[];
    __shared__ PrefixShared sh;
    start_dependent_kernel();  // started by launch_dependent (device_common.cuh)
    const cg::cluster_group cluster = cg::this_cluster();
    const int rank = static_cast<int>(cluster.block_rank());
    const int64_t row = blockIdx.x / kPickCluster;
    const int tid = threadIdx.x;
    // This CTA's slice [lo, hi) of the row, in whole warps' worth of elements.
    const int64_t slice = (vocab + kPickCluster * 32 - 1) / (kPickCluster * 32) * 32;
    const int64_t lo = std::min<int64_t>(vocab, rank * slice), hi = std::min<int64_t>(vocab, lo + slice);
    const bool active = build_bitmap(bits, vocab, pen, row, rank == 0);
    const float* l = logits + row * stride;
    const bool count_mode = s.top_k > 0 && s.top_k < vocab;  // else top-p (top_p < 1) without top-k
    auto key_at = [&](int64_t i) { return penalised(l[i], i, bits, active, pen.r) + 0.0f; };  // -0 -> +0
    PrefixShared* first = cluster.map_shared_rank(&sh, 0);

    // Pass 1: NaN, max; count mode: the first digit's histogram.
    for (int b = tid; b < kBins; b += kPreThreads) sh.hist[b] = 0;
    if (tid == 0) sh.n_cand = 0;
    __syncthreads();
    bool nan = false;
    float mx = -INFINITY;
    for (int64_t i = lo + tid; i < hi; i += kPreThreads) {
        const float x = key_at(i);
        nan |= x != x;
        mx = fmaxf(mx, x);
        if (count_mode) atomicAdd(&sh.hist[order_key(x) >> 21], 1);
    }
    nan = __syncthreads_or(nan);
    mx = block_max<kPreThreads>(mx, sh.red);
    __syncthreads();  // sh.red is read by every thread above; the writes below may share its bytes
    if (tid == 0) sh.nan = nan, sh.mx = mx;
    cluster.sync();
    nan = false;
    for (int r = 0; r < kPickCluster; ++r) {
        const PrefixShared* o = cluster.map_shared_rank(&sh, r);
        nan |= o->nan != 0;
        mx = fmaxf(mx, o->mx);
    }
    if (count_mode) sum_cluster_hists(sh, kBins, true);
    cluster.sync();  // every CTA has read the others' before they go on
    if (nan) {
        if (rank == 0 && tid == 0) {
            nan_flag[row] = 1;
            po.len[row] = 0;
            seg_begin[row] = seg_end[row] = static_cast<int32_t>(row * vocab);
        }
        return;
    }
    const double temp = static_cast<double>(s.temperature), mx_t = static_cast<double>(mx) / temp;
    double z = 0.0;
    if (!count_mode) {
        // Pass 1b: Z in fp64 (the twin's normaliser: every weight exp(l/T - max/T); the CTAs' sums added in CTA order),
        // the first digit's count and mass histograms.
        for (int b = tid; b < kBins; b += kPreThreads) sh.u.mass[b] = 0.0f;
        __syncthreads();
        for (int64_t i = lo + tid; i < hi; i += kPreThreads) {
            const float x = key_at(i);
            const double w = exp(static_cast<double>(x) / temp - mx_t);
            z += w;
            const uint32_t b = order_key(x) >> 21;
            atomicAdd(&sh.hist[b], 1);
            atomicAdd(&sh.u.mass[b], static_cast<float>(w));
        }
        z = PreReduceD(sh.t.rd).Sum(z);
        if (tid == 0) sh.z = z;
        cluster.sync();
        z = 0.0;
        for (int r = 0; r < kPickCluster; ++r) z += cluster.map_shared_rank(&sh, r)->z;
        sum_cluster_hists(sh, kBins, false);
        cluster.sync();
    }

    // Radix select: narrow the bucket holding the k-th element / the top-p crossing until the candidates fit.
    auto digit_shift = [](int d) { return d == 0 ? 21 : d == 1 ? 10 : 0; };  // digits of 11, 11, 10 bits
    auto digit_bits = [](int d) { return d == 2 ? 10 : 11; };
    const int k = static_cast<int>(count_mode ? s.top_k : 0);
    // Mass target with a margin over the fp32 histogram's rounding: the candidates' exact mass then exceeds top_p Z.
    const float target_m = static_cast<float>(static_cast<double>(s.top_p) * (1.0 + 1e-3) * z);
    uint32_t prefix = 0;  // the chosen bins' bits so far
    int above = 0, shift = 32;
    float above_m = 0.0f;
    bool tie = false, overflow = false;
    for (int d = 0; d < 3; ++d) {
        const int nb = 1 << digit_bits(d);
        if (d > 0) {
            for (int b = tid; b < kBins; b += kPreThreads) {
                sh.hist[b] = 0;
                if (!count_mode) sh.u.mass[b] = 0.0f;
            }
            __syncthreads();
            for (int64_t i = lo + tid; i < hi; i += kPreThreads) {
                const float x = key_at(i);
                const uint32_t o = order_key(x);
                if ((o >> shift) != prefix) continue;
                const uint32_t b = (o >> digit_shift(d)) & static_cast<uint32_t>(nb - 1);
                atomicAdd(&sh.hist[b], 1);
                if (!count_mode)
                    atomicAdd(&sh.u.mass[b], static_cast<float>(exp(static_cast<double>(x) / temp - mx_t)));
            }
            cluster.sync();
            sum_cluster_hists(sh, nb, count_mode);
        }
        find_crossing(sh, nb, count_mode, k - above, target_m - above_m);
        const int sel = sh.sel_rank;
        bool done = false;
        if (sel >= nb) {  // top-p: the mass target was not reached (the margin needs the whole row)
            overflow = done = true;
        } else {
            const int bin = nb - 1 - sel;
            above += sh.cnt_before;
            above_m += sh.mass_before;
            prefix = (d == 0 ? 0u : prefix << digit_bits(d)) | static_cast<uint32_t>(bin);
            shift = digit_shift(d);
            const int cnt_b = sh.tot_hist[bin];
            if (above + cnt_b <= kCap) {
                done = true;  // the whole bucket fits
            } else if (!count_mode && above > kCap) {
                overflow = done = true;
            } else if (d == 2) {  // fully resolved: bucket = one value
                done = true;
                if (count_mode) {
                    tie = true;  // the k - above lowest ids of the tie (above < k <= kCap): the CTAs' before this one
                    if (tid == 0) {
                        int before = 0;
                        for (int r = 0; r < rank; ++r) before += cluster.map_shared_rank(&sh, r)->hist[bin];
                        sh.tie_before = before;
                    }
                } else {
                    overflow = true;
                }
            }
        }
        __syncthreads();  // everyone has read sh before the next pass rewrites it
        if (d > 0) cluster.sync();  // and the others have read this CTA's histograms
        if (done) break;
    }

    if (overflow) {
        for (int64_t i = lo + tid; i < hi; i += kPreThreads) {
            full_keys[row * vocab + i] = key_at(i);
            full_ids[row * vocab + i] = static_cast<int32_t>(i);
        }
        if (rank == 0 && tid == 0) {
            nan_flag[row] = 0;
            po.len[row] = 0;
            seg_begin[row] = static_cast<int32_t>(row * vocab);
            seg_end[row] = static_cast<int32_t>(row * vocab + vocab);
        }
        return;
    }

    // Gather into the first CTA: order_key >= lo (the bucket and everything above it); for a tie only the first
    // k - above of the tie over the row, counted in id order tile by tile (this slice's after the CTAs' before it).
    const uint32_t lo_key = prefix << shift;
    auto add = [&](uint32_t o, int64_t i) {
        const int pos = atomicAdd(&first->n_cand, 1);
        if (pos < kCap) first->u.cand[pos] = (static_cast<unsigned long long>(~o) << 32) | static_cast<uint32_t>(i);
    };
    const int need_tie = tie ? k - above - sh.tie_before : 0;
    int tie_seen = 0;
    for (int64_t base = lo; base < hi; base += kPreThreads) {
        const int64_t i = base + tid;
        const uint32_t o = i < hi ? order_key(key_at(i)) : 0u;
        if (i < hi && (tie ? o > lo_key : o >= lo_key)) add(o, i);
        if (tie) {
            if (tie_seen >= need_tie) {
                // The tie is complete; the rest of the slice can only add elements above lo_key.
                for (int64_t j = base + kPreThreads + tid; j < hi; j += kPreThreads) {
                    const uint32_t oj = order_key(key_at(j));
                    if (oj > lo_key) add(oj, j);
                }
                break;
            }
            const bool t = i < hi && o == lo_key;
            const unsigned bal = __ballot_sync(0xffffffffu, t);
            const int lane = tid & 31, warp = tid >> 5;
            if (lane == 0) sh.warp_cnt[warp] = __popc(bal);
            __syncthreads();
            int before = tie_seen, total = 0;
            for (int w = 0; w < kPreThreads / 32; ++w) {
                const int c = sh.warp_cnt[w];
                if (w < warp) before += c;
                total += c;
            }
            before += __popc(bal & ((1u << lane) - 1u));
            if (t && before < need_tie) add(o, i);
            tie_seen += total;
            __syncthreads();
        }
    }
    cluster.sync();  // every candidate is in the first CTA
    if (rank != 0) return;
    const int n = min(sh.n_cand, kCap);
    int p2 = 2;
    while (p2 < n) p2 <<= 1;
    for (int i = n + tid; i < p2; i += kPreThreads) sh.u.cand[i] = ~0ull;
    __syncthreads();
    // Bitonic sort, ascending: logit descending, then id ascending (the twin's order).
    for (int kk = 2; kk <= p2; kk <<= 1)
        for (int j = kk >> 1; j > 0; j >>= 1) {
            for (int i = tid; i < p2; i += kPreThreads) {
                const int ixj = i ^ j;
                if (ixj > i) {
                    const unsigned long long a = sh.u.cand[i], b = sh.u.cand[ixj];
                    if ((a > b) == ((i & kk) == 0)) {
                        sh.u.cand[i] = b;
                        sh.u.cand[ixj] = a;
                    }
                }
            }
            __syncthreads();
        }
    for (int i = tid; i < n; i += kPreThreads) {
        const unsigned long long c = sh.u.cand[i];
        po.keys[row * kCap + i] = key_value(~static_cast<uint32_t>(c >> 32));
        po.ids[row * kCap + i] = static_cast<int32_t>(c & 0xffffffffu);
    }
    if (tid == 0) {
        nan_flag[row] = 0;
        po.len[row] = n;
        po.z[row] = count_mode ? 0.0 : z;
        seg_begin[row] = seg_end[row] = static_cast<int32_t>(row * vocab);
    }
}

struct SortLayout {
    size_t keys_in = 0, ids_in = 0, keys_out = 0, ids_out = 0, offsets = 0, seg_end = 0, nan = 0, cand_keys = 0,
           cand_ids = 0, cand_len = 0, cand_z = 0, temp = 0, temp_bytes = 0, total = 0;
};

// full: the per-row sort arrays (the sort path, and the top-p prefix path's fallback); the top-k prefix path needs
// only the candidate arrays.
SortLayout sort_layout(int64_t rows, int64_t vocab, bool full) {
    SortLayout L;
    const size_t n = full ? static_cast<size_t>(rows * vocab) : 0;
    const size_t r = static_cast<size_t>(rows);
    size_t at = 0;
    L.keys_in = at, at += align256(n * sizeof(float));
    L.ids_in = at, at += align256(n * sizeof(int32_t));
    L.keys_out = at, at += align256(n * sizeof(float));
    L.ids_out = at, at += align256(n * sizeof(int32_t));
    L.offsets = at, at += align256((r + 1) * sizeof(int32_t));
    L.seg_end = at, at += align256(r * sizeof(int32_t));
    L.nan = at, at += align256(r * sizeof(int32_t));
    L.cand_keys = at, at += align256(r * kCap * sizeof(float));
    L.cand_ids = at, at += align256(r * kCap * sizeof(int32_t));
    L.cand_len = at, at += align256(r * sizeof(int32_t));
    L.cand_z = at, at += align256(r * sizeof(double));
    size_t temp = 0;
    if (full)
        cub::DeviceSegmentedRadixSort::SortPairsDescending(
            nullptr, temp, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
            static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), static_cast<int64_t>(n),
            static_cast<int64_t>(rows), static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(nullptr));
    L.temp = at, at += align256(temp);
    L.temp_bytes = temp;
    L.total = at;
    return L;
}

bool greedy(const SampleParams& p) { return p.sampling.temperature == 0.0f; }

bool penalised(const SampleParams& p) {
    return p.sampling.repetition_penalty != 1.0f && (p.history || p.records);
}

size_t bitmap_bytes(const SampleParams& p) {
    const bool active = penalised(p);
    return active ? static_cast<size_t>((p.vocab_size + 31) / 32) * 4 : 0;
}

// Which non-greedy path a call takes: the prefix path for top-k <= kCap (count mode) or top-p without top-k (mass
// mode, with the full sort as the fallback for rows whose prefix exceeds kCap), else the full sort.
enum class Path { kSort, kPrefixTopK, kPrefixTopP };
Path choose_path(const SampleParams& p) {
    const auto& s = p.sampling;
    // The prefix kernel's shared memory: its static part plus the penalty bitmap.
    if (bitmap_bytes(p) + sizeof(PrefixShared) > 227 * 1024) return Path::kSort;
    const bool top_k = s.top_k > 0 && s.top_k < p.vocab_size;
    if (top_k) return s.top_k <= kCap ? Path::kPrefixTopK : Path::kSort;
    // Top-p without top-k: 0.59 vs 1.85 ms (full sort) for 64 x 200064 Gaussian logits on an H100; a row whose
    // prefix exceeds kCap (a flat distribution) pays the prefix pass and then the sort (~2.2 ms for 64 such rows).
    return s.top_p < 1.0f ? Path::kPrefixTopP : Path::kSort;
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
    if ((p.history || p.records) && !p.history_len)
        return invalid_argument("sample (CUDA): history and records need history_len");
    if (!greedy(p) && !p.uniform) return invalid_argument("sample (CUDA): uniform draws must be set");
    if (bitmap_bytes(p) > 200 * 1024) return invalid_argument("sample (CUDA): vocabulary too large for the penalty");
    return Status::ok();
}

size_t sample_workspace_bytes(const SampleParams& p) {
    if (greedy(p) || p.num_rows <= 0 || p.vocab_size <= 0) return 0;
    return sort_layout(p.num_rows, p.vocab_size, choose_path(p) != Path::kPrefixTopK).total;
}

Status run(const SampleParams& p, cudaStream_t stream) {
    VOLT_RETURN_IF_ERROR(validate(p));
    if (p.num_rows == 0) return Status::ok();
    const Penalty pen{p.history, p.history_stride, p.history_len, p.records,
                      penalised(p) ? p.sampling.repetition_penalty : 1.0f};
    const size_t smem = bitmap_bytes(p);
    const unsigned rows = static_cast<unsigned>(p.num_rows);
    if (greedy(p)) {
        if (smem > 48 * 1024) VOLT_RETURN_IF_ERROR(allow_smem<greedy_kernel>(static_cast<int>(smem)));
        return launch_dependent(greedy_kernel, dim3(rows), dim3(kThreads), smem, stream, p.logits, p.logits_stride,
                                p.vocab_size, pen, p.out_ids);
    }
    const Path path = choose_path(p);
    const SortLayout L = sort_layout(p.num_rows, p.vocab_size, path != Path::kPrefixTopK);
    if (!p.workspace || p.workspace_bytes < L.total)
        return invalid_argument("sample (CUDA): workspace of ", L.total, " bytes needed (sample_workspace_bytes)");
    char* ws = static_cast<char*>(p.workspace);
    auto* keys_in = reinterpret_cast<float*>(ws + L.keys_in);
    auto* ids_in = reinterpret_cast<int32_t*>(ws + L.ids_in);
    auto* keys_out = reinterpret_cast<float*>(ws + L.keys_out);
    auto* ids_out = reinterpret_cast<int32_t*>(ws + L.ids_out);
    auto* offsets = reinterpret_cast<int32_t*>(ws + L.offsets);
    auto* seg_end = reinterpret_cast<int32_t*>(ws + L.seg_end);
    auto* nan = reinterpret_cast<int32_t*>(ws + L.nan);
    PrefixOut po{};
    if (path != Path::kSort) {
        po = PrefixOut{reinterpret_cast<float*>(ws + L.cand_keys), reinterpret_cast<int32_t*>(ws + L.cand_ids),
                       reinterpret_cast<int32_t*>(ws + L.cand_len), reinterpret_cast<double*>(ws + L.cand_z)};
        if (p.num_rows > 0x7fffffff / kPickCluster) return invalid_argument("sample (CUDA): too many rows");
        VOLT_RETURN_IF_ERROR(allow_smem<prefix_kernel>(static_cast<int>(227 * 1024 - sizeof(PrefixShared))));
        VOLT_RETURN_IF_ERROR(launch_dependent(prefix_kernel, dim3(rows * kPickCluster), dim3(kPreThreads), smem,
                                              stream, p.logits, p.logits_stride, p.vocab_size, pen, p.sampling, po,
                                              keys_in, ids_in, offsets, seg_end, nan));
        if (path == Path::kPrefixTopP) {
            // Rows whose prefix did not fit have a non-empty segment; the others' segments are empty.
            size_t temp = L.temp_bytes;
            VOLT_CUDA_RETURN_IF_ERROR(cub::DeviceSegmentedRadixSort::SortPairsDescending(
                ws + L.temp, temp, keys_in, keys_out, ids_in, ids_out, p.num_rows * p.vocab_size, p.num_rows, offsets,
                seg_end, 0, static_cast<int>(sizeof(float) * 8), stream));
        }
    } else {
        if (smem > 48 * 1024) VOLT_RETURN_IF_ERROR(allow_smem<prepare_kernel>(static_cast<int>(smem)));
        prepare_kernel<<<rows, kThreads, smem, stream>>>(p.logits, p.logits_stride, p.vocab_size, pen, keys_in, ids_in,
                                                         offsets, nan, p.num_rows);
        VOLT_CUDA_CHECK_LAUNCH();
        size_t temp = L.temp_bytes;
        VOLT_CUDA_RETURN_IF_ERROR(cub::DeviceSegmentedRadixSort::SortPairsDescending(
            ws + L.temp, temp, keys_in, keys_out, ids_in, ids_out, p.num_rows * p.vocab_size, p.num_rows, offsets,
            offsets + 1, 0, static_cast<int>(sizeof(float) * 8), stream));
    }
    return launch_dependent(select_kernel, dim3(rows), dim3(kSelThreads), 0, stream, keys_out, ids_out, nan,
                            p.vocab_size, p.sampling, p.uniform, p.out_ids, po);
}

Status run(const RecordIdsParams& p, cudaStream_t stream) {
    if (p.n < 0 || p.vocab_size <= 0)
        return invalid_argument("record ids (CUDA): n ", p.n, " >= 0 and vocab_size ", p.vocab_size, " >= 1");
    if (p.n == 0) return Status::ok();
    if (!p.ids || (!p.records && !p.record))
        return invalid_argument("record ids (CUDA): ids and records (or one record) must be set");
    const int threads = 256;
    const int blocks = static_cast<int>(std::min<int64_t>((p.n + threads - 1) / threads, 1024));
    return launch_dependent(record_ids_kernel, dim3(blocks), dim3(threads), 0, stream, p);
}

}  // namespace volt::cuda
