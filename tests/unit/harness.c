/* tests/unit/harness.c: a stand-in for the runtime, for the unit tests that compile the C
 * kiln generates (test_codegen, test_fuse, test_attention).  Compiled in the test's work
 * folder with -I. so that it includes that folder's model.c:
 *
 *   reads syms.txt ("name value" lines), in.NAME.bin and w.NAME.bin (raw data by the model's
 *   own names), runs model.forward once, writes out.NAME.bin; on a failing forward prints
 *   r.err and exits 3 (2: a file it needs is missing or unwritable).
 *
 * kiln_parallel_for runs the items as three "threads" one after another, the last range
 * first, so that a kernel whose result depends on the split or the order fails its test.
 */
#define KILN_NO_MAIN
#define KILN_NO_API
#include "model.c"
#include <stdarg.h>
#include <stdlib.h>

int kiln_fail(kiln_run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return 1;
}
/* Three "threads" run one after another, last range first: the result must not depend
   on how the items are split or in which order the ranges run. */
void kiln_parallel_for(kiln_run *r, int64_t n, kiln_task_fn fn, void *ctx)
{
    (void)r;
    for (int64_t t = 2; t >= 0; t--)
        if (n * t / 3 < n * (t + 1) / 3)
            fn(ctx, n * t / 3, n * (t + 1) / 3);
}

static void *slurp(const char *kind, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s.%s.bin", kind, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "harness: no %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = aligned_alloc(64, (size_t)(n + 64) / 64 * 64);
    if (fread(p, 1, (size_t)n, f) != (size_t)n)
        exit(2);
    fclose(f);
    return p;
}

int main(void)
{
    kiln_run r;
    memset(&r, 0, sizeof r);
    r.model = &model;
    FILE *f = fopen("syms.txt", "r");
    char name[128];
    long long v;
    while (f && fscanf(f, "%127s %lld", name, &v) == 2)
        for (int s = 0; s < model.n_syms; s++)
            if (strcmp(model.syms[s].name, name) == 0)
                r.sym[s] = v;
    if (f)
        fclose(f);
    const void *in[16] = {0}, *w[64] = {0};
    void *out[16] = {0};
    size_t out_bytes[16] = {0};
    for (int k = 0; k < model.n_inputs; k++)
        in[k] = slurp("in", model.inputs[k].name);
    for (int k = 0; k < model.n_weights; k++)
        w[k] = slurp("w", model.weights[k].name);
    for (int k = 0; k < model.n_outputs; k++) {
        const kiln_tensor_desc *d = &model.outputs[k];
        size_t n = kiln_dtype_size(d->dtype);
        for (int j = 0; j < d->rank; j++)
            n *= (size_t)(d->sym[j] >= 0 ? r.sym[d->sym[j]] : d->dims[j]);
        out_bytes[k] = n;
        out[k] = malloc(n + 1);
    }
    r.inputs = in;
    r.weights = w;
    r.outputs = out;
    r.arena = aligned_alloc(64, (model.arena_bytes + 64) / 64 * 64);
    memset(r.arena, 0xff, model.arena_bytes);   /* NaN everywhere: no stale zeros */
    int failed = model.forward(&r) != 0;
    if (failed)
        fprintf(stderr, "%s\n", r.err);
    for (int k = 0; k < model.n_outputs && !failed; k++) {
        char path[512];
        snprintf(path, sizeof path, "out.%s.bin", model.outputs[k].name);
        FILE *o = fopen(path, "wb");
        if (!o || fwrite(out[k], 1, out_bytes[k], o) != out_bytes[k])
            return 2;
        fclose(o);
    }
    for (int k = 0; k < model.n_inputs; k++)   /* quiet under a leak checker */
        free((void *)in[k]);
    for (int k = 0; k < model.n_weights; k++)
        free((void *)w[k]);
    for (int k = 0; k < model.n_outputs; k++)
        free(out[k]);
    free(r.arena);
    return failed ? 3 : 0;
}

size_t kiln_dtype_size(kiln_dtype t) { return t == KILN_I64 ? 8 : 4; }
