/* tests/fuzz/fuzz_tokenizer.h: the body of the three tokenizer harnesses.
 *
 * fuzz_tokenizer_bpe.c, fuzz_tokenizer_wordpiece.c and fuzz_tokenizer_char.c each define
 * FUZZ_TOK_NAME and FUZZ_TOK_PATH (a vocabulary under ../shared/data) and include this file.
 * The vocabulary is loaded once; when it is absent the harness runs nothing and the replay
 * test reports itself skipped.
 *
 * Each input is used twice:
 *   - as text (any bytes, NULs included): encoded without and with KILN_TOK_PARSE_SPECIAL,
 *     and with kiln_tok_encode_bert at a max_len taken from the input's size; the ids are
 *     decoded at once and one at a time through the streaming decoder, with and without
 *     KILN_TOK_SKIP_SPECIAL;
 *   - as ids (little-endian 16-bit numbers spread over [-8, n_vocab + 8)): decoded at once
 *     and streamed, so out-of-range and special ids are exercised.
 *
 * Checked beyond the sanitizers (abort = finding):
 *   - streaming gives exactly the bytes decoding at once gives, and both give the
 *     concatenation of the ids' pieces (WordPiece: with its spaces, so only the first);
 *   - BPE: decode(encode(x)) == x for any bytes x (kiln_tok.h promises it);
 *     characters: the same whenever encoding succeeds;
 *   - an id outside the vocabulary is an error, not a read.
 */
#ifndef FUZZ_TOK_NAME
#error "define FUZZ_TOK_NAME and FUZZ_TOK_PATH before including fuzz_tokenizer.h"
#endif

#include "kiln_tok.h"
#include "fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *fuzz_skip_reason;

static kiln_tokenizer *tok;
static char skip_msg[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_data_dir(), FUZZ_TOK_PATH);
    tok = kiln_tok_load(path, err, sizeof err);
    if (!tok) {
        snprintf(skip_msg, sizeof skip_msg, "fuzz_%s: no vocabulary (%s); nothing is run",
                 FUZZ_TOK_NAME, err);
        fuzz_skip_reason = skip_msg;
        fprintf(stderr, "%s\n", skip_msg);
    }
    return 0;
}

// Append b to a (the harness's own copy of the runtime's internal helper).
static bool text_add(kiln_tok_text *a, const kiln_tok_text *b)
{
    if (a->n + b->n + 1 > a->cap) {
        size_t cap = (a->n + b->n + 1) * 2;
        char *p = realloc(a->bytes, cap);
        if (!p)
            return false;
        a->bytes = p;
        a->cap = cap;
    }
    memcpy(a->bytes + a->n, b->bytes, b->n);
    a->n += b->n;
    a->bytes[a->n] = 0;
    return true;
}

static bool ids_add(kiln_tok_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p)
            return false;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return true;
}

static bool same(const kiln_tok_text *a, const kiln_tok_text *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->bytes, b->bytes, a->n) == 0);
}

// Decode ids at once and streamed; both must agree.  Returns whether decoding succeeded;
// the text goes to *all.
static bool decode_both(const int32_t *ids, size_t n, unsigned flags, kiln_tok_text *all)
{
    char err[256];
    all->n = 0;
    int rc = kiln_tok_decode(tok, ids, n, flags, all, err, sizeof err);

    kiln_tok_decoder dec;
    kiln_tok_decoder_init(&dec, tok, flags);
    kiln_tok_text streamed = {0}, piece = {0};
    int rc2 = 0;
    for (size_t i = 0; i < n && rc2 == 0; i++) {
        piece.n = 0;
        rc2 = kiln_tok_decoder_push(&dec, ids[i], &piece, err, sizeof err);
        if (rc2 == 0 && piece.n && !text_add(&streamed, &piece))
            abort();
    }
    if (rc2 == 0) {
        piece.n = 0;
        rc2 = kiln_tok_decoder_finish(&dec, &piece, err, sizeof err);
        if (piece.n && !text_add(&streamed, &piece))
            abort();
    }
    if ((rc == 0) != (rc2 == 0) || (rc == 0 && !same(all, &streamed)))
        abort();
    kiln_tok_text_free(&streamed);
    kiln_tok_text_free(&piece);
    return rc == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok)
        return 0;
    const char *text = (const char *)data;
    char err[256];
    kiln_tok_ids ids = {0};
    kiln_tok_text out = {0}, concat = {0};

    // 1. text -> ids -> text
    for (unsigned flags = 0; flags <= KILN_TOK_PARSE_SPECIAL; flags += KILN_TOK_PARSE_SPECIAL) {
        ids.n = 0;
        int64_t k = kiln_tok_encode(tok, text, size, flags, &ids, err, sizeof err);
        if (k >= 0 && (size_t)k != ids.n)
            abort();
        if (k < 0)
            continue;
        for (size_t i = 0; i < ids.n; i++)
            if (ids.ids[i] < 0 || ids.ids[i] >= kiln_tok_vocab_size(tok))
                abort();
        decode_both(ids.ids, ids.n, KILN_TOK_SKIP_SPECIAL, &out);
        if (!decode_both(ids.ids, ids.n, 0, &out))
            abort();
        kiln_tok_kind kind = kiln_tok_get_kind(tok);
        bool round_trip = out.n == size && (size == 0 || memcmp(out.bytes, text, size) == 0);
        if (kind != KILN_TOK_WORDPIECE && flags == 0 && !round_trip)
            abort();    // BPE and char vocabularies round-trip
    }
    ids.n = 0;
    size_t dropped;
    if (kiln_tok_encode_bert(tok, text, size, KILN_TOK_PARSE_SPECIAL, size % 8, &ids, &dropped,
                             err, sizeof err) >= 0) {
        if (size % 8 > 1 && ids.n > size % 8)
            abort();
        decode_both(ids.ids, ids.n, KILN_TOK_SKIP_SPECIAL, &out);
    }

    // 2. bytes as ids
    ids.n = 0;
    int32_t n_vocab = kiln_tok_vocab_size(tok);
    bool in_range = true;
    for (size_t i = 0; i + 1 < size; i += 2) {
        int32_t id = (int32_t)((data[i] | data[i + 1] << 8) % (uint32_t)(n_vocab + 16)) - 8;
        in_range &= id >= 0 && id < n_vocab;
        if (!ids_add(&ids, id))
            abort();
    }
    bool ok = decode_both(ids.ids, ids.n, 0, &out);
    if (ok != in_range)
        abort();
    if (ok && kiln_tok_get_kind(tok) != KILN_TOK_WORDPIECE) {
        for (size_t i = 0; i < ids.n; i++) {
            size_t len;
            const char *p = kiln_tok_piece(tok, ids.ids[i], &len);
            kiln_tok_text one = {.bytes = (char *)p, .n = len};
            if (len && !text_add(&concat, &one))
                abort();
        }
        if (!same(&out, &concat))
            abort();
    }
    decode_both(ids.ids, ids.n, KILN_TOK_SKIP_SPECIAL, &out);
    for (size_t i = 0; i < ids.n; i++) {
        size_t len;
        (void)kiln_tok_token(tok, ids.ids[i]);
        (void)kiln_tok_piece(tok, ids.ids[i], &len);
        (void)kiln_tok_is_special(tok, ids.ids[i]);
    }

    kiln_tok_ids_free(&ids);
    kiln_tok_text_free(&out);
    kiln_tok_text_free(&concat);
    return 0;
}
