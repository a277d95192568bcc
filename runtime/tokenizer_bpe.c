/* tokenizer_bpe.c: GPT-2 byte-level BPE (runtime/kiln_tok.h, kind KILN_TOK_BPE).
 *
 * GPT-2 tokenizes bytes, not characters, so any byte string has an encoding and decodes
 * back to itself.  Encoding a text:
 *
 *   1. pre-tokenize: cut the text into words with GPT-2's regex (PCRE2, Unicode mode):
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      Invalid UTF-8 matches nothing; each run of it between matches is a word of its own.
 *   2. each word starts as one symbol per byte: the vocabulary token spelling that byte under
 *      GPT-2's byte -> character map (printable bytes are themselves; the 68 others, in byte
 *      order, are U+0100 upward: a space is "Ġ" U+0120, a newline "Ċ" U+010A);
 *   3. merge: repeatedly join the adjacent pair of lowest rank (rank = position in the merges
 *      file), leftmost first, until no adjacent pair is in the merges list; the symbols left
 *      are the word's ids.  Words repeat a lot, so their ids are cached.
 *
 * Decoding maps each token's characters back to bytes; those byte strings (pieces) are
 * computed once at load, so decoding is a concatenation (tokenizer.c).
 *
 * Files: encoder.json / vocab.json is {"token": id, ...} with ids 0..N-1; vocab.bpe /
 * merges.txt is "#version: 0.2" and then one merge per line, "left right".
 */
#define KILN_TOK_INTERNAL
#include "kiln_tok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

enum {
    CACHE_MAX_WORD = 256,           // longer words are not cached
    CACHE_MAX_ENTRIES = 1 << 18,    // the cache is emptied when it grows past this many
    CACHE_MAX_BYTES = 1 << 24,      // words or this many bytes of words
};

// One cached word: its bytes and ids live in the cache's pools.
typedef struct {
    uint32_t hash;
    uint32_t key_off, key_len;      // bytes in cache_keys; key_len 0 marks an empty slot
    uint32_t ids_off, n_ids;        // ids in cache_ids
} CacheEntry;

// A candidate merge in the merge loop's heap: symbols at pos and next[pos], which held ids
// left and right when it was pushed (if they changed since, the entry is stale).
typedef struct {
    int32_t rank;
    int32_t pos;
    int32_t left, right;
} Cand;

struct kiln_bpe {
    int32_t byte_id[256];           // id of the one-character token of each byte

    // Merges: (left id, right id) -> rank and merged id; open addressing, linear probing.
    uint64_t *merge_key;            // [merge_mask + 1] left << 32 | right, or EMPTY_PAIR
    int32_t *merge_rank;            // [merge_mask + 1] line order in the merges file, from 0
    int32_t *merge_id;              // [merge_mask + 1] id of the merged token
    uint32_t merge_mask;
    int32_t n_merges;

    pcre2_code *re;                 // gpt2_pattern, UTF + UCP + MATCH_INVALID_UTF
    pcre2_match_data *md;           // scratch for pcre2_match
    bool jit;                       // re was JIT-compiled

    // Word cache: word bytes -> ids.
    CacheEntry *cache;              // [cache_mask + 1]
    uint32_t cache_mask, n_cache;
    char *cache_keys;               // word bytes, back to back
    size_t n_keys, cap_keys;
    int32_t *cache_ids;             // word ids, back to back
    size_t n_cids, cap_cids;

    // Scratch for one word's merge loop, grown to the longest word seen.
    int32_t *sym;                   // [cap_sym] id of the symbol at each position; -1: merged away
    int32_t *next, *prev;           // [cap_sym] neighbours among live symbols; -1 at the ends
    Cand *heap;                     // [3 * cap_sym] candidate merges, min-heap on (rank, pos)
    size_t cap_sym;
};

#define EMPTY_PAIR UINT64_MAX

/* ---------------------------------------------------------------------------------------
 * The byte <-> character map
 */

// Whether GPT-2 lets byte b stand for itself: '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF.
static bool byte_is_printable(int b) {
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

// The code point each byte is spelled with in vocabulary tokens, and back: cp[b] for byte b;
// byte[c] for code point c < 0x100 + 68, -1 where c spells no byte.
typedef struct {
    uint32_t cp[256];
    int16_t byte[0x100 + 68];
} ByteMap;

static void byte_map_init(ByteMap *m) {
    uint32_t next = 0x100;      // the non-printable bytes take U+0100 upward, in byte order
    for (int c = 0; c < 0x100 + 68; c++) m->byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        m->cp[b] = byte_is_printable(b) ? (uint32_t)b : next++;
        m->byte[m->cp[b]] = (int16_t)b;
    }
}

// Decode one UTF-8 character at s (n > 0 bytes available): its code point in *cp and its
// length; an invalid sequence gives length 1 and *cp = UINT32_MAX.
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
            : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    *cp = UINT32_MAX;
    if (len == 0 || (size_t)len > n) return 1;
    uint32_t v = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 1;
        v = v << 6 | (s[i] & 0x3fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 1;
    *cp = v;
    return len;
}

static int utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---------------------------------------------------------------------------------------
 * Loading
 */

static uint32_t hash_pair(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (uint32_t)key;
}

// Index of pair key in the merges table: its slot, or the empty slot where it belongs.
static uint32_t merge_slot(const kiln_bpe *b, uint64_t key) {
    uint32_t h = hash_pair(key) & b->merge_mask;
    while (b->merge_key[h] != key && b->merge_key[h] != EMPTY_PAIR) h = (h + 1) & b->merge_mask;
    return h;
}

// Read the vocabulary JSON {"token": id, ...} into t.  Ids must be exactly 0..N-1.
static bool load_vocab(kiln_tokenizer *t, const char *path, char *err, size_t errlen) {
    size_t len;
    char *buf = kiln_tok_read_file(path, &len, err, errlen);
    if (!buf) return false;
    bool ok = false;
    const char **tok = NULL;
    uint32_t *tok_len = NULL;
    cJSON *root = kiln_tok_parse_json(path, buf, len, err, errlen);
    if (!root) goto done;
    if (!cJSON_IsObject(root)) {
        kiln_tok_seterr(err, errlen, "%s: expected a JSON object {\"token\": id, ...}", path);
        goto done;
    }
    int n = cJSON_GetArraySize(root);
    if (n < 256) {
        kiln_tok_seterr(err, errlen, "%s: %d tokens; a byte-level BPE vocabulary has at least 256",
                        path, n);
        goto done;
    }
    tok = calloc((size_t)n, sizeof *tok);
    tok_len = calloc((size_t)n, sizeof *tok_len);
    if (!tok || !tok_len) {
        kiln_tok_seterr(err, errlen, "%s: out of memory for %d tokens", path, n);
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!cJSON_IsNumber(e) || !(v >= 0 && v < n) || v != (double)(int)v) {  // range first
            kiln_tok_seterr(err, errlen,
                            "%s: token \"%s\" has id %s; ids must be the integers 0..%d", path,
                            e->string, cJSON_IsNumber(e) ? "out of range" : "that is not a number",
                            n - 1);
            goto done;
        }
        int id = (int)v;
        if (tok[id]) {
            kiln_tok_seterr(err, errlen, "%s: tokens \"%s\" and \"%s\" both have id %d", path,
                            tok[id], e->string, id);
            goto done;
        }
        tok[id] = e->string;
        tok_len[id] = (uint32_t)strlen(e->string);
    }
    ok = kiln_tok_set_vocab(t, n, tok, tok_len, err, errlen);
done:
    free(tok);
    free(tok_len);
    cJSON_Delete(root);
    free(buf);
    return ok;
}

// Compute each token's piece: its characters mapped back to bytes.  A character that spells
// no byte (only in added tokens, never in GPT-2's) is kept as its UTF-8.
static bool make_pieces(kiln_tokenizer *t, const ByteMap *map, char *err, size_t errlen) {
    size_t total = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) total += t->token_len[id];
    t->piece_blob = malloc(total ? total : 1);
    if (!t->piece_blob) {
        kiln_tok_seterr(err, errlen, "out of memory for token pieces");
        return false;
    }
    char *p = t->piece_blob;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const unsigned char *s = (const unsigned char *)t->tokens[id];
        size_t n = t->token_len[id];
        t->pieces[id] = p;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int k = utf8_decode(s + i, n - i, &cp);
            int byte = cp < 0x100 + 68 ? map->byte[cp] : -1;
            if (byte >= 0) {
                *p++ = (char)byte;
            } else {
                memcpy(p, s + i, (size_t)k);
                p += k;
            }
            i += (size_t)k;
        }
        t->piece_len[id] = (uint32_t)(p - t->pieces[id]);
    }
    return true;
}

// Read the merges: "#version ..." first (optional), then "left right" per line.  Blank
// lines are skipped; anything else is an error naming the line.
static bool load_merges(kiln_tokenizer *t, const char *path, char *err, size_t errlen) {
    kiln_bpe *b = t->bpe;
    size_t len;
    char *buf = kiln_tok_read_file(path, &len, err, errlen);
    if (!buf) return false;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    uint32_t size = 16;
    while (size < 2 * lines) size *= 2;
    b->merge_mask = size - 1;
    b->merge_key = malloc(size * sizeof *b->merge_key);
    b->merge_rank = malloc(size * sizeof *b->merge_rank);
    b->merge_id = malloc(size * sizeof *b->merge_id);
    char *word = malloc(len + 1);   // "left" + "right" spelled together
    bool ok = false;
    if (!b->merge_key || !b->merge_rank || !b->merge_id || !word) {
        kiln_tok_seterr(err, errlen, "%s: out of memory for %zu merges", path, lines);
        goto done;
    }
    memset(b->merge_key, 0xff, size * sizeof *b->merge_key);
    size_t line_no = 0;
    for (char *line = buf, *end; line < buf + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + len - line));
        if (!end) end = buf + len;
        line_no++;
        size_t n = (size_t)(end - line);
        if (n && line[n - 1] == '\r') n--;
        if (n == 0) continue;
        if (line_no == 1 && n >= 8 && !memcmp(line, "#version", 8)) continue;
        char *space = memchr(line, ' ', n);
        if (!space || space == line || space == line + n - 1 ||
            memchr(space + 1, ' ', (size_t)(line + n - space - 1))) {
            kiln_tok_seterr(err, errlen,
                            "%s:%zu: expected a merge \"left right\" (two tokens, one space), "
                            "found \"%.*s\"", path, line_no, (int)(n > 60 ? 60 : n), line);
            goto done;
        }
        size_t nl = (size_t)(space - line), nr = n - nl - 1;
        int32_t left = kiln_tok_lookup(t, line, nl);
        int32_t right = kiln_tok_lookup(t, space + 1, nr);
        memcpy(word, line, nl);
        memcpy(word + nl, space + 1, nr);
        int32_t merged = kiln_tok_lookup(t, word, nl + nr);
        if (left < 0 || right < 0 || merged < 0) {
            const char *what = left < 0 ? line : right < 0 ? space + 1 : word;
            size_t wn = left < 0 ? nl : right < 0 ? nr : nl + nr;
            kiln_tok_seterr(err, errlen, "%s:%zu: merge \"%.*s\": \"%.*s\" is not in the "
                            "vocabulary", path, line_no, (int)n, line, (int)wn, what);
            goto done;
        }
        uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
        uint32_t h = merge_slot(b, key);
        if (b->merge_key[h] == EMPTY_PAIR) {    // a repeated pair keeps its first rank
            b->merge_key[h] = key;
            b->merge_rank[h] = b->n_merges;
            b->merge_id[h] = merged;
        }
        b->n_merges++;
    }
    ok = true;
done:
    free(word);
    free(buf);
    return ok;
}

static bool compile_regex(kiln_bpe *b, char *err, size_t errlen) {
    int code;
    PCRE2_SIZE at;
    b->re = pcre2_compile((PCRE2_SPTR)gpt2_pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    if (!b->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        kiln_tok_seterr(err, errlen, "PCRE2 rejects the GPT-2 pattern at offset %zu: %s",
                        (size_t)at, (const char *)msg);
        return false;
    }
    b->jit = pcre2_jit_compile(b->re, PCRE2_JIT_COMPLETE) == 0;  // else interpreted
    b->md = pcre2_match_data_create_from_pattern(b->re, NULL);
    if (!b->md) {
        kiln_tok_seterr(err, errlen, "out of memory for PCRE2 match data");
        return false;
    }
    return true;
}

// Load a BPE tokenizer from its vocabulary JSON and merges file.  Returns NULL with a
// message naming the file (and line) on failure.
kiln_tokenizer *kiln_tok_load_bpe(const char *vocab_path, const char *merges_path, char *err,
                                  size_t errlen) {
    kiln_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->bpe = calloc(1, sizeof *t->bpe))) {
        free(t);
        kiln_tok_seterr(err, errlen, "out of memory");
        return NULL;
    }
    t->kind = KILN_TOK_BPE;
    kiln_bpe *b = t->bpe;
    ByteMap map;
    byte_map_init(&map);
    if (!load_vocab(t, vocab_path, err, errlen) || !make_pieces(t, &map, err, errlen)) goto fail;
    for (int byte = 0; byte < 256; byte++) {
        char s[4];
        int n = utf8_encode(map.cp[byte], s);
        b->byte_id[byte] = kiln_tok_lookup(t, s, (size_t)n);
        if (b->byte_id[byte] < 0) {
            kiln_tok_seterr(err, errlen, "%s: no token for byte 0x%02x (\"%.*s\"); not a GPT-2 "
                            "byte-level vocabulary", vocab_path, byte, n, s);
            goto fail;
        }
    }
    if (!load_merges(t, merges_path, err, errlen) || !compile_regex(b, err, errlen)) goto fail;
    return t;
fail:
    kiln_tok_free(t);
    return NULL;
}

void kiln_tok_free_bpe(kiln_bpe *b) {
    if (!b) return;
    free(b->merge_key);
    free(b->merge_rank);
    free(b->merge_id);
    pcre2_match_data_free(b->md);
    pcre2_code_free(b->re);
    free(b->cache);
    free(b->cache_keys);
    free(b->cache_ids);
    free(b->sym);
    free(b->next);
    free(b->prev);
    free(b->heap);
    free(b);
}

/* ---------------------------------------------------------------------------------------
 * Word cache
 */

static uint32_t hash_word(const unsigned char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

// The cached entry for word w (n bytes, hash h), or NULL.
static const CacheEntry *cache_find(const kiln_bpe *b, const unsigned char *w, size_t n,
                                    uint32_t h) {
    if (!b->cache) return NULL;
    for (uint32_t i = h & b->cache_mask;; i = (i + 1) & b->cache_mask) {
        const CacheEntry *e = &b->cache[i];
        if (e->key_len == 0) return NULL;
        if (e->hash == h && e->key_len == n && !memcmp(b->cache_keys + e->key_off, w, n))
            return e;
    }
}

static void cache_clear(kiln_bpe *b) {
    if (b->cache) memset(b->cache, 0, (b->cache_mask + 1) * sizeof *b->cache);
    b->n_cache = 0;
    b->n_keys = b->n_cids = 0;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

// Remember that word w (n bytes, hash h) encodes to ids[0..n_ids).  Failing to allocate
// only means the word is not cached.
static void cache_put(kiln_bpe *b, const unsigned char *w, size_t n, uint32_t h,
                      const int32_t *ids, size_t n_ids) {
    if (b->n_cache >= CACHE_MAX_ENTRIES || b->n_keys + n > CACHE_MAX_BYTES) cache_clear(b);
    if (!b->cache || 2 * (b->n_cache + 1) > b->cache_mask + 1) {
        uint32_t size = b->cache ? 2 * (b->cache_mask + 1) : 4096;
        CacheEntry *c = calloc(size, sizeof *c);
        if (!c) return;
        for (uint32_t i = 0; b->cache && i <= b->cache_mask; i++) {
            if (b->cache[i].key_len == 0) continue;
            uint32_t j = b->cache[i].hash & (size - 1);
            while (c[j].key_len) j = (j + 1) & (size - 1);
            c[j] = b->cache[i];
        }
        free(b->cache);
        b->cache = c;
        b->cache_mask = size - 1;
    }
    if (!grow((void **)&b->cache_keys, &b->cap_keys, b->n_keys + n, 1) ||
        !grow((void **)&b->cache_ids, &b->cap_cids, b->n_cids + n_ids, sizeof(int32_t)))
        return;
    uint32_t i = h & b->cache_mask;
    while (b->cache[i].key_len) i = (i + 1) & b->cache_mask;
    b->cache[i] = (CacheEntry){h, (uint32_t)b->n_keys, (uint32_t)n, (uint32_t)b->n_cids,
                               (uint32_t)n_ids};
    memcpy(b->cache_keys + b->n_keys, w, n);
    memcpy(b->cache_ids + b->n_cids, ids, n_ids * sizeof *ids);
    b->n_keys += n;
    b->n_cids += n_ids;
    b->n_cache++;
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 */

static bool cand_less(const Cand *a, const Cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(Cand *heap, size_t *n, Cand c) {
    size_t i = (*n)++;
    while (i > 0 && cand_less(&c, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = c;
}

static Cand heap_pop(Cand *heap, size_t *n) {
    Cand top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= *n) break;
        if (k + 1 < *n && cand_less(&heap[k + 1], &heap[k])) k++;
        if (!cand_less(&heap[k], &last)) break;
        heap[i] = heap[k];
        i = k;
    }
    heap[i] = last;
    return top;
}

// Push the merge of the symbol at pos with its right neighbour, if the pair is a merge.
static void push_pair(kiln_bpe *b, size_t *n_heap, int32_t pos) {
    if (pos < 0 || b->next[pos] < 0) return;
    int32_t left = b->sym[pos], right = b->sym[b->next[pos]];
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint32_t h = merge_slot(b, key);
    if (b->merge_key[h] == EMPTY_PAIR) return;
    heap_push(b->heap, n_heap, (Cand){b->merge_rank[h], pos, left, right});
}

// Encode one pre-tokenized word (n >= 1 bytes) and append its ids.  This is the hot path:
// most words hit the cache; the rest run the merge loop, O(n log n) in the word's length.
static bool encode_word(kiln_bpe *b, const unsigned char *w, size_t n, kiln_tok_ids *out) {
    if (n == 1) return kiln_tok_ids_push(out, b->byte_id[w[0]]);
    uint32_t h = hash_word(w, n);
    const CacheEntry *e = cache_find(b, w, n, h);
    if (e) {
        for (uint32_t i = 0; i < e->n_ids; i++) {
            if (!kiln_tok_ids_push(out, b->cache_ids[e->ids_off + i])) return false;
        }
        return true;
    }
    if (n > b->cap_sym) {
        size_t cap = n < 64 ? 64 : n;
        int32_t *sym = realloc(b->sym, cap * sizeof *sym);
        if (sym) b->sym = sym;
        int32_t *next = realloc(b->next, cap * sizeof *next);
        if (next) b->next = next;
        int32_t *prev = realloc(b->prev, cap * sizeof *prev);
        if (prev) b->prev = prev;
        Cand *heap = realloc(b->heap, 3 * cap * sizeof *heap);
        if (heap) b->heap = heap;
        if (!sym || !next || !prev || !heap) return false;
        b->cap_sym = cap;
    }
    for (size_t i = 0; i < n; i++) {
        b->sym[i] = b->byte_id[w[i]];
        b->prev[i] = (int32_t)i - 1;
        b->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(b, &n_heap, (int32_t)i);
    while (n_heap) {
        Cand c = heap_pop(b->heap, &n_heap);
        int32_t r = b->next[c.pos];
        if (b->sym[c.pos] != c.left || r < 0 || b->sym[r] != c.right) continue;     // stale
        uint32_t slot = merge_slot(b, (uint64_t)(uint32_t)c.left << 32 | (uint32_t)c.right);
        b->sym[c.pos] = b->merge_id[slot];
        b->sym[r] = -1;
        b->next[c.pos] = b->next[r];
        if (b->next[r] >= 0) b->prev[b->next[r]] = c.pos;
        push_pair(b, &n_heap, b->prev[c.pos]);
        push_pair(b, &n_heap, c.pos);
    }
    size_t n0 = out->n;
    for (int32_t i = 0; i >= 0; i = b->next[i]) {
        if (!kiln_tok_ids_push(out, b->sym[i])) return false;
    }
    if (n <= CACHE_MAX_WORD) cache_put(b, w, n, h, out->ids + n0, out->n - n0);
    return true;
}

// Encode text (no special spellings in it): pre-tokenize with the regex, then BPE each word.
// Returns the number of ids appended, or -1 with a message in err.
int64_t kiln_tok_encode_bpe(kiln_tokenizer *t, const char *text, size_t len, kiln_tok_ids *out,
                            char *err, size_t errlen) {
    kiln_bpe *b = t->bpe;
    const unsigned char *s = (const unsigned char *)text;
    size_t n0 = out->n;
    for (size_t off = 0; off < len;) {
        int rc = pcre2_match(b->re, s, len, off, 0, b->md, NULL);
        size_t start = len, end = len;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(b->md);
            start = ov[0];
            end = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            kiln_tok_seterr(err, errlen, "pre-tokenizing at byte %zu: %s", off,
                            (const char *)msg);
            return -1;
        }
        // Bytes the regex skipped are invalid UTF-8 (it matches every valid character).
        if (start > off && !encode_word(b, s + off, start - off, out)) goto oom;
        if (end > start && !encode_word(b, s + start, end - start, out)) goto oom;
        off = end > off ? end : off + 1;
    }
    return (int64_t)(out->n - n0);
oom:
    kiln_tok_seterr(err, errlen, "out of memory encoding %zu bytes", len);
    return -1;
}
