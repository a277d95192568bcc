/* examples/romeo.c: greedy text generation with a kiln-compiled model, through its C API.
 *
 * The model is models/gpt2.yaml at the size of the bundled character-level GPT-2
 * (demo/gpt2-shakespeare-char).  The program encodes a prompt with the character vocabulary,
 * runs the model over it, and then appends the most likely next character, one at a time,
 * printing the text as it grows.  The model keeps the keys and values of the characters it
 * has seen (its cache), so each step runs the new character alone, at position `past`; once
 * the text is longer than the model's 64-character context, each step runs the last 64
 * characters again from position 0 (a sliding window).  See examples/README.md for how to
 * build it.
 *
 *   ./romeo MODEL_DIR [N] [PROMPT]      (N new characters, default 400; prompt "ROMEO:\n")
 */
#include "gpt2.h"           // written by `kiln emit`: gpt2_open, gpt2_forward, gpt2_close
#include "kiln_tok.h"       // the runtime's tokenizers

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CONTEXT = 64, VOCAB = 65 };  // n_positions and vocab_size the model was built with

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL_DIR [N] [PROMPT]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int n_new = argc > 2 ? atoi(argv[2]) : 400;
    const char *prompt = argc > 3 ? argv[3] : "ROMEO:\n";
    char err[512], path[4096];

    kiln_tokenizer *tok = kiln_tok_load(dir, err, sizeof err);     // finds vocab.json there
    if (!tok) {
        fprintf(stderr, "romeo: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    kiln_instance *model = gpt2_open(path, 1, err, sizeof err);
    if (!model) {
        fprintf(stderr, "romeo: %s\n", err);
        kiln_tok_free(tok);
        return 1;
    }

    kiln_tok_ids ids = {0};
    int status = 1;
    float *logits = malloc(sizeof(float) * CONTEXT * VOCAB);
    int32_t *text = NULL;   // the prompt's ids, then each new one
    size_t n = 0;
    if (!logits || n_new < 0 ||
        kiln_tok_encode(tok, prompt, strlen(prompt), 0, &ids, err, sizeof err) < 0 ||
        ids.n == 0 || !(text = malloc(sizeof(int32_t) * (ids.n + (size_t)n_new)))) {
        fprintf(stderr, "romeo: cannot start from the prompt: %s\n", err);
        goto done;
    }
    memcpy(text, ids.ids, sizeof(int32_t) * ids.n);
    n = ids.n;
    fputs(prompt, stdout);
    size_t w0 = 0, cached = 0;      // the cache holds the keys and values of text[w0, w0 + cached)
    for (int step = 0; step < n_new; step++) {
        int64_t past, seq;
        if (cached > 0 && n - w0 <= CONTEXT) {     // only what the cache lacks
            past = (int64_t)cached;
            seq = (int64_t)(n - w0 - cached);
        } else {                                    // the start, or the window slides
            past = 0;
            seq = n < CONTEXT ? (int64_t)n : CONTEXT;
            w0 = n - (size_t)seq;
        }
        if (gpt2_forward(model, 1, seq, past, text + n - (size_t)seq, logits, err,
                         sizeof err) != 0) {
            fprintf(stderr, "romeo: %s\n", err);
            goto done;
        }
        cached = (size_t)(past + seq);
        const float *last = logits + (seq - 1) * VOCAB;     // the next character's logits
        int32_t best = 0;
        for (int32_t v = 1; v < VOCAB; v++)
            if (last[v] > last[best])
                best = v;
        size_t len;
        const char *piece = kiln_tok_piece(tok, best, &len);
        fwrite(piece, 1, len, stdout);
        text[n++] = best;
    }
    putchar('\n');
    fflush(stdout);
    status = 0;
done:
    free(logits);
    free(text);
    kiln_tok_ids_free(&ids);
    gpt2_close(model);
    kiln_tok_free(tok);
    return status;
}
