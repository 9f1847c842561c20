#include "text/tokenizer/jinja_builtins.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include <utf8proc.h>

#include "text/tokenizer/utf8.h"

namespace volt::text::jinja {
namespace {

__extension__ typedef __int128 Wide;  // GCC/Clang extension; -Wpedantic would flag a plain use

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Python str.strip() with no argument strips Unicode whitespace; with chars, exactly those characters.
std::string strip(const std::string& s, bool left, bool right, const Value* chars) {
    auto strippable = [&](char32_t c) {
        if (!chars || chars->is_none()) return is_whitespace(c);
        size_t pos = 0;
        while (pos < chars->s.size())
            if (utf8_next(chars->s, pos) == c) return true;
        return false;
    };
    size_t b = 0, e = s.size();
    while (left && b < e) {
        size_t p = b;
        if (!strippable(utf8_next(s, p))) break;
        b = p;
    }
    while (right && e > b) {
        size_t start = 0;
        if (!strippable(utf8_prev(s, e, &start))) break;
        e = start;
    }
    return s.substr(b, e - b);
}

std::string map_case(const std::string& s, int mode) {  // 0 lower, 1 upper
    std::string out;
    size_t pos = 0;
    while (pos < s.size()) {
        char32_t c = utf8_next(s, pos);
        auto m = mode == 0 ? utf8proc_tolower(utf8proc_int32_t(c)) : utf8proc_toupper(utf8proc_int32_t(c));
        utf8_append(out, char32_t(m));
    }
    return out;
}

// Python str.title(): uppercase after a non-letter, lowercase after a letter.
std::string title_case(const std::string& s) {
    std::string out;
    size_t pos = 0;
    bool prev_cased = false;
    while (pos < s.size()) {
        char32_t c = utf8_next(s, pos);
        auto cat = utf8proc_category(utf8proc_int32_t(c));
        bool cased = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
        utf8_append(out, char32_t(prev_cased ? utf8proc_tolower(utf8proc_int32_t(c)) : utf8proc_totitle(utf8proc_int32_t(c))));
        prev_cased = cased;
    }
    return out;
}

std::string capitalize(const std::string& s) {
    if (s.empty()) return s;
    size_t pos = 0;
    char32_t c = utf8_next(s, pos);
    std::string out;
    utf8_append(out, char32_t(utf8proc_toupper(utf8proc_int32_t(c))));
    return out + map_case(s.substr(pos), 0);
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
    if (from.empty()) {  // Python inserts `to` between every character
        std::string out = to;
        size_t pos = 0;
        int64_t n = 0;
        while (pos < s.size() && (count < 0 || n < count)) {
            size_t start = pos;
            utf8_next(s, pos);
            out += s.substr(start, pos - start) + to;
            ++n;
        }
        return out + s.substr(pos);
    }
    std::string out;
    size_t pos = 0;
    int64_t n = 0;
    for (size_t f; (count < 0 || n < count) && (f = s.find(from, pos)) != std::string::npos; ++n) {
        out += s.substr(pos, f - pos) + to;
        pos = f + from.size();
    }
    return out + s.substr(pos);
}

std::vector<Value> split(const std::string& s, const Value* sep, int64_t maxsplit) {
    std::vector<Value> out;
    if (!sep || sep->is_none()) {  // runs of whitespace, no empty strings
        size_t i = 0;
        while (i < s.size()) {
            while (i < s.size() && is_space(s[i])) ++i;
            if (i >= s.size()) break;
            if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) {
                size_t e = s.size();
                while (e > i && is_space(s[e - 1])) --e;
                out.push_back(Value::string(s.substr(i, e - i)));
                break;
            }
            size_t j = i;
            while (j < s.size() && !is_space(s[j])) ++j;
            out.push_back(Value::string(s.substr(i, j - i)));
            i = j;
        }
        return out;
    }
    size_t pos = 0;
    for (size_t f; (maxsplit < 0 || int64_t(out.size()) < maxsplit) && (f = s.find(sep->s, pos)) != std::string::npos;) {
        out.push_back(Value::string(s.substr(pos, f - pos)));
        pos = f + sep->s.size();
    }
    out.push_back(Value::string(s.substr(pos)));
    return out;
}

const Value* kwarg(const Kwargs& kwargs, const char* name) {
    for (const auto& [k, v] : kwargs)
        if (k == name) return &v;
    return nullptr;
}

// Positional argument i, else keyword `name`, else nullptr.
const Value* arg(const std::vector<Value>& args, const Kwargs& kwargs, size_t i, const char* name) {
    if (i < args.size()) return &args[i];
    return kwarg(kwargs, name);
}

Expected<int64_t> int_arg(const Value* v, int64_t fallback, const char* what) {
    if (!v || v->is_none()) return fallback;
    if (v->kind != Value::Kind::kInt) return invalid_argument(what, ": expected an integer, got '", v->type_name(), "'");
    return v->i;
}

Expected<std::string> str_arg(const Value* v, const char* what) {
    if (!v || !v->is_string()) return invalid_argument(what, ": expected a string argument");
    return v->s;
}

// Attribute lookup for selectattr/map/sort/join(attribute=...): dotted paths, dict keys.
Value attribute_path(const Value& v, const std::string& path) {
    Value cur = v;
    size_t pos = 0;
    while (pos <= path.size()) {
        size_t dot = path.find('.', pos);
        std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
        if (cur.is_dict()) {
            const Value* f = cur.dict->find(part);
            cur = f ? *f : Value::undefined(part);
        } else if (cur.is_list() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
            size_t i = std::stoul(part);
            cur = i < cur.list->size() ? (*cur.list)[i] : Value::undefined(part);
        } else {
            return Value::undefined(part);
        }
        if (dot == std::string::npos) break;
        pos = dot + 1;
    }
    return cur;
}

Expected<int> sort_compare(const Value& a, const Value& b, bool case_sensitive) {
    if (!case_sensitive && a.is_string() && b.is_string()) return compare(Value::string(map_case(a.s, 0)), Value::string(map_case(b.s, 0)));
    return compare(a, b);
}

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

Expected<Value> select_items(const Value& subject, std::vector<Value>& args, bool by_attr, bool keep) {
    VOLT_ASSIGN_OR_RETURN(auto items, iterate(subject));
    size_t a = 0;
    std::string attr;
    if (by_attr) {
        if (args.empty() || !args[0].is_string()) return invalid_argument("selectattr/rejectattr: expected an attribute name");
        attr = args[a++].s;
    }
    std::string test = a < args.size() ? args[a].s : "";
    if (a < args.size() && !args[a].is_string()) return invalid_argument("select: the test name must be a string");
    std::vector<Value> test_args(args.begin() + long(std::min(args.size(), a + 1)), args.end());
    List out;
    for (const auto& item : items) {
        Value v = by_attr ? attribute_path(item, attr) : item;
        bool pass;
        if (test.empty()) {
            pass = v.truthy();
        } else {
            std::vector<Value> ta = test_args;
            VOLT_ASSIGN_OR_RETURN(pass, apply_test(test, v, ta));
        }
        if (pass == keep) out.push_back(item);
    }
    return Value::make_list(std::move(out));
}

Expected<Value> length_of(const Value& v) {
    switch (v.kind) {
        case Value::Kind::kString: {
            int64_t n = 0;
            for (unsigned char c : v.s) n += (c & 0xC0) != 0x80;
            return Value::integer(n);
        }
        case Value::Kind::kList: return Value::integer(int64_t(v.list->size()));
        case Value::Kind::kDict: return Value::integer(int64_t(v.dict->size()));
        case Value::Kind::kUndefined: return Value::integer(0);
        default: return invalid_argument("object of type '", v.type_name(), "' has no len()");
    }
}

}  // namespace

Expected<std::vector<Value>> iterate(const Value& v) {
    switch (v.kind) {
        case Value::Kind::kList: return *v.list;
        case Value::Kind::kDict: {
            std::vector<Value> keys;
            for (const auto& [k, val] : v.dict->items()) keys.push_back(Value::string(k));
            return keys;
        }
        case Value::Kind::kString: {
            std::vector<Value> out;
            size_t pos = 0;
            while (pos < v.s.size()) {
                size_t start = pos;
                utf8_next(v.s, pos);
                out.push_back(Value::string(v.s.substr(start, pos - start)));
            }
            return out;
        }
        case Value::Kind::kUndefined: return std::vector<Value>{};
        default: return invalid_argument("'", v.type_name(), "' object is not iterable");
    }
}

Expected<Value> apply_filter(const std::string& name, const Value& v, std::vector<Value>& args, Kwargs& kwargs) {
    const std::string what = "filter '" + name + "'";
    if (name == "trim") {
        const Value* chars = arg(args, kwargs, 0, "chars");
        return Value::string(strip(v.str(), true, true, chars));
    }
    if (name == "length" || name == "count") return length_of(v);
    if (name == "tojson") {
        std::optional<int> indent;
        if (const Value* i = arg(args, kwargs, 0, "indent"); i && !i->is_none()) {
            if (i->kind != Value::Kind::kInt) return invalid_argument(what, ": indent must be an integer");
            indent = int(i->i);
        }
        VOLT_ASSIGN_OR_RETURN(std::string s, to_json(v, indent));
        return Value::string(std::move(s));
    }
    if (name == "string") return Value::string(v.str());
    if (name == "lower") return Value::string(map_case(v.str(), 0));
    if (name == "upper") return Value::string(map_case(v.str(), 1));
    if (name == "title") return Value::string(title_case(v.str()));
    if (name == "capitalize") return Value::string(capitalize(v.str()));
    if (name == "safe") return v;
    if (name == "e" || name == "escape") return Value::string(html_escape(v.str()));
    if (name == "default" || name == "d") {
        const Value* fallback = arg(args, kwargs, 0, "default_value");
        const Value* boolean = arg(args, kwargs, 1, "boolean");
        bool use = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
        return use ? (fallback ? *fallback : Value::string("")) : v;
    }
    if (name == "first" || name == "last") {
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(v));
        if (items.empty()) return Value::undefined(name);
        return name == "first" ? items.front() : items.back();
    }
    if (name == "join") {
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(v));
        const Value* sep = arg(args, kwargs, 0, "d");
        const Value* attr = arg(args, kwargs, 1, "attribute");
        std::string out;
        for (size_t k = 0; k < items.size(); ++k) {
            if (k && sep) out += sep->str();
            out += (attr ? attribute_path(items[k], attr->str()) : items[k]).str();
        }
        return Value::string(std::move(out));
    }
    if (name == "replace") {
        VOLT_ASSIGN_OR_RETURN(std::string from, str_arg(arg(args, kwargs, 0, "old"), what.c_str()));
        VOLT_ASSIGN_OR_RETURN(std::string to, str_arg(arg(args, kwargs, 1, "new"), what.c_str()));
        VOLT_ASSIGN_OR_RETURN(int64_t count, int_arg(arg(args, kwargs, 2, "count"), -1, what.c_str()));
        return Value::string(replace_all(v.str(), from, to, count));
    }
    if (name == "list") {
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(v));
        return Value::make_list(std::move(items));
    }
    if (name == "items" || name == "dictsort") {
        if (v.is_undefined()) return Value::make_list();
        if (!v.is_dict()) return invalid_argument(what, ": expected a dict, got '", v.type_name(), "'");
        List out;
        for (const auto& [k, val] : v.dict->items()) out.push_back(Value::make_tuple({Value::string(k), val}));
        if (name == "dictsort") {
            Status st;
            std::stable_sort(out.begin(), out.end(), [&](const Value& a, const Value& b) {
                auto c = sort_compare((*a.list)[0], (*b.list)[0], false);
                if (!c) { st = c.status(); return false; }
                return *c < 0;
            });
            VOLT_RETURN_IF_ERROR(st);
        }
        return Value::make_list(std::move(out));
    }
    if (name == "selectattr") return select_items(v, args, true, true);
    if (name == "rejectattr") return select_items(v, args, true, false);
    if (name == "select") return select_items(v, args, false, true);
    if (name == "reject") return select_items(v, args, false, false);
    if (name == "map") {
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(v));
        List out;
        if (const Value* attr = kwarg(kwargs, "attribute")) {
            const Value* dflt = kwarg(kwargs, "default");
            for (const auto& item : items) {
                Value x = attribute_path(item, attr->str());
                out.push_back(x.is_undefined() && dflt ? *dflt : x);
            }
            return Value::make_list(std::move(out));
        }
        if (args.empty() || !args[0].is_string()) return invalid_argument(what, ": expected a filter name or attribute=");
        std::string filter = args[0].s;
        std::vector<Value> rest(args.begin() + 1, args.end());
        for (const auto& item : items) {
            std::vector<Value> a = rest;
            Kwargs k;
            VOLT_ASSIGN_OR_RETURN(Value x, apply_filter(filter, item, a, k));
            out.push_back(std::move(x));
        }
        return Value::make_list(std::move(out));
    }
    if (name == "reverse") {
        if (v.is_string()) {
            VOLT_ASSIGN_OR_RETURN(auto cps, iterate(v));
            std::string out;
            for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += it->s;
            return Value::string(std::move(out));
        }
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(v));
        std::reverse(items.begin(), items.end());
        return Value::make_list(std::move(items));
    }
    if (name == "sort" || name == "unique" || name == "min" || name == "max") {
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(v));
        const Value* attr = kwarg(kwargs, "attribute");
        const Value* cs = kwarg(kwargs, "case_sensitive");
        bool case_sensitive = cs && cs->truthy();
        bool reverse = false;
        if (name == "sort") {
            const Value* r = arg(args, kwargs, 0, "reverse");
            reverse = r && r->truthy();
            if (const Value* c = arg(args, kwargs, 1, "case_sensitive")) case_sensitive = c->truthy();
            if (!attr && args.size() > 2) attr = &args[2];
        }
        auto key = [&](const Value& x) { return attr ? attribute_path(x, attr->str()) : x; };
        Status st;
        auto less = [&](const Value& a, const Value& b) {
            auto c = sort_compare(key(a), key(b), case_sensitive);
            if (!c) { st = c.status(); return false; }
            return *c < 0;
        };
        if (name == "unique") {
            List out;
            for (const auto& item : items) {
                bool seen = false;
                for (const auto& o : out) {
                    Value a = key(item), b = key(o);
                    if (!case_sensitive && a.is_string() && b.is_string()) seen = seen || map_case(a.s, 0) == map_case(b.s, 0);
                    else seen = seen || equals(a, b);
                }
                if (!seen) out.push_back(item);
            }
            return Value::make_list(std::move(out));
        }
        if (name == "min" || name == "max") {
            if (items.empty()) return Value::undefined(name);
            auto it = name == "min" ? std::min_element(items.begin(), items.end(), less) : std::max_element(items.begin(), items.end(), less);
            VOLT_RETURN_IF_ERROR(st);
            return *it;
        }
        std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) { return reverse ? less(b, a) : less(a, b); });
        VOLT_RETURN_IF_ERROR(st);
        return Value::make_list(std::move(items));
    }
    if (name == "sum") {
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(v));
        const Value* attr = kwarg(kwargs, "attribute");
        bool ints = true;
        int64_t si = 0;
        double sf = 0;
        for (const auto& item : items) {
            Value x = attr ? attribute_path(item, attr->str()) : item;
            if (!x.is_number()) return invalid_argument(what, ": cannot add '", x.type_name(), "'");
            ints = ints && x.kind == Value::Kind::kInt;
            if (ints && __builtin_add_overflow(si, x.i, &si)) return invalid_argument(what, ": integer overflow");
            sf += x.as_double();
        }
        return ints ? Value::integer(si) : Value::number(sf);
    }
    if (name == "int") {
        if (v.kind == Value::Kind::kInt) return v;
        if (v.kind == Value::Kind::kFloat) {
            if (!std::isfinite(v.f) || std::fabs(v.f) >= 9.2e18) return invalid_argument(what, ": ", v.str(), " does not fit an integer");
            return Value::integer(int64_t(v.f));
        }
        if (v.kind == Value::Kind::kBool) return Value::integer(v.b);
        if (v.is_string()) {
            try { return Value::integer(std::stoll(strip(v.s, true, true, nullptr))); } catch (...) {}
        }
        const Value* d = arg(args, kwargs, 0, "default");
        return d ? *d : Value::integer(0);
    }
    if (name == "float") {
        if (v.is_number()) return Value::number(v.as_double());
        if (v.is_string()) {
            try { return Value::number(std::stod(strip(v.s, true, true, nullptr))); } catch (...) {}
        }
        const Value* d = arg(args, kwargs, 0, "default");
        return d ? *d : Value::number(0);
    }
    if (name == "abs") {
        if (v.kind == Value::Kind::kInt) return Value::integer(v.i < 0 ? -v.i : v.i);
        if (v.kind == Value::Kind::kFloat) return Value::number(std::fabs(v.f));
        return invalid_argument(what, ": expected a number");
    }
    if (name == "round") {
        if (!v.is_number()) return invalid_argument(what, ": expected a number");
        VOLT_ASSIGN_OR_RETURN(int64_t precision, int_arg(arg(args, kwargs, 0, "precision"), 0, what.c_str()));
        const Value* method = arg(args, kwargs, 1, "method");
        double scale = std::pow(10.0, double(precision)), x = v.as_double() * scale;
        std::string m = method ? method->str() : "common";
        double r = m == "ceil" ? std::ceil(x) : m == "floor" ? std::floor(x) : std::round(x);
        return Value::number(r / scale);
    }
    if (name == "indent") {
        VOLT_ASSIGN_OR_RETURN(int64_t width, int_arg(arg(args, kwargs, 0, "width"), 4, what.c_str()));
        if (width > 4096) return invalid_argument(what, ": width ", width, " is unreasonably large");
        const Value* first = arg(args, kwargs, 1, "first");
        const Value* blank = arg(args, kwargs, 2, "blank");
        std::string pad(size_t(std::max<int64_t>(width, 0)), ' '), s = v.str(), out;
        size_t pos = 0;
        bool first_line = true;
        while (pos <= s.size()) {
            size_t nl = s.find('\n', pos);
            std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
            bool indent_this = first_line ? (first && first->truthy()) : (!line.empty() || (blank && blank->truthy()));
            out += (indent_this ? pad : "") + line;
            if (nl == std::string::npos) break;
            out += '\n';
            pos = nl + 1;
            first_line = false;
        }
        return Value::string(std::move(out));
    }
    if (name == "wordcount") return Value::integer(int64_t(split(v.str(), nullptr, -1).size()));
    if (name == "attr") {
        VOLT_ASSIGN_OR_RETURN(std::string a, str_arg(arg(args, kwargs, 0, "name"), what.c_str()));
        return v.is_dict() && v.dict->find(a) ? *v.dict->find(a) : Value::undefined(a);
    }
    return invalid_argument("unknown filter '", name, "'");
}

Expected<bool> apply_test(const std::string& name, const Value& v, std::vector<Value>& args) {
    auto need_arg = [&]() -> Status {
        return args.empty() ? invalid_argument("test '", name, "' needs an argument") : Status::ok();
    };
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_number();
    if (name == "integer") return v.kind == Value::Kind::kInt;
    if (name == "float") return v.kind == Value::Kind::kFloat;
    if (name == "boolean") return v.kind == Value::Kind::kBool;
    if (name == "true") return v.kind == Value::Kind::kBool && v.b;
    if (name == "false") return v.kind == Value::Kind::kBool && !v.b;
    if (name == "mapping") return v.is_dict();
    if (name == "sequence") return v.is_list() || v.is_string() || v.is_dict();
    if (name == "iterable") return v.is_list() || v.is_string() || v.is_dict();
    if (name == "callable") return v.kind == Value::Kind::kCallable;
    if (name == "lower") return v.is_string() && map_case(v.s, 0) == v.s;
    if (name == "upper") return v.is_string() && map_case(v.s, 1) == v.s;
    if (name == "even" || name == "odd") {
        if (v.kind != Value::Kind::kInt) return invalid_argument("test '", name, "' needs an integer");
        return (v.i % 2 == 0) == (name == "even");
    }
    if (name == "divisibleby") {
        VOLT_RETURN_IF_ERROR(need_arg());
        if (v.kind != Value::Kind::kInt || args[0].kind != Value::Kind::kInt || args[0].i == 0)
            return invalid_argument("test 'divisibleby' needs non-zero integers");
        return v.i % args[0].i == 0;
    }
    if (name == "eq" || name == "equalto" || name == "==") { VOLT_RETURN_IF_ERROR(need_arg()); return equals(v, args[0]); }
    if (name == "ne" || name == "!=") { VOLT_RETURN_IF_ERROR(need_arg()); return !equals(v, args[0]); }
    if (name == "sameas") {
        VOLT_RETURN_IF_ERROR(need_arg());
        const Value& o = args[0];
        if (v.kind != o.kind) return false;
        if (v.is_list()) return v.list == o.list;
        if (v.is_dict()) return v.dict == o.dict;
        return equals(v, o);
    }
    if (name == "lt" || name == "le" || name == "gt" || name == "ge" || name == "<" || name == "<=" || name == ">" ||
        name == ">=" || name == "lessthan" || name == "greaterthan") {
        VOLT_RETURN_IF_ERROR(need_arg());
        VOLT_ASSIGN_OR_RETURN(int c, compare(v, args[0]));
        if (name == "lt" || name == "<" || name == "lessthan") return c < 0;
        if (name == "le" || name == "<=") return c <= 0;
        if (name == "gt" || name == ">" || name == "greaterthan") return c > 0;
        return c >= 0;
    }
    if (name == "in") {
        VOLT_RETURN_IF_ERROR(need_arg());
        const Value& c = args[0];
        if (c.is_string()) return v.is_string() && c.s.find(v.s) != std::string::npos;
        if (c.is_dict()) return v.is_string() && c.dict->find(v.s) != nullptr;
        VOLT_ASSIGN_OR_RETURN(auto items, iterate(c));
        for (const auto& x : items)
            if (equals(x, v)) return true;
        return false;
    }
    return invalid_argument("unknown test '", name, "'");
}

Value get_method(const Value& obj, const std::string& name) {
    auto bind = [&](auto fn) { return make_callable(fn); };
    if (obj.is_string()) {
        const std::string s = obj.s;
        if (name == "strip" || name == "lstrip" || name == "rstrip")
            return bind([s, name](std::vector<Value>& a, Kwargs&) -> Expected<Value> {
                return Value::string(strip(s, name != "rstrip", name != "lstrip", a.empty() ? nullptr : &a[0]));
            });
        if (name == "upper" || name == "lower" || name == "title" || name == "capitalize")
            return bind([s, name](std::vector<Value>&, Kwargs&) -> Expected<Value> {
                return Value::string(name == "upper" ? map_case(s, 1) : name == "lower" ? map_case(s, 0)
                                     : name == "title" ? title_case(s) : capitalize(s));
            });
        if (name == "startswith" || name == "endswith")
            return bind([s, name](std::vector<Value>& a, Kwargs&) -> Expected<Value> {
                if (a.empty()) return invalid_argument(name, "() takes a string or a tuple of strings");
                std::vector<Value> options = a[0].is_list() ? *a[0].list : std::vector<Value>{a[0]};
                for (const auto& o : options) {
                    if (!o.is_string()) return invalid_argument(name, "() takes a string or a tuple of strings");
                    bool hit = name == "startswith" ? s.compare(0, o.s.size(), o.s) == 0
                                                    : s.size() >= o.s.size() && s.compare(s.size() - o.s.size(), o.s.size(), o.s) == 0;
                    if (hit) return Value::boolean(true);
                }
                return Value::boolean(false);
            });
        if (name == "split")
            return bind([s](std::vector<Value>& a, Kwargs& k) -> Expected<Value> {
                const Value* sep = arg(a, k, 0, "sep");
                if (sep && !sep->is_none() && (!sep->is_string() || sep->s.empty())) return invalid_argument("split(): bad separator");
                VOLT_ASSIGN_OR_RETURN(int64_t maxsplit, int_arg(arg(a, k, 1, "maxsplit"), -1, "split()"));
                return Value::make_list(split(s, sep, maxsplit));
            });
        if (name == "splitlines")
            return bind([s](std::vector<Value>&, Kwargs&) -> Expected<Value> {
                List out;
                size_t pos = 0;
                while (pos < s.size()) {
                    size_t nl = s.find('\n', pos);
                    if (nl == std::string::npos) { out.push_back(Value::string(s.substr(pos))); break; }
                    size_t e = nl > pos && s[nl - 1] == '\r' ? nl - 1 : nl;
                    out.push_back(Value::string(s.substr(pos, e - pos)));
                    pos = nl + 1;
                }
                return Value::make_list(std::move(out));
            });
        if (name == "replace")
            return bind([s](std::vector<Value>& a, Kwargs& k) -> Expected<Value> {
                VOLT_ASSIGN_OR_RETURN(std::string from, str_arg(arg(a, k, 0, "old"), "replace()"));
                VOLT_ASSIGN_OR_RETURN(std::string to, str_arg(arg(a, k, 1, "new"), "replace()"));
                VOLT_ASSIGN_OR_RETURN(int64_t count, int_arg(arg(a, k, 2, "count"), -1, "replace()"));
                return Value::string(replace_all(s, from, to, count));
            });
        if (name == "find" || name == "count")
            return bind([s, name](std::vector<Value>& a, Kwargs& k) -> Expected<Value> {
                VOLT_ASSIGN_OR_RETURN(std::string sub, str_arg(arg(a, k, 0, "sub"), "find()"));
                if (name == "find") {
                    size_t f = s.find(sub);
                    if (f == std::string::npos) return Value::integer(-1);
                    int64_t cps = 0;
                    for (size_t i = 0; i < f; ++i) cps += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
                    return Value::integer(cps);
                }
                if (sub.empty()) return length_of(Value::string(s));
                int64_t n = 0;
                for (size_t f = s.find(sub); f != std::string::npos; f = s.find(sub, f + sub.size())) ++n;
                return Value::integer(n);
            });
        if (name == "join")
            return bind([s](std::vector<Value>& a, Kwargs&) -> Expected<Value> {
                if (a.empty()) return invalid_argument("join() takes an iterable");
                VOLT_ASSIGN_OR_RETURN(auto items, iterate(a[0]));
                std::string out;
                for (size_t i = 0; i < items.size(); ++i) {
                    if (!items[i].is_string()) return invalid_argument("join(): expected str items, got '", items[i].type_name(), "'");
                    out += (i ? s : "") + items[i].s;
                }
                return Value::string(std::move(out));
            });
        return Value::undefined(name);
    }
    if (obj.is_dict()) {
        auto dict = obj.dict;
        if (name == "get")
            return bind([dict](std::vector<Value>& a, Kwargs&) -> Expected<Value> {
                if (a.empty() || !a[0].is_string()) return invalid_argument("get() takes a string key");
                const Value* v = dict->find(a[0].s);
                return v ? *v : (a.size() > 1 ? a[1] : Value::none());
            });
        if (name == "items" || name == "keys" || name == "values")
            return bind([dict, name](std::vector<Value>&, Kwargs&) -> Expected<Value> {
                List out;
                for (const auto& [k, v] : dict->items()) {
                    if (name == "items") out.push_back(Value::make_tuple({Value::string(k), v}));
                    else out.push_back(name == "keys" ? Value::string(k) : v);
                }
                return Value::make_list(std::move(out));
            });
        return Value::undefined(name);
    }
    if (obj.is_list()) {
        auto list = obj.list;
        if (name == "index" || name == "count")
            return bind([list, name](std::vector<Value>& a, Kwargs&) -> Expected<Value> {
                if (a.empty()) return invalid_argument(name, "() takes one argument");
                int64_t n = 0;
                for (size_t i = 0; i < list->size(); ++i) {
                    if (!equals((*list)[i], a[0])) continue;
                    if (name == "index") return Value::integer(int64_t(i));
                    ++n;
                }
                if (name == "index") return invalid_argument(a[0].repr(), " is not in list");
                return Value::integer(n);
            });
    }
    return Value::undefined(name);
}

Value builtin_globals() {
    Value g = Value::make_dict();
    g.dict->set("range", make_callable([](std::vector<Value>& a, Kwargs&) -> Expected<Value> {
        int64_t start = 0, stop = 0, step = 1;
        for (const auto& x : a)
            if (x.kind != Value::Kind::kInt) return invalid_argument("range() takes integers");
        if (a.size() == 1) stop = a[0].i;
        else if (a.size() >= 2) { start = a[0].i; stop = a[1].i; if (a.size() > 2) step = a[2].i; }
        else return invalid_argument("range() takes 1 to 3 integers");
        if (step == 0) return invalid_argument("range() step must not be zero");
        List out;
        // 128-bit arithmetic: stop - start and the step walk must not overflow for extreme arguments.
        const Wide span = step > 0 ? Wide(stop) - start : Wide(start) - stop;
        const Wide stride = step > 0 ? Wide(step) : -Wide(step);
        const Wide count = span > 0 ? (span - 1) / stride + 1 : 0;
        if (count > (1 << 20)) return resource_exhausted("range() longer than 1M items");
        for (Wide k = 0; k < count; ++k) out.push_back(Value::integer(int64_t(start + k * step)));
        return Value::make_list(std::move(out));
    }));
    g.dict->set("namespace", make_callable([](std::vector<Value>& a, Kwargs& k) -> Expected<Value> {
        Value ns = Value::make_dict();
        ns.is_namespace = true;
        for (const auto& x : a) {
            if (!x.is_dict()) return invalid_argument("namespace() takes keyword arguments or a dict");
            for (const auto& [key, val] : x.dict->items()) ns.dict->set(key, val);
        }
        for (auto& [key, val] : k) ns.dict->set(key, val);
        return ns;
    }));
    g.dict->set("dict", make_callable([](std::vector<Value>& a, Kwargs& k) -> Expected<Value> {
        Value d = Value::make_dict();
        for (const auto& x : a)
            if (x.is_dict()) for (const auto& [key, val] : x.dict->items()) d.dict->set(key, val);
        for (auto& [key, val] : k) d.dict->set(key, val);
        return d;
    }));
    g.dict->set("raise_exception", make_callable([](std::vector<Value>& a, Kwargs&) -> Expected<Value> {
        return invalid_argument("the chat template raised an error: ", a.empty() ? std::string("(no message)") : a[0].str());
    }));
    // transformers exposes strftime_now for templates that print today's date.
    g.dict->set("strftime_now", make_callable([](std::vector<Value>& a, Kwargs&) -> Expected<Value> {
        if (a.empty() || !a[0].is_string()) return invalid_argument("strftime_now() takes a format string");
        std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
        std::tm tm{};
        localtime_r(&t, &tm);
        char buf[256];
        size_t n = std::strftime(buf, sizeof buf, a[0].s.c_str(), &tm);
        return Value::string(std::string(buf, n));
    }));
    return g;
}

}  // namespace volt::text::jinja
