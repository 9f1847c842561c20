// How fast the MoE decode GEMV's weight loads stream from HBM, by load variant, with no arithmetic in the way.
//
// The FP8 gated product at T = 1 (gemv_mma_kernel, kernels/cuda/moe.cu) streams ~2.0 TB/s where cuBLASLt's lm_head
// reaches 2.87; more warps, a cp.async ring and bulk copies did not move it (bench/RESULTS.md, session 29). This
// probe replays its exact address pattern — 1152 items (2 experts x 576 blocks of 16 rows) of w1 and w3 [9216, 6144]
// e4m3, lane (g, q) reading 16 bytes of rows g and g + 8 at column 16q of each 64-column step, 4 steps per batch in
// flight, items dealt to 3 CTAs x 4 warps per SM — and times variants of the load itself:
//   cs          ld.global.cs (the kernel's __ldcs)
//   cs_l2_128   ... with the L2::128B prefetch-size hint
//   cs_l2_256   ... with L2::256B
//   nc_l2_256   ld.global.nc.L1::no_allocate.L2::256B
//   l1_lines    lane q reads [32q, 32q + 16) then [32q + 16, 32q + 32) of two steps' 128 bytes (L1-cached: the second
//               load of a line meets the first one's fill), so each L2 request is a whole 128-byte line
//   line_runs   the same bytes per batch (256 of each of the 32 rows), but each load instruction reads 256 contiguous
//               bytes of two rows (16 lanes a row), so each instruction asks for whole 128-byte lines
//   cs_8steps   cs with 8 steps per batch in flight (twice the bytes per lane)
//   contiguous  the same bytes, each warp's item read row after row in 512-byte runs (the ideal pattern)
//   cs_compute  cs plus a stand-in multiply phase after each batch (a dependent FMA chain; compute_only: that alone)
//   compute_stagger4 / 8: cs_compute with the warps' starts staggered over 4 / 8 phases of a batch's time
// Weights rotate over 32 experts (3.6 GB), random bytes. Output: one JSON line per variant (median of 20 calls), after
// the copy ceiling of the same run.
//
// H100, session 30 (second pass, clocks up): cs 2.54 TB/s, the L2 hints 2.68-2.72, l1_lines 2.71, line_runs 2.74,
// cs_8steps 2.50, contiguous 2.67, copy ceiling 2.98. So the kernel's pattern itself streams at 85% of the ceiling;
// what the kernel loses below it (2.0 TB/s) is the time its warps spend multiplying with no load in flight. With a
// stand-in multiply phase as long as the loads (compute_only 0.095 ms) the loads' time grows by half (cs_compute
// 0.138 ms), and staggering the warps' starts does not help (0.137 ms): the warps are not in lockstep; what counts
// is the bytes in flight on average.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "bench/bench_common.cuh"

namespace {

constexpr int kRows = 9216, kK = 6144, kExperts = 32, kThreads = 128, kRowsPerItem = 16, kStep = 64;
constexpr int kComputeFmas = 256;

enum Mode {
    kCs, kCsL2_128, kCsL2_256, kNcL2_256, kL1Lines, kLineRuns, kCs8Steps, kContiguous,
    kCompute, kComputeOnly, kComputeStagger4, kComputeStagger8, kModes
};
const char* const kNames[kModes] = {"cs",         "cs_l2_128",    "cs_l2_256",        "nc_l2_256",
                                    "l1_lines",   "line_runs",    "cs_8steps",        "contiguous",
                                    "cs_compute", "compute_only", "compute_stagger4", "compute_stagger8"};
constexpr bool kHasCompute[kModes] = {false, false, false, false, false, false, false, false, true, true, true, true};

// Volatile, so that the compiler issues a batch's loads before the first use (as the kernel's 167 registers do)
// rather than interleaving each with its use.
template <int kMode>
__device__ __forceinline__ uint4 load16(const uint8_t* p) {
    uint4 v;
#define VOLT_PROBE_LD(op) \
    asm volatile(op " {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p))
    if constexpr (kMode == kCsL2_128) VOLT_PROBE_LD("ld.global.cs.L2::128B.v4.u32");
    else if constexpr (kMode == kCsL2_256) VOLT_PROBE_LD("ld.global.cs.L2::256B.v4.u32");
    else if constexpr (kMode == kNcL2_256) VOLT_PROBE_LD("ld.global.nc.L1::no_allocate.L2::256B.v4.u32");
    else if constexpr (kMode == kL1Lines) VOLT_PROBE_LD("ld.global.nc.v4.u32");
    else VOLT_PROBE_LD("ld.global.cs.v4.u32");
#undef VOLT_PROBE_LD
    return v;
}

// A lane's 16 bytes at `col`, shaped as the kernel's load_cols (kernels/cuda/moe.cu): two 8-byte loads when `split`
// (K not a multiple of 16) or past K. The branches keep ptxas from interleaving each load with its use (as in the
// kernel, where they make a batch's 16 loads go out before the first product).
template <int kMode>
__device__ __forceinline__ uint4 load_cols(const uint8_t* p, int col, int K, bool split) {
    if constexpr (kMode == kComputeOnly) return make_uint4(col, K, 0, 0);
    if (!split && col + 16 <= K) return load16<kMode>(p + col);
    const uint2 lo = col < K ? __ldcs(reinterpret_cast<const uint2*>(p + col)) : uint2{};
    const uint2 hi = col + 8 < K ? __ldcs(reinterpret_cast<const uint2*>(p + col + 8)) : uint2{};
    return make_uint4(lo.x, lo.y, hi.x, hi.y);
}

// The kernel's pattern: lane (g, q) reads 16 bytes of rows g and g + 8 of both matrices per 64-column step, kSteps
// steps per batch, all of a batch's loads before the first use.
template <int kMode>
__device__ __forceinline__ void run_batches(const uint8_t* const (&mat)[2], int64_t row0, int g, int q, int K,
                                            bool split, uint32_t& acc) {
    constexpr int kSteps = kMode == kCs8Steps ? 8 : 4;
    const uint8_t* rows[2][2];
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
        for (int h = 0; h < 2; ++h) rows[m][h] = mat[m] + (row0 + g + 8 * h) * kK;
    for (int k0 = 0; k0 < kK; k0 += kSteps * kStep) {
        uint4 v[kSteps][2][2];
#pragma unroll
        for (int s = 0; s < kSteps; ++s) {
            // l1_lines: steps s and s + 1 share a 128-byte line; lane q takes its 16-byte halves 2q and 2q + 1.
            const int col = kMode == kL1Lines ? k0 + (s / 2) * 128 + 32 * q + 16 * (s % 2) : k0 + s * kStep + 16 * q;
#pragma unroll
            for (int m = 0; m < 2; ++m)
#pragma unroll
                for (int h = 0; h < 2; ++h) v[s][m][h] = load_cols<kMode>(rows[m][h], col, K, split);
        }
#pragma unroll
        for (int s = 0; s < kSteps; ++s)
#pragma unroll
            for (int m = 0; m < 2; ++m)
#pragma unroll
                for (int h = 0; h < 2; ++h) acc += v[s][m][h].x ^ v[s][m][h].y ^ v[s][m][h].z ^ v[s][m][h].w;
        if constexpr (kHasCompute[kMode]) {
            // A stand-in for the kernel's multiplies (~1 us a batch on an H100): a dependent FMA chain on the data.
            float f = __uint_as_float((acc & 0x007fffffu) | 0x3f800000u);
#pragma unroll 1
            for (int i = 0; i < kComputeFmas; ++i) f = fmaf(f, 0.999f, 0.001f);
            acc += __float_as_uint(f);
        }
    }
}

// w: [experts][2 mats][kRows][kK] bytes; the call reads experts e0 and e0 + 1. out[thread]: a checksum.
template <int kMode>
__global__ void __launch_bounds__(kThreads) probe_kernel(const uint8_t* w, int e0, int K, bool split, uint32_t* out) {
    const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3, wslot = threadIdx.x >> 5;
    const int64_t slots = int64_t{gridDim.x} * (kThreads / 32);
    constexpr int64_t kBlocks = kRows / kRowsPerItem, kItems = 2 * kBlocks;
    uint32_t acc = 0;
    // Staggered starts: warp w sleeps (w mod n) / n of a batch's time first, so that the warps' load and multiply
    // phases interleave instead of meeting.
    if constexpr (kMode == kComputeStagger4 || kMode == kComputeStagger8) {
        constexpr int n = kMode == kComputeStagger4 ? 4 : 8;
        __nanosleep(static_cast<unsigned>((wslot * gridDim.x + blockIdx.x) % n * 4600 / n));
    }
    for (int64_t item = wslot * int64_t{gridDim.x} + blockIdx.x; item < kItems; item += slots) {
        const int e = e0 + static_cast<int>(item / kBlocks);
        const int64_t row0 = (item % kBlocks) * kRowsPerItem;
        const uint8_t* mat[2] = {w + (int64_t{e} * 2 + 0) * kRows * kK, w + (int64_t{e} * 2 + 1) * kRows * kK};
        if constexpr (kMode == kContiguous) {
            // 32 rows (16 of each matrix), each read as 12 runs of 512 bytes (16 bytes a lane).
            for (int r = 0; r < 2 * kRowsPerItem; ++r) {
                const uint8_t* row = mat[r / kRowsPerItem] + (row0 + r % kRowsPerItem) * kK;
                uint4 v[kK / 512];
#pragma unroll
                for (int c = 0; c < kK / 512; ++c) v[c] = load_cols<kCs>(row, 512 * c + 16 * lane, K, split);
#pragma unroll
                for (int c = 0; c < kK / 512; ++c) acc += v[c].x ^ v[c].y ^ v[c].z ^ v[c].w;
            }
        } else if constexpr (kMode == kLineRuns) {
            // Instruction i of a batch: rows 2i and 2i + 1 of the item's 32 (lanes 0-15, 16-31), 256 bytes each.
            const int r = lane >> 4;
            for (int k0 = 0; k0 < kK; k0 += 4 * kStep) {
                uint4 v[kRowsPerItem];
#pragma unroll
                for (int i = 0; i < kRowsPerItem; ++i) {
                    const int row = 2 * i + r;  // 0..31: matrix row / 16, row % 16
                    v[i] = load_cols<kCs>(mat[row / kRowsPerItem] + (row0 + row % kRowsPerItem) * kK,
                                          k0 + 16 * (lane & 15), K, split);
                }
#pragma unroll
                for (int i = 0; i < kRowsPerItem; ++i) acc += v[i].x ^ v[i].y ^ v[i].z ^ v[i].w;
            }
        } else {
            run_batches<kMode>(mat, row0, g, q, K, split, acc);
        }
    }
    out[blockIdx.x * kThreads + threadIdx.x] = acc;
}

__global__ void fill_bytes(uint8_t* p, size_t n, uint64_t seed) {
    for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n / 4; i += size_t{gridDim.x} * blockDim.x)
        reinterpret_cast<uint32_t*>(p)[i] = volt::bench::hash32(seed * 0x9e3779b97f4a7c15ULL + i);
}

constexpr int kCtasPerSm = 3;  // as the kernel's grid at 168 registers

template <int... kM>
void run_all(const uint8_t* w, uint32_t* out, int grid, std::integer_sequence<int, kM...>) {
    const double bytes = 2.0 * 2 * kRows * kK;
    (
        [&] {
            // Call i reads experts 2i and 2i + 1 (mod 32): the weights of the call before are not in L2.
            const double ms = volt::bench::median_ms(
                [&](int i) {
                    probe_kernel<kM><<<grid, kThreads>>>(w, (2 * i) % kExperts, kK, false, out);
                    CHECK(cudaGetLastError());
                },
                4, 20);
            char line[160];
            std::snprintf(line, sizeof line,
                          "{\"probe\": \"gemv_loads\", \"mode\": \"%s\", \"ms\": %.4f, \"tb_s\": %.3f, \"ctas\": %d}",
                          kNames[kM], ms, bytes / (ms * 1e-3) / 1e12, grid);
            volt::bench::emit(line);
        }(),
        ...);
}

}  // namespace

int main() {
    int sms = 0;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const size_t n = size_t{kExperts} * 2 * kRows * kK;
    uint8_t* w = nullptr;
    uint32_t* out = nullptr;
    CHECK(cudaMalloc(&w, n));
    CHECK(cudaMalloc(&out, size_t{kCtasPerSm} * sms * kThreads * sizeof(uint32_t)));
    fill_bytes<<<4 * sms, 256>>>(w, n, 7);
    CHECK(cudaGetLastError());
    // Copy ceiling of the same run: device-to-device copy of 1 GiB (read + write bytes).
    const size_t cb = size_t{1} << 30;
    const double copy_ms = volt::bench::median_ms(
        [&](int) { CHECK(cudaMemcpyAsync(w + cb, w + 2 * cb, cb, cudaMemcpyDeviceToDevice)); }, 2, 10);
    volt::bench::emit("{\"probe\": \"copy_ceiling\", \"tb_s\": " + std::to_string(2.0 * cb / (copy_ms * 1e-3) / 1e12) +
                      "}");
    fill_bytes<<<4 * sms, 256>>>(w, n, 7);  // the copied GiB back to random bytes
    CHECK(cudaGetLastError());
    run_all(w, out, kCtasPerSm * sms, std::make_integer_sequence<int, kModes>{});
    CHECK(cudaFree(w));
    CHECK(cudaFree(out));
    return 0;
}
