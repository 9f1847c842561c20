// Tensor maps for the Tensor Memory Accelerator (Hopper bulk tensor copies): the driver's cuTensorMapEncodeTiled,
// found once through the runtime (no libcuda link), a 2-D bf16 tile map with 128-byte swizzle, the layout wgmma's
// swizzled shared-memory operands read, and a 2-D byte tile map (quantised weights, widened in shared memory or
// registers before wgmma reads them). Used by the lightning prefill and the MoE grouped GEMM.
#pragma once

#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include <cuda.h>
#include <cudaTypedefs.h>

#include <cstdint>

#include "sdk/status.h"

namespace volt::cuda {

// nullptr when the driver offers no cuTensorMapEncodeTiled (then callers take their non-TMA path).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder();

// A row-major bf16 matrix [rows, cols] with rows `stride` elements apart, read in boxes of 64 columns (128 bytes) x
// box_rows rows (<= 256), 128-byte swizzled; rows past `rows` read as zeros.
Expected<CUtensorMap> bf16_tile_map(const void* base, int64_t rows, int64_t cols, int64_t stride, int box_rows);

// A row-major byte matrix [rows, cols] with rows `stride` bytes apart (a multiple of 16), read in boxes of 64 columns
// x box_rows rows (<= 256) as 64-byte rows, unswizzled or (swizzle64) with TMA's 64-byte swizzle: row r's 16-byte
// chunk c at chunk c ^ ((r >> 1) & 3) (tiles 512-byte aligned), so that 8 rows' same 4 bytes are read without bank
// conflicts; rows past `rows` read as zeros.
Expected<CUtensorMap> byte_tile_map(const void* base, int64_t rows, int64_t cols, int64_t stride, int box_rows,
                                    bool swizzle64 = false);

// A weight matrix's map as the MoE kernels read it, encoded once per (pointer, shape, box, kind) and then taken from a
// cache: the weights live as long as the model, and a map holds only the address, shape and layout, so a later
// allocation at the same address and shape reuses it rightly. Rows contiguous (stride = cols).
enum class WeightTile : uint8_t {
    kBf16,            // bf16_tile_map (128-byte swizzle)
    kBytesSwizzle64,  // byte_tile_map with the 64-byte swizzle
    kBytes128,        // bytes in boxes of 128 columns x box_rows rows (128-byte rows), unswizzled
};
Expected<CUtensorMap> weight_tile_map(const void* w, int64_t rows, int64_t cols, int box_rows, WeightTile kind);

}  // namespace volt::cuda
#endif
