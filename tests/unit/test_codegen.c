/* tests/unit/test_codegen.c: memory planning and the code generator.
 *
 * Three kinds of checks, on small graphs built with the IR constructors:
 *   plan.*     ir_plan_memory: reuse along a chain, outputs kept to the end, views aliasing
 *              their root, and for every graph here that no two values alive at the same
 *              time share a byte of the arena.
 *   emit.*     the generated text: kernel comments name the node, op and spec line, names
 *              are sanitized and unique, params and bounds become enums, only what forward()
 *              reads is emitted, and emitting twice gives the same bytes.
 *   run.*      the real check: the generated C is compiled by clang (-Wall -Wextra must be
 *              silent) together with tests/unit/harness.c, which plays the runtime, run on
 *              random inputs and weights, and compared with the reference interpreter (ir_interpret)
 *              element by element.  Symbolic dims are run at and below their bounds, and the
 *              run-time errors (gather ids, integer division by zero) are checked by message.
 *              Skipped, with a message, when clang is not installed ($KILN_CC overrides it).
 *
 *   build/tests/test_codegen     prints "test_codegen: N passed, M failed", exit 1 on failure
 *   KILN_TEST_KEEP=1 ...         keeps the temporary folder with the generated C files
 */
#include "cg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

// The generated text contains `part`.
static void expect_text(const char *id, const char *text, const char *part)
{
    if (text && strstr(text, part))
        n_passed++;
    else
        fail(id, "the generated C does not contain\n    %s", part);
}

static void expect_no_text(const char *id, const char *text, const char *part)
{
    if (text && !strstr(text, part))
        n_passed++;
    else
        fail(id, "the generated C contains\n    %s", part);
}

/* =======================================================================================
 * Building graphs
 * ======================================================================================= */

static Graph *g;
static Diag dg;
static const SrcLoc here = {"models/test.yaml", 3, 7};

static SrcLoc line(int n) { return (SrcLoc){"models/test.yaml", n, 5}; }

static void begin(void)
{
    g = graph_new("models/test.yaml");
    g->model_name = "test";
    diag_init(&dg);
    dg.quiet_source = true;
}

static void end(void)
{
    graph_free(g);
    g = NULL;
}

static int sym(const char *name, int64_t max) { return graph_add_sym(g, name, max, here); }

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
    NodeId id = graph_add_source(g, &dg, OP_INPUT, name, here, ty(dt, shape), &a);
    VEC_PUSH(g->inputs, g->n_inputs, g->cap_inputs, id);
    return id;
}

static NodeId weight(const char *name, const char *tensor, const char *shape)
{
    Node a = {0};
    a.attr.weight.tensor = tensor;
    return graph_add_source(g, &dg, OP_WEIGHT, name, here, ty(DT_F32, shape), &a);
}

static NodeId constant(const char *name, DType dt, const char *shape, const void *values)
{
    Type t = ty(dt, shape);
    size_t bytes = (size_t)type_numel_max(&t) * dtype_size(dt);
    Node a = {0};
    a.attr.constant.data = arena_alloc(&g->arena, bytes);
    memcpy(a.attr.constant.data, values, bytes);
    return graph_add_source(g, &dg, OP_CONST, name, here, t, &a);
}

static NodeId arange(const char *name, const char *shape, int64_t start)
{
    Node a = {0};
    a.attr.arange.start = start;
    return graph_add_source(g, &dg, OP_ARANGE, name, here, ty(DT_I32, shape), &a);
}

// A node of op `op` with inputs in[0..n_in) and attributes from `a` (may be NULL), placed at
// spec line `ln`.
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

#define node(...) node_at(10, __VA_ARGS__)

static Node matmul_attr(bool ta, bool tb)
{
    Node a = {0};
    a.attr.matmul.trans_a = ta;
    a.attr.matmul.trans_b = tb;
    return a;
}

static NodeId reshape(const char *name, NodeId x, const char *shape)
{
    Node a = {0};
    Type t = ty(DT_F32, shape);
    a.attr.reshape.rank = t.rank;
    memcpy(a.attr.reshape.dim, t.dim, sizeof t.dim);
    return node(OP_RESHAPE, name, &a, 1, x);
}

static NodeId transpose(const char *name, NodeId x, int p0, int p1, int p2, int p3)
{
    Node a = {0};
    int p[4] = {p0, p1, p2, p3};
    memcpy(a.attr.transpose.perm, p, sizeof p);
    return node(OP_TRANSPOSE, name, &a, 1, x);
}

static NodeId slice(const char *name, NodeId x, int axis, int64_t start, int64_t end)
{
    Node a = {0};
    a.attr.slice.axis = axis;
    a.attr.slice.start = start;
    a.attr.slice.end = end;
    return node(OP_SLICE, name, &a, 1, x);
}

static void output(const char *name, NodeId id)
{
    Output o = {name, id, here};
    VEC_PUSH(g->outputs, g->n_outputs, g->cap_outputs, o);
}

static void param(const char *name, double value, bool overridden)
{
    Param p = {name, value, overridden};
    VEC_PUSH(g->params, g->n_params, g->cap_params, p);
}

/* =======================================================================================
 * Plan checks
 * ======================================================================================= */

static int64_t padded(const Node *n)
{
    int64_t b = type_numel_max(&n->type) * (int64_t)dtype_size(n->type.dtype);
    return (b + 63) / 64 * 64;
}

// Computed values that live in the arena: not sources, views or outputs' own buffers.
static bool in_arena(const Node *n)
{
    return n->op != OP_INPUT && n->op != OP_WEIGHT && n->op != OP_CONST && n->op != OP_RESHAPE &&
           n->output < 0;
}

// The plan's invariants: arena values are 64-byte aligned inside the arena, everything else
// is at -1, and two values alive at the same time (value i from its node to its last reader,
// readers of views counting for their root, outputs to the end) never overlap.  A value in
// an output's buffer is the first output that names it (through views).
static void check_plan(const char *id)
{
    int n = g->n_nodes;
    int *last = calloc((size_t)n, sizeof *last);
    for (int i = 0; i < n; i++)
        last[i] = i;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++) {
            NodeId r = ir_storage_root(g, g->nodes[i].in[k]);
            if (last[r] < i)
                last[r] = i;
        }
    for (int o = 0; o < g->n_outputs; o++)
        last[ir_storage_root(g, g->outputs[o].node)] = n;
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        const Node *a = &g->nodes[i];
        if (a->output >= 0) {
            int first = -1;
            for (int o = g->n_outputs - 1; o >= 0; o--)
                if (ir_storage_root(g, g->outputs[o].node) == i)
                    first = o;
            if (a->output != first)
                fail(id, "'%s' is in output %d's buffer, expected %d", a->name, a->output,
                     first), ok = false;
        }
        if (!in_arena(a)) {
            if (a->offset != -1)
                fail(id, "'%s' (%s) is at offset %lld, expected -1", a->name, op_name(a->op),
                     (long long)a->offset), ok = false;
            continue;
        }
        if (a->offset < 0 || a->offset % 64 || a->offset + padded(a) > g->arena_bytes) {
            fail(id, "'%s' at offset %lld (+%lld) in an arena of %lld", a->name,
                 (long long)a->offset, (long long)padded(a), (long long)g->arena_bytes);
            ok = false;
        }
        for (int j = i + 1; j < n && ok; j++) {
            const Node *b = &g->nodes[j];
            if (!in_arena(b) || last[i] < j)
                continue;
            if (a->offset < b->offset + padded(b) && b->offset < a->offset + padded(a)) {
                fail(id, "'%s' [%lld, +%lld) and '%s' [%lld, +%lld) overlap while both alive",
                     a->name, (long long)a->offset, (long long)padded(a), b->name,
                     (long long)b->offset, (long long)padded(b));
                ok = false;
            }
        }
    }
    if (ok)
        n_passed++;
    free(last);
}

/* =======================================================================================
 * Emitting
 * ======================================================================================= */

// Plan and emit g; returns the C text (malloc'd) or NULL after failing `id`.
static const char *emit_command = "kiln build models/test.yaml -D d=4";

static char *emit(const char *id, const char *isa)
{
    ir_plan_memory(g);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CgOptions opt = {.command = emit_command, .isa = isa};
    bool ok = cg_emit_model(g, &opt, f, &dg);
    fclose(f);
    if (!ok) {
        fail(id, "cg_emit_model failed");
        free(text);
        return NULL;
    }
    return text;
}

/* =======================================================================================
 * Graphs shared by the plan, emit and run tests
 * ======================================================================================= */

// An MLP block over a symbolic batch: layer_norm, a linear layer (trans_b), bias, gelu, a
// second linear layer, residual, softmax.  Params as a spec would declare them.
static void build_mlp(void)
{
    param("d_model", 8, false);
    param("d_hidden", 16, true);
    param("gamma", 3, false);       // a name <math.h> declares: not in the enum
    param("ratio", 0.5, false);     // not a whole number: header only
    sym("batch", 5);
    NodeId x = input("x", DT_F32, "batch, 8");
    NodeId lw = weight("ln.weight", "ln.weight", "8"), lb = weight("ln.bias", "ln.bias", "8");
    NodeId w1 = weight("fc1.weight", "fc1.weight", "16, 8");
    NodeId b1 = weight("fc1.bias", "fc1.bias", "16");
    NodeId w2 = weight("fc2.weight", "fc2.weight", "8, 16");
    Node ln = {0};
    ln.attr.layer_norm.eps = 1e-5;
    NodeId h = node_at(20, OP_LAYER_NORM, "ln", &ln, 3, x, lw, lb);
    Node tb = matmul_attr(false, true);
    NodeId fc1 = node_at(21, OP_MATMUL, "fc1", &tb, 2, h, w1);
    NodeId hb = node_at(22, OP_ADD, "fc1.b", NULL, 2, fc1, b1);
    NodeId act = node_at(23, OP_GELU, "act", NULL, 1, hb);
    NodeId fc2 = node_at(24, OP_MATMUL, "fc2", &tb, 2, act, w2);
    NodeId res = node_at(25, OP_ADD, "res", NULL, 2, x, fc2);
    NodeId p = node_at(26, OP_SOFTMAX, "probs", NULL, 1, res);
    output("probs", p);
    output("hidden", res);
}

// Attention over a symbolic seq: one projection to q, k, v (slices), heads by reshape and
// transpose, q k^T scaled, causally masked, softmaxed, times v, heads merged, concatenated
// with the input.  Layer names as a repeat block gives them.
static void build_attention(void)
{
    param("n_head", 2, false);
    sym("seq", 6);
    NodeId x = input("x", DT_F32, "seq, 8");
    NodeId w = weight("h.0.attn.w", "h.0.attn.w", "8, 24");
    NodeId qkv = node_at(30, OP_MATMUL, "h.0.attn.qkv", NULL, 2, x, w);
    NodeId q = slice("h.0.attn.q", qkv, 1, 0, 8);
    NodeId k = slice("h.0.attn.k", qkv, 1, 8, 16);
    NodeId v = slice("h.0.attn.v", qkv, 1, 16, 24);
    NodeId qh = reshape("h.0.attn.qh", q, "seq, 2, 4");
    NodeId kh = reshape("h.0.attn.kh", k, "seq, 2, 4");
    NodeId vh = reshape("h.0.attn.vh", v, "seq, 2, 4");
    Node t3 = {0};
    int perm[3] = {1, 0, 2};
    memcpy(t3.attr.transpose.perm, perm, sizeof perm);
    NodeId qt = node(OP_TRANSPOSE, "h.0.attn.qt", &t3, 1, qh);
    NodeId kt = node(OP_TRANSPOSE, "h.0.attn.kt", &t3, 1, kh);
    NodeId vt = node(OP_TRANSPOSE, "h.0.attn.vt", &t3, 1, vh);
    Node tb = matmul_attr(false, true);
    NodeId qk = node_at(31, OP_MATMUL, "h.0.attn.qk", &tb, 2, qt, kt);
    Node sc = {0};
    sc.attr.scale.by = 1 / sqrt(4.0);
    NodeId s = node_at(32, OP_SCALE, "h.0.attn.scale", &sc, 1, qk);
    NodeId m = node_at(33, OP_CAUSAL_MASK, "h.0.attn.mask", NULL, 1, s);
    NodeId p = node_at(34, OP_SOFTMAX, "h.0.attn.p", NULL, 1, m);
    NodeId ctx = node_at(35, OP_MATMUL, "h.0.attn.ctx", NULL, 2, p, vt);
    NodeId ct = node(OP_TRANSPOSE, "h.0.attn.ctx_t", &t3, 1, ctx);
    NodeId merged = reshape("h.0.attn.merged", ct, "seq, 8");
    Node cat = {0};
    cat.attr.concat.axis = 1;
    NodeId both = node_at(36, OP_CONCAT, "h.1.cat", &cat, 2, x, merged);
    Node gt = {0};
    gt.attr.gelu.tanh = true;
    NodeId gl = node(OP_GELU, "h.1.gelu", &gt, 1, both);
    NodeId th = node(OP_TANH, "h.1.tanh", NULL, 1, gl);
    NodeId rl = node(OP_RELU, "h.1.relu", NULL, 1, both);
    NodeId d = node(OP_SUB, "h.1.d", NULL, 2, th, rl);
    NodeId one = constant("one", DT_F32, "16", (const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                               11, 12, 13, 14, 15, 16});
    NodeId dv = node(OP_DIV, "h.1.dv", NULL, 2, d, one);
    NodeId mu = node(OP_MUL, "out", NULL, 2, dv, both);
    output("y", mu);
    output("probs", p);
}

// Integers: gather of token and position embeddings (arange), with a tied table; cast,
// wrapping i32 arithmetic and i32 division with broadcasting.
static void build_embed(void)
{
    sym("seq", 7);
    NodeId ids = input("ids", DT_I32, "seq");
    NodeId den = input("den", DT_I32, "3, 1");
    NodeId wte = weight("wte", "wte.weight", "10, 4");
    NodeId wte2 = weight("lm_head", "wte.weight", "10, 4");     // tied: same tensor
    NodeId wpe = weight("wpe", "wpe.weight", "7, 4");
    NodeId pos = arange("pos", "seq", 0);
    NodeId te = node_at(40, OP_GATHER, "emb", NULL, 2, wte, ids);
    NodeId pe = node_at(41, OP_GATHER, "pos_emb", NULL, 2, wpe, pos);
    NodeId e = node(OP_ADD, "embed", NULL, 2, te, pe);
    Node tb = matmul_attr(false, true);
    output("logits", node(OP_MATMUL, "logits", &tb, 2, e, wte2));
    Node c = {0};
    c.attr.cast.to = DT_F32;
    NodeId fi = node(OP_CAST, "ids_f", &c, 1, ids);
    Node sc = {0};
    sc.attr.scale.by = 0.1;     // not a float: computed in double
    output("scaled", node(OP_SCALE, "ids_scaled", &sc, 1, fi));
    NodeId big = constant("big", DT_I32, "", (const int32_t[]){2147483647});
    NodeId wrap = node(OP_ADD, "wrap", NULL, 2, ids, big);
    NodeId prod = node(OP_MUL, "prod", NULL, 2, wrap, ids);
    output("prod", prod);
    output("quot", node_at(42, OP_DIV, "quot", NULL, 2, ids, den));
    Node ci = {0};
    ci.attr.cast.to = DT_I32;
    Node half = {0};
    half.attr.scale.by = 2.5;   // a float: computed in float
    output("back", node(OP_CAST, "back", &ci, 1, node(OP_SCALE, "x2.5", &half, 1, fi)));
}

// Batched matmuls: broadcasting batch dims, trans_a, vectors on either side.
static void build_matmuls(void)
{
    NodeId a = input("a", DT_F32, "2, 1, 3, 4");
    NodeId b = input("b", DT_F32, "5, 4, 2");
    NodeId at = input("at", DT_F32, "5, 4, 3");      // [.., K, M] for trans_a
    NodeId v = input("v", DT_F32, "4");
    NodeId bt = input("bt", DT_F32, "2, 4");         // [N, K] for trans_b
    Node ta = matmul_attr(true, false), tab = matmul_attr(true, true);
    Node tb = matmul_attr(false, true);
    output("ab", node(OP_MATMUL, "ab", NULL, 2, a, b));                 // [2, 5, 3, 2]
    output("atb", node(OP_MATMUL, "atb", &ta, 2, at, b));               // [5, 3, 2]
    output("atbt", node(OP_MATMUL, "atbt", &tab, 2, at, bt));           // [5, 3, 2]
    output("av", node(OP_MATMUL, "av", NULL, 2, a, v));                 // [2, 1, 3]
    output("vb", node(OP_MATMUL, "vb", NULL, 2, v, b));                 // [5, 2]
    output("abt", node(OP_MATMUL, "abt", &tb, 2, a, bt));               // [2, 1, 3, 2]
    output("vv", node(OP_MATMUL, "vv", NULL, 2, v, v));                 // []
    NodeId p = transpose("perm", a, 3, 0, 2, 1);                        // [4, 2, 3, 1]
    output("perm", p);
    // Copied outputs: an input, and a second output of a value (through a view).
    output("a_out", a);
    output("ab_flat", reshape("ab_flat", g->outputs[0].node, "60"));
}

/* =======================================================================================
 * plan.*
 * ======================================================================================= */

// x -> a -> b -> c -> d: c reuses a's space, d (the output) is computed into the output's
// buffer; two buffers.
static void test_plan_chain(void)
{
    begin();
    NodeId x = input("x", DT_F32, "16");
    NodeId a = node(OP_RELU, "a", NULL, 1, x);
    NodeId b = node(OP_TANH, "b", NULL, 1, a);
    NodeId c = node(OP_RELU, "c", NULL, 1, b);
    NodeId d = node(OP_TANH, "d", NULL, 1, c);
    output("d", d);
    CHECK("plan.chain.changed", ir_plan_memory(g));
    Node *n = g->nodes;
    CHECK("plan.chain.input", n[x].offset == -1);
    CHECK("plan.chain.a_b_apart", n[a].offset != n[b].offset);
    CHECK("plan.chain.c_reuses_a", n[c].offset == n[a].offset);
    CHECK("plan.chain.d_in_output", n[d].output == 0 && n[d].offset == -1);
    CHECK("plan.chain.arena", g->arena_bytes == 128);
    CHECK("plan.chain.buffers", g->n_buffers == 2);
    check_plan("plan.chain.invariants");
    end();
}

// Outputs are computed into their own buffers, so everything else reuses the arena; an
// output that is an input stays at -1, and a second output of a value (here through a view)
// is copied from the first's buffer.
static void test_plan_outputs(void)
{
    begin();
    NodeId x = input("x", DT_F32, "16");
    NodeId a = node(OP_RELU, "a", NULL, 1, x);
    output("a", a);
    NodeId b = node(OP_TANH, "b", NULL, 1, a);
    NodeId c = node(OP_RELU, "c", NULL, 1, b);
    NodeId d = node(OP_TANH, "d", NULL, 1, c);
    output("d", d);
    output("x", x);
    output("a2", reshape("a2", a, "4, 4"));
    ir_plan_memory(g);
    Node *n = g->nodes;
    CHECK("plan.outputs.direct", n[a].output == 0 && n[d].output == 1 && n[a].offset == -1 &&
                                     n[d].offset == -1);
    CHECK("plan.outputs.input", n[x].output == -1 && n[x].offset == -1);
    CHECK("plan.outputs.arena", g->arena_bytes == 128);
    check_plan("plan.outputs.invariants");
    end();
}

// A reshape is a view: offset -1, its root is what it reshapes (through chains of views,
// down to an input), and its readers keep the root alive.
static void test_plan_views(void)
{
    begin();
    NodeId x = input("x", DT_F32, "4, 4");
    NodeId xv = reshape("xv", x, "16");
    NodeId a = node(OP_RELU, "a", NULL, 1, x);
    NodeId av = reshape("av", a, "16");
    NodeId avv = reshape("avv", av, "2, 8");
    NodeId b = node(OP_TANH, "b", NULL, 1, xv);
    NodeId c = node(OP_RELU, "c", NULL, 1, b);
    NodeId d = node(OP_TANH, "d", NULL, 1, c);
    NodeId e = node(OP_ADD, "e", NULL, 2, d, reshape("dv", avv, "16"));
    output("e", e);
    output("view", avv);
    ir_plan_memory(g);
    Node *n = g->nodes;
    CHECK("plan.views.offset", n[xv].offset == -1 && n[av].offset == -1 && n[avv].offset == -1);
    CHECK("plan.views.root_input", ir_storage_root(g, xv) == x);
    CHECK("plan.views.root_chain", ir_storage_root(g, avv) == a && ir_storage_root(g, a) == a);
    CHECK("plan.views.alive", n[c].offset != n[a].offset && n[d].offset != n[a].offset);
    check_plan("plan.views.invariants");
    end();
}

// Symbolic dims are planned at their bounds; the larger models keep the invariants.
static void test_plan_models(void)
{
    begin();
    build_mlp();
    ir_plan_memory(g);
    check_plan("plan.mlp.invariants");
    // x [batch <= 5, 8] f32: 160 bytes, padded to 192
    CHECK("plan.mlp.bound", g->nodes[graph_find(g, "ln")].offset >= 0 && g->arena_bytes >= 3 * 192);
    end();
    begin();
    build_attention();
    ir_plan_memory(g);
    check_plan("plan.attention.invariants");
    end();
    begin();
    build_embed();
    ir_plan_memory(g);
    check_plan("plan.embed.invariants");
    end();
}

/* =======================================================================================
 * emit.*
 * ======================================================================================= */

// Lines of the generated C stay within 100 columns: // comments break at spaces, a long
// command line in the header continues with " \\" and keeps an option with its value.
static void test_emit_wrapping(void)
{
    Buf b = {.indent = 1};
    bline_comment(&b, "%s", "k_a_rather_long_kernel_name_vec_epilogue: the epilogue of "
                            "k_a_rather_long_kernel_name (see its comment) on one vector");
    CHECK("wrap.comment", !strcmp(bstr(&b),
                                  "    // k_a_rather_long_kernel_name_vec_epilogue: the epilogue of "
                                  "k_a_rather_long_kernel_name (see\n"
                                  "    // its comment) on one vector\n"));
    bfree(&b);
    // A word longer than the line gets a line of its own; control characters and a
    // backslash, which would end the comment line or continue it, become '?'.
    char word[120];
    memset(word, 'w', sizeof word - 1);
    word[sizeof word - 1] = 0;
    bline_comment(&b, "a %s b\nc\\", word);
    CHECK("wrap.comment.long_word", !strncmp(bstr(&b), "// a\n// www", 11) &&
                                        strstr(bstr(&b), "www\n// b?c?\n") != NULL);
    bfree(&b);

    begin();
    build_attention();
    emit_command = "kiln build models/test.yaml -D n_layer=12 -D n_head=12 -D n_embd=768 "
                   "-D vocab_size=50257 -D n_positions=1024 -D max_batch=1 --emit-c out.c -o out";
    char *c = emit("wrap.emit", "scalar");
    emit_command = "kiln build models/test.yaml -D d=4";
    if (!c) {
        end();
        return;
    }
    expect_text("wrap.command", c, " *   kiln build models/test.yaml -D n_layer=12 -D n_head=12 "
                                   "-D n_embd=768 -D vocab_size=50257 \\\n"
                                   " *       -D n_positions=1024 -D max_batch=1 --emit-c out.c -o "
                                   "out\n");
    int longest = 0;
    for (const char *p = c; *p;) {
        const char *e = strchr(p, '\n');
        int n = e ? (int)(e - p) : (int)strlen(p);
        longest = n > longest ? n : longest;
        p += n + (e != NULL);
    }
    CHECK("wrap.columns", longest <= 100);
    free(c);
    end();
}

static void test_emit_structure(void)
{
    begin();
    build_attention();
    char *c = emit("emit.attention", "scalar");
    if (!c) {
        end();
        return;
    }
    expect_text("emit.header", c, "/* test.c: generated by kiln " KILN_VERSION
                                  " from models/test.yaml; do not edit, regenerate with\n"
                                  " *   kiln build models/test.yaml -D d=4\n");
    expect_text("emit.include", c, "\n#include \"kiln_rt.h\"\n");
    expect_text("emit.enum.params", c, "enum { n_head = 2 };");
    expect_text("emit.enum.bounds", c, "enum { seq_MAX = 6 };");
    expect_text("emit.kernel.name", c, "static void k_h_0_attn_qk(");
    expect_text("emit.kernel.comment", c, "/* k_h_0_attn_qk\n *   %");
    expect_text("emit.kernel.spec_line", c, "matmul  h.0.attn.qk  test.yaml:31  (trans_b)");
    expect_text("emit.kernel.attr.scale", c, "scale  h.0.attn.scale  test.yaml:32  (x 0.5)");
    expect_text("emit.kernel.shapes", c, "f32[2, seq, 4]");
    expect_text("emit.kernel.view", c, "(a view of h.0.attn.q)");
    expect_text("emit.kernel.place", c, "at arena + 0x");
    expect_text("emit.kernel.sym_arg", c, "int64_t seq)");
    expect_text("emit.forward.sym", c, "const int64_t seq = r->sym[0];");
    expect_text("emit.forward.layer", c, "\n    /* h.0 */\n");
    expect_text("emit.forward.layer2", c, "\n    /* h.1 */\n");
    expect_text("emit.forward.output", c, "float *b_out = r->outputs[0];");
    expect_no_text("emit.forward.no_copy", c, "memcpy(r->outputs[0]");
    expect_text("emit.const", c, "static const float c_one[16] = {\n    1, 2, 3,");
    expect_text("emit.model.syms", c, "{\"seq\", seq_MAX},");
    expect_text("emit.model.input", c, "{\"x\", KILN_F32, 2, {seq_MAX, 8}, {0, -1}},");
    expect_text("emit.model.weights", c, "{\"h.0.attn.w\", KILN_F32, 2, {8, 24}, {-1, -1}},");
    expect_text("emit.main", c, "return kiln_main(argc, argv, &model);");
    expect_no_text("emit.no_reshape_kernel", c, "k_h_0_attn_qh");
    // The three head transposes have the same kernel: one function, named without the layer
    // index, noinline, called once per node.
    expect_text("emit.share.name", c, "static __attribute__((noinline)) void k_h_attn_qt(");
    expect_text("emit.share.comment", c, "/* k_h_attn_qt  (3 nodes call it: the first is "
                                         "described here)\n *   %");
    expect_text("emit.share.callers", c, " *   also called for  h.0.attn.kt  test.yaml:10\n"
                                         " *                    h.0.attn.vt  test.yaml:10\n");
    expect_text("emit.share.call", c, "    k_h_attn_qt(r, b_h_0_attn_k, b_h_0_attn_kt, seq);\n");
    expect_no_text("emit.share.once", c, "void k_h_0_attn_kt(");

    // Deterministic: a second emit of the same graph gives the same bytes.
    char *again = emit("emit.again", "scalar");
    CHECK("emit.deterministic", again && strcmp(c, again) == 0);
    free(again);
    free(c);
    end();
}

// Names: sanitized, unique; param enum only for whole numbers under free names; a symbolic
// dim whose name a kernel uses for a local gets another variable name.
static void test_emit_names(void)
{
    begin();
    build_mlp();
    char *c = emit("emit.names", NULL);
    if (c) {
        expect_text("emit.names.enum", c, "enum { d_model = 8, d_hidden = 16 };");
        expect_text("emit.names.header_params", c, "d_hidden = 16 (-D), gamma = 3, ratio = 0.5");
        expect_text("emit.names.dot", c, "static void k_fc1_b(");
        expect_text("emit.names.ln", c, "layer_norm  ln  test.yaml:20  (eps 1e-05)");
        expect_text("emit.names.gelu", c, "gelu  act  test.yaml:23  (erf)");
        expect_text("emit.names.erff", c, "s_gelu_erf(");     // the prelude's, not libm's erff
        expect_no_text("emit.names.no_layers", c, "/* h.");
        free(c);
    }
    end();

    begin();
    sym("n", 4);
    NodeId x = input("in put", DT_F32, "n, 4");
    NodeId a = node(OP_RELU, "a.b", NULL, 1, x);
    NodeId b = node(OP_TANH, "a_b", NULL, 1, a);
    node(OP_TANH, "unused", NULL, 1, x);        // computed, read by nobody (no DCE here)
    constant("k", DT_F32, "4", (const float[]){1, 2, 3, 4});     // read by nobody: not emitted
    NodeId kk = constant("kk", DT_F32, "4", (const float[]){0.1f, -0.0f, INFINITY, 5e-8f});
    output("y", node(OP_ADD, "y", NULL, 2, b, reshape("kv", kk, "4")));
    c = emit("emit.names2", NULL);
    if (c) {
        expect_text("emit.names.unique1", c, "static void k_a_b(");
        expect_text("emit.names.unique2", c, "void k_a_b_2(");   // shared with 'unused': noinline
        expect_text("emit.names.input", c, "const float *in_in_put = r->inputs[0];");
        expect_text("emit.names.sym_local", c, "const int64_t n_2 = r->sym[0];");
        expect_text("emit.names.sym_bound", c, "{\"n\", n_MAX},");
        expect_text("emit.names.floats", c, "0.100000001, -0, INFINITY, 5.00000006e-08");
        expect_no_text("emit.names.unread_const", c, "c_k[");
        free(c);
    }
    // Not a supported ISA yet: an error, nothing written.
    FILE *devnull = fopen("/dev/null", "w");
    dg.out = devnull;
    CgOptions bad = {.command = "kiln", .isa = "avx9"};
    CHECK("emit.isa.unknown", !cg_emit_model(g, &bad, devnull, &dg) && diag_count(&dg) > 0);
    fclose(devnull);
    dg.out = stderr;
    end();
}

/* =======================================================================================
 * run.*: compile, run, compare with the interpreter
 * ======================================================================================= */

static char src_root[4096];     // the kiln source tree, for runtime/kiln_rt.h
static char work[512];           // a temporary folder
static const char *cc;          // NULL: no C compiler, run.* skipped

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

// Run a shell command in the work folder; its exit status.
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

static uint32_t rng_state = 12345;
static float rnd(void)      // uniform in [-1, 1)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

// Weight lookup for the interpreter over the weights the test generated.
typedef struct {
    const char *name[64];
    void *data[64];
    int n;
} Weights;

static const void *find_weight(void *ctx, const char *tensor, const Type *type)
{
    (void)type;
    Weights *w = ctx;
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->name[i], tensor) == 0)
            return w->data[i];
    return NULL;
}

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

// Compare the harness's output bytes with the interpreter's tensor: integers exactly, f32
// within 1e-5 * max(1, |want|) (float accumulation against the interpreter's double).  On a
// mismatch prints the first pairs, the largest error, its index and the tolerance.
static void compare(const char *id, const Tensor *want, const void *got, size_t got_n)
{
    int64_t numel = tensor_numel(want);
    size_t bytes = (size_t)numel * dtype_size(want->dtype);
    if (!got || got_n != bytes) {
        fail(id, "the output has %zu bytes, the interpreter's %zu", got ? got_n : 0, bytes);
        return;
    }
    if (want->dtype != DT_F32) {
        if (memcmp(got, want->data, bytes) == 0) {
            n_passed++;
        } else {
            for (int64_t i = 0; i < numel; i++)
                if (((const int32_t *)got)[i] != ((const int32_t *)want->data)[i]) {
                    fail(id, "[%lld] got %d, expected %d", (long long)i,
                         ((const int32_t *)got)[i], ((const int32_t *)want->data)[i]);
                    break;
                }
        }
        return;
    }
    double worst = 0;
    int64_t at = -1;
    int shown = 0;
    for (int64_t i = 0; i < numel; i++) {
        double a = (double)((const float *)got)[i], b = (double)((const float *)want->data)[i];
        if ((isnan(a) && isnan(b)) || a == b)
            continue;
        double err = fabs(a - b), tol = 1e-5 * (fabs(b) > 1 ? fabs(b) : 1);
        if (isnan(err))
            err = (double)INFINITY;
        if (err > tol && shown++ < 4)
            printf("%s    %s[%lld] got %.9g, expected %.9g\n", shown == 1 ? tfmt(
                       "FAIL %s:\n", id) : "", id, (long long)i, a, b);
        if (err / (tol / 1e-5) > worst) {
            worst = err / (tol / 1e-5);
            at = i;
        }
    }
    if (shown) {
        printf("    max error %.3g (relative to max(1, |expected|)) at [%lld], tolerance 1e-5\n",
               worst, (long long)at);
        n_failed++;
    } else {
        n_passed++;
    }
}

// Emit g and compile it with the harness into work/harness; -Wall -Wextra must be silent.
static bool compiled;
static void compile_case(const char *id)
{
    compiled = false;
    if (!cc)
        return;
    char *c = emit(id, "scalar");
    if (!c)
        return;
    write_file("model.c", c, strlen(c));
    write_file(tfmt("%s.c", id), c, strlen(c));     // kept with KILN_TEST_KEEP=1
    free(c);
    int rc = sh("rm -f harness && %s -std=gnu11 -O3 -march=native -fno-math-errno -Wall -Wextra "
                "-I. -I'%s/runtime' '%s/tests/unit/harness.c' -o harness -lm > cc.txt 2>&1", cc,
                src_root, src_root);
    size_t n;
    char *diag = read_file("cc.txt", &n);
    if (rc != 0 || (diag && diag[0]))
        fail(id, "%s on the generated C %s:\n%s", cc, rc ? "failed" : "warned", diag ? diag : "");
    else
        compiled = true, n_passed++;
    free(diag);
}

// Run the compiled harness with the symbolic dims at sym[] and compare every output with the
// interpreter's.  ids[k] gives the data of integer input k (others are random; integer
// inputs without data count 0, 1, 2, ...).  expect_fail: the run must fail with this message.
static void run_case(const char *id, const int64_t *sym_val, const int32_t *const *ids,
                     const char *expect_fail)
{
    if (!compiled)
        return;
    size_t n;
    // Inputs, weights and syms, written for the harness and kept for the interpreter.
    Buf syms = {0};
    for (int s = 0; s < g->n_syms; s++)
        bprintf(&syms, "%s %lld\n", g->syms[s].name, (long long)sym_val[s]);
    write_file("syms.txt", bstr(&syms), syms.len);
    bfree(&syms);
    Tensor in[16];
    for (int k = 0; k < g->n_inputs; k++) {
        const Node *nd = &g->nodes[g->inputs[k]];
        Tensor *t = &in[k];
        t->dtype = nd->type.dtype;
        t->rank = nd->type.rank;
        for (int d = 0; d < t->rank; d++)
            t->dim[d] = nd->type.dim[d].sym >= 0 ? sym_val[nd->type.dim[d].sym]
                                                  : nd->type.dim[d].size;
        int64_t numel = tensor_numel(t);
        size_t bytes = (size_t)numel * dtype_size(t->dtype);
        t->data = xmalloc(bytes + 1);
        for (int64_t i = 0; i < numel; i++) {
            if (t->dtype == DT_F32)
                ((float *)t->data)[i] = rnd();
            else
                ((int32_t *)t->data)[i] = ids && ids[k] ? ids[k][i] : (int32_t)i;
        }
        write_file(tfmt("in.%s.bin", nd->name), t->data, bytes);
    }
    Weights w = {.n = 0};
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *nd = &g->nodes[i];
        if (nd->op != OP_WEIGHT || find_weight(&w, nd->attr.weight.tensor, NULL))
            continue;
        int64_t numel = type_numel_max(&nd->type);
        float *data = xmalloc((size_t)numel * sizeof *data);
        for (int64_t j = 0; j < numel; j++)
            data[j] = rnd();
        w.name[w.n] = nd->attr.weight.tensor;
        w.data[w.n++] = data;
        write_file(tfmt("w.%s.bin", nd->attr.weight.tensor), data,
                   (size_t)numel * sizeof *data);
    }

    int rc = sh("./harness > run.txt 2>&1");
    char *msg = read_file("run.txt", &n);
    if (expect_fail) {
        if (rc == 3 && msg && strstr(msg, expect_fail))
            n_passed++;
        else
            fail(id, "expected the run to fail with\n    %s\ngot exit %d:\n%s", expect_fail, rc,
                 msg ? msg : "");
    } else if (rc != 0) {
        fail(id, "the harness exited %d:\n%s", rc, msg ? msg : "");
    } else {
        Tensor outs[16];
        InterpEnv env = {in, find_weight, &w};
        if (!ir_interpret(g, &env, outs, stdout)) {
            fail(id, "the interpreter failed");
        } else {
            for (int o = 0; o < g->n_outputs; o++) {
                const char *oid = tfmt("%s.%s", id, g->outputs[o].name);
                size_t got_n;
                char *got = read_file(tfmt("out.%s.bin", g->outputs[o].name), &got_n);
                compare(oid, &outs[o], got, got_n);
                free(got);
                free(outs[o].data);
            }
        }
    }
    free(msg);
    for (int k = 0; k < g->n_inputs; k++)
        free(in[k].data);
    for (int i = 0; i < w.n; i++)
        free(w.data[i]);
}

static void test_run_mlp(void)
{
    begin();
    build_mlp();
    compile_case("run.mlp.compile");
    run_case("run.mlp.batch5", (const int64_t[]){5}, NULL, NULL);
    run_case("run.mlp.batch2", (const int64_t[]){2}, NULL, NULL);
    end();
}

static void test_run_attention(void)
{
    begin();
    build_attention();
    compile_case("run.attention.compile");
    run_case("run.attention.seq6", (const int64_t[]){6}, NULL, NULL);
    run_case("run.attention.seq3", (const int64_t[]){3}, NULL, NULL);
    run_case("run.attention.seq1", (const int64_t[]){1}, NULL, NULL);
    end();
}

static void test_run_embed(void)
{
    begin();
    build_embed();
    const int32_t ids7[] = {3, 9, 0, 5, 2, 8, 1}, den[] = {2, -1, 3};
    compile_case("run.embed.compile");
    run_case("run.embed.seq7", (const int64_t[]){7}, (const int32_t *const[]){ids7, den}, NULL);
    run_case("run.embed.seq4", (const int64_t[]){4}, (const int32_t *const[]){ids7, den}, NULL);
    const int32_t bad_id[] = {3, 12, 0};
    run_case("run.embed.bad_id", (const int64_t[]){3}, (const int32_t *const[]){bad_id, den},
             "gather 'emb': id 12 at index 1 is outside [0, 10)");
    const int32_t zero[] = {2, 0, 3};
    run_case("run.embed.div_zero", (const int64_t[]){3}, (const int32_t *const[]){ids7, zero},
             "div 'quot': integer division by zero at index 3");
    char *c = emit("emit.embed", NULL);
    if (c) {
        const char *p = strstr(c, "{\"wte.weight\"");
        CHECK("emit.tied.once", p && !strstr(p + 1, "{\"wte.weight\""));
        expect_text("emit.tied.pointer", c, "k_logits(b_embed, w_wte, b_logits, seq);");
        expect_text("emit.gather.check", c, "if (id < 0 || id >= 10)");
        expect_text("emit.div.block", c, "a[i1] / den;\n        }\n    return 0;\n}");
        expect_text("emit.scale.double", c, "(float)(x[i] * 0.1)");
        expect_text("emit.scale.float", c, "x[i] * 2.5f");
        free(c);
    }
    end();
}

static void test_run_matmuls(void)
{
    begin();
    build_matmuls();
    compile_case("run.matmul.compile");
    run_case("run.matmul", NULL, NULL, NULL);
    end();
}

int main(void)
{
    // The source tree from this file's path (tests/unit/test_codegen.c), else the working
    // directory (ctest runs the tests from the source tree).
    snprintf(src_root, sizeof src_root, "%s", __FILE__);
    char *cut = strstr(src_root, "tests/unit/test_codegen.c");
    if (cut && cut != src_root)
        *cut = 0;
    else
        snprintf(src_root, sizeof src_root, ".");

    test_plan_chain();
    test_plan_outputs();
    test_plan_views();
    test_plan_models();
    test_emit_structure();
    test_emit_wrapping();
    test_emit_names();

    cc = getenv("KILN_CC") && *getenv("KILN_CC") ? getenv("KILN_CC") : "clang";
    char probe[256];
    // The first word only: $KILN_CC may carry flags (the sanitized suite sets some).
    snprintf(probe, sizeof probe, "command -v '%.*s' > /dev/null 2>&1", (int)strcspn(cc, " "), cc);
    snprintf(work, sizeof work, "%s/kiln_test_codegen.XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");  // $TMPDIR, else the usual place
    if (system(probe) != 0) {
        printf("test_codegen: %s not found; skipping the compile-and-run checks (run.*)\n", cc);
        cc = NULL;
    } else if (!mkdtemp(work)) {
        fail("run.setup", "cannot make a temporary folder");
        cc = NULL;
    }
    if (cc) {
        test_run_mlp();
        test_run_attention();
        test_run_embed();
        test_run_matmuls();
        char rm[128];
        snprintf(rm, sizeof rm, "rm -rf '%s'", work);
        if (getenv("KILN_TEST_KEEP"))
            printf("test_codegen: the generated files are in %s\n", work);
        else if (system(rm) != 0)
            printf("test_codegen: could not remove %s\n", work);
    }

    printf("test_codegen: %d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
