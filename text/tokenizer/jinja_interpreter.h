// Renders a parsed jinja::Template against a dict of variables with Jinja2 semantics (scoping of for/macro, loop
// variables, undefined values, Python operators). Filters, tests and methods live in jinja_builtins.cpp. Errors —
// an unknown filter, a type error, raise_exception() — come back as a Status naming the template line.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sdk/status.h"
#include "text/tokenizer/jinja_ast.h"
#include "text/tokenizer/jinja_value.h"

namespace volt::text::jinja {

using Kwargs = std::vector<std::pair<std::string, Value>>;

struct Callable {
    std::function<Expected<Value>(std::vector<Value>& args, Kwargs& kwargs)> call;
};

Value make_callable(std::function<Expected<Value>(std::vector<Value>&, Kwargs&)> fn);

// `where` prefixes messages ("tokenizer_config.json: chat_template").
Expected<std::string> render(const Template& tmpl, const Value& variables, const std::string& where);

}  // namespace volt::text::jinja
