// Tensor maps for TMA (kernels/cuda/tensor_map.h).
#include "kernels/cuda/tensor_map.h"

#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <tuple>

namespace volt::cuda {

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
    static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult q{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) !=
                cudaSuccess ||
            q != cudaDriverEntryPointSuccess) {
            cudaGetLastError();
            return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
        }
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    }();
    return fn;
}

namespace {

// A 2-D tiled map: dims {cols, rows}, rows `stride_bytes` apart, boxes of box_cols columns x box_rows rows.
Expected<CUtensorMap> tile_map(CUtensorMapDataType type, const char* type_name, const void* base, int64_t rows,
                               int64_t cols, int64_t stride_bytes, int box_rows, CUtensorMapSwizzle swizzle,
                               int box_cols = 64) {
    const PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
    if (encode == nullptr) return unimplemented("TMA: the driver has no cuTensorMapEncodeTiled");
    CUtensorMap map;
    const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
    const cuuint64_t strides[1] = {static_cast<cuuint64_t>(stride_bytes)};
    const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows)};
    const cuuint32_t elem_strides[2] = {1, 1};
    const CUresult r = encode(&map, type, 2, const_cast<void*>(base), dims, strides, box, elem_strides,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return internal_error("TMA: cuTensorMapEncodeTiled failed (CUresult ", int(r), ") for a [", rows, ", ", cols,
                              "] ", type_name, " matrix, row stride ", stride_bytes, " bytes, box ", box_cols, " x ",
                              box_rows);
    return map;
}

}  // namespace

Expected<CUtensorMap> bf16_tile_map(const void* base, int64_t rows, int64_t cols, int64_t stride, int box_rows) {
    return tile_map(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, "bf16", base, rows, cols, stride * 2, box_rows,
                    CU_TENSOR_MAP_SWIZZLE_128B);
}

Expected<CUtensorMap> byte_tile_map(const void* base, int64_t rows, int64_t cols, int64_t stride, int box_rows,
                                    bool swizzle64) {
    return tile_map(CU_TENSOR_MAP_DATA_TYPE_UINT8, "byte", base, rows, cols, stride, box_rows,
                    swizzle64 ? CU_TENSOR_MAP_SWIZZLE_64B : CU_TENSOR_MAP_SWIZZLE_NONE);
}

Expected<CUtensorMap> weight_tile_map(const void* w, int64_t rows, int64_t cols, int box_rows, WeightTile kind) {
    static std::mutex mu;
    static std::map<std::tuple<const void*, int64_t, int64_t, int, WeightTile>, CUtensorMap> cache;
    const auto key = std::make_tuple(w, rows, cols, box_rows, kind);
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    Expected<CUtensorMap> map = kind == WeightTile::kBf16 ? bf16_tile_map(w, rows, cols, cols, box_rows)
                                : kind == WeightTile::kBytes128
                                    ? tile_map(CU_TENSOR_MAP_DATA_TYPE_UINT8, "byte", w, rows, cols, cols, box_rows,
                                               CU_TENSOR_MAP_SWIZZLE_NONE, 128)
                                    : byte_tile_map(w, rows, cols, cols, box_rows, true);
    if (!map) return map.status();
    cache.emplace(key, *map);
    return map;
}

}  // namespace volt::cuda
