/* tests/unit/test_attention.c: the fuse-attention pass and the fused attention kernel.
 *
 * Each case builds attention in primitives with the IR constructors, as a spec writes it
 * (matmul q k^T, scale, causal_mask and/or add of a mask, softmax, matmul with v), then:
 *   pass.*     ir_fuse_attention turns it into one fused_attention node with the right
 *              inputs, attributes, name, spec place and origins; near-misses stay unfused
 *              and leave a note saying why;
 *   interp.*   the interpreter on the fused graph agrees with the interpreter on the
 *              unfused one (ir/interp.c op_attention against the primitives);
 *   run.*      the generated kernel (codegen/kernels_attention.c), compiled by clang with
 *              -Wall -Wextra silent, agrees with the interpreter on the unfused graph, at and
 *              below the symbolic bounds: causal, padding mask, both (in either order),
 *              seq 1, Sq != Sk, Sq > Sk, seq at its bound (several key and row blocks), head
 *              dims 7, 5 and 3, one generated token at head dims 40, 64 and 160 (the scores
 *              as dot products of k's rows), [B*H]-style rank-3 heads, rows whose scores
 *              are all -inf (NaN in both), seq-major operands ([.., S, H, D]: q and the
 *              output through the pass, k and v set by hand).  The sizes put every count
 *              of rows and keys past AVX2's key-major tiles of 6 (0 to 5, and 8 and 9,
 *              which take two tiles of 4) in some block.  Skipped when clang is
 *              missing ($KILN_CC overrides it).
 *
 *   build/tests/test_attention     prints "test_attention: N passed, M failed"
 *   KILN_TEST_KEEP=1 ...           keeps the temporary folder with the generated C
 */
#include "cg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* =======================================================================================
 * Checking
 * ======================================================================================= */

static int n_passed, n_failed;

static void fail(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", id);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    n_failed++;
}

static void check(const char *id, bool ok, const char *what)
{
    if (ok)
        n_passed++;
    else
        fail(id, "%s", what);
}

#define CHECK(id, cond) check((id), (cond), #cond)

// A formatted string in a small ring of buffers (test ids, file names).
static const char *tfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *tfmt(const char *fmt, ...)
{
    static char ring[8][512];
    static int next;
    char *s = ring[next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof ring[0], fmt, ap);
    va_end(ap);
    return s;
}

// Compare f32 tensors: NaN where the other is NaN, else within tol * max(1, |want|).
// Prints the first pairs, the largest error, its index and the tolerance.
static void compare(const char *id, const Tensor *want, const float *got, int64_t got_n,
                    double tol)
{
    int64_t numel = tensor_numel(want);
    if (!got || got_n != numel) {
        fail(id, "%lld elements, expected %lld", (long long)got_n, (long long)numel);
        return;
    }
    double worst = 0;
    int64_t at = -1;
    int shown = 0;
    for (int64_t i = 0; i < numel; i++) {
        double a = (double)got[i], b = (double)((const float *)want->data)[i];
        if ((isnan(a) && isnan(b)) || a == b)
            continue;
        double scale = fabs(b) > 1 ? fabs(b) : 1, err = fabs(a - b) / scale;
        if (isnan(err))
            err = (double)INFINITY;
        if (err > tol && shown++ < 4)
            printf("%s    %s[%lld] got %.9g, expected %.9g\n",
                   shown == 1 ? tfmt("FAIL %s:\n", id) : "", id, (long long)i, a, b);
        if (err > worst) {
            worst = err;
            at = i;
        }
    }
    if (shown) {
        printf("    max error %.3g (relative to max(1, |expected|)) at [%lld], tolerance %g\n",
               worst, (long long)at, tol);
        n_failed++;
    } else {
        n_passed++;
    }
}

/* =======================================================================================
 * Building attention graphs
 * ======================================================================================= */

static Graph *g;
static Diag dg;
static const SrcLoc here = {"models/attn.yaml", 3, 7};

static SrcLoc line(int n) { return (SrcLoc){"models/attn.yaml", n, 5}; }

static void begin(void)
{
    g = graph_new("models/attn.yaml");
    g->model_name = "attn";
    diag_init(&dg);
    dg.quiet_source = true;
}

static void end(void)
{
    graph_free(g);
    g = NULL;
}

// A Type from "2, 3, seq, 4" (names are symbolic dims already in g).
static Type ty(const char *shape)
{
    Type t = {.dtype = DT_F32};
    const char *p = shape;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p >= '0' && *p <= '9') {
            t.dim[t.rank++] = (Dim){strtoll(p, (char **)&p, 10), -1};
        } else {
            char name[32];
            int len = 0;
            while (*p && *p != ',' && *p != ' ' && len < 31)
                name[len++] = *p++;
            name[len] = 0;
            int s = graph_find_sym(g, name);
            if (s < 0)
                KILN_BUG("test: no symbol '%s'", name);
            t.dim[t.rank++] = (Dim){g->syms[s].max, s};
        }
    }
    return t;
}

static NodeId input(const char *name, const char *shape)
{
    Node a = {0};
    a.attr.input.index = g->n_inputs;
    NodeId id = graph_add_source(g, &dg, OP_INPUT, name, here, ty(shape), &a);
    VEC_PUSH(g->inputs, g->n_inputs, g->cap_inputs, id);
    return id;
}

static NodeId scalar(const char *name, float value)
{
    Node a = {0};
    a.attr.constant.data = arena_alloc(&g->arena, sizeof value);
    memcpy(a.attr.constant.data, &value, sizeof value);
    return graph_add_source(g, &dg, OP_CONST, name, here, ty(""), &a);
}

static NodeId node_at(int ln, OpKind op, const char *name, const Node *a, int n_in, ...)
{
    NodeId in[KILN_MAX_IN];
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in; i++)
        in[i] = va_arg(ap, NodeId);
    va_end(ap);
    NodeId id = graph_add_node(g, &dg, op, name, line(ln), in, n_in, a);
    if (id < 0)
        KILN_BUG("test: cannot build %s '%s'", op_name(op), name ? name : "?");
    return id;
}

static void output(const char *name, NodeId id)
{
    Output o = {name, id, here};
    VEC_PUSH(g->outputs, g->n_outputs, g->cap_outputs, o);
}

// One attention case: shapes as ty() strings, and how the chain is written.
typedef enum { SC_NONE, SC_SCALE, SC_MUL, SC_MUL_LEFT, SC_DIV } ScaleKind;
typedef struct {
    const char *id;
    const char *syms;       // "seq 70" or "sq 5 sk 9": symbolic dims and bounds
    const char *q, *k, *v;  // shapes
    const char *mask;       // shape of the additive mask input, or NULL
    ScaleKind scale;
    double by;              // the scale (SC_DIV divides by 1 / by)
    bool causal;
    bool causal_first;      // causal_mask before the add (else add, then causal_mask)
    bool mask_left;         // add(mask, scores)
    // Mask data: 0 with -inf at every 3rd key; whole_rows: also rows of all -inf;
    // pad_keys: keys [0, pad_keys) -inf in odd rows (left padding: whole key blocks masked
    // before any finite score).
    bool whole_rows;
    int64_t pad_keys;
    // ATT_Q | ATT_K | ATT_V | ATT_OUT: that operand is written [.., S, H, D] (its shape
    // above) and transposed to [.., H, S, D] for the chain (attn.q_t ..., line 19), or the
    // output transposed back (attn.ctx_t, line 27): the pass reads them in place.
    unsigned seq_major;
    // After the pass, read k's and v's transposes in place too, by hand (the pass leaves them,
    // but the kernel and the interpreter support seq-major k and v).
    bool force_kv;
    // The task functions the kernel must have on ISAs of more than one lane: "cols" (only
    // the key-major body), "rows" (only the row-major one), "both" (chosen per call by Sq),
    // or NULL (not checked).
    const char *bodies;
} Case;

// What the pass would do if it read seq-major k and v: the fused node reads the values their
// transposes read, and the transposes go.
static void force_seq_major_kv(void)
{
    for (int i = 0; i < g->n_nodes; i++) {
        Node *a = &g->nodes[i];
        if (a->dead || a->op != OP_ATTENTION)
            continue;
        for (int k = 1; k <= 2; k++) {
            Node *x = &g->nodes[a->in[k]];
            if (x->op != OP_TRANSPOSE)
                continue;
            a->in[k] = x->in[0];
            a->attr.attention.seq_major |= k == 1 ? ATT_K : ATT_V;
            x->dead = true;
        }
    }
    ir_compact(g);
}

// transpose(x) swapping dims r - 3 and r - 2, the heads and the sequence.
static NodeId swap_heads(int ln, const char *name, NodeId x)
{
    Node p = {0};
    int r = g->nodes[x].type.rank;
    for (int a = 0; a < r; a++)
        p.attr.transpose.perm[a] = a == r - 3 ? r - 2 : a == r - 2 ? r - 3 : a;
    return node_at(ln, OP_TRANSPOSE, name, &p, 1, x);
}

// Names of the chain's nodes as a spec would write them, lines 20..25.
static NodeId build(const Case *c)
{
    const char *p = c->syms;
    while (p && *p) {
        char name[32];
        long long max;
        int used;
        if (sscanf(p, "%31s %lld%n", name, &max, &used) != 2)
            break;
        graph_add_sym(g, name, max, here);
        p += used;
    }
    NodeId q = input("q", c->q), k = input("k", c->k), v = input("v", c->v);
    NodeId mask = c->mask ? input("mask", c->mask) : -1;
    if (c->seq_major & ATT_Q)
        q = swap_heads(19, "attn.q_t", q);
    if (c->seq_major & ATT_K)
        k = swap_heads(19, "attn.k_t", k);
    if (c->seq_major & ATT_V)
        v = swap_heads(19, "attn.v_t", v);
    Node tb = {0};
    tb.attr.matmul.trans_b = true;
    NodeId s = node_at(20, OP_MATMUL, "attn.qk", &tb, 2, q, k);
    Node sc = {0};
    switch (c->scale) {
    case SC_NONE: break;
    case SC_SCALE:
        sc.attr.scale.by = c->by;
        s = node_at(21, OP_SCALE, "attn.scaled", &sc, 1, s);
        break;
    case SC_MUL:
        s = node_at(21, OP_MUL, "attn.scaled", NULL, 2, s, scalar("attn.c", (float)c->by));
        break;
    case SC_MUL_LEFT:
        s = node_at(21, OP_MUL, "attn.scaled", NULL, 2, scalar("attn.c", (float)c->by), s);
        break;
    case SC_DIV:
        s = node_at(21, OP_DIV, "attn.scaled", NULL, 2, s, scalar("attn.c", (float)(1 / c->by)));
        break;
    }
    if (c->causal && (c->causal_first || mask < 0))
        s = node_at(22, OP_CAUSAL_MASK, "attn.causal", NULL, 1, s);
    if (mask >= 0)
        s = c->mask_left ? node_at(23, OP_ADD, "attn.masked", NULL, 2, mask, s)
                         : node_at(23, OP_ADD, "attn.masked", NULL, 2, s, mask);
    if (c->causal && !c->causal_first && mask >= 0)
        s = node_at(24, OP_CAUSAL_MASK, "attn.causal", NULL, 1, s);
    NodeId pr = node_at(25, OP_SOFTMAX, "attn.probs", NULL, 1, s);
    NodeId ctx = node_at(26, OP_MATMUL, "attn.ctx", NULL, 2, pr, v);
    if (c->seq_major & ATT_OUT)
        ctx = swap_heads(27, "attn.ctx_t", ctx);
    output("ctx", ctx);
    return ctx;
}

static int count_op(OpKind op)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !g->nodes[i].dead && g->nodes[i].op == op;
    return n;
}

static const Node *find_op(OpKind op)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead && g->nodes[i].op == op)
            return &g->nodes[i];
    return NULL;
}

static bool has_note(const char *part)
{
    for (const Note *n = g->notes; n; n = n->next)
        if (strstr(n->text, part))
            return true;
    return false;
}

/* =======================================================================================
 * Inputs, interpreting, generated code
 * ======================================================================================= */

static uint32_t rng_state = 12345;
static float rnd(void)      // uniform in [-1, 1)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

// Concrete inputs of g at the symbolic values sym_val[]: q, k, v uniform in [-2, 2), the mask
// 0 with -inf at every 3rd key (and, with whole_rows, every 4th row of each matrix all -inf).
static void make_inputs(const Case *c, const int64_t *sym_val, Tensor *in)
{
    for (int k = 0; k < g->n_inputs; k++) {
        const Node *nd = &g->nodes[g->inputs[k]];
        Tensor *t = &in[k];
        t->dtype = DT_F32;
        t->rank = nd->type.rank;
        for (int d = 0; d < t->rank; d++)
            t->dim[d] = nd->type.dim[d].sym >= 0 ? sym_val[nd->type.dim[d].sym]
                                                  : nd->type.dim[d].size;
        int64_t numel = tensor_numel(t);
        float *x = xmalloc((size_t)(numel ? numel : 1) * sizeof *x);
        bool is_mask = strcmp(nd->name, "mask") == 0;
        int64_t cols = t->rank ? t->dim[t->rank - 1] : 1;
        int64_t rows = t->rank > 1 ? t->dim[t->rank - 2] : 1;
        for (int64_t i = 0; i < numel; i++) {
            if (!is_mask) {
                x[i] = 2 * rnd();
                continue;
            }
            int64_t col = i % cols, row = i / cols % rows;
            x[i] = col % 3 == 1 ? -INFINITY : 0.5f * rnd();
            if (c->whole_rows && row % 4 == 2)
                x[i] = -INFINITY;
            if (col < c->pad_keys && row % 2 == 1)
                x[i] = -INFINITY;
        }
        t->data = x;
    }
}

static const void *no_weight(void *ctx, const char *tensor, const Type *type)
{
    (void)ctx, (void)tensor, (void)type;
    return NULL;
}

static bool interpret(const Tensor *in, Tensor *out)
{
    InterpEnv env = {in, no_weight, NULL};
    return ir_interpret(g, &env, out, stdout);
}

static char work[512];           // a temporary folder
static const char *cc;          // NULL: no C compiler, run.* skipped
static char src_root[4096];     // the kiln source tree, for runtime/kiln_rt.h

static void write_file(const char *name, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", work, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n)
        KILN_BUG("test: cannot write %s", path);
    fclose(f);
}

static void *read_file(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", work, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = xmalloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    ((char *)p)[*n] = 0;
    fclose(f);
    return p;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", work);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

// The ISAs this machine runs, each tested: scalar, and avx2 and avx512 where the CPU has them.
static const char *isas[3];
static int n_isas;

// Emit g (planned) for `isa` and compile it with the harness; returns the C text (malloc'd)
// or NULL.
static char *compile(const char *id, const char *isa)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CgOptions opt = {.command = "kiln build models/attn.yaml", .isa = isa};
    bool ok = cg_emit_model(g, &opt, f, &dg);
    fclose(f);
    if (!ok) {
        fail(id, "cg_emit_model failed");
        free(text);
        return NULL;
    }
    if (!cc)
        return text;
    write_file("model.c", text, strlen(text));
    write_file(tfmt("%s.c", id), text, strlen(text));
    int rc = sh("rm -f harness && %s -std=gnu11 -O3 -march=native -fno-math-errno -Wall -Wextra "
                "-I. -I'%s/runtime' '%s/tests/unit/harness.c' -o harness -lm > cc.txt 2>&1", cc,
                src_root, src_root);
    size_t n;
    char *diag = read_file("cc.txt", &n);
    if (rc != 0 || (diag && diag[0])) {
        fail(id, "%s on the generated C %s:\n%s", cc, rc ? "failed" : "warned", diag ? diag : "");
        free(text);
        text = NULL;
    } else {
        n_passed++;
    }
    free(diag);
    return text;
}

// Run the compiled harness on `in` at sym_val[] and compare its output with `want`.
static void run_compiled(const char *id, const int64_t *sym_val, const Tensor *in,
                         const Tensor *want)
{
    Buf syms = {0};
    for (int s = 0; s < g->n_syms; s++)
        bprintf(&syms, "%s %lld\n", g->syms[s].name, (long long)sym_val[s]);
    write_file("syms.txt", bstr(&syms), syms.len);
    bfree(&syms);
    for (int k = 0; k < g->n_inputs; k++)
        write_file(tfmt("in.%s.bin", g->nodes[g->inputs[k]].name), in[k].data,
                   (size_t)tensor_numel(&in[k]) * sizeof(float));
    int rc = sh("./harness > run.txt 2>&1");
    size_t n = 0;
    if (rc != 0) {
        char *msg = read_file("run.txt", &n);
        fail(id, "the harness exited %d:\n%s", rc, msg ? msg : "");
        free(msg);
        return;
    }
    float *got = read_file("out.ctx.bin", &n);
    compare(id, want, got, (int64_t)(n / sizeof(float)), 2e-5);
    free(got);
}

/* =======================================================================================
 * The cases
 * ======================================================================================= */

// "causal.batch2_seq70": the case and its symbolic dims' values.
static const char *run_id(const Case *c, const int64_t *sym_val)
{
    const char *rid = tfmt("%s.", c->id);
    for (int s = 0; s < g->n_syms; s++)
        rid = tfmt("%s%s%s%lld", rid, s ? "_" : "", g->syms[s].name, (long long)sym_val[s]);
    return rid;
}

// Build c, fuse it, check the fused node, then at each sym_vals[t] (n_syms values each,
// n_runs of them): interpreter fused vs unfused, generated code vs unfused interpreter.
static void run_attention_case(const Case *c, const int64_t *sym_vals, int n_runs)
{
    begin();
    build(c);
    int n_syms = g->n_syms;
    // The unfused reference, for every run, before the pass changes the graph.
    Tensor (*in)[4] = xcalloc((size_t)n_runs, sizeof *in);
    Tensor *want = xcalloc((size_t)n_runs, sizeof *want);
    bool ok = true;
    for (int t = 0; t < n_runs && ok; t++) {
        make_inputs(c, sym_vals + t * n_syms, in[t]);
        ok = interpret(in[t], &want[t]);
        if (!ok)
            fail(tfmt("interp.%s.ref%d", c->id, t), "the interpreter failed on the unfused graph");
    }
    NodeId first_mm = graph_find(g, "attn.qk");
    int n_chain = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_chain += g->nodes[i].op != OP_INPUT && g->nodes[i].op != OP_CONST;
    SrcLoc qk_loc = g->nodes[first_mm].loc;

    bool changed = ir_fuse_attention(g);
    ir_verify(g, "fuse-attention");
    CHECK(tfmt("pass.%s.changed", c->id), changed);
    CHECK(tfmt("pass.%s.one_node", c->id),
          count_op(OP_ATTENTION) == 1 && count_op(OP_MATMUL) == 0 && count_op(OP_SOFTMAX) == 0);
    const Node *a = find_op(OP_ATTENTION);
    if (a) {
        double want_scale = c->scale == SC_NONE ? 1.0 : c->by;
        bool out_sm = c->seq_major & ATT_OUT;
        CHECK(tfmt("pass.%s.name", c->id),
              strcmp(a->name, out_sm ? "attn.ctx_t" : "attn.ctx") == 0);
        CHECK(tfmt("pass.%s.loc", c->id), a->loc.line == qk_loc.line);
        // k's and v's transposes stay (fuse_attention.c absorb_transposes says why).
        int kept = !!(c->seq_major & ATT_K) + !!(c->seq_major & ATT_V);
        CHECK(tfmt("pass.%s.origins", c->id), a->n_origins == n_chain - kept);
        CHECK(tfmt("pass.%s.origins_order", c->id),
              a->n_origins >= 2 &&
                  strcmp(a->origins[0].name, c->seq_major & ATT_Q ? "attn.q_t" : "attn.qk") == 0 &&
                  strcmp(a->origins[a->n_origins - 1].name,
                         out_sm ? "attn.ctx_t" : "attn.ctx") == 0);
        CHECK(tfmt("pass.%s.seq_major", c->id),
              a->attr.attention.seq_major == (c->seq_major & (ATT_Q | ATT_OUT)));
        CHECK(tfmt("pass.%s.transposes", c->id), count_op(OP_TRANSPOSE) == kept);
        CHECK(tfmt("pass.%s.scale", c->id),
              fabs(a->attr.attention.scale - want_scale) <= 1e-6 * fabs(want_scale));
        CHECK(tfmt("pass.%s.causal", c->id), a->attr.attention.causal == c->causal);
        CHECK(tfmt("pass.%s.inputs", c->id), a->n_in == (c->mask ? 4 : 3));
        CHECK(tfmt("pass.%s.no_const", c->id), c->scale == SC_NONE || c->scale == SC_SCALE ||
                                                   graph_find(g, "attn.c") < 0);
        CHECK(tfmt("pass.%s.no_notes", c->id), g->n_notes == 0);
    }
    if (c->force_kv) {
        force_seq_major_kv();
        ir_verify(g, "force_seq_major_kv");
        const Node *f = find_op(OP_ATTENTION);
        CHECK(tfmt("pass.%s.forced", c->id), f && f->attr.attention.seq_major == c->seq_major &&
                                                 count_op(OP_TRANSPOSE) == 0);
    }
    Diag d;
    diag_init(&d);
    CHECK(tfmt("pass.%s.shapes", c->id), ir_infer_shapes(g, &d));

    for (int t = 0; t < n_runs && ok; t++) {
        Tensor fused;
        const char *rid = run_id(c, sym_vals + t * n_syms);
        if (interpret(in[t], &fused)) {
            compare(tfmt("interp.%s", rid), &want[t], fused.data, tensor_numel(&fused), 2e-5);
            free(fused.data);
        } else {
            fail(tfmt("interp.%s", rid), "the interpreter failed on the fused graph");
        }
    }
    ir_plan_memory(g);
    for (int x = 0; x < n_isas && ok; x++) {
        char *text = compile(tfmt("run.%s.%s.compile", c->id, isas[x]), isas[x]);
        if (!text)
            continue;
        CHECK(tfmt("run.%s.%s.one_kernel", c->id, isas[x]),
              strstr(text, "fused_attention") && strstr(text, "online softmax"));
        if (c->bodies && strcmp(isas[x], "scalar") != 0) {
            // The key-major body transposes its query rows (qT), the row-major one its
            // key blocks (kt).
            bool cols = strstr(text, "float qT["), rows = strstr(text, "float kt[");
            const char *got = cols && rows ? "both" : cols ? "cols" : "rows";
            if (strcmp(got, c->bodies) != 0)
                fail(tfmt("run.%s.%s.bodies", c->id, isas[x]), "the kernel has %s, want %s",
                     got, c->bodies);
            else
                n_passed++;
            // AVX2's key-major tiles are 6 keys (and 6 rows), with tails of 4 and of 1
            // (kernels_attention.c cols_tile); the other ISAs' are 4.
            if (cols) {
                bool six = strstr(text, "c0 + 6 <= nj") && strstr(text, "tiles of 6 rows");
                CHECK(tfmt("run.%s.%s.cols_tile", c->id, isas[x]),
                      six == (strcmp(isas[x], "avx2") == 0));
            }
        }
        free(text);
        for (int t = 0; t < n_runs && cc; t++)
            run_compiled(tfmt("run.%s.%s", isas[x], run_id(c, sym_vals + t * n_syms)),
                         sym_vals + t * n_syms, in[t], &want[t]);
    }
    for (int t = 0; t < n_runs; t++) {
        for (int k = 0; k < 4; k++)
            free(in[t][k].data);
        free(want[t].data);
    }
    free(in);
    free(want);
    end();
}

static void test_cases(void)
{
    // GPT-2 style: [batch, heads, seq, D], causal, 1 / sqrt(D); seq at its bound 70 spans
    // two key blocks (64) and three row blocks (32).
    run_attention_case(&(Case){.id = "causal", .syms = "batch 2 seq 70",
                               .q = "batch, 3, seq, 16", .k = "batch, 3, seq, 16",
                               .v = "batch, 3, seq, 16", .scale = SC_SCALE, .by = 0.25,
                               .causal = true, .bodies = "both"},
                       (const int64_t[]){2, 70, 1, 33, 2, 1, 1, 64}, 4);
    // BERT style: padding mask [batch, 1, 1, seq] with -inf keys; whole masked rows give NaN.
    run_attention_case(&(Case){.id = "padding", .syms = "batch 2 seq 9",
                               .q = "batch, 2, seq, 8", .k = "batch, 2, seq, 8",
                               .v = "batch, 2, seq, 8", .mask = "batch, 1, 1, seq",
                               .scale = SC_SCALE, .by = 0.35355339059327373},
                       (const int64_t[]){2, 9, 1, 4, 2, 1}, 3);
    // A full mask [batch, heads, Sq, Sk] with rows of all -inf: NaN in both paths.
    run_attention_case(&(Case){.id = "full_mask", .syms = "seq 12", .q = "2, 3, seq, 4",
                               .k = "2, 3, seq, 4", .v = "2, 3, seq, 4",
                               .mask = "2, 3, seq, seq", .scale = SC_MUL, .by = 0.5,
                               .whole_rows = true},
                       (const int64_t[]){12, 5}, 2);
    // Left padding: the first 70 keys masked in odd rows, so whole key blocks of -inf come
    // before the first finite score (the online softmax must not turn them into NaN).
    run_attention_case(&(Case){.id = "left_pad", .syms = "seq 150", .q = "2, seq, 8",
                               .k = "2, seq, 8", .v = "2, seq, 8", .mask = "2, seq, seq",
                               .scale = SC_SCALE, .by = 0.35355339059327373, .pad_keys = 70},
                       (const int64_t[]){150, 71, 70}, 3);
    // Causal and mask, both orders, the mask on either side of the add.
    run_attention_case(&(Case){.id = "causal_then_mask", .syms = "seq 40", .q = "2, seq, 6",
                               .k = "2, seq, 6", .v = "2, seq, 6", .mask = "seq",
                               .scale = SC_DIV, .by = 0.4, .causal = true, .causal_first = true,
                               .bodies = "both"},
                       (const int64_t[]){40, 7, 1}, 3);
    run_attention_case(&(Case){.id = "mask_then_causal", .syms = "seq 40", .q = "2, seq, 6",
                               .k = "2, seq, 6", .v = "2, seq, 6", .mask = "1, seq, seq",
                               .scale = SC_MUL_LEFT, .by = 0.4, .causal = true,
                               .mask_left = true, .whole_rows = true, .bodies = "rows"},
                       (const int64_t[]){40, 6, 1}, 3);
    // Decoding: Sq queries are the last of Sk keys (Sq <= Sk), and Sq > Sk, whose first
    // Sq - Sk rows see no key at all (NaN).
    run_attention_case(&(Case){.id = "sq_lt_sk", .syms = "sq 5 sk 90", .q = "3, sq, 8",
                               .k = "3, sk, 8", .v = "3, sk, 8", .scale = SC_SCALE, .by = 0.3,
                               .causal = true},
                       (const int64_t[]){1, 90, 5, 77, 5, 5, 2, 1}, 4);
    // One generated token (and blocks of fewer rows than a tile): the scores are dot products
    // of rows of k read in place, in up to 4 vector partial sums.  Head dims 64 (4 vectors on
    // AVX-512, 8 on AVX2), 160 (a loop over groups of 4 vectors, then the rest) and 40 (2.5
    // vectors on AVX-512: a partial last one), with v's head dim different.
    run_attention_case(&(Case){.id = "decode_hd64", .syms = "sq 4 sk 100",
                               .q = "2, 3, sq, 64", .k = "2, 3, sk, 64", .v = "2, 3, sk, 64",
                               .scale = SC_SCALE, .by = 0.125, .causal = true, .bodies = "rows"},
                       (const int64_t[]){1, 100, 3, 70, 4, 65, 1, 1}, 4);
    run_attention_case(&(Case){.id = "decode_hd160", .syms = "sq 4 sk 90", .q = "2, sq, 160",
                               .k = "2, sk, 160", .v = "2, sk, 40", .scale = SC_SCALE,
                               .by = 0.08, .causal = true},
                       (const int64_t[]){1, 90, 2, 33, 1, 1}, 3);
    run_attention_case(&(Case){.id = "decode_hd40", .syms = "sq 4 sk 70", .q = "3, sq, 40",
                               .k = "3, sk, 40", .v = "3, sk, 24", .scale = SC_SCALE, .by = 0.15,
                               .causal = true},
                       (const int64_t[]){1, 70, 3, 66, 1, 1}, 3);
    run_attention_case(&(Case){.id = "sq_gt_sk", .q = "2, 6, 8", .k = "2, 4, 8", .v = "2, 4, 8",
                               .causal = true, .bodies = "rows"},
                       (const int64_t[]){0}, 1);
    // Head dims that are not a vector width: D 7 with Dv 5, D 3 with Dv 7; no scale.
    run_attention_case(&(Case){.id = "hd7", .syms = "seq 20", .q = "2, 3, seq, 7",
                               .k = "2, 3, seq, 7", .v = "2, 3, seq, 5", .scale = SC_SCALE,
                               .by = 0.3779644730092272, .causal = true},
                       (const int64_t[]){20, 1}, 2);
    run_attention_case(&(Case){.id = "hd3", .syms = "seq 11", .q = "seq, 3", .k = "seq, 3",
                               .v = "seq, 7"},
                       (const int64_t[]){11, 1}, 2);
    // Heads by batched matmul over a [B*H] leading dim, as a rank-3 spec computes them.
    run_attention_case(&(Case){.id = "bh_rank3", .syms = "seq 16", .q = "24, seq, 5",
                               .k = "24, seq, 5", .v = "24, seq, 5", .mask = "24, 1, seq",
                               .scale = SC_SCALE, .by = 0.44721359549995793},
                       (const int64_t[]){16, 3}, 2);
    // Seq-major operands, as BERT writes them: q, k, v projected [batch, seq, heads, D] and
    // transposed for the chain, the context transposed back: q and the context read and
    // written in place (k and v keep their transposes), with the padding mask; seq at its
    // bound spans several row and key blocks.
    run_attention_case(&(Case){.id = "seq_major", .syms = "batch 2 seq 140",
                               .q = "batch, seq, 3, 16", .k = "batch, seq, 3, 16",
                               .v = "batch, seq, 3, 8", .mask = "batch, 1, 1, seq",
                               .scale = SC_SCALE, .by = 0.25, .pad_keys = 3,
                               .seq_major = ATT_Q | ATT_K | ATT_V | ATT_OUT},
                       (const int64_t[]){2, 140, 1, 65, 2, 1}, 3);
    // The same with k and v read in place as well (by hand: the kernel supports it).
    run_attention_case(&(Case){.id = "seq_major_all", .syms = "batch 2 seq 140",
                               .q = "batch, seq, 3, 16", .k = "batch, seq, 3, 16",
                               .v = "batch, seq, 3, 8", .mask = "batch, 1, 1, seq",
                               .scale = SC_SCALE, .by = 0.25, .pad_keys = 3,
                               .seq_major = ATT_Q | ATT_K | ATT_V | ATT_OUT, .force_kv = true},
                       (const int64_t[]){2, 140, 1, 65}, 2);
    // GPT-2's: q and the output seq-major, k and v as a cache holds them; causal, Sq < Sk,
    // D 7 (a partial vector with a row stride that is not a vector multiple).
    run_attention_case(&(Case){.id = "seq_major_q_out", .syms = "sq 6 sk 80",
                               .q = "2, sq, 3, 7", .k = "2, 3, sk, 7", .v = "2, 3, sk, 7",
                               .scale = SC_SCALE, .by = 0.3, .causal = true,
                               .seq_major = ATT_Q | ATT_OUT},
                       (const int64_t[]){6, 80, 1, 70, 6, 6}, 3);
    // A causal prompt with Sq symbolic: the key-major body for Sq >= VL, the row-major one
    // below it (one generated token), chosen per call.  Sq 150 spans two row blocks; Sk > Sq
    // puts the diagonal off the block edges; Sq > Sk leaves rows with no key (NaN); Sq 16 and
    // 15 sit on either side of AVX-512's choice, 8 and 7 of AVX2's.
    run_attention_case(&(Case){.id = "causal_prompt", .syms = "sq 150 sk 300",
                               .q = "2, sq, 3, 16", .k = "2, 3, sk, 16", .v = "2, 3, sk, 8",
                               .scale = SC_SCALE, .by = 0.25, .causal = true,
                               .seq_major = ATT_Q | ATT_OUT, .bodies = "both"},
                       (const int64_t[]){150, 300, 130, 130, 70, 211, 16, 16, 15, 40, 8, 8, 7,
                                         30, 1, 9, 40, 33},
                       9);
    // The same at a static Sq that fills vectors: the key-major body only.
    run_attention_case(&(Case){.id = "causal_static", .syms = "sk 100", .q = "3, 37, 8",
                               .k = "3, sk, 8", .v = "3, sk, 8", .scale = SC_SCALE, .by = 0.3,
                               .causal = true, .bodies = "cols"},
                       (const int64_t[]){100, 37, 40, 20}, 4);
    // Only k and v transposed (q computed elsewhere), rank 3: [seq, heads, D]; both stay,
    // then are read in place by hand.
    run_attention_case(&(Case){.id = "seq_major_kv", .syms = "seq 33", .q = "4, seq, 8",
                               .k = "seq, 4, 8", .v = "seq, 4, 8", .scale = SC_SCALE,
                               .by = 0.35355339059327373, .seq_major = ATT_K | ATT_V,
                               .force_kv = true},
                       (const int64_t[]){33, 1}, 2);
}

/* =======================================================================================
 * Near-misses: left unfused, with a note
 * ======================================================================================= */

static void test_near_misses(void)
{
    const Case base = {.id = "miss", .syms = "seq 8", .q = "2, seq, 4", .k = "2, seq, 4",
                       .v = "2, seq, 4", .scale = SC_SCALE, .by = 0.5, .causal = true};

    // The probabilities are also an output.
    begin();
    build(&base);
    output("probs", graph_find(g, "attn.probs"));
    CHECK("pass.miss.output.unchanged", !ir_fuse_attention(g) && count_op(OP_ATTENTION) == 0);
    CHECK("pass.miss.output.note", has_note("not fused: softmax 'attn.probs' is a model output"));
    end();

    // The scores are read twice.
    begin();
    build(&base);
    NodeId sc = graph_find(g, "attn.scaled");
    output("twice", node_at(30, OP_RELU, "other", NULL, 1, sc));
    CHECK("pass.miss.readers.unchanged", !ir_fuse_attention(g) && count_op(OP_ATTENTION) == 0);
    CHECK("pass.miss.readers.note", has_note("not fused: scale 'attn.scaled' has 2 readers"));
    end();

    // k broadcast over the heads (leading dims differ).
    begin();
    Case kb = base;
    kb.k = "1, seq, 4";
    build(&kb);
    CHECK("pass.miss.lead.unchanged", !ir_fuse_attention(g) && count_op(OP_ATTENTION) == 0);
    CHECK("pass.miss.lead.note", has_note("not fused: k 'k' is [1, seq, 4] but q 'q' is "
                                          "[2, seq, 4]: the leading dims differ"));
    end();

    // softmax of something that is not q k^T.
    begin();
    graph_add_sym(g, "seq", 8, here);
    NodeId x = input("x", "seq, seq"), v = input("v", "seq, 4");
    NodeId r = node_at(20, OP_RELU, "r", NULL, 1, x);
    NodeId p = node_at(21, OP_SOFTMAX, "p", NULL, 1, r);
    output("o", node_at(22, OP_MATMUL, "o", NULL, 2, p, v));
    CHECK("pass.miss.not_qk.unchanged", !ir_fuse_attention(g));
    CHECK("pass.miss.not_qk.note", has_note("not fused: softmax 'p' (read by matmul 'o') does "
                                            "not read q k^T through scale, causal_mask or add: "
                                            "found relu 'r'"));
    end();

    // Two attentions, one fusable and one a near-miss: the first fuses regardless.
    begin();
    build(&base);
    NodeId q2 = input("q2", "2, seq, 4");
    Node tb = {0};
    tb.attr.matmul.trans_b = true;
    NodeId s2 = node_at(40, OP_MATMUL, "b.qk", &tb, 2, q2, graph_find(g, "k"));
    NodeId p2 = node_at(41, OP_SOFTMAX, "b.probs", NULL, 1, s2);
    output("b.ctx", node_at(42, OP_MATMUL, "b.ctx", NULL, 2, p2, graph_find(g, "v")));
    output("b.probs", p2);
    CHECK("pass.miss.mixed.one", ir_fuse_attention(g) && count_op(OP_ATTENTION) == 1);
    CHECK("pass.miss.mixed.note",
          g->n_notes == 1 && has_note("softmax 'b.probs' is a model output"));
    end();
}

// The interpreter evaluates a fused node whose inputs are constants (constant folding).
static void test_eval_const(void)
{
    begin();
    const float qv[] = {1, 0, 0, 1}, kv[] = {1, 0, 0, 1, 1, 1}, vv[] = {1, 2, 3, 4, 5, 6};
    Node a = {0};
    Type tq = {DT_F32, 2, {{2, -1}, {2, -1}}}, tk = {DT_F32, 2, {{3, -1}, {2, -1}}};
    const float *data[3] = {qv, kv, vv};
    Type types[3] = {tq, tk, tk};
    NodeId in[3];
    for (int i = 0; i < 3; i++) {
        a.attr.constant.data = arena_alloc(&g->arena, (size_t)type_numel_max(&types[i]) * 4);
        memcpy(a.attr.constant.data, data[i], (size_t)type_numel_max(&types[i]) * 4);
        in[i] = graph_add_source(g, &dg, OP_CONST, tfmt("c%d", i), here, types[i], &a);
    }
    Node at = {0};
    at.attr.attention.scale = 1.0;
    at.attr.attention.causal = true;
    NodeId f = graph_add_node(g, &dg, OP_ATTENTION, "f", here, in, 3, &at);
    float *out = f >= 0 ? interp_eval_const(g, &g->nodes[f]) : NULL;
    // Sq 2, Sk 3, causal offset 1: row 0 sees keys 0, 1 (scores 1, 0); row 1 all three
    // (scores 0, 1, 1).
    double e = exp(1.0), r0 = 1 / (e + 1), r1 = 1 / (1 + 2 * e);
    double want[4] = {e * r0 * 1 + r0 * 3, e * r0 * 2 + r0 * 4, r1 * 1 + e * r1 * (3 + 5),
                      r1 * 2 + e * r1 * (4 + 6)};
    bool ok = out != NULL;
    for (int i = 0; ok && i < 4; i++)
        ok = fabs((double)out[i] - want[i]) < 1e-6;
    CHECK("interp.eval_const", ok);
    free(out);
    end();
}

// attn_expf, the kernels' exp, against exp() in double on every 61st float of [-87.3, 0]
// (and -inf, NaN, below the range): at most 2 ulp, as its comment promises.
static const char expf_check[] =
    "#define KILN_NO_MAIN\n"
    "#define KILN_NO_API\n"
    "#include \"model.c\"\n"
    "int kiln_fail(kiln_run *r, const char *fmt, ...) { (void)r, (void)fmt; return 1; }\n"
    "size_t kiln_dtype_size(kiln_dtype t) { return t == KILN_I64 ? 8 : 4; }\n"
    "void kiln_parallel_for(kiln_run *r, int64_t n, kiln_task_fn fn, void *ctx)\n"
    "{\n"
    "    (void)r;\n"
    "    fn(ctx, 0, n);\n"
    "}\n"
    "int main(void)\n"
    "{\n"
    "    double worst = 0;\n"
    "    float at = 0;\n"
    "    int i = 0;\n"
    "    for (float x = -87.3f; x <= 0.0f; x = nextafterf(x, 1.0f), i++) {\n"
    "        if (i % 61)\n"
    "            continue;\n"
    "        double want = exp((double)x);\n"
    "        double ulp = (double)nextafterf((float)want, INFINITY) - (double)(float)want;\n"
    "        double e = fabs((double)attn_expf(x) - want) / ulp;\n"
    "        if (e > worst)\n"
    "            worst = e, at = x;\n"
    "    }\n"
    "    printf(\"%.3f %.9g %g %g %g\\n\", worst, (double)at, (double)attn_expf(-INFINITY),\n"
    "           (double)attn_expf(NAN), (double)attn_expf(-100.0f));\n"
    "    return 0;\n"
    "}\n";

static void test_expf(void)
{
    if (!cc)
        return;
    begin();
    build(&(Case){.id = "expf", .q = "2, 4", .k = "3, 4", .v = "3, 4"});
    ir_fuse_attention(g);
    ir_plan_memory(g);
    char *text = compile("run.expf.compile", "scalar");
    end();
    if (!text)
        return;
    free(text);
    write_file("expf.c", expf_check, strlen(expf_check));
    int rc = sh("%s -std=gnu11 -O2 -march=native -fno-math-errno -Wall -Wextra -I'%s/runtime' "
                "expf.c -o expf -lm > cc.txt 2>&1 && ./expf > expf.txt", cc, src_root);
    size_t n;
    char *out = read_file(rc == 0 ? "expf.txt" : "cc.txt", &n);
    double worst = 99, at = 0, e_ninf = -1, e_nan = 0, e_low = -1;
    if (rc != 0 || !out ||
        sscanf(out, "%lf %lf %lf %lf %lf", &worst, &at, &e_ninf, &e_nan, &e_low) != 5)
        fail("run.expf", "the check did not run (exit %d):\n%s", rc, out ? out : "");
    else if (worst > 2 || e_ninf != 0 || !isnan(e_nan) || e_low != 0)
        fail("run.expf", "attn_expf: %.3f ulp at %.9g (at most 2), exp(-inf) %g, exp(NaN) %g, "
                         "exp(-100) %g", worst, at, e_ninf, e_nan, e_low);
    else
        n_passed++;
    free(out);
}

int main(void)
{
    snprintf(src_root, sizeof src_root, "%s", __FILE__);
    char *cut = strstr(src_root, "tests/unit/test_attention.c");
    if (cut && cut != src_root)
        *cut = 0;
    else
        snprintf(src_root, sizeof src_root, ".");

    // $KILN_CC may carry flags ("clang -fsanitize=address,undefined" under KILN_SANITIZE):
    // look for its first word.
    cc = getenv("KILN_CC") && *getenv("KILN_CC") ? getenv("KILN_CC") : "clang";
    char probe[256];
    snprintf(probe, sizeof probe, "command -v '%.*s' > /dev/null 2>&1", (int)strcspn(cc, " "),
             cc);
    snprintf(work, sizeof work, "%s/kiln_test_attention.XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");  // $TMPDIR, else the usual place
    if (system(probe) != 0) {
        printf("test_attention: %s not found; skipping the compile-and-run checks (run.*)\n", cc);
        cc = NULL;
    } else if (!mkdtemp(work)) {
        fail("run.setup", "cannot make a temporary folder");
        cc = NULL;
    }

    isas[n_isas++] = "scalar";
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        isas[n_isas++] = "avx2";
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        isas[n_isas++] = "avx512";
#endif

    test_near_misses();
    test_eval_const();
    test_expf();
    test_cases();

    if (cc) {
        char rm[128];
        snprintf(rm, sizeof rm, "rm -rf '%s'", work);
        if (getenv("KILN_TEST_KEEP"))
            printf("test_attention: the generated files are in %s\n", work);
        else if (system(rm) != 0)
            printf("test_attention: could not remove %s\n", work);
    }
    printf("test_attention: %d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
