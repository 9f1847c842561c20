// Token-id files of the CLI (design.md): a JSON array of integers (`volt generate` also takes an array of such
// arrays: several prompts). Shared by the commands that read or write them.
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

// The token ids of one JSON array; `where` names it in errors ("FILE" or "FILE: prompt 3").
inline Expected<std::vector<int32_t>> parse_ids(const nlohmann::json& j, const std::string& where) {
    if (!j.is_array()) return invalid_argument(where, ": expected a JSON array of token ids, found ", j.type_name());
    if (j.empty()) return invalid_argument(where, ": the array of token ids is empty");
    std::vector<int32_t> ids;
    ids.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
        const auto& e = j[i];
        if (!e.is_number_integer())
            return invalid_argument(where, ": element ", i, " is ", e.dump(), ", expected an integer token id");
        const int64_t v = e.get<int64_t>();
        if (v < 0 || v > std::numeric_limits<int32_t>::max())
            return invalid_argument(where, ": element ", i, " is ", v, ", expected a token id in [0, 2^31)");
        ids.push_back(static_cast<int32_t>(v));
    }
    return ids;
}

inline Expected<nlohmann::json> read_json_file(const std::filesystem::path& path) {
    VOLT_ASSIGN_OR_RETURN(const std::string text, read_file(path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return invalid_argument(path.string(), ": not valid JSON (expected an array of token ids)");
    return j;
}

// INVALID_ARGUMENT / NOT_FOUND naming the file and what is wrong (not an array, a non-integer element, empty).
inline Expected<std::vector<int32_t>> read_ids_file(const std::filesystem::path& path) {
    VOLT_ASSIGN_OR_RETURN(const nlohmann::json j, read_json_file(path));
    return parse_ids(j, path.string());
}

// One prompt (an array of ids) or several (an array of non-empty arrays of ids, `several` set).
struct IdsBatch {
    std::vector<std::vector<int32_t>> prompts;
    bool several = false;
};
inline Expected<IdsBatch> read_ids_batch_file(const std::filesystem::path& path) {
    VOLT_ASSIGN_OR_RETURN(const nlohmann::json j, read_json_file(path));
    IdsBatch b;
    if (!j.is_array() || j.empty() || !j[0].is_array()) {
        VOLT_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids(j, path.string()));
        b.prompts.push_back(std::move(ids));
        return b;
    }
    b.several = true;
    for (size_t i = 0; i < j.size(); ++i) {
        VOLT_ASSIGN_OR_RETURN(std::vector<int32_t> ids, parse_ids(j[i], str_cat(path.string(), ": prompt ", i)));
        b.prompts.push_back(std::move(ids));
    }
    return b;
}

inline Status write_json_file(const std::filesystem::path& path, const nlohmann::json& j) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return not_found(path.string(), ": cannot open for writing");
    out << j.dump() << "\n";
    if (!out) return data_loss(path.string(), ": write failed");
    return Status::ok();
}

inline Status write_ids_file(const std::filesystem::path& path, const std::vector<int32_t>& ids) {
    return write_json_file(path, nlohmann::json(ids));
}

}  // namespace volt::cli
