/* codegen/kernels_reduce.c: the row-wise kernels, softmax and layer_norm, over the last axis.
 *
 * Each row is a contiguous run of C elements: the kernels loop over rows and, inside, make
 * passes over the row with contiguous inner loops.  The rows are split over the run's threads
 * (a task function per kernel, emit.c's row_task), each row computed whole by one thread.
 * layer_norm's sums are vector sums of lanes then the lanes added (row_sum); softmax's
 * accumulate in float in index order.  Either way the order is fixed for each ISA, so the
 * output is the same on any number of threads.  The interpreter computes the same formulas
 * in double; the results agree to a few float ulps (tests/unit/test_codegen.c checks 1e-5).
 */
#include "cg.h"

// "(float)C" for a row length: a float literal when static.
static const char *as_float(Cg *cg, Mono m)
{
    if (m.n == 0) {
        Buf b = {0};
        bc_float(&b, (float)m.c);
        const char *s = cg_fmt(cg, "%s", bstr(&b));
        bfree(&b);
        return s;
    }
    return cg_fmt(cg, "(float)%s", cg_mono(cg, m, true));
}

// Open `for (row ...) {` and the row pointers xr (input) and yr (output); returns C.  The
// rows are split over the threads (Kernel.par_rows): the body runs rows [row0, row1), and
// each row is computed by one thread in the same order whatever the split.
static Mono open_rows(Kernel *k)
{
    Cg *cg = k->cg;
    const Type *t = &k->n->type;
    Mono C = t->rank ? mono_dim(t->dim[t->rank - 1]) : mono_const(1);
    Mono rows = t->rank ? mono_dims(t, 0, t->rank - 1) : mono_const(1);
    uint32_t *body_syms = cg->sym_used;
    cg->sym_used = &k->par_syms;
    k->par_rows = cg_mono(cg, rows, false);
    cg->sym_used = body_syms;
    int64_t c_max = t->rank ? t->dim[t->rank - 1].size : 1;    // a symbolic dim's bound
    k->par_min = (CG_PAR_MIN_ELEMS + c_max - 1) / c_max;
    k->needs_run = true;
    bprintf(&k->notes, " *   threads  rows split over the run's threads (%s_task)\n", k->name);
    bline(&k->body, "for (int64_t row = row0; row < row1; row++) {");
    k->body.indent++;
    bline(&k->body, "const float *restrict xr = %s + row * %s;", k->arg[0], cg_mono(cg, C, false));
    bline(&k->body, "float *restrict yr = %s + row * %s;", k->out, cg_mono(cg, C, false));
    return C;
}

/* The sum over j < C of `term` (an expression of V_T xj = V_LOAD(xr + j)), `scalar` the same
 * for float xj = xr[j]: lane-wise vector sums, then the lanes added (V_REDUCE_ADD), then the
 * rest one at a time.  A fixed order for each ISA; the scalar ISA (VL 1) adds in index order. */
static void row_sum(Kernel *k, Mono C, const char *var, const char *term, const char *scalar)
{
    Cg *cg = k->cg;
    const char *c = cg_mono(cg, C, false);
    int lanes = isa_lanes(cg->isa);
    bool whole = C.n == 0 && C.c % lanes == 0;     // no remainder after the vectors
    bline(&k->body, "V_T %s_v = V_ZERO();", var);
    bline(&k->body, "int64_t j = 0;");
    bline(&k->body, "for (; j + VL <= %s; j += VL) {", c);
    bline(&k->body, "    const V_T xj = V_LOAD(xr + j);");
    bline(&k->body, "    %s_v = %s;", var, cg_fmt(cg, term, var));
    bline(&k->body, "}");
    bline(&k->body, "float %s = V_REDUCE_ADD(%s_v);", var, var);
    if (!whole) {
        bline(&k->body, "for (; j < %s; j++) {", c);
        bline(&k->body, "    const float xj = xr[j];");
        bline(&k->body, "    %s += %s;", var, scalar);
        bline(&k->body, "}");
    }
}

static void close_rows(Kernel *k)
{
    k->body.indent--;
    bline(&k->body, "} // row");
}

// The last pass over a row: for j, yr[j] = value, through the node's epilogue if it has one
// (fuse-elementwise): element row * C + j of the output, column j.
static void store_row(Kernel *k, Mono C, const char *value)
{
    Cg *cg = k->cg;
    const char *c = cg_mono(cg, C, false);
    if (k->n->n_epi == 0) {
        bline(&k->body, "for (int64_t j = 0; j < %s; j++)", c);
        bline(&k->body, "    yr[j] = %s;", value);
        return;
    }
    bline(&k->body, "for (int64_t j = 0; j < %s; j++) {", c);
    k->body.indent++;
    cg_assign(k, "float v", value);
    cg_epilogue_apply(k, "v", cg_fmt(cg, "row * %s + j", cg_mono(cg, C, true)), "j", false);
    bline(&k->body, "yr[j] = v;");
    k->body.indent--;
    bline(&k->body, "}");
}

// softmax: y = exp(x - max) * (1 / sum of exp(x - max)); max ignores NaN (fmaxf), as the
// interpreter's fmax.  A row of all -inf gives NaN, as in the interpreter and PyTorch.
bool cg_kernel_softmax(Kernel *k)
{
    if (k->n->type.dtype != DT_F32)
        return cg_unsupported(k->cg, k->n, "softmax on %s", dtype_name(k->n->type.dtype));
    Mono C = open_rows(k);
    const char *c = cg_mono(k->cg, C, false);
    bline(&k->body, "float max = -INFINITY;");
    bline(&k->body, "for (int64_t j = 0; j < %s; j++)", c);
    bline(&k->body, "    max = fmaxf(max, xr[j]);");
    bline(&k->body, "float sum = 0.0f;");
    bline(&k->body, "for (int64_t j = 0; j < %s; j++) {", c);
    bline(&k->body, "    yr[j] = expf(xr[j] - max);");
    bline(&k->body, "    sum += yr[j];");
    bline(&k->body, "}");
    bline(&k->body, "const float inv = 1.0f / sum;");
    store_row(k, C, "yr[j] * inv");
    close_rows(k);
    return true;
}

// layer_norm: mean, then the biased variance from a second pass over (x - mean) (more
// accurate than E[x^2] - mean^2), then y = (x - mean) * rstd * gamma + beta.
bool cg_kernel_layer_norm(Kernel *k)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    if (n->type.dtype != DT_F32 || n->type.rank < 1)
        return cg_unsupported(cg, n, "layer_norm on %s of rank %d", dtype_name(n->type.dtype),
                              n->type.rank);
    Mono C = open_rows(k);
    const char *cf = as_float(cg, C);
    bline(&k->body, "float mean, rstd;");
    Buf eps = {0};
    bc_float(&eps, (float)n->attr.layer_norm.eps);
    bline(&k->body, "{");
    k->body.indent++;
    row_sum(k, C, "sum", "V_ADD(%s_v, xj)", "xj");
    bline(&k->body, "mean = sum / %s;", cf);
    k->body.indent--;
    bline(&k->body, "}");
    bline(&k->body, "{");
    k->body.indent++;
    bline(&k->body, "const V_T vmean = V_SET1(mean);");
    row_sum(k, C, "sq", "V_FMA(V_SUB(xj, vmean), V_SUB(xj, vmean), %s_v)",
            "(xj - mean) * (xj - mean)");
    bline(&k->body, "rstd = 1.0f / sqrtf(sq / %s + %s);", cf, bstr(&eps));
    k->body.indent--;
    bline(&k->body, "}");
    store_row(k, C, cg_fmt(cg, "(xr[j] - mean) * rstd * %s[j] + %s[j]", k->arg[1], k->arg[2]));
    close_rows(k);
    bfree(&eps);
    return true;
}
