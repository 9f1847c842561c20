#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/activation.h"
#include "kernels/gemm.h"
#include "kernels/moe.h"
#include "sdk/dtype.h"
#include "sdk/thread_pool.h"

namespace volt {

Status validate(const MoeRouteParams& p) {
    if (p.num_tokens < 0 || p.num_experts <= 0 || p.top_k <= 0 || p.top_k > p.num_experts)
        return invalid_argument("moe_route: need num_tokens >= 0 and 0 < top_k (", p.top_k, ") <= num_experts (",
                                p.num_experts, ")");
    if (p.num_tokens == 0) return Status::ok();
    if (!p.logits || !p.expert_ids || !p.weights) return invalid_argument("moe_route: logits, expert_ids, weights must be set");
    if (p.num_tokens > 1 && p.logits_stride < p.num_experts) return invalid_argument("moe_route: logits_stride < num_experts");
    return Status::ok();
}

Status validate(const MoeExpertsParams& p) {
    if (p.num_tokens < 0 || p.hidden <= 0 || p.intermediate <= 0 || p.num_experts <= 0 || p.top_k <= 0 ||
        p.top_k > p.num_experts)
        return invalid_argument("moe_experts: bad sizes T=", p.num_tokens, " H=", p.hidden, " I=", p.intermediate,
                                " E=", p.num_experts, " k=", p.top_k);
    if (p.num_tokens == 0) return Status::ok();
    if (!p.x || !p.expert_ids || !p.weights || !p.w1 || !p.w2 || !p.w3 || !p.out)
        return invalid_argument("moe_experts: x, expert_ids, weights, w1, w2, w3 and out must be set");
    for (int e = 0; e < p.num_experts; ++e)
        if (!p.w1[e] || !p.w2[e] || !p.w3[e]) return invalid_argument("moe_experts: expert ", e, " has a null weight");
    for (int64_t i = 0; i < p.num_tokens * p.top_k; ++i)
        if (p.expert_ids[i] < 0 || p.expert_ids[i] >= p.num_experts)
            return invalid_argument("moe_experts: expert id ", p.expert_ids[i], " outside [0, ", p.num_experts, ")");
    return Status::ok();
}

namespace cpu {

Status moe_route(const MoeRouteParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int E = p.num_experts, k = p.top_k;
    std::vector<float> prob(E);
    std::vector<int> order(E);
    for (int64_t t = 0; t < p.num_tokens; ++t) {
        const float* l = p.logits + t * p.logits_stride;
        float mx = l[0];
        for (int e = 1; e < E; ++e) mx = std::max(mx, l[e]);
        float sum = 0;
        for (int e = 0; e < E; ++e) sum += prob[e] = std::exp(l[e] - mx);
        for (int e = 0; e < E; ++e) prob[e] /= sum;
        std::iota(order.begin(), order.end(), 0);
        // torch.topk order: descending probability; stable so equal probabilities keep the lower index first.
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prob[a] > prob[b]; });
        float kept = 0;
        for (int j = 0; j < k; ++j) kept += prob[order[j]];
        for (int j = 0; j < k; ++j) {
            p.expert_ids[t * k + j] = order[j];
            p.weights[t * k + j] = p.renormalize ? prob[order[j]] / kept : prob[order[j]];
        }
    }
    return Status::ok();
}

namespace {

// Each row of a [rows, cols] matrix through e4m3 and back, one scale per 128 columns (the FP8 activations' twin);
// round_bf16 first: the GPU quantises bf16 values.
void fp8_row_roundtrip(int64_t rows, int64_t cols, float* m, bool round_bf16) {
    const int64_t blocks = (cols + 127) / 128;
    ThreadPool::global().parallel_for(rows, [&](int64_t r0, int64_t r1) {
        std::vector<uint8_t> q(static_cast<size_t>(cols));
        std::vector<float> s(static_cast<size_t>(blocks));
        for (int64_t r = r0; r < r1; ++r) {
            float* row = m + r * cols;
            if (round_bf16)
                for (int64_t i = 0; i < cols; ++i) row[i] = bf16_to_f32(f32_to_bf16(row[i]));
            (void)fp8_block_quantize(1, cols, row, q.data(), s.data());
            (void)fp8_block_dequantize(1, cols, q.data(), s.data(), row);
        }
    }, 16);
}

}  // namespace

Status moe_experts(const MoeExpertsParams& p) {
    VOLT_RETURN_IF_ERROR(validate(p));
    const int64_t T = p.num_tokens, H = p.hidden, I = p.intermediate;
    const int E = p.num_experts, k = p.top_k;

    // Counting sort of the T*k (token, slot) assignments by expert.
    std::vector<int64_t> start(E + 1, 0);
    for (int64_t i = 0; i < T * k; ++i) ++start[p.expert_ids[i] + 1];
    for (int e = 0; e < E; ++e) start[e + 1] += start[e];
    std::vector<int64_t> assignment(T * k);  // entries: t*k + slot
    {
        std::vector<int64_t> fill(start.begin(), start.end() - 1);
        for (int64_t i = 0; i < T * k; ++i) assignment[fill[p.expert_ids[i]]++] = i;
    }
    int64_t max_rows = 0;
    for (int e = 0; e < E; ++e) max_rows = std::max(max_rows, start[e + 1] - start[e]);

    std::vector<float> xs(static_cast<size_t>(max_rows * H)), gate(static_cast<size_t>(max_rows * I)),
        up(static_cast<size_t>(max_rows * I));
    // Each (token, slot) result lands in its own row, then slots are summed in top-k order: deterministic and
    // independent of the expert processing order.
    std::vector<float> slot_out(static_cast<size_t>(T * k * H));
    auto& pool = ThreadPool::global();
    for (int e = 0; e < E; ++e) {
        const int64_t n = start[e + 1] - start[e];
        if (n == 0) continue;
        const int64_t* rows = assignment.data() + start[e];
        pool.parallel_for(n, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) std::copy_n(p.x + (rows[r] / k) * H, H, xs.data() + r * H);
        }, 64);
        if (p.fp8_activations) fp8_row_roundtrip(n, H, xs.data(), false);
        VOLT_RETURN_IF_ERROR(gemm({.m = n, .n = I, .k = H, .a = xs.data(), .lda = H, .b = p.w1[e], .ldb = H,
                                   .c = gate.data(), .ldc = I}));
        VOLT_RETURN_IF_ERROR(gemm({.m = n, .n = I, .k = H, .a = xs.data(), .lda = H, .b = p.w3[e], .ldb = H,
                                   .c = up.data(), .ldc = I}));
        VOLT_RETURN_IF_ERROR(swiglu({.num_elements = n * I, .gate = gate.data(), .up = up.data(), .out = gate.data()}));
        if (p.fp8_activations) fp8_row_roundtrip(n, I, gate.data(), true);
        // Down projection straight into a contiguous staging block (xs is free now), then scatter by weight.
        VOLT_RETURN_IF_ERROR(gemm({.m = n, .n = H, .k = I, .a = gate.data(), .lda = I, .b = p.w2[e], .ldb = I,
                                   .c = xs.data(), .ldc = H}));
        pool.parallel_for(n, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const float w = p.weights[rows[r]];
                const float* src = xs.data() + r * H;
                float* dst = slot_out.data() + rows[r] * H;
                for (int64_t i = 0; i < H; ++i) dst[i] = w * src[i];
            }
        }, 64);
    }
    pool.parallel_for(T, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            float* o = p.out + t * H;
            const float* s0 = slot_out.data() + (t * k) * H;
            std::copy_n(s0, H, o);
            for (int j = 1; j < k; ++j) {
                const float* s = slot_out.data() + (t * k + j) * H;
                for (int64_t i = 0; i < H; ++i) o[i] += s[i];
            }
        }
    }, 16);
    return Status::ok();
}


// ---- block-scaled weights: FP8 (e4m3) and int8 -------------------------------------------------------------------
namespace {
constexpr int64_t kQuantBlock = 128;

Status check_quant_args(int64_t rows, int64_t cols, const void* in, const void* out, const float* scales,
                        const char* what) {
    if (rows < 0 || cols < 0) return invalid_argument(what, ": bad shape [", rows, ", ", cols, "]");
    if (rows * cols > 0 && (!in || !out || !scales)) return invalid_argument(what, ": in, out and scales must be set");
    return Status::ok();
}

// Per 128 x 128 block: scale = amax / qmax (1 for an all-zero block) unless given, then out = encode(w / scale).
template <typename Q, typename Encode>
Status block_quantize(int64_t rows, int64_t cols, const float* in, Q* out, float* scales, bool given_scales,
                      float qmax, Encode encode, const char* what) {
    VOLT_RETURN_IF_ERROR(check_quant_args(rows, cols, in, out, scales, what));
    const int64_t cb = (cols + kQuantBlock - 1) / kQuantBlock;
    for (int64_t r0 = 0; r0 < rows; r0 += kQuantBlock)
        for (int64_t c0 = 0; c0 < cols; c0 += kQuantBlock) {
            const int64_t r1 = std::min(rows, r0 + kQuantBlock), c1 = std::min(cols, c0 + kQuantBlock);
            float& scale = scales[(r0 / kQuantBlock) * cb + c0 / kQuantBlock];
            if (!given_scales) {
                float amax = 0.0f;
                for (int64_t r = r0; r < r1; ++r)
                    for (int64_t c = c0; c < c1; ++c) amax = std::fmax(amax, std::fabs(in[r * cols + c]));
                scale = amax > 0.0f ? amax / qmax : 1.0f;
            }
            for (int64_t r = r0; r < r1; ++r)
                for (int64_t c = c0; c < c1; ++c) out[r * cols + c] = encode(in[r * cols + c] / scale);
        }
    return Status::ok();
}

template <typename Q, typename Decode>
Status block_dequantize(int64_t rows, int64_t cols, const Q* in, const float* scales, float* out, Decode decode,
                        const char* what) {
    VOLT_RETURN_IF_ERROR(check_quant_args(rows, cols, in, out, scales, what));
    const int64_t cb = (cols + kQuantBlock - 1) / kQuantBlock;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
            out[r * cols + c] = decode(in[r * cols + c]) * scales[(r / kQuantBlock) * cb + c / kQuantBlock];
    return Status::ok();
}
}  // namespace

uint8_t fp8e4m3_saturating(float v) {
    const uint8_t b = f32_to_fp8e4m3(v);  // round to nearest even; NaN beyond 448
    if (!std::isnan(v) && (b & 0x7f) == 0x7f) return static_cast<uint8_t>((b & 0x80) | 0x7e);  // saturate at 448
    return b;
}

int8_t int8_saturating(float v) {
    if (std::isnan(v)) return 0;
    return static_cast<int8_t>(std::nearbyint(std::clamp(v, -127.0f, 127.0f)));  // default rounding: to nearest even
}

Status fp8_block_quantize(int64_t rows, int64_t cols, const float* in, uint8_t* out, float* scales,
                          bool given_scales) {
    return block_quantize(rows, cols, in, out, scales, given_scales, 448.0f, fp8e4m3_saturating, "fp8_block_quantize");
}

Status fp8_block_dequantize(int64_t rows, int64_t cols, const uint8_t* in, const float* scales, float* out) {
    return block_dequantize(rows, cols, in, scales, out, fp8e4m3_to_f32, "fp8_block_dequantize");
}

Status int8_block_quantize(int64_t rows, int64_t cols, const float* in, int8_t* out, float* scales,
                           bool given_scales) {
    return block_quantize(rows, cols, in, out, scales, given_scales, 127.0f, int8_saturating, "int8_block_quantize");
}

Status int8_block_dequantize(int64_t rows, int64_t cols, const int8_t* in, const float* scales, float* out) {
    return block_dequantize(rows, cols, in, scales, out, [](int8_t q) { return static_cast<float>(q); },
                            "int8_block_dequantize");
}

}  // namespace cpu
}  // namespace volt
