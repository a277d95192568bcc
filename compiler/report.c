/* compiler/report.c: `kiln build --report` and `kiln emit --report`: what each kernel of the
 * generated C costs, and how fast this machine could run it at best.
 *
 * One row per kernel function, in the order forward() first calls it (a function several
 * nodes share, such as every layer's layer_norm, is one row with its calls per forward):
 * its IR node(s) and spec line, FLOPs and bytes moved per forward (ir/cost.c: from the final
 * IR, so a fused attention or a matmul with its bias and gelu is one kernel), arithmetic
 * intensity, and the roofline bound
 *
 *     bound = max(FLOPs / peak, bytes / bandwidth)        per node, summed over its calls
 *
 * with this machine's FP32 FMA peak and read bandwidth on N threads (the calibration cache
 * `kiln calibrate` writes, or --peak-gflops G --bandwidth-gbs B); without either, the table
 * has no times and says so.  Symbolic dims are taken at their bounds, the state's position
 * dim at 0 (a fresh state, as `./BIN --input` runs; at its bound a run is impossible), unless
 * --dims NAME=V,... sets them.  --report-json FILE writes the same numbers, per node too.
 */
#include "driver.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void report_machine(const Options *opt, Machine *m, char *why, size_t n)
{
    if (opt->peak_gflops > 0 && opt->bandwidth_gbs > 0) {
        memset(m, 0, sizeof *m);
        m->known = true;
        m->peak_gflops_1 = m->peak_gflops = opt->peak_gflops;
        m->bandwidth_gbs_1 = m->bandwidth_gbs = opt->bandwidth_gbs;
        snprintf(m->source, sizeof m->source, "--peak-gflops %g --bandwidth-gbs %g",
                 opt->peak_gflops, opt->bandwidth_gbs);
        why[0] = 0;
        return;
    }
    calibration_load(m, why, n);
}

// --dims "seq=128,batch=1" into sym[]; the rest at their defaults (bounds; a state's
// position at 0).  False after a message.
static bool parse_dims(const Graph *g, const char *spec, int64_t *sym, bool *given)
{
    for (int s = 0; s < g->n_syms; s++) {
        sym[s] = g->syms[s].position ? 0 : g->syms[s].max;
        given[s] = false;
    }
    if (!spec)
        return true;
    char *copy = xstrdup(spec), *save = NULL;
    bool ok = true;
    for (char *item = strtok_r(copy, ",", &save); item && ok; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '='), *end = NULL;
        if (eq)
            *eq = 0;
        int s = eq ? graph_find_sym(g, item) : -1;
        long long v = eq ? strtoll(eq + 1, &end, 10) : 0;
        if (!eq || !eq[1] || *end) {
            fprintf(stderr, "kiln: error: --dims wants NAME=N,NAME=N,..., found '%s'\n", spec);
            ok = false;
        } else if (s < 0) {
            fprintf(stderr, "kiln: error: --dims: the model has no dim '%s' (dims:", item);
            for (int k = 0; k < g->n_syms; k++)
                fprintf(stderr, " %s", g->syms[k].name);
            fprintf(stderr, "%s)\n", g->n_syms ? "" : " none");
            ok = false;
        } else if (v < (g->syms[s].position ? 0 : 1) || v > g->syms[s].max) {
            fprintf(stderr, "kiln: error: --dims: %s=%lld is outside [%d, %lld]\n", item, v,
                    g->syms[s].position ? 0 : 1, (long long)g->syms[s].max);
            ok = false;
        } else {
            sym[s] = v;
            given[s] = true;
        }
    }
    free(copy);
    return ok;
}

bool report_dims_ok(const Graph *g, const Options *opt)
{
    int64_t sym[64];
    bool given[64];
    if (g->n_syms > 64)
        KILN_BUG("report: %d symbolic dims", g->n_syms);
    return parse_dims(g, opt->dims, sym, given);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

// Row: one kernel function.
typedef struct {
    const char *kernel;
    int first;                  // node id of its first call
    int calls;                  // nodes that call it
    double flops, bytes, bound_ms;
    bool compute_bound;         // FLOPs / peak >= bytes / bandwidth, summed over its calls
    double t_flops, t_bytes;    // the two sides, ms
} Row;

static double ms(double amount, double per_s) { return per_s > 0 ? amount / per_s * 1e3 : 0; }

static char *place(const Graph *g, SrcLoc loc)
{
    return xsprintf("%s:%d", base_name(loc.file ? loc.file : g->spec_path), loc.line);
}

// The JSON of node i (one call of a kernel) with its cost.
static cJSON *node_json(const Graph *g, int i, double flops, double bytes)
{
    const Node *n = &g->nodes[i];
    cJSON *o = cJSON_CreateObject();
    char *p = place(g, n->loc);
    cJSON_AddNumberToObject(o, "id", i);
    cJSON_AddStringToObject(o, "op", op_name(n->op));
    cJSON_AddStringToObject(o, "name", n->name);
    cJSON_AddStringToObject(o, "spec", p);
    free(p);
    cJSON *fuses = cJSON_AddArrayToObject(o, "fuses");
    for (int k = 0; k < n->n_origins; k++) {
        char *q = place(g, n->origins[k].loc);
        char *s = xsprintf("%s %s %s", op_name(n->origins[k].op), n->origins[k].name, q);
        cJSON_AddItemToArray(fuses, cJSON_CreateString(s));
        free(s);
        free(q);
    }
    cJSON_AddNumberToObject(o, "flops", flops);
    cJSON_AddNumberToObject(o, "bytes", bytes);
    return o;
}

// See driver.h.
bool write_json(const char *path, cJSON *root)
{
    char *text = cJSON_Print(root);
    char *tmp = xsprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = text ? fopen(tmp, "w") : NULL;
    bool ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(text);
    return ok;
}

// Report: the rows of one report, at the dims sym[].
typedef struct {
    const Graph *g;
    const int64_t *sym;
    const bool *given;          // [n_syms] set by --dims
    Machine m;
    char why[4400];             // why m is unknown
    Row *rows, total;
    int n_rows;
    int *row_of;                // [n_nodes] the row of a node's kernel, or -1
    double *nf, *nb;            // [n_nodes] each node's FLOPs and bytes at sym
} Report;

// The rows: one per kernel function, in order of first call.
static void compute(Report *R, const char *const *kernel_of)
{
    const Graph *g = R->g;
    size_t nn = (size_t)(g->n_nodes ? g->n_nodes : 1);
    double peak = R->m.known ? R->m.peak_gflops * 1e9 : 0;
    double bw = R->m.known ? R->m.bandwidth_gbs * 1e9 : 0;
    R->rows = xcalloc(nn, sizeof *R->rows);
    R->row_of = xmalloc(nn * sizeof *R->row_of);
    R->nf = xcalloc(nn, sizeof *R->nf);
    R->nb = xcalloc(nn, sizeof *R->nb);
    R->total = (Row){.kernel = "total"};
    for (int i = 0; i < g->n_nodes; i++) {
        NodeCost c;
        R->row_of[i] = -1;
        if (!kernel_of[i] || !ir_node_cost(g, &g->nodes[i], &c))
            continue;
        R->nf[i] = cost_eval(&c.flops, R->sym);
        R->nb[i] = cost_eval(&c.bytes, R->sym);
        int r = 0;
        while (r < R->n_rows && strcmp(R->rows[r].kernel, kernel_of[i]) != 0)
            r++;
        if (r == R->n_rows)
            R->rows[R->n_rows++] = (Row){.kernel = kernel_of[i], .first = i};
        R->row_of[i] = r;
        double tf = ms(R->nf[i], peak), tb = ms(R->nb[i], bw);
        Row *sums[2] = {&R->rows[r], &R->total};
        for (int k = 0; k < 2; k++) {
            sums[k]->calls++;
            sums[k]->flops += R->nf[i];
            sums[k]->bytes += R->nb[i];
            sums[k]->t_flops += tf;
            sums[k]->t_bytes += tb;
            sums[k]->bound_ms += tf > tb ? tf : tb;
        }
    }
}

// The head lines: model, dims, machine.
static void print_head(const Report *R, const Options *opt, FILE *out)
{
    const Graph *g = R->g;
    fprintf(out, "kiln report: %s from %s, isa %s\n", g->model_name, g->spec_path,
            isa_name(g->target.isa));
    fprintf(out, "  dims     ");
    bool any_default = false, position_default = false;
    for (int s = 0; s < g->n_syms; s++) {
        fprintf(out, " %s=%lld", g->syms[s].name, (long long)R->sym[s]);
        any_default |= !R->given[s];
        position_default |= !R->given[s] && g->syms[s].position;
    }
    if (!g->n_syms)
        fprintf(out, " none (every shape is static)");
    else if (any_default)
        fprintf(out, "  (%s%s; --dims NAME=N,... to change)", opt->dims ? "the rest at " : "",
                position_default ? "bounds, the state's position at 0" : "bounds");
    fputc('\n', out);
    const Machine *m = &R->m;
    char threads[32] = "";
    if (m->threads)
        snprintf(threads, sizeof threads, " on %d thread%s", m->threads,
                 m->threads == 1 ? "" : "s");
    if (m->known) {
        fprintf(out, "  machine   %.1f GFLOP/s FP32 peak, %.1f GB/s read bandwidth%s (%s)\n",
                m->peak_gflops, m->bandwidth_gbs, threads, m->source);
        fprintf(out, "  bound     max(FLOPs / peak, bytes / bandwidth) per call, summed\n");
    } else {
        fprintf(out, "  machine   unknown, so no times: %s; or pass --peak-gflops G "
                     "--bandwidth-gbs B\n", R->why);
    }
}

// The table: a row per kernel, then the total; columns as wide as their widest cell.
static void print_table(const Report *R, FILE *out)
{
    enum { N_COLS = 9 };
    static const char *const head[N_COLS] = {"kernel", "calls", "IR node(s)", "spec", "FLOPs",
                                             "bytes", "FLOP/B", "bound ms", "bound by"};
    static const bool right[N_COLS] = {false, true, false, false, true, true, true, true, false};
    int n_cols = R->m.known ? N_COLS : N_COLS - 2, w[N_COLS];
    char *(*cell)[N_COLS] = xcalloc((size_t)R->n_rows + 1, sizeof *cell);
    for (int c = 0; c < N_COLS; c++)
        w[c] = (int)strlen(head[c]);
    for (int r = 0; r <= R->n_rows; r++) {
        const Row *row = r < R->n_rows ? &R->rows[r] : &R->total;
        const Node *n = r < R->n_rows ? &R->g->nodes[row->first] : NULL;
        char more[32] = "";
        if (row->calls > 1)
            snprintf(more, sizeof more, " +%d", row->calls - 1);
        cell[r][0] = xstrdup(row->kernel);
        cell[r][1] = xsprintf("%d", row->calls);
        cell[r][2] = n ? xsprintf("%%%d %s %s%s", n->id, op_name(n->op), n->name, more)
                       : xstrdup("");
        cell[r][3] = n ? place(R->g, n->loc) : xstrdup("");
        cell[r][4] = xsprintf("%.0f", row->flops);
        cell[r][5] = xsprintf("%.0f", row->bytes);
        cell[r][6] = xsprintf("%.2f", row->bytes > 0 ? row->flops / row->bytes : 0.0);
        cell[r][7] = xsprintf("%.4f", row->bound_ms);
        cell[r][8] = xstrdup(row->t_flops >= row->t_bytes ? "compute" : "memory");
        for (int c = 0; c < N_COLS; c++) {
            int l = (int)strlen(cell[r][c]);
            w[c] = l > w[c] ? l : w[c];
        }
    }
    for (int r = -1; r <= R->n_rows; r++) {
        if (r == R->n_rows)
            fputc('\n', out);
        for (int c = 0; c < n_cols; c++)   // the last column unpadded: no trailing blanks
            fprintf(out, right[c] ? "  %*s" : "  %-*s", c + 1 < n_cols || right[c] ? w[c] : 0,
                    r < 0 ? head[c] : cell[r][c]);
        fputc('\n', out);
    }
    const Row *t = &R->total;
    if (R->m.known && t->bound_ms > 0)
        fprintf(out, "\n  the whole forward: at best %.3f ms (%.3f ms at the peak for its FLOPs, "
                     "%.3f ms at the bandwidth for its bytes)\n",
                t->bound_ms, t->t_flops, t->t_bytes);
    for (int r = 0; r <= R->n_rows; r++)
        for (int c = 0; c < N_COLS; c++)
            free(cell[r][c]);
    free(cell);
}

// The JSON of a row (nodes: with the nodes that call it).
static cJSON *row_json(const Report *R, const Row *row, int r, bool nodes)
{
    cJSON *k = cJSON_CreateObject();
    if (nodes)
        cJSON_AddStringToObject(k, "kernel", row->kernel);
    cJSON_AddNumberToObject(k, "calls", row->calls);
    cJSON_AddNumberToObject(k, "flops", row->flops);
    cJSON_AddNumberToObject(k, "bytes", row->bytes);
    cJSON_AddNumberToObject(k, "intensity", row->bytes > 0 ? row->flops / row->bytes : 0);
    if (R->m.known) {
        cJSON_AddNumberToObject(k, "bound_ms", row->bound_ms);
        cJSON_AddStringToObject(k, "bound_by", row->t_flops >= row->t_bytes ? "compute" : "memory");
    } else {
        cJSON_AddNullToObject(k, "bound_ms");
    }
    if (nodes) {
        cJSON *a = cJSON_AddArrayToObject(k, "nodes");
        for (int i = 0; i < R->g->n_nodes; i++)
            if (R->row_of[i] == r)
                cJSON_AddItemToArray(a, node_json(R->g, i, R->nf[i], R->nb[i]));
    }
    return k;
}

//   {"model", "spec", "isa", "dims": {NAME: N}, "machine": {...} or null,
//    "kernels": [{"kernel", "calls", "flops", "bytes", "intensity", "bound_ms", "bound_by",
//                 "nodes": [{"id", "op", "name", "spec", "fuses", "flops", "bytes"}]}],
//    "total": {"calls", "flops", "bytes", "intensity", "bound_ms", "bound_by"}}
static bool write_report_json(const Report *R, const char *path)
{
    const Graph *g = R->g;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", g->model_name);
    cJSON_AddStringToObject(root, "spec", g->spec_path);
    cJSON_AddStringToObject(root, "isa", isa_name(g->target.isa));
    cJSON *dims = cJSON_AddObjectToObject(root, "dims");
    for (int s = 0; s < g->n_syms; s++)
        cJSON_AddNumberToObject(dims, g->syms[s].name, (double)R->sym[s]);
    if (R->m.known) {
        cJSON *mj = cJSON_AddObjectToObject(root, "machine");
        cJSON_AddNumberToObject(mj, "peak_gflops", R->m.peak_gflops);
        cJSON_AddNumberToObject(mj, "bandwidth_gbs", R->m.bandwidth_gbs);
        cJSON_AddNumberToObject(mj, "threads", R->m.threads);
        cJSON_AddStringToObject(mj, "source", R->m.source);
    } else {
        cJSON_AddNullToObject(root, "machine");
    }
    cJSON *ks = cJSON_AddArrayToObject(root, "kernels");
    for (int r = 0; r < R->n_rows; r++)
        cJSON_AddItemToArray(ks, row_json(R, &R->rows[r], r, true));
    cJSON_AddItemToObject(root, "total", row_json(R, &R->total, -1, false));
    bool ok = write_json(path, root);
    cJSON_Delete(root);
    return ok;
}

int report_write(const Graph *g, const char *const *kernel_of, const Options *opt, FILE *out)
{
    int64_t sym[64];
    bool given[64];
    if (g->n_syms > 64 || !parse_dims(g, opt->dims, sym, given))
        return 2;
    Report R = {.g = g, .sym = sym, .given = given};
    report_machine(opt, &R.m, R.why, sizeof R.why);
    compute(&R, kernel_of);
    if (opt->report) {      // --report-json alone writes the file only
        print_head(&R, opt, out);
        fputc('\n', out);
        print_table(&R, out);
    }
    int status = opt->report_json && !write_report_json(&R, opt->report_json) ? 1 : 0;
    free(R.rows);
    free(R.row_of);
    free(R.nf);
    free(R.nb);
    return status;
}
