/* tests/api/kv_cache.c: incremental decoding with the key/value cache of models/gpt2.yaml,
 * through the C API, against the full forward and against PyTorch.
 *
 * Compiled by tests/api/run.sh against the gpt2.h / gpt2.c `kiln emit` writes for a fixture
 * of tests/reference/greedy/ (make_greedy.py), and run as  kv_cache FIXTURE_DIR.  Checks:
 *   chunks     a prefill of the prompt, then a chunk of 3 tokens, then one token at a time
 *              (past = the tokens already cached) give at every position the logits of one
 *              full forward over the whole text, within 1e-4 of their largest magnitude
 *   greedy     greedy decoding from the prompt (gpt2_prefill), then one token per call for
 *              all rows of the batch at once (gpt2_decode), picks exactly the ids PyTorch
 *              picked with past_key_values
 *   full       a call that would write past the cache's rows fails with a message, and the
 *              instance still works afterwards (a fresh prefill gives the same logits)
 */
#include "gpt2.h"
#include "kiln_rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void result(const char *name, int ok, const char *why)
{
    printf(ok ? "ok %s\n" : "FAIL %s: %s\n", name, why);
    failures += !ok;
}

static kiln_npy load(const char *dir, const char *file)
{
    char path[4096], err[512];
    kiln_npy a;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (kiln_npy_read(path, &a, err, sizeof err) || a.dtype != KILN_I32 || a.rank != 2) {
        fprintf(stderr, "kv_cache: %s: %s\n", path, err);
        exit(2);
    }
    return a;
}

// The vocabulary size from the fixture's args ("-D vocab_size=97").
static int64_t arg_value(const char *dir, const char *key)
{
    char path[4096], line[4096];
    snprintf(path, sizeof path, "%s/args", dir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "kv_cache: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    const char *p = strstr(line, key);
    return p ? atoll(p + strlen(key)) : -1;
}

// Run rows [from, from + seq) of text [B, L] at position past: logits [B, seq, V].
static int run(kiln_instance *m, int64_t B, int64_t L, const int32_t *text, int64_t from,
               int64_t seq, float *logits, char *err, size_t errlen)
{
    int32_t *ids = malloc((size_t)(B * seq) * sizeof *ids);
    for (int64_t b = 0; b < B; b++)
        memcpy(ids + b * seq, text + b * L + from, (size_t)seq * sizeof *ids);
    int rc = gpt2_forward(m, B, seq, from, ids, logits, err, errlen);
    free(ids);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kv_cache FIXTURE_DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    char path[4096], err[512], why[1024];
    kiln_npy prompt = load(dir, "prompt.npy"), want = load(dir, "greedy.npy");
    int64_t B = prompt.dims[0], P = prompt.dims[1], N = want.dims[1], L = P + N;
    int64_t V = arg_value(dir, "vocab_size="), T = arg_value(dir, "n_positions=");
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    kiln_instance *m = gpt2_open(path, 2, err, sizeof err);
    if (!m) {
        result("open", 0, err);
        return 1;
    }

    // The whole text: the prompt and PyTorch's greedy continuation.
    int32_t *text = malloc((size_t)(B * L) * sizeof *text);
    for (int64_t b = 0; b < B; b++) {
        memcpy(text + b * L, (int32_t *)prompt.data + b * P, (size_t)P * sizeof *text);
        memcpy(text + b * L + P, (int32_t *)want.data + b * N, (size_t)N * sizeof *text);
    }
    float *full = malloc((size_t)(B * L * V) * sizeof *full);
    float *part = malloc((size_t)(B * L * V) * sizeof *part);
    if (run(m, B, L, text, 0, L, full, err, sizeof err)) {
        result("chunks", 0, err);
        return 1;
    }
    double scale = 0;
    for (int64_t e = 0; e < B * L * V; e++)
        scale = fabs(full[e]) > scale ? fabs(full[e]) : scale;

    // Chunks: prompt, 3 tokens, then one at a time.
    double worst = 0;
    int64_t worst_at = -1;
    int rc = 0;
    for (int64_t from = 0; from < L && rc == 0;) {
        int64_t seq = from == 0 ? P : from == P ? 3 : 1;
        seq = seq < L - from ? seq : L - from;
        rc = run(m, B, L, text, from, seq, part, err, sizeof err);
        for (int64_t b = 0; b < B && rc == 0; b++)
            for (int64_t t = 0; t < seq; t++)
                for (int64_t v = 0; v < V; v++) {
                    double d = fabs(part[(b * seq + t) * V + v] - full[(b * L + from + t) * V + v]);
                    if (d > worst) {
                        worst = d;
                        worst_at = from + t;
                    }
                }
        from += seq;
    }
    snprintf(why, sizeof why, "rc %d (%s); max abs err %.3g at position %lld, scale %.3g", rc,
             rc ? err : "", worst, (long long)worst_at, scale);
    result("chunks", rc == 0 && worst <= 1e-4 * scale, why);

    // Greedy, one token per call for the whole batch.
    int32_t *got = calloc((size_t)(B * N), sizeof *got), *step = malloc((size_t)B * sizeof *step);
    rc = gpt2_prefill(m, B, P, (const int32_t *)prompt.data, part, err, sizeof err);
    int64_t seq = P;
    for (int64_t k = 0; k < N && rc == 0; k++) {
        for (int64_t b = 0; b < B; b++) {
            const float *row = part + (b * seq + seq - 1) * V;
            int32_t best = 0;
            for (int32_t v = 1; v < V; v++)
                if (row[v] > row[best])
                    best = v;
            got[b * N + k] = step[b] = best;
        }
        seq = 1;
        if (k + 1 < N)
            rc = gpt2_decode(m, B, P + k, step, part, err, sizeof err);
    }
    int64_t diff = -1;
    for (int64_t e = 0; e < B * N && diff < 0; e++)
        if (got[e] != ((int32_t *)want.data)[e])
            diff = e;
    snprintf(why, sizeof why, "rc %d (%s); first difference at row %lld, token %lld: %d, "
             "PyTorch %d", rc, rc ? err : "", diff < 0 ? -1LL : (long long)(diff / N),
             diff < 0 ? -1LL : (long long)(diff % N), diff < 0 ? 0 : got[diff],
             diff < 0 ? 0 : ((int32_t *)want.data)[diff]);
    result("greedy", rc == 0 && diff < 0, why);

    // A full cache: a write past its rows is refused with a message, not performed.
    int32_t one[8] = {0};
    rc = gpt2_forward(m, 1, 2, T - 1, one, part, err, sizeof err);
    int ok = rc == -1 && (strstr(err, "the context is full") || strstr(err, "is outside"));
    printf("   (refused: %s)\n", err);
    snprintf(why, sizeof why, "past %lld + 2 tokens in a cache of %lld: rc %d, '%s'",
             (long long)(T - 1), (long long)T, rc, err);
    if (ok) {
        rc = run(m, B, L, text, 0, L, part, err, sizeof err);
        ok = rc == 0 && memcmp(part, full, (size_t)(B * L * V) * sizeof *full) == 0;
        if (!ok)
            snprintf(why, sizeof why, "after the refused call, a fresh prefill differs (rc %d)", rc);
    }
    result("full", ok, why);

    gpt2_close(m);
    free(text);
    free(full);
    free(part);
    free(got);
    free(step);
    kiln_npy_free(&prompt);
    kiln_npy_free(&want);
    return failures ? 1 : 0;
}
