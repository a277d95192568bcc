/* kiln_sample.h: next-token sampling for the generation front ends (runtime/sample.c).
 *
 * Not included by generated code; the text front ends (generation, fill-mask) use it.
 */
#ifndef KILN_SAMPLE_H
#define KILN_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    float temperature;          // 0: greedy (argmax); otherwise softmax(logits / temperature)
    int32_t top_k;              // keep the k most likely tokens (0: all)
    float top_p;                // keep the smallest set whose probability reaches top_p (0 or 1: all)
    float repetition_penalty;   // > 1 discourages tokens already in the history (1: off)
    uint64_t seed;              // same seed, same choices
} kiln_sample_params;

typedef struct {
    kiln_sample_params p;
    uint64_t rng;               // generator state
    int32_t *idx;               // [cap] scratch: token ids sorted by probability
    float *prob;                // [cap] scratch: probabilities
    int32_t cap;
} kiln_sampler;

void kiln_sampler_init(kiln_sampler *s, const kiln_sample_params *p);
void kiln_sampler_free(kiln_sampler *s);

// Choose a token from logits[n] (modified in place by the repetition penalty), given the
// tokens generated so far.  Returns the id, or -1 if n <= 0 or memory runs out.
int32_t kiln_sample(kiln_sampler *s, float *logits, int32_t n, const int32_t *history,
                    size_t n_history);

#endif
