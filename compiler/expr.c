/* compiler/expr.c: the expression language of specs (parameters, shapes, attributes).
 *
 * A recursive-descent evaluator over the grammar in front.h: it evaluates while it parses,
 * in double precision, and stops at the first error with its byte offset, which spec.c
 * turns into a spec column.  Names are resolved through an ExprEnv, so the same code serves
 * parameters (earlier parameters only), shapes and repeat bodies (the repeat index too).
 */
#include "front.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 64 };    // nesting of parentheses, unary minus and calls

typedef struct {
    const char *src;
    int pos;                // next unread byte
    const ExprEnv *env;
    ExprError *err;
    bool failed;            // an error is stored in err; everything after is ignored
    int depth;
} Parser;

/* ---- tokens --------------------------------------------------------------------------- */

static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

static void skip_space(Parser *p)
{
    while (p->src[p->pos] == ' ' || p->src[p->pos] == '\t')
        p->pos++;
}

// Record the first error only: later ones are consequences of it.
__attribute__((format(printf, 3, 4)))
static void fail(Parser *p, int pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    p->err->pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
}

// Describe the token at pos for "found ..." messages: "'*'", "'foo'", "the end".
static const char *token_text(const char *src, int pos, char *buf, size_t n)
{
    const char *s = src + pos;
    if (!*s)
        return "the end of the expression";
    int len = 1;
    if (is_name_char(*s) || *s == '.') {
        while (len < 24 && (is_name_char(s[len]) || s[len] == '.'))
            len++;
    } else if ((s[0] == '*' && s[1] == '*') || (s[0] == '/' && s[1] == '/')) {
        len = 2;
    } else if ((unsigned char)*s >= 0x80) {
        while (len < 4 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len++;
    }
    snprintf(buf, n, "'%.*s'", len, s);
    return buf;
}

static bool accept(Parser *p, const char *op)
{
    skip_space(p);
    size_t n = strlen(op);
    if (strncmp(p->src + p->pos, op, n) != 0)
        return false;
    // "*" must not match the first half of "**", nor "/" of "//".
    if (n == 1 && (op[0] == '*' || op[0] == '/') && p->src[p->pos + 1] == op[0])
        return false;
    p->pos += (int)n;
    return true;
}

// Check an operation's result; `what` names the operation for the message.
static double checked(Parser *p, int pos, double v, const char *what)
{
    if (!isfinite(v))
        fail(p, pos, "%s gives %s", what, isnan(v) ? "no real number" : "a number too large");
    return v;
}

/* ---- grammar -------------------------------------------------------------------------- */

static double parse_expr(Parser *p);
static double parse_unary(Parser *p);

// number = digits ["." digits] [("e" | "E") ["+" | "-"] digits]  |  "." digits ...
static double parse_number(Parser *p)
{
    const char *s = p->src + p->pos;
    int n = 0;
    while (is_digit(s[n]))
        n++;
    if (s[n] == '.') {
        n++;
        while (is_digit(s[n]))
            n++;
    }
    if ((s[n] == 'e' || s[n] == 'E') &&
        (is_digit(s[n + 1]) || ((s[n + 1] == '+' || s[n + 1] == '-') && is_digit(s[n + 2])))) {
        n += 2;
        while (is_digit(s[n]))
            n++;
    }
    char buf[64];
    if (n >= (int)sizeof buf) {
        fail(p, p->pos, "number '%.20s...' is too long", s);
        return 0;
    }
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    double v = strtod(buf, NULL);
    if (!isfinite(v))
        fail(p, p->pos, "number '%s' is too large", buf);
    if (is_name_start(s[n]) || s[n] == '.') {
        char t[48];
        fail(p, p->pos + n, "expected an operator after the number, found %s",
             token_text(p->src, p->pos + n, t, sizeof t));
    }
    p->pos += n;
    return v;
}

typedef struct {
    const char *name;
    int min_args, max_args;     // max_args 0: any number
} Func;

static const Func funcs[] = {
    {"sqrt", 1, 1}, {"exp", 1, 1}, {"log", 1, 1}, {"min", 1, 0}, {"max", 1, 0},
};

// call = name "(" expr ("," expr)* ")"; p->pos is at the "(".
static double parse_call(Parser *p, const char *name, int name_pos)
{
    const Func *f = NULL;
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
        if (strcmp(funcs[i].name, name) == 0)
            f = &funcs[i];
    if (!f) {
        const char *best = NULL;
        int best_d = 3;
        for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++) {
            int dist = str_edit_distance(name, funcs[i].name);
            if (dist < best_d) {
                best_d = dist;
                best = funcs[i].name;
            }
        }
        if (best)
            fail(p, name_pos, "unknown function '%s'; did you mean '%s'?", name, best);
        else
            fail(p, name_pos, "unknown function '%s' (functions: sqrt, exp, log, min, max)", name);
        return 0;
    }
    accept(p, "(");
    double args[16];
    int n = 0;
    skip_space(p);
    if (p->src[p->pos] != ')') {
        do {
            double v = parse_expr(p);
            if (n < 16)
                args[n] = v;
            n++;
        } while (!p->failed && accept(p, ","));
    }
    if (p->failed)
        return 0;
    if (!accept(p, ")")) {
        char t[48];
        fail(p, p->pos, "expected ',' or ')' in the call of %s, found %s", name,
             token_text(p->src, p->pos, t, sizeof t));
        return 0;
    }
    if (n < f->min_args || (f->max_args && n > f->max_args) || n > 16) {
        if (f->max_args == f->min_args)
            fail(p, name_pos, "%s takes %d argument%s, found %d", name, f->min_args,
                 f->min_args == 1 ? "" : "s", n);
        else
            fail(p, name_pos, "%s takes 1 to 16 arguments, found %d", name, n);
        return 0;
    }
    char v0[32];
    expr_fmt(args[0], v0, sizeof v0);
    if (strcmp(name, "sqrt") == 0) {
        if (args[0] < 0)
            fail(p, name_pos, "sqrt of a negative number (%s)", v0);
        return sqrt(args[0]);
    }
    if (strcmp(name, "log") == 0) {
        if (args[0] <= 0)
            fail(p, name_pos, "log of a number that is not positive (%s)", v0);
        return log(args[0]);
    }
    if (strcmp(name, "exp") == 0)
        return checked(p, name_pos, exp(args[0]), "exp");
    double r = args[0];
    for (int i = 1; i < n; i++)
        r = name[1] == 'i' ? fmin(r, args[i]) : fmax(r, args[i]);
    return r;
}

// atom = number | name | name "(" expr ("," expr)* ")" | "(" expr ")"
static double parse_atom(Parser *p)
{
    skip_space(p);
    const char *s = p->src + p->pos;
    int start = p->pos;
    if (is_digit(*s) || (*s == '.' && is_digit(s[1])))
        return parse_number(p);
    if (is_name_start(*s)) {
        int n = 0;
        while (is_name_char(s[n]))
            n++;
        char name[128];
        if (n >= (int)sizeof name) {
            fail(p, start, "name '%.20s...' is too long", s);
            return 0;
        }
        memcpy(name, s, (size_t)n);
        name[n] = 0;
        p->pos += n;
        skip_space(p);
        if (p->src[p->pos] == '(')
            return parse_call(p, name, start);
        double v = 0;
        char why[sizeof p->err->msg];
        if (!p->env || !p->env->lookup) {
            fail(p, start, "unknown name '%s'", name);
        } else if (!p->env->lookup(p->env->ctx, name, &v, why, sizeof why)) {
            fail(p, start, "%s", why);
        } else if (!isfinite(v)) {
            fail(p, start, "'%s' is not a finite number", name);
        }
        return v;
    }
    if (*s == '(') {
        p->pos++;
        double v = parse_expr(p);
        if (!p->failed && !accept(p, ")")) {
            char t[48];
            fail(p, p->pos, "expected ')' to close '(', found %s",
                 token_text(p->src, p->pos, t, sizeof t));
        }
        return v;
    }
    char t[48];
    fail(p, start, "expected a number, a name or '(', found %s",
         token_text(p->src, start, t, sizeof t));
    return 0;
}

// power = atom ("**" unary)?     (right-associative through unary: 2 ** -1 ** 2 = 2 ** -(1))
static double parse_power(Parser *p)
{
    double base = parse_atom(p);
    skip_space(p);
    int pos = p->pos;
    if (p->failed || !accept(p, "**"))
        return base;
    double e = parse_unary(p);
    if (p->failed)
        return 0;
    if (base == 0 && e < 0) {
        fail(p, pos, "0 ** negative is a division by zero");
        return 0;
    }
    return checked(p, pos, pow(base, e), "'**'");
}

// unary = ("-" | "+") unary | power
static double parse_unary(Parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        fail(p, p->pos, "expression nested too deeply");
        return 0;
    }
    double v;
    skip_space(p);
    if (accept(p, "-"))
        v = -parse_unary(p);
    else if (accept(p, "+"))
        v = parse_unary(p);
    else
        v = parse_power(p);
    p->depth--;
    return v;
}

// term = unary (("*" | "/" | "//" | "%") unary)*
static double parse_term(Parser *p)
{
    double v = parse_unary(p);
    while (!p->failed) {
        skip_space(p);
        int pos = p->pos;
        if (accept(p, "*")) {
            v = checked(p, pos, v * parse_unary(p), "'*'");
        } else if (accept(p, "//")) {
            double r = parse_unary(p);
            if (!p->failed && r == 0)
                fail(p, pos, "division by zero");
            v = r != 0 ? checked(p, pos, floor(v / r), "'//'") : 0;
        } else if (accept(p, "/")) {
            double r = parse_unary(p);
            if (!p->failed && r == 0)
                fail(p, pos, "division by zero");
            v = r != 0 ? checked(p, pos, v / r, "'/'") : 0;
        } else if (accept(p, "%")) {
            double r = parse_unary(p);
            if (!p->failed && r == 0)
                fail(p, pos, "division by zero in '%%'");
            if (r != 0) {
                double m = fmod(v, r);    // sign of the divisor, as Python's %
                if (m != 0 && (m < 0) != (r < 0))
                    m += r;
                v = m;
            }
        } else {
            break;
        }
    }
    return v;
}

// expr = term (("+" | "-") term)*
static double parse_expr(Parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        fail(p, p->pos, "expression nested too deeply");
        return 0;
    }
    double v = parse_term(p);
    while (!p->failed) {
        skip_space(p);
        int pos = p->pos;
        if (accept(p, "+"))
            v = checked(p, pos, v + parse_term(p), "'+'");
        else if (accept(p, "-"))
            v = checked(p, pos, v - parse_term(p), "'-'");
        else
            break;
    }
    p->depth--;
    return v;
}

bool expr_eval(const char *src, const ExprEnv *env, double *out, ExprError *err)
{
    ExprError scratch;
    Parser p = {.src = src, .env = env, .err = err ? err : &scratch};
    p.err->pos = 0;
    p.err->msg[0] = 0;
    skip_space(&p);
    if (!src[p.pos]) {
        fail(&p, p.pos, "empty expression");
        return false;
    }
    double v = parse_expr(&p);
    skip_space(&p);
    if (!p.failed && src[p.pos]) {
        char t[48];
        fail(&p, p.pos, "expected an operator, found %s", token_text(src, p.pos, t, sizeof t));
    }
    if (p.failed)
        return false;
    if (v == 0)
        v = 0;      // no "-0" in messages or generated code
    *out = v;
    return true;
}

/* ---- helpers for messages ------------------------------------------------------------- */

bool expr_is_whole(double v)
{
    return isfinite(v) && floor(v) == v && fabs(v) <= 9007199254740992.0;
}

void expr_fmt(double v, char *buf, size_t n)
{
    if (v == 0)
        v = 0;
    if (expr_is_whole(v)) {
        snprintf(buf, n, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

bool expr_substitute(const char *src, const ExprEnv *env, char *buf, size_t n)
{
    size_t len = 0;
    bool any = false;
    buf[0] = 0;
    for (size_t i = 0; src[i];) {
        const char *s = src + i;
        size_t tok = 1;
        char piece[64];
        const char *text = NULL;
        if (is_digit(*s) || *s == '.') {
            while (is_name_char(s[tok]) || s[tok] == '.' ||
                   ((s[tok] == '+' || s[tok] == '-') && (s[tok - 1] == 'e' || s[tok - 1] == 'E')))
                tok++;
        } else if (is_name_start(*s)) {
            while (is_name_char(s[tok]))
                tok++;
            size_t j = tok;
            while (s[j] == ' ' || s[j] == '\t')
                j++;
            if (s[j] != '(') {
                char name[128], why[8];
                double v;
                if (tok >= sizeof name || !env || !env->lookup)
                    return buf[0] = 0, false;
                memcpy(name, s, tok);
                name[tok] = 0;
                if (!env->lookup(env->ctx, name, &v, why, sizeof why))
                    return buf[0] = 0, false;
                char num[40];
                expr_fmt(v, num, sizeof num);
                snprintf(piece, sizeof piece, v < 0 ? "(%s)" : "%s", num);
                text = piece;
                any = true;
            }
        }
        int w = text ? snprintf(buf + len, n - len, "%s", text)
                     : snprintf(buf + len, n - len, "%.*s", (int)tok, s);
        if (w < 0 || (size_t)w >= n - len)
            return buf[0] = 0, false;
        len += (size_t)w;
        i += tok;
    }
    if (!any)
        buf[0] = 0;
    return any;
}
