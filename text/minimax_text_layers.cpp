#include "text/minimax_text_layers.h"

#include <cmath>

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/lightning_attention.h"
#include "kernels/moe.h"
#include "kernels/rope.h"

namespace volt {
namespace {

// y[T, out] = x[T, in] W^T (W: [out, in]); ldy lets the result land inside a wider buffer (KV cache rows).
Status linear(const float* x, int64_t T, const Tensor& W, float* y, int64_t ldy = 0) {
    const int64_t out = W.dim(0), in = W.dim(1);
    return cpu::gemm({.m = T, .n = out, .k = in, .a = x, .lda = in, .b = W.data_as<float>(), .ldb = in, .c = y,
                      .ldc = ldy ? ldy : out});
}

Expected<std::vector<float>> scratch(int64_t n) {
    try {
        return std::vector<float>(static_cast<size_t>(n));
    } catch (const std::bad_alloc&) {
        return resource_exhausted("cannot allocate ", n * 4, " bytes of activations");
    }
}

}  // namespace

Status lightning_attention_layer(const TextConfig& c, const LightningLayerWeights& w, const float* xn, int64_t T,
                                 LayerCache& cache, float* out) {
    const int64_t Hq = c.num_heads, D = c.head_dim, W = Hq * D;
    VOLT_ASSIGN_OR_RETURN(std::vector<float> qkv, scratch(T * 3 * W));  // [T, Hq, 3D]: q_h | k_h | v_h
    VOLT_ASSIGN_OR_RETURN(std::vector<float> o, scratch(T * W));        // [T, Hq, D]
    VOLT_ASSIGN_OR_RETURN(std::vector<float> gate, scratch(T * W));     // [T, Hq*D]
    VOLT_RETURN_IF_ERROR(linear(xn, T, w.qkv, qkv.data()));
    float* state = cache.state.data_as<float>();
    LightningAttentionParams p;
    p.phase = T == 1 ? LightningPhase::kDecode : LightningPhase::kPrefill;
    p.dtype = DType::kF32;
    p.silu_inputs = true;  // SiLU on q, k and v (architecture §2 step 2), applied as the op loads them
    p.num_tokens = T;
    p.num_seqs = 1;
    p.num_heads = static_cast<int>(Hq);
    p.head_dim = static_cast<int>(D);
    p.q = qkv.data();
    p.k = qkv.data() + D;
    p.v = qkv.data() + 2 * D;
    p.q_stride_token = p.k_stride_token = p.v_stride_token = 3 * W;
    p.q_stride_head = p.k_stride_head = p.v_stride_head = 3 * D;
    p.o = o.data();
    p.o_stride_token = W;
    p.o_stride_head = D;
    p.slope = w.slopes.data();
    p.state_in = state;
    p.state_out = state;
    VOLT_RETURN_IF_ERROR(cpu::lightning_attention(p));
    // Gate from the same normalised input; norm over all heads jointly, eps from the config (1e-6).
    VOLT_RETURN_IF_ERROR(linear(xn, T, w.output_gate, gate.data()));
    LightningNormGateParams n;
    n.dtype = DType::kF32;
    n.num_tokens = T;
    n.width = static_cast<int>(W);
    n.eps = static_cast<float>(c.lightning_norm_eps);
    n.o = o.data();
    n.o_stride_token = W;
    n.gate = gate.data();
    n.gate_stride_token = W;
    n.weight = w.norm.data();
    n.out = o.data();  // in place: each row is read fully before it is written
    n.out_stride_token = W;
    VOLT_RETURN_IF_ERROR(cpu::lightning_norm_gate(n));
    return linear(o.data(), T, w.out_proj, out);
}

Status softmax_attention_layer(const TextConfig& c, const SoftmaxLayerWeights& w, const float* xn, int64_t T,
                               int64_t past, LayerCache& cache, float* out) {
    const int64_t Hq = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
    VOLT_ASSIGN_OR_RETURN(std::vector<float> q, scratch(T * Hq * D));  // [T, Hq, D]
    VOLT_ASSIGN_OR_RETURN(std::vector<float> o, scratch(T * Hq * D));  // [T, Hq, D]
    float* k_rows = cache.k.data_as<float>() + past * Hkv * D;        // [T, Hkv, D] inside the cache
    float* v_rows = cache.v.data_as<float>() + past * Hkv * D;
    VOLT_RETURN_IF_ERROR(linear(xn, T, w.q_proj, q.data()));
    VOLT_RETURN_IF_ERROR(linear(xn, T, w.k_proj, k_rows));
    VOLT_RETURN_IF_ERROR(linear(xn, T, w.v_proj, v_rows));
    RopeParams r{.num_tokens = T, .num_heads = static_cast<int>(Hq), .head_dim = static_cast<int>(D),
                 .rotary_dim = static_cast<int>(c.rotary_dim), .theta = c.rope_theta, .start_position = past,
                 .x = q.data(), .stride_token = Hq * D, .stride_head = D};
    VOLT_RETURN_IF_ERROR(cpu::rope(r));
    r.num_heads = static_cast<int>(Hkv);
    r.x = k_rows;
    r.stride_token = Hkv * D;
    VOLT_RETURN_IF_ERROR(cpu::rope(r));
    AttentionParams a{.num_tokens = T, .past_len = past, .num_heads = static_cast<int>(Hq),
                      .num_kv_heads = static_cast<int>(Hkv), .head_dim = static_cast<int>(D),
                      .scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D))),
                      .q = q.data(), .q_stride_token = Hq * D, .q_stride_head = D,
                      .k = cache.k.data_as<float>(), .k_stride_token = Hkv * D, .k_stride_head = D,
                      .v = cache.v.data_as<float>(), .v_stride_token = Hkv * D, .v_stride_head = D,
                      .o = o.data(), .o_stride_token = Hq * D, .o_stride_head = D};
    VOLT_RETURN_IF_ERROR(cpu::attention(a));
    return linear(o.data(), T, w.o_proj, out);
}

Status moe_layer(const TextConfig& c, const MoeWeights& w, const float* yn, int64_t T, float* out) {
    const int E = static_cast<int>(c.num_experts), k = static_cast<int>(c.experts_per_token);
    VOLT_ASSIGN_OR_RETURN(std::vector<float> logits, scratch(T * E));  // [T, E] fp32 router logits
    std::vector<int32_t> ids(static_cast<size_t>(T * k));
    std::vector<float> weights(static_cast<size_t>(T * k));
    VOLT_RETURN_IF_ERROR(linear(yn, T, w.router, logits.data()));
    VOLT_RETURN_IF_ERROR(cpu::moe_route({.num_tokens = T, .num_experts = E, .top_k = k, .renormalize = true,
                                         .logits = logits.data(), .logits_stride = E, .expert_ids = ids.data(),
                                         .weights = weights.data()}));
    return cpu::moe_experts({.num_tokens = T, .hidden = c.hidden_size, .intermediate = c.intermediate_size,
                             .num_experts = E, .top_k = k, .x = yn, .expert_ids = ids.data(),
                             .weights = weights.data(), .w1 = w.w1p.data(), .w3 = w.w3p.data(), .w2 = w.w2p.data(),
                             .out = out});
}

}  // namespace volt
