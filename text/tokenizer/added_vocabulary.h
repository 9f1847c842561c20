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
    // A byte trie of the token contents: the longest token at a position is found in one walk, however many
    // tokens share a prefix (MiniMax has many "<...>" tokens, and code/HTML has many '<').
    struct Matcher {
        struct Node {
            std::vector<std::pair<unsigned char, uint32_t>> children;  // sorted by byte
            int32_t token = -1;                                        // index into tokens_ ending here
        };
        std::vector<Node> nodes{1};               // nodes[0] is the root
        std::array<bool, 256> first_byte{};       // quick reject before walking
        std::vector<uint32_t> lengths;            // matched byte length per token index
        bool empty = true;

        void add(std::string_view content, uint32_t token_index);
        // Index of the longest token starting at text[pos], or -1; its length in *length.
        int32_t longest_at(std::string_view text, size_t pos) const;
    };
    void split_with(const Matcher& m, std::string_view text, std::vector<AddedTokenSplit>& out) const;

    std::vector<AddedToken> tokens_;
    Matcher raw_, normalized_;
    std::vector<int32_t> by_id_;  // id -> index in tokens_, or -1
};

}  // namespace volt::text
