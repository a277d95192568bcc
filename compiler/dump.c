/* compiler/dump.c: `kiln interp --dump-dir DIR`, the reference interpreter's values on disk.
 *
 * The interpreter runs the unoptimized graph, so every spec node has its own value: each
 * one it computes (every live node but inputs, weights, constants and states) is written as
 * DIR/NAME.npy, and DIR/index.tsv lists them in evaluation order, in the format a binary
 * built with `kiln build --dump` writes (runtime/dump.c; its `kernel` column is `-` here).
 * `kiln diff --bisect` compares such folders name by name.
 */
#include "driver.h"

#include <stdlib.h>
#include <string.h>

struct InterpDump {
    const Graph *g;
    kiln_dump *d;
    const char *dir;
};

InterpDump *interp_dump_open(const Graph *g, const char *dir)
{
    char err[512];
    kiln_dump *d = kiln_dump_open(dir, err, sizeof err);
    if (!d) {
        fprintf(stderr, "kiln: error: --dump-dir: %s\n", err);
        return NULL;
    }
    InterpDump *id = xcalloc(1, sizeof *id);
    id->g = g;
    id->d = d;
    id->dir = dir;
    return id;
}

bool interp_dump_value(void *ctx, const Node *n, const Tensor *t)
{
    InterpDump *id = ctx;
    const Graph *g = id->g;
    if (n->op == OP_INPUT || n->op == OP_WEIGHT || n->op == OP_CONST || n->op == OP_STATE)
        return true;
    char spec[512] = "", inputs[4096] = "", err[512];
    if (n->loc.file && n->loc.line > 0) {       // "gpt2.yaml:58", as the generated C says
        const char *slash = strrchr(n->loc.file, '/');
        snprintf(spec, sizeof spec, "%s:%d", slash ? slash + 1 : n->loc.file, n->loc.line);
    }
    size_t len = 0;
    for (int k = 0; k < n->n_in && len < sizeof inputs; k++)
        len += (size_t)snprintf(inputs + len, sizeof inputs - len, "%s%s", k ? " " : "",
                                g->nodes[n->in[k]].name);
    kiln_dump_entry e = {
        .name = n->name,
        .op = op_name(n->op),
        .spec = spec,
        .inputs = inputs,
        .dtype = t->dtype == DT_F32 ? KILN_F32 : t->dtype == DT_I32 ? KILN_I32 : KILN_I64,
        .rank = t->rank,
    };
    if (kiln_dump_add(id->d, &e, t->dim, t->data, err, sizeof err) != 0) {
        fprintf(stderr, "kiln: error: --dump-dir: %s\n", err);
        return false;
    }
    return true;
}

bool interp_dump_close(InterpDump *id)
{
    if (!id)
        return true;
    char err[512];
    int n = kiln_dump_count(id->d);
    bool ok = kiln_dump_close(id->d, err, sizeof err) == 0;
    if (!ok)
        fprintf(stderr, "kiln: error: --dump-dir: %s\n", err);
    else
        fprintf(stderr, "kiln: dumped %d values into %s (index.tsv lists them)\n", n, id->dir);
    free(id);
    return ok;
}
