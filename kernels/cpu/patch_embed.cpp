#include <vector>

#include "kernels/gemm.h"
#include "kernels/patch_embed.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const PatchEmbedParams& p) {
    if (p.batch < 0 || p.channels <= 0 || p.patch <= 0 || p.image_size <= 0 || p.hidden <= 0)
        return invalid_argument("patch_embed: sizes must be positive (B=", p.batch, " C=", p.channels, " S=",
                                p.image_size, " P=", p.patch, " D=", p.hidden, ")");
    if (p.image_size % p.patch != 0)
        return invalid_argument("patch_embed: image size ", p.image_size, " is not a multiple of the patch ", p.patch);
    if (p.batch == 0) return Status::ok();
    if (!p.pixels || !p.weight || !p.out) return invalid_argument("patch_embed: pixels, weight and out must be set");
    const int64_t n = (p.image_size / p.patch) * (p.image_size / p.patch);
    if (p.out_stride < p.hidden || (p.batch > 1 && p.out_batch_stride < n * p.out_stride))
        return invalid_argument("patch_embed: output strides too small");
    return Status::ok();
}

namespace cpu {

Status patch_embed(const PatchEmbedParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int64_t S = p.image_size, P = p.patch, C = p.channels, G = S / P, N = G * G, K = C * P * P;
    std::vector<float> cols(static_cast<size_t>(N * K));  // [N, C*P*P], the weight's (c, i, j) order
    for (int64_t b = 0; b < p.batch; ++b) {
        const float* img = p.pixels + b * C * S * S;
        ThreadPool::global().parallel_for(N, [&](int64_t n0, int64_t n1) {
            for (int64_t n = n0; n < n1; ++n) {
                const int64_t row = n / G, col = n % G;
                float* dst = cols.data() + n * K;
                for (int64_t c = 0; c < C; ++c)
                    for (int64_t i = 0; i < P; ++i) {
                        const float* src = img + (c * S + row * P + i) * S + col * P;
                        for (int64_t j = 0; j < P; ++j) *dst++ = src[j];
                    }
            }
        }, 16);
        GemmParams g;
        g.m = N;
        g.n = p.hidden;
        g.k = K;
        g.a = cols.data();
        g.lda = K;
        g.b = p.weight;
        g.ldb = K;
        g.b_transposed = true;
        g.c = p.out + b * p.out_batch_stride;
        g.ldc = p.out_stride;
        VOLT_RETURN_IF_ERROR(gemm(g));
    }
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
