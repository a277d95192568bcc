/* ir/verify.c: structural invariants of a graph, checked after parsing and after every pass.
 *
 * A failure here is a bug in kiln (a pass broke the graph), never a user error, so it goes
 * through KILN_BUG and names the pass that ran last.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

// The epilogue (fuse-elementwise): only on nodes whose kernels apply one, f32; each step one
// of the ops the code generator knows; the binary steps' operands are in[ir_op_inputs(n)..],
// one slot each, in step order, f32 and of a form the kernels index (ir_epi_form).
static void verify_epilogue(const Graph *g, const Node *n, const char *when)
{
    if (n->n_epi == 0)
        return;
    if (!n->epi || !ir_epi_anchor(n->op) || n->type.dtype != DT_F32)
        KILN_BUG("after %s: %s '%s' (%s) carries an epilogue", when, op_name(n->op), n->name,
                 dtype_name(n->type.dtype));
    int slot = ir_op_inputs(n);
    for (int s = 0; s < n->n_epi; s++) {
        const EpiOp *e = &n->epi[s];
        bool binary = e->op == OP_ADD || e->op == OP_SUB || e->op == OP_MUL || e->op == OP_DIV;
        bool unary = e->op == OP_SCALE || e->op == OP_RELU || e->op == OP_TANH || e->op == OP_GELU;
        if (!binary && !unary)
            KILN_BUG("after %s: '%s' epilogue step %d is op %d", when, n->name, s, e->op);
        if (unary) {
            if (e->operand_in != -1)
                KILN_BUG("after %s: '%s' epilogue step %d (%s) has an operand", when, n->name, s,
                         op_name(e->op));
            continue;
        }
        if (e->operand_in != slot)
            KILN_BUG("after %s: '%s' epilogue step %d reads in[%d], expected in[%d]", when,
                     n->name, s, e->operand_in, slot);
        const Node *x = &g->nodes[n->in[slot++]];
        if (x->type.dtype != DT_F32 || ir_epi_form(&x->type, &n->type) == EPI_OTHER)
            KILN_BUG("after %s: '%s' epilogue operand '%s' does not broadcast into it", when,
                     n->name, x->name);
    }
}

static int compare_names(const void *pa, const void *pb)
{
    const Node *a = *(const Node *const *)pa, *b = *(const Node *const *)pb;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

// Live nodes have distinct names.  Sorted rather than compared pairwise: a spec may make
// 2^20 nodes, and the check runs after every pass.
static void verify_unique_names(const Graph *g, const char *when)
{
    const Node **live = xmalloc((size_t)(g->n_nodes + 1) * sizeof *live);
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead)
            live[n++] = &g->nodes[i];
    qsort(live, (size_t)n, sizeof *live, compare_names);
    for (int i = 1; i < n; i++)
        if (strcmp(live[i - 1]->name, live[i]->name) == 0)
            KILN_BUG("after %s: two nodes are named '%s' (%%%d, %%%d)", when, live[i]->name,
                     live[i - 1]->id, live[i]->id);
    free(live);
}

void ir_verify(const Graph *g, const char *after)
{
    const char *when = after ? after : "parse";
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->id != i)
            KILN_BUG("after %s: node %d carries id %d", when, i, n->id);
        if ((unsigned)n->op >= OP_COUNT)
            KILN_BUG("after %s: node %d has op %d", when, i, (int)n->op);
        if (!n->name || !n->name[0])
            KILN_BUG("after %s: node %d has no name", when, i);
        if (n->dead)
            continue;
        const OpInfo *info = &op_info[n->op];
        int n_op_in = ir_op_inputs(n);
        if (n_op_in < info->min_in || n_op_in > info->max_in || n->n_in > KILN_MAX_IN)
            KILN_BUG("after %s: %s '%s' has %d inputs", when, info->name, n->name, n_op_in);
        if (n->n_origins < 1 + n->n_epi)
            KILN_BUG("after %s: '%s' has %d origins for %d epilogue steps", when, n->name,
                     n->n_origins, n->n_epi);
        for (int k = 0; k < n->n_in; k++) {
            NodeId p = n->in[k];
            if (p < 0 || p >= i)
                KILN_BUG("after %s: '%s' input %d is %%%d, not an earlier node", when, n->name, k, p);
            if (g->nodes[p].dead)
                KILN_BUG("after %s: '%s' reads dead node '%s'", when, n->name, g->nodes[p].name);
        }
        verify_epilogue(g, n, when);
        if (n->type.rank < 0 || n->type.rank > KILN_MAX_RANK)
            KILN_BUG("after %s: '%s' has rank %d", when, n->name, n->type.rank);
        for (int k = 0; k < n->type.rank; k++) {
            Dim dm = n->type.dim[k];
            if (dm.sym >= g->n_syms || (dm.sym >= 0 && dm.size != g->syms[dm.sym].max) || dm.size < 0)
                KILN_BUG("after %s: '%s' dim %d is {%lld, sym %d}", when, n->name, k,
                         (long long)dm.size, dm.sym);
        }
        if (n->op == OP_CONST && !n->attr.constant.data)
            KILN_BUG("after %s: constant '%s' has no data", when, n->name);
        if (n->op == OP_WEIGHT && !n->attr.weight.tensor)
            KILN_BUG("after %s: weight '%s' has no tensor name", when, n->name);
    }
    verify_unique_names(g, when);
    for (int i = 0; i < g->n_inputs; i++) {
        NodeId id = g->inputs[i];
        if (id < 0 || id >= g->n_nodes || g->nodes[id].op != OP_INPUT ||
            g->nodes[id].attr.input.index != i)
            KILN_BUG("after %s: model input %d is %%%d", when, i, id);
    }
    for (int i = 0; i < g->n_outputs; i++) {
        NodeId id = g->outputs[i].node;
        if (id < 0 || id >= g->n_nodes || g->nodes[id].dead)
            KILN_BUG("after %s: output '%s' is %%%d", when, g->outputs[i].name, id);
    }
    for (int i = 0; i < g->n_states; i++) {
        NodeId id = g->states[i];
        if (id < 0 || id >= g->n_nodes || g->nodes[id].op != OP_STATE ||
            g->nodes[id].attr.state.index != i)
            KILN_BUG("after %s: state %d is %%%d", when, i, id);
    }
}
