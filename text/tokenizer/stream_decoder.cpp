#include "text/tokenizer/stream_decoder.h"

#include <span>

namespace volt::text {
namespace {
bool ends_with_replacement(const std::string& s) {
    return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

Expected<std::string> StreamDecoder::push(int32_t id) {
    if (id < 0 || id >= tokenizer_.id_limit() || !tokenizer_.id_to_token(id))
        return invalid_argument("token id ", id, " is not in the vocabulary of ", tokenizer_.description());
    ids_.push_back(id);
    std::span<const int32_t> all(ids_);
    VOLT_ASSIGN_OR_RETURN(std::string prefix_text,
                          tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_));
    VOLT_ASSIGN_OR_RETURN(std::string new_text, tokenizer_.decode(all.subspan(prefix_offset_), skip_special_));
    if (new_text.size() > prefix_text.size() && new_text.compare(0, prefix_text.size(), prefix_text) == 0 &&
        !ends_with_replacement(new_text)) {
        prefix_offset_ = read_offset_;
        read_offset_ = ids_.size();
        return new_text.substr(prefix_text.size());
    }
    return std::string();
}

Expected<std::string> StreamDecoder::pending() const {
    std::span<const int32_t> all(ids_);
    VOLT_ASSIGN_OR_RETURN(std::string prefix_text,
                          tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_));
    VOLT_ASSIGN_OR_RETURN(std::string new_text, tokenizer_.decode(all.subspan(prefix_offset_), skip_special_));
    if (new_text.compare(0, prefix_text.size(), prefix_text) == 0) return new_text.substr(prefix_text.size());
    // The new ids changed how earlier ones decode (HF's ByteFallback judges a whole run of byte tokens at once, so
    // a complete character followed by a partial one decodes as all U+FFFD). Emitted text is final, so the rest is
    // the not-yet-emitted ids decoded on their own.
    return tokenizer_.decode(all.subspan(read_offset_), skip_special_);
}

Expected<std::string> StreamDecoder::finish() {
    VOLT_ASSIGN_OR_RETURN(std::string rest, pending());
    prefix_offset_ = read_offset_ = ids_.size();
    return rest;
}

}  // namespace volt::text
