/* tokenizer.c: the part of the kiln tokenizers every kind shares (runtime/kiln_tok.h).
 *
 * kiln_tok_load() looks at a path, decides which kind of vocabulary it holds and hands it to
 * that kind's loader (tokenizer_bpe.c, tokenizer_wordpiece.c, tokenizer_char.c).  Encoding
 * dispatches on the kind after splitting special-token spellings out of the text when asked;
 * decoding is common to all kinds, since each id decodes to a fixed byte string (its piece)
 * and only the UTF-8 hold-back and WordPiece's spaces need state.
 *
 * Also here: the vocabulary table (spellings -> ids) every loader fills, file reading, JSON
 * error positions, and the growable id and byte arrays.
 */
#define KILN_TOK_INTERNAL
#include "kiln_tok.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------------------------------
 * Errors, files, growable arrays
 */

// Format a message into err (truncated to errlen; nothing if err is NULL or errlen is 0).
void kiln_tok_seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// Read a whole file into a malloc'd buffer with a NUL after its last byte; its length goes
// to *len.  Returns NULL with "path: reason" in err when the file cannot be read.
char *kiln_tok_read_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        kiln_tok_seterr(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        kiln_tok_seterr(err, errlen, "%s: cannot read (not a regular file?)", path);
        goto fail;
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        kiln_tok_seterr(err, errlen, "%s: out of memory reading %ld bytes", path, size);
        goto fail;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        kiln_tok_seterr(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    buf[size] = 0;
    *len = (size_t)size;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

// Whether the JSON text in buf ends inside a string or with a bracket still open: the mark
// of a file cut short, worth saying so in the message.
static bool json_unclosed(const char *buf, size_t len) {
    long depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return in_string || depth > 0;
}

// Parse buf (len bytes, buf[len] == NUL, as kiln_tok_read_file leaves it) as one JSON
// value with nothing but whitespace after it.  Returns the tree (cJSON_Delete it), or NULL
// with "path: invalid JSON at line L, column C (byte B of N)" in err, saying so when the file
// simply ends early.
struct cJSON *kiln_tok_parse_json(const char *path, const char *buf, size_t len, char *err,
                                  size_t errlen) {
    // cJSON checks for trailing garbage only when told to, and then wants the NUL counted.
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);
    if (j) return j;
    size_t at = (end && end >= buf && end <= buf + len) ? (size_t)(end - buf) : len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (buf[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    bool truncated = json_unclosed(buf, len);
    kiln_tok_seterr(err, errlen, "%s: invalid JSON at line %zu, column %zu (byte %zu of %zu)%s",
                    path, line, col, at, len,
                    truncated ? ": the file ends in the middle of a value (truncated?)" : "");
    return NULL;
}

bool kiln_tok_ids_push(kiln_tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p) return false;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return true;
}

// Append n bytes to s, keeping a NUL after the last byte.  Returns false if out of memory.
bool kiln_tok_text_append(kiln_tok_text *s, const void *bytes, size_t n) {
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->n + n + 1) cap *= 2;
        char *p = realloc(s->bytes, cap);
        if (!p) return false;
        s->bytes = p;
        s->cap = cap;
    }
    if (n) memcpy(s->bytes + s->n, bytes, n);
    s->n += n;
    s->bytes[s->n] = 0;
    return true;
}

void kiln_tok_ids_free(kiln_tok_ids *v) {
    free(v->ids);
    *v = (kiln_tok_ids){0};
}

void kiln_tok_text_free(kiln_tok_text *s) {
    free(s->bytes);
    *s = (kiln_tok_text){0};
}

/* ---------------------------------------------------------------------------------------
 * Vocabulary table
 */

// FNV-1a, 32 bits: keys are short token spellings, so a byte loop is fast enough.
static uint32_t hash_bytes(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

// Install the vocabulary: n spellings, tok[id] of len[id] bytes (NULs allowed), copied into
// t->blob.  A spelling listed twice maps to its last id (as Hugging Face's loaders do);
// kiln_tok_token() still gives each id its own spelling.  Sets n_vocab, tokens, token_len,
// map, and pieces = tokens (loaders that decode differently overwrite pieces).
// Returns false with a message in err if memory runs out.
bool kiln_tok_set_vocab(kiln_tokenizer *t, int32_t n, const char *const *tok,
                        const uint32_t *len, char *err, size_t errlen) {
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) total += (size_t)len[i] + 1;
    uint32_t size = 16;
    while (size < 2 * (uint32_t)n) size *= 2;
    t->n_vocab = n;
    t->blob = malloc(total ? total : 1);
    t->tokens = malloc((size_t)(n ? n : 1) * sizeof *t->tokens);
    t->token_len = malloc((size_t)(n ? n : 1) * sizeof *t->token_len);
    t->pieces = malloc((size_t)(n ? n : 1) * sizeof *t->pieces);
    t->piece_len = malloc((size_t)(n ? n : 1) * sizeof *t->piece_len);
    t->continues = calloc((size_t)(n ? n : 1), sizeof *t->continues);
    t->map.slot = malloc(size * sizeof *t->map.slot);
    t->map.mask = size - 1;
    if (!t->blob || !t->tokens || !t->token_len || !t->pieces || !t->piece_len ||
        !t->continues || !t->map.slot) {
        kiln_tok_seterr(err, errlen, "out of memory for a vocabulary of %d tokens", (int)n);
        return false;
    }
    memset(t->map.slot, 0xff, size * sizeof *t->map.slot);
    char *p = t->blob;
    for (int32_t id = 0; id < n; id++) {
        memcpy(p, tok[id], len[id]);
        p[len[id]] = 0;
        t->tokens[id] = t->pieces[id] = p;
        t->token_len[id] = t->piece_len[id] = len[id];
        p += len[id] + 1;
        uint32_t h = hash_bytes(tok[id], len[id]) & t->map.mask;
        for (;; h = (h + 1) & t->map.mask) {
            int32_t s = t->map.slot[h];
            if (s < 0 || (t->token_len[s] == len[id] && !memcmp(t->tokens[s], tok[id], len[id]))) {
                t->map.slot[h] = id;
                break;
            }
        }
    }
    return true;
}

// Id of the spelling s (len bytes), or -1.
int32_t kiln_tok_lookup(const kiln_tokenizer *t, const char *s, size_t len) {
    for (uint32_t h = hash_bytes(s, len) & t->map.mask;; h = (h + 1) & t->map.mask) {
        int32_t id = t->map.slot[h];
        if (id < 0) return -1;
        if (t->token_len[id] == len && !memcmp(t->tokens[id], s, len)) return id;
    }
}

/* ---------------------------------------------------------------------------------------
 * Loading by path
 */

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

// dir + "/" + name into buf.  Returns false if that does not fit in size bytes.
static bool join(char *buf, size_t size, const char *dir, const char *name) {
    size_t n = strlen(dir), m = strlen(name);
    size_t slash = n && dir[n - 1] == '/' ? 0 : 1;
    if (n + slash + m >= size) return false;
    memcpy(buf, dir, n);
    if (slash) buf[n] = '/';
    memcpy(buf + n + slash, name, m + 1);
    return true;
}

// The directory part of a file path ("." for a bare name).
static void dir_of(char *buf, size_t size, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(buf, size, ".");
    } else {
        int n = slash == path ? 1 : (int)(slash - path);
        snprintf(buf, size, "%.*s", n, path);
    }
}

// Pick and run the loader for path (kiln_tok_load fills in the special ids afterwards).
static kiln_tokenizer *load_any(const char *path, char *err, size_t errlen) {
    char a[4096], b[4096];
    struct stat st;
    if (stat(path, &st) != 0) {
        kiln_tok_seterr(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (strlen(path) + 16 > sizeof a) {     // room for "/encoder.json" and the like
        kiln_tok_seterr(err, errlen, "%.64s...: path too long", path);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        static const char *const pairs[2][2] = {
            {"encoder.json", "vocab.bpe"},      // OpenAI's names
            {"vocab.json", "merges.txt"},       // Hugging Face's names
        };
        for (int i = 0; i < 2; i++) {
            if (join(a, sizeof a, path, pairs[i][0]) && join(b, sizeof b, path, pairs[i][1]) &&
                is_file(a) && is_file(b))
                return kiln_tok_load_bpe(a, b, err, errlen);
        }
        if (join(a, sizeof a, path, "vocab.txt") && is_file(a))
            return kiln_tok_load_wordpiece(a, err, errlen);
        if (join(a, sizeof a, path, "vocab.json") && is_file(a))
            return kiln_tok_load_char(a, err, errlen);
        kiln_tok_seterr(err, errlen,
                        "%s: no tokenizer files in this directory (looked for encoder.json + "
                        "vocab.bpe, vocab.json + merges.txt, vocab.txt, vocab.json)", path);
        return NULL;
    }
    if (ends_with(path, ".txt")) return kiln_tok_load_wordpiece(path, err, errlen);
    if (ends_with(path, ".json")) {
        // A BPE vocabulary names its merges file by convention; look beside it, trying the
        // name that goes with this file's name first.
        char dir[4096];
        dir_of(dir, sizeof dir, path);
        bool hf = ends_with(path, "vocab.json");
        const char *merges[2] = {hf ? "merges.txt" : "vocab.bpe", hf ? "vocab.bpe" : "merges.txt"};
        for (int i = 0; i < 2; i++) {
            if (join(b, sizeof b, dir, merges[i]) && is_file(b))
                return kiln_tok_load_bpe(path, b, err, errlen);
        }
        return kiln_tok_load_char(path, err, errlen);
    }
    kiln_tok_seterr(err, errlen,
                    "%s: unknown tokenizer file (expected a directory, a vocab.txt or a "
                    "vocab.json)", path);
    return NULL;
}

kiln_tokenizer *kiln_tok_load(const char *path, char *err, size_t errlen) {
    if (!path || !*path) {
        kiln_tok_seterr(err, errlen, "tokenizer path is empty");
        return NULL;
    }
    kiln_tokenizer *t = load_any(path, err, errlen);
    if (!t) return NULL;
    // A character vocabulary has no special tokens: "[" is a character like any other.
    t->special = (kiln_tok_special){-1, -1, -1, -1, -1, -1};
    if (t->kind != KILN_TOK_CHAR) {
        t->special.eot = kiln_tok_lookup(t, "<|endoftext|>", 13);
        t->special.unk = kiln_tok_lookup(t, "[UNK]", 5);
        t->special.cls = kiln_tok_lookup(t, "[CLS]", 5);
        t->special.sep = kiln_tok_lookup(t, "[SEP]", 5);
        t->special.pad = kiln_tok_lookup(t, "[PAD]", 5);
        t->special.mask = kiln_tok_lookup(t, "[MASK]", 6);
    }
    return t;
}

void kiln_tok_free(kiln_tokenizer *t) {
    if (!t) return;
    kiln_tok_free_bpe(t->bpe);
    free(t->blob);
    free(t->piece_blob);
    free(t->tokens);
    free(t->token_len);
    free(t->pieces);
    free(t->piece_len);
    free(t->continues);
    free(t->map.slot);
    free(t);
}

/* ---------------------------------------------------------------------------------------
 * Lookups
 */

kiln_tok_kind kiln_tok_get_kind(const kiln_tokenizer *t) {
    return t->kind;
}

const char *kiln_tok_kind_name(kiln_tok_kind k) {
    switch (k) {
    case KILN_TOK_BPE: return "bpe";
    case KILN_TOK_WORDPIECE: return "wordpiece";
    case KILN_TOK_CHAR: return "char";
    }
    return "?";
}

int32_t kiln_tok_vocab_size(const kiln_tokenizer *t) {
    return t->n_vocab;
}

int32_t kiln_tok_id(const kiln_tokenizer *t, const char *token) {
    return token ? kiln_tok_lookup(t, token, strlen(token)) : -1;
}

const char *kiln_tok_token(const kiln_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->tokens[id] : NULL;
}

const char *kiln_tok_piece(const kiln_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = t->piece_len[id];
    return t->pieces[id];
}

const kiln_tok_special *kiln_tok_specials(const kiln_tokenizer *t) {
    return &t->special;
}

int32_t kiln_tok_eot(const kiln_tokenizer *t) {
    return t->special.eot;
}

bool kiln_tok_is_special(const kiln_tokenizer *t, int32_t id) {
    const kiln_tok_special *s = &t->special;
    return id >= 0 && (id == s->eot || id == s->unk || id == s->cls || id == s->sep ||
                       id == s->pad || id == s->mask);
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 */

// Encode a stretch of text holding no special spellings with t's own encoder.
static int64_t encode_plain(kiln_tokenizer *t, const char *text, size_t len, kiln_tok_ids *out,
                            char *err, size_t errlen) {
    if (len == 0) return 0;
    switch (t->kind) {
    case KILN_TOK_BPE: return kiln_tok_encode_bpe(t, text, len, out, err, errlen);
    case KILN_TOK_WORDPIECE: return kiln_tok_encode_wordpiece(t, text, len, out, err, errlen);
    case KILN_TOK_CHAR: return kiln_tok_encode_char(t, text, len, out, err, errlen);
    }
    kiln_tok_seterr(err, errlen, "tokenizer of unknown kind %d", (int)t->kind);
    return -1;
}

// Encode with special spellings recognized: scan for the earliest (and, at one position,
// longest) spelling of a special id, encode the text before it, emit its id, go on.
static int64_t encode_special(kiln_tokenizer *t, const char *text, size_t len,
                              kiln_tok_ids *out, char *err, size_t errlen) {
    const int32_t ids[6] = {t->special.eot, t->special.unk, t->special.cls,
                            t->special.sep, t->special.pad, t->special.mask};
    int64_t total = 0;
    size_t start = 0;   // first byte not yet encoded
    for (size_t i = 0; i < len;) {
        int32_t best = -1;
        for (int k = 0; k < 6; k++) {
            int32_t id = ids[k];
            if (id < 0) continue;
            uint32_t n = t->token_len[id];
            if (n && n <= len - i && !memcmp(text + i, t->tokens[id], n) &&
                (best < 0 || n > t->token_len[best])) {
                best = id;
            }
        }
        if (best < 0) {
            i++;
            continue;
        }
        int64_t k = encode_plain(t, text + start, i - start, out, err, errlen);
        if (k < 0) return -1;
        if (!kiln_tok_ids_push(out, best)) goto oom;
        total += k + 1;
        i += t->token_len[best];
        start = i;
    }
    int64_t k = encode_plain(t, text + start, len - start, out, err, errlen);
    return k < 0 ? -1 : total + k;
oom:
    kiln_tok_seterr(err, errlen, "out of memory encoding %zu bytes", len);
    return -1;
}

int64_t kiln_tok_encode(kiln_tokenizer *t, const char *text, size_t len, unsigned flags,
                        kiln_tok_ids *out, char *err, size_t errlen) {
    size_t n0 = out->n;
    int64_t k = (flags & KILN_TOK_PARSE_SPECIAL)
                    ? encode_special(t, text, len, out, err, errlen)
                    : encode_plain(t, text, len, out, err, errlen);
    if (k < 0) out->n = n0;
    return k;
}

int64_t kiln_tok_encode_bert(kiln_tokenizer *t, const char *text, size_t len, unsigned flags,
                             size_t max_len, kiln_tok_ids *out, size_t *n_dropped,
                             char *err, size_t errlen) {
    if (n_dropped) *n_dropped = 0;
    if (t->special.cls < 0 || t->special.sep < 0) {
        kiln_tok_seterr(err, errlen, "the %s vocabulary has no [CLS] and [SEP] tokens",
                        kiln_tok_kind_name(t->kind));
        return -1;
    }
    if (max_len == 1) {
        kiln_tok_seterr(err, errlen, "max_len 1 leaves no room for [CLS] and [SEP]");
        return -1;
    }
    size_t n0 = out->n;
    if (!kiln_tok_ids_push(out, t->special.cls)) goto oom;
    int64_t k = kiln_tok_encode(t, text, len, flags, out, err, errlen);
    if (k < 0) {
        out->n = n0;
        return -1;
    }
    if (max_len && (size_t)k + 2 > max_len) {
        size_t drop = (size_t)k + 2 - max_len;
        out->n -= drop;
        if (n_dropped) *n_dropped = drop;
    }
    if (!kiln_tok_ids_push(out, t->special.sep)) goto oom;
    return (int64_t)(out->n - n0);
oom:
    out->n = n0;
    kiln_tok_seterr(err, errlen, "out of memory encoding %zu bytes", len);
    return -1;
}

/* ---------------------------------------------------------------------------------------
 * Decoding
 */

// Length of the UTF-8 character lead byte c starts: 1 for ASCII, 2..4 for a lead byte, 0 for
// a byte no valid character starts with (a continuation byte, C0, C1, F5..FF).
static int utf8_length(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return 2;
    if (c >= 0xe0 && c <= 0xef) return 3;
    if (c >= 0xf0 && c <= 0xf4) return 4;
    return 0;
}

// Whether c can be byte `pos` (1..3) of a character starting with lead: the second byte's
// range excludes overlong forms, UTF-16 surrogates and code points above U+10FFFF.
static bool utf8_continues(unsigned char lead, int pos, unsigned char c) {
    if (pos == 1) {
        switch (lead) {
        case 0xe0: return c >= 0xa0 && c <= 0xbf;
        case 0xed: return c >= 0x80 && c <= 0x9f;
        case 0xf0: return c >= 0x90 && c <= 0xbf;
        case 0xf4: return c >= 0x80 && c <= 0x8f;
        }
    }
    return c >= 0x80 && c <= 0xbf;
}

void kiln_tok_decoder_init(kiln_tok_decoder *d, const kiln_tokenizer *t, unsigned flags) {
    *d = (kiln_tok_decoder){.tok = t, .flags = flags};
}

// Pass bytes through the hold-back: append complete characters (and bytes that can never
// be part of one) to out; keep an unfinished character's bytes in d->tail.
static bool feed(kiln_tok_decoder *d, const unsigned char *p, size_t n, kiln_tok_text *out) {
    size_t run = 0;     // p[run..i) are complete and not yet appended
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (d->n_tail) {
            if (utf8_continues(d->tail[0], d->n_tail, c)) {
                d->tail[d->n_tail++] = c;
                if (d->n_tail == d->need) {
                    if (!kiln_tok_text_append(out, d->tail, (size_t)d->n_tail)) return false;
                    d->n_tail = d->need = 0;
                }
                run = i + 1;
                continue;
            }
            // The held character is broken: its bytes go out as they are.
            if (!kiln_tok_text_append(out, d->tail, (size_t)d->n_tail)) return false;
            d->n_tail = d->need = 0;
            run = i;
        }
        int need = utf8_length(c);
        if (need <= 1) continue;        // ASCII or a stray byte: part of the run
        // A lead byte: the character is complete if its continuations follow in p.
        int k = 1;
        while (k < need && i + (size_t)k < n && utf8_continues(c, k, p[i + (size_t)k])) k++;
        if (k == need) {
            i += (size_t)need - 1;
            continue;
        }
        if (i + (size_t)k < n) {        // broken before the end of p: pass it through
            i += (size_t)k - 1;
            continue;
        }
        // Runs off the end of p: append what precedes it, hold it back.
        if (!kiln_tok_text_append(out, p + run, i - run)) return false;
        memcpy(d->tail, p + i, (size_t)k);
        d->n_tail = k;
        d->need = need;
        return true;
    }
    return kiln_tok_text_append(out, p + run, n - run);
}

int kiln_tok_decoder_push(kiln_tok_decoder *d, int32_t id, kiln_tok_text *out, char *err,
                          size_t errlen) {
    const kiln_tokenizer *t = d->tok;
    if (id < 0 || id >= t->n_vocab) {
        kiln_tok_seterr(err, errlen, "token id %d is outside the vocabulary [0, %d)", (int)id,
                        (int)t->n_vocab);
        return -1;
    }
    if ((d->flags & KILN_TOK_SKIP_SPECIAL) && kiln_tok_is_special(t, id)) return 0;
    if (t->kind == KILN_TOK_WORDPIECE) {
        if (d->started && !t->continues[id] && !feed(d, (const unsigned char *)" ", 1, out))
            goto oom;
        d->started = true;
    }
    if (!feed(d, (const unsigned char *)t->pieces[id], t->piece_len[id], out)) goto oom;
    return 0;
oom:
    kiln_tok_seterr(err, errlen, "out of memory decoding");
    return -1;
}

int kiln_tok_decoder_finish(kiln_tok_decoder *d, kiln_tok_text *out, char *err, size_t errlen) {
    bool ok = kiln_tok_text_append(out, d->tail, (size_t)d->n_tail);
    kiln_tok_decoder_init(d, d->tok, d->flags);
    if (!ok) kiln_tok_seterr(err, errlen, "out of memory decoding");
    return ok ? 0 : -1;
}

int kiln_tok_decode(const kiln_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                    kiln_tok_text *out, char *err, size_t errlen) {
    kiln_tok_decoder d;
    kiln_tok_decoder_init(&d, t, flags);
    for (size_t i = 0; i < n; i++) {
        if (kiln_tok_decoder_push(&d, ids[i], out, err, errlen) < 0) return -1;
    }
    return kiln_tok_decoder_finish(&d, out, err, errlen);
}
