#include "text/tokenizer/jinja_parser.h"

#include <cctype>
#include <cstdlib>

#include "text/tokenizer/utf8.h"

namespace volt::text::jinja {
namespace {

// ---- stage 1: split the source into text, {{ expression }} and {% statement %} chunks --------------------------

struct Chunk {
    enum class Kind { kText, kExpr, kStmt };
    Kind kind;
    std::string content;
    int line;
};

int line_of(std::string_view src, size_t pos) {
    int line = 1;
    for (size_t i = 0; i < pos && i < src.size(); ++i) line += src[i] == '\n';
    return line;
}

// End of a tag body: the closer outside string literals.
size_t find_closer(std::string_view src, size_t from, std::string_view closer) {
    char quote = 0;
    for (size_t i = from; i < src.size(); ++i) {
        char c = src[i];
        if (quote) {
            if (c == '\\') ++i;
            else if (c == quote) quote = 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (src.compare(i, closer.size(), closer) == 0) {
            return i;
        }
    }
    return std::string_view::npos;
}

Expected<std::vector<Chunk>> split_chunks(std::string_view src, const std::string& where) {
    // Jinja's keep_trailing_newline=False: one trailing newline of the source is dropped.
    if (src.size() >= 2 && src.substr(src.size() - 2) == "\r\n") src.remove_suffix(2);
    else if (!src.empty() && (src.back() == '\n' || src.back() == '\r')) src.remove_suffix(1);
    std::vector<Chunk> out;
    size_t pos = 0;
    bool strip_next = false;     // previous tag ended with '-'
    bool trim_newline = false;   // previous tag was a block/comment: trim_blocks drops one newline
    auto emit_text = [&](std::string text, int line) {
        if (!text.empty()) out.push_back({Chunk::Kind::kText, std::move(text), line});
    };
    while (pos <= src.size()) {
        size_t open = pos;
        for (;;) {
            open = src.find('{', open);
            if (open == std::string_view::npos || open + 1 >= src.size()) { open = std::string_view::npos; break; }
            char n = src[open + 1];
            if (n == '{' || n == '%' || n == '#') break;
            ++open;
        }
        size_t text_end = open == std::string_view::npos ? src.size() : open;
        std::string text(src.substr(pos, text_end - pos));
        // Whether `text` starts a line: the template start, or the previous tag's consumed tail ended in a newline.
        bool line_starting = pos == 0;
        if (strip_next) {
            size_t k = 0;
            while (k < text.size() && std::isspace(static_cast<unsigned char>(text[k]))) ++k;
            line_starting = k > 0 && text[k - 1] == '\n';
            text.erase(0, k);
        } else if (trim_newline) {
            if (text.compare(0, 1, "\n") == 0) text.erase(0, 1), line_starting = true;
            else if (text.compare(0, 2, "\r\n") == 0) text.erase(0, 2), line_starting = true;
        }
        if (open == std::string_view::npos) {
            emit_text(std::move(text), line_of(src, pos));
            break;
        }
        const char kind = src[open + 1];
        const char marker = open + 2 < src.size() ? src[open + 2] : 0;
        if (marker == '-') {
            while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
        } else if (marker != '+' && (kind == '%' || kind == '#')) {
            // lstrip_blocks: spaces and tabs between the start of a line and a block or comment tag are dropped.
            size_t line_begin = text.rfind('\n');
            line_begin = line_begin == std::string::npos ? 0 : line_begin + 1;
            if ((line_begin > 0 || line_starting) &&
                text.find_first_not_of(" \t", line_begin) == std::string::npos)
                text.erase(line_begin);
        }
        emit_text(std::move(text), line_of(src, pos));
        const int line = line_of(src, open);
        size_t body = open + 2 + ((marker == '-' || marker == '+') ? 1 : 0);
        if (kind == '#') {
            size_t close = src.find("#}", body);
            if (close == std::string_view::npos) return invalid_argument(where, ": line ", line, ": unclosed comment");
            strip_next = close > 0 && src[close - 1] == '-';
            trim_newline = true;
            pos = close + 2;
            continue;
        }
        std::string_view closer = kind == '{' ? "}}" : "%}";
        size_t close = find_closer(src, body, closer);
        if (close == std::string_view::npos)
            return invalid_argument(where, ": line ", line, ": unclosed '", kind == '{' ? "{{" : "{%", "'");
        strip_next = close > body && src[close - 1] == '-';
        // `+%}` keeps the newline after a block tag that trim_blocks would drop.
        const bool keep_newline = kind == '%' && close > body && src[close - 1] == '+';
        size_t content_end = strip_next || keep_newline ? close - 1 : close;
        std::string content(src.substr(body, content_end - body));
        trim_newline = kind == '%' && !keep_newline;
        pos = close + 2;
        // {% raw %} ... {% endraw %}: the body is text, not template syntax.
        std::string trimmed = content;
        while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
        while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) trimmed.erase(0, 1);
        if (kind == '%' && trimmed == "raw") {
            size_t end = pos;
            for (;;) {
                end = src.find("{%", end);
                if (end == std::string_view::npos) return invalid_argument(where, ": line ", line, ": unclosed raw block");
                size_t b = end + 2 + (src[end + 2] == '-' ? 1 : 0);
                size_t c = src.find("%}", b);
                if (c == std::string_view::npos) return invalid_argument(where, ": line ", line, ": unclosed raw block");
                std::string_view tag = src.substr(b, c - b);
                if (!tag.empty() && tag.back() == '-') tag.remove_suffix(1);
                while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.front()))) tag.remove_prefix(1);
                while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.back()))) tag.remove_suffix(1);
                if (tag == "endraw") {
                    std::string raw(src.substr(pos, end - pos));
                    if (trim_newline && raw.compare(0, 1, "\n") == 0) raw.erase(0, 1);
                    emit_text(std::move(raw), line);
                    strip_next = src[c - 1] == '-';
                    pos = c + 2;
                    break;
                }
                end = c;
            }
            continue;
        }
        out.push_back({kind == '{' ? Chunk::Kind::kExpr : Chunk::Kind::kStmt, std::move(content), line});
    }
    return out;
}

// ---- stage 2: tokens of one tag ---------------------------------------------------------------------------------

struct Token {
    enum class Kind { kName, kString, kInt, kFloat, kOp, kEnd };
    Kind kind;
    std::string text;
    int64_t i = 0;
    double f = 0;
};

Expected<std::vector<Token>> lex(std::string_view s, const std::string& where, int line) {
    std::vector<Token> out;
    size_t i = 0;
    auto error = [&](const std::string& what) { return invalid_argument(where, ": line ", line, ": ", what); };
    while (i < s.size()) {
        char c = s[i];
        if (std::isspace(static_cast<unsigned char>(c))) { ++i; continue; }
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            size_t j = i;
            while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
            out.push_back({Token::Kind::kName, std::string(s.substr(i, j - i))});
            i = j;
            continue;
        }
        if (std::isdigit(static_cast<unsigned char>(c))) {
            size_t j = i;
            bool is_float = false;
            while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
            if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
                is_float = true;
                ++j;
                while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
            }
            if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
                size_t k = j + 1;
                if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
                if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
                    is_float = true;
                    j = k;
                    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
                }
            }
            std::string num;
            for (char d : s.substr(i, j - i)) if (d != '_') num += d;
            Token t{is_float ? Token::Kind::kFloat : Token::Kind::kInt, num};
            if (is_float) t.f = std::strtod(num.c_str(), nullptr);
            else t.i = std::strtoll(num.c_str(), nullptr, 10);
            out.push_back(t);
            i = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            std::string value;
            size_t j = i + 1;
            for (; j < s.size() && s[j] != c; ++j) {
                if (s[j] != '\\' || j + 1 >= s.size()) { value += s[j]; continue; }
                char e = s[++j];
                switch (e) {
                    case 'n': value += '\n'; break;
                    case 't': value += '\t'; break;
                    case 'r': value += '\r'; break;
                    case '0': value += '\0'; break;
                    case '\\': value += '\\'; break;
                    case '\'': value += '\''; break;
                    case '"': value += '"'; break;
                    case 'u': case 'x': case 'U': {
                        size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                        if (j + len >= s.size()) return error("truncated escape in string literal");
                        std::string hex(s.substr(j + 1, len));
                        char* endp = nullptr;
                        unsigned long cp = std::strtoul(hex.c_str(), &endp, 16);
                        if (hex.size() != len || *endp != 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                            return error("invalid escape \\" + std::string(1, e) + hex + " in string literal");
                        utf8_append(value, char32_t(cp));
                        j += len;
                        break;
                    }
                    default: value += '\\'; value += e;  // Python keeps unknown escapes verbatim
                }
            }
            if (j >= s.size()) return error("unterminated string literal");
            out.push_back({Token::Kind::kString, std::move(value)});
            i = j + 1;
            continue;
        }
        static const char* kOps[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                                     "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"};
        bool matched = false;
        for (const char* op : kOps) {
            size_t n = std::char_traits<char>::length(op);
            if (s.compare(i, n, op) == 0) {
                out.push_back({Token::Kind::kOp, op});
                i += n;
                matched = true;
                break;
            }
        }
        if (!matched) return error(std::string("unexpected character '") + c + "' in template expression");
    }
    out.push_back({Token::Kind::kEnd, ""});
    return out;
}

// ---- stage 3: recursive descent --------------------------------------------------------------------------------

// Recursion bound for expressions and blocks: real templates nest a handful of levels; a hostile one must not
// exhaust the stack.
constexpr int kMaxNesting = 200;

struct DepthGuard {
    explicit DepthGuard(int& d) : depth(d) { ++depth; }
    ~DepthGuard() { --depth; }
    int& depth;
};

class ExprParser {
public:
    ExprParser(std::vector<Token> toks, const std::string& where, int line) : t_(std::move(toks)), where_(where), line_(line) {}

    bool at_end() const { return t_[p_].kind == Token::Kind::kEnd; }
    bool peek_name(const char* n, size_t ahead = 0) const {
        return p_ + ahead < t_.size() && t_[p_ + ahead].kind == Token::Kind::kName && t_[p_ + ahead].text == n;
    }
    bool peek_op(const char* o) const { return t_[p_].kind == Token::Kind::kOp && t_[p_].text == o; }
    bool accept_name(const char* n) { if (peek_name(n)) { ++p_; return true; } return false; }
    bool accept_op(const char* o) { if (peek_op(o)) { ++p_; return true; } return false; }
    Status expect_op(const char* o) {
        if (accept_op(o)) return Status::ok();
        return error(std::string("expected '") + o + "', got " + describe());
    }
    Expected<std::string> expect_identifier() {
        if (t_[p_].kind != Token::Kind::kName) return error("expected a name, got " + describe());
        return t_[p_++].text;
    }
    Status expect_end() { return at_end() ? Status::ok() : error("unexpected " + describe()); }
    Status error(const std::string& what) const { return invalid_argument(where_, ": line ", line_, ": ", what); }
    std::string describe() const {
        const Token& t = t_[p_];
        if (t.kind == Token::Kind::kEnd) return "end of tag";
        return "'" + t.text + "'";
    }

    Expected<ExprPtr> expression() {  // conditional expression
        DepthGuard guard(depth_);
        if (depth_ > kMaxNesting) return error("expression nested too deeply");
        VOLT_ASSIGN_OR_RETURN(ExprPtr e, or_expr());
        if (peek_name("if")) {
            ++p_;
            auto n = make(Expr::Kind::kConditional);
            VOLT_ASSIGN_OR_RETURN(ExprPtr cond, or_expr());
            ExprPtr other;
            if (accept_name("else")) {
                VOLT_ASSIGN_OR_RETURN(other, expression());
            }
            n->items.push_back(std::move(e));
            n->items.push_back(std::move(cond));
            n->items.push_back(std::move(other));
            return n;
        }
        return e;
    }

    // Expression without a trailing `if` (the iterable of `for x in xs if cond`).
    Expected<ExprPtr> or_expr() {
        VOLT_ASSIGN_OR_RETURN(ExprPtr l, and_expr());
        while (accept_name("or")) {
            VOLT_ASSIGN_OR_RETURN(ExprPtr r, and_expr());
            l = binary("or", std::move(l), std::move(r));
        }
        return l;
    }

    // A tuple of expressions without parentheses (`set a, b = ...` values, `for` iterables are single).
    Expected<ExprPtr> tuple_or_expression() {
        VOLT_ASSIGN_OR_RETURN(ExprPtr first, expression());
        if (!peek_op(",")) return first;
        auto tup = make(Expr::Kind::kTuple);
        tup->items.push_back(std::move(first));
        while (accept_op(",")) {
            if (at_end()) break;
            VOLT_ASSIGN_OR_RETURN(ExprPtr e, expression());
            tup->items.push_back(std::move(e));
        }
        return tup;
    }

private:
    ExprPtr make(Expr::Kind k) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->line = line_;
        return e;
    }
    ExprPtr binary(std::string op, ExprPtr l, ExprPtr r) {
        auto e = make(Expr::Kind::kBinary);
        e->name = std::move(op);
        e->a = std::move(l);
        e->b = std::move(r);
        return e;
    }

    Expected<ExprPtr> and_expr() {
        VOLT_ASSIGN_OR_RETURN(ExprPtr l, not_expr());
        while (accept_name("and")) {
            VOLT_ASSIGN_OR_RETURN(ExprPtr r, not_expr());
            l = binary("and", std::move(l), std::move(r));
        }
        return l;
    }
    Expected<ExprPtr> not_expr() {
        DepthGuard guard(depth_);
        if (depth_ > kMaxNesting) return error("expression nested too deeply");
        if (accept_name("not")) {
            auto e = make(Expr::Kind::kUnary);
            e->name = "not";
            VOLT_ASSIGN_OR_RETURN(e->a, not_expr());
            return e;
        }
        return compare();
    }
    Expected<ExprPtr> compare() {
        VOLT_ASSIGN_OR_RETURN(ExprPtr first, math1());
        ExprPtr chain;
        for (;;) {
            std::string op;
            if (t_[p_].kind == Token::Kind::kOp &&
                (peek_op("==") || peek_op("!=") || peek_op("<") || peek_op("<=") || peek_op(">") || peek_op(">="))) {
                op = t_[p_++].text;
            } else if (accept_name("in")) {
                op = "in";
            } else if (peek_name("not") && peek_name("in", 1)) {
                p_ += 2;
                op = "not in";
            } else {
                break;
            }
            if (!chain) {
                chain = make(Expr::Kind::kCompare);
                chain->items.push_back(std::move(first));
            }
            VOLT_ASSIGN_OR_RETURN(ExprPtr r, math1());
            chain->items.push_back(std::move(r));
            chain->ops.push_back(std::move(op));
        }
        return chain ? std::move(chain) : std::move(first);
    }
    Expected<ExprPtr> math1() {
        VOLT_ASSIGN_OR_RETURN(ExprPtr l, concat());
        while (peek_op("+") || peek_op("-")) {
            std::string op = t_[p_++].text;
            VOLT_ASSIGN_OR_RETURN(ExprPtr r, concat());
            l = binary(op, std::move(l), std::move(r));
        }
        return l;
    }
    Expected<ExprPtr> concat() {
        VOLT_ASSIGN_OR_RETURN(ExprPtr l, math2());
        while (accept_op("~")) {
            VOLT_ASSIGN_OR_RETURN(ExprPtr r, math2());
            l = binary("~", std::move(l), std::move(r));
        }
        return l;
    }
    Expected<ExprPtr> math2() {
        VOLT_ASSIGN_OR_RETURN(ExprPtr l, power());
        while (peek_op("*") || peek_op("/") || peek_op("//") || peek_op("%")) {
            std::string op = t_[p_++].text;
            VOLT_ASSIGN_OR_RETURN(ExprPtr r, power());
            l = binary(op, std::move(l), std::move(r));
        }
        return l;
    }
    Expected<ExprPtr> power() {
        VOLT_ASSIGN_OR_RETURN(ExprPtr l, unary());
        while (accept_op("**")) {
            VOLT_ASSIGN_OR_RETURN(ExprPtr r, unary());
            l = binary("**", std::move(l), std::move(r));
        }
        return l;
    }
    // Jinja applies filters and tests to the negated operand: `-3 | abs` is 3.
    Expected<ExprPtr> unary(bool with_filters = true) {
        DepthGuard guard(depth_);
        if (depth_ > kMaxNesting) return error("expression nested too deeply");
        ExprPtr e;
        if (peek_op("-") || peek_op("+")) {
            e = make(Expr::Kind::kUnary);
            e->name = t_[p_++].text;
            VOLT_ASSIGN_OR_RETURN(e->a, unary(false));
        } else {
            VOLT_ASSIGN_OR_RETURN(e, primary());
            VOLT_ASSIGN_OR_RETURN(e, postfix(std::move(e)));
        }
        if (!with_filters) return e;
        return filters_and_tests(std::move(e));
    }

    Status call_args(Expr& call) {  // after '('
        while (!accept_op(")")) {
            if (t_[p_].kind == Token::Kind::kName && p_ + 1 < t_.size() && t_[p_ + 1].kind == Token::Kind::kOp &&
                t_[p_ + 1].text == "=") {
                std::string key = t_[p_].text;
                p_ += 2;
                VOLT_ASSIGN_OR_RETURN(ExprPtr v, expression());
                call.kwargs.emplace_back(std::move(key), std::move(v));
            } else {
                if (!call.kwargs.empty()) return error("positional argument after keyword argument");
                VOLT_ASSIGN_OR_RETURN(ExprPtr v, expression());
                call.items.push_back(std::move(v));
            }
            if (!accept_op(",")) {
                VOLT_RETURN_IF_ERROR(expect_op(")"));
                break;
            }
        }
        return Status::ok();
    }

    Expected<ExprPtr> postfix(ExprPtr e) {
        for (;;) {
            if (accept_op(".")) {
                auto n = make(Expr::Kind::kAttribute);
                if (t_[p_].kind == Token::Kind::kInt) {  // a.0 == a[0] in Jinja
                    n->kind = Expr::Kind::kItem;
                    auto idx = make(Expr::Kind::kLiteral);
                    idx->value = Value::integer(t_[p_++].i);
                    n->b = std::move(idx);
                } else {
                    VOLT_ASSIGN_OR_RETURN(n->name, expect_identifier());
                }
                n->a = std::move(e);
                e = std::move(n);
            } else if (accept_op("[")) {
                ExprPtr start, stop, step;
                bool slice = false;
                if (!peek_op(":")) {
                    VOLT_ASSIGN_OR_RETURN(start, expression());
                }
                if (accept_op(":")) {
                    slice = true;
                    if (!peek_op("]") && !peek_op(":")) {
                        VOLT_ASSIGN_OR_RETURN(stop, expression());
                    }
                    if (accept_op(":") && !peek_op("]")) {
                        VOLT_ASSIGN_OR_RETURN(step, expression());
                    }
                }
                VOLT_RETURN_IF_ERROR(expect_op("]"));
                if (slice) {
                    auto n = make(Expr::Kind::kSlice);
                    n->a = std::move(e);
                    n->items.push_back(std::move(start));
                    n->items.push_back(std::move(stop));
                    n->items.push_back(std::move(step));
                    e = std::move(n);
                } else {
                    if (!start) return error("empty subscript");
                    auto n = make(Expr::Kind::kItem);
                    n->a = std::move(e);
                    n->b = std::move(start);
                    e = std::move(n);
                }
            } else if (accept_op("(")) {
                auto n = make(Expr::Kind::kCall);
                n->a = std::move(e);
                VOLT_RETURN_IF_ERROR(call_args(*n));
                e = std::move(n);
            } else {
                return e;
            }
        }
    }

    Expected<ExprPtr> filters_and_tests(ExprPtr e) {
        for (;;) {
            if (accept_op("|")) {
                auto n = make(Expr::Kind::kFilter);
                VOLT_ASSIGN_OR_RETURN(n->name, expect_identifier());
                if (accept_op("(")) VOLT_RETURN_IF_ERROR(call_args(*n));
                n->a = std::move(e);
                e = std::move(n);
            } else if (accept_name("is")) {
                auto n = make(Expr::Kind::kTest);
                n->negated = accept_name("not");
                VOLT_ASSIGN_OR_RETURN(n->name, expect_identifier());
                if (accept_op("(")) {
                    VOLT_RETURN_IF_ERROR(call_args(*n));
                } else if (!at_end() && (t_[p_].kind == Token::Kind::kString || t_[p_].kind == Token::Kind::kInt ||
                                         t_[p_].kind == Token::Kind::kFloat ||
                                         (t_[p_].kind == Token::Kind::kName && !peek_name("and") && !peek_name("or") &&
                                          !peek_name("if") && !peek_name("else") && !peek_name("is") &&
                                          !peek_name("in") && !peek_name("not")))) {
                    // `x is divisibleby 3`, `x is sameas none`: one argument without parentheses.
                    VOLT_ASSIGN_OR_RETURN(ExprPtr arg, primary());
                    VOLT_ASSIGN_OR_RETURN(arg, postfix(std::move(arg)));
                    n->items.push_back(std::move(arg));
                }
                n->a = std::move(e);
                e = std::move(n);
            } else {
                return e;
            }
        }
    }

    Expected<ExprPtr> primary() {
        const Token& t = t_[p_];
        switch (t.kind) {
            case Token::Kind::kString: {
                auto e = make(Expr::Kind::kLiteral);
                std::string s = t_[p_++].text;
                while (t_[p_].kind == Token::Kind::kString) s += t_[p_++].text;  // adjacent literals concatenate
                e->value = Value::string(std::move(s));
                return e;
            }
            case Token::Kind::kInt: {
                auto e = make(Expr::Kind::kLiteral);
                e->value = Value::integer(t_[p_++].i);
                return e;
            }
            case Token::Kind::kFloat: {
                auto e = make(Expr::Kind::kLiteral);
                e->value = Value::number(t_[p_++].f);
                return e;
            }
            case Token::Kind::kName: {
                std::string n = t_[p_++].text;
                auto e = make(Expr::Kind::kLiteral);
                if (n == "true" || n == "True") e->value = Value::boolean(true);
                else if (n == "false" || n == "False") e->value = Value::boolean(false);
                else if (n == "none" || n == "None") e->value = Value::none();
                else {
                    e->kind = Expr::Kind::kName;
                    e->name = n;
                }
                return e;
            }
            case Token::Kind::kOp: {
                if (accept_op("(")) {
                    if (accept_op(")")) return make(Expr::Kind::kTuple);
                    VOLT_ASSIGN_OR_RETURN(ExprPtr first, expression());
                    if (accept_op(")")) return first;
                    auto tup = make(Expr::Kind::kTuple);
                    tup->items.push_back(std::move(first));
                    while (accept_op(",")) {
                        if (peek_op(")")) break;  // (x,)
                        VOLT_ASSIGN_OR_RETURN(ExprPtr e, expression());
                        tup->items.push_back(std::move(e));
                    }
                    VOLT_RETURN_IF_ERROR(expect_op(")"));
                    return tup;
                }
                if (accept_op("[")) {
                    auto list = make(Expr::Kind::kList);
                    while (!accept_op("]")) {
                        VOLT_ASSIGN_OR_RETURN(ExprPtr e, expression());
                        list->items.push_back(std::move(e));
                        if (!accept_op(",")) {
                            VOLT_RETURN_IF_ERROR(expect_op("]"));
                            break;
                        }
                    }
                    return list;
                }
                if (accept_op("{")) {
                    auto dict = make(Expr::Kind::kDict);
                    while (!accept_op("}")) {
                        VOLT_ASSIGN_OR_RETURN(ExprPtr k, expression());
                        VOLT_RETURN_IF_ERROR(expect_op(":"));
                        VOLT_ASSIGN_OR_RETURN(ExprPtr v, expression());
                        dict->kwargs.emplace_back("", std::move(v));
                        dict->items.push_back(std::move(k));
                        if (!accept_op(",")) {
                            VOLT_RETURN_IF_ERROR(expect_op("}"));
                            break;
                        }
                    }
                    return dict;
                }
                break;
            }
            default: break;
        }
        return error("unexpected " + describe() + " in expression");
    }

    std::vector<Token> t_;
    size_t p_ = 0;
    const std::string& where_;
    int line_;
    int depth_ = 0;
};

class TemplateParser {
public:
    TemplateParser(std::vector<Chunk> chunks, const std::string& where) : chunks_(std::move(chunks)), where_(where) {}

    Expected<std::shared_ptr<const Template>> parse() {
        auto t = std::make_shared<Template>();
        std::string stop;
        VOLT_RETURN_IF_ERROR(parse_body(t->nodes, {}, &stop));
        if (!stop.empty()) return error(chunks_[i_ - 1].line, "unexpected '{% " + stop + " %}'");
        return std::shared_ptr<const Template>(std::move(t));
    }

private:
    Status error(int line, const std::string& what) const { return invalid_argument(where_, ": line ", line, ": ", what); }

    static std::string keyword_of(const std::string& content) {
        size_t b = 0;
        while (b < content.size() && std::isspace(static_cast<unsigned char>(content[b]))) ++b;
        size_t e = b;
        while (e < content.size() && (std::isalnum(static_cast<unsigned char>(content[e])) || content[e] == '_')) ++e;
        return content.substr(b, e - b);
    }

    // Parses nodes until a statement whose keyword is in `stops` (returned through *stop, consumed) or the end.
    Status parse_body(NodeList& out, const std::vector<std::string>& stops, std::string* stop) {
        stop->clear();
        while (i_ < chunks_.size()) {
            const Chunk& c = chunks_[i_++];
            if (c.kind == Chunk::Kind::kText) {
                auto n = node(Node::Kind::kText, c.line);
                n->text = c.content;
                out.push_back(std::move(n));
                continue;
            }
            VOLT_ASSIGN_OR_RETURN(auto toks, lex(c.content, where_, c.line));
            ExprParser p(std::move(toks), where_, c.line);
            if (c.kind == Chunk::Kind::kExpr) {
                auto n = node(Node::Kind::kOutput, c.line);
                VOLT_ASSIGN_OR_RETURN(n->expr, p.tuple_or_expression());
                VOLT_RETURN_IF_ERROR(p.expect_end());
                out.push_back(std::move(n));
                continue;
            }
            std::string kw = keyword_of(c.content);
            for (const auto& s : stops)
                if (kw == s) {
                    *stop = kw;
                    current_ = std::make_unique<ExprParser>(std::move(p));
                    return Status::ok();
                }
            VOLT_ASSIGN_OR_RETURN(std::string name, p.expect_identifier());
            VOLT_RETURN_IF_ERROR(statement(name, p, c.line, out));
        }
        if (!stops.empty()) return error(chunks_.empty() ? 1 : chunks_.back().line,
                                         "missing '{% " + stops.back() + " %}' before the end of the template");
        return Status::ok();
    }

    std::unique_ptr<Node> node(Node::Kind k, int line) {
        auto n = std::make_unique<Node>();
        n->kind = k;
        n->line = line;
        return n;
    }

    Status statement(const std::string& kw, ExprParser& p, int line, NodeList& out) {
        DepthGuard guard(depth_);
        if (depth_ > kMaxNesting) return error(line, "blocks nested too deeply");
        std::string stop;
        if (kw == "if") {
            auto n = node(Node::Kind::kIf, line);
            VOLT_ASSIGN_OR_RETURN(ExprPtr cond, p.expression());
            VOLT_RETURN_IF_ERROR(p.expect_end());
            for (;;) {
                NodeList body;
                VOLT_RETURN_IF_ERROR(parse_body(body, {"elif", "else", "endif"}, &stop));
                n->branches.emplace_back(std::move(cond), std::move(body));
                if (stop == "elif") {
                    ExprParser& q = *current_;
                    (void)q.expect_identifier();
                    VOLT_ASSIGN_OR_RETURN(cond, q.expression());
                    VOLT_RETURN_IF_ERROR(q.expect_end());
                    continue;
                }
                if (stop == "else") {
                    VOLT_RETURN_IF_ERROR(end_of_tag());
                    VOLT_RETURN_IF_ERROR(parse_body(n->else_body, {"endif"}, &stop));
                }
                VOLT_RETURN_IF_ERROR(end_of_tag());
                break;
            }
            out.push_back(std::move(n));
            return Status::ok();
        }
        if (kw == "for") {
            auto n = node(Node::Kind::kFor, line);
            do {
                VOLT_ASSIGN_OR_RETURN(std::string t, p.expect_identifier());
                n->targets.push_back(std::move(t));
            } while (p.accept_op(","));
            if (!p.accept_name("in")) return p.error("expected 'in' in for loop");
            VOLT_ASSIGN_OR_RETURN(n->expr, p.or_expr());
            if (p.accept_name("if")) {
                VOLT_ASSIGN_OR_RETURN(n->filter, p.or_expr());
            }
            if (p.peek_name("recursive")) return p.error("recursive loops are not supported");
            VOLT_RETURN_IF_ERROR(p.expect_end());
            VOLT_RETURN_IF_ERROR(parse_body(n->body, {"else", "endfor"}, &stop));
            if (stop == "else") {
                VOLT_RETURN_IF_ERROR(end_of_tag());
                VOLT_RETURN_IF_ERROR(parse_body(n->else_body, {"endfor"}, &stop));
            }
            VOLT_RETURN_IF_ERROR(end_of_tag());
            out.push_back(std::move(n));
            return Status::ok();
        }
        if (kw == "set") {
            auto n = node(Node::Kind::kSet, line);
            VOLT_ASSIGN_OR_RETURN(std::string first, p.expect_identifier());
            n->targets.push_back(first);
            if (p.accept_op(".")) {
                VOLT_ASSIGN_OR_RETURN(n->target_attr, p.expect_identifier());
            } else {
                while (p.accept_op(",")) {
                    VOLT_ASSIGN_OR_RETURN(std::string t, p.expect_identifier());
                    n->targets.push_back(std::move(t));
                }
            }
            if (p.accept_op("=")) {
                VOLT_ASSIGN_OR_RETURN(n->expr, p.tuple_or_expression());
                VOLT_RETURN_IF_ERROR(p.expect_end());
            } else {
                VOLT_RETURN_IF_ERROR(p.expect_end());
                if (n->targets.size() != 1 || !n->target_attr.empty()) return p.error("a set block takes one name");
                n->kind = Node::Kind::kSetBlock;
                VOLT_RETURN_IF_ERROR(parse_body(n->body, {"endset"}, &stop));
                VOLT_RETURN_IF_ERROR(end_of_tag());
            }
            out.push_back(std::move(n));
            return Status::ok();
        }
        if (kw == "macro") {
            auto n = node(Node::Kind::kMacro, line);
            VOLT_ASSIGN_OR_RETURN(n->macro_name, p.expect_identifier());
            VOLT_RETURN_IF_ERROR(p.expect_op("("));
            while (!p.accept_op(")")) {
                VOLT_ASSIGN_OR_RETURN(std::string param, p.expect_identifier());
                ExprPtr def;
                if (p.accept_op("=")) {
                    VOLT_ASSIGN_OR_RETURN(def, p.expression());
                }
                n->params.emplace_back(std::move(param), std::move(def));
                if (!p.accept_op(",")) {
                    VOLT_RETURN_IF_ERROR(p.expect_op(")"));
                    break;
                }
            }
            VOLT_RETURN_IF_ERROR(p.expect_end());
            VOLT_RETURN_IF_ERROR(parse_body(n->body, {"endmacro"}, &stop));
            VOLT_RETURN_IF_ERROR(end_of_tag());
            out.push_back(std::move(n));
            return Status::ok();
        }
        if (kw == "generation") {  // transformers' AssistantTracker: marks assistant text, renders its body
            auto n = node(Node::Kind::kGeneration, line);
            VOLT_RETURN_IF_ERROR(p.expect_end());
            VOLT_RETURN_IF_ERROR(parse_body(n->body, {"endgeneration"}, &stop));
            VOLT_RETURN_IF_ERROR(end_of_tag());
            out.push_back(std::move(n));
            return Status::ok();
        }
        if (kw == "break" || kw == "continue") {
            VOLT_RETURN_IF_ERROR(p.expect_end());
            out.push_back(node(kw == "break" ? Node::Kind::kBreak : Node::Kind::kContinue, line));
            return Status::ok();
        }
        return error(line, "unsupported template statement '{% " + kw + " %}' (Volt renders chat templates with "
                           "if/for/set/macro/generation/break/continue)");
    }

    // The closing tag (endif, else, ...) must hold nothing after its keyword.
    Status end_of_tag() {
        ExprParser& q = *current_;
        (void)q.expect_identifier();
        return q.expect_end();
    }

    std::vector<Chunk> chunks_;
    size_t i_ = 0;
    const std::string& where_;
    std::unique_ptr<ExprParser> current_;  // parser of the stop tag parse_body returned at
    int depth_ = 0;
};

}  // namespace

Expected<std::shared_ptr<const Template>> parse_template(std::string_view source, const std::string& where) {
    // String operations walk code points; they assume valid UTF-8, as every later stage does.
    if (size_t bad = utf8_find_invalid(source); bad != std::string_view::npos)
        return invalid_argument(where, ": line ", line_of(source, bad), ": the template is not valid UTF-8");
    VOLT_ASSIGN_OR_RETURN(auto chunks, split_chunks(source, where));
    TemplateParser parser(std::move(chunks), where);
    return parser.parse();
}

}  // namespace volt::text::jinja
