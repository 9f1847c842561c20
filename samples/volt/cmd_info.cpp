// volt info --model DIR [--json]: what a model directory holds, without loading weights.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "samples/volt/cli.h"
#include "sdk/model_info.h"

namespace volt::cli {
namespace {

std::string human_count(int64_t n) {
    char buf[32];
    if (n >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
    else if (n >= 1'000'000) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
    else if (n >= 10'000) std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
    else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
    return buf;
}

std::string human_bytes(uint64_t b) {
    char buf[32];
    if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
    else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / double(1ull << 20));
    else if (b >= (1ull << 10)) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
    else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
    return buf;
}

std::string layer_pattern(const TextConfig& t) {
    std::string s;
    for (LayerKind k : t.layer_kinds) s += k == LayerKind::kSoftmax ? 'S' : 'L';
    return s;
}

std::string softmax_layer_list(const TextConfig& t) {
    std::string s;
    for (size_t i = 0; i < t.layer_kinds.size(); ++i)
        if (t.layer_kinds[i] == LayerKind::kSoftmax) s += (s.empty() ? "" : ",") + std::to_string(i);
    return s.empty() ? "none" : s;
}

nlohmann::json to_json(const ModelInfo& info) {
    nlohmann::json j;
    j["dir"] = info.dir.string();
    j["tokenizer_files"] = info.tokenizer_files;
    if (!info.config) {
        j["kind"] = "tokenizer-only";
        return j;
    }
    const ModelConfig& c = *info.config;
    const TextConfig& t = c.text;
    j["kind"] = c.is_vl() ? "vision-language" : "text";
    j["model_type"] = c.model_type;
    j["text"] = {{"model_type", t.model_type}, {"hidden_size", t.hidden_size}, {"num_layers", t.num_layers},
                 {"num_heads", t.num_heads}, {"num_kv_heads", t.num_kv_heads}, {"head_dim", t.head_dim},
                 {"vocab_size", t.vocab_size}, {"num_experts", t.num_experts},
                 {"experts_per_token", t.experts_per_token}, {"intermediate_size", t.intermediate_size},
                 {"rotary_dim", t.rotary_dim}, {"rope_theta", t.rope_theta}, {"rms_norm_eps", t.rms_norm_eps},
                 {"postnorm", t.postnorm}, {"layer_pattern", layer_pattern(t)},
                 {"num_softmax_layers", t.num_softmax_layers()}, {"num_lightning_layers", t.num_lightning_layers()},
                 {"max_position_embeddings", t.max_position_embeddings},
                 {"alpha", {{"softmax", t.softmax_alpha}, {"lightning", t.lightning_alpha}, {"mlp", t.mlp_alpha}}},
                 {"beta", {{"softmax", t.softmax_beta}, {"lightning", t.lightning_beta}, {"mlp", t.mlp_beta}}}};
    if (c.vl) {
        const VisionConfig& v = c.vl->vision;
        j["vision"] = {{"hidden_size", v.hidden_size}, {"num_layers", v.num_layers}, {"num_heads", v.num_heads},
                       {"intermediate_size", v.intermediate_size}, {"image_size", v.image_size},
                       {"patch_size", v.patch_size}, {"hidden_act", v.hidden_act},
                       {"image_token_index", c.vl->image_token_index},
                       {"vision_feature_layer", c.vl->vision_feature_layer},
                       {"grid_pinpoints", c.vl->grid_pinpoints.size()}};
    }
    nlohmann::json params;
    for (int i = 0; i < kWeightComponentCount; ++i)
        if (info.params_by_component[i]) params[std::string(weight_component_name(static_cast<WeightComponent>(i)))] = info.params_by_component[i];
    j["params"] = {{"total", info.total_params}, {"active_per_token", info.active_params_per_token}, {"by_component", params}};
    j["checkpoint"] = {{"present", info.has_checkpoint}};
    if (info.has_checkpoint) {
        nlohmann::json bytes;
        for (auto& [dt, b] : info.bytes_by_dtype) bytes[std::string(dtype_name(dt))] = b;
        std::vector<std::string> shapes;
        for (const auto& m : info.binding.mis_shaped)
            shapes.push_back(m.name + ": expected " + m.expected.to_string() + ", found " + m.actual.to_string());
        j["checkpoint"] = {{"present", true}, {"source", info.checkpoint_description}, {"files", info.checkpoint_files},
                           {"tensors", info.checkpoint_tensors}, {"bytes_by_dtype", bytes},
                           {"expected_present", info.binding.present}, {"missing", info.binding.missing},
                           {"unexpected", info.binding.unexpected}, {"mis_shaped", shapes},
                           {"bad_dtype", info.binding.bad_dtype}, {"complete", info.binding.ok()}};
    }
    j["notes"] = c.notes;
    return j;
}

void print_human(const ModelInfo& info) {
    std::printf("model        %s\n", info.dir.string().c_str());
    if (!info.config) {
        std::printf("kind         tokenizer-only directory (valid for tokenize/detokenize)\n");
    } else {
        const ModelConfig& c = *info.config;
        const TextConfig& t = c.text;
        std::printf("kind         %s (model_type %s)\n", c.is_vl() ? "MiniMax-VL-01 vision-language" : "MiniMax-Text-01 text",
                    c.model_type.c_str());
        std::printf("text         hidden %lld, %lld layers, %lld heads x %lld (kv heads %lld), vocab %lld\n",
                    (long long)t.hidden_size, (long long)t.num_layers, (long long)t.num_heads, (long long)t.head_dim,
                    (long long)t.num_kv_heads, (long long)t.vocab_size);
        std::printf("layers       %lld lightning + %lld softmax (softmax at %s)  %s\n", (long long)t.num_lightning_layers(),
                    (long long)t.num_softmax_layers(), softmax_layer_list(t).c_str(), layer_pattern(t).c_str());
        std::printf("moe          %lld experts, top-%lld, expert FFN %lld\n", (long long)t.num_experts,
                    (long long)t.experts_per_token, (long long)t.intermediate_size);
        std::printf("attention    rotary_dim %lld, rope_theta %g, rms_norm_eps %g, %s, alpha/beta softmax %g/%g "
                    "lightning %g/%g mlp %g/%g\n",
                    (long long)t.rotary_dim, t.rope_theta, t.rms_norm_eps, t.postnorm ? "post-norm" : "pre-norm",
                    t.softmax_alpha, t.softmax_beta, t.lightning_alpha, t.lightning_beta, t.mlp_alpha, t.mlp_beta);
        if (c.vl) {
            const VisionConfig& v = c.vl->vision;
            std::printf("vision       CLIP %lldx%lld/%lld: hidden %lld, %lld layers, %lld heads, MLP %lld, %s; "
                        "feature layer %lld, %zu grid pinpoints, <image> = %lld\n",
                        (long long)v.image_size, (long long)v.image_size, (long long)v.patch_size, (long long)v.hidden_size,
                        (long long)v.num_layers, (long long)v.num_heads, (long long)v.intermediate_size,
                        v.hidden_act.c_str(), (long long)c.vl->vision_feature_layer, c.vl->grid_pinpoints.size(),
                        (long long)c.vl->image_token_index);
        }
        std::printf("parameters   %s total, %s active per token (decoder, top-k experts)\n", human_count(info.total_params).c_str(),
                    human_count(info.active_params_per_token).c_str());
        for (int i = 0; i < kWeightComponentCount; ++i)
            if (info.params_by_component[i])
                std::printf("  %-22s %s\n", std::string(weight_component_name(static_cast<WeightComponent>(i))).c_str(),
                            human_count(info.params_by_component[i]).c_str());
        if (!info.has_checkpoint) {
            std::printf("checkpoint   none (no model.safetensors or index)\n");
        } else {
            std::printf("checkpoint   %s: %zu file(s), %zu tensors\n", info.checkpoint_description.c_str(),
                        info.checkpoint_files, info.checkpoint_tensors);
            for (auto& [dt, b] : info.bytes_by_dtype)
                std::printf("  %-22s %s\n", std::string(dtype_name(dt)).c_str(), human_bytes(b).c_str());
            const BindingReport& r = info.binding;
            if (r.ok()) {
                std::printf("tensors      all %zu expected tensors present with the right shapes\n", r.present);
            } else {
                std::printf("tensors      %zu present; %zu missing, %zu wrong shape, %zu non-float, %zu unexpected\n",
                            r.present, r.missing.size(), r.mis_shaped.size(), r.bad_dtype.size(), r.unexpected.size());
                for (const auto& n : r.missing) std::printf("  missing     %s\n", n.c_str());
                for (const auto& m : r.mis_shaped)
                    std::printf("  wrong shape %s: expected %s, found %s\n", m.name.c_str(), m.expected.to_string().c_str(),
                                m.actual.to_string().c_str());
                for (const auto& n : r.bad_dtype) std::printf("  non-float   %s\n", n.c_str());
                for (const auto& n : r.unexpected) std::printf("  unexpected  %s\n", n.c_str());
            }
        }
        for (const auto& n : c.notes) std::printf("note         %s\n", n.c_str());
    }
    std::string tok;
    for (const auto& f : info.tokenizer_files) tok += (tok.empty() ? "" : ", ") + f;
    std::printf("tokenizer    %s\n", tok.empty() ? "none" : tok.c_str());
}

}  // namespace

CommandRunner add_info_command(CLI::App& app) {
    struct Options {
        std::string model;
        bool json = false;
    };
    auto opt = std::make_shared<Options>();
    CLI::App* cmd = app.add_subcommand("info", "Describe a model directory: sizes, layer layout, parameters, tensors");
    cmd->add_option("--model", opt->model, "Model directory (config.json + safetensors, or tokenizer files only)")->required();
    cmd->add_flag("--json", opt->json, "Print JSON instead of text");
    return [opt]() -> int {
        auto info = inspect_model(opt->model);
        if (!info) return report_error(info.status());
        if (opt->json) std::cout << to_json(*info).dump(2) << "\n";
        else print_human(*info);
        // A checkpoint that does not match its config is bad input, after the full report.
        if (info->has_checkpoint && !info->binding.ok()) {
            std::fprintf(stderr, "volt: %s: checkpoint does not match config.json (see the tensor report)\n",
                         info->checkpoint_description.c_str());
            return kExitBadInput;
        }
        return kExitOk;
    };
}

}  // namespace volt::cli
