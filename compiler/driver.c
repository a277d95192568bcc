/* compiler/driver.c: the kiln commands: build, emit, inspect, interp.
 *
 * The pipeline reads top to bottom in compile():
 *   spec_load (YAML -> IR, shapes inferred) -> ir_run_pipeline (passes, verified after each)
 *   -> cg_emit_model (C text) -> the system C compiler (build only).
 * Outputs are written to a temporary name beside the target and renamed on success, so a
 * failed command leaves nothing half-written.
 */
#include "driver.h"

#include "cg.h"
#include "kiln_rt.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------------------------------
 * The target: --isa, and this machine's vector ISA and caches for --isa auto
 */

// The best ISA this CPU runs, as the runtime's kiln_cpu_check will test it.
static Isa host_isa(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return ISA_AVX2;
    return ISA_SCALAR;
#elif defined(__aarch64__)
    return ISA_NEON;
#else
    return ISA_SCALAR;
#endif
}

// "48K", "1024K", "32M" (sysfs cache sizes) in bytes; 0 if unreadable.
static int64_t read_size(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long long v = 0;
    char unit = 0;
    int n = fscanf(f, "%lld%c", &v, &unit);
    fclose(f);
    if (n < 1 || v <= 0)
        return 0;
    return unit == 'K' ? v * 1024 : unit == 'M' ? v * 1024 * 1024 : v;
}

// This machine's data caches: sysfs (cpu0's cache/index*), else CPUID on x86 (some virtual
// machines have no sysfs cache entries), else zero (the tile pass's defaults).
static void host_caches(Target *t)
{
    for (int i = 0; i < 8; i++) {
        char path[128], type[32] = "";
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        int ok = fscanf(f, "%31s", type);
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        int64_t level = read_size(path);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        int64_t size = read_size(path);
        if (ok != 1 || strcmp(type, "Instruction") == 0)
            continue;
        if (level == 1)
            t->l1d = size;
        else if (level == 2)
            t->l2 = size;
        else if (level == 3)
            t->l3 = size;
    }
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!t->l1d && __get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000006) {
        // AMD's legacy leaves: L1d KiB in 0x80000005 ECX[31:24], L2 KiB in 0x80000006
        // ECX[31:16] (zero on Intel, which the leaf-4 walk below covers).
        __get_cpuid(0x80000005, &a, &b, &c, &d);
        t->l1d = (int64_t)(c >> 24) * 1024;
        __get_cpuid(0x80000006, &a, &b, &c, &d);
        t->l2 = (int64_t)(c >> 16) * 1024;
    }
    if (!t->l1d && __get_cpuid_max(0, NULL) >= 4) {
        for (unsigned i = 0; i < 8; i++) {      // Intel's deterministic cache parameters
            __cpuid_count(4, i, a, b, c, d);
            unsigned type = a & 31, level = (a >> 5) & 7;
            if (type == 0)
                break;
            int64_t size = (int64_t)(((b >> 22) & 1023) + 1) * (((b >> 12) & 1023) + 1) *
                           ((b & 4095) + 1) * ((int64_t)c + 1);
            if (type != 2 && level == 1)
                t->l1d = size;
            else if (type != 2 && level == 2)
                t->l2 = size;
            else if (type != 2 && level == 3)
                t->l3 = size;
        }
    }
#endif
    t->host = t->l1d > 0 || t->l2 > 0;
}

// --isa auto (or none): the host's ISA and caches.  A named ISA: its default caches, so the
// generated C is the same on every machine (golden tests, cross-compiling).
static Target target_of(const Options *opt)
{
    Target t;
    memset(&t, 0, sizeof t);
    if (opt->isa && strcmp(opt->isa, "auto") != 0) {
        if (!isa_parse(opt->isa, &t.isa))
            KILN_BUG("--isa '%s' passed main.c's check", opt->isa);
        return t;
    }
    t.isa = host_isa();
    host_caches(&t);
    return t;
}

/* ---------------------------------------------------------------------------------------
 * Shared steps
 */

// Load the spec and run the pass pipeline (or only parse, for the interpreter).
// Returns NULL after errors were reported.
static Graph *compile(const Options *opt, bool run_passes, FILE *dump, const char *dump_after,
                      bool dot)
{
    Diag d;
    diag_init(&d);
    Graph *g = spec_load(opt->spec_path, opt->defs, opt->n_defs, &d);
    if (!g || diag_count(&d)) {
        graph_free(g);
        return NULL;
    }
    if (!run_passes) {
        ir_verify(g, NULL);
        return g;
    }
    g->target = target_of(opt);
    PipelineOptions po = {
        .disabled = opt->disabled,
        .n_disabled = opt->n_disabled,
        .dump_after = dump_after,
        .dump = dump,
        .dump_dot = dot,
        .time_passes = opt->time_passes,
    };
    if (!ir_run_pipeline(g, &po, &d)) {
        graph_free(g);
        return NULL;
    }
    return g;
}

// Check every --disable-pass name against the pipeline.
static bool check_pass_names(const Options *opt)
{
    bool ok = true;
    for (int i = 0; i < opt->n_disabled; i++) {
        const char *name = opt->disabled[i];
        int found = -1;
        for (int k = 0; k < ir_n_passes; k++)
            if (strcmp(ir_passes[k].name, name) == 0)
                found = k;
        if (found < 0) {
            fprintf(stderr, "kiln: error: --disable-pass: no pass named '%s' (passes:", name);
            for (int k = 0; k < ir_n_passes; k++)
                fprintf(stderr, " %s", ir_passes[k].name);
            fprintf(stderr, ")\n");
            ok = false;
        } else if (ir_passes[found].required) {
            fprintf(stderr, "kiln: error: --disable-pass: pass '%s' is required\n", name);
            ok = false;
        }
    }
    return ok;
}

// A temporary path beside `path`: "<dir>/.<base>.tmp.XXXXXX", created. Returns fd or -1.
static int make_temp_beside(const char *path, char *tmp, size_t n)
{
    char copy1[PATH_MAX], copy2[PATH_MAX];
    snprintf(copy1, sizeof copy1, "%s", path);
    snprintf(copy2, sizeof copy2, "%s", path);
    snprintf(tmp, n, "%s/.%s.tmp.XXXXXX", dirname(copy1), basename(copy2));
    int fd = mkstemp(tmp);
    if (fd >= 0) {   // mkstemp makes 0600; give the file the mode a plain creat() would
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
    }
    return fd;
}

// Write the C API header for g to a temporary beside `path`; its name goes to tmp.
static bool write_header_tmp(const Graph *g, const char *path, char *tmp, size_t n)
{
    int fd = make_temp_beside(path, tmp, n);
    if (fd < 0) {
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", path, strerror(errno));
        return false;
    }
    FILE *f = fdopen(fd, "w");
    bool ok = f && cg_emit_api_header(g, f);
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

// --profile: the machine figures the binary compares its times with (report.c), if any.
static const CgProfile *profile_of(const Options *opt, CgProfile *p)
{
    static Machine m;       // p->source points into it
    char why[4400];
    report_machine(opt, &m, why, sizeof why);
    memset(p, 0, sizeof *p);
    if (!m.known) {
        fprintf(stderr, "kiln: note: --profile: the binary will print times without a roofline "
                        "bound: %s\n", why);
        return p;
    }
    *p = (CgProfile){m.peak_gflops_1, m.peak_gflops, m.bandwidth_gbs_1, m.bandwidth_gbs,
                     m.threads, m.source};
    return p;
}

// Write the generated C for g to `path` atomically ("-" = stdout), and with a header path,
// the C API header too (both or neither).  kernel_of (may be NULL): see CgOptions.
static bool write_c(const Graph *g, const Options *opt, const char *path, const char *header,
                    const char **kernel_of)
{
    CgProfile prof;
    CgOptions co = {.command = opt->command_line, .isa = NULL,    // g->target.isa
                    .profile = opt->profile ? profile_of(opt, &prof) : NULL,
                    .kernel_of = kernel_of, .dump = opt->dump};
    Diag d;
    diag_init(&d);
    if (strcmp(path, "-") == 0)
        return cg_emit_model(g, &co, stdout, &d) && fflush(stdout) == 0;
    char tmp[PATH_MAX];
    int fd = make_temp_beside(path, tmp, sizeof tmp);
    if (fd < 0) {
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", path, strerror(errno));
        return false;
    }
    FILE *f = fdopen(fd, "w");
    bool ok = f && cg_emit_model(g, &co, f, &d);
    if (f && fclose(f) != 0)
        ok = false;
    char htmp[PATH_MAX];
    bool have_h = ok && header && write_header_tmp(g, header, htmp, sizeof htmp);
    if (header && !have_h)
        ok = false;
    if (ok && rename(tmp, path) != 0) {
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", path, strerror(errno));
        ok = false;
    }
    if (ok && have_h && rename(htmp, header) != 0) {
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", header, strerror(errno));
        unlink(path);
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        if (have_h)
            unlink(htmp);
    }
    return ok;
}

// --report / --report-json: an array for the kernel names the code generator fills
// (CgOptions.kernel_of); NULL without them.
static const char **want_report(const Graph *g, const Options *opt)
{
    if (!opt->report && !opt->report_json)
        return NULL;
    return xcalloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof(const char *));
}

static void free_kernel_of(const Graph *g, const char **kernel_of)
{
    for (int i = 0; kernel_of && i < g->n_nodes; i++)
        free((char *)kernel_of[i]);
    free(kernel_of);
}

/* ---------------------------------------------------------------------------------------
 * build: spec -> C -> native binary
 */

// Find the runtime (header folder and static library) next to the kiln executable:
// the build tree (build/kiln, build/include/kiln, build/lib/kiln) or an installed prefix
// (bin/kiln, include/kiln, lib/kiln).  KILN_RUNTIME_DIR overrides with a folder holding both.
static bool find_runtime(char *inc, char *lib, size_t n)
{
    const char *env = getenv("KILN_RUNTIME_DIR");
    struct stat st;
    if (env && *env) {
        snprintf(inc, n, "%s", env);
        snprintf(lib, n, "%s/libkiln_rt.a", env);
        return stat(lib, &st) == 0;
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return false;
    exe[len] = 0;
    char *dir = dirname(exe);
    const char *prefixes[] = {"", "/.."};
    for (int i = 0; i < 2; i++) {
        char h[PATH_MAX + 64];
        snprintf(h, sizeof h, "%s%s/include/kiln/kiln_rt.h", dir, prefixes[i]);
        snprintf(lib, n, "%s%s/lib/kiln/libkiln_rt.a", dir, prefixes[i]);
        if (stat(h, &st) == 0 && stat(lib, &st) == 0) {
            snprintf(inc, n, "%s%s/include/kiln", dir, prefixes[i]);
            return true;
        }
    }
    return false;
}

// Run argv, wait, return its exit status (or -1 if it could not start).
static int run_command(char **argv, bool verbose)
{
    if (verbose) {
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
        fputc('\n', stderr);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "kiln: error: cannot run '%s': %s\n", argv[0], strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int kiln_cmd_build(const Options *opt)
{
    if (!check_pass_names(opt))
        return 2;
    char inc[PATH_MAX], lib[PATH_MAX];
    if (!find_runtime(inc, lib, sizeof inc)) {
        fprintf(stderr, "kiln: error: cannot find the kiln runtime (kiln_rt.h and libkiln_rt.a) "
                        "next to the kiln executable; set KILN_RUNTIME_DIR\n");
        return 1;
    }
    Graph *g = compile(opt, true, NULL, NULL, false);
    if (!g)
        return 1;
    const char *out = opt->out_path ? opt->out_path : g->model_name;
#if !defined(__aarch64__)
    if (g->target.isa == ISA_NEON) {
        fprintf(stderr, "kiln: error: --isa neon: this machine cannot link an AArch64 binary; "
                        "write the C with 'kiln emit --isa neon' and compile it with an AArch64 "
                        "toolchain\n");
        graph_free(g);
        return 1;
    }
#endif

    // The C file goes beside the output, or beside --emit-c's path when given, so that a
    // place that cannot be written fails before the compiler runs; it is removed afterwards
    // unless --emit-c keeps it.
    char c_tmp[PATH_MAX + 8], bin_tmp[PATH_MAX], c_keep_tmp[PATH_MAX];
    int fd = make_temp_beside(out, bin_tmp, sizeof bin_tmp);
    if (fd < 0) {
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", out, strerror(errno));
        graph_free(g);
        return 1;
    }
    close(fd);
    c_keep_tmp[0] = 0;
    if (opt->emit_c) {
        if ((fd = make_temp_beside(opt->emit_c, c_keep_tmp, sizeof c_keep_tmp)) < 0) {
            fprintf(stderr, "kiln: error: cannot write '%s': %s\n", opt->emit_c, strerror(errno));
            unlink(bin_tmp);
            graph_free(g);
            return 1;
        }
        close(fd);
        snprintf(c_tmp, sizeof c_tmp, "%s.c", c_keep_tmp);
    } else {
        snprintf(c_tmp, sizeof c_tmp, "%s.c", bin_tmp);
    }
    int status = 1;
    const char **kernel_of = want_report(g, opt);
    if (kernel_of && !report_dims_ok(g, opt))
        status = 2;
    else if (write_c(g, opt, c_tmp, NULL, kernel_of)) {
        char inc_flag[PATH_MAX + 4];
        snprintf(inc_flag, sizeof inc_flag, "-I%s", inc);
        char *argv[64];
        int n = 0;
        argv[n++] = (char *)(opt->cc ? opt->cc : "clang");
        argv[n++] = "-std=gnu11";
        argv[n++] = "-O3";
        // The ISA's own flags and nothing wider, so the binary runs on every CPU that has it
        // (the runtime checks that first); scalar is the baseline of the architecture.
        if (g->target.isa == ISA_AVX512) {
            argv[n++] = "-mavx512f";
            argv[n++] = "-mavx512vl";
            argv[n++] = "-mfma";
            argv[n++] = "-mavx2";
        } else if (g->target.isa == ISA_AVX2) {
            argv[n++] = "-mavx2";
            argv[n++] = "-mfma";
        }
        argv[n++] = "-fno-math-errno";
        argv[n++] = inc_flag;
        // --cflags / KILN_CFLAGS: extra words for the compiler (space-separated)
        char *extra = xstrdup(opt->cflags ? opt->cflags : (getenv("KILN_CFLAGS") ? getenv("KILN_CFLAGS") : ""));
        for (char *w = strtok(extra, " \t"); w && n < 50; w = strtok(NULL, " \t"))
            argv[n++] = w;
        argv[n++] = c_tmp;
        argv[n++] = lib;
        argv[n++] = "-lcjson";
        argv[n++] = "-lpcre2-8";   // the tokenizers of the text front ends (runtime/text.c)
        argv[n++] = "-lutf8proc";
        argv[n++] = "-lm";
        argv[n++] = "-pthread";
        argv[n++] = "-o";
        argv[n++] = bin_tmp;
        argv[n] = NULL;
        int rc = run_command(argv, opt->verbose);
        free(extra);
        if (rc < 0) {
            // run_command said why the compiler could not start; not a kiln bug.
        } else if (rc != 0) {
            fprintf(stderr, "kiln: error: the C compiler failed (exit %d) on the generated code; "
                            "this is a bug in kiln (keep the C with --emit-c FILE to inspect)\n", rc);
        } else if (opt->emit_c && rename(c_tmp, opt->emit_c) != 0) {
            // The C first: a failure here leaves neither file written.
            fprintf(stderr, "kiln: error: cannot write '%s': %s\n", opt->emit_c, strerror(errno));
        } else if (rename(bin_tmp, out) != 0) {
            fprintf(stderr, "kiln: error: cannot write '%s': %s\n", out, strerror(errno));
            if (opt->emit_c)
                unlink(opt->emit_c);
        } else {
            status = 0;
            fprintf(stderr, "kiln: built %s from %s (arena %.1f KiB in %d buffers)%s\n", out,
                    opt->spec_path, (double)g->arena_bytes / 1024.0, g->n_buffers,
                    opt->profile ? ", timing every kernel (--profile)" : "");
            if (kernel_of)
                status = report_write(g, kernel_of, opt, stdout);
        }
    }
    free_kernel_of(g, kernel_of);
    unlink(c_tmp);
    unlink(bin_tmp);
    if (c_keep_tmp[0])
        unlink(c_keep_tmp);
    graph_free(g);
    return status;
}

/* ---------------------------------------------------------------------------------------
 * emit and inspect
 */

int kiln_cmd_emit(const Options *opt)
{
    if (!check_pass_names(opt))
        return 2;
    Graph *g = compile(opt, true, NULL, NULL, false);
    if (!g)
        return 1;
    char def[PATH_MAX], header[PATH_MAX + 2];
    snprintf(def, sizeof def, "%s.c", g->model_name);
    const char *path = opt->out_path ? opt->out_path : def;
    // The C API header beside the C file: NAME.c -> NAME.h (any other name gets ".h" added).
    size_t len = strlen(path);
    snprintf(header, sizeof header, "%.*s.h", (int)(len > 2 && !strcmp(path + len - 2, ".c") ?
                                                       len - 2 : len), path);
    const char **kernel_of = want_report(g, opt);
    int status = 1;
    if (kernel_of && !report_dims_ok(g, opt))
        status = 2;
    else if (write_c(g, opt, path, strcmp(path, "-") ? header : NULL, kernel_of))
        status = kernel_of ? report_write(g, kernel_of, opt, strcmp(path, "-") ? stdout : stderr)
                           : 0;
    free_kernel_of(g, kernel_of);
    graph_free(g);
    return status;
}

int kiln_cmd_inspect(const Options *opt)
{
    if (!check_pass_names(opt))
        return 2;
    if (opt->explain) {     // the fusion candidates of the whole pipeline (ir/explain.c)
        Graph *g = compile(opt, true, NULL, NULL, false);
        if (!g)
            return 1;
        ir_print_candidates(g, stdout);
        graph_free(g);
        return 0;
    }
    bool graph = opt->dot || opt->svg;
    // Text: after parsing and every pass.  A graph: one picture, of the final IR by default.
    const char *after = opt->after ? opt->after : graph ? ir_passes[ir_n_passes - 1].name : "all";
    if (strcmp(after, "all") != 0 && strcmp(after, "parse") != 0 && !pipeline_has_pass(after)) {
        fprintf(stderr, "kiln: error: --after: no pass named '%s' (use parse, all, or one of:",
                after);
        for (int k = 0; k < ir_n_passes; k++)
            fprintf(stderr, " %s", ir_passes[k].name);
        fprintf(stderr, ")\n");
        return 2;
    }
    if (graph && strcmp(after, "all") == 0) {
        fprintf(stderr, "kiln: error: --dot/--svg draw one graph: --after wants one pass\n");
        return 2;
    }
    if (!opt->svg) {
        Graph *g = compile(opt, true, stdout, after, opt->dot);
        if (!g)
            return 1;
        graph_free(g);
        return 0;
    }
    // --svg FILE: DOT into a temporary file, Graphviz renders it beside FILE, then rename.
    char dot_tmp[PATH_MAX], svg_tmp[PATH_MAX];
    int fd = make_temp_beside(opt->svg, svg_tmp, sizeof svg_tmp);
    if (fd < 0) {
        fprintf(stderr, "kiln: error: cannot write '%s': %s\n", opt->svg, strerror(errno));
        return 1;
    }
    close(fd);
    snprintf(dot_tmp, sizeof dot_tmp, "%s", svg_tmp);
    strncat(dot_tmp, ".dot", sizeof dot_tmp - strlen(dot_tmp) - 1);
    FILE *f = fopen(dot_tmp, "w");
    Graph *g = f ? compile(opt, true, f, after, true) : NULL;
    int status = 1;
    if (f && fclose(f) == 0 && g) {
        char *argv[] = {"dot", "-Tsvg", "-o", svg_tmp, dot_tmp, NULL};
        int rc = run_command(argv, opt->verbose);
        if (rc < 0)
            fprintf(stderr, "kiln: error: --svg needs Graphviz's 'dot' (Debian: apt-get install "
                            "graphviz); --dot prints the DOT text instead\n");
        else if (rc != 0)
            fprintf(stderr, "kiln: error: dot failed (exit %d)\n", rc);
        else if (rename(svg_tmp, opt->svg) != 0)
            fprintf(stderr, "kiln: error: cannot write '%s': %s\n", opt->svg, strerror(errno));
        else
            status = 0;
    }
    graph_free(g);
    unlink(dot_tmp);
    unlink(svg_tmp);
    return status;
}

/* ---------------------------------------------------------------------------------------
 * interp: run the unoptimized graph with the reference interpreter
 */

typedef struct {
    kiln_safetensors st;
    const Graph *g;
    const char *path;
    bool failed;
} WeightCtx;

static const void *lookup_weight(void *ctx, const char *tensor, const Type *type)
{
    WeightCtx *w = ctx;
    const kiln_st_tensor *t = kiln_st_find(&w->st, tensor);
    for (int i = 0; !t && i < w->g->n_weight_prefixes; i++) {
        char name[1024];
        snprintf(name, sizeof name, "%s%s", w->g->weight_prefixes[i], tensor);
        t = kiln_st_find(&w->st, name);
    }
    if (!t) {
        fprintf(stderr, "kiln: error: weight '%s' is not in %s\n", tensor, w->path);
        return NULL;
    }
    // The same checks and messages as the model binary's (kiln_bind_weights).
    char as[300] = "";
    if (strcmp(t->name, tensor) != 0)
        snprintf(as, sizeof as, " (found as '%s')", t->name);
    if (!t->dtype_str || strcmp(t->dtype_str, "F32") != 0) {
        fprintf(stderr, "kiln: error: weight '%s'%s: dtype is %s in the file, the spec wants f32\n",
                tensor, as, t->dtype_str ? t->dtype_str : "?");
        return NULL;
    }
    bool ok = t->rank == type->rank;
    for (int k = 0; ok && k < type->rank; k++)
        ok = t->dims[k] == type->dim[k].size;
    if (!ok) {
        char want[256], have[256];
        int n = snprintf(have, sizeof have, "[");
        for (int k = 0; k < t->rank && n < (int)sizeof have; k++)
            n += snprintf(have + n, sizeof have - (size_t)n, "%s%lld", k ? ", " : "",
                          (long long)t->dims[k]);
        if (n < (int)sizeof have)
            snprintf(have + n, sizeof have - (size_t)n, "]");
        fprintf(stderr, "kiln: error: weight '%s'%s: shape in the file is %s, the spec wants %s\n",
                tensor, as, have, shape_str(w->g, type, want, sizeof want));
        return NULL;
    }
    // Misaligned in the mapping (a header length that is not a multiple of 4): an aligned
    // copy, kept in st->aligned and freed by kiln_st_close, as the model binary does.
    if (((uintptr_t)t->data & 3) != 0) {
        size_t idx = (size_t)(t - w->st.tensors);
        if (!w->st.aligned[idx]) {
            void *copy = kiln_aligned_alloc(t->nbytes);
            if (!copy) {
                fprintf(stderr, "kiln: error: weight '%s': out of memory for an aligned copy\n",
                        tensor);
                return NULL;
            }
            memcpy(copy, t->data, t->nbytes);
            w->st.aligned[idx] = copy;
        }
        return w->st.aligned[idx];
    }
    return t->data;
}

// Split "name=path"; returns false on a malformed argument.
static bool split_assign(const char *arg, char *name, size_t n, const char **path)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1] || (size_t)(eq - arg) >= n)
        return false;
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = 0;
    *path = eq + 1;
    return true;
}

int kiln_cmd_interp(const Options *opt)
{
    if (!opt->weights) {
        fprintf(stderr, "kiln: error: interp needs --weights FILE\n");
        return 2;
    }
    Graph *g = compile(opt, false, NULL, NULL, false);
    if (!g)
        return 1;
    int status = 1;
    char err[1024];
    WeightCtx wc = {.g = g, .path = opt->weights};
    Tensor *ins = xcalloc((size_t)g->n_inputs + 1, sizeof *ins);
    Tensor *outs = xcalloc((size_t)g->n_outputs + 1, sizeof *outs);
    char **tmp = NULL;      // [n_io_outputs] temporaries of the outputs being written
    bool st_open = false;
    if (kiln_st_open(&wc.st, opt->weights, err, sizeof err) != 0) {
        fprintf(stderr, "kiln: error: %s\n", err);
        goto done;
    }
    st_open = true;
    // Inputs: every declared one exactly once.
    for (int i = 0; i < opt->n_io_inputs; i++) {
        char name[256];
        const char *path;
        if (!split_assign(opt->io_inputs[i], name, sizeof name, &path)) {
            fprintf(stderr, "kiln: error: --input wants NAME=FILE.npy, found '%s'\n", opt->io_inputs[i]);
            status = 2;
            goto done;
        }
        int k = -1;
        for (int j = 0; j < g->n_inputs; j++)
            if (strcmp(g->nodes[g->inputs[j]].name, name) == 0)
                k = j;
        if (k < 0) {
            fprintf(stderr, "kiln: error: the model has no input '%s'\n", name);
            status = 2;
            goto done;
        }
        if (ins[k].data) {
            fprintf(stderr, "kiln: error: input '%s' given twice\n", name);
            status = 2;
            goto done;
        }
        kiln_npy a;
        if (kiln_npy_read(path, &a, err, sizeof err) != 0) {
            fprintf(stderr, "kiln: error: %s\n", err);
            goto done;
        }
        const Type *want = &g->nodes[g->inputs[k]].type;
        ins[k].rank = a.rank;
        memcpy(ins[k].dim, a.dims, sizeof ins[k].dim);
        ins[k].data = a.data;
        ins[k].dtype = a.dtype == KILN_F32 ? DT_F32 : a.dtype == KILN_I32 ? DT_I32 : DT_I64;
        if (want->dtype == DT_I32 && a.dtype == KILN_I64) {   // narrow, checked
            int64_t numel = tensor_numel(&ins[k]);
            const int64_t *src = a.data;
            int32_t *dst = xmalloc((size_t)(numel ? numel : 1) * sizeof *dst);
            for (int64_t e = 0; e < numel; e++) {
                if (src[e] < INT32_MIN || src[e] > INT32_MAX) {
                    fprintf(stderr, "kiln: error: input '%s': value %lld at index %lld does not fit "
                                    "int32\n", name, (long long)src[e], (long long)e);
                    free(dst);
                    goto done;
                }
                dst[e] = (int32_t)src[e];
            }
            free(a.data);
            ins[k].data = dst;
            ins[k].dtype = DT_I32;
        }
        if (ins[k].dtype != want->dtype) {
            fprintf(stderr, "kiln: error: input '%s' is %s in %s, the spec wants %s\n", name,
                    dtype_name(ins[k].dtype), path, dtype_name(want->dtype));
            goto done;
        }
        if (want->dtype == DT_F32) {   // as the model binary: f32 inputs hold finite values
            const float *x = ins[k].data;
            for (int64_t e = 0, numel = tensor_numel(&ins[k]); e < numel; e++)
                if (!isfinite(x[e])) {
                    fprintf(stderr, "kiln: error: input '%s': %s has a non-finite value (%s) at "
                                    "flat index %lld\n", name, path,
                            isnan(x[e]) ? "nan" : x[e] > 0 ? "inf" : "-inf", (long long)e);
                    goto done;
                }
        }
        const Node *in_node = &g->nodes[g->inputs[k]];
        if (in_node->attr.input.has_range && want->dtype == DT_I32) {   // as the model binary
            const int32_t *x = ins[k].data;
            for (int64_t e = 0, numel = tensor_numel(&ins[k]); e < numel; e++)
                if (x[e] < in_node->attr.input.lo || x[e] > in_node->attr.input.hi) {
                    fprintf(stderr, "kiln: error: input '%s': %s has the value %d at flat index "
                                    "%lld, outside the spec's range [%lld, %lld]\n", name, path,
                            x[e], (long long)e, (long long)in_node->attr.input.lo,
                            (long long)in_node->attr.input.hi);
                    goto done;
                }
        }
    }
    for (int j = 0; j < g->n_inputs; j++)
        if (!ins[j].data) {
            fprintf(stderr, "kiln: error: missing --input %s=FILE.npy\n", g->nodes[g->inputs[j]].name);
            status = 2;
            goto done;
        }
    for (int i = 0; i < opt->n_io_outputs; i++) {
        char name[256];
        const char *path;
        bool known = false;
        if (split_assign(opt->io_outputs[i], name, sizeof name, &path))
            for (int j = 0; j < g->n_outputs; j++)
                known |= strcmp(g->outputs[j].name, name) == 0;
        if (!known) {
            fprintf(stderr, "kiln: error: --output '%s' names no model output\n", opt->io_outputs[i]);
            status = 2;
            goto done;
        }
    }
    InterpEnv env = {.inputs = ins, .weight = lookup_weight, .weight_ctx = &wc};
    // --dump-dir: every value the interpreter computes, as a --dump build writes them (dump.c)
    InterpDump *dump = NULL;
    if (opt->dump_dir && !(dump = interp_dump_open(g, opt->dump_dir)))
        goto done;
    bool ran = ir_interpret_each(g, &env, outs, stderr, dump ? interp_dump_value : NULL, dump);
    if (!interp_dump_close(dump) || !ran)
        goto done;
    // Outputs all or nothing, as the model binary writes them: each to a temporary beside
    // its path, then all renamed into place; on a failure the temporaries are removed.
    status = 0;
    tmp = xcalloc((size_t)opt->n_io_outputs + 1, sizeof *tmp);
    for (int i = 0; i < opt->n_io_outputs && status == 0; i++) {
        char name[256];
        const char *path;
        struct stat sb;
        split_assign(opt->io_outputs[i], name, sizeof name, &path);
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "kiln: error: output '%s': %s: is a directory\n", name, path);
            status = 1;
        }
    }
    for (int i = 0; i < opt->n_io_outputs && status == 0; i++) {
        char name[256];
        const char *path;
        split_assign(opt->io_outputs[i], name, sizeof name, &path);
        for (int j = 0; j < g->n_outputs && status == 0; j++) {
            if (strcmp(g->outputs[j].name, name) != 0 || tmp[i])
                continue;
            const Tensor *t = &outs[j];
            kiln_dtype dt = t->dtype == DT_F32 ? KILN_F32 : t->dtype == DT_I32 ? KILN_I32 : KILN_I64;
            if (kiln_npy_write_tmp(path, dt, t->rank, t->dim, t->data, &tmp[i], err,
                                   sizeof err) != 0) {
                fprintf(stderr, "kiln: error: output '%s': %s\n", name, err);
                status = 1;
            }
        }
    }
    for (int i = 0; i < opt->n_io_outputs && status == 0; i++) {
        char name[256];
        const char *path;
        split_assign(opt->io_outputs[i], name, sizeof name, &path);
        if (tmp[i] && rename(tmp[i], path) != 0) {
            fprintf(stderr, "kiln: error: output '%s': %s: cannot rename the temporary file "
                            "into place: %s\n", name, path, strerror(errno));
            status = 1;
        } else {
            free(tmp[i]);
            tmp[i] = NULL;
        }
    }
    if (opt->n_io_outputs == 0)
        for (int j = 0; j < g->n_outputs; j++) {
            const Tensor *t = &outs[j];
            printf("%s: %s [", g->outputs[j].name, dtype_name(t->dtype));
            for (int k = 0; k < t->rank; k++)
                printf("%s%lld", k ? ", " : "", (long long)t->dim[k]);
            printf("]\n");
        }
done:
    for (int i = 0; tmp && i < opt->n_io_outputs; i++) {
        if (tmp[i])
            unlink(tmp[i]);
        free(tmp[i]);
    }
    free(tmp);
    for (int j = 0; j < g->n_inputs; j++)
        free(ins[j].data);
    for (int j = 0; j < g->n_outputs; j++)
        free(outs[j].data);
    free(ins);
    free(outs);
    if (st_open)
        kiln_st_close(&wc.st);
    graph_free(g);
    return status;
}
