/* ir/interp.c: the reference interpreter of the IR.
 *
 * This file defines what every op means.  Each optimization, the code generator and each ISA
 * are checked against it (tests/diff/), and constant folding evaluates nodes through it
 * (ir/fold_constants.c via interp_eval_const), so there is exactly one implementation of
 * each op's semantics in the compiler.  It is written for clarity, not speed: plain loops
 * over multi-indices, every f32 computation in double and rounded once on store, every
 * reduction and dot product accumulated in double.
 *
 * ir_interpret() binds the symbolic dims from the inputs' shapes, gives every node its
 * concrete shape (its Type with each symbol replaced by its value), then evaluates the live
 * nodes in order, freeing each intermediate after its last reader.  Every op re-derives its
 * output shape from its inputs' concrete shapes and compares it with the one shape inference
 * gave the node; a difference is a kiln bug and aborts (KILN_BUG), never a wrong answer.
 *
 * Sections: element access and shapes; the ops; running a graph; constant evaluation.
 */
#include "ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int64_t tensor_numel(const Tensor *t)
{
    int64_t n = 1;
    for (int k = 0; k < t->rank; k++)
        n *= t->dim[k];
    return n;
}

/* =======================================================================================
 * Element access and shapes
 * ======================================================================================= */

static bool is_int(DType t) { return t == DT_I32 || t == DT_I64; }

// Element i of t as a double (exact for f32 and i32; i64 beyond 2^53 rounds).
static double load(const Tensor *t, int64_t i)
{
    switch (t->dtype) {
    case DT_F32: return (double)((const float *)t->data)[i];
    case DT_I32: return (double)((const int32_t *)t->data)[i];
    case DT_I64: return (double)((const int64_t *)t->data)[i];
    }
    KILN_BUG("interp: bad dtype %d", (int)t->dtype);
}

// Element i of an integer tensor, exactly.
static int64_t load_int(const Tensor *t, int64_t i)
{
    switch (t->dtype) {
    case DT_I32: return ((const int32_t *)t->data)[i];
    case DT_I64: return ((const int64_t *)t->data)[i];
    case DT_F32: break;
    }
    KILN_BUG("interp: load_int on %s", dtype_name(t->dtype));
}

// Store an integer into an integer tensor; i32 wraps modulo 2^32 (two's complement), which
// is what the int32 arithmetic of generated code does on every target kiln supports.
static void store_int(Tensor *t, int64_t i, int64_t v)
{
    switch (t->dtype) {
    case DT_I32: ((int32_t *)t->data)[i] = (int32_t)(uint32_t)(uint64_t)v; return;
    case DT_I64: ((int64_t *)t->data)[i] = v; return;
    case DT_F32: break;
    }
    KILN_BUG("interp: store_int on %s", dtype_name(t->dtype));
}

// A double converted to an integer like a C cast: truncated toward zero.  A C cast of a
// value out of range is undefined; the interpreter saturates (NaN gives 0) so it is at least
// deterministic.  Differential tests must not depend on that case.
static int64_t trunc_to_int(double v, DType to)
{
    double lo = to == DT_I32 ? (double)INT32_MIN : -9223372036854775808.0;
    double hi = to == DT_I32 ? (double)INT32_MAX : 9223372036854775807.0;
    if (isnan(v))
        return 0;
    if (v <= lo)
        return to == DT_I32 ? INT32_MIN : INT64_MIN;
    if (v >= hi)
        return to == DT_I32 ? INT32_MAX : INT64_MAX;
    return (int64_t)v;
}

// Store a computed value: rounded once to f32, or truncated toward zero for integer tensors.
static void store(Tensor *t, int64_t i, double v)
{
    if (t->dtype == DT_F32)
        ((float *)t->data)[i] = (float)v;
    else
        store_int(t, i, trunc_to_int(v, t->dtype));
}

// Row-major strides of t, in elements.
static void strides_of(const Tensor *t, int64_t *st)
{
    int64_t s = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        st[k] = s;
        s *= t->dim[k];
    }
}

// Advance the row-major multi-index idx over dims[0..rank); false after the last element.
static bool next_index(int64_t *idx, const int64_t *dims, int rank)
{
    for (int k = rank - 1; k >= 0; k--) {
        if (++idx[k] < dims[k])
            return true;
        idx[k] = 0;
    }
    return false;
}

static int64_t offset_of(const int64_t *idx, const int64_t *st, int rank)
{
    int64_t off = 0;
    for (int k = 0; k < rank; k++)
        off += idx[k] * st[k];
    return off;
}

// "[2, 3, 4]" into buf.
static const char *dims_str(const int64_t *dims, int rank, char *buf, size_t n)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < rank && len < n; k++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", k ? ", " : "", (long long)dims[k]);
    if (len < n)
        snprintf(buf + len, n - len, "]");
    return buf;
}

// Abort unless the shape an op derives from its inputs equals the node's concrete shape.
static void check_shape(const Node *n, const Tensor *out, const int64_t *dims, int rank)
{
    bool same = out->rank == rank;
    for (int k = 0; same && k < rank; k++)
        same = out->dim[k] == dims[k];
    if (!same) {
        char a[128], b[128];
        KILN_BUG("interp: %s '%s': inputs give shape %s, shape inference gave %s",
                 op_name(n->op), n->name, dims_str(dims, rank, a, sizeof a),
                 dims_str(out->dim, out->rank, b, sizeof b));
    }
}

// NumPy broadcasting of two shapes (align from the right; a size-1 or missing dim takes the
// other's size).  False if some pair of dims is neither equal nor 1.
static bool broadcast_dims(const int64_t *a, int ra, const int64_t *b, int rb, int64_t *out,
                           int *rank)
{
    int r = ra > rb ? ra : rb;
    for (int k = 0; k < r; k++) {
        int ka = k - (r - ra), kb = k - (r - rb);
        int64_t da = ka >= 0 ? a[ka] : 1, db = kb >= 0 ? b[kb] : 1;
        if (da == db || db == 1)
            out[k] = da;
        else if (da == 1)
            out[k] = db;
        else
            return false;
    }
    *rank = r;
    return true;
}

// Strides that read a tensor of dims[0..r) as if it had shape out[0..R) (R >= r, already
// checked broadcast-compatible): 0 along missing and broadcast dims.  `unit` is the size in
// elements of one entry (matmul walks batch dims whose entries are whole matrices).
static void broadcast_strides(const int64_t *dims, int r, const int64_t *out, int R,
                              int64_t unit, int64_t *st)
{
    int64_t s = unit;
    for (int k = R - 1; k >= 0; k--) {
        int kd = k - (R - r);
        if (kd < 0 || (dims[kd] == 1 && out[k] != 1)) {
            st[k] = 0;
        } else {
            st[k] = s;
        }
        if (kd >= 0)
            s *= dims[kd];
    }
}

// Report a run-time error of node n (bad data, not a kiln bug) to err, with the node's spec
// place when it has one.  err == NULL (constant folding) is silent.
static void node_error(FILE *err, const Node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void node_error(FILE *err, const Node *n, const char *fmt, ...)
{
    if (!err)
        return;
    if (n && n->loc.file && n->loc.line > 0)
        fprintf(err, "%s:%d:%d: error: ", n->loc.file, n->loc.line, n->loc.col);
    else
        fprintf(err, "error: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
    fputc('\n', err);
}

/* =======================================================================================
 * The ops.  Each takes its node (for attributes and messages), its input tensors and an
 * output tensor whose dtype, shape and zeroed data the caller set from the node's type.
 * Each returns false after reporting a data error (err may be NULL).
 * ======================================================================================= */

// OP_ARANGE: out[i] = start + i.
static bool op_arange(const Node *n, const int64_t *sym_val, Tensor *out)
{
    if (out->rank != 1 || !is_int(out->dtype))
        KILN_BUG("interp: arange '%s' is not a 1-d integer tensor", n->name);
    int64_t start = n->attr.arange.start;
    if (n->attr.arange.has_start_sym) {
        if (!sym_val)
            KILN_BUG("interp: arange '%s' starts at a symbol, outside a run", n->name);
        start = sym_val[n->attr.arange.start_sym];
    }
    for (int64_t i = 0; i < out->dim[0]; i++)
        store_int(out, i, start + i);
    return true;
}

// OP_ADD, OP_SUB, OP_MUL, OP_DIV with NumPy broadcasting.  f32 in double, rounded once;
// integers exactly, division truncating toward zero like C, division by zero an error.
static bool op_binary(const Node *n, const Tensor *a, const Tensor *b, Tensor *out, FILE *err)
{
    int64_t dims[KILN_MAX_RANK];
    int rank;
    if (a->dtype != b->dtype || a->dtype != out->dtype)
        KILN_BUG("interp: %s '%s': dtypes %s, %s -> %s", op_name(n->op), n->name,
                 dtype_name(a->dtype), dtype_name(b->dtype), dtype_name(out->dtype));
    if (!broadcast_dims(a->dim, a->rank, b->dim, b->rank, dims, &rank)) {
        char sa[128], sb[128];
        KILN_BUG("interp: %s '%s': shapes %s and %s do not broadcast", op_name(n->op),
                 n->name, dims_str(a->dim, a->rank, sa, sizeof sa),
                 dims_str(b->dim, b->rank, sb, sizeof sb));
    }
    check_shape(n, out, dims, rank);

    int64_t sa[KILN_MAX_RANK], sb[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    broadcast_strides(a->dim, a->rank, out->dim, rank, 1, sa);
    broadcast_strides(b->dim, b->rank, out->dim, rank, 1, sb);
    int64_t numel = tensor_numel(out);
    for (int64_t i = 0; i < numel; i++, next_index(idx, out->dim, rank)) {
        int64_t ia = offset_of(idx, sa, rank), ib = offset_of(idx, sb, rank);
        if (is_int(out->dtype)) {
            // Wrapping arithmetic through uint64_t: no undefined overflow, and i32 results
            // wrap modulo 2^32 on store.
            int64_t x = load_int(a, ia), y = load_int(b, ib), r = 0;
            uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
            switch (n->op) {
            case OP_ADD: r = (int64_t)(ux + uy); break;
            case OP_SUB: r = (int64_t)(ux - uy); break;
            case OP_MUL: r = (int64_t)(ux * uy); break;
            case OP_DIV:
                if (y == 0) {
                    node_error(err, n, "div '%s': integer division by zero at index %lld",
                               n->name, (long long)i);
                    return false;
                }
                // Truncates toward zero (C99); x / -1 is negation, which wraps for the
                // most negative value instead of trapping.
                r = y == -1 ? (int64_t)(0 - ux) : x / y;
                break;
            default: KILN_BUG("interp: op_binary on %s", op_name(n->op));
            }
            store_int(out, i, r);
        } else {
            double x = load(a, ia), y = load(b, ib), r = 0;
            switch (n->op) {
            case OP_ADD: r = x + y; break;
            case OP_SUB: r = x - y; break;
            case OP_MUL: r = x * y; break;
            case OP_DIV: r = x / y; break;     // IEEE: x/0 is +-inf or NaN, as in PyTorch
            default: KILN_BUG("interp: op_binary on %s", op_name(n->op));
            }
            store(out, i, r);
        }
    }
    return true;
}

static double gelu_erf(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

static double gelu_tanh(double x)
{
    const double k = sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

// OP_SCALE, OP_RELU, OP_TANH, OP_GELU: one input element gives one output element.
static bool op_unary(const Node *n, const Tensor *x, Tensor *out)
{
    check_shape(n, out, x->dim, x->rank);
    int64_t numel = tensor_numel(out);
    for (int64_t i = 0; i < numel; i++) {
        double v = load(x, i), r = 0;
        switch (n->op) {
        case OP_SCALE: r = v * n->attr.scale.by; break;
        case OP_RELU:  r = v > 0 || isnan(v) ? v : 0; break;   // NaN stays NaN, as in PyTorch
        case OP_TANH:  r = tanh(v); break;
        case OP_GELU:  r = n->attr.gelu.tanh ? gelu_tanh(v) : gelu_erf(v); break;
        default: KILN_BUG("interp: op_unary on %s", op_name(n->op));
        }
        store(out, i, r);
    }
    return true;
}

// OP_CAST: f32 -> int truncates toward zero (C cast), int -> f32 rounds to nearest, int ->
// int wraps to the narrower type.
static bool op_cast(const Node *n, const Tensor *x, Tensor *out)
{
    check_shape(n, out, x->dim, x->rank);
    int64_t numel = tensor_numel(out);
    for (int64_t i = 0; i < numel; i++) {
        if (is_int(x->dtype) && is_int(out->dtype))
            store_int(out, i, load_int(x, i));
        else if (is_int(x->dtype))
            ((float *)out->data)[i] = (float)load_int(x, i);
        else
            store(out, i, load(x, i));
    }
    return true;
}

// OP_CAUSAL_MASK on [..., Sq, Sk]: query i sees keys j <= i + (Sk - Sq), i.e. the queries
// are the last Sq positions of the Sk keys (decoding with a cache of Sk - Sq earlier ones).
static bool op_causal_mask(const Node *n, const int64_t *sym_val, const Tensor *x, Tensor *out)
{
    check_shape(n, out, x->dim, x->rank);
    if (x->rank < 2 || out->dtype != DT_F32)
        KILN_BUG("interp: causal_mask '%s' needs f32 of rank >= 2", n->name);
    int64_t sq = x->dim[x->rank - 2], sk = x->dim[x->rank - 1];
    int64_t n_mat = sq > 0 && sk > 0 ? tensor_numel(x) / (sq * sk) : 0;
    int64_t off = sk - sq;
    if (n->attr.causal.has_offset) {
        if (!sym_val)
            KILN_BUG("interp: causal_mask '%s' has a symbolic offset, outside a run", n->name);
        off = sym_val[n->attr.causal.offset_sym];
    }
    for (int64_t m = 0; m < n_mat; m++)
        for (int64_t i = 0; i < sq; i++)
            for (int64_t j = 0; j < sk; j++) {
                int64_t e = (m * sq + i) * sk + j;
                store(out, e, j <= i + off ? load(x, e) : -(double)INFINITY);
            }
    return true;
}

// OP_MATMUL.  a [..., M, K] ([..., K, M] with trans_a), b [..., K, N] ([..., N, K] with
// trans_b); the leading (batch) dims broadcast NumPy-style.  As in numpy.matmul, a rank-1 a
// is a row vector whose M is dropped from the result, and a rank-1 b a column vector whose N
// is dropped (transposing a vector changes nothing).  The dot products accumulate in double.
static bool op_matmul(const Node *n, const Tensor *a, const Tensor *b, Tensor *out)
{
    bool ta = n->attr.matmul.trans_a && a->rank >= 2;
    bool tb = n->attr.matmul.trans_b && b->rank >= 2;
    if (a->rank < 1 || b->rank < 1)
        KILN_BUG("interp: matmul '%s' of a scalar", n->name);

    int64_t M = 1, K, K2, N = 1;
    if (a->rank == 1) {
        K = a->dim[0];
    } else {
        int64_t rows = a->dim[a->rank - 2], cols = a->dim[a->rank - 1];
        M = ta ? cols : rows;
        K = ta ? rows : cols;
    }
    if (b->rank == 1) {
        K2 = b->dim[0];
    } else {
        int64_t rows = b->dim[b->rank - 2], cols = b->dim[b->rank - 1];
        K2 = tb ? cols : rows;
        N = tb ? rows : cols;
    }
    if (K != K2)
        KILN_BUG("interp: matmul '%s': inner dims %lld and %lld", n->name, (long long)K,
                 (long long)K2);

    // Batch dims: all but the matrix dims of each operand.
    int nba = a->rank >= 2 ? a->rank - 2 : 0, nbb = b->rank >= 2 ? b->rank - 2 : 0;
    int64_t bdims[KILN_MAX_RANK], dims[KILN_MAX_RANK];
    int nb;
    if (!broadcast_dims(a->dim, nba, b->dim, nbb, bdims, &nb))
        KILN_BUG("interp: matmul '%s': batch dims do not broadcast", n->name);
    int rank = nb;
    memcpy(dims, bdims, (size_t)nb * sizeof *dims);
    if (a->rank >= 2)
        dims[rank++] = M;
    if (b->rank >= 2)
        dims[rank++] = N;
    check_shape(n, out, dims, rank);

    int64_t sa[KILN_MAX_RANK], sb[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    broadcast_strides(a->dim, nba, bdims, nb, M * K, sa);
    broadcast_strides(b->dim, nbb, bdims, nb, K * N, sb);
    int64_t n_batch = 1;
    for (int k = 0; k < nb; k++)
        n_batch *= bdims[k];

    // The hot loop of the interpreter (a GPT-2 forward is mostly matmul): f32 pointers and
    // a fixed step along K rather than load() per element.  Shape inference admits f32 only.
    if (a->dtype != DT_F32 || b->dtype != DT_F32 || out->dtype != DT_F32)
        KILN_BUG("interp: matmul '%s' of %s and %s", n->name, dtype_name(a->dtype),
                 dtype_name(b->dtype));
    const float *pa = a->data, *pb = b->data;
    float *po = out->data;
    int64_t step_a = ta ? M : 1, step_b = tb ? 1 : N;   // from element k to k + 1
    for (int64_t bi = 0; bi < n_batch; bi++, next_index(idx, bdims, nb)) {
        const float *a0 = pa + offset_of(idx, sa, nb), *b0 = pb + offset_of(idx, sb, nb);
        for (int64_t m = 0; m < M; m++)
            for (int64_t j = 0; j < N; j++) {
                const float *x = a0 + (ta ? m : m * K);     // a[m, 0]
                const float *y = b0 + (tb ? j * K : j);     // b[0, j]
                double acc = 0;
                for (int64_t k = 0; k < K; k++)
                    acc += (double)x[k * step_a] * (double)y[k * step_b];
                po[(bi * M + m) * N + j] = (float)acc;
            }
    }
    return true;
}

// OP_SOFTMAX over the last axis: exp(x - max) / sum, in double.  A row of all -inf gives
// NaN (-inf - -inf), as PyTorch does; callers that mask whole rows must expect it.
static bool op_softmax(const Node *n, const Tensor *x, Tensor *out)
{
    check_shape(n, out, x->dim, x->rank);
    int64_t C = x->rank ? x->dim[x->rank - 1] : 1;
    int64_t rows = C ? tensor_numel(x) / C : 0;
    double *e = xmalloc((size_t)(C ? C : 1) * sizeof *e);
    for (int64_t r = 0; r < rows; r++) {
        double mx = -(double)INFINITY;
        for (int64_t c = 0; c < C; c++)
            mx = fmax(mx, load(x, r * C + c));
        double sum = 0;
        for (int64_t c = 0; c < C; c++) {
            e[c] = exp(load(x, r * C + c) - mx);
            sum += e[c];
        }
        for (int64_t c = 0; c < C; c++)
            store(out, r * C + c, e[c] / sum);
    }
    free(e);
    return true;
}

// OP_LAYER_NORM over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta, with the
// biased variance (divide by C), as torch.nn.LayerNorm.  gamma and beta are [C].
static bool op_layer_norm(const Node *n, const Tensor *x, const Tensor *gamma,
                          const Tensor *beta, Tensor *out)
{
    check_shape(n, out, x->dim, x->rank);
    int64_t C = x->rank ? x->dim[x->rank - 1] : 1;
    if (tensor_numel(gamma) != C || tensor_numel(beta) != C)
        KILN_BUG("interp: layer_norm '%s': gamma/beta have %lld/%lld elements, C = %lld",
                 n->name, (long long)tensor_numel(gamma), (long long)tensor_numel(beta),
                 (long long)C);
    int64_t rows = C ? tensor_numel(x) / C : 0;
    double eps = n->attr.layer_norm.eps;
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t c = 0; c < C; c++)
            mean += load(x, r * C + c);
        mean /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            double d = load(x, r * C + c) - mean;
            var += d * d;
        }
        var /= (double)C;
        double rstd = 1.0 / sqrt(var + eps);
        for (int64_t c = 0; c < C; c++)
            store(out, r * C + c,
                  (load(x, r * C + c) - mean) * rstd * load(gamma, c) + load(beta, c));
    }
    return true;
}

// OP_RESHAPE: the same elements in the same order under new dims.  (Generated code aliases
// the buffer; the interpreter copies, which keeps ownership simple.)
static bool op_reshape(const Node *n, const Tensor *x, Tensor *out)
{
    if (tensor_numel(x) != tensor_numel(out) || x->dtype != out->dtype) {
        char a[128], b[128];
        KILN_BUG("interp: reshape '%s': %s %s to %s %s", n->name, dtype_name(x->dtype),
                 dims_str(x->dim, x->rank, a, sizeof a), dtype_name(out->dtype),
                 dims_str(out->dim, out->rank, b, sizeof b));
    }
    memcpy(out->data, x->data, (size_t)tensor_numel(x) * dtype_size(x->dtype));
    return true;
}

// OP_TRANSPOSE: out dim k is in dim perm[k], so out[i0, i1, ...] reads the input at the
// position whose axis perm[k] has index ik.
static bool op_transpose(const Node *n, const Tensor *x, Tensor *out)
{
    const int *perm = n->attr.transpose.perm;
    int64_t dims[KILN_MAX_RANK], st[KILN_MAX_RANK], pst[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    strides_of(x, st);
    for (int k = 0; k < x->rank; k++) {
        if (perm[k] < 0 || perm[k] >= x->rank)
            KILN_BUG("interp: transpose '%s': perm[%d] = %d", n->name, k, perm[k]);
        dims[k] = x->dim[perm[k]];
        pst[k] = st[perm[k]];
    }
    check_shape(n, out, dims, x->rank);
    size_t es = dtype_size(x->dtype);
    int64_t numel = tensor_numel(out);
    for (int64_t i = 0; i < numel; i++, next_index(idx, out->dim, out->rank))
        memcpy((char *)out->data + i * (int64_t)es,
               (const char *)x->data + offset_of(idx, pst, x->rank) * (int64_t)es, es);
    return true;
}

// Elements before and after `axis`: a tensor is [outer, dim[axis], inner].
static void split_at(const Tensor *t, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int k = 0; k < axis; k++)
        *outer *= t->dim[k];
    for (int k = axis + 1; k < t->rank; k++)
        *inner *= t->dim[k];
}

// OP_SLICE: [start, end) along axis.  The bounds are static; on a symbolic axis they were
// checked against its bound only, so the actual size may be too small: a data error.
static bool op_slice(const Node *n, const Tensor *x, Tensor *out, FILE *err)
{
    int axis = n->attr.slice.axis;
    int64_t start = n->attr.slice.start, end = n->attr.slice.end;
    if (axis < 0 || axis >= x->rank || start < 0 || end < start)
        KILN_BUG("interp: slice '%s': axis %d [%lld, %lld) on rank %d", n->name, axis,
                 (long long)start, (long long)end, x->rank);
    if (end > x->dim[axis]) {
        node_error(err, n, "slice '%s': [%lld, %lld) is outside axis %d of size %lld", n->name,
                   (long long)start, (long long)end, axis, (long long)x->dim[axis]);
        return false;
    }
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x->dim, sizeof dims);
    dims[axis] = end - start;
    check_shape(n, out, dims, x->rank);

    int64_t outer, inner;
    split_at(x, axis, &outer, &inner);
    size_t es = dtype_size(x->dtype);
    size_t row = (size_t)((end - start) * inner) * es;
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)out->data + (size_t)o * row,
               (const char *)x->data + (size_t)((o * x->dim[axis] + start) * inner) * es, row);
    return true;
}

// OP_CONCAT: the inputs one after another along axis; all other dims equal.
static bool op_concat(const Node *n, const Tensor *const *in, int n_in, Tensor *out)
{
    int axis = n->attr.concat.axis;
    if (axis < 0 || axis >= in[0]->rank)
        KILN_BUG("interp: concat '%s': axis %d on rank %d", n->name, axis, in[0]->rank);
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, in[0]->dim, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < n_in; i++) {
        bool ok = in[i]->rank == in[0]->rank && in[i]->dtype == out->dtype;
        for (int k = 0; ok && k < in[0]->rank; k++)
            ok = k == axis || in[i]->dim[k] == in[0]->dim[k];
        if (!ok)
            KILN_BUG("interp: concat '%s': input %d does not match input 0", n->name, i);
        dims[axis] += in[i]->dim[axis];
    }
    check_shape(n, out, dims, in[0]->rank);

    int64_t outer, inner;
    split_at(out, axis, &outer, &inner);
    size_t es = dtype_size(out->dtype);
    char *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < n_in; i++) {
            size_t row = (size_t)(in[i]->dim[axis] * inner) * es;
            memcpy(dst, (const char *)in[i]->data + (size_t)o * row, row);
            dst += row;
        }
    return true;
}

// OP_GATHER: table [N, ...rest], ids (integers, any shape) -> ids.shape + rest, each id
// selecting a row of the table.  An id outside [0, N) is a data error.
static bool op_gather(const Node *n, const Tensor *table, const Tensor *ids, Tensor *out,
                      FILE *err)
{
    if (table->rank < 1 || !is_int(ids->dtype) || ids->rank + table->rank - 1 > KILN_MAX_RANK)
        KILN_BUG("interp: gather '%s': table rank %d, ids %s", n->name, table->rank,
                 dtype_name(ids->dtype));
    int64_t dims[KILN_MAX_RANK];
    int rank = 0;
    for (int k = 0; k < ids->rank; k++)
        dims[rank++] = ids->dim[k];
    for (int k = 1; k < table->rank; k++)
        dims[rank++] = table->dim[k];
    check_shape(n, out, dims, rank);

    int64_t N = table->dim[0], row_elems = N ? tensor_numel(table) / N : 0;
    size_t row = (size_t)row_elems * dtype_size(table->dtype);
    int64_t n_ids = tensor_numel(ids);
    for (int64_t i = 0; i < n_ids; i++) {
        int64_t id = load_int(ids, i);
        if (id < 0 || id >= N) {
            node_error(err, n, "gather '%s': id %lld at index %lld is outside [0, %lld)",
                       n->name, (long long)id, (long long)i, (long long)N);
            return false;
        }
        memcpy((char *)out->data + (size_t)i * row, (const char *)table->data + (size_t)id * row,
               row);
    }
    return true;
}

// A fused_attention operand as the op reads it (attention_view): the same data, its dims r - 3
// and r - 2 swapped when seq-major.
static Tensor attention_tensor(unsigned seq_major, unsigned bit, const Tensor *t)
{
    Tensor v = *t;
    if ((seq_major & bit) && v.rank >= 3) {
        int64_t x = v.dim[v.rank - 3];
        v.dim[v.rank - 3] = v.dim[v.rank - 2];
        v.dim[v.rank - 2] = x;
    }
    return v;
}

// Where matrix b (a flat index over the leading dims, heads included) of the operand t (its
// view: [.., H, S, D]) starts, and its row stride *ld: b * S * D and D, or for a seq-major
// operand (stored [.., S, H, D]) b / H * S * H * D + b % H * D and H * D.
static int64_t mat_base(unsigned seq_major, unsigned bit, const Tensor *t, int64_t b, int64_t *ld)
{
    int r = t->rank;
    int64_t S = t->dim[r - 2], D = t->dim[r - 1];
    if (!(seq_major & bit) || r < 3) {
        *ld = D;
        return b * S * D;
    }
    int64_t H = t->dim[r - 3];
    *ld = H * D;
    return b / H * S * H * D + b % H * D;
}

// OP_ATTENTION, by its definition (ops.def): for every leading index and query row i,
//   s[j] = (q[i, :] . k[j, :]) * scale  (+ mask[.., i, j])  (-inf where causal and
//          j > i + Sk - Sq),
//   out[i, :] = sum over j of softmax(s)[j] * v[j, :].
// q, k, v and out share their leading dims; the mask broadcasts into [.., Sq, Sk].  A
// seq-major operand (attr seq_major) is stored [.., S, H, D]: matrix b = (b0, h) of it starts
// at b0 * S * H * D + h * D and its rows are H * D apart.  All in
// double, rounded once on store; no intermediate is rounded to f32, so the result differs
// from the unfused chain's (which rounds the scores and the probabilities) by float
// rounding only.  A row whose scores are all -inf gives NaN, as softmax does.
static bool op_attention(const Node *n, const int64_t *sym_val, const Tensor *const *in,
                         Tensor *out)
{
    unsigned sm = n->attr.attention.seq_major;
    Tensor vq = attention_tensor(sm, ATT_Q, in[0]), vk = attention_tensor(sm, ATT_K, in[1]),
           vv = attention_tensor(sm, ATT_V, in[2]), vo = attention_tensor(sm, ATT_OUT, out);
    const Tensor *q = &vq, *k = &vk, *v = &vv;
    const Tensor *mask = ir_op_inputs(n) == 4 ? in[3] : NULL;
    int r = q->rank;
    bool ok = r >= 2 && k->rank == r && v->rank == r && q->dtype == DT_F32 &&
              k->dtype == DT_F32 && v->dtype == DT_F32 && out->dtype == DT_F32 &&
              q->dim[r - 1] == k->dim[r - 1] && k->dim[r - 2] == v->dim[r - 2];
    for (int a = 0; ok && a < r - 2; a++)
        ok = q->dim[a] == k->dim[a] && q->dim[a] == v->dim[a];
    if (!ok)
        KILN_BUG("interp: fused_attention '%s': inputs do not fit q, k, v", n->name);
    int64_t Sq = q->dim[r - 2], Sk = k->dim[r - 2], D = q->dim[r - 1], Dv = v->dim[r - 1];
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, q->dim, sizeof dims);
    dims[r - 1] = Dv;
    check_shape(n, &vo, dims, r);
    int64_t off = Sk - Sq;      // causal: query i sees keys j <= i + off
    if (n->attr.attention.has_offset) {
        if (!sym_val)
            KILN_BUG("interp: fused_attention '%s' has a symbolic offset, outside a run", n->name);
        off = sym_val[n->attr.attention.offset_sym];
    }

    // The mask read as if it were [.., Sq, Sk]: stride 0 along the dims it broadcasts.
    int64_t sdims[KILN_MAX_RANK], mst[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    memcpy(sdims, q->dim, sizeof sdims);
    sdims[r - 1] = Sk;
    if (mask) {
        int64_t bd[KILN_MAX_RANK];
        int br;
        if (mask->dtype != DT_F32 || !broadcast_dims(sdims, r, mask->dim, mask->rank, bd, &br) ||
            br != r || memcmp(bd, sdims, (size_t)r * sizeof *bd) != 0)
            KILN_BUG("interp: fused_attention '%s': the mask does not broadcast", n->name);
        broadcast_strides(mask->dim, mask->rank, sdims, r, 1, mst);
    }
    int64_t n_mat = 1;
    for (int a = 0; a < r - 2; a++)
        n_mat *= q->dim[a];
    const float *pq = q->data, *pk = k->data, *pv = v->data;
    const float *pm = mask ? mask->data : NULL;
    float *po = out->data;
    double *s = xmalloc((size_t)(Sk ? Sk : 1) * sizeof *s);
    double scale = n->attr.attention.scale;
    int64_t lq, lk, lv, lo;     // row strides
    for (int64_t b = 0; b < n_mat; b++, next_index(idx, sdims, r - 2)) {
        const float *qb = pq + mat_base(sm, ATT_Q, q, b, &lq);
        const float *kb = pk + mat_base(sm, ATT_K, k, b, &lk);
        const float *vb = pv + mat_base(sm, ATT_V, v, b, &lv);
        float *ob = po + mat_base(sm, ATT_OUT, &vo, b, &lo);
        int64_t mb = mask ? offset_of(idx, mst, r - 2) : 0;
        for (int64_t i = 0; i < Sq; i++) {
            double mx = -(double)INFINITY;
            for (int64_t j = 0; j < Sk; j++) {
                double dot = 0;
                for (int64_t d = 0; d < D; d++)
                    dot += (double)qb[i * lq + d] * (double)kb[j * lk + d];
                s[j] = dot * scale;
                if (pm)
                    s[j] += (double)pm[mb + i * mst[r - 2] + j * mst[r - 1]];
                if (n->attr.attention.causal && j > i + off)
                    s[j] = -(double)INFINITY;
                mx = fmax(mx, s[j]);
            }
            double sum = 0;
            for (int64_t j = 0; j < Sk; j++) {
                s[j] = exp(s[j] - mx);
                sum += s[j];
            }
            for (int64_t d = 0; d < Dv; d++) {
                double acc = 0;
                for (int64_t j = 0; j < Sk; j++)
                    acc += s[j] / sum * (double)vb[j * lv + d];
                ob[i * lo + d] = (float)acc;
            }
        }
    }
    free(s);
    return true;
}

// The op of node n alone, without its epilogue; see eval_node.
static bool eval_op(const Node *n, const int64_t *sym_val, const Tensor *const *in, Tensor *out,
                    FILE *err)
{
    switch (n->op) {
    case OP_INPUT:
    case OP_WEIGHT:
    case OP_CONST:
    case OP_STATE:
    case OP_CACHE_WRITE:    // run_node does these: they read and write the state
        break;
    case OP_ARANGE:      return op_arange(n, sym_val, out);
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:         return op_binary(n, in[0], in[1], out, err);
    case OP_SCALE:
    case OP_RELU:
    case OP_TANH:
    case OP_GELU:        return op_unary(n, in[0], out);
    case OP_CAST:        return op_cast(n, in[0], out);
    case OP_CAUSAL_MASK: return op_causal_mask(n, sym_val, in[0], out);
    case OP_MATMUL:      return op_matmul(n, in[0], in[1], out);
    case OP_SOFTMAX:     return op_softmax(n, in[0], out);
    case OP_LAYER_NORM:  return op_layer_norm(n, in[0], in[1], in[2], out);
    case OP_RESHAPE:     return op_reshape(n, in[0], out);
    case OP_TRANSPOSE:   return op_transpose(n, in[0], out);
    case OP_SLICE:       return op_slice(n, in[0], out, err);
    case OP_CONCAT:      return op_concat(n, in, ir_op_inputs(n), out);
    case OP_GATHER:      return op_gather(n, in[0], in[1], out, err);
    case OP_ATTENTION:   return op_attention(n, sym_val, in, out);
    case OP_COUNT:
        break;
    }
    KILN_BUG("interp: eval_node on %s '%s'", op_name(n->op), n->name);
}

// Apply n's epilogue (fuse-elementwise) to its computed value, in place.  Each step is the
// element-wise op it was before fusion, run by the same function on a stand-in node, so each
// step rounds to f32 exactly as the unfused node did: a fused graph interprets to the same
// bits as the unfused one.  Operands broadcast NumPy-style (op_binary).
static bool apply_epilogue(const Node *n, const Tensor *const *in, Tensor *out, FILE *err)
{
    for (int s = 0; s < n->n_epi; s++) {
        const EpiOp *e = &n->epi[s];
        Node step;
        memset(&step, 0, sizeof step);
        step.op = (OpKind)e->op;
        step.name = n->name;
        step.loc = n->loc;
        bool ok;
        if (e->operand_in < 0) {
            if (e->op == OP_SCALE)
                step.attr.scale.by = e->by;
            else if (e->op == OP_GELU)
                step.attr.gelu.tanh = e->tanh;
            ok = op_unary(&step, out, out);     // reads out[i] before writing it
        } else {
            const Tensor *x = in[e->operand_in];
            ok = e->operand_left ? op_binary(&step, x, out, out, err)
                                 : op_binary(&step, out, x, out, err);
        }
        if (!ok)
            return false;
    }
    return true;
}

// Evaluate node n (any op but INPUT, WEIGHT and CONST, whose values are not computed) from
// its inputs into out, whose dtype, dims and zeroed data the caller set up: its op, then its
// epilogue.  The one dispatch over ops: the interpreter and constant folding both come here.
static bool eval_node(const Node *n, const int64_t *sym_val, const Tensor *const *in, Tensor *out,
                      FILE *err)
{
    return eval_op(n, sym_val, in, out, err) && apply_epilogue(n, in, out, err);
}

/* =======================================================================================
 * Running a graph
 * ======================================================================================= */

// A value during interpretation: the tensor and whether the interpreter owns its data
// (inputs, weights and constants are borrowed).
typedef struct {
    Tensor t;
    bool owned;
    bool ready;     // computed and not yet freed
} Value;

// Bind the symbolic dims from the inputs' shapes into sym_val[g->n_syms] (-1: unbound);
// bound_by[s] is the input that bound symbol s, for messages.  False after reporting.
static bool bind_inputs(const Graph *g, const InterpEnv *env, int64_t *sym_val, int *bound_by,
                        FILE *err)
{
    char decl[256];
    for (int i = 0; i < g->n_inputs; i++) {
        const Node *n = &g->nodes[g->inputs[i]];
        const Tensor *t = &env->inputs[n->attr.input.index];
        const Type *ty = &n->type;
        shape_str(g, ty, decl, sizeof decl);
        if (t->dtype != ty->dtype) {
            node_error(err, n, "input '%s': dtype is %s, expected %s", n->name,
                       dtype_name(t->dtype), dtype_name(ty->dtype));
            return false;
        }
        if (t->rank != ty->rank) {
            node_error(err, n, "input '%s': rank is %d, expected %d (%s)", n->name, t->rank,
                       ty->rank, decl);
            return false;
        }
        for (int k = 0; k < ty->rank; k++) {
            Dim d = ty->dim[k];
            int64_t v = t->dim[k];
            if (d.sym < 0) {
                if (v != d.size) {
                    node_error(err, n, "input '%s': dim %d is %lld, expected %lld (%s)",
                               n->name, k, (long long)v, (long long)d.size, decl);
                    return false;
                }
                continue;
            }
            const Sym *s = &g->syms[d.sym];
            if (sym_val[d.sym] < 0) {
                if (v < 1 || v > s->max) {
                    node_error(err, n, "input '%s': dim %d (%s) is %lld, expected 1 to %lld (%s)",
                               n->name, k, s->name, (long long)v, (long long)s->max, decl);
                    return false;
                }
                sym_val[d.sym] = v;
                bound_by[d.sym] = i;
            } else if (v != sym_val[d.sym]) {
                const Node *first = &g->nodes[g->inputs[bound_by[d.sym]]];
                node_error(err, n, "input '%s': dim %d (%s) is %lld, expected %lld as in "
                           "input '%s' (%s)", n->name, k, s->name, (long long)v,
                           (long long)sym_val[d.sym], first->name, decl);
                return false;
            }
        }
        if (tensor_numel(t) > 0 && !t->data) {
            node_error(err, n, "input '%s': no data", n->name);
            return false;
        }
    }
    if (g->position_sym >= 0)   // a fresh state holds no tokens: the interpreter prefills
        sym_val[g->position_sym] = 0;
    return true;
}

// The concrete shape of a Type once the symbols have values; false if one is unbound.
static bool concrete_shape(const Graph *g, const Type *ty, const int64_t *sym_val, Tensor *t,
                           const Node *n, FILE *err)
{
    t->dtype = ty->dtype;
    t->rank = ty->rank;
    for (int k = 0; k < ty->rank; k++) {
        Dim d = ty->dim[k];
        if (d.sym < 0) {
            t->dim[k] = d.size;
        } else if (sym_val[d.sym] < 0) {
            node_error(err, n, "%s '%s': symbolic dim '%s' is not bound by any input",
                       op_name(n->op), n->name, g->syms[d.sym].name);
            return false;
        } else {
            t->dim[k] = sym_val[d.sym];
        }
    }
    return true;
}

// last[i] = index of the last live node that reads node i; n_nodes for model outputs
// (kept to the end); i itself for values nobody reads.
static int *last_uses(const Graph *g)
{
    int *last = xmalloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *last);
    for (int i = 0; i < g->n_nodes; i++)
        last[i] = i;
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0 || n->in[k] >= i || g->nodes[n->in[k]].dead)
                KILN_BUG("interp: %s '%s' reads node %d", op_name(n->op), n->name, n->in[k]);
            last[n->in[k]] = i;
        }
    }
    for (int o = 0; o < g->n_outputs; o++)
        last[g->outputs[o].node] = g->n_nodes;
    return last;
}

static void drop(Value *v)
{
    if (v->owned)
        free(v->t.data);
    v->t.data = NULL;
    v->owned = v->ready = false;
}

// Produce the value of node n into v (borrowed for sources, computed otherwise).
// OP_CACHE_WRITE: x [.., S, D] into state[index][.., at : at + S, :] (the state tensor's data
// changes, as the generated code's does), then the value is a copy of state[index].
static bool op_cache_write(const Node *n, Tensor *st, const Tensor *x, const int64_t *sym_val,
                           Tensor *out, FILE *err)
{
    int r = x->rank;
    int64_t S = x->dim[r - 2], D = x->dim[r - 1], T = st->dim[r - 1];
    int64_t at = sym_val[n->attr.cache_write.at_sym];
    if (at + S > T) {
        node_error(err, n, "cache_write '%s': positions %lld..%lld are past the %lld the state "
                   "keeps (the context is full)", n->name, (long long)at, (long long)(at + S - 1),
                   (long long)T);
        return false;
    }
    int64_t lead = S > 0 && D > 0 ? tensor_numel(x) / (S * D) : 0;
    float *slot = (float *)st->data + n->attr.cache_write.index * lead * T * D;
    const float *px = x->data;
    for (int64_t m = 0; m < lead; m++)
        memcpy(slot + (m * T + at) * D, px + m * S * D, (size_t)(S * D) * sizeof(float));
    out->data = xmalloc((size_t)(lead * T * D + 1) * sizeof(float));
    memcpy(out->data, slot, (size_t)(lead * T * D) * sizeof(float));
    return true;
}

static bool run_node(const Graph *g, const Node *n, const InterpEnv *env, Value *vals,
                     const int64_t *sym_val, FILE *err)
{
    Value *v = &vals[n->id];
    if (!concrete_shape(g, &n->type, sym_val, &v->t, n, err))
        return false;
    switch (n->op) {
    case OP_INPUT:
        v->t.data = env->inputs[n->attr.input.index].data;
        break;
    case OP_WEIGHT: {
        const void *p = env->weight(env->weight_ctx, n->attr.weight.tensor, &n->type);
        if (!p)
            return false;       // the callback has reported it
        v->t.data = (void *)p;
        break;
    }
    case OP_CONST:
        v->t.data = n->attr.constant.data;
        break;
    case OP_STATE:      // a run of the interpreter starts from a fresh (zero) state
        v->t.data = xcalloc((size_t)tensor_numel(&v->t) + 1, dtype_size(v->t.dtype));
        v->owned = true;
        break;
    case OP_CACHE_WRITE:
        if (!op_cache_write(n, &vals[n->in[0]].t, &vals[n->in[1]].t, sym_val, &v->t, err))
            return false;
        v->owned = true;
        break;
    default: {
        const Tensor *in[KILN_MAX_IN];
        for (int k = 0; k < n->n_in; k++) {
            if (!vals[n->in[k]].ready)
                KILN_BUG("interp: %s '%s': input %d not computed", op_name(n->op), n->name, k);
            in[k] = &vals[n->in[k]].t;
        }
        v->t.data = xcalloc((size_t)tensor_numel(&v->t), dtype_size(v->t.dtype));
        v->owned = true;
        if (!eval_node(n, sym_val, in, &v->t, err)) {
            drop(v);
            return false;
        }
    }
    }
    v->ready = true;
    return true;
}

bool ir_interpret(const Graph *g, const InterpEnv *env, Tensor *outs, FILE *err)
{
    return ir_interpret_each(g, env, outs, err, NULL, NULL);
}

bool ir_interpret_each(const Graph *g, const InterpEnv *env, Tensor *outs, FILE *err,
                       InterpEach each, void *ctx)
{
    for (int o = 0; o < g->n_outputs; o++)
        outs[o].data = NULL;
    int64_t *sym_val = xmalloc((size_t)(g->n_syms + 1) * sizeof *sym_val);
    int *bound_by = xmalloc((size_t)(g->n_syms + 1) * sizeof *bound_by);
    for (int s = 0; s < g->n_syms; s++)
        sym_val[s] = -1;
    Value *vals = xcalloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *vals);
    int *last = NULL;
    bool ok = bind_inputs(g, env, sym_val, bound_by, err);
    if (ok)
        last = last_uses(g);

    for (int i = 0; ok && i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->dead)
            continue;
        ok = run_node(g, n, env, vals, sym_val, err);
        if (ok && each)
            ok = each(ctx, n, &vals[i].t);
        // Free what no later node reads, this node included if nobody reads it.
        for (int k = 0; ok && k < n->n_in; k++)
            if (last[n->in[k]] == i && vals[n->in[k]].ready)
                drop(&vals[n->in[k]]);
        if (ok && last[i] == i)
            drop(&vals[i]);
    }

    for (int o = 0; ok && o < g->n_outputs; o++) {
        const Value *v = &vals[g->outputs[o].node];
        if (!v->ready)
            KILN_BUG("interp: output '%s' was not computed", g->outputs[o].name);
        size_t bytes = (size_t)tensor_numel(&v->t) * dtype_size(v->t.dtype);
        outs[o] = v->t;
        outs[o].data = xmalloc(bytes);
        if (bytes)
            memcpy(outs[o].data, v->t.data, bytes);
    }

    for (int i = 0; i < g->n_nodes; i++)
        drop(&vals[i]);
    free(vals);
    free(last);
    free(bound_by);
    free(sym_val);
    return ok;
}

/* =======================================================================================
 * Constant evaluation, for ir/fold_constants.c
 * ======================================================================================= */

// Besides nodes whose inputs are all static constants, this evaluates OP_ARANGE of a static
// size: a source, but one computed from its attributes alone.  A data error (integer
// division by zero, a gather id out of range) is not reported here: the node is left for
// run time, where the error is reported with the actual data.
void *interp_eval_const(const Graph *g, const Node *n)
{
    if (n->dead || !type_is_static(&n->type))
        return NULL;
    if (op_info[n->op].cls == OPC_SOURCE && n->op != OP_ARANGE)
        return NULL;
    if (n->op == OP_ARANGE && n->attr.arange.has_start_sym)    // known at run time only
        return NULL;
    const Tensor *in[KILN_MAX_IN];
    Tensor in_t[KILN_MAX_IN];
    for (int k = 0; k < n->n_in; k++) {
        const Node *p = &g->nodes[n->in[k]];
        if (p->dead || p->op != OP_CONST || !type_is_static(&p->type))
            return NULL;
        if (!concrete_shape(g, &p->type, NULL, &in_t[k], p, NULL))
            return NULL;
        in_t[k].data = p->attr.constant.data;
        in[k] = &in_t[k];
    }
    Tensor out;
    if (!concrete_shape(g, &n->type, NULL, &out, n, NULL))
        return NULL;
    out.data = xcalloc((size_t)tensor_numel(&out), dtype_size(out.dtype));
    if (!eval_node(n, NULL, in, &out, NULL)) {
        free(out.data);
        return NULL;
    }
    return out.data;
}
