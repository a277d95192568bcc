/* tests/unit/test_fuse.c: the fuse-elementwise pass and the epilogues it makes.
 *
 * Each case builds one small graph with the IR constructors twice: the copy `g0` stays as
 * built, the copy `g` goes through ir_fuse_elementwise (then ir_verify and ir_infer_shapes,
 * as the pipeline does).  Then:
 *   fuse.<case>.*      the structure: which nodes fused into which (epilogue steps, origins,
 *                      operands), which did not and the note that says why;
 *   fuse.<case>.interp the interpreter on g equals the interpreter on g0 bit for bit, on the
 *                      same random inputs and weights (each epilogue step rounds as the
 *                      node it replaced did);
 *   fuse.<case>.run    the generated C of g, compiled by clang (-Wall -Wextra silent) with
 *                      tests/unit/harness.c (it plays the runtime), equals the interpreter on
 *                      g0 to 1e-5 (relative to max(1, |want|)).  Skipped when clang is missing.
 *
 *   build/tests/test_fuse        prints "test_fuse: N passed, M failed", exit 1 on failure
 *   KILN_TEST_KEEP=1 ...         keeps the temporary folder with the generated C files
 */
#include "cg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

// A formatted string in a small ring of buffers (file names, test ids).
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

/* =======================================================================================
 * Building graphs
 * ======================================================================================= */

static Graph *g;
static Diag dg;

static SrcLoc line(int n) { return (SrcLoc){"models/fuse.yaml", n, 5}; }

static int sym(const char *name, int64_t max) { return graph_add_sym(g, name, max, line(1)); }

// A Type from "2, 3" or "seq, 4" (names are symbolic dims already in g); "" is a scalar.
static Type ty(DType dt, const char *shape)
{
    Type t = {.dtype = dt};
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

static NodeId input(const char *name, DType dt, const char *shape)
{
    Node a = {0};
    a.attr.input.index = g->n_inputs;
    NodeId id = graph_add_source(g, &dg, OP_INPUT, name, line(2), ty(dt, shape), &a);
    VEC_PUSH(g->inputs, g->n_inputs, g->cap_inputs, id);
    return id;
}

static NodeId weight(const char *name, const char *shape)
{
    Node a = {0};
    a.attr.weight.tensor = name;
    return graph_add_source(g, &dg, OP_WEIGHT, name, line(3), ty(DT_F32, shape), &a);
}

static NodeId constant(const char *name, const char *shape, const float *values)
{
    Type t = ty(DT_F32, shape);
    size_t bytes = (size_t)type_numel_max(&t) * sizeof(float);
    Node a = {0};
    a.attr.constant.data = arena_alloc(&g->arena, bytes);
    memcpy(a.attr.constant.data, values, bytes);
    return graph_add_source(g, &dg, OP_CONST, name, line(4), t, &a);
}

// A node of op `op` at spec line `ln` with inputs in[0..n_in) and attributes from `a`.
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
        KILN_BUG("test: cannot build %s '%s'", op_name(op), name);
    return id;
}

static Node matmul_attr(bool tb)
{
    Node a = {0};
    a.attr.matmul.trans_b = tb;
    return a;
}

static Node scale_attr(double by)
{
    Node a = {0};
    a.attr.scale.by = by;
    return a;
}

static Node gelu_attr(bool tanh_form)
{
    Node a = {0};
    a.attr.gelu.tanh = tanh_form;
    return a;
}

static void output(const char *name, NodeId id)
{
    Output o = {name, id, line(99)};
    VEC_PUSH(g->outputs, g->n_outputs, g->cap_outputs, o);
}

/* ---- inspecting the result ------------------------------------------------------------ */

static const Node *find(const char *name)
{
    NodeId id = graph_find(g, name);
    return id >= 0 ? &g->nodes[id] : NULL;
}

// Kernels forward() calls: live nodes that compute (not views, inputs, weights, constants).
static int kernels(const Graph *gr)
{
    int n = 0;
    for (int i = 0; i < gr->n_nodes; i++) {
        const Node *nd = &gr->nodes[i];
        n += !nd->dead && op_info[nd->op].cls != OPC_VIEW && nd->op != OP_INPUT &&
             nd->op != OP_WEIGHT && nd->op != OP_CONST;
    }
    return n;
}

// Node `name` carries exactly the epilogue ops `ops` ("add gelu") and the origins `origins`
// ("c_fc fc act"), in order.
static void expect_fused(const char *id, const char *name, const char *ops, const char *origins)
{
    const Node *n = find(name);
    if (!n) {
        fail(id, "no node '%s' after the pass", name);
        return;
    }
    char got_ops[256] = "", got_org[512] = "";
    for (int s = 0; s < n->n_epi; s++)
        snprintf(got_ops + strlen(got_ops), sizeof got_ops - strlen(got_ops), "%s%s",
                 s ? " " : "", op_name((OpKind)n->epi[s].op));
    for (int o = 0; o < n->n_origins; o++)
        snprintf(got_org + strlen(got_org), sizeof got_org - strlen(got_org), "%s%s",
                 o ? " " : "", n->origins[o].name);
    if (strcmp(got_ops, ops) != 0 || strcmp(got_org, origins) != 0)
        fail(id, "'%s' has epilogue [%s] and origins [%s], expected [%s] and [%s]", name,
             got_ops, got_org, ops, origins);
    else
        n_passed++;
}

// Some note of the pass contains `part`.
static void expect_note(const char *id, const char *part)
{
    for (const Note *note = g->notes; note; note = note->next)
        if (strstr(note->text, part)) {
            n_passed++;
            return;
        }
    fail(id, "no note contains \"%s\"; the notes are:", part);
    for (const Note *note = g->notes; note; note = note->next)
        printf("    note: %s\n", note->text);
}

/* =======================================================================================
 * Running: the interpreter on both graphs, and the generated C
 * ======================================================================================= */

static char src_root[4096];     // the kiln source tree, for runtime/kiln_rt.h
static char work[512];           // a temporary folder
static const char *cc;          // NULL: no C compiler, *.run skipped

static uint32_t rng_state = 12345;
static float rnd(void)          // uniform in [-1, 1)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

// Inputs and weights of one run: random f32, integer inputs i % n_int.
typedef struct {
    Tensor in[8];
    const char *wname[32];
    float *wdata[32];
    int n_w;
} Data;

static const void *find_weight(void *ctx, const char *tensor, const Type *type)
{
    (void)type;
    Data *d = ctx;
    for (int i = 0; i < d->n_w; i++)
        if (strcmp(d->wname[i], tensor) == 0)
            return d->wdata[i];
    return NULL;
}

static void make_data(const Graph *gr, const int64_t *sym_val, int32_t n_int, Data *d)
{
    memset(d, 0, sizeof *d);
    for (int k = 0; k < gr->n_inputs; k++) {
        const Node *nd = &gr->nodes[gr->inputs[k]];
        Tensor *t = &d->in[k];
        t->dtype = nd->type.dtype;
        t->rank = nd->type.rank;
        for (int j = 0; j < t->rank; j++)
            t->dim[j] = nd->type.dim[j].sym >= 0 ? sym_val[nd->type.dim[j].sym]
                                                 : nd->type.dim[j].size;
        int64_t numel = tensor_numel(t);
        t->data = xmalloc((size_t)numel * 4 + 1);
        for (int64_t i = 0; i < numel; i++) {
            if (t->dtype == DT_F32)
                ((float *)t->data)[i] = 2 * rnd();
            else
                ((int32_t *)t->data)[i] = (int32_t)((i * 7 + 3) % n_int);
        }
    }
    for (int i = 0; i < gr->n_nodes; i++) {
        const Node *nd = &gr->nodes[i];
        if (nd->dead || nd->op != OP_WEIGHT)
            continue;
        int64_t numel = type_numel_max(&nd->type);
        d->wname[d->n_w] = nd->attr.weight.tensor;
        d->wdata[d->n_w] = xmalloc((size_t)numel * sizeof(float));
        for (int64_t j = 0; j < numel; j++)
            d->wdata[d->n_w][j] = rnd();
        d->n_w++;
    }
}

static void free_data(const Graph *gr, Data *d)
{
    for (int k = 0; k < gr->n_inputs; k++)
        free(d->in[k].data);
    for (int i = 0; i < d->n_w; i++)
        free(d->wdata[i]);
}

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

// f32 outputs: got within 1e-5 * max(1, |want|) of want (NaN matches NaN).
static void compare(const char *id, const Tensor *want, const float *got, size_t got_n)
{
    int64_t numel = tensor_numel(want);
    if (!got || got_n != (size_t)numel * sizeof(float)) {
        fail(id, "the output has %zu bytes, expected %zu", got ? got_n : 0,
             (size_t)numel * sizeof(float));
        return;
    }
    int shown = 0;
    double worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < numel; i++) {
        double a = (double)got[i], b = (double)((const float *)want->data)[i];
        if ((isnan(a) && isnan(b)) || a == b)
            continue;
        double err = fabs(a - b) / (fabs(b) > 1 ? fabs(b) : 1);
        if (isnan(err))
            err = (double)INFINITY;
        if (err > worst) {
            worst = err;
            at = i;
        }
        if (err > 1e-5 && shown++ < 4)
            printf("%s    [%lld] got %.9g, expected %.9g\n", shown == 1 ? tfmt("FAIL %s:\n", id)
                                                                      : "", (long long)i, a, b);
    }
    if (shown) {
        printf("    max error %.3g (relative to max(1, |expected|)) at [%lld], tolerance 1e-5\n",
               worst, (long long)at);
        n_failed++;
    } else {
        n_passed++;
    }
}

// Emit g (planned), compile it with the harness, run it on d, compare with want[].
static void run_generated(const char *id_, const int64_t *sym_val, Data *d, const Tensor *want)
{
    if (!cc)
        return;
    char id[128];       // tfmt's ring is reused below
    snprintf(id, sizeof id, "%s", id_);
    ir_plan_memory(g);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CgOptions opt = {.command = "kiln build models/fuse.yaml", .isa = "scalar"};
    bool ok = cg_emit_model(g, &opt, f, &dg);
    fclose(f);
    if (!ok) {
        fail(id, "cg_emit_model failed");
        free(text);
        return;
    }
    write_file("model.c", text, len);
    write_file(tfmt("%s.c", id), text, len);   // kept with KILN_TEST_KEEP=1
    free(text);
    int rc = sh("rm -f harness && %s -std=gnu11 -O2 -march=native -fno-math-errno -Wall -Wextra "
                "-I. -I'%s/runtime' '%s/tests/unit/harness.c' -o harness -lm > cc.txt 2>&1", cc,
                src_root, src_root);
    size_t n;
    char *diag = read_file("cc.txt", &n);
    if (rc != 0 || (diag && diag[0])) {
        fail(id, "%s on the generated C %s:\n%s", cc, rc ? "failed" : "warned", diag ? diag : "");
        free(diag);
        return;
    }
    free(diag);
    Buf syms = {0};
    for (int s = 0; s < g->n_syms; s++)
        bprintf(&syms, "%s %lld\n", g->syms[s].name, (long long)sym_val[s]);
    write_file("syms.txt", bstr(&syms), syms.len);
    bfree(&syms);
    for (int k = 0; k < g->n_inputs; k++)
        write_file(tfmt("in.%s.bin", g->nodes[g->inputs[k]].name), d->in[k].data,
                   (size_t)tensor_numel(&d->in[k]) * 4);
    for (int i = 0; i < d->n_w; i++) {
        const Node *w = find(d->wname[i]);
        write_file(tfmt("w.%s.bin", d->wname[i]), d->wdata[i],
                   (size_t)type_numel_max(&w->type) * sizeof(float));
    }
    rc = sh("./harness > run.txt 2>&1");
    if (rc != 0) {
        char *msg = read_file("run.txt", &n);
        fail(id, "the harness exited %d:\n%s", rc, msg ? msg : "");
        free(msg);
        return;
    }
    for (int o = 0; o < g->n_outputs; o++) {
        float *got = read_file(tfmt("out.%s.bin", g->outputs[o].name), &n);
        compare(tfmt("%s.%s", id, g->outputs[o].name), &want[o], got, n);
        free(got);
    }
}

// Build the case twice (g0 as built, g fused), check the pass changed it as `changes` says,
// then hand over to the case's structural checks; finish() runs the value checks.
static Graph *g0;

static void start(const char *id, void (*build)(void), bool changes)
{
    g = graph_new("models/fuse.yaml");
    g->model_name = "fuse";
    diag_init(&dg);
    dg.quiet_source = true;
    build();
    g0 = g;
    g = graph_new("models/fuse.yaml");
    g->model_name = "fuse";
    build();
    if (diag_count(&dg))
        KILN_BUG("test %s: the graph does not build", id);
    bool changed = ir_fuse_elementwise(g);
    ir_verify(g, "fuse-elementwise");
    if (!ir_infer_shapes(g, &dg))
        KILN_BUG("test %s: shapes changed", id);
    check(tfmt("fuse.%s.changed", id), changed == changes,
          changes ? "the pass changed nothing" : "the pass changed the graph");
}

// The interpreter on g equals the interpreter on g0 bit for bit; the generated C of g
// equals it to float rounding.  Symbolic dims at sym_val.
static void finish(const char *id, const int64_t *sym_val)
{
    Data d;
    make_data(g0, sym_val, 5, &d);
    Tensor want[8], got[8];
    InterpEnv env = {d.in, find_weight, &d};
    if (!ir_interpret(g0, &env, want, stdout) || !ir_interpret(g, &env, got, stdout)) {
        fail(tfmt("fuse.%s.interp", id), "the interpreter failed");
    } else {
        bool same = true;
        for (int o = 0; o < g->n_outputs; o++)
            same &= tensor_numel(&want[o]) == tensor_numel(&got[o]) &&
                    memcmp(want[o].data, got[o].data, (size_t)tensor_numel(&got[o]) * 4) == 0;
        check(tfmt("fuse.%s.interp", id), same, "the fused graph interprets differently");
        run_generated(tfmt("fuse.%s.run", id), sym_val, &d, want);
        for (int o = 0; o < g->n_outputs; o++) {
            free(want[o].data);
            free(got[o].data);
        }
    }
    free_data(g0, &d);
    graph_free(g0);
    graph_free(g);
    g0 = g = NULL;
}

/* =======================================================================================
 * Cases
 * ======================================================================================= */

// x -> matmul w1 -> + b1 -> gelu -> matmul w2 (trans_b) -> + b2 -> x + (.): the MLP of a
// transformer block, over a symbolic seq.
static void build_mlp(void)
{
    sym("seq", 5);
    NodeId x = input("x", DT_F32, "seq, 8");
    NodeId w1 = weight("w1", "8, 16"), b1 = weight("b1", "16");
    NodeId w2 = weight("w2", "8, 16"), b2 = weight("b2", "8");
    Node mm = matmul_attr(false), tb = matmul_attr(true), gt = gelu_attr(true);
    NodeId fc = node_at(20, OP_MATMUL, "c_fc", &mm, 2, x, w1);
    NodeId fb = node_at(21, OP_ADD, "fc", NULL, 2, fc, b1);
    NodeId act = node_at(22, OP_GELU, "act", &gt, 1, fb);
    NodeId pr = node_at(23, OP_MATMUL, "c_proj", &tb, 2, act, w2);
    NodeId pb = node_at(24, OP_ADD, "proj", NULL, 2, pr, b2);
    output("y", node_at(25, OP_ADD, "res", NULL, 2, x, pb));
}

static void test_mlp(void)
{
    start("mlp", build_mlp, true);
    expect_fused("fuse.mlp.c_fc", "c_fc", "add gelu", "c_fc fc act");
    expect_fused("fuse.mlp.c_proj", "c_proj", "add add", "c_proj proj res");
    CHECK("fuse.mlp.gone", !find("fc") && !find("act") && !find("proj") && !find("res"));
    CHECK("fuse.mlp.kernels", kernels(g0) == 6 && kernels(g) == 2);
    const Node *p = find("c_proj");
    CHECK("fuse.mlp.output", g->outputs[0].node == p->id);
    // res = add(x, proj): x is the left operand; the bias is the right one.
    CHECK("fuse.mlp.left", !p->epi[0].operand_left && p->epi[1].operand_left &&
                               p->in[p->epi[1].operand_in] == graph_find(g, "x"));
    CHECK("fuse.mlp.origin_loc", p->origins[2].loc.line == 25 && p->loc.line == 23);
    CHECK("fuse.mlp.no_notes", g->n_notes == 0);
    finish("mlp", (const int64_t[]){5});
}

// h is read by two nodes: its bias add cannot fuse.  The relu reading h can't either; the
// final add fuses into the relu (an element-wise anchor), its other operand on the left.
static void build_readers(void)
{
    NodeId x = input("x", DT_F32, "4, 8");
    NodeId w = weight("w", "8, 8"), b = weight("b", "8");
    Node mm = matmul_attr(false);
    NodeId h = node_at(30, OP_MATMUL, "h", &mm, 2, x, w);
    NodeId hb = node_at(31, OP_ADD, "hb", NULL, 2, h, b);
    NodeId r = node_at(32, OP_RELU, "r", NULL, 1, h);
    output("y", node_at(33, OP_ADD, "sum", NULL, 2, hb, r));
}

static void test_readers(void)
{
    start("readers", build_readers, true);
    CHECK("fuse.readers.kept", find("hb") && find("h") && find("h")->n_epi == 0);
    expect_note("fuse.readers.note", "not fused: add 'hb' into matmul 'h': 'h' has 2 readers");
    expect_note("fuse.readers.note_relu", "not fused: relu 'r' into matmul 'h': 'h' has 2 readers");
    expect_fused("fuse.readers.relu", "r", "add", "r sum");
    const Node *r = find("r");
    CHECK("fuse.readers.left", r->epi[0].operand_left);
    finish("readers", NULL);
}

// e = p + t where t (a transpose: no epilogue) is computed after p: fusing e into p would
// need t before p.  Not done.
static void build_order(void)
{
    NodeId x = input("x", DT_F32, "4, 8"), y = input("y", DT_F32, "8, 4");
    NodeId w = weight("w", "8, 8");
    Node mm = matmul_attr(false), tr = {0};
    tr.attr.transpose.perm[0] = 1;
    NodeId p = node_at(40, OP_MATMUL, "p", &mm, 2, x, w);
    NodeId t = node_at(41, OP_TRANSPOSE, "t", &tr, 1, y);
    output("e", node_at(42, OP_ADD, "e", NULL, 2, p, t));
}

static void test_order(void)
{
    start("order", build_order, false);
    CHECK("fuse.order.kept", find("e") && find("p")->n_epi == 0);
    expect_note("fuse.order.note", "not fused: add 'e' into matmul 'p': operand 't' is computed "
                                   "after 'p' (fusing would reorder them)");
    expect_note("fuse.order.note_t", "not fused: add 'e' into transpose 't': the transpose kernel "
                                      "applies no epilogue");
    finish("order", NULL);
}

// Operands that broadcast in a form the kernels do not index: [2, 1, 4] into [2, 3, 4]
// (a middle axis) and [3, 1] (a column).  A [4] vector and a [1, 1, 4] one do fuse.
static void build_forms(void)
{
    NodeId x = input("x", DT_F32, "2, 3, 4");
    NodeId mid = input("mid", DT_F32, "2, 1, 4"), colv = input("colv", DT_F32, "3, 1");
    NodeId w = weight("w", "4, 4"), w2 = weight("w2", "4, 4"), w3 = weight("w3", "4, 4");
    NodeId v = weight("v", "4"), v3 = weight("v3", "1, 1, 4");
    Node mm = matmul_attr(false);
    NodeId p = node_at(50, OP_MATMUL, "p", &mm, 2, x, w);
    output("a", node_at(51, OP_ADD, "a", NULL, 2, p, mid));
    NodeId q = node_at(52, OP_MATMUL, "q", &mm, 2, x, w2);
    output("b", node_at(53, OP_MUL, "b", NULL, 2, q, colv));
    NodeId s = node_at(54, OP_MATMUL, "s", &mm, 2, x, w3);
    NodeId sv = node_at(55, OP_SUB, "sv", NULL, 2, s, v);
    output("c", node_at(56, OP_DIV, "c", NULL, 2, v3, sv));
}

static void test_forms(void)
{
    start("forms", build_forms, true);
    CHECK("fuse.forms.kept", find("a") && find("b") && find("p")->n_epi == 0);
    expect_note("fuse.forms.mid", "not fused: add 'a' into matmul 'p': operand 'mid' "
                                  "f32[2, 1, 4] broadcasts into f32[2, 3, 4], not as the same "
                                  "shape, a last-axis vector or a scalar");
    expect_note("fuse.forms.col", "operand 'colv' f32[3, 1] broadcasts into f32[2, 3, 4]");
    expect_note("fuse.forms.input", "not fused: add 'a' into input 'mid': 'mid' is a model input");
    expect_fused("fuse.forms.vectors", "s", "sub div", "s sv c");
    CHECK("fuse.forms.form", ir_epi_form(&find("v3")->type, &find("s")->type) == EPI_ROW &&
                                 ir_epi_form(&find("v")->type, &find("s")->type) == EPI_ROW);
    finish("forms", NULL);
}

// The anchors other than matmul, each with operands of every form: layer_norm (* a scalar
// constant declared after it, which moves up; then c - v with a vector constant), softmax
// (/ a scalar, tanh), gather (scale by a double, relu, + same shape), causal_mask (gelu erf),
// a batched matmul (+ row vector, * same shape), a dot-product matmul (trans_b, scale by a
// float, then x - v), and a matrix-vector matmul whose epilogue needs the column from the
// flat index.
static void build_anchors(void)
{
    sym("seq", 6);
    NodeId x = input("x", DT_F32, "seq, 8"), ids = input("ids", DT_I32, "seq");
    NodeId gam = weight("gamma", "8"), bet = weight("beta", "8"), table = weight("table", "5, 8");
    Node ln = {0};
    ln.attr.layer_norm.eps = 1e-5;
    NodeId l = node_at(60, OP_LAYER_NORM, "ln", &ln, 3, x, gam, bet);
    NodeId two = constant("two", "", (const float[]){2.0f});
    NodeId lm = node_at(61, OP_MUL, "ln2", NULL, 2, l, two);
    NodeId cv = constant("cv", "8", (const float[]){1, 2, 3, 4, 5, 6, 7, 8});
    output("ln", node_at(62, OP_SUB, "lnc", NULL, 2, cv, lm));

    NodeId sm = node_at(63, OP_SOFTMAX, "sm", NULL, 1, x);
    NodeId three = constant("three", "1", (const float[]){3.0f});
    NodeId sd = node_at(64, OP_DIV, "sd", NULL, 2, sm, three);
    output("sm", node_at(65, OP_TANH, "st", NULL, 1, sd));

    NodeId ga = node_at(66, OP_GATHER, "ga", NULL, 2, table, ids);
    Node tenth = scale_attr(0.1);
    NodeId gs = node_at(67, OP_SCALE, "gs", &tenth, 1, ga);
    NodeId gr = node_at(68, OP_RELU, "gr", NULL, 1, gs);
    output("ga", node_at(69, OP_ADD, "gx", NULL, 2, gr, x));

    NodeId sq = input("sq", DT_F32, "2, seq, seq");
    NodeId cm = node_at(70, OP_CAUSAL_MASK, "cm", NULL, 1, sq);
    Node erf = gelu_attr(false);
    output("cm", node_at(71, OP_GELU, "cg", &erf, 1, cm));

    NodeId a = input("a", DT_F32, "2, seq, 4"), b = input("b", DT_F32, "2, 4, 3");
    NodeId bias = weight("bias", "3"), same = input("same", DT_F32, "2, seq, 3");
    Node mm = matmul_attr(false), tb = matmul_attr(true);
    NodeId bm = node_at(72, OP_MATMUL, "bm", &mm, 2, a, b);
    NodeId bb = node_at(73, OP_ADD, "bb", NULL, 2, bm, bias);
    output("bm", node_at(74, OP_MUL, "bs", NULL, 2, bb, same));

    NodeId wt = weight("wt", "3, 8");
    NodeId dm = node_at(75, OP_MATMUL, "dm", &tb, 2, x, wt);
    Node eighth = scale_attr(0.125);
    NodeId ds = node_at(76, OP_SCALE, "ds", &eighth, 1, dm);
    NodeId ones = input("ones", DT_F32, "seq, 3");
    output("dm", node_at(77, OP_SUB, "dx", NULL, 2, ones, ds));

    NodeId vec = weight("vec", "4"), rowv = input("rowv", DT_F32, "seq");
    NodeId mv = node_at(78, OP_MATMUL, "mv", &mm, 2, a, vec);       // [2, seq]
    output("mv", node_at(79, OP_ADD, "mvb", NULL, 2, mv, rowv));
}

static void test_anchors(void)
{
    start("anchors", build_anchors, true);
    expect_fused("fuse.anchors.ln", "ln", "mul sub", "ln ln2 lnc");
    const Node *l = find("ln"), *two = find("two");
    CHECK("fuse.anchors.moved_up", two && two->id < l->id && find("cv")->id < l->id);
    CHECK("fuse.anchors.sub_left", l->epi[1].operand_left);
    expect_fused("fuse.anchors.softmax", "sm", "div tanh", "sm sd st");
    expect_fused("fuse.anchors.gather", "ga", "scale relu add", "ga gs gr gx");
    expect_fused("fuse.anchors.mask", "cm", "gelu", "cm cg");
    expect_fused("fuse.anchors.batched", "bm", "add mul", "bm bb bs");
    expect_fused("fuse.anchors.dot", "dm", "scale sub", "dm ds dx");
    expect_fused("fuse.anchors.matvec", "mv", "add", "mv mvb");
    CHECK("fuse.anchors.kernels", kernels(g) == 7);
    finish("anchors", (const int64_t[]){6});
    // Again below the bound of seq.
    start("anchors_seq3", build_anchors, true);
    finish("anchors_seq3", (const int64_t[]){3});
}

// Outputs: a node that is a model output keeps its value (nothing fuses into it); a fused
// node that was an output makes its anchor the output.  add(p, p) reads p twice.
static void build_outputs(void)
{
    NodeId x = input("x", DT_F32, "4, 8");
    NodeId w = weight("w", "8, 8");
    Node mm = matmul_attr(false);
    NodeId p = node_at(80, OP_MATMUL, "p", &mm, 2, x, w);
    output("p", p);
    output("r", node_at(81, OP_RELU, "r", NULL, 1, p));
    NodeId q = node_at(82, OP_MATMUL, "q", &mm, 2, x, w);
    output("qq", node_at(83, OP_ADD, "qq", NULL, 2, q, q));
}

static void test_outputs(void)
{
    start("outputs", build_outputs, false);
    expect_note("fuse.outputs.output",
                "not fused: relu 'r' into matmul 'p': 'p' is a model output");
    expect_note("fuse.outputs.twice", "not fused: add 'qq': both operands are 'q'");
    finish("outputs", NULL);
}

// A chain of 40 element-wise ops: the first 32 fuse into the matmul, the 33rd starts a kernel
// of its own that takes the rest (the cap on epilogue steps keeps fusion linear).
static void build_long(void)
{
    NodeId x = input("x", DT_F32, "4, 8");
    NodeId w = weight("w", "8, 8");
    Node mm = matmul_attr(false), half = scale_attr(0.5);
    NodeId v = node_at(90, OP_MATMUL, "p", &mm, 2, x, w);
    for (int i = 0; i < 40; i++)
        v = node_at(91 + i, i % 2 ? OP_TANH : OP_SCALE, tfmt("s%d", i), &half, 1, v);
    output("y", v);
}

static void test_long(void)
{
    start("long", build_long, true);
    CHECK("fuse.long.steps", find("p")->n_epi == 32 && find("s32") && find("s32")->n_epi == 7);
    CHECK("fuse.long.kernels", kernels(g) == 2);
    expect_note("fuse.long.note", "not fused: scale 's32' into matmul 'p': 'p' already has 32 "
                                  "epilogue steps");
    finish("long", NULL);
}

// The emitted C: the operand parameters, the comment line, the statements.
static void test_emit_text(void)
{
    start("text", build_mlp, true);
    ir_plan_memory(g);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CgOptions opt = {.command = "kiln build models/fuse.yaml", .isa = "scalar"};
    bool ok = cg_emit_model(g, &opt, f, &dg);
    fclose(f);
    CHECK("fuse.text.emit", ok);
    if (ok) {
        CHECK("fuse.text.params", strstr(text, "static void k_c_fc(const float *restrict a, const "
                                               "float *restrict b, const float *restrict e1,"));
        CHECK("fuse.text.comment", strstr(text, " *   then    v + e1[col] -> gelu_tanh(v)\n"));
        CHECK("fuse.text.origins", strstr(text, " *           add  fc  fuse.yaml:21\n"));
        CHECK("fuse.text.bias", strstr(text, "v = v + e1[n];\n"));
        CHECK("fuse.text.residual", strstr(text, "v = e2[m * 8 + n] + v;\n"));
        CHECK("fuse.text.kernels", !strstr(text, "k_fc(") && !strstr(text, "k_act("));
    }
    free(text);
    graph_free(g0);
    graph_free(g);
}

// The vector form of cg_epilogue_apply, as text: binary steps through V_ADD and V_LOAD at the
// right index, lane-wise blocks for gelu and a double scale, V_MAX for relu.
static void test_vector_text(void)
{
    g = graph_new("models/fuse.yaml");
    diag_init(&dg);
    build_anchors();
    ir_fuse_elementwise(g);
    Cg cg = {.g = g, .d = &dg};
    const char *sym_var[] = {"seq"};
    cg.sym_var = sym_var;
    const char *names[] = {"gx", "bm"};
    const char *want[][3] = {
        {"float lane[V_LANES];", "lane[l] = (float)(lane[l] * 0.1);", "relu, then add"},
        {"v = V_ADD(v, V_LOAD(e1 + col));", "v = V_MUL(v, V_LOAD(e2 + flat));", NULL},
    };
    for (int c = 0; c < 2; c++) {
        Kernel k;
        memset(&k, 0, sizeof k);
        k.cg = &cg;
        NodeId id = graph_find(g, c == 0 ? "ga" : "bm");
        k.n = &g->nodes[id];
        for (int i = 0; i < k.n->n_in; i++)
            k.in[i] = &g->nodes[k.n->in[i]];
        cg_epilogue_begin(&k);
        if (c == 1) {   // bm: + bias (step 1), * same (step 2)
            const char *p[KILN_MAX_IN], *a[KILN_MAX_IN];
            int np = cg_epilogue_params(&k, p), na = cg_epilogue_args(&k, a);
            CHECK("fuse.vector.params", np == 2 && !strcmp(p[0], "const float *restrict e1") &&
                                            !strcmp(p[1], "const float *restrict e2"));
            CHECK("fuse.vector.args", na == 2 && !strcmp(a[0], "e1") && !strcmp(a[1], "e2"));
            CHECK("fuse.vector.uses",
                  cg_epilogue_uses(g, k.n) == (CG_EPI_FLAT | CG_EPI_COL) &&
                      cg_epilogue_uses(g, &g->nodes[graph_find(g, "sm")]) == 0);
        }
        cg_epilogue_apply(&k, "v", "flat", "col", true);
        for (int w = 0; w < 3 && want[c][w]; w++) {
            bool found = strstr(bstr(&k.body), want[c][w]) != NULL;
            // relu then add: two statements, not one expression
            if (c == 0 && w == 2)
                found = strstr(bstr(&k.body), "v = V_MAX(v, V_ZERO());\nv = V_ADD(v, "
                                              "V_LOAD(e3 + flat));") != NULL;
            check(tfmt("fuse.vector.%s.%d", names[c], w), found, want[c][w]);
            if (!found)
                printf("%s", bstr(&k.body));
        }
        bfree(&k.body);
        bfree(&k.notes);
    }
    arena_free(&cg.tmp);
    graph_free(g);
    g = NULL;
}

int main(void)
{
    snprintf(src_root, sizeof src_root, "%s", __FILE__);
    char *cut = strstr(src_root, "tests/unit/test_fuse.c");
    if (cut && cut != src_root)
        *cut = 0;
    else
        snprintf(src_root, sizeof src_root, ".");
    cc = getenv("KILN_CC") && *getenv("KILN_CC") ? getenv("KILN_CC") : "clang";
    char probe[256];
    snprintf(probe, sizeof probe, "command -v '%.*s' > /dev/null 2>&1", (int)strcspn(cc, " "), cc);
    snprintf(work, sizeof work, "%s/kiln_test_fuse.XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");  // $TMPDIR, else the usual place
    if (system(probe) != 0) {
        printf("test_fuse: %s not found; skipping the compile-and-run checks (*.run)\n", cc);
        cc = NULL;
    } else if (!mkdtemp(work)) {
        fail("fuse.setup", "cannot make a temporary folder");
        cc = NULL;
    }

    test_mlp();
    test_readers();
    test_order();
    test_forms();
    test_anchors();
    test_outputs();
    test_long();
    test_emit_text();
    test_vector_text();

    if (cc) {
        char rm[128];
        snprintf(rm, sizeof rm, "rm -rf '%s'", work);
        if (getenv("KILN_TEST_KEEP"))
            printf("test_fuse: the generated files are in %s\n", work);
        else if (system(rm) != 0)
            printf("test_fuse: could not remove %s\n", work);
    }
    printf("test_fuse: %d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
