/* tests/unit/test_sample.c: the sampler: greedy, top-k, top-p, temperature, repetition
 * penalty, and reproducibility with a seed. */
#include "kiln_sample.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int n_pass, n_fail;
#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (cond) {                                                                 \
            n_pass++;                                                               \
        } else {                                                                    \
            n_fail++;                                                               \
            printf("%s:%d: FAIL: ", __FILE__, __LINE__);                            \
            printf(__VA_ARGS__);                                                    \
            printf("\n");                                                           \
        }                                                                           \
    } while (0)

static int32_t draw(kiln_sample_params p, const float *logits, int n)
{
    float copy[16];
    memcpy(copy, logits, (size_t)n * sizeof *copy);
    kiln_sampler s;
    kiln_sampler_init(&s, &p);
    int32_t id = kiln_sample(&s, copy, n, NULL, 0);
    kiln_sampler_free(&s);
    return id;
}

int main(void)
{
    const float logits[5] = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f};
    kiln_sample_params greedy = {0};
    CHECK(draw(greedy, logits, 5) == 1, "greedy picks the argmax");

    kiln_sample_params k1 = {.temperature = 1.0f, .top_k = 1, .seed = 7};
    for (int s = 1; s < 50; s++) {
        k1.seed = (uint64_t)s;
        CHECK(draw(k1, logits, 5) == 1, "top-k 1 is greedy (seed %d)", s);
    }
    kiln_sample_params k2 = {.temperature = 1.0f, .top_k = 2};
    int counts[5] = {0};
    for (int s = 1; s <= 2000; s++) {
        k2.seed = (uint64_t)s;
        counts[draw(k2, logits, 5)]++;
    }
    CHECK(counts[0] == 0 && counts[3] == 0 && counts[4] == 0, "top-k 2 draws only ids 1 and 2");
    // p(1) / (p(1) + p(2)) = 1 / (1 + e^-0.5) = 0.622
    double frac = counts[1] / 2000.0;
    CHECK(fabs(frac - 0.622) < 0.04, "top-k 2 frequencies follow the softmax (%.3f)", frac);

    kiln_sample_params tp = {.temperature = 1.0f, .top_p = 0.5f};
    for (int s = 1; s < 50; s++) {
        tp.seed = (uint64_t)s;
        CHECK(draw(tp, logits, 5) == 1, "top-p 0.5 keeps only the most likely (seed %d)", s);
    }
    kiln_sample_params cold = {.temperature = 0.01f, .seed = 3};
    CHECK(draw(cold, logits, 5) == 1, "a very low temperature is greedy");

    kiln_sample_params seeded = {.temperature = 1.0f, .seed = 42};
    int32_t a = draw(seeded, logits, 5), b = draw(seeded, logits, 5);
    CHECK(a == b, "the same seed gives the same token (%d vs %d)", a, b);

    kiln_sample_params rep = {.repetition_penalty = 10.0f};
    float l2[5];
    memcpy(l2, logits, sizeof l2);
    kiln_sampler s;
    kiln_sampler_init(&s, &rep);
    int32_t hist[2] = {1, 1};
    CHECK(kiln_sample(&s, l2, 5, hist, 2) == 2, "the penalty moves greedy off a repeated token");
    CHECK(fabsf(l2[1] - 0.3f) < 1e-6f, "the penalty applies once per distinct token (%g)", (double)l2[1]);
    kiln_sampler_free(&s);

    printf("test_sample: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
