#include "sdk/engine/chat_session.h"

#include <algorithm>

#include "sdk/checkpoint.h"
#include "sdk/log.h"
#include "text/minimax_text_weights.h"
#include "text/tokenizer/stream_decoder.h"
#include "text/tokenizer/utf8.h"

namespace volt {

namespace {

Status report(const LoadProgress& progress, LoadPhase phase, float fraction) {
    return progress ? progress(phase, fraction) : Status::ok();
}

// The backbone's tensors under their Text-01 names (VL-01 keeps them under "language_model."); views keep the
// mapping alive, so nothing is copied here.
Expected<std::unique_ptr<MiniMaxTextModel>> load_backbone(const std::filesystem::path& dir, const ModelConfig& config) {
    VOLT_ASSIGN_OR_RETURN(Checkpoint ck, Checkpoint::open(dir));
    const std::string prefix = config.is_vl() ? "language_model." : "";
    std::unordered_map<std::string, Tensor> tensors;
    for (const WeightSpec& spec : minimax_text_weight_specs(config.text, prefix)) {
        if (!ck.find(spec.name)) continue;  // optional ones (a tied lm_head); the binding check covered the rest
        VOLT_ASSIGN_OR_RETURN(Tensor t, ck.view(spec.name));
        tensors.emplace(spec.name.substr(prefix.size()), std::move(t));
    }
    return MiniMaxTextModel::from_tensors(config.text, tensors, ck.description());
}

const char* role_name(Role role) {
    switch (role) {
        case Role::kSystem: return "system";
        case Role::kUser: return "user";
        case Role::kAssistant: return "assistant";
    }
    return nullptr;
}

}  // namespace

Expected<std::unique_ptr<ChatModel>> ChatModel::load(const std::filesystem::path& dir, const LoadProgress& progress) {
    VOLT_RETURN_IF_ERROR(report(progress, LoadPhase::kConfig, 0.0f));
    auto model = std::make_unique<ChatModel>();
    VOLT_ASSIGN_OR_RETURN(model->info, inspect_model(dir));
    if (!model->info.config)
        return invalid_argument(dir.string(), ": holds only tokenizer files; a model needs config.json and weights");
    if (!model->info.has_checkpoint)
        return not_found(dir.string(), ": no model.safetensors or model.safetensors.index.json");
    VOLT_RETURN_IF_ERROR(model->info.binding.to_status(model->info.checkpoint_description));
    VOLT_RETURN_IF_ERROR(report(progress, LoadPhase::kConfig, 1.0f));

    VOLT_RETURN_IF_ERROR(report(progress, LoadPhase::kWeights, 0.0f));
    VOLT_ASSIGN_OR_RETURN(model->lm, load_backbone(dir, *model->info.config));
    VOLT_RETURN_IF_ERROR(report(progress, LoadPhase::kWeights, 1.0f));

    VOLT_RETURN_IF_ERROR(report(progress, LoadPhase::kTokenizer, 0.0f));
    if (!model->info.tokenizer_files.empty()) {
        auto tok = text::load_tokenizer(dir);
        if (tok) model->tokenizer = std::move(tok).value();
        else if (tok.status().code() != StatusCode::kNotFound) return tok.status();
    }
    if (model->tokenizer) {
        auto tmpl = text::ChatTemplate::from_model_dir(dir);
        if (tmpl) model->chat_template = std::move(tmpl).value();
        else if (tmpl.status().code() != StatusCode::kNotFound) return tmpl.status();
    }
    if (const auto& eos = model->info.config->text.eos_token_id) model->stop_ids.push_back(static_cast<int32_t>(*eos));
    VOLT_RETURN_IF_ERROR(report(progress, LoadPhase::kDone, 1.0f));
    VOLT_LOG(kInfo, kLoad, "loaded ", dir.string(), ": ", model->info.config->model_type, ", ", model->info.total_params,
             " parameters, tokenizer ", model->tokenizer ? model->tokenizer->description() : std::string("none"),
             model->chat_template ? ", chat template" : "");
    return model;
}

Expected<StreamedGeneration> generate_streaming(Session& session, std::span<const int32_t> prompt,
                                                const GenerationOptions& options, const text::Tokenizer* tokenizer,
                                                const TextTokenCallback& on_token) {
    std::optional<text::StreamDecoder> stream;
    if (tokenizer) stream.emplace(*tokenizer, /*skip_special=*/true);
    Status stream_error;
    auto callback = [&](int32_t id) -> bool {
        std::string piece;
        if (stream) {
            auto text = stream->push(id);
            if (!text) {
                stream_error = text.status();
                return false;
            }
            piece = std::move(text).value();
        }
        return !on_token || on_token(id, piece);
    };
    StreamedGeneration out;
    VOLT_ASSIGN_OR_RETURN(out.result, generate(session, prompt, options, callback));
    VOLT_RETURN_IF_ERROR(stream_error);
    if (stream) {
        VOLT_ASSIGN_OR_RETURN(out.tail, stream->finish());
    }
    return out;
}

Expected<ChatSession> ChatSession::create(const ChatModel& model, const SessionOptions& options) {
    VOLT_ASSIGN_OR_RETURN(Session session, Session::create(*model.lm, options));
    return ChatSession(&model, std::move(session));
}

Status ChatSession::add_message(Role role, std::string_view text) {
    const char* name = role_name(role);
    if (!name) return invalid_argument("chat message: role ", static_cast<int>(role), " is not system, user or assistant");
    if (const size_t bad = text::utf8_find_invalid(text); bad != std::string_view::npos)
        return invalid_argument("chat message: text is not valid UTF-8 (byte ", bad, ")");
    if (role != Role::kUser && !pending_documents_.empty())
        return invalid_argument("chat message: documents are attached; they go with a user message");
    // VL-01's content-list form: documents as text parts, then the message text.
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (const Document& d : pending_documents_)
        parts.push_back({{"type", "text"},
                         {"text", "[document: " + std::filesystem::path(d.name).filename().string() + "]\n" + d.text() +
                                      "\n[end of document]\n\n"}});
    parts.push_back({{"type", "text"}, {"text", std::string(text)}});
    messages_.push_back({{"role", name}, {"content", parts}});
    pending_documents_.clear();
    return Status::ok();
}

Expected<int64_t> ChatSession::attach_document(const std::filesystem::path& path) {
    VOLT_ASSIGN_OR_RETURN(Document doc, load_document(path));
    for (const auto& w : doc.warnings) VOLT_LOG(kWarn, kGeneral, path.string(), ": ", w);
    int64_t tokens = -1;
    if (model_->tokenizer) {
        VOLT_ASSIGN_OR_RETURN(auto ids, model_->tokenizer->encode(doc.text()));
        tokens = static_cast<int64_t>(ids.size());
    }
    pending_documents_.push_back(std::move(doc));
    return tokens;
}

Expected<ChatSession::Rendered> ChatSession::render() const {
    if (!model_->tokenizer) return not_found(model_->info.dir.string(), ": the model directory has no tokenizer");
    if (!model_->chat_template)
        return not_found(model_->info.dir.string(), ": the model directory has no chat template "
                                                    "(chat_template.json or tokenizer_config.json chat_template)");
    Rendered r;
    VOLT_ASSIGN_OR_RETURN(r.text, model_->chat_template->render(messages_, {}));
    std::string_view rest = r.text;
    if (!anchor_text_.empty() && rest.starts_with(anchor_text_)) {
        r.ids = anchor_ids_;
        rest.remove_prefix(anchor_text_.size());
    }
    VOLT_ASSIGN_OR_RETURN(std::vector<int32_t> tail, model_->tokenizer->encode(rest, /*add_special=*/false));
    r.ids.insert(r.ids.end(), tail.begin(), tail.end());
    return r;
}

Expected<int64_t> ChatSession::count_prompt_tokens() const {
    VOLT_ASSIGN_OR_RETURN(Rendered r, render());
    return static_cast<int64_t>(r.ids.size());
}

Expected<ChatSession::Reply> ChatSession::reply(const GenerationOptions& options, const TextTokenCallback& on_token) {
    if (messages_.empty()) return invalid_argument("reply: the conversation has no messages");
    VOLT_ASSIGN_OR_RETURN(Rendered prompt, render());
    GenerationOptions g = options;
    g.stop_ids.insert(g.stop_ids.end(), model_->stop_ids.begin(), model_->stop_ids.end());
    std::vector<int32_t> ids;
    const uint64_t run = canceller_->begin();
    auto callback = [&](int32_t id, std::string_view piece) {
        ids.push_back(id);
        if (canceller_->cancelled(run)) return false;
        return (!on_token || on_token(id, piece)) && !canceller_->cancelled(run);
    };
    auto generation = generate_streaming(session_, prompt.ids, g, model_->tokenizer.get(), callback);
    canceller_->end();
    if (!generation) return generation.status();

    const text::Tokenizer& tok = *model_->tokenizer;
    VOLT_ASSIGN_OR_RETURN(std::string ran, tok.decode(ids, /*skip_special=*/false));  // as the model saw it
    anchor_text_ = prompt.text + ran;
    anchor_ids_ = std::move(prompt.ids);
    anchor_ids_.insert(anchor_ids_.end(), ids.begin(), ids.end());
    if (!ids.empty() && std::find(g.stop_ids.begin(), g.stop_ids.end(), ids.back()) != g.stop_ids.end()) ids.pop_back();
    Reply out;
    VOLT_ASSIGN_OR_RETURN(out.text, tok.decode(ids, /*skip_special=*/true));
    out.generation = std::move(generation).value();
    messages_.push_back({{"role", "assistant"},
                         {"content", nlohmann::ordered_json::array({{{"type", "text"}, {"text", out.text}}})}});
    return out;
}

void ChatSession::clear_messages() {
    messages_ = nlohmann::ordered_json::array();
    pending_documents_.clear();
    anchor_text_.clear();
    anchor_ids_.clear();
}

}  // namespace volt
