// UTF-8 for the tokenizer stages: the SDK's primitives (sdk/utf8.h) and the Unicode character classes Hugging Face
// `tokenizers` takes from Rust's `char` (whitespace, alphanumeric, numeric, punctuation). Properties come from
// utf8proc, never from hand-written tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sdk/utf8.h"

namespace volt::text {

// The primitives are the SDK's (sdk/utf8.h), visible here under their usual names.
using volt::utf8_append;
using volt::utf8_complete_prefix_length;
using volt::utf8_find_invalid;
using volt::utf8_is_valid;
using volt::utf8_lossy;
using volt::utf8_next;
using volt::utf8_prev;
using volt::utf8_sequence_length;

// Character classes with Rust `char` semantics (what Hugging Face `tokenizers` uses).
bool is_whitespace(char32_t cp);    // White_Space: Zs, Zl, Zp, U+0009..U+000D, U+0085
bool is_numeric(char32_t cp);       // general category Nd, Nl, No
bool is_alphanumeric(char32_t cp);  // letters (L*), marks that are alphabetic (Mn/Mc approximated), numbers
bool is_punctuation(char32_t cp);   // ASCII punctuation or general category P*

}  // namespace volt::text
