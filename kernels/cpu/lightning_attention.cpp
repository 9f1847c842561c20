// CPU twin of the lightning attention op (kernels/lightning_attention.h): the reference every backend is tested
// against. fp32 arithmetic, the chunked prefill with block 256 written exactly as the remote code's
// (q_decay = lambda^{i+1}, k_decay = lambda^{m-1-j}, diag = lambda^{i-j}, block_decay = lambda^m), and the
// token-by-token decode step. Work items are (sequence, head) pairs: each owns its state, so they run in parallel.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/lightning_attention.h"
#include "sdk/thread_pool.h"

namespace volt {

float lightning_decay_slope(int layer, int num_layers, int head, int num_heads) {
    const double base = std::exp2(-8.0 * (head + 1) / num_heads);
    const double factor = num_layers > 1 ? 1.0 - static_cast<double>(layer) / (num_layers - 1) + 1e-5 : 1.0 + 1e-5;
    return static_cast<float>(base * factor);
}

std::vector<float> lightning_decay_slopes(int layer, int num_layers, int num_heads) {
    std::vector<float> s(static_cast<size_t>(std::max(num_heads, 0)));
    for (int h = 0; h < num_heads; ++h) s[h] = lightning_decay_slope(layer, num_layers, h, num_heads);
    return s;
}

Status validate(const LightningAttentionParams& p) {
    if (p.dtype != DType::kBF16 && p.dtype != DType::kF32)
        return invalid_argument("lightning_attention: dtype must be BF16 or F32, got ", dtype_name(p.dtype));
    if (p.num_heads <= 0 || p.head_dim <= 0)
        return invalid_argument("lightning_attention: num_heads (", p.num_heads, ") and head_dim (", p.head_dim,
                                ") must be positive");
    if (p.num_tokens < 0 || p.num_seqs < 0)
        return invalid_argument("lightning_attention: negative num_tokens or num_seqs");
    if (p.num_tokens > 0 && (!p.q || !p.k || !p.v || !p.o))
        return invalid_argument("lightning_attention: q, k, v and o must be set");
    if (!p.slope) return invalid_argument("lightning_attention: slope [H] must be set");
    const int64_t row = static_cast<int64_t>(p.head_dim);
    auto check_strides = [&](const char* name, int64_t st, int64_t sh) -> Status {
        if (sh < row && p.num_heads > 1)
            return invalid_argument("lightning_attention: ", name, "_stride_head (", sh, ") < head_dim (", row, ")");
        if (st < row && p.num_tokens > 1)
            return invalid_argument("lightning_attention: ", name, "_stride_token (", st, ") < head_dim (", row, ")");
        return Status::ok();
    };
    VOLT_RETURN_IF_ERROR(check_strides("q", p.q_stride_token, p.q_stride_head));
    VOLT_RETURN_IF_ERROR(check_strides("k", p.k_stride_token, p.k_stride_head));
    VOLT_RETURN_IF_ERROR(check_strides("v", p.v_stride_token, p.v_stride_head));
    VOLT_RETURN_IF_ERROR(check_strides("o", p.o_stride_token, p.o_stride_head));
    if (p.phase == LightningPhase::kDecode) {
        if (p.num_tokens != p.num_seqs)
            return invalid_argument("lightning_attention: decode takes one token per sequence (num_tokens ",
                                    p.num_tokens, " != num_seqs ", p.num_seqs, ")");
        if (!p.state_out && !p.state_ptrs)
            return invalid_argument("lightning_attention: decode needs state_out or state_ptrs");
        if (p.state_ptrs && (p.state_in || p.state_out || p.state_slots))
            return invalid_argument("lightning_attention: state_ptrs replaces state_slots, state_in and state_out");
    } else {
        if (p.state_ptrs) return invalid_argument("lightning_attention: state_ptrs is for decode only");
        if (!p.cu_seqlens && p.num_seqs != 1)
            return invalid_argument("lightning_attention: prefill without cu_seqlens takes one sequence, got ",
                                    p.num_seqs);
        if (p.max_seqlen < 0) return invalid_argument("lightning_attention: negative max_seqlen");
    }
    return Status::ok();
}

Status validate(const LightningNormGateParams& p) {
    if (p.dtype != DType::kBF16 && p.dtype != DType::kF32)
        return invalid_argument("lightning_norm_gate: dtype must be BF16 or F32, got ", dtype_name(p.dtype));
    if (p.num_tokens < 0 || p.width <= 0)
        return invalid_argument("lightning_norm_gate: num_tokens (", p.num_tokens, ") must be >= 0 and width (",
                                p.width, ") positive");
    if (p.num_tokens > 0 && (!p.o || !p.gate || !p.weight || !p.out))
        return invalid_argument("lightning_norm_gate: o, gate, weight and out must be set");
    if (p.num_tokens > 1 &&
        (p.o_stride_token < p.width || p.gate_stride_token < p.width || p.out_stride_token < p.width))
        return invalid_argument("lightning_norm_gate: token strides must be >= width (", p.width, ")");
    if (!(p.eps > 0.0f)) return invalid_argument("lightning_norm_gate: eps must be positive");
    return Status::ok();
}

namespace cpu {
namespace {

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// Widens n elements at `base + offset` (type dt) to fp32, applying SiLU when asked.
inline void load_row(const void* base, DType dt, int64_t offset, int n, bool apply_silu, float* dst) {
    if (dt == DType::kF32) {
        std::memcpy(dst, static_cast<const float*>(base) + offset, sizeof(float) * n);
    } else {
        const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
        for (int i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
    }
    if (apply_silu)
        for (int i = 0; i < n; ++i) dst[i] = silu(dst[i]);
}

inline void store_row(void* base, DType dt, int64_t offset, int n, const float* src) {
    if (dt == DType::kF32) {
        std::memcpy(static_cast<float*>(base) + offset, src, sizeof(float) * n);
    } else {
        uint16_t* dst = static_cast<uint16_t*>(base) + offset;
        for (int i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
    }
}

// Reads sequence n's initial state into `S` [D*D] (zeros without state_in).
void load_state(const LightningAttentionParams& p, int n, int64_t slot, int h, float* S) {
    const size_t dd = static_cast<size_t>(p.head_dim) * p.head_dim;
    if (p.state_ptrs)
        std::memcpy(S, p.state_ptrs[n] + h * dd, sizeof(float) * dd);
    else if (p.state_in)
        std::memcpy(S, p.state_in + (slot * p.num_heads + h) * dd, sizeof(float) * dd);
    else
        std::fill(S, S + dd, 0.0f);
}

void store_state(const LightningAttentionParams& p, int n, int64_t slot, int h, const float* S) {
    const size_t dd = static_cast<size_t>(p.head_dim) * p.head_dim;
    if (p.state_ptrs) {
        std::memcpy(p.state_ptrs[n] + h * dd, S, sizeof(float) * dd);
        return;
    }
    if (!p.state_out) return;
    std::memcpy(p.state_out + (slot * p.num_heads + h) * dd, S, sizeof(float) * dd);
}

// One (sequence, head) of the prefill: tokens [t0, t0 + len), state S [D][D] in/out.
void prefill_one(const LightningAttentionParams& p, int64_t t0, int64_t len, int h, float* S) {
    const int D = p.head_dim;
    const int B = kLightningBlock;
    const float s = p.slope[h];
    std::vector<float> q(static_cast<size_t>(B) * D), k(q.size()), v(q.size()), o(q.size());
    std::vector<float> qk(static_cast<size_t>(B));
    std::vector<float> diag(static_cast<size_t>(B));  // diag[d] = lambda^d, d = i - j in [0, B)
    for (int d = 0; d < B; ++d) diag[d] = std::exp(-s * static_cast<float>(d));

    for (int64_t b0 = 0; b0 < len; b0 += B) {
        const int m = static_cast<int>(std::min<int64_t>(B, len - b0));
        for (int i = 0; i < m; ++i) {
            const int64_t t = t0 + b0 + i;
            load_row(p.q, p.dtype, t * p.q_stride_token + h * p.q_stride_head, D, p.silu_inputs, &q[i * D]);
            load_row(p.k, p.dtype, t * p.k_stride_token + h * p.k_stride_head, D, p.silu_inputs, &k[i * D]);
            load_row(p.v, p.dtype, t * p.v_stride_token + h * p.v_stride_head, D, p.silu_inputs, &v[i * D]);
        }
        for (int i = 0; i < m; ++i) {
            float* oi = &o[i * D];
            const float* qi = &q[i * D];
            // inter: lambda^{i+1} * (q_i KV_b)
            std::fill(oi, oi + D, 0.0f);
            for (int dk = 0; dk < D; ++dk) {
                const float qv = qi[dk];
                const float* Srow = S + static_cast<size_t>(dk) * D;
                for (int dv = 0; dv < D; ++dv) oi[dv] += qv * Srow[dv];
            }
            const float q_decay = std::exp(-s * static_cast<float>(i + 1));
            for (int dv = 0; dv < D; ++dv) oi[dv] *= q_decay;
            // intra: sum_{j<=i} (q_i . k_j) lambda^{i-j} v_j
            for (int j = 0; j <= i; ++j) {
                const float* kj = &k[j * D];
                float dot = 0.0f;
                for (int d = 0; d < D; ++d) dot += qi[d] * kj[d];
                qk[j] = dot * diag[i - j];
            }
            for (int j = 0; j <= i; ++j) {
                const float w = qk[j];
                const float* vj = &v[j * D];
                for (int dv = 0; dv < D; ++dv) oi[dv] += w * vj[dv];
            }
            store_row(p.o, p.dtype, (t0 + b0 + i) * p.o_stride_token + h * p.o_stride_head, D, oi);
        }
        // update: KV_{b+1} = lambda^m KV_b + sum_j lambda^{m-1-j} k_j^T v_j
        // lambda^m S as S - (1 - lambda^m) S with 1 - lambda^m = -expm1(-s m): for lambda near 1 (slope 5e-5 in the
        // last layers) the fp32 rounding of lambda itself would bias the steady state by up to 2^-24 / (1 - lambda).
        const float block_mu = -std::expm1(-s * static_cast<float>(m));
        for (size_t e = 0; e < static_cast<size_t>(D) * D; ++e) S[e] = std::fma(-block_mu, S[e], S[e]);
        for (int j = 0; j < m; ++j) {
            const float k_decay = std::exp(-s * static_cast<float>(m - 1 - j));
            const float* kj = &k[j * D];
            const float* vj = &v[j * D];
            for (int dk = 0; dk < D; ++dk) {
                const float kw = kj[dk] * k_decay;
                float* Srow = S + static_cast<size_t>(dk) * D;
                for (int dv = 0; dv < D; ++dv) Srow[dv] += kw * vj[dv];
            }
        }
    }
}

// One (sequence, head) decode step at token t: S = lambda S + k^T v, o = q S.
void decode_one(const LightningAttentionParams& p, int64_t t, int h, float* S) {
    const int D = p.head_dim;
    std::vector<float> q(static_cast<size_t>(D)), k(q.size()), v(q.size()), o(q.size(), 0.0f);
    load_row(p.q, p.dtype, t * p.q_stride_token + h * p.q_stride_head, D, p.silu_inputs, q.data());
    load_row(p.k, p.dtype, t * p.k_stride_token + h * p.k_stride_head, D, p.silu_inputs, k.data());
    load_row(p.v, p.dtype, t * p.v_stride_token + h * p.v_stride_head, D, p.silu_inputs, v.data());
    // lambda S as S - mu S with mu = 1 - lambda = -expm1(-s) (see prefill_one): keeps the fp32 state within ~1e-5 of
    // a float64 recurrence over 100K steps even for lambda = 0.99995.
    const float mu = -std::expm1(-p.slope[h]);
    for (int dk = 0; dk < D; ++dk) {
        float* Srow = S + static_cast<size_t>(dk) * D;
        const float kv = k[dk];
        const float qv = q[dk];
        for (int dv = 0; dv < D; ++dv) {
            Srow[dv] = std::fma(-mu, Srow[dv], Srow[dv]) + kv * v[dv];
            o[dv] += qv * Srow[dv];
        }
    }
    store_row(p.o, p.dtype, t * p.o_stride_token + h * p.o_stride_head, D, o.data());
}

}  // namespace

Status lightning_attention(const LightningAttentionParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const bool decode = p.phase == LightningPhase::kDecode;
    if (!decode && p.cu_seqlens) {
        if (p.cu_seqlens[0] != 0 || p.cu_seqlens[p.num_seqs] != p.num_tokens)
            return invalid_argument("lightning_attention: cu_seqlens must start at 0 and end at num_tokens (",
                                    p.num_tokens, "), got ", p.cu_seqlens[0], " .. ", p.cu_seqlens[p.num_seqs]);
        for (int n = 0; n < p.num_seqs; ++n)
            if (p.cu_seqlens[n + 1] < p.cu_seqlens[n])
                return invalid_argument("lightning_attention: cu_seqlens decreases at sequence ", n);
    }
    const size_t dd = static_cast<size_t>(p.head_dim) * p.head_dim;
    const int64_t items = static_cast<int64_t>(p.num_seqs) * p.num_heads;
    ThreadPool::global().parallel_for(items, [&](int64_t begin, int64_t end) {
        std::vector<float> S(dd);
        for (int64_t it = begin; it < end; ++it) {
            const int n = static_cast<int>(it / p.num_heads);
            const int h = static_cast<int>(it % p.num_heads);
            const int64_t slot = p.state_slots ? p.state_slots[n] : n;
            load_state(p, n, slot, h, S.data());
            if (decode) {
                decode_one(p, n, h, S.data());
            } else {
                const int64_t t0 = p.cu_seqlens ? p.cu_seqlens[n] : 0;
                const int64_t len = p.cu_seqlens ? p.cu_seqlens[n + 1] - t0 : p.num_tokens;
                prefill_one(p, t0, len, h, S.data());
            }
            store_state(p, n, slot, h, S.data());
        }
    });
    return Status::ok();
}

Status lightning_norm_gate(const LightningNormGateParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int W = p.width;
    std::vector<float> weight(static_cast<size_t>(W));
    load_row(p.weight, p.dtype, 0, W, false, weight.data());
    const bool bf16 = p.dtype == DType::kBF16;
    ThreadPool::global().parallel_for(p.num_tokens, [&](int64_t begin, int64_t end) {
        std::vector<float> x(static_cast<size_t>(W)), g(x.size());
        for (int64_t t = begin; t < end; ++t) {
            load_row(p.o, p.dtype, t * p.o_stride_token, W, false, x.data());
            load_row(p.gate, p.dtype, t * p.gate_stride_token, W, false, g.data());
            double ss = 0.0;
            for (int c = 0; c < W; ++c) ss += static_cast<double>(x[c]) * x[c];
            const float inv = 1.0f / std::sqrt(static_cast<float>(ss / W) + p.eps);
            for (int c = 0; c < W; ++c) {
                float y = x[c] * inv;
                // The reference casts the normalised activations back to their dtype before the weight multiply
                // and multiplies/gates in that dtype.
                if (bf16) y = bf16_to_f32(f32_to_bf16(y));
                y = weight[c] * y;
                if (bf16) y = bf16_to_f32(f32_to_bf16(y));
                const float sig = 1.0f / (1.0f + std::exp(-g[c]));
                x[c] = sig * y;
            }
            store_row(p.out, p.dtype, t * p.out_stride_token, W, x.data());
        }
    });
    return Status::ok();
}

}  // namespace cpu
}  // namespace volt
