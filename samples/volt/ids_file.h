// Token-id files of the CLI (design.md): a JSON array of integers. Shared by the commands that read or write them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/file_io.h"
#include "sdk/status.h"

namespace volt::cli {

// INVALID_ARGUMENT / NOT_FOUND naming the file and what is wrong (not an array, a non-integer element, empty).
inline Expected<std::vector<int32_t>> read_ids_file(const std::filesystem::path& path) {
    VOLT_ASSIGN_OR_RETURN(const std::string text, read_file(path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return invalid_argument(path.string(), ": not valid JSON (expected an array of token ids)");
    if (!j.is_array()) return invalid_argument(path.string(), ": expected a JSON array of token ids, found ", j.type_name());
    if (j.empty()) return invalid_argument(path.string(), ": the array of token ids is empty");
    std::vector<int32_t> ids;
    ids.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        const auto& e = j[i];
        if (!e.is_number_integer())
            return invalid_argument(path.string(), ": element ", i, " is ", e.dump(), ", expected an integer token id");
        const int64_t v = e.get<int64_t>();
        if (v < 0 || v > std::numeric_limits<int32_t>::max())
            return invalid_argument(path.string(), ": element ", i, " is ", v, ", expected a token id in [0, 2^31)");
        ids.push_back(static_cast<int32_t>(v));
    }
    return ids;
}

inline Status write_ids_file(const std::filesystem::path& path, const std::vector<int32_t>& ids) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return not_found(path.string(), ": cannot open for writing");
    out << nlohmann::json(ids).dump() << "\n";
    if (!out) return data_loss(path.string(), ": write failed");
    return Status::ok();
}

}  // namespace volt::cli
