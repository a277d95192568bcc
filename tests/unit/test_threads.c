/* tests/unit/test_threads.c: kiln_parallel_for (runtime/threads.c).
 *
 *   cover.*    every item of [0, n) runs exactly once, in ranges inside [0, n), for 1 to 5
 *              threads and n from 0 to 1001, also when the first thread's items are slow
 *              (the others then take its chunks) and for back-to-back jobs
 *   nested.*   a kiln_parallel_for inside a task runs its items on the calling thread
 *   min.*      kiln_parallel_for_min runs a small job on the caller as one range
 *
 *   build/tests/test_threads     prints "test_threads: N passed, M failed", exit 1 on failure
 */
#include "kiln_rt.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int n_pass, n_fail;
// Count one check; print the message of a failed one.
static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
    if (ok) {
        n_pass++;
        return;
    }
    n_fail++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

typedef struct {
    int64_t n;
    atomic_int *count;          // [n] times item i ran
    atomic_int bad_ranges;      // ranges not inside [0, n) or empty
    int64_t slow_below;         // items below this sleep 200 us each
    atomic_int ranges;
} Job;

static void count_task(void *ctx, int64_t begin, int64_t end)
{
    Job *j = ctx;
    atomic_fetch_add(&j->ranges, 1);
    if (begin < 0 || end > j->n || begin >= end) {
        atomic_fetch_add(&j->bad_ranges, 1);
        return;
    }
    for (int64_t i = begin; i < end; i++) {
        if (i < j->slow_below)
            nanosleep(&(struct timespec){0, 200000}, NULL);
        atomic_fetch_add(&j->count[i], 1);
    }
}

// Run one job of n items on r and check that each ran once; returns the number of ranges.
static int run_job(kiln_run *r, int64_t n, int64_t slow_below, const char *what, int T)
{
    Job j = {.n = n, .slow_below = slow_below};
    j.count = calloc((size_t)(n > 0 ? n : 1), sizeof *j.count);
    kiln_parallel_for(r, n, count_task, &j);
    int64_t wrong = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&j.count[i]) != 1 && wrong++ == 0)
            first = i;
    check(wrong == 0, "%s: %d threads, n %lld: %lld items did not run exactly once (first %lld)",
          what, T, (long long)n, (long long)wrong, (long long)first);
    check(atomic_load(&j.bad_ranges) == 0, "%s: %d threads, n %lld: %d bad ranges", what, T,
          (long long)n, atomic_load(&j.bad_ranges));
    free(j.count);
    return atomic_load(&j.ranges);
}

static void test_cover(void)
{
    static const int64_t sizes[] = {0, 1, 2, 3, 5, 7, 16, 100, 1001};
    for (int T = 1; T <= 5; T++) {
        kiln_run r = {0};
        r.pool = kiln_pool_new(T);
        check(r.pool && kiln_pool_threads(r.pool) == T, "cover: a pool of %d threads", T);
        if (!r.pool)
            continue;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            run_job(&r, sizes[s], 0, "cover.even", T);
        // Thread 0's range is slow: the other threads finish theirs and take its chunks.
        run_job(&r, 400, 400 / T, "cover.slow_first", T);
        for (int rep = 0; rep < 200; rep++)      // back to back: no job sees another's state
            run_job(&r, 37 + rep % 5, 0, "cover.repeat", T);
        kiln_pool_free(r.pool);
    }
}

typedef struct {
    kiln_run *r;
    atomic_int inner_items;
    atomic_int inner_ranges;
    atomic_int wrong_thread;
} Nest;

static _Thread_local int thread_tag;

static void inner_task(void *ctx, int64_t begin, int64_t end)
{
    Nest *n = ctx;
    atomic_fetch_add(&n->inner_ranges, 1);
    atomic_fetch_add(&n->inner_items, (int)(end - begin));
    if (thread_tag != 1)
        atomic_fetch_add(&n->wrong_thread, 1);
}

static void outer_task(void *ctx, int64_t begin, int64_t end)
{
    Nest *n = ctx;
    for (int64_t i = begin; i < end; i++) {
        thread_tag = 1;
        kiln_parallel_for(n->r, 10, inner_task, n);
        thread_tag = 0;
    }
}

static void test_nested(void)
{
    kiln_run r = {0};
    r.pool = kiln_pool_new(3);
    if (!r.pool) {
        check(false, "nested: no pool");
        return;
    }
    Nest n = {.r = &r};
    kiln_parallel_for(&r, 12, outer_task, &n);
    check(atomic_load(&n.inner_items) == 120, "nested: %d inner items, expected 120",
          atomic_load(&n.inner_items));
    check(atomic_load(&n.inner_ranges) == 12, "nested: %d inner ranges, expected 12 (one each)",
          atomic_load(&n.inner_ranges));
    check(atomic_load(&n.wrong_thread) == 0, "nested: %d inner ranges ran on another thread",
          atomic_load(&n.wrong_thread));
    kiln_pool_free(r.pool);
}

static void test_min(void)
{
    kiln_run r = {0};
    r.pool = kiln_pool_new(2);
    if (!r.pool) {
        check(false, "min: no pool");
        return;
    }
    Job j = {.n = 10};
    j.count = calloc(10, sizeof *j.count);
    kiln_parallel_for_min(&r, 10, 8, count_task, &j);     // 10 < 2 x 8: one range
    check(atomic_load(&j.ranges) == 1, "min: %d ranges for 10 items with min 8",
          atomic_load(&j.ranges));
    free(j.count);
    check(run_job(&r, 0, 0, "min.empty", 2) == 0, "min: an empty job runs no range");
    kiln_pool_free(r.pool);
}

int main(void)
{
    test_cover();
    test_nested();
    test_min();
    printf("test_threads: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
