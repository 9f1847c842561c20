// A model checkpoint: one model.safetensors, or model.safetensors.index.json plus the shards it names. Every shard
// is mmapped; tensors are zero-copy views. The index must name shards that exist, inside the model directory, and
// every tensor it lists must be in the shard it names.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "sdk/safetensors.h"

namespace volt {

// The weight_map of a model.safetensors.index.json: tensor name -> shard file name, validated (JSON object,
// non-empty, every shard a plain file name inside the model directory). Pure: no file access, so it can be fuzzed.
Expected<std::vector<std::pair<std::string, std::string>>> parse_safetensors_index(std::string_view text,
                                                                                   const std::string& label);

class Checkpoint {
public:
    Checkpoint() = default;
    Checkpoint(Checkpoint&&) = default;
    Checkpoint& operator=(Checkpoint&&) = default;
    Checkpoint(const Checkpoint&) = delete;  // entries point into files_: moves keep them valid, copies would not
    Checkpoint& operator=(const Checkpoint&) = delete;

    // Opens `dir`/model.safetensors.index.json if present, else `dir`/model.safetensors.
    static Expected<Checkpoint> open(const std::filesystem::path& dir);
    static bool exists_in(const std::filesystem::path& dir);  // either file is present

    struct Entry {
        const SafetensorsFile* file;
        const SafetensorsEntry* info;
    };
    const Entry* find(const std::string& name) const;
    Expected<Tensor> view(const std::string& name) const;  // NOT_FOUND naming the tensor and checkpoint
    std::vector<std::string> names() const;                // sorted
    size_t num_tensors() const { return entries_.size(); }
    const std::vector<SafetensorsFile>& files() const { return files_; }
    const std::string& description() const { return description_; }  // the index or file path, for messages

private:
    std::vector<SafetensorsFile> files_;
    std::unordered_map<std::string, Entry> entries_;
    std::string description_;
};

}  // namespace volt
