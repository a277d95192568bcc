/* ir/fuse_elementwise.c: the fuse-elementwise pass: element-wise ops become epilogues.
 *
 * A bias add after a matmul, the gelu after it, a residual add after a projection: each
 * unfused element-wise node is one more pass over memory, reading a tensor the previous
 * kernel has just written.  This pass merges such a node E into the node P that produces
 * its input, as one more step of P's epilogue (Node.epi): P's kernel then transforms each
 * element in registers before it stores it, and E's kernel and E's buffer disappear.
 *
 *   before                                     after
 *   %20 = matmul %18, %19       h.0.mlp.c_fc     %20 = matmul %18, %19 -> add _, %9 -> gelu
 *   %21 = add %20, %9           h.0.mlp.fc             fuses matmul h.0.mlp.c_fc, add h.0.mlp.fc,
 *   %22 = gelu %21 {tanh}       h.0.mlp.act                  gelu h.0.mlp.act
 *
 * The rule, over ops and shapes only (never names).  E is add, sub, mul, div, scale, relu,
 * tanh or gelu.  For each input P of E (for binary ops, the later-computed input first, so
 * that the other operand X is the earlier one) E fuses into P when:
 *   1. P can apply epilogues (ir_epi_anchor: matmul, layer_norm, softmax, gather, any
 *      element-wise op, and a node that already carries an epilogue) and P is f32;
 *   2. P is read by E only (one reader) and is not a model output: P's own value is gone
 *      after fusion;
 *   3. E's type is P's exactly (E does not broadcast P up to a bigger shape);
 *   4. X (binary ops) indexes into P's shape cheaply: the same shape, a vector along the last
 *      axis, or a scalar (ir_epi_form);
 *   5. X is computed before P, or is a source (input, weight, constant: computed by nobody,
 *      so it may move up).  An X computed after P but before E would have to be computed
 *      earlier, which reorders the graph: not done;
 *   6. P has room: fewer than MAX_EPI_STEPS steps, fewer than KILN_MAX_IN inputs.
 * Nodes are visited in order, so a chain fuses link by link: gelu(add(matmul, b)) first
 * makes the add an epilogue of the matmul, then the gelu.  A node that fuses nothing keeps
 * its own kernel and may itself become the anchor of later element-wise nodes.  Each
 * candidate (E, P) that fails records why with ir_note ("not fused: add 'x' into matmul
 * 'y': 'y' has 2 readers"), which `kiln inspect --after fuse-elementwise` prints; every
 * candidate tried, fused or not, is also an ir_candidate for `kiln inspect --explain`.
 *
 * Requires:    shapes inferred; after fuse-attention (which matches the element-wise nodes
 *              this pass would hide).
 * Preserves:   outputs and their values (to float rounding: the interpreter rounds each
 *              epilogue step to f32 as the unfused nodes did, so there exactly); names,
 *              SrcLocs and origins (E's origin joins P's, in graph order).
 * Invalidates: node ids (compacts); a source operand that came after P moves up to just
 *              before its first reader.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

// Epilogue steps per node.  Models have one to three; the cap keeps a pathological chain of
// thousands of element-wise ops linear to fuse (each fusion copies the step list) and its
// kernel's statement list short.
#define MAX_EPI_STEPS 32

/* ---------------------------------------------------------------------------------------
 * What the kernels support (shared with verify.c and the code generator)
 */

bool ir_epi_anchor(OpKind op)
{
    switch (op) {
    case OP_MATMUL:
    case OP_LAYER_NORM:
    case OP_SOFTMAX:
    case OP_GATHER:
        return true;
    default:
        return op_info[op].cls == OPC_ELEMWISE;
    }
}

static bool is_static_one(Dim d) { return d.sym < 0 && d.size == 1; }

EpiForm ir_epi_form(const Type *x, const Type *out)
{
    if (x->rank > out->rank)
        return EPI_OTHER;
    bool scalar = true;
    for (int k = 0; k < x->rank; k++)
        scalar &= is_static_one(x->dim[k]);
    if (scalar)
        return EPI_SCALAR;
    // Same elements in the same order: equal dims right-aligned, and the dims out has in
    // front of them static 1s.
    bool same = true;
    int lead = out->rank - x->rank;
    for (int k = 0; k < out->rank && same; k++)
        same = k < lead ? is_static_one(out->dim[k]) : dim_eq(out->dim[k], x->dim[k - lead]);
    if (same)
        return EPI_SAME;
    // [.., N] with every other dim a static 1, N the last dim of out.
    bool row = x->rank >= 1 && out->rank >= 1 &&
               dim_eq(x->dim[x->rank - 1], out->dim[out->rank - 1]);
    for (int k = 0; k + 1 < x->rank && row; k++)
        row = is_static_one(x->dim[k]);
    return row ? EPI_ROW : EPI_OTHER;
}

int ir_op_inputs(const Node *n)
{
    int operands = 0;
    for (int i = 0; i < n->n_epi; i++)
        operands += n->epi[i].operand_in >= 0;
    return n->n_in - operands;
}

/* ---------------------------------------------------------------------------------------
 * The pass
 */

static bool is_binary(OpKind op)
{
    return op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV;
}

typedef struct {
    Graph *g;
    int *uses;          // [n_nodes] input slots of live nodes that read the node
    bool *is_output;    // [n_nodes]
    NodeId *alias;      // [n_nodes] a fused E's id -> the P it became part of; else itself
} Fuse;

static NodeId resolve(const Fuse *f, NodeId id)
{
    while (f->alias[id] != id)
        id = f->alias[id];
    return id;
}

static const char *type_text(const Graph *g, const Type *t, char *buf, size_t n)
{
    char s[256];
    snprintf(buf, n, "%s%s", dtype_name(t->dtype), shape_str(g, t, s, sizeof s));
    return buf;
}

// Why E cannot fuse into its input P with other operand X (NULL for unary E), or NULL if it
// can.  The reason is arena text for a note.
static const char *why_not(const Fuse *f, const Node *e, const Node *p, const Node *x)
{
    Graph *g = f->g;
    char a[300], b[300];
    if (p->op == OP_INPUT || p->op == OP_WEIGHT || p->op == OP_CONST)
        return arena_sprintf(&g->arena, "'%s' is a %s", p->name,
                             p->op == OP_INPUT ? "model input" : op_name(p->op));
    if (op_info[p->op].cls == OPC_VIEW)
        return arena_sprintf(&g->arena, "'%s' is a %s, a view with no kernel of its own",
                             p->name, op_name(p->op));
    if (!ir_epi_anchor(p->op))
        return arena_sprintf(&g->arena, "the %s kernel applies no epilogue", op_name(p->op));
    if (p->type.dtype != DT_F32)
        return arena_sprintf(&g->arena, "'%s' is %s; epilogues are f32 only", p->name,
                             dtype_name(p->type.dtype));
    if (f->is_output[p->id])
        return arena_sprintf(&g->arena, "'%s' is a model output", p->name);
    if (f->uses[p->id] != 1)
        return arena_sprintf(&g->arena, "'%s' has %d readers", p->name, f->uses[p->id]);
    if (e->n_epi > 0)
        return arena_sprintf(&g->arena, "'%s' already carries an epilogue", e->name);
    bool same = e->type.dtype == p->type.dtype && e->type.rank == p->type.rank;
    for (int k = 0; same && k < e->type.rank; k++)
        same = dim_eq(e->type.dim[k], p->type.dim[k]);
    if (!same)
        return arena_sprintf(&g->arena, "the result %s is larger than '%s' %s",
                             type_text(g, &e->type, a, sizeof a), p->name,
                             type_text(g, &p->type, b, sizeof b));
    if (p->n_epi >= MAX_EPI_STEPS)
        return arena_sprintf(&g->arena, "'%s' already has %d epilogue steps", p->name, p->n_epi);
    if (!x)
        return NULL;
    if (ir_epi_form(&x->type, &p->type) == EPI_OTHER)
        return arena_sprintf(&g->arena, "operand '%s' %s broadcasts into %s, not as the same "
                             "shape, a last-axis vector or a scalar", x->name,
                             type_text(g, &x->type, a, sizeof a),
                             type_text(g, &p->type, b, sizeof b));
    if (x->id > p->id && op_info[x->op].cls != OPC_SOURCE)
        return arena_sprintf(&g->arena, "operand '%s' is computed after '%s' (fusing would "
                             "reorder them)", x->name, p->name);
    if (p->n_in + 1 > KILN_MAX_IN)
        return arena_sprintf(&g->arena, "'%s' already has %d inputs", p->name, p->n_in);
    return NULL;
}

// Make E (with other operand X, or NULL) the next epilogue step of P; E becomes dead.
static void fuse(Fuse *f, Node *e, Node *p, const Node *x)
{
    Graph *g = f->g;
    EpiOp step = {.op = e->op, .operand_in = -1};
    if (x) {
        step.operand_in = p->n_in;
        step.operand_left = e->in[0] == x->id;
        p->in[p->n_in++] = x->id;
    }
    if (e->op == OP_SCALE)
        step.by = e->attr.scale.by;
    if (e->op == OP_GELU)
        step.tanh = e->attr.gelu.tanh;

    EpiOp *epi = arena_alloc(&g->arena, (size_t)(p->n_epi + 1) * sizeof *epi);
    if (p->n_epi)
        memcpy(epi, p->epi, (size_t)p->n_epi * sizeof *epi);
    epi[p->n_epi] = step;
    p->epi = epi;
    p->n_epi++;

    size_t n_origins = (size_t)(p->n_origins + e->n_origins);
    Origin *origins = arena_alloc(&g->arena, n_origins * sizeof *origins);
    memcpy(origins, p->origins, (size_t)p->n_origins * sizeof *origins);
    memcpy(origins + p->n_origins, e->origins, (size_t)e->n_origins * sizeof *origins);
    p->origins = origins;
    p->n_origins += e->n_origins;

    // E's readers now read P: its use count and output status pass to P.
    f->uses[p->id] = f->uses[e->id];
    f->is_output[p->id] = f->is_output[e->id];
    f->alias[e->id] = p->id;
    e->dead = true;
}

// Record the candidate "E into P" for `kiln inspect --explain`: fused (why NULL) or not.
static void record(Graph *g, const Node *e, const Node *p, const char *why)
{
    Candidate c = {.pass = "fuse-elementwise",
                   .what = arena_sprintf(&g->arena, "%s %s", op_name(e->op), e->name),
                   .loc = e->loc, .into = {p->op, p->name, p->loc}, .fused = !why,
                   .result = {p->op, p->name, p->loc}, .why = why};
    ir_candidate(g, &c);
}

// Try the inputs of E as anchors; false (after a note per candidate) if none takes it.
// Every input tried is a candidate record, fused or with its reason.
static bool try_fuse(Fuse *f, Node *e)
{
    Graph *g = f->g;
    if (is_binary(e->op) && e->in[0] == e->in[1]) {
        ir_note(g, "not fused: %s '%s': both operands are '%s'", op_name(e->op), e->name,
                g->nodes[e->in[0]].name);
        record(g, e, &g->nodes[e->in[0]],
               arena_sprintf(&g->arena, "both operands are '%s'", g->nodes[e->in[0]].name));
        return false;
    }
    // Candidates: the later-computed input first (its operand is then the earlier one).
    int order[2] = {0, 1}, n_cand = is_binary(e->op) ? 2 : 1;
    if (n_cand == 2 && e->in[0] < e->in[1]) {
        order[0] = 1;
        order[1] = 0;
    }
    const char *why[2];
    for (int c = 0; c < n_cand; c++) {
        Node *p = &g->nodes[e->in[order[c]]];
        const Node *x = n_cand == 2 ? &g->nodes[e->in[1 - order[c]]] : NULL;
        why[c] = why_not(f, e, p, x);
        record(g, e, p, why[c]);
        if (!why[c]) {
            fuse(f, e, p, x);
            return true;
        }
    }
    for (int c = 0; c < n_cand; c++) {
        const Node *p = &g->nodes[e->in[order[c]]];
        ir_note(g, "not fused: %s '%s' into %s '%s': %s", op_name(e->op), e->name,
                op_name(p->op), p->name, why[c]);
    }
    return false;
}

// Put every node after its inputs again: a source operand fused into a node that came
// before it moves up to just before its first reader.  Sources have no inputs, so moving
// one earlier keeps the order topological.
static void move_sources_up(Graph *g)
{
    bool needed = false;
    for (int i = 0; i < g->n_nodes && !needed; i++)
        for (int k = 0; k < g->nodes[i].n_in; k++)
            needed |= g->nodes[i].in[k] > i;
    if (!needed)
        return;
    int n = g->n_nodes;
    NodeId *order = xmalloc((size_t)n * sizeof *order), *map = xmalloc((size_t)n * sizeof *map);
    bool *placed = xcalloc((size_t)n, sizeof *placed);
    int m = 0;
    for (int i = 0; i < n; i++) {
        const Node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_in; k++) {
            NodeId x = nd->in[k];
            if (x > i && !placed[x]) {
                if (op_info[g->nodes[x].op].cls != OPC_SOURCE)
                    KILN_BUG("fuse-elementwise: '%s' reads '%s', computed after it", nd->name,
                             g->nodes[x].name);
                placed[x] = true;
                order[m++] = x;
            }
        }
        if (!placed[i]) {
            placed[i] = true;
            order[m++] = i;
        }
    }
    Node *nodes = xmalloc((size_t)g->cap_nodes * sizeof *nodes);
    for (int j = 0; j < n; j++) {
        nodes[j] = g->nodes[order[j]];
        nodes[j].id = j;
        map[order[j]] = j;
    }
    for (int j = 0; j < n; j++)
        for (int k = 0; k < nodes[j].n_in; k++)
            nodes[j].in[k] = map[nodes[j].in[k]];
    for (int i = 0; i < g->n_inputs; i++)
        g->inputs[i] = map[g->inputs[i]];
    for (int i = 0; i < g->n_outputs; i++)
        g->outputs[i].node = map[g->outputs[i].node];
    free(g->nodes);
    g->nodes = nodes;
    free(order);
    free(map);
    free(placed);
}

bool ir_fuse_elementwise(Graph *g)
{
    size_t n = (size_t)(g->n_nodes ? g->n_nodes : 1);
    Fuse f = {g, xcalloc(n, sizeof(int)), xcalloc(n, sizeof(bool)), xmalloc(n * sizeof(NodeId))};
    for (int i = 0; i < g->n_nodes; i++) {
        f.alias[i] = i;
        const Node *nd = &g->nodes[i];
        if (!nd->dead)
            for (int k = 0; k < nd->n_in; k++)
                f.uses[nd->in[k]]++;
    }
    for (int o = 0; o < g->n_outputs; o++)
        f.is_output[g->outputs[o].node] = true;

    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        Node *e = &g->nodes[i];
        if (e->dead)
            continue;
        for (int k = 0; k < e->n_in; k++)
            e->in[k] = resolve(&f, e->in[k]);
        if (op_is_arith(e->op))
            changed |= try_fuse(&f, e);
    }
    for (int o = 0; o < g->n_outputs; o++)
        g->outputs[o].node = resolve(&f, g->outputs[o].node);
    free(f.uses);
    free(f.is_output);
    free(f.alias);
    if (changed) {
        ir_compact(g);
        move_sources_up(g);
    }
    return changed;
}
