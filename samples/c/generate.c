/* A minimal C program over volt.h: load a model, generate a continuation of a prompt, stream it to stdout.
 *
 *   generate MODEL_DIR "prompt text"     (the model directory needs tokenizer.json)
 *   generate MODEL_DIR --ids 1 2 3       (token ids; prints the new ids)
 *
 * Build against an installed Volt:  cc generate.c $(pkg-config --cflags --libs volt) -o generate */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volt.h"

static int32_t print_event(void* user_data, const volt_event* e) {
    int print_ids = *(int*)user_data;
    if (e->type == VOLT_EVENT_TOKEN) {
        if (print_ids && e->token_id >= 0) printf("%d ", e->token_id);
        else if (!print_ids) fwrite(e->text, 1, e->text_len, stdout);
        fflush(stdout);
    } else if (e->type == VOLT_EVENT_DONE) {
        fprintf(stderr, "\n[%lld prompt tokens, %lld new, %.1f tok/s]\n", (long long)e->prompt_tokens,
                (long long)e->completion_tokens, e->tokens_per_second);
    } else if (e->type == VOLT_EVENT_ERROR) {
        fprintf(stderr, "\nerror: %.*s\n", (int)e->text_len, e->text);
    }
    return 0;
}

static int die(const char* what, volt_status s) {
    fprintf(stderr, "%s: %s: %s\n", what, volt_status_name(s), volt_last_error_message());
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR \"prompt\" | MODEL_DIR --ids ID...\n", argv[0]);
        return 2;
    }
    volt_model_params mp;
    volt_model_params_init(&mp);
    mp.path = argv[1];
    volt_model* model = NULL;
    volt_status s = volt_model_load(&mp, &model);
    if (s != VOLT_OK) return die("load", s);

    int print_ids = strcmp(argv[2], "--ids") == 0;
    int32_t* ids = NULL;
    size_t n = 0;
    if (print_ids) {
        n = (size_t)(argc - 3);
        ids = malloc((n ? n : 1) * sizeof *ids);
        for (size_t i = 0; i < n; ++i) ids[i] = (int32_t)atoi(argv[3 + i]);
    } else {
        s = volt_tokenize(model, argv[2], strlen(argv[2]), 0, NULL, 0, &n); /* size query */
        if (s != VOLT_OK) return die("tokenize", s);
        ids = malloc((n ? n : 1) * sizeof *ids);
        s = volt_tokenize(model, argv[2], strlen(argv[2]), 0, ids, n, &n);
        if (s != VOLT_OK) return die("tokenize", s);
    }

    volt_session* session = NULL;
    s = volt_session_create(model, NULL, &session);
    if (s != VOLT_OK) return die("session", s);
    volt_generate_params gp;
    volt_generate_params_init(&gp);
    gp.max_new_tokens = 16;
    gp.temperature = 0.0f;
    s = volt_session_generate(session, ids, n, &gp, print_event, &print_ids);
    free(ids);
    volt_session_destroy(session);
    volt_model_destroy(model);
    if (s != VOLT_OK) return die("generate", s);
    return 0;
}
