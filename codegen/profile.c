/* codegen/profile.c: what `kiln build --profile` adds to the generated file.
 *
 * A profile build times every kernel call in forward() and prints a table when the program
 * exits (runtime/profile.c).  It leaves forward()'s text alone: after the kernels and before
 * forward(), it defines one function-like macro per kernel function, named after it,
 *
 *     #define k_h_ln_1(...) KILN_PROF_VOID(&kiln_profile, 3, k_h_ln_1(__VA_ARGS__))
 *
 * so every call `k_h_ln_1(b_x, ...)` in forward() reads the clock around itself (a macro's
 * name is not expanded again inside its own expansion, so there it is the function).  Before
 * them come the table of kernels and a cost function with each kernel's FLOPs and bytes as
 * polynomials in the symbolic dims (ir/cost.c, the numbers of `kiln build --report`), so the
 * binary can compute each kernel's roofline bound at the dims of every run.  After forward()
 * come kiln_profile_forward, which the kiln_model names instead of forward, and a destructor
 * that prints the table.  Without CgOptions.profile none of this is written.
 */
#include "cg.h"

#include <stdlib.h>
#include <string.h>

// The profile's slot of node i: the index of its kernel function among the distinct ones, in
// order of first call; -1 for nodes without a kernel.  n_slots gets the count.
static int *slots_of(const Graph *g, const char *const *kname, int *n_slots)
{
    int *slot = xmalloc(sizeof *slot * (size_t)(g->n_nodes ? g->n_nodes : 1));
    *n_slots = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        slot[i] = -1;
        if (!kname[i])
            continue;
        for (int j = 0; j < i && slot[i] < 0; j++)
            if (kname[j] && strcmp(kname[j], kname[i]) == 0)
                slot[i] = slot[j];
        if (slot[i] < 0)
            slot[i] = (*n_slots)++;
    }
    return slot;
}

// "2.0 * s[0] * s[1] + 64.0 * s[1]": a CostPoly as a C expression of the dims array s.
static void poly_c(Buf *b, const CostPoly *p)
{
    for (int i = 0; i < p->n; i++) {
        const CostTerm *t = &p->t[i];
        double c = t->c;
        if (i > 0) {
            bputs(b, c < 0 ? " - " : " + ");
            c = c < 0 ? -c : c;
        }
        if (c == (double)(int64_t)c && c < 1e15)    // whole numbers as such: "1536.0"
            bprintf(b, "%.1f", c);
        else
            bc_double(b, c);
        for (int k = 0; k < t->n; k++)
            bprintf(b, " * s[%d]", t->sym[k]);
    }
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

void cg_emit_profile(Cg *cg, const char *const *kname, const bool *kfail, Buf *b)
{
    const Graph *g = cg->g;
    const CgProfile *pr = cg->opt->profile;
    int n_slots;
    int *slot = slots_of(g, kname, &n_slots);
    bputs(b, "/* --profile (kiln build --profile; docs/inspect.md): forward() below calls every "
             "kernel\n * through a macro named after it, which reads the clock around the call "
             "(KILN_PROF_VOID,\n * KILN_PROF_INT: runtime/profile.c); inside its own expansion "
             "the name is the function.\n * A normal build has none of this. */\n");
    bputs(b, "static kiln_prof_kernel kiln_profile_kernels[] = {\n");
    for (int k = 0; k < n_slots; k++) {
        int first = -1, sites = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (slot[i] == k) {
                first = first < 0 ? i : first;
                sites++;
            }
        const Node *n = &g->nodes[first];
        bputs(b, "    {.name = ");
        bc_string(b, kname[first], false);
        bputs(b, ", .first = ");
        bc_string(b, cg_fmt(cg, "%%%d %s %s %s:%d", n->id, op_name(n->op), n->name,
                            base_name(n->loc.file ? n->loc.file : g->spec_path), n->loc.line),
                  false);
        bprintf(b, ", .sites = %d},\n", sites);
    }
    if (n_slots == 0)       // a model that computes nothing: no empty initializer in C
        bputs(b, "    {.name = \"\"},\n");
    bputs(b, "};\n");
    bprintf(b, "static double kiln_profile_flops[%d], kiln_profile_bytes[%d];\n\n",
            n_slots ? n_slots : 1, n_slots ? n_slots : 1);

    bputs(b, "/* The FLOPs (f) and bytes (b) of each kernel in one forward at the dims s[],"
             " summed over\n * the nodes that call it; the counting rules are ir/cost.c's "
             "(kiln build --report).");
    for (int s = 0; s < g->n_syms; s++)
        bprintf(b, "%s s[%d] = %s", s ? "," : "\n *  ", s, g->syms[s].name);
    bputs(b, " */\n");
    bputs(b, "static void kiln_profile_cost(const int64_t *s, double *f, double *b)\n{\n"
             "    (void)s, (void)f, (void)b;\n");
    for (int i = 0; i < g->n_nodes; i++) {
        NodeCost c;
        if (slot[i] < 0 || !ir_node_cost(g, &g->nodes[i], &c))
            continue;
        bputs(b, "    /* ");
        bcomment_text(b, cg_fmt(cg, "%%%d %s %s", i, op_name(g->nodes[i].op), g->nodes[i].name));
        bputs(b, " */\n");
        const CostPoly *poly[2] = {&c.flops, &c.bytes};
        for (int w = 0; w < 2; w++) {
            if (poly[w]->n == 0)
                continue;
            bprintf(b, "    %s[%d] += ", w ? "b" : "f", slot[i]);
            poly_c(b, poly[w]);
            bputs(b, ";\n");
        }
    }
    bputs(b, "}\n\n");

    bputs(b, "static kiln_prof kiln_profile = {\n    .model = ");
    bc_string(b, g->model_name, false);
    bprintf(b, ",\n    .n_kernels = %d,\n    .kernels = kiln_profile_kernels,\n"
               "    .cost = kiln_profile_cost,\n"
               "    .flops = kiln_profile_flops,\n    .bytes = kiln_profile_bytes,\n", n_slots);
    if (pr && pr->peak_gflops > 0 && pr->bandwidth_gbs > 0) {
        bputs(b, "    /* the machine's figures, as the build knew them */\n");
        bprintf(b, "    .peak_gflops_1 = %.9g,\n    .peak_gflops_n = %.9g,\n"
                   "    .gbs_1 = %.9g,\n    .gbs_n = %.9g,\n    .threads_n = %d,\n",
                pr->peak_gflops_1 > 0 ? pr->peak_gflops_1 : pr->peak_gflops, pr->peak_gflops,
                pr->bandwidth_gbs_1 > 0 ? pr->bandwidth_gbs_1 : pr->bandwidth_gbs,
                pr->bandwidth_gbs, pr->threads);
        if (pr->source) {
            bputs(b, "    .machine = ");
            bc_string(b, pr->source, false);
            bputs(b, ",\n");
        }
    }
    bputs(b, "};\n\n");
    for (int k = 0; k < n_slots; k++)
        for (int i = 0; i < g->n_nodes; i++)
            if (slot[i] == k) {
                bprintf(b, "#define %s(...) KILN_PROF_%s(&kiln_profile, %d, %s(__VA_ARGS__))\n",
                        kname[i], kfail[i] ? "INT" : "VOID", k, kname[i]);
                break;
            }
    bputs(b, "\n");
    free(slot);
}

void cg_emit_profile_forward(Cg *cg, Buf *b)
{
    (void)cg;
    bputs(b, "/* --profile: forward() timed as a whole, with each kernel's roofline bound added "
             "at the\n * run's dims; the table goes to stderr when the program exits. */\n"
             "static int kiln_profile_forward(kiln_run *r)\n{\n"
             "    return kiln_prof_forward(&kiln_profile, forward, r);\n}\n\n"
             "__attribute__((destructor)) static void kiln_profile_print(void)\n{\n"
             "    kiln_prof_print(&kiln_profile, stderr);\n}\n\n");
}
