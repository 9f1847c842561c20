// Elementwise activations in fp32: SwiGLU's SiLU(gate) * up (MoE experts) and SiLU alone.
#pragma once

#include <cstdint>

#include "sdk/status.h"

namespace volt {

struct SwigluParams {
    int64_t num_elements = 0;
    const float* gate = nullptr;  // [N]
    const float* up = nullptr;    // [N]
    float* out = nullptr;         // [N] = silu(gate) * up; may alias gate or up
};

Status validate(const SwigluParams& p);

namespace cpu {
Status swiglu(const SwigluParams& p);
}  // namespace cpu

}  // namespace volt
