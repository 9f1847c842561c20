#include "text/tokenizer/hf_tokenizer.h"

#include "sdk/file_io.h"

#include <fstream>
#include <new>
#include <sstream>

#include "text/tokenizer/bpe_model.h"
#include "text/tokenizer/decoder.h"
#include "text/tokenizer/normalizer.h"
#include "text/tokenizer/post_processor.h"
#include "text/tokenizer/pre_tokenizer.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {

HfTokenizer::HfTokenizer() = default;
HfTokenizer::~HfTokenizer() = default;

namespace {

Expected<std::vector<AddedToken>> parse_added_tokens(const nlohmann::json& j, const std::string& where) {
    std::vector<AddedToken> out;
    if (!j.contains("added_tokens") || j.at("added_tokens").is_null()) return out;
    if (!j.at("added_tokens").is_array()) return invalid_argument(where, ": expected an array");
    size_t i = 0;
    for (const auto& t : j.at("added_tokens")) {
        std::string at = str_cat(where, "[", i++, "]");
        if (!t.is_object() || !t.contains("id") || !t.at("id").is_number_integer() || t.at("id").get<int64_t>() < 0 ||
            t.at("id").get<int64_t>() > INT32_MAX)
            return invalid_argument(at, ".id: expected a non-negative integer");
        if (!t.contains("content") || !t.at("content").is_string() || !utf8_is_valid(t.at("content").get<std::string>()))
            return invalid_argument(at, ".content: expected a UTF-8 string");
        AddedToken a;
        a.id = t.at("id").get<int32_t>();
        a.content = t.at("content").get<std::string>();
        auto flag = [&](const char* key, bool fallback) {
            return t.contains(key) && t.at(key).is_boolean() ? t.at(key).get<bool>() : fallback;
        };
        a.special = flag("special", false);
        a.single_word = flag("single_word", false);
        a.lstrip = flag("lstrip", false);
        a.rstrip = flag("rstrip", false);
        a.normalized = flag("normalized", !a.special);
        out.push_back(std::move(a));
    }
    return out;
}

}  // namespace

Expected<std::unique_ptr<HfTokenizer>> HfTokenizer::from_json(const nlohmann::json& j, const std::string& label) {
    // The builders check every field's type before reading it; this is the backstop that keeps a JSON shape they
    // did not anticipate (or an allocation failure) a Status rather than an exception crossing the API.
    try {
        return build(j, label);
    } catch (const nlohmann::json::exception& e) {
        return invalid_argument(label, ": unexpected JSON structure: ", e.what());
    } catch (const std::bad_alloc&) {
        return resource_exhausted(label, ": out of memory while loading the tokenizer");
    }
}

Expected<std::unique_ptr<HfTokenizer>> HfTokenizer::build(const nlohmann::json& j, const std::string& label) {
    std::unique_ptr<HfTokenizer> t(new HfTokenizer());
    t->label_ = label;
    if (!j.is_object()) return invalid_argument(label, ": expected a JSON object");
    const std::string where = label + ":";
    if (!j.contains("model") || !j.at("model").is_object()) return invalid_argument(where, " model: missing");
    const auto& model = j.at("model");
    std::string type = model.contains("type") && model.at("type").is_string() ? model.at("type").get<std::string>() : "";
    // Old files omit model.type; a vocab + merges object is BPE.
    if (type.empty() && model.contains("merges")) type = "BPE";
    if (type != "BPE")
        return invalid_argument(where, " model.type: unsupported model \"", type,
                                "\" (Volt reads BPE tokenizer.json files and SentencePiece tokenizer.model files)");
    auto null_or = [&](const char* key) -> const nlohmann::json& {
        static const nlohmann::json null;
        return j.contains(key) ? j.at(key) : null;
    };
    VOLT_ASSIGN_OR_RETURN(t->normalizer_, make_normalizer(null_or("normalizer"), where + " normalizer"));
    VOLT_ASSIGN_OR_RETURN(t->pre_tokenizer_, make_pre_tokenizer(null_or("pre_tokenizer"), where + " pre_tokenizer"));
    VOLT_ASSIGN_OR_RETURN(t->model_, BpeModel::from_json(model, where + " model"));
    VOLT_ASSIGN_OR_RETURN(t->decoder_, make_decoder(null_or("decoder"), where + " decoder"));
    VOLT_ASSIGN_OR_RETURN(t->post_processor_, make_post_processor(null_or("post_processor"), where + " post_processor"));
    VOLT_ASSIGN_OR_RETURN(auto added, parse_added_tokens(j, where + " added_tokens"));
    t->id_limit_ = t->model_->id_limit();
    for (const auto& a : added) {
        // MiniMax puts special tokens just above the BPE vocabulary (200019..); anything far past it is an error.
        if (a.id >= t->model_->id_limit() + (1 << 24))
            return invalid_argument(where, " added_tokens: id ", a.id, " of \"", a.content,
                                    "\" is far beyond the vocabulary (", t->model_->id_limit(), " ids)");
        t->id_limit_ = std::max(t->id_limit_, a.id + 1);
    }
    VOLT_RETURN_IF_ERROR(t->added_.build(std::move(added), t->normalizer_.get()));
    return t;
}

Expected<std::unique_ptr<HfTokenizer>> HfTokenizer::from_file(const std::filesystem::path& path) {
    VOLT_ASSIGN_OR_RETURN(const std::string text, read_file(path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return data_loss(path.string(), ": not valid JSON");
    return from_json(j, path.string());
}

Status HfTokenizer::encode_segment(std::string_view text, bool at_origin, std::vector<int32_t>& ids) const {
    PieceList list;
    list.text.assign(text);
    list.pieces.push_back({0, uint32_t(text.size()), at_origin});
    if (pre_tokenizer_) VOLT_RETURN_IF_ERROR(pre_tokenizer_->apply(list));
    for (const auto& p : list.pieces) model_->tokenize(list.view(p), ids);
    return Status::ok();
}

Expected<std::vector<int32_t>> HfTokenizer::encode(std::string_view text, bool add_special) const {
    if (size_t bad = utf8_find_invalid(text); bad != std::string_view::npos)
        return invalid_argument("text to encode is not valid UTF-8 (byte ", bad, ")");
    if (text.size() >= UINT32_MAX / 2) return resource_exhausted("text to encode is larger than 2 GiB");
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3);
    std::vector<AddedTokenSplit> raw, normalized;
    std::string buffer;
    // 1. Added tokens that match the raw text; 2. normalize the rest and match normalized added tokens in it.
    added_.split(text, /*normalized_set=*/false, raw);
    for (const auto& r : raw) {
        if (r.token_id >= 0) {
            ids.push_back(r.token_id);
            continue;
        }
        std::string_view part = text.substr(r.begin, r.end - r.begin);
        if (normalizer_) {
            buffer.assign(part);
            VOLT_RETURN_IF_ERROR(normalizer_->normalize(buffer));
            part = buffer;
        }
        added_.split(part, /*normalized_set=*/true, normalized);
        for (const auto& n : normalized) {
            if (n.token_id >= 0) ids.push_back(n.token_id);
            else VOLT_RETURN_IF_ERROR(encode_segment(part.substr(n.begin, n.end - n.begin), r.begin == 0 && n.begin == 0, ids));
        }
    }
    if (add_special && post_processor_) post_processor_->process(ids);
    return ids;
}

Expected<std::string> HfTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
        if (const AddedToken* a = added_.find_by_id(id)) {
            if (skip_special && a->special) continue;
            tokens.push_back(a->content);
        } else if (const std::string* s = model_->id_to_token(id)) {
            tokens.push_back(*s);
        } else {
            return invalid_argument("token id ", id, " is not in the vocabulary of ", label_, " (ids run 0..",
                                    id_limit_ - 1, ")");
        }
    }
    if (!decoder_) {
        std::string out;
        for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
        return out;
    }
    VOLT_RETURN_IF_ERROR(decoder_->decode_chain(tokens));
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
    for (const auto& a : added_.tokens())
        if (a.content == token) return a.id;
    return model_->token_to_id(token);
}

std::optional<std::string> HfTokenizer::id_to_token(int32_t id) const {
    if (const AddedToken* a = added_.find_by_id(id)) return a->content;
    if (const std::string* s = model_->id_to_token(id)) return *s;
    return std::nullopt;
}

bool HfTokenizer::is_special(int32_t id) const {
    const AddedToken* a = added_.find_by_id(id);
    return a && a->special;
}

}  // namespace volt::text
