// The ViT's attention on Hopper tensor cores (vit_attention_wgmma.cu): bidirectional softmax attention of short
// sequences (a crop's 577 tokens) with head_dim 64, the shape where cuDNN's SDPA reaches ~290 TFLOP/s (the exponentials
// are as much work as the products at d = 64). Internal to vision/cuda: callers go through run(VitAttentionParams)
// in vit_kernels.h with backend kWgmma (or kAuto).
#pragma once

#include <cuda_runtime.h>

#include "sdk/status.h"
#include "vision/cuda/vit_kernels.h"

namespace volt::vision::cuda {

// nullptr when the wgmma kernel takes these parameters (head_dim 64, scale > 0, q/k/v/o rows 16-byte aligned: base
// pointers, strides and offsets in multiples of 8 elements; an sm_90 device), else the first unmet condition (the
// error of an explicit kWgmma request; kAuto then takes cuDNN or the fallback).
const char* wgmma_attention_unfit(const VitAttentionParams& p);
Status run_wgmma_attention(const VitAttentionParams& p, cudaStream_t stream);

}  // namespace volt::vision::cuda
