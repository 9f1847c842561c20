// tokenizer.json `pre_tokenizer`: splits normalized text into the pieces BPE runs on. Supports Split (string or
// regex pattern, all five HF behaviours, invert), ByteLevel (with or without GPT-2's regex, add_prefix_space),
// Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, BertPreTokenizer and Sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/status.h"

namespace volt::text {

// Pieces of text as ranges of one buffer, so splitting never copies bytes; stages that rewrite text (ByteLevel,
// Metaspace) build a new buffer.
struct PieceList {
    struct Piece {
        uint32_t begin, end;
        bool at_origin;  // starts at offset 0 of the original input (Metaspace prepend_scheme "first")
    };
    std::string text;
    std::vector<Piece> pieces;

    std::string_view view(const Piece& p) const { return std::string_view(text).substr(p.begin, p.end - p.begin); }
};

class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    // Replaces `list` with its finer split. Empty pieces are dropped, as in HF.
    virtual Status apply(PieceList& list) const = 0;
};

// nullptr for a null `j` (no pre-tokenizer: each segment is one piece).
Expected<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& j, const std::string& where);

}  // namespace volt::text
