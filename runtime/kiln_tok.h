/* kiln_tok.h: tokenizers for the kiln runtime: text in, token ids out, and back.
 *
 * The second public header of the runtime, next to kiln_rt.h.  Generated model code never
 * includes it; the command-line mains that turn a prompt into input ids (GPT-2 generation,
 * BERT fill-mask) and ids back into text do.  Three kinds of vocabulary, picked by
 * kiln_tok_load() from the files it finds:
 *
 *   GPT-2 byte-level BPE   encoder.json + vocab.bpe (OpenAI) or vocab.json + merges.txt (HF)
 *   BERT WordPiece         vocab.txt (uncased: lowercase, strip accents, split punctuation)
 *   characters             vocab.json holding {"type": "char", "itos": [...]}
 *
 * Typical use:
 *
 *     char err[256];
 *     kiln_tokenizer *tok = kiln_tok_load("data/gpt2-tokenizer", err, sizeof err);
 *     if (!tok) { fprintf(stderr, "%s\n", err); exit(1); }
 *     kiln_tok_ids ids = {0};
 *     if (kiln_tok_encode(tok, text, strlen(text), 0, &ids, err, sizeof err) < 0) ...
 *     kiln_tok_decoder dec;                        // streaming: one id at a time
 *     kiln_tok_decoder_init(&dec, tok, 0);
 *     kiln_tok_text out = {0};
 *     for (...) { out.n = 0; kiln_tok_decoder_push(&dec, id, &out, err, sizeof err);
 *                 fwrite(out.bytes, 1, out.n, stdout); }
 *     kiln_tok_ids_free(&ids); kiln_tok_text_free(&out); kiln_tok_free(tok);
 *
 * Errors: every function that can fail takes `char *err, size_t errlen` and writes a
 * one-line message there (err may be NULL).  Nothing here prints or exits; allocation
 * failures are reported as errors too.
 *
 * Threads: a tokenizer is read-only after loading except for the BPE word cache and regex
 * scratch that encoding updates, so encode with one tokenizer from one thread at a time;
 * decoding and the lookups are safe from any number of threads.
 *
 * Links against libpcre2-8 (GPT-2 pre-tokenization), libutf8proc (Unicode) and libcjson.
 */
#ifndef KILN_TOK_H
#define KILN_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kiln_tokenizer kiln_tokenizer;

typedef enum {
    KILN_TOK_BPE = 0,       // GPT-2 byte-level BPE
    KILN_TOK_WORDPIECE = 1, // BERT uncased WordPiece
    KILN_TOK_CHAR = 2,      // one id per Unicode character (nanoGPT's shakespeare_char)
} kiln_tok_kind;

// Ids of the special tokens a vocabulary has; -1 where it has none.
typedef struct {
    int32_t eot;            // "<|endoftext|>" (GPT-2: 50256)
    int32_t unk;            // "[UNK]" (bert-base-uncased: 100)
    int32_t cls;            // "[CLS]" (101)
    int32_t sep;            // "[SEP]" (102)
    int32_t pad;            // "[PAD]" (0)
    int32_t mask;           // "[MASK]" (103)
} kiln_tok_special;

// A growable array of ids.  Start from {0}; the encoders append to it (n grows, ids may
// move); reset with `v.n = 0`; release with kiln_tok_ids_free().
typedef struct {
    int32_t *ids;           // [n] token ids
    size_t n;               // ids in use
    size_t cap;             // ids allocated
} kiln_tok_ids;

// A growable byte string.  Start from {0}; decoders append to it; bytes[n] is always a NUL
// once anything was appended (the text itself may contain NULs: use n, not strlen).
typedef struct {
    char *bytes;            // [n + 1] decoded bytes, NUL-terminated
    size_t n;               // bytes in use, not counting the terminator
    size_t cap;             // bytes allocated
} kiln_tok_text;

// Flags for kiln_tok_encode() and kiln_tok_encode_bert().
enum {
    // Recognize the special tokens' own spellings in the text ("<|endoftext|>", "[MASK]",
    // "[SEP]", ...) and emit their ids, as Hugging Face tokenizers do by default.  Without
    // it, special spellings are ordinary text ("[MASK]" -> "[", "mask", "]").
    KILN_TOK_PARSE_SPECIAL = 1u << 0,
};

// Flags for kiln_tok_decoder_init().
enum {
    KILN_TOK_SKIP_SPECIAL = 1u << 0,    // special tokens decode to nothing
};

/* ---------------------------------------------------------------------------------------
 * Loading and lookups
 */

// Load a tokenizer from `path`:
//   - a directory holding encoder.json + vocab.bpe, or vocab.json + merges.txt -> BPE;
//   - a directory holding vocab.txt, or a vocab.txt (any *.txt) file -> WordPiece;
//   - a directory holding only vocab.json, or a *.json file, whose JSON is
//     {"type": "char", "itos": ["\n", " ", ...]} -> characters;
//   - an encoder.json / vocab.json file beside vocab.bpe / merges.txt -> BPE.
// Returns the tokenizer (release with kiln_tok_free), or NULL with a message in err that
// names the file and, for bad content, the line or byte offset.
kiln_tokenizer *kiln_tok_load(const char *path, char *err, size_t errlen);

// Release t and everything it owns.  NULL is allowed.
void kiln_tok_free(kiln_tokenizer *t);

kiln_tok_kind kiln_tok_get_kind(const kiln_tokenizer *t);
const char *kiln_tok_kind_name(kiln_tok_kind k);          // "bpe", "wordpiece", "char"

// Number of ids: valid ids are 0 .. kiln_tok_vocab_size(t) - 1.
int32_t kiln_tok_vocab_size(const kiln_tokenizer *t);

// Id of a token spelled exactly as in the vocabulary file (GPT-2 writes a leading space as
// "Ġ": kiln_tok_id(t, "Ġworld") = 995; WordPiece continuations keep "##"), or -1.
int32_t kiln_tok_id(const kiln_tokenizer *t, const char *token);

// Vocabulary spelling of an id (NUL-terminated, owned by t), or NULL if id is out of range.
const char *kiln_tok_token(const kiln_tokenizer *t, int32_t id);

// Bytes an id decodes to on its own (GPT-2: raw bytes, possibly part of a UTF-8 character;
// WordPiece: the token without "##"; char: the character), length in *len; NULL and *len = 0
// if id is out of range.  Owned by t; not NUL-terminated in general.
const char *kiln_tok_piece(const kiln_tokenizer *t, int32_t id, size_t *len);

// The special-token ids of t (all -1 for a char vocabulary).
const kiln_tok_special *kiln_tok_specials(const kiln_tokenizer *t);

// End-of-text id ("<|endoftext|>"), or -1 if the vocabulary has none.
int32_t kiln_tok_eot(const kiln_tokenizer *t);

// Whether id is one of t's special tokens.
bool kiln_tok_is_special(const kiln_tokenizer *t, int32_t id);

/* ---------------------------------------------------------------------------------------
 * Encoding
 */

// Encode `len` bytes of UTF-8 text (NULs allowed; invalid UTF-8 allowed, see below; text may
// be NULL when len is 0) and append the ids to out; no special tokens are added (see
// kiln_tok_encode_bert).  flags: 0 or KILN_TOK_PARSE_SPECIAL.
// Invalid UTF-8: BPE encodes the bytes as they are (decoding gives them back); WordPiece
// drops them, as it drops U+FFFD; a char vocabulary fails.
// Returns the number of ids appended, or -1 with a message in err (a char vocabulary's
// unknown character names the character and its byte offset); out keeps what it held.
int64_t kiln_tok_encode(kiln_tokenizer *t, const char *text, size_t len, unsigned flags,
                        kiln_tok_ids *out, char *err, size_t errlen);

// Encode text for a BERT model: append [CLS] pieces... [SEP] to out.  When max_len > 0 and
// the total would exceed it, pieces are dropped from the end so the total is max_len
// (>= 2); *n_dropped (may be NULL) receives how many were dropped.  flags as for
// kiln_tok_encode (KILN_TOK_PARSE_SPECIAL to let "[MASK]" in the text stand for the mask).
// Returns the number of ids appended, or -1 with a message in err (no [CLS]/[SEP] in the
// vocabulary, max_len of 1, or an encoding error).
int64_t kiln_tok_encode_bert(kiln_tokenizer *t, const char *text, size_t len, unsigned flags,
                             size_t max_len, kiln_tok_ids *out, size_t *n_dropped,
                             char *err, size_t errlen);

/* ---------------------------------------------------------------------------------------
 * Decoding
 */

// Streaming decoder state.  GPT-2 tokens are bytes, so one id can end in the middle of a
// UTF-8 character; the decoder holds such a tail back until the id that completes it
// arrives, so every push appends only whole characters.  Bytes that can never start or
// continue a valid character are passed through at once, so the concatenated output is
// exactly the bytes the ids stand for.
typedef struct {
    const kiln_tokenizer *tok;
    unsigned flags;         // KILN_TOK_SKIP_SPECIAL or 0
    unsigned char tail[4];  // bytes of an incomplete UTF-8 character held back
    int n_tail;             // bytes in tail (0..3)
    int need;               // length of the character tail starts (2..4), 0 if no tail
    bool started;           // WordPiece: a word was emitted (the next one gets a space)
} kiln_tok_decoder;

// Start decoding with t (which must outlive d).  flags: 0 or KILN_TOK_SKIP_SPECIAL.
void kiln_tok_decoder_init(kiln_tok_decoder *d, const kiln_tokenizer *t, unsigned flags);

// Decode one id, appending the complete characters it finishes to out.  WordPiece joins
// words with a space and glues "##" pieces to the word before.  Returns 0, or -1 with a
// message in err for an id outside the vocabulary or an allocation failure.
int kiln_tok_decoder_push(kiln_tok_decoder *d, int32_t id, kiln_tok_text *out,
                          char *err, size_t errlen);

// End of input: append the held-back bytes of an unfinished character (invalid UTF-8, as
// the ids spelled it) and reset d for a new text.  Returns 0, or -1 if allocation fails.
int kiln_tok_decoder_finish(kiln_tok_decoder *d, kiln_tok_text *out, char *err, size_t errlen);

// Decode n ids at once (push each, then finish), appending to out.  flags as for
// kiln_tok_decoder_init.  For BPE, decode(encode(x)) == x for any bytes x.
// Returns 0, or -1 with a message in err.
int kiln_tok_decode(const kiln_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                    kiln_tok_text *out, char *err, size_t errlen);

void kiln_tok_ids_free(kiln_tok_ids *v);    // frees v->ids and zeroes v
void kiln_tok_text_free(kiln_tok_text *s);  // frees s->bytes and zeroes s

/* ---------------------------------------------------------------------------------------
 * Internal: shared by runtime/tokenizer*.c only, not part of the API.
 */
#ifdef KILN_TOK_INTERNAL

// String -> id table over the vocabulary's own spellings (open addressing, linear probing;
// slots hold ids, keys are compared against tokens[id]).
typedef struct {
    int32_t *slot;          // [mask + 1] id, or -1 for an empty slot
    uint32_t mask;          // table size - 1 (a power of two, at least twice n_vocab)
} kiln_tok_map;

typedef struct kiln_bpe kiln_bpe;

struct kiln_tokenizer {
    kiln_tok_kind kind;
    int32_t n_vocab;
    char *blob;             // every token spelling, NUL-separated, in one block
    char *piece_blob;       // BPE: the decoded pieces, in one block (NULL otherwise)
    const char **tokens;    // [n_vocab] vocabulary spellings (into blob)
    uint32_t *token_len;    // [n_vocab] byte length of tokens[id]
    const char **pieces;    // [n_vocab] bytes each id decodes to (into blob or piece_blob)
    uint32_t *piece_len;    // [n_vocab] byte length of pieces[id]
    bool *continues;        // [n_vocab] WordPiece "##" piece (glued to the previous word)
    kiln_tok_map map;       // tokens -> id
    kiln_tok_special special;
    kiln_bpe *bpe;          // KILN_TOK_BPE: merges, regex, word cache
};

// tokenizer.c: helpers for the loaders and encoders.
void kiln_tok_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *kiln_tok_read_file(const char *path, size_t *len, char *err, size_t errlen);
bool kiln_tok_set_vocab(kiln_tokenizer *t, int32_t n, const char *const *tok,
                        const uint32_t *len, char *err, size_t errlen);
int32_t kiln_tok_lookup(const kiln_tokenizer *t, const char *s, size_t len);
bool kiln_tok_ids_push(kiln_tok_ids *v, int32_t id);
bool kiln_tok_text_append(kiln_tok_text *s, const void *bytes, size_t n);
struct cJSON *kiln_tok_parse_json(const char *path, const char *buf, size_t len, char *err,
                                  size_t errlen);

// tokenizer_bpe.c
kiln_tokenizer *kiln_tok_load_bpe(const char *vocab_path, const char *merges_path, char *err,
                                  size_t errlen);
int64_t kiln_tok_encode_bpe(kiln_tokenizer *t, const char *text, size_t len,
                            kiln_tok_ids *out, char *err, size_t errlen);
void kiln_tok_free_bpe(kiln_bpe *b);

// tokenizer_wordpiece.c
kiln_tokenizer *kiln_tok_load_wordpiece(const char *path, char *err, size_t errlen);
int64_t kiln_tok_encode_wordpiece(kiln_tokenizer *t, const char *text, size_t len,
                                  kiln_tok_ids *out, char *err, size_t errlen);

// tokenizer_char.c
kiln_tokenizer *kiln_tok_load_char(const char *path, char *err, size_t errlen);
int64_t kiln_tok_encode_char(kiln_tokenizer *t, const char *text, size_t len,
                             kiln_tok_ids *out, char *err, size_t errlen);

#endif // KILN_TOK_INTERNAL

#endif // KILN_TOK_H
