/* codegen/kernels_matmul.c: matmul, batched and broadcasting, with transposes.
 *
 * a is [..., M, K] ([..., K, M] with trans_a), b is [..., K, N] ([..., N, K] with trans_b);
 * a rank-1 a is a row (its M is dropped from the result), a rank-1 b a column (N dropped).
 * The batch dims broadcast NumPy-style: a loop nest walks the output's batch dims with
 * stride 0 for the dims an operand broadcasts (cg_nest_simplify folds them into as few loops
 * as possible).  When b is one matrix for all batches, a [..., M, K] is simply a taller
 * matrix and there is no batch loop.
 *
 * Two ways to write a matmul:
 *
 * Tiled (the tile pass set Node.tile): the kernel describes the product in a gemm_job and
 * runs gemm_<mr>x<nr>_run over it on the run's threads.  That code is written once per file
 * (cg_emit_gemm_support, after the vector vocabulary) and is BLIS's: b in panels of nr
 * columns ([K][nr] each), a packed mc rows x kc at a time, and a register-blocked
 * microkernel that broadcasts one a value per row and k and multiplies it into the nr b
 * values of that k with FMAs, mr x nr accumulators held in vector registers.  A weight b is
 * packed once at load by the generated prepare() (cg_pack_plan, cg_emit_prepare) and forward()
 * hands the kernel the packed copy; an activation b is packed kc x nr at a time.  Epilogues
 * run on each finished tile while it is in L1.
 *
 * Plain (no tile, or b a vector): loops that clang vectorizes, accumulating every dot product
 * in float from 0 in k order:
 *   b as stored ([K, N]):    i-k-j: o_row += a[m, k] * b_row over n, contiguous in b and out
 *   trans_b or a vector b:   dot products of a row of a with a row of b, both contiguous
 * Transposes of a are index arithmetic (a[k * M + m]).
 *
 * Both compute each output element as one chain of multiply-adds in k order, so blocking
 * and threads never change a result (the interpreter accumulates in double: results agree
 * to float rounding).
 */
#include "cg.h"

#include <stdlib.h>
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

/* ---------------------------------------------------------------------------------------
 * The shape of a matmul
 */

typedef struct {
    bool a_vec, b_vec, tra, trb;
    Mono M, N, K;           // per matrix; M includes the batch when it is folded into rows
    Nest nest;              // batch loops; operands 0 = a, 1 = b, 2 = out
} Shape;

static Shape shape_of(const Kernel *k)
{
    const Node *n = k->n;
    const Type *ta = &k->in[0]->type, *tb = &k->in[1]->type, *to = &n->type;
    Shape s;
    memset(&s, 0, sizeof s);
    s.a_vec = ta->rank == 1;
    s.b_vec = tb->rank == 1;
    s.tra = n->attr.matmul.trans_a && !s.a_vec;
    s.trb = n->attr.matmul.trans_b && !s.b_vec;
    s.M = mono_const(1);
    s.N = mono_const(1);
    if (s.a_vec) {
        s.K = mono_dim(ta->dim[0]);
    } else {
        Mono rows = mono_dim(ta->dim[ta->rank - 2]), cols = mono_dim(ta->dim[ta->rank - 1]);
        s.M = s.tra ? cols : rows;
        s.K = s.tra ? rows : cols;
    }
    if (!s.b_vec) {
        Mono rows = mono_dim(tb->dim[tb->rank - 2]), cols = mono_dim(tb->dim[tb->rank - 1]);
        s.N = s.trb ? rows : cols;
    }

    int nba = s.a_vec ? 0 : ta->rank - 2, nbb = s.b_vec ? 0 : tb->rank - 2;
    int nb = to->rank - !s.a_vec - !s.b_vec;
    if (nb < 0 || nb < nba || nb < nbb)
        KILN_BUG("matmul '%s': %d batch dims for inputs with %d and %d", n->name, nb, nba, nbb);
    Nest *nest = &s.nest;
    nest->n_loops = nb;
    nest->n_ops = 3;
    const Type *opt[2] = {ta, tb};
    int opnb[2] = {nba, nbb};
    Mono unit[3] = {mono_mul(s.M, s.K), mono_mul(s.K, s.N), mono_mul(s.M, s.N)};
    for (int o = 0; o < 3; o++) {
        nest->base[o] = mono_const(0);
        Mono st = unit[o];
        for (int d = nb - 1; d >= 0; d--) {
            if (o == 2) {
                nest->stride[o][d] = st;
                st = mono_mul(st, mono_dim(to->dim[d]));
                continue;
            }
            int kd = d - (nb - opnb[o]);
            Dim dd = kd >= 0 ? opt[o]->dim[kd] : (Dim){1, -1};
            bool broadcast = kd < 0 || (dd.sym < 0 && dd.size == 1 &&
                                        !(to->dim[d].sym < 0 && to->dim[d].size == 1));
            nest->stride[o][d] = broadcast ? mono_const(0) : st;
            if (kd >= 0)
                st = mono_mul(st, mono_dim(dd));
        }
    }
    for (int d = 0; d < nb; d++)
        nest->size[d] = mono_dim(to->dim[d]);
    cg_nest_simplify(nest);
    // b shared by every batch (a linear layer on [batch, seq, C]) and a, out contiguous
    // across the batch: the batch is just more rows of a.
    if (nest->n_loops == 1 && !s.tra && !s.a_vec && mono_is(nest->stride[1][0], 0) &&
        mono_eq(nest->stride[0][0], mono_mul(s.M, s.K)) &&
        mono_eq(nest->stride[2][0], mono_mul(s.M, s.N))) {
        s.M = mono_mul(s.M, nest->size[0]);
        nest->n_loops = 0;
    }
    return s;
}

/* ---------------------------------------------------------------------------------------
 * Plain loops
 */

static bool plain(Kernel *k, const Shape *s)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    const Nest *nest = &s->nest;
    bool epi = n->n_epi > 0;
    const char *A = k->arg[0], *B = k->arg[1], *O = k->out;
    const char *obase = NULL;   // element offset of the batch's matrix in out
    if (nest->n_loops) {
        const char *index[CG_MAX_OPS];
        cg_nest_open(k, nest, index, true);
        bline(&k->body, "const float *restrict a_mat = %s;", at(cg, A, index[0]));
        bline(&k->body, "const float *restrict b_mat = %s;", at(cg, B, index[1]));
        bline(&k->body, "float *restrict o_mat = %s;", at(cg, O, index[2]));
        A = "a_mat";
        B = "b_mat";
        O = "o_mat";
        obase = strcmp(index[2], "0") == 0 ? NULL : index[2];
    }

    const char *m = mono_is(s->M, 1) ? NULL : "m";
    const char *sM = cg_mono(cg, s->M, false), *sN = cg_mono(cg, s->N, false);
    const char *sK = cg_mono(cg, s->K, false);
    if (m) {
        bline(&k->body, "for (int64_t m = 0; m < %s; m++) {", sM);
        k->body.indent++;
    }
    if (!s->trb && !s->b_vec) {
        // i-k-j: row m of out accumulates a[m, k] times row k of b.
        bline(&k->body, "float *restrict o_row = %s;", at(cg, O, term(cg, m, s->N)));
        bline(&k->body, "for (int64_t n = 0; n < %s; n++)", sN);
        bline(&k->body, "    o_row[n] = 0.0f;");
        bline(&k->body, "for (int64_t k = 0; k < %s; k++) {", sK);
        bline(&k->body, "    const float a_mk = %s[%s];", A,
              s->tra ? plus(cg, term(cg, "k", s->M), m) : plus(cg, term(cg, m, s->K), "k"));
        bline(&k->body, "    const float *restrict b_row = %s;", at(cg, B, term(cg, "k", s->N)));
        bline(&k->body, "    for (int64_t n = 0; n < %s; n++)   // the hot loop", sN);
        bline(&k->body, "        o_row[n] += a_mk * b_row[n];");
        bline(&k->body, "}");
        if (epi) {      // the fused element-wise ops, on the finished row
            bline(&k->body, "for (int64_t n = 0; n < %s; n++) {", sN);
            k->body.indent++;
            bline(&k->body, "float v = o_row[n];");
            const char *flat = plus(cg, obase, plus(cg, term(cg, m, s->N), "n"));
            cg_epilogue_apply(k, "v", flat, "n", false);
            bline(&k->body, "o_row[n] = v;");
            k->body.indent--;
            bline(&k->body, "}");
        }
    } else {
        // Dot products: out[m, n] = row m of a . row n of b (b stored [N, K], or a vector).
        const char *nv = mono_is(s->N, 1) ? NULL : "n";
        if (!s->tra)
            bline(&k->body, "const float *restrict a_row = %s;", at(cg, A, term(cg, m, s->K)));
        if (nv) {
            bline(&k->body, "for (int64_t n = 0; n < %s; n++) {", sN);
            k->body.indent++;
        }
        bline(&k->body, "const float *restrict b_row = %s;", at(cg, B, term(cg, nv, s->K)));
        bline(&k->body, "float acc = 0.0f;");
        bline(&k->body, "for (int64_t k = 0; k < %s; k++)", sK);
        if (s->tra)
            bline(&k->body, "    acc += %s[%s] * b_row[k];", A, plus(cg, term(cg, "k", s->M), m));
        else
            bline(&k->body, "    acc += a_row[k] * b_row[k];");
        const char *idx = plus(cg, term(cg, m, s->N), nv);
        if (epi) {
            bline(&k->body, "float v = acc;");
            // the column: n; for a vector b the last axis is m's (NULL: derived from flat)
            cg_epilogue_apply(k, "v", plus(cg, obase, idx), nv ? nv : s->b_vec ? NULL : "0",
                              false);
            bline(&k->body, "%s[%s] = v;", O, idx);
        } else {
            bline(&k->body, "%s[%s] = acc;", O, idx);
        }
        if (nv) {
            k->body.indent--;
            bline(&k->body, "}");
        }
    }
    if (m) {
        k->body.indent--;
        bline(&k->body, "} // m");
    }
    if (nest->n_loops) {
        k->body.indent--;
        bline(&k->body, "} // batch");
        k->body.indent -= nest->n_loops - 1;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Weights packed at load
 */

// The weight node a matmul's b reads when the tile pass packs it, or -1.
static NodeId packed_weight(const Graph *g, const Node *n)
{
    if (n->op != OP_MATMUL || n->dead || !n->tile.mr || !n->tile.pack_b)
        return -1;
    NodeId root = ir_storage_root(g, n->in[1]);
    const Type *tb = &g->nodes[n->in[1]].type;
    if (g->nodes[root].op != OP_WEIGHT || tb->rank != 2 || !type_is_static(tb))
        KILN_BUG("tile: '%s' packs b, which is not a static matrix weight", n->name);
    return root;
}

void cg_pack_plan(Cg *cg)
{
    const Graph *g = cg->g;
    cg->pack_of = xmalloc(sizeof *cg->pack_of * (size_t)(g->n_nodes ? g->n_nodes : 1));
    int cap = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        cg->pack_of[i] = -1;
        NodeId w = packed_weight(g, n);
        if (w < 0)
            continue;
        const Type *tb = &g->nodes[n->in[1]].type;
        CgPack p = {.weight = w, .trans = n->attr.matmul.trans_b, .nr = n->tile.nr};
        p.K = tb->dim[p.trans ? 1 : 0].size;
        p.N = tb->dim[p.trans ? 0 : 1].size;
        int found = -1;
        for (int q = 0; q < cg->n_packs && found < 0; q++) {
            const CgPack *o = &cg->packs[q];
            if (strcmp(g->nodes[o->weight].attr.weight.tensor,
                       g->nodes[p.weight].attr.weight.tensor) == 0 &&
                o->trans == p.trans && o->nr == p.nr && o->K == p.K && o->N == p.N)
                found = q;
        }
        if (found < 0) {
            p.bytes = (p.N + p.nr - 1) / p.nr * p.nr * p.K * 4;
            p.offset = cg->packed_bytes;
            cg->packed_bytes += (p.bytes + 63) / 64 * 64;
            VEC_PUSH(cg->packs, cg->n_packs, cap, p);
            found = cg->n_packs - 1;
        }
        cg->pack_of[i] = found;
    }
}

void cg_pack_free(Cg *cg)
{
    free(cg->packs);
    free(cg->pack_of);
    cg->packs = NULL;
    cg->pack_of = NULL;
    cg->n_packs = 0;
}

const CgPack *cg_pack_of(const Cg *cg, const Node *n, int i)
{
    if (i != 1 || !cg->pack_of || cg->pack_of[n->id] < 0)
        return NULL;
    return &cg->packs[cg->pack_of[n->id]];
}

void cg_emit_prepare(Cg *cg, Buf *b, const int *weight_index)
{
    const Graph *g = cg->g;
    if (!cg->n_packs)
        return;
    double mib = (double)cg->packed_bytes / (1024.0 * 1024.0);
    bprintf(b, "/* prepare: packs the weights the tiled matmuls read in panels, once, after the weights\n"
               " * are bound and before the first forward(): %.1f MiB at r->packed (kiln_main times it\n"
               " * with --repeat). */\n", mib);
    bputs(b, "static int prepare(kiln_run *r)\n{\n");
    for (int p = 0; p < cg->n_packs; p++) {
        const CgPack *pk = &cg->packs[p];
        const Node *w = &g->nodes[pk->weight];
        int wi = weight_index[pk->weight];
        if (wi < 0)
            KILN_BUG("prepare: weight '%s' is not in model_weights", w->name);
        const int indent = b->indent;
        b->indent = 1;
        const long long panels = (pk->N + pk->nr - 1) / pk->nr;
        bline_comment(b, "%s %s[%lld, %lld] -> %lld panel%s of [%lld][%d]",
                      w->attr.weight.tensor, pk->trans ? "transposed " : "",
                      (long long)(pk->trans ? pk->N : pk->K),
                      (long long)(pk->trans ? pk->K : pk->N), panels, panels == 1 ? "" : "s",
                      (long long)pk->K, pk->nr);
        b->indent = indent;
        bprintf(b, "    gemm_pack_b_%d(r, r->weights[%d], (float *)(r->packed + 0x%llx), %lld, %lld, "
                   "%lld, %lld);\n",
                pk->nr, wi, (unsigned long long)pk->offset, (long long)pk->K, (long long)pk->N,
                (long long)(pk->trans ? 1 : pk->N), (long long)(pk->trans ? pk->K : 1));
    }
    bputs(b, "    return 0;\n}\n\n");
}

/* ---------------------------------------------------------------------------------------
 * The GEMM code every tiled matmul shares (written once per file)
 */

static const char *shape_text(int mr, int nr)
{
    static char s[32];
    snprintf(s, sizeof s, "%dx%d", mr, nr);
    return s;
}

// Append text with $S (the shape "14x32"), $MR, $NR, $NV (b vectors per k step), $ACC
// (accumulators) and $_ (as many spaces as $S has characters past two) replaced.
static void tmpl(Buf *b, const char *text, int mr, int nr, int nv)
{
    for (const char *p = text; *p;) {
        if (*p != '$') {
            const char *q = strchr(p, '$');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            bprintf(b, "%.*s", (int)len, p);
            p += len;
            continue;
        }
        if (strncmp(p, "$S", 2) == 0 && !(p[2] >= 'A' && p[2] <= 'Z'))
            bprintf(b, "%dx%d", mr, nr), p += 2;
        else if (strncmp(p, "$MR", 3) == 0)
            bprintf(b, "%d", mr), p += 3;
        else if (strncmp(p, "$NR", 3) == 0)
            bprintf(b, "%d", nr), p += 3;
        else if (strncmp(p, "$NV", 3) == 0)
            bprintf(b, "%d", nv), p += 3;
        else if (strncmp(p, "$_", 2) == 0)
            bprintf(b, "%*s", (int)strlen(shape_text(mr, nr)) - 2, ""), p += 2;
        else if (strncmp(p, "$ACC", 4) == 0)
            bprintf(b, "%d", mr * nv), p += 4;
        else
            KILN_BUG("tmpl: unknown placeholder at '%.8s'", p);
    }
}

static const char gemm_intro[] =
    "/* ---------------------------------------------------------------------------------------\n"
    " * Matrix products on packed panels (codegen/kernels_matmul.c; docs/codegen.md, \"Matmul\").\n"
    " *\n"
    " * Every tiled matmul below computes c = a b (a: M x K, b: K x N, c: M x N, per batch) with\n"
    " * gemm_<mr>x<nr>_run, BLIS's loops around one register-blocked microkernel:\n"
    " *   b   in panels of nr columns, [K][nr] each, the last one padded with zeros: a weight is\n"
    " *       packed once at load by prepare(), an activation kc x nr at a time\n"
    " *   a   read in place when its rows are contiguous; otherwise (a transposed) mc rows x kc\n"
    " *       at a time are copied into a_pack, row i at a_pack + i * kc, for the microkernel\n"
    " *   c   in tiles of mr x nr, each the sum over k blocks of one microkernel call\n"
    " * The work is split into tasks, one per (batch, block of mc rows, panel) or, when those\n"
    " * are few, per part of one (a group of its row tiles), which kiln_parallel_for hands to\n"
    " * the threads in contiguous chunks.  Each element of c is one chain of FMAs in k order\n"
    " * whatever the blocking, the range and the thread count, so results are bitwise\n"
    " * identical on any number of threads.  A node's epilogue (fused bias, activation,\n"
    " * residual) is applied to the accumulators in registers after the last k block, before\n"
    " * they are stored: the job's `full` is the kernel's own copy of the microkernel for full\n"
    " * tiles (k_<name>_full), its epilogue inlined; a tile of fewer rows or columns gets the\n"
    " * epilogue after it is stored.\n"
    " */\n"
    "\n"
    "// gemm_job: one matrix product (a matmul kernel fills one and runs it).\n"
    "typedef struct gemm_job gemm_job;\n"
    "// The microkernel of a full tile (gemm_<mr>x<nr>_tile's arguments, mr and nr those of the\n"
    "// register block) with a kernel's epilogue in registers.\n"
    "typedef void (*gemm_full_fn)(int64_t kc, const float *a, int64_t as, const float *b,\n"
    "                             const float *b_next, int64_t pf, float *c, int64_t ldc,\n"
    "                             bool first, bool last, const gemm_job *j, int64_t row,\n"
    "                             int64_t col);\n"
    "struct gemm_job {\n"
    "    const float *a;     // element (m, k) of a batch's a at a[m * a_rs + k * a_ks]\n"
    "    const float *b;     // packed panels (b_packed), or (k, n) at b[k * b_ks + n * b_ns]\n"
    "    float *c;           // (m, n) at c[m * N + n], the batches one after another\n"
    "    int64_t M, N, K;    // per batch\n"
    "    int64_t a_rs, a_ks, b_ks, b_ns;\n"
    "    bool b_packed;      // b holds ceil(N / nr) panels of [K][nr], packed at load\n"
    "    int64_t kc, mc;     // the k block and the row block (tile pass)\n"
    "    int64_t parts;      // tasks per row block and panel, each some of its row tiles\n"
    "    int n_batch;        // batch loops, outermost first: sizes and element strides of a, b\n"
    "    int64_t batch[6], a_bs[6], b_bs[6];\n"
    "    // The kernel's microkernel for full tiles, with its epilogue; NULL: gemm_<mr>x<nr>_full.\n"
    "    gemm_full_fn full;\n"
    "    // The node's epilogue on a finished tile with fewer rows or columns than the register\n"
    "    // block, at t (row stride N): rows [row, row + mr) of c counted across batches, columns\n"
    "    // [col, col + nr).  NULL when there is no epilogue.\n"
    "    void (*epilogue)(const gemm_job *j, float *t, int64_t row, int64_t col, int mr, int nr);\n"
    "    const float *in[16];    // the kernel's inputs, for the epilogue's operands\n"
    "    // The epilogue's operands of c's shape (a residual): each tile's rows of them are\n"
    "    // prefetched before its last k block, so the epilogue finds them in cache.\n"
    "    int n_pre;\n"
    "    const float *pre[4];\n"
    "};\n"
    "\n"
    "// A node's epilogue on one vector of a finished tile, in registers: v holds columns\n"
    "// [col, col + VL) of row `row` of c (rows counted across batches).\n"
    "typedef V_T (*gemm_vec_epilogue)(const gemm_job *j, V_T v, int64_t row, int64_t col);\n"
    "\n";

static const char gemm_tile[] =
    "/* gemm_$S_tile: the microkernel, the hot loop of every tiled matmul.\n"
    " *   c[i, j] = (first ? 0 : c[i, j]) + sum over k < kc of a[i * as + k] * b[k * $NR + j]\n"
    " * for rows i < mr and columns j < nr of a $MR x $NR tile of c (row stride ldc).\n"
    " * Registers: acc[i][v] holds row i of the tile, columns [v * VL, v * VL + VL); bv[v] the\n"
    " * same columns of b's row k.  Each a value is broadcast once per k and feeds $NV FMAs:\n"
    " * $ACC accumulators + $NV b vectors + 1 broadcast are live in the loop.\n"
    " * first: start from zero (the first k block), else continue from c: the same chain of\n"
    " * FMAs, so blocking k never changes a bit.  nr < $NR (the last panel): only nr columns of\n"
    " * c are read and written (the panel's zero padding computes the others).  epi (a constant\n"
    " * where this is inlined, or NULL): on the last k block (last) of a full panel, the node's\n"
    " * epilogue on each accumulator before it is stored, tile row i being row + i of c and\n"
    " * vector v its columns col + v * VL.  b_next, pf:\n"
    " * step k prefetches the line(s) of a b row at b_next + k * pf (gemm_$S_run says what\n"
    " * that is: a share of the next panel, or the same stream ahead).  mr is a constant in\n"
    " * every call (gemm_$S_rows has one copy of this function per row count, gemm_$S_full and\n"
    " * each k_<name>_full one for full tiles), so acc lives in registers. */\n"
    "static inline __attribute__((always_inline)) void\n"
    "gemm_$S_tile(int mr, int64_t kc, const float *restrict a, int64_t as,\n"
    "             $_const float *restrict b, const float *b_next, int64_t pf, float *restrict c,\n"
    "             $_int64_t ldc, int nr, bool first, bool last, const gemm_job *j,\n"
    "             $_gemm_vec_epilogue epi, int64_t row, int64_t col)\n"
    "{\n"
    "    V_T acc[$MR][$NV];\n"
    "    for (int i = 0; i < mr; i++)\n"
    "        for (int v = 0; v < $NV; v++) {\n"
    "            const int lanes = nr - v * VL < 0 ? 0 : nr - v * VL < VL ? nr - v * VL : VL;\n"
    "            if (first)\n"
    "                acc[i][v] = V_ZERO();\n"
    "            else if (nr == $NR)\n"
    "                acc[i][v] = V_LOAD(c + i * ldc + v * VL);\n"
    "            else\n"
    "                acc[i][v] = V_LOAD_N(c + i * ldc + v * VL, lanes);\n"
    "        }\n"
    "    for (int64_t k = 0; k < kc; k++) {      // the hot loop\n"
    "        V_T bv[$NV];\n"
    "        for (int v = 0; v < $NV; v++)\n"
    "            bv[v] = V_LOAD(b + k * $NR + v * VL);\n"
    "$PREFETCH"
    "        for (int i = 0; i < mr; i++) {\n"
    "            const V_T ai = V_SET1(a[i * as + k]);\n"
    "            for (int v = 0; v < $NV; v++)\n"
    "                acc[i][v] = V_FMA(ai, bv[v], acc[i][v]);\n"
    "        }\n"
    "    }\n"
    "    for (int i = 0; i < mr; i++)\n"
    "        for (int v = 0; v < $NV; v++) {\n"
    "            const int lanes = nr - v * VL < 0 ? 0 : nr - v * VL < VL ? nr - v * VL : VL;\n"
    "            if (nr == $NR) {\n"
    "                if (epi && last)\n"
    "                    acc[i][v] = epi(j, acc[i][v], row + i, col + v * VL);\n"
    "                V_STORE(c + i * ldc + v * VL, acc[i][v]);\n"
    "            } else {\n"
    "                V_STORE_N(c + i * ldc + v * VL, acc[i][v], lanes);\n"
    "            }\n"
    "        }\n"
    "}\n"
    "\n";

static const char gemm_run[] =
    "/* gemm_$S_run: tasks [t0, t1) of the gemm_job ctx (a kiln_task_fn).  With P = ceil(N /\n"
    " * $NR) panels and `parts` tasks to a panel, task t is panel t % P of part t / P % parts of\n"
    " * row block t / (P * parts) (blocks of mc rows, batch after batch; a part is a group of\n"
    " * the block's row tiles).  So a thread's range covers whole rows where it can: its rows of\n"
    " * c are written, and its rows of a read, by the thread that wrote them in the kernel\n"
    " * before (a LayerNorm or a product split the same way), not fetched from the other core's\n"
    " * cache; each thread streams every panel of b once per part. */\n"
    "static void gemm_$S_run(void *ctx, int64_t t0, int64_t t1)\n"
    "{\n"
    "    const gemm_job *j = ctx;\n"
    "    const int64_t n_panels = (j->N + $NR - 1) / $NR, n_blocks = (j->M + j->mc - 1) / j->mc;\n"
    "    // Few rows (decode): one k block, so that each thread streams its b panels end to end.\n"
    "    const int64_t kc = j->M <= $MR && j->b_packed && j->K * $MR <= GEMM_A_FLOATS ? j->K : j->kc;\n"
    "    float a_pack[GEMM_A_FLOATS] __attribute__((aligned(64)));\n"
    "    float b_pack[GEMM_B_FLOATS] __attribute__((aligned(64)));\n"
    "    const int64_t per_block = n_panels * j->parts;   // tasks\n"
    "    for (int64_t t = t0; t < t1;) {\n"
    "        // The range's tasks in one row block: [first, end) of its per_block, parts s0 ..\n"
    "        // s1 (of the first, panels from first % n_panels; of the last, to end's).\n"
    "        const int64_t block = t / per_block, first = t % per_block;\n"
    "        const int64_t end = t1 - t < per_block - first ? first + (t1 - t) : per_block;\n"
    "        t += end - first;\n"
    "        const int64_t s0 = first / n_panels, s1 = (end - 1) / n_panels;   // parts\n"
    "        const int64_t bi = block / n_blocks, m0 = block % n_blocks * j->mc;\n"
    "        const int64_t mc = j->M - m0 < j->mc ? j->M - m0 : j->mc;\n"
    "        const int64_t part_rows = ((mc + $MR - 1) / $MR + j->parts - 1) / j->parts * $MR;\n"
    "        const float *a = j->a, *b = j->b;\n"
    "        for (int64_t d = j->n_batch - 1, rest = bi; d >= 0; d--) {   // batch bi's matrices\n"
    "            a += rest % j->batch[d] * j->a_bs[d];\n"
    "            b += rest % j->batch[d] * j->b_bs[d];\n"
    "            rest /= j->batch[d];\n"
    "        }\n"
    "        float *c = j->c + (bi * j->M + m0) * j->N;\n"
    "        for (int64_t k0 = 0; k0 < j->K; k0 += kc) {\n"
    "            const int64_t kb = j->K - k0 < kc ? j->K - k0 : kc;\n"
    "            const bool last_k = k0 + kb == j->K;    // the epilogue comes with this one\n"
    "            // a's rows m0 .. m0 + mc, columns k0 .. k0 + kb: row i at ap + i * as.  Rows\n"
    "            // that are contiguous already are read in place; others (a transposed) are\n"
    "            // copied into a_pack first.\n"
    "            const float *ap = a + m0 * j->a_rs + k0 * j->a_ks;\n"
    "            int64_t as = j->a_rs;\n"
    "            if (j->a_ks != 1) {\n"
    "                for (int64_t i = 0; i < mc; i++)\n"
    "                    for (int64_t k = 0; k < kb; k++)\n"
    "                        a_pack[i * kb + k] = ap[i * j->a_rs + k * j->a_ks];\n"
    "                ap = a_pack, as = kb;\n"
    "            }\n"
    "            for (int64_t s = s0; s <= s1; s++) {\n"
    "                // Part s: rows i_lo .. i_hi of the block, panels q0 .. q1 - 1 in the range.\n"
    "                const int64_t i_lo = s * part_rows;\n"
    "                const int64_t i_hi = (s + 1) * part_rows < mc ? (s + 1) * part_rows : mc;\n"
    "                if (i_lo >= i_hi)   // parts past a short last block's rows\n"
    "                    continue;\n"
    "                const int64_t q0 = s == s0 ? first % n_panels : 0;\n"
    "                const int64_t q1 = s == s1 ? (end - 1) % n_panels + 1 : n_panels;\n"
    "                for (int64_t p = q0; p < q1; p++) {\n"
    "                    const int64_t n0 = p * $NR;\n"
    "                    const int nr = j->N - n0 < $NR ? (int)(j->N - n0) : $NR;\n"
    "                    const float *bp, *next = NULL;   // next: the next panel's k block\n"
    "                    if (j->b_packed) {\n"
    "                        bp = b + p * j->K * $NR + k0 * $NR;\n"
    "                        if (p + 1 < n_panels)\n"
    "                            next = bp + j->K * $NR;\n"
    "                    } else {    // an activation: pack this panel's kb x $NR slice now\n"
    "                        for (int64_t k = 0; k < kb; k++)\n"
    "                            for (int n = 0; n < $NR; n++)\n"
    "                                b_pack[k * $NR + n] =\n"
    "                                    n < nr ? b[(k0 + k) * j->b_ks + (n0 + n) * j->b_ns] : 0.0f;\n"
    "                        bp = b_pack;\n"
    "                    }\n"
    "                    // What the microkernel prefetches, pf floats a k step from b_next.  Few\n"
    "                    // rows (decode): the panels are one stream, read once: 4 KiB ahead in it.\n"
    "                    // Else the next panel's k block, a share per row tile of the part (its\n"
    "                    // tile t's from t * share, at most last): its reads from memory spread\n"
    "                    // over the part's tiles of this panel (all in the first tile measured\n"
    "                    // slower, bench/gemm_bench.sh --cold).\n"
    "                    const float *ahead = bp;\n"
    "                    int64_t pf = $NR, share = 0, last = 0;\n"
    "                    if (next && j->M <= $MR) {\n"
    "                        ahead = bp + (j->K * $NR > 1024 ? 1024 : j->K * $NR);\n"
    "                    } else if (next) {\n"
    "                        const int64_t tiles = (i_hi - i_lo + $MR - 1) / $MR;\n"
    "                        pf = ($NR + tiles - 1) / tiles;\n"
    "                        ahead = next, share = kb * pf, last = (kb - 1) * ($NR - pf);\n"
    "                    }\n"
    "                    for (int64_t i0 = i_lo; i0 < i_hi; i0 += $MR) {\n"
    "                        const int mr = i_hi - i0 < $MR ? (int)(i_hi - i0) : $MR;\n"
    "                        float *tile = c + i0 * j->N + n0;\n"
    "                        // The tile's lines of c, which its first k block stores: c was last\n"
    "                        // touched kernels ago, and a store that misses waits for the line.\n"
    "                        if (k0 == 0)\n"
    "                            for (int i = 0; i < mr; i++)\n"
    "                                for (int l = 0; l < nr; l += 16)    // a 64-byte line each\n"
    "                                    V_PREFETCH(tile + i * j->N + l);\n"
    "                        if (last_k)     // the epilogue's operands of c's shape\n"
    "                            for (int q = 0; q < j->n_pre; q++)\n"
    "                                for (int i = 0; i < mr; i++) {\n"
    "                                    const float *e = j->pre[q] + (bi * j->M + m0 + i0 + i) * j->N;\n"
    "                                    for (int l = 0; l < nr; l += 16)    // a 64-byte line each\n"
    "                                        V_PREFETCH(e + n0 + l);\n"
    "                                }\n"
    "                        const int64_t off = (i0 - i_lo) / $MR * share;   // in the next k block\n"
    "                        const float *b_next = ahead + (off < last ? off : last);\n"
    "                        const int64_t row = bi * j->M + m0 + i0;  // of c, across batches\n"
    "                        if (mr == $MR && nr == $NR && j->full)   // the epilogue in registers\n"
    "                            j->full(kb, ap + i0 * as, as, bp, b_next, pf, tile, j->N, k0 == 0,\n"
    "                                    last_k, j, row, n0);\n"
    "                        else if (mr == $MR && nr == $NR)\n"
    "                            gemm_$S_full(kb, ap + i0 * as, as, bp, b_next, pf, tile, j->N,\n"
    "                                         $_k0 == 0, last_k, j, row, n0);\n"
    "                        else\n"
    "                            gemm_$S_rows(mr, kb, ap + i0 * as, as, bp, b_next, pf, tile,\n"
    "                                         $_j->N, nr, k0 == 0);\n"
    "                        // A short tile or a narrower last panel: the epilogue on the stored tile.\n"
    "                        if (last_k && (mr < $MR || nr < $NR) && j->epilogue)\n"
    "                            j->epilogue(j, tile, row, n0, mr, nr);\n"
    "                    }\n"
    "                }\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "// The number of tasks of a job: batches x row blocks x panels x parts.  First evens out\n"
    "// the row blocks: M rows in ceil(M / mc) blocks of one size, a multiple of $MR, so that no\n"
    "// thread is left with a short last block (M 512, mc 168: 4 blocks of 128, not 3 of 168\n"
    "// and 8).  Then, with fewer than GEMM_TASKS tasks, splits each into parts of at least 4\n"
    "// row tiles, up to GEMM_TASKS in all: a thread that is left with the last task while the\n"
    "// others wait then holds them up for less (128 rows of a panel, K 3072: 0.2 ms on Zen 4).\n"
    "static int64_t gemm_$S_tasks(gemm_job *j)\n"
    "{\n"
    "    const int64_t blocks = (j->M + j->mc - 1) / j->mc, rows = (j->M + blocks - 1) / blocks;\n"
    "    j->mc = (rows + $MR - 1) / $MR * $MR;\n"
    "    int64_t n = (j->M + j->mc - 1) / j->mc * ((j->N + $NR - 1) / $NR);\n"
    "    for (int d = 0; d < j->n_batch; d++)\n"
    "        n *= j->batch[d];\n"
    "    j->parts = 1;\n"
    "    while (n * j->parts < GEMM_TASKS && (j->parts + 1) * 4 * $MR <= j->mc)\n"
    "        j->parts++;\n"
    "    return n * j->parts;\n"
    "}\n"
    "\n";

static const char gemm_pack[] =
    "/* gemm_pack_b_$NR: packs b (K x N, element (k, n) at b[k * b_ks + n * b_ns]) into panels of\n"
    " * $NR columns, [K][$NR] each, the last padded with zeros: the layout gemm_*x$NR_run reads.\n"
    " * Used by prepare(), on the run's threads (a share of the panels each). */\n"
    "typedef struct {\n"
    "    const float *b;\n"
    "    float *panels;\n"
    "    int64_t K, N, b_ks, b_ns;\n"
    "} gemm_pack_$NR_job;\n"
    "\n"
    "static void gemm_pack_b_$NR_run(void *ctx, int64_t p0, int64_t p1)\n"
    "{\n"
    "    const gemm_pack_$NR_job *j = ctx;\n"
    "    for (int64_t p = p0; p < p1; p++) {\n"
    "        float *panel = j->panels + p * j->K * $NR;\n"
    "        const int64_t n0 = p * $NR;\n"
    "        const int nr = j->N - n0 < $NR ? (int)(j->N - n0) : $NR;\n"
    "        if (j->b_ns == 1) {         // b's rows are contiguous: copy $NR floats per k\n"
    "            for (int64_t k = 0; k < j->K; k++)\n"
    "                for (int n = 0; n < $NR; n++)\n"
    "                    panel[k * $NR + n] = n < nr ? j->b[k * j->b_ks + n0 + n] : 0.0f;\n"
    "        } else {                    // b^T: transpose 64 k at a time, both sides in L1\n"
    "            for (int64_t k0 = 0; k0 < j->K; k0 += 64)\n"
    "                for (int n = 0; n < $NR; n++)\n"
    "                    for (int64_t k = k0; k < j->K && k < k0 + 64; k++)\n"
    "                        panel[k * $NR + n] =\n"
    "                            n < nr ? j->b[k * j->b_ks + (n0 + n) * j->b_ns] : 0.0f;\n"
    "        }\n"
    "    }\n"
    "}\n"
    "\n"
    "static void gemm_pack_b_$NR(kiln_run *r, const float *b, float *panels, int64_t K,\n"
    "                           int64_t N, int64_t b_ks, int64_t b_ns)\n"
    "{\n"
    "    gemm_pack_$NR_job job = {b, panels, K, N, b_ks, b_ns};\n"
    "    kiln_parallel_for(r, (N + $NR - 1) / $NR, gemm_pack_b_$NR_run, &job);\n"
    "}\n"
    "\n";

// Distinct register blocks of g's tiled matmuls, in graph order.
static int register_blocks(const Graph *g, int (*shape)[2], int max)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *x = &g->nodes[i];
        if (x->dead || x->op != OP_MATMUL || !x->tile.mr)
            continue;
        bool seen = false;
        for (int s = 0; s < n; s++)
            seen |= shape[s][0] == x->tile.mr && shape[s][1] == x->tile.nr;
        if (!seen && n < max) {
            shape[n][0] = x->tile.mr;
            shape[n][1] = x->tile.nr;
            n++;
        }
    }
    return n;
}

// The K of a tiled matmul (static, or its bound).
static int64_t k_max(const Graph *g, const Node *n)
{
    const Type *ta = &g->nodes[n->in[0]].type;
    Dim d = ta->rank == 1 ? ta->dim[0]
                          : ta->dim[n->attr.matmul.trans_a ? ta->rank - 2 : ta->rank - 1];
    return d.sym >= 0 ? g->syms[d.sym].max : d.size;
}

void cg_emit_gemm_support(Cg *cg, Buf *b)
{
    const Graph *g = cg->g;
    int shapes[8][2];
    int n_shapes = register_blocks(g, shapes, 8);
    if (!n_shapes)
        return;
    int lanes = isa_lanes(cg->isa);
    // The packing buffers: a's block (mc x kc; mr x K for the one-block decode path of a
    // packed b, when that stays under 1 MiB) and an activation b's slice (kc x nr).
    int64_t a_floats = 0, b_floats = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->dead || n->op != OP_MATMUL || !n->tile.mr)
            continue;
        int64_t a = n->tile.mc * n->tile.kc, K = k_max(g, n);
        if (n->tile.pack_b && (int64_t)n->tile.mr * K * 4 <= (1 << 20) && n->tile.mr * K > a)
            a = n->tile.mr * K;
        a_floats = a > a_floats ? a : a_floats;
        int64_t bs = n->tile.pack_b ? n->tile.nr : n->tile.kc * n->tile.nr;
        b_floats = bs > b_floats ? bs : b_floats;
    }
    bputs(b, gemm_intro);
    bprintf(b, "// The packing buffers, on each thread's stack: a's block of the largest mc x kc (or\n"
               "// mr x K when few rows stream a packed b in one k block), an activation b's kc x nr.\n"
               "enum { GEMM_A_FLOATS = %lld, GEMM_B_FLOATS = %lld };\n"
               "// A job with fewer tasks than this has them split (gemm_<mr>x<nr>_tasks).\n"
               "enum { GEMM_TASKS = 128 };\n\n",
            (long long)a_floats, (long long)b_floats);
    for (int s = 0; s < n_shapes; s++) {
        int mr = shapes[s][0], nr = shapes[s][1], nv = nr / lanes;
        if (nv * lanes != nr)
            KILN_BUG("tile: nr %d is not a whole number of %d-float vectors", nr, lanes);
        // One prefetch per 64-byte line of a b row (at least one per k).
        Buf pf = {0};
        int lines = nr * 4 / 64 ? nr * 4 / 64 : 1;
        for (int l = 0; l < lines; l++)
            bprintf(&pf, "        V_PREFETCH(b_next + k * pf%s);\n",
                    l ? cg_fmt(cg, " + %d", l * 16) : "");
        Buf t = {0};
        const char *tile_text = gemm_tile;
        const char *mark = strstr(tile_text, "$PREFETCH");
        bprintf(&t, "%.*s%s%s", (int)(mark - tile_text), tile_text, bstr(&pf),
                mark + strlen("$PREFETCH"));
        bfree(&pf);
        tmpl(b, bstr(&t), mr, nr, nv);
        bfree(&t);
        // The microkernel's shared copies: full tiles without an epilogue, and the other tiles
        // (one copy per row count).
        tmpl(b, "// gemm_$S_full: the microkernel for a full tile without an epilogue (a gemm_full_fn).\n"
                "static void gemm_$S_full(int64_t kc, const float *a, int64_t as, const float *b,\n"
                "                         $_const float *b_next, int64_t pf, float *c, int64_t ldc,\n"
                "                         $_bool first, bool last, const gemm_job *j, int64_t row,\n"
                "                         $_int64_t col)\n"
                "{\n"
                "    gemm_$S_tile($MR, kc, a, as, b, b_next, pf, c, ldc, $NR, first, last, j, NULL, row,\n"
                "                 $_col);\n"
                "}\n\n", mr, nr, nv);
        tmpl(b, "// gemm_$S_rows: the microkernel for a tile of mr <= $MR rows (the last of a row block)\n"
                "// or nr < $NR columns (the last panel), one copy of the loop per row count; no\n"
                "// epilogue (gemm_$S_run applies it to the stored tile).\n"
                "static __attribute__((noinline)) void\n"
                "gemm_$S_rows(int mr, int64_t kc, const float *a, int64_t as, const float *b,\n"
                "             $_const float *b_next, int64_t pf, float *c, int64_t ldc, int nr, bool first)\n"
                "{\n"
                "    switch (mr) {\n", mr, nr, nv);
        for (int r = mr; r >= 1; r--)
            tmpl(b, cg_fmt(cg, "    %s:\n"
                               "        gemm_$S_tile(%d, kc, a, as, b, b_next, pf, c, ldc, nr, first, false, NULL,\n"
                               "                     $_NULL, 0, 0);\n"
                               "        break;\n",
                           r > 1 ? cg_fmt(cg, "case %d", r) : "default", r), mr, nr, nv);
        tmpl(b, "    }\n"
                "}\n\n", mr, nr, nv);
        tmpl(b, gemm_run, mr, nr, nv);
    }
    // The panel packers of the widths prepare() uses.
    for (int s = 0; s < n_shapes; s++) {
        bool used = false, dup = false;
        for (int p = 0; p < cg->n_packs; p++)
            used |= cg->packs[p].nr == shapes[s][1];
        for (int q = 0; q < s; q++)
            dup |= shapes[q][1] == shapes[s][1];
        if (used && !dup)
            tmpl(b, gemm_pack, shapes[s][0], shapes[s][1], shapes[s][1] / lanes);
    }
}

/* ---------------------------------------------------------------------------------------
 * Tiled matmuls
 */

// The epilogue's operands, from the job, at the top of an epilogue function's body.
static void epilogue_operands(Kernel *k)
{
    for (int i = ir_op_inputs(k->n); i < k->n->n_in; i++)
        if (k->arg[i])
            bline(&k->body, "const float *restrict %s = j->in[%d];", k->arg[i], i);
}

// The epilogue functions of a tiled matmul, written to `out` before the kernel: the node's
// fused element-wise ops on one vector of accumulators (`vec`, which the kernel's microkernel
// for full tiles, k_<name>_full, inlines) and on a finished tile of fewer rows or columns
// (`tile_fn`): the whole vectors through `vec`, the columns past them one by one (the same
// operations on the same floats, so the two give the same bits).
static void tiled_epilogue(Kernel *k, const char *vec, const char *tile_fn, Buf *out)
{
    const Node *n = k->n;
    Buf body = k->body;         // cg_epilogue_apply writes to k->body: lend it this one
    unsigned uses = cg_epilogue_uses(k->cg->g, n);
    bool flat = uses & CG_EPI_FLAT, col = flat || (uses & CG_EPI_COL);
    bool operands = false;
    for (int i = ir_op_inputs(n); i < n->n_in; i++)
        operands |= k->arg[i] != NULL;

    k->body = (Buf){0};
    k->body.indent = 1;
    epilogue_operands(k);
    if (!operands)
        bline(&k->body, "(void)j;");
    if (!flat)
        bline(&k->body, "(void)row;%s", col ? "" : " (void)col;");
    if (flat)
        bline(&k->body, "const int64_t flat = row * j->N + col;   // of lane 0 in the output");
    cg_epilogue_apply(k, "v", flat ? "flat" : NULL, col ? "col" : NULL, true);
    bline(&k->body, "return v;");
    bline_comment(out, "%s: the epilogue of %s (see its comment) on one vector, in registers.",
                  vec, k->name);
    static const char *const vparams[] = {"const gemm_job *j", "V_T v", "int64_t row",
                                          "int64_t col"};
    const char *head = "static inline __attribute__((always_inline)) V_T";
    if (strlen(head) + 1 + strlen(vec) + 1 + strlen(vparams[0]) + 1 > 100) {
        bprintf(out, "%s\n", head);    // the name at the start of the next line
        head = "";
    }
    blist(out, cg_fmt(k->cg, "%s%s%s(", head, *head ? " " : "", vec), vparams, 4, ")");
    bprintf(out, "{\n%s}\n\n", bstr(&k->body));
    bfree(&k->body);

    k->body = (Buf){0};
    k->body.indent = 1;
    epilogue_operands(k);
    bline(&k->body, "for (int i = 0; i < mr; i++) {");
    k->body.indent++;
    bline(&k->body, "float *restrict o = t + i * j->N;");
    if (flat)
        bline(&k->body, "const int64_t flat = (row + i) * j->N + col;   // of o[0] in the output");
    bline(&k->body, "int jj = 0;");
    bline(&k->body, "for (; jj + VL <= nr; jj += VL)      // whole vectors");
    k->body.indent++;
    const char *store[] = {"j", "V_LOAD(o + jj)", "row + i", "col + jj"};
    blist(&k->body, cg_fmt(k->cg, "V_STORE(o + jj, %s(", vec), store, 4, "));");
    k->body.indent--;
    bline(&k->body, "for (; jj < nr; jj++) {               // the rest, one at a time");
    k->body.indent++;
    bline(&k->body, "float v = o[jj];");
    cg_epilogue_apply(k, "v", flat ? "flat + jj" : NULL, col ? "col + jj" : NULL, false);
    bline(&k->body, "o[jj] = v;");
    k->body.indent--;
    bline(&k->body, "}");
    k->body.indent--;
    bline(&k->body, "}");
    bline_comment(out, "%s: the epilogue of %s on a finished tile of fewer rows or columns.",
                  tile_fn, k->name);
    static const char *const params[] = {"const gemm_job *j", "float *t", "int64_t row",
                                         "int64_t col", "int mr", "int nr"};
    blist(out, cg_fmt(k->cg, "static void %s(", tile_fn), params, 6, ")");
    bprintf(out, "{\n%s}\n\n", bstr(&k->body));
    bfree(&k->body);
    k->body = body;
}

static const char *kib(Cg *cg, int64_t bytes)
{
    return bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0
               ? cg_fmt(cg, "%lld MiB", (long long)(bytes / (1024 * 1024)))
               : cg_fmt(cg, "%lld KiB", (long long)(bytes / 1024));
}

static bool tiled(Kernel *k, const Shape *s)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    const Tile *t = &n->tile;
    const Nest *nest = &s->nest;
    const CgPack *pk = cg_pack_of(cg, n, 1);
    const Target tg = tile_target(cg->g->target);
    const char *shape = cg_fmt(cg, "%dx%d", t->mr, t->nr);

    // The comment: the tiling and where b comes from.
    bprintf(&k->notes, " *   tiling  %s: %d x %d microkernel (gemm_%s), kc %lld, mc %lld (tile pass,\n"
                       " *           for L1d %s and L2 %s%s)\n",
            isa_name(cg->isa), t->mr, t->nr, shape, (long long)t->kc, (long long)t->mc,
            kib(cg, tg.l1d), kib(cg, tg.l2), tg.host ? " of this host" : ", defaults");
    if (pk) {
        const long long panels = (pk->N + pk->nr - 1) / pk->nr;
        bprintf(&k->notes, " *           b packed at load by prepare(): %lld panel%s of [%lld][%d] at "
                           "packed + 0x%llx\n",
                panels, panels == 1 ? "" : "s", (long long)pk->K, pk->nr,
                (unsigned long long)pk->offset);
    } else {
        bprintf(&k->notes, " *           b packed %lld x %d at a time as the kernel runs\n",
                (long long)t->kc, t->nr);
    }

    // An epilogue: its vector function, inlined into the kernel's microkernel for full tiles
    // (<kernel>_full, the job's .full), and its tile function for the other tiles.
    const char *epi = NULL, *full = NULL;
    if (n->n_epi > 0) {
        const char *vec = cg_fmt(cg, "%s_vec_epilogue", k->name);
        epi = cg_fmt(cg, "%s_epilogue", k->name);
        tiled_epilogue(k, vec, epi, &k->helpers);
        full = cg_fmt(cg, "%s_full", k->name);
        bline_comment(&k->helpers, "%s: gemm_%s_tile for a full tile, %s inlined (a "
                                   "gemm_full_fn).", full, shape, vec);
        static const char *const fparams[] = {"int64_t kc", "const float *a", "int64_t as",
                                              "const float *b", "const float *b_next",
                                              "int64_t pf", "float *c", "int64_t ldc",
                                              "bool first", "bool last", "const gemm_job *j",
                                              "int64_t row", "int64_t col"};
        blist(&k->helpers, cg_fmt(cg, "static void %s(", full), fparams, 13, ")");
        const char *args[] = {cg_fmt(cg, "%d", t->mr), "kc", "a", "as", "b", "b_next", "pf",
                              "c", "ldc", cg_fmt(cg, "%d", t->nr), "first", "last", "j", vec,
                              "row, col"};
        bputs(&k->helpers, "{\n");
        k->helpers.indent++;
        blist(&k->helpers, cg_fmt(cg, "gemm_%s_tile(", shape), args, 15, ");");
        k->helpers.indent--;
        bputs(&k->helpers, "}\n\n");
    }

    const char *sM = cg_mono(cg, s->M, false), *sN = cg_mono(cg, s->N, false);
    const char *sK = cg_mono(cg, s->K, false);
    Buf *B = &k->body;
    bline(B, "gemm_job job = {");
    B->indent++;
    if (s->tra)
        bline(B, ".a = %s, .a_rs = 1, .a_ks = %s,", k->arg[0], sM);
    else
        bline(B, ".a = %s, .a_rs = %s, .a_ks = 1,", k->arg[0], sK);
    if (pk)
        bline(B, ".b = %s, .b_packed = true,   // panels, packed at load", k->arg[1]);
    else if (s->trb)
        bline(B, ".b = %s, .b_ks = 1, .b_ns = %s,", k->arg[1], sK);
    else
        bline(B, ".b = %s, .b_ks = %s, .b_ns = 1,", k->arg[1], sN);
    bline(B, ".c = %s,", k->out);
    bline(B, ".M = %s, .N = %s, .K = %s,", sM, sN, sK);
    bline(B, ".kc = %lld, .mc = %lld,", (long long)t->kc, (long long)t->mc);
    if (nest->n_loops) {
        Buf sz = {0}, sa = {0}, sb = {0};
        for (int d = 0; d < nest->n_loops; d++) {
            bprintf(&sz, "%s%s", d ? ", " : "", cg_mono(cg, nest->size[d], false));
            bprintf(&sa, "%s%s", d ? ", " : "", cg_mono(cg, nest->stride[0][d], false));
            bprintf(&sb, "%s%s", d ? ", " : "", cg_mono(cg, nest->stride[1][d], false));
        }
        bline(B, ".n_batch = %d, .batch = {%s},", nest->n_loops, bstr(&sz));
        bline(B, ".a_bs = {%s}, .b_bs = {%s},", bstr(&sa), bstr(&sb));
        bfree(&sz);
        bfree(&sa);
        bfree(&sb);
    }
    if (n->n_epi > 0) {
        Buf in = {0}, pre = {0};
        int n_pre = 0;
        for (int i = 0; i < n->n_in; i++)
            bprintf(&in, "%s%s", i ? ", " : "", k->arg[i]);
        for (int e = 0; e < n->n_epi; e++) {     // operands of the output's shape, once each
            int i = n->epi[e].operand_in;
            bool seen = false;
            for (int f = 0; f < e; f++)
                seen |= n->epi[f].operand_in == i;
            if (i >= 0 && !seen && n_pre < 4 &&
                ir_epi_form(&k->in[i]->type, &n->type) == EPI_SAME)
                bprintf(&pre, "%s%s", n_pre++ ? ", " : "", k->arg[i]);
        }
        if (4 * B->indent + strlen(".full = , .epilogue = ,") + strlen(full) + strlen(epi) <= 100) {
            bline(B, ".full = %s, .epilogue = %s,", full, epi);
        } else {
            bline(B, ".full = %s,", full);
            bline(B, ".epilogue = %s,", epi);
        }
        bline(B, ".in = {%s},", bstr(&in));
        if (n_pre)
            bline(B, ".n_pre = %d, .pre = {%s},   // prefetched tile by tile", n_pre, bstr(&pre));
        bfree(&in);
        bfree(&pre);
    }
    B->indent--;
    bline(B, "};");
    bline(B, "kiln_parallel_for(r, gemm_%s_tasks(&job), gemm_%s_run, &job);", shape, shape);
    k->needs_run = true;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * The kernel writer
 */

bool cg_kernel_matmul(Kernel *k)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    const Type *ta = &k->in[0]->type, *tb = &k->in[1]->type, *to = &n->type;
    if (ta->dtype != DT_F32 || tb->dtype != DT_F32 || to->dtype != DT_F32)
        return cg_unsupported(cg, n, "matmul of %s and %s", dtype_name(ta->dtype),
                              dtype_name(tb->dtype));
    Shape s = shape_of(k);
    if (n->tile.mr && !s.b_vec)
        return tiled(k, &s);
    return plain(k, &s);
}
