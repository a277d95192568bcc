/* stream.c: the memory read bandwidth of this machine, for kiln's benchmark (bench/run.sh).
 *
 *   clang -O3 -march=native -pthread bench/stream.c -o bench/work/stream
 *   bench/work/stream [THREADS] [MiB]            (defaults: 1 thread, 1024 MiB)
 *
 * Prints one line of JSON:
 *   {"threads": 2, "mib": 1024, "gbs": 41.2, "first_touch_gbs": 3.1, "trials": [...]}
 *
 * Each thread owns one contiguous slice of a buffer of MiB mebibytes, far larger than any
 * cache, and sums it as floats with 8 independent vector accumulators (so the adds never
 * wait on each other and the loads are the only limit).  The buffer is written once by the
 * threads that later read it (first touch: the kernel maps the pages then, and that is slow
 * on this kind of machine, so it is timed apart as first_touch_gbs and never counted as
 * bandwidth), read once untimed, then read TRIALS times; gbs is the best trial, in 1e9
 * bytes per second, timed from a common start to the last thread's end.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRIALS 5

typedef struct {
    float *p;            // this thread's slice
    size_t n;            // floats in it (a multiple of 128)
    int touch;           // 1: write the slice (first touch) instead of reading it
    pthread_barrier_t *start;
    double t_end;        // seconds (CLOCK_MONOTONIC) when this thread finished
    float sum;           // the slice's sum (kept so the reads cannot be dropped)
} Work;

volatile float sink;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// The hot loop: 8 accumulators of one vector each, 128 floats per iteration.
static float sum_slice(const float *p, size_t n) {
#if defined(__AVX512F__)
    __m512 s[8];
    for (int i = 0; i < 8; i++)
        s[i] = _mm512_setzero_ps();
    for (size_t j = 0; j < n; j += 128)
        for (int i = 0; i < 8; i++)
            s[i] = _mm512_add_ps(s[i], _mm512_load_ps(p + j + 16 * i));
    for (int i = 1; i < 8; i++)
        s[0] = _mm512_add_ps(s[0], s[i]);
    return _mm512_reduce_add_ps(s[0]);
#elif defined(__AVX__)
    __m256 s[8];
    for (int i = 0; i < 8; i++)
        s[i] = _mm256_setzero_ps();
    for (size_t j = 0; j < n; j += 64)
        for (int i = 0; i < 8; i++)
            s[i] = _mm256_add_ps(s[i], _mm256_load_ps(p + j + 8 * i));
    for (int i = 1; i < 8; i++)
        s[0] = _mm256_add_ps(s[0], s[i]);
    float t[8];
    _mm256_storeu_ps(t, s[0]);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
#else
    float s[8] = { 0 };
    for (size_t j = 0; j < n; j += 8)
        for (int i = 0; i < 8; i++)
            s[i] += p[j + i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
#endif
}

static void *run(void *arg) {
    Work *w = arg;
    pthread_barrier_wait(w->start);
    if (w->touch) {
        for (size_t j = 0; j < w->n; j++)
            w->p[j] = (float)(j & 7) * 0.125f;
    } else {
        w->sum = sum_slice(w->p, w->n);
    }
    w->t_end = now_s();
    return NULL;
}

// One pass over the whole buffer on n threads; returns seconds from common start to last end.
static double pass(float *buf, size_t total, int n, int touch) {
    pthread_t tid[256];
    Work w[256];
    pthread_barrier_t start;
    size_t per = total / (size_t)n / 128 * 128;
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        w[i] = (Work){ .p = buf + (size_t)i * per, .n = per, .touch = touch, .start = &start };
        pthread_create(&tid[i], NULL, run, &w[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s(), t1 = t0;
    float s = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        if (w[i].t_end > t1)
            t1 = w[i].t_end;
        s += w[i].sum;
    }
    sink = s;
    pthread_barrier_destroy(&start);
    return t1 - t0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    long mib = argc > 2 ? atol(argv[2]) : 1024;
    if (n < 1 || n > 256 || mib < 1) {
        fprintf(stderr, "usage: %s [THREADS] [MiB]\n", argv[0]);
        return 2;
    }
    size_t total = (size_t)mib << 20 >> 2;             // floats
    size_t per = total / (size_t)n / 128 * 128;
    double bytes = (double)per * (double)n * sizeof(float);
    float *buf = aligned_alloc(64, total * sizeof(float));
    if (!buf) {
        fprintf(stderr, "stream: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    double touch = pass(buf, total, n, 1);             // first touch: page faults
    pass(buf, total, n, 0);                            // warm-up read, untimed
    double best = 0, g[TRIALS];
    for (int k = 0; k < TRIALS; k++) {
        g[k] = bytes / pass(buf, total, n, 0) * 1e-9;
        if (g[k] > best)
            best = g[k];
    }
    printf("{\"threads\": %d, \"mib\": %ld, \"gbs\": %.2f, \"first_touch_gbs\": %.2f, "
           "\"trials\": [", n, mib, best, bytes / touch * 1e-9);
    for (int k = 0; k < TRIALS; k++)
        printf("%s%.2f", k ? ", " : "", g[k]);
    printf("]}\n");
    free(buf);
    return 0;
}
