/* tests/unit/test_expr.c: unit tests of the spec expression evaluator (compiler/expr.c).
 *
 * Each case is an expression with either its value or its error (byte offset and message).
 * Names resolve through a small table: d_model = 768, n_head = 12, neg = -3, half = 0.5.
 * Prints one line per failure and `test_expr: N passed, M failed`; exits 1 on any failure.
 */
#include "front.h"

#include <math.h>
#include <string.h>

static int n_pass, n_fail;

static const struct {
    const char *name;
    double value;
} vars[] = {{"d_model", 768}, {"n_head", 12}, {"neg", -3}, {"half", 0.5}};

static bool lookup(void *ctx, const char *name, double *value, char *why, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (strcmp(vars[i].name, name) == 0) {
            *value = vars[i].value;
            return true;
        }
    snprintf(why, n, "unknown name '%s'", name);
    return false;
}

static const ExprEnv env = {lookup, NULL};

// The expression evaluates to `want` (exactly, or within 1e-12 relative for transcendental
// results).
static void ok(const char *src, double want)
{
    double got = 0;
    ExprError e;
    if (!expr_eval(src, &env, &got, &e)) {
        printf("FAIL %-28s expected %.17g, got error at %d: %s\n", src, want, e.pos, e.msg);
        n_fail++;
    } else if (!(got == want || fabs(got - want) <= 1e-12 * fabs(want))) {
        printf("FAIL %-28s expected %.17g, got %.17g\n", src, want, got);
        n_fail++;
    } else {
        n_pass++;
    }
}

// The expression fails at byte offset `pos` with a message containing `msg`.
static void err(const char *src, int pos, const char *msg)
{
    double got = 0;
    ExprError e;
    if (expr_eval(src, &env, &got, &e)) {
        printf("FAIL %-28s expected error at %d (%s), got %.17g\n", src, pos, msg, got);
        n_fail++;
    } else if (e.pos != pos || !strstr(e.msg, msg)) {
        printf("FAIL %-28s expected error at %d containing \"%s\", got at %d: %s\n", src, pos,
               msg, e.pos, e.msg);
        n_fail++;
    } else {
        n_pass++;
    }
}

static void str_eq(const char *what, const char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        printf("FAIL %-28s expected \"%s\", got \"%s\"\n", what, want, got);
        n_fail++;
    } else {
        n_pass++;
    }
}

int main(void)
{
    // numbers
    ok("768", 768);
    ok("  42  ", 42);
    ok("1e-5", 1e-5);
    ok("2.5E+3", 2500);
    ok(".5", 0.5);
    ok("3.", 3);
    ok("-3.4028234663852886e38", -3.4028234663852886e38);

    // precedence and associativity
    ok("1 + 2 * 3", 7);
    ok("(1 + 2) * 3", 9);
    ok("10 - 4 - 3", 3);
    ok("64 / 4 / 2", 8);
    ok("2 * 3 % 4", 2);            // (2 * 3) % 4
    ok("2 ** 3 ** 2", 512);        // right-associative
    ok("-2 ** 2", -4);             // unary minus binds looser than **
    ok("2 ** -1", 0.5);
    ok("-(-3)", 3);
    ok("+4", 4);
    ok("--4", 4);
    ok("2*-3", -6);

    // division: /, //, %
    ok("7 / 2", 3.5);
    ok("7 // 2", 3);
    ok("-7 // 2", -4);             // floor, as Python
    ok("7 % 3", 1);
    ok("-7 % 3", 2);               // sign of the divisor, as Python
    ok("7 % -3", -2);
    ok("7.5 % 2", 1.5);

    // names and functions
    ok("d_model / n_head", 64);
    ok("4 * d_model", 3072);
    ok("neg * neg", 9);
    ok("1 / sqrt(d_model / n_head)", 0.125);
    ok("sqrt(2) * sqrt(2)", 2);
    ok("exp(0)", 1);
    ok("log(exp(2))", 2);
    ok("min(3, 1, 2)", 1);
    ok("max(3, d_model, 2)", 768);
    ok("max(neg)", -3);
    ok("min ( 4 , 5 )", 4);
    ok("half + half", 1);
    ok("-0", 0);

    // errors, with byte offsets
    err("", 0, "empty expression");
    err("   ", 3, "empty expression");
    err("1 +", 3, "found the end of the expression");
    err("4 * (d_model + ", 15, "found the end of the expression");
    err("(1 + 2", 6, "expected ')'");
    err("1 + 2)", 5, "expected an operator, found ')'");
    err("2 3", 2, "expected an operator, found '3'");
    err("2x", 1, "expected an operator after the number");
    err("d_modle * 2", 0, "unknown name 'd_modle'");
    err("2 * n_heads", 4, "unknown name 'n_heads'");
    err("sqr(4)", 0, "unknown function 'sqr'; did you mean 'sqrt'?");
    err("sqrt(1, 2)", 0, "sqrt takes 1 argument, found 2");
    err("min()", 0, "min takes 1 to 16 arguments, found 0");
    err("sqrt(-1)", 0, "sqrt of a negative number (-1)");
    err("log(0)", 0, "log of a number that is not positive");
    err("1 / 0", 2, "division by zero");
    err("1 // (n_head - 12)", 2, "division by zero");
    err("5 % 0", 2, "division by zero");
    err("0 ** -1", 2, "division by zero");
    err("10 ** 400", 3, "a number too large");
    err("neg ** 0.5", 4, "no real number");
    err("exp(1000)", 0, "exp gives a number too large");
    err("1e999", 0, "too large");
    err("3 $ 4", 2, "expected an operator, found '$'");
    err("max(1; 2)", 5, "expected ',' or ')'");
    err("((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1", 32,
        "nested too deeply");

    // messages helpers
    char buf[64];
    expr_fmt(768, buf, sizeof buf);
    str_eq("expr_fmt(768)", buf, "768");
    expr_fmt(0.125, buf, sizeof buf);
    str_eq("expr_fmt(0.125)", buf, "0.125");
    expr_fmt(153.6, buf, sizeof buf);
    str_eq("expr_fmt(153.6)", buf, "153.6");
    expr_fmt(1e-5, buf, sizeof buf);
    str_eq("expr_fmt(1e-5)", buf, "1e-05");
    expr_fmt(-0.0, buf, sizeof buf);
    str_eq("expr_fmt(-0)", buf, "0");
    expr_substitute("d_model / n_head", &env, buf, sizeof buf);
    str_eq("substitute names", buf, "768 / 12");
    expr_substitute("2 * neg + sqrt(d_model)", &env, buf, sizeof buf);
    str_eq("substitute negative", buf, "2 * (-3) + sqrt(768)");
    str_eq("substitute none", expr_substitute("2 * 3", &env, buf, sizeof buf) ? "true" : buf, "");

    if (expr_is_whole(2.5) || !expr_is_whole(-4) || expr_is_whole(1e300) || expr_is_whole((double)NAN)) {
        printf("FAIL expr_is_whole\n");
        n_fail++;
    } else {
        n_pass++;
    }

    printf("test_expr: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
