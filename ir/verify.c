/* ir/verify.c: structural invariants of a graph, checked after parsing and after every pass.
 *
 * A failure here is a bug in kiln (a pass broke the graph), never a user error, so it goes
 * through KILN_BUG and names the pass that ran last.
 */
#include "ir.h"

#include <string.h>

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
        if (n->n_in < info->min_in || n->n_in > info->max_in)
            KILN_BUG("after %s: %s '%s' has %d inputs", when, info->name, n->name, n->n_in);
        for (int k = 0; k < n->n_in; k++) {
            NodeId p = n->in[k];
            if (p < 0 || p >= i)
                KILN_BUG("after %s: '%s' input %d is %%%d, not an earlier node", when, n->name, k, p);
            if (g->nodes[p].dead)
                KILN_BUG("after %s: '%s' reads dead node '%s'", when, n->name, g->nodes[p].name);
        }
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
        for (int j = 0; j < i; j++)
            if (!g->nodes[j].dead && strcmp(g->nodes[j].name, n->name) == 0)
                KILN_BUG("after %s: two nodes are named '%s' (%%%d, %%%d)", when, n->name, j, i);
    }
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
}
