/* codegen/epilogue.c: the code of fused element-wise epilogues (Node.epi).
 *
 * fuse-elementwise (ir/fuse_elementwise.c) turns a bias add, an activation or a residual add
 * that follows a kernel into steps of that kernel's epilogue.  The kernel writers call
 * cg_epilogue_apply() where they store a result element; it writes one statement per step,
 * transforming a local `v` in place before the store:
 *
 *     float v = acc;
 *     v = v + e1[n];                  // add  h.0.mlp.fc    (bias)
 *     v = s_gelu_tanh(v);             // gelu h.0.mlp.act   (the prelude's math functions)
 *     out[m * 128 + n] = v;
 *
 * Each step is the expression the standalone element-wise kernel would compute
 * (cg_f32_expr), on the same float values in the same order, so a model compiled with the
 * pass and without it agrees to the bit for the epilogue itself (clang may contract a * b + c
 * into an FMA within one statement either way).  The operands of binary steps are the
 * node's inputs after its own (ir_op_inputs); step s reads parameter `e<s>`, indexed by its
 * ir_epi_form: the same shape at the output's own index, a last-axis vector at the column,
 * a scalar at 0.
 *
 * The vector form keeps that promise too: + - * / are lane-wise IEEE operations, tanh and
 * gelu are V_TANH, V_GELU_TANH, V_GELU_ERF, whose lanes have the bits of s_tanh, ... (the
 * prelude writes both from one text), a scale by a double runs lane by lane through the
 * scalar expression, and relu is V_MAX(v, 0), which is the scalar `v > 0 ? v : 0` exactly on
 * x86 (MAXPS returns its second operand unless the first is greater); NEON's vmaxq gives NaN
 * for a NaN where scalar code gives 0.
 */
#include "cg.h"

#include <string.h>

// The operand of epilogue step e and its form (one the kernels cannot index is a kiln bug).
static const Node *operand(const Kernel *k, const EpiOp *e, EpiForm *form)
{
    const Node *x = k->in[e->operand_in];
    *form = ir_epi_form(&x->type, &k->n->type);
    if (*form == EPI_OTHER)
        KILN_BUG("epilogue of '%s': operand '%s' does not index into it", k->n->name, x->name);
    return x;
}

unsigned cg_epilogue_uses(const Graph *g, const Node *n)
{
    unsigned uses = 0;
    for (int s = 0; s < n->n_epi; s++) {
        if (n->epi[s].operand_in < 0)
            continue;
        EpiForm f = ir_epi_form(&g->nodes[n->in[n->epi[s].operand_in]].type, &n->type);
        uses |= f == EPI_SAME ? CG_EPI_FLAT : f == EPI_ROW ? CG_EPI_COL : 0;
    }
    return uses;
}

void cg_epilogue_begin(Kernel *k)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    if (n->n_epi == 0)
        return;
    // " *   then    step -> step -> ...", continued under the first step past column 100.
    bputs(&k->notes, " *   then    ");
    int col = 13;
    for (int s = 0; s < n->n_epi; s++) {
        const EpiOp *e = &n->epi[s];
        const char *v = "v";
        if (e->operand_in >= 0) {
            k->arg[e->operand_in] = cg_fmt(cg, "e%d", s + 1);
            EpiForm form;
            operand(k, e, &form);
            const char *x = cg_fmt(cg, "e%d[%s]", s + 1,
                                   form == EPI_SAME ? "i" : form == EPI_ROW ? "col" : "0");
            v = e->operand_left ? cg_f32_expr(cg, (OpKind)e->op, 0, false, x, "v")
                                : cg_f32_expr(cg, (OpKind)e->op, 0, false, "v", x);
        } else if (e->op == OP_GELU) {
            v = e->tanh ? "gelu_tanh(v)" : "gelu(v)";
        } else if (e->op == OP_SCALE) {
            v = cg_f32_expr(cg, OP_SCALE, e->by, false, "v", NULL);
        } else {
            v = cg_fmt(cg, "%s(v)", op_name((OpKind)e->op));
        }
        int w = (int)strlen(v);
        if (s > 0 && col + 4 + w > 100) {
            bputs(&k->notes, " ->\n *           ");
            col = 13;
        } else if (s > 0) {
            bputs(&k->notes, " -> ");
            col += 4;
        }
        bcomment_text(&k->notes, v);
        col += w;
    }
    bputs(&k->notes, "\n");
}

int cg_epilogue_params(Kernel *k, const char **params)
{
    int n = 0;
    for (int s = 0; s < k->n->n_epi; s++) {
        const EpiOp *e = &k->n->epi[s];
        if (e->operand_in >= 0)
            params[n++] = cg_fmt(k->cg, "const float *restrict %s", k->arg[e->operand_in]);
    }
    return n;
}

int cg_epilogue_args(Kernel *k, const char **args)
{
    int n = 0;
    for (int s = 0; s < k->n->n_epi; s++) {
        const EpiOp *e = &k->n->epi[s];
        if (e->operand_in >= 0)
            args[n++] = k->arg[e->operand_in];
    }
    return n;
}

void cg_epilogue_apply_elems(Kernel *k, const char *v, const char *const *elem)
{
    k->epi_applied++;
    for (int s = 0; s < k->n->n_epi; s++) {
        const EpiOp *e = &k->n->epi[s];
        const char *x = e->operand_in >= 0 ? elem[e->operand_in] : NULL;
        const char *a = e->operand_left ? x : v, *b = e->operand_left ? v : x;
        cg_assign(k, v, cg_f32_expr(k->cg, (OpKind)e->op, e->by, e->tanh, a, b));
    }
}

// Steps the vector form runs lane by lane through the scalar expression: a scale by a double
// rounds through double, which the vocabulary has no form for.
static bool lanewise(const EpiOp *e)
{
    return e->op == OP_SCALE && (double)(float)e->by != e->by;
}

// Vector steps s0 .. s1-1 (all lanewise): spill v, apply them per lane, reload.
static void apply_lanes(Kernel *k, const char *v, int s0, int s1)
{
    Cg *cg = k->cg;
    bline(&k->body, "{");
    k->body.indent++;
    bline(&k->body, "float lane[V_LANES];   // per lane, as the scalar kernels compute it");
    bline(&k->body, "V_STORE(lane, %s);", v);
    bline(&k->body, "for (int l = 0; l < V_LANES; l++) {");
    k->body.indent++;
    for (int s = s0; s < s1; s++) {
        const EpiOp *e = &k->n->epi[s];
        cg_assign(k, "lane[l]", cg_f32_expr(cg, (OpKind)e->op, e->by, e->tanh, "lane[l]", NULL));
    }
    k->body.indent--;
    bline(&k->body, "}");
    bline(&k->body, "%s = V_LOAD(lane);", v);
    k->body.indent--;
    bline(&k->body, "}");
}

static const char *vector_op(OpKind op)
{
    switch (op) {
    case OP_ADD: return "V_ADD";
    case OP_SUB: return "V_SUB";
    case OP_MUL: return "V_MUL";
    case OP_DIV: return "V_DIV";
    default: KILN_BUG("vector_op: %s", op_name(op));
    }
}

void cg_epilogue_apply(Kernel *k, const char *v, const char *flat, const char *col, bool vec)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    const Type *t = &n->type;
    k->epi_applied++;
    for (int s = 0; s < n->n_epi; s++) {
        const EpiOp *e = &n->epi[s];
        if (vec && lanewise(e)) {
            int s1 = s + 1;
            while (s1 < n->n_epi && lanewise(&n->epi[s1]))
                s1++;
            apply_lanes(k, v, s, s1);
            s = s1 - 1;
            continue;
        }
        if (e->operand_in < 0) {
            const char *r;
            if (!vec)
                r = cg_f32_expr(cg, (OpKind)e->op, e->by, e->tanh, v, NULL);
            else if (e->op == OP_RELU)
                r = cg_fmt(cg, "V_MAX(%s, V_ZERO())", v);   // v > 0 ? v : 0 on x86
            else if (e->op == OP_TANH || e->op == OP_GELU)
                r = cg_vec_math(cg, (OpKind)e->op, e->tanh, v);     // the bits of s_tanh, ...
            else {      // OP_SCALE by a float
                Buf c = {0};
                bc_float(&c, (float)e->by);
                r = cg_fmt(cg, "V_MUL(%s, V_SET1(%s))", v, bstr(&c));
                bfree(&c);
            }
            cg_assign(k, v, r);
            continue;
        }
        EpiForm form;
        const Node *x = operand(k, e, &form);
        const char *at;
        if (form == EPI_SCALAR) {
            at = "0";
        } else if (form == EPI_SAME) {
            if (!flat)
                KILN_BUG("epilogue of '%s': operand '%s' needs the flat index", n->name, x->name);
            at = flat;
        } else if (col) {
            at = col;
        } else {
            if (!flat)
                KILN_BUG("epilogue of '%s': operand '%s' needs the column", n->name, x->name);
            at = cg_fmt(cg, "(%s) %% %s", flat, cg_mono(cg, mono_dim(t->dim[t->rank - 1]), true));
        }
        const char *name = k->arg[e->operand_in];
        const char *elem;
        if (!vec)
            elem = cg_fmt(cg, "%s[%s]", name, at);
        else if (form == EPI_SCALAR)
            elem = cg_fmt(cg, "V_SET1(%s[0])", name);
        else
            elem = cg_fmt(cg, "V_LOAD(%s + %s)", name, at);
        const char *a = e->operand_left ? elem : v, *b = e->operand_left ? v : elem;
        cg_assign(k, v, vec ? cg_fmt(cg, "%s(%s, %s)", vector_op((OpKind)e->op), a, b)
                            : cg_f32_expr(cg, (OpKind)e->op, 0, false, a, b));
    }
}
