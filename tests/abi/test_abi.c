/* ABI tests for volt.h, in C11 as an outside program would use the library (linked against libvolt.so).
 * Model: tests/data/tiny-text (a MiniMax-Text-01 fixture with reference logits and greedy chains made by
 * tools/make_text_fixture.py from transformers). Prints "N passed, M failed" and exits nonzero on any failure. */
#include <math.h>
#include <pthread.h>
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

static volt_model* load_model(void) {
    volt_model_params p;
    volt_model_params_init(&p);
    p.path = g_model_dir;
    volt_model* m = NULL;
    volt_status s = volt_model_load(&p, &m);
    if (s != VOLT_OK) fprintf(stderr, "load failed: %s\n", volt_last_error_message());
    return m;
}

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
    /* Several GPUs must be consecutive ids; checked before any GPU is touched (also on CPU-only machines). */
    {
        const int32_t scattered[2] = {0, 2};
        volt_model_params g;
        volt_model_params_init(&g);
        g.path = g_model_dir;
        g.device = VOLT_DEVICE_CUDA;
        g.gpu_ids = scattered;
        g.num_gpus = 2;
        CHECK(volt_model_load(&g, &m) == VOLT_UNIMPLEMENTED);
        CHECK(strstr(volt_last_error_message(), "consecutive") != NULL);
        g.num_gpus = -1;
        CHECK(volt_model_load(&g, &m) == VOLT_INVALID_ARGUMENT);
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

    volt_model_params p;
    volt_model_params_init(&p);
    p.path = g_vl_dir;
    volt_model* m = NULL;
    CHECK(volt_model_load(&p, &m) == VOLT_OK);
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
    if (g_vl_dir[0]) test_images(m);
    volt_model_destroy(m);
    test_log_hook();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
