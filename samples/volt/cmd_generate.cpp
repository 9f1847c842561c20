// volt generate --model DIR --ids-file IDS.json --max-new-tokens N (--greedy | sampling options) --out IDS.json
// Writes the new ids only (JSON array). Stops at a stop id (the config's eos_token_id and every --stop-id; the stop
// id is written), after N tokens, or when the context is full.
// IDS.json may also hold several prompts (an array of arrays): they run together with continuous batching
// (sdk/engine/batch_generator.h, at most --max-batch at once, decode steps batched) and OUT gets an array of the
// new ids of each, each what that prompt alone would give.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "samples/volt/cli.h"
#include "samples/volt/ids_file.h"
#include "sdk/engine/batch_generator.h"
#include "sdk/engine/generate.h"
#include "sdk/config.h"
#include "text/backbone.h"

namespace volt::cli {
namespace {

struct GenerateOptions {
    std::string model, ids_file, out;
    int64_t max_new_tokens = 0;
    bool greedy = false, stats = false;
    float temperature = 1.0f, top_p = 1.0f, min_p = 0.0f, repetition_penalty = 1.0f;
    int64_t top_k = 0, max_context = 0;
    uint64_t seed = 0;
    std::vector<int32_t> stop_ids;
    DeviceFlags where;  // --device, --gpus, --gpu-ids
    ExpertWeightsFlags experts_flags;  // --expert-weights, --fp8-experts
    int max_batch = 64;
};

// Several prompts through continuous batching; errors name the prompt.
Status run_batch(const CausalLM& model, const std::vector<std::vector<int32_t>>& prompts, const GenerationOptions& g,
                 const GenerateOptions& o) {
    VOLT_ASSIGN_OR_RETURN(BatchGenerator gen, BatchGenerator::create(model, {.max_batch = o.max_batch}));
    std::vector<BatchGenerator::RequestId> ids;
    for (size_t i = 0; i < prompts.size(); ++i) {
        auto id = gen.submit(prompts[i], g, {}, {.max_context = o.max_context});
        if (!id) return id.status().with_context(str_cat(o.ids_file, ": prompt ", i));
        ids.push_back(*id);
    }
    const auto t0 = std::chrono::steady_clock::now();
    VOLT_RETURN_IF_ERROR(gen.run());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json out = nlohmann::json::array();
    size_t tokens = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
        auto r = gen.result(ids[i]);
        if (!r) return r.status().with_context(str_cat("prompt ", i));
        tokens += r->ids.size();
        out.push_back(r->ids);
    }
    if (o.stats)
        std::fprintf(stderr, "%zu prompts, at most %d at once: %zu new tokens in %.3f s (%.1f tok/s, prefill included)\n",
                     prompts.size(), o.max_batch, tokens, seconds, tokens / std::max(seconds, 1e-9));
    return write_json_file(o.out, out);
}

Status run_generate(const GenerateOptions& o) {
    VOLT_ASSIGN_OR_RETURN(const DeviceChoice dc, device_choice(o.where));
    const Device device = dc.device;
    VOLT_ASSIGN_OR_RETURN(IdsBatch batch, read_ids_batch_file(o.ids_file));
    GenerationOptions g;
    g.max_new_tokens = o.max_new_tokens;
    g.seed = o.seed;
    g.sampling = {.temperature = o.greedy ? 0.0f : o.temperature, .top_k = o.top_k, .top_p = o.top_p,
                  .min_p = o.min_p, .repetition_penalty = o.repetition_penalty};
    VOLT_RETURN_IF_ERROR(validate(g.sampling).with_context("sampling options"));
    // Ids alone cannot carry images, so VL-01 directories are refused (`volt run --image` answers about images).
    VOLT_ASSIGN_OR_RETURN(const ExpertWeights experts, expert_weights(o.experts_flags));
    VOLT_ASSIGN_OR_RETURN(auto model, load_backbone(o.model, device, /*language_model_of_vl=*/false, dc.gpus, experts,
                                                   {}, dc.gpu_ids));
    VOLT_ASSIGN_OR_RETURN(const ModelConfig config, load_model_config(o.model));
    g.stop_ids = o.stop_ids;
    if (config.text.eos_token_id) g.stop_ids.push_back(static_cast<int32_t>(*config.text.eos_token_id));
    if (batch.several) return run_batch(*model, batch.prompts, g, o);
    const std::vector<int32_t>& prompt = batch.prompts.front();
    VOLT_ASSIGN_OR_RETURN(Session session, Session::create(*model, {.max_context = o.max_context}));
    VOLT_ASSIGN_OR_RETURN(GenerationResult r, generate(session, prompt, g));
    if (o.stats)
        std::fprintf(stderr, "prompt %lld tokens in %.3f s (%.1f tok/s); %zu new tokens in %.3f s (%.1f tok/s); stop: %s\n",
                     static_cast<long long>(r.prompt_tokens), r.prefill_seconds,
                     r.prompt_tokens / std::max(r.prefill_seconds, 1e-9), r.ids.size(), r.decode_seconds,
                     r.ids.size() / std::max(r.decode_seconds, 1e-9), stop_reason_name(r.reason));
    if (r.reason == StopReason::kContextFull)
        std::fprintf(stderr, "volt: note: stopped after %zu tokens: the context limit of %lld tokens is reached\n",
                     r.ids.size(), static_cast<long long>(session.max_context()));
    return write_ids_file(o.out, r.ids);
}

}  // namespace

CommandRunner add_generate_command(CLI::App& app) {
    auto o = std::make_shared<GenerateOptions>();
    CLI::App* cmd = app.add_subcommand("generate", "Generate token ids after a prompt of token ids");
    cmd->add_option("--model", o->model, "Model directory (config.json + safetensors)")->required();
    cmd->add_option("--ids-file", o->ids_file,
                    "Prompt: JSON array of token ids (or an array of such arrays: several prompts, batched)")
        ->required();
    cmd->add_option("--out", o->out, "Output: JSON array of the new token ids (an array of arrays for several prompts)")
        ->required();
    cmd->add_option("--max-batch", o->max_batch, "Several prompts: how many generate at once (continuous batching)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate at most")
        ->required()->check(CLI::NonNegativeNumber);
    auto* greedy = cmd->add_flag("--greedy", o->greedy, "Always take the most probable token");
    cmd->add_option("--temperature", o->temperature, "Sampling temperature (0 = greedy)")->excludes(greedy);
    cmd->add_option("--top-k", o->top_k, "Keep the k most probable tokens (0 = off)")->excludes(greedy);
    cmd->add_option("--top-p", o->top_p, "Nucleus sampling mass (1 = off)")->excludes(greedy);
    cmd->add_option("--min-p", o->min_p, "Drop tokens below min_p x the top probability (0 = off)")->excludes(greedy);
    cmd->add_option("--repetition-penalty", o->repetition_penalty, "Penalty for ids already in the sequence (1 = off)");
    cmd->add_option("--seed", o->seed, "Random seed (sampling is reproducible for a given seed)");
    cmd->add_option("--stop-id", o->stop_ids, "Stop after this id (repeatable; the config's eos_token_id is added)");
    cmd->add_option("--max-context", o->max_context, "Context limit in tokens (default: max_position_embeddings)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_flag("--stats", o->stats, "Print prefill/decode timing to stderr");
    add_device_options(cmd, &o->where);
    add_expert_weights_options(cmd, &o->experts_flags);
    return [o]() -> int {
        Status st = run_generate(*o);
        return st.is_ok() ? kExitOk : report_error(st);
    };
}

}  // namespace volt::cli
