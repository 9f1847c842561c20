// A read-only memory mapping of a whole file. Checkpoint tensors are zero-copy views into it; the mapping lives as
// long as any view (Tensor keep-alive) or holder does.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "sdk/status.h"

namespace volt {

class MappedFile {
public:
    static Expected<std::shared_ptr<MappedFile>> open(const std::filesystem::path& path);
    // Wraps bytes already in memory (fuzzing, tests); the copy is owned by the object.
    static std::shared_ptr<MappedFile> from_bytes(std::string label, std::span<const std::byte> bytes);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::byte* data() const { return data_; }
    size_t size() const { return size_; }
    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::string& path() const { return path_; }  // for error messages

private:
    MappedFile() = default;
    const std::byte* data_ = nullptr;
    size_t size_ = 0;
    bool mmapped_ = false;
    std::unique_ptr<std::byte[]> owned_;
    std::string path_;
};

}  // namespace volt
