/* test_rt_main.c: unit tests for runtime/main.c (kiln_main, the model binary's main()).
 *
 * Two hand-written models stand in for generated code:
 *   scale: x f32 [batch, 4] (batch <= 3), weight w f32 [4]; y = x * w (row-wise).
 *   pair:  x f32 [batch, 4], ids i32 [batch, seq] (seq <= 5), weight w; y = x * w,
 *          z = ids + 1 (for i64 narrowing, dims bound across inputs, several outputs).
 * kiln_main runs in-process on temporary files with stdout and stderr captured; each case
 * checks the exit status, the message, and that a failed run leaves no output file and no
 * temporary behind.  test_alloc checks the allocators behind its arena and outputs.  Needs
 * only the runtime.  Prints each failure as file:line and a summary line; exits 1 on
 * failure.
 */
#define _GNU_SOURCE
#include "kiln_rt.h"

#include <dirent.h>
#include <fcntl.h>
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

static char tmpdir[64];

static const char *tmp_path(const char *name) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

// Number of entries in tmpdir whose name contains part.
static int count_files(const char *part) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, part))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* ---------------------------------------------------------------------------------------
 * The models
 */

#define NOSYM { -1, -1, -1, -1, -1, -1 }

// scale: y[b, j] = x[b, j] * w[j].  x[0] == 999 makes forward fail, to test that path.
static int scale_forward(kiln_run *r) {
    const float *x = r->inputs[0], *w = r->weights[0];
    float *y = r->outputs[0];
    if ((uintptr_t)r->arena % 64 != 0)
        return kiln_fail(r, "arena is not 64-byte aligned");
    if (x[0] == 999.0f)
        return kiln_fail(r, "failed on purpose at batch %d", 0);
    for (int64_t b = 0; b < r->sym[0]; b++)
        for (int j = 0; j < 4; j++)
            y[b * 4 + j] = x[b * 4 + j] * w[j];
    return 0;
}

static const kiln_sym scale_syms[] = { { "batch", 3 } };
static const kiln_tensor_desc scale_inputs[] = {
    { "x", KILN_F32, 2, { 3, 4 }, { 0, -1, -1, -1, -1, -1 } },
};
static const kiln_tensor_desc scale_outputs[] = {
    { "y", KILN_F32, 2, { 3, 4 }, { 0, -1, -1, -1, -1, -1 } },
};
static const kiln_tensor_desc scale_weights[] = {
    { "w", KILN_F32, 1, { 4 }, NOSYM },
};
static const kiln_model scale_model = {
    .name = "scale", .spec = "tests/unit/scale.yaml",
    .n_syms = 1, .syms = scale_syms,
    .n_inputs = 1, .inputs = scale_inputs,
    .n_outputs = 1, .outputs = scale_outputs,
    .n_weights = 1, .weights = scale_weights,
    .arena_bytes = 1000,
    .forward = scale_forward,
};

// pair: y = x * w as above; z[b, t] = ids[b, t] + 1.
static int pair_forward(kiln_run *r) {
    const float *x = r->inputs[0], *w = r->weights[0];
    const int32_t *ids = r->inputs[1];
    float *y = r->outputs[0];
    int32_t *z = r->outputs[1];
    for (int64_t b = 0; b < r->sym[0]; b++) {
        for (int j = 0; j < 4; j++)
            y[b * 4 + j] = x[b * 4 + j] * w[j];
        for (int64_t t = 0; t < r->sym[1]; t++)
            z[b * r->sym[1] + t] = ids[b * r->sym[1] + t] + 1;
    }
    return 0;
}

static const kiln_sym pair_syms[] = { { "batch", 3 }, { "seq", 5 } };
static const kiln_tensor_desc pair_inputs[] = {
    { "x", KILN_F32, 2, { 3, 4 }, { 0, -1, -1, -1, -1, -1 } },
    { "ids", KILN_I32, 2, { 3, 5 }, { 0, 1, -1, -1, -1, -1 } },
};
static const kiln_tensor_desc pair_outputs[] = {
    { "y", KILN_F32, 2, { 3, 4 }, { 0, -1, -1, -1, -1, -1 } },
    { "z", KILN_I32, 2, { 3, 5 }, { 0, 1, -1, -1, -1, -1 } },
};
static const char *const pair_prefixes[] = { "model." };
static const kiln_model pair_model = {
    .name = "pair", .spec = "tests/unit/pair.yaml",
    .n_syms = 2, .syms = pair_syms,
    .n_inputs = 2, .inputs = pair_inputs,
    .n_outputs = 2, .outputs = pair_outputs,
    .n_weights = 1, .weights = scale_weights,
    .n_weight_prefixes = 1, .weight_prefixes = pair_prefixes,
    .arena_bytes = 0,
    .forward = pair_forward,
};

/* ---------------------------------------------------------------------------------------
 * Running kiln_main with captured output
 */

static char out_text[8192], err_text[8192];

static void slurp(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

// Run kiln_main(m) on the NULL-terminated argument list; stdout and stderr go to out_text and
// err_text.  Returns the exit status.  (If the test dies silently, a sanitizer report is in
// the stderr.txt left in its /tmp/kiln_test_main_* directory.)
static int run(const kiln_model *m, ...) {
    char *argv[32];
    int argc = 0;
    argv[argc++] = "./model";
    va_list ap;
    va_start(ap, m);
    for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    char op[256], ep[256];
    snprintf(op, sizeof op, "%s/stdout.txt", tmpdir);
    snprintf(ep, sizeof ep, "%s/stderr.txt", tmpdir);
    fflush(stdout);
    fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    int fo = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int status = kiln_main(argc, argv, m);
    fflush(stdout);
    fflush(stderr);
    dup2(save_out, 1);
    dup2(save_err, 2);
    close(save_out);
    close(save_err);
    slurp(op, out_text, sizeof out_text);
    slurp(ep, err_text, sizeof err_text);
    unlink(op);
    unlink(ep);
    return status;
}

// The run must exit with status, print phrase on stderr, and leave no output or temporary.
#define CHECK_FAILS(status, phrase, rc)                                                        \
    do {                                                                                       \
        check((rc) == (status) && strstr(err_text, (phrase)) != NULL, __FILE__, __LINE__,       \
              "expected status %d and \"%s\", got %d and \"%s\"", (status), (phrase), (rc),    \
              err_text);                                                                       \
        CHECK(!exists(tmp_path("y.npy")) && !exists(tmp_path("z.npy")));                       \
        CHECK(count_files(".tmp.") == 0);                                                      \
    } while (0)

/* ---------------------------------------------------------------------------------------
 * Fixtures
 */

static void write_weights(const char *path, const char *name, const char *dtype, int n) {
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"%s\": {\"dtype\": \"%s\", \"shape\": [%d], \"data_offsets\": [0, %d]}}",
                      name, dtype, n, 4 * n);
    float w[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    FILE *f = fopen(path, "wb");
    uint64_t len = (uint64_t)hl;
    fwrite(&len, 8, 1, f);     // little-endian host
    fwrite(hdr, 1, (size_t)hl, f);
    fwrite(w, 4, (size_t)n, f);
    fclose(f);
}

static void write_x(const char *path, int64_t b, int64_t c, float first) {
    float x[64];
    for (int j = 0; j < 64; j++)
        x[j] = (float)j * 0.5f;
    x[0] = first;
    int64_t dims[2] = { b, c };
    char err[512];
    check(kiln_npy_write(path, KILN_F32, 2, dims, x, err, sizeof err) == 0, __FILE__, __LINE__,
          "%s", err);
}

// Read a .npy and compare it with the expected f32 values.
static bool npy_equals_f32(const char *path, int64_t d0, int64_t d1, const float *want) {
    kiln_npy a;
    char err[512];
    if (kiln_npy_read(path, &a, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return false;
    }
    bool ok = a.dtype == KILN_F32 && a.rank == 2 && a.dims[0] == d0 && a.dims[1] == d1 &&
              memcmp(a.data, want, (size_t)(d0 * d1) * 4) == 0;
    kiln_npy_free(&a);
    return ok;
}

/* ---------------------------------------------------------------------------------------
 * Tests
 */

static void test_success(void) {
    char *w = strdup(tmp_path("w.safetensors")), *x = strdup(tmp_path("x.npy"));
    char in[300], outp[300];
    write_weights(w, "w", "F32", 4);
    write_x(x, 2, 4, 0.0f);
    snprintf(in, sizeof in, "x=%s", x);
    snprintf(outp, sizeof outp, "y=%s", tmp_path("y.npy"));
    float want[8];
    for (int j = 0; j < 8; j++)
        want[j] = (float)j * 0.5f * (float)(j % 4 + 1);

    int rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    check(rc == 0, __FILE__, __LINE__, "status %d: %s", rc, err_text);
    CHECK(npy_equals_f32(tmp_path("y.npy"), 2, 4, want));
    CHECK(err_text[0] == '\0' && out_text[0] == '\0');
    unlink(tmp_path("y.npy"));

    // --flag=value forms, and the output overwrites an existing file.
    char wf[300], inf[300], outf[300];
    snprintf(wf, sizeof wf, "--weights=%s", w);
    snprintf(inf, sizeof inf, "--input=%s", in);
    snprintf(outf, sizeof outf, "--output=%s", outp);
    write_x(tmp_path("y.npy"), 1, 1, 5.0f);
    rc = run(&scale_model, outf, inf, wf, NULL);
    check(rc == 0, __FILE__, __LINE__, "status %d: %s", rc, err_text);
    CHECK(npy_equals_f32(tmp_path("y.npy"), 2, 4, want));
    CHECK(count_files(".tmp.") == 0);
    unlink(tmp_path("y.npy"));

    // Without --output: a summary line per output on stdout.
    rc = run(&scale_model, "--weights", w, "--input", in, NULL);
    CHECK(rc == 0);
    check(strstr(out_text, "y  f32 [2, 4]  min 0  max 14  mean 5\n") != NULL, __FILE__,
          __LINE__, "summary: %s", out_text);

    // --repeat prints the timing line.
    rc = run(&scale_model, "--weights", w, "--input", in, "--repeat", "3", NULL);
    CHECK(rc == 0);
    check(strstr(err_text, "scale: forward: 3 runs, min ") && strstr(err_text, " ms, median "),
          __FILE__, __LINE__, "repeat: %s", err_text);

    // --help, also after other arguments; nothing is read.
    rc = run(&scale_model, "--weights", "/nonexistent", "--help", NULL);
    CHECK(rc == 0);
    check(strstr(out_text, "usage: ./model --weights W.safetensors --input NAME=FILE.npy") &&
          strstr(out_text, "  x  f32 [batch, 4]  (batch <= 3)\n") &&
          strstr(out_text, "  y  f32 [batch, 4]\n") && strstr(out_text, "weights: 1 tensors") &&
          strstr(out_text, "arena: 0.0 MiB (1000 bytes)"), __FILE__, __LINE__, "help: %s",
          out_text);
    free(w);
    free(x);
}

static void test_failures(void) {
    char *w = strdup(tmp_path("w.safetensors"));
    char in[300], outp[300], bad[300];
    write_weights(w, "w", "F32", 4);
    snprintf(in, sizeof in, "x=%s", tmp_path("x.npy"));
    snprintf(outp, sizeof outp, "y=%s", tmp_path("y.npy"));
    int rc;

    // Inputs that do not fit the model.
    write_x(tmp_path("x.npy"), 2, 5, 0.0f);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "scale: error: input 'x': dim 1 is 5, the model wants 4", rc);
    write_x(tmp_path("x.npy"), 4, 4, 0.0f);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "input 'x': dim 0 (batch) is 4, above its bound 3", rc);
    write_x(tmp_path("x.npy"), 0, 4, 0.0f);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "input 'x': dim 0 (batch) is 0; it must be at least 1", rc);
    int64_t d3[3] = { 1, 2, 4 };
    float zeros[8] = { 0 };
    char err[512];
    CHECK(kiln_npy_write(tmp_path("x.npy"), KILN_F32, 3, d3, zeros, err, sizeof err) == 0);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "has rank 3 (shape [1, 2, 4]), the model wants rank 2 [batch, 4]", rc);
    int64_t d2[2] = { 2, 4 };
    int32_t ints[8] = { 0 };
    CHECK(kiln_npy_write(tmp_path("x.npy"), KILN_I32, 2, d2, ints, err, sizeof err) == 0);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "holds i32 values, the model wants f32 ('<f4')", rc);
    float nan_x[8] = { 0, 1, 2, 3, 4, NAN, 6, INFINITY };
    CHECK(kiln_npy_write(tmp_path("x.npy"), KILN_F32, 2, d2, nan_x, err, sizeof err) == 0);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "input 'x': ", rc);
    CHECK(strstr(err_text, "has a non-finite value (nan) at flat index 5") != NULL);
    nan_x[5] = 0;
    CHECK(kiln_npy_write(tmp_path("x.npy"), KILN_F32, 2, d2, nan_x, err, sizeof err) == 0);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "non-finite value (inf) at flat index 7", rc);
    FILE *f = fopen(tmp_path("x.npy"), "wb");
    fputs("not an npy", f);
    fclose(f);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "input 'x': ", rc);
    CHECK(strstr(err_text, "x.npy: not a .npy file") != NULL);

    // forward() fails: its message, no output.
    write_x(tmp_path("x.npy"), 2, 4, 999.0f);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "scale: error: forward: failed on purpose at batch 0", rc);

    // Weights problems.
    write_x(tmp_path("x.npy"), 2, 4, 0.0f);
    rc = run(&scale_model, "--weights", tmp_path("none.safetensors"), "--input", in, "--output",
             outp, NULL);
    CHECK_FAILS(1, "none.safetensors: cannot open weights", rc);
    write_weights(tmp_path("w8.safetensors"), "w", "F32", 8);
    rc = run(&scale_model, "--weights", tmp_path("w8.safetensors"), "--input", in, "--output",
             outp, NULL);
    CHECK_FAILS(1, "weight 'w': shape in the file is [8], the spec wants [4]", rc);
    write_weights(tmp_path("wv.safetensors"), "v", "F32", 4);
    rc = run(&scale_model, "--weights", tmp_path("wv.safetensors"), "--input", in, "--output",
             outp, NULL);
    CHECK_FAILS(1, "weight 'w' is not in ", rc);
    CHECK(strstr(err_text, "closest names: v") != NULL);
    rc = run(&scale_model, "--weights", tmpdir, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(1, "is a directory, not a safetensors file", rc);

    // An output that cannot be written leaves nothing behind.
    snprintf(bad, sizeof bad, "y=%s", tmp_path("no-such-dir/y.npy"));
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", bad, NULL);
    CHECK_FAILS(1, "output 'y': ", rc);
    CHECK(strstr(err_text, "cannot create a temporary file") != NULL);

    // Usage errors: exit status 2.
    rc = run(&scale_model, "--input", in, "--output", outp, NULL);
    CHECK_FAILS(2, "scale: error: missing --weights W.safetensors", rc);
    rc = run(&scale_model, NULL);
    CHECK_FAILS(2, "missing --weights", rc);
    rc = run(&scale_model, "--weights", w, "--input", in, "--foo", NULL);
    CHECK_FAILS(2, "unknown option '--foo' (run with --help for usage)", rc);
    rc = run(&scale_model, "--weights", w, "--input", in, "extra", NULL);
    CHECK_FAILS(2, "unexpected argument 'extra'", rc);
    rc = run(&scale_model, "--weights", w, "--input", in, "--output", "z=z.npy", NULL);
    CHECK_FAILS(2, "unknown output 'z'; the outputs are: y", rc);
    rc = run(&scale_model, "--weights", w, "--input", "q=q.npy", NULL);
    CHECK_FAILS(2, "unknown input 'q'; the inputs are: x", rc);
    rc = run(&scale_model, "--weights", w, "--input", in, "--input", in, NULL);
    CHECK_FAILS(2, "input 'x' is given twice", rc);
    rc = run(&scale_model, "--weights", w, NULL);
    CHECK_FAILS(2, "missing --input for: x=FILE.npy", rc);
    rc = run(&scale_model, "--weights", w, "--input", "x.npy", NULL);
    CHECK_FAILS(2, "--input wants NAME=FILE.npy, got 'x.npy'", rc);
    rc = run(&scale_model, "--weights", w, "--input", in, "--weights", w, NULL);
    CHECK_FAILS(2, "--weights is given twice", rc);
    rc = run(&scale_model, "--input", in, "--weights", NULL);
    CHECK_FAILS(2, "--weights needs a value", rc);
    rc = run(&scale_model, "--weights", "--input", in, NULL);
    CHECK_FAILS(2, "--weights needs a value", rc);
    rc = run(&scale_model, "--weights=", "--input", in, NULL);
    CHECK_FAILS(2, "--weights needs a value", rc);
    rc = run(&scale_model, "--weights", w, "--input", in, "--repeat", "0", NULL);
    CHECK_FAILS(2, "--repeat wants a whole number from 1 to 1000000, got '0'", rc);
    rc = run(&scale_model, "--weights", w, "--input", in, "--repeat=3x", NULL);
    CHECK_FAILS(2, "got '3x'", rc);
    rc = run(&scale_model, "--weights", w, "--input", in, "--repeat", "99999999999999999999",
             NULL);
    CHECK_FAILS(2, "--repeat wants", rc);
    free(w);
}

static void test_pair(void) {
    char *w = strdup(tmp_path("pw.safetensors"));
    write_weights(w, "model.w", "F32", 4);    // found through the prefix
    char inx[300], inids[300], outy[300], outz[300], badz[300];
    snprintf(inx, sizeof inx, "x=%s", tmp_path("x.npy"));
    snprintf(inids, sizeof inids, "ids=%s", tmp_path("ids.npy"));
    snprintf(outy, sizeof outy, "y=%s", tmp_path("y.npy"));
    snprintf(outz, sizeof outz, "z=%s", tmp_path("z.npy"));
    char err[512];
    write_x(tmp_path("x.npy"), 2, 4, 0.0f);

    // i64 ids are narrowed to i32.
    int64_t ids64[6] = { 5, -6, 7, 2147483646, -2147483647 - 1, 0 };
    int64_t dims[2] = { 2, 3 };
    CHECK(kiln_npy_write(tmp_path("ids.npy"), KILN_I64, 2, dims, ids64, err, sizeof err) == 0);
    int rc = run(&pair_model, "--weights", w, "--input", inids, "--input", inx, "--output", outz,
                 "--output", outy, NULL);
    check(rc == 0, __FILE__, __LINE__, "status %d: %s", rc, err_text);
    kiln_npy z;
    rc = kiln_npy_read(tmp_path("z.npy"), &z, err, sizeof err);
    CHECK(rc == 0 && z.dtype == KILN_I32 && z.rank == 2 && z.dims[0] == 2 && z.dims[1] == 3);
    if (rc == 0) {
        const int32_t *zz = z.data;
        CHECK(zz[0] == 6 && zz[1] == -5 && zz[2] == 8 && zz[3] == 2147483647 &&
              zz[4] == -2147483647 && zz[5] == 1);
    }
    kiln_npy_free(&z);
    CHECK(exists(tmp_path("y.npy")));
    unlink(tmp_path("y.npy"));
    unlink(tmp_path("z.npy"));

    // Only y requested: z is not written.
    rc = run(&pair_model, "--weights", w, "--input", inids, "--input", inx, "--output", outy,
             NULL);
    CHECK(rc == 0 && exists(tmp_path("y.npy")) && !exists(tmp_path("z.npy")));
    unlink(tmp_path("y.npy"));

    // All or nothing: z cannot be written, so y is not written either.
    snprintf(badz, sizeof badz, "z=%s", tmp_path("no-such-dir/z.npy"));
    rc = run(&pair_model, "--weights", w, "--input", inids, "--input", inx, "--output", outy,
             "--output", badz, NULL);
    CHECK_FAILS(1, "output 'z': ", rc);

    // Two outputs to one file.
    char outz_y[300];
    snprintf(outz_y, sizeof outz_y, "z=%s", tmp_path("y.npy"));
    rc = run(&pair_model, "--weights", w, "--input", inids, "--input", inx, "--output", outy,
             "--output", outz_y, NULL);
    CHECK_FAILS(2, "outputs 'y' and 'z' are both written to", rc);

    // A value that does not fit in i32.
    ids64[3] = 2147483648LL;
    CHECK(kiln_npy_write(tmp_path("ids.npy"), KILN_I64, 2, dims, ids64, err, sizeof err) == 0);
    rc = run(&pair_model, "--weights", w, "--input", inids, "--input", inx, "--output", outy,
             NULL);
    CHECK_FAILS(1, "input 'ids': ", rc);
    CHECK(strstr(err_text, "has the value 2147483648 at flat index 3, which does not fit in i32"));

    // batch bound by x (2) conflicts with ids (3 rows).
    int64_t dims3[2] = { 3, 2 };
    CHECK(kiln_npy_write(tmp_path("ids.npy"), KILN_I64, 2, dims3, ids64, err, sizeof err) == 0);
    rc = run(&pair_model, "--weights", w, "--input", inids, "--input", inx, "--output", outy,
             NULL);
    CHECK_FAILS(1, "input 'ids': dim 0 (batch) is 3 but input 'x' set batch = 2", rc);

    // seq above its bound; f32 given for an integer input.
    int64_t dims6[2] = { 2, 6 };
    int32_t ids32[12] = { 0 };
    CHECK(kiln_npy_write(tmp_path("ids.npy"), KILN_I32, 2, dims6, ids32, err, sizeof err) == 0);
    rc = run(&pair_model, "--weights", w, "--input", inids, "--input", inx, "--output", outy,
             NULL);
    CHECK_FAILS(1, "input 'ids': dim 1 (seq) is 6, above its bound 5", rc);
    write_x(tmp_path("ids.npy"), 2, 3, 0.0f);
    rc = run(&pair_model, "--weights", w, "--input", inids, "--input", inx, "--output", outy,
             NULL);
    CHECK_FAILS(1, "holds f32 values, the model wants i32 ('<i4' or '<i8')", rc);

    // A declared range: ids in [-10, 9] (after narrowing from i64).
    static const kiln_range ranges[] = { { 0, 0, 0 }, { 1, -10, 9 } };
    kiln_model ranged = pair_model;
    ranged.input_ranges = ranges;
    int64_t in_range[6] = { -10, 9, 0, 1, 2, 3 };
    CHECK(kiln_npy_write(tmp_path("ids.npy"), KILN_I64, 2, dims, in_range, err, sizeof err) == 0);
    rc = run(&ranged, "--weights", w, "--input", inids, "--input", inx, "--output", outy, NULL);
    check(rc == 0, __FILE__, __LINE__, "status %d: %s", rc, err_text);
    unlink(tmp_path("y.npy"));
    in_range[5] = 10;
    CHECK(kiln_npy_write(tmp_path("ids.npy"), KILN_I64, 2, dims, in_range, err, sizeof err) == 0);
    rc = run(&ranged, "--weights", w, "--input", inids, "--input", inx, "--output", outy, NULL);
    CHECK_FAILS(1, "input 'ids': ", rc);
    CHECK(strstr(err_text, "has the value 10 at flat index 5, outside the spec's range [-10, 9]"));
    CHECK(!exists(tmp_path("y.npy")));
    rc = run(&ranged, "-h", NULL);
    check(rc == 0 && strstr(out_text, "  ids  i32 [batch, seq]  (batch <= 3, seq <= 5)  values "
                                      "in [-10, 9]\n"), __FILE__, __LINE__, "help: %s", out_text);

    // Help lists both inputs, aligned, with their bounds, and the prefixes.
    rc = run(&pair_model, "-h", NULL);
    check(rc == 0 && strstr(out_text, "  ids  i32 [batch, seq]  (batch <= 3, seq <= 5)\n") &&
          strstr(out_text, "  x    f32 [batch, 4]  (batch <= 3)\n") &&
          strstr(out_text, "prefixes 'model.'"), __FILE__, __LINE__, "help: %s", out_text);
    free(w);
}

// A corrupt model description is reported, not crashed on.
static void test_bad_model(void) {
    static const kiln_tensor_desc bad_out[] = {
        { "y", KILN_F32, 1, { 3 }, { 1, -1, -1, -1, -1, -1 } },    // sym 1 does not exist
    };
    kiln_model m = scale_model;
    m.outputs = bad_out;
    int rc = run(&m, "--help", NULL);
    CHECK_FAILS(1, "scale: error: internal error: bad model description: output 'y'", rc);

    static const kiln_sym syms2[] = { { "batch", 3 }, { "k", 7 } };
    static const kiln_tensor_desc unbound_out[] = {
        { "y", KILN_F32, 1, { 7 }, { 1, -1, -1, -1, -1, -1 } },    // k is in no input
    };
    m = scale_model;
    m.n_syms = 2;
    m.syms = syms2;
    m.outputs = unbound_out;
    rc = run(&m, "--help", NULL);
    CHECK_FAILS(1, "output 'y': dim 'k' appears in no input, so nothing binds it", rc);
}

// The allocators of the arena, outputs, states (kiln_aligned_alloc) and packed weights
// (kiln_huge_alloc), runtime/rt_util.c: 64-byte aligned and zeroed below 2 MiB; from 2 MiB
// on, whole huge pages, 2 MiB aligned (and zeroed by kiln_aligned_alloc); nothing for 0.
static void test_alloc(void) {
    const size_t huge = (size_t)2 << 20;
    const size_t sizes[] = {0, 1, 100, huge - 1, huge, huge + 1, 3 * huge + 4};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = kiln_aligned_alloc(n);
        if (!CHECK(p != NULL))
            continue;
        size_t align = n >= huge ? huge : 64;
        check((uintptr_t)p % align == 0, __FILE__, __LINE__,
              "kiln_aligned_alloc(%zu) at %p: not %zu-byte aligned", n, (void *)p, align);
        size_t nonzero = 0;
        for (size_t k = 0; k < n; k++)
            nonzero += p[k] != 0;
        check(nonzero == 0, __FILE__, __LINE__, "kiln_aligned_alloc(%zu): %zu bytes not zero",
              n, nonzero);
        kiln_aligned_free(p);
    }
    CHECK(kiln_huge_alloc(0) == NULL);
    unsigned char *q = kiln_huge_alloc(huge + 1);
    if (CHECK(q != NULL)) {
        CHECK((uintptr_t)q % huge == 0);
        q[2 * huge - 1] = 1;    // rounded up to whole huge pages: the last byte is ours
        kiln_aligned_free(q);
    }
}

int main(void) {
    alarm(60);
    snprintf(tmpdir, sizeof tmpdir, "%s/kiln_test_main_XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");  // $TMPDIR, else the usual place
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_success();
    test_failures();
    test_pair();
    test_bad_model();
    test_alloc();
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    printf("test_rt_main: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
