// Names and free memory of the GPUs, for the device picker and the status bar. volt.h says how many GPUs Volt can
// use (volt_cuda_device_count) but not their memory, so this asks NVML, loaded at run time (libnvidia-ml.so.1 comes
// with the driver; without it the app shows no memory figures and works the same). NVML numbers GPUs in PCI bus
// order; CUDA does too when CUDA_DEVICE_ORDER=PCI_BUS_ID, which the app sets before Volt starts CUDA.
#pragma once

#include <QList>
#include <QString>

namespace volt::desktop {

struct GpuStatus {
    int index = 0;
    QString name;
    quint64 totalBytes = 0;
    quint64 freeBytes = 0;
    bool known = false;  // NVML answered
};

class GpuProbe {
public:
    // Any thread (NVML is thread-safe); may take tens of milliseconds, so the GUI calls it off its thread.
    static QList<GpuStatus> query(int count);
    static QString describe(const GpuStatus& g);  // "GPU 0 · NVIDIA H100 · 71.2 of 79.6 GiB free"
};

}  // namespace volt::desktop
