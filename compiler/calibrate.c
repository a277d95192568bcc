/* compiler/calibrate.c: `kiln calibrate`: this machine's FP32 FMA peak and memory read
 * bandwidth, measured in a few seconds and cached for `kiln build --report` and `--profile`.
 *
 *   kiln calibrate [--threads N] [--quick]     measure, print, write the cache
 *   kiln calibrate --print                     show the cache
 *
 * The cache is $XDG_CACHE_HOME/kiln/calibration.json (XDG_CACHE_HOME when it is an absolute
 * path), else ~/.cache/kiln/calibration.json; one JSON object (calibration_save below).
 *
 * The probes are bench/peak.c's and bench/stream.c's (docs/bench.md), made to run inside kiln,
 * which is compiled for the architecture's baseline: each ISA's loop is a function compiled
 * for that ISA (__attribute__((target))), and the widest one this CPU runs is called.
 *   peak       each thread runs independent chains of vector FMAs held in registers
 *              (acc = acc * a + b): 16 where the ISA has 32 vector registers (AVX-512, NEON),
 *              12 where it has 16 (AVX2, x86's scalar floats), since 16 chains beside a and b
 *              spill there and the store-reload chains halve the figure; an FMA on L lanes
 *              is 2 L FLOPs; the best of the trials (preemption only ever lowers a trial),
 *              on 1 thread and on N.
 *   bandwidth  each thread sums its slice of a buffer far larger than the caches with 8
 *              vector accumulators, after a first touch and an untimed pass; the median of
 *              the trials (on a shared host bandwidth trials scatter both ways), on 1 and N.
 * N is --threads, by default the online cores: what a model binary uses by default.  When
 * the cores are whole cores (no SMT siblings), the N-thread peak is at least N times the
 * 1-thread one, as bench/bench.py takes it: other processes on a shared machine can only
 * lower a many-thread trial, and a bound must not rise for that (the measured figure is
 * kept as peak_gflops_measured).
 * --quick (for tests) runs short trials on a small buffer: its figures are rough, and the
 * cache says so.
 */
#include "driver.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#define ACC_WIDE 16     // FMA chains per thread with 32 vector registers
#define ACC_NARROW 12   // with 16: the chains, a and b all stay in registers
#define INNER 256       // FMA rounds per outer round

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------------------------------
 * The loops, one per ISA.  Each returns a sum of its accumulators so nothing is dropped.
 */

// fma(rounds, a, b): rounds x INNER x ACC vector FMAs, ACC the loop's chains.  The hot loop.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float fma_avx512(long rounds, float a, float b)
{
    __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), acc[ACC_WIDE];
    for (int i = 0; i < ACC_WIDE; i++)
        acc[i] = _mm512_set1_ps((float)i * 0.001f);
    for (long r = 0; r < rounds; r++)
        for (int k = 0; k < INNER; k++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < ACC_WIDE; i++)
                acc[i] = _mm512_fmadd_ps(acc[i], va, vb);
        }
    for (int i = 1; i < ACC_WIDE; i++)
        acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long rounds, float a, float b)
{
    __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), acc[ACC_NARROW];
    for (int i = 0; i < ACC_NARROW; i++)
        acc[i] = _mm256_set1_ps((float)i * 0.001f);
    for (long r = 0; r < rounds; r++)
        for (int k = 0; k < INNER; k++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < ACC_NARROW; i++)
                acc[i] = _mm256_fmadd_ps(acc[i], va, vb);
        }
    float t[8], s = 0;
    for (int i = 1; i < ACC_NARROW; i++)
        acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(t, acc[0]);
    for (int i = 0; i < 8; i++)
        s += t[i];
    return s;
}
#elif defined(__aarch64__)
static float fma_neon(long rounds, float a, float b)
{
    float32x4_t va = vdupq_n_f32(a), vb = vdupq_n_f32(b), acc[ACC_WIDE];
    for (int i = 0; i < ACC_WIDE; i++)
        acc[i] = vdupq_n_f32((float)i * 0.001f);
    for (long r = 0; r < rounds; r++)
        for (int k = 0; k < INNER; k++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < ACC_WIDE; i++)
                acc[i] = vfmaq_f32(vb, acc[i], va);
        }
    for (int i = 1; i < ACC_WIDE; i++)
        acc[0] = vaddq_f32(acc[0], acc[i]);
    return vaddvq_f32(acc[0]);
}
#endif

// The baseline: plain floats (the compiler may put them in vectors of its baseline ISA).
static float fma_scalar(long rounds, float a, float b)
{
    float acc[ACC_NARROW];
    for (int i = 0; i < ACC_NARROW; i++)
        acc[i] = (float)i * 0.001f;
    for (long r = 0; r < rounds; r++)
        for (int k = 0; k < INNER; k++)
            for (int i = 0; i < ACC_NARROW; i++)
                acc[i] = acc[i] * a + b;
    float s = 0;
    for (int i = 0; i < ACC_NARROW; i++)
        s += acc[i];
    return s;
}

// sum(p, n): the floats of p[0..n), n a multiple of 128, with 8 accumulators.  The hot loop.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float sum_avx512(const float *p, size_t n)
{
    __m512 s[8];
    for (int i = 0; i < 8; i++)
        s[i] = _mm512_setzero_ps();
    for (size_t j = 0; j < n; j += 128)
        for (int i = 0; i < 8; i++)
            s[i] = _mm512_add_ps(s[i], _mm512_load_ps(p + j + 16 * i));
    for (int i = 1; i < 8; i++)
        s[0] = _mm512_add_ps(s[0], s[i]);
    return _mm512_reduce_add_ps(s[0]);
}

__attribute__((target("avx2"))) static float sum_avx2(const float *p, size_t n)
{
    __m256 s[8];
    for (int i = 0; i < 8; i++)
        s[i] = _mm256_setzero_ps();
    for (size_t j = 0; j < n; j += 64)
        for (int i = 0; i < 8; i++)
            s[i] = _mm256_add_ps(s[i], _mm256_load_ps(p + j + 8 * i));
    for (int i = 1; i < 8; i++)
        s[0] = _mm256_add_ps(s[0], s[i]);
    float t[8], r = 0;
    _mm256_storeu_ps(t, s[0]);
    for (int i = 0; i < 8; i++)
        r += t[i];
    return r;
}
#endif

static float sum_scalar(const float *p, size_t n)
{
    float s[8] = {0};
    for (size_t j = 0; j < n; j += 8)
        for (int i = 0; i < 8; i++)
            s[i] += p[j + i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

// The widest ISA this CPU runs, its lanes and its loops.
typedef struct {
    const char *isa;
    int lanes;
    int chains;                 // the FMA chains of its loop (ACC_WIDE or ACC_NARROW)
    float (*fma)(long rounds, float a, float b);
    float (*sum)(const float *p, size_t n);
} Probe;

static Probe host_probe(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return (Probe){"avx512", 16, ACC_WIDE, fma_avx512, sum_avx512};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return (Probe){"avx2", 8, ACC_NARROW, fma_avx2, sum_avx2};
#elif defined(__aarch64__)
    return (Probe){"neon", 4, ACC_WIDE, fma_neon, sum_scalar};
#endif
    return (Probe){"scalar", 1, ACC_NARROW, fma_scalar, sum_scalar};
}

/* ---------------------------------------------------------------------------------------
 * Threads: every trial starts its threads together and ends at the last one's finish
 */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool go;
} Start;

typedef struct {
    const Probe *probe;
    long rounds;                // peak: outer rounds
    float *p;                   // bandwidth: this thread's slice, n floats
    size_t n;
    bool touch;                 // write the slice (first touch) instead of summing it
    Start *start;
    double t_end;
    float sink;
} Work;

static volatile float sink;

static void *run(void *arg)
{
    Work *w = arg;
    pthread_mutex_lock(&w->start->mu);
    while (!w->start->go)
        pthread_cond_wait(&w->start->cv, &w->start->mu);
    pthread_mutex_unlock(&w->start->mu);
    if (w->p && w->touch) {
        for (size_t j = 0; j < w->n; j++)
            w->p[j] = (float)(j & 7) * 0.125f;
    } else if (w->p) {
        w->sink = w->probe->sum(w->p, w->n);
    } else {    // a < 1 keeps the chains finite; from rounds, so the loop cannot be folded
        w->sink = w->probe->fma(w->rounds, 0.5f + 0.001f * (float)(w->rounds & 7), 0.25f);
    }
    w->t_end = now_s();
    return NULL;
}

// One trial on n threads: peak (buf NULL, `rounds` each) or a pass over buf's `total`
// floats split in n slices.  Seconds from the common start to the last end; < 0 if the
// threads could not start.
static double trial(const Probe *pr, int n, long rounds, float *buf, size_t total, bool touch)
{
    pthread_t tid[256];
    Work w[256];
    Start start = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    size_t per = total / (size_t)n / 128 * 128;
    int started = 0;
    for (int i = 0; i < n; i++) {
        w[i] = (Work){.probe = pr, .rounds = rounds, .p = buf ? buf + (size_t)i * per : NULL,
                      .n = per, .touch = touch, .start = &start};
        if (pthread_create(&tid[i], NULL, run, &w[i]) != 0)
            break;
        started++;
    }
    pthread_mutex_lock(&start.mu);
    start.go = true;
    double t0 = now_s(), t1 = t0;
    pthread_cond_broadcast(&start.cv);
    pthread_mutex_unlock(&start.mu);
    float s = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        t1 = w[i].t_end > t1 ? w[i].t_end : t1;
        s += w[i].sink;
    }
    sink = s;
    return started < n ? -1 : t1 - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// FMA peak in GFLOP/s on n threads: the best of `trials` trials of about `seconds` each.
static double measure_peak(const Probe *pr, int n, double seconds, int trials)
{
    long rounds = 4;
    for (;;) {      // size a trial on one thread (this also brings the core to its clock)
        double t = trial(pr, 1, rounds, NULL, 0, false);
        if (t < 0)
            return -1;
        if (t > seconds / 4 || rounds > (1L << 40)) {
            rounds = (long)((double)rounds * seconds / (t > 0 ? t : 1e-9)) + 1;
            break;
        }
        rounds *= 2;
    }
    double best = 0, flops = 2.0 * pr->lanes * pr->chains * INNER * (double)rounds * n;
    for (int k = 0; k < trials; k++) {
        double t = trial(pr, n, rounds, NULL, 0, false);
        if (t < 0)
            return -1;
        double g = flops / t * 1e-9;
        best = g > best ? g : best;
    }
    return best;
}

// Read bandwidth in GB/s on n threads over buf (`total` floats, touched): the median trial.
static double measure_bandwidth(const Probe *pr, int n, float *buf, size_t total, int trials)
{
    double g[16];
    size_t per = total / (size_t)n / 128 * 128;
    double bytes = (double)per * n * sizeof(float);
    trial(pr, n, 0, buf, total, false);         // untimed
    for (int k = 0; k < trials; k++) {
        double t = trial(pr, n, 0, buf, total, false);
        if (t < 0)
            return -1;
        g[k] = bytes / t * 1e-9;
    }
    qsort(g, (size_t)trials, sizeof g[0], cmp_double);
    return trials % 2 ? g[trials / 2] : (g[trials / 2 - 1] + g[trials / 2]) / 2;
}

/* ---------------------------------------------------------------------------------------
 * The cache file
 */

// The CPU's name from /proc/cpuinfo ("AMD EPYC"), or "unknown".
static void cpu_name(char *buf, size_t n)
{
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon)
            continue;
        colon += 1 + strspn(colon + 1, " \t");
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, n, "%s", colon);
        break;
    }
    fclose(f);
}

bool calibration_path(char *buf, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        return snprintf(buf, n, "%s/kiln/calibration.json", xdg) < (int)n;
    if (home && home[0])
        return snprintf(buf, n, "%s/.cache/kiln/calibration.json", home) < (int)n;
    return false;
}

// mkdir -p of the folder holding `path`.
static bool make_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return true;
    *slash = 0;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(dir, 0777) == 0 || errno == EEXIST;
}

// Whether cpu0 has no SMT sibling (its thread_siblings_list names one CPU).
static bool whole_cores(void)
{
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list", "r");
    char line[64] = "";
    if (!f)
        return false;
    bool one = fgets(line, sizeof line, f) && !strpbrk(line, ",-");
    fclose(f);
    return one;
}

static bool calibration_save(const Machine *m, const char *path, bool quick, double seconds)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kiln", KILN_VERSION);
    cJSON_AddStringToObject(o, "cpu", m->cpu);
    cJSON_AddStringToObject(o, "isa", m->isa);
    cJSON_AddNumberToObject(o, "lanes", m->lanes);
    cJSON_AddNumberToObject(o, "threads", m->threads);
    cJSON_AddNumberToObject(o, "peak_gflops_1", m->peak_gflops_1);
    cJSON_AddNumberToObject(o, "peak_gflops", m->peak_gflops);
    cJSON_AddNumberToObject(o, "peak_gflops_measured", m->peak_gflops_measured);
    cJSON_AddNumberToObject(o, "bandwidth_gbs_1", m->bandwidth_gbs_1);
    cJSON_AddNumberToObject(o, "bandwidth_gbs", m->bandwidth_gbs);
    cJSON_AddBoolToObject(o, "quick", quick);
    cJSON_AddStringToObject(o, "date", m->date);
    cJSON_AddNumberToObject(o, "seconds", (double)(long)(seconds * 100) / 100);
    bool ok = make_parent(path) ? write_json(path, o)
                                : (fprintf(stderr, "kiln: error: cannot write the calibration "
                                                   "cache '%s': %s\n", path, strerror(errno)),
                                   false);
    cJSON_Delete(o);
    return ok;
}

static double number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void string(const cJSON *o, const char *key, char *buf, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(buf, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

bool calibration_load(Machine *m, char *why, size_t n)
{
    memset(m, 0, sizeof *m);
    char path[4096];
    if (!calibration_path(path, sizeof path)) {
        snprintf(why, n, "no calibration cache: neither XDG_CACHE_HOME nor HOME is set");
        return false;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, n, "no calibration cache (%s): run 'kiln calibrate'", path);
        return false;
    }
    char text[8192];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    cJSON *o = cJSON_Parse(text);
    if (o) {
        m->threads = (int)number(o, "threads");
        m->lanes = (int)number(o, "lanes");
        m->peak_gflops_1 = number(o, "peak_gflops_1");
        m->peak_gflops = number(o, "peak_gflops");
        m->peak_gflops_measured = number(o, "peak_gflops_measured");
        m->bandwidth_gbs_1 = number(o, "bandwidth_gbs_1");
        m->bandwidth_gbs = number(o, "bandwidth_gbs");
        m->quick = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "quick"));
        string(o, "cpu", m->cpu, sizeof m->cpu);
        string(o, "isa", m->isa, sizeof m->isa);
        string(o, "date", m->date, sizeof m->date);
        cJSON_Delete(o);
    }
    if (!o || m->threads < 1 || !(m->peak_gflops_1 > 0) || !(m->peak_gflops > 0) ||
        !(m->bandwidth_gbs_1 > 0) || !(m->bandwidth_gbs > 0)) {
        snprintf(why, n, "the calibration cache %s is not one 'kiln calibrate' wrote: run it "
                         "again", path);
        return false;
    }
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    if (strcmp(cpu, m->cpu) != 0) {
        snprintf(why, n, "the calibration cache %s was measured on '%s', this CPU is '%s': run "
                         "'kiln calibrate'", path, m->cpu, cpu);
        return false;
    }
    snprintf(m->source, sizeof m->source, "kiln calibrate%s, %s", m->quick ? " --quick" : "",
             m->date);
    m->known = true;
    return true;
}

static void print_machine(const Machine *m, FILE *out)
{
    fprintf(out, "  cpu        %s (%s, %d float%s per vector)\n", m->cpu, m->isa, m->lanes,
            m->lanes == 1 ? "" : "s");
    fprintf(out, "  FP32 peak  %8.1f GFLOP/s on 1 thread, %8.1f GFLOP/s on %d", m->peak_gflops_1,
            m->peak_gflops, m->threads);
    if (m->peak_gflops_measured > 0 && m->peak_gflops_measured < m->peak_gflops)
        fprintf(out, " (%d x 1 thread; the %d-thread trials reached %.1f)", m->threads,
                m->threads, m->peak_gflops_measured);
    fputc('\n', out);
    fprintf(out, "  bandwidth  %8.1f GB/s    on 1 thread, %8.1f GB/s    on %d (reads)\n",
            m->bandwidth_gbs_1, m->bandwidth_gbs, m->threads);
    fprintf(out, "  measured   %s%s\n", m->date,
            m->quick ? " with --quick (short trials, small buffer: rough figures)" : "");
}

/* ---------------------------------------------------------------------------------------
 * The command
 */

static const char calibrate_usage[] =
    "usage: kiln calibrate [--threads N] [--quick]   measure this machine, write the cache\n"
    "       kiln calibrate --print                   show the cache\n"
    "The cache: $XDG_CACHE_HOME/kiln/calibration.json, else ~/.cache/kiln/calibration.json.\n"
    "kiln build --report and --profile read it for the roofline bound (docs/inspect.md).\n";

int kiln_cmd_calibrate(int argc, char **argv)
{
    bool print = false, quick = false;
    int threads = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--print")) {
            print = true;
        } else if (!strcmp(a, "--quick")) {
            quick = true;
        } else if (!strcmp(a, "--threads") || !strncmp(a, "--threads=", 10)) {
            const char *v = a[9] == '=' ? a + 10 : i + 1 < argc ? argv[++i] : "";
            char *end;
            long t = strtol(v, &end, 10);
            if (!*v || *end || t < 1 || t > 256) {
                fprintf(stderr, "kiln: error: --threads wants a whole number from 1 to 256, "
                                "found '%s'\n", v);
                return 2;
            }
            threads = (int)t;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(calibrate_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "kiln: error: calibrate: unknown argument '%s'\n%s", a,
                    calibrate_usage);
            return 2;
        }
    }
    char path[4096];
    if (!calibration_path(path, sizeof path)) {
        fprintf(stderr, "kiln: error: calibrate: set HOME or XDG_CACHE_HOME for the cache\n");
        return 1;
    }
    if (print) {
        if (quick || threads) {
            fprintf(stderr, "kiln: error: --print shows the cache; it measures nothing\n");
            return 2;
        }
        Machine m;
        char why[4400];
        if (!calibration_load(&m, why, sizeof why)) {
            fprintf(stderr, "kiln: %s\n", why);
            return 1;
        }
        printf("%s\n", path);
        print_machine(&m, stdout);
        return 0;
    }

    Machine m;
    memset(&m, 0, sizeof m);
    Probe pr = host_probe();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    m.threads = threads ? threads : cores >= 1 && cores <= 256 ? (int)cores : 1;
    m.lanes = pr.lanes;
    snprintf(m.isa, sizeof m.isa, "%s", pr.isa);
    cpu_name(m.cpu, sizeof m.cpu);
    time_t now = time(NULL);
    strftime(m.date, sizeof m.date, "%Y-%m-%d", localtime(&now));

    // quick: trials of 20 ms on 16 MiB; else 150 ms on 128 MiB, 4 times a large L3 (a first
    // touch costs up to ~10 s per GiB on some virtual machines).
    double seconds = quick ? 0.02 : 0.15;
    int trials = quick ? 2 : 5, bw_trials = quick ? 3 : 7;
    size_t total = (size_t)(quick ? 16 : 128) << 20 >> 2;     // floats
    double t0 = now_s();
    fprintf(stderr, "kiln: calibrating (%s, %d thread%s)%s ...\n", pr.isa, m.threads,
            m.threads == 1 ? "" : "s", quick ? " --quick" : "");
    m.peak_gflops_1 = measure_peak(&pr, 1, seconds, trials);
    m.peak_gflops = m.threads == 1 ? m.peak_gflops_1
                                   : measure_peak(&pr, m.threads, seconds, trials);
    m.peak_gflops_measured = m.peak_gflops;
    if (whole_cores() && m.threads <= cores && m.peak_gflops < m.threads * m.peak_gflops_1)
        m.peak_gflops = m.threads * m.peak_gflops_1;
    float *buf = aligned_alloc(64, total * sizeof(float));
    if (!buf) {
        fprintf(stderr, "kiln: error: calibrate: cannot allocate %zu MiB\n", total >> 18);
        return 1;
    }
    trial(&pr, m.threads, 0, buf, total, true);        // first touch, by the threads that read
    m.bandwidth_gbs_1 = measure_bandwidth(&pr, 1, buf, total, bw_trials);
    m.bandwidth_gbs = m.threads == 1 ? m.bandwidth_gbs_1
                                     : measure_bandwidth(&pr, m.threads, buf, total, bw_trials);
    free(buf);
    if (m.peak_gflops_1 <= 0 || m.peak_gflops <= 0 || m.bandwidth_gbs_1 <= 0 ||
        m.bandwidth_gbs <= 0) {
        fprintf(stderr, "kiln: error: calibrate: cannot start %d threads\n", m.threads);
        return 1;
    }
    m.quick = quick;
    if (!calibration_save(&m, path, quick, now_s() - t0))
        return 1;
    printf("%s (written in %.1f s)\n", path, now_s() - t0);
    print_machine(&m, stdout);
    return 0;
}
