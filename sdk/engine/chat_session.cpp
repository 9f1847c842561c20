#include "sdk/engine/chat_session.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include "sdk/checkpoint.h"
#include "sdk/log.h"
#include "text/backbone.h"
#include "text/tokenizer/stream_decoder.h"
#include "text/tokenizer/utf8.h"
#include "vision/image_decode.h"

namespace volt {

namespace {

Status report(const LoadProgress& progress, LoadPhase phase, float fraction) {
    return progress ? progress(phase, fraction) : Status::ok();
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

Expected<std::unique_ptr<ChatModel>> ChatModel::load(const std::filesystem::path& dir, const LoadProgress& progress,
                                                     Device device, int gpus, ExpertWeights expert_weights,
                                                     std::span<const int> gpu_ids) {
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
    model->device = device;
    model->gpus = gpus;
    model->gpu_ids.assign(gpu_ids.begin(), gpu_ids.end());
    // The backbone's weights are most of the load (VL: up to 0.9, the vision tower after).
    const float backbone_share = model->info.config->is_vl() ? 0.9f : 1.0f;
    auto weights = [&](float fraction) { return report(progress, LoadPhase::kWeights, backbone_share * fraction); };
    VOLT_ASSIGN_OR_RETURN(model->lm, load_backbone(dir, device, /*language_model_of_vl=*/true, gpus, expert_weights,
                                                   progress ? std::function<Status(float)>(weights) : nullptr,
                                                   gpu_ids));
    if (model->info.config->is_vl()) {
        VOLT_RETURN_IF_ERROR(report(progress, LoadPhase::kWeights, 0.9f));
        VOLT_ASSIGN_OR_RETURN(model->vision, vision::VLImageEncoder::load(dir, device));  // ViT + projector there too
        model->image_token_id = static_cast<int32_t>(model->info.config->vl->image_token_index);
    }
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
    if (model->vision && model->tokenizer) {
        // The template writes `<image>` for image parts; the tokenizer must turn it into the config's image id.
        const auto id = model->tokenizer->token_to_id("<image>");
        if (id && *id != model->image_token_id)
            return invalid_argument(dir.string(), ": the tokenizer maps <image> to id ", *id,
                                    " but config.json image_token_index is ", model->image_token_id);
    }
    VOLT_RETURN_IF_ERROR(report(progress, LoadPhase::kDone, 1.0f));
    VOLT_LOG(kInfo, kLoad, "loaded ", dir.string(), ": ", model->info.config->model_type, ", ", model->info.total_params,
             " parameters, tokenizer ", model->tokenizer ? model->tokenizer->description() : std::string("none"),
             model->chat_template ? ", chat template" : "");
    return model;
}

Expected<StreamedGeneration> stream_generation(const GenerationRun& run, const text::Tokenizer* tokenizer,
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
    VOLT_ASSIGN_OR_RETURN(out.result, run(callback));
    VOLT_RETURN_IF_ERROR(stream_error);
    if (stream) {
        VOLT_ASSIGN_OR_RETURN(out.tail, stream->finish());
    }
    return out;
}

Expected<StreamedGeneration> generate_streaming(Session& session, std::span<const int32_t> prompt,
                                                const GenerationOptions& options, const text::Tokenizer* tokenizer,
                                                const TextTokenCallback& on_token) {
    return stream_generation([&](const TokenCallback& cb) { return generate(session, prompt, options, cb); },
                             tokenizer, on_token);
}

Expected<ChatSession> ChatSession::create(const ChatModel& model, const ChatSessionOptions& options) {
    if (options.max_tokens_per_image < 0)
        return invalid_argument("max_tokens_per_image ", options.max_tokens_per_image, " must be >= 0 (0: no limit)");
    if (options.crops_per_batch < 1)
        return invalid_argument("crops_per_batch ", options.crops_per_batch, " must be >= 1");
    VOLT_ASSIGN_OR_RETURN(Session session, Session::create(*model.lm, options.session));
    return ChatSession(&model, std::move(session), options);
}

Status ChatSession::add_message(Role role, std::string_view text) {
    const char* name = role_name(role);
    if (!name) return invalid_argument("chat message: role ", static_cast<int>(role), " is not system, user or assistant");
    if (const size_t bad = text::utf8_find_invalid(text); bad != std::string_view::npos)
        return invalid_argument("chat message: text is not valid UTF-8 (byte ", bad, ")");
    if (role != Role::kUser && (!pending_documents_.empty() || !pending_images_.empty()))
        return invalid_argument("chat message: ", pending_images_.empty() ? "documents are" : "images are",
                                " attached; they go with a user message");
    // The template renders an image part as `<image>`: the same text typed in a message would stand for an image
    // that is not there.
    if (model_->vision && text.find("<image>") != std::string_view::npos)
        return invalid_argument("chat message: the text contains \"<image>\", the image placeholder; attach images "
                                "with attach_image instead");
    // VL-01's content-list form: images, documents as text parts, then the message text.
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (size_t i = 0; i < pending_images_.size(); ++i) parts.push_back({{"type", "image"}});
    for (const Document& d : pending_documents_)
        parts.push_back({{"type", "text"},
                         {"text", "[document: " + std::filesystem::path(d.name).filename().string() + "]\n" + d.text() +
                                      "\n[end of document]\n\n"}});
    parts.push_back({{"type", "text"}, {"text", std::string(text)}});
    messages_.push_back({{"role", name}, {"content", parts}});
    message_images_.push_back(pending_images_.size());
    images_.insert(images_.end(), pending_images_.begin(), pending_images_.end());
    pending_images_.clear();
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

Status ChatSession::check_takes_images(const std::string& name) const {
    if (model_->vision) return Status::ok();
    return invalid_argument(name, ": ", model_->info.dir.string(), " is a text-only model; images need a MiniMax-VL-01 model");
}

Expected<int64_t> ChatSession::attach_image(const std::filesystem::path& path) {
    VOLT_RETURN_IF_ERROR(check_takes_images(path.string()));  // before paying for the decode
    VOLT_ASSIGN_OR_RETURN(vision::Image image, vision::decode_image_file(path));
    return attach_image(std::move(image), path.string());
}

Expected<int64_t> ChatSession::attach_image(vision::Image image, std::string name) {
    VOLT_RETURN_IF_ERROR(check_takes_images(name));
    if (image.width <= 0 || image.height <= 0 ||
        image.pixels.size() != static_cast<size_t>(image.height) * image.row_bytes())
        return invalid_argument(name, ": image of ", image.width, "x", image.height, " with ", image.pixels.size(),
                                " pixel bytes (expected width x height x ", image.channels(), ")");
    auto counted = model_->vision->count_tokens_within(image.width, image.height, options_.max_tokens_per_image);
    if (!counted) return counted.status().with_context(name);
    const int64_t tokens = *counted;
    if (tokens > session_.max_context())
        return resource_exhausted(name, ": a ", image.width, "x", image.height, " image takes ", tokens,
                                  " tokens, more than the session's context of ", session_.max_context());
    static std::atomic<uint64_t> serials{0};
    auto entry = std::make_shared<AttachedImage>();
    entry->serial = ++serials;
    entry->name = std::move(name);
    entry->image = std::move(image);
    entry->tokens = tokens;
    pending_images_.push_back(std::move(entry));
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
    // The anchor holds for the same text with the same images (an edited conversation can render the same text
    // around a different image).
    bool anchored = !anchor_text_.empty() && rest.starts_with(anchor_text_) && anchor_serials_.size() <= images_.size();
    for (size_t i = 0; anchored && i < anchor_serials_.size(); ++i) anchored = images_[i]->serial == anchor_serials_[i];
    size_t first_image = 0;
    if (anchored) {
        r.ids = anchor_ids_;
        r.spans = anchor_spans_;
        first_image = anchor_serials_.size();
        rest.remove_prefix(anchor_text_.size());
    }
    VOLT_ASSIGN_OR_RETURN(std::vector<int32_t> tail, model_->tokenizer->encode(rest, /*add_special=*/false));
    if (model_->vision) {
        std::vector<int64_t> counts;
        for (size_t i = first_image; i < images_.size(); ++i) counts.push_back(images_[i]->tokens);
        auto expanded = vision::expand_image_tokens(tail, model_->image_token_id, counts);
        if (!expanded)
            return expanded.status().with_context(
                str_cat(model_->info.dir.string(), ": the chat template's <image> placeholders do not match the ",
                        images_.size(), " attached images"));
        for (vision::ImageSpan span : expanded->spans) {
            span.image += static_cast<int64_t>(first_image);
            span.begin += static_cast<int64_t>(r.ids.size());
            r.spans.push_back(span);
        }
        tail = std::move(expanded->ids);
    }
    r.ids.insert(r.ids.end(), tail.begin(), tail.end());
    return r;
}

Expected<int64_t> ChatSession::count_prompt_tokens() const {
    VOLT_ASSIGN_OR_RETURN(Rendered r, render());
    return static_cast<int64_t>(r.ids.size());
}

Expected<std::shared_ptr<const Tensor>> ChatSession::image_features(const AttachedImage& image,
                                                                    const std::function<bool()>& cancelled) {
    if (auto it = features_.find(image.serial); it != features_.end()) return it->second;
    vision::ImageEncodeOptions options;
    options.crops_per_batch = options_.crops_per_batch;
    options.cancelled = cancelled;
    auto encoded = model_->vision->encode(image.image, options);
    if (!encoded) return encoded.status().with_context(image.name);
    auto features = std::make_shared<const Tensor>(std::move(encoded->features));
    features_.emplace(image.serial, features);
    return features;
}

Expected<Tensor> ChatSession::run_prompt(const Rendered& prompt, int64_t begin,
                                         const std::function<bool()>& cancelled) {
    const auto ids = std::span<const int32_t>(prompt.ids).subspan(begin);
    vision::ExpandedPrompt piece;  // the images inside [begin, n), positions relative to begin
    std::vector<Tensor> features;
    std::vector<uint64_t> serials;
    for (const vision::ImageSpan& span : prompt.spans) {
        if (span.begin + span.length <= begin) continue;
        const AttachedImage& image = *images_[span.image];
        VOLT_ASSIGN_OR_RETURN(std::shared_ptr<const Tensor> f, image_features(image, cancelled));
        features.push_back(*f);  // a view of the cached features (shares the storage)
        piece.spans.push_back({static_cast<int64_t>(features.size() - 1), span.begin - begin, span.length});
        serials.push_back(image.serial);
    }
    if (features.empty()) return session_.append(ids, LogitsMode::kLast, cancelled);
    piece.ids.assign(ids.begin(), ids.end());
    VOLT_ASSIGN_OR_RETURN(Tensor embeds, model_->lm->embed(ids));
    VOLT_RETURN_IF_ERROR(vision::splice_image_features(embeds, piece, features));
    auto logits = session_.append_embeddings(embeds, ids, LogitsMode::kLast, cancelled);
    if (logits) session_serials_.insert(session_serials_.end(), serials.begin(), serials.end());
    return logits;
}

Expected<ChatSession::Reply> ChatSession::reply(const GenerationOptions& options, const TextTokenCallback& on_token) {
    if (messages_.empty()) return invalid_argument("reply: the conversation has no messages");
    VOLT_RETURN_IF_ERROR(validate(options));
    VOLT_ASSIGN_OR_RETURN(Rendered prompt, render());
    const int64_t n = static_cast<int64_t>(prompt.ids.size());
    if (n > session_.max_context())
        return resource_exhausted("the conversation takes ", n, " tokens, more than the session's context of ",
                                  session_.max_context(), " tokens");
    GenerationOptions g = options;
    g.stop_ids.insert(g.stop_ids.end(), model_->stop_ids.begin(), model_->stop_ids.end());

    // What the session already ran is reused when it is a prefix of the prompt with the same images there (a
    // lightning state cannot be rolled back, so anything else starts over).
    const std::vector<int32_t>& held = session_.tokens();
    const int64_t h = static_cast<int64_t>(held.size());
    bool reuse = h > 0 && h <= n && std::equal(held.begin(), held.end(), prompt.ids.begin());
    size_t held_images = 0;
    for (const vision::ImageSpan& span : prompt.spans) {
        if (!reuse || span.begin >= h) break;
        reuse = span.begin + span.length <= h && held_images < session_serials_.size() &&
                session_serials_[held_images] == images_[span.image]->serial;
        ++held_images;
    }
    reuse = reuse && held_images == session_serials_.size();
    if (!reuse) {
        session_.reset();
        session_serials_.clear();
    }
    const int64_t start = reuse ? h : 0;

    std::vector<int32_t> ids;
    const uint64_t run = canceller_->begin();
    auto callback = [&](int32_t id, std::string_view piece) {
        ids.push_back(id);
        if (canceller_->cancelled(run)) return false;
        return (!on_token || on_token(id, piece)) && !canceller_->cancelled(run);
    };
    auto generate_run = [&](const TokenCallback& cb) -> Expected<GenerationResult> {
        const auto t0 = std::chrono::steady_clock::now();
        const auto stop = [&] { return canceller_->cancelled(run); };
        Expected<Tensor> logits = start < n ? run_prompt(prompt, start, stop) : session_.last_logits().to(DType::kF32);
        if (!logits) {
            // A failure inside the backbone resets the session; one before it (an image that did not encode, a
            // cancel between ViT layers) leaves the session, and what it holds, as it was.
            if (session_.tokens().empty()) session_serials_.clear();
            return logits.status();
        }
        const double prefill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        VOLT_ASSIGN_OR_RETURN(GenerationResult result, continue_generation(session_, std::move(logits).value(), g, cb));
        result.prompt_tokens = n;
        result.reused_tokens = start;
        result.prefill_seconds = prefill_seconds;
        return result;
    };
    auto generation = stream_generation(generate_run, model_->tokenizer.get(), callback);
    canceller_->end();
    if (!generation) return generation.status();

    const text::Tokenizer& tok = *model_->tokenizer;
    VOLT_ASSIGN_OR_RETURN(std::string ran, tok.decode(ids, /*skip_special=*/false));  // as the model saw it
    anchor_text_ = prompt.text + ran;
    anchor_ids_ = std::move(prompt.ids);
    anchor_ids_.insert(anchor_ids_.end(), ids.begin(), ids.end());
    anchor_spans_ = std::move(prompt.spans);
    anchor_serials_.clear();
    for (size_t i = 0; i < images_.size(); ++i) anchor_serials_.push_back(images_[i]->serial);
    if (!ids.empty() && std::find(g.stop_ids.begin(), g.stop_ids.end(), ids.back()) != g.stop_ids.end()) ids.pop_back();
    Reply out;
    VOLT_ASSIGN_OR_RETURN(out.text, tok.decode(ids, /*skip_special=*/true));
    out.generation = std::move(generation).value();
    messages_.push_back({{"role", "assistant"},
                         {"content", nlohmann::ordered_json::array({{{"type", "text"}, {"text", out.text}}})}});
    message_images_.push_back(0);
    return out;
}

void ChatSession::clear_messages() {
    messages_ = nlohmann::ordered_json::array();
    message_images_.clear();
    pending_documents_.clear();
    pending_images_.clear();
    images_.clear();
    features_.clear();
    anchor_text_.clear();
    anchor_ids_.clear();
    anchor_spans_.clear();
    anchor_serials_.clear();
}

Status ChatSession::truncate_messages(size_t n) {
    if (n > messages_.size())
        return invalid_argument("truncate_messages: ", n, " is more than the ", messages_.size(), " messages held");
    size_t keep_images = 0;
    for (size_t i = 0; i < n; ++i) keep_images += message_images_[i];
    messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(n), messages_.end());
    message_images_.resize(n);
    images_.resize(keep_images);
    return Status::ok();
}

Expected<ChatSession> ChatSession::fork() const {
    VOLT_ASSIGN_OR_RETURN(Session session, session_.fork());
    ChatSession c(model_, std::move(session), options_);
    c.messages_ = messages_;
    c.message_images_ = message_images_;
    c.pending_documents_ = pending_documents_;
    c.pending_images_ = pending_images_;
    c.images_ = images_;
    c.features_ = features_;
    c.session_serials_ = session_serials_;
    c.anchor_text_ = anchor_text_;
    c.anchor_ids_ = anchor_ids_;
    c.anchor_spans_ = anchor_spans_;
    c.anchor_serials_ = anchor_serials_;
    return c;
}

}  // namespace volt
