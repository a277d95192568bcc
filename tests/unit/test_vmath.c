/* tests/unit/test_vmath.c: the math functions of the generated files' prelude
 * (codegen/isa_prelude.c): tanh and the two gelu forms, which the tanh and gelu kernels and
 * epilogues call instead of libm's tanhf and erff.
 *
 * For every ISA this CPU runs (scalar always; avx2 and avx512 by __builtin_cpu_supports; NEON
 * only on AArch64, skipped elsewhere with a message), the prelude with every math function is
 * compiled by clang (-Wall -Wextra -Werror, the ISA's flags as kiln build uses them) into a
 * checker that evaluates the vector functions on whole vectors of inputs and the one-float
 * copies on each input, over
 *   - every 997th float bit pattern (both signs, every exponent, subnormals and NaNs among
 *     them: about 4.3 million inputs),
 *   - [-10, 10] in steps of 2^-14 (where tanh and gelu bend),
 *   - edge values: +-0, the smallest subnormal, 2^-12 and its neighbours, 0.625, 0.9375,
 *     3.92, 4, 9, 13.2 (where e^-z^2 in gelu_erf reaches exp's floor), FLT_MAX, +-inf, NaN,
 * against tanh and erf in double (glibc's, within an ulp of double), and checks:
 *   vmath.ISA.tanh        at most 2 ulp of the float result and 1.2e-7 absolute
 *   vmath.ISA.gelu_tanh   within 2.5e-7 * max(1, |x|) of 0.5 x (1 + tanh(...)) in double
 *   vmath.ISA.gelu_erf    the same against 0.5 x (1 + erf(x / sqrt 2))
 *   vmath.ISA.special     tanh of +-inf is +-1, of NaN NaN, of -0 -0; tanh(x) = x for
 *                         |x| < 2^-12 (subnormals too); gelu(NaN) NaN, gelu(0) 0, gelu(-0) -0,
 *                         gelu(inf) inf
 *   vmath.ISA.lanes       each vector lane has the bits of the one-float copy (kernels mix the
 *                         two: whole vectors, then a row's tail one float at a time)
 * The measured maxima are printed (docs/codegen.md quotes them).  Skipped when clang is
 * missing ($KILN_CC overrides it); KILN_TEST_KEEP=1 keeps the temporary folder.
 *
 * Where the constants come from: exp and tanh below 0.625 are Cephes' (expf, tanhf); gelu_erf's
 * erfc is Abramowitz and Stegun's approximation 7.1.26.
 */
#include "cg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_passed, n_failed;

static void fail(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", id);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    n_failed++;
}

static const char *cc;          // the C compiler, or NULL: skip
static char work[512];          // temporary folder

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096], full[4700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "cd '%s' && %s", work, cmd);
    int rc = system(full);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool write_file(const char *name, const char *text)
{
    char path[640];
    snprintf(path, sizeof path, "%s/%s", work, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

static char *read_file(const char *name)
{
    char path[640];
    snprintf(path, sizeof path, "%s/%s", work, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    Buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk - 1, f)) > 0) {
        chunk[n] = 0;
        bputs(&b, chunk);
    }
    fclose(f);
    return b.data ? b.data : calloc(1, 1);
}

/* =======================================================================================
 * The checker: the prelude, then this main().  VEC_TANH is defined before it to the vector
 * tanh of the ISA (the scalar ISA has only the s_ copy).
 * ======================================================================================= */

static const char checker[] =
    "#include <float.h>\n"
    "#include <stdio.h>\n"
    "\n"
    "typedef struct {\n"
    "    const char *name;\n"
    "    double worst_ulp, ulp_at, worst_abs, abs_at, worst_rel, rel_at; // rel: / max(1, |x|)\n"
    "    long lane_diffs;\n"
    "    double lane_at;\n"
    "} Stat;\n"
    "\n"
    "static double ulp_of(double y)   // spacing of floats at |y| (rounded to float)\n"
    "{\n"
    "    float f = fabsf((float)y);\n"
    "    if (isinf(f))\n"
    "        f = FLT_MAX;\n"
    "    int e;\n"
    "    frexpf(f, &e);\n"
    "    double u = ldexp(1.0, e - 24);\n"
    "    return f == 0.0f || u < ldexp(1.0, -149) ? ldexp(1.0, -149) : u;\n"
    "}\n"
    "\n"
    "static double gelu_tanh_ref(double x)\n"
    "{\n"
    "    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));\n"
    "}\n"
    "static double gelu_erf_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }\n"
    "\n"
    "enum { N_FN = 3 };\n"
    "static Stat stats[N_FN] = {{.name = \"tanh\"}, {.name = \"gelu_tanh\"},\n"
    "                           {.name = \"gelu_erf\"}};\n"
    "static long n_special_bad;\n"
    "\n"
    "static void note(Stat *s, float x, float got, float one, double want)\n"
    "{\n"
    "    if (memcmp(&got, &one, sizeof got) != 0 && !(isnan(got) && isnan(one))) {\n"
    "        if (s->lane_diffs++ == 0)\n"
    "            s->lane_at = x;\n"
    "    }\n"
    "    if (isnan(x) || isnan(want))\n"
    "        return;\n"
    "    double err = isinf(want) && (double)got == want ? 0.0 : fabs((double)got - want);\n"
    "    double ulp = err / ulp_of(want), rel = err / fmax(1.0, fabs((double)x));\n"
    "    if (isnan(err) || ulp > s->worst_ulp)\n"
    "        s->worst_ulp = isnan(err) ? INFINITY : ulp, s->ulp_at = x;\n"
    "    if (isnan(err) || err > s->worst_abs)\n"
    "        s->worst_abs = isnan(err) ? INFINITY : err, s->abs_at = x;\n"
    "    if (isnan(err) || rel > s->worst_rel)\n"
    "        s->worst_rel = isnan(err) ? INFINITY : rel, s->rel_at = x;\n"
    "}\n"
    "\n"
    "// xs[0 .. VL): every function on the vector and on each float.\n"
    "static void check(const float *xs)\n"
    "{\n"
    "    float y[3][VL];\n"
    "    V_T v = V_LOAD(xs);\n"
    "    V_STORE(y[0], VEC_TANH(v));\n"
    "    V_STORE(y[1], V_GELU_TANH(v));\n"
    "    V_STORE(y[2], V_GELU_ERF(v));\n"
    "    for (int l = 0; l < VL; l++) {\n"
    "        float x = xs[l];\n"
    "        note(&stats[0], x, y[0][l], s_tanh(x), tanh((double)x));\n"
    "        note(&stats[1], x, y[1][l], s_gelu_tanh(x), gelu_tanh_ref((double)x));\n"
    "        note(&stats[2], x, y[2][l], s_gelu_erf(x), gelu_erf_ref((double)x));\n"
    "    }\n"
    "}\n"
    "\n"
    "static float buf[VL];\n"
    "static int n_buf;\n"
    "static void push(float x)\n"
    "{\n"
    "    buf[n_buf++] = x;\n"
    "    if (n_buf == VL) {\n"
    "        check(buf);\n"
    "        n_buf = 0;\n"
    "    }\n"
    "}\n"
    "\n"
    "static bool same(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }\n"
    "static void special(const char *what, bool ok)\n"
    "{\n"
    "    if (!ok) {\n"
    "        printf(\"special %s\\n\", what);\n"
    "        n_special_bad++;\n"
    "    }\n"
    "}\n"
    "// vf on a vector of x and one on x both give want, to the bit (any NaN for NaN).\n"
    "static bool gives(V_T (*vf)(V_T), float (*one)(float), float x, float want)\n"
    "{\n"
    "    float y[VL], o = one(x);\n"
    "    V_STORE(y, vf(V_SET1(x)));\n"
    "    for (int l = 0; l < VL; l++)\n"
    "        if (isnan(want) ? !isnan(y[l]) : !same(y[l], want))\n"
    "            return false;\n"
    "    return isnan(want) ? isnan(o) != 0 : same(o, want);\n"
    "}\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "    for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 997) {\n"
    "        uint32_t b32 = (uint32_t)bits;\n"
    "        float x;\n"
    "        memcpy(&x, &b32, sizeof x);\n"
    "        push(x);\n"
    "    }\n"
    "    for (int i = -10 * 16384; i <= 10 * 16384; i++)\n"
    "        push((float)i / 16384.0f);\n"
    "    const float edges[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 0x1p-12f, -0x1p-12f,\n"
    "                           nextafterf(0x1p-12f, 0.0f), nextafterf(0x1p-12f, 1.0f),\n"
    "                           0.625f, nextafterf(0.625f, 0.0f), 0.9375f,\n"
    "                           nextafterf(0.9375f, 0.0f), 3.92f, 4.0f, 9.0f, 13.2f, -13.2f,\n"
    "                           FLT_MAX, -FLT_MAX,\n"
    "                           INFINITY, -INFINITY, NAN};\n"
    "    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)\n"
    "        push(edges[i]);\n"
    "    while (n_buf)\n"
    "        push(0.5f);\n"
    "\n"
    "    special(\"tanh(inf) = 1\", gives(VEC_TANH, s_tanh, INFINITY, 1.0f));\n"
    "    special(\"tanh(-inf) = -1\", gives(VEC_TANH, s_tanh, -INFINITY, -1.0f));\n"
    "    special(\"tanh(NaN) = NaN\", gives(VEC_TANH, s_tanh, NAN, NAN));\n"
    "    special(\"tanh(-0) = -0\", gives(VEC_TANH, s_tanh, -0.0f, -0.0f));\n"
    "    special(\"tanh(0) = 0\", gives(VEC_TANH, s_tanh, 0.0f, 0.0f));\n"
    "    special(\"gelu(NaN) = NaN\", isnan(s_gelu_tanh(NAN)) && isnan(s_gelu_erf(NAN)));\n"
    "    special(\"gelu(0) = 0\", s_gelu_tanh(0.0f) == 0.0f && s_gelu_erf(0.0f) == 0.0f);\n"
    "    special(\"gelu_erf(-0) = -0\", same(s_gelu_erf(-0.0f), -0.0f));\n"
    "    special(\"gelu_erf(inf) = inf\", s_gelu_erf(INFINITY) == INFINITY);\n"
    "    for (float x = 1e-45f; x < 0x1p-12f && !n_special_bad; x *= 1.7f)\n"
    "        special(\"tanh(x) = x below 2^-12\", gives(VEC_TANH, s_tanh, x, x) &&\n"
    "                                               gives(VEC_TANH, s_tanh, -x, -x));\n"
    "    for (int f = 0; f < N_FN; f++)\n"
    "        printf(\"%s %.4f %.9g %.4g %.9g %.4g %.9g %ld %.9g\\n\", stats[f].name,\n"
    "               stats[f].worst_ulp, stats[f].ulp_at, stats[f].worst_abs, stats[f].abs_at,\n"
    "               stats[f].worst_rel, stats[f].rel_at, stats[f].lane_diffs, stats[f].lane_at);\n"
    "    printf(\"specials_bad %ld\\n\", n_special_bad);\n"
    "    return 0;\n"
    "}\n";

/* =======================================================================================
 * One ISA
 * ======================================================================================= */

// The prelude of isa with every math function, vector and one-float copies.
static char *prelude(Isa isa)
{
    Graph g;
    memset(&g, 0, sizeof g);
    Cg cg;
    memset(&cg, 0, sizeof cg);
    cg.g = &g;
    cg.isa = isa;
    cg.math[0] = cg.math[1] = CG_MATH_TANH | CG_MATH_GELU_TANH | CG_MATH_GELU_ERF;
    Buf b = {0};
    cg_emit_prelude(&cg, &b);
    return b.data;
}

static void check_isa(const char *name, Isa isa, const char *flags)
{
    char *text = prelude(isa);
    if (!text) {
        fail(name, "no prelude");
        return;
    }
    // The vector tanh by name; on the scalar ISA the s_ copy is the vector one.
    bool one = isa == ISA_SCALAR;
    Buf src = {0};
    bputs(&src, "#include <math.h>\n#include <stdbool.h>\n#include <stdint.h>\n"
                "#include <string.h>\n");
    bputs(&src, text);
    bprintf(&src, "#define VEC_TANH %s\n", one ? "s_tanh" : "v_tanh");
    bputs(&src, checker);
    free(text);
    char file[64], exe[64], out[64];
    snprintf(file, sizeof file, "vmath_%s.c", name);
    snprintf(exe, sizeof exe, "vmath_%s", name);
    snprintf(out, sizeof out, "vmath_%s.txt", name);
    bool wrote = write_file(file, bstr(&src));
    bfree(&src);
    if (!wrote) {
        fail(name, "cannot write %s", file);
        return;
    }
    // -Wno-unused-function: the vocabulary's helpers are for kernels, which it has none of.
    int rc = sh("%s -std=gnu11 -O3 %s -fno-math-errno -Wall -Wextra -Werror "
                "-Wno-unused-function %s -o %s -lm "
                "> %s 2>&1 && ./%s > %s 2>&1", cc, flags, file, exe, out, exe, out);
    char *res = read_file(out);
    if (rc != 0 || !res) {
        fail(name, "the checker did not build or run (exit %d):\n%s", rc, res ? res : "");
        free(res);
        return;
    }
    // Bounds: tanh at most 2 ulp and 1.2e-7; gelu 2.5e-7 * max(1, |x|).
    static const struct { const char *fn; double ulp, abs, rel; } bound[] = {
        {"tanh", 2.0, 1.2e-7, HUGE_VAL},
        {"gelu_tanh", HUGE_VAL, HUGE_VAL, 2.5e-7},
        {"gelu_erf", HUGE_VAL, HUGE_VAL, 2.5e-7},
    };
    for (size_t f = 0; f < sizeof bound / sizeof bound[0]; f++) {
        char key[32], id[64];
        snprintf(key, sizeof key, "\n%s ", bound[f].fn);
        snprintf(id, sizeof id, "vmath.%s.%s", name, bound[f].fn);
        Buf nl = {0};
        bputs(&nl, "\n");
        bputs(&nl, res);
        const char *line = strstr(bstr(&nl), key);
        double ulp, ulp_at, abs, abs_at, rel, rel_at, lane_at;
        long lanes;
        if (!line || sscanf(line + strlen(key), "%lf %lf %lf %lf %lf %lf %ld %lf", &ulp, &ulp_at,
                            &abs, &abs_at, &rel, &rel_at, &lanes, &lane_at) != 8) {
            fail(id, "no result line in:\n%s", res);
            bfree(&nl);
            continue;
        }
        bfree(&nl);
        if (bound[f].ulp < HUGE_VAL)
            printf("test_vmath: %-6s %-9s max %.3f ulp at %.9g, max abs %.3g at %.9g\n", name,
                   bound[f].fn, ulp, ulp_at, abs, abs_at);
        else    // next to 0 (x far below 0) only an absolute bound means anything
            printf("test_vmath: %-6s %-9s max abs / max(1, |x|) %.3g at %.9g\n", name,
                   bound[f].fn, rel, rel_at);
        if (ulp > bound[f].ulp || abs > bound[f].abs || rel > bound[f].rel)
            fail(id, "error above the bound (%g ulp, %g absolute, %g * max(1, |x|))",
                 bound[f].ulp, bound[f].abs, bound[f].rel);
        else
            n_passed++;
        snprintf(id, sizeof id, "vmath.%s.%s.lanes", name, bound[f].fn);
        if (lanes)
            fail(id, "%ld vector lanes differ from the one-float copy, the first at x = %.9g",
                 lanes, lane_at);
        else
            n_passed++;
    }
    char id[64];
    snprintf(id, sizeof id, "vmath.%s.special", name);
    if (!strstr(res, "specials_bad 0\n"))
        fail(id, "%s", res);
    else
        n_passed++;
    free(res);
}

int main(void)
{
    cc = getenv("KILN_CC") && *getenv("KILN_CC") ? getenv("KILN_CC") : "clang";
    char probe[256];
    snprintf(probe, sizeof probe, "command -v '%.*s' > /dev/null 2>&1", (int)strcspn(cc, " "),
             cc);
    snprintf(work, sizeof work, "%s/kiln_test_vmath.XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (system(probe) != 0) {
        printf("test_vmath: %s not found; skipping\n", cc);
        printf("test_vmath: %d passed, %d failed\n", n_passed, n_failed);
        return 0;
    }
    if (!mkdtemp(work)) {
        fail("vmath.setup", "cannot make a temporary folder");
        printf("test_vmath: %d passed, %d failed\n", n_passed, n_failed);
        return 1;
    }

    check_isa("scalar", ISA_SCALAR, "");
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        check_isa("avx2", ISA_AVX2, "-mavx2 -mfma");
    else
        printf("test_vmath: SKIP avx2 (this CPU lacks avx2 or fma)\n");
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        check_isa("avx512", ISA_AVX512, "-mavx512f -mavx512vl -mfma -mavx2");
    else
        printf("test_vmath: SKIP avx512 (this CPU lacks avx512f or avx512vl)\n");
    printf("test_vmath: SKIP neon (not an AArch64 CPU; tests/diff/isa.sh compiles it)\n");
#elif defined(__aarch64__)
    printf("test_vmath: SKIP avx2, avx512 (not an x86 CPU)\n");
    check_isa("neon", ISA_NEON, "");
#endif

    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", work);
    if (getenv("KILN_TEST_KEEP"))
        printf("test_vmath: the generated files are in %s\n", work);
    else if (system(rm) != 0)
        printf("test_vmath: could not remove %s\n", work);
    printf("test_vmath: %d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
