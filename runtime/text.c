/* text.c: the text front ends of a model binary: argument parsing and GPT-style generation.
 *
 *   ./gpt2 --weights W --tokenizer DIR -p "Once upon a time" [-n 64] [--temp 0.8]
 *          [--top-k 40] [--top-p 0.95] [--repeat-penalty 1.1] [--seed 7] [--ids]
 *          [--interactive] [--threads N]
 *
 * kiln_main calls kiln_text_main when the command line asks for text (kiln_text_wanted).
 * The spec's `text:` roles (kiln_model.text) say which input takes the ids and which output
 * holds the logits.  Generation runs the model through the C API (api.c): a prefill over the
 * prompt, then one forward per new token.  A model with a state (a key/value cache: spec
 * `state:`) runs each new token alone, at position `past`, attending over the cache; a model
 * without one reruns the forward over the whole text.  When the text outgrows the model's
 * context (the bound of seq, n_positions for GPT-2) the window slides: each token is then a
 * prefill of the last `context` tokens, as if the older ones had never been
 * (docs/runtime.md).  Text streams to stdout as it is produced; a line of figures goes to
 * stderr at the end.  Fill-mask and embeddings are in text_bert.c.
 */
#include "kiln_text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kiln_text_error(const kiln_model *m, int status, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: error: ", m->name ? m->name : "model");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

bool kiln_text_wanted(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "-p") || !strcmp(s, "--prompt") || !strcmp(s, "--text") ||
            !strcmp(s, "--embed") || !strcmp(s, "--interactive") || !strcmp(s, "--input-file"))
            return true;
    }
    return false;
}

static void print_text_usage(FILE *f, const char *prog) {
    fprintf(f,
            "usage: %s --weights W.safetensors --tokenizer PATH -p PROMPT [options]   (generate)\n"
            "       %s --weights W.safetensors --tokenizer PATH --text \"... [MASK] ...\"  (fill-mask)\n"
            "       %s --weights W.safetensors --tokenizer PATH --embed (--text T | --input-file F)\n"
            "          [--pool mean|cls] [--output EMB.npy]                          (embeddings)\n"
            "generation options:\n"
            "  -n N                  tokens to generate (default 64); stops early at end-of-text\n"
            "  --temp T              temperature; 0 = greedy (default 0.8)\n"
            "  --top-k K             sample among the K most likely tokens (default 40; 0 = all)\n"
            "  --top-p P             ... and the smallest set reaching probability P (default 0.95)\n"
            "  --repeat-penalty R    divide the logits of tokens already in the text by R (default 1)\n"
            "  --seed S              random seed (default 1): same seed, same text\n"
            "  --ids                 print the generated token ids instead of text\n"
            "  --interactive         read a prompt per line from stdin; the context carries over\n"
            "fill-mask: --top N     candidates per [MASK] (default 5)\n"
            "  --threads N           worker threads (default: $KILN_NUM_THREADS or the cores)\n"
            "Text goes to stdout; figures (prompt tokens, prefill ms, ms/token, tokens/s) to stderr.\n",
            prog, prog, prog);
}

// Parse a number; false if `s` is not entirely one.
static bool parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno)
        return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (!*s || *end || errno || v != v)
        return false;
    *out = v;
    return true;
}

static int usage(const kiln_model *m, const char *fmt, const char *arg) {
    fprintf(stderr, "%s: error: ", m->name ? m->name : "model");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (run with --help for usage)\n");
    return 2;
}

// Fills a; returns 0, 2 (usage error, printed) or -1 (--help, printed).
static int parse_text_args(int argc, char **argv, const kiln_model *m, kiln_text_args *a) {
    memset(a, 0, sizeof *a);
    a->n_new = 64;
    a->sample.temperature = 0.8f;
    a->sample.top_k = 40;
    a->sample.top_p = 0.95f;
    a->sample.repetition_penalty = 1.0f;
    a->sample.seed = 1;
    a->top = 5;
    a->pool = "mean";
    char name[64];
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *eq = NULL, *inline_value = NULL;
        if (!strncmp(s, "--", 2) && (eq = strchr(s, '=')) && (size_t)(eq - s) < sizeof name) {
            memcpy(name, s, (size_t)(eq - s));     // --option=value
            name[eq - s] = '\0';
            s = name;
            inline_value = eq + 1;
        }
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            print_text_usage(stdout, argv[0]);
            return -1;
        }
        bool flag = !strcmp(s, "--ids") || !strcmp(s, "--interactive") || !strcmp(s, "--embed");
        if (flag && inline_value)
            return usage(m, "%s takes no value", s);
        if (flag) {
            if (!strcmp(s, "--ids"))
                a->print_ids = true;
            else if (!strcmp(s, "--interactive"))
                a->interactive = true;
            else
                a->embed = true;
            continue;
        }
        if (!inline_value && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)))
            return usage(m, "%s needs a value", s);
        const char *v = inline_value ? inline_value : argv[++i];
        long n;
        float f;
        if (!strcmp(s, "--weights"))
            a->weights = v;
        else if (!strcmp(s, "--tokenizer"))
            a->tokenizer = v;
        else if (!strcmp(s, "-p") || !strcmp(s, "--prompt"))
            a->prompt = v;
        else if (!strcmp(s, "--text"))
            a->text = v;
        else if (!strcmp(s, "--input-file"))
            a->input_file = v;
        else if (!strcmp(s, "--output"))
            a->output = v;
        else if (!strcmp(s, "--pool"))
            a->pool = v;
        else if (!strcmp(s, "-n")) {
            if (!parse_long(v, &n) || n < 0 || n > 1000000)
                return usage(m, "-n wants a whole number from 0 to 1000000, found '%s'", v);
            a->n_new = (int)n;
        } else if (!strcmp(s, "--temp")) {
            if (!parse_float(v, &f) || f < 0 || f > 100)
                return usage(m, "--temp wants a number from 0 to 100, found '%s'", v);
            a->sample.temperature = f;
        } else if (!strcmp(s, "--top-k")) {
            if (!parse_long(v, &n) || n < 0 || n > INT32_MAX)
                return usage(m, "--top-k wants a whole number >= 0, found '%s'", v);
            a->sample.top_k = (int32_t)n;
        } else if (!strcmp(s, "--top-p")) {
            if (!parse_float(v, &f) || f < 0 || f > 1)
                return usage(m, "--top-p wants a number from 0 to 1, found '%s'", v);
            a->sample.top_p = f;
        } else if (!strcmp(s, "--repeat-penalty")) {
            if (!parse_float(v, &f) || f < 1 || f > 100)
                return usage(m, "--repeat-penalty wants a number from 1 to 100, found '%s'", v);
            a->sample.repetition_penalty = f;
        } else if (!strcmp(s, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long seed = strtoull(v, &end, 10);
            if (!*v || *end || errno || *v == '-')
                return usage(m, "--seed wants a whole number >= 0, found '%s'", v);
            a->sample.seed = seed;
        } else if (!strcmp(s, "--top")) {
            if (!parse_long(v, &n) || n < 1 || n > 1000)
                return usage(m, "--top wants a whole number from 1 to 1000, found '%s'", v);
            a->top = (int)n;
        } else if (!strcmp(s, "--threads")) {
            if (!parse_long(v, &n) || n < 1 || n > 256)
                return usage(m, "--threads wants a whole number from 1 to 256, found '%s'", v);
            a->threads = (int)n;
        } else {
            return usage(m, "unknown option '%s' for a text job", s);
        }
    }
    if (!a->weights)
        return usage(m, "%s", "missing --weights FILE.safetensors");
    if (!a->tokenizer)
        return usage(m, "%s", "missing --tokenizer PATH (a vocabulary: see docs/tokenizers.md)");
    int jobs = (a->prompt || a->interactive) + (a->text && !a->embed) + a->embed;
    if (jobs != 1)
        return usage(m, "%s", "give one of -p PROMPT (or --interactive), --text TEXT, --embed");
    return 0;
}

int kiln_text_main(int argc, char **argv, const kiln_model *m) {
    kiln_text_args a;
    int rc = parse_text_args(argc, argv, m, &a);
    if (rc)
        return rc < 0 ? 0 : rc;
    const kiln_text *t = m->text;
    if (!t)
        return kiln_text_error(m, 2, "this model has no text roles (its spec has no `text:` "
                               "section), so it reads .npy inputs only");
    bool generate = a.prompt || a.interactive;
    if ((generate || !a.embed) && t->logits < 0)
        return kiln_text_error(m, 2, "this model has no logits output (spec `text: logits`), so "
                               "it can neither generate nor fill masks%s",
                               t->hidden >= 0 ? "; --embed works" : "");
    if (a.embed && t->hidden < 0)
        return kiln_text_error(m, 2, "this model has no hidden-state output (spec `text: "
                               "hidden`), so --embed is not available");
    char err[1024];
    kiln_tokenizer *tok = kiln_tok_load(a.tokenizer, err, sizeof err);
    if (!tok)
        return kiln_text_error(m, 1, "%s", err);
    if (t->logits >= 0) {
        const kiln_tensor_desc *d = &m->outputs[t->logits];
        int64_t vocab = d->dims[2];
        int32_t n_tok = kiln_tok_vocab_size(tok);
        if (n_tok > vocab) {
            kiln_tok_free(tok);
            return kiln_text_error(m, 1, "the tokenizer has %d tokens but the model's logits "
                                   "cover %lld: is it the model's tokenizer?", (int)n_tok,
                                   (long long)vocab);
        }
    }
    kiln_instance *inst = kiln_open(m, a.weights, a.threads, err, sizeof err);
    if (!inst) {
        kiln_tok_free(tok);
        return kiln_text_error(m, 1, "%s", err);
    }
    if (generate)
        rc = kiln_text_generate(m, inst, tok, &a);
    else if (a.embed)
        rc = kiln_text_embed(m, inst, tok, &a);
    else
        rc = kiln_text_fill_mask(m, inst, tok, &a);
    kiln_close(inst);
    kiln_tok_free(tok);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Generation
 */

typedef struct {
    const kiln_model *m;
    kiln_instance *inst;
    int64_t ctx;            // the seq bound: the most tokens one forward sees
    int64_t vocab;
    int n_inputs;
    int32_t **in;           // [n_inputs] buffers of ctx ids (mask: ones, types: zeros)
    float *logits;          // [ctx * vocab]
    double forward_ms;
    int forwards;
    size_t w0, cached;      // with a state: it holds the keys and values of ids[w0, w0 + cached)
} Gen;

// The next token's logits after ids[0..n) (NULL after printing an error).  Without a state:
// a forward over the last min(n, ctx) ids.  With one: a forward over the ids the state does
// not hold yet, at position `cached`, when they fit; else the window slides (w0 = n - ctx)
// and the state is refilled from position 0.
static float *next_logits(Gen *g, const int32_t *ids, size_t n) {
    const kiln_text *t = g->m->text;
    const kiln_model *m = g->m;
    int64_t past = 0, seq;
    if (m->n_states && n - g->w0 <= (size_t)g->ctx && g->w0 + g->cached < n) {
        past = (int64_t)g->cached;              // the new ids only, after what it holds
        seq = (int64_t)(n - g->w0 - g->cached);
    } else {
        seq = (int64_t)n < g->ctx ? (int64_t)n : g->ctx;
        g->w0 = n - (size_t)seq;
    }
    memcpy(g->in[t->ids], ids + n - (size_t)seq, (size_t)seq * sizeof(int32_t));
    int64_t sym[16] = {0};
    for (int s = 0; s < m->n_syms; s++)
        sym[s] = 1;
    const kiln_tensor_desc *d = &m->inputs[t->ids];
    if (d->sym[0] >= 0)
        sym[d->sym[0]] = 1;
    sym[d->sym[1]] = seq;
    if (m->n_states)
        sym[m->position_sym] = past;
    const void *ins[16];
    for (int i = 0; i < g->n_inputs; i++)
        ins[i] = g->in[i];
    void *outs[16] = {0};
    float *scratch[16] = {0};
    for (int o = 0; o < g->m->n_outputs; o++) {
        if (o == t->logits) {
            outs[o] = g->logits;
            continue;
        }
        const kiln_tensor_desc *od = &g->m->outputs[o];
        size_t numel = 1;
        for (int k = 0; k < od->rank; k++)
            numel *= (size_t)(od->sym[k] >= 0 ? sym[od->sym[k]] : od->dims[k]);
        outs[o] = scratch[o] = malloc(numel * kiln_dtype_size(od->dtype) + 1);
    }
    char err[1024];
    double t0 = kiln_now_ms();
    int rc = kiln_forward(g->inst, sym, ins, outs, err, sizeof err);
    g->forward_ms += kiln_now_ms() - t0;
    g->forwards++;
    for (int o = 0; o < g->m->n_outputs; o++)
        free(scratch[o]);
    if (rc) {
        kiln_text_error(g->m, 1, "forward: %s", err);
        return NULL;
    }
    g->cached = (size_t)(past + seq);
    return g->logits + (seq - 1) * g->vocab;
}

// Generate up to a->n_new tokens after ids[0..*n), appending them to ids (room for n_new
// more) and streaming them; returns 0 or 1.
static int continue_text(Gen *g, kiln_tokenizer *tok, kiln_sampler *smp, const kiln_text_args *a,
                         int32_t *ids, size_t *n, double *prefill_ms, double *decode_ms,
                         int *decoded) {
    kiln_tok_decoder dec;
    kiln_tok_decoder_init(&dec, tok, KILN_TOK_SKIP_SPECIAL);
    kiln_tok_text out = {0};
    char err[512];
    int32_t eot = kiln_tok_eot(tok);
    int status = 0;
    for (int step = 0; step < a->n_new; step++) {
        double t0 = kiln_now_ms();
        float *logits = next_logits(g, ids, *n);
        if (!logits) {
            status = 1;
            break;
        }
        int32_t id = kiln_sample(smp, logits, (int32_t)g->vocab, ids, *n);
        double ms = kiln_now_ms() - t0;
        if (step == 0)
            *prefill_ms += ms;
        else {
            *decode_ms += ms;
            (*decoded)++;
        }
        if (id < 0) {
            status = kiln_text_error(g->m, 1, "sampling failed (out of memory)");
            break;
        }
        if (id >= kiln_tok_vocab_size(tok)) {
            status = kiln_text_error(g->m, 1, "the model chose token %d, outside the "
                                     "tokenizer's %d tokens", (int)id,
                                     (int)kiln_tok_vocab_size(tok));
            break;
        }
        ids[(*n)++] = id;
        if (id == eot)
            break;
        if (a->print_ids) {
            printf("%s%d", step ? " " : "", (int)id);
        } else {
            out.n = 0;
            if (kiln_tok_decoder_push(&dec, id, &out, err, sizeof err)) {
                status = kiln_text_error(g->m, 1, "%s", err);
                break;
            }
            fwrite(out.bytes, 1, out.n, stdout);
        }
        fflush(stdout);
    }
    if (!a->print_ids) {
        out.n = 0;
        if (kiln_tok_decoder_finish(&dec, &out, err, sizeof err) == 0)
            fwrite(out.bytes, 1, out.n, stdout);
    }
    fputc('\n', stdout);
    fflush(stdout);
    kiln_tok_text_free(&out);
    return status;
}

int kiln_text_generate(const kiln_model *m, kiln_instance *inst, kiln_tokenizer *tok,
                       const kiln_text_args *a) {
    const kiln_text *t = m->text;
    const kiln_tensor_desc *ids_d = &m->inputs[t->ids];
    if (ids_d->sym[1] < 0)
        return kiln_text_error(m, 1, "generation needs the ids' seq dim to be symbolic");
    if (m->n_inputs > 16 || m->n_outputs > 16)
        return kiln_text_error(m, 1, "generation handles at most 16 inputs and outputs");
    Gen g = {.m = m, .inst = inst, .ctx = ids_d->dims[1], .n_inputs = m->n_inputs};
    g.vocab = m->outputs[t->logits].dims[2];
    int status = 1;
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    kiln_tok_ids enc = {0};
    kiln_sampler smp;
    kiln_sampler_init(&smp, &a->sample);
    g.in = calloc((size_t)m->n_inputs, sizeof *g.in);
    g.logits = malloc((size_t)g.ctx * (size_t)g.vocab * sizeof(float));
    if (!g.in || !g.logits) {
        kiln_text_error(m, 1, "out of memory");
        goto done;
    }
    for (int i = 0; i < m->n_inputs; i++) {
        if (!(g.in[i] = calloc((size_t)g.ctx, sizeof(int32_t)))) {
            kiln_text_error(m, 1, "out of memory");
            goto done;
        }
        if (i == t->mask)
            for (int64_t j = 0; j < g.ctx; j++)
                g.in[i][j] = 1;
    }

    double prefill_ms = 0, decode_ms = 0;
    int decoded = 0;
    size_t prompt_tokens = 0;
    char line[65536], err[1024];
    for (int turn = 0;; turn++) {
        const char *prompt = a->prompt;
        if (a->interactive) {
            if (turn == 0 && a->prompt) {
                prompt = a->prompt;
            } else {
                fprintf(stderr, "> ");
                if (!fgets(line, sizeof line, stdin))
                    break;
                line[strcspn(line, "\n")] = '\0';
                prompt = line;
            }
        } else if (turn > 0) {
            break;
        }
        enc.n = 0;
        if (kiln_tok_encode(tok, prompt, strlen(prompt), KILN_TOK_PARSE_SPECIAL, &enc, err,
                            sizeof err) < 0) {
            kiln_text_error(m, 1, "the prompt: %s", err);
            goto done;
        }
        if (n + enc.n == 0) {
            kiln_text_error(m, 1, "the prompt is empty (it encodes to no tokens)");
            goto done;
        }
        size_t need = n + enc.n + (size_t)a->n_new;
        if (need > cap) {
            int32_t *grown = realloc(ids, need * sizeof *ids);
            if (!grown) {
                kiln_text_error(m, 1, "out of memory");
                goto done;
            }
            ids = grown;
            cap = need;
        }
        memcpy(ids + n, enc.ids, enc.n * sizeof *ids);
        n += enc.n;
        prompt_tokens += enc.n;
        if (!a->print_ids)
            fputs(prompt, stdout);
        if (continue_text(&g, tok, &smp, a, ids, &n, &prefill_ms, &decode_ms, &decoded))
            goto done;
    }
    fprintf(stderr, "%s: %zu prompt tokens, prefill %.1f ms, decode %.2f ms/token, %.1f "
            "tokens/s (%d tokens; context %lld, %s)\n", m->name, prompt_tokens, prefill_ms,
            decoded ? decode_ms / decoded : 0.0, decoded ? 1000.0 * decoded / decode_ms : 0.0,
            decoded, (long long)g.ctx, m->n_states ? "kv cache" : "recomputed");
    status = 0;
done:
    for (int i = 0; g.in && i < m->n_inputs; i++)
        free(g.in[i]);
    free(g.in);
    free(g.logits);
    free(ids);
    kiln_tok_ids_free(&enc);
    kiln_sampler_free(&smp);
    return status;
}
