// cuDNN SDPA for the softmax-attention prefill (internal to kernels/cuda/attention.cu). Compiled only with
// cudnn-frontend (VOLT_HAVE_CUDNN_FRONTEND, see ops.cmake); without it these report "unavailable".
#pragma once

#include <cuda_runtime.h>

#include "kernels/attention_cuda.h"
#include "sdk/status.h"

namespace volt::cuda {

#if defined(VOLT_HAVE_CUDNN_FRONTEND) && VOLT_HAVE_CUDNN_FRONTEND
// libcudnn.so.9 loaded (dlopen, once per process; VOLT_CUDNN_LIBRARY overrides the name) and new enough for SDPA.
bool cudnn_sdpa_available();
// One sequence, no cached prefix (cu_seqlens, kv_lens, kv_start null): causal GQA SDPA through a cuDNN graph built
// once per (shape, strides, scale, device) and cached with its workspace.
Status cudnn_sdpa_prefill(const AttentionParams& p, cudaStream_t stream);
#else
inline bool cudnn_sdpa_available() { return false; }
inline Status cudnn_sdpa_prefill(const AttentionParams&, cudaStream_t) {
    return unimplemented("attention (CUDA): built without cudnn-frontend");
}
#endif

}  // namespace volt::cuda
