// A compiled PCRE2 pattern (UTF + Unicode properties, JIT-compiled) for the split regexes of tokenizer.json
// (GPT-2, GPT-4o/o200k, Llama 3 styles: \p{..} classes, look-ahead, inline flags). Immutable and thread-safe once
// compiled; each match call uses its own match data.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "sdk/status.h"

namespace volt::text {

// Rewrites the Oniguruma constructs whose meaning differs in PCRE2 into explicit Unicode classes, so a pattern
// written for Hugging Face `tokenizers` (which uses Oniguruma) matches the same characters:
//   \s \S  -> White_Space (PCRE2 also counts U+180E)      \w \W -> Alphabetic|Mark|Nd|Pc (+ Oniguruma's Latin-1
//   [:punct:] -> \p{P}\p{S} (PCRE2: P + symbols < 256)     superscripts/fractions outside brackets; PCRE2 lacks
//                                                          marks and Nl)
// Verified code point by code point against tokenizers' Oniguruma (test_regex_dialect.cpp).
// Negated forms inside a bracket expression (`[\S]`, `[\W]`) cannot be rewritten and keep PCRE2's meaning.
std::string oniguruma_to_pcre2(std::string_view pattern);

class Regex {
public:
    enum class Dialect {
        kOniguruma,  // tokenizer.json patterns (HF `tokenizers` runs them with Oniguruma): translated first
        kPcre2,      // patterns written for PCRE2 itself
    };
    // `where` names the pattern's origin in errors ("tokenizer.json: pre_tokenizer.pattern.Regex").
    static Expected<Regex> compile(std::string_view pattern, std::string_view where,
                                   Dialect dialect = Dialect::kOniguruma);

    // Calls on_match(begin, end) for every non-overlapping match in `subject` (valid UTF-8), left to right. An empty
    // match advances the search by one character. Fails only if PCRE2 gives up (e.g. JIT stack exhausted).
    Status for_each_match(std::string_view subject, const std::function<void(size_t, size_t)>& on_match) const;

    // Template form used on the hot path (no std::function indirection per match).
    template <typename F>
    Status for_each(std::string_view subject, F&& on_match) const;

    const std::string& pattern() const { return pattern_; }

private:
    struct Compiled;
    struct Matcher;
    // Runs one match starting at `offset`; 1 = match in [*b, *e), 0 = none, <0 = error status in *err.
    int match_at(Matcher& m, std::string_view subject, size_t offset, size_t* b, size_t* e, Status* err) const;
    std::shared_ptr<const Compiled> compiled_;
    std::string pattern_;
    std::string where_;

    // The calling thread's match state, shared by all patterns (only the whole-match offsets are read).
    static Matcher& thread_matcher();
};

template <typename F>
Status Regex::for_each(std::string_view subject, F&& on_match) const {
    Matcher& m = thread_matcher();
    size_t offset = 0;
    while (offset <= subject.size()) {
        size_t b = 0, e = 0;
        Status err;
        int rc = match_at(m, subject, offset, &b, &e, &err);
        if (rc < 0) return err;
        if (rc == 0) break;
        on_match(b, e);
        if (e > b) {
            offset = e;
        } else {  // empty match: step over one character so the scan always progresses
            if (e >= subject.size()) break;
            size_t len = 1;
            unsigned char lead = static_cast<unsigned char>(subject[e]);
            if (lead >= 0xF0) len = 4; else if (lead >= 0xE0) len = 3; else if (lead >= 0xC0) len = 2;
            offset = e + len;
        }
    }
    return Status::ok();
}

}  // namespace volt::text
