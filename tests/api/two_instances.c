/* tests/api/two_instances.c: the C API of a generated model, from a program's side.
 *
 * Compiled by tests/api/run.sh against bert.h / bert.c that `kiln emit` wrote for the
 * configuration of a reference case (tests/reference/cases/bert.pad), and run as
 *   two_instances CASE_DIR
 * Checks, each printing "ok NAME" or "FAIL NAME: why":
 *   open          bert_open maps the case's weights
 *   reference     bert_forward's outputs match PyTorch's within the case's tolerance
 *   threads       two instances, each in its own thread, run 3 forwards at once and give
 *                 outputs bitwise equal to the single run (ThreadSanitizer checks the rest)
 *   errors        a missing weights file, a dim above its bound, a mask value of 2 and a
 *                 NULL output come back as -1/NULL with the expected message, never an exit
 */
#include "bert.h"
#include "kiln_rt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void result(const char *name, int ok, const char *why)
{
    if (ok)
        printf("ok %s\n", name);
    else
        printf("FAIL %s: %s\n", name, why);
    failures += !ok;
}

static kiln_npy load(const char *dir, const char *file)
{
    char path[4096], err[512];
    kiln_npy a;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (kiln_npy_read(path, &a, err, sizeof err)) {
        fprintf(stderr, "two_instances: %s\n", err);
        exit(2);
    }
    return a;
}

static size_t numel(const kiln_npy *a)
{
    size_t n = 1;
    for (int k = 0; k < a->rank; k++)
        n *= (size_t)a->dims[k];
    return n;
}

// The case's inputs (i64 files narrowed to i32) and reference outputs.
typedef struct {
    int64_t batch, seq;
    int32_t *ids, *types, *mask;
    kiln_npy hidden, pooled;
    double tol;
} Case;

static int32_t *as_i32(const kiln_npy *a)
{
    size_t n = numel(a);
    int32_t *v = malloc(n * sizeof *v);
    for (size_t j = 0; j < n; j++)
        v[j] = a->dtype == KILN_I64 ? (int32_t)((const int64_t *)a->data)[j]
                                    : ((const int32_t *)a->data)[j];
    return v;
}

typedef struct {
    kiln_instance *m;
    const Case *c;
    float *hidden, *pooled;
    int rc;
    char err[512];
} Job;

static void *run(void *arg)
{
    Job *j = arg;
    for (int rep = 0; rep < 3 && j->rc == 0; rep++)
        j->rc = bert_forward(j->m, j->c->batch, j->c->seq, j->c->ids, j->c->types, j->c->mask,
                             j->hidden, j->pooled, j->err, sizeof j->err);
    return NULL;
}

static double max_err(const float *got, const kiln_npy *want, double *scale)
{
    const float *w = want->data;
    double e = 0, s = 0;
    for (size_t j = 0; j < numel(want); j++) {
        double d = got[j] > w[j] ? got[j] - w[j] : w[j] - got[j];
        e = d > e ? d : e;
        s = (w[j] < 0 ? -w[j] : w[j]) > s ? (w[j] < 0 ? -w[j] : w[j]) : s;
    }
    *scale = s;
    return e;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: two_instances CASE_DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    char path[4096], err[512], why[1024];
    Case c;
    kiln_npy ids = load(dir, "in.input_ids.npy"), types = load(dir, "in.token_type_ids.npy"),
             mask = load(dir, "in.attention_mask.npy");
    c.batch = ids.dims[0];
    c.seq = ids.dims[1];
    c.ids = as_i32(&ids);
    c.types = as_i32(&types);
    c.mask = as_i32(&mask);
    c.hidden = load(dir, "out.last_hidden_state.npy");
    c.pooled = load(dir, "out.pooler_output.npy");
    snprintf(path, sizeof path, "%s/tol", dir);
    FILE *f = fopen(path, "r");
    c.tol = 1e-4;
    if (f) {
        if (fscanf(f, "%lf", &c.tol) != 1)
            c.tol = 1e-4;
        fclose(f);
    }

    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    Job job[2];
    memset(job, 0, sizeof job);
    for (int k = 0; k < 2; k++) {
        job[k].c = &c;
        job[k].m = bert_open(path, 2, err, sizeof err);
        job[k].hidden = calloc(numel(&c.hidden), sizeof(float));
        job[k].pooled = calloc(numel(&c.pooled), sizeof(float));
        if (!job[k].m) {
            result("open", 0, err);
            return 1;
        }
    }
    result("open", 1, "");

    // One run alone: the reference.
    float *h1 = calloc(numel(&c.hidden), sizeof(float)), *p1 = calloc(numel(&c.pooled), sizeof(float));
    int rc = bert_forward(job[0].m, c.batch, c.seq, c.ids, c.types, c.mask, h1, p1, err,
                          sizeof err);
    double sh, sp, eh = rc ? 1e30 : max_err(h1, &c.hidden, &sh), ep = rc ? 1e30 : max_err(p1, &c.pooled, &sp);
    snprintf(why, sizeof why, "rc %d (%s); max abs err %.3g (scale %.3g), %.3g (scale %.3g), "
             "tolerance %.3g of the scale", rc, rc ? err : "", eh, sh, ep, sp, c.tol);
    result("reference", rc == 0 && eh <= c.tol * sh && ep <= c.tol * sp, why);

    // Two instances in two threads at once.
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&t[k], NULL, run, &job[k]);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    int same = 1;
    for (int k = 0; k < 2; k++)
        same &= job[k].rc == 0 &&
                memcmp(job[k].hidden, h1, numel(&c.hidden) * sizeof(float)) == 0 &&
                memcmp(job[k].pooled, p1, numel(&c.pooled) * sizeof(float)) == 0;
    snprintf(why, sizeof why, "rc %d/%d (%s%s): outputs differ from the single run", job[0].rc,
             job[1].rc, job[0].err, job[1].err);
    result("threads", same, why);

    // Errors come back as return values with a message.
    int ok = 1;
    kiln_instance *none = bert_open("no/such/weights.safetensors", 1, err, sizeof err);
    ok &= !none && strstr(err, "no/such/weights.safetensors") != NULL;
    snprintf(why, sizeof why, "missing file: %s", err);
    rc = bert_forward(job[0].m, c.batch, 100000, c.ids, c.types, c.mask, h1, p1, err, sizeof err);
    ok &= rc == -1 && strstr(err, "seq = 100000 is outside [1, ") != NULL;
    if (ok)
        snprintf(why, sizeof why, "seq too large: %s", err);
    c.mask[1] = 2;
    rc = bert_forward(job[0].m, c.batch, c.seq, c.ids, c.types, c.mask, h1, p1, err, sizeof err);
    ok &= rc == -1 && strstr(err, "input 'attention_mask' has the value 2 at flat index 1, "
                                  "outside the spec's range [0, 1]") != NULL;
    if (ok)
        snprintf(why, sizeof why, "mask value 2: %s", err);
    c.mask[1] = 1;
    rc = bert_forward(job[0].m, c.batch, c.seq, c.ids, c.types, c.mask, h1, NULL, err, sizeof err);
    ok &= rc == -1 && strstr(err, "output 'pooler_output' is NULL") != NULL;
    if (ok)
        snprintf(why, sizeof why, "NULL output: %s", err);
    result("errors", ok, why);

    for (int k = 0; k < 2; k++) {
        bert_close(job[k].m);
        free(job[k].hidden);
        free(job[k].pooled);
    }
    bert_close(NULL);
    free(h1);
    free(p1);
    free(c.ids);
    free(c.types);
    free(c.mask);
    kiln_npy_free(&ids);
    kiln_npy_free(&types);
    kiln_npy_free(&mask);
    kiln_npy_free(&c.hidden);
    kiln_npy_free(&c.pooled);
    return failures ? 1 : 0;
}
