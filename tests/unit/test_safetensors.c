/* test_safetensors.c: unit tests for runtime/safetensors.c (kiln_st_* and kiln_bind_weights).
 *
 * Files are built in memory by st_image() below: a valid file with two tensors and
 * __metadata__, then every malformed case kiln_st_parse must reject, each asserting the key
 * phrase of its message; non-regular files (directory, FIFO: an error, not a hang); and
 * kiln_bind_weights: prefix fallback, dtype and shape mismatches, the closest-names message,
 * and misaligned data (header length not a multiple of 4) bound to an aligned copy.  Needs
 * only the runtime.  Prints each failure as file:line and a summary line; exits 1 on failure.
 */
#define _GNU_SOURCE
#include "kiln_rt.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_pass, n_fail;

static bool check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool check(bool ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        n_pass++;
        return true;
    }
    n_fail++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: FAILED: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

#define CHECK(cond) check((cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_ERR(rc, err, phrase)                                                             \
    check((rc) != 0 && strstr((err), (phrase)) != NULL, __FILE__, __LINE__,                    \
          "expected an error containing \"%s\", got rc %d, message \"%s\"", (phrase), (rc),    \
          (err))

static char tmpdir[64];

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* ---------------------------------------------------------------------------------------
 * Building files
 */

typedef struct {
    unsigned char *b;   // malloc'd
    size_t n;
} Img;

// A safetensors image: u64 header length, the JSON text followed by pad spaces, then dlen
// bytes of data (zeros when data is NULL).
static Img st_image(const char *json, size_t pad, const void *data, size_t dlen) {
    size_t hl = strlen(json) + pad;
    Img im = { malloc(8 + hl + dlen + 1), 8 + hl + dlen };
    for (int k = 0; k < 8; k++)
        im.b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(im.b + 8, json, strlen(json));
    memset(im.b + 8 + strlen(json), ' ', pad);
    if (data)
        memcpy(im.b + 8 + hl, data, dlen);
    else
        memset(im.b + 8 + hl, 0, dlen);
    return im;
}

static void write_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, n, f) == n);
    if (f)
        fclose(f);
}

// Parse json (with dlen zero data bytes); return rc, message in err; st is closed.
static int parse_json(const char *json, size_t dlen, char *err) {
    Img im = st_image(json, 0, NULL, dlen);
    kiln_safetensors st;
    err[0] = '\0';
    int rc = kiln_st_parse(&st, im.b, im.n, err, 512);
    if (rc != 0)
        CHECK(st.n_tensors == 0 && st.tensors == NULL);     // left empty on failure
    kiln_st_close(&st);
    free(im.b);
    return rc;
}

#define NOSYM { -1, -1, -1, -1, -1, -1 }

/* ---------------------------------------------------------------------------------------
 * Tests
 */

static const char *valid_json =
    "{\"__metadata__\": {\"format\": \"pt\"},"
    " \"b\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [24, 40]},"
    " \"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}}";

static void fill_valid_data(unsigned char *data) {
    float a[6] = { 1, 2, 3, 4, 5, 6.5f };
    int64_t b[2] = { -7, 1LL << 40 };
    memcpy(data, a, 24);
    memcpy(data + 24, b, 16);
}

static void test_valid(void) {
    unsigned char data[40];
    fill_valid_data(data);
    char err[512];
    kiln_safetensors st;
    for (int how = 0; how < 2; how++) {     // 0: in memory, 1: from a file
        Img im = st_image(valid_json, 6, data, sizeof data);   // trailing spaces are allowed
        int rc;
        if (how == 0) {
            rc = kiln_st_parse(&st, im.b, im.n, err, sizeof err);
        } else {
            write_file(tmp_path("valid.safetensors"), im.b, im.n);
            rc = kiln_st_open(&st, tmp_path("valid.safetensors"), err, sizeof err);
        }
        check(rc == 0, __FILE__, __LINE__, "valid file (%s): %s", how ? "file" : "memory", err);
        if (rc == 0) {
            CHECK(st.n_tensors == 2);
            const kiln_st_tensor *a = kiln_st_find(&st, "a"), *b = kiln_st_find(&st, "b");
            CHECK(a && a->dtype == KILN_F32 && strcmp(a->dtype_str, "F32") == 0 &&
                  a->rank == 2 && a->dims[0] == 2 && a->dims[1] == 3 && a->nbytes == 24);
            CHECK(a && ((const float *)a->data)[5] == 6.5f);
            CHECK(b && b->dtype == KILN_I64 && b->rank == 1 && b->dims[0] == 2 &&
                  ((const int64_t *)b->data)[1] == 1LL << 40);
            CHECK(kiln_st_find(&st, "c") == NULL);
            CHECK(kiln_st_find(&st, "__metadata__") == NULL);
            CHECK(how == 0 || st.map != NULL);
        }
        kiln_st_close(&st);
        kiln_st_close(&st);     // twice is harmless
        free(im.b);
    }

    // Scalars, empty tensors, unused exotic dtypes and an empty header are all fine.
    const char *json =
        "{\"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]},"
        " \"e\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [4, 4]},"
        " \"e2\": {\"dtype\": \"I32\", \"shape\": [0], \"data_offsets\": [2, 2]},"
        " \"h\": {\"dtype\": \"BF16\", \"shape\": [3], \"data_offsets\": [4, 10]},"
        " \"q\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [10, 12]}}";
    CHECK(parse_json(json, 12, err) == 0);
    CHECK(parse_json("{}", 0, err) == 0);
    CHECK(parse_json(" {\"__metadata__\": {}}\n", 0, err) == 0);
}

// Every malformed header, each with the phrase its message must contain.
static void test_malformed(void) {
    static const struct {
        const char *json;
        size_t dlen;
        const char *phrase;
    } bad[] = {
        { "{\"a\": {\"dtype\": \"F32\",, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
          "not valid JSON: error at byte 23 of the header (file offset 31), near ' \"shape\"" },
        { "{\"a\": 1", 0, "not valid JSON" },
        { "{} x", 0, "data after the JSON object at byte 3" },
        { "[1, 2]", 0, "must be a JSON object, not a list" },
        { "\"str\"", 0, "must be a JSON object, not a string" },
        { "{\"a\": 5}", 0, "tensor 'a': entry must be an object" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
          "tensor 'a': missing field \"data_offsets\"" },
        { "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
          "tensor 'a': missing field \"dtype\"" },
        { "{\"a\": {\"dtype\": 5, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
          "tensor 'a': \"dtype\" must be a string, not a number" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4,
          "tensor 'a': \"shape\" must be a list" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
          "tensor 'a': shape entry 0 is not a whole number" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1, 1.5], \"data_offsets\": [0, 4]}}", 4,
          "tensor 'a': shape entry 1 is not a whole number" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", 4,
          "shape entry 0 is not a whole number" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
          "tensor 'a': \"data_offsets\" must be a list of two whole numbers" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": {\"b\": 0}}}", 8,
          "\"data_offsets\" must be a list of two whole numbers" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 1e300]}}", 8,
          "\"data_offsets\" must be a list of two whole numbers" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1}}",
          4, "tensor 'a': unknown field \"x\"" },
        { "{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": "
          "[0, 4]}}", 4, "tensor 'a': field \"dtype\" appears twice" },
        { "{\"a\": {\"dtype\": \"F128\", \"shape\": [1], \"data_offsets\": [0, 16]}}", 16,
          "tensor 'a': unknown dtype \"F128\"" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8,
          "tensor 'a': data_offsets [8, 4] are reversed" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4,
          "tensor 'a': data_offsets [0, 8] run past the end of the data buffer (4 bytes)" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 20,
          "tensor 'a': shape [2, 3] of F32 needs 24 bytes, but data_offsets [0, 20] hold 20" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
          "\"data_offsets\": [0, 4]}}", 4, "tensor 'a': shape [4294967296, 4294967296, "
          "4294967296] is too large" },
        { "{\"a\": {\"dtype\": \"I64\", \"shape\": [67108864, 67108864, 67108864], "
          "\"data_offsets\": [0, 8]}}", 8, "is too large" },
        { "{\"a\": {\"dtype\": \"I64\", \"shape\": [2305843009213693952], \"data_offsets\": "
          "[0, 8]}}", 8, "shape entry 0 is not a whole number in [0, 2^53)" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1, 1, 1], \"data_offsets\": "
          "[0, 4]}}", 4, "tensor 'a': rank 7 is above the limit of 6" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
          " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12,
          "tensors 'a' [0, 8] and 'b' [4, 12] overlap in the data buffer" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
          " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
          " \"c\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [16, 20]}}", 20,
          "tensors 'a' [0, 16] and 'b' [4, 8] overlap" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
          " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
          "tensor 'a' appears twice in the header" },
        { "{\"__metadata__\": [1]}", 0, "\"__metadata__\" must be an object of strings" },
        { "{\"__metadata__\": {\"k\": 1}}", 0,
          "\"__metadata__\": the value of \"k\" must be a string" },
        { "{\"__metadata__\": {}, \"__metadata__\": {}}", 0,
          "\"__metadata__\" appears twice" },
        { "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, "
          "18446744073709551620]}}", 4, "\"data_offsets\" must be a list of two whole numbers" },
        { "{\"bad\\u00ff\": 1}", 0, "entry must be an object" },
        { "{\"a\xff\": 1}", 0, "not valid UTF-8 text (byte 0xff at byte 3 of the header)" },
        { "{\"a\xc0\x80\": 1}", 0, "not valid UTF-8" },  // overlong NUL
        { "{\"a\xed\xa0\x80\": 1}", 0, "not valid UTF-8" },  // surrogate
    };
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_json(bad[i].json, bad[i].dlen, err);
        check(rc != 0 && strstr(err, bad[i].phrase), __FILE__, __LINE__,
              "malformed header %zu: expected \"%s\", got rc %d \"%s\"", i, bad[i].phrase, rc,
              err);
        CHECK(strncmp(err, "<memory>: ", 10) == 0);
    }

    // Header length problems.
    kiln_safetensors st;
    int rc = kiln_st_parse(&st, "\x02\0\0\0\0", 5, err, sizeof err);
    CHECK_ERR(rc, err, "file is 5 bytes, too short");
    Img im = st_image("{}", 0, NULL, 0);
    im.b[0] = 3;    // says 3, the file has 2 after the length
    rc = kiln_st_parse(&st, im.b, im.n, err, sizeof err);
    CHECK_ERR(rc, err, "header length 3 is larger than the rest of the file (2 bytes)");
    im.b[0] = 0;
    rc = kiln_st_parse(&st, im.b, im.n, err, sizeof err);
    CHECK_ERR(rc, err, "header length is 0");
    im.b[0] = 0xff, im.b[7] = 0xff;   // a huge length, as in a non-safetensors file
    rc = kiln_st_parse(&st, im.b, im.n, err, sizeof err);
    CHECK_ERR(rc, err, "is larger than the rest of the file");
    free(im.b);

    // Above the cap: a large sparse buffer (untouched pages cost nothing).
    size_t big = 100000000 + 64;
    unsigned char *m = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
                            MAP_NORESERVE, -1, 0);
    if (CHECK(m != MAP_FAILED)) {
        uint64_t n = 100000001;
        for (int k = 0; k < 8; k++)
            m[k] = (unsigned char)(n >> (8 * k));
        rc = kiln_st_parse(&st, m, big, err, sizeof err);
        CHECK_ERR(rc, err, "header length 100000001 is above the limit of 100000000 bytes");
        munmap(m, big);
    }
}

static void test_files(void) {
    char err[512];
    kiln_safetensors st;
    int rc = kiln_st_open(&st, tmp_path("nope.safetensors"), err, sizeof err);
    CHECK_ERR(rc, err, "nope.safetensors: cannot open weights: No such file or directory");
    rc = kiln_st_open(&st, tmpdir, err, sizeof err);
    CHECK_ERR(rc, err, "is a directory, not a safetensors file");
    const char *fifo = tmp_path("fifo.safetensors");
    CHECK(mkfifo(fifo, 0600) == 0);
    rc = kiln_st_open(&st, fifo, err, sizeof err);     // must not block
    CHECK_ERR(rc, err, "is a FIFO (named pipe), not a safetensors file");
    unlink(fifo);
    rc = kiln_st_open(&st, "/dev/null", err, sizeof err);
    CHECK_ERR(rc, err, "/dev/null: is a character device");
    write_file(tmp_path("empty.safetensors"), "", 0);
    rc = kiln_st_open(&st, tmp_path("empty.safetensors"), err, sizeof err);
    CHECK_ERR(rc, err, "empty.safetensors: file is empty");
    write_file(tmp_path("short.safetensors"), "abc", 3);
    rc = kiln_st_open(&st, tmp_path("short.safetensors"), err, sizeof err);
    CHECK_ERR(rc, err, "short.safetensors: file is 3 bytes, too short");
    // A truncated file: the last tensor's range runs past the end.
    unsigned char data[40];
    fill_valid_data(data);
    Img im = st_image(valid_json, 0, data, sizeof data);
    write_file(tmp_path("trunc.safetensors"), im.b, im.n - 3);
    free(im.b);
    rc = kiln_st_open(&st, tmp_path("trunc.safetensors"), err, sizeof err);
    CHECK_ERR(rc, err, "trunc.safetensors: tensor 'b': data_offsets [24, 40] run past the end");
    CHECK(st.map == NULL && st.n_tensors == 0);
}

// A model with the given weights and prefixes (forward is never called here).
static kiln_model model_with(int n, const kiln_tensor_desc *w, int np, const char *const *pre) {
    kiln_model m;
    memset(&m, 0, sizeof m);
    m.name = "t";
    m.n_weights = n;
    m.weights = w;
    m.n_weight_prefixes = np;
    m.weight_prefixes = pre;
    return m;
}

static void test_bind(void) {
    const char *json =
        "{\"transformer.h.0.ln_1.weight\": {\"dtype\": \"F32\", \"shape\": [4], "
        "\"data_offsets\": [0, 16]},"
        " \"transformer.h.0.ln_1.bias\": {\"dtype\": \"F32\", \"shape\": [4], "
        "\"data_offsets\": [16, 32]},"
        " \"wte\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [32, 56]},"
        " \"ids\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [56, 64]},"
        " \"half\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [64, 72]},"
        " \"h.1.mlp.c_fc.weight\": {\"dtype\": \"F32\", \"shape\": [1], "
        "\"data_offsets\": [72, 76]},"
        " \"unused\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [80, 88]}}";
    float vals[22];
    for (int j = 0; j < 22; j++)
        vals[j] = (float)j;
    unsigned char data[88] = { 0 };
    memcpy(data, vals, sizeof vals);
    int32_t ids[2] = { 7, -9 };
    memcpy(data + 56, ids, 8);
    Img im = st_image(json, 0, data, sizeof data);
    write_file(tmp_path("model.safetensors"), im.b, im.n);
    free(im.b);

    char err[512];
    kiln_safetensors st;
    int rc = kiln_st_open(&st, tmp_path("model.safetensors"), err, sizeof err);
    check(rc == 0, __FILE__, __LINE__, "%s", err);
    if (rc)
        return;
    static const char *const prefixes[] = { "transformer." };
    const void *out[4];

    // Prefix fallback, exact names, an unused tensor of an unsupported dtype in the file.
    kiln_tensor_desc w[] = {
        { "h.0.ln_1.weight", KILN_F32, 1, { 4 }, NOSYM },
        { "wte", KILN_F32, 2, { 2, 3 }, NOSYM },
        { "ids", KILN_I32, 1, { 2 }, NOSYM },
    };
    kiln_model m = model_with(3, w, 1, prefixes);
    rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
    check(rc == 0, __FILE__, __LINE__, "bind: %s", err);
    CHECK(rc == 0 && ((const float *)out[0])[3] == 3.0f && ((const float *)out[1])[0] == 8.0f &&
          ((const int32_t *)out[2])[1] == -9);

    // Shape mismatch, named with the name found in the file.
    kiln_tensor_desc ws[] = { { "wte", KILN_F32, 2, { 3, 2 }, NOSYM } };
    m = model_with(1, ws, 1, prefixes);
    rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
    CHECK_ERR(rc, err, "weight 'wte': shape in the file is [2, 3], the spec wants [3, 2]");
    kiln_tensor_desc wr[] = { { "h.0.ln_1.weight", KILN_F32, 1, { 128 }, NOSYM } };
    m = model_with(1, wr, 1, prefixes);
    rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
    CHECK_ERR(rc, err, "weight 'h.0.ln_1.weight' (found as 'transformer.h.0.ln_1.weight'): "
                       "shape in the file is [4], the spec wants [128]");

    // Dtype mismatches.
    kiln_tensor_desc wd[] = { { "half", KILN_F32, 1, { 4 }, NOSYM } };
    m = model_with(1, wd, 0, NULL);
    rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
    CHECK_ERR(rc, err, "weight 'half': dtype is BF16 in the file, the spec wants f32");
    kiln_tensor_desc wi[] = { { "wte", KILN_I32, 2, { 2, 3 }, NOSYM } };
    m = model_with(1, wi, 0, NULL);
    rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
    CHECK_ERR(rc, err, "weight 'wte': dtype is F32 in the file, the spec wants i32");

    // Missing: the names tried and up to three closest names, nearest first.
    kiln_tensor_desc wm[] = { { "h.0.ln_1.wieght", KILN_F32, 1, { 4 }, NOSYM } };
    m = model_with(1, wm, 1, prefixes);
    rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
    char want[512];
    snprintf(want, sizeof want, "weight 'h.0.ln_1.wieght' is not in %s (also tried "
             "'transformer.h.0.ln_1.wieght'); closest names: transformer.h.0.ln_1.weight, "
             "transformer.h.0.ln_1.bias, h.1.mlp.c_fc.weight", tmp_path("model.safetensors"));
    check(rc != 0 && strcmp(err, want) == 0, __FILE__, __LINE__,
          "missing weight:\n  want %s\n  got  %s", want, err);
    m = model_with(1, wm, 0, NULL);
    rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
    CHECK_ERR(rc, err, "model.safetensors; closest names: transformer.h.0.ln_1.weight, "
                       "transformer.h.0.ln_1.bias, ");
    kiln_st_close(&st);

    // An empty file has no closest names.
    Img e = st_image("{}", 0, NULL, 0);
    CHECK(kiln_st_parse(&st, e.b, e.n, err, sizeof err) == 0);
    rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
    CHECK_ERR(rc, err, "is not in <memory>; the file has no tensors");
    kiln_st_close(&st);
    free(e.b);
}

// Header lengths that are not a multiple of 4 leave the data misaligned; bind must still hand
// out aligned pointers with the right values, and close must free the copies (LSan checks).
static void test_misaligned(void) {
    const char *json =
        "{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 12]},"
        " \"v\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [12, 28]}}";
    unsigned char data[28];
    float w[3] = { 1.5f, -2.25f, 1e-3f };
    int64_t v[2] = { 1LL << 50, -3 };
    memcpy(data, w, 12);
    memcpy(data + 12, v, 16);
    kiln_tensor_desc wd[] = {
        { "w", KILN_F32, 1, { 3 }, NOSYM },
        { "v", KILN_I64, 1, { 2 }, NOSYM },
    };
    kiln_model m = model_with(2, wd, 0, NULL);
    char err[512];
    for (size_t pad = 0; pad < 8; pad++) {
        Img im = st_image(json, pad, data, sizeof data);
        for (int how = 0; how < 2; how++) {
            kiln_safetensors st;
            int rc;
            if (how == 0) {
                rc = kiln_st_parse(&st, im.b, im.n, err, sizeof err);
            } else {
                write_file(tmp_path("mis.safetensors"), im.b, im.n);
                rc = kiln_st_open(&st, tmp_path("mis.safetensors"), err, sizeof err);
            }
            check(rc == 0, __FILE__, __LINE__, "pad %zu: %s", pad, err);
            const void *out[2] = { NULL, NULL }, *again[2] = { NULL, NULL };
            rc = kiln_bind_weights(&m, &st, out, err, sizeof err);
            check(rc == 0, __FILE__, __LINE__, "pad %zu: %s", pad, err);
            CHECK(kiln_bind_weights(&m, &st, again, err, sizeof err) == 0);
            if (rc == 0) {
                CHECK((uintptr_t)out[0] % 4 == 0 && (uintptr_t)out[1] % 8 == 0);
                CHECK(memcmp(out[0], w, 12) == 0 && memcmp(out[1], v, 16) == 0);
                CHECK(again[0] == out[0] && again[1] == out[1]);    // one copy, reused
                // aligned in the file -> the mapping itself, no copy
                const kiln_st_tensor *t = kiln_st_find(&st, "w");
                CHECK(((uintptr_t)t->data % 4 == 0) == (out[0] == t->data));
            }
            kiln_st_close(&st);
        }
        free(im.b);
    }
}

int main(void) {
    alarm(60);  // a test that blocks (e.g. on the FIFO) fails instead of hanging ctest
    snprintf(tmpdir, sizeof tmpdir, "%s/kiln_test_st_XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");  // $TMPDIR, else the usual place
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_valid();
    test_malformed();
    test_files();
    test_bind();
    test_misaligned();
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    printf("test_safetensors: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
