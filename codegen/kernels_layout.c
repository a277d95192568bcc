/* codegen/kernels_layout.c: kernels that move data without arithmetic: transpose, slice,
 * concat, gather and cache_write.  (reshape has no kernel: plan-memory makes it a view of its
 * input.)
 *
 * transpose, slice and concat are strided copies written with the loop-nest helper: loops
 * over the destination's dims, each operand with its own strides and base offset, adjacent
 * dims merged where both sides are contiguous (a slice along axis 1 of [seq, 768] copies
 * rows of the slice's width).  cache_write copies each (batch, head) matrix's new rows into
 * the state with memcpy, the matrices split over the threads.  gather copies one table row per id and checks every id; with
 * a fused epilogue (fuse-elementwise) it copies element by element through it instead.
 */
#include "cg.h"

#include <string.h>

// A copy nest over the dims of `shape`: operand 0 (written) and 1 (read) with the given
// strides and bases; writes `dst[i] = src[j];`.  par: the kernel is this one nest, whose
// outer loops may be split over the threads.
static void copy_nest(Kernel *k, bool par, const Type *shape, const Mono *dst_st, Mono dst_base,
                      const char *dst, const Mono *src_st, Mono src_base, const char *src)
{
    Nest nest;
    memset(&nest, 0, sizeof nest);
    nest.n_loops = shape->rank;
    nest.n_ops = 2;
    for (int d = 0; d < shape->rank; d++) {
        nest.size[d] = mono_dim(shape->dim[d]);
        nest.stride[0][d] = dst_st[d];
        nest.stride[1][d] = src_st[d];
    }
    nest.base[0] = dst_base;
    nest.base[1] = src_base;
    cg_nest_simplify(&nest);
    const char *index[CG_MAX_OPS];
    // A transpose or slice that stays a nest (head splits and merges, GPT-2's split of q, k
    // and v) shares its outer loops out.
    bool rows = par && nest.n_loops >= 2;
    if (rows)
        cg_nest_open_rows(k, &nest, index, false);
    else
        cg_nest_open(k, &nest, index, false);
    cg_assign(k, cg_fmt(k->cg, "%s[%s]", dst, index[0]), cg_fmt(k->cg, "%s[%s]", src, index[1]));
    if (rows)
        cg_nest_close_rows(k, false);
    else
        cg_nest_close(k, &nest, false);
}

// out dim d is input dim perm[d]: out[i0, i1, ...] = x[... i_d at axis perm[d] ...].
bool cg_kernel_transpose(Kernel *k)
{
    const Type *t = &k->n->type, *tx = &k->in[0]->type;
    Mono ost[KILN_MAX_RANK], xst[KILN_MAX_RANK], pst[KILN_MAX_RANK];
    cg_strides(t, ost);
    cg_strides(tx, xst);
    for (int d = 0; d < t->rank; d++)
        pst[d] = xst[k->n->attr.transpose.perm[d]];
    copy_nest(k, true, t, ost, mono_const(0), k->out, pst, mono_const(0), k->arg[0]);
    return true;
}

// out = x[..., start:end, ...] along axis: the input's strides, offset by start rows.
bool cg_kernel_slice(Kernel *k)
{
    const Type *t = &k->n->type, *tx = &k->in[0]->type;
    Mono ost[KILN_MAX_RANK], xst[KILN_MAX_RANK];
    cg_strides(t, ost);
    cg_strides(tx, xst);
    int axis = k->n->attr.slice.axis;
    Mono base = mono_mul(mono_const(k->n->attr.slice.start), xst[axis]);
    copy_nest(k, true, t, ost, mono_const(0), k->out, xst, base, k->arg[0]);
    return true;
}

// Each input in turn fills its slab [offset, offset + its size) of the output's axis.
bool cg_kernel_concat(Kernel *k)
{
    const Type *t = &k->n->type;
    int axis = k->n->attr.concat.axis;
    Mono ost[KILN_MAX_RANK];
    cg_strides(t, ost);
    int64_t offset = 0;
    for (int i = 0; i < k->n->n_in; i++) {
        const Type *tx = &k->in[i]->type;
        Mono xst[KILN_MAX_RANK];
        cg_strides(tx, xst);
        int64_t size = tx->dim[axis].size;     // static (shape inference requires it)
        bline(&k->body, "/* %s: [%lld, %lld) of axis %d */", k->arg[i], (long long)offset,
              (long long)(offset + size), axis);
        copy_nest(k, false, tx, ost, mono_mul(mono_const(offset), ost[axis]), k->out, xst,
                  mono_const(0), k->arg[i]);
        offset += size;
    }
    return true;
}

// out[i, ...] = table[ids[i], ...]: one memcpy of a table row per id.  An id outside
// [0, N) fails the run with the interpreter's message.
bool cg_kernel_gather(Kernel *k)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    const Type *tt = &k->in[0]->type, *ti = &k->in[1]->type;
    if (ti->dtype != DT_I32 || tt->rank < 1 || tt->dim[0].sym >= 0)
        return cg_unsupported(cg, n, "gather with %s ids from a table of rank %d",
                              dtype_name(ti->dtype), tt->rank);
    k->can_fail = true;
    long long N = (long long)tt->dim[0].size;
    Mono row = mono_dims(tt, 1, tt->rank);
    const char *srow = cg_mono(cg, row, true);
    Buf msg = {0};
    bc_string(&msg, cg_fmt(cg, "gather '%s': id ", n->name), true);
    msg.len--;
    bprintf(&msg, "%%d at index %%lld is outside [0, %lld)\"", N);
    bline(&k->body, "for (int64_t i = 0; i < %s; i++) {", cg_mono(cg, mono_numel(ti), false));
    bline(&k->body, "    const int32_t id = %s[i];", k->arg[1]);
    bline(&k->body, "    if (id < 0 || id >= %lld)", N);
    k->body.indent += 2;
    const char *fail_args[] = {"r", bstr(&msg), "(int)id", "(long long)i"};
    blist(&k->body, "return kiln_fail(", fail_args, 4, ");");
    k->body.indent -= 2;
    if (n->n_epi > 0) {     // fuse-elementwise: each element through the epilogue
        bool one = mono_is(row, 1);
        const char *at = one ? "i" : cg_fmt(cg, "i * %s + j", srow);
        if (!one)
            bline(&k->body, "    for (int64_t j = 0; j < %s; j++) {", cg_mono(cg, row, false));
        else
            bline(&k->body, "    {");
        k->body.indent += 2;
        bline(&k->body, "float v = %s[%s];", k->arg[0],
              one ? "id" : cg_fmt(cg, "(int64_t)id * %s + j", srow));
        cg_epilogue_apply(k, "v", at, tt->rank == 2 && !one ? "j" : NULL, false);
        bline(&k->body, "%s[%s] = v;", k->out, at);
        k->body.indent--;
        bline(&k->body, "}");
        k->body.indent--;
    } else if (mono_is(row, 1))
        bline(&k->body, "    %s[i] = %s[id];", k->out, k->arg[0]);
    else
        bline(&k->body, "    memcpy(%s + i * %s, %s + (int64_t)id * %s, %s * sizeof(%s));",
              k->out, srow, k->arg[0], srow,
              row.n ? cg_fmt(cg, "(size_t)%s", srow) : srow, cg_ctype(tt->dtype));
    bline(&k->body, "}");
    bfree(&msg);
    return true;
}

// cache_write: x [.., S, D] into rows [at, at + S) of out [.., T, D], a slot of the state
// (forward() points out at it).  The rows must fit: past them is the next slot, or the end
// of the state, so the kernel refuses a write that would not fit, naming the state.
bool cg_kernel_cache_write(Kernel *k)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    const Type *tx = &k->in[1]->type;
    int r = tx->rank;
    long long T = (long long)n->type.dim[r - 2].size;
    Mono lead = mono_dims(tx, 0, r - 2), rows = mono_dims(tx, r - 2, r - 1),
         width = mono_dims(tx, r - 1, r);
    const char *past = cg_sym(cg, n->attr.cache_write.at_sym), *S = cg_mono(cg, rows, true),
               *D = cg_mono(cg, width, true);
    k->can_fail = true;
    // The message in two literals, a line each, under "return kiln_fail(".
    Buf msg = {0};
    bc_string(&msg, cg_fmt(cg, "state '%s': positions ", k->in[0]->name), true);
    msg.len--;
    bprintf(&msg, "%%lld..%%lld are past the %lld it keeps \"", T);
    bline(&k->body, "if (%s + %s > %lld)", past, S, T);
    k->body.indent++;
    bline(&k->body, "return kiln_fail(r,");
    bline(&k->body, "                 %s", bstr(&msg));
    bline(&k->body, "                 \"(the context is full)\",");
    bline(&k->body, "                 (long long)%s, (long long)(%s + %s - 1));", past, past, S);
    k->body.indent--;
    // The copies, one per (batch, head) matrix, split over the threads (kiln_parallel_for_min:
    // a decode step's one row per matrix stays on the caller).  The task reads the pointers
    // and the dims it uses from a job struct, as row_task in emit.c does.
    uint32_t *kernel_syms = cg->sym_used, task_syms = 0;
    cg->sym_used = &task_syms;
    const char *tpast = cg_sym(cg, n->attr.cache_write.at_sym), *tS = cg_mono(cg, rows, true),
               *tD = cg_mono(cg, width, true);
    cg->sym_used = kernel_syms;
    const Graph *g = cg->g;
    Buf *h = &k->helpers;
    bprintf(h, "// %s_job: the arguments of the kernel below, for its tasks\n", k->name);
    bprintf(h, "typedef struct {\n    const float *x;\n    float *out;\n");
    for (int s = 0; s < g->n_syms; s++)
        if (task_syms & (1u << s))
            bprintf(h, "    int64_t %s;\n", cg->sym_var[s]);
    bprintf(h, "} %s_job;\n\n", k->name);
    bprintf(h, "// %s_task: the (batch, head) matrices [m0, m1) of the kernel below (a "
               "kiln_task_fn)\n", k->name);
    bprintf(h, "static void %s_task(void *ctx, int64_t m0, int64_t m1)\n{\n", k->name);
    bprintf(h, "    const %s_job *job = ctx;\n", k->name);
    for (int s = 0; s < g->n_syms; s++)
        if (task_syms & (1u << s))
            bprintf(h, "    const int64_t %s = job->%s;\n", cg->sym_var[s], cg->sym_var[s]);
    bprintf(h, "    for (int64_t m = m0; m < m1; m++)   // its new rows\n");
    bprintf(h, "        memcpy(job->out + (m * %lld + %s) * %s, job->x + m * %s * %s,\n"
               "               (size_t)(%s * %s) * sizeof(float));\n}\n\n", T, tpast, tD,
            tS, tD, tS, tD);
    Buf init = {0};
    bprintf(&init, "%s_job job = {%s, %s", k->name, k->arg[1], k->out);
    for (int s = 0; s < g->n_syms; s++)
        if (task_syms & (1u << s)) {
            bprintf(&init, ", %s", cg->sym_var[s]);
            *kernel_syms |= 1u << s;
        }
    bputs(&init, "};");
    bline(&k->body, "%s", bstr(&init));
    bfree(&init);
    // At least CG_PAR_MIN_ELEMS floats per thread: a matrix's new rows are S * D of them.
    const char *par_args[] = {"r", cg_mono(cg, lead, false),
                              cg_fmt(cg, "(%lld + %s * %s - 1) / (%s * %s)",
                                     (long long)CG_PAR_MIN_ELEMS, S, D, S, D),
                              cg_fmt(cg, "%s_task", k->name), "&job"};
    blist(&k->body, "kiln_parallel_for_min(", par_args, 5, ");");
    bfree(&msg);
    bprintf(&k->notes, " *   writes   rows [%s, %s + %s) of the %lld the state keeps\n", past, past,
            S, T);
    bprintf(&k->notes, " *   threads  the (batch, head) matrices split over the run's threads "
                       "(%s_task)\n", k->name);
    return true;
}
