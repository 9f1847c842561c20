#include "text/tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include "text/tokenizer/utf8.h"

namespace volt::text {

SentencePieceTokenizer::SentencePieceTokenizer() : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

Expected<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::from_file(const std::filesystem::path& path) {
    std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
    t->label_ = path.string();
    auto status = t->sp_->Load(path.string());
    if (!status.ok()) return data_loss(path.string(), ": not a valid SentencePiece model: ", status.ToString());
    return t;
}

Expected<std::vector<int32_t>> SentencePieceTokenizer::encode(std::string_view text, bool add_special) const {
    if (size_t bad = utf8_find_invalid(text); bad != std::string_view::npos)
        return invalid_argument("text to encode is not valid UTF-8 (byte ", bad, ")");
    std::vector<int> ids;
    auto status = sp_->Encode(std::string(text), &ids);
    if (!status.ok()) return internal_error(label_, ": SentencePiece encode failed: ", status.ToString());
    std::vector<int32_t> out;
    out.reserve(ids.size() + 1);
    if (add_special && sp_->bos_id() >= 0) out.push_back(sp_->bos_id());
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
}

Expected<std::string> SentencePieceTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
    std::vector<int> in;
    in.reserve(ids.size());
    for (int32_t id : ids) {
        if (id < 0 || id >= sp_->GetPieceSize())
            return invalid_argument("token id ", id, " is not in the vocabulary of ", label_, " (ids run 0..",
                                    sp_->GetPieceSize() - 1, ")");
        if (skip_special && is_special(id)) continue;
        in.push_back(id);
    }
    std::string text;
    auto status = sp_->Decode(in, &text);
    if (!status.ok()) return internal_error(label_, ": SentencePiece decode failed: ", status.ToString());
    return text;
}

int32_t SentencePieceTokenizer::id_limit() const { return sp_->GetPieceSize(); }

std::optional<int32_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
    int id = sp_->PieceToId(std::string(token));
    // PieceToId answers unk_id for unknown pieces; only the unknown piece itself maps there legitimately.
    if (id == sp_->unk_id() && sp_->IdToPiece(id) != token) return std::nullopt;
    return id;
}

std::optional<std::string> SentencePieceTokenizer::id_to_token(int32_t id) const {
    if (id < 0 || id >= sp_->GetPieceSize()) return std::nullopt;
    return sp_->IdToPiece(id);
}

bool SentencePieceTokenizer::is_special(int32_t id) const {
    return id >= 0 && id < sp_->GetPieceSize() && (sp_->IsControl(id) || sp_->IsUnknown(id));
}

}  // namespace volt::text
