/* ir/print.c: the text form of the IR, as `kiln inspect` shows it and tests compare it.
 *
 *   graph gpt2 from models/gpt2.yaml
 *     sym seq <= 64
 *     %0 = input input_ids : i32[batch, seq]                         @gpt2.yaml:31
 *     %7 = matmul %5, %6 {trans_b} : f32[batch, 4, seq, seq]  h.0.attn.qk  @gpt2.yaml:58
 *     %9 = matmul %4, %8 -> add _, %3 -> gelu {tanh} : f32[seq, 64]  h.0.mlp.c_fc  @gpt2.yaml:85
 *           fuses matmul h.0.mlp.c_fc @gpt2.yaml:85   (one line per spec node it implements)
 *           fuses add h.0.mlp.fc @gpt2.yaml:86
 *           fuses gelu h.0.mlp.act @gpt2.yaml:87
 *     output logits = %90
 *     note: not fused: softmax 'h.0.attn.probs' has 2 readers   (the last pass's ir_note)
 *
 * Deterministic: the same graph prints the same bytes.
 */
#include "ir.h"

#include <string.h>

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

// Attributes in braces, or nothing.
static void print_attrs(const Graph *g, const Node *n, FILE *out)
{
    char buf[512] = "";
    size_t len = 0;
#define ADD(...) len += (size_t)snprintf(buf + len, len < sizeof buf ? sizeof buf - len : 0, __VA_ARGS__)
    switch (n->op) {
    case OP_WEIGHT: ADD("tensor \"%s\"", n->attr.weight.tensor); break;
    case OP_INPUT:
        ADD("index %d", n->attr.input.index);
        if (n->attr.input.has_range)
            ADD(", range [%lld, %lld]", (long long)n->attr.input.lo, (long long)n->attr.input.hi);
        break;
    case OP_ARANGE:
        if (n->attr.arange.has_start_sym)
            ADD("start %s", g->syms[n->attr.arange.start_sym].name);
        else
            ADD("start %lld", (long long)n->attr.arange.start);
        break;
    case OP_STATE: ADD("index %d", n->attr.state.index); break;
    case OP_CACHE_WRITE:
        ADD("index %lld, at %s", (long long)n->attr.cache_write.index,
            g->syms[n->attr.cache_write.at_sym].name);
        break;
    case OP_CAUSAL_MASK:
        if (n->attr.causal.has_offset)
            ADD("offset %s", g->syms[n->attr.causal.offset_sym].name);
        break;
    case OP_CONST: {
        int64_t numel = type_numel_max(&n->type);
        if (numel == 1) {
            if (n->type.dtype == DT_F32)
                ADD("value %.9g", (double)*(const float *)n->attr.constant.data);
            else if (n->type.dtype == DT_I32)
                ADD("value %d", *(const int32_t *)n->attr.constant.data);
            else
                ADD("value %lld", (long long)*(const int64_t *)n->attr.constant.data);
        } else {
            ADD("%lld values", (long long)numel);
        }
        break;
    }
    case OP_MATMUL:
        if (n->attr.matmul.trans_a)
            ADD("trans_a");
        if (n->attr.matmul.trans_b)
            ADD("%strans_b", len ? ", " : "");
        if (n->tile.mr)     // the tile pass's choice
            ADD("%stile %dx%d kc %lld mc %lld%s", len ? ", " : "", n->tile.mr, n->tile.nr,
                (long long)n->tile.kc, (long long)n->tile.mc, n->tile.pack_b ? " packed-b" : "");
        break;
    case OP_SCALE: ADD("by %.9g", n->attr.scale.by); break;
    case OP_GELU: ADD("%s", n->attr.gelu.tanh ? "tanh" : "erf"); break;
    case OP_LAYER_NORM: ADD("eps %.9g", n->attr.layer_norm.eps); break;
    case OP_CAST: ADD("to %s", dtype_name(n->attr.cast.to)); break;
    case OP_TRANSPOSE:
        ADD("perm [");
        for (int k = 0; k < n->type.rank; k++)
            ADD("%s%d", k ? ", " : "", n->attr.transpose.perm[k]);
        ADD("]");
        break;
    case OP_SLICE:
        ADD("axis %d, [%lld, %lld)", n->attr.slice.axis, (long long)n->attr.slice.start,
            (long long)n->attr.slice.end);
        break;
    case OP_CONCAT: ADD("axis %d", n->attr.concat.axis); break;
    case OP_ATTENTION:
        ADD("scale %.9g%s%s", n->attr.attention.scale, n->attr.attention.causal ? ", causal" : "",
            ir_op_inputs(n) == 4 ? ", mask" : "");
        if (n->attr.attention.has_offset)
            ADD(", offset %s", g->syms[n->attr.attention.offset_sym].name);
        if (n->attr.attention.seq_major)
            ADD(", seq-major %s", attention_seq_major_str(n->attr.attention.seq_major));
        break;
    default: break;
    }
#undef ADD
    (void)g;
    if (buf[0])
        fprintf(out, " {%s}", buf);
}

// The epilogue (fuse-elementwise), one "-> step" each, `_` the running value:
//   -> add _, %21 -> gelu {tanh} -> sub %3, _ -> scale {by 0.125}
static void print_epilogue(const Node *n, FILE *out)
{
    for (int s = 0; s < n->n_epi; s++) {
        const EpiOp *e = &n->epi[s];
        fprintf(out, " -> %s", op_name((OpKind)e->op));
        if (e->operand_in >= 0) {
            if (e->operand_left)
                fprintf(out, " %%%d, _", n->in[e->operand_in]);
            else
                fprintf(out, " _, %%%d", n->in[e->operand_in]);
        }
        if (e->op == OP_SCALE)
            fprintf(out, " {by %.9g}", e->by);
        else if (e->op == OP_GELU)
            fprintf(out, " {%s}", e->tanh ? "tanh" : "erf");
    }
}

void ir_print(const Graph *g, FILE *out)
{
    fprintf(out, "graph %s from %s\n", g->model_name, g->spec_path);
    for (int i = 0; i < g->n_params; i++)
        fprintf(out, "  param %s = %.9g%s\n", g->params[i].name, g->params[i].value,
                g->params[i].overridden ? "  (-D)" : "");
    for (int i = 0; i < g->n_syms; i++)
        fprintf(out, "  sym %s <= %lld\n", g->syms[i].name, (long long)g->syms[i].max);
    for (int i = 0; i < g->n_weight_prefixes; i++)
        fprintf(out, "  weight-prefix \"%s\"\n", g->weight_prefixes[i]);
    for (int i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->dead)
            continue;
        char line[1024], shape[256];
        int len = snprintf(line, sizeof line, "  %%%d = %s", n->id, op_name(n->op));
        int n_op_in = ir_op_inputs(n);
        for (int k = 0; k < n_op_in && len < (int)sizeof line; k++)
            len += snprintf(line + len, sizeof line - (size_t)len, "%s %%%d", k ? "," : "", n->in[k]);
        fputs(line, out);
        print_attrs(g, n, out);
        print_epilogue(n, out);
        fprintf(out, " : %s%s  %s", dtype_name(n->type.dtype),
                shape_str(g, &n->type, shape, sizeof shape), n->name);
        if (n->loc.line > 0)
            fprintf(out, "  @%s:%d", base_name(n->loc.file ? n->loc.file : g->spec_path), n->loc.line);
        if (n->offset >= 0)
            fprintf(out, "  arena+0x%llx", (unsigned long long)n->offset);
        else if (n->output >= 0 && !n->dead)
            fprintf(out, "  output '%s'", g->outputs[n->output].name);
        fputc('\n', out);
        for (int k = 0; k < n->n_origins && n->n_origins > 1; k++)
            fprintf(out, "        fuses %s %s @%s:%d\n", op_name(n->origins[k].op),
                    n->origins[k].name, base_name(n->origins[k].loc.file ? n->origins[k].loc.file : "?"),
                    n->origins[k].loc.line);
    }
    for (int i = 0; i < g->n_outputs; i++)
        fprintf(out, "  output %s = %%%d\n", g->outputs[i].name, g->outputs[i].node);
    if (g->arena_bytes > 0)
        fprintf(out, "  arena %lld bytes in %d buffers\n", (long long)g->arena_bytes, g->n_buffers);
    for (const Note *note = g->notes; note; note = note->next)
        fprintf(out, "  note: %s\n", note->text);
}
