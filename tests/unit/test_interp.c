/* tests/unit/test_interp.c: the reference interpreter and constant folding.
 *
 * Each case builds a small graph with the IR constructors, runs ir_interpret() on it and
 * compares every output with values worked out by hand (the comment above each case shows
 * the arithmetic).  Error cases capture the interpreter's message and look for the text a
 * user would see.  Test ids are `interp.<op>.<case>`; a failure prints the id, the first
 * differing elements, the largest absolute error, its index and the tolerance.
 *
 *   build/tests/test_interp        prints "test_interp: N passed, M failed", exit 1 on failure
 */
#include "ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* =======================================================================================
 * Checking
 * ======================================================================================= */

// INFINITY and NAN are float; the expected values are doubles.
#define INF ((double)INFINITY)
#define QNAN ((double)NAN)

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

static bool dims_equal(const Tensor *t, int rank, const int64_t *dims)
{
    if (t->rank != rank)
        return false;
    for (int k = 0; k < rank; k++)
        if (t->dim[k] != dims[k])
            return false;
    return true;
}

// Compare an f32 tensor with `want` (rank, dims, values).  NaN matches NaN, inf matches the
// same inf; otherwise |got - want| <= tol.  Prints up to 4 differing pairs on failure.
static void expect_f32(const char *id, const Tensor *t, int rank, const int64_t *dims,
                       const double *want, double tol)
{
    if (t->dtype != DT_F32 || !dims_equal(t, rank, dims)) {
        fail(id, "got %s of rank %d, expected f32 of rank %d (or dims differ)",
             dtype_name(t->dtype), t->rank, rank);
        return;
    }
    int64_t n = tensor_numel(t), worst = -1;
    double max_err = 0;
    int shown = 0;
    for (int64_t i = 0; i < n; i++) {
        double got = (double)((const float *)t->data)[i], w = want[i];
        bool same = (isnan(got) && isnan(w)) || got == w;
        double e = same ? 0 : fabs(got - w);
        if (!same && isnan(e))
            e = INF;
        if (e > max_err) {
            max_err = e;
            worst = i;
        }
        if (e > tol && shown < 4) {
            if (!shown)
                printf("FAIL %s:\n", id);
            printf("    [%lld] got %.9g, expected %.9g\n", (long long)i, got, w);
            shown++;
        }
    }
    if (max_err > tol) {
        printf("    max abs error %.3g at [%lld], tolerance %.3g\n", max_err, (long long)worst,
               tol);
        n_failed++;
    } else {
        n_passed++;
    }
}

static void expect_i32(const char *id, const Tensor *t, int rank, const int64_t *dims,
                       const int32_t *want)
{
    if (t->dtype != DT_I32 || !dims_equal(t, rank, dims)) {
        fail(id, "got %s of rank %d, expected i32 of rank %d (or dims differ)",
             dtype_name(t->dtype), t->rank, rank);
        return;
    }
    for (int64_t i = 0; i < tensor_numel(t); i++) {
        int32_t got = ((const int32_t *)t->data)[i];
        if (got != want[i]) {
            fail(id, "[%lld] got %d, expected %d", (long long)i, got, want[i]);
            return;
        }
    }
    n_passed++;
}

// Check that `msg` contains `part`.
static void expect_msg(const char *id, const char *msg, const char *part)
{
    if (msg && strstr(msg, part))
        n_passed++;
    else
        fail(id, "message\n    %s    does not contain\n    %s", msg ? msg : "(none)\n", part);
}

/* =======================================================================================
 * Building graphs
 * ======================================================================================= */

static Graph *g;
static Diag dg;
static const SrcLoc here = {"test.yaml", 3, 7};

static void begin(void)
{
    g = graph_new("test.yaml");
    diag_init(&dg);
    dg.quiet_source = true;
}

static void end(void)
{
    graph_free(g);
    g = NULL;
}

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

static NodeId constant(const char *name, DType dt, const char *shape, const void *values)
{
    Type t = ty(dt, shape);
    size_t bytes = (size_t)type_numel_max(&t) * dtype_size(dt);
    Node a = {0};
    a.attr.constant.data = arena_alloc(&g->arena, bytes);
    memcpy(a.attr.constant.data, values, bytes);
    return graph_add_source(g, &dg, OP_CONST, name, here, t, &a);
}

static NodeId const_f32(const char *name, const char *shape, const float *v)
{
    return constant(name, DT_F32, shape, v);
}

// A node of op `op` with inputs in[0..n_in) and attributes from `a` (may be NULL).
static NodeId node(OpKind op, const char *name, const Node *a, int n_in, ...)
{
    NodeId in[KILN_MAX_IN];
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in; i++)
        in[i] = va_arg(ap, NodeId);
    va_end(ap);
    NodeId id = graph_add_node(g, &dg, op, name, here, in, n_in, a);
    if (id < 0)
        KILN_BUG("test: cannot build %s '%s'", op_name(op), name ? name : "?");
    return id;
}

static void output(const char *name, NodeId id)
{
    Output o = {name, id, here};
    VEC_PUSH(g->outputs, g->n_outputs, g->cap_outputs, o);
}

static Tensor tensor(DType dt, int rank, const int64_t *dims, const void *data)
{
    Tensor t = {.dtype = dt, .rank = rank, .data = (void *)data};
    memcpy(t.dim, dims, (size_t)rank * sizeof *dims);
    return t;
}

/* ---- running -------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const float *data;
} TestWeight;

// InterpEnv.weight over a NULL-terminated TestWeight table.
static const void *find_weight(void *ctx, const char *tensor_name, const Type *type)
{
    (void)type;     // the tests give weights of the declared shape
    for (const TestWeight *w = ctx; w->name; w++)
        if (strcmp(w->name, tensor_name) == 0)
            return w->data;
    return NULL;    // a real callback reports the missing name; the test expects the failure
}

static Tensor outs[8];
static char *errmsg;    // what the last run printed, malloc'd

static void free_outs(void)
{
    for (int i = 0; i < 8; i++) {
        free(outs[i].data);
        outs[i].data = NULL;
    }
    free(errmsg);
    errmsg = NULL;
}

// Interpret g with the given inputs (and weights); the outputs land in outs[], the message
// (if any) in errmsg.
static bool run_with(const Tensor *inputs, const TestWeight *weights)
{
    free_outs();
    size_t len = 0;
    FILE *err = open_memstream(&errmsg, &len);
    InterpEnv env = {inputs, find_weight, (void *)weights};
    bool ok = ir_interpret(g, &env, outs, err);
    fclose(err);
    return ok;
}

static bool run(const Tensor *inputs) { return run_with(inputs, NULL); }

#define DIMS(...) (const int64_t[]){__VA_ARGS__}
#define F32(...) (const float[]){__VA_ARGS__}
#define I32(...) (const int32_t[]){__VA_ARGS__}
#define WANT(...) (const double[]){__VA_ARGS__}

/* =======================================================================================
 * Element-wise ops
 * ======================================================================================= */

// [2, 3] + [3]: b repeats down the rows.  [2, 1] + [1, 3]: an outer sum.
static void test_add_broadcast(void)
{
    begin();
    NodeId a = input("a", DT_F32, "2, 3"), b = input("b", DT_F32, "3");
    NodeId c = input("c", DT_F32, "2, 1"), d = input("d", DT_F32, "1, 3");
    output("ab", node(OP_ADD, "ab", NULL, 2, a, b));
    output("cd", node(OP_ADD, "cd", NULL, 2, c, d));
    output("ba", node(OP_ADD, "ba", NULL, 2, b, a));
    Tensor in[] = {
        tensor(DT_F32, 2, DIMS(2, 3), F32(1, 2, 3, 4, 5, 6)),
        tensor(DT_F32, 1, DIMS(3), F32(10, 20, 30)),
        tensor(DT_F32, 2, DIMS(2, 1), F32(1, 2)),
        tensor(DT_F32, 2, DIMS(1, 3), F32(10, 20, 30)),
    };
    CHECK("interp.add.broadcast.run", run(in));
    expect_f32("interp.add.broadcast.rows", &outs[0], 2, DIMS(2, 3),
               WANT(11, 22, 33, 14, 25, 36), 0);
    expect_f32("interp.add.broadcast.outer", &outs[1], 2, DIMS(2, 3),
               WANT(11, 21, 31, 12, 22, 32), 0);
    expect_f32("interp.add.broadcast.swapped", &outs[2], 2, DIMS(2, 3),
               WANT(11, 22, 33, 14, 25, 36), 0);
    end();
}

// sub, mul, f32 div (x/0 = inf as in IEEE), i32 arithmetic with C division (toward zero),
// and integer division by zero as a run-time error naming the node.
static void test_binary(void)
{
    begin();
    NodeId x = input("x", DT_F32, "3"), y = input("y", DT_F32, "3");
    NodeId i = input("i", DT_I32, "3"), j = input("j", DT_I32, "3");
    output("sub", node(OP_SUB, "sub", NULL, 2, x, y));
    output("mul", node(OP_MUL, "mul", NULL, 2, x, y));
    output("div", node(OP_DIV, "div", NULL, 2, x, y));
    output("idiv", node(OP_DIV, "idiv", NULL, 2, i, j));
    output("isub", node(OP_SUB, "isub", NULL, 2, i, j));
    Tensor in[] = {
        tensor(DT_F32, 1, DIMS(3), F32(5, 3, 1)),
        tensor(DT_F32, 1, DIMS(3), F32(1, 4, 0)),
        tensor(DT_I32, 1, DIMS(3), I32(-7, 7, -8)),
        tensor(DT_I32, 1, DIMS(3), I32(2, -2, 3)),
    };
    CHECK("interp.binary.run", run(in));
    expect_f32("interp.binary.sub", &outs[0], 1, DIMS(3), WANT(4, -1, 1), 0);
    expect_f32("interp.binary.mul", &outs[1], 1, DIMS(3), WANT(5, 12, 0), 0);
    expect_f32("interp.binary.div", &outs[2], 1, DIMS(3), WANT(5, 0.75, INF), 0);
    // -7/2 = -3.5 -> -3; 7/-2 -> -3; -8/3 = -2.67 -> -2
    expect_i32("interp.binary.idiv", &outs[3], 1, DIMS(3), I32(-3, -3, -2));
    expect_i32("interp.binary.isub", &outs[4], 1, DIMS(3), I32(-9, 9, -11));

    in[3] = tensor(DT_I32, 1, DIMS(3), I32(2, 0, 3));
    CHECK("interp.binary.divzero.fails", !run(in));
    expect_msg("interp.binary.divzero.msg", errmsg,
               "test.yaml:3:7: error: div 'idiv': integer division by zero at index 1");
    free_outs();
    end();
}

// scale by 0.5, relu, tanh (tanh(0.5) = 0.46211715726000974, tanh(-2) = -0.9640275800758169,
// tanh(3) = 0.99505475368673045).  NaN goes through each of them as NaN (PyTorch's relu too).
static void test_unary(void)
{
    begin();
    NodeId x = input("x", DT_F32, "5");
    Node a = {0};
    a.attr.scale.by = 0.5;
    output("s", node(OP_SCALE, "s", &a, 1, x));
    output("r", node(OP_RELU, "r", NULL, 1, x));
    output("t", node(OP_TANH, "t", NULL, 1, x));
    Tensor in[] = {tensor(DT_F32, 1, DIMS(5), F32(-2, 0, 0.5f, 3, NAN))};
    CHECK("interp.unary.run", run(in));
    expect_f32("interp.unary.scale", &outs[0], 1, DIMS(5), WANT(-1, 0, 0.25, 1.5, QNAN), 0);
    expect_f32("interp.unary.relu", &outs[1], 1, DIMS(5), WANT(0, 0, 0.5, 3, QNAN), 0);
    expect_f32("interp.unary.tanh", &outs[2], 1, DIMS(5),
               WANT(-0.9640275800758169, 0, 0.46211715726000974, 0.99505475368673045, QNAN),
               1e-7);
    end();
}

// gelu(x) = 0.5 x (1 + erf(x / sqrt 2)) and its tanh approximation; reference values from
// torch.nn.functional.gelu(x, approximate='none' / 'tanh').
static void test_gelu(void)
{
    begin();
    NodeId x = input("x", DT_F32, "5");
    Node exact = {0}, approx = {0};
    approx.attr.gelu.tanh = true;
    output("erf", node(OP_GELU, "g_erf", &exact, 1, x));
    output("tanh", node(OP_GELU, "g_tanh", &approx, 1, x));
    Tensor in[] = {tensor(DT_F32, 1, DIMS(5), F32(-1, 0, 1, 2, -3))};
    CHECK("interp.gelu.run", run(in));
    expect_f32("interp.gelu.erf", &outs[0], 1, DIMS(5),
               WANT(-0.15865525393145707, 0, 0.8413447460685429, 1.9544997361036416,
                    -0.00404969409489031), 1e-7);
    expect_f32("interp.gelu.tanh", &outs[1], 1, DIMS(5),
               WANT(-0.15880800939172324, 0, 0.8411919906082768, 1.954597694087775,
                    -0.0036373920817729943), 1e-7);
    end();
}

// f32 -> i32 truncates toward zero; i32 -> f32 is exact.
static void test_cast(void)
{
    begin();
    NodeId x = input("x", DT_F32, "4"), i = input("i", DT_I32, "2");
    Node to_i = {0}, to_f = {0};
    to_i.attr.cast.to = DT_I32;
    to_f.attr.cast.to = DT_F32;
    output("xi", node(OP_CAST, "xi", &to_i, 1, x));
    output("if", node(OP_CAST, "if", &to_f, 1, i));
    Tensor in[] = {
        tensor(DT_F32, 1, DIMS(4), F32(-1.7f, 2.9f, -0.5f, 16777216.0f)),
        tensor(DT_I32, 1, DIMS(2), I32(3, -4)),
    };
    CHECK("interp.cast.run", run(in));
    expect_i32("interp.cast.f32_i32", &outs[0], 1, DIMS(4), I32(-1, 2, 0, 16777216));
    expect_f32("interp.cast.i32_f32", &outs[1], 1, DIMS(2), WANT(3, -4), 0);
    end();
}

// Sq = 2 queries over Sk = 4 keys: query i sees keys j <= i + 2.  A square [2, 2, 2] batch
// gives the lower triangle in each matrix.
static void test_causal_mask(void)
{
    begin();
    NodeId x = input("x", DT_F32, "2, 4"), y = input("y", DT_F32, "2, 2, 2");
    output("mx", node(OP_CAUSAL_MASK, "mx", NULL, 1, x));
    output("my", node(OP_CAUSAL_MASK, "my", NULL, 1, y));
    Tensor in[] = {
        tensor(DT_F32, 2, DIMS(2, 4), F32(1, 2, 3, 4, 5, 6, 7, 8)),
        tensor(DT_F32, 3, DIMS(2, 2, 2), F32(1, 2, 3, 4, 5, 6, 7, 8)),
    };
    CHECK("interp.causal_mask.run", run(in));
    expect_f32("interp.causal_mask.sq_lt_sk", &outs[0], 2, DIMS(2, 4),
               WANT(1, 2, 3, -INF, 5, 6, 7, 8), 0);
    expect_f32("interp.causal_mask.square", &outs[1], 3, DIMS(2, 2, 2),
               WANT(1, -INF, 3, 4, 5, -INF, 7, 8), 0);
    end();
}

/* =======================================================================================
 * matmul
 *
 *   A = [[1, 2, 3], [4, 5, 6]]     B = [[7, 8], [9, 10], [11, 12]]    A B = [[58, 64], [139, 154]]
 *   A1 = [[1, 0, 0], [0, 1, 0]]    B1 = [[1, 0], [0, 1], [0, 0]]
 *   A B1 = [[1, 2], [4, 5]]    A1 B = [[7, 8], [9, 10]]    A1 B1 = [[1, 0], [0, 1]]
 * ======================================================================================= */

static const float mA[] = {1, 2, 3, 4, 5, 6}, mAt[] = {1, 4, 2, 5, 3, 6};
static const float mB[] = {7, 8, 9, 10, 11, 12}, mBt[] = {7, 9, 11, 8, 10, 12};
static const float mAA1[] = {1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0};   // [2, 2, 3]: A, A1
static const float mBB1[] = {7, 8, 9, 10, 11, 12, 1, 0, 0, 1, 0, 0}; // [2, 3, 2]: B, B1

static void test_matmul_2d(void)
{
    begin();
    NodeId a = const_f32("A", "2, 3", mA), at = const_f32("At", "3, 2", mAt);
    NodeId b = const_f32("B", "3, 2", mB), bt = const_f32("Bt", "2, 3", mBt);
    Node ta = {0}, tb = {0}, tab = {0};
    ta.attr.matmul.trans_a = true;
    tb.attr.matmul.trans_b = true;
    tab.attr.matmul.trans_a = tab.attr.matmul.trans_b = true;
    output("ab", node(OP_MATMUL, "ab", NULL, 2, a, b));
    output("ta", node(OP_MATMUL, "ta", &ta, 2, at, b));
    output("tb", node(OP_MATMUL, "tb", &tb, 2, a, bt));
    output("tab", node(OP_MATMUL, "tab", &tab, 2, at, bt));
    CHECK("interp.matmul.2d.run", run(NULL));
    const double *want = WANT(58, 64, 139, 154);
    expect_f32("interp.matmul.2d.plain", &outs[0], 2, DIMS(2, 2), want, 0);
    expect_f32("interp.matmul.2d.trans_a", &outs[1], 2, DIMS(2, 2), want, 0);
    expect_f32("interp.matmul.2d.trans_b", &outs[2], 2, DIMS(2, 2), want, 0);
    expect_f32("interp.matmul.2d.trans_ab", &outs[3], 2, DIMS(2, 2), want, 0);
    end();
}

static void test_matmul_batched(void)
{
    begin();
    NodeId aa1 = const_f32("AA1", "2, 2, 3", mAA1), bb1 = const_f32("BB1", "2, 3, 2", mBB1);
    NodeId a = const_f32("A", "2, 3", mA), b = const_f32("B", "3, 2", mB);
    NodeId a4 = const_f32("A4", "2, 1, 2, 3", mAA1), b4 = const_f32("B4", "1, 2, 3, 2", mBB1);
    output("batch", node(OP_MATMUL, "batch", NULL, 2, aa1, bb1));   // pairwise
    output("bcast_b", node(OP_MATMUL, "bcast_b", NULL, 2, aa1, b)); // B for both
    output("bcast_a", node(OP_MATMUL, "bcast_a", NULL, 2, a, bb1)); // A for both
    output("outer", node(OP_MATMUL, "outer", NULL, 2, a4, b4));     // [2,1] x [1,2] batches
    CHECK("interp.matmul.batched.run", run(NULL));
    expect_f32("interp.matmul.batched.pairwise", &outs[0], 3, DIMS(2, 2, 2),
               WANT(58, 64, 139, 154, 1, 0, 0, 1), 0);
    expect_f32("interp.matmul.batched.broadcast_b", &outs[1], 3, DIMS(2, 2, 2),
               WANT(58, 64, 139, 154, 7, 8, 9, 10), 0);
    expect_f32("interp.matmul.batched.broadcast_a", &outs[2], 3, DIMS(2, 2, 2),
               WANT(58, 64, 139, 154, 1, 2, 4, 5), 0);
    expect_f32("interp.matmul.batched.broadcast_both", &outs[3], 4, DIMS(2, 2, 2, 2),
               WANT(58, 64, 139, 154, 1, 2, 4, 5, 7, 8, 9, 10, 1, 0, 0, 1), 0);
    end();
}

// Rank-1 operands, as numpy.matmul: v = [1, 1, 1] as a row, w = [1, 0, 2] as a column.
static void test_matmul_vectors(void)
{
    begin();
    NodeId a = const_f32("A", "2, 3", mA), b = const_f32("B", "3, 2", mB);
    NodeId aa1 = const_f32("AA1", "2, 2, 3", mAA1), bb1 = const_f32("BB1", "2, 3, 2", mBB1);
    NodeId v = const_f32("v", "3", F32(1, 1, 1)), w = const_f32("w", "3", F32(1, 0, 2));
    Node tb = {0};
    tb.attr.matmul.trans_b = true;
    output("vB", node(OP_MATMUL, "vB", NULL, 2, v, b));       // column sums of B
    output("Aw", node(OP_MATMUL, "Aw", NULL, 2, a, w));       // [1+6, 4+12]
    output("vw", node(OP_MATMUL, "vw", NULL, 2, v, w));       // 1 + 0 + 2, a scalar
    output("AA1w", node(OP_MATMUL, "AA1w", NULL, 2, aa1, w)); // [A w, A1 w]
    output("vBB1", node(OP_MATMUL, "vBB1", NULL, 2, v, bb1)); // [v B, v B1]
    output("Awt", node(OP_MATMUL, "Awt", &tb, 2, a, w));      // trans_b of a vector: no-op
    CHECK("interp.matmul.vector.run", run(NULL));
    expect_f32("interp.matmul.vector.row_a", &outs[0], 1, DIMS(2), WANT(27, 30), 0);
    expect_f32("interp.matmul.vector.col_b", &outs[1], 1, DIMS(2), WANT(7, 16), 0);
    expect_f32("interp.matmul.vector.dot", &outs[2], 0, NULL, WANT(3), 0);
    expect_f32("interp.matmul.vector.batched_a", &outs[3], 2, DIMS(2, 2), WANT(7, 16, 1, 0), 0);
    expect_f32("interp.matmul.vector.batched_b", &outs[4], 2, DIMS(2, 2), WANT(27, 30, 1, 1), 0);
    expect_f32("interp.matmul.vector.trans_b", &outs[5], 1, DIMS(2), WANT(7, 16), 0);
    end();
}

/* =======================================================================================
 * Reductions
 * ======================================================================================= */

// Row [1, 2, 3]: e^-2, e^-1, 1 over their sum.  [1000, 1001, 1002] gives the same (the max
// is subtracted first).  A row of zeros is uniform; a row of all -inf is NaN (0/0), as in
// PyTorch.
static void test_softmax(void)
{
    begin();
    NodeId x = input("x", DT_F32, "4, 3");
    output("p", node(OP_SOFTMAX, "p", NULL, 1, x));
    const float ninf = -INFINITY;
    Tensor in[] = {tensor(DT_F32, 2, DIMS(4, 3),
                          F32(1, 2, 3, 1000, 1001, 1002, 0, 0, 0, ninf, ninf, ninf))};
    CHECK("interp.softmax.run", run(in));
    const double p0 = 0.09003057317038046, p1 = 0.24472847105479764, p2 = 0.6652409557748218;
    expect_f32("interp.softmax.rows", &outs[0], 2, DIMS(4, 3),
               WANT(p0, p1, p2, p0, p1, p2, 1 / 3.0, 1 / 3.0, 1 / 3.0, QNAN, QNAN, QNAN), 1e-7);
    end();
}

// Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25, so (x - 2.5) / sqrt(1.25 + 1e-5) * gamma
// + beta with gamma [1, 1, 2, 2], beta [0, 0, 0, 1].  A constant row has variance 0 and
// gives beta.
static void test_layer_norm(void)
{
    begin();
    NodeId x = input("x", DT_F32, "2, 4");
    NodeId gm = const_f32("gamma", "4", F32(1, 1, 2, 2));
    NodeId bt = const_f32("beta", "4", F32(0, 0, 0, 1));
    Node a = {0};
    a.attr.layer_norm.eps = 1e-5;
    output("y", node(OP_LAYER_NORM, "ln", &a, 3, x, gm, bt));
    Tensor in[] = {tensor(DT_F32, 2, DIMS(2, 4), F32(1, 2, 3, 4, 2, 2, 2, 2))};
    CHECK("interp.layer_norm.run", run(in));
    expect_f32("interp.layer_norm.rows", &outs[0], 2, DIMS(2, 4),
               WANT(-1.3416354199689269, -0.447211806656309, 0.894423613312618,
                    3.6832708399378538, 0, 0, 0, 1), 1e-6);
    end();
}

/* =======================================================================================
 * Layout ops
 * ======================================================================================= */

// Table rows [10 r, 10 r + 1] for r = 0..3; ids [[3, 0], [2, 2]].
static void test_gather(void)
{
    begin();
    NodeId tab = const_f32("wte", "4, 2", F32(0, 1, 10, 11, 20, 21, 30, 31));
    NodeId ids = input("ids", DT_I32, "2, 2");
    output("e", node(OP_GATHER, "wte_lookup", NULL, 2, tab, ids));
    Tensor in[] = {tensor(DT_I32, 2, DIMS(2, 2), I32(3, 0, 2, 2))};
    CHECK("interp.gather.run", run(in));
    expect_f32("interp.gather.rows", &outs[0], 3, DIMS(2, 2, 2),
               WANT(30, 31, 0, 1, 20, 21, 20, 21), 0);

    in[0] = tensor(DT_I32, 2, DIMS(2, 2), I32(1, 0, 7, 2));
    CHECK("interp.gather.range_high.fails", !run(in));
    expect_msg("interp.gather.range_high.msg", errmsg,
               "gather 'wte_lookup': id 7 at index 2 is outside [0, 4)");
    in[0] = tensor(DT_I32, 2, DIMS(2, 2), I32(1, -1, 0, 0));
    CHECK("interp.gather.range_low.fails", !run(in));
    expect_msg("interp.gather.range_low.msg", errmsg,
               "gather 'wte_lookup': id -1 at index 1 is outside [0, 4)");
    CHECK("interp.gather.range.no_output", outs[0].data == NULL);
    free_outs();
    end();
}

// x = [[1, 2, 3, 4], [5, 6, 7, 8]].
static void test_slice_concat(void)
{
    begin();
    NodeId x = input("x", DT_F32, "2, 4");
    Node s1 = {0}, s0 = {0}, c1 = {0}, c0 = {0};
    s1.attr.slice.axis = 1, s1.attr.slice.start = 1, s1.attr.slice.end = 3;
    s0.attr.slice.axis = 0, s0.attr.slice.start = 1, s0.attr.slice.end = 2;
    c1.attr.concat.axis = 1;
    c0.attr.concat.axis = 0;
    NodeId cols = node(OP_SLICE, "cols", &s1, 1, x);     // [[2, 3], [6, 7]]
    NodeId row = node(OP_SLICE, "row", &s0, 1, x);       // [[5, 6, 7, 8]]
    output("cols", cols);
    output("row", row);
    NodeId k = const_f32("k", "2, 1", F32(-1, -2));
    output("cat1", node(OP_CONCAT, "cat1", &c1, 3, k, cols, k));
    output("cat0", node(OP_CONCAT, "cat0", &c0, 3, row, x, row));
    Tensor in[] = {tensor(DT_F32, 2, DIMS(2, 4), F32(1, 2, 3, 4, 5, 6, 7, 8))};
    CHECK("interp.slice.run", run(in));
    expect_f32("interp.slice.axis1", &outs[0], 2, DIMS(2, 2), WANT(2, 3, 6, 7), 0);
    expect_f32("interp.slice.axis0", &outs[1], 2, DIMS(1, 4), WANT(5, 6, 7, 8), 0);
    expect_f32("interp.concat.axis1", &outs[2], 2, DIMS(2, 4), WANT(-1, 2, 3, -1, -2, 6, 7, -2), 0);
    expect_f32("interp.concat.axis0", &outs[3], 2, DIMS(4, 4),
               WANT(5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 7, 8), 0);
    end();
}

// 2-d: the matrix transpose.  3-d: x[j, k, i] = 12 j + 4 k + i, perm (2, 0, 1) gives
// out[i, j, k] = x[j, k, i].  Reshape keeps the element order.
static void test_transpose_reshape(void)
{
    begin();
    NodeId x = input("x", DT_F32, "2, 3"), y = input("y", DT_F32, "2, 3, 4");
    Node t2 = {0}, t3 = {0}, r = {0};
    t2.attr.transpose.perm[0] = 1, t2.attr.transpose.perm[1] = 0;
    t3.attr.transpose.perm[0] = 2, t3.attr.transpose.perm[1] = 0, t3.attr.transpose.perm[2] = 1;
    r.attr.reshape.rank = 3;
    r.attr.reshape.dim[0] = (Dim){3, -1}, r.attr.reshape.dim[1] = (Dim){1, -1};
    r.attr.reshape.dim[2] = (Dim){2, -1};
    output("xt", node(OP_TRANSPOSE, "xt", &t2, 1, x));
    output("yt", node(OP_TRANSPOSE, "yt", &t3, 1, y));
    output("xr", node(OP_RESHAPE, "xr", &r, 1, x));
    float yv[24];
    for (int i = 0; i < 24; i++)
        yv[i] = (float)i;
    Tensor in[] = {
        tensor(DT_F32, 2, DIMS(2, 3), F32(1, 2, 3, 4, 5, 6)),
        tensor(DT_F32, 3, DIMS(2, 3, 4), yv),
    };
    CHECK("interp.transpose.run", run(in));
    expect_f32("interp.transpose.2d", &outs[0], 2, DIMS(3, 2), WANT(1, 4, 2, 5, 3, 6), 0);
    expect_f32("interp.transpose.3d", &outs[1], 3, DIMS(4, 2, 3),
               WANT(0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15,
                    19, 23), 0);
    expect_f32("interp.reshape.static", &outs[2], 3, DIMS(3, 1, 2), WANT(1, 2, 3, 4, 5, 6), 0);
    end();
}

/* =======================================================================================
 * Symbolic dims, sources, memory
 * ======================================================================================= */

// x [seq, 2] f32 and ids [seq] i32 with seq <= 4; out = x + table[ids], plus arange(seq)
// from 5 and a reshape to [seq, 2, 1].
static void build_seq_graph(void)
{
    begin();
    graph_add_sym(g, "seq", 4, here);
    NodeId x = input("x", DT_F32, "seq, 2"), ids = input("ids", DT_I32, "seq");
    NodeId tab = const_f32("tab", "3, 2", F32(0, 1, 10, 11, 20, 21));
    NodeId e = node(OP_GATHER, "emb", NULL, 2, tab, ids);
    output("y", node(OP_ADD, "y", NULL, 2, x, e));
    Node ar = {0};
    ar.attr.arange.start = 5;
    output("pos", graph_add_source(g, &dg, OP_ARANGE, "pos", here, ty(DT_I32, "seq"), &ar));
    Node r = {0};
    r.attr.reshape.rank = 3;
    r.attr.reshape.dim[0] = (Dim){4, 0}, r.attr.reshape.dim[1] = (Dim){2, -1};
    r.attr.reshape.dim[2] = (Dim){1, -1};
    output("xr", node(OP_RESHAPE, "xr", &r, 1, x));
}

static void test_symbolic(void)
{
    build_seq_graph();
    const float *xv = F32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    Tensor in[] = {
        tensor(DT_F32, 2, DIMS(3, 2), xv),
        tensor(DT_I32, 1, DIMS(3), I32(2, 0, 1)),
    };
    CHECK("interp.sym.bind.run", run(in));
    expect_f32("interp.sym.bind.add", &outs[0], 2, DIMS(3, 2), WANT(21, 23, 3, 5, 15, 17), 0);
    expect_i32("interp.sym.arange", &outs[1], 1, DIMS(3), I32(5, 6, 7));
    expect_f32("interp.sym.reshape", &outs[2], 3, DIMS(3, 2, 1), WANT(1, 2, 3, 4, 5, 6), 0);

    in[0] = tensor(DT_F32, 2, DIMS(1, 2), xv);   // seq = 1, the smallest
    in[1] = tensor(DT_I32, 1, DIMS(1), I32(1));
    CHECK("interp.sym.bind.one", run(in));
    expect_f32("interp.sym.bind.one.add", &outs[0], 2, DIMS(1, 2), WANT(11, 13), 0);

    in[1] = tensor(DT_I32, 1, DIMS(3), I32(0, 0, 0));
    in[0] = tensor(DT_F32, 1, DIMS(6), xv);
    CHECK("interp.sym.rank.fails", !run(in));
    expect_msg("interp.sym.rank.msg", errmsg, "input 'x': rank is 1, expected 2 ([seq, 2])");

    in[0] = tensor(DT_F32, 2, DIMS(2, 3), xv);
    CHECK("interp.sym.static.fails", !run(in));
    expect_msg("interp.sym.static.msg", errmsg, "input 'x': dim 1 is 3, expected 2 ([seq, 2])");

    in[0] = tensor(DT_F32, 2, DIMS(5, 2), xv);
    CHECK("interp.sym.bound.fails", !run(in));
    expect_msg("interp.sym.bound.msg", errmsg, "input 'x': dim 0 (seq) is 5, expected 1 to 4");

    in[0] = tensor(DT_F32, 2, DIMS(0, 2), xv);
    CHECK("interp.sym.zero.fails", !run(in));
    expect_msg("interp.sym.zero.msg", errmsg, "input 'x': dim 0 (seq) is 0, expected 1 to 4");

    in[0] = tensor(DT_F32, 2, DIMS(2, 2), xv);
    CHECK("interp.sym.agree.fails", !run(in));
    expect_msg("interp.sym.agree.msg", errmsg,
               "input 'ids': dim 0 (seq) is 3, expected 2 as in input 'x'");

    in[0] = tensor(DT_F32, 2, DIMS(3, 2), xv);
    in[1] = tensor(DT_F32, 1, DIMS(3), xv);
    CHECK("interp.sym.dtype.fails", !run(in));
    expect_msg("interp.sym.dtype.msg", errmsg, "input 'ids': dtype is f32, expected i32");
    free_outs();
    end();

    // A symbolic dim that no input carries has no value to run with.
    begin();
    graph_add_sym(g, "n", 4, here);
    Node ar = {0};
    output("pos", graph_add_source(g, &dg, OP_ARANGE, "pos", here, ty(DT_I32, "n"), &ar));
    CHECK("interp.sym.unbound.fails", !run(NULL));
    expect_msg("interp.sym.unbound.msg", errmsg,
               "arange 'pos': symbolic dim 'n' is not bound by any input");
    free_outs();
    end();
}

// Weights come from the callback; a missing weight fails the run.
static void test_weights(void)
{
    begin();
    NodeId x = input("x", DT_F32, "2");
    Node wa = {0};
    wa.attr.weight.tensor = "fc.bias";
    NodeId w = graph_add_source(g, &dg, OP_WEIGHT, "bias", here, ty(DT_F32, "2"), &wa);
    output("y", node(OP_ADD, "y", NULL, 2, x, w));
    Tensor in[] = {tensor(DT_F32, 1, DIMS(2), F32(1, 2))};
    TestWeight ws[] = {{"fc.bias", F32(0.5f, -1)}, {NULL, NULL}};
    CHECK("interp.weight.run", run_with(in, ws));
    expect_f32("interp.weight.add", &outs[0], 1, DIMS(2), WANT(1.5, 1), 0);
    TestWeight none[] = {{NULL, NULL}};
    CHECK("interp.weight.missing.fails", !run_with(in, none));
    free_outs();
    end();
}

// A value read long after it was made (a residual), a value that is both an output and read
// later, one read twice by the same node, and a dead node (which would fail if run) are all
// handled; ASan checks the frees.
static void test_lifetimes(void)
{
    begin();
    NodeId x = input("x", DT_F32, "3");
    NodeId r = node(OP_RELU, "r", NULL, 1, x);
    NodeId t = node(OP_TANH, "t", NULL, 1, r);
    NodeId sq = node(OP_MUL, "sq", NULL, 2, t, t);
    NodeId y = node(OP_ADD, "y", NULL, 2, r, sq);
    node(OP_TANH, "unused", NULL, 1, y);
    NodeId zero = constant("zero", DT_I32, "1", I32(0)), one = constant("one", DT_I32, "1", I32(1));
    NodeId bad = node(OP_DIV, "bad", NULL, 2, one, zero);
    g->nodes[bad].dead = true;
    output("r", r);
    output("y", y);
    output("y_again", y);
    Tensor in[] = {tensor(DT_F32, 1, DIMS(3), F32(-1, 0, 2))};
    CHECK("interp.life.run", run(in));
    double t2 = tanh(2.0);
    expect_f32("interp.life.r", &outs[0], 1, DIMS(3), WANT(0, 0, 2), 0);
    expect_f32("interp.life.y", &outs[1], 1, DIMS(3), WANT(0, 0, 2 + t2 * t2), 1e-6);
    expect_f32("interp.life.y_again", &outs[2], 1, DIMS(3), WANT(0, 0, 2 + t2 * t2), 1e-6);
    CHECK("interp.life.fresh_copies", outs[1].data != outs[2].data);
    end();
}

/* =======================================================================================
 * Constant evaluation and folding
 * ======================================================================================= */

static void test_fold(void)
{
    begin();
    NodeId x = input("x", DT_F32, "2");
    NodeId c = const_f32("c", "2", F32(1, 2));
    Node by3 = {0};
    by3.attr.scale.by = 3;
    NodeId s = node(OP_SCALE, "s", &by3, 1, c);                 // [3, 6]
    NodeId t = node(OP_ADD, "t", NULL, 2, s, c);                // [4, 8], folds in the same run
    NodeId u = node(OP_ADD, "u", NULL, 2, x, t);                // reads an input: stays
    Node ar = {0};
    ar.attr.arange.start = 2;
    NodeId pos = graph_add_source(g, &dg, OP_ARANGE, "pos", here, ty(DT_I32, "3"), &ar);
    NodeId big = graph_add_source(g, &dg, OP_ARANGE, "big", here, ty(DT_I32, "300000"), &ar);
    NodeId zero = constant("zero", DT_I32, "1", I32(0)), one = constant("one", DT_I32, "1", I32(1));
    NodeId bad = node(OP_DIV, "bad", NULL, 2, one, zero);      // left for run time
    output("u", u);
    output("pos", pos);
    output("big", big);
    output("bad", bad);

    void *direct = interp_eval_const(g, &g->nodes[s]);
    CHECK("interp.eval_const.scale",
          direct && ((float *)direct)[0] == 3 && ((float *)direct)[1] == 6);
    free(direct);
    CHECK("interp.eval_const.not_const", interp_eval_const(g, &g->nodes[u]) == NULL);
    CHECK("interp.eval_const.source", interp_eval_const(g, &g->nodes[x]) == NULL);
    CHECK("interp.eval_const.data_error", interp_eval_const(g, &g->nodes[bad]) == NULL);

    SrcLoc loc_s = g->nodes[s].loc;
    CHECK("fold.changed", ir_fold_constants(g));
    const Node *ns = &g->nodes[s], *nt = &g->nodes[t];
    CHECK("fold.scale.op", ns->op == OP_CONST && ns->n_in == 0);
    CHECK("fold.scale.keeps", strcmp(ns->name, "s") == 0 && ns->loc.line == loc_s.line &&
                                  ns->loc.col == loc_s.col && ns->type.rank == 1 &&
                                  ns->type.dim[0].size == 2 && ns->n_origins == 1 &&
                                  ns->origins[0].op == OP_SCALE);
    CHECK("fold.scale.value", ns->op == OP_CONST && ((float *)ns->attr.constant.data)[0] == 3 &&
                                  ((float *)ns->attr.constant.data)[1] == 6);
    CHECK("fold.chain", nt->op == OP_CONST && ((float *)nt->attr.constant.data)[0] == 4 &&
                            ((float *)nt->attr.constant.data)[1] == 8);
    CHECK("fold.input_stays", g->nodes[u].op == OP_ADD && g->nodes[u].n_in == 2);
    CHECK("fold.arange", g->nodes[pos].op == OP_CONST &&
                             memcmp(g->nodes[pos].attr.constant.data, I32(2, 3, 4), 12) == 0);
    CHECK("fold.big_stays", g->nodes[big].op == OP_ARANGE);
    CHECK("fold.div_zero_stays", g->nodes[bad].op == OP_DIV);
    CHECK("fold.second_run_unchanged", !ir_fold_constants(g));
    ir_verify(g, "fold-constants");
    CHECK("fold.shapes_agree", ir_infer_shapes(g, &dg));

    // The folded graph computes what the original did.
    g->nodes[bad].dead = true;
    g->n_outputs = 2;
    Tensor in[] = {tensor(DT_F32, 1, DIMS(2), F32(10, 20))};
    CHECK("fold.interp.run", run(in));
    expect_f32("fold.interp.u", &outs[0], 1, DIMS(2), WANT(14, 28), 0);
    expect_i32("fold.interp.pos", &outs[1], 1, DIMS(3), I32(2, 3, 4));
    free_outs();
    end();
}

int main(void)
{
    test_add_broadcast();
    test_binary();
    test_unary();
    test_gelu();
    test_cast();
    test_causal_mask();
    test_matmul_2d();
    test_matmul_batched();
    test_matmul_vectors();
    test_softmax();
    test_layer_norm();
    test_gather();
    test_slice_concat();
    test_transpose_reshape();
    test_symbolic();
    test_weights();
    test_lifetimes();
    test_fold();
    free_outs();
    printf("test_interp: %d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
