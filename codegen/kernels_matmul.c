/* codegen/kernels_matmul.c: matmul, batched and broadcasting, with transposes.
 *
 * a is [..., M, K] ([..., K, M] with trans_a), b is [..., K, N] ([..., N, K] with trans_b);
 * a rank-1 a is a row (its M is dropped from the result), a rank-1 b a column (N dropped).
 * The batch dims broadcast NumPy-style: an outer loop nest walks the output's batch dims and
 * points a_mat, b_mat and o_mat at one matrix each, with stride 0 for the dims an operand
 * broadcasts (cg_nest_simplify folds the batch dims into as few loops as possible).  When
 * b is one matrix for all batches, a [..., M, K] is simply a taller matrix and there is no
 * batch loop.
 *
 * Inside, one of two loop orders, both accumulating every dot product in float from 0 in
 * k order (the interpreter accumulates in double, so results agree to float rounding):
 *   b as stored ([K, N]):    i-k-j: o_row += a[m, k] * b_row over n, contiguous in b and
 *                            out, which clang vectorizes; this is the hot loop of most models
 *   trans_b or a vector b:   dot products of a row of a with a row of b, both contiguous
 * Transposes of a are index arithmetic (a[k * M + m]).
 */
#include "cg.h"

#include <string.h>

// "v * s" (just v when s is 1); NULL (index 0) when the loop over v was left out.
static const char *term(Cg *cg, const char *v, Mono s)
{
    if (!v)
        return NULL;
    return mono_is(s, 1) ? v : cg_fmt(cg, "%s * %s", v, cg_mono(cg, s, true));
}

// a + b for index terms that may be NULL (zero); "0" when both are.
static const char *plus(Cg *cg, const char *a, const char *b)
{
    if (a && b)
        return cg_fmt(cg, "%s + %s", a, b);
    return a ? a : b ? b : "0";
}

// p + off as a pointer expression.
static const char *at(Cg *cg, const char *p, const char *off)
{
    return !off || strcmp(off, "0") == 0 ? p : cg_fmt(cg, "%s + %s", p, off);
}

bool cg_kernel_matmul(Kernel *k)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    const Type *ta = &k->in[0]->type, *tb = &k->in[1]->type, *to = &n->type;
    if (ta->dtype != DT_F32 || tb->dtype != DT_F32 || to->dtype != DT_F32)
        return cg_unsupported(cg, n, "matmul of %s and %s", dtype_name(ta->dtype),
                              dtype_name(tb->dtype));
    bool a_vec = ta->rank == 1, b_vec = tb->rank == 1;
    bool tra = n->attr.matmul.trans_a && !a_vec, trb = n->attr.matmul.trans_b && !b_vec;
    Mono M = mono_const(1), N = mono_const(1), K;
    if (a_vec) {
        K = mono_dim(ta->dim[0]);
    } else {
        Mono rows = mono_dim(ta->dim[ta->rank - 2]), cols = mono_dim(ta->dim[ta->rank - 1]);
        M = tra ? cols : rows;
        K = tra ? rows : cols;
    }
    if (!b_vec) {
        Mono rows = mono_dim(tb->dim[tb->rank - 2]), cols = mono_dim(tb->dim[tb->rank - 1]);
        N = trb ? rows : cols;
    }

    // Batch loops over the output's leading dims; operands 0 = a, 1 = b, 2 = out.
    int nba = a_vec ? 0 : ta->rank - 2, nbb = b_vec ? 0 : tb->rank - 2;
    int nb = to->rank - !a_vec - !b_vec;
    if (nb < 0 || nb < nba || nb < nbb)
        KILN_BUG("matmul '%s': %d batch dims for inputs with %d and %d", n->name, nb, nba, nbb);
    Nest nest;
    memset(&nest, 0, sizeof nest);
    nest.n_loops = nb;
    nest.n_ops = 3;
    const Type *opt[2] = {ta, tb};
    int opnb[2] = {nba, nbb};
    Mono unit[3] = {mono_mul(M, K), mono_mul(K, N), mono_mul(M, N)};
    for (int o = 0; o < 3; o++) {
        nest.base[o] = mono_const(0);
        Mono s = unit[o];
        for (int d = nb - 1; d >= 0; d--) {
            if (o == 2) {
                nest.stride[o][d] = s;
                s = mono_mul(s, mono_dim(to->dim[d]));
                continue;
            }
            int kd = d - (nb - opnb[o]);
            Dim dd = kd >= 0 ? opt[o]->dim[kd] : (Dim){1, -1};
            bool broadcast = kd < 0 || (dd.sym < 0 && dd.size == 1 &&
                                        !(to->dim[d].sym < 0 && to->dim[d].size == 1));
            nest.stride[o][d] = broadcast ? mono_const(0) : s;
            if (kd >= 0)
                s = mono_mul(s, mono_dim(dd));
        }
    }
    for (int d = 0; d < nb; d++)
        nest.size[d] = mono_dim(to->dim[d]);
    cg_nest_simplify(&nest);
    // b shared by every batch (a linear layer on [batch, seq, C]) and a, out contiguous
    // across the batch: the batch is just more rows of a.
    if (nest.n_loops == 1 && !tra && !a_vec && mono_is(nest.stride[1][0], 0) &&
        mono_eq(nest.stride[0][0], mono_mul(M, K)) && mono_eq(nest.stride[2][0], mono_mul(M, N))) {
        M = mono_mul(M, nest.size[0]);
        nest.n_loops = 0;
    }

    const char *A = k->arg[0], *B = k->arg[1], *O = k->out;
    if (nest.n_loops) {
        const char *index[CG_MAX_OPS];
        cg_nest_open(k, &nest, index, true);
        bline(&k->body, "const float *restrict a_mat = %s;", at(cg, A, index[0]));
        bline(&k->body, "const float *restrict b_mat = %s;", at(cg, B, index[1]));
        bline(&k->body, "float *restrict o_mat = %s;", at(cg, O, index[2]));
        A = "a_mat";
        B = "b_mat";
        O = "o_mat";
    }

    const char *m = mono_is(M, 1) ? NULL : "m";
    const char *sM = cg_mono(cg, M, false), *sN = cg_mono(cg, N, false);
    const char *sK = cg_mono(cg, K, false);
    if (m) {
        bline(&k->body, "for (int64_t m = 0; m < %s; m++) {", sM);
        k->body.indent++;
    }
    if (!trb && !b_vec) {
        // i-k-j: row m of out accumulates a[m, k] times row k of b.
        bline(&k->body, "float *restrict o_row = %s;", at(cg, O, term(cg, m, N)));
        bline(&k->body, "for (int64_t n = 0; n < %s; n++)", sN);
        bline(&k->body, "    o_row[n] = 0.0f;");
        bline(&k->body, "for (int64_t k = 0; k < %s; k++) {", sK);
        bline(&k->body, "    const float a_mk = %s[%s];", A,
              tra ? plus(cg, term(cg, "k", M), m) : plus(cg, term(cg, m, K), "k"));
        bline(&k->body, "    const float *restrict b_row = %s;", at(cg, B, term(cg, "k", N)));
        bline(&k->body, "    for (int64_t n = 0; n < %s; n++)   // the hot loop", sN);
        bline(&k->body, "        o_row[n] += a_mk * b_row[n];");
        bline(&k->body, "}");
    } else {
        // Dot products: out[m, n] = row m of a . row n of b (b stored [N, K], or a vector).
        const char *nv = mono_is(N, 1) ? NULL : "n";
        if (!tra)
            bline(&k->body, "const float *restrict a_row = %s;", at(cg, A, term(cg, m, K)));
        if (nv) {
            bline(&k->body, "for (int64_t n = 0; n < %s; n++) {", sN);
            k->body.indent++;
        }
        bline(&k->body, "const float *restrict b_row = %s;", at(cg, B, term(cg, nv, K)));
        bline(&k->body, "float acc = 0.0f;");
        bline(&k->body, "for (int64_t k = 0; k < %s; k++)", sK);
        if (tra)
            bline(&k->body, "    acc += %s[%s] * b_row[k];", A, plus(cg, term(cg, "k", M), m));
        else
            bline(&k->body, "    acc += a_row[k] * b_row[k];");
        bline(&k->body, "%s[%s] = acc;", O, plus(cg, term(cg, m, N), nv));
        if (nv) {
            k->body.indent--;
            bline(&k->body, "}");
        }
    }
    if (m) {
        k->body.indent--;
        bline(&k->body, "} // m");
    }
    if (nest.n_loops) {
        k->body.indent--;
        bline(&k->body, "} // batch");
        k->body.indent -= nest.n_loops - 1;
    }
    return true;
}
