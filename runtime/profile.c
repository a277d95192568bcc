/* profile.c: per-kernel timing for binaries built with `kiln build --profile`.
 *
 * The generated file (codegen/profile.c writes that part) routes every kernel call in
 * forward() through KILN_PROF_VOID / KILN_PROF_INT, which read the monotonic clock before and
 * after the call and add the difference to the kernel's row, and routes forward() itself
 * through kiln_prof_forward, which counts runs, times the whole forward and, when the build
 * knew this machine's peak and bandwidth, adds each kernel's roofline bound at the run's
 * dims.  kiln_prof_print writes the table to stderr when the program exits:
 *
 *   kiln profile: gpt2, 10 runs on 2 threads, forward 8.114 ms per run (kernels 99.2%)
 *     kernel              calls  total ms   ms/run  share  GFLOP/s  bound ms  measured/bound
 *     k_h_attn_c_attn        40    25.100    2.510  30.9%    120.3     1.105            2.27
 *
 * Timing one kernel costs two clock reads (tens of nanoseconds), so kernels of a few
 * microseconds read a little slow; the normal build has none of it.  The model binary's
 * --warmup runs are left out (kiln_prof_warmup_done): the first run's page faults (fresh
 * arena pages, the first reads of mapped weights) would otherwise be averaged into every
 * kernel's time per run.
 */
#include "kiln_rt.h"

#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

void kiln_prof_begin(kiln_prof *p)
{
    p->t0 = now_ns();
}

int kiln_prof_end(kiln_prof *p, int k, int rc)
{
    double t = now_ns();
    p->kernels[k].ns += t - p->t0;
    p->kernels[k].calls++;
    return rc;
}

// The figure for T threads from the 1-thread and threads_n-thread ones: linear in T up to
// the measured many-thread figure (a machine's cores share its FMA units no more than one
// each, and its memory bandwidth saturates).
static double for_threads(double one, double many, int threads_n, int T)
{
    if (threads_n <= 0 || T >= threads_n)
        return many;
    double lin = one * T;
    return lin < many ? lin : many;
}

// The profile of the last forward, for kiln_prof_warmup_done (one per binary: main.c runs
// one model).
static kiln_prof *last_prof;

int kiln_prof_forward(kiln_prof *p, int (*forward)(kiln_run *r), kiln_run *r)
{
    last_prof = p;
    int T = kiln_pool_threads(r->pool);
    for (int k = 0; k < p->n_kernels; k++)
        p->flops[k] = p->bytes[k] = 0;
    if (p->cost)
        p->cost(r->sym, p->flops, p->bytes);
    double peak = for_threads(p->peak_gflops_1, p->peak_gflops_n, p->threads_n, T) * 1e9;
    double bw = for_threads(p->gbs_1, p->gbs_n, p->threads_n, T) * 1e9;
    for (int k = 0; k < p->n_kernels; k++) {
        kiln_prof_kernel *kk = &p->kernels[k];
        kk->flops += p->flops[k];
        kk->bytes += p->bytes[k];
        if (peak > 0 && bw > 0) {
            double tf = p->flops[k] / peak, tb = p->bytes[k] / bw;
            kk->bound_ns += (tf > tb ? tf : tb) * 1e9;
        }
    }
    double t0 = now_ns();
    int rc = forward(r);
    p->forward_ns += now_ns() - t0;
    p->runs++;
    p->threads = T;
    return rc;
}

void kiln_prof_warmup_done(void)
{
    kiln_prof *p = last_prof;
    if (!p)
        return;
    for (int k = 0; k < p->n_kernels; k++) {
        kiln_prof_kernel *kk = &p->kernels[k];
        kk->calls = 0;
        kk->ns = kk->flops = kk->bytes = kk->bound_ns = 0;
    }
    p->warmup += p->runs;
    p->runs = 0;
    p->forward_ns = 0;
}

void kiln_prof_print(const kiln_prof *p, FILE *out)
{
    if (p->runs == 0)
        return;
    double kernels_ns = 0;
    int w = (int)strlen("kernel");
    for (int k = 0; k < p->n_kernels; k++) {
        kernels_ns += p->kernels[k].ns;
        int l = (int)strlen(p->kernels[k].name);
        w = l > w ? l : w;
    }
    bool bound = p->peak_gflops_n > 0 && p->gbs_n > 0;
    double runs = (double)p->runs;
    fprintf(out, "kiln profile: %s, %ld run%s on %d thread%s", p->model, p->runs,
            p->runs == 1 ? "" : "s", p->threads, p->threads == 1 ? "" : "s");
    if (p->warmup)
        fprintf(out, " (after %ld warm-up run%s, not counted)", p->warmup,
                p->warmup == 1 ? "" : "s");
    fprintf(out, ", forward %.3f ms per run (%.1f%% of it in kernels)\n",
            p->forward_ns / runs * 1e-6,
            p->forward_ns > 0 ? 100.0 * kernels_ns / p->forward_ns : 0.0);
    fprintf(out, "  %-*s %7s %10s %9s %6s %8s", w, "kernel", "calls", "total ms", "ms/run",
            "share", "GFLOP/s");
    if (bound)
        fprintf(out, " %10s %14s", "bound ms", "measured/bound");
    fputc('\n', out);
    double bound_ns = 0;
    for (int k = 0; k < p->n_kernels; k++) {
        const kiln_prof_kernel *kk = &p->kernels[k];
        fprintf(out, "  %-*s %7ld %10.3f %9.4f %5.1f%% %8.2f", w, kk->name, kk->calls,
                kk->ns * 1e-6, kk->ns / runs * 1e-6,
                p->forward_ns > 0 ? 100.0 * kk->ns / p->forward_ns : 0.0,
                kk->ns > 0 ? kk->flops / kk->ns : 0.0);
        if (bound)
            fprintf(out, " %10.4f %14.2f", kk->bound_ns / runs * 1e-6,
                    kk->bound_ns > 0 ? kk->ns / kk->bound_ns : 0.0);
        fputc('\n', out);
        bound_ns += kk->bound_ns;
    }
    double flops = 0;
    for (int k = 0; k < p->n_kernels; k++)
        flops += p->kernels[k].flops;
    fprintf(out, "  %-*s %7s %10.3f %9.4f %5.1f%% %8.2f", w, "forward", "",
            p->forward_ns * 1e-6, p->forward_ns / runs * 1e-6, 100.0,
            p->forward_ns > 0 ? flops / p->forward_ns : 0.0);
    if (bound)
        fprintf(out, " %10.4f %14.2f", bound_ns / runs * 1e-6,
                bound_ns > 0 ? p->forward_ns / bound_ns : 0.0);
    fputc('\n', out);
    if (bound)
        fprintf(out, "  bound: max(FLOPs / peak, bytes / bandwidth) per kernel at each run's "
                     "dims, with %.1f GFLOP/s and %.1f GB/s for %d thread%s (%s)\n",
                for_threads(p->peak_gflops_1, p->peak_gflops_n, p->threads_n, p->threads),
                for_threads(p->gbs_1, p->gbs_n, p->threads_n, p->threads), p->threads,
                p->threads == 1 ? "" : "s", p->machine ? p->machine : "given to kiln build");
    else
        fprintf(out, "  no roofline bound: the build knew no peak or bandwidth (run 'kiln "
                     "calibrate' before 'kiln build --profile', or pass --peak-gflops and "
                     "--bandwidth-gbs)\n");
}
