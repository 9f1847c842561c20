#include "vision/clip_vision_tower.h"

#include <cmath>
#include <cstring>

#include "kernels/encoder_attention.h"
#include "kernels/gelu.h"
#include "kernels/gemm.h"
#include "kernels/layer_norm.h"
#include "kernels/patch_embed.h"
#include "vision/dense.h"

namespace volt::vision {
namespace {

const std::string kPrefix = "vision_tower.vision_model.";

// A contiguous fp32 copy of checkpoint tensor `name`, which must have exactly `shape`; `as` (optional) reshapes it.
Expected<Tensor> fetch(const ClipVisionTower::Lookup& lookup, const std::string& name, const Shape& shape,
                       const Shape& as = {}) {
    VOLT_ASSIGN_OR_RETURN(Tensor t, lookup(name));
    if (!(t.shape() == shape))
        return invalid_argument("tensor '", name, "' has shape ", t.shape().to_string(), ", expected ", shape.to_string());
    VOLT_ASSIGN_OR_RETURN(Tensor f, t.to(DType::kF32));
    return as.rank() ? f.reshape(as) : Expected<Tensor>(std::move(f));
}

}  // namespace

int64_t ClipVisionTower::tokens_per_crop() const { return cfg_.num_patches() + (keep_cls_ ? 1 : 0); }

Expected<int> ClipVisionTower::layers_to_run(const VLConfig& vl) {
    const VisionConfig& v = vl.vision;
    if (v.hidden_act != "gelu")
        return unimplemented("vision_config.hidden_act '", v.hidden_act, "': only exact \"gelu\" is implemented");
    if (v.num_channels != 3) return unimplemented("vision_config.num_channels ", v.num_channels, ": only 3 (RGB)");
    if (v.num_heads <= 0 || v.hidden_size % v.num_heads != 0)
        return invalid_argument("vision_config: hidden_size ", v.hidden_size, " is not divisible by num_attention_heads ",
                                v.num_heads);
    const int64_t L = v.num_layers;
    const int64_t layer = vl.vision_feature_layer < 0 ? L + 1 + vl.vision_feature_layer : vl.vision_feature_layer;
    if (layer < 0 || layer > L)
        return invalid_argument("vision_feature_layer ", vl.vision_feature_layer, " is outside [-", L + 1, ", ", L, "]");
    return static_cast<int>(layer);
}

Expected<ClipVisionTower> ClipVisionTower::load(const VLConfig& vl, const Lookup& lookup) {
    ClipVisionTower t;
    t.cfg_ = vl.vision;
    const VisionConfig& v = t.cfg_;
    VOLT_ASSIGN_OR_RETURN(t.layers_run_, layers_to_run(vl));
    t.keep_cls_ = vl.vision_feature_select_strategy == "full";
    const int64_t D = v.hidden_size, F = v.intermediate_size, P = v.patch_size;
    VOLT_ASSIGN_OR_RETURN(t.patch_w_,
                          fetch(lookup, kPrefix + "embeddings.patch_embedding.weight", {D, 3, P, P}, {D, 3 * P * P}));
    VOLT_ASSIGN_OR_RETURN(t.class_emb_, fetch(lookup, kPrefix + "embeddings.class_embedding", {D}));
    VOLT_ASSIGN_OR_RETURN(t.pos_emb_, fetch(lookup, kPrefix + "embeddings.position_embedding.weight", {v.num_patches() + 1, D}));
    VOLT_ASSIGN_OR_RETURN(t.pre_ln_w_, fetch(lookup, kPrefix + "pre_layrnorm.weight", {D}));
    VOLT_ASSIGN_OR_RETURN(t.pre_ln_b_, fetch(lookup, kPrefix + "pre_layrnorm.bias", {D}));
    for (int64_t l = 0; l < t.layers_run_; ++l) {
        const std::string p = kPrefix + "encoder.layers." + std::to_string(l) + ".";
        Layer ly;
        VOLT_ASSIGN_OR_RETURN(ly.ln1_w, fetch(lookup, p + "layer_norm1.weight", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.ln1_b, fetch(lookup, p + "layer_norm1.bias", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.ln2_w, fetch(lookup, p + "layer_norm2.weight", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.ln2_b, fetch(lookup, p + "layer_norm2.bias", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.qkv_w, Tensor::empty({3 * D, D}, DType::kF32));
        VOLT_ASSIGN_OR_RETURN(ly.qkv_b, Tensor::empty({3 * D}, DType::kF32));
        int64_t i = 0;
        for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
            VOLT_ASSIGN_OR_RETURN(const Tensor w, fetch(lookup, p + "self_attn." + proj + ".weight", {D, D}));
            VOLT_ASSIGN_OR_RETURN(const Tensor b, fetch(lookup, p + "self_attn." + proj + ".bias", {D}));
            std::memcpy(ly.qkv_w.data_as<float>() + i * D * D, w.data(), sizeof(float) * D * D);
            std::memcpy(ly.qkv_b.data_as<float>() + i * D, b.data(), sizeof(float) * D);
            ++i;
        }
        VOLT_ASSIGN_OR_RETURN(ly.out_w, fetch(lookup, p + "self_attn.out_proj.weight", {D, D}));
        VOLT_ASSIGN_OR_RETURN(ly.out_b, fetch(lookup, p + "self_attn.out_proj.bias", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.fc1_w, fetch(lookup, p + "mlp.fc1.weight", {F, D}));
        VOLT_ASSIGN_OR_RETURN(ly.fc1_b, fetch(lookup, p + "mlp.fc1.bias", {F}));
        VOLT_ASSIGN_OR_RETURN(ly.fc2_w, fetch(lookup, p + "mlp.fc2.weight", {D, F}));
        VOLT_ASSIGN_OR_RETURN(ly.fc2_b, fetch(lookup, p + "mlp.fc2.bias", {D}));
        t.layers_.push_back(std::move(ly));
    }
    return t;
}

Expected<Tensor> ClipVisionTower::encode(const Tensor& px, const std::function<bool()>& cancelled) const {
    const VisionConfig& v = cfg_;
    const int64_t S = v.image_size, D = v.hidden_size, F = v.intermediate_size, H = v.num_heads;
    if (px.dtype() != DType::kF32 || !px.device().is_cpu() || px.rank() != 4 || px.dim(1) != 3 || px.dim(2) != S ||
        px.dim(3) != S)
        return invalid_argument("vision tower: pixel values must be f32 [crops, 3, ", S, ", ", S, "] on the CPU, got ",
                                px.to_string());
    VOLT_ASSIGN_OR_RETURN(const Tensor pixels, px.contiguous());
    const int64_t B = px.dim(0), N = v.num_patches(), T = N + 1, rows = B * T;
    VOLT_ASSIGN_OR_RETURN(Tensor x, Tensor::empty({B, T, D}, DType::kF32));   // residual stream
    VOLT_ASSIGN_OR_RETURN(Tensor h, Tensor::empty({B, T, D}, DType::kF32));   // normalised / attention output
    VOLT_ASSIGN_OR_RETURN(Tensor qkv, Tensor::empty({B, T, 3 * D}, DType::kF32));
    VOLT_ASSIGN_OR_RETURN(Tensor mlp, Tensor::empty({B, T, F}, DType::kF32));
    float* xs = x.data_as<float>();
    float* hs = h.data_as<float>();

    // Embeddings: patches into rows 1..N of each crop, CLS into row 0, then + positions.
    PatchEmbedParams pe;
    pe.batch = B;
    pe.channels = 3;
    pe.image_size = S;
    pe.patch = v.patch_size;
    pe.hidden = D;
    pe.pixels = pixels.data_as<float>();
    pe.weight = patch_w_.data_as<float>();
    pe.out = xs + D;
    pe.out_stride = D;
    pe.out_batch_stride = T * D;
    VOLT_RETURN_IF_ERROR(cpu::patch_embed(pe));
    const float* pos = pos_emb_.data_as<float>();
    for (int64_t b = 0; b < B; ++b) {
        float* xb = xs + b * T * D;
        std::memcpy(xb, class_emb_.data(), sizeof(float) * D);
        for (int64_t i = 0; i < T * D; ++i) xb[i] += pos[i];
    }
    auto layer_norm = [&](const float* in, const Tensor& w, const Tensor& bias, float* out) {
        LayerNormParams ln;
        ln.rows = rows;
        ln.width = D;
        ln.x = in;
        ln.x_stride = D;
        ln.weight = w.data_as<float>();
        ln.bias = bias.data_as<float>();
        ln.eps = static_cast<float>(v.layer_norm_eps);
        ln.out = out;
        ln.out_stride = D;
        return cpu::layer_norm(ln);
    };
    VOLT_RETURN_IF_ERROR(layer_norm(xs, pre_ln_w_, pre_ln_b_, xs));  // hidden_states[0]

    const int64_t hd = D / H;
    for (const Layer& ly : layers_) {
        if (cancelled && cancelled()) return volt::cancelled("image encoding cancelled");
        VOLT_RETURN_IF_ERROR(layer_norm(xs, ly.ln1_w, ly.ln1_b, hs));
        VOLT_RETURN_IF_ERROR(dense(hs, rows, D, ly.qkv_w, &ly.qkv_b, qkv.data_as<float>(), 3 * D));
        EncoderAttentionParams at;
        at.batch = B;
        at.tokens = T;
        at.heads = H;
        at.head_dim = hd;
        at.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        at.q = qkv.data_as<float>();
        at.k = at.q + D;
        at.v = at.q + 2 * D;
        at.qkv_token_stride = 3 * D;
        at.qkv_batch_stride = T * 3 * D;
        at.o = hs;
        at.o_token_stride = D;
        at.o_batch_stride = T * D;
        VOLT_RETURN_IF_ERROR(cpu::encoder_attention(at));
        // x += out_proj(attn): C = x, beta = 1, then the bias.
        GemmParams g;
        g.m = rows;
        g.n = D;
        g.k = D;
        g.a = hs;
        g.lda = D;
        g.b = ly.out_w.data_as<float>();
        g.ldb = D;
        g.c = xs;
        g.ldc = D;
        g.beta = 1.0f;
        VOLT_RETURN_IF_ERROR(cpu::gemm(g));
        const float* ob = ly.out_b.data_as<float>();
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < D; ++i) xs[r * D + i] += ob[i];

        VOLT_RETURN_IF_ERROR(layer_norm(xs, ly.ln2_w, ly.ln2_b, hs));
        VOLT_RETURN_IF_ERROR(dense(hs, rows, D, ly.fc1_w, nullptr, mlp.data_as<float>(), F));
        GeluParams ge;
        ge.rows = rows;
        ge.width = F;
        ge.x = mlp.data_as<float>();
        ge.bias = ly.fc1_b.data_as<float>();
        ge.out = mlp.data_as<float>();
        VOLT_RETURN_IF_ERROR(cpu::gelu(ge));
        g.k = F;
        g.a = mlp.data_as<float>();
        g.lda = F;
        g.b = ly.fc2_w.data_as<float>();
        g.ldb = F;
        VOLT_RETURN_IF_ERROR(cpu::gemm(g));  // x += fc2(...)
        const float* fb = ly.fc2_b.data_as<float>();
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < D; ++i) xs[r * D + i] += fb[i];
    }
    if (keep_cls_) return x;
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({B, N, D}, DType::kF32));
    for (int64_t b = 0; b < B; ++b)
        std::memcpy(out.data_as<float>() + b * N * D, xs + (b * T + 1) * D, sizeof(float) * N * D);
    return out;
}

}  // namespace volt::vision
