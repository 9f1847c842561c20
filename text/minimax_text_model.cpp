#include "text/minimax_text_model.h"

#include "sdk/file_io.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/lightning_attention.h"
#include "kernels/norm.h"
#include "sdk/weight_spec.h"
#include "text/minimax_text_weights.h"

namespace volt {
namespace {

// fp32 and contiguous (BLAS operand); already-fp32 contiguous tensors (mmapped F32 checkpoints) are used in place.
Expected<Tensor> as_f32(const Tensor& t) {
    if (t.dtype() == DType::kF32 && t.is_contiguous()) return t;
    return t.to(DType::kF32);
}

Status check_config(const TextConfig& c) {
    if (c.layer_kinds.size() != static_cast<size_t>(c.num_layers))
        return invalid_argument("config: ", c.layer_kinds.size(), " layer kinds for ", c.num_layers, " layers");
    if (c.num_heads % c.num_kv_heads != 0)
        return invalid_argument("config: num_key_value_heads ", c.num_kv_heads, " does not divide num_attention_heads ",
                                c.num_heads);
    if (c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim)
        return invalid_argument("config: rotary_dim ", c.rotary_dim, " must be even and <= head_dim ", c.head_dim);
    if (c.experts_per_token < 1 || c.experts_per_token > c.num_experts)
        return invalid_argument("config: num_experts_per_tok ", c.experts_per_token, " must be in [1, ",
                                c.num_experts, "]");
    if (c.max_position_embeddings < 1) return invalid_argument("config: max_position_embeddings must be positive");
    return Status::ok();
}


std::string gib(uint64_t b) {
    std::ostringstream os;
    os.precision(3);
    os << b / double(1ull << 30) << " GiB";
    return os.str();
}

}  // namespace

uint64_t MiniMaxTextModel::load_bytes(const TextConfig& config, const Checkpoint& checkpoint, const std::string& prefix) {
    uint64_t bytes = 0;
    for (const WeightSpec& s : minimax_text_weight_specs(config, prefix)) {
        const Checkpoint::Entry* e = checkpoint.find(s.name);
        if (!e) continue;
        const bool in_place = e->info->dtype == DType::kF32 || s.component == WeightComponent::kEmbedding;
        if (!in_place) bytes += static_cast<uint64_t>(s.shape.numel()) * sizeof(float);
    }
    if (config.tie_word_embeddings) bytes += static_cast<uint64_t>(config.vocab_size * config.hidden_size) * sizeof(float);
    return bytes;
}

Expected<std::unique_ptr<MiniMaxTextModel>> MiniMaxTextModel::load(const std::filesystem::path& dir,
                                                                   const TextModelLoadOptions& options) {
    VOLT_ASSIGN_OR_RETURN(TextCheckpoint tc, open_text_checkpoint(dir, options.language_model_of_vl));
    const ModelConfig& mc = tc.config;
    Checkpoint& ck = tc.checkpoint;
    const std::string& prefix = tc.prefix;
    const uint64_t need = load_bytes(mc.text, ck, prefix);
    const uint64_t budget = options.host_memory_budget ? options.host_memory_budget : available_host_memory();
    if (budget && need > budget)
        return resource_exhausted(ck.description(), ": the CPU backend needs ", gib(need),
                                  " of host memory for the fp32 weights, but ", gib(budget), " is available");
    const Checkpoint* ckp = &ck;
    uint64_t total = 0;  // what the progress counts: every tensor the backbone takes, as fp32
    for (const WeightSpec& w : minimax_text_weight_specs(mc.text, prefix))
        if (ck.find(w.name)) total += static_cast<uint64_t>(w.shape.numel()) * 4;
    LoadCounter counter(options.progress, total);
    VOLT_ASSIGN_OR_RETURN(auto model, build(mc.text, [ckp, prefix, &counter](const std::string& name) -> Expected<Tensor> {
                              VOLT_ASSIGN_OR_RETURN(Tensor t, ckp->view(prefix + name));
                              VOLT_RETURN_IF_ERROR(counter.add(static_cast<uint64_t>(t.numel()) * 4));  // as fp32
                              return t;
                          }));
    VOLT_RETURN_IF_ERROR(counter.finish());
    model->checkpoint_ = std::move(ck);  // moves keep the mmapped views valid (Checkpoint's contract)
    return model;
}

Expected<std::unique_ptr<MiniMaxTextModel>> MiniMaxTextModel::from_tensors(
    const TextConfig& config, const std::unordered_map<std::string, Tensor>& tensors, const std::string& label) {
    VOLT_RETURN_IF_ERROR(check_config(config));
    VOLT_RETURN_IF_ERROR(bind_tensors(tensors, minimax_text_weight_specs(config)).to_status(label));
    return build(config, [&tensors](const std::string& name) -> Expected<Tensor> { return tensors.at(name); });
}

Expected<std::unique_ptr<MiniMaxTextModel>> MiniMaxTextModel::build(const TextConfig& c, const Lookup& get) {
    VOLT_RETURN_IF_ERROR(check_config(c));
    std::unique_ptr<MiniMaxTextModel> m(new MiniMaxTextModel());
    m->config_ = c;
    const std::string p = "model.";
    VOLT_ASSIGN_OR_RETURN(m->embed_, get(p + "embed_tokens.weight"));
    if (m->embed_.dtype() != DType::kF32 && m->embed_.dtype() != DType::kBF16 && m->embed_.dtype() != DType::kF16) {
        VOLT_ASSIGN_OR_RETURN(m->embed_, m->embed_.to(DType::kF32));
    }
    VOLT_ASSIGN_OR_RETURN(m->embed_, m->embed_.contiguous());
    auto f32 = [&](const std::string& name) -> Expected<Tensor> {
        VOLT_ASSIGN_OR_RETURN(Tensor t, get(name));
        return as_f32(t);
    };
    for (int l = 0; l < c.num_layers; ++l) {
        const std::string lp = p + "layers." + std::to_string(l) + ".";
        Layer L;
        L.kind = c.layer_kinds[l];
        VOLT_ASSIGN_OR_RETURN(L.input_norm, f32(lp + "input_layernorm.weight"));
        VOLT_ASSIGN_OR_RETURN(L.post_norm, f32(lp + "post_attention_layernorm.weight"));
        if (L.kind == LayerKind::kLightning) {
            VOLT_ASSIGN_OR_RETURN(L.lightning.qkv, f32(lp + "self_attn.qkv_proj.weight"));
            VOLT_ASSIGN_OR_RETURN(L.lightning.output_gate, f32(lp + "self_attn.output_gate.weight"));
            VOLT_ASSIGN_OR_RETURN(L.lightning.norm, f32(lp + "self_attn.norm.weight"));
            VOLT_ASSIGN_OR_RETURN(L.lightning.out_proj, f32(lp + "self_attn.out_proj.weight"));
            // The layer index counts every layer (softmax ones too), per the decay rule.
            L.lightning.slopes = lightning_decay_slopes(l, static_cast<int>(c.num_layers), static_cast<int>(c.num_heads));
        } else {
            VOLT_ASSIGN_OR_RETURN(L.softmax.q_proj, f32(lp + "self_attn.q_proj.weight"));
            VOLT_ASSIGN_OR_RETURN(L.softmax.k_proj, f32(lp + "self_attn.k_proj.weight"));
            VOLT_ASSIGN_OR_RETURN(L.softmax.v_proj, f32(lp + "self_attn.v_proj.weight"));
            VOLT_ASSIGN_OR_RETURN(L.softmax.o_proj, f32(lp + "self_attn.o_proj.weight"));
        }
        VOLT_ASSIGN_OR_RETURN(L.moe.router, f32(lp + "block_sparse_moe.gate.weight"));
        for (int e = 0; e < c.num_experts; ++e) {
            const std::string ep = lp + "block_sparse_moe.experts." + std::to_string(e) + ".";
            VOLT_ASSIGN_OR_RETURN(Tensor w1, f32(ep + "w1.weight"));
            VOLT_ASSIGN_OR_RETURN(Tensor w3, f32(ep + "w3.weight"));
            VOLT_ASSIGN_OR_RETURN(Tensor w2, f32(ep + "w2.weight"));
            L.moe.w1p.push_back(w1.data_as<float>());
            L.moe.w3p.push_back(w3.data_as<float>());
            L.moe.w2p.push_back(w2.data_as<float>());
            L.moe.w1.push_back(std::move(w1));
            L.moe.w3.push_back(std::move(w3));
            L.moe.w2.push_back(std::move(w2));
        }
        m->layers_.push_back(std::move(L));
    }
    VOLT_ASSIGN_OR_RETURN(m->final_norm_, f32(p + "norm.weight"));
    if (c.tie_word_embeddings) {
        VOLT_ASSIGN_OR_RETURN(m->lm_head_, as_f32(m->embed_));
    } else {
        VOLT_ASSIGN_OR_RETURN(m->lm_head_, f32("lm_head.weight"));
    }
    return m;
}

Expected<SequenceCache> MiniMaxTextModel::new_cache(int64_t max_tokens) const {
    if (max_tokens < 1) return invalid_argument("cache size ", max_tokens, " must be positive");
    SequenceCache cache;
    cache.set_max_tokens(max_tokens);
    for (const Layer& L : layers_) {
        LayerCache lc;
        lc.head_dim = config_.head_dim;
        if (L.kind == LayerKind::kLightning) {
            auto s = Tensor::zeros({config_.num_heads, config_.head_dim, config_.head_dim}, DType::kF32);
            if (!s) return resource_exhausted("cannot allocate a lightning state: ", s.status().message());
            lc.state = std::move(*s);
        } else {
            lc.kv_heads = config_.num_kv_heads;
        }
        cache.layers.push_back(std::move(lc));
    }
    return cache;
}

Expected<Tensor> MiniMaxTextModel::forward(std::span<const int32_t> ids, SequenceCache& cache, LogitsMode mode,
                                           const CancelCheck& cancelled) const {
    VOLT_RETURN_IF_ERROR(check_token_ids(ids, config_.vocab_size));
    return run(ids.data(), nullptr, static_cast<int64_t>(ids.size()), cache, mode, cancelled);
}

Expected<Tensor> MiniMaxTextModel::forward_embeddings(const Tensor& embeds, SequenceCache& cache, LogitsMode mode,
                                                      const CancelCheck& cancelled) const {
    if (!embeds.device().is_cpu() || embeds.rank() != 2 || embeds.dim(1) != config_.hidden_size || embeds.dim(0) < 1)
        return invalid_argument("input embeddings must be a CPU tensor [n >= 1, hidden ", config_.hidden_size,
                                "], got ", embeds.to_string());
    if (!dtype_is_float(embeds.dtype())) return invalid_argument("input embeddings must be floating point, got ", embeds.to_string());
    VOLT_ASSIGN_OR_RETURN(Tensor e, as_f32(embeds));
    return run(nullptr, e.data_as<float>(), e.dim(0), cache, mode, cancelled);
}

Expected<Tensor> MiniMaxTextModel::embed(std::span<const int32_t> ids) const {
    VOLT_RETURN_IF_ERROR(check_token_ids(ids, config_.vocab_size));
    const int64_t n = static_cast<int64_t>(ids.size()), H = config_.hidden_size;
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({n, H}, DType::kF32));
    VOLT_RETURN_IF_ERROR(cpu::embedding({.num_tokens = n, .ids = ids.data(), .vocab_size = config_.vocab_size,
                                         .hidden = H, .table = embed_.data(), .table_dtype = embed_.dtype(),
                                         .out = out.data_as<float>(), .out_stride = H}));
    return out;
}

Expected<Tensor> MiniMaxTextModel::run(const int32_t* ids, const float* embeds, int64_t n, SequenceCache& cache,
                                       LogitsMode mode, const CancelCheck& cancelled) const {
    if (cache.layers.size() != layers_.size())
        return invalid_argument("cache has ", cache.layers.size(), " layers, the model ", layers_.size());
    std::lock_guard<std::mutex> lock(mu_);
    VOLT_RETURN_IF_ERROR(cache.reserve(cache.length() + n));
    Tensor logits;
    if (mode != LogitsMode::kNone) {
        auto t = Tensor::empty({mode == LogitsMode::kAll ? n : 1, config_.vocab_size}, DType::kF32);
        if (!t) return resource_exhausted("cannot allocate logits: ", t.status().message());
        logits = std::move(*t);
    }
    const int64_t H = config_.hidden_size;
    for (int64_t c0 = 0; c0 < n; c0 += kMaxChunkTokens) {
        const int64_t m = std::min(kMaxChunkTokens, n - c0);
        const bool last_chunk = c0 + m == n;
        float* out = nullptr;
        if (mode == LogitsMode::kAll) out = logits.data_as<float>() + c0 * config_.vocab_size;
        else if (mode == LogitsMode::kLast && last_chunk) out = logits.data_as<float>();
        VOLT_RETURN_IF_ERROR(run_chunk(ids ? ids + c0 : nullptr, embeds ? embeds + c0 * H : nullptr, m, cache, out,
                                       mode == LogitsMode::kAll, cancelled));
        cache.advance(m);
    }
    return logits;
}

// One piece of the sequence through every layer. Residual stream, per layer (architecture §1):
//   xn = RMSNorm_in(h); a = Attn(xn); h1 = r1*alpha_attn + a*beta_attn with r1 = xn (postnorm) or h (prenorm)
//   yn = RMSNorm_post(h1); m = MoE(yn); h = r2*alpha_mlp + m*beta_mlp with r2 = yn (postnorm) or h1 (prenorm)
// The residual combination is fused into the next RMSNorm (the norm op's residual input), so h is only
// materialised when the pre-norm stream needs it.
Status MiniMaxTextModel::run_chunk(const int32_t* ids, const float* embeds, int64_t T, SequenceCache& cache,
                                   float* logits, bool all_rows, const CancelCheck& cancelled) const {
    const TextConfig& c = config_;
    const int64_t H = c.hidden_size, V = c.vocab_size;
    const int64_t past = cache.length();
    const float eps = static_cast<float>(c.rms_norm_eps);
    std::vector<float> h, xn, a, yn, mo;
    try {
        h.resize(T * H), xn.resize(T * H), a.resize(T * H), yn.resize(T * H), mo.resize(T * H);
    } catch (const std::bad_alloc&) {
        return resource_exhausted("cannot allocate activations for ", T, " tokens");
    }
    if (ids) {
        VOLT_RETURN_IF_ERROR(cpu::embedding({.num_tokens = T, .ids = ids, .vocab_size = V, .hidden = H,
                                             .table = embed_.data(), .table_dtype = embed_.dtype(), .out = h.data(),
                                             .out_stride = H}));
    } else {
        std::copy_n(embeds, T * H, h.data());
    }
    // The pending residual of the previous layer's MoE: r2 (yn or h) * alpha_mlp + mo * beta_mlp.
    const float* pending = nullptr;
    for (size_t l = 0; l < layers_.size(); ++l) {
        if (cancelled && cancelled()) return volt::cancelled("stopped before layer ", l, " of a ", T, "-token piece");
        const Layer& L = layers_[l];
        RmsNormParams in{.num_tokens = T, .width = H, .x = h.data(), .x_stride = H, .weight = L.input_norm.data_as<float>(),
                         .eps = eps, .out = xn.data(), .out_stride = H};
        if (pending) {
            in.x = mo.data();
            in.x_beta = static_cast<float>(c.mlp_beta);
            in.residual = pending;
            in.residual_stride = H;
            in.residual_alpha = static_cast<float>(c.mlp_alpha);
            if (!c.postnorm) in.sum_out = h.data(), in.sum_stride = H;
        }
        VOLT_RETURN_IF_ERROR(cpu::rms_norm(in));

        const bool lightning = L.kind == LayerKind::kLightning;
        if (lightning) {
            VOLT_RETURN_IF_ERROR(lightning_attention_layer(c, L.lightning, xn.data(), T, cache.layers[l], a.data()));
        } else {
            VOLT_RETURN_IF_ERROR(softmax_attention_layer(c, L.softmax, xn.data(), T, past, cache.layers[l], a.data()));
        }
        RmsNormParams post{.num_tokens = T, .width = H, .x = a.data(), .x_stride = H,
                           .x_beta = static_cast<float>(lightning ? c.lightning_beta : c.softmax_beta),
                           .residual = c.postnorm ? xn.data() : h.data(), .residual_stride = H,
                           .residual_alpha = static_cast<float>(lightning ? c.lightning_alpha : c.softmax_alpha),
                           .weight = L.post_norm.data_as<float>(), .eps = eps, .out = yn.data(), .out_stride = H};
        if (!c.postnorm) post.sum_out = h.data(), post.sum_stride = H;
        VOLT_RETURN_IF_ERROR(cpu::rms_norm(post));
        VOLT_RETURN_IF_ERROR(moe_layer(c, L.moe, yn.data(), T, mo.data()));
        pending = c.postnorm ? yn.data() : h.data();
    }
    if (!logits) return Status::ok();
    // Final norm and lm_head on the rows asked for (the last one only for kLast).
    const int64_t first = all_rows ? 0 : T - 1, rows = T - first;
    RmsNormParams fin{.num_tokens = rows, .width = H, .x = mo.data() + first * H, .x_stride = H,
                      .x_beta = static_cast<float>(c.mlp_beta), .residual = pending + first * H, .residual_stride = H,
                      .residual_alpha = static_cast<float>(c.mlp_alpha), .weight = final_norm_.data_as<float>(),
                      .eps = eps, .out = xn.data(), .out_stride = H};
    VOLT_RETURN_IF_ERROR(cpu::rms_norm(fin));
    return cpu::gemm({.m = rows, .n = V, .k = H, .a = xn.data(), .lda = H, .b = lm_head_.data_as<float>(), .ldb = H,
                      .c = logits, .ldc = V});
}

}  // namespace volt
