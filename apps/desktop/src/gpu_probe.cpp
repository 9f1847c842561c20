#include "gpu_probe.h"

#include <QLibrary>
#include <QMutex>
#include <QMutexLocker>

namespace volt::desktop {

namespace {

// The few NVML entry points used, with their C signatures (nvml.h is not needed to build).
struct NvmlMemory {
    unsigned long long total, free, used;
};
using NvmlInit = int (*)();
using NvmlHandleByIndex = int (*)(unsigned int, void**);
using NvmlMemoryInfo = int (*)(void*, NvmlMemory*);
using NvmlName = int (*)(void*, char*, unsigned int);

struct Nvml {
    bool ok = false;
    NvmlHandleByIndex handle = nullptr;
    NvmlMemoryInfo memory = nullptr;
    NvmlName name = nullptr;
};

const Nvml& nvml() {
    static QMutex mutex;
    static Nvml n;
    static bool tried = false;
    QMutexLocker lock(&mutex);
    if (tried) return n;
    tried = true;
    static QLibrary lib(QStringLiteral("nvidia-ml"), 1);
    if (!lib.load()) return n;
    auto init = reinterpret_cast<NvmlInit>(lib.resolve("nvmlInit_v2"));
    n.handle = reinterpret_cast<NvmlHandleByIndex>(lib.resolve("nvmlDeviceGetHandleByIndex_v2"));
    n.memory = reinterpret_cast<NvmlMemoryInfo>(lib.resolve("nvmlDeviceGetMemoryInfo"));
    n.name = reinterpret_cast<NvmlName>(lib.resolve("nvmlDeviceGetName"));
    n.ok = init && n.handle && n.memory && n.name && init() == 0;
    return n;
}

}  // namespace

QList<GpuStatus> GpuProbe::query(int count) {
    QList<GpuStatus> out;
    const Nvml& n = count > 0 ? nvml() : Nvml{};
    for (int i = 0; i < count; ++i) {
        GpuStatus g;
        g.index = i;
        void* dev = nullptr;
        if (n.ok && n.handle(unsigned(i), &dev) == 0) {
            char name[96] = {};
            NvmlMemory mem{};
            if (n.name(dev, name, sizeof name) == 0) g.name = QString::fromUtf8(name);
            if (n.memory(dev, &mem) == 0) {
                g.totalBytes = mem.total;
                g.freeBytes = mem.free;
                g.known = true;
            }
        }
        out.append(g);
    }
    return out;
}

QString GpuProbe::describe(const GpuStatus& g) {
    QString s = QObject::tr("GPU %1").arg(g.index);
    if (!g.name.isEmpty()) s += QStringLiteral(" · ") + g.name;
    if (g.known) {
        const double gib = 1024.0 * 1024.0 * 1024.0;
        s += QObject::tr(" · %1 of %2 GiB free").arg(g.freeBytes / gib, 0, 'f', 1).arg(g.totalBytes / gib, 0, 'f', 1);
    }
    return s;
}

}  // namespace volt::desktop
