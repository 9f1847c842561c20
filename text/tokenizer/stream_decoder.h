// Incremental detokenization for streaming generation. Tokens arrive one at a time; text is emitted only when it is
// final: complete UTF-8 characters, never half of a byte-level or byte-fallback sequence. Text already emitted plus
// pending() equals decode() of all ids pushed so far whenever that decode extends the emitted text (always for
// byte-level BPE; HF's ByteFallback can re-decode a finished character as U+FFFD while a later one is incomplete,
// and emitted text is never taken back). After finish(), the emitted text equals decode() of all ids.
//
// Method (as in text-generation-inference): decode a short window of recent ids twice, without and with the new
// ones, and emit the difference once it no longer ends in U+FFFD (an incomplete character). Windowing keeps each
// step O(window) and lets decoders with context rules (Metaspace's first token, Strip) see the same context in both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sdk/status.h"
#include "text/tokenizer/tokenizer.h"

namespace volt::text {

class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
        : tokenizer_(tokenizer), skip_special_(skip_special) {}

    // Adds one id; returns the text that became final (often empty).
    Expected<std::string> push(int32_t id);
    // What finish() would return now, without consuming it.
    Expected<std::string> pending() const;
    // Flushes the remainder (which may end in U+FFFD if the sequence stopped mid-character).
    Expected<std::string> finish();

private:
    const Tokenizer& tokenizer_;
    bool skip_special_;
    std::vector<int32_t> ids_;
    size_t prefix_offset_ = 0;  // start of the context window
    size_t read_offset_ = 0;    // ids before this are emitted
};

}  // namespace volt::text
