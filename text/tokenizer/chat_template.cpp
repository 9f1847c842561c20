#include "text/tokenizer/chat_template.h"

#include "sdk/file_io.h"

#include <fstream>
#include <new>
#include <sstream>

#include "text/tokenizer/jinja_interpreter.h"
#include "text/tokenizer/jinja_parser.h"
#include "text/tokenizer/utf8.h"

namespace volt::text {
namespace {

Expected<nlohmann::ordered_json> read_json(const std::filesystem::path& path) {
    VOLT_ASSIGN_OR_RETURN(const std::string text, read_file(path));
    auto j = nlohmann::ordered_json::parse(text, nullptr, false);
    if (j.is_discarded()) return data_loss(path.string(), ": not valid JSON");
    return j;
}

// tokenizer_config.json writes special tokens as strings or as AddedToken objects {"content": ...}.
nlohmann::ordered_json special_token_strings(const nlohmann::ordered_json& config) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    if (!config.is_object()) return out;
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
        if (!config.contains(key)) continue;
        const auto& v = config.at(key);
        if (v.is_string()) out[key] = v;
        else if (v.is_object() && v.contains("content") && v.at("content").is_string()) out[key] = v.at("content");
    }
    return out;
}

// Messages built in code (not parsed from a file) may carry invalid UTF-8; the template engine assumes valid text.
Status check_utf8(const nlohmann::ordered_json& j, const std::string& path) {
    if (j.is_string()) {
        if (!utf8_is_valid(j.get_ref<const std::string&>())) return invalid_argument(path, ": not valid UTF-8");
    } else if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i) VOLT_RETURN_IF_ERROR(check_utf8(j[i], str_cat(path, "[", i, "]")));
    } else if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (!utf8_is_valid(it.key())) return invalid_argument(path, ": a key is not valid UTF-8");
            VOLT_RETURN_IF_ERROR(check_utf8(it.value(), path + "." + it.key()));
        }
    }
    return Status::ok();
}

}  // namespace

Expected<ChatTemplate> ChatTemplate::from_string(const std::string& source, const std::string& where,
                                                 const nlohmann::ordered_json& config) {
    ChatTemplate t;
    VOLT_ASSIGN_OR_RETURN(t.tmpl_, jinja::parse_template(source, where));
    t.source_ = source;
    t.where_ = where;
    t.special_tokens_ = special_token_strings(config);
    return t;
}

Expected<ChatTemplate> ChatTemplate::from_model_dir(const std::filesystem::path& dir, const std::string& name) {
    std::error_code ec;
    nlohmann::ordered_json config;
    const auto config_path = dir / "tokenizer_config.json";
    if (std::filesystem::exists(config_path, ec)) {
        VOLT_ASSIGN_OR_RETURN(config, read_json(config_path));
    }
    // transformers' order: a standalone .jinja file, the processor's chat_template.json, tokenizer_config.json.
    if (std::filesystem::exists(dir / "chat_template.jinja", ec)) {
        VOLT_ASSIGN_OR_RETURN(const std::string source, read_file(dir / "chat_template.jinja"));
        return from_string(source, (dir / "chat_template.jinja").string(), config);
    }
    if (std::filesystem::exists(dir / "chat_template.json", ec)) {
        VOLT_ASSIGN_OR_RETURN(auto j, read_json(dir / "chat_template.json"));
        const std::string where = (dir / "chat_template.json").string() + ": chat_template";
        if (!j.contains("chat_template") || !j.at("chat_template").is_string())
            return invalid_argument(where, ": expected a string");
        return from_string(j.at("chat_template").get<std::string>(), where, config);
    }
    const std::string where = config_path.string() + ": chat_template";
    if (!config.is_object() || !config.contains("chat_template"))
        return not_found(dir.string(), ": no chat template (looked for chat_template.jinja, chat_template.json and "
                                       "\"chat_template\" in tokenizer_config.json)");
    const auto& ct = config.at("chat_template");
    if (ct.is_string()) return from_string(ct.get<std::string>(), where, config);
    if (ct.is_array()) {  // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
        const std::string wanted = name.empty() ? "default" : name;
        std::string names;
        for (const auto& item : ct) {
            if (!item.is_object() || !item.contains("name") || !item.contains("template") || !item.at("template").is_string())
                return invalid_argument(where, ": expected a list of {\"name\", \"template\"} objects");
            std::string n = item.at("name").is_string() ? item.at("name").get<std::string>() : "";
            if (n == wanted) return from_string(item.at("template").get<std::string>(), where + "[" + n + "]", config);
            names += (names.empty() ? "" : ", ") + n;
        }
        return not_found(where, ": no template named \"", wanted, "\" (have: ", names, ")");
    }
    return invalid_argument(where, ": expected a string or a list of named templates");
}

Expected<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages, const ChatOptions& options) const {
    if (!messages.is_array()) return invalid_argument(where_, ": messages must be a JSON array");
    for (size_t i = 0; i < messages.size(); ++i)
        if (!messages[i].is_object() || !messages[i].contains("role") || !messages[i].at("role").is_string())
            return invalid_argument("messages[", i, "]: expected an object with a string \"role\"");
    VOLT_RETURN_IF_ERROR(check_utf8(messages, "messages"));
    VOLT_RETURN_IF_ERROR(check_utf8(options.tools, "tools"));
    VOLT_RETURN_IF_ERROR(check_utf8(options.documents, "documents"));
    VOLT_RETURN_IF_ERROR(check_utf8(options.extra, "template variables"));
    jinja::Value vars = jinja::Value::make_dict();
    for (const auto& [k, v] : special_tokens_.items()) vars.dict->set(k, jinja::Value::from_json(v));
    if (options.extra.is_object())
        for (auto it = options.extra.begin(); it != options.extra.end(); ++it)
            vars.dict->set(it.key(), jinja::Value::from_json(it.value()));
    vars.dict->set("messages", jinja::Value::from_json(messages));
    vars.dict->set("add_generation_prompt", jinja::Value::boolean(options.add_generation_prompt));
    // Like transformers: tools/documents are only defined when given.
    if (!options.tools.is_null()) vars.dict->set("tools", jinja::Value::from_json(options.tools));
    if (!options.documents.is_null()) vars.dict->set("documents", jinja::Value::from_json(options.documents));
    try {
        return jinja::render(*tmpl_, vars, where_);
    } catch (const std::bad_alloc&) {
        return resource_exhausted(where_, ": out of memory while rendering the chat template");
    }
}

nlohmann::ordered_json ChatTemplate::message(const std::string& role, const std::string& text, int images) {
    nlohmann::ordered_json content = nlohmann::ordered_json::array();
    for (int i = 0; i < images; ++i) content.push_back({{"type", "image"}});
    if (!text.empty() || images == 0) content.push_back({{"type", "text"}, {"text", text}});
    return {{"role", role}, {"content", content}};
}

}  // namespace volt::text
