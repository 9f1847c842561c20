#include <algorithm>
#include <cmath>

#include "kernels/gelu.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const GeluParams& p) {
    if (p.rows < 0 || p.width <= 0)
        return invalid_argument("gelu: rows (", p.rows, ") must be >= 0 and width (", p.width, ") positive");
    if (p.rows > 0 && (!p.x || !p.out)) return invalid_argument("gelu: x and out must be set");
    return Status::ok();
}

namespace cpu {

Status gelu(const GeluParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int64_t W = p.width;
    ThreadPool::global().parallel_for(p.rows, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* x = p.x + r * W;
            float* o = p.out + r * W;
            for (int64_t i = 0; i < W; ++i) {
                const float v = p.bias ? x[i] + p.bias[i] : x[i];
                o[i] = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
            }
        }
    }, std::max<int64_t>(1, 16384 / W));
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
