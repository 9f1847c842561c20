#include "text/tokenizer/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace volt::text::jinja {

const Value* Dict::find(std::string_view key) const {
    for (const auto& [k, v] : items_)
        if (k == key) return &v;
    return nullptr;
}

Value* Dict::find(std::string_view key) {
    for (auto& [k, v] : items_)
        if (k == key) return &v;
    return nullptr;
}

void Dict::set(std::string key, Value value) {
    if (Value* v = find(key)) *v = std::move(value);
    else items_.emplace_back(std::move(key), std::move(value));
}

Value Value::make_dict() {
    Value v;
    v.kind = Kind::kDict;
    v.dict = std::make_shared<Dict>();
    return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null: return none();
        case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer:
        case nlohmann::ordered_json::value_t::number_unsigned: return integer(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_float: return number(j.get<double>());
        case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            Value v = make_list();
            for (const auto& e : j) v.list->push_back(from_json(e));
            return v;
        }
        case nlohmann::ordered_json::value_t::object: {
            Value v = make_dict();
            for (auto it = j.begin(); it != j.end(); ++it) v.dict->set(it.key(), from_json(it.value()));
            return v;
        }
        default: return undefined();
    }
}

bool Value::truthy() const {
    switch (kind) {
        case Kind::kUndefined:
        case Kind::kNone: return false;
        case Kind::kBool: return b;
        case Kind::kInt: return i != 0;
        case Kind::kFloat: return f != 0;
        case Kind::kString: return !s.empty();
        case Kind::kList: return !list->empty();
        case Kind::kDict: return dict->size() > 0;
        case Kind::kCallable: return true;
    }
    return false;
}

std::string Value::type_name() const {
    switch (kind) {
        case Kind::kUndefined: return "Undefined";
        case Kind::kNone: return "NoneType";
        case Kind::kBool: return "bool";
        case Kind::kInt: return "int";
        case Kind::kFloat: return "float";
        case Kind::kString: return "str";
        case Kind::kList: return "list";
        case Kind::kDict: return is_namespace ? "Namespace" : "dict";
        case Kind::kCallable: return "function";
    }
    return "?";
}

std::string python_float(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    // Shortest round-trip digits, then Python's repr layout: fixed for 1e-4 <= |x| < 1e16, else d.ddde+XX.
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
    std::string sci(buf, r.ptr);
    size_t epos = sci.find('e');
    std::string mant = sci.substr(0, epos);
    int exp = std::stoi(sci.substr(epos + 1));
    bool neg = mant[0] == '-';
    if (neg) mant.erase(0, 1);
    std::string digits;
    for (char c : mant) if (c != '.') digits += c;
    std::string out;
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            if (digits.size() <= size_t(exp) + 1) out = digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
            else out = digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
        } else {
            out = "0." + std::string(size_t(-exp - 1), '0') + digits;
        }
    } else {
        out = digits.substr(0, 1);
        if (digits.size() > 1) {
            out += '.';
            out += digits.substr(1);
        }
        char e[16];
        std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        out += e;
    }
    if (neg) out.insert(out.begin(), '-');
    return out;
}

namespace {

std::string python_string_repr(const std::string& s) {
    // Python picks single quotes unless the string contains ' and no ".
    bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
    char q = has_single && !has_double ? '"' : '\'';
    std::string out(1, q);
    for (unsigned char c : s) {
        if (c == q || c == '\\') { out += '\\'; out += char(c); }
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else out += char(c);
    }
    out += q;
    return out;
}

void json_string(const std::string& s, std::string& out) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += char(c);
                }
        }
    }
    out += '"';
}

Status json_value(const Value& v, std::optional<int> indent, int depth, std::string& out) {
    auto newline = [&](int d) {
        if (!indent) return;
        out += '\n';
        out += std::string(size_t(*indent * d), ' ');
    };
    const char* item_sep = indent ? "," : ", ";
    switch (v.kind) {
        case Value::Kind::kNone: out += "null"; return Status::ok();
        case Value::Kind::kBool: out += v.b ? "true" : "false"; return Status::ok();
        case Value::Kind::kInt: out += std::to_string(v.i); return Status::ok();
        case Value::Kind::kFloat:
            out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity") : python_float(v.f);
            return Status::ok();
        case Value::Kind::kString: json_string(v.s, out); return Status::ok();
        case Value::Kind::kList:
            if (v.list->empty()) { out += "[]"; return Status::ok(); }
            out += '[';
            for (size_t k = 0; k < v.list->size(); ++k) {
                if (k) out += item_sep;
                newline(depth + 1);
                VOLT_RETURN_IF_ERROR(json_value((*v.list)[k], indent, depth + 1, out));
            }
            newline(depth);
            out += ']';
            return Status::ok();
        case Value::Kind::kDict: {
            if (v.dict->size() == 0) { out += "{}"; return Status::ok(); }
            out += '{';
            size_t k = 0;
            for (const auto& [key, val] : v.dict->items()) {
                if (k++) out += item_sep;
                newline(depth + 1);
                json_string(key, out);
                out += ": ";
                VOLT_RETURN_IF_ERROR(json_value(val, indent, depth + 1, out));
            }
            newline(depth);
            out += '}';
            return Status::ok();
        }
        default:
            return invalid_argument("tojson: object of type '", v.type_name(), "' is not JSON serializable");
    }
}

}  // namespace

std::string Value::str() const {
    switch (kind) {
        case Kind::kUndefined: return "";
        case Kind::kNone: return "None";
        case Kind::kBool: return b ? "True" : "False";
        case Kind::kInt: return std::to_string(i);
        case Kind::kFloat: return python_float(f);
        case Kind::kString: return s;
        default: return repr();
    }
}

std::string Value::repr() const {
    switch (kind) {
        case Kind::kString: return python_string_repr(s);
        case Kind::kList: {
            std::string out = is_tuple ? "(" : "[";
            for (size_t k = 0; k < list->size(); ++k) out += (k ? ", " : "") + (*list)[k].repr();
            if (is_tuple && list->size() == 1) out += ",";
            return out + (is_tuple ? ")" : "]");
        }
        case Kind::kDict: {
            std::string out = is_namespace ? "<Namespace {" : "{";
            size_t k = 0;
            for (const auto& [key, val] : dict->items()) out += (k++ ? ", " : "") + python_string_repr(key) + ": " + val.repr();
            return out + (is_namespace ? "}>" : "}");
        }
        case Kind::kCallable: return "<function>";
        default: return str();
    }
}

bool equals(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) return a.as_double() == b.as_double();
    if (a.kind == Value::Kind::kBool && b.is_number()) return double(a.b) == b.as_double();
    if (b.kind == Value::Kind::kBool && a.is_number()) return double(b.b) == a.as_double();
    if (a.kind != b.kind) return false;
    switch (a.kind) {
        case Value::Kind::kUndefined:
        case Value::Kind::kNone: return true;
        case Value::Kind::kBool: return a.b == b.b;
        case Value::Kind::kString: return a.s == b.s;
        case Value::Kind::kList:
            if (a.list->size() != b.list->size()) return false;
            for (size_t k = 0; k < a.list->size(); ++k)
                if (!equals((*a.list)[k], (*b.list)[k])) return false;
            return true;
        case Value::Kind::kDict:
            if (a.dict->size() != b.dict->size()) return false;
            for (const auto& [key, val] : a.dict->items()) {
                const Value* o = b.dict->find(key);
                if (!o || !equals(val, *o)) return false;
            }
            return true;
        default: return a.fn == b.fn;
    }
}

Expected<int> compare(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) return a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double() ? 1 : 0;
    if (a.is_string() && b.is_string()) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
    return invalid_argument("cannot compare '", a.type_name(), "' with '", b.type_name(), "'");
}

Expected<std::string> to_json(const Value& v, std::optional<int> indent) {
    std::string out;
    VOLT_RETURN_IF_ERROR(json_value(v, indent, 0, out));
    return out;
}

}  // namespace volt::text::jinja
