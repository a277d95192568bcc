/* ir/dot.c: the graph as Graphviz DOT, for `kiln inspect --dot` and `--svg`.
 *
 * One box per node with its op, name, spec line and (for sources) tensor; edges carry the
 * shape of the value they move; nodes of a repeated block sit in a cluster per iteration
 * (Node.block, set by the front end); a node that implements several spec nodes after fusion is drawn as a cluster
 * of its origins, so the picture shows what each kernel absorbed.  Deterministic output.
 */
#include "ir.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : (path ? path : "?");
}

// Write s with DOT string escapes.
static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
}

// The repeat iteration a node was written in ("h.3"), or "" outside repeat blocks.
static const char *block_of(const Node *n) { return n->block ? n->block : ""; }

static void print_node(const Graph *g, const Node *n, FILE *out, const char *indent)
{
    const char *color = op_info[n->op].cls == OPC_SOURCE ? "#eeeeee"
                        : n->op == OP_MATMUL || n->op == OP_ATTENTION ? "#ffe0b0"
                                                                       : "#ddeeff";
    if (n->n_origins > 1) {
        // A fused kernel: a box around the spec nodes it implements.
        fprintf(out, "%ssubgraph cluster_k%d {\n%s  label=\"kernel %%%d ", indent, n->id, indent, n->id);
        put_escaped(out, n->name);
        fprintf(out, "\"; style=\"rounded,bold\"; color=\"#cc6600\";\n");
        for (int k = 0; k < n->n_origins; k++) {
            const Origin *o = &n->origins[k];
            fprintf(out, "%s  n%d_%d [label=\"%s\\n", indent, n->id, k, op_name(o->op));
            put_escaped(out, o->name);
            fprintf(out, "\\n@%s:%d\", fillcolor=\"%s\"];\n", base_name(o->loc.file), o->loc.line,
                    color);
        }
        for (int k = 1; k < n->n_origins; k++)
            fprintf(out, "%s  n%d_%d -> n%d_%d [style=dashed];\n", indent, n->id, k - 1, n->id, k);
        fprintf(out, "%s}\n", indent);
        return;
    }
    fprintf(out, "%sn%d [label=\"%%%d %s\\n", indent, n->id, n->id, op_name(n->op));
    put_escaped(out, n->name);
    if (n->op == OP_WEIGHT) {
        fputs("\\n\\\"", out);
        put_escaped(out, n->attr.weight.tensor);
        fputs("\\\"", out);
    }
    if (n->loc.line > 0)
        fprintf(out, "\\n@%s:%d", base_name(n->loc.file), n->loc.line);
    fprintf(out, "\", fillcolor=\"%s\"];\n", color);
}

// DOT id of the port where edges into (first) or out of (last) node n attach.
static void port(const Node *n, bool last, char *buf, size_t size)
{
    if (n->n_origins > 1)
        snprintf(buf, size, "n%d_%d", n->id, last ? n->n_origins - 1 : 0);
    else
        snprintf(buf, size, "n%d", n->id);
}

void ir_print_dot(const Graph *g, FILE *out)
{
    fprintf(out, "digraph \"");
    put_escaped(out, g->model_name);
    fprintf(out, "\" {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", "
                 "fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n");
    fprintf(out, "  label=\"%s from %s\"; labelloc=t;\n", g->model_name, base_name(g->spec_path));
    // Nodes outside any block, then one cluster per block in order of first appearance.
    bool *done = xcalloc((size_t)g->n_nodes + 1, sizeof *done);
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->dead || done[i])
            continue;
        const char *blk = block_of(n);
        if (!blk[0]) {
            print_node(g, n, out, "  ");
            done[i] = true;
            continue;
        }
        fprintf(out, "  subgraph cluster_");
        for (const char *p = blk; *p; p++)
            fputc(isalnum((unsigned char)*p) ? *p : '_', out);
        fprintf(out, " {\n    label=\"");
        put_escaped(out, blk);
        fprintf(out, "\"; style=dashed; color=\"#888888\";\n");
        for (int j = i; j < g->n_nodes; j++) {
            const Node *m = &g->nodes[j];
            if (m->dead || done[j] || strcmp(block_of(m), blk) != 0)
                continue;
            print_node(g, m, out, "    ");
            done[j] = true;
        }
        fprintf(out, "  }\n");
    }
    free(done);
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_in; k++) {
            const Node *p = &g->nodes[n->in[k]];
            char from[64], to[64], shape[256];
            port(p, true, from, sizeof from);
            port(n, false, to, sizeof to);
            fprintf(out, "  %s -> %s [label=\"%s%s\"];\n", from, to, dtype_name(p->type.dtype),
                    shape_str(g, &p->type, shape, sizeof shape));
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        char from[64], shape[256];
        const Node *n = &g->nodes[g->outputs[i].node];
        port(n, true, from, sizeof from);
        fprintf(out, "  out%d [label=\"output ", i);
        put_escaped(out, g->outputs[i].name);
        fprintf(out, "\", shape=oval, fillcolor=\"#d0f0d0\"];\n  %s -> out%d [label=\"%s%s\"];\n", from,
                i, dtype_name(n->type.dtype), shape_str(g, &n->type, shape, sizeof shape));
    }
    fprintf(out, "}\n");
}
