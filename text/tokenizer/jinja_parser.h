// Parses chat-template source into a jinja::Template with the whitespace behaviour of transformers' environment
// (trim_blocks=True, lstrip_blocks=True, `-` markers). Anything outside the supported subset (include, extends,
// import, call blocks, filter blocks, unknown statements) is a parse error naming the line, never silently skipped.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sdk/status.h"
#include "text/tokenizer/jinja_ast.h"

namespace volt::text::jinja {

// `where` prefixes messages ("tokenizer_config.json: chat_template").
Expected<std::shared_ptr<const Template>> parse_template(std::string_view source, const std::string& where);

}  // namespace volt::text::jinja
