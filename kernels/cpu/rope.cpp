#include <cmath>
#include <vector>

#include "kernels/rope.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const RopeParams& p) {
    if (p.num_tokens < 0 || p.num_heads <= 0 || p.head_dim <= 0)
        return invalid_argument("rope: num_tokens (", p.num_tokens, ") must be >= 0, num_heads (", p.num_heads,
                                ") and head_dim (", p.head_dim, ") positive");
    if (p.rotary_dim < 0 || p.rotary_dim % 2 != 0 || p.rotary_dim > p.head_dim)
        return invalid_argument("rope: rotary_dim ", p.rotary_dim, " must be even and in [0, head_dim ", p.head_dim, "]");
    if (!(p.theta > 0)) return invalid_argument("rope: theta must be positive");
    if (p.start_position < 0) return invalid_argument("rope: negative start_position");
    if (p.num_tokens > 0 && !p.x) return invalid_argument("rope: x is null");
    if (p.num_heads > 1 && p.stride_head < p.head_dim) return invalid_argument("rope: stride_head < head_dim");
    if (p.num_tokens > 1 && p.stride_token < p.head_dim) return invalid_argument("rope: stride_token < head_dim");
    return Status::ok();
}

namespace cpu {

Status rope(const RopeParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int half = p.rotary_dim / 2;
    if (half == 0 || p.num_tokens == 0) return Status::ok();
    // inv_freq exactly as torch: 1 / (theta ** (arange(0, R, 2).float() / R)) in float32.
    std::vector<float> inv_freq(half);
    const float theta = static_cast<float>(p.theta);
    for (int i = 0; i < half; ++i)
        inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(p.rotary_dim));
    ThreadPool::global().parallel_for(p.num_tokens, [&](int64_t t0, int64_t t1) {
        std::vector<float> c(half), s(half);
        for (int64_t t = t0; t < t1; ++t) {
            const float pos = static_cast<float>(p.start_position + t);
            for (int i = 0; i < half; ++i) {
                const float a = pos * inv_freq[i];
                c[i] = std::cos(a);
                s[i] = std::sin(a);
            }
            for (int h = 0; h < p.num_heads; ++h) {
                float* x = p.x + t * p.stride_token + h * p.stride_head;
                for (int i = 0; i < half; ++i) {
                    const float x1 = x[i], x2 = x[i + half];
                    x[i] = x1 * c[i] - x2 * s[i];
                    x[i + half] = x2 * c[i] + x1 * s[i];
                }
            }
        }
    }, 16);
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
