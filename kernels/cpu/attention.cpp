#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu/simd.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const AttentionParams& p) {
    if (p.num_tokens < 0 || p.past_len < 0)
        return invalid_argument("attention: negative num_tokens (", p.num_tokens, ") or past_len (", p.past_len, ")");
    if (p.num_heads <= 0 || p.num_kv_heads <= 0 || p.head_dim <= 0)
        return invalid_argument("attention: num_heads (", p.num_heads, "), num_kv_heads (", p.num_kv_heads,
                                ") and head_dim (", p.head_dim, ") must be positive");
    if (p.num_heads % p.num_kv_heads != 0)
        return invalid_argument("attention: num_kv_heads ", p.num_kv_heads, " does not divide num_heads ", p.num_heads);
    if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) return invalid_argument("attention: scale must be positive");
    if (p.num_tokens == 0) return Status::ok();
    if (!p.q || !p.k || !p.v || !p.o) return invalid_argument("attention: q, k, v and o must be set");
    const int64_t D = p.head_dim;
    if ((p.num_heads > 1 && (p.q_stride_head < D || p.o_stride_head < D)) ||
        (p.num_kv_heads > 1 && (p.k_stride_head < D || p.v_stride_head < D)))
        return invalid_argument("attention: head strides must be >= head_dim (", D, ")");
    if ((p.num_tokens > 1 && (p.q_stride_token < D || p.o_stride_token < D)) ||
        (p.past_len + p.num_tokens > 1 && (p.k_stride_token < D || p.v_stride_token < D)))
        return invalid_argument("attention: token strides must be >= head_dim (", D, ")");
    return Status::ok();
}

namespace cpu {
namespace {

// One query token against keys [0, n_keys) for the G query heads of kv head g. scores: scratch [G, n_keys].
VOLT_CPU_CLONES
void attend_one(const AttentionParams& p, int64_t t, int g, int64_t n_keys, float* scores) {
    using namespace simd;
    const int G = p.num_heads / p.num_kv_heads;
    const int64_t D = p.head_dim;
    const float* kbase = p.k + g * p.k_stride_head;
    const float* vbase = p.v + g * p.v_stride_head;
    for (int i = 0; i < G; ++i) {
        const int h = g * G + i;
        const float* q = p.q + t * p.q_stride_token + h * p.q_stride_head;
        float* s = scores + i * n_keys;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < n_keys; ++j) {
            s[j] = dot(q, kbase + j * p.k_stride_token, D) * p.scale;
            mx = std::max(mx, s[j]);
        }
        float sum = 0;
        for (int64_t j = 0; j < n_keys; ++j) {
            s[j] = std::exp(s[j] - mx);
            sum += s[j];
        }
        const float inv = 1.0f / sum;
        float* o = p.o + t * p.o_stride_token + h * p.o_stride_head;
        for (int64_t d = 0; d < D; ++d) o[d] = 0;
        for (int64_t j = 0; j < n_keys; ++j) axpy(s[j] * inv, vbase + j * p.v_stride_token, o, D);
    }
}

}  // namespace

Status attention(const AttentionParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int G = p.num_heads / p.num_kv_heads;
    const int64_t items = static_cast<int64_t>(p.num_kv_heads) * p.num_tokens;
    ThreadPool::global().parallel_for(items, [&](int64_t i0, int64_t i1) {
        std::vector<float> scores(static_cast<size_t>(G) * static_cast<size_t>(p.past_len + p.num_tokens));
        for (int64_t i = i0; i < i1; ++i) {
            const int g = static_cast<int>(i % p.num_kv_heads);
            const int64_t t = i / p.num_kv_heads;
            attend_one(p, t, g, p.past_len + t + 1, scores.data());
        }
    });
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
