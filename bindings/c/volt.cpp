// The C ABI over the C++ SDK. Every entry point is a firewall: arguments are checked, C++ exceptions are caught
// (INTERNAL), and failures leave a thread-local message. Nothing here computes: it adapts handles, structs and
// callbacks to sdk/engine (ChatModel, ChatSession, generate_streaming, BatchGenerator).
#include "bindings/c/volt.h"
#include "bindings/c/abi_guard.h"

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

#include "sdk/cuda_memory.h"
#include "sdk/engine/batch_generator.h"
#include "sdk/engine/chat_session.h"
#include "sdk/log.h"
#include "sdk/status.h"
#include "text/expert_weights.h"
#include "text/tokenizer/stream_decoder.h"
#include "vision/image_decode.h"

struct volt_model {
    std::unique_ptr<volt::ChatModel> chat;
};

struct volt_session {
    volt_model* model = nullptr;
    volt::ChatSession chat;
};

struct volt_image {
    volt::vision::Image image;
    std::string name;  // labels the image in errors
};

namespace {

using volt::capi::fail;
using volt::capi::guarded;
using volt::capi::read_params;
using volt::capi::write_output;

volt::LogLevel to_level(volt_log_level l) {
    return static_cast<volt::LogLevel>(std::clamp<int32_t>(l, VOLT_LOG_DEBUG, VOLT_LOG_OFF));
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

const char* volt_last_error_message(void) { return volt::capi::last_error().c_str(); }

volt_status volt_log_set(volt_log_fn fn, void* user_data, volt_log_level min_level) {
    return guarded("volt_log_set", [&] {
        if (min_level < VOLT_LOG_DEBUG || min_level > VOLT_LOG_OFF)
            return fail(VOLT_INVALID_ARGUMENT, "volt_log_set: min_level " + std::to_string(min_level) + " is not a volt_log_level");
        if (fn) {
            volt::set_log_sink([fn, user_data](volt::LogLevel l, volt::LogCategory c, std::string_view m) {
                std::string msg(m);  // NUL-terminated copy for C
                fn(user_data, static_cast<volt_log_level>(l), static_cast<volt_log_category>(c), msg.c_str());
                volt::capi::clear_upper_simd_state();
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
        volt::Device device = volt::Device::cpu();
        int gpus = 1;
        if (p.device == VOLT_DEVICE_CUDA) {
            if (p.num_gpus < 0 || (p.num_gpus > 0 && !p.gpu_ids))
                return fail(VOLT_INVALID_ARGUMENT, "volt_model_load: params.num_gpus " + std::to_string(p.num_gpus) +
                                                       " needs gpu_ids with that many entries");
            for (int32_t i = 0; i < p.num_gpus; ++i) {
                if (p.gpu_ids[i] < 0)
                    return fail(VOLT_INVALID_ARGUMENT, "volt_model_load: gpu_ids[" + std::to_string(i) + "] is " +
                                                           std::to_string(p.gpu_ids[i]) + ", not a GPU index");
                for (int32_t j = 0; j < i; ++j)
                    if (p.gpu_ids[j] == p.gpu_ids[i])
                        return fail(VOLT_INVALID_ARGUMENT, "volt_model_load: gpu_ids[" + std::to_string(j) + "] and [" +
                                                               std::to_string(i) + "] are both GPU " +
                                                               std::to_string(p.gpu_ids[i]));
            }
            device = volt::Device::cuda(p.num_gpus >= 1 ? p.gpu_ids[0] : 0);
            gpus = std::max<int32_t>(p.num_gpus, 1);
        }
        volt::LoadProgress progress;
        if (p.progress) {
            progress = [fn = p.progress, ud = p.progress_user_data](volt::LoadPhase phase, float fraction) {
                const bool abort = fn(ud, static_cast<volt_load_phase>(phase), fraction) != 0;
                volt::capi::clear_upper_simd_state();
                if (abort) return volt::cancelled("model load aborted by the progress callback");
                return volt::Status::ok();
            };
        }
        const std::span<const int> ids = p.num_gpus > 1 ? std::span<const int>(p.gpu_ids, size_t(p.num_gpus))
                                                        : std::span<const int>();
        volt::ExpertWeights experts = volt::ExpertWeights::kBf16;
        switch (p.expert_weights) {
            case VOLT_EXPERT_WEIGHTS_BF16: break;
            case VOLT_EXPERT_WEIGHTS_FP8: experts = volt::ExpertWeights::kFp8; break;
            case VOLT_EXPERT_WEIGHTS_INT8: experts = volt::ExpertWeights::kInt8; break;
            default:
                return fail(VOLT_INVALID_ARGUMENT, "volt_model_load: params.expert_weights " +
                                                       std::to_string(p.expert_weights) +
                                                       " is not a volt_expert_weights (0 bf16, 1 fp8, 2 int8)");
        }
        if (experts != volt::ExpertWeights::kBf16 && p.device != VOLT_DEVICE_CUDA)
            return fail(VOLT_INVALID_ARGUMENT, std::string("volt_model_load: params.expert_weights ") +
                                                   volt::expert_weights_name(experts) +
                                                   " needs VOLT_DEVICE_CUDA (the CPU backend runs the experts as "
                                                   "loaded)");
        auto chat = volt::ChatModel::load(p.path, progress, device, gpus, experts, ids);
        if (!chat) return fail(chat.status());
        *out_model = new volt_model{std::move(chat).value()};
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
        const volt::ChatModel& m = *model->chat;
        const volt::TextConfig& t = m.info.config->text;
        volt_model_info full;
        volt_model_info_init(&full);
        full.model_type = m.info.config->model_type.c_str();
        full.is_vision_language = m.info.config->is_vl() ? 1 : 0;
        full.has_tokenizer = m.tokenizer ? 1 : 0;
        full.vocab_size = t.vocab_size;
        full.hidden_size = t.hidden_size;
        full.num_layers = t.num_layers;
        full.num_softmax_layers = t.num_softmax_layers();
        full.max_context = m.lm->max_context();
        full.total_params = m.info.total_params;
        full.active_params = m.info.active_params_per_token;
        full.eos_token_id = m.stop_ids.empty() ? -1 : m.stop_ids.front();
        volt_status err = VOLT_OK;
        if (!write_output(out, full, "volt_model_get_info: info", "volt_model_info_init", &err)) return err;
        return VOLT_OK;
    });
}

}  // extern "C"

namespace {

volt::Expected<const volt::text::Tokenizer*> tokenizer_of(const volt_model* model) {
    if (!model->chat->tokenizer) return volt::not_found(model->chat->info.dir.string(), ": the model directory has no tokenizer");
    return model->chat->tokenizer.get();
}

// Stores `n` in *out_len and copies `src` to the caller's buffer when it fits (the size-query convention).
template <typename T>
volt_status copy_out(const char* fn, const T* src, size_t n, size_t needed, T* dst, size_t capacity) {
    if (!dst && capacity == 0) return VOLT_OK;  // size query
    if (capacity < needed)
        return fail(VOLT_RESOURCE_EXHAUSTED, std::string(fn) + ": buffer of " + std::to_string(capacity) +
                                                 " is too small; " + std::to_string(needed) + " needed");
    std::copy(src, src + n, dst);
    return VOLT_OK;
}

}  // namespace

extern "C" {

volt_status volt_tokenize(const volt_model* model, const char* text, size_t text_len, int32_t add_special,
                          int32_t* ids, size_t ids_capacity, size_t* out_num_ids) {
    return guarded("volt_tokenize", [&]() -> volt_status {
        if (!model || !out_num_ids) return fail(VOLT_INVALID_ARGUMENT, "volt_tokenize: model and out_num_ids must not be NULL");
        if (!text && text_len) return fail(VOLT_INVALID_ARGUMENT, "volt_tokenize: text is NULL");
        if (!ids && ids_capacity) return fail(VOLT_INVALID_ARGUMENT, "volt_tokenize: ids is NULL but ids_capacity is not 0");
        auto tok = tokenizer_of(model);
        if (!tok) return fail(tok.status());
        auto encoded = (*tok)->encode(std::string_view(text ? text : "", text_len), add_special != 0);
        if (!encoded) return fail(encoded.status());
        *out_num_ids = encoded->size();
        return copy_out("volt_tokenize", encoded->data(), encoded->size(), encoded->size(), ids, ids_capacity);
    });
}

volt_status volt_detokenize(const volt_model* model, const int32_t* ids, size_t num_ids, int32_t skip_special,
                            char* text, size_t text_capacity, size_t* out_len) {
    return guarded("volt_detokenize", [&]() -> volt_status {
        if (!model || !out_len) return fail(VOLT_INVALID_ARGUMENT, "volt_detokenize: model and out_len must not be NULL");
        if (!ids && num_ids) return fail(VOLT_INVALID_ARGUMENT, "volt_detokenize: ids is NULL");
        if (!text && text_capacity) return fail(VOLT_INVALID_ARGUMENT, "volt_detokenize: text is NULL but text_capacity is not 0");
        auto tok = tokenizer_of(model);
        if (!tok) return fail(tok.status());
        auto decoded = (*tok)->decode(std::span<const int32_t>(ids, num_ids), skip_special != 0);
        if (!decoded) return fail(decoded.status());
        *out_len = decoded->size();
        const std::string with_nul = *decoded + '\0';
        return copy_out("volt_detokenize", with_nul.data(), with_nul.size(), with_nul.size(), text, text_capacity);
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
        if (p.max_tokens_per_image < 0)
            return fail(VOLT_INVALID_ARGUMENT, "volt_session_create: max_tokens_per_image must be >= 0 (0: no limit)");
        auto chat = volt::ChatSession::create(
            *model->chat, volt::ChatSessionOptions{.session = {.max_context = p.max_context},
                                                   .max_tokens_per_image = p.max_tokens_per_image});
        if (!chat) return fail(chat.status());
        *out = new volt_session{model, std::move(chat).value()};
        return VOLT_OK;
    });
}

void volt_session_destroy(volt_session* session) { delete session; }

volt_status volt_session_reset(volt_session* session) {
    return guarded("volt_session_reset", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_reset: session is NULL");
        session->chat.session().reset();
        return VOLT_OK;
    });
}

int64_t volt_session_num_tokens(const volt_session* session) {
    return session ? static_cast<int64_t>(const_cast<volt_session*>(session)->chat.session().tokens().size()) : 0;
}

volt_status volt_session_fork(volt_session* session, volt_session** out) {
    return guarded("volt_session_fork", [&]() -> volt_status {
        if (!session || !out) return fail(VOLT_INVALID_ARGUMENT, "volt_session_fork: session and out must not be NULL");
        *out = nullptr;
        auto copy = session->chat.fork();
        if (!copy) return fail(copy.status());
        *out = new volt_session{session->model, std::move(copy).value()};
        return VOLT_OK;
    });
}

namespace {

volt_status new_image(volt::Expected<volt::vision::Image> decoded, std::string name, volt_image** out) {
    if (!decoded) return fail(decoded.status());
    *out = new volt_image{std::move(decoded).value(), std::move(name)};
    return VOLT_OK;
}

}  // namespace

volt_status volt_image_load_file(const char* path, volt_image** out) {
    return guarded("volt_image_load_file", [&]() -> volt_status {
        if (!path || !out) return fail(VOLT_INVALID_ARGUMENT, "volt_image_load_file: path and out must not be NULL");
        *out = nullptr;
        if (!*path) return fail(VOLT_INVALID_ARGUMENT, "volt_image_load_file: path is empty");
        return new_image(volt::vision::decode_image_file(path), path, out);
    });
}

volt_status volt_image_load_bytes(const void* data, size_t size, const char* name, volt_image** out) {
    return guarded("volt_image_load_bytes", [&]() -> volt_status {
        if (!out) return fail(VOLT_INVALID_ARGUMENT, "volt_image_load_bytes: out is NULL");
        *out = nullptr;
        if (!data || size == 0) return fail(VOLT_INVALID_ARGUMENT, "volt_image_load_bytes: no data (data is NULL or size 0)");
        const std::string label = name && *name ? std::string(name) : "image (" + std::to_string(size) + " bytes in memory)";
        return new_image(volt::vision::decode_image(static_cast<const uint8_t*>(data), size, label), label, out);
    });
}

volt_status volt_image_from_rgb(const uint8_t* pixels, int32_t width, int32_t height, size_t stride, volt_image** out) {
    return guarded("volt_image_from_rgb", [&]() -> volt_status {
        if (!out) return fail(VOLT_INVALID_ARGUMENT, "volt_image_from_rgb: out is NULL");
        *out = nullptr;
        if (!pixels) return fail(VOLT_INVALID_ARGUMENT, "volt_image_from_rgb: pixels is NULL");
        if (width <= 0 || height <= 0)
            return fail(VOLT_INVALID_ARGUMENT, "volt_image_from_rgb: size " + std::to_string(width) + "x" +
                                                   std::to_string(height) + " (both must be > 0)");
        const int64_t area = static_cast<int64_t>(width) * height;
        if (area > volt::vision::kDefaultMaxImagePixels)
            return fail(VOLT_RESOURCE_EXHAUSTED, "volt_image_from_rgb: " + std::to_string(width) + "x" +
                                                     std::to_string(height) + " exceeds the limit of " +
                                                     std::to_string(volt::vision::kDefaultMaxImagePixels) + " pixels");
        const size_t row = static_cast<size_t>(width) * 3;
        if (stride == 0) stride = row;
        if (stride < row)
            return fail(VOLT_INVALID_ARGUMENT, "volt_image_from_rgb: stride " + std::to_string(stride) +
                                                   " is less than 3 * width = " + std::to_string(row));
        volt::vision::Image image = volt::vision::make_image(width, height, volt::vision::PixelLayout::kRGB);
        for (int32_t y = 0; y < height; ++y) std::memcpy(image.row(y), pixels + static_cast<size_t>(y) * stride, row);
        *out = new volt_image{std::move(image), "RGB image " + std::to_string(width) + "x" + std::to_string(height)};
        return VOLT_OK;
    });
}

void volt_image_destroy(volt_image* image) { delete image; }

volt_status volt_image_size(const volt_image* image, int32_t* out_width, int32_t* out_height) {
    return guarded("volt_image_size", [&]() -> volt_status {
        if (!image || !out_width || !out_height) return fail(VOLT_INVALID_ARGUMENT, "volt_image_size: NULL argument");
        *out_width = image->image.width;
        *out_height = image->image.height;
        return VOLT_OK;
    });
}

volt_status volt_model_image_tokens(const volt_model* model, const volt_image* image, int64_t* out_tokens) {
    return guarded("volt_model_image_tokens", [&]() -> volt_status {
        if (!model || !image || !out_tokens) return fail(VOLT_INVALID_ARGUMENT, "volt_model_image_tokens: NULL argument");
        const volt::ChatModel& m = *model->chat;
        if (!m.vision)
            return fail(VOLT_INVALID_ARGUMENT, "volt_model_image_tokens: " + m.info.dir.string() +
                                                   " is a text-only model; images need a MiniMax-VL-01 model");
        auto n = m.vision->count_tokens(image->image.width, image->image.height);
        if (!n) return fail(n.status());
        *out_tokens = *n;
        return VOLT_OK;
    });
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

// Turns volt_generate_params into engine options (the model's stop ids are added by the caller's path).
bool to_options(const volt_generate_params* in, volt::GenerationOptions* g, volt_status* err) {
    volt_generate_params p;
    if (!read_params(in, &p, volt_generate_params_init, "volt_generate_params", err)) return false;
    if (p.num_stop_ids && !p.stop_ids) {
        *err = fail(VOLT_INVALID_ARGUMENT, "volt_generate_params: stop_ids is NULL but num_stop_ids is not 0");
        return false;
    }
    g->max_new_tokens = p.max_new_tokens;
    g->seed = p.seed;
    g->sampling = {.temperature = p.temperature, .top_k = p.top_k, .top_p = p.top_p, .min_p = p.min_p,
                   .repetition_penalty = p.repetition_penalty};
    g->stop_ids.assign(p.stop_ids, p.stop_ids + p.num_stop_ids);
    return true;
}

// to_options for generation on raw ids (volt_session_generate, volt_batch_submit): the model's eos stops it too.
bool to_options_with_eos(const volt_generate_params* in, const volt::ChatModel& m, volt::GenerationOptions* g,
                         volt_status* err) {
    if (!to_options(in, g, err)) return false;
    g->stop_ids.insert(g->stop_ids.end(), m.stop_ids.begin(), m.stop_ids.end());
    return true;
}

volt_finish_reason finish_reason_of(volt::StopReason r) {
    switch (r) {
        case volt::StopReason::kMaxNewTokens: return VOLT_FINISH_LENGTH;
        case volt::StopReason::kStopId: return VOLT_FINISH_STOP;
        case volt::StopReason::kContextFull: return VOLT_FINISH_CONTEXT;
        case volt::StopReason::kCancelled: return VOLT_FINISH_CANCELLED;
    }
    return VOLT_FINISH_LENGTH;
}

// The usage fields volt_event (DONE) and volt_batch_result share, from a finished generation.
template <typename Out>
void fill_usage(Out& out, const volt::GenerationResult& r) {
    out.finish_reason = finish_reason_of(r.reason);
    out.prompt_tokens = r.prompt_tokens;
    out.completion_tokens = static_cast<int64_t>(r.ids.size());
    out.prefill_seconds = r.prefill_seconds;
    out.decode_seconds = r.decode_seconds;
    out.tokens_per_second = r.decode_seconds > 0 ? out.completion_tokens / r.decode_seconds : 0.0;
}

// Streams events to the caller; remembers whether the caller asked to stop.
struct EventSink {
    volt_event_fn fn;
    void* user_data;
    bool caller_stopped = false;

    // Calls the caller's function; false when it returned nonzero.
    bool send(const volt_event& e) {
        const bool go_on = fn(user_data, &e) == 0;
        volt::capi::clear_upper_simd_state();
        return go_on;
    }

    bool token(int32_t id, std::string_view text) {
        if (!fn) return true;
        volt_event e{};
        e.struct_size = sizeof e;
        e.type = VOLT_EVENT_TOKEN;
        e.token_id = id;
        e.text = text.data();
        e.text_len = text.size();
        if (!send(e)) caller_stopped = true;
        return !caller_stopped;
    }

    void error(const volt::Status& st) {
        if (!fn) return;
        const std::string& msg = st.message();
        volt_event e{};
        e.struct_size = sizeof e;
        e.type = VOLT_EVENT_ERROR;
        e.status = static_cast<volt_status>(st.code());
        e.text = msg.c_str();
        e.text_len = msg.size();
        send(e);
    }

    // The held-back text (a last TOKEN event with id -1) and DONE.
    void done(const volt::GenerationResult& r, std::string_view tail) {
        if (!fn) return;
        if (!tail.empty()) token(-1, tail);  // the last characters, held until they were complete
        volt_event done{};
        done.struct_size = sizeof done;
        done.type = VOLT_EVENT_DONE;
        fill_usage(done, r);
        done.reused_tokens = r.reused_tokens;
        send(done);
    }

    // What a cancelled generation reports: who stopped it.
    const char* cancel_message() const {
        return caller_stopped ? "generation stopped by the event callback" : "generation cancelled";
    }

    // After the engine returned: an ERROR event for failures after streaming began, else the held-back text and
    // DONE. Returns the call's status.
    volt_status finish(const volt::Expected<volt::StreamedGeneration>& gen, bool streamed) {
        if (!gen) {
            if (streamed) error(gen.status());
            return fail(gen.status());
        }
        done(gen->result, gen->tail);
        if (gen->result.reason == volt::StopReason::kCancelled) return fail(VOLT_CANCELLED, cancel_message());
        return VOLT_OK;
    }
};

}  // namespace

extern "C" {

volt_status volt_session_generate(volt_session* session, const int32_t* prompt_ids, size_t num_prompt_ids,
                                  const volt_generate_params* params, volt_event_fn on_event, void* user_data) {
    return guarded("volt_session_generate", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_generate: session is NULL");
        if (!prompt_ids && num_prompt_ids) return fail(VOLT_INVALID_ARGUMENT, "volt_session_generate: prompt_ids is NULL");
        volt::GenerationOptions g;
        volt_status err = VOLT_OK;
        const volt::ChatModel& m = *session->model->chat;
        if (!to_options_with_eos(params, m, &g, &err)) return err;
        volt::RunCanceller& canceller = session->chat.canceller();
        EventSink sink{on_event, user_data};
        bool streamed = false;
        const uint64_t run = canceller.begin();
        auto gen = volt::generate_streaming(session->chat.session(), std::span<const int32_t>(prompt_ids, num_prompt_ids),
                                            g, m.tokenizer.get(), [&](int32_t id, std::string_view text) {
                                                streamed = true;
                                                if (canceller.cancelled(run)) return false;
                                                return sink.token(id, text) && !canceller.cancelled(run);
                                            });
        canceller.end();
        return sink.finish(gen, streamed);
    });
}

volt_status volt_session_cancel(volt_session* session) {
    return guarded("volt_session_cancel", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_cancel: session is NULL");
        session->chat.cancel();
        return VOLT_OK;
    });
}

volt_status volt_session_add_message(volt_session* session, volt_role role, const char* text, size_t text_len) {
    return guarded("volt_session_add_message", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_add_message: session is NULL");
        if (!text && text_len) return fail(VOLT_INVALID_ARGUMENT, "volt_session_add_message: text is NULL");
        if (role < VOLT_ROLE_SYSTEM || role > VOLT_ROLE_ASSISTANT)
            return fail(VOLT_INVALID_ARGUMENT, "volt_session_add_message: role " + std::to_string(role) + " is not a volt_role");
        volt::Status s = session->chat.add_message(static_cast<volt::Role>(role), std::string_view(text ? text : "", text_len));
        return s.is_ok() ? VOLT_OK : fail(s);
    });
}

volt_status volt_session_attach_document(volt_session* session, const char* path, int64_t* out_tokens) {
    return guarded("volt_session_attach_document", [&]() -> volt_status {
        if (!session || !path) return fail(VOLT_INVALID_ARGUMENT, "volt_session_attach_document: session and path must not be NULL");
        auto tokens = session->chat.attach_document(path);
        if (!tokens) return fail(tokens.status());
        if (out_tokens) *out_tokens = *tokens;
        return VOLT_OK;
    });
}

volt_status volt_session_attach_image(volt_session* session, const volt_image* image, int64_t* out_tokens) {
    return guarded("volt_session_attach_image", [&]() -> volt_status {
        if (!session || !image) return fail(VOLT_INVALID_ARGUMENT, "volt_session_attach_image: session and image must not be NULL");
        auto tokens = session->chat.attach_image(image->image, image->name);
        if (!tokens) return fail(tokens.status());
        if (out_tokens) *out_tokens = *tokens;
        return VOLT_OK;
    });
}

volt_status volt_session_count_prompt_tokens(volt_session* session, int64_t* out_tokens) {
    return guarded("volt_session_count_prompt_tokens", [&]() -> volt_status {
        if (!session || !out_tokens) return fail(VOLT_INVALID_ARGUMENT, "volt_session_count_prompt_tokens: NULL argument");
        auto n = session->chat.count_prompt_tokens();
        if (!n) return fail(n.status());
        *out_tokens = *n;
        return VOLT_OK;
    });
}

volt_status volt_session_reply(volt_session* session, const volt_generate_params* params, volt_event_fn on_event,
                               void* user_data) {
    return guarded("volt_session_reply", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_reply: session is NULL");
        volt::GenerationOptions g;
        volt_status err = VOLT_OK;
        if (!to_options(params, &g, &err)) return err;
        EventSink sink{on_event, user_data};
        bool streamed = false;
        auto reply = session->chat.reply(g, [&](int32_t id, std::string_view text) {
            streamed = true;
            return sink.token(id, text);
        });
        if (!reply) return sink.finish(reply.status(), streamed);
        return sink.finish(std::move(reply->generation), streamed);
    });
}

volt_status volt_session_clear_messages(volt_session* session) {
    return guarded("volt_session_clear_messages", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_clear_messages: session is NULL");
        session->chat.clear_messages();
        return VOLT_OK;
    });
}

volt_status volt_session_truncate_messages(volt_session* session, size_t num_messages) {
    return guarded("volt_session_truncate_messages", [&]() -> volt_status {
        if (!session) return fail(VOLT_INVALID_ARGUMENT, "volt_session_truncate_messages: session is NULL");
        volt::Status s = session->chat.truncate_messages(num_messages);
        return s.is_ok() ? VOLT_OK : fail(s);
    });
}

int64_t volt_session_num_messages(const volt_session* session) {
    return session ? static_cast<int64_t>(session->chat.num_messages()) : 0;
}

volt_status volt_model_logits(const volt_model* model, const int32_t* ids, size_t num_ids, float* logits,
                              size_t logits_capacity, size_t* out_count) {
    return guarded("volt_model_logits", [&]() -> volt_status {
        if (!model || !out_count) return fail(VOLT_INVALID_ARGUMENT, "volt_model_logits: model and out_count must not be NULL");
        if (!ids || num_ids == 0) return fail(VOLT_INVALID_ARGUMENT, "volt_model_logits: ids must hold at least one id");
        if (!logits && logits_capacity) return fail(VOLT_INVALID_ARGUMENT, "volt_model_logits: logits is NULL but logits_capacity is not 0");
        const volt::CausalLM& lm = *model->chat->lm;
        *out_count = num_ids * static_cast<size_t>(lm.vocab_size());
        if (!logits && logits_capacity == 0) return VOLT_OK;  // size query: nothing runs
        if (logits_capacity < *out_count)
            return fail(VOLT_RESOURCE_EXHAUSTED, "volt_model_logits: logits_capacity " + std::to_string(logits_capacity) +
                                                     " is too small; " + std::to_string(*out_count) + " floats needed");
        auto cache = lm.new_cache(static_cast<int64_t>(num_ids));
        if (!cache) return fail(cache.status());
        auto out = lm.forward(std::span<const int32_t>(ids, num_ids), *cache, volt::LogitsMode::kAll);
        if (!out) return fail(out.status());
        std::memcpy(logits, out->data(), *out_count * sizeof(float));
        return VOLT_OK;
    });
}

}  // extern "C"

// ---- continuous batching --------------------------------------------------------------------------------------------
// volt_batch adapts volt::BatchGenerator: its TokenCallback streams each request's text (a StreamDecoder per request)
// and reads the request's cancel flag; after each step the requests the generator finished get their last events,
// and the generator forgets them (the BatchRequest keeps the outcome until volt_batch_release or destroy).
// volt_batch_cancel, from any thread, sets the flag (a request generating stops at its next token, inside a step) and
// records the id; the stepping thread applies the recorded ids with BatchGenerator::cancel before each step, so a
// queued request never runs and a prefilling one runs no further piece.

namespace {

struct BatchRequest {
    int64_t id = -1;
    EventSink sink;
    std::optional<volt::text::StreamDecoder> stream;
    std::atomic<bool> cancel{false};  // volt_batch_cancel, from any thread (set under volt_batch::mutex)
    volt::Status stream_error;        // the text stream failed: the request ends with this error
    // Once finished (the last event sent):
    bool finished = false;
    volt_status status = VOLT_OK;
    std::string message;
    volt::GenerationResult result;

    // The generator's per-token callback: cancelled requests stop before their event (as volt_session_generate).
    bool on_token(int32_t token) {
        if (cancel.load()) return false;
        std::string piece;
        if (stream) {
            auto text = stream->push(token);
            if (!text) {
                stream_error = text.status();
                return false;
            }
            piece = std::move(text).value();
        }
        return sink.token(token, piece) && !cancel.load();
    }

    // Records the outcome `gen` and sends the last event (DONE or ERROR).
    void finish(volt::Expected<volt::GenerationResult> gen) {
        finished = true;
        volt::Status error = gen ? stream_error : gen.status();
        std::string tail;
        if (error.is_ok() && stream) {
            auto rest = stream->finish();
            if (rest) tail = std::move(rest).value();
            else error = rest.status();
        }
        if (!error.is_ok()) {
            error = error.with_context("request " + std::to_string(id));
            status = static_cast<volt_status>(error.code());
            message = error.message();
            sink.error(error);
            return;
        }
        result = std::move(gen).value();
        if (result.reason == volt::StopReason::kCancelled) {
            status = VOLT_CANCELLED;
            message = "request " + std::to_string(id) + ": " +
                      (sink.caller_stopped ? sink.cancel_message() : "cancelled by volt_batch_cancel");
        }
        sink.done(result, tail);
    }
};

}  // namespace

struct volt_batch {
    volt_model* model = nullptr;
    volt::BatchGenerator gen;
    volt::SessionOptions session;  // every request's context
    mutable std::mutex mutex;      // guards `requests`, `issued` and `cancels` against volt_batch_cancel elsewhere
    std::unordered_map<int64_t, std::unique_ptr<BatchRequest>> requests;  // released ones are erased
    int64_t issued = 0;                     // ids below this were returned (the generator counts up from 0)
    std::vector<int64_t> cancels;           // volt_batch_cancel's ids, applied by the stepping thread
    std::vector<BatchRequest*> unfinished;  // in submission order; the stepping thread's only
    bool stepping = false;                  // inside step: callbacks may not submit, step or release

    BatchRequest* find(int64_t id) const {
        std::lock_guard<std::mutex> lock(mutex);
        auto it = requests.find(id);
        return it == requests.end() ? nullptr : it->second.get();
    }

    // NOT_FOUND for `id`, in the words of `fn`: never returned by this batch, or released.
    volt_status missing(const char* fn, int64_t id) const {
        bool released;
        {
            std::lock_guard<std::mutex> lock(mutex);
            released = id >= 0 && id < issued;
        }
        return fail(VOLT_NOT_FOUND, std::string(fn) + ": request " + std::to_string(id) +
                                        (released ? " was released (volt_batch_release)" : " is not in this batch"));
    }
};

namespace {

volt_status refuse_reentry(const char* fn) {
    return fail(VOLT_INVALID_ARGUMENT, std::string(fn) + ": called from an event callback of the same batch during a "
                                                         "step (submit, step and release after volt_batch_step returns)");
}

// One generator step, then the last events of the requests it finished.
volt_status batch_step(volt_batch* batch, int64_t* out_unfinished) {
    struct Stepping {  // also when something throws
        bool& flag;
        explicit Stepping(bool& f) : flag(f) { flag = true; }
        ~Stepping() { flag = false; }
    };
    auto left = [&]() -> volt::Expected<int64_t> {
        Stepping stepping(batch->stepping);
        // The cancels recorded since the last step: those still running leave now (a queued one never runs).
        std::vector<int64_t> cancels;
        {
            std::lock_guard<std::mutex> lock(batch->mutex);
            cancels.swap(batch->cancels);
        }
        for (const int64_t id : cancels)
            if (const BatchRequest* r = batch->find(id); r && !r->finished)
                VOLT_RETURN_IF_ERROR(batch->gen.cancel(id));
        auto unfinished = batch->gen.step();
        for (BatchRequest* r : batch->unfinished)
            if (batch->gen.finished(r->id)) {
                r->finish(batch->gen.result(r->id));
                (void)batch->gen.release(r->id);  // the outcome lives in r now
            }
        return unfinished;
    }();
    std::erase_if(batch->unfinished, [](const BatchRequest* r) { return r->finished; });
    if (!left) return fail(left.status());
    if (out_unfinished) *out_unfinished = *left;
    return VOLT_OK;
}

}  // namespace

extern "C" {

void volt_batch_params_init(volt_batch_params* p) {
    if (!p) return;
    std::memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    const volt::BatchOptions defaults;
    p->max_batch = defaults.max_batch;
    p->prefill_chunk = defaults.prefill_chunk;
    p->memory_budget_bytes = defaults.memory_budget_bytes;
}

volt_status volt_batch_create(volt_model* model, const volt_batch_params* in, volt_batch** out) {
    return guarded("volt_batch_create", [&]() -> volt_status {
        if (!model || !out) return fail(VOLT_INVALID_ARGUMENT, "volt_batch_create: model and out must not be NULL");
        *out = nullptr;
        volt_batch_params p;
        volt_status err = VOLT_OK;
        if (!read_params(in, &p, volt_batch_params_init, "volt_batch_create", &err)) return err;
        const volt::CausalLM& lm = *model->chat->lm;
        const volt::SessionOptions session{.max_context = p.max_context};
        auto context = volt::Session::context_limit(lm, session);
        if (!context) return fail(context.status().with_context("volt_batch_create: params"));
        auto gen = volt::BatchGenerator::create(lm, {.max_batch = p.max_batch, .prefill_chunk = p.prefill_chunk,
                                                     .memory_budget_bytes = p.memory_budget_bytes});
        if (!gen) return fail(gen.status().with_context("volt_batch_create: params"));
        *out = new volt_batch{.model = model, .gen = std::move(gen).value(), .session = session};
        return VOLT_OK;
    });
}

void volt_batch_destroy(volt_batch* batch) { delete batch; }

volt_status volt_batch_submit(volt_batch* batch, const int32_t* prompt_ids, size_t num_prompt_ids,
                              const volt_generate_params* params, volt_event_fn on_event, void* user_data,
                              int64_t* out_request) {
    return guarded("volt_batch_submit", [&]() -> volt_status {
        if (!batch || !out_request)
            return fail(VOLT_INVALID_ARGUMENT, "volt_batch_submit: batch and out_request must not be NULL");
        *out_request = -1;
        if (batch->stepping) return refuse_reentry("volt_batch_submit");
        if (!prompt_ids || num_prompt_ids == 0)
            return fail(VOLT_INVALID_ARGUMENT, "volt_batch_submit: the prompt is empty (prompt_ids is NULL or "
                                               "num_prompt_ids 0); a request needs at least one id");
        const volt::ChatModel& m = *batch->model->chat;
        if (m.vision)
            for (size_t i = 0; i < num_prompt_ids; ++i)
                if (prompt_ids[i] == m.image_token_id)
                    return fail(VOLT_INVALID_ARGUMENT,
                                "volt_batch_submit: prompt_ids[" + std::to_string(i) + "] is " +
                                    std::to_string(m.image_token_id) + ", the image token of this MiniMax-VL-01 "
                                    "model; batches take text ids only (attach images to a session)");
        volt::GenerationOptions g;
        volt_status err = VOLT_OK;
        if (!to_options_with_eos(params, m, &g, &err)) return err;
        auto r = std::make_unique<BatchRequest>();
        r->sink = EventSink{on_event, user_data};
        r->result.prompt_tokens = static_cast<int64_t>(num_prompt_ids);  // kept if the request fails
        if (m.tokenizer) r->stream.emplace(*m.tokenizer, /*skip_special=*/true);
        BatchRequest* raw = r.get();
        auto id = batch->gen.submit(std::vector<int32_t>(prompt_ids, prompt_ids + num_prompt_ids), g,
                                    [raw](int32_t token) { return raw->on_token(token); }, batch->session);
        if (!id) return fail(id.status().with_context("volt_batch_submit"));
        r->id = *id;
        {
            std::lock_guard<std::mutex> lock(batch->mutex);
            batch->requests.emplace(*id, std::move(r));
            batch->issued = *id + 1;
        }
        batch->unfinished.push_back(raw);
        *out_request = *id;
        return VOLT_OK;
    });
}

volt_status volt_batch_step(volt_batch* batch, int64_t* out_unfinished) {
    return guarded("volt_batch_step", [&]() -> volt_status {
        if (!batch) return fail(VOLT_INVALID_ARGUMENT, "volt_batch_step: batch is NULL");
        if (batch->stepping) return refuse_reentry("volt_batch_step");
        return batch_step(batch, out_unfinished);
    });
}

volt_status volt_batch_run(volt_batch* batch) {
    return guarded("volt_batch_run", [&]() -> volt_status {
        if (!batch) return fail(VOLT_INVALID_ARGUMENT, "volt_batch_run: batch is NULL");
        if (batch->stepping) return refuse_reentry("volt_batch_run");
        for (int64_t left = 1; left > 0;)
            if (const volt_status s = batch_step(batch, &left); s != VOLT_OK) return s;
        return VOLT_OK;
    });
}

volt_status volt_batch_cancel(volt_batch* batch, int64_t request) {
    return guarded("volt_batch_cancel", [&]() -> volt_status {
        if (!batch) return fail(VOLT_INVALID_ARGUMENT, "volt_batch_cancel: batch is NULL");
        {
            std::lock_guard<std::mutex> lock(batch->mutex);  // release cannot free the request meanwhile
            auto it = batch->requests.find(request);
            if (it != batch->requests.end()) {
                if (!it->second->cancel.exchange(true)) batch->cancels.push_back(request);  // once per request
                return VOLT_OK;
            }
        }
        return batch->missing("volt_batch_cancel", request);
    });
}

volt_status volt_batch_release(volt_batch* batch, int64_t request) {
    return guarded("volt_batch_release", [&]() -> volt_status {
        if (!batch) return fail(VOLT_INVALID_ARGUMENT, "volt_batch_release: batch is NULL");
        if (batch->stepping) return refuse_reentry("volt_batch_release");
        std::unique_ptr<BatchRequest> gone;  // freed outside the lock
        {
            std::lock_guard<std::mutex> lock(batch->mutex);
            auto it = batch->requests.find(request);
            if (it != batch->requests.end()) {
                if (!it->second->finished)
                    return fail(VOLT_INVALID_ARGUMENT, "volt_batch_release: request " + std::to_string(request) +
                                                           " has not finished (volt_batch_cancel it, then step)");
                gone = std::move(it->second);
                batch->requests.erase(it);
            }
        }
        return gone ? VOLT_OK : batch->missing("volt_batch_release", request);
    });
}

int32_t volt_batch_finished(const volt_batch* batch, int64_t request) {
    const BatchRequest* r = batch ? batch->find(request) : nullptr;
    return r && r->finished ? 1 : 0;
}

int64_t volt_batch_num_running(const volt_batch* batch) { return batch ? batch->gen.running() : 0; }
int64_t volt_batch_num_queued(const volt_batch* batch) { return batch ? batch->gen.queued() : 0; }

void volt_batch_result_init(volt_batch_result* result) {
    if (!result) return;
    std::memset(result, 0, sizeof *result);
    result->struct_size = sizeof *result;
    result->message = "";
}

volt_status volt_batch_get_result(const volt_batch* batch, int64_t request, volt_batch_result* out, int32_t* ids,
                                  size_t ids_capacity, size_t* out_num_ids) {
    return guarded("volt_batch_get_result", [&]() -> volt_status {
        if (!batch || !out || !out_num_ids)
            return fail(VOLT_INVALID_ARGUMENT, "volt_batch_get_result: batch, result and out_num_ids must not be NULL");
        if (!ids && ids_capacity)
            return fail(VOLT_INVALID_ARGUMENT, "volt_batch_get_result: ids is NULL but ids_capacity is not 0");
        const BatchRequest* r = batch->find(request);
        if (!r) return batch->missing("volt_batch_get_result", request);
        if (!r->finished)
            return fail(VOLT_INVALID_ARGUMENT, "volt_batch_get_result: request " + std::to_string(request) +
                                                   " has not finished: call volt_batch_step or volt_batch_run first");
        const volt::GenerationResult& g = r->result;
        volt_batch_result full;
        volt_batch_result_init(&full);
        full.status = r->status;
        full.message = r->message.c_str();
        fill_usage(full, g);
        volt_status err = VOLT_OK;
        if (!write_output(out, full, "volt_batch_get_result: result", "volt_batch_result_init", &err)) return err;
        *out_num_ids = g.ids.size();
        return copy_out("volt_batch_get_result", g.ids.data(), g.ids.size(), g.ids.size(), ids, ids_capacity);
    });
}

}  // extern "C"
