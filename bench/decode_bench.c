/* decode_bench.c: kiln's side of the decode benchmark (bench/decode.py): greedy decoding
 * with GPT-2 through the C API a generated model exports (docs/api.md).
 *
 * decode.py compiles it against the gpt2.h / gpt2.c that `kiln emit models/gpt2.yaml` writes
 * (the C file with the flags `kiln build -v` uses, plus -DKILN_NO_MAIN) and libkiln_rt.a:
 *
 *   decode_bench WEIGHTS.safetensors PROMPT.npy VOCAB STEPS THREADS
 *
 * VOCAB is the model's vocab_size (the logits' last dim).  It opens the model once
 * (gpt2_open: maps and packs the weights, starts THREADS workers), answers
 * {"ok": true, "open_ms": ...} and then reads one command per line on stdin, answering each
 * with one line of JSON on stdout (as bench/ort_runner.js does for ONNX Runtime), so that
 * decode.py can interleave its rounds with PyTorch's and ONNX Runtime's:
 *
 *   round        one round: the prompt [1, P] int32 with past = 0 (prefill), then STEPS
 *                forwards of one token each, past = P, P + 1, ..., each token the argmax of
 *                the previous call's last row of logits (greedy)
 *                  -> {"ok": true, "prefill_ms": X, "step_ms": [STEPS], "ids": [STEPS + 1],
 *                      "cpu_ms": ..., "wall_ms": ...}
 *                ids[0] comes from the prefill, ids[k] from step k.  A step's time is its
 *                gpt2_forward and the argmax over the vocabulary, nothing else.
 *   dump DIR     a round as above that also writes the logits, raw little-endian f32:
 *                DIR/kiln.prefill.f32 [1, P, V], DIR/kiln.step1.f32 and DIR/kiln.last.f32
 *                [1, 1, V] (the first and the last decode step)
 *   quit
 *
 * Errors answer {"ok": false, "error": "..."}; a failed open exits with status 1.
 */
#include "gpt2.h"
#include "kiln_rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-3;
}

// Index of the largest of row[0 .. n): the greedy choice (the first one on a tie).
static int32_t argmax(const float *row, int64_t n)
{
    int32_t best = 0;
    for (int64_t v = 1; v < n; v++)
        if (row[v] > row[best])
            best = (int32_t)v;
    return best;
}

// Write n floats to DIR/kiln.NAME.f32.  Returns 0, or -1 with a message in err.
static int dump(const char *dir, const char *name, const float *x, size_t n, char *err,
                size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/kiln.%s.f32", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof *x, n, f) != n || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    return 0;
}

typedef struct {
    kiln_instance *m;
    const int32_t *prompt;  // the prompt ids [1, P]
    int64_t P;              // prompt length
    int64_t V;              // vocabulary size (the logits' last dim)
    int steps;              // decode steps per round
    float *logits;          // the last call's logits [1, P, V] (prefill) or [1, 1, V]
    double *step_ms;        // [steps]
    int32_t *ids;           // [steps + 1]
} Bench;

// One round (see the file comment); dir != NULL also dumps the logits there.
// Returns 0, or -1 with a message in err.
static int round_run(Bench *b, const char *dir, double *prefill_ms, char *err, size_t errlen)
{
    double t0 = now_ms();
    if (gpt2_forward(b->m, 1, b->P, 0, b->prompt, b->logits, err, errlen))
        return -1;
    b->ids[0] = argmax(b->logits + (b->P - 1) * b->V, b->V);
    *prefill_ms = now_ms() - t0;
    if (dir && dump(dir, "prefill", b->logits, (size_t)(b->P * b->V), err, errlen))
        return -1;
    for (int k = 1; k <= b->steps; k++) {
        // The hot loop of this benchmark: one token in, its logits out, the argmax.
        t0 = now_ms();
        if (gpt2_forward(b->m, 1, 1, b->P + k - 1, &b->ids[k - 1], b->logits, err, errlen))
            return -1;
        b->ids[k] = argmax(b->logits, b->V);
        b->step_ms[k - 1] = now_ms() - t0;
        if (dir && (k == 1 || k == b->steps) &&
            dump(dir, k == 1 ? "step1" : "last", b->logits, (size_t)b->V, err, errlen))
            return -1;
    }
    return 0;
}

// Print s as a JSON string (quotes and backslashes escaped, control characters dropped).
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

static void answer_error(const char *msg)
{
    printf("{\"ok\": false, \"error\": ");
    json_string(msg);
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: decode_bench WEIGHTS PROMPT.npy VOCAB STEPS THREADS\n");
        return 2;
    }
    char err[1024];
    kiln_npy prompt;
    if (kiln_npy_read(argv[2], &prompt, err, sizeof err)) {
        answer_error(err);
        return 1;
    }
    if (prompt.dtype != KILN_I32 || prompt.rank != 2 || prompt.dims[0] != 1) {
        answer_error("the prompt must be int32 [1, P]");
        return 1;
    }
    Bench b = { .prompt = prompt.data, .P = prompt.dims[1], .V = atoll(argv[3]),
                .steps = atoi(argv[4]) };
    if (b.V < 1 || b.steps < 1) {
        answer_error("VOCAB and STEPS must be at least 1");
        return 1;
    }
    b.logits = malloc((size_t)(b.P * b.V) * sizeof *b.logits);
    b.step_ms = malloc((size_t)b.steps * sizeof *b.step_ms);
    b.ids = malloc((size_t)(b.steps + 1) * sizeof *b.ids);
    if (!b.logits || !b.step_ms || !b.ids) {
        answer_error("out of memory");
        return 1;
    }
    double t0 = now_ms();
    b.m = gpt2_open(argv[1], atoi(argv[5]), err, sizeof err);
    if (!b.m) {
        answer_error(err);
        return 1;
    }
    double open_ms = now_ms() - t0;
    printf("{\"ok\": true, \"open_ms\": %.3f, \"prompt\": %lld, \"vocab\": %lld}\n", open_ms,
           (long long)b.P, (long long)b.V);
    fflush(stdout);

    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        const char *dir = NULL;
        if (!strcmp(line, "quit"))
            break;
        if (!strncmp(line, "dump ", 5))
            dir = line + 5;
        else if (strcmp(line, "round")) {
            answer_error("unknown command (round, dump DIR, quit)");
            continue;
        }
        double c0 = cpu_ms(), w0 = now_ms(), prefill_ms;
        if (round_run(&b, dir, &prefill_ms, err, sizeof err)) {
            answer_error(err);
            continue;
        }
        double wall = now_ms() - w0, cpu = cpu_ms() - c0;
        printf("{\"ok\": true, \"prefill_ms\": %.4f, \"step_ms\": [", prefill_ms);
        for (int k = 0; k < b.steps; k++)
            printf("%s%.4f", k ? ", " : "", b.step_ms[k]);
        printf("], \"ids\": [");
        for (int k = 0; k <= b.steps; k++)
            printf("%s%d", k ? ", " : "", b.ids[k]);
        printf("], \"cpu_ms\": %.3f, \"wall_ms\": %.3f}\n", cpu, wall);
        fflush(stdout);
    }
    gpt2_close(b.m);
    free(b.logits);
    free(b.step_ms);
    free(b.ids);
    kiln_npy_free(&prompt);
    return 0;
}
