/* compiler/tokenize.c: `kiln tokenize`, to check a tokenizer by hand.
 *
 *   kiln tokenize --tokenizer PATH (--text T | --file F) [--special]   text -> ids on one line
 *   kiln tokenize --tokenizer PATH (--text IDS | --file F) --decode    ids -> text
 *
 * PATH is what the runtime's kiln_tok_load() takes: a GPT-2 BPE folder (encoder.json +
 * vocab.bpe, or vocab.json + merges.txt), a BERT vocab.txt, or a character vocab.json.
 * No special tokens are added; --special lets "<|endoftext|>" / "[MASK]" in the text stand
 * for their ids.
 */
#include "driver.h"

#include "kiln_tok.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char tok_usage[] =
    "usage: kiln tokenize --tokenizer PATH (--text TEXT | --file FILE) [--special] [--decode]\n"
    "  Prints the token ids of the text on one line, or with --decode reads space-separated\n"
    "  ids and prints the text they stand for.  PATH: a GPT-2 BPE folder (encoder.json +\n"
    "  vocab.bpe, or vocab.json + merges.txt), a BERT vocab.txt, or a char vocab.json.\n";

// Read a whole file into a malloc'd buffer; NULL after a message.
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kiln tokenize: error: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "kiln tokenize: error: cannot read '%s'\n", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int kiln_cmd_tokenize(int argc, char **argv)
{
    const char *tok_path = NULL, *text = NULL, *file = NULL;
    bool decode = false, special = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--tokenizer") ? &tok_path
                            : !strcmp(a, "--text")    ? &text
                            : !strcmp(a, "--file")    ? &file
                                                      : NULL;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "kiln tokenize: error: %s needs a value\n%s", a, tok_usage);
                return 2;
            }
            *slot = argv[++i];
        } else if (!strcmp(a, "--decode")) {
            decode = true;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(tok_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "kiln tokenize: error: unknown argument '%s'\n%s", a, tok_usage);
            return 2;
        }
    }
    if (!tok_path || !!text == !!file) {
        fprintf(stderr, "kiln tokenize: error: needs --tokenizer and one of --text, --file\n%s",
                tok_usage);
        return 2;
    }
    char err[512];
    kiln_tokenizer *t = kiln_tok_load(tok_path, err, sizeof err);
    if (!t) {
        fprintf(stderr, "kiln tokenize: error: %s\n", err);
        return 1;
    }
    size_t len = 0;
    char *owned = NULL;
    if (file) {
        if (!(owned = read_all(file, &len))) {
            kiln_tok_free(t);
            return 1;
        }
        text = owned;
    } else {
        len = strlen(text);
    }
    int status = 1;
    if (decode) {
        kiln_tok_ids ids = {0};
        const char *p = text, *end = text + len;
        status = 0;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ','))
                p++;
            if (p >= end)
                break;
            char *q;
            errno = 0;
            long v = strtol(p, &q, 10);
            if (q == p || errno || v < 0 || v >= kiln_tok_vocab_size(t)) {
                fprintf(stderr, "kiln tokenize: error: '%.20s' at byte %zu is not an id in [0, %d)\n",
                        p, (size_t)(p - text), (int)kiln_tok_vocab_size(t));
                status = 1;
                break;
            }
            if (ids.n == ids.cap) {
                ids.cap = ids.cap ? 2 * ids.cap : 64;
                ids.ids = xrealloc(ids.ids, ids.cap * sizeof *ids.ids);
            }
            ids.ids[ids.n++] = (int32_t)v;
            p = q;
        }
        kiln_tok_text out = {0};
        if (status == 0 && kiln_tok_decode(t, ids.ids, ids.n, 0, &out, err, sizeof err) != 0) {
            fprintf(stderr, "kiln tokenize: error: %s\n", err);
            status = 1;
        }
        if (status == 0) {
            fwrite(out.bytes ? out.bytes : "", 1, out.n, stdout);
            fputc('\n', stdout);
        }
        kiln_tok_text_free(&out);
        kiln_tok_ids_free(&ids);
    } else {
        kiln_tok_ids ids = {0};
        if (kiln_tok_encode(t, text, len, special ? KILN_TOK_PARSE_SPECIAL : 0, &ids, err,
                            sizeof err) < 0) {
            fprintf(stderr, "kiln tokenize: error: %s\n", err);
        } else {
            for (size_t i = 0; i < ids.n; i++)
                printf("%s%d", i ? " " : "", ids.ids[i]);
            printf("\n");
            status = 0;
        }
        kiln_tok_ids_free(&ids);
    }
    free(owned);
    kiln_tok_free(t);
    return status;
}
