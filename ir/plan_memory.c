/* ir/plan_memory.c: the plan-memory pass: where every activation lives in the arena.
 *
 * The generated forward() allocates nothing: every value it computes lives in one arena at
 * an offset fixed here, at compile time (llm.c points every activation into one malloc;
 * ggml-alloc plans reuse the same way).  Sizes are taken at the symbolic dims' bounds, so one
 * plan serves every run.
 *
 * The plan walks the nodes in their (topological) order, as forward() runs them:
 *   1. a node that computes a value gets the first free range that fits (first fit; the
 *      arena grows at its end when none does), 64-byte aligned and padded;
 *   2. then every value whose last reader is this node is freed (a node's output never
 *      shares space with its own inputs, which are freed only after it is placed).
 * A reshape moves no data: it gets offset -1 and reads its input's storage, and so do
 * reshapes of reshapes (ir_storage_root).  Readers of a view count as readers of its root.
 * A model output whose value is computed here (not an input, weight or state) is written
 * straight into the output's buffer (Node.output; no arena space, no copy at the end); the
 * first output naming it wins, another output of the same value is copied from there.
 * Inputs, weights, constants, states and the state views cache_write yields live outside the
 * arena too (offset -1).
 *
 * Requires:    the final graph (runs last): types final, no node added or moved after it.
 * Preserves:   everything but the fields it sets.
 * Sets:        Node.offset and Node.output of every live node, Graph.arena_bytes, Graph.n_buffers (distinct
 *              offsets in use, i.e. how many buffers the values share after reuse).
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN 64

NodeId ir_storage_root(const Graph *g, NodeId id)
{
    while (id >= 0 && id < g->n_nodes && op_info[g->nodes[id].op].cls == OPC_VIEW)
        id = g->nodes[id].in[0];
    if (id < 0 || id >= g->n_nodes)
        KILN_BUG("ir_storage_root: node %d outside [0, %d)", id, g->n_nodes);
    return id;
}

// Whether the node's value is computed by forward() into its own arena space.
static bool in_arena(const Node *n)
{
    return !n->dead && op_info[n->op].cls != OPC_VIEW && n->op != OP_INPUT &&
           n->op != OP_WEIGHT && n->op != OP_CONST && n->op != OP_STATE &&
           n->op != OP_CACHE_WRITE;     // these two live in the state, outside the arena
}

// A free range of the arena; the free list is kept sorted by offset and coalesced.
typedef struct {
    int64_t off, size;
} Range;

typedef struct {
    Range *free;
    int n_free, cap_free;
    int64_t top;            // arena size so far
} Planner;

static int64_t take(Planner *p, int64_t size)
{
    for (int i = 0; i < p->n_free; i++) {
        Range *r = &p->free[i];
        if (r->size >= size) {
            int64_t off = r->off;
            r->off += size;
            r->size -= size;
            if (r->size == 0) {
                memmove(r, r + 1, (size_t)(p->n_free - i - 1) * sizeof *r);
                p->n_free--;
            }
            return off;
        }
    }
    // None fits: grow the arena, starting inside a free range that ends at the top.
    int64_t off = p->top;
    if (p->n_free && p->free[p->n_free - 1].off + p->free[p->n_free - 1].size == p->top)
        off = p->free[--p->n_free].off;
    p->top = off + size;
    return off;
}

static void give_back(Planner *p, int64_t off, int64_t size)
{
    int i = 0;
    while (i < p->n_free && p->free[i].off < off)
        i++;
    Range r = {off, size};
    VEC_PUSH(p->free, p->n_free, p->cap_free, r);   // grows; then shift into place
    memmove(&p->free[i + 1], &p->free[i], (size_t)(p->n_free - 1 - i) * sizeof r);
    p->free[i] = r;
    // Coalesce with the next, then the previous range.
    if (i + 1 < p->n_free && p->free[i].off + p->free[i].size == p->free[i + 1].off) {
        p->free[i].size += p->free[i + 1].size;
        memmove(&p->free[i + 1], &p->free[i + 2], (size_t)(p->n_free - i - 2) * sizeof r);
        p->n_free--;
    }
    if (i > 0 && p->free[i - 1].off + p->free[i - 1].size == p->free[i].off) {
        p->free[i - 1].size += p->free[i].size;
        memmove(&p->free[i], &p->free[i + 1], (size_t)(p->n_free - i - 1) * sizeof r);
        p->n_free--;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

bool ir_plan_memory(Graph *g)
{
    int n = g->n_nodes;
    int *last = xmalloc((size_t)(n ? n : 1) * sizeof *last);   // last reader of each root
    int64_t *size = xcalloc((size_t)(n ? n : 1), sizeof *size);
    for (int i = 0; i < n; i++)
        last[i] = i;
    for (int i = 0; i < n; i++) {
        const Node *nd = &g->nodes[i];
        if (nd->dead)
            continue;
        for (int k = 0; k < nd->n_in; k++) {
            NodeId root = ir_storage_root(g, nd->in[k]);
            if (last[root] < i)
                last[root] = i;
        }
    }
    for (int i = 0; i < n; i++)
        g->nodes[i].output = -1;
    for (int o = 0; o < g->n_outputs; o++) {
        NodeId root = ir_storage_root(g, g->outputs[o].node);
        last[root] = n;     // alive to the end
        if (in_arena(&g->nodes[root]) && g->nodes[root].output < 0)
            g->nodes[root].output = o;
    }

    Planner p = {0};
    for (int i = 0; i < n; i++) {
        Node *nd = &g->nodes[i];
        nd->offset = -1;
        if (in_arena(nd) && nd->output < 0) {
            int64_t bytes = type_numel_max(&nd->type) * (int64_t)dtype_size(nd->type.dtype);
            size[i] = (bytes + ALIGN - 1) / ALIGN * ALIGN;
            if (size[i] == 0)
                size[i] = ALIGN;
            nd->offset = take(&p, size[i]);
        }
        if (nd->dead)
            continue;
        // Free what this node read last (each root once), and its own value if unread.
        for (int k = 0; k <= nd->n_in; k++) {
            NodeId root = k < nd->n_in ? ir_storage_root(g, nd->in[k]) : i;
            if (last[root] == i && size[root]) {
                give_back(&p, g->nodes[root].offset, size[root]);
                size[root] = 0;
            }
        }
    }

    // n_buffers: distinct offsets in use.
    int64_t *offs = xmalloc((size_t)(n ? n : 1) * sizeof *offs);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (g->nodes[i].offset >= 0)
            offs[m++] = g->nodes[i].offset;
    qsort(offs, (size_t)m, sizeof *offs, cmp_i64);
    int distinct = 0;
    for (int i = 0; i < m; i++)
        if (i == 0 || offs[i] != offs[i - 1])
            distinct++;

    g->arena_bytes = p.top;
    g->n_buffers = distinct;
    free(offs);
    free(p.free);
    free(size);
    free(last);
    return true;
}
