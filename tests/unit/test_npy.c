/* test_npy.c: unit tests for runtime/npy.c (kiln_npy_read/parse/write).
 *
 * Round trips of every dtype and rank (including rank 0 and a zero-size dim), files written by
 * real numpy (tests/unit/data, see its README), and every malformed case the reader must
 * reject with a message that says what is wrong.  Needs only the runtime; run from anywhere
 * (data files are found next to this source file).  Prints each failure as file:line and a
 * summary line; exits 1 if anything failed.
 */
#define _GNU_SOURCE
#include "kiln_rt.h"

#include <dirent.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
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
// rc must be non-zero and the message must contain phrase.
#define CHECK_ERR(rc, err, phrase)                                                             \
    check((rc) != 0 && strstr((err), (phrase)) != NULL, __FILE__, __LINE__,                    \
          "expected an error containing \"%s\", got rc %d, message \"%s\"", (phrase), (rc),    \
          (err))

static char tmpdir[64];
static char datadir[512];

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static const char *data_path(const char *name) {
    static char buf[640];
    snprintf(buf, sizeof buf, "%s/%s", datadir, name);
    return buf;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

// Number of entries in dir (besides . and ..) whose name contains part.
static int count_files(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, part))
            n++;
    closedir(d);
    return n;
}

/* ---------------------------------------------------------------------------------------
 * Building .npy images in memory
 */

typedef struct {
    unsigned char b[4096];
    size_t n;
} Buf;

// A .npy image: magic, version major.0, the header text as given (no padding added), then
// len bytes of data (zeros when data is NULL).
static Buf *npy_image(Buf *out, int major, const char *header, const void *data, size_t len) {
    size_t hl = strlen(header);
    memcpy(out->b, "\x93NUMPY", 6);
    out->b[6] = (unsigned char)major;
    out->b[7] = 0;
    size_t pre = major == 1 ? 10 : 12;
    for (size_t k = 0; k < pre - 8; k++)
        out->b[8 + k] = (unsigned char)(hl >> (8 * k));
    memcpy(out->b + pre, header, hl);
    if (data)
        memcpy(out->b + pre + hl, data, len);
    else
        memset(out->b + pre + hl, 0, len);
    out->n = pre + hl + len;
    return out;
}

static int parse_hdr(const char *header, size_t datalen, kiln_npy *a, char *err) {
    Buf b;
    npy_image(&b, 1, header, NULL, datalen);
    return kiln_npy_parse(b.b, b.n, a, err, 512);
}

/* ---------------------------------------------------------------------------------------
 * Tests
 */

// Write and read back every dtype at ranks 0, 1, 2, 3 and 6, plus a zero-size dim.
static void test_round_trip(void) {
    static const int64_t shapes[][KILN_RT_MAX_RANK] = {
        { 0 }, { 5 }, { 2, 3 }, { 2, 0, 4 }, { 1, 2, 1, 3, 1, 2 },
    };
    static const int ranks[] = { 0, 1, 2, 3, 6 };
    char err[512];
    for (int t = 0; t < 3; t++) {
        kiln_dtype dt = (kiln_dtype)t;
        for (int s = 0; s < 5; s++) {
            int rank = ranks[s];
            const int64_t *dims = shapes[s];
            size_t n = 1;
            for (int k = 0; k < rank; k++)
                n *= (size_t)dims[k];
            size_t bytes = n * kiln_dtype_size(dt);
            unsigned char *data = malloc(bytes + 1);
            for (size_t j = 0; j < bytes; j++)
                data[j] = (unsigned char)(j * 37 + 11 * (size_t)t);
            if (dt == KILN_F32)  // keep the values finite and exact
                for (size_t j = 0; j < n; j++)
                    ((float *)data)[j] = (float)j * 0.25f - 3.0f;
            const char *path = tmp_path("rt.npy");
            int rc = kiln_npy_write(path, dt, rank, dims, n ? data : NULL, err, sizeof err);
            check(rc == 0, __FILE__, __LINE__, "write %s rank %d: %s", kiln_dtype_name(dt), rank,
                  err);
            kiln_npy a;
            rc = kiln_npy_read(path, &a, err, sizeof err);
            check(rc == 0, __FILE__, __LINE__, "read %s rank %d: %s", kiln_dtype_name(dt), rank,
                  err);
            if (rc == 0) {
                bool same = a.dtype == dt && a.rank == rank &&
                            memcmp(a.data, data, bytes) == 0;
                for (int k = 0; k < rank; k++)
                    same &= a.dims[k] == dims[k];
                check(same, __FILE__, __LINE__, "round trip of %s rank %d differs",
                      kiln_dtype_name(dt), rank);
            }
            kiln_npy_free(&a);

            // The data starts at a multiple of 64 and the header ends in '\n'.
            FILE *f = fopen(path, "rb");
            unsigned char pre[10];
            CHECK(f && fread(pre, 1, 10, f) == 10);
            size_t hl = (size_t)pre[8] | (size_t)pre[9] << 8;
            CHECK((10 + hl) % 64 == 0);
            CHECK(fseek(f, (long)(10 + hl - 1), SEEK_SET) == 0 && fgetc(f) == '\n');
            fclose(f);
            free(data);
        }
    }
    CHECK(count_files(tmpdir, ".tmp.") == 0);
}

// If python3 with numpy is available, check that numpy reads what kiln writes.
static void test_numpy_reads_ours(void) {
    char err[512];
    int64_t dims[2] = { 2, 3 };
    float x[6] = { 1, -2, 3.5f, 0, 1e-3f, 7 };
    const char *path = tmp_path("for_numpy.npy");
    CHECK(kiln_npy_write(path, KILN_F32, 2, dims, x, err, sizeof err) == 0);
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        printf("test_npy: numpy not available, skipping the numpy read-back check\n");
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import numpy as np, sys; a = np.load(sys.argv[1]); "
             "assert a.dtype == np.float32 and a.shape == (2, 3), a; "
             "assert (a.ravel() == np.array([1, -2, 3.5, 0, 1e-3, 7], np.float32)).all(), a' %s",
             path);
    CHECK(system(cmd) == 0);
}

// Files written by numpy itself.
static void test_numpy_files(void) {
    char err[512];
    kiln_npy a;
    int rc = kiln_npy_read(data_path("np_f32_2x3.npy"), &a, err, sizeof err);
    check(rc == 0, __FILE__, __LINE__, "%s", err);
    if (rc == 0) {
        CHECK(a.dtype == KILN_F32 && a.rank == 2 && a.dims[0] == 2 && a.dims[1] == 3);
        const float *x = a.data;
        bool ok = true;
        for (int j = 0; j < 6; j++)
            ok &= x[j] == (float)j * 0.5f - 1.0f;
        CHECK(ok);
    }
    kiln_npy_free(&a);

    rc = kiln_npy_read(data_path("np_f32_v2.npy"), &a, err, sizeof err);
    check(rc == 0, __FILE__, __LINE__, "%s", err);
    CHECK(rc == 0 && a.rank == 2 && ((float *)a.data)[5] == 1.5f);
    kiln_npy_free(&a);

    rc = kiln_npy_read(data_path("np_i32_3.npy"), &a, err, sizeof err);
    check(rc == 0, __FILE__, __LINE__, "%s", err);
    CHECK(rc == 0 && a.dtype == KILN_I32 && a.rank == 1 && a.dims[0] == 3 &&
          ((int32_t *)a.data)[1] == -2 && ((int32_t *)a.data)[2] == 2147483647);
    kiln_npy_free(&a);

    rc = kiln_npy_read(data_path("np_i64_scalar.npy"), &a, err, sizeof err);
    check(rc == 0, __FILE__, __LINE__, "%s", err);
    CHECK(rc == 0 && a.dtype == KILN_I64 && a.rank == 0 && ((int64_t *)a.data)[0] == -5);
    kiln_npy_free(&a);

    rc = kiln_npy_read(data_path("np_f32_2x0.npy"), &a, err, sizeof err);
    check(rc == 0, __FILE__, __LINE__, "%s", err);
    CHECK(rc == 0 && a.rank == 2 && a.dims[0] == 2 && a.dims[1] == 0 && a.data != NULL);
    kiln_npy_free(&a);

    rc = kiln_npy_read(data_path("np_f32_fortran.npy"), &a, err, sizeof err);
    CHECK_ERR(rc, err, "Fortran order");
    CHECK(a.data == NULL);
    CHECK(strstr(err, "np_f32_fortran.npy: ") != NULL);     // names the file
    rc = kiln_npy_read(data_path("np_f32_big_endian.npy"), &a, err, sizeof err);
    CHECK_ERR(rc, err, "'>f4' is big-endian");
    rc = kiln_npy_read(data_path("np_f64.npy"), &a, err, sizeof err);
    CHECK_ERR(rc, err, "dtype '<f8' is not supported");
}

// Header dialects that must parse: key order, quotes, whitespace, commas, descr spellings.
static void test_header_dialects(void) {
    static const struct {
        const char *header;
        kiln_dtype dtype;
        int rank;
        int64_t d0;         // first dim (unused at rank 0)
        size_t numel;
    } ok[] = {
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", KILN_F32, 2, 2, 6 },
        { "{'shape': (3,), 'descr': '<i4', 'fortran_order': False}", KILN_I32, 1, 3, 3 },
        { "{\"fortran_order\":False,\"shape\":(4,),\"descr\":\"<i8\"}   \n", KILN_I64, 1, 4,
          4 },
        { "  {\n 'descr' : 'f4' ,\n 'fortran_order' : False ,\n 'shape' : ( 3 , ) ,\n }\n",
          KILN_F32, 1, 3, 3 },
        { "{'descr': '=i4', 'fortran_order': False, 'shape': ()}", KILN_I32, 0, 0, 1 },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", KILN_F32, 2, 1, 2 },
        { "{'descr': 'i8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1), }", KILN_I64,
          6, 1, 1 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char err[512] = "";
        kiln_npy a;
        int rc = parse_hdr(ok[i].header, ok[i].numel * kiln_dtype_size(ok[i].dtype), &a, err);
        check(rc == 0, __FILE__, __LINE__, "header %zu: %s", i, err);
        check(rc != 0 || (a.dtype == ok[i].dtype && a.rank == ok[i].rank &&
                          (a.rank == 0 || a.dims[0] == ok[i].d0)),
              __FILE__, __LINE__, "header %zu parsed wrongly", i);
        kiln_npy_free(&a);
    }
    // version 3.0 is read like 2.0
    Buf b;
    char err[512];
    kiln_npy a;
    npy_image(&b, 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", NULL, 4);
    int rc = kiln_npy_parse(b.b, b.n, &a, err, sizeof err);
    check(rc == 0, __FILE__, __LINE__, "v3: %s", err);
    kiln_npy_free(&a);
}

// Every malformed case, each with the phrase its message must contain.
static void test_malformed(void) {
    static const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
    char err[512];
    kiln_npy a;
    Buf b;
    int rc;

    // preamble
    rc = kiln_npy_parse("\x93NUMP", 5, &a, err, sizeof err);
    CHECK_ERR(rc, err, "not a .npy file");
    rc = kiln_npy_parse("PK\x03\x04 this is a zip file", 24, &a, err, sizeof err);
    CHECK_ERR(rc, err, "not a .npy file");
    npy_image(&b, 1, good, NULL, 8);
    b.b[6] = 4;
    rc = kiln_npy_parse(b.b, b.n, &a, err, sizeof err);
    CHECK_ERR(rc, err, "unsupported .npy version 4.0");
    b.b[6] = 1;
    b.b[7] = 1;
    rc = kiln_npy_parse(b.b, b.n, &a, err, sizeof err);
    CHECK_ERR(rc, err, "unsupported .npy version 1.1");
    npy_image(&b, 2, good, NULL, 8);
    rc = kiln_npy_parse(b.b, 10, &a, err, sizeof err);
    CHECK_ERR(rc, err, "truncated inside the header length");
    npy_image(&b, 1, good, NULL, 8);
    rc = kiln_npy_parse(b.b, 30, &a, err, sizeof err);
    CHECK_ERR(rc, err, "header is truncated");

    // data size
    rc = parse_hdr(good, 7, &a, err);
    CHECK_ERR(rc, err, "data is truncated");
    rc = parse_hdr(good, 9, &a, err);
    CHECK_ERR(rc, err, "1 bytes of trailing data");
    rc = parse_hdr(good, 8, &a, err);
    CHECK(rc == 0);
    kiln_npy_free(&a);

    // dtype, order
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, &a, err);
    CHECK_ERR(rc, err, "Fortran order");
    rc = parse_hdr("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", 8, &a, err);
    CHECK_ERR(rc, err, "big-endian");
    rc = parse_hdr("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4, &a, err);
    CHECK_ERR(rc, err, "dtype '<f2' is not supported");
    rc = parse_hdr("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", 2, &a, err);
    CHECK_ERR(rc, err, "dtype '|u1' is not supported");
    rc = parse_hdr("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, &a,
                   err);
    CHECK_ERR(rc, err, "structured dtypes are not supported");

    // shapes
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, "
                   "4294967296), }", 0, &a, err);
    CHECK_ERR(rc, err, "is too large");
    rc = parse_hdr("{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387904,), }",
                   0, &a, err);
    CHECK_ERR(rc, err, "is too large");
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
                   0, &a, err);
    CHECK_ERR(rc, err, "does not fit in 64 bits");
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0, &a, err);
    CHECK_ERR(rc, err, "negative dimension");
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1), }",
                   4, &a, err);
    CHECK_ERR(rc, err, "limit of KILN_RT_MAX_RANK");
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8, &a, err);
    CHECK_ERR(rc, err, "is not a tuple");
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8, &a, err);
    CHECK_ERR(rc, err, "'shape' must be a tuple");
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 8, &a, err);
    CHECK_ERR(rc, err, "expected ',' or ')'");
    rc = parse_hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", 8, &a, err);
    CHECK_ERR(rc, err, "expected ',' or ')'");

    // garbage dicts
    static const struct {
        const char *header, *phrase;
    } bad[] = {
        { "", "expected '{'" },
        { "hello", "expected '{'" },
        { "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", "expected ',' or '}'" },
        { "{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'" },
        { "{'fortran_order': False, 'shape': (2,)}", "missing key 'descr'" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unknown key" },
        { "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
          "duplicate key" },
        { "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", "expected ',' or '}'" },
        { "{'descr': '<f4', 'fortran_order': Flase, 'shape': (2,)}", "expected True or False" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} extra",
          "unexpected text after the dict" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "the dict is cut short" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "expected a dimension" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2", "the dict is cut short" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ,}x", "unexpected text" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'desc", "unterminated" },
        { "{descr: '<f4'}", "expected a quoted string" },
        { "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}", "unsupported character" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,),,}", "expected a quoted" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        rc = parse_hdr(bad[i].header, 8, &a, err);
        check(rc != 0 && strstr(err, bad[i].phrase), __FILE__, __LINE__,
              "garbage header %zu: expected \"%s\", got rc %d \"%s\"", i, bad[i].phrase, rc, err);
        CHECK(a.data == NULL);
    }
}

// Non-regular files and unwritable destinations.
static void test_files(void) {
    char err[512];
    kiln_npy a;
    int rc = kiln_npy_read(tmp_path("does-not-exist.npy"), &a, err, sizeof err);
    CHECK_ERR(rc, err, "cannot open: No such file or directory");
    rc = kiln_npy_read(tmpdir, &a, err, sizeof err);
    CHECK_ERR(rc, err, "is a directory");
    const char *fifo = tmp_path("fifo.npy");
    CHECK(mkfifo(fifo, 0600) == 0);
    rc = kiln_npy_read(fifo, &a, err, sizeof err);     // must not block
    CHECK_ERR(rc, err, "fifo.npy: is a FIFO (named pipe), not a .npy file");
    rc = kiln_npy_read("/dev/null", &a, err, sizeof err);
    CHECK_ERR(rc, err, "/dev/null: is a device or socket, not a .npy file");
    unlink(fifo);
    // an empty file
    FILE *f = fopen(tmp_path("empty.npy"), "wb");
    fclose(f);
    rc = kiln_npy_read(tmp_path("empty.npy"), &a, err, sizeof err);
    CHECK_ERR(rc, err, "not a .npy file");

    int64_t dims[1] = { 2 };
    float x[2] = { 1, 2 };
    rc = kiln_npy_write(tmp_path("no-such-dir/y.npy"), KILN_F32, 1, dims, x, err, sizeof err);
    CHECK_ERR(rc, err, "cannot create a temporary file");
    // The destination is a directory: the rename fails, and the temporary is removed.
    CHECK(mkdir(tmp_path("a-dir.npy"), 0700) == 0);
    rc = kiln_npy_write(tmp_path("a-dir.npy"), KILN_F32, 1, dims, x, err, sizeof err);
    CHECK_ERR(rc, err, "cannot rename");
    CHECK(count_files(tmpdir, ".tmp.") == 0);
    // Bad arguments
    int64_t neg[1] = { -1 };
    rc = kiln_npy_write(tmp_path("neg.npy"), KILN_F32, 1, neg, x, err, sizeof err);
    CHECK_ERR(rc, err, "negative or too large");
    rc = kiln_npy_write(tmp_path("r7.npy"), KILN_F32, 7, dims, x, err, sizeof err);
    CHECK_ERR(rc, err, "rank 7");
    CHECK(count_files(tmpdir, "neg.npy") == 0 && count_files(tmpdir, "r7.npy") == 0);

    // Overwriting an existing file replaces it whole.
    const char *p = tmp_path("over.npy");
    CHECK(kiln_npy_write(p, KILN_F32, 1, dims, x, err, sizeof err) == 0);
    float y[2] = { 5, 6 };
    CHECK(kiln_npy_write(p, KILN_F32, 1, dims, y, err, sizeof err) == 0);
    rc = kiln_npy_read(p, &a, err, sizeof err);
    CHECK(rc == 0 && ((float *)a.data)[0] == 5.0f);
    kiln_npy_free(&a);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0044) != 0);   // not left at mkstemp's 0600
}

int main(void) {
    alarm(60);  // a test that blocks (e.g. on the FIFO) fails instead of hanging ctest
    umask(022);
    const char *src = __FILE__;
    const char *slash = strrchr(src, '/');
    if (slash)
        snprintf(datadir, sizeof datadir, "%.*s/data", (int)(slash - src), src);
    else
        snprintf(datadir, sizeof datadir, "data");
    if (access(datadir, R_OK) != 0) {
        fprintf(stderr, "test_npy: data directory '%s' not found (built from a relative path: "
                "run from the repository root)\n", datadir);
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/kiln_test_npy_XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");  // $TMPDIR, else the usual place
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }

    test_round_trip();
    test_numpy_reads_ours();
    test_numpy_files();
    test_header_dialects();
    test_malformed();
    test_files();

    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    printf("test_npy: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
