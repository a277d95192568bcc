/* tests/fuzz/fuzz_expr.c: the spec expression evaluator (compiler/expr.c) on arbitrary text.
 *
 * Input: any bytes, cut at the first NUL (expressions are C strings).  They are evaluated
 * with a fixed environment of names (ordinary, huge, tiny, negative, and one whose lookup
 * fails with a message), then substituted (expr_substitute, as error messages do) into a
 * small and a large buffer, and a successful value is formatted with expr_fmt.
 *
 * Checked beyond the sanitizers (abort = finding):
 *   - a successful evaluation gives a finite number;
 *   - evaluating the substituted text (numbers only) gives the same value, since expr_fmt
 *     prints numbers that read back exactly (or fails only by nesting too deeply, as
 *     "(-5)" for a negative name adds a level);
 *   - expr_fmt's text reads back as the value.
 */
#include "front.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    double value;
} names[] = {
    {"n_embd", 768}, {"n_head", 12}, {"head_dim", 64}, {"i", 3}, {"eps", 1e-5},
    {"big", 1e308}, {"tiny", 4.9406564584124654e-324}, {"neg", -5}, {"half", 0.5},
    {"x2", 9007199254740993.0},
};

static bool lookup(void *ctx, const char *name, double *value, char *why, size_t n_why)
{
    (void)ctx;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(names[k].name, name) == 0) {
            *value = names[k].value;
            return true;
        }
    snprintf(why, n_why, "unknown name '%s'; did you mean 'n_embd'?", name);
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size + 1);
    if (!src)
        return 0;
    memcpy(src, data, size);
    src[size] = 0;

    ExprEnv env = {lookup, NULL};
    ExprError err;
    double v = 0;
    bool ok = expr_eval(src, &env, &v, &err);
    if (ok && !isfinite(v))
        abort();
    if (!ok && (err.pos < 0 || (size_t)err.pos > strlen(src)))
        abort();    // the error column must lie inside the expression
    expr_eval(src, NULL, &v, &err);
    double v1 = 0;
    ok = expr_eval(src, &env, &v1, &err);

    char small[16], large[1024];
    expr_substitute(src, &env, small, sizeof small);
    if (expr_substitute(src, &env, large, sizeof large) && ok) {
        // The parentheses around a substituted negative value nest one level deeper.
        double v2;
        bool ok2 = expr_eval(large, NULL, &v2, &err);
        if (ok2 ? v2 != v1 : strstr(err.msg, "nested too deeply") == NULL)
            abort();
    }
    if (ok) {
        char buf[40];
        expr_fmt(v1, buf, sizeof buf);
        if (strtod(buf, NULL) != v1)
            abort();
        (void)expr_is_whole(v1);
    }
    free(src);
    return 0;
}
