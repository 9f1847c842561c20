#include "text/backbone.h"

#include "text/minimax_text_model.h"
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include "text/cuda/minimax_text_model_cuda.h"
#endif

namespace volt {

Expected<std::unique_ptr<CausalLM>> load_backbone(const std::filesystem::path& dir, Device device,
                                                  bool language_model_of_vl, int gpus, bool fp8_experts,
                                                  const std::function<Status(float)>& progress) {
    if (device.is_cpu()) {
        if (gpus != 1) return invalid_argument(dir.string(), ": ", gpus, " GPUs asked for with the CPU device");
        if (fp8_experts) return invalid_argument(dir.string(), ": FP8 experts need the CUDA device (--device cuda)");
        VOLT_ASSIGN_OR_RETURN(auto cpu, MiniMaxTextModel::load(dir, {.language_model_of_vl = language_model_of_vl,
                                                                     .progress = progress}));
        return std::unique_ptr<CausalLM>(std::move(cpu));
    }
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
    // Under a launcher (VOLT_WORLD_SIZE / mpirun's variables), this process is one of several sharing the split;
    // its GPUs are the local_rank-th group of `gpus` from device.index.
    auto processes = ProcessGroup::from_environment();
    if (!processes) return processes.status().with_context(dir.string());
    const int first = device.index + (processes->size > 1 ? processes->local_rank * gpus : 0);
    VOLT_ASSIGN_OR_RETURN(auto gpu, MiniMaxTextModelCuda::load(dir, {.device = first, .gpus = gpus,
                                                                     .language_model_of_vl = language_model_of_vl,
                                                                     .fp8_experts = fp8_experts,
                                                                     .processes = *processes,
                                                                     .progress = progress}));
    return std::unique_ptr<CausalLM>(std::move(gpu));
#else
    return unimplemented(dir.string(), ": this build has no CUDA backend (configured without CUDA); use the CPU");
#endif
}

Expected<Device> parse_device(const std::string& name, int gpus) {
    if (name == "cpu") {
        if (gpus != 1) return invalid_argument("--gpus ", gpus, " needs --device cuda");
        return Device::cpu();
    }
    if (name != "cuda") return invalid_argument("device '", name, "': expected cpu or cuda");
    if (gpus < 1) return invalid_argument("--gpus ", gpus, ": at least 1");
    return Device::cuda(0);
}

}  // namespace volt
