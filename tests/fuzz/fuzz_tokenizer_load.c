/* tests/fuzz/fuzz_tokenizer_load.c: the tokenizer file loaders (runtime/tokenizer*.c) on
 * arbitrary vocabulary and merges files.
 *
 * Input: one byte choosing the layout, then the file contents:
 *
 *   byte 0 % 4   files written into a fresh folder                 loader
 *   0            encoder.json, vocab.bpe   (OpenAI names)         BPE
 *   1            vocab.json, merges.txt    (Hugging Face names)   BPE
 *   2            vocab.txt                                        WordPiece
 *   3            vocab.json                                       characters
 *
 * For the two-file layouts the rest of the input is split at the first "\n=====\n": the
 * vocabulary before it, the merges after (no separator: empty merges).  kiln_tok_load reads
 * the folder.  A tokenizer that loads encodes a fixed text and the input itself, decodes the
 * ids (at once and streamed) and every id of the vocabulary (up to 4096), and BPE and
 * character tokenizers must give the encoded bytes back.
 *
 * Seeds: corpus/tokenizer_load/ (small valid vocabularies of each kind, and broken ones).
 */
#define _GNU_SOURCE     // memmem
#include "kiln_tok.h"
#include "fuzz_util.h"

#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[4][2] = {
    {"encoder.json", "vocab.bpe"},
    {"vocab.json", "merges.txt"},
    {"vocab.txt", NULL},
    {"vocab.json", NULL},
};
static const char all_files[][16] = {"encoder.json", "vocab.bpe", "vocab.json", "merges.txt",
                                     "vocab.txt"};
static const char sep[] = "\n=====\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_tmpdir("tokenizer_load");
    return 0;
}

// Encode text, decode it back (at once and streamed) and check the round trip.
static void exercise(kiln_tokenizer *t, const char *text, size_t len)
{
    char err[256];
    kiln_tok_ids ids = {0};
    kiln_tok_text a = {0}, b = {0};
    for (unsigned flags = 0; flags <= KILN_TOK_PARSE_SPECIAL; flags += KILN_TOK_PARSE_SPECIAL) {
        ids.n = 0;
        if (kiln_tok_encode(t, text, len, flags, &ids, err, sizeof err) < 0)
            continue;
        a.n = b.n = 0;
        if (kiln_tok_decode(t, ids.ids, ids.n, 0, &a, err, sizeof err) != 0)
            abort();    // ids the encoder made are in the vocabulary
        kiln_tok_decoder d;
        kiln_tok_decoder_init(&d, t, 0);
        for (size_t i = 0; i < ids.n; i++)
            if (kiln_tok_decoder_push(&d, ids.ids[i], &b, err, sizeof err) != 0)
                abort();
        if (kiln_tok_decoder_finish(&d, &b, err, sizeof err) != 0)
            abort();
        if (a.n != b.n || (a.n && memcmp(a.bytes, b.bytes, a.n)))
            abort();    // streaming gives what decoding at once gives
        bool round_trip = a.n == len && (len == 0 || memcmp(a.bytes, text, len) == 0);
        if (flags == 0 && kiln_tok_get_kind(t) != KILN_TOK_WORDPIECE && !round_trip)
            abort();
    }
    ids.n = 0;
    kiln_tok_encode_bert(t, text, len, KILN_TOK_PARSE_SPECIAL, 4, &ids, NULL, err, sizeof err);
    kiln_tok_ids_free(&ids);
    kiln_tok_text_free(&a);
    kiln_tok_text_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_dir[0])
        LLVMFuzzerInitialize(NULL, NULL);
    if (size < 1)
        return 0;
    char path[512];
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
        unlink(fuzz_path(path, sizeof path, all_files[i]));

    int layout = data[0] % 4;
    const uint8_t *body = data + 1;
    size_t n = size - 1, first = n;
    const uint8_t *second = NULL;
    size_t n_second = 0;
    if (names[layout][1]) {
        const uint8_t *s = memmem(body, n, sep, sizeof sep - 1);
        if (s) {
            first = (size_t)(s - body);
            second = s + sizeof sep - 1;
            n_second = n - first - (sizeof sep - 1);
        }
        fuzz_write(fuzz_path(path, sizeof path, names[layout][1]), second, n_second);
    }
    fuzz_write(fuzz_path(path, sizeof path, names[layout][0]), body, first);

    char err[512] = "";
    kiln_tokenizer *t = kiln_tok_load(fuzz_dir, err, sizeof err);
    if (getenv("KILN_FUZZ_VERBOSE"))
        fprintf(stderr, "%s\n", t ? kiln_tok_kind_name(kiln_tok_get_kind(t)) : err);
    if (!t) {
        if (!err[0])
            abort();
        return 0;
    }
    int32_t n_vocab = kiln_tok_vocab_size(t);
    if (n_vocab < 0)
        abort();
    static const char sample[] =
        "Hello, World! It's 2024 [MASK] <|endoftext|> caf\xc3\xa9 \xf0\x9f\xa6";
    exercise(t, sample, sizeof sample - 1);
    exercise(t, (const char *)data, size);

    // Every id's spelling and piece, and a streamed decode of the first ids.
    kiln_tok_decoder d;
    kiln_tok_text out = {0};
    kiln_tok_decoder_init(&d, t, KILN_TOK_SKIP_SPECIAL);
    for (int32_t id = 0; id < n_vocab && id < 4096; id++) {
        size_t len;
        const char *spelling = kiln_tok_token(t, id);
        const char *piece = kiln_tok_piece(t, id, &len);
        if (!spelling || (!piece && len))
            abort();
        (void)kiln_tok_id(t, spelling);
        if (kiln_tok_decoder_push(&d, id, &out, err, sizeof err) != 0)
            abort();
    }
    if (kiln_tok_decoder_push(&d, n_vocab, &out, err, sizeof err) == 0 ||
        kiln_tok_decoder_push(&d, -1, &out, err, sizeof err) == 0)
        abort();        // ids outside the vocabulary are errors
    kiln_tok_decoder_finish(&d, &out, err, sizeof err);
    const kiln_tok_special *sp = kiln_tok_specials(t);
    if (!sp || sp->eot >= n_vocab || sp->unk >= n_vocab || sp->cls >= n_vocab ||
        sp->sep >= n_vocab || sp->pad >= n_vocab || sp->mask >= n_vocab)
        abort();
    kiln_tok_text_free(&out);
    kiln_tok_free(t);
    return 0;
}
