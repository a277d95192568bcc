/* tokenizer_wordpiece.c: BERT uncased WordPiece (runtime/kiln_tok.h, kind KILN_TOK_WORDPIECE).
 *
 * What bert-base-uncased's tokenizer does (Hugging Face BertTokenizer: BasicTokenizer with
 * do_lower_case, then WordpieceTokenizer), in one pass over the text's characters:
 *
 *   1. clean: drop NUL, U+FFFD and control characters (categories C*, except tab, newline
 *      and carriage return, which are whitespace); invalid UTF-8 bytes count as U+FFFD;
 *   2. whitespace (category Zs, tab, newline, CR, U+2028, U+2029) ends a word;
 *   3. CJK ideographs become words of their own (as if spaces were put around them);
 *   4. lowercase, NFD, drop nonspacing marks (Mn): "Führer" -> "fuhrer";
 *   5. punctuation (categories P*, and all ASCII symbols !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~)
 *      becomes a word of its own;
 *   6. each word -> WordPiece: greedy longest match from the left, pieces after the first
 *      spelled "##piece"; a word with an unmatched rest, or longer than 100 characters,
 *      becomes [UNK].
 *
 * Unicode data (categories, lowercase, NFD) comes from utf8proc.  Lowercasing is per
 * character (utf8proc_tolower), as in Hugging Face's fast tokenizer; Python's str.lower()
 * would also turn a word-final capital sigma into "ς" where this gives "σ".
 *
 * File: vocab.txt, one token per line; line k (from 0) is id k.
 */
#define KILN_TOK_INTERNAL
#include "kiln_tok.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum { MAX_WORD_CHARS = 100 };  // longer words become [UNK] (BERT's max_input_chars_per_word)

/* ---------------------------------------------------------------------------------------
 * Loading
 */

// Load vocab.txt.  Every line is a token (an empty line too, except after the last
// newline); a trailing CR is dropped.  Returns NULL with a message on failure.
kiln_tokenizer *kiln_tok_load_wordpiece(const char *path, char *err, size_t errlen) {
    size_t len;
    char *buf = kiln_tok_read_file(path, &len, err, errlen);
    if (!buf) return NULL;
    kiln_tokenizer *t = calloc(1, sizeof *t);
    const char **tok = NULL;
    uint32_t *tok_len = NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += buf[i] == '\n';
    if (len && buf[len - 1] != '\n') n++;
    if (n == 0 || memchr(buf, 0, len)) {
        kiln_tok_seterr(err, errlen, "%s: %s", path,
                        n == 0 ? "empty vocabulary" : "contains NUL bytes; not a vocab.txt");
        goto fail;
    }
    if (n > INT32_MAX / 4) {
        kiln_tok_seterr(err, errlen, "%s: %zu lines is too many tokens", path, n);
        goto fail;
    }
    tok = malloc(n * sizeof *tok);
    tok_len = malloc(n * sizeof *tok_len);
    if (!t || !tok || !tok_len) {
        kiln_tok_seterr(err, errlen, "%s: out of memory for %zu tokens", path, n);
        goto fail;
    }
    t->kind = KILN_TOK_WORDPIECE;
    size_t k = 0;
    for (char *line = buf, *end; k < n; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + len - line));
        if (!end) end = buf + len;
        size_t m = (size_t)(end - line);
        if (m && line[m - 1] == '\r') m--;
        tok[k] = line;
        tok_len[k++] = (uint32_t)m;
    }
    if (!kiln_tok_set_vocab(t, (int32_t)n, tok, tok_len, err, errlen)) goto fail;
    // A "##" continuation decodes without its marker and glued to the word before it.
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->token_len[id] > 2 && !memcmp(t->tokens[id], "##", 2)) {
            t->continues[id] = true;
            t->pieces[id] += 2;
            t->piece_len[id] -= 2;
        }
    }
    free(tok);
    free(tok_len);
    free(buf);
    return t;
fail:
    free(tok);
    free(tok_len);
    free(buf);
    kiln_tok_free(t);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Character classes
 */

static bool is_whitespace(int32_t c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
           cat == UTF8PROC_CATEGORY_ZP;
}

// Dropped by cleaning: Cc, Cf, Cs, Co and unassigned (Cn); tab/newline/CR are whitespace.
static bool is_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_CC ||
           cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CS ||
           cat == UTF8PROC_CATEGORY_CO;
}

static bool is_punctuation(int32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
        (c >= 123 && c <= 126))
        return true;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

// The CJK Unified Ideographs blocks BERT spaces out (not Hangul, kana or CJK punctuation).
static bool is_cjk(int32_t c) {
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
           (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b820 && c <= 0x2ceaf) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 */

// The word being built: normalized UTF-8 and its character count.
typedef struct {
    char *bytes;            // [cap] UTF-8 of the word so far
    size_t n, cap;
    size_t n_chars;
    char *probe;            // [cap + 2] "##" + a substring, for vocabulary lookups
} Word;

// Append character c to the word.  Returns false with a message in err if out of memory.
static bool word_put(Word *w, int32_t c, char *err, size_t errlen) {
    if (w->n + 4 > w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 256;
        char *p = realloc(w->bytes, cap);
        if (p) w->bytes = p;
        char *q = realloc(w->probe, cap + 2);
        if (q) w->probe = q;
        if (!p || !q) {
            kiln_tok_seterr(err, errlen, "out of memory");
            return false;
        }
        w->cap = cap;
    }
    w->n += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)w->bytes + w->n);
    w->n_chars++;
    return true;
}

// Greedy longest-match-first WordPiece of the finished word; appends its ids (or [UNK]) and
// empties the word.  Returns false with a message in err.
static bool word_flush(const kiln_tokenizer *t, Word *w, kiln_tok_ids *out, char *err,
                       size_t errlen) {
    if (w->n == 0) return true;
    size_t n0 = out->n;
    bool unk = w->n_chars > MAX_WORD_CHARS;
    memcpy(w->probe, "##", 2);
    for (size_t start = 0; start < w->n && !unk;) {
        // Try the longest rest first, shortening by one character at a time.
        size_t end = w->n;
        int32_t id = -1;
        while (end > start) {
            if (start == 0) {
                id = kiln_tok_lookup(t, w->bytes, end);
            } else {
                memcpy(w->probe + 2, w->bytes + start, end - start);
                id = kiln_tok_lookup(t, w->probe, end - start + 2);
            }
            if (id >= 0) break;
            do end--;
            while (end > start && ((unsigned char)w->bytes[end] & 0xc0) == 0x80);
        }
        if (id < 0) {
            unk = true;
            break;
        }
        if (!kiln_tok_ids_push(out, id)) goto oom;
        start = end;
    }
    if (unk) {
        if (t->special.unk < 0) {
            kiln_tok_seterr(err, errlen, "word \"%.*s\" has no WordPiece split and the "
                            "vocabulary has no [UNK]", (int)(w->n > 60 ? 60 : w->n), w->bytes);
            return false;
        }
        out->n = n0;
        if (!kiln_tok_ids_push(out, t->special.unk)) goto oom;
    }
    w->n = w->n_chars = 0;
    return true;
oom:
    kiln_tok_seterr(err, errlen, "out of memory");
    return false;
}

// Encode text (no special spellings in it) as described at the top of the file.
// Returns the number of ids appended, or -1 with a message in err.
int64_t kiln_tok_encode_wordpiece(kiln_tokenizer *t, const char *text, size_t len,
                                  kiln_tok_ids *out, char *err, size_t errlen) {
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)text;
    size_t n0 = out->n;
    Word w = {0};
    bool ok = false;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &c);
        if (k < 0) {            // invalid UTF-8: one byte, read as U+FFFD, which is dropped
            i++;
            continue;
        }
        i += (size_t)k;
        if (c == 0 || c == 0xfffd || is_control(c)) continue;
        if (is_whitespace(c)) {
            if (!word_flush(t, &w, out, err, errlen)) goto done;
            continue;
        }
        bool alone = is_cjk(c);
        if (alone && !word_flush(t, &w, out, err, errlen)) goto done;
        // Lowercase, then NFD one character and drop its nonspacing marks.
        utf8proc_int32_t nfd[32];
        utf8proc_ssize_t m = utf8proc_decompose_char(utf8proc_tolower(c), nfd, 32,
                                                     UTF8PROC_DECOMPOSE, NULL);
        if (m < 0 || m > 32) {
            nfd[0] = utf8proc_tolower(c);
            m = 1;
        }
        for (utf8proc_ssize_t j = 0; j < m; j++) {
            int32_t d = nfd[j];
            if (utf8proc_category(d) == UTF8PROC_CATEGORY_MN) continue;
            if (is_punctuation(d)) {
                if (!word_flush(t, &w, out, err, errlen) || !word_put(&w, d, err, errlen) ||
                    !word_flush(t, &w, out, err, errlen))
                    goto done;
            } else if (!word_put(&w, d, err, errlen)) {
                goto done;
            }
        }
        if (alone && !word_flush(t, &w, out, err, errlen)) goto done;
    }
    ok = word_flush(t, &w, out, err, errlen);
done:
    free(w.bytes);
    free(w.probe);
    if (!ok) {
        out->n = n0;
        return -1;
    }
    return (int64_t)(out->n - n0);
}
