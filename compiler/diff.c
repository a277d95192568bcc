/* compiler/diff.c: `kiln diff A.npy B.npy`, the tensor comparison users and tests rely on.
 *
 * An element matches when |a - b| <= atol + rtol * |b|, where atol is --atol plus
 * --atol-scale times the largest |b| (B is the reference).  NaN matches only NaN.  Prints the
 * max abs and rel error with their index, the number of mismatches and the first few, and
 * exits 0 (match), 1 (mismatch) or 2 (usage or unreadable file).
 *
 * diff_compare is the one comparison: the bisections (`kiln diff --bisect`,
 * `--bisect-passes`, bisect.c) measure every value with it too.
 */
#include "driver.h"

#include "kiln_rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char diff_usage[] =
    "usage: kiln diff A.npy B.npy [--rtol R] [--atol A] [--atol-scale S]\n"
    "  Compares A with the reference B elementwise: |a - b| <= atol + rtol*|b|,\n"
    "  where atol = A + S * max|b|.  Defaults: rtol 0, atol 0, atol-scale 1e-4.\n"
    "  Exit 0 when every element matches, 1 on a mismatch, 2 on a usage or file error.\n"
    "       kiln diff --bisect SPEC ... --ref-dir DIR    the first value off a reference folder\n"
    "       kiln diff --bisect-passes SPEC ...          the pass that breaks the optimized build\n"
    "  (kiln diff --bisect --help: their options)\n";

double diff_elem(const kiln_npy *a, int64_t i)
{
    switch (a->dtype) {
    case KILN_F32: return (double)((const float *)a->data)[i];
    case KILN_I32: return (double)((const int32_t *)a->data)[i];
    case KILN_I64: return (double)((const int64_t *)a->data)[i];
    }
    return (double)NAN;
}

void diff_print_index(FILE *out, int64_t flat, const kiln_npy *a)
{
    int64_t idx[KILN_RT_MAX_RANK];
    for (int k = a->rank - 1; k >= 0; k--) {
        idx[k] = a->dims[k] ? flat % a->dims[k] : 0;
        flat = a->dims[k] ? flat / a->dims[k] : 0;
    }
    fprintf(out, "[");
    for (int k = 0; k < a->rank; k++)
        fprintf(out, "%s%lld", k ? ", " : "", (long long)idx[k]);
    fprintf(out, "]");
}

void diff_print_shape(FILE *out, const kiln_npy *a)
{
    fprintf(out, "[");
    for (int k = 0; k < a->rank; k++)
        fprintf(out, "%s%lld", k ? ", " : "", (long long)a->dims[k]);
    fprintf(out, "]");
}

// The absolute error of element i and whether it is over tolerance (tol_abs + rtol * |b|).
static double elem_error(const kiln_npy *a, const kiln_npy *b, int64_t i, double tol_abs,
                         double rtol, bool *bad)
{
    double x = diff_elem(a, i), y = diff_elem(b, i);
    if (isnan(x) || isnan(y)) {
        *bad = !(isnan(x) && isnan(y));
        return *bad ? (double)INFINITY : 0;
    }
    if (isinf(x) || isinf(y)) {
        *bad = x != y;
        return *bad ? (double)INFINITY : 0;
    }
    double e = fabs(x - y);
    *bad = e > tol_abs + rtol * fabs(y);
    return e;
}

void diff_compare(const kiln_npy *a, const kiln_npy *b, const DiffTol *tol, DiffStats *s)
{
    memset(s, 0, sizeof *s);
    s->same_shape = a->rank == b->rank;
    for (int k = 0; s->same_shape && k < a->rank; k++)
        s->same_shape = a->dims[k] == b->dims[k];
    if (!s->same_shape)
        return;
    int64_t n = 1;
    for (int k = 0; k < a->rank; k++)
        n *= a->dims[k];
    s->n = n;
    for (int64_t i = 0; i < n; i++) {
        double v = fabs(diff_elem(b, i));
        if (isfinite(v) && v > s->ref_max)
            s->ref_max = v;
    }
    s->tol_abs = tol->atol + tol->atol_scale * s->ref_max;
    double worst_err[DIFF_SHOW];
    for (int64_t i = 0; i < n; i++) {
        bool bad;
        double e = elem_error(a, b, i, s->tol_abs, tol->rtol, &bad);
        double y = diff_elem(b, i);
        double rel = e == 0 ? 0 : e / (fabs(y) > 0 ? fabs(y) : 1e-30);
        if (e > s->max_abs || (s->n_bad == 0 && bad)) {
            s->max_abs = e;
            s->at_abs = i;
        }
        if (rel > s->max_rel) {
            s->max_rel = rel;
            s->at_rel = i;
        }
        if (bad && s->n_first < DIFF_SHOW)
            s->first[s->n_first++] = i;
        s->n_bad += bad;
        // The largest errors, largest first (ties: the earlier index).
        if (e > 0 && (s->n_worst < DIFF_SHOW || e > worst_err[s->n_worst - 1])) {
            int k = s->n_worst < DIFF_SHOW ? s->n_worst++ : DIFF_SHOW - 1;
            for (; k > 0 && worst_err[k - 1] < e; k--) {
                worst_err[k] = worst_err[k - 1];
                s->worst[k] = s->worst[k - 1];
            }
            worst_err[k] = e;
            s->worst[k] = i;
        }
    }
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return s[0] && !*end && isfinite(*out) && *out >= 0;
}

int kiln_cmd_diff(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)     // kiln diff --bisect ..., --bisect-passes ...
        if (strcmp(argv[i], "--bisect") == 0 || strcmp(argv[i], "--bisect-passes") == 0)
            return kiln_cmd_bisect(argc, argv);
    const char *pa = NULL, *pb = NULL;
    double rtol = 0, atol = 0, scale = 1e-4;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        double *target = strcmp(arg, "--rtol") == 0         ? &rtol
                         : strcmp(arg, "--atol") == 0       ? &atol
                         : strcmp(arg, "--atol-scale") == 0 ? &scale
                                                            : NULL;
        if (target) {
            if (i + 1 >= argc || !parse_double(argv[i + 1], target)) {
                fprintf(stderr, "kiln diff: error: %s wants a non-negative number\n%s", arg, diff_usage);
                return 2;
            }
            i++;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(diff_usage, stdout);
            return 0;
        } else if (arg[0] == '-' && arg[1]) {
            fprintf(stderr, "kiln diff: error: unknown option '%s'\n%s", arg, diff_usage);
            return 2;
        } else if (!pa) {
            pa = arg;
        } else if (!pb) {
            pb = arg;
        } else {
            fprintf(stderr, "kiln diff: error: more than two files\n%s", diff_usage);
            return 2;
        }
    }
    if (!pb) {
        fprintf(stderr, "kiln diff: error: needs two .npy files\n%s", diff_usage);
        return 2;
    }
    kiln_npy a = {0}, b = {0};
    char err[512];
    if (kiln_npy_read(pa, &a, err, sizeof err) != 0 || kiln_npy_read(pb, &b, err, sizeof err) != 0) {
        fprintf(stderr, "kiln diff: error: %s\n", err);
        kiln_npy_free(&a);
        return 2;
    }
    int status = 0;
    DiffTol tol = {.rtol = rtol, .atol = atol, .atol_scale = scale};
    DiffStats st;
    diff_compare(&a, &b, &tol, &st);
    if (!st.same_shape) {
        printf("shapes differ: %s is ", pa);
        diff_print_shape(stdout, &a);
        printf(", %s is ", pb);
        diff_print_shape(stdout, &b);
        printf("\n");
        status = 1;
        goto out;
    }
    for (int k = 0; k < st.n_first; k++) {
        bool bad;
        int64_t i = st.first[k];
        double e = elem_error(&a, &b, i, st.tol_abs, rtol, &bad);
        printf("  mismatch at ");
        diff_print_index(stdout, i, &a);
        printf(": %.9g vs %.9g (abs err %.3g)\n", diff_elem(&a, i), diff_elem(&b, i), e);
    }
    printf("%lld elements, max|ref| %.6g; max abs err %.3g at ", (long long)st.n, st.ref_max,
           st.max_abs);
    diff_print_index(stdout, st.at_abs, &a);
    printf(", max rel err %.3g at ", st.max_rel);
    diff_print_index(stdout, st.at_rel, &a);
    printf("\ntolerance |a-b| <= %.3g + %.3g*|b|: %lld mismatch%s -> %s\n", st.tol_abs, rtol,
           (long long)st.n_bad, st.n_bad == 1 ? "" : "es", st.n_bad ? "FAIL" : "ok");
    status = st.n_bad ? 1 : 0;
out:
    kiln_npy_free(&a);
    kiln_npy_free(&b);
    return status;
}
