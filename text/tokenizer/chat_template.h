// The model's chat template: finds it in a model directory (chat_template.jinja, chat_template.json or
// tokenizer_config.json, in transformers' order), parses it once, and renders conversations the way
// transformers' apply_chat_template(tokenize=False) does. MiniMax-VL-01 messages carry content lists
// ({"type": "image"} / {"type": "text", "text": ...}); Text-01 templates also take plain string content and tools.
//
//   auto tmpl = ChatTemplate::from_model_dir(dir);
//   auto prompt = tmpl->render(ChatTemplate::user_message("Describe this.", /*images=*/1), {});
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "sdk/status.h"

namespace volt::text {

namespace jinja {
struct Template;
}

struct ChatOptions {
    bool add_generation_prompt = true;
    nlohmann::ordered_json tools;      // a list of tool/function schemas, or null
    nlohmann::ordered_json documents;  // a list of {"title"/"name", "text"} documents, or null
    nlohmann::ordered_json extra;      // further template variables (an object), or null
};

class ChatTemplate {
public:
    // `where` names the source in errors ("tokenizer_config.json: chat_template"). `config` supplies bos_token,
    // eos_token, unk_token and pad_token when present (tokenizer_config.json).
    static Expected<ChatTemplate> from_string(const std::string& source, const std::string& where,
                                              const nlohmann::ordered_json& config = nullptr);
    // `name` picks one of several named templates (tokenizer_config.json list form); empty = "default".
    static Expected<ChatTemplate> from_model_dir(const std::filesystem::path& dir, const std::string& name = "");

    // `messages`: a JSON array of {"role", "content", ...}. Fails if the template raises or uses something Volt's
    // template engine does not support.
    Expected<std::string> render(const nlohmann::ordered_json& messages, const ChatOptions& options) const;

    // One message with `images` image items, then `documents` as text items, then `text` (VL-01 content-list form).
    static nlohmann::ordered_json message(const std::string& role, const std::string& text, int images = 0);

    const std::string& source() const { return source_; }

private:
    std::shared_ptr<const jinja::Template> tmpl_;
    std::string source_;
    std::string where_;
    nlohmann::ordered_json special_tokens_;
};

}  // namespace volt::text
