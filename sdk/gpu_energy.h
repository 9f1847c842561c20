// A GPU's energy counter through NVML (the driver's libnvidia-ml.so.1, opened at run time, so nothing links against
// it and machines without a driver build and run as before). Benchmarks of power-bound work read it around a series
// of runs: a GPU held at its power cap trades clock for power, so joules per run is the measure that does not depend
// on how warm the GPU was when a series started (bench/vision_notes.md, "Sustained runs and energy").
#pragma once

#include <string>

#include "sdk/status.h"

namespace volt {

class GpuEnergyMeter {
public:
    // The GPU with this PCI bus id (as cudaDeviceGetPCIBusId writes it, e.g. "0000:18:00.0"). Errors: NVML missing
    // (no driver), the GPU not found, or a GPU without an energy counter (before Volta).
    static Expected<GpuEnergyMeter> open(const std::string& pci_bus_id);

    // Joules the GPU has used since the driver loaded (the counter has millijoule steps; NVML updates it every few
    // milliseconds, so differences over series of >= ~100 ms are meaningful).
    Expected<double> joules() const;

    // The GPU's SM clock now, MHz.
    Expected<int> sm_clock_mhz() const;

private:
    void* device_ = nullptr;  // nvmlDevice_t
};

}  // namespace volt
