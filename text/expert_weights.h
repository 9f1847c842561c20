// How a MiniMax model keeps its expert weights on the GPU (CUDA only; the CPU backend runs them as loaded): bf16 as in
// the checkpoint, or quantised at load to one byte per weight plus one fp32 scale per 128 x 128 block — FP8 e4m3, or
// int8 (weight-only, as vLLM serves MiniMax's experts: about a third of FP8's error at the same size). Either halves
// the expert bytes, which is what lets the whole model and a long context fit on one 8-GPU node. FP8 prefill on Hopper
// also quantises the activations and runs FP8 tensor-core GEMMs (cuda::MoeFp8Mode, kernels/moe_cuda.h).
#pragma once

#include <cstdint>
#include <string>

#include "sdk/status.h"

namespace volt {

enum class ExpertWeights : uint8_t { kBf16, kFp8, kInt8 };

const char* expert_weights_name(ExpertWeights w);  // "bf16", "fp8", "int8"
// The CLI's --expert-weights (bf16 | fp8 | int8; "" = bf16) with its shorthand --fp8-experts (`fp8_flag`).
// INVALID_ARGUMENT naming the value for anything else, or for --fp8-experts with another --expert-weights.
Expected<ExpertWeights> parse_expert_weights(const std::string& name, bool fp8_flag = false);

}  // namespace volt
