// Device helpers shared by the CUDA kernels (kernels/cuda/*.cu): PTX wrappers for cp.async, ldmatrix and the
// mma.sync bf16 tensor-core product, bf16 pair packing, SiLU, 16-byte alignment, the per-(kernel, device) dynamic
// shared-memory opt-in, and programmatic dependent launches. Include only from .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <utility>

#include "sdk/cuda_check.h"
#include "sdk/env.h"
#include "sdk/status.h"

namespace volt::cuda {

// ---- small PTX helpers ----------------------------------------------------------------------------------------------
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// The 16 bytes of shared memory at shared-memory address `addr` (smem_u32).
__device__ __forceinline__ uint4 lds128(uint32_t addr) {
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
    return v;
}

// 16-byte async copy global -> shared; src_bytes == 0 fills the 16 bytes with zeros (rows past a sequence's end).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

// Four 8 x 8 b16 matrices from mma fragments (thread l holds row l / 4, columns 2 (l % 4) + {0, 1} of each, in r_i)
// stored transposed: lane 8 i + k gives the address of stored row k of matrix i, which holds the fragment's column k.
__device__ __forceinline__ void stsm_x4_t(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(addr), "r"(r0),
                 "r"(r1), "r"(r2), "r"(r3)
                 : "memory");
}

// Barrier `id` (1..15; 0 is __syncthreads') over `threads` threads (whole warps) of the CTA.
__device__ __forceinline__ void named_sync(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// Arrives at barrier `id` without waiting (threads waiting there in named_sync see this thread's earlier writes).
__device__ __forceinline__ void named_arrive(int id, int threads) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// One mma.sync with fp32 accumulators d (updated in place), A fragment a[4] and B fragment b0, b1; KIND: the PTX's
// shape, layouts and input types (one statement for every kind: the operands are the same).
#define VOLT_MMA_F32_ACC(KIND, d, a, b0, b1)                                                                    \
    asm volatile("mma.sync.aligned." KIND ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"  \
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                           \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1))

// D += A(16x16, row) * B(16x8, col), bf16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    VOLT_MMA_F32_ACC("m16n8k16.row.col.f32.bf16.bf16", d, a, b0, b1);
}

// D += A(16x16, row) * B(16x8, col), f16 inputs, fp32 accumulators; fragments as mma_bf16's.
__device__ __forceinline__ void mma_f16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    VOLT_MMA_F32_ACC("m16n8k16.row.col.f32.f16.f16", d, a, b0, b1);
}

// D += A(16x32, row) * B(32x8, col), e4m3 inputs (4 per register), fp32 accumulators (sm_89+). Fragments: a0 / a2 row
// g, a1 / a3 row g + 8, k = 4 t4 + {0..3} (a0, a1) and 16 + 4 t4 + {0..3} (a2, a3); b0 / b1 the same k of column g;
// d as mma_bf16's.
__device__ __forceinline__ void mma_e4m3(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    VOLT_MMA_F32_ACC("m16n8k32.row.col.f32.e4m3.e4m3", d, a, b0, b1);
}

// Byte offset of bf16 element (row, col) in a tile of rows of `kRowChunks` 16-byte chunks, XOR-swizzled so that the
// 8 row addresses of one ldmatrix phase (same column, consecutive rows) hit 8 different bank groups.
template <int kRowChunks>
__device__ __forceinline__ uint32_t swz(int row, int col) {
    const int chunk = (col >> 3) ^ (row & 7);
    return static_cast<uint32_t>(row * kRowChunks * 16 + chunk * 16 + (col & 7) * 2);
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}
__device__ __forceinline__ float2 unpack_bf16(uint32_t x) {
    __nv_bfloat162 v = *reinterpret_cast<__nv_bfloat162*>(&x);
    return __bfloat1622float2(v);
}
__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// 8 bf16 in a 16-byte vector <-> 8 floats.
__device__ __forceinline__ void unpack8(const uint4& u, float (&f)[8]) {
    const uint32_t* w = reinterpret_cast<const uint32_t*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 p = unpack_bf16(w[i]);
        f[2 * i] = p.x;
        f[2 * i + 1] = p.y;
    }
}
__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
    uint4 u;
    uint32_t* w = reinterpret_cast<uint32_t*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = pack_bf16(f[2 * i], f[2 * i + 1]);
    return u;
}

__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + __expf(-x)); }
// SiLU(gate) * up with the accurate expf: the SwiGLU between the expert / MLP projections (cpu::swiglu's formula).
__device__ __forceinline__ float swiglu_f(float gate, float up) { return gate / (1.0f + expf(-gate)) * up; }

// Sum of v over a CTA of kThreads threads (a multiple of 32), returned to every thread; fixed summation order.
// Uses one static shared array and one barrier: call it at most once per kernel.
template <int kThreads>
__device__ __forceinline__ float block_sum_once(float v) {
    __shared__ float part[kThreads / 32];
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(0xffffffffu, v, d);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    float tot = 0.0f;
#pragma unroll
    for (int i = 0; i < kThreads / 32; ++i) tot += part[i];
    return tot;
}

// Largest v over a CTA of kThreads threads (a multiple of 32), returned to every thread (fmaxf: NaNs are skipped),
// through `part` [kThreads / 32] floats of shared memory and one barrier: writing `part` again needs a barrier first.
template <int kThreads>
__device__ __forceinline__ float block_max(float v, float* part) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, d));
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    float m = part[0];
#pragma unroll
    for (int i = 1; i < kThreads / 32; ++i) m = fmaxf(m, part[i]);
    return m;
}
// block_max through a static shared array of its own: call it at most once per kernel.
template <int kThreads>
__device__ __forceinline__ float block_max_once(float v) {
    __shared__ float part[kThreads / 32];
    return block_max<kThreads>(v, part);
}

// Warp-wide argmax: the largest value, ties to the lower index; every lane ends with the winner.
template <typename Index>
__device__ __forceinline__ void warp_argmax(float& v, Index& i) {
#pragma unroll
    for (int d = 16; d > 0; d >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, d);
        const Index oi = __shfl_xor_sync(0xffffffffu, i, d);
        if (ov > v || (ov == v && oi < i)) {
            v = ov;
            i = oi;
        }
    }
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
// Workspace carving: each buffer starts on a 256-byte boundary.
constexpr size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Raises `kernel`'s dynamic shared-memory limit on the current device, once per (kernel, device): the attribute is
// per device, so a process driving several GPUs (tensor parallel) must set it on each.
template <auto kernel>
Status allow_smem(int bytes) {
    constexpr int kMaxDevices = 64;
    static std::atomic<bool> done[kMaxDevices];  // per kernel (template argument) and device; a repeat is harmless
    int device = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    if (device < kMaxDevices && done[device].load(std::memory_order_acquire)) return Status::ok();
    VOLT_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    if (device < kMaxDevices) done[device].store(true, std::memory_order_release);
    return Status::ok();
}

// A positive attribute of the current device (cached per attribute and device: asked on every launch of some kernels).
template <cudaDeviceAttr kAttr>
Expected<int> device_attribute() {
    constexpr int kMaxDevices = 64;
    static std::atomic<int> cached[kMaxDevices];
    int device = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    if (device < kMaxDevices) {
        const int c = cached[device].load(std::memory_order_relaxed);
        if (c > 0) return c;
    }
    int value = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&value, kAttr, device));
    if (device < kMaxDevices) cached[device].store(value, std::memory_order_relaxed);
    return value;
}

// Multiprocessor count of the current device.
inline Expected<int> sm_count() { return device_attribute<cudaDevAttrMultiProcessorCount>(); }
// Whether the current device is a Hopper GPU (sm_90: wgmma, TMA, FP8 block-scaled GEMMs).
inline bool on_hopper() {
    const Expected<int> major = device_attribute<cudaDevAttrComputeCapabilityMajor>();
    return major.has_value() && *major == 9;
}

// ---- programmatic dependent launch (sm_90) --------------------------------------------------------------------------
// A decode step is ~60 kernels of a few microseconds each; between two of them the GPU drains the first and only then
// launches the second. A kernel started by launch_dependent() instead becomes resident once every CTA of the kernel
// before it in the stream has passed start_dependent_kernel() (or exited), and waits there until that kernel has
// completed and its writes are visible: the launch overlaps the previous kernel's last CTAs.
//
// The contract, for every kernel that launch_dependent() may start: start_dependent_kernel() comes before it reads
// anything an earlier kernel wrote and before it writes anything (an earlier kernel may still be reading it); before
// that only its parameters and constant weights may be read. It waits first and only then lets the next kernel
// launch, so that a kernel two places later never starts before this one's predecessor has finished. A no-op for a
// kernel launched the ordinary way, and on a GPU before sm_90.
__device__ __forceinline__ void start_dependent_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Whether launch_dependent() asks for the overlap: VOLT_PDL=0 launches every kernel the ordinary way (A/B timing, and
// a way out should a driver mishandle it); read once.
inline bool pdl_enabled() {
    static const bool on = env_choice("VOLT_PDL", {{"0", false}, {"1", true}}, true);
    return on;
}

// Launches kernel<<<grid, block, smem, stream>>>(args...) as a programmatic dependent of the previous kernel in
// `stream` (see above: the kernel must follow the contract). In stream capture the dependency becomes a programmatic
// edge of the graph; after anything but a kernel it is an ordinary dependency.
template <typename... Params, typename... Args>
Status launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                        Args&&... args) {
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = pdl_enabled() ? 1 : 0;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    VOLT_CUDA_RETURN_IF_ERROR(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
    return Status::ok();
}

}  // namespace volt::cuda
