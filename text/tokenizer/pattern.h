// The `pattern` of tokenizer.json Split / Replace: {"String": "literal"} or {"Regex": "pcre"}. Produces HF's
// match segmentation: the whole input covered by alternating (range, is_match) pieces.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/status.h"
#include "text/tokenizer/regex.h"

namespace volt::text {

struct MatchSegment {
    uint32_t begin, end;
    bool is_match;
};

class Pattern {
public:
    static Expected<Pattern> from_json(const nlohmann::json& j, const std::string& where);
    static Pattern literal(std::string s);
    static Pattern regex(Regex r);

    // HF find_matches: an empty input yields one empty non-match; otherwise every byte is in exactly one segment.
    Status segments(std::string_view text, std::vector<MatchSegment>& out) const;
    // Replaces every match with `content`.
    Status replace_all(std::string& text, std::string_view content) const;

private:
    std::string literal_;
    std::optional<Regex> regex_;
};

}  // namespace volt::text
