// Conversations: a model directory loaded with everything a chat needs (ChatModel: backbone, tokenizer, chat
// template, stop ids), streaming generation that emits complete UTF-8 text, and ChatSession, which keeps the
// messages and attached documents, renders them with the model's template and replies. The C ABI, the `volt run`
// command and the desktop app are thin layers over this.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/document.h"
#include "sdk/engine/cancellation.h"
#include "sdk/engine/generate.h"
#include "sdk/engine/session.h"
#include "sdk/model_info.h"
#include "text/minimax_text_model.h"
#include "text/tokenizer/chat_template.h"
#include "text/tokenizer/tokenizer.h"

namespace volt {

enum class LoadPhase : int32_t { kConfig = 0, kWeights = 1, kTokenizer = 2, kDone = 3 };
// Called at phase boundaries with a fraction in [0, 1]; a non-OK status aborts the load and is returned.
using LoadProgress = std::function<Status(LoadPhase, float)>;

struct ChatModel {
    ModelInfo info;
    std::unique_ptr<MiniMaxTextModel> lm;
    std::unique_ptr<text::Tokenizer> tokenizer;    // null: the directory has no tokenizer (ids only)
    std::optional<text::ChatTemplate> chat_template;
    std::vector<int32_t> stop_ids;                 // the config's eos

    // Text-01 and VL-01 directories (VL: the language model under "language_model."). Checks the checkpoint
    // against the config first and reports every problem at once.
    static Expected<std::unique_ptr<ChatModel>> load(const std::filesystem::path& dir, const LoadProgress& progress = {});
};

// Generation whose tokens come with the text that became final (complete UTF-8 characters only; empty without a
// tokenizer). `on_token(id, text)` returns false to stop. The remainder held back at the end is in `tail`.
struct StreamedGeneration {
    GenerationResult result;
    std::string tail;
};
using TextTokenCallback = std::function<bool(int32_t id, std::string_view text)>;
Expected<StreamedGeneration> generate_streaming(Session& session, std::span<const int32_t> prompt,
                                                const GenerationOptions& options, const text::Tokenizer* tokenizer,
                                                const TextTokenCallback& on_token);

enum class Role : int32_t { kSystem = 0, kUser = 1, kAssistant = 2 };

class ChatSession {
public:
    static Expected<ChatSession> create(const ChatModel& model, const SessionOptions& options = {});

    // Documents attached since the last user message go into the next user message, each as a text part before it.
    Status add_message(Role role, std::string_view text);
    // Reads the document now (errors name the file); returns the tokens its text takes (-1 without a tokenizer).
    Expected<int64_t> attach_document(const std::filesystem::path& path);
    Expected<int64_t> count_prompt_tokens() const;  // the conversation with the reply prompt, as it would run

    struct Reply {
        StreamedGeneration generation;
        std::string text;  // the reply as appended to the conversation (special tokens removed)
    };
    // Renders, generates (options.stop_ids gets the model's stop ids added), appends the reply as an assistant
    // message (also when stopped early). A stop by `on_token` or cancel() ends with reason kCancelled.
    Expected<Reply> reply(const GenerationOptions& options, const TextTokenCallback& on_token = {});

    void cancel() { canceller_->cancel(); }  // any thread: stops the reply in progress at its next token
    void clear_messages();
    size_t num_messages() const { return messages_.size(); }
    Session& session() { return session_; }
    RunCanceller& canceller() { return *canceller_; }

private:
    struct Rendered {
        std::string text;
        std::vector<int32_t> ids;
    };
    ChatSession(const ChatModel* model, Session session) : model_(model), session_(std::move(session)) {}
    Expected<Rendered> render() const;

    const ChatModel* model_;
    Session session_;
    std::unique_ptr<RunCanceller> canceller_ = std::make_unique<RunCanceller>();  // heap: the session stays movable
    nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();  // template-ready (VL-01 content lists)
    std::vector<Document> pending_documents_;
    // What the model has run for this conversation, as text and as the exact ids it ran (the last prompt plus the
    // generated ids). A recurrent (lightning) state cannot be rolled back, so the cache is reusable only when the
    // next prompt extends these ids exactly; re-tokenizing the reply's text usually would not (it may tokenize
    // differently, and the template adds end markers), and every turn would recompute the whole conversation.
    std::string anchor_text_;
    std::vector<int32_t> anchor_ids_;
};

}  // namespace volt
