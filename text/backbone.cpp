#include "text/backbone.h"

#include <algorithm>

#include "text/minimax_text_model.h"
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include "text/cuda/minimax_text_model_cuda.h"
#endif

namespace volt {

Expected<std::unique_ptr<CausalLM>> load_backbone(const std::filesystem::path& dir, Device device,
                                                  bool language_model_of_vl, int gpus, ExpertWeights expert_weights,
                                                  const std::function<Status(float)>& progress,
                                                  std::span<const int> gpu_ids) {
    if (device.is_cpu()) {
        if (gpus != 1 || !gpu_ids.empty())
            return invalid_argument(dir.string(), ": ", gpus, " GPUs asked for with the CPU device");
        if (expert_weights != ExpertWeights::kBf16)
            return invalid_argument(dir.string(), ": ", expert_weights_name(expert_weights),
                                    " expert weights need the CUDA device (--device cuda)");
        VOLT_ASSIGN_OR_RETURN(auto cpu, MiniMaxTextModel::load(dir, {.language_model_of_vl = language_model_of_vl,
                                                                     .progress = progress}));
        return std::unique_ptr<CausalLM>(std::move(cpu));
    }
    if (!gpu_ids.empty() && (gpus != static_cast<int>(gpu_ids.size()) || device.index != gpu_ids.front()))
        return invalid_argument(dir.string(), ": ", gpu_ids.size(), " GPU ids from GPU ", gpu_ids.front(),
                                " given with device cuda:", device.index, " and a count of ", gpus,
                                " (expected cuda:", gpu_ids.front(), " and ", gpu_ids.size(), ")");
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
    // Under a launcher (VOLT_WORLD_SIZE / mpirun's variables), this process is one of several sharing the split;
    // its GPUs are the local_rank-th group of `gpus` from device.index.
    auto processes = ProcessGroup::from_environment();
    if (!processes) return processes.status().with_context(dir.string());
    // With gpu_ids, they are this process's own GPUs.
    const int first = !gpu_ids.empty() ? gpu_ids.front()
                                       : device.index + (processes->size > 1 ? processes->local_rank * gpus : 0);
    VOLT_ASSIGN_OR_RETURN(auto gpu, MiniMaxTextModelCuda::load(dir, {.device = first, .gpus = gpus,
                                                                     .device_ids = {gpu_ids.begin(), gpu_ids.end()},
                                                                     .language_model_of_vl = language_model_of_vl,
                                                                     .expert_weights = expert_weights,
                                                                     .processes = *processes,
                                                                     .progress = progress}));
    return std::unique_ptr<CausalLM>(std::move(gpu));
#else
    return unimplemented(dir.string(), ": this build has no CUDA backend (configured without CUDA); use the CPU");
#endif
}

Expected<std::vector<int>> parse_gpu_ids(const std::string& text) {
    std::vector<int> ids;
    if (text.empty()) return ids;
    size_t at = 0;
    while (at <= text.size()) {
        const size_t end = std::min(text.find(',', at), text.size());
        const std::string item = text.substr(at, end - at);
        if (item.empty() || item.size() > 6 || item.find_first_not_of("0123456789") != std::string::npos)
            return invalid_argument("--gpu-ids '", text, "': '", item, "' is not a GPU index; expected distinct ",
                                    "indices in rank order, e.g. 2,5");
        const int id = std::stoi(item);
        if (std::find(ids.begin(), ids.end(), id) != ids.end())
            return invalid_argument("--gpu-ids '", text, "': GPU ", id, " is listed twice (each GPU holds one rank)");
        ids.push_back(id);
        at = end + 1;
    }
    return ids;
}

Expected<DeviceChoice> parse_device_choice(const std::string& name, int gpus, const std::string& gpu_ids) {
    DeviceChoice c;
    VOLT_ASSIGN_OR_RETURN(c.gpu_ids, parse_gpu_ids(gpu_ids));
    if (c.gpu_ids.empty()) {
        VOLT_ASSIGN_OR_RETURN(c.device, parse_device(name, gpus));
        c.gpus = gpus;
        return c;
    }
    if (name != "cuda") return invalid_argument("--gpu-ids ", gpu_ids, " needs --device cuda");
    if (gpus != 1 && gpus != static_cast<int>(c.gpu_ids.size()))
        return invalid_argument("--gpus ", gpus, " and --gpu-ids ", gpu_ids, " (", c.gpu_ids.size(), " GPUs) disagree");
    c.gpus = static_cast<int>(c.gpu_ids.size());
    c.device = Device::cuda(c.gpu_ids.front());
    return c;
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
