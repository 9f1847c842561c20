// y [rows, out] = x [rows, in] W^T (+ b): an nn.Linear through the backend GEMM. The bias is broadcast into y
// first and the GEMM accumulates onto it (beta = 1), so no extra pass over y is needed.
#pragma once

#include <cstring>

#include "kernels/gemm.h"
#include "sdk/tensor.h"

namespace volt::vision {

// w: f32 [out, in] contiguous; b: optional f32 [out].
inline Status dense(const float* x, int64_t rows, int64_t in, const Tensor& w, const Tensor* b, float* y, int64_t out) {
    if (b) {
        const float* bias = b->data_as<float>();
        for (int64_t r = 0; r < rows; ++r) std::memcpy(y + r * out, bias, sizeof(float) * out);
    }
    GemmParams g;
    g.m = rows;
    g.n = out;
    g.k = in;
    g.a = x;
    g.lda = in;
    g.b = w.data_as<float>();
    g.ldb = in;
    g.c = y;
    g.ldc = out;
    g.beta = b ? 1.0f : 0.0f;
    return cpu::gemm(g);
}

}  // namespace volt::vision
