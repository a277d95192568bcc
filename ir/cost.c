/* ir/cost.c: what each kernel costs: floating-point operations and bytes moved per forward.
 *
 * `kiln build --report` prints these per kernel with a roofline bound (compiler/report.c),
 * and a `--profile` build puts them in the binary to compare with measured times
 * (codegen/profile.c).  Both read the final IR, after every pass: a fused attention is one
 * kernel, a matmul with a fused bias and gelu is one kernel whose epilogue adds a FLOP per
 * element and step and whose bias is one more input read.
 *
 * Costs are polynomials in the symbolic dims (CostPoly), so a binary can evaluate them at the
 * dims of each run; the static dims are folded into the coefficients.
 *
 * Counting rules (docs/inspect.md has the table):
 *   FLOPs   a multiply-add is 2; every other arithmetic step on an element is 1, whatever
 *           it costs in instructions (tanh, gelu and exp count 1 each):
 *             matmul          2 M N K per matrix, + 1 per output element per epilogue step
 *             fused_attention per (query, key) pair the causal mask keeps: 2 D for q.k,
 *                             2 Dv for the weighted sum of v, 5 for the online softmax
 *                             (scale, max, exp, sum, rescale), + 1 with a mask to add
 *             softmax 5, layer_norm 8 (mean 1, variance 3, normalize and affine 4) per element
 *             add sub mul div scale relu tanh gelu: 1 per element; cast, causal_mask: 0
 *             gather transpose slice concat cache_write arange: 0
 *   bytes   every input at its own size (a bias broadcast over rows is read once), weights
 *           included, epilogue operands included, plus the output; except
 *             gather          the ids, the table rows it copies (one per id) and the output
 *             slice           the part it copies, read and written
 *             cache_write     the new rows, read and written into the state
 *             fused_attention causal with a position offset (a key/value cache): the keys
 *                             and values up to the last position, not the whole cache
 *   Causal pairs assume Sq <= Sk (and position + Sq <= Sk), as every valid run has.
 */
#include "ir.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Polynomials
 */

static CostTerm term_const(double c)
{
    CostTerm t;
    memset(&t, 0, sizeof t);
    t.c = c;
    return t;
}

static CostTerm term_mul_dim(CostTerm t, Dim d)
{
    if (d.sym < 0) {
        t.c *= (double)d.size;
        return t;
    }
    if (t.n == COST_MAX_FACTORS)
        KILN_BUG("cost: more than %d symbolic factors in a term", COST_MAX_FACTORS);
    int k = t.n++;
    while (k > 0 && t.sym[k - 1] > d.sym) {     // keep sym[] sorted
        t.sym[k] = t.sym[k - 1];
        k--;
    }
    t.sym[k] = d.sym;
    return t;
}

static CostTerm term_mul(CostTerm a, CostTerm b)
{
    a.c *= b.c;
    for (int k = 0; k < b.n; k++)
        a = term_mul_dim(a, (Dim){1, b.sym[k]});
    return a;
}

// c times the product of t's dims [from, to).
static CostTerm term_dims(double c, const Type *t, int from, int to)
{
    CostTerm r = term_const(c);
    for (int k = from; k < to; k++)
        r = term_mul_dim(r, t->dim[k]);
    return r;
}

static void poly_add(CostPoly *p, CostTerm t)
{
    if (t.c == 0)
        return;
    for (int i = 0; i < p->n; i++)
        if (p->t[i].n == t.n && memcmp(p->t[i].sym, t.sym, (size_t)t.n * sizeof t.sym[0]) == 0) {
            p->t[i].c += t.c;
            return;
        }
    if (p->n == COST_MAX_TERMS)
        KILN_BUG("cost: more than %d terms", COST_MAX_TERMS);
    p->t[p->n++] = t;
}

double cost_eval(const CostPoly *p, const int64_t *sym)
{
    double s = 0;
    for (int i = 0; i < p->n; i++) {
        double v = p->t[i].c;
        for (int k = 0; k < p->t[i].n; k++)
            v *= (double)sym[p->t[i].sym[k]];
        s += v;
    }
    return s;
}

/* ---------------------------------------------------------------------------------------
 * Per op
 */

// c per element of a value of type t.
static CostTerm per_elem(const Type *t, double c) { return term_dims(c, t, 0, t->rank); }

// The bytes of a value of type t.
static CostTerm bytes_of(const Type *t) { return per_elem(t, (double)dtype_size(t->dtype)); }

// Causal (query, key) pairs of one [Sq, Sk] score matrix: row i keeps keys j <= i + off,
// off = Sk - Sq (sum: Sq Sk - Sq (Sq - 1) / 2), or the position dim P (sum: Sq P +
// Sq (Sq + 1) / 2).
static void causal_pairs(CostPoly *p, CostTerm lead, Dim Sq, Dim Sk, int pos_sym)
{
    CostTerm sq2 = term_mul_dim(term_mul_dim(lead, Sq), Sq), sq = term_mul_dim(lead, Sq);
    if (pos_sym >= 0) {
        poly_add(p, term_mul_dim(sq, (Dim){1, pos_sym}));
        sq2.c *= 0.5;
        sq.c *= 0.5;
        poly_add(p, sq2);
        poly_add(p, sq);
    } else {
        poly_add(p, term_mul_dim(sq, Sk));
        sq2.c *= -0.5;
        sq.c *= 0.5;
        poly_add(p, sq2);
        poly_add(p, sq);
    }
}

static void attention_cost(const Graph *g, const Node *n, NodeCost *c)
{
    unsigned sm = n->attr.attention.seq_major;      // the op's view of each operand
    Type tq = attention_view(sm, ATT_Q, &g->nodes[n->in[0]].type),
         tk = attention_view(sm, ATT_K, &g->nodes[n->in[1]].type),
         tv = attention_view(sm, ATT_V, &g->nodes[n->in[2]].type);
    const Type *q = &tq, *k = &tk, *v = &tv;
    int r = q->rank;
    Dim Sq = q->dim[r - 2], Sk = k->dim[r - 2], D = q->dim[r - 1], Dv = v->dim[r - 1];
    CostTerm lead = term_dims(1, q, 0, r - 2);
    bool mask = ir_op_inputs(n) == 4;
    int pos = n->attr.attention.causal && n->attr.attention.has_offset
                  ? n->attr.attention.offset_sym : -1;
    // FLOPs: pairs x (2 D + 2 Dv + 5 [+ 1]), pairs as a polynomial first.
    CostPoly pairs = {0};
    if (n->attr.attention.causal)
        causal_pairs(&pairs, lead, Sq, Sk, pos);
    else
        poly_add(&pairs, term_mul_dim(term_mul_dim(lead, Sq), Sk));
    CostTerm per_pair = term_const(5 + (mask ? 1 : 0));
    for (int i = 0; i < pairs.n; i++) {
        poly_add(&c->flops, term_mul(pairs.t[i], term_mul_dim(term_const(2), D)));
        poly_add(&c->flops, term_mul(pairs.t[i], term_mul_dim(term_const(2), Dv)));
        poly_add(&c->flops, term_mul(pairs.t[i], per_pair));
    }
    // Bytes: q, the keys and values it reads, the mask, the output.
    poly_add(&c->bytes, bytes_of(q));
    if (pos >= 0) {     // rows [0, position + Sq) of the cache
        for (int i = 0; i < 2; i++) {
            const Type *t = i ? v : k;
            CostTerm row = term_dims(4, t, 0, r - 2);
            row = term_mul_dim(row, t->dim[r - 1]);
            poly_add(&c->bytes, term_mul_dim(row, (Dim){1, pos}));
            poly_add(&c->bytes, term_mul_dim(row, Sq));
        }
    } else {
        poly_add(&c->bytes, bytes_of(k));
        poly_add(&c->bytes, bytes_of(v));
    }
    if (mask)
        poly_add(&c->bytes, bytes_of(&g->nodes[n->in[3]].type));
}

bool ir_node_cost(const Graph *g, const Node *n, NodeCost *c)
{
    memset(c, 0, sizeof *c);
    if (n->dead || op_info[n->op].cls == OPC_VIEW)
        return false;
    if (op_info[n->op].cls == OPC_SOURCE) {         // only arange has a kernel: it writes
        if (n->op != OP_ARANGE)
            return false;
        poly_add(&c->bytes, bytes_of(&n->type));
        return true;
    }
    const Type *out = &n->type;
    int n_op = ir_op_inputs(n);
    switch (n->op) {
    case OP_MATMUL: {
        const Type *a = &g->nodes[n->in[0]].type;
        Dim K = a->rank == 1 ? a->dim[0]
                             : a->dim[a->rank - (n->attr.matmul.trans_a ? 2 : 1)];
        poly_add(&c->flops, term_mul_dim(per_elem(out, 2), K));
        break;
    }
    case OP_ATTENTION: attention_cost(g, n, c); break;
    case OP_SOFTMAX: poly_add(&c->flops, per_elem(out, 5)); break;
    case OP_LAYER_NORM: poly_add(&c->flops, per_elem(out, 8)); break;
    default:
        if (op_is_arith(n->op))
            poly_add(&c->flops, per_elem(out, 1));
        break;
    }
    poly_add(&c->flops, per_elem(out, n->n_epi));   // one per element per epilogue step

    switch (n->op) {
    case OP_ATTENTION: break;                       // attention_cost counted its inputs
    case OP_GATHER:                                 // ids, the rows it copies
        poly_add(&c->bytes, bytes_of(&g->nodes[n->in[1]].type));
        poly_add(&c->bytes, bytes_of(out));
        break;
    case OP_SLICE: poly_add(&c->bytes, bytes_of(out)); break;
    case OP_CACHE_WRITE: {                          // the new rows, read and written
        CostTerm rows = bytes_of(&g->nodes[n->in[1]].type);
        rows.c *= 2;
        poly_add(&c->bytes, rows);
        break;
    }
    default:
        for (int i = 0; i < n_op; i++)
            poly_add(&c->bytes, bytes_of(&g->nodes[n->in[i]].type));
    }
    for (int i = n_op; i < n->n_in; i++)           // epilogue operands
        poly_add(&c->bytes, bytes_of(&g->nodes[n->in[i]].type));
    if (n->op != OP_CACHE_WRITE)                    // its output is the state it wrote into
        poly_add(&c->bytes, bytes_of(out));
    return true;
}
