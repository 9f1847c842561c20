// volt logits --model DIR --ids-file IDS.json --out LOGITS.npy [--incremental N] [--image FILE]... [--device cpu|cuda]
// fp32 logits [n_tokens, vocab] of a full forward; with --incremental N the first N ids are prefilled and every
// further id runs as one decode step (the rows are then the prefill's followed by each step's).
// MiniMax-VL-01: each image-token id stands for the next --image and expands to that image's tokens; the text
// backbone then runs on the token embeddings with the image features spliced in, and the rows cover the expanded
// sequence (N of --incremental counts expanded positions).
#include <algorithm>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "samples/volt/cli.h"
#include "sdk/file_io.h"
#include "samples/volt/ids_file.h"
#include "sdk/engine/session.h"
#include "sdk/npy.h"
#include "text/backbone.h"
#include "vision/image_prompt.h"
#include "vision/vl_image_encoder.h"

namespace volt::cli {
namespace {

struct LogitsOptions {
    std::string model, ids_file, out;
    std::vector<std::string> images;
    int64_t incremental = -1;
    DeviceFlags where;  // --device, --gpus, --gpu-ids
    ExpertWeightsFlags experts_flags;  // --expert-weights, --fp8-experts
};


Status run_logits(const LogitsOptions& o) {
    VOLT_ASSIGN_OR_RETURN(const DeviceChoice dc, device_choice(o.where));
    const Device device = dc.device;
    VOLT_ASSIGN_OR_RETURN(std::vector<int32_t> ids, read_ids_file(o.ids_file));
    int64_t n = static_cast<int64_t>(ids.size());
    if (o.incremental > n && o.images.empty())
        return invalid_argument("--incremental ", o.incremental, ": larger than the ", n, " ids in ", o.ids_file);
    VOLT_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(o.model));
    if (!config.is_vl() && !o.images.empty())
        return invalid_argument("--image: ", o.model, " is a MiniMax-Text-01 (text-only) model; images need MiniMax-VL-01");
    VOLT_ASSIGN_OR_RETURN(const ExpertWeights experts, expert_weights(o.experts_flags));
    VOLT_ASSIGN_OR_RETURN(auto model, load_backbone(o.model, device, /*language_model_of_vl=*/true, dc.gpus, experts,
                                                    {}, dc.gpu_ids));
    VOLT_ASSIGN_OR_RETURN(Session session, Session::create(*model));
    const int64_t V = model->vocab_size();
    // VL: expand image tokens and build the spliced input embeddings (text-only prompts of a VL model too).
    Tensor embeds;
    if (config.is_vl()) {
        VOLT_ASSIGN_OR_RETURN(auto encoder, vision::VLImageEncoder::load(o.model, device));
        std::vector<Tensor> features;
        std::vector<int64_t> counts;
        for (const std::string& path : o.images) {
            auto e = encoder->encode_file(path);
            if (!e) return e.status().with_context(str_cat("--image ", path));
            counts.push_back(e->features.dim(0));
            features.push_back(std::move(e->features));
        }
        VOLT_ASSIGN_OR_RETURN(vision::ExpandedPrompt prompt,
                              vision::expand_image_tokens(ids, static_cast<int32_t>(config.vl->image_token_index), counts));
        VOLT_ASSIGN_OR_RETURN(embeds, model->embed(prompt.ids));
        VOLT_RETURN_IF_ERROR(vision::splice_image_features(embeds, prompt, features));
        ids = std::move(prompt.ids);
        n = static_cast<int64_t>(ids.size());
        if (o.incremental > n)
            return invalid_argument("--incremental ", o.incremental, ": larger than the ", n, " expanded positions");
    }
    // Runs positions [begin, end) from ids, or from the spliced embeddings for VL models.
    auto run = [&](int64_t begin, int64_t end, LogitsMode mode) -> Expected<Tensor> {
        const auto piece = std::span<const int32_t>(ids).subspan(begin, end - begin);
        if (!embeds.defined() || embeds.numel() == 0) return session.append(piece, mode);
        VOLT_ASSIGN_OR_RETURN(Tensor rows, embeds.slice(0, begin, end));
        return session.append_embeddings(rows, piece, mode);
    };
    const int64_t prefill = o.incremental < 0 ? n : o.incremental;
    // The output holds n x vocab floats (plus the prefill's rows while --incremental copies them): refuse before
    // the OOM killer does.
    const uint64_t rows = static_cast<uint64_t>(n + (prefill < n ? prefill : 0));
    const uint64_t need = rows * static_cast<uint64_t>(V) * sizeof(float);
    if (const uint64_t avail = available_host_memory(); avail && need > avail)
        return resource_exhausted("logits of ", n, " tokens x ", V, " vocab need ", need >> 20, " MiB of host memory; ",
                                  avail >> 20, " MiB is available");
    if (prefill == n) {  // one prefill: its [n, vocab] result is the output
        VOLT_ASSIGN_OR_RETURN(Tensor logits, run(0, n, LogitsMode::kAll));
        return write_npy(o.out, logits);
    }
    VOLT_ASSIGN_OR_RETURN(Tensor logits, Tensor::empty({n, V}, DType::kF32));
    float* dst = logits.data_as<float>();
    if (prefill > 0) {
        VOLT_ASSIGN_OR_RETURN(Tensor first, run(0, prefill, LogitsMode::kAll));
        std::copy_n(first.data_as<float>(), prefill * V, dst);
    }
    for (int64_t i = prefill; i < n; ++i) {
        VOLT_ASSIGN_OR_RETURN(Tensor row, run(i, i + 1, LogitsMode::kLast));
        std::copy_n(row.data_as<float>(), V, dst + i * V);
    }
    return write_npy(o.out, logits);
}

}  // namespace

CommandRunner add_logits_command(CLI::App& app) {
    auto o = std::make_shared<LogitsOptions>();
    CLI::App* cmd = app.add_subcommand("logits", "Write the fp32 logits [n_tokens, vocab] of a token sequence to .npy");
    cmd->add_option("--model", o->model, "Model directory (config.json + safetensors)")->required();
    cmd->add_option("--ids-file", o->ids_file, "JSON array of token ids")->required();
    cmd->add_option("--out", o->out, "Output .npy (float32 [n_tokens, vocab])")->required();
    cmd->add_option("--incremental", o->incremental,
                    "Prefill the first N ids, then run one decode step per remaining id")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--image", o->images, "Image for each image-token id, in order (MiniMax-VL-01 only)");
    add_device_options(cmd, &o->where);
    add_expert_weights_options(cmd, &o->experts_flags);
    return [o]() -> int {
        Status st = run_logits(*o);
        return st.is_ok() ? kExitOk : report_error(st);
    };
}

}  // namespace volt::cli
