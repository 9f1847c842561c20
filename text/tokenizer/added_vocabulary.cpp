#include "text/tokenizer/added_vocabulary.h"

#include <algorithm>

#include "text/tokenizer/normalizer.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

bool is_word_char(char32_t c) { return c == '_' || is_alphanumeric(c); }

bool ends_with_word(std::string_view s) { return !s.empty() && is_word_char(utf8_prev(s, s.size(), nullptr)); }

bool starts_with_word(std::string_view s) {
    if (s.empty()) return false;
    size_t pos = 0;
    return is_word_char(utf8_next(s, pos));
}

// Start of the whitespace run that ends `s` (s.size() when none).
size_t trailing_space_start(std::string_view s) {
    size_t e = s.size();
    while (e > 0) {
        size_t start = 0;
        if (!is_whitespace(utf8_prev(s, e, &start))) break;
        e = start;
    }
    return e;
}

// Length of the whitespace run that starts `s`.
size_t leading_space_length(std::string_view s) {
    size_t pos = 0;
    while (pos < s.size()) {
        size_t p = pos;
        if (!is_whitespace(utf8_next(s, p))) break;
        pos = p;
    }
    return pos;
}

}  // namespace

Status AddedVocabulary::build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
    tokens_ = std::move(tokens);
    raw_ = Matcher{};
    normalized_ = Matcher{};
    int32_t max_id = -1;
    for (const auto& t : tokens_) max_id = std::max(max_id, t.id);
    by_id_.assign(size_t(max_id + 1), -1);
    for (size_t i = 0; i < tokens_.size(); ++i) {
        const AddedToken& t = tokens_[i];
        by_id_[size_t(t.id)] = int32_t(i);
        std::string content = t.content;
        // HF matches normalized tokens against normalized text, so their content is normalized the same way.
        if (t.normalized && normalizer) VOLT_RETURN_IF_ERROR(normalizer->normalize(content));
        Matcher& m = t.normalized ? normalized_ : raw_;
        m.contents.resize(tokens_.size());
        m.contents[i] = content;
        if (content.empty()) continue;  // an empty token can never match
        m.by_first_byte[static_cast<unsigned char>(content[0])].push_back(uint32_t(i));
        m.empty = false;
    }
    for (Matcher* m : {&raw_, &normalized_})
        for (auto& bucket : m->by_first_byte)
            std::stable_sort(bucket.begin(), bucket.end(), [m](uint32_t a, uint32_t b) {
                return m->contents[a].size() > m->contents[b].size();
            });
    return Status::ok();
}

const AddedToken* AddedVocabulary::find_by_id(int32_t id) const {
    if (id < 0 || size_t(id) >= by_id_.size() || by_id_[size_t(id)] < 0) return nullptr;
    return &tokens_[size_t(by_id_[size_t(id)])];
}

void AddedVocabulary::split(std::string_view text, bool normalized_set, std::vector<AddedTokenSplit>& out) const {
    split_with(normalized_set ? normalized_ : raw_, text, out);
}

void AddedVocabulary::split_with(const Matcher& m, std::string_view text, std::vector<AddedTokenSplit>& out) const {
    out.clear();
    if (m.empty) {
        if (!text.empty()) out.push_back({0, text.size(), -1});
        return;
    }
    size_t emitted = 0;  // end of the last emitted part (HF start_offset)
    size_t pos = 0;      // where the next search starts (end of the last match, kept or not)
    while (pos < text.size()) {
        // Leftmost-longest: the first position with any match, the longest match there.
        const auto& bucket = m.by_first_byte[static_cast<unsigned char>(text[pos])];
        int32_t hit = -1;
        for (uint32_t idx : bucket) {
            const std::string& c = m.contents[idx];
            if (text.compare(pos, c.size(), c) == 0) {
                hit = int32_t(idx);
                break;
            }
        }
        if (hit < 0) {
            ++pos;
            continue;
        }
        const AddedToken& t = tokens_[size_t(hit)];
        size_t start = pos, stop = pos + m.contents[size_t(hit)].size();
        pos = stop;  // the search resumes after the match even when single_word rejects it
        if (t.single_word && (ends_with_word(text.substr(0, start)) || starts_with_word(text.substr(stop)))) continue;
        if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), emitted);
        if (t.rstrip) stop += leading_space_length(text.substr(stop));
        if (emitted < start) out.push_back({emitted, start, -1});
        out.push_back({start, stop, t.id});
        emitted = stop;
        pos = std::max(pos, stop);
    }
    if (emitted < text.size()) out.push_back({emitted, text.size(), -1});
}

}  // namespace volt::text
