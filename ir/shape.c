/* ir/shape.c: shape and dtype inference.
 *
 * shape_infer_node() is the single definition of what shapes each op accepts and produces;
 * the node constructors call it, so a graph never holds a node with an invalid type, and
 * ir_infer_shapes() re-runs it after every pass to catch passes that break a type.
 * Symbolic dims compare by symbol: [batch, seq] matches [batch, seq] and nothing else, and
 * only a static 1 broadcasts.
 */
#include "ir.h"

#include <string.h>

// Largest element count of one tensor (at the symbolic bounds): 2^36 elements, 256 GiB of f32.
#define MAX_NUMEL ((int64_t)1 << 36)

char *shape_str(const Graph *g, const Type *t, char *buf, size_t n)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < t->rank && len < n; k++) {
        const char *sep = k ? ", " : "";
        if (t->dim[k].sym >= 0 && t->dim[k].sym < g->n_syms)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", sep, g->syms[t->dim[k].sym].name);
        else
            len += (size_t)snprintf(buf + len, n - len, "%s%lld", sep, (long long)t->dim[k].size);
    }
    if (len < n)
        snprintf(buf + len, n - len, "]");
    return buf;
}

// "f32[batch, 64]" into buf.
static char *type_str(const Graph *g, const Type *t, char *buf, size_t n)
{
    char s[256];
    snprintf(buf, n, "%s%s", dtype_name(t->dtype), shape_str(g, t, s, sizeof s));
    return buf;
}

static const Node *input(const Graph *g, const Node *n, int k) { return &g->nodes[n->in[k]]; }

// Point at the producer of input k: "note: 'q' is defined here as f32[batch, 4, seq, 16]".
static void note_input(const Graph *g, Diag *d, const Node *n, int k)
{
    const Node *p = input(g, n, k);
    char t[300];
    diag_note(d, p->loc, "'%s' is defined here as %s", p->name, type_str(g, &p->type, t, sizeof t));
}

static bool fail_dtype(const Graph *g, Diag *d, const Node *n, int k, const char *want)
{
    const Node *p = input(g, n, k);
    diag_error(d, n->loc, "%s '%s': input %d ('%s') is %s, expected %s", op_name(n->op), n->name,
               k + 1, p->name, dtype_name(p->type.dtype), want);
    note_input(g, d, n, k);
    return false;
}

static bool want_f32(const Graph *g, Diag *d, const Node *n, int k)
{
    return input(g, n, k)->type.dtype == DT_F32 || fail_dtype(g, d, n, k, "f32");
}

static bool numel_ok(const Graph *g, Diag *d, const Node *n)
{
    int64_t numel = 1;
    for (int k = 0; k < n->type.rank; k++) {
        int64_t s = n->type.dim[k].size;
        if (s < 0 || (s > 0 && numel > MAX_NUMEL / s)) {
            char t[300];
            diag_error(d, n->loc, "%s '%s': %s has more than 2^36 elements", op_name(n->op),
                       n->name, shape_str(g, &n->type, t, sizeof t));
            return false;
        }
        numel *= s;
    }
    return true;
}

static bool infer_broadcast(Graph *g, Node *n, Diag *d)
{
    const Node *a = input(g, n, 0), *b = input(g, n, 1);
    if (a->type.dtype != b->type.dtype) {
        diag_error(d, n->loc, "%s '%s': dtypes differ: '%s' is %s, '%s' is %s", op_name(n->op),
                   n->name, a->name, dtype_name(a->type.dtype), b->name, dtype_name(b->type.dtype));
        note_input(g, d, n, 0);
        note_input(g, d, n, 1);
        return false;
    }
    if (a->type.dtype == DT_I64)
        return fail_dtype(g, d, n, 0, "f32 or i32");
    int rank = a->type.rank > b->type.rank ? a->type.rank : b->type.rank;
    Type t = {.dtype = a->type.dtype, .rank = rank};
    for (int k = 0; k < rank; k++) {
        int ka = k - (rank - a->type.rank), kb = k - (rank - b->type.rank);
        Dim da = ka >= 0 ? a->type.dim[ka] : (Dim){1, -1};
        Dim db = kb >= 0 ? b->type.dim[kb] : (Dim){1, -1};
        if (dim_eq(da, db))
            t.dim[k] = da;
        else if (da.sym < 0 && da.size == 1)
            t.dim[k] = db;
        else if (db.sym < 0 && db.size == 1)
            t.dim[k] = da;
        else {
            char sa[256], sb[256];
            diag_error(d, n->loc, "%s '%s': shapes do not broadcast: '%s' is %s, '%s' is %s",
                       op_name(n->op), n->name, a->name, shape_str(g, &a->type, sa, sizeof sa),
                       b->name, shape_str(g, &b->type, sb, sizeof sb));
            note_input(g, d, n, 0);
            note_input(g, d, n, 1);
            return false;
        }
    }
    n->type = t;
    return true;
}

static bool infer_matmul(Graph *g, Node *n, Diag *d)
{
    const Node *a = input(g, n, 0), *b = input(g, n, 1);
    if (!want_f32(g, d, n, 0) || !want_f32(g, d, n, 1))
        return false;
    const Type *ta = &a->type, *tb = &b->type;
    if (ta->rank < 1 || tb->rank < 1) {
        diag_error(d, n->loc, "matmul '%s': inputs must have rank >= 1, '%s' has rank 0", n->name,
                   ta->rank < 1 ? a->name : b->name);
        return false;
    }
    bool ta_t = n->attr.matmul.trans_a, tb_t = n->attr.matmul.trans_b;
    // a as [.., M, K], b as [.., K, N]; rank-1 a is a row [K], rank-1 b a column [K].
    Dim M = {1, -1}, N = {1, -1}, Ka, Kb;
    if (ta->rank == 1)
        Ka = ta->dim[0];
    else {
        M = ta->dim[ta->rank - (ta_t ? 1 : 2)];
        Ka = ta->dim[ta->rank - (ta_t ? 2 : 1)];
    }
    if (tb->rank == 1)
        Kb = tb->dim[0];
    else {
        Kb = tb->dim[tb->rank - (tb_t ? 1 : 2)];
        N = tb->dim[tb->rank - (tb_t ? 2 : 1)];
    }
    if (!dim_eq(Ka, Kb)) {
        char sa[256], sb[256];
        diag_error(d, n->loc, "matmul '%s': inner dimensions differ: %s is %s, %s is %s", n->name,
                   ta_t ? "a^T" : "a", shape_str(g, ta, sa, sizeof sa), tb_t ? "b^T" : "b",
                   shape_str(g, tb, sb, sizeof sb));
        note_input(g, d, n, 0);
        note_input(g, d, n, 1);
        return false;
    }
    int ba = ta->rank > 2 ? ta->rank - 2 : 0, bb = tb->rank > 2 ? tb->rank - 2 : 0;
    int nb = ba > bb ? ba : bb;
    Type t = {.dtype = DT_F32};
    for (int k = 0; k < nb; k++) {
        int ka = k - (nb - ba), kb = k - (nb - bb);
        Dim da = ka >= 0 ? ta->dim[ka] : (Dim){1, -1};
        Dim db = kb >= 0 ? tb->dim[kb] : (Dim){1, -1};
        if (dim_eq(da, db) || (db.sym < 0 && db.size == 1))
            t.dim[k] = da;
        else if (da.sym < 0 && da.size == 1)
            t.dim[k] = db;
        else {
            char sa[256], sb[256];
            diag_error(d, n->loc, "matmul '%s': batch dimensions do not broadcast: a is %s, b is %s",
                       n->name, shape_str(g, ta, sa, sizeof sa), shape_str(g, tb, sb, sizeof sb));
            note_input(g, d, n, 0);
            note_input(g, d, n, 1);
            return false;
        }
    }
    t.rank = nb;
    if (ta->rank > 1)
        t.dim[t.rank++] = M;
    if (tb->rank > 1)
        t.dim[t.rank++] = N;
    n->type = t;
    return true;
}

static bool infer_reshape(Graph *g, Node *n, Diag *d)
{
    const Node *x = input(g, n, 0);
    Type t = {.dtype = x->type.dtype, .rank = n->attr.reshape.rank};
    if (t.rank < 0 || t.rank > KILN_MAX_RANK) {
        diag_error(d, n->loc, "reshape '%s': rank %d is outside [0, %d]", n->name, t.rank,
                   KILN_MAX_RANK);
        return false;
    }
    memcpy(t.dim, n->attr.reshape.dim, sizeof t.dim);
    // Same elements: equal products of static dims, and the same symbols as often.
    int64_t pa = 1, pb = 1;
    int syms_a[64] = {0}, syms_b[64] = {0};
    bool ok = true;
    for (int k = 0; k < x->type.rank; k++) {
        Dim dm = x->type.dim[k];
        if (dm.sym >= 0 && dm.sym < 64)
            syms_a[dm.sym]++;
        else
            pa *= dm.size;
    }
    for (int k = 0; k < t.rank; k++) {
        Dim dm = t.dim[k];
        if (dm.sym >= 0) {
            if (dm.sym >= g->n_syms || dm.sym >= 64)
                KILN_BUG("reshape: symbol %d of %d", dm.sym, g->n_syms);
            t.dim[k].size = g->syms[dm.sym].max;
            syms_b[dm.sym]++;
        } else if (dm.size < 0) {
            ok = false;
        } else {
            if (dm.size && pb > MAX_NUMEL / dm.size)
                ok = false;
            pb *= dm.size;
        }
    }
    if (ok && (pa != pb || memcmp(syms_a, syms_b, sizeof syms_a) != 0))
        ok = false;
    if (!ok) {
        char sa[256], sb[256];
        diag_error(d, n->loc, "reshape '%s': cannot reshape %s into %s: element counts differ",
                   n->name, shape_str(g, &x->type, sa, sizeof sa), shape_str(g, &t, sb, sizeof sb));
        note_input(g, d, n, 0);
        return false;
    }
    n->type = t;
    return true;
}

static bool infer_transpose(Graph *g, Node *n, Diag *d)
{
    const Node *x = input(g, n, 0);
    int rank = x->type.rank;
    bool seen[KILN_MAX_RANK] = {false};
    Type t = {.dtype = x->type.dtype, .rank = rank};
    for (int k = 0; k < rank; k++) {
        int p = n->attr.transpose.perm[k];
        if (p < 0 || p >= rank || seen[p]) {
            char s[256];
            diag_error(d, n->loc, "transpose '%s': perm is not a permutation of the %d axes of %s",
                       n->name, rank, shape_str(g, &x->type, s, sizeof s));
            return false;
        }
        seen[p] = true;
        t.dim[k] = x->type.dim[p];
    }
    n->type = t;
    return true;
}

static bool infer_slice(Graph *g, Node *n, Diag *d)
{
    const Node *x = input(g, n, 0);
    int ax = n->attr.slice.axis;
    char s[256];
    if (ax < 0 || ax >= x->type.rank) {
        diag_error(d, n->loc, "slice '%s': axis %d is outside the %d axes of %s", n->name, ax,
                   x->type.rank, shape_str(g, &x->type, s, sizeof s));
        return false;
    }
    Dim dm = x->type.dim[ax];
    int64_t start = n->attr.slice.start, end = n->attr.slice.end;
    int64_t limit = dm.sym >= 0 ? 1 : dm.size;   // a symbolic dim is at least 1
    if (start < 0 || end <= start || end > limit) {
        if (dm.sym >= 0)
            diag_error(d, n->loc,
                       "slice '%s': [%lld, %lld) on symbolic dim '%s' must lie within [0, 1), "
                       "its smallest size", n->name, (long long)start, (long long)end,
                       g->syms[dm.sym].name);
        else
            diag_error(d, n->loc, "slice '%s': [%lld, %lld) is outside [0, %lld) on axis %d of %s",
                       n->name, (long long)start, (long long)end, (long long)dm.size, ax,
                       shape_str(g, &x->type, s, sizeof s));
        return false;
    }
    n->type = x->type;
    n->type.dim[ax] = (Dim){end - start, -1};
    return true;
}

// cache_write(state [L, .., T, D], x [.., S, D]) {index, at} -> state[index] [.., T, D].
static bool infer_cache_write(Graph *g, Node *n, Diag *d)
{
    const Node *st = input(g, n, 0), *x = input(g, n, 1);
    char a[256], b[256];
    if (st->op != OP_STATE) {
        diag_error(d, n->loc, "cache_write '%s': the first input must be a state (spec "
                   "`state:`), found %s '%s'", n->name, op_name(st->op), st->name);
        return false;
    }
    if (!want_f32(g, d, n, 1))
        return false;
    bool ok = st->type.rank == x->type.rank + 1 && x->type.rank >= 2;
    for (int k = 0; ok && k < x->type.rank; k++)
        ok = k == x->type.rank - 2 || dim_eq(st->type.dim[k + 1], x->type.dim[k]);
    if (!ok) {
        diag_error(d, n->loc, "cache_write '%s': state '%s' %s cannot hold %s '%s' %s: the state "
                   "must be [layers] + the value's shape, with its rows axis (second to last) "
                   "as long as the positions it keeps", n->name, st->name,
                   shape_str(g, &st->type, a, sizeof a), op_name(x->op), x->name,
                   shape_str(g, &x->type, b, sizeof b));
        return false;
    }
    if (st->type.dim[st->type.rank - 2].sym >= 0) {
        diag_error(d, n->loc, "cache_write '%s': the rows axis of state '%s' must be static",
                   n->name, st->name);
        return false;
    }
    int64_t index = n->attr.cache_write.index, layers = st->type.dim[0].size;
    if (st->type.dim[0].sym >= 0 || index < 0 || index >= layers) {
        diag_error(d, n->loc, "cache_write '%s': index %lld is outside the %lld slots of state "
                   "'%s' %s", n->name, (long long)index, (long long)layers, st->name,
                   shape_str(g, &st->type, a, sizeof a));
        return false;
    }
    n->type = st->type;
    n->type.rank = st->type.rank - 1;
    for (int k = 0; k < n->type.rank; k++)
        n->type.dim[k] = st->type.dim[k + 1];
    return true;
}

static bool infer_concat(Graph *g, Node *n, Diag *d)
{
    const Node *x0 = input(g, n, 0);
    int ax = n->attr.concat.axis;
    char s[256], s2[256];
    if (ax < 0 || ax >= x0->type.rank) {
        diag_error(d, n->loc, "concat '%s': axis %d is outside the %d axes of %s", n->name, ax,
                   x0->type.rank, shape_str(g, &x0->type, s, sizeof s));
        return false;
    }
    Type t = x0->type;
    int64_t total = 0;
    for (int i = 0; i < n->n_in; i++) {
        const Node *x = input(g, n, i);
        bool ok = x->type.rank == t.rank && x->type.dtype == t.dtype;
        for (int k = 0; ok && k < t.rank; k++)
            if (k != ax && !dim_eq(x->type.dim[k], t.dim[k]))
                ok = false;
        if (ok && x->type.dim[ax].sym >= 0) {
            diag_error(d, n->loc, "concat '%s': axis %d of '%s' is symbolic ('%s'); concat needs "
                       "static sizes on its axis", n->name, ax, x->name,
                       g->syms[x->type.dim[ax].sym].name);
            return false;
        }
        if (!ok) {
            diag_error(d, n->loc, "concat '%s': '%s' is %s%s but '%s' is %s%s", n->name, x0->name,
                       dtype_name(x0->type.dtype), shape_str(g, &x0->type, s, sizeof s), x->name,
                       dtype_name(x->type.dtype), shape_str(g, &x->type, s2, sizeof s2));
            note_input(g, d, n, i);
            return false;
        }
        total += x->type.dim[ax].size;
    }
    t.dim[ax] = (Dim){total, -1};
    n->type = t;
    return true;
}

static bool infer_gather(Graph *g, Node *n, Diag *d)
{
    const Node *tab = input(g, n, 0), *ids = input(g, n, 1);
    char s[256];
    if (tab->type.rank < 1) {
        diag_error(d, n->loc, "gather '%s': the table '%s' must have rank >= 1", n->name, tab->name);
        return false;
    }
    if (tab->type.dim[0].sym >= 0) {
        diag_error(d, n->loc, "gather '%s': the table's first dim must be static, '%s' is %s",
                   n->name, tab->name, shape_str(g, &tab->type, s, sizeof s));
        return false;
    }
    if (ids->type.dtype != DT_I32)
        return fail_dtype(g, d, n, 1, "i32 (token ids)");
    int rank = ids->type.rank + tab->type.rank - 1;
    if (rank > KILN_MAX_RANK) {
        diag_error(d, n->loc, "gather '%s': result rank %d is above %d", n->name, rank,
                   KILN_MAX_RANK);
        return false;
    }
    Type t = {.dtype = tab->type.dtype, .rank = rank};
    for (int k = 0; k < ids->type.rank; k++)
        t.dim[k] = ids->type.dim[k];
    for (int k = 1; k < tab->type.rank; k++)
        t.dim[ids->type.rank + k - 1] = tab->type.dim[k];
    n->type = t;
    return true;
}

static bool infer_layer_norm(Graph *g, Node *n, Diag *d)
{
    const Node *x = input(g, n, 0);
    for (int i = 0; i < 3; i++)
        if (!want_f32(g, d, n, i))
            return false;
    if (x->type.rank < 1) {
        diag_error(d, n->loc, "layer_norm '%s': input must have rank >= 1", n->name);
        return false;
    }
    Dim last = x->type.dim[x->type.rank - 1];
    for (int i = 1; i < 3; i++) {
        const Node *p = input(g, n, i);
        if (p->type.rank != 1 || !dim_eq(p->type.dim[0], last)) {
            char s[256], s2[256];
            diag_error(d, n->loc, "layer_norm '%s': %s '%s' is %s, expected [%s] to match the last "
                       "axis of %s", n->name, i == 1 ? "gamma" : "beta", p->name,
                       shape_str(g, &p->type, s, sizeof s),
                       last.sym >= 0 ? g->syms[last.sym].name : (snprintf(s2, sizeof s2, "%lld",
                                                                          (long long)last.size), s2),
                       x->name);
            note_input(g, d, n, i);
            return false;
        }
    }
    if (!(n->attr.layer_norm.eps > 0)) {
        diag_error(d, n->loc, "layer_norm '%s': eps must be positive, found %g", n->name,
                   n->attr.layer_norm.eps);
        return false;
    }
    n->type = x->type;
    return true;
}

// fused_attention(q [.., Sq, D], k [.., Sk, D], v [.., Sk, Dv] [, mask]) -> [.., Sq, Dv], each
// operand read through attention_view (seq-major ones stored [.., S, H, D]).  Made by a pass
// from nodes that were already checked, so a failure here is a pass bug.
static bool infer_attention(Graph *g, Node *n, Diag *d)
{
    unsigned sm = n->attr.attention.seq_major;
    Type tq = attention_view(sm, ATT_Q, &input(g, n, 0)->type),
         tk = attention_view(sm, ATT_K, &input(g, n, 1)->type),
         tv = attention_view(sm, ATT_V, &input(g, n, 2)->type);
    const Type *q = &tq, *k = &tk, *v = &tv;
    int r = q->rank;
    if (sm && r < 3)
        KILN_BUG("fused_attention '%s': a seq-major operand needs rank >= 3", n->name);
    bool ok = r >= 2 && k->rank == r && v->rank == r && q->dtype == DT_F32 &&
              k->dtype == DT_F32 && v->dtype == DT_F32 && dim_eq(q->dim[r - 1], k->dim[r - 1]) &&
              dim_eq(k->dim[r - 2], v->dim[r - 2]);
    for (int a = 0; ok && a < r - 2; a++)
        ok = dim_eq(q->dim[a], k->dim[a]) && dim_eq(q->dim[a], v->dim[a]);
    if (ok && n->n_in == 4) {   // the mask broadcasts into [.., Sq, Sk]
        const Type *m = &input(g, n, 3)->type;
        ok = m->rank <= r && m->dtype == DT_F32;
        for (int a = 0; ok && a < m->rank; a++) {
            int full = a + r - m->rank;
            Dim want = full == r - 1 ? k->dim[r - 2] : q->dim[full];
            ok = dim_eq(m->dim[a], want) || (m->dim[a].sym < 0 && m->dim[a].size == 1);
        }
    }
    if (!ok)
        KILN_BUG("fused_attention '%s': inputs do not fit q [.., Sq, D], k [.., Sk, D], "
                 "v [.., Sk, Dv], mask [.., Sq, Sk]", n->name);
    Type out = *q;
    out.dim[r - 1] = v->dim[r - 1];
    n->type = attention_view(sm, ATT_OUT, &out);     // the swap is its own inverse
    (void)d;
    return true;
}

bool shape_infer_node(Graph *g, Node *n, Diag *d)
{
    const Node *x = n->n_in > 0 ? input(g, n, 0) : NULL;
    bool ok = true;
    switch (n->op) {
    case OP_INPUT:
    case OP_WEIGHT:
    case OP_CONST:
    case OP_ARANGE:
    case OP_STATE:
        break;   // the constructor set the type
    case OP_CACHE_WRITE: ok = infer_cache_write(g, n, d); break;
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
        ok = infer_broadcast(g, n, d);
        break;
    case OP_SCALE:
    case OP_RELU:
    case OP_TANH:
    case OP_GELU:
    case OP_SOFTMAX:
        ok = want_f32(g, d, n, 0);
        if (ok && n->op == OP_SOFTMAX && x->type.rank < 1) {
            diag_error(d, n->loc, "softmax '%s': input must have rank >= 1", n->name);
            ok = false;
        }
        if (ok)
            n->type = x->type;
        break;
    case OP_CAST:
        n->type = x->type;
        n->type.dtype = n->attr.cast.to;
        break;
    case OP_CAUSAL_MASK:
        ok = want_f32(g, d, n, 0);
        if (ok && x->type.rank < 2) {
            diag_error(d, n->loc, "causal_mask '%s': input must be [..., Sq, Sk], found rank %d",
                       n->name, x->type.rank);
            ok = false;
        }
        if (ok)
            n->type = x->type;
        break;
    case OP_MATMUL: ok = infer_matmul(g, n, d); break;
    case OP_LAYER_NORM: ok = infer_layer_norm(g, n, d); break;
    case OP_RESHAPE: ok = infer_reshape(g, n, d); break;
    case OP_TRANSPOSE: ok = infer_transpose(g, n, d); break;
    case OP_SLICE: ok = infer_slice(g, n, d); break;
    case OP_CONCAT: ok = infer_concat(g, n, d); break;
    case OP_GATHER: ok = infer_gather(g, n, d); break;
    case OP_ATTENTION: ok = infer_attention(g, n, d); break;
    case OP_COUNT: KILN_BUG("shape_infer_node: OP_COUNT");
    }
    return ok && numel_ok(g, d, n);
}

static bool type_eq(const Type *a, const Type *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank)
        return false;
    for (int k = 0; k < a->rank; k++)
        if (a->dim[k].sym != b->dim[k].sym || a->dim[k].size != b->dim[k].size)
            return false;
    return true;
}

bool ir_infer_shapes(Graph *g, Diag *d)
{
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        if (n->dead)
            continue;
        Type before = n->type;
        if (!shape_infer_node(g, n, d))
            return false;
        if (!type_eq(&before, &n->type)) {
            char a[300], b[300];
            KILN_BUG("shape of %%%d '%s' changed from %s to %s", n->id, n->name,
                     type_str(g, &before, a, sizeof a), type_str(g, &n->type, b, sizeof b));
        }
    }
    return true;
}
