/* threads.c: the worker threads of a model run, and kiln_parallel_for.
 *
 * kiln_main creates one pool per run (--threads N, else $KILN_NUM_THREADS, else the online
 * cores) before prepare() and forward(), and frees it at the end: no kernel ever creates a
 * thread.  The calling thread is thread 0 and works too, so a pool of N has N - 1 workers.
 *
 * kiln_parallel_for(r, n, fn, ctx) splits the items [0, n) into one contiguous range per
 * thread, thread t owning [n * t / T, n * (t + 1) / T), and returns when all are done.  Each
 * thread calls fn on chunks of its own range, front to back, and then takes chunks of the
 * ranges the other threads have not finished: a thread that is slower (woken late, sharing
 * its core with another VM) no longer holds everyone up.  A chunk is a quarter of what is left
 * of the range it comes from (at least one item): big ones first, single items at the end, so
 * the threads finish within about one item of each other (with fixed eighths of the range,
 * one GPT-2 LM-head chunk was 99 tasks, 5 ms, that one thread could be left alone with).  Who
 * runs a chunk changes from run to run, but the kernels compute every output element in one
 * task, in the same order whatever the range: so a model's outputs are bitwise identical for
 * every thread count and every split (tests/diff checks 1, 2 and 3 threads).
 *
 * Between jobs the workers poll for 2 ms (kernels come back to back within a forward pass,
 * and waking a sleeping thread costs tens of microseconds), then sleep on a condition
 * variable, so an idle pool costs nothing; the caller waits for the workers the same way.
 * 2 ms outlasts the wait at the end of a product (up to one task, 0.2 ms): polling 50 us, a
 * worker often slept there and the next kernel started on one thread.  GPT-2 small prefill
 * 128, Zen 4, 2 threads, 5 alternating pairs (`kiln build --profile`): LayerNorm 0.42-1.12
 * -> 0.34-0.80 ms per forward, the forward faster in 4 pairs.
 */
#include "kiln_rt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_MS 2.0             // how long a waiting thread polls before it sleeps
#define MAX_THREADS 256

// Thread t's range of the current job: items [next, end) are not taken yet.  One cache line
// each, so that taking a chunk does not slow down the other threads' counters.
typedef struct {
    _Alignas(64) atomic_int_fast64_t next;
    int64_t end;
} Share;

struct kiln_pool {
    int n_threads;              // including the caller (thread 0)
    pthread_t *workers;         // [n_threads - 1]
    pthread_mutex_t lock;
    pthread_cond_t wake;        // signalled when job changes or stop is set
    pthread_cond_t done;        // signalled when pending drops to 0
    atomic_uint_fast64_t job;   // number of the current job; workers wait for it to change
    atomic_int pending;         // workers still running the current job
    atomic_int sleepers;        // workers waiting on `wake`
    bool stop;                  // under lock: workers exit
    // The current job, written by the caller before `job` is bumped.
    kiln_task_fn fn;
    void *ctx;
    int64_t chunk;              // items taken at a time
    Share *share;               // [n_threads]: thread t's range
};

typedef struct {
    kiln_pool *pool;
    int index;                  // 1 .. n_threads - 1
} Worker;

static _Thread_local bool in_task;  // a nested kiln_parallel_for runs serially

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// Whether a thread that has polled `polls` times since `start` (kiln_now_ms) should stop
// polling and sleep: SPIN_MS have passed (the clock is read every 64th poll).
static bool spun_out(int polls, double start) {
    return polls % 64 == 63 && kiln_now_ms() - start > SPIN_MS;
}

// Thread t's part of the job: the chunks of its own range, then those left in the others'.
static void run_share(kiln_pool *p, int t) {
    int T = p->n_threads;
    in_task = true;
    for (int i = 0; i < T; i++) {
        Share *sh = &p->share[(t + i) % T];
        for (;;) {
            // A quarter of what is left, at least one item: big chunks first, single items
            // at the end, so that the threads finish within about one item of each other.
            int64_t left = sh->end - atomic_load_explicit(&sh->next, memory_order_relaxed);
            if (left <= 0)
                break;
            int64_t chunk = left / 4 > 0 ? left / 4 : 1;
            int64_t begin = atomic_fetch_add_explicit(&sh->next, chunk, memory_order_relaxed);
            if (begin >= sh->end)
                break;
            p->fn(p->ctx, begin, begin + chunk < sh->end ? begin + chunk : sh->end);
        }
    }
    in_task = false;
}

static void *worker_main(void *arg) {
    Worker *w = arg;
    kiln_pool *p = w->pool;
    uint_fast64_t seen = 0;
    for (;;) {
        // Wait for a new job: spin, then sleep.
        uint_fast64_t job = atomic_load_explicit(&p->job, memory_order_acquire);
        double start = job == seen ? kiln_now_ms() : 0;
        for (int i = 0; job == seen && !spun_out(i, start); i++) {
            cpu_relax();
            job = atomic_load_explicit(&p->job, memory_order_acquire);
        }
        if (job == seen) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (!p->stop && (job = atomic_load(&p->job)) == seen)
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            bool stop = p->stop;
            pthread_mutex_unlock(&p->lock);
            if (stop)
                break;
        }
        seen = job;
        run_share(p, w->index);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    free(w);
    return NULL;
}

kiln_pool *kiln_pool_new(int n_threads) {
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > MAX_THREADS)
        n_threads = MAX_THREADS;
    kiln_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_threads = n_threads;
    p->share = aligned_alloc(_Alignof(Share), (size_t)n_threads * sizeof(Share));
    if (!p->share) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->job, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    if (n_threads == 1)
        return p;
    p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
    if (!p->workers) {
        kiln_pool_free(p);
        return NULL;
    }
    // Kernels keep their packing buffers on the stack (up to a few MiB): ask for 16 MiB.
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 16u << 20);
    for (int t = 1; t < n_threads; t++) {
        Worker *w = malloc(sizeof *w);
        if (w) {                    // before the thread starts: it reads them at once
            w->pool = p;
            w->index = t;
        }
        if (!w || pthread_create(&p->workers[t - 1], &attr, worker_main, w) != 0) {
            free(w);
            p->n_threads = t;       // the workers made so far are joined by kiln_pool_free
            pthread_attr_destroy(&attr);
            kiln_pool_free(p);
            return NULL;
        }
    }
    pthread_attr_destroy(&attr);
    return p;
}

void kiln_pool_free(kiln_pool *p) {
    if (!p)
        return;
    if (p->workers) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        for (int t = 1; t < p->n_threads; t++)
            pthread_join(p->workers[t - 1], NULL);
        free(p->workers);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->share);
    free(p);
}

int kiln_pool_threads(const kiln_pool *p) {
    return p ? p->n_threads : 1;
}

void kiln_parallel_for(kiln_run *r, int64_t n, kiln_task_fn fn, void *ctx) {
    kiln_pool *p = r ? r->pool : NULL;
    if (n <= 0)
        return;
    if (!p || p->n_threads == 1 || n == 1 || in_task) {
        fn(ctx, 0, n);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    int T = p->n_threads;
    int64_t per = n / T > 0 ? n / T : 1;
    p->chunk = (per + 7) / 8;
    for (int t = 0; t < T; t++) {
        atomic_store_explicit(&p->share[t].next, n * t / T, memory_order_relaxed);
        p->share[t].end = n * (t + 1) / T;
    }
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->job, 1);     // seq_cst: ordered before the sleepers check below
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_share(p, 0);
    // Wait for the workers: spin, then sleep.
    double start = kiln_now_ms();
    for (int i = 0; !spun_out(i, start); i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

int kiln_default_threads(void) {
    const char *env = getenv("KILN_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n >= 1 && n <= MAX_THREADS)
            return (int)n;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores >= 1 ? (cores > MAX_THREADS ? MAX_THREADS : (int)cores) : 1;
}
