/* compiler/diff.c: `kiln diff A.npy B.npy`, the tensor comparison users and tests rely on.
 *
 * An element matches when |a - b| <= atol + rtol * |b|, where atol is --atol plus
 * --atol-scale times the largest |b| (B is the reference).  NaN matches only NaN.  Prints the
 * max abs and rel error with their index, the number of mismatches and the first few, and
 * exits 0 (match), 1 (mismatch) or 2 (usage or unreadable file).
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
    "  Exit 0 when every element matches, 1 on a mismatch, 2 on a usage or file error.\n";

static double elem(const kiln_npy *a, int64_t i)
{
    switch (a->dtype) {
    case KILN_F32: return (double)((const float *)a->data)[i];
    case KILN_I32: return (double)((const int32_t *)a->data)[i];
    case KILN_I64: return (double)((const int64_t *)a->data)[i];
    }
    return (double)NAN;
}

static void print_index(int64_t flat, const kiln_npy *a)
{
    int64_t idx[KILN_RT_MAX_RANK];
    for (int k = a->rank - 1; k >= 0; k--) {
        idx[k] = a->dims[k] ? flat % a->dims[k] : 0;
        flat = a->dims[k] ? flat / a->dims[k] : 0;
    }
    printf("[");
    for (int k = 0; k < a->rank; k++)
        printf("%s%lld", k ? ", " : "", (long long)idx[k]);
    printf("]");
}

static bool parse_double(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return s[0] && !*end && isfinite(*out) && *out >= 0;
}

int kiln_cmd_diff(int argc, char **argv)
{
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
    bool same_shape = a.rank == b.rank;
    for (int k = 0; same_shape && k < a.rank; k++)
        same_shape = a.dims[k] == b.dims[k];
    if (!same_shape) {
        printf("shapes differ: %s is [", pa);
        for (int k = 0; k < a.rank; k++)
            printf("%s%lld", k ? ", " : "", (long long)a.dims[k]);
        printf("], %s is [", pb);
        for (int k = 0; k < b.rank; k++)
            printf("%s%lld", k ? ", " : "", (long long)b.dims[k]);
        printf("]\n");
        status = 1;
        goto out;
    }
    int64_t n = 1;
    for (int k = 0; k < a.rank; k++)
        n *= a.dims[k];
    double ref_max = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = fabs(elem(&b, i));
        if (isfinite(v) && v > ref_max)
            ref_max = v;
    }
    double tol_abs = atol + scale * ref_max;
    double max_abs = 0, max_rel = 0;
    int64_t at_abs = 0, at_rel = 0, n_bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = elem(&a, i), y = elem(&b, i);
        bool bad;
        double e;
        if (isnan(x) || isnan(y)) {
            bad = !(isnan(x) && isnan(y));
            e = bad ? (double)INFINITY : 0;
        } else if (isinf(x) || isinf(y)) {
            bad = x != y;
            e = bad ? (double)INFINITY : 0;
        } else {
            e = fabs(x - y);
            bad = e > tol_abs + rtol * fabs(y);
        }
        double rel = e == 0 ? 0 : e / (fabs(y) > 0 ? fabs(y) : 1e-30);
        if (e > max_abs || (n_bad == 0 && bad)) {
            max_abs = e;
            at_abs = i;
        }
        if (rel > max_rel) {
            max_rel = rel;
            at_rel = i;
        }
        if (bad) {
            if (n_bad < 5) {
                printf("  mismatch at ");
                print_index(i, &a);
                printf(": %.9g vs %.9g (abs err %.3g)\n", x, y, e);
            }
            n_bad++;
        }
    }
    printf("%lld elements, max|ref| %.6g; max abs err %.3g at ", (long long)n, ref_max, max_abs);
    print_index(at_abs, &a);
    printf(", max rel err %.3g at ", max_rel);
    print_index(at_rel, &a);
    printf("\ntolerance |a-b| <= %.3g + %.3g*|b|: %lld mismatch%s -> %s\n", tol_abs, rtol,
           (long long)n_bad, n_bad == 1 ? "" : "es", n_bad ? "FAIL" : "ok");
    status = n_bad ? 1 : 0;
out:
    kiln_npy_free(&a);
    kiln_npy_free(&b);
    return status;
}
