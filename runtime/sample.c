/* runtime/sample.c: choosing the next token from logits, for generation.
 *
 * Greedy (temperature 0), temperature, top-k, top-p (nucleus) and a repetition penalty, with
 * a seeded generator so that a run is reproducible: the same logits, settings and seed give
 * the same token on every machine (xorshift64*, no libc rand()).
 */
#include "kiln_sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void kiln_sampler_init(kiln_sampler *s, const kiln_sample_params *p)
{
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->rng = p->seed ? p->seed : 0x9E3779B97F4A7C15ull;   // xorshift needs a non-zero state
}

void kiln_sampler_free(kiln_sampler *s)
{
    free(s->idx);
    free(s->prob);
    memset(s, 0, sizeof *s);
}

// Uniform in [0, 1) with 24 bits, from xorshift64*.
static float next_uniform(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (float)((x * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int32_t argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

// Sort indices by probability, largest first (ties: smaller id first, for determinism).
static const float *sort_key;
static int by_prob_desc(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (sort_key[i] != sort_key[j])
        return sort_key[i] > sort_key[j] ? -1 : 1;
    return (i > j) - (i < j);
}

int32_t kiln_sample(kiln_sampler *s, float *logits, int32_t n, const int32_t *history,
                    size_t n_history)
{
    const kiln_sample_params *p = &s->p;
    if (n <= 0)
        return -1;
    // Repetition penalty (as in CTRL): divide positive logits, multiply negative ones, once
    // per distinct token already seen.
    if (p->repetition_penalty > 0 && p->repetition_penalty != 1.0f) {
        for (size_t h = 0; h < n_history; h++) {
            int32_t id = history[h];
            if (id < 0 || id >= n)
                continue;
            bool seen = false;
            for (size_t e = 0; e < h && !seen; e++)
                seen = history[e] == id;
            if (!seen)
                logits[id] = logits[id] > 0 ? logits[id] / p->repetition_penalty
                                            : logits[id] * p->repetition_penalty;
        }
    }
    if (p->temperature <= 0)
        return argmax(logits, n);

    if (s->cap < n) {
        s->idx = realloc(s->idx, (size_t)n * sizeof *s->idx);
        s->prob = realloc(s->prob, (size_t)n * sizeof *s->prob);
        if (!s->idx || !s->prob)
            return -1;
        s->cap = n;
    }
    // Softmax at the temperature, in double for the sum.
    float mx = logits[argmax(logits, n)];
    double sum = 0;
    for (int32_t i = 0; i < n; i++) {
        s->prob[i] = expf((logits[i] - mx) / p->temperature);
        sum += (double)s->prob[i];
    }
    for (int32_t i = 0; i < n; i++) {
        s->prob[i] = (float)((double)s->prob[i] / sum);
        s->idx[i] = i;
    }
    sort_key = s->prob;
    qsort(s->idx, (size_t)n, sizeof *s->idx, by_prob_desc);
    // Keep the k most likely, then the smallest prefix whose mass reaches top_p.
    int32_t keep = n;
    if (p->top_k > 0 && p->top_k < keep)
        keep = p->top_k;
    double mass = 0;
    if (p->top_p > 0 && p->top_p < 1) {
        for (int32_t r = 0; r < keep; r++) {
            mass += (double)s->prob[s->idx[r]];
            if (mass >= (double)p->top_p) {
                keep = r + 1;
                break;
            }
        }
    }
    mass = 0;
    for (int32_t r = 0; r < keep; r++)
        mass += (double)s->prob[s->idx[r]];
    double u = (double)next_uniform(&s->rng) * mass, acc = 0;
    for (int32_t r = 0; r < keep; r++) {
        acc += (double)s->prob[s->idx[r]];
        if (u < acc)
            return s->idx[r];
    }
    return s->idx[keep - 1];
}
