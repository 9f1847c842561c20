#include "sdk/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sdk/file_io.h"
#include "sdk/json_fields.h"

namespace volt {
namespace {

using json = nlohmann::json;

const char* const kTextTypes[] = {"minimax_text_01", "minimax", "minimax_m1"};

bool is_text_type(const std::string& t) {
    return std::find(std::begin(kTextTypes), std::end(kTextTypes), t) != std::end(kTextTypes);
}

// Reads a number field, recording a note when the reference default is used instead.
Expected<double> number_noted(const JsonFields& f, const char* key, double fallback, std::vector<std::string>& notes) {
    if (!f.has(key)) notes.push_back(str_cat(f.where(key), " not set; using ", fallback));
    return f.number_or(key, fallback);
}

Expected<int64_t> integer_noted(const JsonFields& f, const char* key, int64_t fallback, int64_t min_value,
                                std::vector<std::string>& notes) {
    if (!f.has(key)) notes.push_back(str_cat(f.where(key), " not set; using ", fallback));
    return f.integer_or(key, fallback, min_value);
}

// Plausibility caps: a corrupt or hostile config must not make later code allocate without bound.
struct SizeCap {
    const char* key;
    int64_t value, max;
};
Status check_caps(const JsonFields& f, std::initializer_list<SizeCap> caps) {
    for (const SizeCap& c : caps)
        if (c.value > c.max) return invalid_argument(f.where(c.key), ": ", c.value, " exceeds the supported maximum ", c.max);
    return Status::ok();
}

// The six residual scales under their two spellings (original checkpoint config / transformers' native config).
Status read_residual_scales(const JsonFields& f, bool native, TextConfig& c) {
    const struct {
        double* dst;
        const char* original;
        const char* native;
    } fields[] = {
        {&c.softmax_alpha, "layernorm_full_attention_alpha", "full_attn_alpha_factor"},
        {&c.softmax_beta, "layernorm_full_attention_beta", "full_attn_beta_factor"},
        {&c.lightning_alpha, "layernorm_linear_attention_alpha", "linear_attn_alpha_factor"},
        {&c.lightning_beta, "layernorm_linear_attention_beta", "linear_attn_beta_factor"},
        {&c.mlp_alpha, "layernorm_mlp_alpha", "mlp_alpha_factor"},
        {&c.mlp_beta, "layernorm_mlp_beta", "mlp_beta_factor"},
    };
    for (const auto& field : fields) {
        VOLT_ASSIGN_OR_RETURN(*field.dst, f.number_or(native ? field.native : field.original, 1.0));
    }
    return Status::ok();
}

Expected<std::vector<LayerKind>> parse_layer_kinds(const JsonFields& f, bool native, int64_t num_layers) {
    std::vector<LayerKind> kinds;
    if (native) {
        const char* key = "layer_types";
        if (!f.has(key) || !f.raw(key).is_array())
            return f.error(key, "a list of \"linear_attention\" / \"full_attention\", one per layer");
        for (const auto& e : f.raw(key)) {
            if (e == "linear_attention") kinds.push_back(LayerKind::kLightning);
            else if (e == "full_attention") kinds.push_back(LayerKind::kSoftmax);
            else return f.error(key, str_cat("only \"linear_attention\" or \"full_attention\" entries (found ", e.dump(), ")"));
        }
    } else {
        const char* key = "attn_type_list";
        VOLT_ASSIGN_OR_RETURN(auto list, f.integer_list(key));
        for (int64_t v : list) {
            if (v != 0 && v != 1) return f.error(key, "entries 0 (lightning) or 1 (softmax)");
            kinds.push_back(v == 1 ? LayerKind::kSoftmax : LayerKind::kLightning);
        }
    }
    if (static_cast<int64_t>(kinds.size()) != num_layers)
        return invalid_argument(f.where(native ? "layer_types" : "attn_type_list"), ": has ", kinds.size(),
                                " entries but num_hidden_layers is ", num_layers);
    return kinds;
}

Expected<TextConfig> parse_text(const json& j, const std::string& where, std::vector<std::string>& notes) {
    if (!j.is_object()) return invalid_argument(where, ": expected a JSON object");
    JsonFields f(j, where);
    TextConfig c;
    VOLT_ASSIGN_OR_RETURN(c.model_type, f.string_or("model_type", "minimax_text_01"));
    if (!is_text_type(c.model_type))
        return invalid_argument(f.where("model_type"), ": unsupported text model type '", c.model_type,
                                "'; expected minimax_text_01, minimax or minimax_m1");
    const bool native = c.model_type == "minimax";

    VOLT_ASSIGN_OR_RETURN(c.vocab_size, f.integer("vocab_size", 1));
    VOLT_ASSIGN_OR_RETURN(c.hidden_size, f.integer("hidden_size", 1));
    VOLT_ASSIGN_OR_RETURN(c.num_layers, f.integer("num_hidden_layers", 1));
    VOLT_ASSIGN_OR_RETURN(c.num_heads, f.integer("num_attention_heads", 1));
    VOLT_ASSIGN_OR_RETURN(c.intermediate_size, f.integer("intermediate_size", 1));
    VOLT_ASSIGN_OR_RETURN(c.num_experts, f.integer("num_local_experts", 1));
    VOLT_ASSIGN_OR_RETURN(c.num_kv_heads, integer_noted(f, "num_key_value_heads", c.num_heads, 1, notes));
    if (!f.has("head_dim") && c.hidden_size % c.num_heads != 0)
        return invalid_argument(f.where("head_dim"), ": not set and hidden_size ", c.hidden_size,
                                " is not divisible by num_attention_heads ", c.num_heads);
    VOLT_ASSIGN_OR_RETURN(c.head_dim, integer_noted(f, "head_dim", c.hidden_size / c.num_heads, 1, notes));
    VOLT_ASSIGN_OR_RETURN(c.experts_per_token, integer_noted(f, "num_experts_per_tok", 2, 1, notes));
    // Before anything sized by these numbers is read or built.
    VOLT_RETURN_IF_ERROR(check_caps(f, {{"vocab_size", c.vocab_size, int64_t(1) << 24},
                                        {"hidden_size", c.hidden_size, int64_t(1) << 18},
                                        {"num_hidden_layers", c.num_layers, 1024},
                                        {"num_attention_heads", c.num_heads, 1024},
                                        {"num_key_value_heads", c.num_kv_heads, 1024},
                                        {"head_dim", c.head_dim, 1024},
                                        {"intermediate_size", c.intermediate_size, int64_t(1) << 20},
                                        {"num_local_experts", c.num_experts, 1024}}));

    if (native) {
        double factor = 1.0;
        if (f.has("partial_rotary_factor")) { VOLT_ASSIGN_OR_RETURN(factor, f.number("partial_rotary_factor")); }
        VOLT_ASSIGN_OR_RETURN(c.rotary_dim, f.integer_or("rotary_dim", static_cast<int64_t>(c.head_dim * factor), 1));
        double theta = 1e6;
        if (f.has("rope_parameters") && f.raw("rope_parameters").is_object()) {
            JsonFields rp(f.raw("rope_parameters"), f.where("rope_parameters"));
            VOLT_ASSIGN_OR_RETURN(theta, rp.number_or("rope_theta", theta));
        } else {
            VOLT_ASSIGN_OR_RETURN(theta, number_noted(f, "rope_theta", theta, notes));
        }
        c.rope_theta = theta;
        c.postnorm = true;  // the native decoder layer always takes the residual from the normalised input
    } else {
        VOLT_ASSIGN_OR_RETURN(c.rotary_dim, integer_noted(f, "rotary_dim", c.head_dim, 1, notes));
        VOLT_ASSIGN_OR_RETURN(c.rope_theta, number_noted(f, "rope_theta", 1e6, notes));
        if (!f.has("postnorm")) notes.push_back(str_cat(f.where("postnorm"), " not set; using false (pre-norm residuals)"));
        VOLT_ASSIGN_OR_RETURN(c.postnorm, f.boolean_or("postnorm", false));
    }
    VOLT_RETURN_IF_ERROR(read_residual_scales(f, native, c));
    VOLT_ASSIGN_OR_RETURN(c.layer_kinds, parse_layer_kinds(f, native, c.num_layers));
    VOLT_ASSIGN_OR_RETURN(c.max_position_embeddings, integer_noted(f, "max_position_embeddings", 4096 * 32, 1, notes));
    VOLT_ASSIGN_OR_RETURN(c.rms_norm_eps, f.number_or("rms_norm_eps", 1e-5));
    VOLT_ASSIGN_OR_RETURN(c.block_size, f.integer_or("block_size", 256, 1));
    VOLT_ASSIGN_OR_RETURN(c.tie_word_embeddings, f.boolean_or("tie_word_embeddings", false));
    VOLT_ASSIGN_OR_RETURN(c.hidden_act, f.string_or("hidden_act", "silu"));
    VOLT_ASSIGN_OR_RETURN(c.bos_token_id, f.optional_integer("bos_token_id"));
    if (f.has("eos_token_id") && f.raw("eos_token_id").is_array() && !f.raw("eos_token_id").empty() &&
        f.raw("eos_token_id")[0].is_number_integer()) {
        c.eos_token_id = f.raw("eos_token_id")[0].get<int64_t>();
    } else {
        VOLT_ASSIGN_OR_RETURN(c.eos_token_id, f.optional_integer("eos_token_id"));
    }

    // ---- consistency ----
    if (c.hidden_act != "silu")
        return unimplemented(f.where("hidden_act"), ": '", c.hidden_act, "' is not supported (MiniMax experts use silu)");
    if (c.num_heads % c.num_kv_heads != 0)
        return invalid_argument(f.where("num_key_value_heads"), ": ", c.num_kv_heads,
                                " does not divide num_attention_heads ", c.num_heads);
    if (c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim)
        return invalid_argument(f.where("rotary_dim"), ": ", c.rotary_dim, " must be even and at most head_dim ", c.head_dim);
    if (c.experts_per_token > c.num_experts)
        return invalid_argument(f.where("num_experts_per_tok"), ": ", c.experts_per_token, " exceeds num_local_experts ",
                                c.num_experts);
    if (!(c.rms_norm_eps > 0)) return invalid_argument(f.where("rms_norm_eps"), ": must be positive");
    if (!(c.rope_theta > 0)) return invalid_argument(f.where("rope_theta"), ": must be positive");
    if (f.has("shared_intermediate_size")) {
        VOLT_ASSIGN_OR_RETURN(int64_t shared, f.integer("shared_intermediate_size", 0));
        if (shared != 0)
            return unimplemented(f.where("shared_intermediate_size"), ": ", shared,
                                 " (a shared expert) is not supported; MiniMax-Text-01 and VL-01 use 0");
    }
    if (c.tie_word_embeddings) notes.push_back(str_cat(where, ": tie_word_embeddings is true (lm_head shares the embedding)"));
    return c;
}

Expected<VisionConfig> parse_vision(const json& j, const std::string& where, std::vector<std::string>& notes) {
    if (!j.is_object()) return invalid_argument(where, ": expected a JSON object");
    JsonFields f(j, where);
    std::string type;
    VOLT_ASSIGN_OR_RETURN(type, f.string_or("model_type", "clip_vision_model"));
    if (type != "clip_vision_model")
        return invalid_argument(f.where("model_type"), ": unsupported vision model '", type, "'; expected clip_vision_model");
    // CLIPVisionConfig's class defaults apply to fields the file leaves out (transformers writes diffs only).
    VisionConfig v;
    VOLT_ASSIGN_OR_RETURN(v.hidden_size, integer_noted(f, "hidden_size", 768, 1, notes));
    VOLT_ASSIGN_OR_RETURN(v.intermediate_size, integer_noted(f, "intermediate_size", 3072, 1, notes));
    VOLT_ASSIGN_OR_RETURN(v.num_layers, integer_noted(f, "num_hidden_layers", 12, 1, notes));
    VOLT_ASSIGN_OR_RETURN(v.num_heads, integer_noted(f, "num_attention_heads", 12, 1, notes));
    VOLT_ASSIGN_OR_RETURN(v.image_size, integer_noted(f, "image_size", 224, 1, notes));
    VOLT_ASSIGN_OR_RETURN(v.patch_size, integer_noted(f, "patch_size", 32, 1, notes));
    VOLT_ASSIGN_OR_RETURN(v.num_channels, f.integer_or("num_channels", 3, 1));
    if (!f.has("hidden_act")) notes.push_back(str_cat(f.where("hidden_act"), " not set; using quick_gelu"));
    VOLT_ASSIGN_OR_RETURN(v.hidden_act, f.string_or("hidden_act", "quick_gelu"));
    VOLT_ASSIGN_OR_RETURN(v.layer_norm_eps, f.number_or("layer_norm_eps", 1e-5));
    VOLT_RETURN_IF_ERROR(check_caps(f, {{"hidden_size", v.hidden_size, 1 << 16},
                                        {"intermediate_size", v.intermediate_size, 1 << 18},
                                        {"num_hidden_layers", v.num_layers, 256},
                                        {"num_attention_heads", v.num_heads, 1024},
                                        {"image_size", v.image_size, 1 << 14},
                                        {"patch_size", v.patch_size, 1 << 14}}));
    if (v.hidden_act != "gelu" && v.hidden_act != "quick_gelu")
        return unimplemented(f.where("hidden_act"), ": '", v.hidden_act, "' is not supported (gelu or quick_gelu)");
    if (v.hidden_size % v.num_heads != 0)
        return invalid_argument(f.where("num_attention_heads"), ": ", v.num_heads, " does not divide hidden_size ", v.hidden_size);
    if (v.image_size % v.patch_size != 0)
        return invalid_argument(f.where("patch_size"), ": ", v.patch_size, " does not divide image_size ", v.image_size);
    if (v.num_channels != 3) return unimplemented(f.where("num_channels"), ": only RGB (3) images are supported");
    return v;
}

Expected<VLConfig> parse_vl(const json& j, const std::string& label, std::vector<std::string>& notes) {
    JsonFields f(j, label + ":");
    VLConfig vl;
    if (!f.has("vision_config")) return f.error("vision_config", "an object (the CLIP vision tower's config)");
    VOLT_ASSIGN_OR_RETURN(vl.vision, parse_vision(f.raw("vision_config"), f.where("vision_config"), notes));
    VOLT_ASSIGN_OR_RETURN(vl.image_token_index, f.integer("image_token_index", 0));
    VOLT_ASSIGN_OR_RETURN(vl.vision_feature_layer, f.integer_or("vision_feature_layer", -1, INT64_MIN));
    const int64_t L = vl.vision.num_layers;
    if (vl.vision_feature_layer < -(L + 1) || vl.vision_feature_layer > L)
        return invalid_argument(f.where("vision_feature_layer"), ": ", vl.vision_feature_layer,
                                " is outside the vision tower's hidden states [-", L + 1, ", ", L, "]");
    VOLT_ASSIGN_OR_RETURN(vl.vision_feature_select_strategy, f.string_or("vision_feature_select_strategy", "default"));
    if (vl.vision_feature_select_strategy != "default" && vl.vision_feature_select_strategy != "full")
        return f.error("vision_feature_select_strategy", "\"default\" or \"full\"");
    if (!f.has("image_grid_pinpoints") || !f.raw("image_grid_pinpoints").is_array() || f.raw("image_grid_pinpoints").empty())
        return f.error("image_grid_pinpoints", "a non-empty list of [height, width] pairs");
    for (const auto& p : f.raw("image_grid_pinpoints")) {
        if (!p.is_array() || p.size() != 2 || !p[0].is_number_integer() || !p[1].is_number_integer() ||
            p[0].get<int64_t>() <= 0 || p[1].get<int64_t>() <= 0)
            return f.error("image_grid_pinpoints", "a non-empty list of [height, width] pairs of positive integers");
        if (p[0].get<int64_t>() > (1 << 16) || p[1].get<int64_t>() > (1 << 16))
            return f.error("image_grid_pinpoints", "pairs of at most 65536 pixels");
        vl.grid_pinpoints.emplace_back(p[0].get<int64_t>(), p[1].get<int64_t>());
    }
    VOLT_ASSIGN_OR_RETURN(vl.projector_hidden_act, f.string_or("projector_hidden_act", "gelu"));
    if (vl.projector_hidden_act != "gelu") return unimplemented(f.where("projector_hidden_act"), ": only gelu is supported");
    VOLT_ASSIGN_OR_RETURN(vl.image_seq_length, integer_noted(f, "image_seq_length", vl.vision.num_patches(), 1, notes));
    return vl;
}

}  // namespace

int64_t TextConfig::num_softmax_layers() const {
    return std::count(layer_kinds.begin(), layer_kinds.end(), LayerKind::kSoftmax);
}

Expected<ModelConfig> parse_model_config(const json& j, const std::string& label) {
    if (!j.is_object()) return invalid_argument(label, ": expected a JSON object");
    JsonFields f(j, label + ":");
    ModelConfig m;
    VOLT_ASSIGN_OR_RETURN(m.model_type, f.string("model_type"));
    if (m.model_type == "minimax_vl_01") {
        m.architecture = ModelConfig::Architecture::kVL;
        if (!f.has("text_config")) return f.error("text_config", "an object (the MiniMax-Text-01 backbone's config)");
        VOLT_ASSIGN_OR_RETURN(m.text, parse_text(f.raw("text_config"), f.where("text_config"), m.notes));
        VOLT_ASSIGN_OR_RETURN(m.vl, parse_vl(j, label, m.notes));
        if (m.vl->image_token_index >= m.text.vocab_size)
            return invalid_argument(f.where("image_token_index"), ": ", m.vl->image_token_index,
                                    " is outside the vocabulary (", m.text.vocab_size, ")");
    } else if (is_text_type(m.model_type)) {
        m.architecture = ModelConfig::Architecture::kText;
        VOLT_ASSIGN_OR_RETURN(m.text, parse_text(j, label + ":", m.notes));
    } else {
        return invalid_argument(f.where("model_type"), ": unsupported model type '", m.model_type,
                                "'; Volt runs minimax_vl_01, minimax_text_01, minimax and minimax_m1");
    }
    return m;
}

Expected<ModelConfig> parse_model_config_text(std::string_view text, const std::string& label) {
    json j;
    try {
        j = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        return invalid_argument(label, ": not valid JSON (", e.what(), ")");
    }
    return parse_model_config(j, label);
}

Expected<ModelConfig> load_model_config(const std::filesystem::path& model_dir) {
    const auto path = model_dir / "config.json";
    auto text = read_file(path);
    if (!text) return text.status().with_context(str_cat("model directory ", model_dir.string()));
    return parse_model_config_text(*text, path.string());
}

}  // namespace volt
