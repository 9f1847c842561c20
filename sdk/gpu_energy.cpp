#include "sdk/gpu_energy.h"

#include <dlfcn.h>

#include <mutex>

namespace volt {
namespace {

// The few NVML entry points used, with NVML's C signatures (nvml.h: nvmlReturn_t is an int-sized enum, 0 = success;
// nvmlDevice_t an opaque pointer; NVML_CLOCK_SM = 1).
using NvmlInit = int (*)();
using NvmlByPci = int (*)(const char*, void**);
using NvmlEnergy = int (*)(void*, unsigned long long*);
using NvmlClock = int (*)(void*, int, unsigned int*);
using NvmlError = const char* (*)(int);

struct Nvml {
    NvmlByPci by_pci = nullptr;
    NvmlEnergy energy = nullptr;
    NvmlClock clock = nullptr;
    NvmlError error = nullptr;
    std::string failure;  // why NVML cannot be used; empty when it can
};

const Nvml& nvml() {
    static Nvml n;
    static std::once_flag once;
    std::call_once(once, [] {
        void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            n.failure = "libnvidia-ml.so.1 (NVML, part of the NVIDIA driver) cannot be opened";
            return;
        }
        auto init = reinterpret_cast<NvmlInit>(dlsym(h, "nvmlInit_v2"));
        n.by_pci = reinterpret_cast<NvmlByPci>(dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2"));
        n.energy = reinterpret_cast<NvmlEnergy>(dlsym(h, "nvmlDeviceGetTotalEnergyConsumption"));
        n.clock = reinterpret_cast<NvmlClock>(dlsym(h, "nvmlDeviceGetClockInfo"));
        n.error = reinterpret_cast<NvmlError>(dlsym(h, "nvmlErrorString"));
        if (!init || !n.by_pci || !n.energy || !n.clock || !n.error) {
            n.failure = "libnvidia-ml.so.1 lacks nvmlInit_v2, nvmlDeviceGetHandleByPciBusId_v2, "
                        "nvmlDeviceGetTotalEnergyConsumption or nvmlDeviceGetClockInfo";
            return;
        }
        if (const int rc = init(); rc != 0) n.failure = std::string("nvmlInit_v2: ") + n.error(rc);
    });
    return n;
}

}  // namespace

Expected<GpuEnergyMeter> GpuEnergyMeter::open(const std::string& pci_bus_id) {
    const Nvml& n = nvml();
    if (!n.failure.empty()) return unimplemented("GPU energy: ", n.failure);
    GpuEnergyMeter m;
    if (const int rc = n.by_pci(pci_bus_id.c_str(), &m.device_); rc != 0)
        return not_found("GPU energy: no GPU with PCI bus id ", pci_bus_id, " (NVML: ", n.error(rc), ")");
    VOLT_RETURN_IF_ERROR(m.joules().status());  // a GPU without the counter fails here, not mid-benchmark
    return m;
}

Expected<double> GpuEnergyMeter::joules() const {
    const Nvml& n = nvml();
    unsigned long long mj = 0;
    if (const int rc = n.energy(device_, &mj); rc != 0)
        return unimplemented("GPU energy: nvmlDeviceGetTotalEnergyConsumption: ", n.error(rc));
    return double(mj) * 1e-3;
}

Expected<int> GpuEnergyMeter::sm_clock_mhz() const {
    const Nvml& n = nvml();
    unsigned int mhz = 0;
    if (const int rc = n.clock(device_, 1, &mhz); rc != 0)
        return unimplemented("GPU clock: nvmlDeviceGetClockInfo: ", n.error(rc));
    return int(mhz);
}

}  // namespace volt
