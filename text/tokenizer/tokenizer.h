// Volt's tokenizer interface: text <-> token ids for MiniMax-01 (Hugging Face tokenizer.json, byte-level BPE) and
// SentencePiece models. Implementations are immutable after loading and safe to share between threads.
//
//   auto tok = volt::text::load_tokenizer("/models/MiniMax-VL-01");   // a directory or a tokenizer file
//   auto ids = (*tok)->encode("Hello <image>", /*add_special=*/false);
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sdk/status.h"

namespace volt::text {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // `text` must be valid UTF-8. add_special applies the model's post-processor (e.g. a leading BOS).
    virtual Expected<std::vector<int32_t>> encode(std::string_view text, bool add_special = false) const = 0;
    // Fails on an id the tokenizer does not know. Output is valid UTF-8 (invalid byte runs become U+FFFD).
    virtual Expected<std::string> decode(std::span<const int32_t> ids, bool skip_special = false) const = 0;

    virtual int32_t id_limit() const = 0;  // one past the largest id
    virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
    virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
    virtual bool is_special(int32_t id) const = 0;
    // Where the tokenizer came from, for messages: "tokenizer.json (BPE)" or "tokenizer.model (SentencePiece)".
    virtual std::string description() const = 0;
};

// Loads `path`: a tokenizer.json or tokenizer.model file, or a directory holding one (tokenizer.json preferred).
Expected<std::unique_ptr<Tokenizer>> load_tokenizer(const std::filesystem::path& path);

}  // namespace volt::text
