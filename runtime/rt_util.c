/* rt_util.c: small helpers every part of the runtime and the generated forward() use.
 *
 * dtype names and sizes, kiln_fail() for forward()'s error messages, the monotonic clock
 * used by --repeat timing, and the 64-byte aligned allocator (huge pages from 2 MiB) for
 * the arena, outputs, states and aligned copies of weights.  Nothing here prints or exits.
 */
#include "kiln_rt.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define HUGE_BYTES ((size_t)2 << 20)   // a huge page on x86-64 and (4 KiB base) AArch64

// Name of a dtype as the spec writes it ("f32", "i32", "i64"); "?" for a value outside
// the enum (a corrupt description), so messages never print NULL.
const char *kiln_dtype_name(kiln_dtype t) {
    switch (t) {
    case KILN_F32: return "f32";
    case KILN_I32: return "i32";
    case KILN_I64: return "i64";
    }
    return "?";
}

// Bytes per element of t; 0 for a value outside the enum.
size_t kiln_dtype_size(kiln_dtype t) {
    switch (t) {
    case KILN_F32: return 4;
    case KILN_I32: return 4;
    case KILN_I64: return 8;
    }
    return 0;
}

// Format a message into r->err (truncated to fit) and return 1, so a kernel can write
// `return kiln_fail(r, "gather 'wte': id %d at %d is outside [0, %d)", id, i, n);`.
int kiln_fail(kiln_run *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return 1;
}

// Milliseconds on the monotonic clock, from an arbitrary origin; only differences mean
// anything.
double kiln_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

// Allocate `bytes` (rounded up to a multiple of 64; 0 gives one 64-byte block) at a 64-byte
// aligned address, zero it, and so touch every page once: the first forward() then pays no
// page faults and the timing of --repeat is not skewed.  From 2 MiB on, whole huge pages,
// aligned and advised (MADV_HUGEPAGE; a hint, ignored where they are off): a kernel that
// writes rows far apart (GPT-2's logits, 25.7 MB at seq 128: each row of a tile on its own
// 4 KiB page) otherwise misses the TLB on most of its stores.  GPT-2 small prefill 128, Zen 4,
// 2 threads, 7 alternating pairs: the LM head 44.7-47.2 -> 44.3-45.0 ms.  Returns NULL when
// out of memory.  Free with kiln_aligned_free.
void *kiln_aligned_alloc(size_t bytes) {
    size_t n = bytes == 0 ? 64 : bytes;
    if (n > SIZE_MAX - 63)
        return NULL;
    n = (n + 63) & ~(size_t)63;
    void *p = NULL;
    if (n >= HUGE_BYTES)
        p = kiln_huge_alloc(n);
    else if (posix_memalign(&p, 64, n) != 0)
        p = NULL;
    if (p)
        memset(p, 0, n);
    return p;
}

// See kiln_rt.h.  Its pages are touched first by whoever writes it (prepare()'s packing
// threads, in parallel; kiln_aligned_alloc's memset): on virtual machines, where a fresh
// page costs microseconds, huge pages take half the time of small ones.
void *kiln_huge_alloc(size_t bytes) {
    if (bytes == 0 || bytes > SIZE_MAX - HUGE_BYTES)
        return NULL;
    size_t n = (bytes + HUGE_BYTES - 1) / HUGE_BYTES * HUGE_BYTES;
    void *p = NULL;
    if (posix_memalign(&p, HUGE_BYTES, n) != 0)
        return NULL;
    madvise(p, n, MADV_HUGEPAGE);   // a hint; ignored where huge pages are off
    return p;
}

// Free a block from kiln_aligned_alloc; NULL is a no-op.
void kiln_aligned_free(void *p) {
    free(p);
}

// See kiln_rt.h.
int kiln_seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
