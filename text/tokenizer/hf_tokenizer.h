// The Hugging Face tokenizer.json pipeline: added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor,
// and ids -> token strings -> decoder for the way back. Mirrors `tokenizers` so ids match it exactly.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "text/tokenizer/added_vocabulary.h"
#include "text/tokenizer/tokenizer.h"

namespace volt::text {

class Normalizer;
class PreTokenizer;
class BpeModel;
class Decoder;
class PostProcessor;

class HfTokenizer final : public Tokenizer {
public:
    // `label` names the source in errors ("/models/x/tokenizer.json").
    static Expected<std::unique_ptr<HfTokenizer>> from_json(const nlohmann::json& j, const std::string& label);
    static Expected<std::unique_ptr<HfTokenizer>> from_file(const std::filesystem::path& path);
    ~HfTokenizer() override;

    Expected<std::vector<int32_t>> encode(std::string_view text, bool add_special = false) const override;
    Expected<std::string> decode(std::span<const int32_t> ids, bool skip_special = false) const override;
    int32_t id_limit() const override { return id_limit_; }
    std::optional<int32_t> token_to_id(std::string_view token) const override;
    std::optional<std::string> id_to_token(int32_t id) const override;
    bool is_special(int32_t id) const override;
    std::string description() const override { return label_ + " (BPE)"; }

private:
    HfTokenizer();
    static Expected<std::unique_ptr<HfTokenizer>> build(const nlohmann::json& j, const std::string& label);
    // Normalized text without added tokens -> ids.
    Status encode_segment(std::string_view text, bool at_origin, std::vector<int32_t>& ids) const;

    std::string label_;
    std::unique_ptr<Normalizer> normalizer_;
    std::unique_ptr<PreTokenizer> pre_tokenizer_;
    std::unique_ptr<BpeModel> model_;
    std::unique_ptr<Decoder> decoder_;
    std::unique_ptr<PostProcessor> post_processor_;
    AddedVocabulary added_;
    int32_t id_limit_ = 0;
};

}  // namespace volt::text
