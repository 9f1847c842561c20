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
        m.lengths.resize(tokens_.size(), 0);
        if (content.empty()) continue;  // an empty token can never match
        m.add(content, uint32_t(i));
    }
    return Status::ok();
}

void AddedVocabulary::Matcher::add(std::string_view content, uint32_t token_index) {
    uint32_t node = 0;
    for (unsigned char c : content) {
        auto& kids = nodes[node].children;
        auto it = std::lower_bound(kids.begin(), kids.end(), c, [](const auto& kid, unsigned char b) { return kid.first < b; });
        if (it != kids.end() && it->first == c) {
            node = it->second;
            continue;
        }
        const uint32_t child = uint32_t(nodes.size());
        kids.insert(it, {c, child});  // `kids` may dangle after the push_back below; it is not used again
        nodes.emplace_back();
        node = child;
    }
    // Two tokens with the same content: the first one listed wins.
    if (nodes[node].token < 0) nodes[node].token = int32_t(token_index);
    lengths[token_index] = uint32_t(content.size());
    first_byte[static_cast<unsigned char>(content[0])] = true;
    empty = false;
}

int32_t AddedVocabulary::Matcher::longest_at(std::string_view text, size_t pos) const {
    int32_t best = -1;
    uint32_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
        const auto& kids = nodes[node].children;
        const unsigned char c = static_cast<unsigned char>(text[i]);
        auto it = std::lower_bound(kids.begin(), kids.end(), c, [](const auto& kid, unsigned char b) { return kid.first < b; });
        if (it == kids.end() || it->first != c) break;
        node = it->second;
        if (nodes[node].token >= 0) best = nodes[node].token;
    }
    return best;
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
        const int32_t hit = m.first_byte[static_cast<unsigned char>(text[pos])] ? m.longest_at(text, pos) : -1;
        if (hit < 0) {
            ++pos;
            continue;
        }
        const AddedToken& t = tokens_[size_t(hit)];
        size_t start = pos, stop = pos + m.lengths[size_t(hit)];
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
