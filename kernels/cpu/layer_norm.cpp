#include <algorithm>
#include <cmath>

#include "kernels/layer_norm.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const LayerNormParams& p) {
    if (p.rows < 0 || p.width <= 0)
        return invalid_argument("layer_norm: rows (", p.rows, ") must be >= 0 and width (", p.width, ") positive");
    if (p.rows == 0) return Status::ok();
    if (!p.x || !p.weight || !p.bias || !p.out) return invalid_argument("layer_norm: x, weight, bias and out must be set");
    if (!(p.eps > 0.0f)) return invalid_argument("layer_norm: eps must be positive");
    if (p.rows > 1 && (p.x_stride < p.width || p.out_stride < p.width))
        return invalid_argument("layer_norm: row strides must be >= width (", p.width, ")");
    return Status::ok();
}

namespace cpu {

Status layer_norm(const LayerNormParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int64_t W = p.width;
    ThreadPool::global().parallel_for(p.rows, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* x = p.x + r * p.x_stride;
            float* o = p.out + r * p.out_stride;
            // Two passes (mean, then centred squares): no cancellation for rows with a large mean, e.g. CLIP's
            // residual stream, whose few outlier channels reach hundreds.
            double sum = 0;
            for (int64_t i = 0; i < W; ++i) sum += x[i];
            const float mean = static_cast<float>(sum / W);
            double sq = 0;
            for (int64_t i = 0; i < W; ++i) {
                const float d = x[i] - mean;
                sq += static_cast<double>(d) * d;
            }
            const float inv = 1.0f / std::sqrt(static_cast<float>(sq / W) + p.eps);
            for (int64_t i = 0; i < W; ++i) o[i] = (x[i] - mean) * inv * p.weight[i] + p.bias[i];
        }
    }, std::max<int64_t>(1, 16384 / W));
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
