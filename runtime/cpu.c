/* cpu.c: does this CPU have the vector instructions the model was generated for?
 *
 * kiln_main calls kiln_cpu_check(model->isa) first, so a binary built with --isa avx512 on a
 * machine without AVX-512 stops with "built for avx512 but this CPU lacks avx512f" instead of
 * dying of SIGILL in the first kernel.  This file, like the whole runtime, is compiled without
 * ISA flags, so it runs anywhere; the feature tests are the compiler's
 * __builtin_cpu_supports (CPUID, plus the OS's XSAVE support for the wide registers).
 */
#include "kiln_rt.h"

#include <stdlib.h>

// The features each ISA needs, in the order they are reported.
static const char *const avx512_features[] = {"avx512f", "avx512vl", "avx2", "fma", NULL};
static const char *const avx2_features[] = {"avx2", "fma", NULL};

// $KILN_TEST_CPU_LACKS lists features to treat as missing (tests of the message on a CPU
// that has them all).
static bool faked_missing(const char *feature) {
    const char *env = getenv("KILN_TEST_CPU_LACKS");
    size_t n = strlen(feature);
    for (const char *p = env; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, feature, n) == 0)
            return true;
        p = comma ? comma + 1 : p + len;
    }
    return false;
}

static bool has(const char *feature) {
    if (faked_missing(feature))
        return false;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(feature, "avx512f") == 0)
        return __builtin_cpu_supports("avx512f");
    if (strcmp(feature, "avx512vl") == 0)
        return __builtin_cpu_supports("avx512vl");
    if (strcmp(feature, "avx2") == 0)
        return __builtin_cpu_supports("avx2");
    if (strcmp(feature, "fma") == 0)
        return __builtin_cpu_supports("fma");
#endif
    return false;
}

int kiln_cpu_check(const char *isa, char *err, size_t errlen) {
    const char *const *need = NULL;
    if (!isa || strcmp(isa, "scalar") == 0)
        return 0;
    if (strcmp(isa, "neon") == 0) {
#if defined(__aarch64__)
        return 0;       // Advanced SIMD is part of every AArch64 CPU
#else
        snprintf(err, errlen, "built for neon (AArch64) but this CPU is not AArch64");
        return -1;
#endif
    }
    if (strcmp(isa, "avx512") == 0)
        need = avx512_features;
    else if (strcmp(isa, "avx2") == 0)
        need = avx2_features;
    else {
        snprintf(err, errlen, "built for an unknown ISA '%s'", isa);
        return -1;
    }
    for (int i = 0; need[i]; i++)
        if (!has(need[i])) {
            snprintf(err, errlen, "built for %s but this CPU lacks %s", isa, need[i]);
            return -1;
        }
    return 0;
}
