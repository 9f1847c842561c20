// ViT patch embedding: a Conv2d with kernel = stride = patch and no bias (CLIP's patch_embedding), computed as
// im2col + GEMM. Output token n = (row, col) of the patch grid in row-major order, as the conv output flattened.
//     out[b, n, d] = sum_{c, i, j} weight[d, c, i, j] * pixels[b, c, row*P + i, col*P + j]
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct PatchEmbedParams {
    int64_t batch = 0;            // B images
    int64_t channels = 0;         // C
    int64_t image_size = 0;       // S (square), a multiple of patch
    int64_t patch = 0;            // P
    int64_t hidden = 0;           // D
    const float* pixels = nullptr;  // [B, C, S, S] contiguous
    const float* weight = nullptr;  // [D, C, P, P] contiguous (= [D, C*P*P])
    float* out = nullptr;           // [B, N, D], N = (S/P)^2; row n of image b at out + b*out_batch_stride + n*out_stride
    int64_t out_stride = 0;         // >= D
    int64_t out_batch_stride = 0;   // >= N * out_stride
};

Status validate(const PatchEmbedParams& p);

namespace cpu {
Status patch_embed(const PatchEmbedParams& p);  // im2col threaded over patches, one GEMM per image
}  // namespace cpu

}  // namespace volt
