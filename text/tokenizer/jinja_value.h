// Values of the chat-template engine, with Python/Jinja2 semantics where templates can observe them: truthiness,
// equality, str() and repr() for output, json.dumps for `tojson`, insertion-ordered dicts. Lists and dicts are
// shared by reference, like Python objects, so `namespace()` attributes set inside a loop are seen outside it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/status.h"

namespace volt::text::jinja {

struct Value;
using List = std::vector<Value>;

class Dict;

// A callable: a macro, a builtin global (range, namespace, raise_exception) or a bound method ("a".upper).
struct Callable;

struct Value {
    enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kCallable };
    Kind kind = Kind::kUndefined;
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;
    std::shared_ptr<List> list;
    std::shared_ptr<Dict> dict;
    std::shared_ptr<Callable> fn;
    bool is_namespace = false;   // a dict made by namespace(): the only dict `set x.attr = ...` may write to
    bool is_tuple = false;       // a list that prints as a Python tuple: (1, 2)
    std::string undefined_name;  // for "'x' is undefined" messages

    static Value undefined(std::string name = {}) { Value v; v.undefined_name = std::move(name); return v; }
    static Value none() { Value v; v.kind = Kind::kNone; return v; }
    static Value boolean(bool x) { Value v; v.kind = Kind::kBool; v.b = x; return v; }
    static Value integer(int64_t x) { Value v; v.kind = Kind::kInt; v.i = x; return v; }
    static Value number(double x) { Value v; v.kind = Kind::kFloat; v.f = x; return v; }
    static Value string(std::string x) { Value v; v.kind = Kind::kString; v.s = std::move(x); return v; }
    static Value make_list(List items = {}) { Value v; v.kind = Kind::kList; v.list = std::make_shared<List>(std::move(items)); return v; }
    static Value make_tuple(List items) { Value v = make_list(std::move(items)); v.is_tuple = true; return v; }
    static Value make_dict();
    static Value from_json(const nlohmann::ordered_json& j);

    bool is_undefined() const { return kind == Kind::kUndefined; }
    bool is_none() const { return kind == Kind::kNone; }
    bool is_string() const { return kind == Kind::kString; }
    bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
    bool is_list() const { return kind == Kind::kList; }
    bool is_dict() const { return kind == Kind::kDict; }
    double as_double() const { return kind == Kind::kInt ? double(i) : f; }

    bool truthy() const;
    std::string type_name() const;  // Python's: 'str', 'int', 'list', 'dict', 'NoneType', ...
    std::string str() const;        // Python str(); undefined prints as ""
    std::string repr() const;       // Python repr()
};

// Insertion-ordered string-keyed map (JSON objects, Python dicts of a template).
class Dict {
public:
    const Value* find(std::string_view key) const;
    Value* find(std::string_view key);
    void set(std::string key, Value value);
    const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
    size_t size() const { return items_.size(); }

private:
    std::vector<std::pair<std::string, Value>> items_;
};

bool equals(const Value& a, const Value& b);
// Python ordering for numbers and strings; error for other pairs.
Expected<int> compare(const Value& a, const Value& b);
// json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=false) as transformers' `tojson` filter writes it.
Expected<std::string> to_json(const Value& v, std::optional<int> indent);
// Python repr of a float ("1.0", "0.1", "1e+20").
std::string python_float(double x);

}  // namespace volt::text::jinja
