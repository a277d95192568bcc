/* ir/fuse_attention.c: the fuse-attention pass.
 *
 * Finds scaled dot-product attention written in primitives, as the specs in models/ write it,
 *
 *   s = matmul(Q, K, trans_b)                       Q [.., Sq, D], K [.., Sk, D]
 *   s = scale(s) | mul(s, c) | mul(c, s) | div(s, c)    c a scalar constant    (optional)
 *   s = causal_mask(s)                                                          (optional)
 *   s = add(s, M) | add(M, s)       M broadcastable to [.., Sq, Sk]              (optional)
 *       (causal_mask and add in either order)
 *   p = softmax(s)                                  over the last axis
 *   o = matmul(p, V)                                V [.., Sk, Dv]
 *
 * and replaces it by one node  o = fused_attention(Q, K, V[, M]) {scale, causal}, which the
 * code generator lowers to a streaming kernel that never stores the [Sq, Sk] scores
 * (codegen/kernels_attention.c).  The rule looks at ops and shapes only, never at names.
 *
 * Conditions, each checked in this order; a chain that has the structure but fails one is
 * left alone with a note saying which (ir_note; `kiln inspect --after fuse-attention`).
 * Every chain, fused or not, is also recorded with its spec places (ir_candidate; `kiln
 * inspect --explain`):
 *   - every intermediate (s after each step, p) has exactly one reader and is not an output,
 *     so removing it changes nothing else;
 *   - Q, K and V have the same rank and identical leading dims (no broadcasting: the kernel
 *     walks one matrix of each per leading index);
 *   - M, if any, is f32 and broadcasts into the scores without changing their shape;
 *   - a scale constant is finite (and a divisor non-zero).
 *
 * The fused node keeps the final matmul's name and slot in the node list (every input, V
 * included, is defined before it), takes the first matmul's SrcLoc, and lists every chain
 * node in its origins, in spec order.  A scalar constant only the chain read is dropped.
 *
 * Exactness: the kernel adds the mask and then applies the causal mask; when a spec applies
 * causal_mask first, -inf + M is -inf for every M but +inf and NaN, so the two orders agree
 * unless the mask holds +inf or NaN above the diagonal.
 */
#include "ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHAIN 6     // qk, scale, causal_mask, add, softmax, matmul

// The scores type printed for notes: "[batch, 12, seq, seq]".
static const char *shape_of(const Graph *g, const Node *n, char *buf, size_t len)
{
    return shape_str(g, &n->type, buf, len);
}

// A scalar f32 constant (one element, any rank) whose value is *v.
static bool scalar_const(const Graph *g, NodeId id, double *v)
{
    const Node *c = &g->nodes[id];
    if (c->op != OP_CONST || c->type.dtype != DT_F32 || type_numel_max(&c->type) != 1 ||
        !type_is_static(&c->type))
        return false;
    *v = (double)*(const float *)c->attr.constant.data;
    return true;
}

static bool same_type(const Type *a, const Type *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank)
        return false;
    for (int k = 0; k < a->rank; k++)
        if (!dim_eq(a->dim[k], b->dim[k]))
            return false;
    return true;
}

static bool is_qk(const Node *n)
{
    return n->op == OP_MATMUL && n->attr.matmul.trans_b && !n->attr.matmul.trans_a &&
           n->type.rank >= 2;
}

// Whether x is q k^T, possibly scaled and causally masked: which operand of an add is the
// scores (the other is the mask).  Only steps of the rule are followed.
static bool reaches_qk(const Graph *g, NodeId x, int depth)
{
    const Node *n = &g->nodes[x];
    double v;
    if (depth > 3)
        return false;
    switch (n->op) {
    case OP_MATMUL: return is_qk(n);
    case OP_SCALE:
    case OP_CAUSAL_MASK: return reaches_qk(g, n->in[0], depth + 1);
    case OP_ADD: return reaches_qk(g, n->in[0], depth + 1) || reaches_qk(g, n->in[1], depth + 1);
    case OP_MUL:
        return (scalar_const(g, n->in[1], &v) && reaches_qk(g, n->in[0], depth + 1)) ||
               (scalar_const(g, n->in[0], &v) && reaches_qk(g, n->in[1], depth + 1));
    case OP_DIV: return scalar_const(g, n->in[1], &v) && reaches_qk(g, n->in[0], depth + 1);
    default: return false;
    }
}

// Chain: one matched candidate, from the softmax back to q k^T.
typedef struct {
    NodeId node[MAX_CHAIN];     // chain nodes, the final matmul included, any order
    int n_node;
    NodeId qk, softmax, final;
    NodeId mask;                // -1: none
    NodeId add;                 // the add of the mask, or -1
    NodeId scale_const;         // the constant of a mul/div scale, or -1
    double scale;
    bool causal;
    int causal_offset;      // the causal_mask's offset symbol, or -1 (Sk - Sq)
} Chain;

static void push(Chain *c, NodeId id)
{
    if (c->n_node == MAX_CHAIN)
        KILN_BUG("fuse-attention: chain longer than %d", MAX_CHAIN);
    c->node[c->n_node++] = id;
}

// The candidate as `kiln inspect --explain` lists it: the chain's nodes up to the softmax, in
// spec order, as far as the match got ("attention h.0.attn.{qk -> scaled -> probs}", the
// names' common prefix once), placed at the first, and the final matmul it fuses into.
static Candidate candidate(Graph *g, const Chain *c)
{
    NodeId id[MAX_CHAIN];       // the chain but the final matmul, in id (= spec) order
    int n = 0;
    for (int i = 0; i < c->n_node; i++) {
        if (c->node[i] == c->final)
            continue;
        int j = n++;
        for (; j > 0 && id[j - 1] > c->node[i]; j--)
            id[j] = id[j - 1];
        id[j] = c->node[i];
    }
    size_t pre = 0;             // the longest common prefix that ends with a '.'
    const char *first = g->nodes[id[0]].name;
    for (size_t k = 0; n > 1 && first[k]; k++) {
        bool same = true;
        for (int i = 1; i < n && same; i++)
            same = g->nodes[id[i]].name[k] == first[k];
        if (!same)
            break;
        if (first[k] == '.')
            pre = k + 1;
    }
    char text[1024];
    int len = snprintf(text, sizeof text, "attention %.*s%s", (int)pre, first, pre ? "{" : "");
    for (int i = 0; i < n && len < (int)sizeof text; i++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%s%s", i ? " -> " : "",
                        g->nodes[id[i]].name + pre);
    if (pre && len < (int)sizeof text)
        snprintf(text + len, sizeof text - (size_t)len, "}");
    const Node *f = &g->nodes[c->final];
    return (Candidate){.pass = "fuse-attention", .what = arena_strdup(&g->arena, text),
                       .loc = g->nodes[id[0]].loc, .into = {f->op, f->name, f->loc}};
}

// A chain that fails a condition: its note (`kiln inspect --after fuse-attention`) and its
// candidate record (`--explain`).  Returns false.
static bool reject(Graph *g, const Chain *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool reject(Graph *g, const Chain *c, const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    ir_note(g, "not fused: %s", why);
    Candidate cand = candidate(g, c);
    cand.why = arena_strdup(&g->arena, why);
    ir_candidate(g, &cand);
    return false;
}

// Walk back from softmax `sm` (read by matmul `final` as its a) to q k^T.  Returns false
// with a note when the softmax's input is not the rule's chain.
static bool match_chain(Graph *g, NodeId final, NodeId sm, Chain *c)
{
    memset(c, 0, sizeof *c);
    c->final = final;
    c->softmax = sm;
    c->mask = c->add = c->scale_const = -1;
    c->scale = 1.0;
    push(c, final);
    push(c, sm);
    NodeId x = g->nodes[sm].in[0];
    bool seen_add = false;
    for (int step = 0; step < 2; step++) {     // causal_mask and add, in either order
        const Node *n = &g->nodes[x];
        if (n->op == OP_CAUSAL_MASK && !c->causal) {
            c->causal = true;
            c->causal_offset = n->attr.causal.has_offset ? n->attr.causal.offset_sym : -1;
            push(c, x);
            x = n->in[0];
        } else if (n->op == OP_ADD && !seen_add) {
            seen_add = true;
            int s = reaches_qk(g, n->in[0], 0) ? 0 : reaches_qk(g, n->in[1], 0) ? 1 : -1;
            if (s < 0)
                break;      // reported below as "not q k^T"
            c->add = x;
            c->mask = n->in[1 - s];
            push(c, x);
            x = n->in[s];
        } else {
            break;
        }
    }
    const Node *n = &g->nodes[x];
    double v;
    if (n->op == OP_SCALE) {
        c->scale = n->attr.scale.by;
        push(c, x);
        x = n->in[0];
    } else if (n->op == OP_MUL &&
               (scalar_const(g, n->in[1], &v) || scalar_const(g, n->in[0], &v))) {
        int s = scalar_const(g, n->in[1], &v) ? 0 : 1;     // the scores' operand; v is set
        c->scale = v;
        c->scale_const = n->in[1 - s];
        push(c, x);
        x = n->in[s];
    } else if (n->op == OP_DIV && scalar_const(g, n->in[1], &v)) {
        if (v == 0 || !isfinite(v)) {
            push(c, x);
            return reject(g, c, "div '%s' divides the scores by %g", n->name, v);
        }
        c->scale = 1.0 / v;
        c->scale_const = n->in[1];
        push(c, x);
        x = n->in[0];
    }
    n = &g->nodes[x];
    if (!is_qk(n))
        return reject(g, c, "softmax '%s' (read by matmul '%s') does not read q k^T through "
                            "scale, causal_mask or add: found %s '%s'", g->nodes[sm].name,
                      g->nodes[final].name, op_name(n->op), n->name);
    if (!isfinite(c->scale))
        return reject(g, c, "the scores of '%s' are scaled by %g", n->name, c->scale);
    c->qk = x;
    push(c, x);
    return true;
}

// The conditions on a matched chain; false with a note naming the first that fails.
static bool chain_ok(Graph *g, const Chain *c, const int *readers, const bool *is_output)
{
    char s1[256], s2[256];
    // Intermediates in spec order (ids are topological = spec order within the chain).
    NodeId sorted[MAX_CHAIN];
    memcpy(sorted, c->node, sizeof sorted);
    for (int i = 1; i < c->n_node; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            NodeId t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    for (int i = 0; i < c->n_node; i++) {
        const Node *n = &g->nodes[sorted[i]];
        if (n->id == c->final)
            continue;
        if (readers[n->id] != 1)
            return reject(g, c, "%s '%s' has %d readers", op_name(n->op), n->name,
                          readers[n->id]);
        if (is_output[n->id])
            return reject(g, c, "%s '%s' is a model output", op_name(n->op), n->name);
    }
    const Node *qk = &g->nodes[c->qk], *fin = &g->nodes[c->final];
    const Node *q = &g->nodes[qk->in[0]], *k = &g->nodes[qk->in[1]], *v = &g->nodes[fin->in[1]];
    const Node *other[2] = {k, v};
    for (int i = 0; i < 2; i++) {
        const Node *o = other[i];
        bool same = o->type.rank == q->type.rank && q->type.rank >= 2;
        for (int a = 0; same && a < q->type.rank - 2; a++)
            same = dim_eq(o->type.dim[a], q->type.dim[a]);
        if (!same)
            return reject(g, c, "%s '%s' is %s but q '%s' is %s: the leading dims differ",
                          i == 0 ? "k" : "v", o->name, shape_of(g, o, s1, sizeof s1), q->name,
                          shape_of(g, q, s2, sizeof s2));
    }
    if (q->type.dtype != DT_F32 || k->type.dtype != DT_F32 || v->type.dtype != DT_F32)
        KILN_BUG("fuse-attention: matmul of non-f32 values");
    // Every step keeps the scores' type (a mul by a [1, 1, 1, 1] constant could widen it).
    for (int i = 0; i < c->n_node; i++) {
        const Node *n = &g->nodes[c->node[i]];
        if (n->id != c->final && !same_type(&n->type, &qk->type))
            return reject(g, c, "%s '%s' is %s, not the scores' shape %s", op_name(n->op),
                          n->name, shape_of(g, n, s1, sizeof s1), shape_of(g, qk, s2, sizeof s2));
    }
    if (c->mask >= 0) {
        const Node *m = &g->nodes[c->mask];
        int r = qk->type.rank;
        bool ok = m->type.dtype == DT_F32 && m->type.rank <= r;
        for (int a = 0; ok && a < m->type.rank; a++) {
            Dim want = qk->type.dim[a + r - m->type.rank], have = m->type.dim[a];
            ok = dim_eq(have, want) || (have.sym < 0 && have.size == 1);
        }
        if (!ok)
            return reject(g, c, "mask '%s' of add '%s' is %s%s, which does not broadcast "
                                "into the scores %s", m->name, g->nodes[c->add].name,
                          dtype_name(m->type.dtype), shape_of(g, m, s1, sizeof s1),
                          shape_of(g, qk, s2, sizeof s2));
    }
    return true;
}

// Turn the final matmul into the fused node and drop the rest of the chain.
static void fuse(Graph *g, const Chain *c, const int *readers)
{
    NodeId sorted[MAX_CHAIN];
    memcpy(sorted, c->node, sizeof sorted);
    for (int i = 1; i < c->n_node; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            NodeId t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    int n_origins = 0;
    for (int i = 0; i < c->n_node; i++)
        n_origins += g->nodes[sorted[i]].n_origins;
    Origin *origins = arena_alloc(&g->arena, (size_t)n_origins * sizeof *origins);
    int o = 0;
    for (int i = 0; i < c->n_node; i++) {
        const Node *n = &g->nodes[sorted[i]];
        memcpy(origins + o, n->origins, (size_t)n->n_origins * sizeof *origins);
        o += n->n_origins;
    }

    const Node *qk = &g->nodes[c->qk];
    Node *f = &g->nodes[c->final];
    NodeId in[4] = {qk->in[0], qk->in[1], f->in[1], c->mask};
    SrcLoc loc = qk->loc;
    f->op = OP_ATTENTION;
    memset(&f->attr, 0, sizeof f->attr);
    f->attr.attention.scale = c->scale;
    f->attr.attention.causal = c->causal;
    f->attr.attention.has_offset = c->causal && c->causal_offset >= 0;
    f->attr.attention.offset_sym = c->causal_offset;
    f->n_in = c->mask >= 0 ? 4 : 3;
    memcpy(f->in, in, sizeof in);
    f->loc = loc;
    f->origins = origins;
    f->n_origins = n_origins;
    for (int i = 0; i < c->n_node; i++)
        if (c->node[i] != c->final)
            g->nodes[c->node[i]].dead = true;
    if (c->scale_const >= 0 && readers[c->scale_const] == 1)
        g->nodes[c->scale_const].dead = true;
}

// Whether node x is a transpose that swaps dims r - 3 and r - 2 of a rank >= 3 value (the
// heads and the sequence: [.., S, H, D] <-> [.., H, S, D]) and keeps the others.
static bool swaps_heads(const Node *x)
{
    int r = x->type.rank;
    if (x->op != OP_TRANSPOSE || r < 3)
        return false;
    for (int a = 0; a < r; a++) {
        int want = a == r - 3 ? r - 2 : a == r - 2 ? r - 3 : a;
        if (x->attr.transpose.perm[a] != want)
            return false;
    }
    return true;
}

// Add origins [x, x + n) to f's, before them (first) or after.
static void take_origins(Graph *g, Node *f, const Origin *x, int n, bool first)
{
    Origin *o = arena_alloc(&g->arena, (size_t)(f->n_origins + n) * sizeof *o);
    memcpy(o + (first ? n : 0), f->origins, (size_t)f->n_origins * sizeof *o);
    memcpy(o + (first ? 0 : f->n_origins), x, (size_t)n * sizeof *o);
    f->origins = o;
    f->n_origins += n;
}

// The heads' transposes around fused node `att`, read in place instead: when q is
// swaps_heads of a value nothing else reads, the node reads that value seq-major
// ([.., S, H, D]); and when the node's one reader is such a transpose (and the node is no
// output), that transpose becomes the fused node, writing seq-major.  q is then read from the
// projection's [.., S, H * D] output where it is, and the heads are merged back by writing
// each output row in place: two copies of the activations fewer per attention.  k and v keep
// their transposes: the kernel reads each block of keys and values many times (once per tile
// of query rows), and rows H * D apart (3 KiB in BERT-base) fall into a few L1 sets and many
// pages; measured on BERT-base seq 512, reading them in place made the kernel 8% slower than
// the copies it saved.  The kernel supports seq-major k and v all the same (ATT_K, ATT_V).
// The origins become q's transpose, the chain, the output transpose.  Returns the fused
// node's id (the reader's when it moved).
static NodeId absorb_transposes(Graph *g, NodeId att, const int *readers, const bool *is_output)
{
    Node *f = &g->nodes[att];
    Node *x = &g->nodes[f->in[0]];
    if (swaps_heads(x) && readers[x->id] == 1 && !is_output[x->id] && x->n_epi == 0) {
        f->in[0] = x->in[0];
        f->attr.attention.seq_major |= ATT_Q;
        take_origins(g, f, x->origins, x->n_origins, true);
        x->dead = true;
    }
    if (readers[att] != 1 || is_output[att])
        return att;
    for (int i = att + 1; i < g->n_nodes; i++) {
        Node *t = &g->nodes[i];
        if (t->dead || t->n_in < 1 || t->in[0] != att)
            continue;
        if (!swaps_heads(t) || t->n_epi > 0)
            return att;
        t->op = OP_ATTENTION;
        t->attr = f->attr;
        t->attr.attention.seq_major |= ATT_OUT;
        t->n_in = f->n_in;
        memcpy(t->in, f->in, sizeof t->in);
        t->loc = f->loc;
        take_origins(g, t, f->origins, f->n_origins, true);
        f->dead = true;
        return i;
    }
    return att;
}

bool ir_fuse_attention(Graph *g)
{
    int nn = g->n_nodes ? g->n_nodes : 1;
    int *readers = xcalloc((size_t)nn, sizeof *readers);
    bool *is_output = xcalloc((size_t)nn, sizeof *is_output);
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (!n->dead)
            for (int k = 0; k < n->n_in; k++)
                readers[n->in[k]]++;
    }
    for (int o = 0; o < g->n_outputs; o++)
        is_output[g->outputs[o].node] = true;

    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *f = &g->nodes[i];
        // The anchor: a softmax read as the left operand of a plain matmul.
        if (f->dead || f->op != OP_MATMUL || f->attr.matmul.trans_a || f->attr.matmul.trans_b ||
            f->type.rank < 2 || g->nodes[f->in[0]].op != OP_SOFTMAX)
            continue;
        Chain c;
        if (!match_chain(g, i, f->in[0], &c) || !chain_ok(g, &c, readers, is_output))
            continue;
        Candidate cand = candidate(g, &c);
        fuse(g, &c, readers);
        NodeId at = absorb_transposes(g, i, readers, is_output);
        cand.fused = true;
        cand.result = (Origin){g->nodes[at].op, g->nodes[at].name, g->nodes[at].loc};
        ir_candidate(g, &cand);
        changed = true;
    }
    free(readers);
    free(is_output);
    if (changed)
        ir_compact(g);
    return changed;
}
