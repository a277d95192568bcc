/* tokenizer_char.c: character vocabularies (runtime/kiln_tok.h, kind KILN_TOK_CHAR).
 *
 * A character-level model (nanoGPT's shakespeare_char, the gpt2-shakespeare-char fixture)
 * has one id per Unicode character: id k is itos[k].  Encoding looks each UTF-8 character
 * up; a character outside the vocabulary, or a byte that is not UTF-8, is an error that
 * names it and its byte offset, since there is no [UNK] to fall back on.
 *
 * File: vocab.json = {"type": "char", "itos": ["\n", " ", "!", ...]}.
 */
#define KILN_TOK_INTERNAL
#include "kiln_tok.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

// Load a character vocabulary.  Every itos entry must be exactly one character, and no
// character may appear twice.  Returns NULL with a message naming the file on failure.
kiln_tokenizer *kiln_tok_load_char(const char *path, char *err, size_t errlen) {
    size_t len;
    char *buf = kiln_tok_read_file(path, &len, err, errlen);
    if (!buf) return NULL;
    kiln_tokenizer *t = calloc(1, sizeof *t);
    const char **tok = NULL;
    uint32_t *tok_len = NULL;
    cJSON *root = kiln_tok_parse_json(path, buf, len, err, errlen);
    if (!root) goto fail;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    const cJSON *itos = cJSON_GetObjectItemCaseSensitive(root, "itos");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "char") || !cJSON_IsArray(itos)) {
        kiln_tok_seterr(err, errlen,
                        "%s: not a character vocabulary ({\"type\": \"char\", \"itos\": [...]}); "
                        "for a GPT-2 BPE vocabulary put merges.txt or vocab.bpe beside it",
                        path);
        goto fail;
    }
    int n = cJSON_GetArraySize(itos);
    tok = calloc((size_t)(n ? n : 1), sizeof *tok);
    tok_len = calloc((size_t)(n ? n : 1), sizeof *tok_len);
    if (!t || !tok || !tok_len) {
        kiln_tok_seterr(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (n == 0) {
        kiln_tok_seterr(err, errlen, "%s: \"itos\" is empty", path);
        goto fail;
    }
    t->kind = KILN_TOK_CHAR;
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, itos) {
        utf8proc_int32_t c;
        size_t m = cJSON_IsString(e) ? strlen(e->valuestring) : 0;
        utf8proc_ssize_t used = m ? utf8proc_iterate((const utf8proc_uint8_t *)e->valuestring,
                                                     (utf8proc_ssize_t)m, &c) : -1;
        if (used < 0 || (size_t)used != m) {
            kiln_tok_seterr(err, errlen, "%s: itos[%d] is not a string of one character", path,
                            k);
            goto fail;
        }
        tok[k] = e->valuestring;
        tok_len[k++] = (uint32_t)m;
    }
    if (!kiln_tok_set_vocab(t, n, tok, tok_len, err, errlen)) goto fail;
    for (int32_t id = 0; id < n; id++) {
        int32_t first = kiln_tok_lookup(t, t->tokens[id], t->token_len[id]);
        if (first != id) {
            kiln_tok_seterr(err, errlen, "%s: itos[%d] and itos[%d] are both \"%s\"", path,
                            (int)id, (int)first, t->tokens[id]);
            goto fail;
        }
    }
    free(tok);
    free(tok_len);
    cJSON_Delete(root);
    free(buf);
    return t;
fail:
    free(tok);
    free(tok_len);
    cJSON_Delete(root);
    free(buf);
    kiln_tok_free(t);
    return NULL;
}

// Encode text one character at a time.  Returns the number of ids appended, or -1 with a
// message naming the first character (or invalid byte) missing from the vocabulary.
int64_t kiln_tok_encode_char(kiln_tokenizer *t, const char *text, size_t len, kiln_tok_ids *out,
                             char *err, size_t errlen) {
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)text;
    size_t n0 = out->n;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &c);
        if (k < 0) {
            kiln_tok_seterr(err, errlen, "invalid UTF-8 byte 0x%02x at byte offset %zu", s[i], i);
            return -1;
        }
        int32_t id = kiln_tok_lookup(t, text + i, (size_t)k);
        if (id < 0) {
            char shown[16];
            if (c < 0x20 || c == 0x7f) {
                snprintf(shown, sizeof shown, "\\x%02x", (unsigned)c);
            } else {
                snprintf(shown, sizeof shown, "%.*s", (int)k, text + i);
            }
            kiln_tok_seterr(err, errlen, "character '%s' (U+%04X) at byte offset %zu is not in "
                            "the vocabulary of %d characters", shown, (unsigned)c, i,
                            (int)t->n_vocab);
            return -1;
        }
        if (!kiln_tok_ids_push(out, id)) {
            kiln_tok_seterr(err, errlen, "out of memory encoding %zu bytes", len);
            return -1;
        }
        i += (size_t)k;
    }
    return (int64_t)(out->n - n0);
}
