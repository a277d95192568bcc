/* ir/pipeline.c: the pass pipeline, one table read top to bottom.
 *
 * After parsing and after every pass the graph is verified (ir_verify) and its shapes are
 * re-inferred (ir_infer_shapes), so a pass that breaks the graph is caught where it ran.
 * Any pass that is not required can be switched off by name (--disable-pass), and the IR
 * can be printed after any pass (kiln inspect --after NAME).
 */
#include "ir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const Pass ir_passes[] = {
    {"fold-constants", ir_fold_constants, false,
     "evaluate nodes whose inputs are all constants at compile time"},
    {"eliminate-dead-code", ir_eliminate_dead_code, false,
     "drop nodes (and weights) that no output depends on"},
    {"fuse-attention", ir_fuse_attention, false,
     "replace q k^T -> scale -> masks -> softmax -> @ v chains by one fused_attention node"},
    {"fuse-elementwise", ir_fuse_elementwise, false,
     "merge element-wise ops (bias, activation, residual) into the kernel before them"},
    {"tile", ir_tile, false,
     "choose each matmul's register and cache blocking for the target ISA (packed panels)"},
    {"plan-memory", ir_plan_memory, true,
     "give every activation an arena offset, reusing space after its last reader"},
};
const int ir_n_passes = (int)(sizeof ir_passes / sizeof ir_passes[0]);

void ir_note(Graph *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = arena_alloc(&g->arena, (size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(text, (size_t)len + 1, fmt, ap);
    va_end(ap);
    Note *note = arena_alloc(&g->arena, sizeof *note);
    note->text = text;
    if (g->notes)           // constant time: a pass may leave a note per node
        g->notes_last->next = note;
    else
        g->notes = note;
    g->notes_last = note;
    g->n_notes++;
}

bool pipeline_has_pass(const char *name)
{
    for (int i = 0; i < ir_n_passes; i++)
        if (strcmp(ir_passes[i].name, name) == 0)
            return true;
    return false;
}

static bool is_disabled(const PipelineOptions *opt, const char *name)
{
    for (int i = 0; i < opt->n_disabled; i++)
        if (strcmp(opt->disabled[i], name) == 0)
            return true;
    return false;
}

static bool wants_dump(const PipelineOptions *opt, const char *name)
{
    return opt->dump_after && opt->dump &&
           (strcmp(opt->dump_after, "all") == 0 || strcmp(opt->dump_after, name) == 0);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void dump(const Graph *g, const PipelineOptions *opt, const char *after, bool changed)
{
    if (opt->dump_dot) {
        fprintf(opt->dump, "// after %s\n", after);
        ir_print_dot(g, opt->dump);
        return;
    }
    fprintf(opt->dump, "// after %s%s\n", after, changed ? "" : " (unchanged)");
    ir_print(g, opt->dump);
}

// KILN_TEST_BREAK_PASS=NAME, for the tests of `kiln diff --bisect-passes` only
// (tests/bisect/): right after pass NAME runs, make its result subtly wrong, so that the
// bisection has a known culprit to find.  fuse-elementwise: the first fused add becomes a
// subtract; fuse-attention: the first fused attention's scale is 1.5 times too large.  Left
// as a note on the pass (kiln inspect shows it).  Never set it for real work.
static void break_for_test(Graph *g, const char *pass)
{
    const char *want = getenv("KILN_TEST_BREAK_PASS");
    if (!want || strcmp(want, pass) != 0)
        return;
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_epi && strcmp(pass, "fuse-elementwise") == 0; k++)
            if (n->epi[k].op == OP_ADD) {
                n->epi[k].op = OP_SUB;
                ir_note(g, "KILN_TEST_BREAK_PASS: the fused add %d of '%s' subtracts", k + 1,
                        n->name);
                return;
            }
        if (n->op == OP_ATTENTION && strcmp(pass, "fuse-attention") == 0) {
            n->attr.attention.scale *= 1.5;
            ir_note(g, "KILN_TEST_BREAK_PASS: the scale of '%s' is 1.5 times too large",
                    n->name);
            return;
        }
    }
}

bool ir_run_pipeline(Graph *g, const PipelineOptions *opt, Diag *d)
{
    ir_verify(g, NULL);
    if (!ir_infer_shapes(g, d))
        return false;
    if (wants_dump(opt, "parse")) {
        dump(g, opt, "parse", true);
    }
    for (int i = 0; i < ir_n_passes; i++) {
        const Pass *p = &ir_passes[i];
        if (!p->required && is_disabled(opt, p->name)) {
            if (wants_dump(opt, p->name))
                fprintf(opt->dump, "// after %s (disabled)\n", p->name);
            continue;
        }
        g->notes = NULL;        // the dump after this pass shows this pass's notes only
        g->n_notes = 0;
        double t0 = now_ms();
        bool changed = p->run(g);
        double t1 = now_ms();
        break_for_test(g, p->name);
        VEC_PUSH(g->passes_run, g->n_passes_run, g->cap_passes_run, p->name);
        ir_verify(g, p->name);
        if (!ir_infer_shapes(g, d))
            return false;
        if (opt->time_passes)
            fprintf(stderr, "kiln: pass %-22s %8.3f ms%s\n", p->name, t1 - t0,
                    changed ? "" : "  (unchanged)");
        if (wants_dump(opt, p->name)) {
            dump(g, opt, p->name, changed);
        }
    }
    return diag_count(d) == 0;
}
