/* ir/explain.c: the fusion candidates the passes weighed, for `kiln inspect --explain`.
 *
 * fuse-attention and fuse-elementwise call ir_candidate() for every candidate they look at,
 * fused or not; the list survives the pipeline (ir_note's notes are cleared before each
 * pass), so after compiling, ir_print_candidates() can say for the whole model what fused
 * into what and, for what did not, which condition failed:
 *
 *   fuse-attention: 2 candidates, 1 fused
 *     attention a.{qk -> scaled -> masked -> probs} @attn-near-miss.yaml:25
 *         into matmul a.ctx @attn-near-miss.yaml:29
 *         not fused: softmax 'a.probs' is a model output
 *     attention b.{qk -> scaled -> probs} @attn-near-miss.yaml:30
 *         into matmul b.ctx @attn-near-miss.yaml:34
 *         fused: fused_attention 'b.ctx' @attn-near-miss.yaml:30
 */
#include "ir.h"

#include <string.h>

void ir_candidate(Graph *g, const Candidate *c)
{
    Candidate *copy = arena_alloc(&g->arena, sizeof *copy);
    *copy = *c;
    copy->next = NULL;
    if (g->candidates)
        g->candidates_last->next = copy;
    else
        g->candidates = copy;
    g->candidates_last = copy;
    g->n_candidates++;
}

// "gpt2.yaml:58", or "?" without a place.
static void print_place(FILE *out, SrcLoc loc, const char *spec_path)
{
    const char *f = loc.file ? loc.file : spec_path;
    const char *slash = strrchr(f, '/');
    if (loc.line > 0)
        fprintf(out, "@%s:%d", slash ? slash + 1 : f, loc.line);
    else
        fputs("@?", out);
}

static bool pass_ran(const Graph *g, const char *pass)
{
    for (int i = 0; i < g->n_passes_run; i++)
        if (strcmp(g->passes_run[i], pass) == 0)
            return true;
    return false;
}

void ir_print_candidates(const Graph *g, FILE *out)
{
    static const char *const passes[] = {"fuse-attention", "fuse-elementwise"};
    fprintf(out, "fusion candidates of %s\n", g->spec_path);
    for (size_t p = 0; p < sizeof passes / sizeof passes[0]; p++) {
        int n = 0, fused = 0;
        for (const Candidate *c = g->candidates; c; c = c->next)
            if (strcmp(c->pass, passes[p]) == 0) {
                n++;
                fused += c->fused;
            }
        fprintf(out, "\n%s: ", passes[p]);
        if (!pass_ran(g, passes[p])) {
            fprintf(out, "did not run (--disable-pass)\n");
            continue;
        }
        fprintf(out, "%d candidate%s, %d fused\n", n, n == 1 ? "" : "s", fused);
        for (const Candidate *c = g->candidates; c; c = c->next) {
            if (strcmp(c->pass, passes[p]) != 0)
                continue;
            fprintf(out, "  %s ", c->what);
            print_place(out, c->loc, g->spec_path);
            fprintf(out, "\n      into %s %s ", op_name(c->into.op), c->into.name);
            print_place(out, c->into.loc, g->spec_path);
            if (c->fused) {
                fprintf(out, "\n      fused: %s '%s' ", op_name(c->result.op), c->result.name);
                print_place(out, c->result.loc, g->spec_path);
                fputc('\n', out);
            } else {
                fprintf(out, "\n      not fused: %s\n", c->why);
            }
        }
    }
}
