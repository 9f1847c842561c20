/* ABI tests for volt.h, in C11 as an outside program would use the library (linked against libvolt.so).
 * Model: tests/data/tiny-text (a MiniMax-Text-01 fixture with reference logits and greedy chains made by
 * tools/make_text_fixture.py from transformers). Prints "N passed, M failed" and exits nonzero on any failure. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volt.h"

static int g_passed, g_failed;
static const char* g_test = "";

#define CHECK(cond)                                                                                   \
    do {                                                                                              \
        if (cond) {                                                                                   \
            ++g_passed;                                                                               \
        } else {                                                                                      \
            ++g_failed;                                                                               \
            fprintf(stderr, "FAIL %s (%s:%d): %s | last error: %s\n", g_test, __FILE__, __LINE__, #cond, \
                    volt_last_error_message());                                                       \
        }                                                                                             \
    } while (0)

static char g_model_dir[4096];
static char g_vl_dir[4096];    /* optional: a MiniMax-VL-01 chat model (tests/data/tiny-vl-chat) */
static char g_image[4096];     /* and an image for it */

/* ---- tiny readers for the fixture files (JSON int arrays, float32 .npy) ---- */
static int read_ids(const char* path, int32_t* out, int cap) {
    FILE* f = fopen(path, "rb");
    if (!f) return -1;
    int n = 0, c;
    long v = 0;
    int in_num = 0, neg = 0;
    while ((c = fgetc(f)) != EOF) {
        if (c == '-') neg = 1;
        else if (c >= '0' && c <= '9') { v = v * 10 + (c - '0'); in_num = 1; }
        else if (in_num) { if (n < cap) out[n] = (int32_t)(neg ? -v : v); ++n; v = 0; in_num = 0; neg = 0; }
    }
    fclose(f);
    return n;
}

static float* read_npy_f32(const char* path, size_t* count) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10) { fclose(f); return NULL; }
    size_t header = (size_t)pre[8] | ((size_t)pre[9] << 8);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, (long)(10 + header), SEEK_SET);
    *count = (size_t)(size - 10 - (long)header) / sizeof(float);
    float* data = malloc(*count * sizeof(float));
    if (fread(data, sizeof(float), *count, f) != *count) { free(data); data = NULL; }
    fclose(f);
    return data;
}

static volt_model* load_model_from(const char* dir) {
    volt_model_params p;
    volt_model_params_init(&p);
    p.path = dir;
    volt_model* m = NULL;
    volt_status s = volt_model_load(&p, &m);
    if (s != VOLT_OK) fprintf(stderr, "load failed: %s\n", volt_last_error_message());
    return m;
}

static volt_model* load_model(void) { return load_model_from(g_model_dir); }

/* ---- tests ---- */
static void test_version(void) {
    g_test = "version";
    CHECK(volt_abi_major() == VOLT_ABI_MAJOR);
    CHECK(volt_abi_minor() == VOLT_ABI_MINOR);
    CHECK(strlen(volt_version()) > 0);
    CHECK(strcmp(volt_status_name(VOLT_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED") == 0);
    CHECK(strcmp(volt_status_name(12345), "UNKNOWN") == 0);
}

static void test_null_and_bad_arguments(void) {
    g_test = "null_and_bad_arguments";
    volt_model_destroy(NULL);
    volt_session_destroy(NULL);
    volt_model* m = (volt_model*)0x1;
    CHECK(volt_model_load(NULL, &m) == VOLT_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK(strlen(volt_last_error_message()) > 0);
    volt_model_params p;
    volt_model_params_init(&p);
    CHECK(volt_model_load(&p, &m) == VOLT_INVALID_ARGUMENT); /* no path */
    CHECK(strstr(volt_last_error_message(), "path") != NULL);
    p.path = "/nonexistent/volt-model";
    volt_status s = volt_model_load(&p, &m);
    CHECK(s == VOLT_NOT_FOUND);
    CHECK(strstr(volt_last_error_message(), "/nonexistent/volt-model") != NULL);
    /* GPU lists: any distinct ids in rank order; repeated or negative ids are refused before any GPU is touched (also
     * on CPU-only machines). */
    {
        const int32_t repeated[2] = {1, 1}, negative[2] = {0, -1}, scattered[2] = {1, 0};
        volt_model_params g;
        volt_model_params_init(&g);
        g.path = g_model_dir;
        g.device = VOLT_DEVICE_CUDA;
        g.num_gpus = 2;
        g.gpu_ids = repeated;
        CHECK(volt_model_load(&g, &m) == VOLT_INVALID_ARGUMENT);
        CHECK(strstr(volt_last_error_message(), "both GPU 1") != NULL);
        g.gpu_ids = negative;
        CHECK(volt_model_load(&g, &m) == VOLT_INVALID_ARGUMENT);
        CHECK(strstr(volt_last_error_message(), "gpu_ids[1]") != NULL);
        /* Not consecutive, not ascending: taken (it loads where two GPUs and NCCL exist; else the machine's error). */
        g.gpu_ids = scattered;
        s = volt_model_load(&g, &m);
        CHECK(s == VOLT_OK || strstr(volt_last_error_message(), "consecutive") == NULL);
        if (s == VOLT_OK) volt_model_destroy(m);
        m = NULL;
        g.num_gpus = -1;
        CHECK(volt_model_load(&g, &m) == VOLT_INVALID_ARGUMENT);
    }
    /* Expert weights (ABI 0.5): an unknown value, and FP8 / int8 on the CPU, are refused with the field named. */
    {
        volt_model_params q;
        volt_model_params_init(&q);
        CHECK(q.expert_weights == VOLT_EXPERT_WEIGHTS_BF16);
        q.path = g_model_dir;
        q.expert_weights = 7;
        CHECK(volt_model_load(&q, &m) == VOLT_INVALID_ARGUMENT);
        CHECK(strstr(volt_last_error_message(), "expert_weights 7") != NULL);
        q.expert_weights = VOLT_EXPERT_WEIGHTS_FP8;
        CHECK(volt_model_load(&q, &m) == VOLT_INVALID_ARGUMENT);
        CHECK(strstr(volt_last_error_message(), "fp8 needs VOLT_DEVICE_CUDA") != NULL);
        q.expert_weights = VOLT_EXPERT_WEIGHTS_INT8;
        CHECK(volt_model_load(&q, &m) == VOLT_INVALID_ARGUMENT);
        CHECK(m == NULL);
    }
    p.path = g_model_dir;
    p.struct_size = 0; /* not initialised */
    CHECK(volt_model_load(&p, &m) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "struct_size") != NULL);
    volt_model_info info;
    volt_model_info_init(&info);
    CHECK(volt_model_get_info(NULL, &info) == VOLT_INVALID_ARGUMENT);
    size_t n = 0;
    CHECK(volt_tokenize(NULL, "a", 1, 0, NULL, 0, &n) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_session_generate(NULL, NULL, 0, NULL, NULL, NULL) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_session_cancel(NULL) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_log_set(NULL, NULL, 99) == VOLT_INVALID_ARGUMENT);
    /* A successful call clears the message. */
    CHECK(volt_log_set(NULL, NULL, VOLT_LOG_WARN) == VOLT_OK);
    CHECK(strcmp(volt_last_error_message(), "") == 0);
}

/* The v0.1 prefix of volt_model_params, as a program compiled against an older header would have it. */
typedef struct {
    uint32_t struct_size;
    const char* path;
} old_model_params;

typedef struct {
    int first, last;   /* phases of the first and the last call */
    int n;             /* calls (the weights phase reports many fractions) */
    int abort_at;
    int out_of_order;  /* a phase before the previous one, or a fraction going back within a phase */
    float fraction;
} progress_log;

static int32_t on_progress(void* ud, volt_load_phase phase, float fraction) {
    progress_log* log = ud;
    if (log->n == 0) log->first = phase;
    else if (phase < log->last || (phase == log->last && fraction < log->fraction)) log->out_of_order = 1;
    log->last = phase;
    log->fraction = fraction;
    ++log->n;
    return phase == log->abort_at ? 1 : 0;
}

static void test_load_info_and_old_structs(void) {
    g_test = "load_info_and_old_structs";
    old_model_params old = {sizeof(old_model_params), g_model_dir};
    volt_model* m = NULL;
    CHECK(volt_model_load((const volt_model_params*)&old, &m) == VOLT_OK);
    CHECK(m != NULL);
    volt_model_info info;
    volt_model_info_init(&info);
    CHECK(volt_model_get_info(m, &info) == VOLT_OK);
    CHECK(strcmp(info.model_type, "minimax_text_01") == 0);
    CHECK(info.vocab_size == 512);
    CHECK(info.num_layers == 4);
    CHECK(info.num_softmax_layers == 2);
    CHECK(info.is_vision_language == 0);
    CHECK(info.total_params > info.active_params && info.active_params > 0);
    /* An older, smaller info struct: only its fields are written. */
    struct {
        uint32_t struct_size;
        const char* model_type;
        int32_t is_vision_language;
        int32_t sentinel;
    } small = {offsetof(volt_model_info, has_tokenizer), NULL, -7, 0x5eed};
    CHECK(volt_model_get_info(m, (volt_model_info*)&small) == VOLT_OK);
    CHECK(small.model_type != NULL && small.is_vision_language == 0);
    CHECK(small.sentinel == 0x5eed);
    CHECK(small.struct_size == offsetof(volt_model_info, has_tokenizer));
    volt_model_destroy(m);

    /* Progress phases in order; a nonzero return aborts with CANCELLED and no model. */
    progress_log log = {0, 0, 0, -1, 0, 0.0f};
    volt_model_params p;
    volt_model_params_init(&p);
    p.path = g_model_dir;
    p.progress = on_progress;
    p.progress_user_data = &log;
    CHECK(volt_model_load(&p, &m) == VOLT_OK);
    CHECK(log.n >= 4 && log.first == VOLT_LOAD_CONFIG && log.last == VOLT_LOAD_DONE);
    CHECK(!log.out_of_order);
    volt_model_destroy(m);
    progress_log abort_log = {0, 0, 0, VOLT_LOAD_WEIGHTS, 0, 0.0f};
    p.progress_user_data = &abort_log;
    m = (volt_model*)0x1;
    CHECK(volt_model_load(&p, &m) == VOLT_CANCELLED);
    CHECK(m == NULL);
}

static void test_logits_match_reference(volt_model* m) {
    g_test = "logits_match_reference";
    char path[4200];
    int32_t ids[1024];
    snprintf(path, sizeof path, "%s/reference/ids_257.json", g_model_dir);
    int n = read_ids(path, ids, 1024);
    CHECK(n == 257);
    size_t count = 0;
    CHECK(volt_model_logits(m, ids, (size_t)n, NULL, 0, &count) == VOLT_OK); /* size query */
    CHECK(count == (size_t)n * 512);
    float* small = malloc(16 * sizeof(float));
    CHECK(volt_model_logits(m, ids, (size_t)n, small, 16, &count) == VOLT_RESOURCE_EXHAUSTED);
    free(small);
    float* got = malloc(count * sizeof(float));
    CHECK(volt_model_logits(m, ids, (size_t)n, got, count, &count) == VOLT_OK);
    snprintf(path, sizeof path, "%s/reference/logits_257.npy", g_model_dir);
    size_t ref_count = 0;
    float* ref = read_npy_f32(path, &ref_count);
    CHECK(ref != NULL && ref_count == count);
    if (ref && ref_count == count) {
        double num = 0, den = 0;
        for (size_t i = 0; i < count; ++i) {
            num += (got[i] - ref[i]) * (double)(got[i] - ref[i]);
            den += ref[i] * (double)ref[i];
        }
        CHECK(sqrt(num / den) <= 1e-4);
    }
    free(ref);
    free(got);
    int32_t bad[2] = {1, 9999};
    CHECK(volt_model_logits(m, bad, 2, NULL, 0, &count) == VOLT_OK); /* size query does not run the model */
    float out[2 * 512];
    CHECK(volt_model_logits(m, bad, 2, out, 2 * 512, &count) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "9999") != NULL);
}

typedef struct {
    int32_t ids[512];
    int n_tokens;
    int done, errors, done_last;
    volt_finish_reason reason;
    int64_t completion_tokens, reused;
    int stop_after;          /* return nonzero after this many tokens (0: never) */
    volt_session* cancel_me; /* cancel this session after the first token (from the callback's thread) */
} stream_log;

static int32_t on_event(void* ud, const volt_event* e) {
    stream_log* log = ud;
    if (log->done) log->done_last = 0; /* anything after DONE is a bug */
    if (e->type == VOLT_EVENT_TOKEN && e->token_id >= 0) {
        if (log->n_tokens < 512) log->ids[log->n_tokens] = e->token_id;
        ++log->n_tokens;
        if (log->cancel_me && log->n_tokens == 1) volt_session_cancel(log->cancel_me);
        if (log->stop_after && log->n_tokens >= log->stop_after) return 1;
    } else if (e->type == VOLT_EVENT_DONE) {
        log->done++;
        log->done_last = 1;
        log->reason = e->finish_reason;
        log->completion_tokens = e->completion_tokens;
        log->reused = e->reused_tokens;
    } else if (e->type == VOLT_EVENT_ERROR) {
        log->errors++;
    }
    return 0;
}

static void test_greedy_generation_matches_reference(volt_model* m) {
    g_test = "greedy_generation_matches_reference";
    char path[4200];
    int32_t prompt[1024], expected[256];
    snprintf(path, sizeof path, "%s/reference/ids_257.json", g_model_dir);
    int n = read_ids(path, prompt, 1024);
    snprintf(path, sizeof path, "%s/reference/greedy_257.json", g_model_dir);
    int n_expected = read_ids(path, expected, 256);
    CHECK(n == 257 && n_expected > 0);
    volt_session* s = NULL;
    CHECK(volt_session_create(m, NULL, &s) == VOLT_OK);
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.temperature = 0.0f;
    g.max_new_tokens = n_expected;
    stream_log log;
    memset(&log, 0, sizeof log);
    CHECK(volt_session_generate(s, prompt, (size_t)n, &g, on_event, &log) == VOLT_OK);
    CHECK(log.n_tokens == n_expected);
    for (int i = 0; i < n_expected && i < log.n_tokens; ++i) CHECK(log.ids[i] == expected[i]);
    CHECK(log.done == 1 && log.done_last == 1 && log.errors == 0);
    CHECK(log.completion_tokens == n_expected);

    /* The next turn extends the conversation: the session reuses what it holds. */
    int32_t longer[1024];
    memcpy(longer, prompt, sizeof(int32_t) * (size_t)n);
    memcpy(longer + n, expected, sizeof(int32_t) * (size_t)(n_expected - 1));
    stream_log log2;
    memset(&log2, 0, sizeof log2);
    g.max_new_tokens = 2;
    CHECK(volt_session_generate(s, longer, (size_t)(n + n_expected - 1), &g, on_event, &log2) == VOLT_OK);
    /* The session held exactly this prompt (the last generated id is never run), so all of it is reused and greedy
     * decoding continues the reference chain. */
    CHECK(log2.reused == n + n_expected - 1);
    CHECK(log2.n_tokens >= 1 && log2.ids[0] == expected[n_expected - 1]);
    volt_session_destroy(s);
}

static void test_cancel_and_stop(volt_model* m) {
    g_test = "cancel_and_stop";
    int32_t prompt[4] = {3, 17, 42, 99};
    volt_session* s = NULL;
    CHECK(volt_session_create(m, NULL, &s) == VOLT_OK);
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.temperature = 0.0f;
    g.max_new_tokens = 100;
    g.stop_ids = NULL;
    stream_log log;
    memset(&log, 0, sizeof log);
    log.cancel_me = s;
    CHECK(volt_session_generate(s, prompt, 4, &g, on_event, &log) == VOLT_CANCELLED);
    CHECK(log.reason == VOLT_FINISH_CANCELLED && log.done == 1 && log.done_last == 1);
    CHECK(log.n_tokens == 1);
    /* The session still works, and the cancel applied to one generation only. */
    stream_log after;
    memset(&after, 0, sizeof after);
    g.max_new_tokens = 3;
    CHECK(volt_session_generate(s, prompt, 4, &g, on_event, &after) == VOLT_OK);
    CHECK(after.n_tokens >= 1 && after.done == 1);
    /* A cancel while nothing runs is a no-op: the next generation is not affected. */
    CHECK(volt_session_cancel(s) == VOLT_OK);
    stream_log idle;
    memset(&idle, 0, sizeof idle);
    CHECK(volt_session_generate(s, prompt, 4, &g, on_event, &idle) == VOLT_OK);
    CHECK(idle.n_tokens == 3 && idle.reason != VOLT_FINISH_CANCELLED);
    /* A nonzero callback return stops it too. */
    stream_log stop;
    memset(&stop, 0, sizeof stop);
    stop.stop_after = 2;
    g.max_new_tokens = 50;
    CHECK(volt_session_generate(s, prompt, 4, &g, on_event, &stop) == VOLT_CANCELLED);
    CHECK(stop.n_tokens == 2 && stop.reason == VOLT_FINISH_CANCELLED);
    /* Bad input is refused before anything runs. */
    int32_t bad[2] = {5, -3};
    stream_log none;
    memset(&none, 0, sizeof none);
    CHECK(volt_session_generate(s, bad, 2, &g, on_event, &none) == VOLT_INVALID_ARGUMENT);
    CHECK(none.n_tokens == 0 && none.done == 0);
    g.temperature = -1.0f;
    CHECK(volt_session_generate(s, prompt, 4, &g, on_event, &none) == VOLT_INVALID_ARGUMENT);
    volt_session_destroy(s);
}

static void test_no_tokenizer(volt_model* m) {
    g_test = "no_tokenizer";
    size_t n = 0;
    volt_model_info info;
    volt_model_info_init(&info);
    volt_model_get_info(m, &info);
    if (info.has_tokenizer) return;
    CHECK(volt_tokenize(m, "hi", 2, 0, NULL, 0, &n) == VOLT_NOT_FOUND);
    CHECK(strstr(volt_last_error_message(), "tokenizer") != NULL);
}

/* 16 threads x 50 requests, each on its own session of one shared model: every result equals the one-thread run. */
typedef struct {
    volt_model* model;
    int index;
    const int32_t (*expected)[4];
    int mismatches, failures;
} worker_arg;

static void* worker(void* p) {
    worker_arg* a = p;
    volt_session* s = NULL;
    if (volt_session_create(a->model, NULL, &s) != VOLT_OK) { a->failures++; return NULL; }
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.temperature = 0.0f;
    g.max_new_tokens = 4;
    for (int r = 0; r < 50; ++r) {
        int k = (a->index + r) % 8;
        int32_t prompt[3] = {k + 1, 2 * k + 7, 100 + k};
        stream_log log;
        memset(&log, 0, sizeof log);
        if (volt_session_generate(s, prompt, 3, &g, on_event, &log) != VOLT_OK || log.done != 1) { a->failures++; continue; }
        for (int i = 0; i < 4; ++i)
            if (log.n_tokens != 4 || log.ids[i] != a->expected[k][i]) { a->mismatches++; break; }
    }
    volt_session_destroy(s);
    return NULL;
}

static void test_threads(volt_model* m) {
    g_test = "threads";
    int32_t expected[8][4];
    volt_session* s = NULL;
    CHECK(volt_session_create(m, NULL, &s) == VOLT_OK);
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.temperature = 0.0f;
    g.max_new_tokens = 4;
    for (int k = 0; k < 8; ++k) {
        int32_t prompt[3] = {k + 1, 2 * k + 7, 100 + k};
        stream_log log;
        memset(&log, 0, sizeof log);
        CHECK(volt_session_generate(s, prompt, 3, &g, on_event, &log) == VOLT_OK);
        CHECK(log.n_tokens == 4);
        memcpy(expected[k], log.ids, sizeof expected[k]);
    }
    volt_session_destroy(s);
    pthread_t threads[16];
    worker_arg args[16];
    for (int t = 0; t < 16; ++t) {
        args[t] = (worker_arg){m, t, (const int32_t(*)[4])expected, 0, 0};
        pthread_create(&threads[t], NULL, worker, &args[t]);
    }
    int mismatches = 0, failures = 0;
    for (int t = 0; t < 16; ++t) {
        pthread_join(threads[t], NULL);
        mismatches += args[t].mismatches;
        failures += args[t].failures;
    }
    CHECK(failures == 0);
    CHECK(mismatches == 0);
}

typedef struct {
    int count;
    int saw_load;
} log_capture;

static void on_log(void* ud, volt_log_level level, volt_log_category category, const char* message) {
    log_capture* c = ud;
    c->count++;
    (void)level;
    (void)message;
    if (category == VOLT_LOG_LOAD) c->saw_load = 1;
}

static void test_log_hook(void) {
    g_test = "log_hook";
    log_capture cap = {0, 0};
    CHECK(volt_log_set(on_log, &cap, VOLT_LOG_INFO) == VOLT_OK);
    volt_model* m = load_model();
    CHECK(m != NULL);
    volt_model_destroy(m);
    CHECK(cap.saw_load == 1); /* a successful load reports itself at info level, category load */
    int before = cap.count;
    CHECK(volt_log_set(on_log, &cap, VOLT_LOG_ERROR) == VOLT_OK);
    m = load_model();
    volt_model_destroy(m);
    CHECK(cap.count == before); /* nothing below the threshold reaches the hook */
    CHECK(volt_log_set(NULL, NULL, VOLT_LOG_WARN) == VOLT_OK);
}

/* ---- images and branching conversations (ABI 0.2), on a VL chat model ---- */
typedef struct {
    int n_tokens, n_done;
    int32_t ids[64];
    int64_t prompt_tokens, reused_tokens;
} reply_log;

static int32_t on_reply_event(void* ud, const volt_event* e) {
    reply_log* log = ud;
    if (e->type == VOLT_EVENT_TOKEN && e->token_id >= 0 && log->n_tokens < 64) log->ids[log->n_tokens++] = e->token_id;
    if (e->type == VOLT_EVENT_DONE) {
        ++log->n_done;
        log->prompt_tokens = e->prompt_tokens;
        log->reused_tokens = e->reused_tokens;
    }
    return 0;
}

static unsigned char* read_all(const char* path, size_t* size) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char* data = malloc((size_t)n);
    *size = fread(data, 1, (size_t)n, f);
    fclose(f);
    return data;
}

static void test_images(volt_model* text_model) {
    g_test = "images";
    volt_image* img = NULL;
    /* Decoding: a file, the same bytes from memory, RGB pixels; errors name the source. */
    CHECK(volt_image_load_file(g_image, &img) == VOLT_OK);
    int32_t w = 0, h = 0;
    CHECK(volt_image_size(img, &w, &h) == VOLT_OK && w == 640 && h == 480);
    size_t size = 0;
    unsigned char* bytes = read_all(g_image, &size);
    CHECK(bytes != NULL && size > 0);
    volt_image* from_bytes = NULL;
    CHECK(volt_image_load_bytes(bytes, size, "photo bytes", &from_bytes) == VOLT_OK);
    volt_image* cut = NULL;
    CHECK(volt_image_load_bytes(bytes, size / 3, "cut short", &cut) != VOLT_OK); /* truncated */
    CHECK(strstr(volt_last_error_message(), "cut short") != NULL);
    CHECK(cut == NULL);
    free(bytes);
    volt_image* missing = NULL;
    CHECK(volt_image_load_file("/nonexistent/map.png", &missing) == VOLT_NOT_FOUND);
    CHECK(strstr(volt_last_error_message(), "/nonexistent/map.png") != NULL && missing == NULL);
    unsigned char rgb[2 * 8] = {0};
    for (int i = 0; i < 16; ++i) rgb[i] = (unsigned char)(i * 13 + 7);
    volt_image* small = NULL;
    CHECK(volt_image_from_rgb(rgb, 2, 2, 8, &small) == VOLT_OK); /* stride 8 > 6: padded rows */
    CHECK(volt_image_size(small, &w, &h) == VOLT_OK && w == 2 && h == 2);
    volt_image* bad = NULL;
    CHECK(volt_image_from_rgb(rgb, 2, 2, 5, &bad) == VOLT_INVALID_ARGUMENT && bad == NULL); /* stride < 3 * width */
    CHECK(strstr(volt_last_error_message(), "stride") != NULL);
    CHECK(volt_image_from_rgb(NULL, 2, 2, 0, &bad) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_image_from_rgb(rgb, 0, 2, 0, &bad) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_image_from_rgb(rgb, 30000, 30000, 0, &bad) == VOLT_RESOURCE_EXHAUSTED); /* refused before reading */
    CHECK(volt_image_load_file(NULL, &bad) == VOLT_INVALID_ARGUMENT);
    volt_image_destroy(NULL);

    volt_model* m = load_model_from(g_vl_dir);
    CHECK(m != NULL);
    if (!m) return;
    volt_model_info info;
    volt_model_info_init(&info);
    CHECK(volt_model_get_info(m, &info) == VOLT_OK && info.is_vision_language == 1);
    /* Token cost before anything is encoded: 576 + 48*36 + 36 for 640x480 (grid 672x672... unpadded 48x36). */
    int64_t tokens = 0, tokens_bytes = 0, tokens_small = 0;
    CHECK(volt_model_image_tokens(m, img, &tokens) == VOLT_OK && tokens == 2340);
    CHECK(volt_model_image_tokens(m, from_bytes, &tokens_bytes) == VOLT_OK && tokens_bytes == tokens);
    CHECK(volt_model_image_tokens(m, small, &tokens_small) == VOLT_OK && tokens_small > 576);
    CHECK(volt_model_image_tokens(text_model, img, &tokens) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "text-only") != NULL);
    CHECK(volt_model_image_tokens(m, NULL, &tokens) == VOLT_INVALID_ARGUMENT);

    /* A text-only model's session refuses images. */
    volt_session* ts = NULL;
    CHECK(volt_session_create(text_model, NULL, &ts) == VOLT_OK);
    CHECK(volt_session_attach_image(ts, img, NULL) == VOLT_INVALID_ARGUMENT);
    volt_session_destroy(ts);

    /* A per-image budget refuses (never downscales); an old, smaller params struct still works. */
    volt_session_params sp;
    volt_session_params_init(&sp);
    sp.max_tokens_per_image = 1000;
    volt_session* tight = NULL;
    CHECK(volt_session_create(m, &sp, &tight) == VOLT_OK);
    CHECK(volt_session_attach_image(tight, img, NULL) == VOLT_RESOURCE_EXHAUSTED);
    CHECK(strstr(volt_last_error_message(), "2340 tokens") != NULL);
    volt_session_destroy(tight);
    struct { uint32_t struct_size; int64_t max_context; } old_params = {sizeof old_params, 0};
    volt_session* s = NULL;
    CHECK(volt_session_create(m, (const volt_session_params*)&old_params, &s) == VOLT_OK);
    if (!s) return;

    /* Ask about the image; the handle can be destroyed once attached (the pixels were copied). */
    int64_t attached = 0;
    CHECK(volt_session_attach_image(s, img, &attached) == VOLT_OK && attached == 2340);
    volt_image_destroy(img);
    const char* q = "What is shown?";
    CHECK(volt_session_add_message(s, VOLT_ROLE_USER, "<image>", 7) == VOLT_INVALID_ARGUMENT); /* the placeholder */
    CHECK(volt_session_add_message(s, VOLT_ROLE_USER, q, strlen(q)) == VOLT_OK);
    int64_t prompt_tokens = 0;
    CHECK(volt_session_count_prompt_tokens(s, &prompt_tokens) == VOLT_OK && prompt_tokens > 2340);
    volt_session* branch = NULL;
    CHECK(volt_session_fork(s, &branch) == VOLT_OK && branch != NULL); /* restore point for a regenerate */
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.max_new_tokens = 5;
    g.temperature = 0.0f;
    reply_log first, regen, from_mem;
    memset(&first, 0, sizeof first);
    memset(&regen, 0, sizeof regen);
    memset(&from_mem, 0, sizeof from_mem);
    CHECK(volt_session_reply(s, &g, on_reply_event, &first) == VOLT_OK);
    CHECK(first.n_done == 1 && first.n_tokens >= 1 && first.prompt_tokens == prompt_tokens);
    CHECK(volt_session_num_messages(s) == 2);
    CHECK(volt_session_reply(branch, &g, on_reply_event, &regen) == VOLT_OK);
    CHECK(regen.n_tokens == first.n_tokens && memcmp(regen.ids, first.ids, sizeof(int32_t) * (size_t)first.n_tokens) == 0);
    volt_session_destroy(branch);

    /* The same image from memory gives the same answer. */
    volt_session* s2 = NULL;
    CHECK(volt_session_create(m, NULL, &s2) == VOLT_OK);
    CHECK(volt_session_attach_image(s2, from_bytes, NULL) == VOLT_OK);
    CHECK(volt_session_add_message(s2, VOLT_ROLE_USER, q, strlen(q)) == VOLT_OK);
    CHECK(volt_session_reply(s2, &g, on_reply_event, &from_mem) == VOLT_OK);
    CHECK(from_mem.n_tokens == first.n_tokens && memcmp(from_mem.ids, first.ids, sizeof(int32_t) * (size_t)first.n_tokens) == 0);
    volt_session_destroy(s2);
    volt_image_destroy(from_bytes);

    /* A second turn reuses the image. Regenerating it by truncating the reply recomputes the conversation (a
     * lightning state cannot be rolled back; fork before replying to avoid that) and gives the same answer. */
    const char* q2 = "And the colours?";
    CHECK(volt_session_add_message(s, VOLT_ROLE_USER, q2, strlen(q2)) == VOLT_OK);
    reply_log second, again;
    memset(&second, 0, sizeof second);
    memset(&again, 0, sizeof again);
    CHECK(volt_session_reply(s, &g, on_reply_event, &second) == VOLT_OK);
    CHECK(second.reused_tokens > 2340);
    CHECK(volt_session_truncate_messages(s, 3) == VOLT_OK && volt_session_num_messages(s) == 3);
    CHECK(volt_session_truncate_messages(s, 9) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_session_reply(s, &g, on_reply_event, &again) == VOLT_OK);
    CHECK(again.reused_tokens == 0);
    CHECK(again.n_tokens == second.n_tokens && memcmp(again.ids, second.ids, sizeof(int32_t) * (size_t)second.n_tokens) == 0);
    CHECK(volt_session_fork(NULL, &branch) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_session_attach_image(s, NULL, NULL) == VOLT_INVALID_ARGUMENT);
    volt_session_destroy(s);
    volt_image_destroy(small);
    volt_model_destroy(m);
}

/* ---- continuous batching (ABI 0.3) ---- */

/* What volt_session_generate gives `prompt` alone on a new session: the TOKEN ids and the DONE event. */
static int generate_alone(volt_model* m, const int32_t* prompt, size_t n, const volt_generate_params* g,
                          int64_t max_context, stream_log* log) {
    volt_session_params sp;
    volt_session_params_init(&sp);
    sp.max_context = max_context;
    volt_session* s = NULL;
    memset(log, 0, sizeof *log);
    if (volt_session_create(m, &sp, &s) != VOLT_OK) return 0;
    volt_status st = volt_session_generate(s, prompt, n, g, on_event, log);
    volt_session_destroy(s);
    return st == VOLT_OK && log->done == 1;
}

/* A request's result: the call's status; ids into `ids` (capacity 512). */
static volt_status batch_result(volt_batch* b, int64_t id, volt_batch_result* r, int32_t* ids, size_t* n) {
    volt_batch_result_init(r);
    return volt_batch_get_result(b, id, r, ids, 512, n);
}

static int same_ids(const int32_t* a, int na, const int32_t* b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, sizeof(int32_t) * (size_t)na) == 0);
}

/* A batch of at most `max_batch` requests (other params default); NULL (and a failed CHECK) if refused. */
static volt_batch* batch_of(volt_model* m, int32_t max_batch) {
    volt_batch_params bp;
    volt_batch_params_init(&bp);
    bp.max_batch = max_batch;
    volt_batch* b = NULL;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_OK);
    return b;
}

/* Greedy generation of `max_new_tokens` ids. */
static volt_generate_params greedy_params(int64_t max_new_tokens) {
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.temperature = 0.0f;
    g.max_new_tokens = max_new_tokens;
    return g;
}

/* Five prompts (one of them the 257-id reference, prefilled in pieces), greedy and seeded sampling, through a batch
 * of at most 3 with requests joining while others decode: each gets exactly what it gets alone, by events and by
 * result; the 257-id greedy one also equals the transformers chain. */
enum { kBatchPrompts = 5 };
static void test_batch_matches_alone(volt_model* m) {
    g_test = "batch_matches_alone";
    char path[4200];
    int32_t ref_prompt[1024], ref_greedy[256];
    snprintf(path, sizeof path, "%s/reference/ids_257.json", g_model_dir);
    const int n_ref = read_ids(path, ref_prompt, 1024);
    snprintf(path, sizeof path, "%s/reference/greedy_257.json", g_model_dir);
    const int n_greedy = read_ids(path, ref_greedy, 256);
    CHECK(n_ref == 257 && n_greedy > 0);
    int32_t prompts[kBatchPrompts][300];
    size_t lens[kBatchPrompts];
    volt_generate_params g[kBatchPrompts];
    stream_log alone[kBatchPrompts];
    for (int k = 0; k < kBatchPrompts; ++k) {
        lens[k] = (size_t)(3 + 7 * k);
        for (size_t i = 0; i < lens[k]; ++i) prompts[k][i] = (int32_t)((k * 131 + (int)i * 37 + 5) % 512);
        volt_generate_params_init(&g[k]);
        g[k].max_new_tokens = 4 + 3 * k;
        if (k % 2) { /* seeded sampling */
            g[k].temperature = 0.9f;
            g[k].top_k = 50;
            g[k].top_p = 0.95f;
            g[k].seed = 1000u + (uint64_t)k;
        } else {
            g[k].temperature = 0.0f;
        }
    }
    memcpy(prompts[2], ref_prompt, sizeof(int32_t) * 257);
    lens[2] = 257;
    g[2].max_new_tokens = n_greedy;
    for (int k = 0; k < kBatchPrompts; ++k)
        CHECK(generate_alone(m, prompts[k], lens[k], &g[k], 0, &alone[k]));
    CHECK(same_ids(alone[2].ids, alone[2].n_tokens, ref_greedy, n_greedy));

    volt_batch_params bp;
    volt_batch_params_init(&bp);
    CHECK(bp.max_batch == 64 && bp.prefill_chunk == 8192 && bp.memory_budget_bytes == 0 && bp.max_context == 0);
    bp.max_batch = 3;
    bp.prefill_chunk = 100; /* the 257-id prompt runs in three pieces */
    volt_batch* b = NULL;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_OK && b != NULL);
    if (!b) return;
    stream_log got[kBatchPrompts];
    int64_t ids[kBatchPrompts];
    memset(got, 0, sizeof got);
    /* Two now, the rest after a few steps (they join while the first decode). */
    for (int k = 0; k < 2; ++k) CHECK(volt_batch_submit(b, prompts[k], lens[k], &g[k], on_event, &got[k], &ids[k]) == VOLT_OK);
    CHECK(ids[0] >= 0 && ids[1] != ids[0]);
    CHECK(volt_batch_num_queued(b) == 2 && volt_batch_num_running(b) == 0);
    int64_t left = -1;
    CHECK(volt_batch_step(b, &left) == VOLT_OK); /* admits both, prefills the first, decodes it */
    CHECK(left == 2 && volt_batch_num_running(b) == 2 && volt_batch_num_queued(b) == 0 && got[0].n_tokens >= 1);
    CHECK(volt_batch_step(b, &left) == VOLT_OK && got[1].n_tokens >= 1);
    for (int k = 2; k < kBatchPrompts; ++k) CHECK(volt_batch_submit(b, prompts[k], lens[k], &g[k], on_event, &got[k], &ids[k]) == VOLT_OK);
    int steps = 0, most_running = 0;
    while (left > 0 && steps < 10000) {
        CHECK(volt_batch_step(b, &left) == VOLT_OK);
        if (volt_batch_num_running(b) > most_running) most_running = (int)volt_batch_num_running(b);
        ++steps;
    }
    CHECK(left == 0 && most_running == 3 && volt_batch_num_queued(b) == 0 && volt_batch_num_running(b) == 0);
    CHECK(volt_batch_step(b, &left) == VOLT_OK && left == 0); /* nothing to do is not an error */
    for (int k = 0; k < kBatchPrompts; ++k) {
        CHECK(volt_batch_finished(b, ids[k]) == 1);
        CHECK(same_ids(got[k].ids, got[k].n_tokens, alone[k].ids, alone[k].n_tokens));
        CHECK(got[k].done == 1 && got[k].done_last == 1 && got[k].errors == 0);
        CHECK(got[k].reason == alone[k].reason && got[k].completion_tokens == alone[k].completion_tokens);
        volt_batch_result r;
        int32_t out[512];
        size_t n = 0;
        CHECK(batch_result(b, ids[k], &r, out, &n) == VOLT_OK);
        CHECK(r.status == VOLT_OK && strcmp(r.message, "") == 0);
        CHECK(same_ids(out, (int)n, alone[k].ids, alone[k].n_tokens));
        CHECK(r.completion_tokens == (int64_t)n && r.prompt_tokens == (int64_t)lens[k]);
        CHECK(r.finish_reason == VOLT_FINISH_LENGTH && r.prefill_seconds > 0 && r.decode_seconds > 0);
        CHECK(r.tokens_per_second > 0);
    }
    /* The buffer convention: a size query, then a buffer too small. */
    volt_batch_result r;
    volt_batch_result_init(&r);
    size_t n = 0;
    CHECK(volt_batch_get_result(b, ids[4], &r, NULL, 0, &n) == VOLT_OK && n == (size_t)g[4].max_new_tokens);
    int32_t two[2];
    CHECK(volt_batch_get_result(b, ids[4], &r, two, 2, &n) == VOLT_RESOURCE_EXHAUSTED);
    CHECK(n == (size_t)g[4].max_new_tokens);
    volt_batch_destroy(b);

    /* volt_batch_run, and the context rule: a batch whose requests may hold 12 tokens ends them as a session of 12
     * does. */
    volt_batch_params_init(&bp);
    bp.max_context = 12;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_OK);
    if (!b) return;
    volt_generate_params gc = g[1];
    gc.max_new_tokens = 50;
    stream_log ctx_alone, ctx_got;
    memset(&ctx_got, 0, sizeof ctx_got);
    CHECK(generate_alone(m, prompts[1], lens[1], &gc, 12, &ctx_alone));
    CHECK(ctx_alone.reason == VOLT_FINISH_CONTEXT);
    int64_t id = -1, id2 = -1;
    CHECK(volt_batch_submit(b, prompts[1], lens[1], &gc, on_event, &ctx_got, &id) == VOLT_OK);
    CHECK(volt_batch_submit(b, prompts[0], lens[0], &g[0], NULL, NULL, &id2) == VOLT_OK); /* no callback */
    CHECK(volt_batch_run(b) == VOLT_OK);
    CHECK(ctx_got.reason == VOLT_FINISH_CONTEXT && same_ids(ctx_got.ids, ctx_got.n_tokens, ctx_alone.ids, ctx_alone.n_tokens));
    int32_t out[512];
    CHECK(batch_result(b, id2, &r, out, &n) == VOLT_OK && same_ids(out, (int)n, alone[0].ids, alone[0].n_tokens));
    CHECK(volt_batch_run(b) == VOLT_OK); /* nothing left */
    volt_batch_destroy(b);
}

typedef struct {
    volt_batch* batch;
    int64_t submitted; /* a request a callback tries to submit from inside the step */
    volt_status reentry;
    int64_t finished;  /* a finished request a callback tries to release from inside the step */
} reentry_arg;

static int32_t on_event_reentering(void* ud, const volt_event* e) {
    reentry_arg* a = ud;
    if (e->type == VOLT_EVENT_TOKEN && a->reentry == VOLT_OK) {
        const int32_t p[1] = {1};
        a->reentry = volt_batch_submit(a->batch, p, 1, NULL, NULL, NULL, &a->submitted);
        if (a->reentry == VOLT_INVALID_ARGUMENT && strstr(volt_last_error_message(), "callback") == NULL) a->reentry = -1;
        int64_t left = 0;
        if (volt_batch_step(a->batch, &left) != VOLT_INVALID_ARGUMENT) a->reentry = -1;
        if (volt_batch_release(a->batch, a->finished) != VOLT_INVALID_ARGUMENT) a->reentry = -1;
    }
    return 0;
}

static void test_batch_bad_arguments(volt_model* m) {
    g_test = "batch_bad_arguments";
    volt_batch* b = (volt_batch*)0x1;
    volt_batch_destroy(NULL);
    CHECK(volt_batch_create(NULL, NULL, &b) == VOLT_INVALID_ARGUMENT && b == (volt_batch*)0x1);
    CHECK(volt_batch_create(m, NULL, NULL) == VOLT_INVALID_ARGUMENT);
    volt_batch_params bp;
    volt_batch_params_init(&bp);
    bp.max_batch = 0;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_INVALID_ARGUMENT && b == NULL);
    CHECK(strstr(volt_last_error_message(), "volt_batch_create") && strstr(volt_last_error_message(), "max_batch 0"));
    volt_batch_params_init(&bp);
    bp.prefill_chunk = 0;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_INVALID_ARGUMENT && strstr(volt_last_error_message(), "prefill_chunk"));
    volt_batch_params_init(&bp);
    bp.memory_budget_bytes = -1;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_INVALID_ARGUMENT && strstr(volt_last_error_message(), "memory_budget_bytes"));
    volt_batch_params_init(&bp);
    bp.max_context = -5;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_INVALID_ARGUMENT && strstr(volt_last_error_message(), "max_context"));
    bp.max_context = 1 << 20; /* above the model's 4096 */
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_INVALID_ARGUMENT && strstr(volt_last_error_message(), "4096"));
    volt_batch_params_init(&bp);
    bp.struct_size = 0;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_INVALID_ARGUMENT && strstr(volt_last_error_message(), "struct_size"));

    CHECK(volt_batch_create(m, NULL, &b) == VOLT_OK && b != NULL);
    if (!b) return;
    const int32_t prompt[3] = {4, 5, 6};
    stream_log none;
    memset(&none, 0, sizeof none);
    int64_t id = 7;
    CHECK(volt_batch_submit(NULL, prompt, 3, NULL, NULL, NULL, &id) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_submit(b, prompt, 3, NULL, NULL, NULL, NULL) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_submit(b, NULL, 3, NULL, on_event, &none, &id) == VOLT_INVALID_ARGUMENT && id == -1);
    CHECK(volt_batch_submit(b, prompt, 0, NULL, on_event, &none, &id) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "empty") != NULL);
    const int32_t bad[3] = {4, 512, 6};
    CHECK(volt_batch_submit(b, bad, 3, NULL, on_event, &none, &id) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "volt_batch_submit") && strstr(volt_last_error_message(), "512"));
    const int32_t negative[2] = {-1, 3};
    CHECK(volt_batch_submit(b, negative, 2, NULL, on_event, &none, &id) == VOLT_INVALID_ARGUMENT);
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.temperature = -1.0f;
    CHECK(volt_batch_submit(b, prompt, 3, &g, on_event, &none, &id) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "temperature") != NULL);
    volt_generate_params_init(&g);
    g.num_stop_ids = 2;
    CHECK(volt_batch_submit(b, prompt, 3, &g, on_event, &none, &id) == VOLT_INVALID_ARGUMENT);
    volt_generate_params_init(&g);
    g.max_new_tokens = -1;
    CHECK(volt_batch_submit(b, prompt, 3, &g, on_event, &none, &id) == VOLT_INVALID_ARGUMENT);
    g.struct_size = 0;
    CHECK(volt_batch_submit(b, prompt, 3, &g, on_event, &none, &id) == VOLT_INVALID_ARGUMENT);
    /* Nothing was queued and no event was sent. */
    CHECK(volt_batch_num_queued(b) == 0 && none.n_tokens == 0 && none.done == 0 && none.errors == 0);
    int64_t left = -1;
    CHECK(volt_batch_step(b, &left) == VOLT_OK && left == 0);

    /* Unknown ids, unfinished requests, unset result structs, NULLs. */
    volt_batch_result r;
    volt_batch_result_init(&r);
    size_t n = 0;
    CHECK(volt_batch_cancel(b, 12345) == VOLT_NOT_FOUND && strstr(volt_last_error_message(), "12345"));
    CHECK(volt_batch_cancel(b, -1) == VOLT_NOT_FOUND);
    CHECK(volt_batch_get_result(b, 12345, &r, NULL, 0, &n) == VOLT_NOT_FOUND);
    CHECK(volt_batch_finished(b, 12345) == 0 && volt_batch_finished(NULL, 0) == 0);
    CHECK(volt_batch_cancel(NULL, 0) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_step(NULL, &left) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_run(NULL) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_num_running(NULL) == 0 && volt_batch_num_queued(NULL) == 0);
    g.struct_size = sizeof g;
    g.max_new_tokens = 3;
    g.temperature = 0.0f;
    CHECK(volt_batch_submit(b, prompt, 3, &g, on_event, &none, &id) == VOLT_OK);
    CHECK(volt_batch_get_result(b, id, &r, NULL, 0, &n) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "has not finished") != NULL);
    CHECK(volt_batch_finished(b, id) == 0);
    CHECK(volt_batch_run(b) == VOLT_OK && volt_batch_finished(b, id) == 1);
    CHECK(volt_batch_get_result(NULL, id, &r, NULL, 0, &n) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_get_result(b, id, NULL, NULL, 0, &n) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_get_result(b, id, &r, NULL, 0, NULL) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_get_result(b, id, &r, NULL, 4, &n) == VOLT_INVALID_ARGUMENT);
    r.struct_size = 0;
    CHECK(volt_batch_get_result(b, id, &r, NULL, 0, &n) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "volt_batch_result_init") != NULL);
    /* Cancelling a finished request changes nothing. */
    CHECK(volt_batch_cancel(b, id) == VOLT_OK);
    volt_batch_result_init(&r);
    CHECK(volt_batch_get_result(b, id, &r, NULL, 0, &n) == VOLT_OK && r.status == VOLT_OK && n == 3);

    /* A callback may not submit, step or release on its own batch. */
    reentry_arg ra = {b, 99, VOLT_OK, id};
    CHECK(volt_batch_submit(b, prompt, 3, &g, on_event_reentering, &ra, &id) == VOLT_OK);
    CHECK(volt_batch_run(b) == VOLT_OK);
    CHECK(ra.reentry == VOLT_INVALID_ARGUMENT && ra.submitted == -1);
    CHECK(volt_batch_num_queued(b) == 0 && volt_batch_finished(b, ra.finished) == 1);
    volt_batch_destroy(b);

    /* A memory budget refuses a request that alone exceeds it, with the numbers; the context refuses a long prompt. */
    volt_batch_params_init(&bp);
    bp.memory_budget_bytes = 1000;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_OK);
    CHECK(volt_batch_submit(b, prompt, 3, &g, NULL, NULL, &id) == VOLT_RESOURCE_EXHAUSTED);
    CHECK(strstr(volt_last_error_message(), "1000 bytes") != NULL);
    volt_batch_destroy(b);
    volt_batch_params_init(&bp);
    bp.max_context = 2;
    CHECK(volt_batch_create(m, &bp, &b) == VOLT_OK);
    CHECK(volt_batch_submit(b, prompt, 3, &g, NULL, NULL, &id) == VOLT_RESOURCE_EXHAUSTED);
    volt_batch_destroy(b);
}

/* Cancel one request from another thread while the others finish: the step thread waits inside request B's second
 * token event until the other thread has called volt_batch_cancel, so B ends exactly there. A request cancelled
 * while queued ends at its first chosen token without a TOKEN event; a nonzero callback return ends its request. */
typedef struct {
    volt_batch* batch;
    int64_t target;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: B saw its 2nd token; 2: the cancel was made */
    volt_status cancel_status;
    stream_log log;
} cancel_arg;

static int32_t on_event_wait_for_cancel(void* ud, const volt_event* e) {
    cancel_arg* a = ud;
    on_event(&a->log, e);
    if (e->type == VOLT_EVENT_TOKEN && a->log.n_tokens == 2) {
        pthread_mutex_lock(&a->mu);
        a->stage = 1;
        pthread_cond_broadcast(&a->cv);
        while (a->stage != 2) pthread_cond_wait(&a->cv, &a->mu);
        pthread_mutex_unlock(&a->mu);
    }
    return 0;
}

static void* cancel_thread(void* p) {
    cancel_arg* a = p;
    pthread_mutex_lock(&a->mu);
    while (a->stage != 1) pthread_cond_wait(&a->cv, &a->mu);
    a->cancel_status = volt_batch_cancel(a->batch, a->target);
    a->stage = 2;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void cancel_arg_init(cancel_arg* a, volt_batch* b) {
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->batch = b;
}

static void cancel_arg_free(cancel_arg* a) {
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
}

static void test_batch_cancel(volt_model* m) {
    g_test = "batch_cancel";
    volt_batch* b = NULL;
    CHECK(volt_batch_create(m, NULL, &b) == VOLT_OK);
    if (!b) return;
    const int32_t pa[4] = {11, 22, 33, 44}, pb[3] = {7, 8, 9}, pc[5] = {100, 200, 300, 400, 500}, pd[2] = {42, 43};
    const volt_generate_params g = greedy_params(10), gb = greedy_params(1000);
    stream_log alone_a, alone_c, log_a, log_c, log_d, log_e;
    CHECK(generate_alone(m, pa, 4, &g, 0, &alone_a));
    CHECK(generate_alone(m, pc, 5, &g, 0, &alone_c));
    memset(&log_a, 0, sizeof log_a);
    memset(&log_c, 0, sizeof log_c);
    memset(&log_d, 0, sizeof log_d);
    memset(&log_e, 0, sizeof log_e);
    log_e.stop_after = 3; /* E's callback stops it after 3 tokens */
    cancel_arg ca;
    cancel_arg_init(&ca, b);
    int64_t a = -1, bid = -1, c = -1, d = -1, e = -1;
    CHECK(volt_batch_submit(b, pa, 4, &g, on_event, &log_a, &a) == VOLT_OK);
    CHECK(volt_batch_submit(b, pb, 3, &gb, on_event_wait_for_cancel, &ca, &bid) == VOLT_OK);
    CHECK(volt_batch_submit(b, pc, 5, &g, on_event, &log_c, &c) == VOLT_OK);
    CHECK(volt_batch_submit(b, pd, 2, &gb, on_event, &log_d, &d) == VOLT_OK);
    CHECK(volt_batch_submit(b, pa, 4, &gb, on_event, &log_e, &e) == VOLT_OK);
    ca.target = bid;
    CHECK(volt_batch_cancel(b, d) == VOLT_OK); /* D: cancelled while queued */
    CHECK(volt_batch_cancel(b, d) == VOLT_OK); /* idempotent */
    pthread_t t;
    pthread_create(&t, NULL, cancel_thread, &ca);
    CHECK(volt_batch_run(b) == VOLT_OK);
    pthread_join(t, NULL);
    CHECK(ca.cancel_status == VOLT_OK);
    /* B stopped at its second token: the cancel was seen right after that token's event. */
    CHECK(ca.log.n_tokens == 2 && ca.log.done == 1 && ca.log.done_last == 1 && ca.log.reason == VOLT_FINISH_CANCELLED);
    volt_batch_result r;
    int32_t out[512];
    size_t n = 0;
    CHECK(batch_result(b, bid, &r, out, &n) == VOLT_OK);
    CHECK(r.status == VOLT_CANCELLED && r.finish_reason == VOLT_FINISH_CANCELLED && n == 2);
    CHECK(strstr(r.message, "volt_batch_cancel") != NULL);
    CHECK(same_ids(out, (int)n, ca.log.ids, 2));
    /* A and C finished as they do alone. */
    CHECK(same_ids(log_a.ids, log_a.n_tokens, alone_a.ids, alone_a.n_tokens) && log_a.reason == VOLT_FINISH_LENGTH);
    CHECK(same_ids(log_c.ids, log_c.n_tokens, alone_c.ids, alone_c.n_tokens) && log_c.done == 1);
    CHECK(batch_result(b, c, &r, out, &n) == VOLT_OK && r.status == VOLT_OK);
    /* D: cancelled while queued, so it never ran: no TOKEN event, no ids, no prompt time. */
    CHECK(log_d.n_tokens == 0 && log_d.done == 1 && log_d.reason == VOLT_FINISH_CANCELLED);
    CHECK(log_d.completion_tokens == 0);
    CHECK(batch_result(b, d, &r, out, &n) == VOLT_OK && r.status == VOLT_CANCELLED && n == 0);
    CHECK(r.prefill_seconds == 0.0 && r.decode_seconds == 0.0 && strstr(r.message, "volt_batch_cancel") != NULL);
    /* E: its callback's nonzero return ended it; its ids are A's first three (same prompt, greedy). */
    CHECK(log_e.n_tokens == 3 && log_e.reason == VOLT_FINISH_CANCELLED);
    CHECK(batch_result(b, e, &r, out, &n) == VOLT_OK && r.status == VOLT_CANCELLED && n == 3);
    CHECK(strstr(r.message, "callback") != NULL && same_ids(out, 3, alone_a.ids, 3));
    cancel_arg_free(&ca);
    volt_batch_destroy(b);
}

/* A request waiting in the queue (max_batch 1) is cancelled from another thread while the stepping thread is inside
 * the running request's token event: the next step ends it without running its prompt (no TOKEN event, no ids,
 * prefill_seconds 0) while the running request goes on, and the request behind it runs as it does alone. */
static void test_batch_cancel_queued_from_thread(volt_model* m) {
    g_test = "batch_cancel_queued_from_thread";
    volt_batch* b = batch_of(m, 1);
    if (!b) return;
    const int32_t pa[4] = {11, 22, 33, 44}, pq[6] = {90, 91, 92, 93, 94, 95}, pn[3] = {5, 6, 7};
    const volt_generate_params g = greedy_params(10);
    stream_log alone_a, alone_n, log_q, log_n;
    CHECK(generate_alone(m, pa, 4, &g, 0, &alone_a));
    CHECK(generate_alone(m, pn, 3, &g, 0, &alone_n));
    memset(&log_q, 0, sizeof log_q);
    memset(&log_n, 0, sizeof log_n);
    cancel_arg ca;
    cancel_arg_init(&ca, b);
    int64_t a = -1, q = -1, nid = -1;
    CHECK(volt_batch_submit(b, pa, 4, &g, on_event_wait_for_cancel, &ca, &a) == VOLT_OK);
    CHECK(volt_batch_submit(b, pq, 6, &g, on_event, &log_q, &q) == VOLT_OK);
    CHECK(volt_batch_submit(b, pn, 3, &g, on_event, &log_n, &nid) == VOLT_OK);
    ca.target = q;
    pthread_t t;
    pthread_create(&t, NULL, cancel_thread, &ca);
    int64_t left = -1;
    CHECK(volt_batch_step(b, &left) == VOLT_OK); /* A's first two tokens; the cancel is made inside the second */
    pthread_join(t, NULL);
    CHECK(ca.cancel_status == VOLT_OK && ca.stage == 2);
    CHECK(left == 3 && volt_batch_num_running(b) == 1 && volt_batch_num_queued(b) == 2 && log_q.done == 0);
    CHECK(volt_batch_step(b, &left) == VOLT_OK); /* applies the cancel: Q ends, A goes on, N still waits for A */
    CHECK(log_q.done == 1 && log_q.done_last == 1 && log_q.n_tokens == 0 && log_q.reason == VOLT_FINISH_CANCELLED);
    CHECK(left == 2 && volt_batch_num_running(b) == 1 && volt_batch_num_queued(b) == 1 && ca.log.done == 0);
    volt_batch_result r;
    int32_t out[512];
    size_t n = 0;
    CHECK(batch_result(b, q, &r, out, &n) == VOLT_OK && r.status == VOLT_CANCELLED && n == 0);
    CHECK(r.finish_reason == VOLT_FINISH_CANCELLED && r.completion_tokens == 0 && r.prompt_tokens == 6);
    CHECK(r.prefill_seconds == 0.0 && r.decode_seconds == 0.0 && strstr(r.message, "volt_batch_cancel") != NULL);
    CHECK(volt_batch_run(b) == VOLT_OK);
    CHECK(log_q.n_tokens == 0 && log_q.done == 1); /* nothing more for Q */
    CHECK(same_ids(ca.log.ids, ca.log.n_tokens, alone_a.ids, alone_a.n_tokens) && ca.log.reason == VOLT_FINISH_LENGTH);
    CHECK(same_ids(log_n.ids, log_n.n_tokens, alone_n.ids, alone_n.n_tokens) && log_n.done == 1);
    cancel_arg_free(&ca);
    volt_batch_destroy(b);
}

/* volt_batch_release forgets a finished request (later calls on its id: NOT_FOUND saying so), refuses an unfinished
 * one, and ids are never reused. */
static void test_batch_release(volt_model* m) {
    g_test = "batch_release";
    volt_batch* b = batch_of(m, 64);
    if (!b) return;
    const int32_t prompt[3] = {21, 22, 23};
    const volt_generate_params g = greedy_params(4);
    stream_log alone;
    CHECK(generate_alone(m, prompt, 3, &g, 0, &alone));
    int64_t a = -1, c = -1;
    CHECK(volt_batch_submit(b, prompt, 3, &g, NULL, NULL, &a) == VOLT_OK);
    CHECK(volt_batch_release(b, a) == VOLT_INVALID_ARGUMENT && strstr(volt_last_error_message(), "not finished"));
    CHECK(volt_batch_release(NULL, a) == VOLT_INVALID_ARGUMENT);
    CHECK(volt_batch_release(b, 777) == VOLT_NOT_FOUND && strstr(volt_last_error_message(), "777"));
    CHECK(volt_batch_release(b, -3) == VOLT_NOT_FOUND);
    CHECK(volt_batch_run(b) == VOLT_OK);
    volt_batch_result r;
    int32_t out[512];
    size_t n = 0;
    CHECK(batch_result(b, a, &r, out, &n) == VOLT_OK && same_ids(out, (int)n, alone.ids, alone.n_tokens));
    CHECK(volt_batch_release(b, a) == VOLT_OK);
    CHECK(batch_result(b, a, &r, out, &n) == VOLT_NOT_FOUND && strstr(volt_last_error_message(), "released"));
    CHECK(volt_batch_release(b, a) == VOLT_NOT_FOUND && strstr(volt_last_error_message(), "released"));
    CHECK(volt_batch_cancel(b, a) == VOLT_NOT_FOUND && strstr(volt_last_error_message(), "released"));
    CHECK(volt_batch_finished(b, a) == 0);
    /* A cancelled request is released like any finished one; a new request never gets a released id. */
    CHECK(volt_batch_submit(b, prompt, 3, &g, NULL, NULL, &c) == VOLT_OK && c > a);
    CHECK(volt_batch_cancel(b, c) == VOLT_OK);
    CHECK(volt_batch_release(b, c) == VOLT_INVALID_ARGUMENT); /* the cancel takes effect at the next step */
    CHECK(volt_batch_run(b) == VOLT_OK && volt_batch_finished(b, c) == 1);
    CHECK(volt_batch_release(b, c) == VOLT_OK);
    int64_t d = -1;
    CHECK(volt_batch_submit(b, prompt, 3, &g, NULL, NULL, &d) == VOLT_OK && d > c);
    CHECK(volt_batch_run(b) == VOLT_OK);
    CHECK(batch_result(b, d, &r, out, &n) == VOLT_OK && same_ids(out, (int)n, alone.ids, alone.n_tokens));
    volt_batch_destroy(b);
}

/* A thread cancels requests (known, not yet submitted, finished) while the main thread submits and steps: every
 * request ends with exactly one last event, and each is either what it gives alone or a cancelled prefix of it. */
enum { kRaceRequests = 12 };
typedef struct {
    volt_batch* batch;
    atomic_int stop;
    int not_found;
} race_arg;

static void* cancel_some(void* p) {
    race_arg* a = p;
    unsigned seed = 12345;
    while (!atomic_load(&a->stop)) {
        seed = seed * 1103515245u + 12345u;
        const int64_t id = (int64_t)((seed >> 16) % (2 * kRaceRequests));
        if (id % 3 == 0 && volt_batch_cancel(a->batch, id) == VOLT_NOT_FOUND) a->not_found++;
    }
    return NULL;
}

static void test_batch_cancel_race(volt_model* m) {
    g_test = "batch_cancel_race";
    volt_batch* b = batch_of(m, 4);
    if (!b) return;
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.max_new_tokens = 20;
    g.seed = 77;
    int32_t prompts[kRaceRequests][3];
    stream_log alone[kRaceRequests], got[kRaceRequests];
    int64_t ids[kRaceRequests];
    memset(got, 0, sizeof got);
    for (int k = 0; k < kRaceRequests; ++k) {
        prompts[k][0] = k + 1, prompts[k][1] = 3 * k + 2, prompts[k][2] = 200 + k;
        CHECK(generate_alone(m, prompts[k], 3, &g, 0, &alone[k]));
    }
    race_arg ra;
    ra.batch = b;
    atomic_init(&ra.stop, 0);
    ra.not_found = 0;
    pthread_t t;
    pthread_create(&t, NULL, cancel_some, &ra);
    int64_t left = 1;
    for (int k = 0; k < kRaceRequests; ++k) {
        CHECK(volt_batch_submit(b, prompts[k], 3, &g, on_event, &got[k], &ids[k]) == VOLT_OK);
        CHECK(volt_batch_step(b, &left) == VOLT_OK);
    }
    CHECK(volt_batch_run(b) == VOLT_OK);
    atomic_store(&ra.stop, 1);
    pthread_join(t, NULL);
    for (int k = 0; k < kRaceRequests; ++k) {
        CHECK(got[k].done == 1 && got[k].done_last == 1 && got[k].errors == 0);
        volt_batch_result r;
        int32_t out[512];
        size_t n = 0;
        CHECK(batch_result(b, ids[k], &r, out, &n) == VOLT_OK);
        if (r.status == VOLT_OK) {
            CHECK(same_ids(out, (int)n, alone[k].ids, alone[k].n_tokens));
        } else {
            CHECK(r.status == VOLT_CANCELLED && ids[k] % 3 == 0);
            CHECK(n <= (size_t)alone[k].n_tokens && memcmp(out, alone[k].ids, n * sizeof(int32_t)) == 0);
        }
        CHECK(same_ids(got[k].ids, got[k].n_tokens, out, got[k].n_tokens)); /* the events: a prefix of the ids */
    }
    volt_batch_destroy(b);
}

/* Structs of an older, smaller size: params read up to struct_size (the rest default), results written up to it. */
static void test_batch_old_structs(volt_model* m) {
    g_test = "batch_old_structs";
    struct { uint32_t struct_size; int32_t max_batch; } small_params = {sizeof small_params, 2};
    volt_batch* b = NULL;
    CHECK(volt_batch_create(m, (const volt_batch_params*)&small_params, &b) == VOLT_OK);
    if (!b) return;
    /* The v0.1 prefix of volt_generate_params up to temperature: greedy, max_new_tokens 5, no stop ids. */
    struct { uint32_t struct_size; int64_t max_new_tokens; float temperature; } old_g = {0, 5, 0.0f};
    old_g.struct_size = (uint32_t)(offsetof(volt_generate_params, temperature) + sizeof(float));
    const int32_t prompt[3] = {9, 10, 11};
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.max_new_tokens = 5;
    g.temperature = 0.0f;
    stream_log alone;
    CHECK(generate_alone(m, prompt, 3, &g, 0, &alone));
    int64_t id = -1;
    CHECK(volt_batch_submit(b, prompt, 3, (const volt_generate_params*)&old_g, NULL, NULL, &id) == VOLT_OK);
    CHECK(volt_batch_run(b) == VOLT_OK);
    struct {
        uint32_t struct_size;
        volt_status status;
        const char* message;
        int32_t sentinel;
    } small = {offsetof(volt_batch_result, finish_reason), -7, NULL, 0x5eed};
    int32_t out[8];
    size_t n = 0;
    CHECK(volt_batch_get_result(b, id, (volt_batch_result*)&small, out, 8, &n) == VOLT_OK);
    CHECK(small.status == VOLT_OK && small.message != NULL && small.sentinel == 0x5eed);
    CHECK(small.struct_size == offsetof(volt_batch_result, finish_reason));
    CHECK(same_ids(out, (int)n, alone.ids, alone.n_tokens));
    volt_batch_destroy(b);
}

/* A VL model's batch: text ids run (as a session gives them); the image token is refused, naming it. */
static void test_batch_vl(void) {
    g_test = "batch_vl";
    volt_model* m = load_model_from(g_vl_dir);
    CHECK(m != NULL);
    if (!m) return;
    int32_t image_id = -1;
    size_t n = 0;
    CHECK(volt_tokenize(m, "<image>", 7, 0, &image_id, 1, &n) == VOLT_OK && n == 1);
    volt_batch* b = NULL;
    CHECK(volt_batch_create(m, NULL, &b) == VOLT_OK);
    const int32_t with_image[3] = {5, image_id, 6}, text[3] = {5, 7, 6};
    int64_t id = -1;
    CHECK(volt_batch_submit(b, with_image, 3, NULL, NULL, NULL, &id) == VOLT_INVALID_ARGUMENT);
    CHECK(strstr(volt_last_error_message(), "prompt_ids[1]") && strstr(volt_last_error_message(), "image token"));
    volt_generate_params g;
    volt_generate_params_init(&g);
    g.max_new_tokens = 3;
    g.temperature = 0.0f;
    stream_log alone, got;
    memset(&got, 0, sizeof got);
    CHECK(generate_alone(m, text, 3, &g, 0, &alone));
    CHECK(volt_batch_submit(b, text, 3, &g, on_event, &got, &id) == VOLT_OK);
    CHECK(volt_batch_run(b) == VOLT_OK);
    CHECK(got.done == 1 && same_ids(got.ids, got.n_tokens, alone.ids, alone.n_tokens));
    volt_batch_destroy(b);
    volt_model_destroy(m);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [VL_CHAT_MODEL_DIR IMAGE]\n", argv[0]);
        return 2;
    }
    snprintf(g_model_dir, sizeof g_model_dir, "%s", argv[1]);
    if (argc >= 4) {
        snprintf(g_vl_dir, sizeof g_vl_dir, "%s", argv[2]);
        snprintf(g_image, sizeof g_image, "%s", argv[3]);
    }
    test_version();
    test_null_and_bad_arguments();
    test_load_info_and_old_structs();
    volt_model* m = load_model();
    if (!m) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    test_logits_match_reference(m);
    test_greedy_generation_matches_reference(m);
    test_cancel_and_stop(m);
    test_no_tokenizer(m);
    test_threads(m);
    test_batch_matches_alone(m);
    test_batch_bad_arguments(m);
    test_batch_cancel(m);
    test_batch_cancel_queued_from_thread(m);
    test_batch_release(m);
    test_batch_cancel_race(m);
    test_batch_old_structs(m);
    if (g_vl_dir[0]) test_images(m);
    if (g_vl_dir[0]) test_batch_vl();
    volt_model_destroy(m);
    test_log_hook();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
