/* codegen/emit_api.c: the model's typed C API: NAME_open, NAME_forward, NAME_close.
 *
 * The generated C file ends with their definitions (thin wrappers over kiln_open,
 * kiln_forward and kiln_close in runtime/api.c); `kiln emit` also writes NAME.h with their
 * declarations, so a program can #include the header, compile NAME.c with -DKILN_NO_MAIN and
 * link the runtime (docs/api.md).  Both texts come from one prototype writer, so the
 * declarations and the definitions cannot drift apart.
 *
 *   kiln_instance *bert_open(const char *weights_path, int threads, char *err, size_t errlen);
 *   int bert_forward(kiln_instance *m, int64_t batch, int64_t seq, const int32_t *input_ids,
 *                    ..., float *last_hidden_state, float *pooler_output, char *err,
 *                    size_t errlen);
 *   void bert_close(kiln_instance *m);
 */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

// The parameters of NAME_forward after `m`: the symbolic dims (int64_t), the inputs (const
// pointers) and the outputs (pointers), each by its spec name, made distinct from the others,
// from C's reserved names and from m/err/errlen by appending '_'.  Each item is the whole
// declaration ("const int32_t *input_ids"); name[] is the bare name.
typedef struct {
    char **item, **name;
    int n;
} Params;

static bool clashes(const Params *p, const char *s)
{
    if (cg_c_reserved(s) || !strcmp(s, "m") || !strcmp(s, "err") || !strcmp(s, "errlen"))
        return true;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->name[i], s) == 0)
            return true;
    return false;
}

static void add_param(Params *p, const char *type, const char *raw)
{
    char *name = xstrdup(raw);
    while (clashes(p, name)) {
        char *longer = xsprintf("%s_", name);
        free(name);
        name = longer;
    }
    p->item = xrealloc(p->item, (size_t)(p->n + 1) * sizeof *p->item);
    p->name = xrealloc(p->name, (size_t)(p->n + 1) * sizeof *p->name);
    p->item[p->n] = xsprintf("%s%s", type, name);
    p->name[p->n++] = name;
}

static const char *ctype(DType t)
{
    return t == DT_F32 ? "float" : t == DT_I64 ? "int64_t" : "int32_t";
}

static Params api_params(const Graph *g)
{
    Params p = {0};
    for (int s = 0; s < g->n_syms; s++)
        add_param(&p, "int64_t ", g->syms[s].name);
    for (int k = 0; k < g->n_inputs; k++) {
        const Node *n = &g->nodes[g->inputs[k]];
        char *type = xsprintf("const %s *", ctype(n->type.dtype));
        add_param(&p, type, n->name);
        free(type);
    }
    for (int o = 0; o < g->n_outputs; o++) {
        char *type = xsprintf("%s *", ctype(g->nodes[g->outputs[o].node].type.dtype));
        add_param(&p, type, g->outputs[o].name);
        free(type);
    }
    return p;
}

static void free_params(Params *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->item[i]);
        free(p->name[i]);
    }
    free(p->item);
    free(p->name);
}

// "[batch, seq, 768]"
static void shape_text(Buf *b, const Graph *g, const Type *t)
{
    bputs(b, "[");
    for (int k = 0; k < t->rank; k++) {
        if (t->dim[k].sym >= 0)
            bprintf(b, "%s%s", k ? ", " : "", g->syms[t->dim[k].sym].name);
        else
            bprintf(b, "%s%lld", k ? ", " : "", (long long)t->dim[k].size);
    }
    bputs(b, "]");
}

// NAME_forward's prototype, then `tail` (";" for a declaration, "" before a body) and a
// newline.  entry_prototype writes NAME_<fn>'s, which leaves out the dims in `fixed` (a bit
// per sym): NAME_prefill and NAME_decode.
static void entry_prototype(Buf *b, const Graph *g, const Params *p, const char *fn,
                            uint32_t fixed, const char *tail)
{
    const char **items = xcalloc((size_t)p->n + 3, sizeof *items);
    int n = 0;
    items[n++] = "kiln_instance *m";
    for (int i = 0; i < p->n; i++)
        if (i >= g->n_syms || !(fixed & (1u << i)))
            items[n++] = p->item[i];
    items[n++] = "char *err";
    items[n++] = "size_t errlen";
    char *head = xsprintf("int %s_%s(", g->model_name, fn);
    char *end = xsprintf(")%s", tail);
    blist(b, head, items, n, end);
    free(head);
    free(end);
    free(items);
}

static void forward_prototype(Buf *b, const Graph *g, const Params *p, const char *tail)
{
    entry_prototype(b, g, p, "forward", 0, tail);
}

// With a state (a key/value cache), two entry points over NAME_forward: prefill (the state's
// position fixed at 0: a new text) and, when the spec's text roles name the ids, decode (their
// seq dim fixed at 1: one new token per row, at position `past`).  *prefill/*decode: the bit
// of the dim each fixes, or 0 when the entry point does not exist.
static void entry_points(const Graph *g, uint32_t *prefill, uint32_t *decode)
{
    *prefill = *decode = 0;
    if (g->position_sym < 0)
        return;
    *prefill = 1u << g->position_sym;
    if (g->text.present) {
        int seq = g->nodes[g->inputs[g->text.ids]].type.dim[1].sym;
        if (seq >= 0 && seq != g->position_sym)
            *decode = 1u << seq;
    }
}

// The body of an entry point: NAME_forward with the fixed dims at their value.
static void entry_body(Buf *b, const Graph *g, const Params *p, uint32_t fixed, int value)
{
    const char **items = xcalloc((size_t)p->n + 3, sizeof *items);
    char num[16];
    snprintf(num, sizeof num, "%d", value);
    int n = 0;
    items[n++] = "m";
    for (int i = 0; i < p->n; i++)
        items[n++] = i < g->n_syms && (fixed & (1u << i)) ? num : p->name[i];
    items[n++] = "err";
    items[n++] = "errlen";
    char *head = xsprintf("{\n    return %s_forward(", g->model_name);
    blist(b, head, items, n, ");\n}\n");
    free(head);
    free(items);
}

static void open_prototype(Buf *b, const Graph *g, const char *tail)
{
    static const char *const items[] = {"const char *weights_path", "int threads", "char *err",
                                        "size_t errlen"};
    char *head = xsprintf("kiln_instance *%s_open(", g->model_name);
    char *end = xsprintf(")%s", tail);
    blist(b, head, items, 4, end);
    free(head);
    free(end);
}

void cg_emit_api(const Graph *g, Buf *b)
{
    Params p = api_params(g);
    const char *name = g->model_name;
    bprintf(b, "/* The C API, as declared in %s.h (which `kiln emit` writes; docs/api.md).  Compile\n"
               " * this file with -DKILN_NO_MAIN to link it into a program.  KILN_NO_API leaves it\n"
               " * out, for programs that #include this file and call model.forward themselves. */\n"
               "#ifndef KILN_NO_API\n", name);
    uint32_t prefill, decode;
    entry_points(g, &prefill, &decode);
    open_prototype(b, g, ";");
    forward_prototype(b, g, &p, ";");
    if (prefill)
        entry_prototype(b, g, &p, "prefill", prefill, ";");
    if (decode)
        entry_prototype(b, g, &p, "decode", decode, ";");
    bprintf(b, "void %s_close(kiln_instance *m);\n\n", name);
    open_prototype(b, g, "");
    bputs(b, "{\n    return kiln_open(&model, weights_path, threads, err, errlen);\n}\n\n");
    forward_prototype(b, g, &p, "");
    bputs(b, "{\n");
    int at = 0;
    if (g->n_syms) {
        const char **items = xcalloc((size_t)g->n_syms, sizeof *items);
        for (int s = 0; s < g->n_syms; s++)
            items[s] = p.name[at++];
        blist(b, "    const int64_t sym[] = {", items, g->n_syms, "};");
        free(items);
    }
    if (g->n_inputs) {
        const char **items = xcalloc((size_t)g->n_inputs, sizeof *items);
        for (int k = 0; k < g->n_inputs; k++)
            items[k] = p.name[at++];
        blist(b, "    const void *const in[] = {", items, g->n_inputs, "};");
        free(items);
    }
    if (g->n_outputs) {
        const char **items = xcalloc((size_t)g->n_outputs, sizeof *items);
        for (int o = 0; o < g->n_outputs; o++)
            items[o] = p.name[at++];
        blist(b, "    void *const out[] = {", items, g->n_outputs, "};");
        free(items);
    }
    bprintf(b, "    return kiln_forward(m, %s, %s, %s, err, errlen);\n}\n\n",
            g->n_syms ? "sym" : "NULL", g->n_inputs ? "in" : "NULL", g->n_outputs ? "out" : "NULL");
    if (prefill) {
        entry_prototype(b, g, &p, "prefill", prefill, "");
        entry_body(b, g, &p, prefill, 0);
    }
    if (decode) {
        entry_prototype(b, g, &p, "decode", decode, "");
        entry_body(b, g, &p, decode, 1);
    }
    bprintf(b, "void %s_close(kiln_instance *m)\n{\n    kiln_close(m);\n}\n", name);
    bputs(b, "#endif /* KILN_NO_API */\n\n");
    free_params(&p);
}

bool cg_emit_api_header(const Graph *g, FILE *out)
{
    Params p = api_params(g);
    const char *name = g->model_name;
    Buf b = {0};
    Buf guard = {0};
    bputs(&guard, "KILN_MODEL_");
    for (const char *s = name; *s; s++)
        bprintf(&guard, "%c", *s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s);
    bputs(&guard, "_H");

    bprintf(&b, "/* %s.h: the C API of the model '%s', generated by kiln " KILN_VERSION " from ",
            name, name);
    bcomment_text(&b, cg_display_path(g->spec_path));
    bprintf(&b, ".\n *\n"
                " * Build a program with it (docs/api.md):\n"
                " *   cc -O2 -I<kiln>/include/kiln prog.c %s.c -DKILN_NO_MAIN \\\n"
                " *      <kiln>/lib/kiln/libkiln_rt.a -lcjson -lm -lpthread\n"
                " * (compile %s.c with the vector flags `kiln build -v` shows, e.g. -march=native).\n"
                " *\n"
                " * %s_open maps and checks the weights (safetensors), packs them and starts the\n"
                " * worker threads (0: the default); %s_forward runs the model on caller-owned,\n"
                " * contiguous buffers at the given dims; %s_close frees it all.  Errors return\n"
                " * NULL or -1 with a message in err; nothing exits.  Two instances may run in two\n"
                " * threads at once; one instance runs one forward at a time.\n"
                " *\n", name, name, name, name, name);
    int at = 0;
    if (g->n_syms) {
        bputs(&b, " * Dims (each from 1 to its bound):");
        for (int s = 0; s < g->n_syms; s++, at++)
            bprintf(&b, "%s %s <= %lld", s ? "," : "", p.name[at], (long long)g->syms[s].max);
        bputs(&b, "\n");
    }
    bputs(&b, " * Inputs:\n");
    for (int k = 0; k < g->n_inputs; k++, at++) {
        const Node *n = &g->nodes[g->inputs[k]];
        bprintf(&b, " *   %-20s %s ", p.name[at], dtype_name(n->type.dtype));
        shape_text(&b, g, &n->type);
        if (n->attr.input.has_range)
            bprintf(&b, ", values in [%lld, %lld]", (long long)n->attr.input.lo,
                    (long long)n->attr.input.hi);
        bputs(&b, "\n");
    }
    bputs(&b, " * Outputs:\n");
    for (int o = 0; o < g->n_outputs; o++, at++) {
        const Node *n = &g->nodes[g->outputs[o].node];
        bprintf(&b, " *   %-20s %s ", p.name[at], dtype_name(n->type.dtype));
        shape_text(&b, g, &n->type);
        bputs(&b, "\n");
    }
    bputs(&b, " */\n");
    bprintf(&b, "#ifndef %s\n#define %s\n\n", bstr(&guard), bstr(&guard));
    bputs(&b, "#include <stddef.h>\n#include <stdint.h>\n\n"
              "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
              "typedef struct kiln_instance kiln_instance;\n\n");
    uint32_t prefill, decode;
    entry_points(g, &prefill, &decode);
    open_prototype(&b, g, ";");
    forward_prototype(&b, g, &p, ";");
    if (prefill) {
        bprintf(&b, "/* The key/value cache: %s_prefill starts a text (position 0), %s_decode "
                    "runs one\n * more token per row at position %s (the tokens already run). "
                    "*/\n", name, name, g->syms[g->position_sym].name);
        entry_prototype(&b, g, &p, "prefill", prefill, ";");
    }
    if (decode)
        entry_prototype(&b, g, &p, "decode", decode, ";");
    bprintf(&b, "void %s_close(kiln_instance *m);\n\n", name);
    bputs(&b, "#ifdef __cplusplus\n}\n#endif\n\n");
    bprintf(&b, "#endif /* %s */\n", bstr(&guard));
    bool ok = fputs(bstr(&b), out) >= 0;
    bfree(&b);
    bfree(&guard);
    free_params(&p);
    return ok;
}

void cg_emit_text(const Graph *g, Buf *b)
{
    if (!g->text.present)
        return;
    bprintf(b, "static const kiln_text model_text = {   /* spec `text:` (indices; -1: none) */\n"
               "    .ids = %d, .mask = %d, .types = %d, .logits = %d, .hidden = %d,\n};\n",
            g->text.ids, g->text.mask, g->text.types, g->text.logits, g->text.hidden);
}
