/* ir/fold_constants.c: evaluate at compile time what depends on constants only.
 *
 * A node whose inputs are all constants with static shapes (a `scale` of a literal, the
 * arithmetic a spec writes out for a mask or a position table) is computed once here, by the
 * reference interpreter (interp_eval_const, the same code that defines the op), and replaced
 * in place by an OP_CONST holding the result.  Nodes are visited in topological order, so a
 * chain of such nodes folds completely in one run.  An `arange` of static size folds too.
 * The constants the folded nodes read are left for dead-code elimination, which runs next.
 *
 * Requires:    shapes inferred (every node's type is final).
 * Preserves:   node ids and order, names, locations, origins and types (a folded node keeps
 *              its own; it only changes op, inputs and attributes).
 * Invalidates: use counts; constants that only folded nodes read become unused.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

// The largest result folded.  A folded constant is emitted into the generated C as an array
// literal, about 16 bytes of source per f32 ("-0.0123456789f, "); folding a large tensor
// would turn a few lines of a spec into megabytes of C that the C compiler must parse, for
// no speed-up worth having (the node runs once per forward pass either way).
#define FOLD_MAX_BYTES ((int64_t)1 << 20)

bool ir_fold_constants(Graph *g)
{
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        if (n->dead || n->op == OP_CONST || !type_is_static(&n->type))
            continue;
        if (op_info[n->op].cls == OPC_SOURCE && n->op != OP_ARANGE)
            continue;   // inputs and weights are known only at run time
        int64_t bytes = type_numel_max(&n->type) * (int64_t)dtype_size(n->type.dtype);
        if (bytes > FOLD_MAX_BYTES)
            continue;
        void *data = interp_eval_const(g, n);   // NULL unless every input is a constant
        if (!data)
            continue;
        void *copy = arena_alloc(&g->arena, (size_t)bytes);
        memcpy(copy, data, (size_t)bytes);
        free(data);

        n->op = OP_CONST;
        memset(&n->attr, 0, sizeof n->attr);
        n->attr.constant.data = copy;
        memset(n->in, 0, sizeof n->in);
        n->n_in = 0;
        changed = true;
    }
    return changed;
}
