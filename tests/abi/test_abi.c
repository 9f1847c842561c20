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
    int phases[16];
    int n;
    int abort_at;
} progress_log;

static int32_t on_progress(void* ud, volt_load_phase phase, float fraction) {
    progress_log* log = ud;
    if (log->n < 16) log->phases[log->n++] = phase;
    (void)fraction;
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
    progress_log log = {{0}, 0, -1};
    volt_model_params p;
    volt_model_params_init(&p);
    p.path = g_model_dir;
    p.progress = on_progress;
    p.progress_user_data = &log;
    CHECK(volt_model_load(&p, &m) == VOLT_OK);
    CHECK(log.n >= 4 && log.phases[0] == VOLT_LOAD_CONFIG && log.phases[log.n - 1] == VOLT_LOAD_DONE);
    for (int i = 1; i < log.n; ++i) CHECK(log.phases[i] >= log.phases[i - 1]);
    volt_model_destroy(m);
    progress_log abort_log = {{0}, 0, VOLT_LOAD_WEIGHTS};
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

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    snprintf(g_model_dir, sizeof g_model_dir, "%s", argv[1]);
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
    volt_model_destroy(m);
    test_log_hook();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
