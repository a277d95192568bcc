/* text_bert.c: the encoder text front ends of a model binary: fill-mask and embeddings.
 *
 *   ./bert_mlm --weights W --tokenizer vocab.txt --text "the capital of france is [MASK] ."
 *              [--top 5] [--threads N]
 *   ./bert     --weights W --tokenizer vocab.txt --embed (--text T | --input-file F)
 *              [--pool mean|cls] [--output EMB.npy]
 *
 * kiln_text_main (text.c) parses the command line, loads the tokenizer, opens the model
 * through the C API and calls one of the two jobs below.  The spec's `text:` roles
 * (kiln_model.text) say which input takes the ids, which takes the padding mask (1: token,
 * 0: padding) and the token types (all 0 here: one segment), and which output holds the
 * logits (fill-mask) or the hidden states (--embed).  Texts become `[CLS] pieces [SEP]`
 * (kiln_tok_encode_bert, special spellings such as "[MASK]" parsed), cut to the bound of
 * the ids' seq dim as Hugging Face's truncation=True cuts them, with a warning.
 *
 * Output formats (docs/runtime.md, "Fill-mask" and "Embeddings"):
 *
 *   fill-mask, stdout, one line per candidate, masks in text order, candidates by rank:
 *       [MASK] 1: paris 0.4123          mask number, vocabulary spelling, softmax probability
 *   embed with --output: a [n_texts, width] f32 .npy; without: one line per text
 *       1: [0.0312 -0.4410 0.1127 ... -0.0873] (32 values, norm 3.1416)
 *
 * A line of figures goes to stderr.  Errors print `MODEL: error: ...` and return 1 (2 for
 * usage: an option the job does not take, a model without the role it needs).
 */
#include "kiln_text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * One forward over a batch of texts
 */

// The ids input's [batch, seq]: the bound of each dim, and its symbolic dim index (-1 when
// the dim is static: then every forward must use exactly that size).
typedef struct {
    int64_t batch, seq;
    int batch_sym, seq_sym;
} IdsShape;

static IdsShape ids_shape(const kiln_model *m) {
    const kiln_tensor_desc *d = &m->inputs[m->text->ids];
    IdsShape s = {d->dims[0], d->dims[1], d->sym[0], d->sym[1]};
    return s;
}

// The outputs of one forward, each at the dims it ran with, and the dims themselves.
typedef struct {
    int64_t batch, seq;         // rows and tokens per row of this forward
    void *out[16];              // [n_outputs] malloc'd, contiguous
    int32_t *mask;              // [batch * seq] 1 for a token, 0 for padding
} Batch;

static void batch_free(Batch *b) {
    for (int o = 0; o < 16; o++)
        free(b->out[o]);
    free(b->mask);
    memset(b, 0, sizeof *b);
}

// Run the model once over texts[0 .. rows) (encoded ids), each padded with `pad` to the
// longest (or to the static seq size) with mask 0 there.  A model with a static batch size
// above `rows` gets copies of the first text in the rows left over.  Token types are all 0.
// Returns 0 with the outputs in *b (free with batch_free), or 1 after printing an error.
static int forward_texts(const kiln_model *m, kiln_instance *inst, const kiln_tok_ids *texts,
                         int rows, int32_t pad, Batch *b) {
    const kiln_text *t = m->text;
    IdsShape sh = ids_shape(m);
    memset(b, 0, sizeof *b);
    if (m->n_inputs > 16 || m->n_outputs > 16)
        return kiln_text_error(m, 1, "the text front ends handle at most 16 inputs and outputs");
    int64_t seq = 0;
    for (int r = 0; r < rows; r++)
        if ((int64_t)texts[r].n > seq)
            seq = (int64_t)texts[r].n;
    if (sh.seq_sym < 0)
        seq = sh.seq;
    b->batch = sh.batch_sym < 0 ? sh.batch : rows;
    b->seq = seq;
    for (int r = 0; r < rows; r++)
        if ((int64_t)texts[r].n < seq && t->mask < 0)
            return kiln_text_error(m, 1, "texts of different lengths need padding, and this model "
                                   "has no padding-mask input (spec `text: mask`)");

    size_t cells = (size_t)b->batch * (size_t)seq;
    int32_t *ids = malloc(cells * sizeof *ids), *zeros = calloc(cells, sizeof *zeros);
    b->mask = malloc(cells * sizeof *b->mask);
    int status = 1;
    if (!ids || !zeros || !b->mask) {
        kiln_text_error(m, 1, "out of memory");
        goto done;
    }
    for (int64_t r = 0; r < b->batch; r++) {
        const kiln_tok_ids *x = &texts[r < rows ? r : 0];
        for (int64_t j = 0; j < seq; j++) {
            bool real = j < (int64_t)x->n;
            ids[r * seq + j] = real ? x->ids[j] : pad;
            b->mask[r * seq + j] = real;
        }
    }

    int64_t sym[16];
    for (int s = 0; s < 16; s++)
        sym[s] = 1;
    if (sh.batch_sym >= 0)
        sym[sh.batch_sym] = b->batch;
    if (sh.seq_sym >= 0)
        sym[sh.seq_sym] = seq;
    if (m->n_states)
        sym[m->position_sym] = 0;       // a fresh state: these texts are all there is
    const void *ins[16];
    for (int i = 0; i < m->n_inputs; i++)
        ins[i] = i == t->ids ? ids : i == t->mask ? b->mask : zeros;   // types: segment 0
    for (int o = 0; o < m->n_outputs; o++) {
        const kiln_tensor_desc *d = &m->outputs[o];
        size_t n = 1;
        for (int k = 0; k < d->rank; k++)
            n *= (size_t)(d->sym[k] >= 0 ? sym[d->sym[k]] : d->dims[k]);
        if (!(b->out[o] = malloc(n * kiln_dtype_size(d->dtype) + 1))) {
            kiln_text_error(m, 1, "out of memory for output '%s'", d->name);
            goto done;
        }
    }
    char err[1024];
    if (kiln_forward(inst, sym, ins, b->out, err, sizeof err)) {
        kiln_text_error(m, 1, "forward: %s", err);
        goto done;
    }
    status = 0;
done:
    free(ids);
    free(zeros);
    if (status)
        batch_free(b);
    return status;
}

// The id padding takes: [PAD], or 0 in a vocabulary without one (the mask hides it anyway).
static int32_t pad_id(const kiln_tokenizer *tok) {
    int32_t pad = kiln_tok_specials(tok)->pad;
    return pad < 0 ? 0 : pad;
}

// Encode `text` as [CLS] pieces [SEP] into *out (emptied first), cut to the seq bound with
// a warning naming `what` ("the text", "text 3 (line 7)").  Returns 0, or 1 after an error.
static int encode(const kiln_model *m, kiln_tokenizer *tok, const char *text, size_t len,
                  const char *what, kiln_tok_ids *out, size_t *dropped) {
    char err[1024];
    size_t bound = (size_t)ids_shape(m).seq;
    out->n = 0;
    if (kiln_tok_encode_bert(tok, text, len, KILN_TOK_PARSE_SPECIAL, bound, out, dropped, err,
                             sizeof err) < 0)
        return kiln_text_error(m, 1, "%s: %s", what, err);
    if (*dropped)
        fprintf(stderr, "%s: warning: %s is %zu tokens with [CLS] and [SEP], the model takes "
                "%zu: dropped the last %zu before [SEP], as Hugging Face's truncation=True "
                "does\n", m->name, what, out->n + *dropped, bound, *dropped);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Fill-mask
 */

typedef struct {
    float logit;
    int32_t id;
} Cand;

// Most likely first; equal logits by id, so the order is the same on every run.
static int cand_cmp(const void *pa, const void *pb) {
    const Cand *a = pa, *b = pb;
    if (a->logit != b->logit)
        return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

// See kiln_text.h.  Prints a->top candidates per [MASK] (format atop this file).
int kiln_text_fill_mask(const kiln_model *m, kiln_instance *inst, kiln_tokenizer *tok,
                        const kiln_text_args *a) {
    const kiln_text *t = m->text;
    if (!t || t->logits < 0)
        return kiln_text_error(m, 2, "this model has no logits output (spec `text: logits`), "
                               "so it cannot fill masks");
    if (a->output)
        return kiln_text_error(m, 2, "--output is for --embed; fill-mask prints its candidates");
    if (!a->text)
        return kiln_text_error(m, 2, "fill-mask needs --text \"... [MASK] ...\"");
    int32_t mask_id = kiln_tok_specials(tok)->mask;
    if (mask_id < 0)
        return kiln_text_error(m, 1, "the tokenizer has no [MASK] token, so there is nothing "
                               "to fill");

    kiln_tok_ids ids = {0};
    Batch b = {0};
    Cand *cand = NULL;
    int status = 1;
    size_t dropped;
    if (encode(m, tok, a->text, strlen(a->text), "the text", &ids, &dropped))
        goto done;
    int n_masks = 0;
    for (size_t j = 0; j < ids.n; j++)
        n_masks += ids.ids[j] == mask_id;
    if (n_masks == 0 && dropped) {      // were the masks in the part cut off?
        kiln_tok_ids all = {0};
        char err[256];
        size_t none;
        bool later = false;
        if (kiln_tok_encode_bert(tok, a->text, strlen(a->text), KILN_TOK_PARSE_SPECIAL, 0, &all,
                                 &none, err, sizeof err) > 0)
            for (size_t j = ids.n - 1; j < all.n; j++)     // the pieces dropped, and [SEP]
                later |= all.ids[j] == mask_id;
        kiln_tok_ids_free(&all);
        if (later) {
            kiln_text_error(m, 1, "every [MASK] is past the first %zu tokens, which are all "
                            "the model takes", ids.n);
            goto done;
        }
    }
    if (n_masks == 0) {
        kiln_text_error(m, 1, "no [MASK] in the text: write [MASK] where a token should be "
                        "guessed");
        goto done;
    }
    double t0 = kiln_now_ms();
    if (forward_texts(m, inst, &ids, 1, pad_id(tok), &b))
        goto done;
    double ms = kiln_now_ms() - t0;

    const int64_t vocab = m->outputs[t->logits].dims[2];
    const float *logits = b.out[t->logits];
    int top = a->top < 1 ? 5 : a->top;
    if (top > vocab)
        top = (int)vocab;
    if (!(cand = malloc((size_t)vocab * sizeof *cand))) {
        kiln_text_error(m, 1, "out of memory");
        goto done;
    }
    int k = 0;
    for (size_t j = 0; j < ids.n; j++) {
        if (ids.ids[j] != mask_id)
            continue;
        k++;
        // Softmax over the whole vocabulary, in double; row j of batch row 0.
        const float *row = logits + (int64_t)j * vocab;
        for (int64_t v = 0; v < vocab; v++)
            cand[v] = (Cand){row[v], (int32_t)v};
        qsort(cand, (size_t)vocab, sizeof *cand, cand_cmp);
        double sum = 0, max = (double)cand[0].logit;
        for (int64_t v = 0; v < vocab; v++)
            sum += exp((double)row[v] - max);
        for (int r = 0; r < top; r++) {
            const char *spelling = kiln_tok_token(tok, cand[r].id);
            double p = exp((double)cand[r].logit - max) / sum;
            if (spelling)
                printf("[MASK] %d: %s %.4f\n", k, spelling, p);
            else        // the model's vocabulary is larger than the tokenizer's
                printf("[MASK] %d: <id %d> %.4f\n", k, (int)cand[r].id, p);
        }
    }
    fflush(stdout);
    fprintf(stderr, "%s: %zu tokens, %d [MASK]%s, forward %.1f ms\n", m->name, ids.n, n_masks,
            n_masks == 1 ? "" : "s", ms);
    status = 0;
done:
    free(cand);
    batch_free(&b);
    kiln_tok_ids_free(&ids);
    return status;
}

/* ---------------------------------------------------------------------------------------
 * Embeddings
 */

typedef struct {
    char **text;            // [n] NUL-terminated (may hold other NULs: use len)
    size_t *len;            // [n] bytes
    size_t *line;           // [n] 1-based line in the input file, 0 for --text
    size_t n, cap;
} Texts;

static void texts_free(Texts *x) {
    for (size_t i = 0; i < x->n; i++)
        free(x->text[i]);
    free(x->text);
    free(x->len);
    free(x->line);
}

static bool texts_push(Texts *x, const char *s, size_t len, size_t line) {
    if (x->n == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 16;
        char **t = realloc(x->text, cap * sizeof *t);
        if (t)
            x->text = t;
        size_t *l = realloc(x->len, cap * sizeof *l);
        if (l)
            x->len = l;
        size_t *ln = realloc(x->line, cap * sizeof *ln);
        if (ln)
            x->line = ln;
        if (!t || !l || !ln)
            return false;
        x->cap = cap;
    }
    if (!(x->text[x->n] = malloc(len + 1)))
        return false;
    memcpy(x->text[x->n], s, len);
    x->text[x->n][len] = '\0';
    x->len[x->n] = len;
    x->line[x->n++] = line;
    return true;
}

// Whether s[0..len) holds nothing but spaces, tabs and carriage returns.
static bool blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

// Read one text per line of `path` ("-": stdin) into x, skipping blank lines; a line's
// trailing "\r\n" or "\n" is not part of it.  Returns 0, or 1 after an error.
static int read_texts(const kiln_model *m, const char *path, Texts *x) {
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return kiln_text_error(m, 1, "--input-file %s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int status = 0;
    errno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        if (len && line[len - 1] == '\r')
            len--;
        if (blank(line, len))
            continue;
        if (!texts_push(x, line, len, lineno)) {
            status = kiln_text_error(m, 1, "out of memory reading --input-file %s", path);
            break;
        }
    }
    if (!status && ferror(f))
        status = kiln_text_error(m, 1, "--input-file %s: cannot read: %s", path,
                                 strerror(errno ? errno : EIO));
    free(line);
    if (!is_stdin)
        fclose(f);
    if (!status && x->n == 0)
        status = kiln_text_error(m, 1, "--input-file %s holds no text (every line is blank)",
                                 path);
    return status;
}

// Pool row r of hidden [batch, seq, width] into out[width]: the mean over the positions
// whose mask is 1 (summed in acc[width], scratch), or position 0 ([CLS]).
static void pool_row(const float *hidden, const int32_t *mask, int64_t r, int64_t seq,
                     int64_t width, bool cls, double *acc, float *out) {
    const float *h = hidden + r * seq * width;
    if (cls) {
        memcpy(out, h, (size_t)width * sizeof *out);
        return;
    }
    int64_t count = 0;
    memset(acc, 0, (size_t)width * sizeof *acc);
    for (int64_t j = 0; j < seq; j++) {
        if (!mask[r * seq + j])
            continue;
        count++;
        for (int64_t c = 0; c < width; c++)
            acc[c] += (double)h[j * width + c];
    }
    for (int64_t c = 0; c < width; c++)        // every text has [CLS]: count >= 1
        out[c] = (float)(acc[c] / (double)(count ? count : 1));
}

// The summary line of one embedding: the first three values, the last, count and norm.
static void print_summary(size_t i, const float *v, int64_t width) {
    double norm = 0;
    for (int64_t c = 0; c < width; c++)
        norm += (double)v[c] * (double)v[c];
    printf("%zu: [", i + 1);
    for (int64_t c = 0; c < width && c < 3; c++)
        printf("%s%.4f", c ? " " : "", (double)v[c]);
    if (width > 4)
        printf(" ...");
    if (width > 3)
        printf(" %.4f", (double)v[width - 1]);
    printf("] (%lld values, norm %.4f)\n", (long long)width, sqrt(norm));
}

// See kiln_text.h.  One vector per text, pooled from the hidden states (format atop this
// file); texts run in batches of up to the batch bound.
int kiln_text_embed(const kiln_model *m, kiln_instance *inst, kiln_tokenizer *tok,
                    const kiln_text_args *a) {
    const kiln_text *t = m->text;
    if (!t || t->hidden < 0)
        return kiln_text_error(m, 2, "this model has no hidden-state output (spec `text: "
                               "hidden`), so --embed is not available");
    const char *pool = a->pool ? a->pool : "mean";
    bool cls = strcmp(pool, "cls") == 0;
    if (!cls && strcmp(pool, "mean") != 0)
        return kiln_text_error(m, 2, "--pool wants mean or cls, found '%s'", pool);
    if (!a->text && !a->input_file)
        return kiln_text_error(m, 2, "--embed needs --text TEXT or --input-file FILE (one text "
                               "per line)");
    if (a->text && a->input_file)
        return kiln_text_error(m, 2, "--embed takes --text or --input-file, not both");
    const kiln_tensor_desc *hd = &m->outputs[t->hidden];
    if (hd->rank != 3 || hd->sym[2] >= 0)
        return kiln_text_error(m, 1, "the hidden output '%s' needs a static width (its last "
                               "dim)", hd->name);
    const int64_t width = hd->dims[2];
    IdsShape sh = ids_shape(m);
    // Rows per forward: up to the batch bound, or one at a time when texts of different
    // lengths could not be padded (no mask input).
    int64_t per = t->mask >= 0 || sh.seq_sym < 0 ? sh.batch : 1;
    if (per > 1024)
        per = 1024;

    Texts x = {0};
    kiln_tok_ids *enc = calloc((size_t)per, sizeof *enc);
    float *emb = NULL;
    double *acc = malloc((size_t)width * sizeof *acc);
    Batch b = {0};
    int status = 1, forwards = 0;
    double ms = 0;
    if (!enc || !acc) {
        kiln_text_error(m, 1, "out of memory");
        goto done;
    }
    if (a->input_file && read_texts(m, a->input_file, &x))
        goto done;
    if (a->text && !texts_push(&x, a->text, strlen(a->text), 0)) {
        kiln_text_error(m, 1, "out of memory");
        goto done;
    }
    if (!(emb = malloc(x.n * (size_t)width * sizeof *emb))) {
        kiln_text_error(m, 1, "out of memory for %zu embeddings of %lld values", x.n,
                        (long long)width);
        goto done;
    }
    for (size_t i0 = 0; i0 < x.n; i0 += (size_t)per) {
        int rows = (int)(x.n - i0 < (size_t)per ? x.n - i0 : (size_t)per);
        for (int r = 0; r < rows; r++) {
            char what[4200];    // "line N of PATH"
            size_t i = i0 + (size_t)r, dropped;
            if (x.line[i])
                snprintf(what, sizeof what, "line %zu of %s", x.line[i], a->input_file);
            else
                snprintf(what, sizeof what, "the text");
            if (encode(m, tok, x.text[i], x.len[i], what, &enc[r], &dropped))
                goto done;
        }
        double t0 = kiln_now_ms();
        if (forward_texts(m, inst, enc, rows, pad_id(tok), &b))
            goto done;
        ms += kiln_now_ms() - t0;
        forwards++;
        for (int r = 0; r < rows; r++)
            pool_row(b.out[t->hidden], b.mask, r, b.seq, width, cls, acc,
                     emb + (i0 + (size_t)r) * (size_t)width);
        batch_free(&b);
    }

    if (a->output) {
        char err[1024];
        int64_t dims[2] = {(int64_t)x.n, width};
        if (kiln_npy_write(a->output, KILN_F32, 2, dims, emb, err, sizeof err)) {
            kiln_text_error(m, 1, "--output: %s", err);
            goto done;
        }
    } else {
        for (size_t i = 0; i < x.n; i++)
            print_summary(i, emb + i * (size_t)width, width);
        fflush(stdout);
    }
    fprintf(stderr, "%s: %zu text%s, %s pooling, %d forward%s (batch <= %lld), %.1f ms%s%s\n",
            m->name, x.n, x.n == 1 ? "" : "s", cls ? "cls" : "mean", forwards,
            forwards == 1 ? "" : "s", (long long)per, ms, a->output ? "; wrote " : "",
            a->output ? a->output : "");
    status = 0;
done:
    batch_free(&b);
    for (int64_t r = 0; enc && r < per; r++)
        kiln_tok_ids_free(&enc[r]);
    free(enc);
    free(acc);
    free(emb);
    texts_free(&x);
    return status;
}
