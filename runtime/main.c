/* main.c: kiln_main, the main() of every model binary.
 *
 * The generated file ends in `int main(int argc, char **argv) { return kiln_main(argc, argv,
 * &model); }`; everything between the command line and forward() happens here, in order,
 * stopping at the first error (after a check that the CPU has the model's vector ISA):
 *
 *   1. parse the command line                      (usage errors exit 2)
 *   2. open the weights and bind them to the model (safetensors.c)
 *   3. read every input, check dtype and shape, bind the symbolic dims from the shapes
 *   4. allocate the outputs at the bound shapes and the arena at its planned size
 *   5. start the worker threads (--threads) and pack the weights matmuls read in panels
 *      (the model's prepare(), once)
 *   6. run forward() once or --repeat N times
 *   7. write the requested outputs all-or-nothing, or print a summary of each
 *
 * Errors print `MODEL: error: ...` on stderr and return 1 (2 for usage errors); nothing here
 * calls exit(), so tests drive kiln_main in-process.  docs/runtime.md describes the command
 * line and every check for users.
 */
#include "kiln_rt.h"
#include "kiln_text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define MAX_REPEAT 1000000L

/* ---------------------------------------------------------------------------------------
 * Messages
 */

static const char *model_name(const kiln_model *m) {
    return m->name ? m->name : "model";
}

// Print `MODEL: error: ...` on stderr and return status.
static int error(const kiln_model *m, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int error(const kiln_model *m, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", model_name(m));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return status;
}

// Append to the string being built in buf[0..size); *pos tracks its length.
static void appendf(char *buf, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char *buf, size_t size, size_t *pos, const char *fmt, ...) {
    if (*pos + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos = *pos + (size_t)n < size ? *pos + (size_t)n : size - 1;
}

// "[2, 3]"
static const char *fmt_dims(char *buf, size_t size, int rank, const int64_t *dims) {
    size_t pos = 0;
    buf[0] = '\0';
    appendf(buf, size, &pos, "[");
    for (int k = 0; k < rank; k++)
        appendf(buf, size, &pos, "%s%lld", k ? ", " : "", (long long)dims[k]);
    appendf(buf, size, &pos, "]");
    return buf;
}

// A declared shape with its symbolic dims by name: "[batch, 64]".
static const char *fmt_desc(char *buf, size_t size, const kiln_model *m,
                            const kiln_tensor_desc *d) {
    size_t pos = 0;
    buf[0] = '\0';
    appendf(buf, size, &pos, "[");
    for (int k = 0; k < d->rank; k++) {
        if (d->sym[k] >= 0)
            appendf(buf, size, &pos, "%s%s", k ? ", " : "", m->syms[d->sym[k]].name);
        else
            appendf(buf, size, &pos, "%s%lld", k ? ", " : "", (long long)d->dims[k]);
    }
    appendf(buf, size, &pos, "]");
    return buf;
}

// The bounds of a shape's symbolic dims, each once: "(batch <= 4, seq <= 1024)", or "".
static const char *fmt_bounds(char *buf, size_t size, const kiln_model *m,
                              const kiln_tensor_desc *d) {
    size_t pos = 0;
    int n = 0;
    buf[0] = '\0';
    for (int k = 0; k < d->rank; k++) {
        int s = d->sym[k];
        bool seen = false;
        for (int j = 0; j < k; j++)
            seen |= d->sym[j] == s;
        if (s < 0 || seen)
            continue;
        appendf(buf, size, &pos, "%s%s <= %lld", n++ ? ", " : "(", m->syms[s].name,
                (long long)m->syms[s].max);
    }
    if (n)
        appendf(buf, size, &pos, ")");
    return buf;
}

// "a, b, c": the names of descs, for "unknown input" messages.
static const char *fmt_names(char *buf, size_t size, int n, const kiln_tensor_desc *d) {
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        appendf(buf, size, &pos, "%s%s", i ? ", " : "", d[i].name);
    if (n == 0)
        appendf(buf, size, &pos, "(none)");
    return buf;
}

/* ---------------------------------------------------------------------------------------
 * Command line
 */

typedef struct {
    const char *weights;        // --weights path
    const char **in_path;       // [n_inputs] --input paths, NULL if not given
    const char **out_path;      // [n_outputs] --output paths, NULL if not requested
    bool any_output;
    long repeat;                // --repeat N, 1 by default
    bool repeat_given;
    long warmup;                // --warmup N: untimed runs before the timed ones (0)
    bool warmup_given;
    int threads;                // --threads N; 0: $KILN_NUM_THREADS or the online cores
    const char *dump_dir;       // --dump-dir DIR: the intermediates (a --dump build only)
    bool help;
} Args;

static void print_usage(FILE *f, const char *prog) {
    fprintf(f, "usage: %s --weights W.safetensors --input NAME=FILE.npy ... "
               "[--output NAME=FILE.npy ...] [--repeat N] [--warmup N] [--threads N] "
               "[--dump-dir DIR] [--help]\n", prog);
}

// Print the usage and the model's interface (--help).
static void print_help(const kiln_model *m, const char *prog) {
    char a[256], b[256];
    int w = 0;
    for (int i = 0; i < m->n_inputs; i++)
        w = (int)strlen(m->inputs[i].name) > w ? (int)strlen(m->inputs[i].name) : w;
    for (int i = 0; i < m->n_outputs; i++)
        w = (int)strlen(m->outputs[i].name) > w ? (int)strlen(m->outputs[i].name) : w;

    print_usage(stdout, prog);
    printf("\nRuns the model '%s'", model_name(m));
    if (m->spec)
        printf(" (compiled by kiln from %s)", m->spec);
    printf(" on .npy inputs.\n\n"
           "  --weights FILE      safetensors file with the model's weights\n"
           "  --input NAME=FILE   an input as a .npy file; every input is required once\n"
           "  --output NAME=FILE  write an output as .npy (all are written, or none);\n"
           "                      without --output, each output's shape and min/max/mean\n"
           "                      are printed\n"
           "  --repeat N          run forward N times and print the min and median time\n"
           "  --warmup N          first run forward N more times, untimed (caches, pages,\n"
           "                      threads warm; a --profile table leaves them out); the\n"
           "                      outputs are those of the last run\n"
           "  --threads N         worker threads (default: $KILN_NUM_THREADS, else the\n"
           "                      online cores); outputs are identical for every N\n"
           "  --dump-dir DIR      write every named intermediate value as DIR/NAME.npy and\n"
           "                      DIR/index.tsv (first run only); needs a binary built with\n"
           "                      'kiln build --dump'%s\n"
           "  --help              print this help\n", m->dump ? " (this one was)" : " (this one "
           "was not)");
    if (m->text) {     // the spec's `text:` roles (text.c)
        printf("\nText in, text out (with --tokenizer PATH; add --help to one for its options):\n");
        if (m->text->logits >= 0)
            printf("  -p PROMPT           generate text after PROMPT\n"
                   "  --text \"..[MASK]..\" the most likely tokens for each [MASK]\n");
        if (m->text->hidden >= 0)
            printf("  --embed --text T    an embedding of T (or --input-file F: one per line)\n");
    }
    printf("\ninputs:\n");
    for (int i = 0; i < m->n_inputs; i++) {
        const kiln_tensor_desc *d = &m->inputs[i];
        printf("  %-*s  %s %s", w, d->name, kiln_dtype_name(d->dtype),
               fmt_desc(a, sizeof a, m, d));
        fmt_bounds(b, sizeof b, m, d);
        printf("%s%s", b[0] ? "  " : "", b);
        if (m->input_ranges && m->input_ranges[i].has_range)
            printf("  values in [%lld, %lld]", (long long)m->input_ranges[i].lo,
                   (long long)m->input_ranges[i].hi);
        printf("\n");
    }
    printf("outputs:\n");
    for (int i = 0; i < m->n_outputs; i++) {
        const kiln_tensor_desc *d = &m->outputs[i];
        printf("  %-*s  %s %s\n", w, d->name, kiln_dtype_name(d->dtype),
               fmt_desc(a, sizeof a, m, d));
    }
    printf("weights: %d tensors", m->n_weights);
    for (int p = 0; p < m->n_weight_prefixes; p++)
        printf("%s'%s'", p ? ", " : " (also tried with the prefixes ",
               m->weight_prefixes[p]);
    printf("%s\n", m->n_weight_prefixes ? ")" : "");
    printf("arena: %.1f MiB (%zu bytes)\n", (double)m->arena_bytes / (1024.0 * 1024.0),
           m->arena_bytes);
}

// Handle `--input NAME=FILE` or `--output NAME=FILE`: what is "input" or "output".
static int name_file(const kiln_model *m, const char *what, const char *val, int n,
                     const kiln_tensor_desc *d, const char **paths) {
    char names[512];
    const char *eq = strchr(val, '=');
    if (!eq || eq == val || eq[1] == '\0')
        return error(m, EXIT_USAGE, "--%s wants NAME=FILE.npy, got '%s'", what, val);
    size_t len = (size_t)(eq - val);
    int idx = -1;
    for (int i = 0; i < n && idx < 0; i++)
        if (strlen(d[i].name) == len && memcmp(d[i].name, val, len) == 0)
            idx = i;
    if (idx < 0)
        return error(m, EXIT_USAGE, "unknown %s '%.*s'; the %ss are: %s", what, (int)len, val,
                     what, fmt_names(names, sizeof names, n, d));
    if (paths[idx])
        return error(m, EXIT_USAGE, "%s '%s' is given twice", what, d[idx].name);
    paths[idx] = eq + 1;
    return 0;
}

// Whether `s` is a whole decimal number in [lo, hi] with nothing after it; the number in *n.
static bool whole_number(const char *s, long lo, long hi, long *n) {
    char *end;
    errno = 0;
    *n = strtol(s, &end, 10);
    return !errno && !*end && end != s && *n >= lo && *n <= hi;
}

// Parse argv into a (whose arrays the caller allocated).  Returns 0, or EXIT_USAGE after
// printing the error.  Stops at --help, setting a->help.
static int parse_args(int argc, char **argv, const kiln_model *m, Args *a) {
    static const char *const flags[] = { "--weights", "--input", "--output", "--repeat",
                                         "--threads", "--dump-dir", "--warmup" };
    const int n_flags = (int)(sizeof flags / sizeof flags[0]);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
            return 0;
        }
        int f = -1;
        const char *val = NULL;
        for (int j = 0; j < n_flags && f < 0; j++) {
            size_t len = strlen(flags[j]);
            if (strncmp(arg, flags[j], len) == 0 && (arg[len] == '\0' || arg[len] == '=')) {
                f = j;
                // `--flag=value`, or `--flag value` unless the next word is another flag
                if (arg[len] == '=')
                    val = arg + len + 1;
                else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                    val = argv[++i];
            }
        }
        if (f < 0)
            return error(m, EXIT_USAGE, "%s '%s' (run with --help for usage)",
                         arg[0] == '-' ? "unknown option" : "unexpected argument", arg);
        if (!val || !val[0])
            return error(m, EXIT_USAGE, "%s needs a value", flags[f]);
        switch (f) {
        case 0:
            if (a->weights)
                return error(m, EXIT_USAGE, "--weights is given twice");
            a->weights = val;
            break;
        case 1:
            if (name_file(m, "input", val, m->n_inputs, m->inputs, a->in_path))
                return EXIT_USAGE;
            break;
        case 2:
            if (name_file(m, "output", val, m->n_outputs, m->outputs, a->out_path))
                return EXIT_USAGE;
            a->any_output = true;
            break;
        case 3: {
            long n;
            if (a->repeat_given)
                return error(m, EXIT_USAGE, "--repeat is given twice");
            if (!whole_number(val, 1, MAX_REPEAT, &n))
                return error(m, EXIT_USAGE, "--repeat wants a whole number from 1 to %ld, "
                             "got '%s'", MAX_REPEAT, val);
            a->repeat = n;
            a->repeat_given = true;
            break;
        }
        case 4: {
            long n;
            if (a->threads)
                return error(m, EXIT_USAGE, "--threads is given twice");
            if (!whole_number(val, 1, 256, &n))
                return error(m, EXIT_USAGE, "--threads wants a whole number from 1 to 256, "
                             "got '%s'", val);
            a->threads = (int)n;
            break;
        }
        case 5:
            if (a->dump_dir)
                return error(m, EXIT_USAGE, "--dump-dir is given twice");
            // A normal build carries no dump code (docs/inspect.md): say how to get one.
            if (!m->dump)
                return error(m, EXIT_USAGE, "--dump-dir: this binary was built without --dump, "
                             "so it cannot write its intermediate values; rebuild it with "
                             "'kiln build SPEC --dump ...' (or compare with 'kiln interp SPEC "
                             "... --dump-dir DIR')");
            a->dump_dir = val;
            break;
        case 6: {
            long n;
            if (a->warmup_given)
                return error(m, EXIT_USAGE, "--warmup is given twice");
            if (!whole_number(val, 0, MAX_REPEAT, &n))
                return error(m, EXIT_USAGE, "--warmup wants a whole number from 0 to %ld, "
                             "got '%s'", MAX_REPEAT, val);
            a->warmup = n;
            a->warmup_given = true;
            break;
        }
        }
    }

    if (!a->weights)
        return error(m, EXIT_USAGE, "missing --weights W.safetensors (run with --help for "
                     "usage)");
    char missing[512];
    size_t pos = 0;
    missing[0] = '\0';
    for (int i = 0; i < m->n_inputs; i++)
        if (!a->in_path[i])
            appendf(missing, sizeof missing, &pos, "%s%s=FILE.npy", pos ? ", " : "",
                    m->inputs[i].name);
    if (pos)
        return error(m, EXIT_USAGE, "missing --input for: %s (run with --help for usage)",
                     missing);
    for (int i = 0; i < m->n_outputs; i++)
        for (int j = 0; j < i; j++)
            if (a->out_path[i] && a->out_path[j] && strcmp(a->out_path[i], a->out_path[j]) == 0)
                return error(m, EXIT_USAGE, "outputs '%s' and '%s' are both written to '%s'",
                             m->outputs[j].name, m->outputs[i].name, a->out_path[i]);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Inputs
 */

// Symbolic dims bound so far: value and where it came from, for conflict messages.
typedef struct {
    int64_t val[16];
    int from[16];       // input index that bound it, or -1
} SymBinding;

// Check input i's array against its declaration and bind its symbolic dims; narrow an i64
// array to i32 for an i32 input (in place) and reject non-finite f32 values.
static int check_input(const kiln_model *m, int i, kiln_npy *a, const char *path,
                       SymBinding *sb) {
    const kiln_tensor_desc *d = &m->inputs[i];
    char s1[256], s2[256];
    bool ok_dtype = a->dtype == d->dtype || (d->dtype == KILN_I32 && a->dtype == KILN_I64);
    if (!ok_dtype)
        return error(m, 1, "input '%s': %s holds %s values, the model wants %s%s", d->name, path,
                     kiln_dtype_name(a->dtype), kiln_dtype_name(d->dtype),
                     d->dtype == KILN_F32   ? " ('<f4')"
                     : d->dtype == KILN_I32 ? " ('<i4' or '<i8')"
                                            : " ('<i8')");
    if (a->rank != d->rank)
        return error(m, 1, "input '%s': %s has rank %d (shape %s), the model wants rank %d %s",
                     d->name, path, a->rank, fmt_dims(s1, sizeof s1, a->rank, a->dims),
                     d->rank, fmt_desc(s2, sizeof s2, m, d));
    for (int k = 0; k < d->rank; k++) {
        int64_t v = a->dims[k];
        int s = d->sym[k];
        if (s < 0) {
            if (v != d->dims[k])
                return error(m, 1, "input '%s': dim %d is %lld, the model wants %lld (shape "
                             "%s, the file has %s)", d->name, k, (long long)v,
                             (long long)d->dims[k], fmt_desc(s1, sizeof s1, m, d),
                             fmt_dims(s2, sizeof s2, a->rank, a->dims));
            continue;
        }
        const kiln_sym *sym = &m->syms[s];
        if (sb->from[s] < 0) {
            if (v > sym->max)
                return error(m, 1, "input '%s': dim %d (%s) is %lld, above its bound %lld",
                             d->name, k, sym->name, (long long)v, (long long)sym->max);
            if (v < 1)
                return error(m, 1, "input '%s': dim %d (%s) is %lld; it must be at least 1",
                             d->name, k, sym->name, (long long)v);
            sb->val[s] = v;
            sb->from[s] = i;
        } else if (v != sb->val[s]) {
            return error(m, 1, "input '%s': dim %d (%s) is %lld but input '%s' set %s = %lld",
                         d->name, k, sym->name, (long long)v, m->inputs[sb->from[s]].name,
                         sym->name, (long long)sb->val[s]);
        }
    }

    size_t n = 1;
    for (int k = 0; k < a->rank; k++)
        n *= (size_t)a->dims[k];    // cannot overflow: kiln_npy_read checked numel x size
    if (a->dtype == KILN_F32) {
        const float *x = a->data;
        for (size_t j = 0; j < n; j++)
            if (!isfinite(x[j]))
                return error(m, 1, "input '%s': %s has a non-finite value (%s) at flat index "
                             "%zu", d->name, path, isnan(x[j]) ? "nan" : x[j] > 0 ? "inf" : "-inf",
                             j);
    }
    if (d->dtype == KILN_I32 && a->dtype == KILN_I64) {
        // In place, front to back: element j's 4 bytes land at or before where it was read.
        const int64_t *src = a->data;
        int32_t *dst = a->data;
        for (size_t j = 0; j < n; j++) {
            int64_t v = src[j];
            if (v < INT32_MIN || v > INT32_MAX)
                return error(m, 1, "input '%s': %s has the value %lld at flat index %zu, which "
                             "does not fit in i32", d->name, path, (long long)v, j);
            dst[j] = (int32_t)v;
        }
        a->dtype = KILN_I32;
    }
    const kiln_range *r = m->input_ranges ? &m->input_ranges[i] : NULL;
    if (r && r->has_range && a->dtype == KILN_I32) {
        const int32_t *x = a->data;
        for (size_t j = 0; j < n; j++)
            if (x[j] < r->lo || x[j] > r->hi)
                return error(m, 1, "input '%s': %s has the value %d at flat index %zu, outside "
                             "the spec's range [%lld, %lld]", d->name, path, x[j], j,
                             (long long)r->lo, (long long)r->hi);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Outputs
 */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// One stdout line for an output: name, dtype, shape, and min/max/mean of its values.
static void print_summary(const kiln_tensor_desc *d, int w, const int64_t *dims, size_t n,
                          const void *data) {
    char s[256];
    printf("%-*s  %s %s", w, d->name, kiln_dtype_name(d->dtype),
           fmt_dims(s, sizeof s, d->rank, dims));
    double lo = 0, hi = 0, sum = 0;
    size_t finite = 0, bad = 0;
    for (size_t j = 0; j < n; j++) {
        double v;
        if (d->dtype == KILN_F32)
            v = (double)((const float *)data)[j];
        else if (d->dtype == KILN_I32)
            v = (double)((const int32_t *)data)[j];
        else
            v = (double)((const int64_t *)data)[j];
        if (!isfinite(v)) {
            bad++;
            continue;
        }
        lo = finite == 0 || v < lo ? v : lo;
        hi = finite == 0 || v > hi ? v : hi;
        sum += v;
        finite++;
    }
    if (finite)
        printf("  min %.6g  max %.6g  mean %.6g", lo, hi, sum / (double)finite);
    else if (n == 0)
        printf("  (empty)");
    if (bad)
        printf("  (%zu non-finite)", bad);
    printf("\n");
}

// Write every requested output to a temporary, then rename them all into place; on a
// failure remove the temporaries, so no output is written unless all could be.
static int write_outputs(const kiln_model *m, const Args *a, int64_t (*odims)[KILN_RT_MAX_RANK],
                         void **outs) {
    // A destination that is a directory would fail only at its rename, after the outputs
    // before it were renamed into place: refuse it before anything is written.
    for (int j = 0; j < m->n_outputs; j++) {
        struct stat sb;
        if (a->out_path[j] && stat(a->out_path[j], &sb) == 0 && S_ISDIR(sb.st_mode))
            return error(m, 1, "output '%s': %s: is a directory", m->outputs[j].name,
                         a->out_path[j]);
    }
    char msg[512];
    char **tmp = calloc((size_t)m->n_outputs + 1, sizeof *tmp);
    if (!tmp)
        return error(m, 1, "out of memory");
    int rc = 0;
    for (int j = 0; j < m->n_outputs && rc == 0; j++) {
        const kiln_tensor_desc *d = &m->outputs[j];
        if (a->out_path[j] && kiln_npy_write_tmp(a->out_path[j], d->dtype, d->rank, odims[j],
                                                 outs[j], &tmp[j], msg, sizeof msg))
            rc = error(m, 1, "output '%s': %s", d->name, msg);
    }
    // rename() within a directory fails only in odd cases (the target became a directory
    // since the check above); outputs renamed before such a failure stay written.
    for (int j = 0; j < m->n_outputs && rc == 0; j++) {
        if (!tmp[j])
            continue;
        if (rename(tmp[j], a->out_path[j]) != 0) {
            rc = error(m, 1, "output '%s': %s: cannot rename the temporary file into place: %s",
                       m->outputs[j].name, a->out_path[j], strerror(errno));
        } else {
            free(tmp[j]);
            tmp[j] = NULL;
        }
    }
    for (int j = 0; j < m->n_outputs; j++) {
        if (tmp[j])
            unlink(tmp[j]);
        free(tmp[j]);
    }
    free(tmp);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * kiln_main
 */

// See kiln_rt.h and the steps atop this file.  Returns 0, 1 (a run-time error: weights,
// inputs, forward, outputs) or 2 (a usage error); every resource is freed on every path.
int kiln_main(int argc, char **argv, const kiln_model *m) {
    char msg[1024];
    const char *prog = argc > 0 && argv[0] ? argv[0] : model_name(m);
    if (kiln_model_check(m, msg, sizeof msg))
        return error(m, 1, "internal error: bad model description: %s", msg);
    // Before anything runs: a kernel built for a wider ISA than this CPU's would die of SIGILL.
    if (kiln_cpu_check(m->isa, msg, sizeof msg))
        return error(m, 1, "%s", msg);
    // Text in, text out (-p, --text, --embed): text.c, over the C API.
    if (kiln_text_wanted(argc, argv))
        return kiln_text_main(argc, argv, m);

    int status = 1;
    Args a = { .repeat = 1 };
    kiln_safetensors st;
    memset(&st, 0, sizeof st);
    SymBinding sb;
    memset(&sb, 0, sizeof sb);
    for (int s = 0; s < 16; s++)
        sb.from[s] = -1;
    const void **weights = calloc((size_t)m->n_weights + 1, sizeof *weights);
    kiln_npy *npys = calloc((size_t)m->n_inputs + 1, sizeof *npys);
    const void **ins = calloc((size_t)m->n_inputs + 1, sizeof *ins);
    void **outs = calloc((size_t)m->n_outputs + 1, sizeof *outs);
    int64_t (*odims)[KILN_RT_MAX_RANK] = calloc((size_t)m->n_outputs + 1, sizeof *odims);
    size_t *onumel = calloc((size_t)m->n_outputs + 1, sizeof *onumel);
    a.in_path = calloc((size_t)m->n_inputs + 1, sizeof *a.in_path);
    a.out_path = calloc((size_t)m->n_outputs + 1, sizeof *a.out_path);
    char *arena = NULL, *packed = NULL;
    float **states = NULL;
    kiln_pool *pool = NULL;
    kiln_dump *dump = NULL;
    double *times = NULL;
    if (!weights || !npys || !ins || !outs || !odims || !onumel || !a.in_path || !a.out_path) {
        error(m, 1, "out of memory");
        goto done;
    }

    // 1. command line
    if ((status = parse_args(argc, argv, m, &a)) != 0)
        goto done;
    if (a.help) {
        print_help(m, prog);
        goto done;  // status 0
    }
    status = 1;

    // 2. weights
    if (kiln_st_open(&st, a.weights, msg, sizeof msg) ||
        kiln_bind_weights(m, &st, weights, msg, sizeof msg)) {
        error(m, 1, "%s", msg);
        goto done;
    }

    // 3. inputs, in declaration order (so the first input binds each symbolic dim)
    for (int i = 0; i < m->n_inputs; i++) {
        if (kiln_npy_read(a.in_path[i], &npys[i], msg, sizeof msg)) {
            error(m, 1, "input '%s': %s", m->inputs[i].name, msg);
            goto done;
        }
        if (check_input(m, i, &npys[i], a.in_path[i], &sb))
            goto done;
        ins[i] = npys[i].data;
    }

    // 4. outputs at the bound shapes, and the arena
    for (int j = 0; j < m->n_outputs; j++) {
        const kiln_tensor_desc *d = &m->outputs[j];
        size_t n = 1;
        for (int k = 0; k < d->rank; k++) {
            odims[j][k] = d->sym[k] >= 0 ? sb.val[d->sym[k]] : d->dims[k];
            if (__builtin_mul_overflow(n, (size_t)odims[j][k], &n))
                n = SIZE_MAX;
        }
        onumel[j] = n;
        size_t bytes;
        if (__builtin_mul_overflow(n, kiln_dtype_size(d->dtype), &bytes) ||
            !(outs[j] = kiln_aligned_alloc(bytes))) {
            error(m, 1, "output '%s': cannot allocate %zu elements", d->name, n);
            goto done;
        }
    }
    if (!(arena = kiln_aligned_alloc(m->arena_bytes))) {
        error(m, 1, "cannot allocate the %zu-byte arena", m->arena_bytes);
        goto done;
    }
    if (kiln_states_alloc(m, &states)) {
        error(m, 1, "cannot allocate the model's state");
        goto done;
    }

    // 5. the threads, and the weights packed for the matmuls (once, timed with --repeat)
    kiln_run r;
    memset(&r, 0, sizeof r);
    r.model = m;
    for (int s = 0; s < m->n_syms; s++)
        r.sym[s] = sb.val[s];
    if (m->n_states)        // a fresh state: every call of --repeat starts from nothing
        r.sym[m->position_sym] = 0;
    r.state = states;
    r.weights = weights;
    r.inputs = ins;
    r.outputs = outs;
    r.arena = arena;
    if (!(pool = kiln_pool_new(a.threads ? a.threads : kiln_default_threads()))) {
        error(m, 1, "cannot create the worker threads");
        goto done;
    }
    r.pool = pool;
    if (m->prepare) {
        double t0 = kiln_now_ms();
        if (!(packed = kiln_huge_alloc(m->packed_bytes))) {
            error(m, 1, "cannot allocate the %zu bytes of packed weights", m->packed_bytes);
            goto done;
        }
        r.packed = packed;
        if (m->prepare(&r) != 0) {
            r.err[sizeof r.err - 1] = '\0';
            error(m, 1, "prepare: %s", r.err[0] ? r.err : "failed (no message)");
            goto done;
        }
        if (a.repeat_given)
            fprintf(stderr, "%s: prepare: packed %.1f MiB of weights in %.3f ms (%d thread%s)\n",
                    model_name(m), (double)m->packed_bytes / (1024.0 * 1024.0),
                    kiln_now_ms() - t0, kiln_pool_threads(pool),
                    kiln_pool_threads(pool) == 1 ? "" : "s");
    }

    // 6. forward
    if (!(times = malloc((size_t)a.repeat * sizeof *times))) {
        error(m, 1, "out of memory");
        goto done;
    }
    // --dump-dir: the first run writes every intermediate (dump.c); later runs of --repeat
    // would only write the same files again.
    if (a.dump_dir && !(dump = kiln_dump_open(a.dump_dir, msg, sizeof msg))) {
        error(m, 1, "--dump-dir: %s", msg);
        goto done;
    }
    for (long rep = -a.warmup; rep < a.repeat; rep++) {    // warm-up runs first, untimed
        double t0 = kiln_now_ms();
        r.dump = rep == -a.warmup ? dump : NULL;
        int rc = m->forward(&r);
        if (rep >= 0)
            times[rep] = kiln_now_ms() - t0;
        else if (rep == -1 && rc == 0)
            kiln_prof_warmup_done();    // --profile: the table counts the timed runs only
        if (rc != 0) {
            r.err[sizeof r.err - 1] = '\0';
            error(m, 1, "forward: %s", r.err[0] ? r.err : "failed (no message)");
            goto done;
        }
    }
    if (a.repeat_given) {
        qsort(times, (size_t)a.repeat, sizeof *times, cmp_double);
        size_t h = (size_t)a.repeat / 2;
        double median = a.repeat % 2 ? times[h] : (times[h - 1] + times[h]) / 2;
        fprintf(stderr, "%s: forward: %ld runs, min %.3f ms, median %.3f ms", model_name(m),
                a.repeat, times[0], median);
        if (a.warmup)
            fprintf(stderr, " (after %ld warm-up run%s)", a.warmup, a.warmup == 1 ? "" : "s");
        fputc('\n', stderr);
    }
    if (dump) {
        int n_files = kiln_dump_count(dump);
        int rc = kiln_dump_close(dump, msg, sizeof msg);
        dump = NULL;
        if (rc) {
            error(m, 1, "--dump-dir: %s", msg);
            goto done;
        }
        fprintf(stderr, "%s: dumped %d values into %s (index.tsv lists them)\n", model_name(m),
                n_files, a.dump_dir);
    }

    // 7. outputs
    if (a.any_output) {
        if (write_outputs(m, &a, odims, outs))
            goto done;
    } else {
        int w = 0;
        for (int j = 0; j < m->n_outputs; j++)
            w = (int)strlen(m->outputs[j].name) > w ? (int)strlen(m->outputs[j].name) : w;
        for (int j = 0; j < m->n_outputs; j++)
            print_summary(&m->outputs[j], w, odims[j], onumel[j], outs[j]);
    }
    status = 0;

done:
    if (dump)       // a failed forward: the index lists what was written before it failed
        kiln_dump_close(dump, msg, sizeof msg);
    kiln_st_close(&st);
    for (int i = 0; npys && i < m->n_inputs; i++)
        kiln_npy_free(&npys[i]);
    for (int j = 0; outs && j < m->n_outputs; j++)
        kiln_aligned_free(outs[j]);
    kiln_aligned_free(arena);
    kiln_states_free(m, states);
    kiln_aligned_free(packed);
    kiln_pool_free(pool);
    free(times);
    free(weights);
    free(npys);
    free(ins);
    free(outs);
    free(odims);
    free(onumel);
    free(a.in_path);
    free(a.out_path);
    return status;
}
