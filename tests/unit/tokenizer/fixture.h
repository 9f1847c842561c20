// Access to tests/data/tokenizer: the reference cases written by tools/make_tokenizer_fixture.py.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace volt::test {

struct ReferenceCase {
    std::string text;
    std::vector<int32_t> ids;          // encode(text, add_special=false)
    std::vector<int32_t> ids_special;  // encode(text, add_special=true)
    std::string decoded;               // decode(ids)
    std::string decoded_skip_special;  // decode(ids, skip_special=true)
};

std::filesystem::path tokenizer_data_dir();
const nlohmann::json& reference_fixture();  // cases.json, parsed once
std::vector<std::string> reference_tokenizer_names();
std::vector<ReferenceCase> reference_cases(const std::string& tokenizer_name);

}  // namespace volt::test
