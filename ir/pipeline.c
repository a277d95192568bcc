/* ir/pipeline.c: the pass pipeline, one table read top to bottom.
 *
 * After parsing and after every pass the graph is verified (ir_verify) and its shapes are
 * re-inferred (ir_infer_shapes), so a pass that breaks the graph is caught where it ran.
 * Any pass that is not required can be switched off by name (--disable-pass), and the IR
 * can be printed after any pass (kiln inspect --after NAME).
 */
#include "ir.h"

#include <string.h>
#include <time.h>

const Pass ir_passes[] = {
    {"fold-constants", ir_fold_constants, false,
     "evaluate nodes whose inputs are all constants at compile time"},
    {"eliminate-dead-code", ir_eliminate_dead_code, false,
     "drop nodes (and weights) that no output depends on"},
    {"plan-memory", ir_plan_memory, true,
     "give every activation an arena offset, reusing space after its last reader"},
};
const int ir_n_passes = (int)(sizeof ir_passes / sizeof ir_passes[0]);

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

bool ir_run_pipeline(Graph *g, const PipelineOptions *opt, Diag *d)
{
    ir_verify(g, NULL);
    if (!ir_infer_shapes(g, d))
        return false;
    if (wants_dump(opt, "parse")) {
        fprintf(opt->dump, "// after parse\n");
        ir_print(g, opt->dump);
    }
    for (int i = 0; i < ir_n_passes; i++) {
        const Pass *p = &ir_passes[i];
        if (!p->required && is_disabled(opt, p->name)) {
            if (wants_dump(opt, p->name))
                fprintf(opt->dump, "// after %s (disabled)\n", p->name);
            continue;
        }
        double t0 = now_ms();
        bool changed = p->run(g);
        double t1 = now_ms();
        VEC_PUSH(g->passes_run, g->n_passes_run, g->cap_passes_run, p->name);
        ir_verify(g, p->name);
        if (!ir_infer_shapes(g, d))
            return false;
        if (opt->time_passes)
            fprintf(stderr, "kiln: pass %-22s %8.3f ms%s\n", p->name, t1 - t0,
                    changed ? "" : "  (unchanged)");
        if (wants_dump(opt, p->name)) {
            fprintf(opt->dump, "// after %s%s\n", p->name, changed ? "" : " (unchanged)");
            ir_print(g, opt->dump);
        }
    }
    return diag_count(d) == 0;
}
