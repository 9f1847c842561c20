// How fast the lightning prefill's TMA tile pattern streams from HBM with no arithmetic in the way, by variant.
//
// The TMA-fed prefill (kernels/cuda/lightning_prefill_tma.cu) runs at 82-88% of the device copy ceiling at T = 128K
// (bench/lightning_notes.md, v9); the issue's 2.3x flash-linear-attention needs ~86% on every H100. This probe replays
// its memory traffic — one CTA per (value slice, head), 64-token chunks, one thread issuing per chunk Q and K as two
// 64-column boxes each (128-byte swizzle) and the V slice as one box into a 4-stage mbarrier ring, a consumer
// warpgroup releasing each stage after storing the chunk's 64 x 64 output slice (16-byte stores) — and variants:
//   kernel       the kernel's pattern, as above
//   loads_only   without the output stores
//   stages5      five stages (the kernel has no room: its S buffers and output staging take 56 KiB)
//   box256       Q and K as one 128-column box (256-byte rows, no swizzle) each
//   one_cta_head one CTA per head loading the whole V (64 CTAs: Q and K cross L2 -> SM once)
//   head_major   the same boxes from [H, T, 128] tensors (each box one contiguous 16 KiB run): the layout's cost
// Inputs random (SiLU of normals), 64 heads, d = 128, T = 128K unless --tokens. Output: one JSON line per variant
// (median of 10 calls), after the copy ceiling of the same run; bytes counted = q, k, v read + o written once.
//
// H100, session 40 (two calls, copy ceiling 3.01): kernel pattern 2.89-2.94 ms (2.93-2.97 TB/s, 98%), loads only
// 2.08, 5 stages 3.68-3.85, 256-byte boxes 2.89-2.91, one CTA per head 3.07-3.44, head-major 3.34-3.45. The kernel
// then took 3.40 ms: its arithmetic, not this pattern, held it (bench/lightning_notes.md, v11).
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/bench_common.cuh"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/mbarrier.cuh"
#include "kernels/cuda/tensor_map.h"

namespace {

using volt::cuda::mbar_arrive;
using volt::cuda::mbar_arrive_expect_tx;
using volt::cuda::mbar_init;
using volt::cuda::mbar_wait;
using volt::cuda::smem_u32;
using volt::cuda::tma_load_3d;

constexpr int kD = 128, kC = 64, kHeads = 64, kConsumerThreads = 128, kThreads = 32 + kConsumerThreads;

struct Maps {
    CUtensorMap q, k, v;  // boxes {64 or 128 columns, 1 head, 64 tokens} (token-major) or {cols, 64 tokens, 1 head}
};

struct Variant {
    const char* name;
    int stages;
    bool store_o;
    bool box256;      // Q and K as one 128-column box each (no swizzle)
    int slices;       // 2: CTA per (value slice, head); 1: CTA per head, whole V
    bool head_major;  // tensors [H, T, 128]
};

// Bytes of one ring stage: Q and K (64 x 128) and the CTA's value columns.
__host__ __device__ constexpr int stage_bytes(int slices) { return 2 * kC * kD * 2 + kC * (kD / slices) * 2; }

struct Args {
    int64_t tokens;
    Variant v;
    __nv_bfloat16* o;  // [T, H, 128]
};

__global__ void __launch_bounds__(kThreads, 1) probe_kernel(const __grid_constant__ Maps maps, const Args a) {
    extern __shared__ __align__(1024) char smem_raw[];
    char* tiles = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    const Variant& var = a.v;
    const int vcols = kD / var.slices, sbytes = stage_bytes(var.slices);
    const uint32_t bars = smem_u32(tiles + var.stages * sbytes);
    auto full = [&](int st) { return bars + 8 * st; };
    auto empty = [&](int st) { return bars + 8 * (var.stages + st); };
    const int slice = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
    if (tid == 0) {
        for (int st = 0; st < var.stages; ++st) {
            mbar_init(full(st), 1);
            mbar_init(empty(st), kConsumerThreads / 32);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    const int nchunks = static_cast<int>((a.tokens + kC - 1) / kC);
    if (tid < 32) {
        if (tid != 0) return;
        for (int c = 0; c < nchunks; ++c) {
            const int st = c % var.stages;
            if (c >= var.stages) mbar_wait(empty(st), (c / var.stages - 1) & 1);
            const uint32_t sq = smem_u32(tiles + st * sbytes), sk = sq + kC * kD * 2, sv = sk + kC * kD * 2;
            const int t = c * kC;
            // TMA coordinates: token-major maps are {col, head, token}, head-major ones {col, token, head}.
            const int c1 = var.head_major ? t : h, c2 = var.head_major ? h : t;
            mbar_arrive_expect_tx(full(st), sbytes);
            if (var.box256) {
                tma_load_3d(sq, &maps.q, full(st), 0, c1, c2);
                tma_load_3d(sk, &maps.k, full(st), 0, c1, c2);
            } else {
                tma_load_3d(sq, &maps.q, full(st), 0, c1, c2);
                tma_load_3d(sq + kC * 128, &maps.q, full(st), 64, c1, c2);
                tma_load_3d(sk, &maps.k, full(st), 0, c1, c2);
                tma_load_3d(sk + kC * 128, &maps.k, full(st), 64, c1, c2);
            }
            for (int vc = 0; vc < vcols; vc += 64)
                tma_load_3d(sv + vc * kC * 2, &maps.v, full(st), slice * vcols + vc, c1, c2);
        }
        return;
    }
    // Consumers: wait for the chunk, store the output slice (V's bytes stand in for O), release the stage.
    const int ct = tid - 32, lane = tid & 31;
    const int chunks_per_row = vcols * 2 / 16;
    for (int c = 0; c < nchunks; ++c) {
        const int st = c % var.stages;
        mbar_wait(full(st), (c / var.stages) & 1);
        if (var.store_o) {
            const char* sv = tiles + st * sbytes + 2 * kC * kD * 2;
            const int64_t t0 = int64_t{c} * kC;
            for (int i = ct; i < kC * chunks_per_row; i += kConsumerThreads) {
                const int r = i / chunks_per_row, ch = i % chunks_per_row;
                if (t0 + r >= a.tokens) continue;
                const uint4 val = *reinterpret_cast<const uint4*>(sv + (ch / 8) * kC * 128 + r * 128 + (ch % 8) * 16);
                __nv_bfloat16* dst = a.o + (t0 + r) * (kHeads * kD) + h * kD + slice * vcols + ch * 8;
                *reinterpret_cast<uint4*>(dst) = val;
            }
        }
        __syncwarp();
        if (lane == 0) mbar_arrive(empty(st));
    }
}

// A bf16 [T, H, 128] (or [H, T, 128]) tensor's map with boxes of `cols` columns x 1 head x 64 tokens.
CUtensorMap make_map(const void* base, int64_t tokens, bool head_major, int cols) {
    CUtensorMap map;
    const cuuint64_t dims[3] = {kD, static_cast<cuuint64_t>(head_major ? tokens : kHeads),
                                static_cast<cuuint64_t>(head_major ? kHeads : tokens)};
    const cuuint64_t strides[2] = {kD * 2ull, (head_major ? tokens : kHeads) * kD * 2ull};
    const cuuint32_t box[3] = {static_cast<cuuint32_t>(cols), head_major ? kC : 1u, head_major ? 1u : kC};
    const cuuint32_t es[3] = {1, 1, 1};
    const CUresult r = volt::cuda::tensor_map_encoder()(
        &map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides, box, es,
        CU_TENSOR_MAP_INTERLEAVE_NONE, cols == 64 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        std::fprintf(stderr, "cuTensorMapEncodeTiled failed: %d\n", int(r));
        std::exit(1);
    }
    return map;
}

}  // namespace

int main(int argc, char** argv) {
    int64_t T = 131072;
    for (int i = 1; i < argc; ++i)
        if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) T = std::atoll(argv[++i]);
    if (!volt::cuda::tensor_map_encoder()) {
        std::fprintf(stderr, "no cuTensorMapEncodeTiled\n");
        return 1;
    }
    const size_t n = size_t(T) * kHeads * kD;
    __nv_bfloat16 *q, *k, *v, *o;
    CHECK(cudaMalloc(&q, n * 2));
    CHECK(cudaMalloc(&k, n * 2));
    CHECK(cudaMalloc(&v, n * 2));
    CHECK(cudaMalloc(&o, n * 2));
    int sms = 0;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    volt::bench::fill_activations<<<4 * sms, 256>>>(q, n, 1);
    volt::bench::fill_activations<<<4 * sms, 256>>>(k, n, 2);
    volt::bench::fill_activations<<<4 * sms, 256>>>(v, n, 3);
    CHECK(cudaGetLastError());
    // Copy ceiling of the same run (read + write bytes), on random data.
    const double copy_ms = volt::bench::median_ms(
        [&](int) { CHECK(cudaMemcpyAsync(o, q, n * 2, cudaMemcpyDeviceToDevice)); }, 2, 10);
    volt::bench::emit("{\"probe\": \"copy_ceiling\", \"tb_s\": " +
                      std::to_string(4.0 * n / (copy_ms * 1e-3) / 1e12) + "}");

    const Variant variants[] = {
        {"kernel", 4, true, false, 2, false},     {"loads_only", 4, false, false, 2, false},
        {"stages5", 5, true, false, 2, false},    {"box256", 4, true, true, 2, false},
        {"one_cta_head", 4, true, false, 1, false}, {"head_major", 4, true, false, 2, true},
        {"kernel", 4, true, false, 2, false},  // again: the first and last rows bracket any drift of the GPU
    };
    const double bytes = 4.0 * n * 2;  // q, k, v read + o written
    CHECK(cudaFuncSetAttribute(probe_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
    for (const Variant& var : variants) {
        Maps maps;
        const int cols = var.box256 ? 128 : 64;
        maps.q = make_map(q, T, var.head_major, cols);
        maps.k = make_map(k, T, var.head_major, cols);
        maps.v = make_map(v, T, var.head_major, 64);
        const int smem = var.stages * stage_bytes(var.slices) + 2 * var.stages * 8 + 1024;
        if (smem > 227 * 1024) {
            std::fprintf(stderr, "%s: %d bytes of shared memory\n", var.name, smem);
            continue;
        }
        const Args args{T, var, o};
        const dim3 grid(var.slices, kHeads);
        const double ms = volt::bench::median_ms(
            [&](int) {
                probe_kernel<<<grid, kThreads, smem>>>(maps, args);
                CHECK(cudaGetLastError());
            },
            2, 10);
        char line[200];
        std::snprintf(line, sizeof line,
                      "{\"probe\": \"lightning_loads\", \"variant\": \"%s\", \"T\": %lld, \"ms\": %.4f, "
                      "\"tb_s\": %.3f, \"ctas\": %d}",
                      var.name, static_cast<long long>(T), ms, bytes / (ms * 1e-3) / 1e12, var.slices * kHeads);
        volt::bench::emit(line);
    }
    CHECK(cudaFree(q));
    CHECK(cudaFree(k));
    CHECK(cudaFree(v));
    CHECK(cudaFree(o));
    return 0;
}
