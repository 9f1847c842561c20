#include "text/tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace volt::text {

struct Regex::Compiled {
    pcre2_code* code = nullptr;
    bool jit = false;
    ~Compiled() { if (code) pcre2_code_free(code); }
};

// Per-call match state. Look-ahead-heavy patterns over long whitespace runs need more than PCRE2's default 32 KiB
// JIT stack, so each matcher carries its own (grown to 8 MiB at most).
struct Regex::Matcher {
    pcre2_match_data* data = nullptr;
    pcre2_jit_stack* stack = nullptr;
    pcre2_match_context* context = nullptr;
    Matcher() = default;
    Matcher(Matcher&& o) noexcept : data(o.data), stack(o.stack), context(o.context) {
        o.data = nullptr;
        o.stack = nullptr;
        o.context = nullptr;
    }
    ~Matcher() {
        if (data) pcre2_match_data_free(data);
        if (context) pcre2_match_context_free(context);
        if (stack) pcre2_jit_stack_free(stack);
    }
};

namespace {
std::string pcre2_message(int code) {
    PCRE2_UCHAR buf[256];
    int n = pcre2_get_error_message(code, buf, sizeof buf);
    return n < 0 ? "unknown PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<char*>(buf), size_t(n));
}
}  // namespace

namespace {
// Unicode White_Space, and Oniguruma's \w (checked code point by code point against tokenizers' Oniguruma).
constexpr std::string_view kSpaceSet = R"(\t\n\x0B\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
constexpr std::string_view kWordSet = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{B2}\x{B3}\x{B9}\x{BC}-\x{BE})";
// Inside a bracket expression Oniguruma's \w lacks the Latin-1 superscripts and fractions (tests/data: regex_classes).
constexpr std::string_view kWordSetInClass = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc})";
}  // namespace

std::string oniguruma_to_pcre2(std::string_view p) {
    std::string out;
    out.reserve(p.size() + 64);
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            char e = p[i + 1];
            std::string_view set = (e == 's' || e == 'S') ? kSpaceSet : (e == 'w' || e == 'W') ? kWordSet : "";
            bool negated = e == 'S' || e == 'W';
            if (!set.empty() && in_class && !negated) {
                out += set == kWordSet ? kWordSetInClass : set;
            } else if (!set.empty() && !in_class) {
                out += negated ? "[^" : "[";
                out += set;
                out += "]";
            } else {
                out += c;
                out += e;
            }
            ++i;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out += c;
            // A ']' right after '[' or '[^' is a literal member, not the end of the class.
            if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
            if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
            continue;
        }
        if (in_class && p.substr(i, 9) == "[:punct:]") {
            out += "\\p{P}\\p{S}";
            i += 8;
            continue;
        }
        if (in_class && p.substr(i, 2) == "[:") {  // other POSIX classes mean the same in both engines
            size_t end = p.find(":]", i + 2);
            if (end != std::string_view::npos) {
                out += p.substr(i, end + 2 - i);
                i = end + 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = false;
        out += c;
    }
    return out;
}

Expected<Regex> Regex::compile(std::string_view onig_pattern, std::string_view where, Dialect dialect) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    const std::string translated =
        dialect == Dialect::kOniguruma ? oniguruma_to_pcre2(onig_pattern) : std::string(onig_pattern);
    std::string_view pattern = translated;
    // UCP: \s, \w, \d and POSIX classes follow Unicode properties, as in Oniguruma (what HF `tokenizers` uses).
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
    if (!code)
        return invalid_argument(where, ": invalid regular expression: ", pcre2_message(err), " (pattern: ", onig_pattern,
                                ")");
    auto compiled = std::make_shared<Compiled>();
    compiled->code = code;
    // JIT is an optimisation: a platform without it still matches through the interpreter.
    compiled->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    Regex r;
    r.compiled_ = std::move(compiled);
    r.pattern_ = std::string(onig_pattern);
    r.where_ = std::string(where);
    return r;
}

Regex::Matcher& Regex::thread_matcher() {
    // One per thread, reused for every match: allocating match data and a JIT stack per call would dominate
    // pipelines that split many small pieces (Sequence of several Split steps).
    thread_local Matcher m = [] {
        Matcher x;
        x.data = pcre2_match_data_create(1, nullptr);  // the whole match only; groups are never read
        x.stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
        x.context = pcre2_match_context_create(nullptr);
        if (x.stack && x.context) pcre2_jit_stack_assign(x.context, nullptr, x.stack);
        return x;
    }();
    return m;
}

int Regex::match_at(Matcher& m, std::string_view subject, size_t offset, size_t* b, size_t* e, Status* err) const {
    if (!m.data) {
        *err = resource_exhausted(where_, ": out of memory for regular expression match data");
        return -1;
    }
    const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
    // NO_UTF_CHECK: callers validate UTF-8 once at the API boundary; rechecking per match would be quadratic.
    int rc = compiled_->jit ? pcre2_jit_match(compiled_->code, s, subject.size(), offset, PCRE2_NO_UTF_CHECK, m.data, m.context)
                            : pcre2_match(compiled_->code, s, subject.size(), offset, PCRE2_NO_UTF_CHECK, m.data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    // rc == 0: the match data holds fewer pairs than the pattern has groups; the whole match is still set.
    if (rc < 0) {
        *err = resource_exhausted(where_, ": regular expression matching failed: ", pcre2_message(rc));
        return -1;
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.data);
    *b = ov[0];
    *e = ov[1];
    return 1;
}

Status Regex::for_each_match(std::string_view subject, const std::function<void(size_t, size_t)>& on_match) const {
    return for_each(subject, on_match);
}

}  // namespace volt::text
