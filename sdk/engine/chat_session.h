// Conversations: a model directory loaded with everything a chat needs (ChatModel: backbone, tokenizer, chat
// template, stop ids, and for MiniMax-VL-01 the image encoder), streaming generation that emits complete UTF-8
// text, and ChatSession, which keeps the messages with their attached images and documents, renders them with the
// model's template (each image part becomes `<image>`, expanded to the image's tokens with its features spliced
// in) and replies. The C ABI, the `volt run`
// command and the desktop app are thin layers over this.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sdk/document.h"
#include "sdk/engine/cancellation.h"
#include "sdk/engine/generate.h"
#include "sdk/engine/session.h"
#include "sdk/model_info.h"
#include "text/expert_weights.h"
#include "text/minimax_text_model.h"
#include "text/tokenizer/chat_template.h"
#include "text/tokenizer/tokenizer.h"
#include "vision/image.h"
#include "vision/image_prompt.h"
#include "vision/vl_image_encoder.h"

namespace volt {

enum class LoadPhase : int32_t { kConfig = 0, kWeights = 1, kTokenizer = 2, kDone = 3 };
// Called at phase boundaries with a fraction in [0, 1]; a non-OK status aborts the load and is returned.
using LoadProgress = std::function<Status(LoadPhase, float)>;

struct ChatModel {
    ModelInfo info;
    Device device = Device::cpu();                 // where the backbone, the ViT and the projector run
    int gpus = 1;                                  // CUDA: the backbone split over this many GPUs
    std::vector<int> gpu_ids;                      // ... these (rank order); empty: device.index .. + gpus - 1
    std::unique_ptr<CausalLM> lm;
    std::unique_ptr<text::Tokenizer> tokenizer;    // null: the directory has no tokenizer (ids only)
    std::optional<text::ChatTemplate> chat_template;
    std::vector<int32_t> stop_ids;                 // the config's eos
    std::unique_ptr<vision::VLImageEncoder> vision;  // VL-01: the image path (null for a text-only model)
    int32_t image_token_id = -1;                   // VL-01: config image_token_index (`<image>`)

    // Text-01 and VL-01 directories (VL: the language model under "language_model."). Checks the checkpoint
    // against the config first and reports every problem at once. `device`: the CPU, or a CUDA GPU (a build with
    // CUDA; UNIMPLEMENTED otherwise, and for shapes the CUDA kernels do not run); `gpus` > 1 splits the backbone
    // over that many GPUs from device.index on (text/parallel_mapping.h; needs NCCL), or over `gpu_ids` when given
    // (any distinct GPUs in rank order: gpus is then its size, device.index its first entry); `expert_weights` (CUDA):
    // expert weights quantised at load to FP8 or int8 (text/expert_weights.h).
    static Expected<std::unique_ptr<ChatModel>> load(const std::filesystem::path& dir, const LoadProgress& progress = {},
                                                     Device device = Device::cpu(), int gpus = 1,
                                                     ExpertWeights expert_weights = ExpertWeights::kBf16,
                                                     std::span<const int> gpu_ids = {});
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
// The same text streaming over any generation run (`run` calls generate / continue_generation with the callback).
using GenerationRun = std::function<Expected<GenerationResult>(const TokenCallback&)>;
Expected<StreamedGeneration> stream_generation(const GenerationRun& run, const text::Tokenizer* tokenizer,
                                               const TextTokenCallback& on_token);

enum class Role : int32_t { kSystem = 0, kUser = 1, kAssistant = 2 };

struct ChatSessionOptions {
    SessionOptions session;
    // Per-image token budget (0: none): attach_image refuses a larger image with RESOURCE_EXHAUSTED, naming its
    // cost. Images are never downscaled behind the caller's back.
    int64_t max_tokens_per_image = 0;
    int64_t crops_per_batch = 8;  // ViT batch (bounds activation memory)
};

class ChatSession {
public:
    static Expected<ChatSession> create(const ChatModel& model, const ChatSessionOptions& options = {});
    static Expected<ChatSession> create(const ChatModel& model, const SessionOptions& options) {
        return create(model, ChatSessionOptions{.session = options});
    }

    // Images and documents attached since the last user message go into the next user message: the images first
    // (one image part each, in order), then each document as a text part, then the message's text.
    Status add_message(Role role, std::string_view text);
    // Reads the document now (errors name the file); returns the tokens its text takes (-1 without a tokenizer).
    Expected<int64_t> attach_document(const std::filesystem::path& path);
    // Decodes the image now (errors name the file or `name`) and returns the prompt tokens it takes; the ViT runs
    // when a reply first needs it. INVALID_ARGUMENT for a text-only model; RESOURCE_EXHAUSTED above the per-image
    // budget or the session's context.
    Expected<int64_t> attach_image(const std::filesystem::path& path);
    Expected<int64_t> attach_image(vision::Image image, std::string name);
    Expected<int64_t> count_prompt_tokens() const;  // the conversation with the reply prompt, as it would run

    struct Reply {
        StreamedGeneration generation;
        std::string text;  // the reply as appended to the conversation (special tokens removed)
    };
    // Renders, generates (options.stop_ids gets the model's stop ids added), appends the reply as an assistant
    // message (also when stopped early). A stop by `on_token` or cancel() ends with reason kCancelled; a cancel()
    // while the prompt's images are being encoded, or while the prompt runs through the backbone (checked between
    // layers), returns CANCELLED instead (nothing is appended, the session is usable and the images encoded so far
    // stay cached; a backbone stop makes the next reply run the prompt from the start).
    Expected<Reply> reply(const GenerationOptions& options, const TextTokenCallback& on_token = {});

    void cancel() { canceller_->cancel(); }  // any thread: stops the reply in progress at its next token or layer
    void clear_messages();
    // Keeps the first n messages (n <= num_messages()), e.g. to regenerate or edit the last turn; pending
    // attachments are kept. What the model already ran is reused as far as the conversation still matches it.
    Status truncate_messages(size_t n);
    // An independent copy: messages, attachments, and what the model has run (the caches are copied), so a
    // branch (regenerate, edit-and-resend) continues from here instead of recomputing the conversation.
    Expected<ChatSession> fork() const;
    size_t num_messages() const { return messages_.size(); }
    Session& session() { return session_; }
    RunCanceller& canceller() { return *canceller_; }

private:
    struct AttachedImage {
        uint64_t serial = 0;  // unique per attach (process-wide): equal serials mean the same pixels
        std::string name;
        vision::Image image;  // decoded, EXIF orientation applied
        int64_t tokens = 0;
    };
    using ImageRef = std::shared_ptr<const AttachedImage>;  // immutable, shared by forks
    struct Rendered {
        std::string text;
        std::vector<int32_t> ids;              // image tokens expanded
        std::vector<vision::ImageSpan> spans;  // .image indexes images_
    };
    ChatSession(const ChatModel* model, Session session, const ChatSessionOptions& options)
        : model_(model), session_(std::move(session)), options_(options) {}
    Expected<Rendered> render() const;
    Status check_takes_images(const std::string& name) const;  // INVALID_ARGUMENT for a text-only model
    // Runs positions [begin, end) of the prompt into the session (image rows from their features) and returns
    // the last position's logits f32 [1, vocab].
    // `cancelled` is asked between ViT layers while images are encoded (CANCELLED then, the session unchanged) and
    // between backbone layers (CANCELLED then, the session reset).
    Expected<Tensor> run_prompt(const Rendered& prompt, int64_t begin, const std::function<bool()>& cancelled);
    Expected<std::shared_ptr<const Tensor>> image_features(const AttachedImage& image,
                                                           const std::function<bool()>& cancelled);

    const ChatModel* model_;
    Session session_;
    ChatSessionOptions options_;
    std::unique_ptr<RunCanceller> canceller_ = std::make_unique<RunCanceller>();  // heap: the session stays movable
    nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();  // template-ready (VL-01 content lists)
    std::vector<size_t> message_images_;  // images each message holds (truncate_messages drops theirs)
    std::vector<Document> pending_documents_;
    std::vector<ImageRef> pending_images_;
    std::vector<ImageRef> images_;  // the conversation's images in prompt order
    std::map<uint64_t, std::shared_ptr<const Tensor>> features_;  // serial -> f32 [tokens, text hidden]
    std::vector<uint64_t> session_serials_;  // images whose features session_ holds, in order
    // What the model has run for this conversation, as text and as the exact ids it ran (the last prompt plus the
    // generated ids). A recurrent (lightning) state cannot be rolled back, so the cache is reusable only when the
    // next prompt extends these ids exactly; re-tokenizing the reply's text usually would not (it may tokenize
    // differently, and the template adds end markers), and every turn would recompute the whole conversation.
    std::string anchor_text_;
    std::vector<int32_t> anchor_ids_;
    std::vector<vision::ImageSpan> anchor_spans_;  // images inside anchor_ids_ (.image indexes images_)
    std::vector<uint64_t> anchor_serials_;         // and which they were
};

}  // namespace volt
