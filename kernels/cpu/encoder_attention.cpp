#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/encoder_attention.h"
#include "kernels/gemm.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const EncoderAttentionParams& p) {
    if (p.batch < 0 || p.tokens < 0 || p.heads <= 0 || p.head_dim <= 0)
        return invalid_argument("encoder_attention: bad sizes B=", p.batch, " T=", p.tokens, " H=", p.heads, " D=",
                                p.head_dim);
    if (p.batch == 0 || p.tokens == 0) return Status::ok();
    if (!p.q || !p.k || !p.v || !p.o) return invalid_argument("encoder_attention: q, k, v and o must be set");
    const int64_t width = p.heads * p.head_dim;
    if (p.qkv_token_stride < width || p.o_token_stride < width)
        return invalid_argument("encoder_attention: token strides must be >= H*D (", width, ")");
    if (p.batch > 1 && (p.qkv_batch_stride < p.tokens * p.qkv_token_stride || p.o_batch_stride < p.tokens * p.o_token_stride))
        return invalid_argument("encoder_attention: batch strides too small");
    if (!(p.scale > 0.0f)) return invalid_argument("encoder_attention: scale must be positive");
    return Status::ok();
}

namespace cpu {

Status encoder_attention(const EncoderAttentionParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int64_t T = p.tokens, D = p.head_dim;
    std::vector<float> scores(static_cast<size_t>(T * T));  // [T queries, T keys]
    for (int64_t b = 0; b < p.batch; ++b)
        for (int64_t h = 0; h < p.heads; ++h) {
            const int64_t off = b * p.qkv_batch_stride + h * D;
            GemmParams s;  // scores = scale * Q K^T
            s.m = T;
            s.n = T;
            s.k = D;
            s.a = p.q + off;
            s.lda = p.qkv_token_stride;
            s.b = p.k + off;
            s.ldb = p.qkv_token_stride;
            s.b_transposed = true;
            s.c = scores.data();
            s.ldc = T;
            s.alpha = p.scale;
            VOLT_RETURN_IF_ERROR(gemm(s));
            ThreadPool::global().parallel_for(T, [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r) {
                    float* row = scores.data() + r * T;
                    const float mx = *std::max_element(row, row + T);
                    float sum = 0.0f;
                    for (int64_t j = 0; j < T; ++j) {
                        row[j] = std::exp(row[j] - mx);
                        sum += row[j];
                    }
                    const float inv = 1.0f / sum;
                    for (int64_t j = 0; j < T; ++j) row[j] *= inv;
                }
            }, 32);
            GemmParams o;  // out = P V
            o.m = T;
            o.n = D;
            o.k = T;
            o.a = scores.data();
            o.lda = T;
            o.b = p.v + off;
            o.ldb = p.qkv_token_stride;
            o.b_transposed = false;
            o.c = p.o + b * p.o_batch_stride + h * D;
            o.ldc = p.o_token_stride;
            VOLT_RETURN_IF_ERROR(gemm(o));
        }
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
