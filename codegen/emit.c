/* codegen/emit.c: cg_emit_model, the generated C file from top to bottom.
 *
 * Runs after the pass pipeline; plan-memory has given every computed value its arena offset.
 * The file it writes, in order (docs/codegen.md has an example):
 *
 *   header comment    model, spec, command, params, dims, passes, arena
 *   #include "kiln_rt.h"
 *   enums             the spec's whole-number params; one NAME_MAX bound per symbolic dim
 *   constants         static const arrays of the folded OP_CONST values that are read
 *   kernels           one static function per computing node, in graph order, each with a
 *                     comment naming the node, its spec line, attributes, shapes and place;
 *                     nodes whose kernels are the same text (a repeat block's layers) share
 *                     the first one's (share_kernels)
 *   forward()         binds syms, weights, inputs and arena pointers; calls every kernel;
 *                     copies the outputs out
 *   kiln_model        the static description the runtime checks files against, and main()
 *
 * Names derive from spec names (sanitized to identifiers, made unique in graph order), so
 * the same graph gives the same bytes.  The kernel bodies come from kernels_*.c.
 */
#include "cg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CG_MAX_SYMS 16      // kiln_run.sym[16]

/* ---------------------------------------------------------------------------------------
 * Helpers the kernel writers share (declared in cg.h)
 */

char *cg_fmt(Cg *cg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = arena_alloc(&cg->tmp, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *cg_mono(Cg *cg, Mono m, bool paren)
{
    if (m.n == 0)
        return cg_fmt(cg, "%lld", (long long)m.c);
    Buf b = {0};
    for (int i = 0; i < m.n; i++) {
        bprintf(&b, "%s%s", i ? " * " : "", cg->sym_var[m.sym[i]]);
        if (cg->sym_used)
            *cg->sym_used |= 1u << m.sym[i];
    }
    if (m.c != 1)
        bprintf(&b, " * %lld", (long long)m.c);
    bool product = m.n > 1 || m.c != 1;
    const char *s = paren && product ? cg_fmt(cg, "(%s)", bstr(&b)) : cg_fmt(cg, "%s", bstr(&b));
    bfree(&b);
    return s;
}

const char *cg_ctype(DType t)
{
    switch (t) {
    case DT_F32: return "float";
    case DT_I32: return "int32_t";
    case DT_I64: return "int64_t";
    }
    KILN_BUG("cg_ctype: bad dtype %d", (int)t);
}

bool cg_unsupported(Cg *cg, const Node *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_error(cg->d, n->loc, "%s '%s': the code generator cannot lower this: %s",
               op_name(n->op), n->name, msg);
    return false;
}

/* ---------------------------------------------------------------------------------------
 * Per-file state and names
 */

typedef struct {
    Cg cg;
    const Graph *g;
    const char **names;         // every identifier taken at file scope or in forward(): an
    size_t n_names, cap_names;  // open-addressing hash set of cap_names slots (a power of 2)
    const char **sym_max;       // [n_syms] enum name of each symbolic dim's bound
    const char **kname;         // [n_nodes] kernel function of a computing node
    int *kfirst;                // [n_nodes] the node whose kernel a computing node calls: the
                                // first with the same kernel text (share_kernels), or itself
    int *kcalls;                // [n_nodes] of a first node: how many nodes call its kernel
    const char **var;           // [n_nodes] forward()'s name for the node's own storage
    bool *in_enum;              // [n_params] the param is in the generated enum
    const Node **weights;       // model_weights: the first OP_WEIGHT node of each tensor
    int n_weights, cap_weights;
    bool *used;                 // [n_nodes] storage roots forward() reads or writes
    uint32_t *ksyms;            // [n_nodes] syms a kernel takes, in sym order
    bool *kfail;                // [n_nodes] the kernel can fail (returns int)
    bool *krun;                 // [n_nodes] the kernel takes kiln_run *r (threads)
} Emit;

// Identifiers used inside kernels and forward(): a symbolic dim's variable must not take
// one (file-scope names may: a kernel's local simply shadows them).
static const char kernel_locals[] =
    " i j k m n row last id den max sum inv mean sq dev rstd acc a_mk xr yr a_row b_row o_row"
    " a_mat b_mat o_mat a b x gamma beta table ids out r"
    " q v mask bh qm km vm om mm mr qr vr ni nj j0 j_end c d kt s s_max m_new m_use alpha"
    " p p_sum row_max row_sum lane l job blk n_qb va pc qd ctx begin end nv mx ps"
    " s0 s1 s2 s3 o0 o1 o2 o3 ";

static bool is_kernel_local(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return true;
    for (const char *p = kernel_locals; (p = strstr(p, s)) != NULL; p += n)
        if (p[-1] == ' ' && p[n] == ' ')
            return true;
    // loop variables i0.., concat inputs x0.., epilogue operands e1..
    if ((s[0] == 'i' || s[0] == 'x' || s[0] == 'e') && s[1] >= '0' && s[1] <= '9')
        return strspn(s + 1, "0123456789") == strlen(s + 1);
    return false;
}

static bool is_identifier(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
           strlen(s);
}

static size_t name_hash(const char *s)
{
    size_t h = 14695981039346656037ull;     // FNV-1a
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

// The slot of s in the set: where it is, or the empty slot where it would go.
static size_t name_slot(const Emit *E, const char *s)
{
    size_t i = name_hash(s) & (E->cap_names - 1);
    while (E->names[i] && strcmp(E->names[i], s) != 0)
        i = (i + 1) & (E->cap_names - 1);
    return i;
}

static bool taken(const Emit *E, const char *s)
{
    return (E->cap_names && E->names[name_slot(E, s)]) || cg_c_reserved(s);
}

static const char *take(Emit *E, const char *s)
{
    if (2 * (E->n_names + 1) > E->cap_names) {     // grow at half full
        const char **old = E->names;
        size_t old_cap = E->cap_names;
        E->cap_names = old_cap ? 2 * old_cap : 256;
        E->names = xcalloc(E->cap_names, sizeof *E->names);
        for (size_t i = 0; i < old_cap; i++)
            if (old[i])
                E->names[name_slot(E, old[i])] = old[i];
        free(old);
    }
    const char *copy = arena_strdup(&E->cg.tmp, s);
    E->names[name_slot(E, copy)] = copy;
    E->n_names++;
    return copy;
}

// prefix + raw with every non-identifier character replaced by '_' ("h.0.attn" ->
// "k_h_0_attn"), then the first of NAME, NAME_2, NAME_3, ... that is free.
static const char *claim(Emit *E, const char *prefix, const char *raw, bool local)
{
    Buf b = {0};
    bputs(&b, prefix);
    if (!prefix[0] && !(raw[0] >= 'a' && raw[0] <= 'z') && !(raw[0] >= 'A' && raw[0] <= 'Z'))
        bputs(&b, "d_");    // an identifier starts with a letter (a leading _ is reserved)
    for (const char *p = raw; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        bprintf(&b, "%c", ok ? c : '_');
    }
    const char *want = cg_fmt(&E->cg, "%s", bstr(&b));
    bfree(&b);
    const char *s = want;
    for (int k = 2; taken(E, s) || (local && is_kernel_local(s)); k++)
        s = cg_fmt(&E->cg, "%s_%d", want, k);
    return take(E, s);
}

static bool computes(const Node *n)
{
    return !n->dead && op_info[n->op].cls != OPC_VIEW && n->op != OP_INPUT &&
           n->op != OP_WEIGHT && n->op != OP_CONST && n->op != OP_STATE;
}

// The first input a kernel takes: cache_write writes into the state through its output
// pointer (a slot of the state), so it is not passed the state itself.
static int first_kernel_input(const Node *n)
{
    return n->op == OP_CACHE_WRITE ? 1 : 0;
}

static int64_t value_bytes(const Node *n)
{
    return type_numel_max(&n->type) * (int64_t)dtype_size(n->type.dtype);
}

// A spec place for comments: "gpt2.yaml:58" (the file's last path component keeps lines
// short; the header names the spec in full).
static const char *place(Cg *cg, SrcLoc loc)
{
    if (!loc.file || loc.line <= 0)
        return "(no spec line)";
    const char *slash = strrchr(loc.file, '/');
    return cg_fmt(cg, "%s:%d", slash ? slash + 1 : loc.file, loc.line);
}

static const char *type_text(Cg *cg, const Type *t)
{
    char s[512];
    return cg_fmt(cg, "%s%s", dtype_name(t->dtype), shape_str(cg->g, t, s, sizeof s));
}

static const char *kiln_dtype_enum(DType t)
{
    switch (t) {
    case DT_F32: return "KILN_F32";
    case DT_I32: return "KILN_I32";
    case DT_I64: return "KILN_I64";
    }
    KILN_BUG("kiln_dtype_enum: bad dtype %d", (int)t);
}

// Plan-memory must have placed every computed value inside the arena, 64-byte aligned.
static void check_planned(const Graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (!computes(n) || n->op == OP_CACHE_WRITE)    // cache_write: a slot of the state
            continue;
        if (n->output >= 0 && n->output < g->n_outputs)  // written into an output's buffer
            continue;
        if (n->offset < 0 || n->offset % 64 != 0 || n->offset + value_bytes(n) > g->arena_bytes)
            KILN_BUG("cg_emit_model: '%s' is at offset %lld of an arena of %lld bytes; "
                     "plan-memory must run before code generation", n->name,
                     (long long)n->offset, (long long)g->arena_bytes);
    }
}

// Name everything in a fixed order, so that earlier (more visible) names win clashes:
// symbolic dims, their bounds, params (exact names only) here, before the kernels are built
// (their bodies use the dims' names); then, once share_kernels has grouped them, kernels,
// constants, weights, inputs, activations (name_values).
static void name_dims(Emit *E)
{
    const Graph *g = E->g;
    static const char *const fixed[] = {"forward", "model", "model_syms", "model_inputs",
                                        "model_outputs", "model_weights",
                                        "model_weight_prefixes", "main", "argc", "argv",
                                        "prepare", "attn_expf", "v_pow2", "s_pow2", "v_exp",
                                        "s_exp", "v_tanh", "s_tanh", "v_gelu_tanh",
                                        "s_gelu_tanh", "v_gelu_erf", "s_gelu_erf"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        take(E, fixed[i]);
    for (int s = 0; s < g->n_syms; s++)
        E->cg.sym_var[s] = claim(E, "", g->syms[s].name, true);
    for (int s = 0; s < g->n_syms; s++)
        E->sym_max[s] = claim(E, "", cg_fmt(&E->cg, "%s_MAX", g->syms[s].name), false);
    for (int p = 0; p < g->n_params; p++) {
        const Param *pr = &g->params[p];
        // Whole numbers that fit an int, under their own name; the header lists all.
        E->in_enum[p] = is_identifier(pr->name) && !taken(E, pr->name) &&
                        pr->value >= -2147483648.0 && pr->value <= 2147483647.0 &&
                        pr->value == (double)(int)pr->value;
        if (E->in_enum[p])
            take(E, pr->name);
    }
}

// name without its repeat indices, the all-digit components after the first ("h.0.attn.qk"
// -> "h.attn.qk"): the name of a kernel that several layers share.
static const char *without_repeat_index(Cg *cg, const char *name)
{
    Buf b = {0};
    for (const char *p = name; *p;) {
        size_t len = strcspn(p, ".");
        bool index = p != name && len && p[len] == '.' && strspn(p, "0123456789") == len;
        if (!index)
            bprintf(&b, "%s%.*s", b.len ? "." : "", (int)len, p);
        p += len + (p[len] == '.');
    }
    const char *s = cg_fmt(cg, "%s", bstr(&b));
    bfree(&b);
    return s;
}

static void name_values(Emit *E)
{
    const Graph *g = E->g;
    for (int i = 0; i < g->n_nodes; i++)    // one name per kernel function, in graph order
        if (computes(&g->nodes[i]) && E->kfirst[i] == i)
            E->kname[i] = claim(E, "k_", E->kcalls[i] > 1
                                             ? without_repeat_index(&E->cg, g->nodes[i].name)
                                             : g->nodes[i].name, false);
    for (int i = 0; i < g->n_nodes; i++)
        if (computes(&g->nodes[i]))
            E->kname[i] = E->kname[E->kfirst[i]];
    for (int i = 0; i < g->n_nodes; i++)
        if (!g->nodes[i].dead && g->nodes[i].op == OP_CONST)
            E->var[i] = claim(E, "c_", g->nodes[i].name, false);
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->dead || n->op != OP_WEIGHT)
            continue;
        int w = 0;
        while (w < E->n_weights && strcmp(E->weights[w]->attr.weight.tensor, n->attr.weight.tensor))
            w++;
        if (w == E->n_weights) {
            VEC_PUSH(E->weights, E->n_weights, E->cap_weights, n);
            E->var[i] = claim(E, "w_", n->name, false);
        } else {
            E->var[i] = E->var[E->weights[w]->id];     // a tied weight: one pointer
        }
    }
    for (int k = 0; k < g->n_inputs; k++)
        E->var[g->inputs[k]] = claim(E, "in_", g->nodes[g->inputs[k]].name, false);
    for (int k = 0; k < g->n_states; k++)
        E->var[g->states[k]] = claim(E, "st_", g->nodes[g->states[k]].name, false);
    for (int i = 0; i < g->n_nodes; i++)
        if (computes(&g->nodes[i]))
            E->var[i] = claim(E, "b_", g->nodes[i].name, false);
}

/* ---------------------------------------------------------------------------------------
 * Header, enums, constants
 */

// " *   label   item, item, ..." wrapped at 100 columns.
static void comment_list(Buf *b, const char *label, const char *const *items, int n)
{
    bprintf(b, " *   %-8s", label);
    int col = 13;
    for (int i = 0; i < n; i++) {
        int w = (int)strlen(items[i]);
        if (i > 0 && col + 2 + w > 100) {
            bprintf(b, ",\n *   %-8s", "");
            col = 13;
        } else if (i > 0) {
            bputs(b, ", ");
            col += 2;
        }
        bcomment_text(b, items[i]);
        col += w;
    }
    bputs(b, "\n");
}

// The command line, " *   " first, continued (" \\") on lines of at most 100 columns; an
// option and its value ("-D n_layer=12") stay on one line.
static void comment_command(Cg *cg, Buf *b, const char *cmd)
{
    bputs(b, " *   ");
    int col = 5;
    for (const char *p = cmd; *p;) {
        // The next unit: a word, with the word after it when this one is an option and that
        // one is not ("-o -" is an option and its value).
        const char *e = strchr(p, ' ');
        e = e ? e : p + strlen(p);
        if (*p == '-' && *e == ' ' && e[1] && (e[1] != '-' || e[2] == ' ' || !e[2])) {
            const char *v = strchr(e + 1, ' ');
            e = v ? v : e + 1 + strlen(e + 1);
        }
        int w = (int)(e - p);
        if (p != cmd && col + 1 + w + 2 > 100) {
            bputs(b, " \\\n *       ");
            col = 9;
        } else if (p != cmd) {
            bputs(b, " ");
            col++;
        }
        bcomment_text(b, cg_fmt(cg, "%.*s", w, p));
        col += w;
        p = *e ? e + 1 : e;
    }
}

static void emit_header(Emit *E, Buf *b)
{
    const Graph *g = E->g;
    Cg *cg = &E->cg;
    const char *first = cg_fmt(cg, "%s.c: generated by kiln %s from %s", g->model_name,
                               KILN_VERSION, cg_display_path(g->spec_path));
    bputs(b, "/* ");
    bcomment_text(b, first);
    if (E->cg.opt->command) {
        bool fits = 3 + strlen(first) + strlen("; do not edit, regenerate with") <= 100;
        bputs(b, fits ? "; do not edit, regenerate with\n"
                      : ";\n * do not edit, regenerate with\n");
        comment_command(cg, b, E->cg.opt->command);
    } else {
        bputs(b, "; do not edit");
    }
    bputs(b, "\n *\n");
    const char **items = xmalloc(sizeof *items * (size_t)(g->n_params + g->n_syms +
                                                         g->n_passes_run + 1));
    for (int p = 0; p < g->n_params; p++)
        items[p] = cg_fmt(cg, "%s = %.9g%s", g->params[p].name, g->params[p].value,
                          g->params[p].overridden ? " (-D)" : "");
    if (g->n_params)
        comment_list(b, "params", items, g->n_params);
    for (int s = 0; s < g->n_syms; s++)
        items[s] = cg_fmt(cg, "%s <= %lld", g->syms[s].name, (long long)g->syms[s].max);
    if (g->n_syms)
        comment_list(b, "dims", items, g->n_syms);
    for (int p = 0; p < g->n_passes_run; p++)
        items[p] = g->passes_run[p];
    if (g->n_passes_run)
        comment_list(b, "passes", items, g->n_passes_run);
    free(items);
    double kib = (double)g->arena_bytes / 1024.0;
    bprintf(b, " *   %-8s%lld bytes (%.1f %s) in %d buffer%s, sized at the bounds of the dims\n",
            "arena", (long long)g->arena_bytes, kib >= 1024.0 ? kib / 1024.0 : kib,
            kib >= 1024.0 ? "MiB" : "KiB", g->n_buffers, g->n_buffers == 1 ? "" : "s");
    bprintf(b, " *   %-8s%s\n", "isa", cg_isa_description(E->cg.isa));
    if (E->cg.packed_bytes)
        bprintf(b, " *   %-8s%.1f MiB of weights are packed at load into matmul panels, by prepare()\n"
                   " *           (a copy of each, read once; the time is printed with --repeat)\n",
                "packed", (double)E->cg.packed_bytes / (1024.0 * 1024.0));
    bputs(b, " */\n#include \"kiln_rt.h\"\n\n");
}

static void emit_enums(Emit *E, Buf *b)
{
    const Graph *g = E->g;
    const char **items = xmalloc(sizeof *items * (size_t)(g->n_params + g->n_syms + 1));
    int n = 0;
    for (int p = 0; p < g->n_params; p++)
        if (E->in_enum[p])
            items[n++] = cg_fmt(&E->cg, "%s = %d", g->params[p].name, (int)g->params[p].value);
    if (n)
        blist(b, "enum { ", items, n, " };");
    bool any = n > 0;
    n = 0;
    for (int s = 0; s < g->n_syms; s++)
        items[n++] = cg_fmt(&E->cg, "%s = %lld", E->sym_max[s], (long long)g->syms[s].max);
    if (n)
        blist(b, "enum { ", items, n, " };   // bounds of the symbolic dims");
    if (any || n)
        bputs(b, "\n");
    free(items);
}

static void emit_constant(Emit *E, const Node *n, Buf *b)
{
    Cg *cg = &E->cg;
    int64_t numel = type_numel_max(&n->type);
    bprintf(b, "/* %s: ", E->var[n->id]);
    bcomment_text(b, cg_fmt(cg, "%%%d %s, %s, %s", n->id, n->name, type_text(cg, &n->type),
                            place(cg, n->loc)));
    bputs(b, " */\n");
    bprintf(b, "static const %s %s[%lld] = {", cg_ctype(n->type.dtype), E->var[n->id],
            (long long)numel);
    for (int64_t i = 0; i < numel; i++) {
        bputs(b, i % 8 == 0 ? "\n    " : " ");
        switch (n->type.dtype) {
        case DT_F32: {
            float v = ((const float *)n->attr.constant.data)[i];
            if (isnan(v) || isinf(v))
                bc_float(b, v);
            else
                bprintf(b, "%.9g", (double)v);
            break;
        }
        case DT_I32:
            bprintf(b, "%d", (int)((const int32_t *)n->attr.constant.data)[i]);
            break;
        case DT_I64: {
            int64_t v = ((const int64_t *)n->attr.constant.data)[i];
            if (v == INT64_MIN)
                bputs(b, "INT64_MIN");
            else
                bprintf(b, "%lld", (long long)v);
            break;
        }
        }
        if (i + 1 < numel)
            bputs(b, ",");
    }
    bputs(b, "\n};\n\n");
}

/* ---------------------------------------------------------------------------------------
 * Kernels
 */

static const char *attr_text(Cg *cg, const Node *n)
{
    const Graph *g = cg->g;
    Buf b = {0};
    switch (n->op) {
    case OP_MATMUL:
        if (n->attr.matmul.trans_a)
            bputs(&b, "trans_a");
        if (n->attr.matmul.trans_b)
            bprintf(&b, "%strans_b", b.len ? ", " : "");
        break;
    case OP_SCALE: bprintf(&b, "x %.9g", n->attr.scale.by); break;
    case OP_GELU: bputs(&b, n->attr.gelu.tanh ? "tanh approximation" : "erf"); break;
    case OP_CAST: bprintf(&b, "to %s", dtype_name(n->attr.cast.to)); break;
    case OP_LAYER_NORM: bprintf(&b, "eps %.9g", n->attr.layer_norm.eps); break;
    case OP_SOFTMAX: bputs(&b, "last axis"); break;
    case OP_CAUSAL_MASK:
        if (n->attr.causal.has_offset)
            bprintf(&b, "j <= i + %s", g->syms[n->attr.causal.offset_sym].name);
        else
            bputs(&b, "j <= i + Sk - Sq");
        break;
    case OP_ARANGE:
        if (n->attr.arange.has_start_sym)
            bprintf(&b, "start %s", g->syms[n->attr.arange.start_sym].name);
        else
            bprintf(&b, "start %lld", (long long)n->attr.arange.start);
        break;
    case OP_CACHE_WRITE:
        bprintf(&b, "slot %lld, at %s", (long long)n->attr.cache_write.index,
                g->syms[n->attr.cache_write.at_sym].name);
        break;
    case OP_CONCAT: bprintf(&b, "axis %d", n->attr.concat.axis); break;
    case OP_ATTENTION:
        bprintf(&b, "scale %.9g%s%s", n->attr.attention.scale,
                n->attr.attention.causal ? ", causal" : "",
                ir_op_inputs(n) == 4 ? ", mask" : "");
        if (n->attr.attention.seq_major)
            bprintf(&b, ", seq-major %s", attention_seq_major_str(n->attr.attention.seq_major));
        break;
    case OP_SLICE:
        bprintf(&b, "axis %d, [%lld, %lld)", n->attr.slice.axis, (long long)n->attr.slice.start,
                (long long)n->attr.slice.end);
        break;
    case OP_TRANSPOSE:
        bputs(&b, "perm [");
        for (int k = 0; k < n->type.rank; k++)
            bprintf(&b, "%s%d", k ? ", " : "", n->attr.transpose.perm[k]);
        bputs(&b, "]");
        break;
    default: break;
    }
    const char *s = b.len ? cg_fmt(cg, "  (%s)", bstr(&b)) : "";
    bfree(&b);
    return s;
}

static const char *layer_of(Cg *cg, const char *name);

// "h.1 .. h.11", "h.1, h.3 .. h.5": layers (layer_of) in graph order, a run of three or more
// consecutive indices under one prefix written as its ends.
static void layer_ranges(Buf *t, const char *const *layers, int n)
{
    for (int i = 0; i < n;) {
        const char *dot = strrchr(layers[i], '.');
        size_t pre = dot ? (size_t)(dot - layers[i]) + 1 : 0;
        long at = strtol(layers[i] + pre, NULL, 10);
        int j = i + 1;
        while (j < n && strncmp(layers[j], layers[i], pre) == 0 && !strchr(layers[j] + pre, '.') &&
               strtol(layers[j] + pre, NULL, 10) == at + (j - i))
            j++;
        if (j - i >= 3)
            bprintf(t, "%s%s .. %s", i ? ", " : "", layers[i], layers[j - 1]);
        else
            for (int m = i; m < j; m++)
                bprintf(t, "%s%s", m ? ", " : "", layers[m]);
        i = j;
    }
}

// Whether a line may break at the space at s: not inside a range "h.1 .. h.11".
static bool breaks(const char *s)
{
    return *s == ' ' && strncmp(s, " ..", 3) != 0 && strncmp(s - 2, "..", 2) != 0;
}

// " *   also called for  text" (the label on the first line only), the text broken at a
// space where it would pass column 100, continuing under its start.
static void also_line(Cg *cg, Buf *b, bool first, const char *text)
{
    bprintf(b, " *   %-17s", first ? "also called for" : "");
    const int room = 100 - 22;
    const char *p = text;
    while ((int)strlen(p) > room) {
        const char *cut = p + room;
        while (cut > p && !breaks(cut))
            cut--;
        if (cut == p)
            for (cut = p + room; *cut && !breaks(cut); cut++)
                ;
        if (!*cut)
            break;      // no place to break: leave the line long
        bcomment_text(b, cg_fmt(cg, "%.*s", (int)(cut - p), p));
        bprintf(b, "\n *%20s", "");
        p = cut + strspn(cut, " ");
    }
    bcomment_text(b, p);
    bputs(b, "\n");
}

// The comment lines naming the other nodes that call first node n's kernel, one per spec
// node: n's own node in other layers ("the same node in h.1 .. h.11"), then each other node
// with its spec place and the layers it repeats in, in graph order.
static void kernel_callers(Emit *E, const Node *n, Buf *b)
{
    Cg *cg = &E->cg;
    const Graph *g = E->g;
    int nc = E->kcalls[n->id], n_stems = 1, n_others = 0;
    const char **stem = xmalloc(sizeof *stem * (size_t)nc);    // a spec node: name without
    const Node **head = xmalloc(sizeof *head * (size_t)nc);    // its index, its first node
    const char **layer = xmalloc(sizeof *layer * (size_t)nc);  // of each later node: its
    int *of = xmalloc(sizeof *of * (size_t)nc);                // layer and spec node
    stem[0] = without_repeat_index(cg, n->name);
    head[0] = n;
    for (int i = n->id + 1; i < g->n_nodes; i++) {
        const Node *m = &g->nodes[i];
        if (!computes(m) || E->kfirst[i] != n->id)
            continue;
        const char *s = without_repeat_index(cg, m->name);
        int k = 0;
        while (k < n_stems && strcmp(stem[k], s) != 0)
            k++;
        if (k == n_stems) {
            stem[n_stems] = s;
            head[n_stems++] = m;
        } else {
            const char *l = layer_of(cg, m->name);
            layer[n_others] = l ? l : m->name;
            of[n_others++] = k;
        }
    }
    const char **mine = xmalloc(sizeof *mine * (size_t)nc);
    bool first = true;
    for (int k = 0; k < n_stems; k++) {
        int nl = 0;
        for (int i = 0; i < n_others; i++)
            if (of[i] == k)
                mine[nl++] = layer[i];
        if (k == 0 && nl == 0)
            continue;
        Buf t = {0};
        if (k > 0)
            bprintf(&t, "%s  %s%s", head[k]->name, place(cg, head[k]->loc), nl ? "  and " : "");
        if (nl)
            bputs(&t, "the same node in ");
        layer_ranges(&t, mine, nl);
        also_line(cg, b, first, bstr(&t));
        first = false;
        bfree(&t);
    }
    free(mine);
    free(stem);
    free(head);
    free(layer);
    free(of);
}

static void kernel_comment(Emit *E, const Kernel *k, Buf *b)
{
    Cg *cg = &E->cg;
    const Graph *g = E->g;
    const Node *n = k->n;
    if (E->kcalls[n->id] > 1)
        bprintf(b, "/* %s  (%d nodes call it: the first is described here)\n *   ",
                E->kname[n->id], E->kcalls[n->id]);
    else
        bprintf(b, "/* %s\n *   ", E->kname[n->id]);
    const char *node = cg_fmt(cg, "%%%d %s  %s  %s", n->id, op_name(n->op), n->name,
                              place(cg, n->loc));
    const char *attrs = attr_text(cg, n);     // "  (..)" or ""
    bcomment_text(b, node);
    if (*attrs && 5 + strlen(node) + strlen(attrs) > 100)
        bputs(b, "\n *    ");      // the attributes under the node
    bcomment_text(b, attrs);
    bputs(b, "\n");
    if (n->n_origins > 1) {
        for (int o = 0; o < n->n_origins; o++) {
            bprintf(b, " *   %-8s", o == 0 ? "fuses" : "");
            bcomment_text(b, cg_fmt(cg, "%s  %s  %s", op_name(n->origins[o].op),
                                    n->origins[o].name, place(cg, n->origins[o].loc)));
            bputs(b, "\n");
        }
    }
    for (int i = 0; i < n->n_in; i++) {
        const Node *p = k->in[i];
        NodeId root = ir_storage_root(g, p->id);
        const char *head = cg_fmt(cg, " *   %-5s%s = ", i == 0 ? "in" : "", k->arg[i]);
        const char *what = cg_fmt(cg, "%s  %s", p->name, type_text(cg, &p->type));
        bputs(b, head);
        bcomment_text(b, what);
        if (root != p->id) {
            const char *view = cg_fmt(cg, "(a view of %s)", g->nodes[root].name);
            if (strlen(head) + strlen(what) + 2 + strlen(view) <= 100)
                bputs(b, "  ");
            else
                bprintf(b, "\n *%*s", (int)strlen(head) - 2, "");
            bcomment_text(b, view);
        }
        bputs(b, "\n");
    }
    if (n->output >= 0)
        bprintf(b, " *   out  %s straight into output '%s' (r->outputs[%d])\n",
                type_text(cg, &n->type), E->g->outputs[n->output].name, n->output);
    else if (n->op == OP_CACHE_WRITE)   // no arena place: a slot of the state
        bprintf(b, " *   out  %s slot %lld of state '%s' (no arena space)\n",
                type_text(cg, &n->type), (long long)n->attr.cache_write.index,
                E->g->nodes[n->in[0]].name);
    else
        bprintf(b, " *   out  %s at arena + 0x%llx (%lld bytes at the bounds)\n",
                type_text(cg, &n->type), (unsigned long long)n->offset,
                (long long)value_bytes(n));
    bputs(b, bstr(&k->notes));
    if (E->kcalls[n->id] > 1)
        kernel_callers(E, n, b);
    bputs(b, " */\n");
}

static void kernel_free(Kernel *k)
{
    bfree(&k->body);
    bfree(&k->notes);
    bfree(&k->helpers);
}

// Build node n's kernel, its function called `name`, into *k (body, helpers, notes, the
// syms it takes, whether it can fail or takes r).  Reports what it cannot lower; false then,
// with nothing left to free.
static bool build_kernel(Emit *E, const Node *n, const char *name, Kernel *k)
{
    const Graph *g = E->g;
    memset(k, 0, sizeof *k);
    k->cg = &E->cg;
    k->n = n;
    k->name = name;
    k->out = "out";
    k->body.indent = 1;
    for (int i = 0; i < n->n_in; i++)
        k->in[i] = &g->nodes[n->in[i]];
    switch (n->op) {
    case OP_ADD:
    case OP_SUB:
    case OP_DIV:
    case OP_MUL:
    case OP_MATMUL:
        k->arg[0] = "a";
        k->arg[1] = "b";
        break;
    case OP_LAYER_NORM:
        k->arg[0] = "x";
        k->arg[1] = "gamma";
        k->arg[2] = "beta";
        break;
    case OP_GATHER:
        k->arg[0] = "table";
        k->arg[1] = "ids";
        break;
    case OP_CACHE_WRITE:
        k->arg[0] = "state";    // not passed: the kernel writes through out (first_kernel_input)
        k->arg[1] = "x";
        break;
    case OP_CONCAT:
        for (int i = 0; i < ir_op_inputs(n); i++)
            k->arg[i] = cg_fmt(&E->cg, "x%d", i);
        break;
    case OP_ATTENTION:
        k->arg[0] = "q";
        k->arg[1] = "k";
        k->arg[2] = "v";
        k->arg[3] = "mask";
        break;
    default:
        if (ir_op_inputs(n) == 1)
            k->arg[0] = "x";
        else if (ir_op_inputs(n))
            KILN_BUG("build_kernel: no argument names for %s", op_name(n->op));
    }

    E->cg.sym_used = &k->syms;
    bool ok = false;
    cg_epilogue_begin(k);       // fuse-elementwise: names the operands e1, e2, ...
    switch (n->op) {
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
    case OP_SCALE:
    case OP_RELU:
    case OP_TANH:
    case OP_GELU:
    case OP_CAST: ok = cg_kernel_elementwise(k); break;
    case OP_CAUSAL_MASK: ok = cg_kernel_causal_mask(k); break;
    case OP_ARANGE: ok = cg_kernel_arange(k); break;
    case OP_SOFTMAX: ok = cg_kernel_softmax(k); break;
    case OP_LAYER_NORM: ok = cg_kernel_layer_norm(k); break;
    case OP_MATMUL: ok = cg_kernel_matmul(k); break;
    case OP_TRANSPOSE: ok = cg_kernel_transpose(k); break;
    case OP_SLICE: ok = cg_kernel_slice(k); break;
    case OP_CONCAT: ok = cg_kernel_concat(k); break;
    case OP_GATHER: ok = cg_kernel_gather(k); break;
    case OP_CACHE_WRITE: ok = cg_kernel_cache_write(k); break;
    case OP_ATTENTION: ok = cg_kernel_attention(k); break;
    default: ok = cg_unsupported(&E->cg, n, "no kernel for %s", op_name(n->op)); break;
    }
    if (ok && n->n_epi > 0 && !k->epi_applied)    // never drop an epilogue silently
        ok = cg_unsupported(&E->cg, n, "the %s kernel does not apply the %d fused element-wise "
                            "op%s after it", op_name(n->op), n->n_epi, n->n_epi == 1 ? "" : "s");
    E->cg.sym_used = NULL;
    if (!ok) {
        kernel_free(k);
        return false;
    }
    if (k->can_fail)
        bline(&k->body, "return 0;");
    return true;
}

// A row-parallel kernel's job struct (its arguments and syms) and task function (the body,
// over rows [row0, row1)), written before its comment; kernel_code writes the kernel itself.
static void row_task(Emit *E, Kernel *k, Buf *b)
{
    const Graph *g = E->g;
    const Node *n = k->n;
    bprintf(b, "// %s_job: the arguments of the kernel below, for its tasks\ntypedef struct {\n",
            k->name);
    for (int i = first_kernel_input(n); i < n->n_in; i++)
        bprintf(b, "    const %s *%s;\n", cg_ctype(k->in[i]->type.dtype), k->arg[i]);
    bprintf(b, "    %s *%s;\n", cg_ctype(n->type.dtype), k->out);
    for (int s = 0; s < g->n_syms; s++)
        if (k->syms & (1u << s))
            bprintf(b, "    int64_t %s;\n", E->cg.sym_var[s]);
    bprintf(b, "} %s_job;\n\n", k->name);
    bprintf(b, "// %s_task: rows [row0, row1) of the kernel below (a kiln_task_fn)\n", k->name);
    bprintf(b, "static void %s_task(void *ctx, int64_t row0, int64_t row1)\n{\n", k->name);
    bprintf(b, "    const %s_job *job = ctx;\n", k->name);
    for (int i = first_kernel_input(n); i < n->n_in; i++)
        bprintf(b, "    const %s *restrict %s = job->%s;\n", cg_ctype(k->in[i]->type.dtype),
                k->arg[i], k->arg[i]);
    bprintf(b, "    %s *restrict %s = job->%s;\n", cg_ctype(n->type.dtype), k->out, k->out);
    for (int s = 0; s < g->n_syms; s++)
        if (k->syms & (1u << s))
            bprintf(b, "    const int64_t %s = job->%s;\n", E->cg.sym_var[s], E->cg.sym_var[s]);
    bprintf(b, "%s}\n\n", bstr(&k->body));
}

// The kernel's code: its helper functions, then (after `comment`, if any) its signature
// (only the syms the body uses) and body.  A kernel that several nodes call is noinline:
// clang would otherwise paste a copy into forward() at every call (BERT's 25 layer norms),
// which undoes the sharing's saving in compile time and gains nothing at run time.
static void kernel_code(Emit *E, Kernel *k, const char *comment, bool shared, Buf *b)
{
    const Graph *g = E->g;
    const Node *n = k->n;
    bputs(b, bstr(&k->helpers));
    if (k->par_rows)
        row_task(E, k, b);
    if (comment)
        bputs(b, comment);
    const char *params[KILN_MAX_IN + CG_MAX_SYMS + 2];
    int np = 0;
    if (k->can_fail || k->needs_run)
        params[np++] = "kiln_run *r";
    for (int i = first_kernel_input(n); i < n->n_in; i++)
        params[np++] = cg_fmt(&E->cg, "const %s *restrict %s", cg_ctype(k->in[i]->type.dtype),
                              k->arg[i]);
    params[np++] = cg_fmt(&E->cg, "%s *restrict %s", cg_ctype(n->type.dtype), k->out);
    for (int s = 0; s < g->n_syms; s++)
        if ((k->syms | k->par_syms) & (1u << s))
            params[np++] = cg_fmt(&E->cg, "int64_t %s", E->cg.sym_var[s]);
    blist(b, cg_fmt(&E->cg, "static %s%s %s(", shared ? "__attribute__((noinline)) " : "",
                    k->can_fail ? "int" : "void", k->name), params, np, ")");
    if (!k->par_rows) {
        bprintf(b, "{\n%s}\n\n", bstr(&k->body));
        return;
    }
    // A row-parallel kernel: pack the arguments, hand the rows to the threads.
    bprintf(b, "{\n");
    const char *fields[KILN_MAX_IN + CG_MAX_SYMS + 1];
    int nf = 0;
    for (int i = first_kernel_input(n); i < n->n_in; i++)
        fields[nf++] = k->arg[i];
    fields[nf++] = k->out;
    for (int s = 0; s < g->n_syms; s++)
        if (k->syms & (1u << s))
            fields[nf++] = E->cg.sym_var[s];
    Buf init = {.indent = 1};
    blist(&init, cg_fmt(&E->cg, "%s_job job = {", k->name), fields, nf, "};");
    bputs(b, bstr(&init));
    bfree(&init);
    Buf call = {.indent = 1};
    const char *task = cg_fmt(&E->cg, "%s_task", k->name);
    if (k->par_min > 1) {
        const char *args[] = {"r", k->par_rows, cg_fmt(&E->cg, "%lld", (long long)k->par_min),
                              task, "&job"};
        blist(&call, "kiln_parallel_for_min(", args, 5, ");");
    } else {
        const char *args[] = {"r", k->par_rows, task, "&job"};
        blist(&call, "kiln_parallel_for(", args, 4, ");");
    }
    bprintf(b, "%s}\n\n", bstr(&call));
    bfree(&call);
}

// Build every computing node's kernel under one stand-in name and let identical ones share
// a function: a node whose kernel code (helpers, signature and body, its own name aside)
// equals an earlier node's calls that node's kernel (E->kfirst, E->kcalls).  Layers of a
// repeat block are the usual case: their kernels differ only in their names.  Also records
// what forward() needs of each kernel (E->ksyms, kfail, krun).  Reports what it cannot
// lower; returns whether everything was.
static bool share_kernels(Emit *E)
{
    const Graph *g = E->g;
    size_t nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
    char **code = xcalloc(nn, sizeof *code);       // of each first node
    uint64_t *hash = xcalloc(nn, sizeof *hash);
    bool ok = true;
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (!computes(n))
            continue;
        Kernel k;
        if (!build_kernel(E, n, "k_", &k)) {
            ok = false;
            continue;
        }
        E->ksyms[i] = k.syms | k.par_syms;
        E->kfail[i] = k.can_fail;
        E->krun[i] = k.can_fail || k.needs_run;
        Buf c = {0};
        kernel_code(E, &k, NULL, false, &c);
        kernel_free(&k);
        uint64_t h = 14695981039346656037ull;   // FNV-1a
        for (const char *p = bstr(&c); *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        E->kfirst[i] = i;
        for (int j = 0; j < i && E->kfirst[i] == i; j++)
            if (code[j] && hash[j] == h && strcmp(code[j], bstr(&c)) == 0)
                E->kfirst[i] = j;
        E->kcalls[E->kfirst[i]]++;
        if (E->kfirst[i] == i) {
            code[i] = c.data;
            hash[i] = h;
        } else {
            bfree(&c);
        }
    }
    for (size_t i = 0; i < nn; i++)
        free(code[i]);
    free(code);
    free(hash);
    return ok;
}

// Write the kernel of first node n (share_kernels) under its name: helpers, the comment
// block, the function.
static void emit_kernel(Emit *E, const Node *n, Buf *b)
{
    Kernel k;
    if (!build_kernel(E, n, E->kname[n->id], &k))
        KILN_BUG("emit_kernel: '%s' was built once and now is not", n->name);
    Buf comment = {0};
    kernel_comment(E, &k, &comment);
    kernel_code(E, &k, bstr(&comment), E->kcalls[n->id] > 1, b);
    bfree(&comment);
    kernel_free(&k);
}

/* ---------------------------------------------------------------------------------------
 * forward()
 */

// "    code   // comment" if it fits in 100 columns, else the code alone.
static void decl(Buf *b, const char *code, const char *comment)
{
    if (4 + strlen(code) + 6 + strlen(comment) <= 100) {
        bprintf(b, "    %s   // ", code);
        bcomment_text(b, comment);
        bputs(b, "\n");
    } else if (4 + strlen(code) > 100 && strstr(code, " = ")) {   // break after the '='
        const char *eq = strstr(code, " = ");
        bprintf(b, "    %.*s =\n        %s\n", (int)(eq - code), code, eq + 3);
    } else {
        bprintf(b, "    %s\n", code);
    }
}

// "h.0" for "h.0.attn.qk": the name up to its last all-digit component (the repeat index);
// NULL outside repeat blocks.
static const char *layer_of(Cg *cg, const char *name)
{
    const char *end = NULL;
    for (const char *p = name; *p; p++) {
        if (p != name && p[-1] != '.')
            continue;
        size_t digits = strspn(p, "0123456789");
        if (digits && p[digits] == '.' && p != name)
            end = p + digits;
    }
    return end ? cg_fmt(cg, "%.*s", (int)(end - name), name) : NULL;
}

static void emit_forward(Emit *E, Buf *b)
{
    const Graph *g = E->g;
    Cg *cg = &E->cg;
    uint32_t syms = 0;
    cg->sym_used = &syms;
    Buf body = {0};
    body.indent = 1;

    const char *layer = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (!computes(n)) {
            if (cg->opt->dump)      // --dump: a view of a source, at its place (dump.c)
                cg_emit_dump_calls(cg, n, E->var, E->used, &body);
            continue;
        }
        const char *l = layer_of(cg, n->name);
        if ((l || layer) && (!l || !layer || strcmp(l, layer) != 0)) {
            if (body.len)
                bputs(&body, "\n");
            if (l)
                bline(&body, "/* %s */", l);
        }
        layer = l;
        const char *args[KILN_MAX_IN + CG_MAX_SYMS + 2];
        int na = 0;
        if (E->krun[i])
            args[na++] = "r";
        for (int k = first_kernel_input(n); k < n->n_in; k++) {
            NodeId root = ir_storage_root(g, n->in[k]);
            const CgPack *pk = cg_pack_of(cg, n, k);    // a weight packed at load
            E->used[root] |= !pk;
            args[na++] = pk ? pk->var : E->var[root];
        }
        E->used[i] = true;
        args[na++] = E->var[i];
        for (int s = 0; s < g->n_syms; s++)
            if (E->ksyms[i] & (1u << s)) {
                args[na++] = cg->sym_var[s];
                syms |= 1u << s;
            }
        if (E->kfail[i])
            blist(&body, cg_fmt(cg, "if (%s(", E->kname[i]), args, na, "))\n        return 1;");
        else
            blist(&body, cg_fmt(cg, "%s(", E->kname[i]), args, na, ");");
        if (cg->opt->dump)          // --dump: its value, and its views' (dump.c)
            cg_emit_dump_calls(cg, n, E->var, E->used, &body);
    }
    bputs(&body, "\n");
    for (int o = 0; o < g->n_outputs; o++) {
        const Node *n = &g->nodes[g->outputs[o].node];
        NodeId root = ir_storage_root(g, n->id);
        E->used[root] = true;
        if (g->nodes[root].output == o)     // computed straight into its buffer
            continue;
        Mono numel = mono_numel(&n->type);
        const char *count = numel.n ? cg_fmt(cg, "(size_t)(%s)", cg_mono(cg, numel, false))
                                    : cg_mono(cg, numel, false);
        bputs(&body, "    /* ");
        bcomment_text(&body, cg_fmt(cg, "output '%s' %s", g->outputs[o].name,
                                    type_text(cg, &n->type)));
        bputs(&body, " */\n");
        bline(&body, "memcpy(r->outputs[%d], %s, %s * sizeof(%s));", o, E->var[root], count,
              cg_ctype(n->type.dtype));
    }
    bline(&body, "return 0;");
    // The state, and the slot of it each cache_write fills (sizes may use the dims).
    Buf state = {0};
    for (int k = 0; k < g->n_states; k++) {
        const Node *n = &g->nodes[g->states[k]];
        if (k == 0)
            bputs(&state, "    /* state kept across calls (r->state follows model_states) */\n");
        decl(&state, cg_fmt(cg, "float *%s = r->state[%d];", E->var[n->id], k),
             type_text(cg, &n->type));
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->dead || n->op != OP_CACHE_WRITE)
            continue;
        Mono slot = mono_numel(&n->type);
        decl(&state, cg_fmt(cg, "float *%s = %s + %lld * %s;", E->var[i], E->var[n->in[0]],
                            (long long)n->attr.cache_write.index, cg_mono(cg, slot, true)),
             cg_fmt(cg, "%s[%lld] %s", g->nodes[n->in[0]].name,
                    (long long)n->attr.cache_write.index, type_text(cg, &n->type)));
    }
    cg->sym_used = NULL;

    bputs(b, "/* forward: one run of the model.  Binds the symbolic dims, the weights, the inputs\n"
             " * and the activations' arena places, calls every kernel in graph order and copies\n"
             " * the outputs to r->outputs.  Returns 0, or 1 with a message in r->err. */\n");
    bputs(b, "static int forward(kiln_run *r)\n{\n");
    for (int s = 0; s < g->n_syms; s++)
        if (syms & (1u << s))
            bprintf(b, "    const int64_t %s = r->sym[%d];\n", cg->sym_var[s], s);
    bool any = false;
    for (int w = 0; w < E->n_weights; w++) {
        const Node *n = E->weights[w];
        if (!E->used[n->id])
            continue;
        if (!any)
            bputs(b, "    /* weights (r->weights follows model_weights) */\n");
        any = true;
        decl(b, cg_fmt(cg, "const %s *%s = r->weights[%d];", cg_ctype(n->type.dtype),
                       E->var[n->id], w), type_text(cg, &n->type));
    }
    for (int p = 0; p < cg->n_packs; p++) {
        const CgPack *pk = &cg->packs[p];
        if (p == 0)
            bputs(b, "    /* weights packed at load by prepare(), in matmul panels */\n");
        decl(b, cg_fmt(cg, "const float *%s = (const float *)(r->packed + 0x%llx);", pk->var,
                       (unsigned long long)pk->offset),
             cg_fmt(cg, "%s%s in panels of %d", g->nodes[pk->weight].attr.weight.tensor,
                    pk->trans ? "^T" : "", pk->nr));
    }
    any = false;
    for (int k = 0; k < g->n_inputs; k++) {
        const Node *n = &g->nodes[g->inputs[k]];
        if (!E->used[n->id])
            continue;
        if (!any)
            bputs(b, "    /* inputs */\n");
        any = true;
        decl(b, cg_fmt(cg, "const %s *%s = r->inputs[%d];", cg_ctype(n->type.dtype),
                       E->var[n->id], k), type_text(cg, &n->type));
    }
    any = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (!computes(n) || n->op == OP_CACHE_WRITE)
            continue;
        if (!any)
            bputs(b, "    /* activations, at the arena offsets plan-memory chose (outputs: in the "
                     "caller's buffers) */\n");
        any = true;
        const char *t = cg_ctype(n->type.dtype);
        if (n->output >= 0)
            decl(b, cg_fmt(cg, "%s *%s = r->outputs[%d];", t, E->var[i], n->output),
                 cg_fmt(cg, "%s, output '%s'", type_text(cg, &n->type),
                        g->outputs[n->output].name));
        else
            decl(b, cg_fmt(cg, "%s *%s = (%s *)(r->arena + 0x%llx);", t, E->var[i], t,
                           (unsigned long long)n->offset), type_text(cg, &n->type));
    }
    bputs(b, bstr(&state));
    bfree(&state);
    bprintf(b, "\n%s}\n\n", bstr(&body));
    bfree(&body);
}

/* ---------------------------------------------------------------------------------------
 * The kiln_model
 */

static void emit_desc(Emit *E, Buf *b, const char *name, const Type *t)
{
    Buf dims = {0}, syms = {0};
    for (int k = 0; k < t->rank; k++) {
        Dim d = t->dim[k];
        if (d.sym >= 0)
            bprintf(&dims, "%s%s", k ? ", " : "", E->sym_max[d.sym]);
        else
            bprintf(&dims, "%s%lld", k ? ", " : "", (long long)d.size);
        bprintf(&syms, "%s%d", k ? ", " : "", d.sym >= 0 ? d.sym : -1);
    }
    bputs(b, "    {");
    bc_string(b, name, false);
    bprintf(b, ", %s, %d, {%s}, {%s}},\n", kiln_dtype_enum(t->dtype), t->rank,
            t->rank ? bstr(&dims) : "0", t->rank ? bstr(&syms) : "-1");
    bfree(&dims);
    bfree(&syms);
}

static void emit_model(Emit *E, Buf *b)
{
    const Graph *g = E->g;
    if (g->n_syms) {
        bputs(b, "static const kiln_sym model_syms[] = {\n");
        for (int s = 0; s < g->n_syms; s++) {
            bputs(b, "    {");
            bc_string(b, g->syms[s].name, false);
            bprintf(b, ", %s},\n", E->sym_max[s]);
        }
        bputs(b, "};\n");
    }
    if (g->n_inputs) {
        bputs(b, "static const kiln_tensor_desc model_inputs[] = {\n");
        for (int k = 0; k < g->n_inputs; k++) {
            const Node *n = &g->nodes[g->inputs[k]];
            emit_desc(E, b, n->name, &n->type);
        }
        bputs(b, "};\n");
    }
    bool ranged = false;
    for (int k = 0; k < g->n_inputs; k++)
        ranged |= g->nodes[g->inputs[k]].attr.input.has_range;
    if (ranged) {
        bputs(b, "static const kiln_range model_input_ranges[] = {   /* spec `range:` per input */\n");
        for (int k = 0; k < g->n_inputs; k++) {
            const Node *n = &g->nodes[g->inputs[k]];
            if (n->attr.input.has_range)
                bprintf(b, "    {1, %lld, %lld},   /* %s */\n", (long long)n->attr.input.lo,
                        (long long)n->attr.input.hi, n->name);
            else
                bprintf(b, "    {0, 0, 0},   /* %s */\n", n->name);
        }
        bputs(b, "};\n");
    }
    if (g->n_outputs) {
        bputs(b, "static const kiln_tensor_desc model_outputs[] = {\n");
        for (int o = 0; o < g->n_outputs; o++)
            emit_desc(E, b, g->outputs[o].name, &g->nodes[g->outputs[o].node].type);
        bputs(b, "};\n");
    }
    if (g->n_states) {
        bputs(b, "static const kiln_tensor_desc model_states[] = {\n");
        for (int k = 0; k < g->n_states; k++) {
            const Node *n = &g->nodes[g->states[k]];
            emit_desc(E, b, n->name, &n->type);
        }
        bputs(b, "};\n");
    }
    if (E->n_weights) {
        bputs(b, "static const kiln_tensor_desc model_weights[] = {\n");
        for (int w = 0; w < E->n_weights; w++)
            emit_desc(E, b, E->weights[w]->attr.weight.tensor, &E->weights[w]->type);
        bputs(b, "};\n");
    }
    if (g->n_weight_prefixes) {
        bputs(b, "static const char *const model_weight_prefixes[] = {");
        for (int p = 0; p < g->n_weight_prefixes; p++) {
            bputs(b, p ? ", " : "");
            bc_string(b, g->weight_prefixes[p], false);
        }
        bputs(b, "};\n");
    }
    cg_emit_text(g, b);
    bputs(b, "\nstatic const kiln_model model = {\n    .name = ");
    bc_string(b, g->model_name, false);
    bputs(b, ",\n    .spec = ");
    bc_string(b, cg_display_path(g->spec_path), false);
    bputs(b, ",\n");
    bprintf(b, "    .n_syms = %d,\n    .syms = %s,\n", g->n_syms,
            g->n_syms ? "model_syms" : "NULL");
    bprintf(b, "    .n_inputs = %d,\n    .inputs = %s,\n", g->n_inputs,
            g->n_inputs ? "model_inputs" : "NULL");
    if (ranged)
        bputs(b, "    .input_ranges = model_input_ranges,\n");
    if (g->text.present)
        bputs(b, "    .text = &model_text,\n");
    if (g->n_states)
        bprintf(b, "    .n_states = %d,\n    .states = model_states,\n    .position_sym = %d,\n",
                g->n_states, g->position_sym);
    bprintf(b, "    .n_outputs = %d,\n    .outputs = %s,\n", g->n_outputs,
            g->n_outputs ? "model_outputs" : "NULL");
    bprintf(b, "    .n_weights = %d,\n    .weights = %s,\n", E->n_weights,
            E->n_weights ? "model_weights" : "NULL");
    bprintf(b, "    .n_weight_prefixes = %d,\n    .weight_prefixes = %s,\n", g->n_weight_prefixes,
            g->n_weight_prefixes ? "model_weight_prefixes" : "NULL");
    bprintf(b, "    .arena_bytes = %lld,\n    .forward = %s,\n", (long long)g->arena_bytes,
            E->cg.opt->profile ? "kiln_profile_forward" : "forward");    // profile.c
    bputs(b, "    .isa = ");
    bc_string(b, isa_name(E->cg.isa), false);
    bputs(b, ",\n");
    if (E->cg.n_packs)
        bprintf(b, "    .packed_bytes = %lld,\n    .prepare = prepare,\n",
                (long long)E->cg.packed_bytes);
    if (E->cg.opt->dump)        // dump.c
        bprintf(b, "    .n_dump = %d,\n    .dump = model_dump,\n", cg_dump_count(&E->cg));
    bputs(b, "};\n\n");
    cg_emit_api(g, b);
    bputs(b, "#ifndef KILN_NO_MAIN   // defined by programs that use the C API above, or #include\n"
             "                       // this file and call model.forward themselves\n"
             "int main(int argc, char **argv) { return kiln_main(argc, argv, &model); }\n"
             "#endif\n");
}

/* ---------------------------------------------------------------------------------------
 * The entry point
 */

bool cg_emit_model(const Graph *g, const CgOptions *opt, FILE *out, Diag *d)
{
    check_planned(g);
    int errors = diag_count(d);
    SrcLoc none = {g->spec_path, 0, 0};
    Isa isa = g->target.isa;    // CgOptions.isa, when it names one, overrides the target's
    if (opt->isa && strcmp(opt->isa, "native") != 0 && !isa_parse(opt->isa, &isa)) {
        diag_error(d, none, "--isa=%s: not an ISA kiln generates code for (avx512, avx2, neon, "
                            "scalar)", opt->isa);
        return false;
    }
    if (g->n_syms > CG_MAX_SYMS) {
        diag_error(d, g->syms[CG_MAX_SYMS].loc, "symbolic dim '%s': a model may have at most %d",
                   g->syms[CG_MAX_SYMS].name, CG_MAX_SYMS);
        return false;
    }

    Emit E;
    memset(&E, 0, sizeof E);
    E.g = g;
    E.cg.g = g;
    E.cg.opt = opt;
    E.cg.d = d;
    E.cg.isa = isa;
    size_t nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
    E.cg.sym_var = xcalloc((size_t)g->n_syms + 1, sizeof *E.cg.sym_var);
    E.sym_max = xcalloc((size_t)g->n_syms + 1, sizeof *E.sym_max);
    E.kname = xcalloc(nn, sizeof *E.kname);
    E.var = xcalloc(nn, sizeof *E.var);
    E.in_enum = xcalloc((size_t)g->n_params + 1, sizeof *E.in_enum);
    E.used = xcalloc(nn, sizeof *E.used);
    E.ksyms = xcalloc(nn, sizeof *E.ksyms);
    E.kfail = xcalloc(nn, sizeof *E.kfail);
    E.krun = xcalloc(nn, sizeof *E.krun);
    E.kfirst = xcalloc(nn, sizeof *E.kfirst);
    E.kcalls = xcalloc(nn, sizeof *E.kcalls);
    name_dims(&E);
    cg_pack_plan(&E.cg);        // weights the tiled matmuls read packed, and their names
    Buf kernels = {0}, file = {0};
    bool ok = share_kernels(&E) && diag_count(d) == errors;    // reports what it cannot lower
    if (ok) {
        name_values(&E);
        for (int i = 0; opt->kernel_of && i < g->n_nodes; i++)     // for kiln build --report
            opt->kernel_of[i] = computes(&g->nodes[i]) ? xstrdup(E.kname[i]) : NULL;
        for (int p = 0; p < E.cg.n_packs; p++)
            E.cg.packs[p].var = claim(&E, "pk_", g->nodes[E.cg.packs[p].weight].name, false);
        for (int i = 0; i < g->n_nodes; i++)
            if (computes(&g->nodes[i]) && E.kfirst[i] == i)
                emit_kernel(&E, &g->nodes[i], &kernels);
        Buf fwd = {0};
        emit_forward(&E, &fwd);     // marks what forward reads: the constants to emit
        emit_header(&E, &file);
        cg_emit_prelude(&E.cg, &file);      // the vector vocabulary, the shared GEMM code
        emit_enums(&E, &file);
        for (int i = 0; i < g->n_nodes; i++)
            if (!g->nodes[i].dead && g->nodes[i].op == OP_CONST && E.used[i])
                emit_constant(&E, &g->nodes[i], &file);
        bputs(&file, bstr(&kernels));
        if (opt->profile)           // --profile: the timing macros, around forward (profile.c)
            cg_emit_profile(&E.cg, E.kname, E.kfail, &file);
        if (opt->dump)              // --dump: the table forward() dumps from (dump.c)
            cg_emit_dump_table(&E.cg, E.kname, &file);
        bputs(&file, bstr(&fwd));
        if (opt->profile)
            cg_emit_profile_forward(&E.cg, &file);
        int *widx = xmalloc(sizeof *widx * nn);     // weight node -> index in model_weights
        for (size_t i = 0; i < nn; i++)
            widx[i] = -1;
        for (int i = 0; i < g->n_nodes; i++)     // a tied weight's nodes share one index
            for (int w = 0; w < E.n_weights && g->nodes[i].op == OP_WEIGHT; w++)
                if (!g->nodes[i].dead && strcmp(E.weights[w]->attr.weight.tensor,
                                                g->nodes[i].attr.weight.tensor) == 0)
                    widx[i] = w;
        cg_emit_prepare(&E.cg, &file, widx);
        free(widx);
        emit_model(&E, &file);
        bfree(&fwd);
        ok = fwrite(bstr(&file), 1, file.len, out) == file.len && !ferror(out);
        if (!ok)
            diag_error(d, none, "cannot write the generated C file");
    }
    bfree(&kernels);
    bfree(&file);
    free(E.cg.sym_var);
    free(E.sym_max);
    free(E.kname);
    free(E.var);
    free(E.in_enum);
    free(E.used);
    free(E.ksyms);
    free(E.kfail);
    free(E.krun);
    free(E.kfirst);
    free(E.kcalls);
    cg_pack_free(&E.cg);
    free(E.names);
    free(E.weights);
    arena_free(&E.cg.tmp);
    return ok;
}
