#include "text/tokenizer/decoder.h"

#include "text/tokenizer/byte_level.h"
#include "text/tokenizer/pattern.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

// Joins all tokens, mapping each back to bytes; a token with a character outside the byte mapping (e.g. an added
// token in CJK) contributes its UTF-8 bytes unchanged. Invalid UTF-8 becomes U+FFFD (from_utf8_lossy).
class ByteLevelDecoder final : public Decoder {
public:
    Status decode_chain(std::vector<std::string>& tokens) const override {
        std::string bytes;
        std::string tok_bytes;
        for (const auto& t : tokens) {
            tok_bytes.clear();
            bool mapped = true;
            size_t pos = 0;
            while (pos < t.size()) {
                int b = byte_level_byte(utf8_next(t, pos));
                if (b < 0) {
                    mapped = false;
                    break;
                }
                tok_bytes.push_back(static_cast<char>(b));
            }
            bytes += mapped ? tok_bytes : t;
        }
        tokens.assign(1, utf8_lossy(bytes));
        return Status::ok();
    }
};

class MetaspaceDecoder final : public Decoder {
public:
    MetaspaceDecoder(std::string replacement, bool prepend) : replacement_(std::move(replacement)), prepend_(prepend) {}
    Status decode_chain(std::vector<std::string>& tokens) const override {
        for (size_t i = 0; i < tokens.size(); ++i) {
            std::string out;
            const std::string& t = tokens[i];
            for (size_t pos = 0; pos < t.size();) {
                if (t.compare(pos, replacement_.size(), replacement_) == 0) {
                    // HF drops the replacement characters of the first token when a space was prepended.
                    if (!(i == 0 && prepend_)) out.push_back(' ');
                    pos += replacement_.size();
                } else {
                    out.push_back(t[pos++]);
                }
            }
            tokens[i].swap(out);
        }
        return Status::ok();
    }

private:
    std::string replacement_;
    bool prepend_;
};

class ReplaceDecoder final : public Decoder {
public:
    ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
    Status decode_chain(std::vector<std::string>& tokens) const override {
        for (auto& t : tokens) VOLT_RETURN_IF_ERROR(pattern_.replace_all(t, content_));
        return Status::ok();
    }

private:
    Pattern pattern_;
    std::string content_;
};

// Runs of "<0xXX>" tokens become the string of their bytes, or one U+FFFD per byte when that is not valid UTF-8.
class ByteFallbackDecoder final : public Decoder {
public:
    Status decode_chain(std::vector<std::string>& tokens) const override {
        std::vector<std::string> out;
        std::string pending;
        size_t pending_count = 0;
        auto flush = [&]() {
            if (!pending_count) return;
            if (utf8_is_valid(pending)) out.push_back(pending);
            else for (size_t i = 0; i < pending_count; ++i) out.emplace_back("\xEF\xBF\xBD");
            pending.clear();
            pending_count = 0;
        };
        for (auto& t : tokens) {
            int byte = parse_byte_token(t);
            if (byte >= 0) {
                pending.push_back(static_cast<char>(byte));
                ++pending_count;
                continue;
            }
            flush();
            out.push_back(std::move(t));
        }
        flush();
        tokens.swap(out);
        return Status::ok();
    }

private:
    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    }
    static int parse_byte_token(const std::string& t) {
        if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
        int hi = hex(t[3]), lo = hex(t[4]);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }
};

class FuseDecoder final : public Decoder {
public:
    Status decode_chain(std::vector<std::string>& tokens) const override {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        return Status::ok();
    }
};

// Removes up to `start` leading and `stop` trailing occurrences of one character from every token.
class StripDecoder final : public Decoder {
public:
    StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
    Status decode_chain(std::vector<std::string>& tokens) const override {
        for (auto& t : tokens) {
            size_t b = 0, e = t.size();
            for (size_t n = 0; n < start_ && b < e; ++n) {
                size_t p = b;
                if (utf8_next(t, p) != content_) break;
                b = p;
            }
            for (size_t n = 0; n < stop_ && e > b; ++n) {
                size_t s = 0;
                if (utf8_prev(t, e, &s) != content_) break;
                e = s;
            }
            t = t.substr(b, e - b);
        }
        return Status::ok();
    }

private:
    char32_t content_;
    size_t start_, stop_;
};

// BPEDecoder: the end-of-word suffix becomes a space (nothing after the last token).
class BpeSuffixDecoder final : public Decoder {
public:
    explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
    Status decode_chain(std::vector<std::string>& tokens) const override {
        Pattern p = Pattern::literal(suffix_);
        for (size_t i = 0; i < tokens.size(); ++i)
            VOLT_RETURN_IF_ERROR(p.replace_all(tokens[i], i + 1 == tokens.size() ? "" : " "));
        return Status::ok();
    }

private:
    std::string suffix_;
};

class SequenceDecoder final : public Decoder {
public:
    explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
    Status decode_chain(std::vector<std::string>& tokens) const override {
        for (const auto& s : steps_) VOLT_RETURN_IF_ERROR(s->decode_chain(tokens));
        return Status::ok();
    }

private:
    std::vector<std::unique_ptr<Decoder>> steps_;
};

Expected<std::string> string_field(const nlohmann::json& j, const char* key, const std::string& where,
                                   const char* fallback = nullptr) {
    if (!j.contains(key) || j.at(key).is_null()) {
        if (fallback) return std::string(fallback);
        return invalid_argument(where, ".", key, ": missing");
    }
    if (!j.at(key).is_string()) return invalid_argument(where, ".", key, ": expected a string");
    std::string s = j.at(key).get<std::string>();
    if (!utf8_is_valid(s)) return invalid_argument(where, ".", key, ": not valid UTF-8");
    return s;
}

Expected<size_t> count_field(const nlohmann::json& j, const char* key, const std::string& where) {
    if (!j.contains(key)) return size_t(0);
    if (!j.at(key).is_number_unsigned()) return invalid_argument(where, ".", key, ": expected a non-negative integer");
    return j.at(key).get<size_t>();
}

}  // namespace

Expected<std::unique_ptr<Decoder>> make_decoder(const nlohmann::json& j, const std::string& where) {
    using Ptr = std::unique_ptr<Decoder>;
    if (j.is_null()) return Ptr();
    if (!j.is_object() || !j.contains("type") || !j.at("type").is_string())
        return invalid_argument(where, ": expected an object with a string \"type\"");
    const std::string type = j.at("type").get<std::string>();
    const std::string at = where + "(" + type + ")";
    if (type == "ByteLevel") return Ptr(new ByteLevelDecoder());
    if (type == "Metaspace") {
        VOLT_ASSIGN_OR_RETURN(std::string replacement, string_field(j, "replacement", at, "\xE2\x96\x81"));
        bool prepend = true;
        if (j.contains("prepend_scheme") && j.at("prepend_scheme").is_string())
            prepend = j.at("prepend_scheme").get<std::string>() != "never";
        else if (j.contains("add_prefix_space") && j.at("add_prefix_space").is_boolean())
            prepend = j.at("add_prefix_space").get<bool>();
        return Ptr(new MetaspaceDecoder(std::move(replacement), prepend));
    }
    if (type == "Replace") {
        if (!j.contains("pattern")) return invalid_argument(at, ".pattern: missing");
        VOLT_ASSIGN_OR_RETURN(Pattern pattern, Pattern::from_json(j.at("pattern"), at + ".pattern"));
        VOLT_ASSIGN_OR_RETURN(std::string content, string_field(j, "content", at));
        return Ptr(new ReplaceDecoder(std::move(pattern), std::move(content)));
    }
    if (type == "ByteFallback") return Ptr(new ByteFallbackDecoder());
    if (type == "Fuse") return Ptr(new FuseDecoder());
    if (type == "Strip") {
        VOLT_ASSIGN_OR_RETURN(std::string content, string_field(j, "content", at));
        size_t pos = 0;
        if (content.empty() || !utf8_is_valid(content) || (utf8_next(content, pos), pos != content.size()))
            return invalid_argument(at, ".content: expected exactly one character");
        pos = 0;
        char32_t c = utf8_next(content, pos);
        VOLT_ASSIGN_OR_RETURN(size_t start, count_field(j, "start", at));
        VOLT_ASSIGN_OR_RETURN(size_t stop, count_field(j, "stop", at));
        return Ptr(new StripDecoder(c, start, stop));
    }
    if (type == "BPEDecoder") {
        VOLT_ASSIGN_OR_RETURN(std::string suffix, string_field(j, "suffix", at, "</w>"));
        return Ptr(new BpeSuffixDecoder(std::move(suffix)));
    }
    if (type == "Sequence") {
        if (!j.contains("decoders") || !j.at("decoders").is_array())
            return invalid_argument(at, ".decoders: expected an array");
        std::vector<Ptr> steps;
        size_t i = 0;
        for (const auto& item : j.at("decoders")) {
            VOLT_ASSIGN_OR_RETURN(Ptr step, make_decoder(item, str_cat(at, ".decoders[", i++, "]")));
            if (step) steps.push_back(std::move(step));
        }
        return Ptr(new SequenceDecoder(std::move(steps)));
    }
    return invalid_argument(where, ".type: unsupported decoder \"", type,
                            "\" (supported: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder, "
                            "Sequence)");
}

}  // namespace volt::text
