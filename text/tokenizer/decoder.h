// tokenizer.json `decoder`: turns the token strings of an id sequence back into text (ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip, BPEDecoder, Sequence). Works on the whole token list, like HF's decode_chain, because
// some steps (Fuse, ByteFallback, Metaspace's first-token rule) look across tokens.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/status.h"

namespace volt::text {

class Decoder {
public:
    virtual ~Decoder() = default;
    virtual Status decode_chain(std::vector<std::string>& tokens) const = 0;
};

// nullptr for a null `j`: tokens are then joined with single spaces, as HF does without a decoder.
Expected<std::unique_ptr<Decoder>> make_decoder(const nlohmann::json& j, const std::string& where);

}  // namespace volt::text
