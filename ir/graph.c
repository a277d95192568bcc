/* ir/graph.c: ops, dtypes, types, and the graph with its node constructors.
 *
 * Nodes are created only through graph_add_source() and graph_add_node(), which check arity
 * and run shape inference, so every node in a graph has a valid type.  Passes mark nodes
 * dead and call ir_compact() to drop them.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

const OpInfo op_info[OP_COUNT] = {
#define X(name, min_in, max_in, cls, spec) [OP_##name] = {spec, min_in, max_in, cls},
#include "ops.def"
#undef X
};

_Static_assert(sizeof op_info / sizeof op_info[0] == OP_COUNT, "ops.def and OpKind disagree");

const char *op_name(OpKind op)
{
    if ((unsigned)op >= OP_COUNT)
        KILN_BUG("op_name: bad op %d", (int)op);
    return op_info[op].name;
}

bool op_is_arith(OpKind op)
{
    switch (op) {
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
    case OP_SCALE:
    case OP_RELU:
    case OP_TANH:
    case OP_GELU:
        return true;
    default:
        return false;
    }
}

int op_lookup(const char *spec_name)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(op_info[i].name, spec_name) == 0)
            return i;
    return -1;
}

const char *dtype_name(DType t)
{
    switch (t) {
    case DT_F32: return "f32";
    case DT_I32: return "i32";
    case DT_I64: return "i64";
    }
    KILN_BUG("dtype_name: bad dtype %d", (int)t);
}

size_t dtype_size(DType t)
{
    switch (t) {
    case DT_F32: return 4;
    case DT_I32: return 4;
    case DT_I64: return 8;
    }
    KILN_BUG("dtype_size: bad dtype %d", (int)t);
}

int64_t type_numel_max(const Type *t)
{
    int64_t n = 1;
    for (int k = 0; k < t->rank; k++)
        n *= t->dim[k].size;
    return n;
}

bool type_is_static(const Type *t)
{
    for (int k = 0; k < t->rank; k++)
        if (t->dim[k].sym >= 0)
            return false;
    return true;
}

bool dim_eq(Dim a, Dim b)
{
    if (a.sym >= 0 || b.sym >= 0)
        return a.sym == b.sym;
    return a.size == b.size;
}

const char *attention_seq_major_str(unsigned seq_major)
{
    static const char *const names[16] = {
        "", "q", "k", "q k", "v", "q v", "k v", "q k v",
        "out", "q out", "k out", "q k out", "v out", "q v out", "k v out", "q k v out"};
    return names[seq_major & 15];
}

Type attention_view(unsigned seq_major, unsigned bit, const Type *stored)
{
    Type t = *stored;
    if ((seq_major & bit) && t.rank >= 3) {
        Dim x = t.dim[t.rank - 3];
        t.dim[t.rank - 3] = t.dim[t.rank - 2];
        t.dim[t.rank - 2] = x;
    }
    return t;
}

/* ---- graphs --------------------------------------------------------------------------- */

Graph *graph_new(const char *spec_path)
{
    Graph *g = xcalloc(1, sizeof *g);
    g->spec_path = spec_path ? arena_strdup(&g->arena, spec_path) : "<none>";
    g->model_name = "model";
    g->position_sym = -1;
    return g;
}

void graph_free(Graph *g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->syms);
    free(g->inputs);
    free(g->states);
    free(g->outputs);
    free(g->params);
    free(g->weight_prefixes);
    free(g->passes_run);
    arena_free(&g->arena);
    free(g);
}

Node *graph_node(Graph *g, NodeId id)
{
    if (id < 0 || id >= g->n_nodes)
        KILN_BUG("graph_node: id %d outside [0, %d)", id, g->n_nodes);
    return &g->nodes[id];
}

NodeId graph_find(const Graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead && strcmp(g->nodes[i].name, name) == 0)
            return i;
    return -1;
}

int graph_add_sym(Graph *g, const char *name, int64_t max, SrcLoc loc)
{
    Sym s = {arena_strdup(&g->arena, name), max, loc, false};
    VEC_PUSH(g->syms, g->n_syms, g->cap_syms, s);
    return g->n_syms - 1;
}

int graph_find_sym(const Graph *g, const char *name)
{
    for (int i = 0; i < g->n_syms; i++)
        if (strcmp(g->syms[i].name, name) == 0)
            return i;
    return -1;
}

// Append a node shell (type not yet set); returns a pointer valid until the next append.
static Node *append_node(Graph *g, OpKind op, const char *name, SrcLoc loc, const Node *attr)
{
    Node n;
    memset(&n, 0, sizeof n);
    if (attr)
        n.attr = attr->attr;
    n.op = op;
    n.id = g->n_nodes;
    n.loc = loc;
    n.offset = -1;
    n.output = -1;
    n.name = name ? arena_strdup(&g->arena, name)
                  : arena_sprintf(&g->arena, "%s.%d", op_info[op].name, g->n_nodes);
    VEC_PUSH(g->nodes, g->n_nodes, g->cap_nodes, n);
    Node *p = &g->nodes[g->n_nodes - 1];
    p->origins = arena_alloc(&g->arena, sizeof(Origin));
    p->origins[0] = (Origin){op, p->name, loc};
    p->n_origins = 1;
    return p;
}

NodeId graph_add_source(Graph *g, Diag *d, OpKind op, const char *name, SrcLoc loc, Type type,
                        const Node *attr)
{
    if (op_info[op].cls != OPC_SOURCE)
        KILN_BUG("graph_add_source: %s is not a source op", op_name(op));
    if (type.rank < 0 || type.rank > KILN_MAX_RANK) {
        diag_error(d, loc, "%s '%s': rank %d is outside [0, %d]", op_name(op),
                   name ? name : "?", type.rank, KILN_MAX_RANK);
        return -1;
    }
    for (int k = 0; k < type.rank; k++) {
        Dim dm = type.dim[k];
        if (dm.sym >= g->n_syms)
            KILN_BUG("graph_add_source: dim %d names symbol %d of %d", k, dm.sym, g->n_syms);
        if (dm.sym >= 0)
            type.dim[k].size = g->syms[dm.sym].max;
        else if (dm.size < 0) {
            diag_error(d, loc, "%s '%s': dim %d is negative (%lld)", op_name(op),
                       name ? name : "?", k, (long long)dm.size);
            return -1;
        }
    }
    if (op == OP_ARANGE && (type.rank != 1 || type.dtype != DT_I32))
        KILN_BUG("graph_add_source: arange must be i32 of rank 1");
    if (op == OP_CONST && !type_is_static(&type))
        KILN_BUG("graph_add_source: constants have static shapes");
    Node *n = append_node(g, op, name, loc, attr);
    n->type = type;
    if (!shape_infer_node(g, n, d)) {   // checks sizes overflow and the like
        g->n_nodes--;
        return -1;
    }
    return n->id;
}

NodeId graph_add_node(Graph *g, Diag *d, OpKind op, const char *name, SrcLoc loc,
                      const NodeId *in, int n_in, const Node *attr)
{
    const OpInfo *info = &op_info[op];
    if (info->cls == OPC_SOURCE)
        KILN_BUG("graph_add_node: use graph_add_source for %s", info->name);
    if (n_in < info->min_in || n_in > info->max_in) {
        if (info->min_in == info->max_in)
            diag_error(d, loc, "%s takes %d input%s, found %d", info->name, info->min_in,
                       info->min_in == 1 ? "" : "s", n_in);
        else
            diag_error(d, loc, "%s takes %d to %d inputs, found %d", info->name, info->min_in,
                       info->max_in, n_in);
        return -1;
    }
    for (int i = 0; i < n_in; i++)
        if (in[i] < 0 || in[i] >= g->n_nodes || g->nodes[in[i]].dead)
            KILN_BUG("graph_add_node: input %d of %s is node %d", i, info->name, in[i]);
    Node *n = append_node(g, op, name, loc, attr);
    memcpy(n->in, in, (size_t)n_in * sizeof *in);
    n->n_in = n_in;
    if (!shape_infer_node(g, n, d)) {
        g->n_nodes--;
        return -1;
    }
    return n->id;
}

void ir_compact(Graph *g)
{
    NodeId *map = xmalloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof *map);
    int m = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].dead) {
            map[i] = -1;
            continue;
        }
        map[i] = m;
        g->nodes[m] = g->nodes[i];
        g->nodes[m].id = m;
        m++;
    }
    for (int i = 0; i < m; i++) {
        Node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            if (map[n->in[k]] < 0)
                KILN_BUG("ir_compact: %s reads removed node", n->name);
            n->in[k] = map[n->in[k]];
        }
    }
    int ni = 0;
    for (int i = 0; i < g->n_inputs; i++)
        if (map[g->inputs[i]] >= 0)
            g->inputs[ni++] = map[g->inputs[i]];
    if (ni != g->n_inputs)
        KILN_BUG("ir_compact: a model input was removed");
    int ns = 0;
    for (int i = 0; i < g->n_states; i++)
        if (map[g->states[i]] >= 0)
            g->states[ns++] = map[g->states[i]];
    if (ns != g->n_states)
        KILN_BUG("ir_compact: a state was removed");
    for (int i = 0; i < g->n_outputs; i++) {
        if (map[g->outputs[i].node] < 0)
            KILN_BUG("ir_compact: output %s was removed", g->outputs[i].name);
        g->outputs[i].node = map[g->outputs[i].node];
    }
    g->n_nodes = m;
    free(map);
}
