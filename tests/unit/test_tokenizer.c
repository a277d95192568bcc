/* test_tokenizer.c: unit tests of the runtime tokenizers (runtime/kiln_tok.h).
 *
 * Run from the repository root; the vocabularies and golden cases come from the shared data
 * folder beside the checkout (../shared/data), and a group whose files are missing is
 * skipped with a "SKIP:" line rather than failed.
 *
 *   tok.gpt2.golden.N     46 cases from llama.cpp's vocab tests (gpt2.inp / gpt2.out)
 *   tok.bert.golden.N     46 cases for bert-base-uncased (bert-bge.inp / bert-bge.out)
 *   tok.gpt2.*            lookups, special tokens, round trips of random bytes, streaming
 *                         decode, Hugging Face file names, speed on input.txt
 *   tok.bert.*            specials, [CLS] ... [SEP] with truncation, long words, decoding
 *   tok.char.*            the shakespeare character vocabulary
 *   tok.err.*             missing, truncated and malformed files give clear messages
 *
 * Prints "test_tokenizer: N passed, M failed" and exits non-zero if anything failed.
 */
#define _POSIX_C_SOURCE 200809L
#include "kiln_tok.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DATA "../shared/data"
#define GPT2_DIR DATA "/gpt2-tokenizer"
#define BERT_VOCAB DATA "/bert-base-uncased-vocab/vocab.txt"
#define CHAR_VOCAB DATA "/gpt2-shakespeare-char/vocab.json"
#define SHAKESPEARE DATA "/gpt2-shakespeare-char/input.txt"
#define CASES DATA "/tokenizer-tests"

static int n_pass, n_fail;

// Record one check; a failure prints its id and a formatted detail line.
static bool check(bool ok, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool check(bool ok, const char *id, const char *fmt, ...) {
    if (ok) {
        n_pass++;
        return true;
    }
    n_fail++;
    printf("FAIL %s: ", id);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return false;
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_all(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_str(const char *path, const char *s) {
    write_all(path, s, strlen(s));
}

static void copy_file(const char *from, const char *to) {
    size_t len;
    char *buf = read_all(from, &len);
    if (!buf) {
        perror(from);
        exit(2);
    }
    write_all(to, buf, len);
    free(buf);
}

// Printable form of some bytes for failure messages (C escapes, about 300 bytes at most).
static const char *shown(const char *s, size_t n) {
    static char buf[400];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 300; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\t') {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "\\%c", c == '\n' ? 'n' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "\\x%02x", c);
        } else {
            buf[k++] = (char)c;
        }
    }
    buf[k] = 0;
    return buf;
}

static char *ids_str(const int32_t *ids, size_t n) {
    static char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof buf - 16; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, " %d", (int)ids[i]);
    buf[k] = 0;
    return buf;
}

// Whether s[0..n) is valid UTF-8 made of whole characters.
static bool valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (len == 0 || i + (size_t)len > n) return false;
        unsigned lo = 0x80, hi = 0xbf;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        for (int k = 1; k < len; k++) {
            unsigned b = p[i + (size_t)k];
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) return false;
        }
        i += (size_t)len;
    }
    return true;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16) % n;
}

/* ---------------------------------------------------------------------------------------
 * Golden cases
 */

// Run the cases of name.inp / name.out against t: split the input on the separator line,
// compare each encoding with the expected line of ids.
static void run_golden(kiln_tokenizer *t, const char *name, const char *area) {
    char inp_path[256], out_path[256];
    snprintf(inp_path, sizeof inp_path, "%s/%s.inp", CASES, name);
    snprintf(out_path, sizeof out_path, "%s/%s.out", CASES, name);
    size_t inp_len, out_len;
    char *inp = read_all(inp_path, &inp_len);
    char *out = read_all(out_path, &out_len);
    if (!inp || !out) {
        printf("SKIP: %s.golden: %s or %s not found\n", area, inp_path, out_path);
        free(inp);
        free(out);
        return;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    char *in_at = inp, *out_at = out;
    int n_cases = 0, n_ok = 0;
    kiln_tok_ids ids = {0};
    char err[512], id[64];
    for (;;) {
        // Every case, the last too, is followed by the separator; an empty case is a
        // separator right after the previous one.
        char *end = NULL;
        for (char *p = in_at; p + sep_len <= inp + inp_len; p++) {
            if (!memcmp(p, sep, sep_len)) {
                end = p;
                break;
            }
        }
        if (!end) break;
        size_t case_len = (size_t)(end - in_at);
        char *line_end = strchr(out_at, '\n');
        if (!line_end) break;
        *line_end = 0;
        int32_t want[512];
        size_t n_want = 0;
        for (char *p = out_at, *q; n_want < 512; p = q) {
            long v = strtol(p, &q, 10);
            if (q == p) break;
            want[n_want++] = (int32_t)v;
        }
        snprintf(id, sizeof id, "%s.golden.%d", area, n_cases + 1);
        ids.n = 0;
        int64_t n = kiln_tok_encode(t, in_at, case_len, 0, &ids, err, sizeof err);
        bool ok = n >= 0 && (size_t)n == n_want && !memcmp(ids.ids, want, n_want * sizeof *want);
        if (n < 0) {
            check(false, id, "\"%s\": %s", shown(in_at, case_len), err);
        } else if (!ok) {
            printf("FAIL %s: \"%s\"\n  want%s\n", id, shown(in_at, case_len),
                   ids_str(want, n_want));
            check(false, id, " got%s", ids_str(ids.ids, ids.n));
        } else {
            check(true, id, "ok");
        }
        n_ok += ok;
        n_cases++;
        in_at = end + sep_len;
        out_at = line_end + 1;
    }
    check(n_cases == 46, area, "%s: expected 46 golden cases, found %d", name, n_cases);
    printf("%s.golden: %d/%d cases pass\n", area, n_ok, n_cases);
    kiln_tok_ids_free(&ids);
    free(inp);
    free(out);
}

/* ---------------------------------------------------------------------------------------
 * GPT-2
 */

// decode(encode(s)) == s, and streaming the ids one at a time appends only whole characters
// (when s is valid UTF-8) and adds up to the same bytes.
static void round_trip(kiln_tokenizer *t, const char *id, const char *s, size_t n) {
    char err[512];
    kiln_tok_ids ids = {0};
    kiln_tok_text out = {0}, all = {0};
    int64_t k = kiln_tok_encode(t, s, n, 0, &ids, err, sizeof err);
    if (!check(k >= 0, id, "encode \"%s\": %s", shown(s, n), err)) goto done;
    if (!check(kiln_tok_decode(t, ids.ids, ids.n, 0, &out, err, sizeof err) == 0, id,
               "decode: %s", err))
        goto done;
    check(out.n == n && (n == 0 || !memcmp(out.bytes, s, n)), id,
          "round trip differs: \"%s\" (%zu bytes) -> %zu bytes", shown(s, n), n, out.n);
    bool valid = valid_utf8(s, n), whole = true;
    kiln_tok_decoder d;
    kiln_tok_decoder_init(&d, t, 0);
    for (size_t i = 0; i < ids.n; i++) {
        size_t n0 = all.n;      // each push appends one chunk to what came before
        if (kiln_tok_decoder_push(&d, ids.ids[i], &all, err, sizeof err) < 0) break;
        if (valid && !valid_utf8(all.bytes + n0, all.n - n0)) whole = false;
    }
    kiln_tok_decoder_finish(&d, &all, err, sizeof err);
    if (valid) check(whole, id, "streaming decode split a character of \"%s\"", shown(s, n));
    check(all.n == n && (n == 0 || !memcmp(all.bytes, s, n)), id,
          "streamed bytes differ from the input \"%s\"", shown(s, n));
done:
    kiln_tok_ids_free(&ids);
    kiln_tok_text_free(&out);
    kiln_tok_text_free(&all);
}

// Random test strings: words, spaces, multi-byte characters, and (if bytes) any byte at all,
// including NULs and cut-off or overlong sequences.
static size_t random_text(char *buf, size_t cap, bool bytes) {
    static const char *const pieces[] = {
        "Hello", " world", "'s", " 42", "  ", "\n", "\t", "é", "ü", "½", "🦙", "😶‍🌫️",
        "我想", "нещо", "ខ", "!!", ".cpp", " \n ", "Ġ", "ĊĠ", "\xc2\xa0", "a", "ÿ", "",
    };
    static const char *const broken[] = {
        "\xff", "\xc3", "\xe6\x88", "\xf0\x9f\xa6", "\x80", "\xc0\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xe0\x80\xaf",
    };
    size_t n = 0, want = rnd((uint32_t)cap / 8);
    while (n < want) {
        const char *p;
        char one[2] = {0, 0};
        uint32_t r = rnd(10);
        if (bytes && r < 3) {
            one[0] = (char)rnd(256);
            p = one;
            if (one[0] == 0) {
                buf[n++] = 0;
                continue;
            }
        } else if (bytes && r < 5) {
            p = broken[rnd(sizeof broken / sizeof *broken)];
        } else {
            p = pieces[rnd(sizeof pieces / sizeof *pieces)];
        }
        size_t m = strlen(p);
        if (n + m > cap) break;
        memcpy(buf + n, p, m);
        n += m;
    }
    return n;
}

static void test_gpt2(void) {
    char err[512];
    if (!exists(GPT2_DIR "/encoder.json")) {
        printf("SKIP: tok.gpt2: %s not found\n", GPT2_DIR);
        return;
    }
    kiln_tokenizer *t = kiln_tok_load(GPT2_DIR, err, sizeof err);
    if (!check(t != NULL, "tok.gpt2.load", "%s", err)) return;
    run_golden(t, "gpt2", "tok.gpt2");

    check(kiln_tok_get_kind(t) == KILN_TOK_BPE, "tok.gpt2.kind", "kind %d", kiln_tok_get_kind(t));
    check(kiln_tok_vocab_size(t) == 50257, "tok.gpt2.vocab", "%d", kiln_tok_vocab_size(t));
    check(kiln_tok_eot(t) == 50256, "tok.gpt2.eot", "%d", kiln_tok_eot(t));
    check(kiln_tok_id(t, "Ġworld") == 995, "tok.gpt2.id", "%d", kiln_tok_id(t, "Ġworld"));
    check(kiln_tok_id(t, "no such token") == -1, "tok.gpt2.id.absent", "found");
    const char *tok = kiln_tok_token(t, 995);
    check(tok && !strcmp(tok, "Ġworld"), "tok.gpt2.token", "%s", tok ? tok : "NULL");
    check(kiln_tok_token(t, 50257) == NULL && kiln_tok_token(t, -1) == NULL,
          "tok.gpt2.token.range", "out-of-range id has a token");
    size_t plen;
    const char *piece = kiln_tok_piece(t, 995, &plen);
    check(plen == 6 && !memcmp(piece, " world", 6), "tok.gpt2.piece", "\"%.*s\"", (int)plen,
          piece);
    piece = kiln_tok_piece(t, 198, &plen);
    check(plen == 1 && piece[0] == '\n', "tok.gpt2.piece.newline", "%zu bytes", plen);
    check(kiln_tok_is_special(t, 50256) && !kiln_tok_is_special(t, 995), "tok.gpt2.special",
          "wrong");

    // "<|endoftext|>" is text unless asked for.
    const char *s = "a<|endoftext|>b";
    kiln_tok_ids ids = {0};
    kiln_tok_encode(t, s, strlen(s), KILN_TOK_PARSE_SPECIAL, &ids, err, sizeof err);
    check(ids.n == 3 && ids.ids[0] == 64 && ids.ids[1] == 50256 && ids.ids[2] == 65,
          "tok.gpt2.parse_special", "got%s", ids_str(ids.ids, ids.n));
    ids.n = 0;
    kiln_tok_encode(t, s, strlen(s), 0, &ids, err, sizeof err);
    bool has_eot = false;
    for (size_t i = 0; i < ids.n; i++) has_eot |= ids.ids[i] == 50256;
    check(ids.n > 3 && !has_eot, "tok.gpt2.plain_special", "got%s", ids_str(ids.ids, ids.n));
    kiln_tok_text txt = {0};
    int32_t eot_ids[] = {15496, 50256, 995};
    kiln_tok_decode(t, eot_ids, 3, KILN_TOK_SKIP_SPECIAL, &txt, err, sizeof err);
    check(txt.n == 11 && !strcmp(txt.bytes, "Hello world"), "tok.gpt2.skip_special", "\"%s\"",
          txt.bytes);
    txt.n = 0;
    check(kiln_tok_decode(t, (int32_t[]){50257}, 1, 0, &txt, err, sizeof err) < 0 &&
              strstr(err, "50257"),
          "tok.gpt2.decode.bad_id", "%s", err);

    // Encoding appends: a second call keeps what the first produced.
    ids.n = 0;
    kiln_tok_encode(t, "Hello", 5, 0, &ids, err, sizeof err);
    kiln_tok_encode(t, " world", 6, 0, &ids, err, sizeof err);
    check(ids.n == 2 && ids.ids[0] == 15496 && ids.ids[1] == 995, "tok.gpt2.append", "got%s",
          ids_str(ids.ids, ids.n));

    // Streaming: 🦙 (F0 9F A6 99) is split across tokens: 12520 " \xf0\x9f", 99 "\xa6",
    // 247 "\x99".  The space shows at once, the character only when it is whole.
    kiln_tok_decoder d;
    kiln_tok_decoder_init(&d, t, 0);
    int32_t llama[] = {428, 318, 12520, 99, 247, 13};
    size_t seen[6];
    txt.n = 0;
    for (int i = 0; i < 6; i++) {
        kiln_tok_decoder_push(&d, llama[i], &txt, err, sizeof err);
        seen[i] = txt.n;
    }
    check(seen[2] == seen[1] + 1 && seen[3] == seen[2] && seen[4] == seen[2] + 4 &&
              !strcmp(txt.bytes, " this is 🦙."),
          "tok.gpt2.stream.hold", "lengths %zu %zu %zu %zu, \"%s\"", seen[1], seen[2], seen[3],
          seen[4], txt.bytes);
    // An unfinished character at the end comes out on finish, as the bytes it had.
    txt.n = 0;
    kiln_tok_decoder_push(&d, 12520, &txt, err, sizeof err);
    size_t before = txt.n;
    kiln_tok_decoder_finish(&d, &txt, err, sizeof err);
    check(before == 1 && txt.n == 3 && (unsigned char)txt.bytes[1] == 0xf0,
          "tok.gpt2.stream.finish", "%zu then %zu bytes", before, txt.n);

    // Round trips: fixed strings, the golden inputs' kinds of text, then random bytes.
#define S(x) {x, sizeof x - 1}
    static const struct { const char *s; size_t n; } fixed[] = {
        S(""), S(" "), S("Hello world"), S("\n\n\n"), S("    Hello\n    Hello"),
        S("🚀 (normal) 😶‍🌫️"), S("Cửa Việt"), S("333333333"), S("\xff\xfe"), S("a\0b"),
        S("\xe6\x88"), S("x\xf0\x9f\xa6"), S("\xed\xa0\x80 \xc0\xaf"),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        char id[64];
        snprintf(id, sizeof id, "tok.gpt2.roundtrip.fixed.%zu", i + 1);
        round_trip(t, id, fixed[i].s, fixed[i].n);
    }
    char buf[2048];
    int fails0 = n_fail;
    for (int i = 0; i < 400; i++) {
        char id[64];
        snprintf(id, sizeof id, "tok.gpt2.roundtrip.random.%d", i + 1);
        size_t n = random_text(buf, sizeof buf, i % 2 == 1);
        round_trip(t, id, buf, n);
    }
    printf("tok.gpt2.roundtrip: 400 random strings (half valid UTF-8, half any bytes): %s\n",
           n_fail == fails0 ? "ok" : "FAILED");

    // Hugging Face names: vocab.json + merges.txt in a directory, or vocab.json by name.
    char dir[64], a[128], b[128];
    snprintf(dir, sizeof dir, "%s/kiln_tok_XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (check(mkdtemp(dir) != NULL, "tok.gpt2.hf.tmpdir", "mkdtemp failed")) {
        snprintf(a, sizeof a, "%s/vocab.json", dir);
        snprintf(b, sizeof b, "%s/merges.txt", dir);
        copy_file(GPT2_DIR "/encoder.json", a);
        copy_file(GPT2_DIR "/vocab.bpe", b);
        const char *paths[2] = {dir, a};
        for (int k = 0; k < 2; k++) {
            char id[64];
            snprintf(id, sizeof id, "tok.gpt2.hf.%s", k ? "file" : "dir");
            kiln_tokenizer *h = kiln_tok_load(paths[k], err, sizeof err);
            if (!check(h != NULL, id, "%s", err)) continue;
            const char *text = "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～";
            kiln_tok_ids x = {0}, y = {0};
            kiln_tok_encode(t, text, strlen(text), 0, &x, err, sizeof err);
            kiln_tok_encode(h, text, strlen(text), 0, &y, err, sizeof err);
            check(kiln_tok_get_kind(h) == KILN_TOK_BPE && x.n == y.n &&
                      !memcmp(x.ids, y.ids, x.n * sizeof *x.ids) && kiln_tok_eot(h) == 50256,
                  id, "encodings differ: %zu vs %zu ids", x.n, y.n);
            kiln_tok_ids_free(&x);
            kiln_tok_ids_free(&y);
            kiln_tok_free(h);
        }
        unlink(a);
        unlink(b);
        rmdir(dir);
    }

    // Speed on the 1.1 MB shakespeare text (cold cache), and its round trip.
    size_t len;
    char *text = read_all(SHAKESPEARE, &len);
    if (!text) {
        printf("SKIP: tok.gpt2.speed: %s not found\n", SHAKESPEARE);
    } else {
        kiln_tokenizer *fresh = kiln_tok_load(GPT2_DIR, err, sizeof err);
        ids.n = 0;
        double t0 = now();
        int64_t n = kiln_tok_encode(fresh, text, len, 0, &ids, err, sizeof err);
        double t1 = now();
        kiln_tok_ids again = {0};
        kiln_tok_encode(fresh, text, len, 0, &again, err, sizeof err);
        double t2 = now();
        txt.n = 0;
        kiln_tok_decode(fresh, ids.ids, ids.n, 0, &txt, err, sizeof err);
        double t3 = now();
        check(n > 0 && txt.n == len && !memcmp(txt.bytes, text, len), "tok.gpt2.speed.roundtrip",
              "input.txt does not round trip");
        printf("tok.gpt2.speed: input.txt %zu bytes -> %lld ids; encode %.1f MB/s (cold cache), "
               "%.1f MB/s (warm); decode %.1f MB/s\n", len, (long long)n,
               (double)len / 1e6 / (t1 - t0), (double)len / 1e6 / (t2 - t1),
               (double)len / 1e6 / (t3 - t2));
        kiln_tok_ids_free(&again);
        kiln_tok_free(fresh);
        free(text);
    }
    kiln_tok_ids_free(&ids);
    kiln_tok_text_free(&txt);
    kiln_tok_free(t);
}

/* ---------------------------------------------------------------------------------------
 * BERT
 */

static void test_bert(void) {
    char err[512];
    if (!exists(BERT_VOCAB)) {
        printf("SKIP: tok.bert: %s not found\n", BERT_VOCAB);
        return;
    }
    kiln_tokenizer *t = kiln_tok_load(BERT_VOCAB, err, sizeof err);
    if (!check(t != NULL, "tok.bert.load", "%s", err)) return;
    run_golden(t, "bert-bge", "tok.bert");

    const kiln_tok_special *sp = kiln_tok_specials(t);
    check(kiln_tok_get_kind(t) == KILN_TOK_WORDPIECE && kiln_tok_vocab_size(t) == 30522,
          "tok.bert.vocab", "%d", kiln_tok_vocab_size(t));
    check(sp->pad == 0 && sp->unk == 100 && sp->cls == 101 && sp->sep == 102 && sp->mask == 103 &&
              sp->eot == -1,
          "tok.bert.specials", "pad %d unk %d cls %d sep %d mask %d eot %d", sp->pad, sp->unk,
          sp->cls, sp->sep, sp->mask, sp->eot);

    // The directory form loads the same vocabulary.
    kiln_tokenizer *d = kiln_tok_load(DATA "/bert-base-uncased-vocab", err, sizeof err);
    check(d && kiln_tok_get_kind(d) == KILN_TOK_WORDPIECE, "tok.bert.load.dir", "%s", err);
    kiln_tok_free(d);

    kiln_tok_ids ids = {0};
    const char *s = "i like strawberries";
    kiln_tok_encode(t, s, strlen(s), 0, &ids, err, sizeof err);
    check(ids.n == 4 && ids.ids[2] == 13137 && ids.ids[3] == 20968, "tok.bert.sanity", "got%s",
          ids_str(ids.ids, ids.n));

    // [CLS] ... [SEP], "[MASK]" recognized only when asked.
    s = "Paris is the [MASK] of France.";
    ids.n = 0;
    size_t dropped = 99;
    int64_t n = kiln_tok_encode_bert(t, s, strlen(s), KILN_TOK_PARSE_SPECIAL, 0, &ids, &dropped,
                                     err, sizeof err);
    check(n == 9 && ids.ids[0] == 101 && ids.ids[4] == 103 && ids.ids[8] == 102 && dropped == 0,
          "tok.bert.encode_bert", "got%s", ids_str(ids.ids, ids.n));
    ids.n = 0;
    kiln_tok_encode(t, s, strlen(s), 0, &ids, err, sizeof err);
    check(ids.n == 9 && ids.ids[3] == 1031 && ids.ids[4] == 7308 && ids.ids[5] == 1033,
          "tok.bert.mask_as_text", "got%s", ids_str(ids.ids, ids.n));
    ids.n = 0;
    n = kiln_tok_encode_bert(t, s, strlen(s), KILN_TOK_PARSE_SPECIAL, 5, &ids, &dropped, err,
                             sizeof err);
    check(n == 5 && ids.n == 5 && ids.ids[0] == 101 && ids.ids[3] == 1996 && ids.ids[4] == 102 &&
              dropped == 4,
          "tok.bert.truncate", "got%s, dropped %zu", ids_str(ids.ids, ids.n), dropped);
    ids.n = 0;
    check(kiln_tok_encode_bert(t, s, strlen(s), 0, 1, &ids, NULL, err, sizeof err) < 0 &&
              ids.n == 0,
          "tok.bert.max_len_1", "accepted");

    // Words over 100 characters are [UNK]; exactly 100 are split.
    char word[128];
    memset(word, 'a', sizeof word);
    ids.n = 0;
    kiln_tok_encode(t, word, 101, 0, &ids, err, sizeof err);
    check(ids.n == 1 && ids.ids[0] == 100, "tok.bert.long_word", "got%s",
          ids_str(ids.ids, ids.n));
    ids.n = 0;
    kiln_tok_encode(t, word, 100, 0, &ids, err, sizeof err);
    check(ids.n > 1 && ids.ids[0] != 100, "tok.bert.word_100", "got%s", ids_str(ids.ids, ids.n));

    // Cleaning: NUL, U+FFFD, controls and invalid bytes vanish; accents go; CJK splits.
    static const char dirty[] = "A\0b\xef\xbf\xbd\x01\xff Éclair 北京";
    ids.n = 0;
    kiln_tok_encode(t, dirty, sizeof dirty - 1, 0, &ids, err, sizeof err);
    kiln_tok_ids want = {0};
    const char *clean = "ab eclair 北 京";
    kiln_tok_encode(t, clean, strlen(clean), 0, &want, err, sizeof err);
    check(ids.n == want.n && !memcmp(ids.ids, want.ids, ids.n * sizeof *ids.ids),
          "tok.bert.clean", "got%s", ids_str(ids.ids, ids.n));
    kiln_tok_ids_free(&want);

    // Any bytes at all encode without error to ids inside the vocabulary.
    char buf[2048];
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        size_t n_buf = random_text(buf, sizeof buf, true);
        ids.n = 0;
        if (kiln_tok_encode(t, buf, n_buf, 0, &ids, err, sizeof err) < 0) bad++;
        for (size_t k = 0; k < ids.n; k++) bad += ids.ids[k] < 0 || ids.ids[k] >= 30522;
    }
    check(bad == 0, "tok.bert.random", "%d failures on random bytes", bad);

    // Decoding joins words with spaces and glues ## pieces.
    s = "Hello, strawberries!";
    ids.n = 0;
    kiln_tok_encode_bert(t, s, strlen(s), 0, 0, &ids, NULL, err, sizeof err);
    kiln_tok_text txt = {0};
    kiln_tok_decode(t, ids.ids, ids.n, KILN_TOK_SKIP_SPECIAL, &txt, err, sizeof err);
    check(!strcmp(txt.bytes, "hello , strawberries !"), "tok.bert.decode", "\"%s\"", txt.bytes);
    txt.n = 0;
    kiln_tok_decode(t, ids.ids, ids.n, 0, &txt, err, sizeof err);
    check(!strcmp(txt.bytes, "[CLS] hello , strawberries ! [SEP]"), "tok.bert.decode.special",
          "\"%s\"", txt.bytes);
    kiln_tok_text_free(&txt);
    kiln_tok_ids_free(&ids);
    kiln_tok_free(t);
}

/* ---------------------------------------------------------------------------------------
 * Characters
 */

static void test_char(void) {
    char err[512];
    if (!exists(CHAR_VOCAB)) {
        printf("SKIP: tok.char: %s not found\n", CHAR_VOCAB);
        return;
    }
    kiln_tokenizer *t = kiln_tok_load(CHAR_VOCAB, err, sizeof err);
    if (!check(t != NULL, "tok.char.load", "%s", err)) return;
    check(kiln_tok_get_kind(t) == KILN_TOK_CHAR && kiln_tok_vocab_size(t) == 65, "tok.char.vocab",
          "%d", kiln_tok_vocab_size(t));
    check(kiln_tok_eot(t) == -1 && kiln_tok_specials(t)->unk == -1, "tok.char.specials", "set");
    const char *s = "ROMEO:\nHello";
    kiln_tok_ids ids = {0};
    int64_t n = kiln_tok_encode(t, s, strlen(s), 0, &ids, err, sizeof err);
    const int32_t want[] = {30, 27, 25, 17, 27, 10, 0, 20, 43, 50, 50, 53};
    check(n == 12 && !memcmp(ids.ids, want, sizeof want), "tok.char.encode", "got%s",
          ids_str(ids.ids, ids.n));
    kiln_tok_text txt = {0};
    kiln_tok_decode(t, ids.ids, ids.n, 0, &txt, err, sizeof err);
    check(txt.n == strlen(s) && !strcmp(txt.bytes, s), "tok.char.roundtrip", "\"%s\"",
          shown(txt.bytes, txt.n));

    ids.n = 0;
    s = "Hi ROMEO\xc3\xbc";     // ü is not in the vocabulary
    n = kiln_tok_encode(t, s, strlen(s), 0, &ids, err, sizeof err);
    check(n < 0 && ids.n == 0 && strstr(err, "'ü'") && strstr(err, "U+00FC") &&
              strstr(err, "byte offset 8"),
          "tok.char.unknown", "%s", n < 0 ? err : "accepted");
    n = kiln_tok_encode(t, "ab\xff", 3, 0, &ids, err, sizeof err);
    check(n < 0 && strstr(err, "0xff") && strstr(err, "byte offset 2"), "tok.char.invalid",
          "%s", n < 0 ? err : "accepted");
    kiln_tok_text_free(&txt);
    kiln_tok_ids_free(&ids);
    kiln_tok_free(t);
}

/* ---------------------------------------------------------------------------------------
 * Bad files
 */

// kiln_tok_load(path) must fail with a message containing every one of the needles.
static void expect_load_error(const char *id, const char *path, const char *n1, const char *n2) {
    char err[512] = "";
    kiln_tokenizer *t = kiln_tok_load(path, err, sizeof err);
    if (!check(t == NULL, id, "loaded \"%s\" without error", path)) {
        kiln_tok_free(t);
        return;
    }
    check(strstr(err, n1) && (!n2 || strstr(err, n2)), id, "message \"%s\" lacks \"%s\"%s%s",
          err, n1, n2 ? " or " : "", n2 ? n2 : "");
    printf("  %s: %s\n", id, err);
}

static void test_errors(void) {
    char dir[64], p[256], q[256];
    snprintf(dir, sizeof dir, "%s/kiln_tok_XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!check(mkdtemp(dir) != NULL, "tok.err.tmpdir", "mkdtemp failed")) return;
    printf("error messages:\n");
    snprintf(p, sizeof p, "%s/missing", dir);
    expect_load_error("tok.err.missing", p, "No such file", "missing");
    expect_load_error("tok.err.empty_dir", dir, "no tokenizer files", NULL);
    snprintf(p, sizeof p, "%s/model.bin", dir);
    write_str(p, "x");
    expect_load_error("tok.err.unknown_file", p, "unknown tokenizer file", NULL);
    unlink(p);

    // A JSON vocabulary that is not a char vocabulary and has no merges beside it.
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    write_str(p, "{\"a\": 0}");
    expect_load_error("tok.err.not_char", p, "not a character vocabulary", NULL);
    write_str(p, "{\"type\": \"char\", \"itos\": [\"a\", \"bc\"]}");
    expect_load_error("tok.err.char_multi", p, "itos[1]", NULL);
    write_str(p, "{\"type\": \"char\", \"itos\": [\"a\", \"a\"]}");
    expect_load_error("tok.err.char_dup", p, "both", NULL);
    write_str(p, "{\"type\": \"char\", \"itos\": [\"a\", ");
    expect_load_error("tok.err.char_truncated", p, "invalid JSON", "truncated");
    unlink(p);

    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    write_str(p, "");
    expect_load_error("tok.err.vocab_txt_empty", p, "empty vocabulary", NULL);
    unlink(p);

    if (exists(GPT2_DIR "/encoder.json")) {
        size_t len;
        char *enc = read_all(GPT2_DIR "/encoder.json", &len);
        snprintf(p, sizeof p, "%s/encoder.json", dir);
        snprintf(q, sizeof q, "%s/vocab.bpe", dir);
        // Truncated JSON.
        write_all(p, enc, len / 2);
        write_str(q, "#version: 0.2\nĠ t\n");
        expect_load_error("tok.err.json_truncated", dir, "encoder.json: invalid JSON", "truncated");
        // JSON broken in the middle: a ':' replaced.
        char *colon = strstr(enc + 1000, ": ");
        *colon = '@';
        write_all(p, enc, len);
        char where[64];
        snprintf(where, sizeof where, "byte %zu of", (size_t)(colon - enc));
        expect_load_error("tok.err.json_bad", dir, "invalid JSON at line 1", where);
        *colon = ':';
        // Trailing garbage after the object.
        write_all(p, enc, len);
        FILE *f = fopen(p, "ab");
        fputs("}", f);
        fclose(f);
        expect_load_error("tok.err.json_trailing", dir, "invalid JSON", NULL);
        // Ids that are not 0..N-1.
        write_str(p, "{\"a\": 0, \"b\": 7}");
        expect_load_error("tok.err.json_ids", dir, "encoder.json", "at least 256");
        // An id far out of range (and no integer), with enough tokens to get that far.
        char *big = malloc(len + 64);
        memcpy(big, enc, len + 1);     // with its NUL, for strrchr
        snprintf(strrchr(big, '}'), 64, ", \"zzzq\": 1e20}");
        write_str(p, big);
        expect_load_error("tok.err.json_id_range", dir, "\"zzzq\" has id out of range",
                          "0..50257");
        free(big);
        // Good vocabulary, bad merges: a line without the space, one with two, unknown parts.
        write_all(p, enc, len);
        write_str(q, "#version: 0.2\nĠ t\nĠt\n");
        expect_load_error("tok.err.merges_one_field", dir, "vocab.bpe:3:", "\"Ġt\"");
        write_str(q, "#version: 0.2\nĠ t\nĠ a b\n");
        expect_load_error("tok.err.merges_three_fields", dir, "vocab.bpe:3:", "two tokens");
        write_str(q, "#version: 0.2\nĠ t\nqqq zzz\n");
        expect_load_error("tok.err.merges_unknown", dir, "vocab.bpe:3:",
                          "\"qqq\" is not in the vocabulary");
        // A merges file alone is not enough.
        unlink(p);
        expect_load_error("tok.err.no_vocab", dir, "no tokenizer files", NULL);
        unlink(q);
        free(enc);
    }
    rmdir(dir);
}

int main(void) {
    if (!exists(DATA)) {
        printf("SKIP: %s not found (run from the repository root, with the shared data folder "
               "beside the checkout); only the error tests run\n", DATA);
    }
    test_gpt2();
    test_bert();
    test_char();
    test_errors();
    printf("test_tokenizer: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
