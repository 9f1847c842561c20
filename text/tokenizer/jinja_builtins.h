// The filters, tests, methods and global functions chat templates use (Jinja2 builtins plus transformers'
// `tojson` and `raise_exception`). Unknown names are errors: a template that needs something Volt lacks fails
// loudly instead of rendering something else.
#pragma once

#include <string>
#include <vector>

#include "sdk/status.h"
#include "text/tokenizer/jinja_interpreter.h"
#include "text/tokenizer/jinja_value.h"

namespace volt::text::jinja {

Expected<Value> apply_filter(const std::string& name, const Value& subject, std::vector<Value>& args, Kwargs& kwargs);
Expected<bool> apply_test(const std::string& name, const Value& subject, std::vector<Value>& args);
// obj.name as a bound method when `name` is a method of obj's type (str.strip, dict.items, ...); otherwise an
// undefined Value.
Value get_method(const Value& obj, const std::string& name);
// The builtin global functions (range, namespace, raise_exception, strftime_now, dict) as a dict of callables.
Value builtin_globals();
// Elements of an iterable the way Python's `for` sees them (dict -> keys, str -> characters).
Expected<std::vector<Value>> iterate(const Value& v);

}  // namespace volt::text::jinja
