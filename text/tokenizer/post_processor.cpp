#include "text/tokenizer/post_processor.h"

namespace volt::text {
namespace {

// The ids to put before and after the sequence.
class WrapProcessor final : public PostProcessor {
public:
    WrapProcessor(std::vector<int32_t> before, std::vector<int32_t> after) : before_(std::move(before)), after_(std::move(after)) {}
    void process(std::vector<int32_t>& ids) const override {
        ids.insert(ids.begin(), before_.begin(), before_.end());
        ids.insert(ids.end(), after_.begin(), after_.end());
    }

private:
    std::vector<int32_t> before_, after_;
};

class IdentityProcessor final : public PostProcessor {
public:
    void process(std::vector<int32_t>&) const override {}
};

class SequenceProcessor final : public PostProcessor {
public:
    explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
    void process(std::vector<int32_t>& ids) const override {
        for (const auto& s : steps_) s->process(ids);
    }

private:
    std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// ["<s>", 0] as written by RobertaProcessing / BertProcessing.
Expected<int32_t> token_pair_id(const nlohmann::json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || !j.at(key).is_array() || j.at(key).size() != 2 || !j.at(key)[1].is_number_integer())
        return invalid_argument(where, ".", key, ": expected [token, id]");
    return j.at(key)[1].get<int32_t>();
}

Expected<std::unique_ptr<PostProcessor>> make_template(const nlohmann::json& j, const std::string& where) {
    if (!j.contains("single") || !j.at("single").is_array())
        return invalid_argument(where, ".single: expected an array of template pieces");
    const nlohmann::json special = j.contains("special_tokens") ? j.at("special_tokens") : nlohmann::json::object();
    std::vector<int32_t> before, after;
    bool seen_sequence = false;
    size_t i = 0;
    for (const auto& piece : j.at("single")) {
        std::string at = str_cat(where, ".single[", i++, "]");
        if (piece.contains("Sequence")) {
            if (seen_sequence) return invalid_argument(at, ": the single template names the sequence twice");
            seen_sequence = true;
            continue;
        }
        if (!piece.contains("SpecialToken") || !piece.at("SpecialToken").contains("id") ||
            !piece.at("SpecialToken").at("id").is_string())
            return invalid_argument(at, ": expected {\"SpecialToken\": {\"id\": ...}} or {\"Sequence\": ...}");
        std::string name = piece.at("SpecialToken").at("id").get<std::string>();
        if (!special.contains(name) || !special.at(name).contains("ids") || !special.at(name).at("ids").is_array())
            return invalid_argument(where, ".special_tokens: no entry with ids for \"", name, "\"");
        for (const auto& id : special.at(name).at("ids")) {
            if (!id.is_number_integer()) return invalid_argument(where, ".special_tokens[\"", name, "\"].ids: expected integers");
            (seen_sequence ? after : before).push_back(id.get<int32_t>());
        }
    }
    if (!seen_sequence) return invalid_argument(where, ".single: the template never places the sequence ($A)");
    return std::unique_ptr<PostProcessor>(new WrapProcessor(std::move(before), std::move(after)));
}

}  // namespace

Expected<std::unique_ptr<PostProcessor>> make_post_processor(const nlohmann::json& j, const std::string& where) {
    using Ptr = std::unique_ptr<PostProcessor>;
    if (j.is_null()) return Ptr();
    if (!j.is_object() || !j.contains("type") || !j.at("type").is_string())
        return invalid_argument(where, ": expected an object with a string \"type\"");
    const std::string type = j.at("type").get<std::string>();
    const std::string at = where + "(" + type + ")";
    if (type == "TemplateProcessing") return make_template(j, at);
    if (type == "ByteLevel") return Ptr(new IdentityProcessor());
    if (type == "RobertaProcessing" || type == "BertProcessing") {
        VOLT_ASSIGN_OR_RETURN(int32_t cls, token_pair_id(j, "cls", at));
        VOLT_ASSIGN_OR_RETURN(int32_t sep, token_pair_id(j, "sep", at));
        return Ptr(new WrapProcessor({cls}, {sep}));
    }
    if (type == "Sequence") {
        if (!j.contains("processors") || !j.at("processors").is_array())
            return invalid_argument(at, ".processors: expected an array");
        std::vector<Ptr> steps;
        size_t i = 0;
        for (const auto& item : j.at("processors")) {
            VOLT_ASSIGN_OR_RETURN(Ptr step, make_post_processor(item, str_cat(at, ".processors[", i++, "]")));
            if (step) steps.push_back(std::move(step));
        }
        return Ptr(new SequenceProcessor(std::move(steps)));
    }
    return invalid_argument(where, ".type: unsupported post-processor \"", type,
                            "\" (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
}

}  // namespace volt::text
