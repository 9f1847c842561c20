// volt run --model DIR [--image FILE]... [--doc FILE]... (--prompt TEXT | --prompt-file F) [--system TEXT] [sampling...]
// Asks one question (about images with a MiniMax-VL-01 model, and documents) and streams the answer to stdout as it
// is generated (complete UTF-8 characters only).
// The first Ctrl+C stops generating (exit 5, what was generated stays printed); a second one exits at once.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "samples/volt/cli.h"
#include "sdk/engine/chat_session.h"
#include "sdk/file_io.h"
#include "sdk/log.h"
#include "text/backbone.h"

namespace volt::cli {
namespace {

struct RunOptions {
    std::string model, prompt, prompt_file, system;
    std::vector<std::string> images, docs;
    int64_t max_new_tokens = 512, top_k = 0, max_context = 0, max_image_tokens = 0;
    float temperature = 0.7f, top_p = 1.0f, min_p = 0.0f, repetition_penalty = 1.0f;
    uint64_t seed = 0;
    DeviceFlags where;  // --device, --gpus, --gpu-ids
    ExpertWeightsFlags experts_flags;  // --expert-weights, --fp8-experts
    bool verbose = false;
};

ChatSession* g_active = nullptr;  // for the SIGINT handler: cancel() only touches atomics
volatile std::sig_atomic_t g_interrupts = 0;

extern "C" void on_sigint(int) {
    g_interrupts = g_interrupts + 1;  // (++ on a volatile is deprecated in C++20)
    if (g_interrupts > 1) std::_Exit(130);
    if (g_active) g_active->cancel();
}

Expected<std::string> read_prompt(const RunOptions& o) {
    if (!o.prompt_file.empty()) return read_file(o.prompt_file);
    return o.prompt;
}

Status run(const RunOptions& o) {
    VOLT_ASSIGN_OR_RETURN(const DeviceChoice dc, device_choice(o.where));
    const Device device = dc.device;
    VOLT_ASSIGN_OR_RETURN(std::string prompt, read_prompt(o));
    if (prompt.empty()) return invalid_argument("the prompt is empty (--prompt or --prompt-file)");
    GenerationOptions g;
    g.max_new_tokens = o.max_new_tokens;
    g.seed = o.seed;
    g.sampling = {.temperature = o.temperature, .top_k = o.top_k, .top_p = o.top_p, .min_p = o.min_p,
                  .repetition_penalty = o.repetition_penalty};
    VOLT_RETURN_IF_ERROR(validate(g.sampling).with_context("sampling options"));

    VOLT_ASSIGN_OR_RETURN(const ExpertWeights experts, expert_weights(o.experts_flags));
    VOLT_ASSIGN_OR_RETURN(auto model, ChatModel::load(o.model, {}, device, dc.gpus, experts, dc.gpu_ids));
    VOLT_ASSIGN_OR_RETURN(ChatSession chat,
                          ChatSession::create(*model, ChatSessionOptions{.session = {.max_context = o.max_context},
                                                                         .max_tokens_per_image = o.max_image_tokens}));
    if (!o.system.empty()) VOLT_RETURN_IF_ERROR(chat.add_message(Role::kSystem, o.system));
    for (const std::string& image : o.images) {
        VOLT_ASSIGN_OR_RETURN(int64_t tokens, chat.attach_image(image));
        if (o.verbose) std::fprintf(stderr, "[%s: %lld tokens]\n", image.c_str(), static_cast<long long>(tokens));
    }
    for (const std::string& doc : o.docs) {
        VOLT_ASSIGN_OR_RETURN(int64_t tokens, chat.attach_document(doc));
        if (o.verbose) std::fprintf(stderr, "[%s: %lld tokens]\n", doc.c_str(), static_cast<long long>(tokens));
    }
    VOLT_RETURN_IF_ERROR(chat.add_message(Role::kUser, prompt));
    VOLT_ASSIGN_OR_RETURN(int64_t prompt_tokens, chat.count_prompt_tokens());
    const int64_t limit = chat.session().max_context();
    if (prompt_tokens >= limit)
        return resource_exhausted("the prompt takes ", prompt_tokens, " tokens; the context holds ", limit,
                                  " (images, documents and prompt must leave room for the answer)");

    g_active = &chat;
    std::signal(SIGINT, on_sigint);
    auto reply = chat.reply(g, [](int32_t, std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
    });
    g_active = nullptr;
    std::signal(SIGINT, SIG_DFL);
    if (!reply) return reply.status();
    const StreamedGeneration& gen = reply->generation;
    std::fwrite(gen.tail.data(), 1, gen.tail.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    const GenerationResult& r = gen.result;
    if (o.verbose)
        std::fprintf(stderr, "[prompt %lld tokens in %.2f s; %zu new tokens, %.1f tok/s; stop: %s]\n",
                     static_cast<long long>(r.prompt_tokens), r.prefill_seconds, r.ids.size(),
                     r.ids.size() / std::max(r.decode_seconds, 1e-9), stop_reason_name(r.reason));
    if (r.reason == StopReason::kCancelled) return cancelled("interrupted");
    return Status::ok();
}

}  // namespace

CommandRunner add_run_command(CLI::App& app) {
    auto o = std::make_shared<RunOptions>();
    CLI::App* cmd = app.add_subcommand("run", "Ask a question (about images and documents) and stream the answer");
    cmd->add_option("--model", o->model, "Model directory (config.json, safetensors, tokenizer, chat template)")->required();
    auto* p = cmd->add_option("--prompt", o->prompt, "The question");
    auto* pf = cmd->add_option("--prompt-file", o->prompt_file, "Read the question from a file");
    p->excludes(pf);
    cmd->add_option("--image", o->images, "An image to ask about (repeatable, in order; MiniMax-VL-01 models)");
    cmd->add_option("--max-image-tokens", o->max_image_tokens,
                    "Refuse an image that takes more tokens than this (0: no limit; never downscaled)")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--doc", o->docs, "A document (PDF, .txt, .md) to put before the question (repeatable)");
    cmd->add_option("--system", o->system, "System prompt");
    cmd->add_option("--max-new-tokens", o->max_new_tokens, "Tokens to generate at most")->check(CLI::NonNegativeNumber);
    cmd->add_option("--temperature", o->temperature, "Sampling temperature (0: greedy)");
    cmd->add_option("--top-p", o->top_p, "Nucleus sampling mass");
    cmd->add_option("--top-k", o->top_k, "Sample among the k most likely tokens (0: off)");
    cmd->add_option("--min-p", o->min_p, "Drop tokens below this fraction of the top probability");
    cmd->add_option("--repetition-penalty", o->repetition_penalty, "Penalty for tokens already in the context");
    cmd->add_option("--seed", o->seed, "Random seed (same seed, same answer)");
    cmd->add_option("--max-context", o->max_context, "Tokens the conversation may hold (0: the model's maximum)");
    add_device_options(cmd, &o->where);
    add_expert_weights_options(cmd, &o->experts_flags);
    cmd->add_flag("-v,--verbose", o->verbose, "Print token counts and speed to stderr");
    return [o, p, pf]() -> int {
        if (p->count() == 0 && pf->count() == 0) {
            std::fprintf(stderr, "volt run: --prompt or --prompt-file is required\n");
            return kExitUsage;
        }
        Status s = run(*o);
        return s.is_ok() ? kExitOk : report_error(s);
    };
}

}  // namespace volt::cli
