#include "text/tokenizer/normalizer.h"

#include <cstdlib>
#include <optional>
#include <vector>

#include <utf8proc.h>

#include "text/tokenizer/pattern.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

// NFC/NFD/NFKC/NFKD through utf8proc (Unicode 15 with libutf8proc 2.8). HF's tables are older (pre-Unicode 12):
// about a hundred compatibility decompositions added since (U+32FF, U+A7F2..4, U+1078x, ...) are applied here and
// not by HF; every mapping HF knows is reproduced (test_normalizer.cpp checks each code point).
class UnicodeNormalizer final : public Normalizer {
public:
    explicit UnicodeNormalizer(int options) : options_(options) {}
    Status normalize(std::string& text) const override {
        if (text.empty()) return Status::ok();
        utf8proc_uint8_t* out = nullptr;
        utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &out,
                                          static_cast<utf8proc_option_t>(options_));
        if (n < 0) return invalid_argument("normalizer: ", utf8proc_errmsg(n));
        text.assign(reinterpret_cast<char*>(out), static_cast<size_t>(n));
        std::free(out);
        return Status::ok();
    }

private:
    int options_;
};

// Rust's char::to_lowercase per character (what HF uses). utf8proc gives the simple case mapping; the only
// unconditional multi-character lowercase mapping in Unicode (SpecialCasing.txt) is U+0130 -> "i\u0307".
class LowercaseNormalizer final : public Normalizer {
public:
    Status normalize(std::string& text) const override {
        std::string out;
        out.reserve(text.size());
        size_t pos = 0;
        while (pos < text.size()) {
            char32_t cp = utf8_next(text, pos);
            if (cp == 0x130) {
                out += "i\xCC\x87";
                continue;
            }
            utf8_append(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
        }
        text.swap(out);
        return Status::ok();
    }
};

class ReplaceNormalizer final : public Normalizer {
public:
    ReplaceNormalizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
    Status normalize(std::string& text) const override { return pattern_.replace_all(text, content_); }

private:
    Pattern pattern_;
    std::string content_;
};

class PrependNormalizer final : public Normalizer {
public:
    explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
    Status normalize(std::string& text) const override {
        if (!text.empty()) text.insert(0, prefix_);  // HF leaves an empty string empty
        return Status::ok();
    }

private:
    std::string prefix_;
};

class StripNormalizer final : public Normalizer {
public:
    StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
    Status normalize(std::string& text) const override {
        size_t b = 0, e = text.size();
        if (left_) {
            while (b < e) {
                size_t p = b;
                if (!is_whitespace(utf8_next(text, p))) break;
                b = p;
            }
        }
        if (right_) {
            while (e > b) {
                size_t s = 0;
                if (!is_whitespace(utf8_prev(text, e, &s))) break;
                e = s;
            }
        }
        text = text.substr(b, e - b);
        return Status::ok();
    }

private:
    bool left_, right_;
};

// Removes nonspacing marks (Mn); meant to follow NFD/NFKD, as in HF.
class StripAccentsNormalizer final : public Normalizer {
public:
    Status normalize(std::string& text) const override {
        std::string out;
        out.reserve(text.size());
        size_t pos = 0;
        while (pos < text.size()) {
            size_t start = pos;
            char32_t cp = utf8_next(text, pos);
            if (utf8proc_category(static_cast<utf8proc_int32_t>(cp)) == UTF8PROC_CATEGORY_MN) continue;
            out.append(text, start, pos - start);
        }
        text.swap(out);
        return Status::ok();
    }
};

class SequenceNormalizer final : public Normalizer {
public:
    explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
    Status normalize(std::string& text) const override {
        for (const auto& s : steps_) VOLT_RETURN_IF_ERROR(s->normalize(text));
        return Status::ok();
    }

private:
    std::vector<std::unique_ptr<Normalizer>> steps_;
};

// Strings a normalizer inserts into the text must be valid UTF-8: later stages match on it without rechecking.
Expected<std::string> string_field(const nlohmann::json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || !j.at(key).is_string())
        return invalid_argument(where, ".", key, ": expected a string");
    std::string s = j.at(key).get<std::string>();
    if (!utf8_is_valid(s)) return invalid_argument(where, ".", key, ": not valid UTF-8");
    return s;
}

bool bool_field(const nlohmann::json& j, const char* key, bool fallback) {
    return j.contains(key) && j.at(key).is_boolean() ? j.at(key).get<bool>() : fallback;
}

}  // namespace

Expected<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j, const std::string& where) {
    if (j.is_null()) return std::unique_ptr<Normalizer>();
    if (!j.is_object() || !j.contains("type") || !j.at("type").is_string())
        return invalid_argument(where, ": expected an object with a string \"type\"");
    const std::string type = j.at("type").get<std::string>();
    const std::string at = where + "(" + type + ")";
    if (type == "NFC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (type == "NFD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
    if (type == "NFKC")
        return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
    if (type == "NFKD")
        return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
    if (type == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
    if (type == "StripAccents") return std::unique_ptr<Normalizer>(new StripAccentsNormalizer());
    if (type == "Strip")
        return std::unique_ptr<Normalizer>(new StripNormalizer(bool_field(j, "strip_left", true), bool_field(j, "strip_right", true)));
    if (type == "Prepend") {
        VOLT_ASSIGN_OR_RETURN(std::string prefix, string_field(j, "prepend", at));
        return std::unique_ptr<Normalizer>(new PrependNormalizer(std::move(prefix)));
    }
    if (type == "Replace") {
        if (!j.contains("pattern")) return invalid_argument(at, ".pattern: missing");
        VOLT_ASSIGN_OR_RETURN(Pattern pattern, Pattern::from_json(j.at("pattern"), at + ".pattern"));
        VOLT_ASSIGN_OR_RETURN(std::string content, string_field(j, "content", at));
        return std::unique_ptr<Normalizer>(new ReplaceNormalizer(std::move(pattern), std::move(content)));
    }
    if (type == "Sequence") {
        if (!j.contains("normalizers") || !j.at("normalizers").is_array())
            return invalid_argument(at, ".normalizers: expected an array");
        std::vector<std::unique_ptr<Normalizer>> steps;
        size_t i = 0;
        for (const auto& item : j.at("normalizers")) {
            VOLT_ASSIGN_OR_RETURN(auto step, make_normalizer(item, str_cat(at, ".normalizers[", i++, "]")));
            if (step) steps.push_back(std::move(step));
        }
        return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(steps)));
    }
    return invalid_argument(where, ".type: unsupported normalizer \"", type,
                            "\" (supported: NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip, StripAccents, "
                            "Sequence)");
}

}  // namespace volt::text
