#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/norm.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const RmsNormParams& p) {
    if (p.num_tokens < 0 || p.width <= 0)
        return invalid_argument("rms_norm: num_tokens (", p.num_tokens, ") must be >= 0 and width (", p.width,
                                ") positive");
    if (p.num_tokens == 0) return Status::ok();
    if (!p.x || !p.weight || !p.out) return invalid_argument("rms_norm: x, weight and out must be set");
    if (!(p.eps > 0.0f)) return invalid_argument("rms_norm: eps must be positive");
    if (p.num_tokens > 1 && (p.x_stride < p.width || p.out_stride < p.width ||
                             (p.residual && p.residual_stride < p.width) || (p.sum_out && p.sum_stride < p.width)))
        return invalid_argument("rms_norm: row strides must be >= width (", p.width, ")");
    return Status::ok();
}

namespace cpu {

Status rms_norm(const RmsNormParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int64_t W = p.width;
    // Small rows are memory-bound: one chunk per ~64K elements keeps thread hand-off below the work.
    const int64_t min_chunk = std::max<int64_t>(1, 65536 / W);
    ThreadPool::global().parallel_for(p.num_tokens, [&](int64_t t0, int64_t t1) {
        std::vector<float> s(static_cast<size_t>(W));
        for (int64_t t = t0; t < t1; ++t) {
            const float* x = p.x + t * p.x_stride;
            if (p.residual) {
                const float* r = p.residual + t * p.residual_stride;
                for (int64_t i = 0; i < W; ++i) s[i] = p.residual_alpha * r[i] + p.x_beta * x[i];
            } else {
                for (int64_t i = 0; i < W; ++i) s[i] = x[i];
            }
            // fp32 sum of squares in 8 independent lanes (vectorisable without reassociation flags).
            float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int64_t i = 0;
            for (; i + 8 <= W; i += 8)
                for (int l = 0; l < 8; ++l) acc[l] += s[i + l] * s[i + l];
            float ss = 0;
            for (; i < W; ++i) ss += s[i] * s[i];
            for (float a : acc) ss += a;
            const float inv = 1.0f / std::sqrt(ss / static_cast<float>(W) + p.eps);
            if (p.sum_out) {
                float* so = p.sum_out + t * p.sum_stride;
                for (int64_t j = 0; j < W; ++j) so[j] = s[j];
            }
            float* o = p.out + t * p.out_stride;
            for (int64_t j = 0; j < W; ++j) o[j] = p.weight[j] * (s[j] * inv);
        }
    }, min_chunk);
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
