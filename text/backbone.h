// One entry point for the MiniMax-Text-01 backbone on any device: the CPU backend (text/minimax_text_model.h) or
// one or several GPUs (text/cuda/minimax_text_model_cuda.h, builds with CUDA; several need NCCL). MiniMax-VL-01 directories load their
// language_model.* backbone (images are the caller's: vision/).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sdk/engine/causal_lm.h"
#include "sdk/tensor.h"
#include "text/expert_weights.h"

namespace volt {

// INVALID_ARGUMENT for a CUDA device that does not exist; UNIMPLEMENTED for CUDA in a build without it or for
// shapes its kernels do not run; the backends' own load errors otherwise (all naming the directory).
// `language_model_of_vl` false: VL-01 directories are refused (UNIMPLEMENTED), for commands whose ids cannot carry
// images. `gpus` > 1 (CUDA only): the model split over GPUs device.index .. device.index + gpus - 1. Under a launcher
// that sets VOLT_WORLD_SIZE / VOLT_RANK (or mpirun's OMPI_COMM_WORLD_*), the split spans every process's GPUs
// (sdk/nccl_group.h ProcessGroup); each process then runs the same calls on the same inputs.
// `expert_weights` (CUDA only): expert weights quantised at load to FP8 or int8 (text/expert_weights.h).
// `progress` (may be empty) is told the fraction of the weights loaded; an error it returns stops the load.
// `gpu_ids` (CUDA; may be empty): this process's GPUs in rank order instead of device.index .. + gpus - 1, any
// distinct devices (e.g. {2, 5}); then `gpus` is its size and device.index its first entry.
Expected<std::unique_ptr<CausalLM>> load_backbone(const std::filesystem::path& dir, Device device = Device::cpu(),
                                                  bool language_model_of_vl = true, int gpus = 1,
                                                  ExpertWeights expert_weights = ExpertWeights::kBf16,
                                                  const std::function<Status(float)>& progress = {},
                                                  std::span<const int> gpu_ids = {});

// "cpu" or "cuda" with a GPU count, as the CLI takes them: the (first) device to load on. INVALID_ARGUMENT for
// another name, a count below 1, or several GPUs with the CPU.
Expected<Device> parse_device(const std::string& name, int gpus = 1);

// The CLI's --gpu-ids: distinct CUDA device indices in rank order, comma-separated ("1", "2,5", "1,0"); "" gives
// none (--gpus N counts from GPU 0). INVALID_ARGUMENT naming the text for anything else. Whether they exist is checked
// where the model loads.
Expected<std::vector<int>> parse_gpu_ids(const std::string& text);

// --device, --gpus and --gpu-ids together (parse_device, parse_gpu_ids): the device to load on (with ids: cuda at
// the first), the GPU count (with ids: their number; INVALID_ARGUMENT when --gpus says otherwise) and the ids.
struct DeviceChoice {
    Device device = Device::cpu();
    int gpus = 1;
    std::vector<int> gpu_ids;  // empty: GPUs device.index .. + gpus - 1
};
Expected<DeviceChoice> parse_device_choice(const std::string& name, int gpus, const std::string& gpu_ids);

}  // namespace volt
