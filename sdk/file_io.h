// Small host I/O helpers every module uses: reading a whole file with an error that names it, and the memory the
// host has available (for refusing a load up front instead of being killed halfway through it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "sdk/status.h"

namespace volt {

// The file's bytes. NOT_FOUND "<path>: no such file" / INVALID_ARGUMENT "<path>: cannot read: <reason>";
// RESOURCE_EXHAUSTED when it is larger than `max_bytes`.
Expected<std::string> read_file(const std::filesystem::path& path, uint64_t max_bytes = uint64_t(1) << 34);

// MemAvailable of /proc/meminfo in bytes; 0 when unknown.
uint64_t available_host_memory();

}  // namespace volt
