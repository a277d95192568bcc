/* codegen/dump.c: what `kiln build --dump` adds to the generated file.
 *
 * A dump build's forward() hands every value it computes to the runtime's kiln_dump_node
 * (runtime/dump.c), which writes it as DIR/NAME.npy when the binary runs with --dump-dir DIR
 * and does nothing otherwise.  NAME is the spec name of the value, so a dump can be compared
 * name by name with the reference interpreter's (`kiln interp --dump-dir`) or PyTorch's
 * (`kiln diff --bisect`).  Before forward() comes model_dump, one kiln_dump_entry per line
 * of the dump's index.tsv; after each kernel call in forward() comes
 *
 *     if (r->dump && kiln_dump_node(r, 14, 2, b_h_0_attn_c_attn))
 *         return 1;
 *
 * which adds entries 14 and 15 of the table, reading the value from the kernel's output.
 *
 * What a value is after the passes:
 *   - a fused node holds the value of the last spec node it implements (cg_value_origin):
 *     a matmul with a bias add and a gelu in its epilogue holds the gelu's value, under the
 *     gelu's name; the matmul and the add are listed as absorbed ("fused into"), not written,
 *     since their values never exist in memory.  A fused attention holds its final matmul's.
 *   - a view (reshape) shares its input's buffer: it is written right after the kernel that
 *     fills that buffer, in its own shape (a view of a source, at its own place).
 * Folded constants, inputs, weights and states are not values forward() computes: none is
 * written.  Without CgOptions.dump none of this is in the file.
 */
#include "cg.h"

#include <string.h>

// Nodes whose value a kernel in forward() computes (emit.c's rule).
static bool has_kernel(const Node *n)
{
    return !n->dead && op_info[n->op].cls != OPC_VIEW && n->op != OP_INPUT &&
           n->op != OP_WEIGHT && n->op != OP_CONST && n->op != OP_STATE;
}

static bool is_view(const Node *n)
{
    return !n->dead && op_info[n->op].cls == OPC_VIEW;
}

const Origin *cg_value_origin(const Node *n)
{
    if (n->n_origins < 1)       // every constructor gives a node itself as its origin
        KILN_BUG("cg_value_origin: %s '%s' has no origins", op_name(n->op), n->name);
    return &n->origins[n->n_origins - 1];
}

// Entries node n adds: the spec nodes it absorbed, then its value.
static int n_entries(const Node *n)
{
    return n->n_origins > 1 ? n->n_origins : 1;
}

// cg->dump_at: the first entry of each node, in the order forward() dumps them: a computed
// node, then the views of its buffer; a view of a source at its own place.
static const int *dump_at(Cg *cg, int *total)
{
    const Graph *g = cg->g;
    if (!cg->dump_at) {
        cg->dump_at = arena_alloc(&cg->tmp, sizeof(int) * (size_t)(g->n_nodes + 1));
        int k = 0;
        for (int i = 0; i < g->n_nodes; i++)
            cg->dump_at[i] = -1;
        for (int i = 0; i < g->n_nodes; i++) {
            const Node *n = &g->nodes[i];
            if (is_view(n) && !has_kernel(&g->nodes[ir_storage_root(g, i)])) {
                cg->dump_at[i] = k;
                k += n_entries(n);
            } else if (has_kernel(n)) {
                cg->dump_at[i] = k;
                k += n_entries(n);
                for (int j = i + 1; j < g->n_nodes; j++)
                    if (is_view(&g->nodes[j]) && ir_storage_root(g, j) == i) {
                        cg->dump_at[j] = k;
                        k += n_entries(&g->nodes[j]);
                    }
            }
        }
        cg->dump_at[g->n_nodes] = k;
    }
    if (total)
        *total = cg->dump_at[g->n_nodes];
    return cg->dump_at;
}

// "gpt2.yaml:58", as kernel comments write spec places.
static const char *place(Cg *cg, SrcLoc loc)
{
    if (!loc.file || loc.line <= 0)
        return NULL;
    const char *slash = strrchr(loc.file, '/');
    return cg_fmt(cg, "%s:%d", slash ? slash + 1 : loc.file, loc.line);
}

static void string_or_null(Buf *b, const char *s)
{
    if (s)
        bc_string(b, s, false);
    else
        bputs(b, "NULL");
}

static const char *dtype_enum(DType t)
{
    return t == DT_F32 ? "KILN_F32" : t == DT_I32 ? "KILN_I32" : "KILN_I64";
}

// One table line: {name, op, spec, kernel, inputs, held_by, dtype, rank, {dims}, {syms}}.
static void entry(Buf *b, int k, const Origin *o, const char *spec, const char *kernel,
                  const char *inputs, const char *held_by, const Type *t)
{
    bprintf(b, "    /* %d */ {", k);
    bc_string(b, o->name, false);
    bputs(b, ", ");
    bc_string(b, op_name(o->op), false);
    bputs(b, ", ");
    string_or_null(b, spec);
    bputs(b, ", ");
    string_or_null(b, kernel);
    bprintf(b, ",\n%*s", k < 10 ? 13 : k < 100 ? 14 : k < 1000 ? 15 : 16, "");
    string_or_null(b, inputs);
    bputs(b, ", ");
    string_or_null(b, held_by);
    if (!t) {
        bputs(b, "},\n");
        return;
    }
    bprintf(b, ",\n%*s%s, %d, {", k < 10 ? 13 : k < 100 ? 14 : k < 1000 ? 15 : 16, "",
            dtype_enum(t->dtype), t->rank);
    for (int d = 0; d < t->rank; d++)
        bprintf(b, "%s%lld", d ? ", " : "", (long long)t->dim[d].size);
    bputs(b, t->rank ? "}, {" : "0}, {");
    for (int d = 0; d < t->rank; d++)
        bprintf(b, "%s%d", d ? ", " : "", t->dim[d].sym >= 0 ? t->dim[d].sym : -1);
    bputs(b, t->rank ? "}},\n" : "-1}},\n");
}

// The entries of node n (absorbed spec nodes, then its value) from index k.
static void node_entries(Cg *cg, const Node *n, const char *kernel, Buf *b, int k)
{
    const Graph *g = cg->g;
    const Origin *v = cg_value_origin(n);
    for (int o = 0; o + 1 < n->n_origins; o++)
        entry(b, k++, &n->origins[o], place(cg, n->origins[o].loc), kernel, NULL, v->name, NULL);
    Buf in = {0};
    for (int i = 0; i < n->n_in; i++)
        bprintf(&in, "%s%s", i ? " " : "", cg_value_origin(&g->nodes[n->in[i]])->name);
    entry(b, k, v, place(cg, v->loc), kernel, n->n_in ? cg_fmt(cg, "%s", bstr(&in)) : NULL,
          NULL, &n->type);
    bfree(&in);
}

void cg_emit_dump_table(Cg *cg, const char *const *kname, Buf *b)
{
    const Graph *g = cg->g;
    int total;
    const int *at = dump_at(cg, &total);
    bputs(b, "/* --dump (kiln build --dump; docs/inspect.md): every value forward() computes, "
             "in the order\n * it computes them: {name, op, spec place, kernel, inputs, fused "
             "into, dtype, rank,\n * dims (symbolic ones at their bound), syms}.  forward() "
             "hands each to kiln_dump_node, which\n * writes it when the binary runs with "
             "--dump-dir DIR.  A normal build has none of this. */\n");
    bprintf(b, "static const kiln_dump_entry model_dump[%d] = {\n", total ? total : 1);
    for (int k = 0; k < total; k++)
        for (int i = 0; i < g->n_nodes; i++)
            if (at[i] == k) {
                const Node *n = &g->nodes[i];
                node_entries(cg, n, has_kernel(n) ? kname[i] : NULL, b, k);
                break;
            }
    bputs(b, "};\n\n");
}

// One kiln_dump_node call: node n's entries, read from `data`.
static void call(Cg *cg, const Node *n, const char *data, Buf *body)
{
    const int *at = dump_at(cg, NULL);
    const char *code = cg_fmt(cg, "if (r->dump && kiln_dump_node(r, %d, %d, %s))", at[n->id],
                              n_entries(n), data);
    const char *name = cg_value_origin(n)->name;
    if (4 + strlen(code) + 4 + strlen(name) <= 100) {     // the value's name, when it fits
        bprintf(body, "    %s   // ", code);
        bcomment_text(body, name);
        bputs(body, "\n");
    } else {
        bline(body, "%s", code);
    }
    bline(body, "    return 1;");
}

void cg_emit_dump_calls(Cg *cg, const Node *n, const char *const *var, bool *used, Buf *body)
{
    const Graph *g = cg->g;
    if (is_view(n)) {       // a view of a source: at its place (the others follow their root)
        NodeId root = ir_storage_root(g, n->id);
        if (!has_kernel(&g->nodes[root])) {
            used[root] = true;
            call(cg, n, var[root], body);
        }
        return;
    }
    if (!has_kernel(n))
        return;
    call(cg, n, var[n->id], body);
    for (int j = n->id + 1; j < g->n_nodes; j++)
        if (is_view(&g->nodes[j]) && ir_storage_root(g, j) == n->id)
            call(cg, &g->nodes[j], var[n->id], body);
}

int cg_dump_count(Cg *cg)
{
    int total;
    dump_at(cg, &total);
    return total;
}
