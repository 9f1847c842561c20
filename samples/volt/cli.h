// Shared pieces of the `volt` commands: exit codes (design.md) and error reporting.
#pragma once

#include <CLI/CLI.hpp>

#include "sdk/status.h"
#include "text/backbone.h"
#include "text/expert_weights.h"

namespace volt::cli {

enum ExitCode : int {
    kExitOk = 0,
    kExitInternal = 1,
    kExitUsage = 2,
    kExitBadInput = 3,
    kExitResourceExhausted = 4,
    kExitCancelled = 5,
};

int exit_code_for(const Status& status);
// Prints "volt: <message>" to stderr and returns the exit code for the status.
int report_error(const Status& status);

// --device cpu|cuda, --gpus N and --gpu-ids 1 / 2,5: where a command runs. add_device_options registers the three on
// `cmd` (device_help: the --device text of a command that runs on one kind of device only); device_choice() resolves
// them (parse_device_choice, text/backbone.h: --gpu-ids without --device cuda, or disagreeing with --gpus, is refused)
// and, for a command that runs on one GPU (one_gpu: its name), refuses more than one.
struct DeviceFlags {
    std::string device = "cpu";  // set before add_device_options for another default
    int gpus = 1;
    std::string gpu_ids;  // the GPUs in rank order instead of 0 .. gpus - 1
};
void add_device_options(CLI::App* cmd, DeviceFlags* flags, const char* device_help = nullptr);
Expected<DeviceChoice> device_choice(const DeviceFlags& flags, const char* one_gpu = nullptr);

// --expert-weights bf16|fp8|int8 and its shorthand --fp8-experts (CUDA): how the model keeps its experts on the GPU
// (text/expert_weights.h). add_expert_weights_options registers both on `cmd`; expert_weights() resolves them.
struct ExpertWeightsFlags {
    std::string name;  // "" = bf16
    bool fp8 = false;
};
void add_expert_weights_options(CLI::App* cmd, ExpertWeightsFlags* flags);
Expected<ExpertWeights> expert_weights(const ExpertWeightsFlags& flags);

// Each command registers its subcommand and returns the function that runs it after parsing.
using CommandRunner = std::function<int()>;
CommandRunner add_info_command(CLI::App& app);
CommandRunner add_tokenize_command(CLI::App& app);
CommandRunner add_detokenize_command(CLI::App& app);
CommandRunner add_logits_command(CLI::App& app);
CommandRunner add_generate_command(CLI::App& app);
CommandRunner add_embed_image_command(CLI::App& app);
CommandRunner add_run_command(CLI::App& app);
CommandRunner add_bench_command(CLI::App& app);
// `volt bench e2e` (a subcommand of `bench`); its runner returns -1 when e2e was not the subcommand parsed.
CommandRunner add_bench_e2e_command(CLI::App* bench);

}  // namespace volt::cli
