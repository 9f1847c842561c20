// The safetensors format (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, N bytes
// of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data.
// The reader validates everything the reference implementation does (header cap, JSON, dtypes, shapes × dtype
// size == byte range, ranges inside the file, tensors covering the data section without gaps or overlaps) plus
// duplicate names, and names the file, tensor and problem in every error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "sdk/dtype.h"
#include "sdk/mapped_file.h"
#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt {

struct SafetensorsEntry {
    std::string name;
    DType dtype = DType::kF32;
    Shape shape;
    uint64_t begin = 0;  // byte offsets within the data section (after the header)
    uint64_t end = 0;
};

struct SafetensorsHeader {
    std::vector<SafetensorsEntry> tensors;  // in data-offset order
    std::map<std::string, std::string> metadata;
    uint64_t data_offset = 0;               // 8 + N
};

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;  // the reference implementation's cap

// Parses and validates the header of a complete file image. `label` names the file in errors.
Expected<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file, const std::string& label);

class SafetensorsFile {
public:
    static Expected<SafetensorsFile> open(const std::filesystem::path& path);
    static Expected<SafetensorsFile> from_mapping(std::shared_ptr<MappedFile> file);

    const std::string& path() const { return file_->path(); }
    const std::vector<SafetensorsEntry>& tensors() const { return header_.tensors; }
    const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
    const SafetensorsEntry* find(const std::string& name) const;
    // Zero-copy CPU view of a tensor; keeps the mapping alive.
    Tensor view(const SafetensorsEntry& entry) const;
    size_t file_size() const { return file_->size(); }

private:
    std::shared_ptr<MappedFile> file_;
    SafetensorsHeader header_;
    std::unordered_map<std::string, size_t> index_;
};

// Writes tensors (any device-CPU tensors; contiguous or not) to a safetensors file in the canonical layout:
// names sorted, data packed in that order, header padded with spaces to a multiple of 8 bytes.
struct NamedTensor {
    std::string name;
    Tensor tensor;
};
Status write_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                         const std::map<std::string, std::string>& metadata = {});

}  // namespace volt
