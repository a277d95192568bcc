/* codegen/kernels_elementwise.c: kernels that compute each output element from the input
 * elements at the same position: add sub mul div (NumPy broadcasting), scale relu tanh gelu
 * cast, and the two with an index rule, causal_mask and arange.
 *
 * The loops run over the output; a broadcast input has stride 0 along the dims it lacks,
 * and cg_nest_simplify merges the dims every operand walks contiguously, so `x + y` is one
 * loop and a bias add `[seq, 256] + [256]` is two whose inner loop is contiguous (clang
 * vectorizes it; tanh and gelu call the prelude's s_tanh, s_gelu_tanh, s_gelu_erf, inline
 * functions without branches or libm calls, which it vectorizes with the loop).  Semantics
 * are ir/interp.c's: f32 results equal its double computation rounded once for + - * / and
 * scale; integer arithmetic wraps (computed in uint32_t), and integer division truncates,
 * makes x / -1 a wrapping negation, and fails on a zero divisor.
 * A node with a fused epilogue (fuse-elementwise) computes its value into a local `v`, runs
 * the epilogue on it (codegen/epilogue.c) and stores v; its operands are more inputs of the
 * same loop nest, so they get their own (broadcast) index expressions.
 */
#include "cg.h"

#include <string.h>

// Strides that read input `t` (right-aligned against the output type `o`) as if it had o's
// shape: 0 along dims it lacks or has as a static 1 where o does not.
static void broadcast_strides(const Type *t, const Type *o, Mono *st)
{
    Mono own[KILN_MAX_RANK];
    cg_strides(t, own);
    for (int k = 0; k < o->rank; k++) {
        int kt = k - (o->rank - t->rank);
        Dim dt = kt >= 0 ? t->dim[kt] : (Dim){1, -1};
        bool broadcast = kt < 0 || (dt.sym < 0 && dt.size == 1 &&
                                    !(o->dim[k].sym < 0 && o->dim[k].size == 1));
        st[k] = broadcast ? mono_const(0) : own[kt];
    }
}

const char *cg_f32_expr(Cg *cg, OpKind op, double by, bool tanh, const char *a, const char *b)
{
    switch (op) {
    case OP_ADD: return cg_fmt(cg, "%s + %s", a, b);
    case OP_SUB: return cg_fmt(cg, "%s - %s", a, b);
    case OP_MUL: return cg_fmt(cg, "%s * %s", a, b);
    case OP_DIV: return cg_fmt(cg, "%s / %s", a, b);
    case OP_SCALE: {
        // x * by rounded once: in float when `by` is a float (the product is then exact in
        // double too), else in double as the interpreter does.
        Buf s = {0};
        if ((double)(float)by == by) {
            bprintf(&s, "%s * ", a);
            bc_float(&s, (float)by);
        } else {
            bprintf(&s, "(float)(%s * ", a);
            bc_double(&s, by);
            bputs(&s, ")");
        }
        const char *r = cg_fmt(cg, "%s", bstr(&s));
        bfree(&s);
        return r;
    }
    case OP_RELU: return cg_fmt(cg, "%s > 0.0f ? %s : 0.0f", a, a);
    case OP_TANH:
    case OP_GELU: {
        unsigned bit = op == OP_TANH ? CG_MATH_TANH : tanh ? CG_MATH_GELU_TANH : CG_MATH_GELU_ERF;
        cg->math[0] |= bit;
        return cg_fmt(cg, "s_%s(%s)", op == OP_TANH ? "tanh" : tanh ? "gelu_tanh" : "gelu_erf", a);
    }
    default: break;
    }
    KILN_BUG("cg_f32_expr: %s", op_name(op));
}

const char *cg_vec_math(Cg *cg, OpKind op, bool tanh, const char *v)
{
    if (op != OP_TANH && op != OP_GELU)
        KILN_BUG("cg_vec_math: %s", op_name(op));
    cg->math[1] |= op == OP_TANH ? CG_MATH_TANH : tanh ? CG_MATH_GELU_TANH : CG_MATH_GELU_ERF;
    return cg_fmt(cg, "%s(%s)", op == OP_TANH ? "V_TANH" : tanh ? "V_GELU_TANH" : "V_GELU_ERF", v);
}

// The C expression of one output element, from the inputs' element expressions x[].
static const char *element_expr(Kernel *k, const char *const *x)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    bool f32 = n->type.dtype == DT_F32;
    const char *ops = n->op == OP_ADD ? "+" : n->op == OP_SUB ? "-" : n->op == OP_MUL ? "*" : "/";
    switch (n->op) {
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
        if (f32)
            return cg_f32_expr(cg, n->op, 0, false, x[0], x[1]);
        if (n->op == OP_DIV)
            return cg_fmt(cg, "den == -1 ? (int32_t)(0u - (uint32_t)%s) : %s / den", x[0], x[0]);
        // Wrapping, as the interpreter: unsigned arithmetic has no overflow.
        return cg_fmt(cg, "(int32_t)((uint32_t)%s %s (uint32_t)%s)", x[0], ops, x[1]);
    case OP_SCALE: return cg_f32_expr(cg, n->op, n->attr.scale.by, false, x[0], NULL);
    case OP_RELU:
    case OP_TANH: return cg_f32_expr(cg, n->op, 0, false, x[0], NULL);
    case OP_GELU: return cg_f32_expr(cg, n->op, 0, n->attr.gelu.tanh, x[0], NULL);
    case OP_CAST:
        if (k->in[0]->type.dtype == n->type.dtype)
            return x[0];
        return cg_fmt(cg, "(%s)%s", cg_ctype(n->type.dtype), x[0]);
    default: break;
    }
    KILN_BUG("element_expr: %s", op_name(n->op));
}

bool cg_kernel_elementwise(Kernel *k)
{
    const Node *n = k->n;
    const Type *o = &n->type;
    bool float_only = n->op == OP_SCALE || n->op == OP_RELU || n->op == OP_TANH ||
                      n->op == OP_GELU;
    if (n->op != OP_CAST && n->type.dtype != DT_F32 && (float_only || n->type.dtype != DT_I32))
        return cg_unsupported(k->cg, n, "%s on %s", op_name(n->op), dtype_name(n->type.dtype));

    Nest nest;
    memset(&nest, 0, sizeof nest);
    nest.n_loops = o->rank;
    for (int d = 0; d < o->rank; d++)
        nest.size[d] = mono_dim(o->dim[d]);
    nest.n_ops = 1 + n->n_in;
    cg_strides(o, nest.stride[0]);
    for (int i = 0; i < n->n_in; i++)
        broadcast_strides(&k->in[i]->type, o, nest.stride[1 + i]);
    for (int op = 0; op < nest.n_ops; op++)
        nest.base[op] = mono_const(0);
    cg_nest_simplify(&nest);

    // An integer division checks its divisor, and an epilogue has a local: a block.
    bool checked = n->op == OP_DIV && n->type.dtype != DT_F32;
    bool block = checked || n->n_epi > 0;
    const char *index[CG_MAX_OPS], *x[KILN_MAX_IN];
    cg_nest_open(k, &nest, index, block);
    for (int i = 0; i < n->n_in; i++)
        x[i] = cg_fmt(k->cg, "%s[%s]", k->arg[i], index[1 + i]);
    if (checked) {
        k->can_fail = true;
        Buf msg = {0};
        bc_string(&msg, cg_fmt(k->cg, "div '%s': integer division by zero at index ", n->name),
                  true);
        msg.len--;      // reopen the literal to append the conversion
        bputs(&msg, "%lld\"");
        bline(&k->body, "const int32_t den = %s;", x[1]);
        bline(&k->body, "if (den == 0)");
        k->body.indent++;
        const char *fail_args[] = {"r", bstr(&msg), cg_fmt(k->cg, "(long long)(%s)", index[0])};
        blist(&k->body, "return kiln_fail(", fail_args, 3, ");");
        k->body.indent--;
        bfree(&msg);
    }
    const char *value = element_expr(k, x);
    if (n->n_epi > 0) {     // fuse-elementwise: the epilogue operands are inputs of the nest
        cg_assign(k, "float v", value);
        cg_epilogue_apply_elems(k, "v", x);
        value = "v";
    }
    cg_assign(k, cg_fmt(k->cg, "%s[%s]", k->out, index[0]), value);
    cg_nest_close(k, &nest, block);
    return true;
}

// out[..., i, j] = x[..., i, j] where key j is visible to query i (j <= i + Sk - Sq, the
// queries being the last Sq of Sk positions), else -inf.
bool cg_kernel_causal_mask(Kernel *k)
{
    Cg *cg = k->cg;
    const Type *t = &k->n->type;
    if (t->rank < 2 || t->dtype != DT_F32)
        return cg_unsupported(cg, k->n, "causal_mask on %s of rank %d", dtype_name(t->dtype),
                              t->rank);
    Mono sq = mono_dim(t->dim[t->rank - 2]), sk = mono_dim(t->dim[t->rank - 1]);
    Mono rows = mono_dims(t, 0, t->rank - 1);
    const char *Sk = cg_mono(cg, sk, false);
    // i + (Sk - Sq): the offset folds when both are static or the same symbol; or i + the
    // state's position (attribute offset).
    const char *shift;
    if (k->n->attr.causal.has_offset) {
        shift = cg_fmt(cg, " + %s", cg_sym(cg, k->n->attr.causal.offset_sym));
    } else if (mono_eq(sq, sk))
        shift = "";
    else if (sq.n == 0 && sk.n == 0)
        shift = cg_fmt(cg, " %s %lld", sk.c >= sq.c ? "+" : "-",
                       (long long)(sk.c >= sq.c ? sk.c - sq.c : sq.c - sk.c));
    else
        shift = cg_fmt(cg, " + (%s - %s)", Sk, cg_mono(cg, sq, false));
    const char *i = mono_eq(rows, sq) ? "row" : cg_fmt(cg, "row %% %s", cg_mono(cg, sq, true));
    bline(&k->body, "for (int64_t row = 0; row < %s; row++) {", cg_mono(cg, rows, false));
    bline(&k->body, "    const int64_t last = %s%s;   // the last key this query sees", i, shift);
    const char *at = cg_fmt(cg, "row * %s + j", cg_mono(cg, sk, true));
    if (k->n->n_epi == 0) {
        bline(&k->body, "    for (int64_t j = 0; j < %s; j++)", Sk);
        bline(&k->body, "        %s[%s] = j <= last ? %s[%s] : -INFINITY;", k->out, at, k->arg[0],
              at);
    } else {    // fuse-elementwise: the epilogue after the mask
        bline(&k->body, "    for (int64_t j = 0; j < %s; j++) {", Sk);
        k->body.indent += 2;
        bline(&k->body, "float v = j <= last ? %s[%s] : -INFINITY;", k->arg[0], at);
        cg_epilogue_apply(k, "v", at, "j", false);
        bline(&k->body, "%s[%s] = v;", k->out, at);
        k->body.indent--;
        bline(&k->body, "}");
        k->body.indent--;
    }
    bline(&k->body, "}");
    return true;
}

// out[i] = start + i, wrapping to int32.
bool cg_kernel_arange(Kernel *k)
{
    const Type *t = &k->n->type;
    if (t->rank != 1 || t->dtype != DT_I32)
        return cg_unsupported(k->cg, k->n, "arange of %s rank %d", dtype_name(t->dtype), t->rank);
    int64_t start = k->n->attr.arange.start;
    bline(&k->body, "for (int64_t i = 0; i < %s; i++)", cg_mono(k->cg, mono_dim(t->dim[0]), false));
    if (k->n->attr.arange.has_start_sym) {     // from the state's position
        bline(&k->body, "    %s[i] = (int32_t)(%s + i);", k->out,
              cg_sym(k->cg, k->n->attr.arange.start_sym));
    } else if (start == 0)
        bline(&k->body, "    %s[i] = (int32_t)i;", k->out);
    else
        bline(&k->body, "    %s[i] = (int32_t)(%lld + i);", k->out, (long long)start);
    return true;
}
