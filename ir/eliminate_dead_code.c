/* ir/eliminate_dead_code.c: drop nodes that no model output depends on.
 *
 * Unused weights disappear with it, so the binary neither asks the weights file for them nor
 * maps them.  Model inputs stay even when unused: they are part of the binary's interface.
 *
 * Requires:    nothing.
 * Preserves:   order, names, locations, origins.
 * Invalidates: node ids (the graph is compacted).
 */
#include "ir.h"

#include <stdlib.h>

bool ir_eliminate_dead_code(Graph *g)
{
    bool *live = xcalloc((size_t)g->n_nodes + 1, sizeof *live);
    for (int i = 0; i < g->n_outputs; i++)
        live[g->outputs[i].node] = true;
    for (int i = 0; i < g->n_inputs; i++)
        live[g->inputs[i]] = true;
    for (int i = 0; i < g->n_states; i++)
        live[g->states[i]] = true;
    for (int i = 0; i < g->n_nodes; i++)    // writes into the state outlive this call
        if (g->nodes[i].op == OP_CACHE_WRITE)
            live[i] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const Node *n = &g->nodes[i];
        if (!live[i] || n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++)
            live[n->in[k]] = true;
    }
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!live[i] && !g->nodes[i].dead) {
            g->nodes[i].dead = true;
            changed = true;
        }
    }
    free(live);
    ir_compact(g);   // also drops nodes other passes marked dead
    return changed;
}
