#include "text/tokenizer/pattern.h"

#include "text/tokenizer/utf8.h"

namespace volt::text {

Expected<Pattern> Pattern::from_json(const nlohmann::json& j, const std::string& where) {
    Pattern p;
    if (j.is_object() && j.contains("String") && j.at("String").is_string()) {
        p.literal_ = j.at("String").get<std::string>();
        if (!utf8_is_valid(p.literal_)) return invalid_argument(where, ".String: not valid UTF-8");
        return p;
    }
    if (j.is_object() && j.contains("Regex") && j.at("Regex").is_string()) {
        VOLT_ASSIGN_OR_RETURN(Regex r, Regex::compile(j.at("Regex").get<std::string>(), where + ".Regex"));
        p.regex_ = std::move(r);
        return p;
    }
    return invalid_argument(where, ": expected {\"String\": ...} or {\"Regex\": ...}, got ",
                            j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Pattern Pattern::literal(std::string s) {
    Pattern p;
    p.literal_ = std::move(s);
    return p;
}

Pattern Pattern::regex(Regex r) {
    Pattern p;
    p.regex_ = std::move(r);
    return p;
}

Status Pattern::segments(std::string_view text, std::vector<MatchSegment>& out) const {
    out.clear();
    if (text.empty()) {
        out.push_back({0, 0, false});
        return Status::ok();
    }
    uint32_t prev = 0;
    auto on_match = [&](size_t b, size_t e) {
        if (prev != b) out.push_back({prev, uint32_t(b), false});
        out.push_back({uint32_t(b), uint32_t(e), true});
        prev = uint32_t(e);
    };
    if (regex_) {
        VOLT_RETURN_IF_ERROR(regex_->for_each(text, on_match));
    } else if (!literal_.empty()) {
        for (size_t pos = text.find(literal_); pos != std::string_view::npos; pos = text.find(literal_, pos + literal_.size()))
            on_match(pos, pos + literal_.size());
    }
    if (prev != text.size()) out.push_back({prev, uint32_t(text.size()), false});
    return Status::ok();
}

Status Pattern::replace_all(std::string& text, std::string_view content) const {
    std::vector<MatchSegment> segs;
    VOLT_RETURN_IF_ERROR(segments(text, segs));
    std::string out;
    out.reserve(text.size());
    for (const auto& s : segs) {
        if (s.is_match) out.append(content);
        else out.append(text, s.begin, s.end - s.begin);
    }
    text.swap(out);
    return Status::ok();
}

}  // namespace volt::text
