#include <cmath>

#include "kernels/activation.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const SwigluParams& p) {
    if (p.num_elements < 0) return invalid_argument("swiglu: negative num_elements");
    if (p.num_elements > 0 && (!p.gate || !p.up || !p.out)) return invalid_argument("swiglu: gate, up and out must be set");
    return Status::ok();
}

namespace cpu {

Status swiglu(const SwigluParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    ThreadPool::global().parallel_for(p.num_elements, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const float g = p.gate[i];
            p.out[i] = g / (1.0f + std::exp(-g)) * p.up[i];
        }
    }, 1 << 14);
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
