/* peak.c: the FP32 FMA peak of this machine, for kiln's benchmark (bench/run.sh).
 *
 *   clang -O3 -march=native -pthread bench/peak.c -o bench/work/peak
 *   bench/work/peak [THREADS] [SECONDS]          (defaults: 1 thread, 0.5 s per trial)
 *
 * Prints one line of JSON:
 *   {"isa": "avx512", "lanes": 16, "threads": 2, "gflops": 123.4, "trials": [...]}
 *
 * Each thread runs ACC independent chains of vector FMAs (acc[i] = acc[i] * a + b) held in
 * registers, so nothing touches memory and the only limit is how many FMAs the core can
 * start per cycle.  Two FMA pipes at a 4-cycle latency need 8 chains; AVX-512 runs 16 (of its
 * 32 registers), AVX2 and SSE 12, because with 16 chains plus a and b in 16 registers the
 * compiler spills accumulators and the store-reload chains halve the figure (61 instead of
 * 117 GFLOP/s a core, seen on a Zen 4 built with -mno-avx512f).  A FLOP is one multiply or one add: an FMA on L lanes is 2 L FLOPs.  The vector ISA is
 * the widest this compile allows (-march=native): AVX-512 if the CPU has it, else AVX2 (else
 * SSE, for completeness).  The result is the best of TRIALS trials, each timing all threads
 * from a common start to the last thread's end (the machine's figure, not a per-thread sum).
 *
 * a and b keep the accumulators finite (a < 1, so the chains converge to b / (1 - a)); their
 * values come from argc so the compiler cannot fold the loop; the accumulators' sum is stored
 * in a global so it cannot drop it either.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TRIALS 8
#define INNER 1024   // FMA rounds between clock reads

#if defined(__AVX512F__)
#define ISA "avx512"
#define LANES 16
#define ACC 16       // independent FMA chains per thread: all in registers, a and b beside
typedef __m512 vec;
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUM(v) _mm512_reduce_add_ps(v)
#elif defined(__AVX2__) && defined(__FMA__)
#define ISA "avx2"
#define LANES 8
#define ACC 12       // 12 chains + a + b in the 16 ymm registers: nothing spills
typedef __m256 vec;
#define V_SET1(x) _mm256_set1_ps(x)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_ADD(a, b) _mm256_add_ps(a, b)
static float V_SUM(__m256 v) {
    float t[8];
    _mm256_storeu_ps(t, v);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#else
#define ISA "sse"
#define LANES 4
#define ACC 12
typedef __m128 vec;
#define V_SET1(x) _mm_set1_ps(x)
#define V_FMA(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)   // no FMA: mul + add, same 2 FLOPs
#define V_ADD(a, b) _mm_add_ps(a, b)
static float V_SUM(__m128 v) {
    float t[4];
    _mm_storeu_ps(t, v);
    return t[0] + t[1] + t[2] + t[3];
}
#endif

typedef struct {
    float a, b;          // FMA operands (from the command line's argc, see above)
    long rounds;         // outer iterations; each is INNER x ACC vector FMAs
    pthread_barrier_t *start;
    double t_end;        // seconds (CLOCK_MONOTONIC) when this thread finished
} Work;

volatile float sink;     // keeps the result alive

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// The hot loop: ACC independent chains, fully unrolled so every accumulator stays in a
// register (16 of AVX-512's 32 zmm; 12 of AVX2's 16 ymm, leaving room for a and b).
static void *run(void *arg) {
    Work *w = arg;
    vec a = V_SET1(w->a), b = V_SET1(w->b);
    vec acc[ACC];
    for (int i = 0; i < ACC; i++)
        acc[i] = V_SET1((float)i * 0.001f);
    pthread_barrier_wait(w->start);
    for (long r = 0; r < w->rounds; r++) {
        for (int k = 0; k < INNER; k++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < ACC; i++)
                acc[i] = V_FMA(acc[i], a, b);
        }
    }
    w->t_end = now_s();
    vec s = acc[0];
    for (int i = 1; i < ACC; i++)
        s = V_ADD(s, acc[i]);
    sink = V_SUM(s);
    return NULL;
}

// Time `rounds` rounds on n threads; return seconds from the common start to the last end.
static double trial(int n, long rounds, float a, float b) {
    pthread_t *tid = malloc((size_t)n * sizeof *tid);
    Work *w = malloc((size_t)n * sizeof *w);
    pthread_barrier_t start;
    if (!tid || !w) {
        fprintf(stderr, "peak: out of memory\n");
        exit(1);
    }
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        w[i] = (Work){ .a = a, .b = b, .rounds = rounds, .start = &start };
        pthread_create(&tid[i], NULL, run, &w[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s(), t1 = t0;
    for (int i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        if (w[i].t_end > t1)
            t1 = w[i].t_end;
    }
    pthread_barrier_destroy(&start);
    free(tid);
    free(w);
    return t1 - t0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    double seconds = argc > 2 ? atof(argv[2]) : 0.5;
    if (n < 1 || n > 1024 || !(seconds > 0)) {
        fprintf(stderr, "usage: %s [THREADS] [SECONDS]\n", argv[0]);
        return 2;
    }
    float a = 0.5f + 0.001f * (float)argc, b = 0.25f;
    const double flops_per_round = 2.0 * LANES * ACC * INNER;

    // Calibrate on one thread so that a trial lasts about `seconds` (this also warms the
    // core up to its sustained clock before the timed trials).
    long rounds = 16;
    for (;;) {
        double t = trial(1, rounds, a, b);
        if (t > seconds / 4 || rounds > (1L << 40))
            break;
        rounds *= 2;
    }
    {
        double t = trial(1, rounds, a, b);
        rounds = (long)((double)rounds * seconds / t) + 1;
    }

    double best = 0, g[TRIALS];
    for (int k = 0; k < TRIALS; k++) {
        double t = trial(n, rounds, a, b);
        g[k] = flops_per_round * (double)rounds * n / t * 1e-9;
        if (g[k] > best)
            best = g[k];
    }
    printf("{\"isa\": \"%s\", \"lanes\": %d, \"threads\": %d, \"gflops\": %.2f, \"trials\": [",
           ISA, LANES, n, best);
    for (int k = 0; k < TRIALS; k++)
        printf("%s%.2f", k ? ", " : "", g[k]);
    printf("]}\n");
    return 0;
}
