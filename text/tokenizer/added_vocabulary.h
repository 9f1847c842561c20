// tokenizer.json `added_tokens`: tokens matched verbatim in the input before the model runs (special tokens such as
// <beginning_of_sentence> and <image>, and normal added tokens). Matching follows HF: leftmost-longest, with
// single_word / lstrip / rstrip, first over the raw text for `normalized: false` tokens, then over each normalized
// remainder for `normalized: true` tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sdk/status.h"

namespace volt::text {

class Normalizer;

struct AddedToken {
    std::string content;
    int32_t id = -1;
    bool special = false;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
};

// A part of the input: an added token (token_id >= 0) or text for the model (token_id == -1).
struct AddedTokenSplit {
    size_t begin, end;
    int32_t token_id;
};

class AddedVocabulary {
public:
    // Contents of `normalized` tokens are passed through `normalizer` (may be null) before matching, as in HF.
    Status build(std::vector<AddedToken> tokens, const Normalizer* normalizer);

    // Splits `text` on the raw (normalized == false) or normalized (true) token set. Empty parts are dropped.
    void split(std::string_view text, bool normalized_set, std::vector<AddedTokenSplit>& out) const;

    const std::vector<AddedToken>& tokens() const { return tokens_; }
    const AddedToken* find_by_id(int32_t id) const;

private:
    struct Matcher {
        // Token indices bucketed by first byte, each bucket longest first, so the first hit is the longest match.
        std::array<std::vector<uint32_t>, 256> by_first_byte;
        std::vector<std::string> contents;  // matched form (normalized content for normalized tokens)
        bool empty = true;
    };
    void split_with(const Matcher& m, std::string_view text, std::vector<AddedTokenSplit>& out) const;

    std::vector<AddedToken> tokens_;
    Matcher raw_, normalized_;
    std::vector<int32_t> by_id_;  // id -> index in tokens_, or -1
};

}  // namespace volt::text
