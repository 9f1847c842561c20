// tokenizer.json `normalizer`: text rewrites applied before pre-tokenization (NFC/NFD/NFKC/NFKD through utf8proc,
// Lowercase, Replace, Prepend, Strip, StripAccents, Sequence). Offsets are not tracked: Volt needs ids, not
// alignments.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "sdk/status.h"

namespace volt::text {

class Normalizer {
public:
    virtual ~Normalizer() = default;
    // Rewrites `text` (valid UTF-8) in place.
    virtual Status normalize(std::string& text) const = 0;
};

// Builds the normalizer described by `j` (a tokenizer.json `normalizer` object). A null `j` yields nullptr (none).
// `where` is the JSON path for errors, e.g. "tokenizer.json: normalizer".
Expected<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j, const std::string& where);

}  // namespace volt::text
