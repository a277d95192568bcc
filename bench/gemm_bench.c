/* gemm_bench.c: the speed of kiln's generated matmul, against this core's FMA peak.
 *
 *   bash bench/gemm_bench.sh [M N K] [--isa ISA] [--threads T]     (builds and runs this)
 *
 * A benchmark, not a test (timing is never in tests).  gemm_bench.sh emits bench/gemm.yaml
 * (one matmul of an M x K input by a K x N weight) with `kiln emit -D M=.. -D N=.. -D K=..`,
 * and compiles this file around the generated C (#include of KILN_MODEL with KILN_NO_MAIN),
 * with the ISA's flags.  Then this program:
 *
 *   1. fills the weight and the input with random values, packs the weight (the model's
 *      prepare(), timed), and checks one forward() against a double-precision product
 *   2. times forward() REPS times at M rows, reports the best: GFLOP/s (2 M N K / time), and
 *      for M = 1 the weight bytes streamed per second (the packed panels, read once)
 *   3. measures this core's FP32 FMA peak with the same vector vocabulary (V_FMA on VL
 *      lanes, 12 independent chains), and prints the product's share of it
 *
 * --cold (a third argument of 1): before each trial the weight is evicted from the caches
 * (a read of 256 MiB) and the input read back in, as a model's forward finds them.  The
 * weight is packed into huge pages, as kiln_main packs a model's (kiln_huge_alloc).
 *
 * Times are per thread CPU time (CLOCK_THREAD_CPUTIME_ID) with one thread, so that other
 * processes on a shared machine do not count; with more threads, wall time (CLOCK_MONOTONIC).
 * Each figure is the best of its trials, and with several threads the median as well.
 */
#define KILN_NO_MAIN
#define KILN_NO_API
#include KILN_MODEL

#include <stdlib.h>
#include <time.h>

static double now_s(bool cpu)
{
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void)    // uniform in [-1, 1)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-52 - 1.0);
}

// The FMA peak of one core: 12 independent chains of V_FMA (enough for 2 FMA pipes of
// latency 4, and few enough for AVX2's 16 registers), nothing in memory; GFLOP/s of one
// trial (about a millisecond).  The operands are read from volatiles: with constants (every
// lane the same), clang 14 took one of the 12 chains out of the vector loop, and the "peak"
// came out 12 / 11 of what the FMA units do (128.9 against 118 GFLOP/s on a Zen 4 core).
volatile float sink, peak_a = 0.999f, peak_b = 0.001f;
static double peak_trial(void)
{
    V_T acc[12];
    const V_T a = V_SET1(peak_a), b = V_SET1(peak_b);
    for (int i = 0; i < 12; i++)
        acc[i] = V_SET1((float)i);
    double t0 = now_s(true);
    for (long r = 0; r < 500000; r++)
        for (int i = 0; i < 12; i++)
            acc[i] = V_FMA(acc[i], a, b);
    double dt = now_s(true) - t0;
    float s = 0;
    for (int i = 0; i < 12; i++)
        s += V_REDUCE_ADD(acc[i]);
    sink = s;
    return 500000.0 * 12 * 2 * VL / dt * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 30;
    bool cold = argc > 3 && atoi(argv[3]) != 0;
    const kiln_tensor_desc *x = &model.inputs[0], *w = &model.weights[0];
    const int64_t rows = x->dims[0], K = x->dims[1], N = w->dims[1];
    float *xs = kiln_aligned_alloc((size_t)(rows * K) * 4);
    float *ws = kiln_aligned_alloc((size_t)(K * N) * 4);
    float *ys = kiln_aligned_alloc((size_t)(rows * N) * 4);
    for (int64_t i = 0; i < rows * K; i++)
        xs[i] = frand();
    for (int64_t i = 0; i < K * N; i++)
        ws[i] = frand();
    kiln_run r;
    memset(&r, 0, sizeof r);
    r.model = &model;
    r.sym[0] = rows;
    const void *in[1] = {xs}, *wt[1] = {ws};
    void *out[1] = {ys};
    r.inputs = in;
    r.weights = wt;
    r.outputs = out;
    r.arena = kiln_aligned_alloc(model.arena_bytes);
    r.pool = kiln_pool_new(threads);
    bool cpu = threads == 1;
    double t0 = now_s(false);
    if (model.prepare) {
        r.packed = kiln_huge_alloc(model.packed_bytes);   // as kiln_main: huge pages
        model.prepare(&r);
    }
    double t_pack = now_s(false) - t0;

    // Check against a double-precision product (a sample of the outputs).
    model.forward(&r);
    double max_err = 0, max_ref = 0;
    for (int64_t i = 0; i < rows; i += rows > 7 ? 7 : 1)
        for (int64_t j = 0; j < N; j += N > 97 ? 97 : 1) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)xs[i * K + k] * (double)ws[k * N + j];
            double e = fabs(s - (double)ys[i * N + j]);
            max_err = e > max_err ? e : max_err;
            max_ref = fabs(s) > max_ref ? fabs(s) : max_ref;
        }

    // Each trial times one forward() and, right after it, one peak trial: the clock of a
    // shared machine moves between trials, not within one, so the pair's ratio is the
    // share of the peak.
    double best = 1e30, best_peak = 0;
    double *ratio = malloc(sizeof *ratio * (size_t)reps);
    double *times = malloc(sizeof *times * (size_t)reps);
    const double flops = 2.0 * (double)rows * (double)N * (double)K;
    // --cold: before each trial, read a buffer larger than the last-level cache, and then
    // the input: the weight comes from memory and the input from cache, as in a model's
    // forward, where a layer's weights were last read a forward ago and its input was just
    // written by the kernel before.
    const size_t evict_bytes = (size_t)256 << 20;
    unsigned char *evict = cold ? kiln_aligned_alloc(evict_bytes) : NULL;
    if (cold)
        memset(evict, 1, evict_bytes);
    for (int rep = 0; rep < reps; rep++) {
        if (cold) {
            unsigned s = 0;
            for (size_t i = 0; i < evict_bytes; i += 64)
                s += evict[i];
            for (int64_t i = 0; i < rows * K; i += 16)  // the input, as its producer left it
                s += (unsigned)xs[i];
            sink = (float)s;
        }
        double t = now_s(cpu);
        model.forward(&r);
        t = now_s(cpu) - t;
        double peak = peak_trial();
        best = t < best ? t : best;
        best_peak = peak > best_peak ? peak : best_peak;
        ratio[rep] = flops / t * 1e-9 / peak;
        times[rep] = t;
    }
    qsort(ratio, (size_t)reps, sizeof *ratio, cmp_double);
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    double gflops = flops / best * 1e-9;
    printf("gemm %lld x %lld x %lld (M x N x K), %s, %d thread%s: best %.3f ms (%s time), "
           "%.1f GFLOP/s",
           (long long)rows, (long long)N, (long long)K, model.isa, threads, threads == 1 ? "" : "s",
           best * 1e3, cpu ? "cpu" : "wall", gflops);
    if (cold)
        printf(" (cold: the weight evicted from the caches before each trial)");
    if (threads == 1)
        printf(" = %.0f%% of the best FMA peak (%.1f GFLOP/s);\n  paired with the peak "
               "measured right after: 90th percentile %.0f%%, median %.0f%%",
               100.0 * gflops / best_peak, best_peak, 100.0 * ratio[reps * 9 / 10],
               100.0 * ratio[reps / 2]);
    else
        printf(" (%.1f GFLOP/s per thread; one core's FMA peak %.1f); median %.3f ms, %.1f GFLOP/s",
               gflops / threads, best_peak, times[reps / 2] * 1e3, flops / times[reps / 2] * 1e-9);
    if (rows == 1)
        printf("; weights streamed at %.1f GB/s", (double)model.packed_bytes / best * 1e-9);
    printf("\n  packing %.1f MiB at load: %.1f ms; max |error| vs double %.2g (max |y| %.3g)\n",
           (double)model.packed_bytes / 1048576.0, t_pack * 1e3, max_err, max_ref);
    kiln_pool_free(r.pool);
    free(ratio);
    free(times);
    kiln_aligned_free(evict);
    return max_err <= 1e-4 * (max_ref > 1 ? max_ref : 1) ? 0 : 1;
}
