/* codegen/writer.c: the pieces of text every part of the code generator writes.
 *
 * A Buf collects the generated file in memory (cg_emit_model writes it out only when all of
 * it was generated).  Around it: C literals that read back exactly (floats, doubles,
 * strings), comment-safe text, the identifiers generated code must not take, symbolic sizes
 * (Mono) and the loop-nest writer that the elementwise and layout kernels share.
 */
#include "cg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Buf
 */

static void breserve(Buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void vbprintf(Buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        KILN_BUG("vbprintf: bad format '%s'", fmt);
    breserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void bprintf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vbprintf(b, fmt, ap);
    va_end(ap);
}

void bputs(Buf *b, const char *s)
{
    size_t n = strlen(s);
    breserve(b, n);
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

void bline(Buf *b, const char *fmt, ...)
{
    for (int i = 0; i < b->indent; i++)
        bputs(b, "    ");
    va_list ap;
    va_start(ap, fmt);
    vbprintf(b, fmt, ap);
    va_end(ap);
    bputs(b, "\n");
}

void bline_comment(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Buf text = {0};
    vbprintf(&text, fmt, ap);
    va_end(ap);
    int room = 100 - (4 * b->indent + 3);   // after the indentation and "// "
    if (room < 40)
        room = 40;
    // Control characters would end the comment line, a backslash before the end of one
    // would continue it onto the code after: both become '?'.
    for (size_t i = 0; i < text.len; i++)
        if ((unsigned char)text.data[i] < 0x20 || text.data[i] == 0x7f || text.data[i] == '\\')
            text.data[i] = '?';
    const char *p = bstr(&text);
    while (*p) {
        int n = (int)strlen(p);
        if (n > room) {     // break at the last space that fits, else after the long word
            int cut = room;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0)
                for (cut = room; p[cut] && p[cut] != ' '; cut++) {}
            n = cut;
        }
        for (int i = 0; i < b->indent; i++)
            bputs(b, "    ");
        bprintf(b, "// %.*s\n", n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
    bfree(&text);
}

void bfree(Buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

const char *bstr(const Buf *b) { return b->data ? b->data : ""; }

void blist(Buf *b, const char *head, const char *const *items, int n, const char *tail)
{
    int lead = 4 * b->indent, align = lead + (int)strlen(head), widest = 0;
    for (int i = 0; i < n; i++) {
        int w = (int)strlen(items[i]) + (i + 1 < n ? 1 : (int)strlen(tail));
        widest = w > widest ? w : widest;
    }
    // Continuation lines align under the first item, or, when an item would not fit there,
    // hang 8 columns in from the line's start.
    bool hang = align + widest > 100;
    for (int i = 0; i < b->indent; i++)
        bputs(b, "    ");
    bputs(b, head);
    int col = align;
    if (hang) {
        align = lead + 8;
        col = 101;      // forces a break before the first item
    }
    for (int i = 0; i < n; i++) {
        int w = (int)strlen(items[i]) + (i + 1 < n ? 1 : (int)strlen(tail));
        if (col + (i > 0) + w > 100) {
            bprintf(b, "\n%*s", align, "");
            col = align;
        } else if (i > 0) {
            bputs(b, " ");
            col++;
        }
        bputs(b, items[i]);
        col += (int)strlen(items[i]);
        if (i + 1 < n) {
            bputs(b, ",");
            col++;
        }
    }
    bprintf(b, "%s\n", tail);
}

/* ---------------------------------------------------------------------------------------
 * Literals and comment text
 */

void bcomment_text(Buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (p[0] == '*' && p[1] == '/')
            bputs(b, "* ");     // "*/" would end the comment
        else if ((unsigned char)*p < 0x20 || *p == 0x7f)
            bputs(b, "?");
        else
            bprintf(b, "%c", *p);
    }
}

void bc_string(Buf *b, const char *s, bool printf_fmt)
{
    bputs(b, "\"");
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            bprintf(b, "\\%c", c);
        else if (c == '%' && printf_fmt)
            bputs(b, "%%");
        else if (c == '?' && p[1] == '?')
            bputs(b, "?\\");   // no trigraphs
        else if (c < 0x20 || c >= 0x7f)
            bprintf(b, "\\%03o", c);
        else
            bprintf(b, "%c", c);
    }
    bputs(b, "\"");
}

// Finite v with the fewest significant digits that read back as v (as a float if is_float),
// always with a '.' or an exponent so that it is a floating literal.
static void shortest(char *s, size_t n, double v, bool is_float)
{
    for (int p = 1; p <= (is_float ? 9 : 17); p++) {
        snprintf(s, n, "%.*g", p, v);
        if (is_float ? strtof(s, NULL) == (float)v : strtod(s, NULL) == v)
            break;
    }
    if (!strpbrk(s, ".en"))
        strncat(s, ".0", n - strlen(s) - 1);
}

void bc_float(Buf *b, float v)
{
    if (isnan(v)) {
        bputs(b, "NAN");
    } else if (isinf(v)) {
        bputs(b, v < 0 ? "-INFINITY" : "INFINITY");
    } else {
        char s[64];
        shortest(s, sizeof s, (double)v, true);
        bprintf(b, "%sf", s);
    }
}

void bc_double(Buf *b, double v)
{
    if (isnan(v)) {
        bputs(b, "(double)NAN");
    } else if (isinf(v)) {
        bputs(b, v < 0 ? "-(double)INFINITY" : "(double)INFINITY");
    } else {
        char s[64];
        shortest(s, sizeof s, v, false);
        bputs(b, s);
    }
}

/* ---------------------------------------------------------------------------------------
 * Identifiers generated code must not take
 *
 * C keywords, and every identifier (function, type, macro; more is harmless) that the
 * standard headers kiln_rt.h includes declare or define under -std=gnu11 on glibc, from
 * sys.h = those six #includes:
 *   clang -std=gnu11 -E sys.h | grep -v '^#' | grep -oE '\b[A-Za-z][A-Za-z0-9_]*\b'
 *   clang -std=gnu11 -E -dM sys.h
 * A param named `gamma` or `linux` would otherwise break the generated file.  Names with a
 * leading underscore and the kiln_ / KILN_ prefixes are refused by rule in cg_c_reserved().
 */
static const char reserved_names[] =
    " BUFSIZ EOF FILE FILENAME_MAX FOPEN_MAX FP_ILOGB0 FP_ILOGBNAN FP_INFINITE FP_NAN "
    " FP_NORMAL FP_SUBNORMAL FP_ZERO HUGE_VAL HUGE_VALF HUGE_VALL INFINITY INT16_C INT16_MAX "
    " INT16_MIN INT32_C INT32_MAX INT32_MIN INT64_C INT64_MAX INT64_MIN INT8_C INT8_MAX "
    " INT8_MIN INTMAX_C INTMAX_MAX INTMAX_MIN INTPTR_MAX INTPTR_MIN INT_FAST16_MAX "
    " INT_FAST16_MIN INT_FAST32_MAX INT_FAST32_MIN INT_FAST64_MAX INT_FAST64_MIN "
    " INT_FAST8_MAX INT_FAST8_MIN INT_LEAST16_MAX INT_LEAST16_MIN INT_LEAST32_MAX "
    " INT_LEAST32_MIN INT_LEAST64_MAX INT_LEAST64_MIN INT_LEAST8_MAX INT_LEAST8_MIN L_ctermid "
    " L_tmpnam MATH_ERREXCEPT MATH_ERRNO M_1_PI M_2_PI M_2_SQRTPI M_E M_LN10 M_LN2 M_LOG10E "
    " M_LOG2E M_PI M_PI_2 M_PI_4 M_SQRT1_2 M_SQRT2 NAN NULL PTRDIFF_MAX PTRDIFF_MIN P_tmpdir "
    " SEEK_CUR SEEK_END SEEK_SET SIG_ATOMIC_MAX SIG_ATOMIC_MIN SIZE_MAX TMP_MAX UINT16_C "
    " UINT16_MAX UINT32_C UINT32_MAX UINT64_C UINT64_MAX UINT8_C UINT8_MAX UINTMAX_C "
    " UINTMAX_MAX UINTPTR_MAX UINT_FAST16_MAX UINT_FAST32_MAX UINT_FAST64_MAX UINT_FAST8_MAX "
    " UINT_LEAST16_MAX UINT_LEAST32_MAX UINT_LEAST64_MAX UINT_LEAST8_MAX WCHAR_MAX WCHAR_MIN "
    " WINT_MAX WINT_MIN acos acosf acosh acoshf acoshl acosl asin asinf asinh asinhf asinhl "
    " asinl asm atan atan2 atan2f atan2l atanf atanh atanhf atanhl atanl auto bcmp bcopy bool "
    " break bzero case cbrt cbrtf cbrtl ceil ceilf ceill char clearerr clearerr_unlocked "
    " const continue copysign copysignf copysignl cos cosf cosh coshf coshl cosl ctermid "
    " default do double double_t dprintf drem dremf dreml else enum erf erfc erfcf erfcl erff "
    " erfl exp exp2 exp2f exp2l expf expl explicit_bzero expm1 expm1f expm1l extern fabs "
    " fabsf fabsl false fclose fdim fdimf fdiml fdopen feof feof_unlocked ferror "
    " ferror_unlocked fflush fflush_unlocked ffs ffsl ffsll fgetc fgetc_unlocked fgetpos "
    " fgets fileno fileno_unlocked finite finitef finitel float float_t flockfile floor "
    " floorf floorl fma fmaf fmal fmax fmaxf fmaxl fmemopen fmin fminf fminl fmod fmodf fmodl "
    " fopen for fpclassify fpos_t fprintf fputc fputc_unlocked fputs fread fread_unlocked "
    " freopen frexp frexpf frexpl fscanf fseek fseeko fsetpos ftell ftello ftrylockfile "
    " funlockfile fwrite fwrite_unlocked gamma gammaf gammal getc getc_unlocked getchar "
    " getchar_unlocked getdelim getline getw goto hypot hypotf hypotl if ilogb ilogbf ilogbl "
    " index inline int int16_t int32_t int64_t int8_t int_fast16_t int_fast32_t int_fast64_t "
    " int_fast8_t int_least16_t int_least32_t int_least64_t int_least8_t intmax_t intptr_t "
    " isfinite isgreater isgreaterequal isinf isinff isinfl isless islessequal islessgreater "
    " isnan isnanf isnanl isnormal isunordered j0 j0f j0l j1 j1f j1l jn jnf jnl ldexp ldexpf "
    " ldexpl lgamma lgamma_r lgammaf lgammaf_r lgammal lgammal_r linux llrint llrintf llrintl "
    " llround llroundf llroundl locale_t log log10 log10f log10l log1p log1pf log1pl log2 "
    " log2f log2l logb logbf logbl logf logl long lrint lrintf lrintl lround lroundf lroundl "
    " math_errhandling max_align_t memccpy memchr memcmp memcpy memmove memset modf modff "
    " modfl nan nanf nanl nearbyint nearbyintf nearbyintl nextafter nextafterf nextafterl "
    " nexttoward nexttowardf nexttowardl off_t offsetof open_memstream pclose perror popen "
    " pow powf powl printf ptrdiff_t putc putc_unlocked putchar putchar_unlocked puts putw "
    " register remainder remainderf remainderl remove remquo remquof remquol rename renameat "
    " restrict return rewind rindex rint rintf rintl round roundf roundl scalb scalbf scalbl "
    " scalbln scalblnf scalblnl scalbn scalbnf scalbnl scanf setbuf setbuffer setlinebuf "
    " setvbuf short signbit signed signgam significand significandf significandl sin sinf "
    " sinh sinhf sinhl sinl size_t sizeof snprintf sprintf sqrt sqrtf sqrtl sscanf ssize_t "
    " static stderr stdin stdout stpcpy stpncpy strcasecmp strcasecmp_l strcat strchr strcmp "
    " strcoll strcoll_l strcpy strcspn strdup strerror strerror_l strerror_r strlen "
    " strncasecmp strncasecmp_l strncat strncmp strncpy strndup strnlen strpbrk strrchr "
    " strsep strsignal strspn strstr strtok strtok_r struct strxfrm strxfrm_l switch tan tanf "
    " tanh tanhf tanhl tanl tempnam tgamma tgammaf tgammal tmpfile tmpnam tmpnam_r true trunc "
    " truncf truncl typedef typeof uint16_t uint32_t uint64_t uint8_t uint_fast16_t "
    " uint_fast32_t uint_fast64_t uint_fast8_t uint_least16_t uint_least32_t uint_least64_t "
    " uint_least8_t uintmax_t uintptr_t ungetc union unix unsigned va_arg va_copy va_end "
    " va_list va_start vdprintf vfprintf vfscanf void volatile vprintf vscanf vsnprintf "
    " vsprintf vsscanf wchar_t while y0 y0f y0l y1 y1f y1l yn ynf ynl ";

bool cg_c_reserved(const char *name)
{
    if (name[0] == 0 || name[0] == '_' || !strncmp(name, "kiln_", 5) || !strncmp(name, "KILN_", 5))
        return true;
    // The vector vocabulary (VL, V_LOAD, v_mask, ...) and the shared GEMM code (gemm_job,
    // GEMM_A_FLOATS, ...) atop every file: isa_prelude.c, kernels_matmul.c.
    if (!strcmp(name, "VL") || !strncmp(name, "V_", 2) || !strncmp(name, "v_", 2) ||
        !strncmp(name, "gemm_", 5) || !strncmp(name, "GEMM_", 5))
        return true;
    size_t n = strlen(name);
    for (const char *p = reserved_names; (p = strstr(p, name)) != NULL; p += n)
        if (p > reserved_names && p[-1] == ' ' && (p[n] == ' ' || p[n] == 0))
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------------
 * Mono: symbolic products
 */

Mono mono_const(int64_t c)
{
    Mono m;
    memset(&m, 0, sizeof m);
    m.c = c;
    return m;
}

Mono mono_dim(Dim d)
{
    Mono m = mono_const(d.sym >= 0 ? 1 : d.size);
    if (d.sym >= 0) {
        m.n = 1;
        m.sym[0] = d.sym;
    }
    return m;
}

Mono mono_mul(Mono a, Mono b)
{
    Mono m = mono_const(a.c * b.c);
    if (m.c == 0)
        return m;
    if (a.n + b.n > CG_MONO_MAX)
        KILN_BUG("mono_mul: more than %d symbolic factors", CG_MONO_MAX);
    // Merge the two sorted factor lists.
    int i = 0, j = 0;
    while (i < a.n || j < b.n) {
        if (j >= b.n || (i < a.n && a.sym[i] <= b.sym[j]))
            m.sym[m.n++] = a.sym[i++];
        else
            m.sym[m.n++] = b.sym[j++];
    }
    return m;
}

bool mono_eq(Mono a, Mono b)
{
    if (a.c != b.c || a.n != b.n)
        return false;
    for (int i = 0; i < a.n; i++)
        if (a.sym[i] != b.sym[i])
            return false;
    return true;
}

bool mono_is(Mono a, int64_t c) { return a.n == 0 && a.c == c; }

Mono mono_dims(const Type *t, int from, int to)
{
    Mono m = mono_const(1);
    for (int k = from; k < to; k++)
        m = mono_mul(m, mono_dim(t->dim[k]));
    return m;
}

Mono mono_numel(const Type *t) { return mono_dims(t, 0, t->rank); }

void cg_strides(const Type *t, Mono *st)
{
    Mono s = mono_const(1);
    for (int k = t->rank - 1; k >= 0; k--) {
        st[k] = s;
        s = mono_mul(s, mono_dim(t->dim[k]));
    }
}

/* ---------------------------------------------------------------------------------------
 * Loop nests
 */

static void drop_loop(Nest *nest, int l)
{
    for (int k = l; k + 1 < nest->n_loops; k++) {
        nest->size[k] = nest->size[k + 1];
        for (int o = 0; o < nest->n_ops; o++)
            nest->stride[o][k] = nest->stride[o][k + 1];
    }
    nest->n_loops--;
}

void cg_nest_simplify(Nest *nest)
{
    for (int l = nest->n_loops - 1; l >= 0; l--)
        if (mono_is(nest->size[l], 1))
            drop_loop(nest, l);
    // Loop l and l + 1 become one when every operand steps through l as one block of
    // l + 1's extent: stride[l] == stride[l + 1] * size[l + 1] (0 == 0 for broadcasts).
    for (int l = nest->n_loops - 2; l >= 0; l--) {
        bool merge = true;
        for (int o = 0; o < nest->n_ops && merge; o++)
            merge = mono_eq(nest->stride[o][l],
                            mono_mul(nest->stride[o][l + 1], nest->size[l + 1]));
        if (!merge)
            continue;
        nest->size[l] = mono_mul(nest->size[l], nest->size[l + 1]);
        for (int o = 0; o < nest->n_ops; o++)
            nest->stride[o][l] = nest->stride[o][l + 1];
        drop_loop(nest, l + 1);
    }
}

void cg_assign(Kernel *k, const char *lhs, const char *rhs)
{
    if (4 * k->body.indent + strlen(lhs) + strlen(rhs) + 4 <= 100) {
        bline(&k->body, "%s = %s;", lhs, rhs);
    } else {
        bline(&k->body, "%s =", lhs);
        bline(&k->body, "    %s;", rhs);
    }
}

static const char *loop_var(Cg *cg, const Nest *nest, int l)
{
    return nest->n_loops == 1 ? "i" : cg_fmt(cg, "i%d", l);
}

// index[o]: operand o's offset in the nest's loop variables, e.g. "i0 * 64 + i1".
static void nest_index(Cg *cg, const Nest *nest, const char **index)
{
    for (int o = 0; o < nest->n_ops; o++) {
        Buf e = {0};
        for (int l = 0; l < nest->n_loops; l++) {
            Mono s = nest->stride[o][l];
            if (mono_is(s, 0))
                continue;
            bprintf(&e, "%s%s", e.len ? " + " : "", loop_var(cg, nest, l));
            if (!mono_is(s, 1))
                bprintf(&e, " * %s", cg_mono(cg, s, false));
        }
        if (!mono_is(nest->base[o], 0) || e.len == 0)
            bprintf(&e, "%s%s", e.len ? " + " : "", cg_mono(cg, nest->base[o], false));
        index[o] = arena_strdup(&cg->tmp, bstr(&e));
        bfree(&e);
    }
}

void cg_nest_open(Kernel *k, const Nest *nest, const char **index, bool brace)
{
    Cg *cg = k->cg;
    for (int l = 0; l < nest->n_loops; l++) {
        const char *v = loop_var(cg, nest, l);
        bline(&k->body, "for (int64_t %s = 0; %s < %s; %s++)%s", v, v,
              cg_mono(cg, nest->size[l], false), v, brace && l + 1 == nest->n_loops ? " {" : "");
        k->body.indent++;
    }
    if (brace && nest->n_loops == 0) {
        bline(&k->body, "{");
        k->body.indent++;
    }
    nest_index(cg, nest, index);
}

void cg_nest_open_rows(Kernel *k, const Nest *nest, const char **index, bool brace)
{
    Cg *cg = k->cg;
    if (nest->n_loops < 2)
        KILN_BUG("cg_nest_open_rows: %d loops", nest->n_loops);
    int outer = nest->n_loops - 1;
    Mono rows = mono_const(1);
    for (int l = 0; l < outer; l++)
        rows = mono_mul(rows, nest->size[l]);
    uint32_t *body_syms = cg->sym_used;
    cg->sym_used = &k->par_syms;
    k->par_rows = cg_mono(cg, rows, false);
    cg->sym_used = body_syms;
    int64_t inner = nest->size[outer].n ? 0 : nest->size[outer].c;
    k->par_min = inner > 0 ? (CG_PAR_MIN_ELEMS + inner - 1) / inner : 1;
    k->needs_run = true;
    const char *threads = " *   threads  rows (the outer loops) split over the run's threads";
    bprintf(&k->notes, "%s%s(%s_task)\n", threads,
            strlen(threads) + strlen(k->name) + 8 <= 100 ? " " : "\n *            ", k->name);
    bline(&k->body, "for (int64_t row = row0; row < row1; row++) {");
    k->body.indent++;
    // The outer loops' indices from row, innermost first: i_l = row / (sizes after l) % size_l.
    Mono after = mono_const(1);
    for (int l = outer - 1; l >= 0; l--) {
        Buf e = {0};
        bputs(&e, "row");
        if (!mono_is(after, 1))
            bprintf(&e, " / %s", cg_mono(cg, after, true));
        if (l > 0)
            bprintf(&e, " %% %s", cg_mono(cg, nest->size[l], true));
        bline(&k->body, "const int64_t %s = %s;", loop_var(cg, nest, l), bstr(&e));
        bfree(&e);
        after = mono_mul(after, nest->size[l]);
    }
    const char *v = loop_var(cg, nest, outer);
    bline(&k->body, "for (int64_t %s = 0; %s < %s; %s++)%s", v, v,
          cg_mono(cg, nest->size[outer], false), v, brace ? " {" : "");
    k->body.indent++;
    nest_index(cg, nest, index);
}

void cg_nest_close_rows(Kernel *k, bool brace)
{
    k->body.indent--;
    if (brace)
        bline(&k->body, "}");
    k->body.indent--;
    bline(&k->body, "} // row");
}

void cg_nest_close(Kernel *k, const Nest *nest, bool brace)
{
    if (brace) {            // the block opened by the innermost loop (or a bare block)
        k->body.indent--;
        bline(&k->body, "}");
    }
    k->body.indent -= nest->n_loops - (brace && nest->n_loops > 0);
}

// See cg.h.
const char *cg_display_path(const char *p)
{
    if (!p)
        return "<none>";
    const char *slash = strrchr(p, '/');
    return p[0] == '/' && slash ? slash + 1 : p;
}
