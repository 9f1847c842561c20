// The C ABI over the C++ SDK. Every entry point is a firewall: arguments are checked, C++ exceptions are caught
// (INTERNAL), and failures leave a thread-local message. Nothing here computes: it adapts handles, structs and
// callbacks to sdk/engine (Session, generate), text/tokenizer and the model loaders.
#include "bindings/c/volt.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sdk/checkpoint.h"
#include "sdk/config.h"
#include "sdk/cuda_memory.h"
#include "sdk/document.h"
#include "sdk/engine/generate.h"
#include "sdk/engine/session.h"
#include "sdk/log.h"
#include "sdk/model_info.h"
#include "sdk/status.h"
#include "text/minimax_text_model.h"
#include "text/minimax_text_weights.h"
#include "text/tokenizer/chat_template.h"
#include "text/tokenizer/stream_decoder.h"
#include "text/tokenizer/tokenizer.h"

struct volt_model {
    volt::ModelInfo info;
    std::string model_type;
    std::unique_ptr<volt::MiniMaxTextModel> lm;
    std::unique_ptr<volt::text::Tokenizer> tokenizer;  // null for a directory without tokenizer files
    std::optional<volt::text::ChatTemplate> chat_template;  // absent when the directory has none
    std::vector<int32_t> eos_ids;
};

struct volt_session {
    volt_model* model = nullptr;
    volt::Session session;
    // Cancellation targets one run: each generation takes a new run id, and volt_session_cancel marks the run in
    // progress. A cancel that arrives when nothing runs marks nothing, so no stale request can stop a later run.
    std::atomic<uint64_t> current_run{0};
    std::atomic<bool> running{false};
    std::atomic<uint64_t> cancelled_run{0};
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // the conversation, template-ready
    std::vector<volt::Document> pending_documents;                      // go into the next user message
    // What the model has run for the conversation, as text and as the exact ids it ran: the last reply's prompt
    // plus the generated ids. A recurrent (lightning) state cannot be rolled back, so the cache is reusable only
    // when the next prompt extends these ids exactly; re-tokenizing the reply's text would usually not (the text
    // may tokenize differently, and the template adds end markers), and every turn would recompute everything.
    std::string anchor_text;
    std::vector<int32_t> anchor_ids;
};

namespace {

thread_local std::string t_last_error;

volt_status fail(const volt::Status& s) {
    t_last_error = s.message();
    return static_cast<volt_status>(s.code());
}

volt_status fail(volt_status code, std::string message) {
    t_last_error = std::move(message);
    return code;
}

// Runs `body` (returning volt_status); converts escaping exceptions. Clears the thread's message first, so that a
// message always belongs to the last call.
template <typename Fn>
volt_status guarded(const char* fn_name, Fn&& body) noexcept {
    t_last_error.clear();
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return fail(VOLT_RESOURCE_EXHAUSTED, std::string(fn_name) + ": out of memory");
    } catch (const std::exception& e) {
        return fail(VOLT_INTERNAL, std::string(fn_name) + ": internal error: " + e.what());
    } catch (...) {
        return fail(VOLT_INTERNAL, std::string(fn_name) + ": internal error");
    }
}

// The number of leading bytes of a params struct the caller knows; fields past it keep the defaults.
template <typename T>
bool read_params(const T* in, T* out, void (*init)(T*), const char* fn, volt_status* err) {
    init(out);
    if (!in) return true;  // NULL params: all defaults
    const uint32_t size = in->struct_size;
    if (size < sizeof(uint32_t) || size > (1u << 16)) {
        *err = fail(VOLT_INVALID_ARGUMENT, std::string(fn) + ": params.struct_size " + std::to_string(size) +
                                               " is not a size (fill the struct with its *_params_init function)");
        return false;
    }
    const uint32_t n = std::min<uint32_t>(size, sizeof(T));
    std::memcpy(static_cast<void*>(out), in, n);
    out->struct_size = sizeof(T);
    return true;
}

volt::LogLevel to_level(volt_log_level l) {
    return static_cast<volt::LogLevel>(std::clamp<int32_t>(l, VOLT_LOG_DEBUG, VOLT_LOG_OFF));
}

// Reports load progress and turns a nonzero callback return into CANCELLED.
struct Progress {
    volt_progress_fn fn;
    void* user_data;
    volt::Status report(volt_load_phase phase, float fraction) const {
        if (fn && fn(user_data, phase, fraction) != 0) return volt::cancelled("model load aborted by the progress callback");
        return volt::Status::ok();
    }
};

// The text backbone from a model directory: Text-01 names as they are, VL-01's with their "language_model." prefix.
// Progress is reported per phase (the loader converts all weights in one call).
volt::Expected<std::unique_ptr<volt::MiniMaxTextModel>> load_text_model(const std::filesystem::path& dir,
                                                                        const volt::ModelConfig& config,
                                                                        const Progress& progress) {
    VOLT_RETURN_IF_ERROR(progress.report(VOLT_LOAD_WEIGHTS, 0.0f));
    VOLT_ASSIGN_OR_RETURN(volt::Checkpoint ck, volt::Checkpoint::open(dir));
    const std::string prefix = config.is_vl() ? "language_model." : "";
    std::unordered_map<std::string, volt::Tensor> tensors;
    for (const volt::WeightSpec& spec : volt::minimax_text_weight_specs(config.text, prefix)) {
        if (!ck.find(spec.name)) continue;  // optional ones (a tied lm_head); binding already checked the rest
        VOLT_ASSIGN_OR_RETURN(volt::Tensor t, ck.view(spec.name));
        tensors.emplace(spec.name.substr(prefix.size()), std::move(t));  // views keep the mapping alive
    }
    VOLT_ASSIGN_OR_RETURN(auto lm, volt::MiniMaxTextModel::from_tensors(config.text, tensors, ck.description()));
    VOLT_RETURN_IF_ERROR(progress.report(VOLT_LOAD_WEIGHTS, 1.0f));
    return lm;
}

}  // namespace

extern "C" {

const char* volt_version(void) { return "0.1.0"; }
uint32_t volt_abi_major(void) { return VOLT_ABI_MAJOR; }
uint32_t volt_abi_minor(void) { return VOLT_ABI_MINOR; }

const char* volt_status_name(volt_status s) {
    if (s < VOLT_OK || s > VOLT_INTERNAL) return "UNKNOWN";
    return volt::status_code_name(static_cast<volt::StatusCode>(s)).data();  // static, NUL-terminated literals
}

const char* volt_last_error_message(void) { return t_last_error.c_str(); }

volt_status volt_log_set(volt_log_fn fn, void* user_data, volt_log_level min_level) {
    return guarded("volt_log_set", [&] {
        if (min_level < VOLT_LOG_DEBUG || min_level > VOLT_LOG_OFF)
            return fail(VOLT_INVALID_ARGUMENT, "volt_log_set: min_level " + std::to_string(min_level) + " is not a volt_log_level");
        if (fn) {
            volt::set_log_sink([fn, user_data](volt::LogLevel l, volt::LogCategory c, std::string_view m) {
                std::string msg(m);  // NUL-terminated copy for C
                fn(user_data, static_cast<volt_log_level>(l), static_cast<volt_log_category>(c), msg.c_str());
            });
        } else {
            volt::set_log_sink(nullptr);
        }
        volt::set_log_level(to_level(min_level));
        return VOLT_OK;
    });
}

int32_t volt_cuda_device_count(void) {
    try {
        return volt::cuda_device_count();
    } catch (...) {
        return 0;
    }
}

void volt_model_params_init(volt_model_params* p) {
    if (!p) return;
    std::memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->device = VOLT_DEVICE_CPU;
}

volt_status volt_model_load(const volt_model_params* in, volt_model** out_model) {
    return guarded("volt_model_load", [&]() -> volt_status {
        if (!out_model) return fail(VOLT_INVALID_ARGUMENT, "volt_model_load: out_model is NULL");
        *out_model = nullptr;
        if (!in) return fail(VOLT_INVALID_ARGUMENT, "volt_model_load: params is NULL (path is required)");
        volt_model_params p;
        volt_status err = VOLT_OK;
        if (!read_params(in, &p, volt_model_params_init, "volt_model_load", &err)) return err;
        if (!p.path || !*p.path) return fail(VOLT_INVALID_ARGUMENT, "volt_model_load: params.path is empty");
        if (p.device != VOLT_DEVICE_CPU && p.device != VOLT_DEVICE_CUDA)
            return fail(VOLT_INVALID_ARGUMENT, "volt_model_load: params.device " + std::to_string(p.device) + " is not a volt_device");
        if (p.device == VOLT_DEVICE_CUDA)
            return fail(VOLT_UNIMPLEMENTED, "volt_model_load: the CUDA backend is not available yet; use VOLT_DEVICE_CPU");
        const Progress progress{p.progress, p.progress_user_data};
        const std::filesystem::path dir = p.path;

        if (auto s = progress.report(VOLT_LOAD_CONFIG, 0.0f); !s.is_ok()) return fail(s);
        auto info = volt::inspect_model(dir);
        if (!info) return fail(info.status());
        if (!info->config) return fail(volt::invalid_argument(dir.string(), ": holds only tokenizer files; a model needs config.json and weights"));
        if (!info->has_checkpoint) return fail(volt::not_found(dir.string(), ": no model.safetensors or model.safetensors.index.json"));
        if (auto s = info->binding.to_status(info->checkpoint_description); !s.is_ok()) return fail(s);
        if (auto s = progress.report(VOLT_LOAD_CONFIG, 1.0f); !s.is_ok()) return fail(s);

        auto model = std::make_unique<volt_model>();
        model->info = std::move(info).value();
        model->model_type = model->info.config->model_type;
        auto lm = load_text_model(dir, *model->info.config, progress);
        if (!lm) return fail(lm.status());
        model->lm = std::move(lm).value();

        if (auto s = progress.report(VOLT_LOAD_TOKENIZER, 0.0f); !s.is_ok()) return fail(s);
        if (!model->info.tokenizer_files.empty()) {
            auto tok = volt::text::load_tokenizer(dir);
            if (tok) model->tokenizer = std::move(tok).value();
            else if (tok.status().code() != volt::StatusCode::kNotFound) return fail(tok.status());
        }
        if (model->tokenizer) {
            auto tmpl = volt::text::ChatTemplate::from_model_dir(dir);
            if (tmpl) model->chat_template = std::move(tmpl).value();
            else if (tmpl.status().code() != volt::StatusCode::kNotFound) return fail(tmpl.status());
        }
        if (model->info.config->text.eos_token_id) model->eos_ids.push_back(static_cast<int32_t>(*model->info.config->text.eos_token_id));
        if (auto s = progress.report(VOLT_LOAD_DONE, 1.0f); !s.is_ok()) return fail(s);
        VOLT_LOG(kInfo, kLoad, "loaded ", dir.string(), ": ", model->model_type, ", ", model->info.total_params,
                 " parameters, tokenizer ", model->tokenizer ? model->tokenizer->description() : std::string("none"));
        *out_model = model.release();
        return VOLT_OK;
    });
}

void volt_model_destroy(volt_model* model) { delete model; }

void volt_model_info_init(volt_model_info* info) {
    if (!info) return;
    std::memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    info->eos_token_id = -1;
}

volt_status volt_model_get_info(const volt_model* model, volt_model_info* out) {
    return guarded("volt_model_get_info", [&]() -> volt_status {
        if (!model || !out) return fail(VOLT_INVALID_ARGUMENT, "volt_model_get_info: model and info must not be NULL");
        if (out->struct_size < sizeof(uint32_t) || out->struct_size > (1u << 16))
            return fail(VOLT_INVALID_ARGUMENT, "volt_model_get_info: info.struct_size is not set (use volt_model_info_init)");
        const volt::TextConfig& t = model->info.config->text;
        volt_model_info full;
        volt_model_info_init(&full);
        full.model_type = model->model_type.c_str();
        full.is_vision_language = model->info.config->is_vl() ? 1 : 0;
        full.has_tokenizer = model->tokenizer ? 1 : 0;
        full.vocab_size = t.vocab_size;
        full.hidden_size = t.hidden_size;
        full.num_layers = t.num_layers;
        full.num_softmax_layers = t.num_softmax_layers();
        full.max_context = model->lm->max_context();
        full.total_params = model->info.total_params;
        full.active_params = model->info.active_params_per_token;
        full.eos_token_id = model->eos_ids.empty() ? -1 : model->eos_ids.front();
        const uint32_t n = std::min<uint32_t>(out->struct_size, sizeof full);
        full.struct_size = out->struct_size;  // the caller's size stays as it was
        std::memcpy(static_cast<void*>(out), &full, n);
        return VOLT_OK;
    });
}

volt_status volt_tokenize(const volt_model* model, const char* text, size_t text_len, int32_t add_special,
                          int32_t* ids, size_t ids_capacity, size_t* out_num_ids) {
    return guarded("volt_tokenize", [&]() -> volt_status {
        if (!model || !out_num_ids) return fail(VOLT_INVALID_ARGUMENT, "volt_tokenize: model and out_num_ids must not be NULL");
        if (!text && text_len) return fail(VOLT_INVALID_ARGUMENT, "volt_tokenize: text is NULL");
        if (!ids && ids_capacity) return fail(VOLT_INVALID_ARGUMENT, "volt_tokenize: ids is NULL but ids_capacity is not 0");
        if (!model->tokenizer) return fail(VOLT_NOT_FOUND, model->info.dir.string() + ": the model directory has no tokenizer");
        auto encoded = model->tokenizer->encode(std::string_view(text ? text : "", text_len), add_special != 0);
        if (!encoded) return fail(encoded.status());
        *out_num_ids = encoded->size();
        if (!ids && ids_capacity == 0) return VOLT_OK;  // size query
        if (ids_capacity < encoded->size())
            return fail(VOLT_RESOURCE_EXHAUSTED, "volt_tokenize: ids_capacity " + std::to_string(ids_capacity) +
                                                     " is too small; " + std::to_string(encoded->size()) + " ids needed");
        std::copy(encoded->begin(), encoded->end(), ids);
        return VOLT_OK;
    });
}

volt_status volt_detokenize(const volt_model* model, const int32_t* ids, size_t num_ids, int32_t skip_special,
                            char* text, size_t text_capacity, size_t* out_len) {
    return guarded("volt_detokenize", [&]() -> volt_status {
        if (!model || !out_len) return fail(VOLT_INVALID_ARGUMENT, "volt_detokenize: model and out_len must not be NULL");
        if (!ids && num_ids) return fail(VOLT_INVALID_ARGUMENT, "volt_detokenize: ids is NULL");
        if (!text && text_capacity) return fail(VOLT_INVALID_ARGUMENT, "volt_detokenize: text is NULL but text_capacity is not 0");
        if (!model->tokenizer) return fail(VOLT_NOT_FOUND, model->info.dir.string() + ": the model directory has no tokenizer");
        auto decoded = model->tokenizer->decode(std::span<const int32_t>(ids, num_ids), skip_special != 0);
        if (!decoded) return fail(decoded.status());
        *out_len = decoded->size();
        if (!text && text_capacity == 0) return VOLT_OK;
        if (text_capacity < decoded->size() + 1)
            return fail(VOLT_RESOURCE_EXHAUSTED, "volt_detokenize: text_capacity " + std::to_string(text_capacity) +
                                                     " is too small; " + std::to_string(decoded->size() + 1) + " bytes needed");
        std::memcpy(text, decoded->data(), decoded->size());
        text[decoded->size()] = '\0';
        return VOLT_OK;
    });
}

void volt_session_params_init(volt_session_params* p) {
    if (!p) return;
    std::memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
}

volt_status volt_session_create(volt_model* model, const volt_session_params* in, volt_session** out) {
    return guarded("volt_session_create", [&]() -> volt_status {
        if (!model || !out) return fail(VOLT_INVALID_ARGUMENT, "volt_session_create: model and out must not be NULL");
        *out = nullptr;
        volt_session_params p;
        volt_status err = VOLT_OK;
        if (!read_params(in, &p, volt_session_params_init, "volt_session_create", &err)) return err;
        if (p.max_context < 0) return fail(VOLT_INVALID_ARGUMENT, "volt_session_create: max_context must be >= 0");
        auto session = volt::Session::create(*model->lm, {.max_context = p.max_context});
        if (!session) return fail(session.status());
        *out = new volt_session{model, std::move(session).value()};
        return VOLT_OK;
    });
}

void volt_session_destroy(volt_session* session) { delete session; }

volt_status volt_session_reset(volt_session* session) {
    return guarded("volt_session_reset", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_reset: session is NULL");
        session->session.reset();
        return VOLT_OK;
    });
}

int64_t volt_session_num_tokens(const volt_session* session) {
    return session ? static_cast<int64_t>(session->session.tokens().size()) : 0;
}

void volt_generate_params_init(volt_generate_params* p) {
    if (!p) return;
    std::memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->max_new_tokens = 256;
    p->temperature = 0.7f;
    p->top_p = 1.0f;
    p->repetition_penalty = 1.0f;
}

}  // extern "C"

namespace {

// The body of volt_session_generate and volt_session_reply: generation with streaming events, cancellation by run
// id, DONE last. `reply_ids` (may be null) receives the generated ids. Runs inside guarded().
volt_status run_generation(volt_session* session, std::span<const int32_t> prompt, const volt_generate_params* in,
                           volt_event_fn on_event, void* user_data, std::vector<int32_t>* reply_ids) {
    volt_generate_params p;
    volt_status err = VOLT_OK;
    if (!read_params(in, &p, volt_generate_params_init, "volt_session_generate", &err)) return err;
    if (p.num_stop_ids && !p.stop_ids)
        return fail(VOLT_INVALID_ARGUMENT, "volt_session_generate: params.stop_ids is NULL but num_stop_ids is not 0");
    volt::GenerationOptions g;
    g.max_new_tokens = p.max_new_tokens;
    g.seed = p.seed;
    g.sampling = {.temperature = p.temperature, .top_k = p.top_k, .top_p = p.top_p, .min_p = p.min_p,
                  .repetition_penalty = p.repetition_penalty};
    g.stop_ids = session->model->eos_ids;
    g.stop_ids.insert(g.stop_ids.end(), p.stop_ids, p.stop_ids + p.num_stop_ids);

    const volt_model* model = session->model;
    std::unique_ptr<volt::text::StreamDecoder> stream;
    if (model->tokenizer) stream = std::make_unique<volt::text::StreamDecoder>(*model->tokenizer, /*skip_special=*/true);
    volt::Status stream_error;
    bool caller_stopped = false;
    const uint64_t run = session->current_run.fetch_add(1) + 1;
    session->running.store(true);
    auto cancelled = [&] { return session->cancelled_run.load() == run; };
    auto on_token = [&](int32_t id) -> bool {
        if (reply_ids) reply_ids->push_back(id);
        if (cancelled()) return false;
        std::string piece;
        if (stream) {
            auto text = stream->push(id);
            if (!text) {
                stream_error = text.status();
                return false;
            }
            piece = std::move(text).value();
        }
        if (on_event) {
            volt_event e{};
            e.struct_size = sizeof e;
            e.type = VOLT_EVENT_TOKEN;
            e.token_id = id;
            e.text = piece.c_str();
            e.text_len = piece.size();
            if (on_event(user_data, &e) != 0) {
                caller_stopped = true;
                return false;
            }
        }
        return !cancelled();
    };
    auto result = volt::generate(session->session, prompt, g, on_token);
    session->running.store(false);
    const volt::Status status = !result ? result.status() : stream_error;
    if (!status.is_ok()) {
        if (on_event && result) {  // failed after streaming began: say so in-stream too
            volt_event e{};
            e.struct_size = sizeof e;
            e.type = VOLT_EVENT_ERROR;
            e.status = static_cast<volt_status>(status.code());
            e.text = status.message().c_str();
            e.text_len = status.message().size();
            on_event(user_data, &e);
        }
        return fail(status);
    }
    std::string tail;
    if (stream) {
        auto rest = stream->finish();
        if (rest) tail = std::move(rest).value();
    }
    if (on_event) {
        if (!tail.empty()) {  // the last characters, held back until they were complete
            volt_event e{};
            e.struct_size = sizeof e;
            e.type = VOLT_EVENT_TOKEN;
            e.token_id = -1;
            e.text = tail.c_str();
            e.text_len = tail.size();
            on_event(user_data, &e);
        }
        volt_event done{};
        done.struct_size = sizeof done;
        done.type = VOLT_EVENT_DONE;
        switch (result->reason) {
            case volt::StopReason::kMaxNewTokens: done.finish_reason = VOLT_FINISH_LENGTH; break;
            case volt::StopReason::kStopId: done.finish_reason = VOLT_FINISH_STOP; break;
            case volt::StopReason::kContextFull: done.finish_reason = VOLT_FINISH_CONTEXT; break;
            case volt::StopReason::kCancelled: done.finish_reason = VOLT_FINISH_CANCELLED; break;
        }
        done.prompt_tokens = result->prompt_tokens;
        done.reused_tokens = result->reused_tokens;
        done.completion_tokens = static_cast<int64_t>(result->ids.size());
        done.prefill_seconds = result->prefill_seconds;
        done.decode_seconds = result->decode_seconds;
        done.tokens_per_second = result->decode_seconds > 0 ? done.completion_tokens / result->decode_seconds : 0.0;
        on_event(user_data, &done);
    }
    if (result->reason == volt::StopReason::kCancelled)
        return fail(VOLT_CANCELLED, caller_stopped ? "volt_session_generate: stopped by the event callback"
                                                   : "volt_session_generate: cancelled");
    return VOLT_OK;
}

const char* role_name(volt_role role) {
    switch (role) {
        case VOLT_ROLE_SYSTEM: return "system";
        case VOLT_ROLE_USER: return "user";
        case VOLT_ROLE_ASSISTANT: return "assistant";
    }
    return nullptr;
}

struct RenderedPrompt {
    std::string text;
    std::vector<int32_t> ids;
};

// The conversation rendered by the chat template (with the reply prompt) and tokenized. When the rendered text
// extends the session's anchor, the anchor's ids are kept as they are and only the new text is tokenized.
volt::Expected<RenderedPrompt> render_conversation(const volt_session* session) {
    const volt_model* m = session->model;
    if (!m->tokenizer) return volt::not_found(m->info.dir.string(), ": the model directory has no tokenizer");
    if (!m->chat_template)
        return volt::not_found(m->info.dir.string(), ": the model directory has no chat template "
                                                     "(chat_template.json or tokenizer_config.json chat_template)");
    RenderedPrompt r;
    VOLT_ASSIGN_OR_RETURN(r.text, m->chat_template->render(session->messages, {}));
    std::string_view rest = r.text;
    if (!session->anchor_text.empty() && rest.starts_with(session->anchor_text)) {
        r.ids = session->anchor_ids;
        rest.remove_prefix(session->anchor_text.size());
    }
    VOLT_ASSIGN_OR_RETURN(std::vector<int32_t> tail, m->tokenizer->encode(rest, /*add_special=*/false));
    r.ids.insert(r.ids.end(), tail.begin(), tail.end());
    return r;
}

}  // namespace

extern "C" {

volt_status volt_session_generate(volt_session* session, const int32_t* prompt_ids, size_t num_prompt_ids,
                                  const volt_generate_params* in, volt_event_fn on_event, void* user_data) {
    return guarded("volt_session_generate", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_generate: session is NULL");
        if (!prompt_ids && num_prompt_ids) return fail(VOLT_INVALID_ARGUMENT, "volt_session_generate: prompt_ids is NULL");
        return run_generation(session, std::span<const int32_t>(prompt_ids, num_prompt_ids), in, on_event, user_data,
                              nullptr);
    });
}

volt_status volt_session_add_message(volt_session* session, volt_role role, const char* text, size_t text_len) {
    return guarded("volt_session_add_message", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_add_message: session is NULL");
        if (!text && text_len) return fail(VOLT_INVALID_ARGUMENT, "volt_session_add_message: text is NULL");
        const char* name = role_name(role);
        if (!name) return fail(VOLT_INVALID_ARGUMENT, "volt_session_add_message: role " + std::to_string(role) + " is not a volt_role");
        std::string content(text ? text : "", text_len);
        size_t replaced = 0;
        auto clean = volt::decode_text_to_utf8(content, "volt_session_add_message: text", &replaced);
        if (!clean || replaced) return fail(VOLT_INVALID_ARGUMENT, "volt_session_add_message: text is not valid UTF-8");
        if (role != VOLT_ROLE_USER && !session->pending_documents.empty())
            return fail(VOLT_INVALID_ARGUMENT, "volt_session_add_message: documents are attached; they go with a user message");
        // VL-01's content-list form: documents as text parts, then the message text.
        nlohmann::ordered_json parts = nlohmann::ordered_json::array();
        for (const volt::Document& d : session->pending_documents)
            parts.push_back({{"type", "text"}, {"text", "[document: " + std::filesystem::path(d.name).filename().string() +
                                                            "]\n" + d.text() + "\n[end of document]\n\n"}});
        parts.push_back({{"type", "text"}, {"text", content}});
        session->messages.push_back({{"role", name}, {"content", parts}});
        session->pending_documents.clear();
        return VOLT_OK;
    });
}

volt_status volt_session_attach_document(volt_session* session, const char* path, int64_t* out_tokens) {
    return guarded("volt_session_attach_document", [&]() -> volt_status {
        if (!session || !path) return fail(VOLT_INVALID_ARGUMENT, "volt_session_attach_document: session and path must not be NULL");
        auto doc = volt::load_document(path);
        if (!doc) return fail(doc.status());
        for (const auto& w : doc->warnings) VOLT_LOG(kWarn, kGeneral, path, ": ", w);
        if (out_tokens) {
            *out_tokens = -1;
            if (session->model->tokenizer) {
                auto ids = session->model->tokenizer->encode(doc->text());
                if (!ids) return fail(ids.status());
                *out_tokens = static_cast<int64_t>(ids->size());
            }
        }
        session->pending_documents.push_back(std::move(doc).value());
        return VOLT_OK;
    });
}

volt_status volt_session_count_prompt_tokens(volt_session* session, int64_t* out_tokens) {
    return guarded("volt_session_count_prompt_tokens", [&]() -> volt_status {
        if (!session || !out_tokens) return fail(VOLT_INVALID_ARGUMENT, "volt_session_count_prompt_tokens: NULL argument");
        auto prompt = render_conversation(session);
        if (!prompt) return fail(prompt.status());
        *out_tokens = static_cast<int64_t>(prompt->ids.size());
        return VOLT_OK;
    });
}

volt_status volt_session_reply(volt_session* session, const volt_generate_params* params, volt_event_fn on_event,
                               void* user_data) {
    return guarded("volt_session_reply", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_reply: session is NULL");
        if (session->messages.empty()) return fail(VOLT_INVALID_ARGUMENT, "volt_session_reply: the conversation has no messages");
        auto prompt = render_conversation(session);
        if (!prompt) return fail(prompt.status());
        std::vector<int32_t> reply;
        const volt_status status = run_generation(session, prompt->ids, params, on_event, user_data, &reply);
        if (status != VOLT_OK && status != VOLT_CANCELLED) return status;
        const std::string message = t_last_error;  // keep CANCELLED's message across the decodes below
        const volt::text::Tokenizer& tok = *session->model->tokenizer;
        auto ran = tok.decode(reply, /*skip_special=*/false);  // as the model saw it, end marker included
        if (!ran) return fail(ran.status());
        session->anchor_text = prompt->text + *ran;
        session->anchor_ids = std::move(prompt->ids);
        session->anchor_ids.insert(session->anchor_ids.end(), reply.begin(), reply.end());
        const auto& stops = session->model->eos_ids;
        if (!reply.empty() && std::find(stops.begin(), stops.end(), reply.back()) != stops.end()) reply.pop_back();
        auto text = tok.decode(reply, /*skip_special=*/true);
        if (!text) return fail(text.status());
        session->messages.push_back(
            {{"role", "assistant"}, {"content", nlohmann::ordered_json::array({{{"type", "text"}, {"text", *text}}})}});
        if (status == VOLT_CANCELLED) return fail(VOLT_CANCELLED, message);
        return VOLT_OK;
    });
}

volt_status volt_session_clear_messages(volt_session* session) {
    return guarded("volt_session_clear_messages", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_clear_messages: session is NULL");
        session->messages = nlohmann::ordered_json::array();
        session->pending_documents.clear();
        session->anchor_text.clear();
        session->anchor_ids.clear();
        return VOLT_OK;
    });
}

int64_t volt_session_num_messages(const volt_session* session) {
    return session ? static_cast<int64_t>(session->messages.size()) : 0;
}

volt_status volt_session_cancel(volt_session* session) {
    return guarded("volt_session_cancel", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_cancel: session is NULL");
        if (session->running.load()) session->cancelled_run.store(session->current_run.load());
        return VOLT_OK;
    });
}

volt_status volt_model_logits(const volt_model* model, const int32_t* ids, size_t num_ids, float* logits,
                              size_t logits_capacity, size_t* out_count) {
    return guarded("volt_model_logits", [&]() -> volt_status {
        if (!model || !out_count) return fail(VOLT_INVALID_ARGUMENT, "volt_model_logits: model and out_count must not be NULL");
        if (!ids || num_ids == 0) return fail(VOLT_INVALID_ARGUMENT, "volt_model_logits: ids must hold at least one id");
        if (!logits && logits_capacity) return fail(VOLT_INVALID_ARGUMENT, "volt_model_logits: logits is NULL but logits_capacity is not 0");
        const size_t vocab = static_cast<size_t>(model->lm->vocab_size());
        *out_count = num_ids * vocab;
        if (!logits && logits_capacity == 0) return VOLT_OK;
        if (logits_capacity < *out_count)
            return fail(VOLT_RESOURCE_EXHAUSTED, "volt_model_logits: logits_capacity " + std::to_string(logits_capacity) +
                                                     " is too small; " + std::to_string(*out_count) + " floats needed");
        auto cache = model->lm->new_cache(static_cast<int64_t>(num_ids));
        if (!cache) return fail(cache.status());
        auto out = model->lm->forward(std::span<const int32_t>(ids, num_ids), *cache, volt::LogitsMode::kAll);
        if (!out) return fail(out.status());
        std::memcpy(logits, out->data(), *out_count * sizeof(float));
        return VOLT_OK;
    });
}

}  // extern "C"
