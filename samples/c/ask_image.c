/* A minimal C program over volt.h: load a MiniMax-VL-01 model, ask a question about an image, stream the answer.
 *
 *   ask_image MODEL_DIR IMAGE "question" [max_new_tokens]
 *
 * Build against an installed Volt:  cc ask_image.c $(pkg-config --cflags --libs volt) -o ask_image */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volt.h"

static int32_t print_event(void* user_data, const volt_event* e) {
    (void)user_data;
    if (e->type == VOLT_EVENT_TOKEN) {
        fwrite(e->text, 1, e->text_len, stdout); /* complete UTF-8 characters only */
        fflush(stdout);
    } else if (e->type == VOLT_EVENT_DONE) {
        fprintf(stderr, "\n[%lld prompt tokens in %.2f s, %lld new at %.1f tok/s]\n", (long long)e->prompt_tokens,
                e->prefill_seconds, (long long)e->completion_tokens, e->tokens_per_second);
    } else if (e->type == VOLT_EVENT_ERROR) {
        fprintf(stderr, "\nerror: %.*s\n", (int)e->text_len, e->text);
    }
    return 0; /* nonzero would stop the answer */
}

static int die(const char* what, volt_status s) {
    fprintf(stderr, "%s: %s: %s\n", what, volt_status_name(s), volt_last_error_message());
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE \"question\" [max_new_tokens]\n", argv[0]);
        return 2;
    }
    volt_model_params mp;
    volt_model_params_init(&mp);
    mp.path = argv[1];
    volt_model* model = NULL;
    volt_status s = volt_model_load(&mp, &model);
    if (s != VOLT_OK) return die("load", s);

    volt_image* image = NULL;
    s = volt_image_load_file(argv[2], &image);
    if (s != VOLT_OK) return die("image", s);
    int64_t image_tokens = 0;
    s = volt_model_image_tokens(model, image, &image_tokens); /* its cost, before anything is computed */
    if (s != VOLT_OK) return die("image tokens", s);
    fprintf(stderr, "[%s: %lld tokens]\n", argv[2], (long long)image_tokens);

    volt_session* session = NULL;
    s = volt_session_create(model, NULL, &session);
    if (s != VOLT_OK) return die("session", s);
    s = volt_session_attach_image(session, image, NULL); /* copied: the handle can go now */
    volt_image_destroy(image);
    if (s != VOLT_OK) return die("attach", s);
    s = volt_session_add_message(session, VOLT_ROLE_USER, argv[3], strlen(argv[3]));
    if (s != VOLT_OK) return die("message", s);

    volt_generate_params gp;
    volt_generate_params_init(&gp);
    gp.max_new_tokens = argc > 4 ? atoi(argv[4]) : 128;
    gp.temperature = 0.0f;
    s = volt_session_reply(session, &gp, print_event, NULL);
    volt_session_destroy(session);
    volt_model_destroy(model);
    if (s != VOLT_OK) return die("reply", s);
    return 0;
}
