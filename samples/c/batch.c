/* A minimal C program over volt.h's continuous batching: several prompts generate together on one model (each gets
 * what it would get alone), then each answer is printed.
 *
 *   batch MODEL_DIR [--max-new-tokens N] PROMPT...    a PROMPT is text (the model directory needs tokenizer.json)
 *                                                     or token ids written ids:1,2,3 (the new ids are printed)
 *
 * Build against an installed Volt:  cc batch.c $(pkg-config --cflags --libs volt) -o batch */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volt.h"

static int die(const char* what, volt_status s) {
    fprintf(stderr, "%s: %s: %s\n", what, volt_status_name(s), volt_last_error_message());
    return 1;
}

/* One prompt's ids: "ids:1,2,3", or the text through the tokenizer. Returns a malloc'd array (NULL after printing
 * the error). */
static int32_t* prompt_ids(volt_model* model, const char* arg, size_t* n) {
    if (strncmp(arg, "ids:", 4) == 0) {
        *n = 0;
        int32_t* ids = malloc(strlen(arg) * sizeof *ids);
        for (const char* p = arg + 4; *p;) {
            char* end = NULL;
            ids[(*n)++] = (int32_t)strtol(p, &end, 10);
            if (end == p || (*end && *end != ',')) {
                fprintf(stderr, "%s: not a list of token ids (ids:1,2,3)\n", arg);
                free(ids);
                return NULL;
            }
            p = *end == ',' ? end + 1 : end;
        }
        return ids;
    }
    volt_status s = volt_tokenize(model, arg, strlen(arg), 0, NULL, 0, n); /* size query */
    int32_t* ids = s == VOLT_OK ? malloc((*n ? *n : 1) * sizeof *ids) : NULL;
    if (ids) s = volt_tokenize(model, arg, strlen(arg), 0, ids, *n, n);
    if (s != VOLT_OK) {
        die(arg, s);
        free(ids);
        return NULL;
    }
    return ids;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR [--max-new-tokens N] PROMPT...\n", argv[0]);
        return 2;
    }
    int first = 2;
    long max_new_tokens = 16;
    if (strcmp(argv[2], "--max-new-tokens") == 0 && argc > 4) {
        max_new_tokens = strtol(argv[3], NULL, 10);
        first = 4;
    }
    volt_model_params mp;
    volt_model_params_init(&mp);
    mp.path = argv[1];
    volt_model* model = NULL;
    volt_status s = volt_model_load(&mp, &model);
    if (s != VOLT_OK) return die("load", s);

    volt_batch_params bp;
    volt_batch_params_init(&bp);
    bp.max_batch = 8; /* more prompts wait in order */
    volt_batch* batch = NULL;
    s = volt_batch_create(model, &bp, &batch);
    if (s != VOLT_OK) return die("batch", s);
    volt_generate_params gp;
    volt_generate_params_init(&gp);
    gp.max_new_tokens = max_new_tokens;
    gp.temperature = 0.0f;
    const int count = argc - first;
    int64_t* requests = malloc((size_t)count * sizeof *requests);
    for (int i = 0; i < count; ++i) {
        size_t n = 0;
        int32_t* ids = prompt_ids(model, argv[first + i], &n);
        if (!ids) return 1;
        s = volt_batch_submit(batch, ids, n, &gp, NULL, NULL, &requests[i]); /* ids are copied */
        free(ids);
        if (s != VOLT_OK) return die(argv[first + i], s);
    }
    s = volt_batch_run(batch);
    if (s != VOLT_OK) return die("run", s);

    for (int i = 0; i < count; ++i) {
        volt_batch_result r;
        volt_batch_result_init(&r);
        size_t n = 0;
        s = volt_batch_get_result(batch, requests[i], &r, NULL, 0, &n); /* size query */
        if (s != VOLT_OK) return die("result", s);
        int32_t* ids = malloc((n ? n : 1) * sizeof *ids);
        s = volt_batch_get_result(batch, requests[i], &r, ids, n, &n);
        if (s != VOLT_OK) return die("result", s);
        printf("request %d:", i);
        if (r.status != VOLT_OK) {
            printf(" %s: %s\n", volt_status_name(r.status), r.message);
        } else if (strncmp(argv[first + i], "ids:", 4) == 0) {
            for (size_t k = 0; k < n; ++k) printf(" %d", ids[k]);
            printf("\n");
        } else {
            size_t len = 0;
            volt_detokenize(model, ids, n, 1, NULL, 0, &len);
            char* text = malloc(len + 1);
            volt_detokenize(model, ids, n, 1, text, len + 1, &len);
            printf(" %s\n", text);
            free(text);
        }
        fprintf(stderr, "[request %d: %lld prompt tokens in %.3f s, %lld new at %.1f tok/s]\n", i,
                (long long)r.prompt_tokens, r.prefill_seconds, (long long)r.completion_tokens, r.tokens_per_second);
        free(ids);
    }
    free(requests);
    volt_batch_destroy(batch);
    volt_model_destroy(model);
    return 0;
}
