#include "tests/unit/tokenizer/fixture.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace volt::test {

std::filesystem::path tokenizer_data_dir() { return std::filesystem::path(VOLT_TEST_DATA_DIR) / "tokenizer"; }

const nlohmann::json& reference_fixture() {
    static const nlohmann::json j = [] {
        std::ifstream in(tokenizer_data_dir() / "cases.json", std::ios::binary);
        if (!in) throw std::runtime_error("missing tests/data/tokenizer/cases.json: run tools/make_tokenizer_fixture.py");
        std::stringstream s;
        s << in.rdbuf();
        return nlohmann::json::parse(s.str());
    }();
    return j;
}

std::vector<std::string> reference_tokenizer_names() {
    std::vector<std::string> names;
    for (auto it = reference_fixture().at("tokenizers").begin(); it != reference_fixture().at("tokenizers").end(); ++it)
        names.push_back(it.key());
    return names;
}

std::vector<ReferenceCase> reference_cases(const std::string& name) {
    const auto& j = reference_fixture();
    const auto& strings = j.at("strings");
    const auto& cases = j.at("tokenizers").at(name).at("cases");
    std::vector<ReferenceCase> out;
    for (size_t i = 0; i < cases.size(); ++i) {
        ReferenceCase c;
        c.text = strings.at(i).get<std::string>();
        c.ids = cases[i].at("ids").get<std::vector<int32_t>>();
        c.ids_special = cases[i].at("ids_special").get<std::vector<int32_t>>();
        c.decoded = cases[i].at("decoded").get<std::string>();
        if (cases[i].contains("decoded_skip_special")) c.decoded_skip_special = cases[i].at("decoded_skip_special").get<std::string>();
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace volt::test
