#include "text/tokenizer/pre_tokenizer.h"

#include <optional>

#include "text/tokenizer/byte_level.h"
#include "text/tokenizer/pattern.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Expected<SplitBehavior> parse_behavior(const nlohmann::json& j, const std::string& where) {
    if (!j.is_string()) return invalid_argument(where, ": expected a string");
    const std::string s = j.get<std::string>();
    if (s == "Removed") return SplitBehavior::kRemoved;
    if (s == "Isolated") return SplitBehavior::kIsolated;
    if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
    if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
    if (s == "Contiguous") return SplitBehavior::kContiguous;
    return invalid_argument(where, ": unknown split behavior \"", s,
                            "\" (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

// Applies one HF split behaviour to a piece's match segmentation (offsets relative to the piece) and appends the
// resulting non-empty pieces. Mirrors NormalizedString::split in `tokenizers`.
void emit_split(const PieceList::Piece& parent, std::vector<MatchSegment>& segs, SplitBehavior behavior,
                std::vector<PieceList::Piece>& out) {
    auto push = [&](uint32_t b, uint32_t e) {
        if (e > b) out.push_back({parent.begin + b, parent.begin + e, parent.at_origin && b == 0});
    };
    switch (behavior) {
        case SplitBehavior::kRemoved:
            for (const auto& s : segs) if (!s.is_match) push(s.begin, s.end);
            return;
        case SplitBehavior::kIsolated:
            for (const auto& s : segs) push(s.begin, s.end);
            return;
        case SplitBehavior::kMergedWithPrevious: {
            // A match joins the piece before it (unless that one was a match too).
            std::vector<MatchSegment> acc;
            bool previous_match = false;
            for (const auto& s : segs) {
                if (s.is_match && !previous_match && !acc.empty()) acc.back().end = s.end;
                else acc.push_back(s);
                previous_match = s.is_match;
            }
            for (const auto& s : acc) push(s.begin, s.end);
            return;
        }
        case SplitBehavior::kMergedWithNext: {
            // Scanned right to left: a match joins the piece after it.
            std::vector<MatchSegment> acc;
            bool previous_match = false;
            for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
                if (it->is_match && !previous_match && !acc.empty()) acc.back().begin = it->begin;
                else acc.push_back(*it);
                previous_match = it->is_match;
            }
            for (auto it = acc.rbegin(); it != acc.rend(); ++it) push(it->begin, it->end);
            return;
        }
        case SplitBehavior::kContiguous: {
            std::vector<MatchSegment> acc;
            bool previous_match = false;
            for (const auto& s : segs) {
                if (s.is_match == previous_match && !acc.empty()) acc.back().end = s.end;
                else acc.push_back(s);
                previous_match = s.is_match;
            }
            for (const auto& s : acc) push(s.begin, s.end);
            return;
        }
    }
}

// Splits every piece with `segment(view, segs)` and `behavior`, in the same buffer.
template <typename Segmenter>
Status split_all(PieceList& list, SplitBehavior behavior, Segmenter&& segment) {
    std::vector<PieceList::Piece> out;
    out.reserve(list.pieces.size() * 2);
    std::vector<MatchSegment> segs;
    for (const auto& p : list.pieces) {
        VOLT_RETURN_IF_ERROR(segment(list.view(p), segs));
        emit_split(p, segs, behavior, out);
    }
    list.pieces.swap(out);
    return Status::ok();
}

// Segmentation by a per-character predicate: each matching character is its own match (HF's `impl Pattern for F`).
template <typename Pred>
auto char_segmenter(Pred pred) {
    return [pred](std::string_view s, std::vector<MatchSegment>& segs) -> Status {
        segs.clear();
        if (s.empty()) {
            segs.push_back({0, 0, false});
            return Status::ok();
        }
        uint32_t last = 0;
        size_t pos = 0;
        while (pos < s.size()) {
            size_t start = pos;
            char32_t cp = utf8_next(s, pos);
            if (pred(cp)) {
                if (last < start) segs.push_back({last, uint32_t(start), false});
                segs.push_back({uint32_t(start), uint32_t(pos), true});
                last = uint32_t(pos);
            }
        }
        if (last < s.size()) segs.push_back({last, uint32_t(s.size()), false});
        return Status::ok();
    };
}

auto pattern_segmenter(const Pattern& pattern, bool invert) {
    return [&pattern, invert](std::string_view s, std::vector<MatchSegment>& segs) -> Status {
        VOLT_RETURN_IF_ERROR(pattern.segments(s, segs));
        if (invert)
            for (auto& m : segs) m.is_match = !m.is_match;
        return Status::ok();
    };
}

class SplitPreTokenizer final : public PreTokenizer {
public:
    SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
        : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
    Status apply(PieceList& list) const override {
        return split_all(list, behavior_, pattern_segmenter(pattern_, invert_));
    }

private:
    Pattern pattern_;
    SplitBehavior behavior_;
    bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
public:
    ByteLevelPreTokenizer(bool add_prefix_space, std::optional<Pattern> regex)
        : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}

    Status apply(PieceList& list) const override {
        if (add_prefix_space_) prefix_spaces(list);
        if (regex_) VOLT_RETURN_IF_ERROR(split_all(list, SplitBehavior::kIsolated, pattern_segmenter(*regex_, false)));
        // Map every byte to its printable stand-in; pieces keep their order, so one pass over the buffer suffices.
        const auto& table = byte_level_table();
        size_t total = 0;
        for (const auto& p : list.pieces) total += p.end - p.begin;
        std::string mapped(total * 2, '\0');  // at most two UTF-8 bytes per input byte
        char* out = mapped.data();
        const char* in = list.text.data();
        for (auto& p : list.pieces) {
            const uint32_t b = uint32_t(out - mapped.data());
            for (uint32_t i = p.begin; i < p.end; ++i) {
                const ByteLevelChar& c = table[static_cast<unsigned char>(in[i])];
                out[0] = c.utf8[0];
                out[1] = c.utf8[1];  // harmless when length is 1: the next write overwrites it
                out += c.length;
            }
            p.begin = b;
            p.end = uint32_t(out - mapped.data());
        }
        mapped.resize(size_t(out - mapped.data()));
        list.text.swap(mapped);
        return Status::ok();
    }

private:
    // HF prepends a space to every piece that does not start with one (each added-token-free segment).
    static void prefix_spaces(PieceList& list) {
        std::string out;
        out.reserve(list.text.size() + list.pieces.size());
        for (auto& p : list.pieces) {
            uint32_t b = uint32_t(out.size());
            if (list.text[p.begin] != ' ') out.push_back(' ');
            out.append(list.text, p.begin, p.end - p.begin);
            p.begin = b;
            p.end = uint32_t(out.size());
        }
        list.text.swap(out);
    }

    bool add_prefix_space_;
    std::optional<Pattern> regex_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
public:
    enum class Prepend { kAlways, kNever, kFirst };
    MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
        : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}

    Status apply(PieceList& list) const override {
        std::string out;
        out.reserve(list.text.size() * 2);
        for (auto& p : list.pieces) {
            uint32_t b = uint32_t(out.size());
            std::string_view v = list.view(p);
            bool starts_with_replacement = v.substr(0, 1) == " " || v.substr(0, replacement_.size()) == replacement_;
            bool prepend = !starts_with_replacement &&
                           (prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && p.at_origin));
            if (prepend) out += replacement_;
            for (char c : v) {
                if (c == ' ') out += replacement_;
                else out.push_back(c);
            }
            p.begin = b;
            p.end = uint32_t(out.size());
        }
        list.text.swap(out);
        if (!split_) return Status::ok();
        Pattern sep = Pattern::literal(replacement_);
        return split_all(list, SplitBehavior::kMergedWithNext, pattern_segmenter(sep, false));
    }

private:
    std::string replacement_;
    Prepend prepend_;
    bool split_;
};

class DigitsPreTokenizer final : public PreTokenizer {
public:
    explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
    Status apply(PieceList& list) const override {
        return split_all(list, individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
                         char_segmenter([](char32_t c) { return is_numeric(c); }));
    }

private:
    bool individual_;
};

class CharSplitPreTokenizer final : public PreTokenizer {
public:
    CharSplitPreTokenizer(bool (*pred)(char32_t), SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
    Status apply(PieceList& list) const override { return split_all(list, behavior_, char_segmenter(pred_)); }

private:
    bool (*pred_)(char32_t);
    SplitBehavior behavior_;
};

class SequencePreTokenizer final : public PreTokenizer {
public:
    explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
    Status apply(PieceList& list) const override {
        for (const auto& s : steps_) VOLT_RETURN_IF_ERROR(s->apply(list));
        return Status::ok();
    }

private:
    std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

bool bool_or(const nlohmann::json& j, const char* key, bool fallback) {
    return j.contains(key) && j.at(key).is_boolean() ? j.at(key).get<bool>() : fallback;
}

}  // namespace

Expected<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& j, const std::string& where) {
    using Ptr = std::unique_ptr<PreTokenizer>;
    if (j.is_null()) return Ptr();
    if (!j.is_object() || !j.contains("type") || !j.at("type").is_string())
        return invalid_argument(where, ": expected an object with a string \"type\"");
    const std::string type = j.at("type").get<std::string>();
    const std::string at = where + "(" + type + ")";
    if (type == "Split") {
        if (!j.contains("pattern")) return invalid_argument(at, ".pattern: missing");
        VOLT_ASSIGN_OR_RETURN(Pattern pattern, Pattern::from_json(j.at("pattern"), at + ".pattern"));
        if (!j.contains("behavior")) return invalid_argument(at, ".behavior: missing");
        VOLT_ASSIGN_OR_RETURN(SplitBehavior behavior, parse_behavior(j.at("behavior"), at + ".behavior"));
        return Ptr(new SplitPreTokenizer(std::move(pattern), behavior, bool_or(j, "invert", false)));
    }
    if (type == "ByteLevel") {
        std::optional<Pattern> regex;
        if (bool_or(j, "use_regex", true)) {
            VOLT_ASSIGN_OR_RETURN(Pattern p, Pattern::from_json(nlohmann::json{{"Regex", kGpt2SplitRegex}}, at));
            regex = std::move(p);
        }
        return Ptr(new ByteLevelPreTokenizer(bool_or(j, "add_prefix_space", true), std::move(regex)));
    }
    if (type == "Metaspace") {
        std::string replacement = "\xE2\x96\x81";  // U+2581
        if (j.contains("replacement")) {
            if (!j.at("replacement").is_string()) return invalid_argument(at, ".replacement: expected a string");
            replacement = j.at("replacement").get<std::string>();
        }
        if (replacement.empty() || !utf8_is_valid(replacement))
            return invalid_argument(at, ".replacement: expected one character");
        // prepend_scheme (tokenizers >= 0.14); older files carry add_prefix_space instead.
        auto prepend = MetaspacePreTokenizer::Prepend::kAlways;
        if (j.contains("prepend_scheme") && j.at("prepend_scheme").is_string()) {
            std::string s = j.at("prepend_scheme").get<std::string>();
            if (s == "always") prepend = MetaspacePreTokenizer::Prepend::kAlways;
            else if (s == "never") prepend = MetaspacePreTokenizer::Prepend::kNever;
            else if (s == "first") prepend = MetaspacePreTokenizer::Prepend::kFirst;
            else return invalid_argument(at, ".prepend_scheme: expected always, never or first, got \"", s, "\"");
        } else if (!bool_or(j, "add_prefix_space", true)) {
            prepend = MetaspacePreTokenizer::Prepend::kNever;
        }
        return Ptr(new MetaspacePreTokenizer(std::move(replacement), prepend, bool_or(j, "split", true)));
    }
    if (type == "Digits") return Ptr(new DigitsPreTokenizer(bool_or(j, "individual_digits", false)));
    if (type == "Whitespace") {
        // HF runs \w+|[^\w\s]+ through Rust's `regex` crate (not Oniguruma), whose \w is UTS #18's word class.
        constexpr const char* kWord = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control})";
        constexpr const char* kSpace = R"(\t\n\x0B\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
        VOLT_ASSIGN_OR_RETURN(Regex r, Regex::compile(str_cat("[", kWord, "]+|[^", kWord, kSpace, "]+"), at,
                                                      Regex::Dialect::kPcre2));
        // The matches are kept and the whitespace between them removed.
        return Ptr(new SplitPreTokenizer(Pattern::regex(std::move(r)), SplitBehavior::kRemoved, true));
    }
    if (type == "WhitespaceSplit") return Ptr(new CharSplitPreTokenizer(&is_whitespace, SplitBehavior::kRemoved));
    if (type == "Punctuation") {
        SplitBehavior behavior = SplitBehavior::kIsolated;
        if (j.contains("behavior")) {
            VOLT_ASSIGN_OR_RETURN(behavior, parse_behavior(j.at("behavior"), at + ".behavior"));
        }
        return Ptr(new CharSplitPreTokenizer(&is_punctuation, behavior));
    }
    if (type == "BertPreTokenizer") {
        std::vector<Ptr> steps;
        steps.emplace_back(new CharSplitPreTokenizer(&is_whitespace, SplitBehavior::kRemoved));
        steps.emplace_back(new CharSplitPreTokenizer(&is_punctuation, SplitBehavior::kIsolated));
        return Ptr(new SequencePreTokenizer(std::move(steps)));
    }
    if (type == "Sequence") {
        if (!j.contains("pretokenizers") || !j.at("pretokenizers").is_array())
            return invalid_argument(at, ".pretokenizers: expected an array");
        std::vector<Ptr> steps;
        size_t i = 0;
        for (const auto& item : j.at("pretokenizers")) {
            VOLT_ASSIGN_OR_RETURN(Ptr step, make_pre_tokenizer(item, str_cat(at, ".pretokenizers[", i++, "]")));
            if (step) steps.push_back(std::move(step));
        }
        return Ptr(new SequencePreTokenizer(std::move(steps)));
    }
    return invalid_argument(where, ".type: unsupported pre-tokenizer \"", type,
                            "\" (supported: Split, ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit, "
                            "Punctuation, BertPreTokenizer, Sequence)");
}

}  // namespace volt::text
