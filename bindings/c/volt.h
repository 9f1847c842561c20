/* volt.h — the stable C ABI of Volt, an inference SDK for MiniMax-VL-01 and MiniMax-Text-01.
 *
 * CONVENTIONS (every function follows them; exceptions are stated where they occur)
 *  - Errors. Every fallible call returns a volt_status (VOLT_OK == 0). On failure, volt_last_error_message() gives a
 *    one-line message naming the file, field or argument and what was expected. It is thread-local and valid until
 *    the next volt_ call on the same thread. No C++ exception ever crosses this boundary.
 *  - Objects. Opaque handles: volt_model (immutable after loading; shareable by any number of threads and sessions),
 *    volt_session (one conversation: its cache and tokens; used by one thread at a time), volt_image (decoded
 *    pixels; immutable, any thread), volt_batch (many generation requests stepped together; driven by one thread
 *    at a time). Only volt_*_destroy frees an object, and it accepts NULL. Destroy every session and batch of a
 *    model before the model.
 *  - Params structs begin with `uint32_t struct_size`. Fill them with the matching *_init function (which sets
 *    struct_size and every default), then change what you need, and pass them by pointer. Fields are only ever
 *    appended; a caller built against an older, smaller struct keeps working (fields it does not know take their
 *    defaults). Output structs (volt_model_info) are filled up to the caller's struct_size.
 *  - Buffers. Variable-size output goes into a caller buffer: the call always stores the size it needs in *out_len;
 *    it writes the buffer only if the buffer is large enough, else returns VOLT_RESOURCE_EXHAUSTED. Passing
 *    NULL/0 is a pure size query and returns VOLT_OK.
 *  - Strings are UTF-8 (file paths too) and NUL-terminated unless a length is passed with them.
 *  - Thread safety is stated per function: "any thread" (safe concurrently), "model: shared" (safe concurrently on
 *    one model), "session: exclusive" (one call at a time per session; different sessions run in parallel),
 *    "batch: exclusive" (likewise per batch).
 *  - Callbacks run on the thread that made the call, synchronously, unless stated otherwise.
 *
 * VERSIONING. VOLT_ABI_MAJOR changes when something is removed or reordered; VOLT_ABI_MINOR when something is
 * appended. The shared library's SONAME carries the major version (libvolt.so.0).
 */
#ifndef VOLT_H
#define VOLT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(VOLT_BUILDING_LIBRARY)
#    define VOLT_API __declspec(dllexport)
#  else
#    define VOLT_API __declspec(dllimport)
#  endif
#else
#  define VOLT_API __attribute__((visibility("default")))
#endif

#define VOLT_ABI_MAJOR 0
#define VOLT_ABI_MINOR 5  /* 2: images (volt_image_*), session fork/truncate, max_tokens_per_image;
                           * 3: continuous batching (volt_batch_*);
                           * 4: volt_batch_release; volt_batch_cancel ends a queued or prefilling request at the
                           *    next step without running (more of) its prompt;
                           * 5: volt_model_params.expert_weights (FP8 / int8 experts quantised at load) */

/* ---- status ---------------------------------------------------------------------------------------------------- */
typedef int32_t volt_status;
#define VOLT_OK 0
#define VOLT_INVALID_ARGUMENT 1    /* a malformed argument, file field or option */
#define VOLT_NOT_FOUND 2           /* a file, tensor or key that should exist does not */
#define VOLT_DATA_LOSS 3           /* a file is corrupt or truncated */
#define VOLT_RESOURCE_EXHAUSTED 4  /* memory, context length, a buffer too small */
#define VOLT_CANCELLED 5           /* the caller asked to stop */
#define VOLT_UNIMPLEMENTED 6       /* valid, but not supported by this build (e.g. CUDA in a CPU-only build) */
#define VOLT_INTERNAL 7            /* a bug in Volt */

/* Any thread. Static strings. */
VOLT_API const char* volt_version(void);              /* "0.1.0" */
VOLT_API uint32_t volt_abi_major(void);               /* the library's VOLT_ABI_MAJOR */
VOLT_API uint32_t volt_abi_minor(void);
VOLT_API const char* volt_status_name(volt_status s); /* "RESOURCE_EXHAUSTED"; "UNKNOWN" for other values */
/* Any thread. The message of the last failed call on this thread ("" if none); valid until the next volt_ call on
 * this thread. */
VOLT_API const char* volt_last_error_message(void);

/* ---- logging ---------------------------------------------------------------------------------------------------- */
typedef int32_t volt_log_level;
#define VOLT_LOG_DEBUG 0
#define VOLT_LOG_INFO 1
#define VOLT_LOG_WARN 2
#define VOLT_LOG_ERROR 3
#define VOLT_LOG_OFF 4

typedef int32_t volt_log_category;
#define VOLT_LOG_GENERAL 0
#define VOLT_LOG_LOAD 1
#define VOLT_LOG_KERNEL 2
#define VOLT_LOG_NCCL 3
#define VOLT_LOG_VISION 4
#define VOLT_LOG_TEXT 5
#define VOLT_LOG_ENGINE 6

/* Called for every message at or above the level; from any thread Volt logs on (calls are serialised, so the
 * callback itself need not lock). `message` is valid during the call only. */
typedef void (*volt_log_fn)(void* user_data, volt_log_level level, volt_log_category category, const char* message);
/* Any thread. fn NULL restores the default (stderr). */
VOLT_API volt_status volt_log_set(volt_log_fn fn, void* user_data, volt_log_level min_level);

/* ---- devices ---------------------------------------------------------------------------------------------------- */
typedef int32_t volt_device;
#define VOLT_DEVICE_CPU 0
#define VOLT_DEVICE_CUDA 1
/* Any thread. GPUs this build and driver can use (0 in a CPU-only build). */
VOLT_API int32_t volt_cuda_device_count(void);

/* ---- models ----------------------------------------------------------------------------------------------------- */
typedef struct volt_model volt_model;

typedef int32_t volt_load_phase;
#define VOLT_LOAD_CONFIG 0     /* reading config.json and the checkpoint index */
#define VOLT_LOAD_WEIGHTS 1    /* mapping and converting weights (fraction 0 at the start, 1 at the end) */
#define VOLT_LOAD_TOKENIZER 2
#define VOLT_LOAD_DONE 3

/* Progress of volt_model_load; return nonzero to abort it (the load then returns VOLT_CANCELLED). */
typedef int32_t (*volt_progress_fn)(void* user_data, volt_load_phase phase, float fraction);

/* How a CUDA model keeps its MoE expert weights (ABI 0.5; text/expert_weights.h). Quantised at load, each with one
 * fp32 scale per 128 x 128 block: half the expert bytes, which is what lets the whole MiniMax-01 model and a long
 * context fit on one 8-GPU node. */
typedef int32_t volt_expert_weights;
#define VOLT_EXPERT_WEIGHTS_BF16 0  /* as in the checkpoint (default) */
#define VOLT_EXPERT_WEIGHTS_FP8 1   /* e4m3; on Hopper, prompts of more than 64 tokens also quantise the activations
                                     * for FP8 tensor-core GEMMs (~1.4x the bf16 prefill; logits ~5e-2 from bf16) */
#define VOLT_EXPERT_WEIGHTS_INT8 2  /* weight-only int8: about a third of FP8's error, the prefill at 0.6x bf16 */

typedef struct volt_model_params {
    uint32_t struct_size;
    const char* path;            /* model directory (config.json, safetensors, tokenizer.json); required */
    volt_device device;          /* VOLT_DEVICE_CPU (default) or VOLT_DEVICE_CUDA: the model on the GPU(s) (bf16).
                                  * CUDA in a build without it, or shapes the CUDA kernels do not run
                                  * (head_dim != 128): UNIMPLEMENTED */
    const int32_t* gpu_ids;      /* CUDA devices to use (NULL: device 0); copied during the call. Several ids
                                  * (any distinct GPUs in rank order, e.g. 0, 1 or 2, 5) split the text backbone
                                  * over those GPUs (heads, projections and vocabulary; each expert sliced along
                                  * its intermediate dimension, or spread whole when it does not split; NCCL); the
                                  * vision tower runs on the first. UNIMPLEMENTED for a build without NCCL or head
                                  * counts the GPU count does not divide; INVALID_ARGUMENT for GPUs that do not
                                  * exist or are listed twice */
    int32_t num_gpus;
    volt_progress_fn progress;   /* may be NULL */
    void* progress_user_data;
    volt_expert_weights expert_weights;  /* ABI 0.5: VOLT_EXPERT_WEIGHTS_* (default BF16); FP8 / INT8 need
                                          * VOLT_DEVICE_CUDA (INVALID_ARGUMENT otherwise) */
} volt_model_params;

VOLT_API void volt_model_params_init(volt_model_params* params);
/* Any thread. Loads a model directory. A directory without a tokenizer loads (token ids only). */
VOLT_API volt_status volt_model_load(const volt_model_params* params, volt_model** out_model);
VOLT_API void volt_model_destroy(volt_model* model);

typedef struct volt_model_info {
    uint32_t struct_size;
    const char* model_type;       /* config.json model_type; valid as long as the model */
    int32_t is_vision_language;   /* 1 for MiniMax-VL-01 directories */
    int32_t has_tokenizer;
    int64_t vocab_size;
    int64_t hidden_size;
    int64_t num_layers;
    int64_t num_softmax_layers;   /* the rest are lightning-attention layers */
    int64_t max_context;          /* tokens a session may hold at most */
    int64_t total_params;
    int64_t active_params;        /* per token: decoder with top-k experts (MiniMax's "45.9B active") */
    int32_t eos_token_id;         /* -1 if none */
} volt_model_info;

VOLT_API void volt_model_info_init(volt_model_info* info);
/* Model: shared. */
VOLT_API volt_status volt_model_get_info(const volt_model* model, volt_model_info* info);

/* ---- tokens ----------------------------------------------------------------------------------------------------- */
/* Model: shared. text: `text_len` bytes of UTF-8. add_special: apply the tokenizer's post-processor. */
VOLT_API volt_status volt_tokenize(const volt_model* model, const char* text, size_t text_len, int32_t add_special,
                                   int32_t* ids, size_t ids_capacity, size_t* out_num_ids);
/* Model: shared. Writes UTF-8 plus a NUL; *out_len excludes the NUL (capacity must be at least *out_len + 1). */
VOLT_API volt_status volt_detokenize(const volt_model* model, const int32_t* ids, size_t num_ids, int32_t skip_special,
                                     char* text, size_t text_capacity, size_t* out_len);

/* ---- images (ABI 0.2) ------------------------------------------------------------------------------------------
 * A volt_image holds decoded pixels, ready to attach to a conversation; nothing model-specific is computed until a
 * reply needs it. Decoding: PNG, JPEG (grey, colour, CMYK), GIF (first frame), BMP, and WebP/TIFF when the build has
 * OpenCV; the EXIF orientation is applied; alpha and palette images become RGB the way MiniMax-VL-01's processor
 * does it. Images above 178,956,970 pixels (PIL's limit) are refused with VOLT_RESOURCE_EXHAUSTED before any pixel is
 * decoded; corrupt or truncated data gives VOLT_DATA_LOSS or VOLT_INVALID_ARGUMENT naming the source. */
typedef struct volt_image volt_image;

/* Any thread. Reads and decodes an image file (errors name the file). */
VOLT_API volt_status volt_image_load_file(const char* path, volt_image** out);
/* Any thread. Decodes an encoded image held in memory (a file's bytes; copied during the call). `name` (may be NULL)
 * labels the image in errors. */
VOLT_API volt_status volt_image_load_bytes(const void* data, size_t size, const char* name, volt_image** out);
/* Any thread. 8-bit RGB pixels, row-major, `stride` bytes from one row to the next (>= 3 * width; 0: 3 * width);
 * copied during the call. */
VOLT_API volt_status volt_image_from_rgb(const uint8_t* pixels, int32_t width, int32_t height, size_t stride,
                                         volt_image** out);
VOLT_API void volt_image_destroy(volt_image* image);
/* Any thread. The image's size after EXIF orientation. */
VOLT_API volt_status volt_image_size(const volt_image* image, int32_t* out_width, int32_t* out_height);
/* Model: shared. Prompt tokens the image takes with this model, computed from its size alone (nothing is encoded):
 * MiniMax-VL-01: 576 + h'w' + h' for the tile grid chosen for it. VOLT_INVALID_ARGUMENT for a text-only model. */
VOLT_API volt_status volt_model_image_tokens(const volt_model* model, const volt_image* image, int64_t* out_tokens);

/* ---- sessions --------------------------------------------------------------------------------------------------- */
typedef struct volt_session volt_session;

typedef struct volt_session_params {
    uint32_t struct_size;
    int64_t max_context;   /* tokens the session may hold; 0: the model's maximum */
    /* ABI 0.2: volt_session_attach_image refuses (VOLT_RESOURCE_EXHAUSTED, naming the cost) an image that takes more
     * tokens than this; 0 (default): no limit. Images are never downscaled behind the caller's back. */
    int64_t max_tokens_per_image;
} volt_session_params;

VOLT_API void volt_session_params_init(volt_session_params* params);
/* Model: shared (any number of sessions per model). */
VOLT_API volt_status volt_session_create(volt_model* model, const volt_session_params* params, volt_session** out);
VOLT_API void volt_session_destroy(volt_session* session);
/* Session: exclusive. Forget every token (memory is kept). */
VOLT_API volt_status volt_session_reset(volt_session* session);
/* Session: exclusive. Tokens the session holds (prompt and generated). */
VOLT_API int64_t volt_session_num_tokens(const volt_session* session);
/* Session: exclusive on `session` (ABI 0.2). An independent copy of the session: its conversation, attachments and
 * everything the model has computed for it (the cache is copied, so the copy costs memory like the original). A
 * branch continues from there without recomputing: fork before volt_session_reply to regenerate the same turn, or
 * before volt_session_add_message to edit-and-resend it. The copy uses the same model; destroy it like any session. */
VOLT_API volt_status volt_session_fork(volt_session* session, volt_session** out);

/* ---- generation ------------------------------------------------------------------------------------------------- */
typedef struct volt_generate_params {
    uint32_t struct_size;
    int64_t max_new_tokens;      /* default 256 */
    float temperature;           /* 0: greedy (default 0.7) */
    int32_t top_k;               /* 0: off (default) */
    float top_p;                 /* 1: off (default) */
    float min_p;                 /* 0: off (default) */
    float repetition_penalty;    /* 1: off (default) */
    uint64_t seed;               /* same seed, same prompt, same params: same tokens */
    const int32_t* stop_ids;     /* extra stop ids besides the model's eos; copied during the call */
    size_t num_stop_ids;
} volt_generate_params;

VOLT_API void volt_generate_params_init(volt_generate_params* params);

typedef int32_t volt_event_type;
#define VOLT_EVENT_TOKEN 1   /* one new token; `text` holds the UTF-8 that became final (complete characters only) */
#define VOLT_EVENT_DONE 2    /* always the last event of a successful call: usage and timings */
#define VOLT_EVENT_ERROR 3   /* the call failed after it started streaming; `status` and `text` say why */

typedef int32_t volt_finish_reason;
#define VOLT_FINISH_LENGTH 0     /* max_new_tokens reached */
#define VOLT_FINISH_STOP 1       /* a stop id (eos) was generated */
#define VOLT_FINISH_CONTEXT 2    /* the session's context is full */
#define VOLT_FINISH_CANCELLED 3  /* volt_session_cancel or a nonzero callback return */

typedef struct volt_event {
    uint32_t struct_size;
    volt_event_type type;
    int32_t token_id;              /* TOKEN */
    const char* text;              /* TOKEN: new text (may be empty); ERROR: the message. Valid during the call. */
    size_t text_len;
    volt_finish_reason finish_reason;  /* DONE */
    int64_t prompt_tokens;         /* DONE: tokens of the prompt */
    int64_t reused_tokens;         /* DONE: prompt tokens the session already held (not recomputed) */
    int64_t completion_tokens;     /* DONE */
    double prefill_seconds;        /* DONE */
    double decode_seconds;         /* DONE */
    double tokens_per_second;      /* DONE: completion_tokens / decode_seconds */
    volt_status status;            /* ERROR */
} volt_event;

/* Return nonzero to stop generating (the call then sends DONE with VOLT_FINISH_CANCELLED and returns VOLT_CANCELLED). */
typedef int32_t (*volt_event_fn)(void* user_data, const volt_event* event);

/* Session: exclusive. `prompt_ids` is the WHOLE prompt (e.g. the rendered conversation so far): when the session's
 * tokens are a prefix of it, only the rest is computed (DONE.reused_tokens says how many were reused); otherwise the
 * session starts over. Then generates, streaming events to `on_event` (may be NULL); the generated tokens stay in
 * the session. Returns VOLT_OK when generation ended by length, stop id or full context; VOLT_CANCELLED when
 * volt_session_cancel or a nonzero callback return stopped it (DONE is still sent, with VOLT_FINISH_CANCELLED, and
 * the session stays usable); other errors before the first token are returned without events, later ones come as
 * an ERROR event (the last event) and are returned. Cancellation is checked once per generated token. */
VOLT_API volt_status volt_session_generate(volt_session* session, const int32_t* prompt_ids, size_t num_prompt_ids,
                                           const volt_generate_params* params, volt_event_fn on_event,
                                           void* user_data);
/* Any thread, idempotent. Stops the generation running on the session at its next token (it then returns
 * VOLT_CANCELLED); the session stays usable and holds the tokens produced so far. No effect when no generation is
 * running: a late cancel never stops a later generation. */
VOLT_API volt_status volt_session_cancel(volt_session* session);

/* ---- chat ------------------------------------------------------------------------------------------------------
 * A session also keeps a conversation: messages (and attached documents) rendered by the model's chat template
 * (chat_template.json / tokenizer_config.json) when a reply is asked for. Each reply re-renders the whole
 * conversation; the session reuses the cached prefix, so earlier turns are not recomputed. */
typedef int32_t volt_role;
#define VOLT_ROLE_SYSTEM 0
#define VOLT_ROLE_USER 1
#define VOLT_ROLE_ASSISTANT 2

/* Session: exclusive. Appends a message. Images and documents attached since the last user message go into this one
 * (user messages only): the images first (in the order attached), then each document as a text part, then `text`.
 * With a VL model, `text` may not contain "<image>" (the template's image placeholder): VOLT_INVALID_ARGUMENT. */
VOLT_API volt_status volt_session_add_message(volt_session* session, volt_role role, const char* text, size_t text_len);
/* Session: exclusive. Reads a document now (PDF text or a text file; errors name the file) and attaches it to the
 * next user message. *out_tokens (may be NULL) receives the tokens its text takes, before anything is sent. */
VOLT_API volt_status volt_session_attach_document(volt_session* session, const char* path, int64_t* out_tokens);
/* Session: exclusive (ABI 0.2). Attaches an image to the next user message (a MiniMax-VL-01 model; else
 * VOLT_INVALID_ARGUMENT). The pixels are copied: the handle may be destroyed right after. *out_tokens (may be NULL)
 * receives the tokens it takes (volt_model_image_tokens). VOLT_RESOURCE_EXHAUSTED above the session's
 * max_tokens_per_image or context. The vision encoder runs during the first reply that needs the image; later
 * replies reuse what was computed. */
VOLT_API volt_status volt_session_attach_image(volt_session* session, const volt_image* image, int64_t* out_tokens);
/* Session: exclusive. Tokens the conversation would take now, with the reply prompt (for a context meter). */
VOLT_API volt_status volt_session_count_prompt_tokens(volt_session* session, int64_t* out_tokens);
/* Session: exclusive. Renders the conversation, generates the assistant's reply as volt_session_generate does
 * (same events and statuses), and appends the reply (its text, special tokens removed) as an assistant message,
 * also when cancelled (then with the text produced so far). A volt_session_cancel while the prompt's images are
 * being encoded (checked between ViT layers) returns VOLT_CANCELLED before any event and appends nothing; the session
 * stays usable. */
VOLT_API volt_status volt_session_reply(volt_session* session, const volt_generate_params* params,
                                        volt_event_fn on_event, void* user_data);
/* Session: exclusive. Forgets the conversation's messages and pending attachments (the token cache stays for reuse). */
VOLT_API volt_status volt_session_clear_messages(volt_session* session);
/* Session: exclusive (ABI 0.2). Keeps the first `num_messages` messages (<= volt_session_num_messages) and their
 * images; pending attachments stay. Regenerate: drop the last reply and reply again; edit: drop from the edited
 * message on and add it anew. What the model computed is reused only as far as the conversation still matches it
 * exactly (a lightning-attention state cannot be rolled back): fork to keep a restore point instead. */
VOLT_API volt_status volt_session_truncate_messages(volt_session* session, size_t num_messages);
/* Session: exclusive. */
VOLT_API int64_t volt_session_num_messages(const volt_session* session);

/* Model: shared. Full-forward logits of `ids` on a fresh cache (for validation against a reference): float32
 * [num_ids, vocab_size] row-major into `logits`; *out_count = num_ids * vocab_size. */
VOLT_API volt_status volt_model_logits(const volt_model* model, const int32_t* ids, size_t num_ids, float* logits,
                                       size_t logits_capacity, size_t* out_count);

/* ---- continuous batching (ABI 0.3) ------------------------------------------------------------------------------
 * A volt_batch runs many independent generation requests on one model together. Each step admits queued requests
 * (up to max_batch, within the memory budget), runs one prefill piece of the earliest admitted request still in its
 * prompt, then ONE decode step for every request that is generating, so the weights are read once per step for all
 * of them and a request submitted while others decode joins them at a later step. Each request gets exactly the
 * tokens volt_session_generate gives its prompt alone on a new session with the same volt_generate_params (same
 * sampling, seed, stop ids, max_new_tokens and context rules). CPU and CUDA models alike.
 * Requests are token ids only: no images, documents or chat template (render a conversation with the tokenizer
 * first); the image token of a MiniMax-VL-01 model is refused in a prompt (images need a session).
 *
 * Threading. A batch is driven by one thread at a time ("batch: exclusive"): volt_batch_submit, _step, _run,
 * _get_result, _release, _finished, _num_running, _num_queued and _destroy never run concurrently on one batch. Event
 * callbacks run on that thread, inside volt_batch_step / volt_batch_run; they may call volt_batch_cancel,
 * volt_batch_finished and volt_batch_get_result, but volt_batch_submit, _step, _run and _release on their own batch
 * are refused (VOLT_INVALID_ARGUMENT) and they must not destroy it. volt_batch_cancel is "any thread": a server's
 * connection threads cancel while one thread steps (never during or after volt_batch_destroy); the cancel is recorded
 * and takes effect at the start of the next volt_batch_step (or volt_batch_run iteration) on the stepping thread, and
 * a generating request also stops at its next token inside a step already running. Different batches and sessions
 * of a model run in parallel. A batch keeps every request's result until volt_batch_release or volt_batch_destroy:
 * a long-running server releases each request once it has read the result. */
typedef struct volt_batch volt_batch;

typedef struct volt_batch_params {
    uint32_t struct_size;
    int32_t max_batch;             /* requests generating at once (default 64; >= 1); more wait in order */
    int64_t prefill_chunk;         /* prompt tokens one step runs of the request being prefilled (default 8192; >= 1) */
    int64_t memory_budget_bytes;   /* bytes for the running requests' caches; 0 (default): no limit but max_batch. A
                                    * request is admitted only while the worst case of every running cache plus its
                                    * own fits (its states plus twice the KV rows of prompt + max_new_tokens), so no
                                    * admitted request runs out of memory midway; one that alone exceeds the budget is
                                    * refused by volt_batch_submit (VOLT_RESOURCE_EXHAUSTED, with the numbers) */
    int64_t max_context;           /* tokens each request's cache may hold (prompt and generated); 0 (default): the
                                    * model's maximum. Like volt_session_params.max_context */
} volt_batch_params;

VOLT_API void volt_batch_params_init(volt_batch_params* params);
/* Model: shared. `params` may be NULL (defaults). VOLT_INVALID_ARGUMENT naming the field for max_batch < 1,
 * prefill_chunk < 1, memory_budget_bytes < 0, or a max_context that is negative or above the model's. */
VOLT_API volt_status volt_batch_create(volt_model* model, const volt_batch_params* params, volt_batch** out);
/* Batch: exclusive. Frees the batch with its requests; unfinished ones end without further events. */
VOLT_API void volt_batch_destroy(volt_batch* batch);

/* Batch: exclusive. Queues a request: `prompt_ids` (at least one id, each in [0, vocab_size); copied during the
 * call) and `params` (NULL: defaults; the model's eos is a stop id besides params.stop_ids, as in
 * volt_session_generate). Checked now; on failure nothing is queued and no event is ever sent: VOLT_INVALID_ARGUMENT
 * (NULL or empty prompt, an id outside the vocabulary, the image token of a VL model, bad params),
 * VOLT_RESOURCE_EXHAUSTED (the prompt alone exceeds max_context, or the request alone exceeds memory_budget_bytes).
 * On success *out_request receives its id (>= 0, never reused in this batch) and `on_event` (may be NULL) receives
 * its events with `user_data` during later volt_batch_step / volt_batch_run calls: TOKEN events as
 * volt_session_generate sends them, then exactly one last event, DONE (finish reason, usage, timings; also for a
 * cancelled request, with VOLT_FINISH_CANCELLED) or ERROR (the request failed while running: `status` and `text`).
 * A nonzero return from its callback ends that request at that token (VOLT_FINISH_CANCELLED); the others go on.
 * DONE's timings: prefill_seconds is the time of its prompt's pieces, decode_seconds that of the sampling and of the
 * batched decode steps it took part in (each step's time counts fully for every request in it). */
VOLT_API volt_status volt_batch_submit(volt_batch* batch, const int32_t* prompt_ids, size_t num_prompt_ids,
                                       const volt_generate_params* params, volt_event_fn on_event, void* user_data,
                                       int64_t* out_request);
/* Batch: exclusive. One step (see above); the events of the requests it moved are sent before it returns, the DONE
 * or ERROR of each request that finished in it included. *out_unfinished (may be NULL) receives how many requests
 * are not finished (queued or running; 0: all done). One request's failure ends that request only (its ERROR event
 * and result say why); the call fails only when the batch cannot run at all. Nothing to do is not an error. */
VOLT_API volt_status volt_batch_step(volt_batch* batch, int64_t* out_unfinished);
/* Batch: exclusive. volt_batch_step until every submitted request has finished. */
VOLT_API volt_status volt_batch_run(volt_batch* batch);
/* Any thread, idempotent. Ends request `request` promptly (ABI 0.4): the next volt_batch_step removes it before it
 * runs anything more, whatever its stage, and sends its DONE (VOLT_FINISH_CANCELLED; the result VOLT_CANCELLED with
 * the tokens chosen so far). A queued request never runs: no TOKEN event, no ids, prefill_seconds 0. A request in its
 * prompt runs no further piece (no TOKEN event, no ids). A generating request sends no TOKEN event after the cancel
 * is seen: inside a running step it stops at its next token. A cancelled request's cache memory and memory-budget
 * share go back at once, so queued requests can be admitted in that step. No effect on a finished request;
 * VOLT_NOT_FOUND for an id this batch never returned or one released. */
VOLT_API volt_status volt_batch_cancel(volt_batch* batch, int64_t request);
/* Batch: exclusive. 1 when `request` has finished (its DONE or ERROR was sent), else 0 (also for an unknown or
 * released id). */
VOLT_API int32_t volt_batch_finished(const volt_batch* batch, int64_t request);
/* Batch: exclusive. Requests admitted and not finished / waiting for admission (0 for NULL). */
VOLT_API int64_t volt_batch_num_running(const volt_batch* batch);
VOLT_API int64_t volt_batch_num_queued(const volt_batch* batch);

/* Batch: exclusive (ABI 0.4). Forgets a finished request: its ids, result and message (a `message` pointer from
 * volt_batch_get_result is invalid afterwards). Later volt_batch_get_result, _cancel and _release of its id give
 * VOLT_NOT_FOUND (the message says it was released) and volt_batch_finished 0; ids are never reused. Its events were
 * all sent before it finished. VOLT_INVALID_ARGUMENT for a NULL batch, a request that has not finished (cancel it and
 * step first) or a call from an event callback during a step; VOLT_NOT_FOUND for an id this batch never returned or
 * one already released. */
VOLT_API volt_status volt_batch_release(volt_batch* batch, int64_t request);

/* A finished request's outcome (output struct: filled up to the caller's struct_size). */
typedef struct volt_batch_result {
    uint32_t struct_size;
    volt_status status;                /* VOLT_OK (length, stop id, full context); VOLT_CANCELLED (volt_batch_cancel or
                                        * a nonzero callback return; the ids are those chosen until then); or the
                                        * error that ended the request (no ids) */
    const char* message;               /* "" for VOLT_OK, else what happened; valid until volt_batch_release of the
                                        * request or volt_batch_destroy */
    volt_finish_reason finish_reason;  /* as in DONE (VOLT_FINISH_LENGTH for a failed request) */
    int64_t prompt_tokens;
    int64_t completion_tokens;         /* the generated ids (the stop id included, as in volt_session_generate) */
    double prefill_seconds;            /* as in DONE */
    double decode_seconds;
    double tokens_per_second;          /* completion_tokens / decode_seconds */
} volt_batch_result;

VOLT_API void volt_batch_result_init(volt_batch_result* result);
/* Batch: exclusive. Fills `result` (struct_size set by volt_batch_result_init) and copies the request's generated
 * ids into `ids` (the buffer convention: *out_num_ids always receives the count; NULL/0 asks only for it and the
 * struct). VOLT_NOT_FOUND for an id this batch never returned or one released; VOLT_INVALID_ARGUMENT while the
 * request has not finished. The call's status is about the call: the request's own outcome is result->status. */
VOLT_API volt_status volt_batch_get_result(const volt_batch* batch, int64_t request, volt_batch_result* result,
                                           int32_t* ids, size_t ids_capacity, size_t* out_num_ids);

#ifdef __cplusplus
}
#endif

#endif /* VOLT_H */
