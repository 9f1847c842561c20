#include "samples/volt/cli.h"

#include <cstdio>

namespace volt::cli {

int exit_code_for(const Status& status) {
    switch (status.code()) {
        case StatusCode::kOk: return kExitOk;
        case StatusCode::kInvalidArgument:
        case StatusCode::kNotFound:
        case StatusCode::kDataLoss:
        case StatusCode::kUnimplemented: return kExitBadInput;
        case StatusCode::kResourceExhausted: return kExitResourceExhausted;
        case StatusCode::kCancelled: return kExitCancelled;
        case StatusCode::kInternal: return kExitInternal;
    }
    return kExitInternal;
}

int report_error(const Status& status) {
    std::fprintf(stderr, "volt: %s\n", status.message().c_str());
    return exit_code_for(status);
}

void add_device_options(CLI::App* cmd, DeviceFlags* flags, const char* device_help) {
    cmd->add_option("--device", flags->device, device_help ? device_help : "cpu or cuda (builds with CUDA)")
        ->check(CLI::IsMember({"cpu", "cuda"}));
    cmd->add_option("--gpus", flags->gpus,
                    "GPUs for --device cuda (more than one: the model split over them, tensor + expert parallel, "
                    "NCCL)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--gpu-ids", flags->gpu_ids,
                    "CUDA GPUs in rank order (e.g. 1, or 2,5 to split over two); instead of --gpus N from GPU 0");
}

Expected<DeviceChoice> device_choice(const DeviceFlags& flags, const char* one_gpu) {
    VOLT_ASSIGN_OR_RETURN(DeviceChoice dc, parse_device_choice(flags.device, flags.gpus, flags.gpu_ids));
    if (one_gpu && dc.gpus > 1)
        return invalid_argument(one_gpu, " runs on one GPU, but ",
                                flags.gpu_ids.empty() ? "--gpus " + std::to_string(flags.gpus)
                                                      : "--gpu-ids " + flags.gpu_ids,
                                " asks for ", dc.gpus, ": give one (--gpu-ids N picks which)");
    return dc;
}

void add_expert_weights_options(CLI::App* cmd, ExpertWeightsFlags* flags) {
    cmd->add_option("--expert-weights", flags->name,
                    "With --device cuda: expert weights as loaded (bf16), or quantised at load with 128 x 128 block "
                    "scales: fp8 (e4m3; on Hopper, prompts of more than 64 tokens also quantise the activations for "
                    "FP8 tensor-core GEMMs, ~1.4x bf16 prefill: VOLT_MOE_FP8_PREFILL=dequantize keeps them bf16; "
                    "VOLT_MOE_FP8_DECODE=fp8_activations quantises them in decode batches too, up to 7% faster experts "
                    "at 64 tokens for a third more error) or int8 (weight-only; about a third of FP8's error at the "
                    "same size)")
        ->check(CLI::IsMember({"bf16", "fp8", "int8"}));
    cmd->add_flag("--fp8-experts", flags->fp8, "Same as --expert-weights fp8");
}

Expected<ExpertWeights> expert_weights(const ExpertWeightsFlags& flags) {
    return parse_expert_weights(flags.name, flags.fp8);
}

}  // namespace volt::cli
