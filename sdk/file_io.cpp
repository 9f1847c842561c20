#include "sdk/file_io.h"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace volt {

Expected<std::string> read_file(const std::filesystem::path& path, uint64_t max_bytes) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return not_found(path.string(), ": no such file");
    if (std::filesystem::is_directory(path, ec)) return invalid_argument(path.string(), ": is a directory, not a file");
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return invalid_argument(path.string(), ": cannot read: ", ec.message());
    if (size > max_bytes) return resource_exhausted(path.string(), ": ", size, " bytes exceeds the limit of ", max_bytes);
    std::ifstream in(path, std::ios::binary);
    if (!in) return invalid_argument(path.string(), ": cannot read: ", std::strerror(errno));
    std::string bytes(size, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(size));
    if (static_cast<uint64_t>(in.gcount()) != size) return data_loss(path.string(), ": short read (file changed while reading?)");
    return bytes;
}

uint64_t available_host_memory() {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    uint64_t kib = 0;
    while (in >> key >> kib >> unit)
        if (key == "MemAvailable:") return kib * 1024;
    return 0;
}

}  // namespace volt
