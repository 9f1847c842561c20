// SentencePiece models (tokenizer.model) through libsentencepiece: unigram and BPE, byte fallback, the model's own
// normalization rules. add_special prepends BOS when the model defines one.
#pragma once

#include <filesystem>
#include <memory>

#include "text/tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace volt::text {

class SentencePieceTokenizer final : public Tokenizer {
public:
    static Expected<std::unique_ptr<SentencePieceTokenizer>> from_file(const std::filesystem::path& path);
    ~SentencePieceTokenizer() override;

    Expected<std::vector<int32_t>> encode(std::string_view text, bool add_special = false) const override;
    Expected<std::string> decode(std::span<const int32_t> ids, bool skip_special = false) const override;
    int32_t id_limit() const override;
    std::optional<int32_t> token_to_id(std::string_view token) const override;
    std::optional<std::string> id_to_token(int32_t id) const override;
    bool is_special(int32_t id) const override;
    std::string description() const override { return label_ + " (SentencePiece)"; }

private:
    SentencePieceTokenizer();
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
    std::string label_;
};

}  // namespace volt::text
