// cuDNN SDPA for the ViT's bidirectional attention (internal to vision/cuda/vit_kernels.cu). Compiled only with
// cudnn-frontend (VOLT_VISION_HAVE_CUDNN, see vision/CMakeLists.txt); libcudnn is loaded at run time by
// kernels/cuda/attention_cudnn.cu (cudnn_sdpa_available), whose dynamic-loading handle this file shares.
#pragma once

#include <cuda_runtime.h>

#include "sdk/status.h"
#include "vision/cuda/vit_kernels.h"

namespace volt::vision::cuda {

#if defined(VOLT_VISION_HAVE_CUDNN) && VOLT_VISION_HAVE_CUDNN
bool vit_cudnn_available();
// B sequences of T tokens, no mask: a cuDNN graph per (shape, strides, scale, device), built at first use and cached
// with its workspace (so later calls, CUDA graph capture included, only execute).
Status vit_cudnn_attention(const VitAttentionParams& p, cudaStream_t stream);
#else
inline bool vit_cudnn_available() { return false; }
inline Status vit_cudnn_attention(const VitAttentionParams&, cudaStream_t) {
    return unimplemented("ViT attention (CUDA): built without cudnn-frontend");
}
#endif

}  // namespace volt::vision::cuda
