/* compiler/bisect.c: where a model first goes wrong.
 *
 *   kiln diff --bisect SPEC [-D k=v]... --weights W --input NAME=F ... --ref-dir DIR
 *   kiln diff --bisect-passes SPEC [-D k=v]... --weights W --input NAME=F ...
 *
 * --bisect builds SPEC with --dump (the binary users run, all passes on unless
 * --disable-pass), runs it with --dump-dir into a work folder, and walks the dump's
 * index.tsv in its order, a topological one: the first value whose NAME.npy leaves the
 * tolerance against DIR/NAME.npy is reported with its op, spec line and kernel, the error
 * statistics of its output and those of each of its inputs that DIR has, so one sees whether
 * the node computes wrongly or was fed wrong values.  DIR comes from `kiln interp --dump-dir`
 * (another spec, other flags), from PyTorch (tests/reference/dump_ref.py), or from anything
 * that writes NAME.npy by spec name; values DIR lacks are skipped.
 *
 * --bisect-passes needs no reference: it compares the optimized binary's outputs with the
 * reference interpreter's (`kiln interp`); when they disagree it rebuilds with each optional
 * pass off in turn, in pipeline order, names the first whose being off makes them agree, and
 * then walks the optimized build's dump against the interpreter's as --bisect does.
 *
 * The steps are the kiln commands a user would type, run as child processes of this kiln
 * (/proc/self/exe) with their output in the work folder's *.log; -v prints each command.
 * Exit status: 0 everything compared agrees, 1 a divergence (reported), 2 a usage error or a
 * step that failed.
 */
#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char bisect_usage[] =
    "usage: kiln diff --bisect SPEC [-D NAME=VALUE]... --weights W --input NAME=FILE.npy ...\n"
    "                 --ref-dir DIR [options]\n"
    "       kiln diff --bisect-passes SPEC [-D NAME=VALUE]... --weights W --input NAME=FILE.npy\n"
    "                 ... [options]\n"
    "  --bisect: build SPEC with --dump, run it with --dump-dir, and report the first value,\n"
    "  in topological order, that is off DIR/NAME.npy (NAME: the spec name, as `kiln interp\n"
    "  --dump-dir` and tests/reference/dump_ref.py write them), with its inputs' errors.\n"
    "  --bisect-passes: compare the optimized binary with `kiln interp`; if they disagree,\n"
    "  rebuild with each optional pass off in turn, name the first pass whose being on makes\n"
    "  them disagree, and the first value where the dumps part.\n"
    "options:\n"
    "  --disable-pass NAME   build without pass NAME (both; --bisect-passes then skips it)\n"
    "  --isa ISA             build for ISA (default: this machine's best)\n"
    "  --rtol R, --atol A, --atol-scale S\n"
    "                        tolerance per value: |a-b| <= A + S*max|ref| + R*|ref|\n"
    "                        (default: rtol 0, atol 0, atol-scale 1e-4)\n"
    "  --keep DIR            work in DIR (created) and keep the builds, dumps and logs\n"
    "  -v                    print each command\n"
    "Exit 0 when everything compared agrees, 1 on a divergence, 2 on a usage error or a\n"
    "failed step (its log is printed).\n";

typedef struct {
    bool passes;                // --bisect-passes (else --bisect)
    const char *spec;
    const char **defs;          // "NAME=VALUE"
    int n_defs, cap_defs;
    const char **disabled;      // --disable-pass NAME
    int n_disabled, cap_disabled;
    const char *isa;
    const char *weights;
    const char **inputs;        // "NAME=FILE"
    int n_inputs, cap_inputs;
    const char *ref_dir;
    const char *keep;
    DiffTol tol;
    bool verbose;
    // set up by kiln_cmd_bisect
    char kiln[PATH_MAX];        // this kiln executable
    char work[PATH_MAX];        // the work folder
    Graph *g;                   // the spec, parsed (outputs' names, spec lines)
} Bisect;

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "kiln diff: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", bisect_usage);
    return 2;
}

static bool parse_tol(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return s[0] && !*end && *out >= 0 && *out < 1e300;
}

// argv as `kiln diff` got it.  Returns 0, or the exit status of a usage error or --help.
static int parse(Bisect *B, int argc, char **argv, bool *help)
{
    B->tol = (DiffTol){.rtol = 0, .atol = 0, .atol_scale = 1e-4};
    int kind = 0;       // 1 --bisect, 2 --bisect-passes
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char key[64] = "";
        if (a[0] == '-' && a[1] == '-') {       // "--opt value" or "--opt=value"
            const char *eq = strchr(a, '=');
            size_t kl = eq ? (size_t)(eq - a) : strlen(a);
            snprintf(key, sizeof key, "%.*s", (int)(kl < sizeof key ? kl : sizeof key - 1), a);
            val = eq ? eq + 1 : NULL;
        }
#define VALUE() (val ? val : i + 1 < argc ? argv[++i] : NULL)
        if (!strcmp(a, "--bisect") || !strcmp(a, "--bisect-passes")) {
            int k = a[8] == '-' ? 2 : 1;
            if (kind && kind != k)
                return usage("%s", "--bisect and --bisect-passes are two commands: give one");
            kind = k;
            B->passes = k == 2;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = true;
            return 0;
        } else if (!strncmp(a, "-D", 2)) {
            const char *def = a[2] ? a + 2 : i + 1 < argc ? argv[++i] : NULL;
            const char *eq = def ? strchr(def, '=') : NULL;
            if (!eq || eq == def)
                return usage("-D wants NAME=VALUE, found '%s'", def ? def : "");
            VEC_PUSH(B->defs, B->n_defs, B->cap_defs, def);
        } else if (!strcmp(a, "-v")) {
            B->verbose = true;
        } else if (!strcmp(key, "--disable-pass") || !strcmp(key, "--input")) {
            const char *v = VALUE();
            if (!v)
                return usage("%s needs a value", key);
            if (key[2] == 'd')
                VEC_PUSH(B->disabled, B->n_disabled, B->cap_disabled, v);
            else
                VEC_PUSH(B->inputs, B->n_inputs, B->cap_inputs, v);
        } else if (!strcmp(key, "--isa") || !strcmp(key, "--weights") ||
                   !strcmp(key, "--ref-dir") || !strcmp(key, "--keep")) {
            const char *v = VALUE();
            if (!v)
                return usage("%s needs a value", key);
            *(key[2] == 'i' ? &B->isa : key[2] == 'w' ? &B->weights : key[2] == 'r' ? &B->ref_dir
                                                                                 : &B->keep) = v;
        } else if (!strcmp(key, "--rtol") || !strcmp(key, "--atol") ||
                   !strcmp(key, "--atol-scale")) {
            const char *v = VALUE();
            double *t = !strcmp(key, "--rtol") ? &B->tol.rtol
                        : !strcmp(key, "--atol") ? &B->tol.atol : &B->tol.atol_scale;
            if (!v || !parse_tol(v, t))
                return usage("%s wants a non-negative number", key);
        } else if (a[0] == '-' && a[1]) {
            return usage("unknown option '%s'", a);
        } else if (!B->spec) {
            B->spec = a;
        } else {
            return usage("unexpected argument '%s' (one spec)", a);
        }
#undef VALUE
    }
    if (!B->spec)
        return usage("%s needs a spec file", B->passes ? "--bisect-passes" : "--bisect");
    if (!B->weights)
        return usage("%s", "needs --weights FILE (the model's safetensors file)");
    if (B->n_inputs == 0)
        return usage("%s", "needs the model's inputs (--input NAME=FILE.npy ...)");
    if (!B->passes && !B->ref_dir)
        return usage("%s", "--bisect needs --ref-dir DIR (reference values as DIR/NAME.npy)");
    if (B->passes && B->ref_dir)
        return usage("%s", "--bisect-passes compares with the interpreter; --ref-dir is for "
                           "--bisect");
    struct stat st;
    if (B->ref_dir && (stat(B->ref_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        return usage("--ref-dir %s: not a folder", B->ref_dir);
    for (int k = 0; k < B->n_disabled; k++) {
        int found = -1;
        for (int p = 0; p < ir_n_passes; p++)
            if (strcmp(ir_passes[p].name, B->disabled[k]) == 0)
                found = p;
        if (found < 0 || ir_passes[found].required)
            return usage("--disable-pass %s: not an optional pass (kiln --help lists them)",
                         B->disabled[k]);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Steps: child processes with their output in a log
 */

// Run argv with stdout and stderr appended to log; its exit status, or -1.
static int spawn(const Bisect *B, char **argv, const char *log)
{
    if (B->verbose) {
        fprintf(stderr, "+");
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "kiln diff: error: cannot run '%s': %s\n", argv[0], strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Tell that step `what` failed and show its log.
static void step_failed(const char *what, int rc, const char *log)
{
    fprintf(stderr, "kiln diff: error: %s failed (exit %d); its output (%s):\n", what, rc, log);
    FILE *f = fopen(log, "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "  %s", line);
    if (f)
        fclose(f);
}

// argv under construction: strings are the caller's or malloc'd into own[].
typedef struct {
    char *v[256];
    int n;
    char *own[256];
    int n_own;
} Argv;

static void arg(Argv *a, const char *s)
{
    if (a->n < 255)
        a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}

static const char *owned(Argv *a, char *s)
{
    if (a->n_own < 256)
        a->own[a->n_own++] = s;
    return s;
}

static void argv_free(Argv *a)
{
    for (int i = 0; i < a->n_own; i++)
        free(a->own[i]);
}

// The spec, its -D and the --input flags, as every step passes them.
static void spec_args(Argv *a, const Bisect *B)
{
    arg(a, B->spec);
    for (int k = 0; k < B->n_defs; k++) {
        arg(a, "-D");
        arg(a, B->defs[k]);
    }
}

static void run_args(Argv *a, const Bisect *B, const char *dir)
{
    arg(a, "--weights");
    arg(a, B->weights);
    for (int k = 0; k < B->n_inputs; k++) {
        arg(a, "--input");
        arg(a, B->inputs[k]);
    }
    for (int o = 0; o < B->g->n_outputs; o++) {
        arg(a, "--output");
        arg(a, owned(a, xsprintf("%s=%s/out.%s.npy", B->g->outputs[o].name, dir,
                                 B->g->outputs[o].name)));
    }
    arg(a, "--dump-dir");
    arg(a, owned(a, xsprintf("%s/dump", dir)));
}

// Build with --dump into WORK/tag/model (every user --disable-pass, and `without` too
// when not NULL) and run it into WORK/tag/dump and WORK/tag/out.NAME.npy.  False after
// reporting a failed step.
static bool build_and_run(const Bisect *B, const char *tag, const char *without)
{
    char dir[PATH_MAX + 64], log[PATH_MAX + 80], model[PATH_MAX + 80];
    snprintf(dir, sizeof dir, "%s/%s", B->work, tag);
    snprintf(log, sizeof log, "%s/%s.log", B->work, tag);
    snprintf(model, sizeof model, "%s/model", dir);
    mkdir(dir, 0777);
    Argv a = {0};
    arg(&a, B->kiln);
    arg(&a, "build");
    spec_args(&a, B);
    for (int k = 0; k < B->n_disabled; k++) {
        arg(&a, "--disable-pass");
        arg(&a, B->disabled[k]);
    }
    if (without) {
        arg(&a, "--disable-pass");
        arg(&a, without);
    }
    if (B->isa) {
        arg(&a, "--isa");
        arg(&a, B->isa);
    }
    arg(&a, "--dump");
    arg(&a, "-o");
    arg(&a, model);
    int rc = spawn(B, a.v, log);
    argv_free(&a);
    if (rc != 0) {
        step_failed(without ? "kiln build --disable-pass" : "kiln build --dump", rc, log);
        return false;
    }
    Argv r = {0};
    arg(&r, model);
    run_args(&r, B, dir);
    rc = spawn(B, r.v, log);
    argv_free(&r);
    if (rc != 0) {
        step_failed("the model binary", rc, log);
        return false;
    }
    return true;
}

// kiln interp into WORK/interp/dump and WORK/interp/out.NAME.npy.
static bool run_interp(const Bisect *B)
{
    char dir[PATH_MAX + 64], log[PATH_MAX + 80];
    snprintf(dir, sizeof dir, "%s/interp", B->work);
    snprintf(log, sizeof log, "%s/interp.log", B->work);
    mkdir(dir, 0777);
    Argv a = {0};
    arg(&a, B->kiln);
    arg(&a, "interp");
    spec_args(&a, B);
    run_args(&a, B, dir);
    int rc = spawn(B, a.v, log);
    argv_free(&a);
    if (rc != 0)
        step_failed("kiln interp --dump-dir", rc, log);
    return rc == 0;
}

// Remove the work folder: files and folders this command made (no symbolic links there).
static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    DIR *dir = S_ISDIR(st.st_mode) ? opendir(path) : NULL;
    for (struct dirent *de; dir && (de = readdir(dir));) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *sub = xsprintf("%s/%s", path, de->d_name);
        remove_tree(sub);
        free(sub);
    }
    if (dir)
        closedir(dir);
    remove(path);
}

/* ---------------------------------------------------------------------------------------
 * Dumps: the index, and values compared by name
 */

typedef struct {
    char *name, *op, *dtype, *shape, *spec, *kernel, *file, *inputs;
} Entry;

typedef struct {
    char *text;         // index.tsv, its fields cut in place
    Entry *e;
    int n, cap;
} Index;

// Read dir/index.tsv.  False after a message.
static bool index_read(const char *dir, Index *ix)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/index.tsv", dir);
    memset(ix, 0, sizeof *ix);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kiln diff: error: %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t len = 0, cap = 1 << 16;
    ix->text = xmalloc(cap);
    for (size_t got; (got = fread(ix->text + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len - 1 == 0)
            ix->text = xrealloc(ix->text, cap *= 2);
    }
    fclose(f);
    ix->text[len] = 0;
    char *line = ix->text;
    bool header = true;
    while (*line) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        char *field[8] = {0};
        int nf = 0;
        for (char *p = line; nf < 8; nf++) {
            field[nf] = p;
            char *tab = strchr(p, '\t');
            if (!tab) {
                nf++;
                break;
            }
            *tab = 0;
            p = tab + 1;
        }
        if (!header && nf == 8) {
            Entry e = {field[0], field[1], field[2], field[3], field[4], field[5], field[6],
                       field[7]};
            VEC_PUSH(ix->e, ix->n, ix->cap, e);
        } else if (!header && line[0]) {
            fprintf(stderr, "kiln diff: error: %s: a line without 8 fields: %s\n", path, line);
            return false;
        }
        header = false;
        line = end ? end + 1 : line + strlen(line);
    }
    return true;
}

static void index_free(Index *ix)
{
    free(ix->text);
    free(ix->e);
}

static const Entry *index_find(const Index *ix, const char *name)
{
    for (int i = 0; i < ix->n; i++)
        if (strcmp(ix->e[i].name, name) == 0)
            return &ix->e[i];
    return NULL;
}

static bool materialized(const Entry *e)
{
    size_t n = strlen(e->file);
    return n > 4 && strcmp(e->file + n - 4, ".npy") == 0;
}

// "gpt2.yaml:82" as the spec path the user gave ("models/gpt2.yaml:82") when the file
// names agree.
static const char *spec_place(const Bisect *B, const char *place, char *buf, size_t n)
{
    const char *colon = strrchr(place, ':');
    const char *slash = strrchr(B->spec, '/');
    const char *base = slash ? slash + 1 : B->spec;
    if (colon && (size_t)(colon - place) == strlen(base) && !strncmp(place, base, strlen(base)))
        snprintf(buf, n, "%s%s", B->spec, colon);
    else
        snprintf(buf, n, "%s", place);
    return buf;
}

// One value: DIR/NAME.npy of the build (got) against REF/NAME.npy (want).
typedef struct {
    kiln_npy got, want;
    DiffStats st;
    bool have_ref;      // REF/NAME.npy exists
    bool ok;            // compared and within tolerance
} Value;

// Compare NAME in got_dir with NAME in ref_dir.  False after a message (unreadable file).
static bool value_compare(const Bisect *B, const char *name, const char *got_dir,
                          const char *ref_dir, Value *v)
{
    char pg[PATH_MAX + 512], pr[PATH_MAX + 512], err[1024];
    memset(v, 0, sizeof *v);
    snprintf(pg, sizeof pg, "%s/%s.npy", got_dir, name);
    snprintf(pr, sizeof pr, "%s/%s.npy", ref_dir, name);
    if (access(pr, F_OK) != 0)
        return true;
    v->have_ref = true;
    if (kiln_npy_read(pg, &v->got, err, sizeof err) != 0 ||
        kiln_npy_read(pr, &v->want, err, sizeof err) != 0) {
        fprintf(stderr, "kiln diff: error: %s\n", err);
        return false;
    }
    diff_compare(&v->got, &v->want, &B->tol, &v->st);
    v->ok = v->st.same_shape && v->st.n_bad == 0;
    return true;
}

static void value_free(Value *v)
{
    kiln_npy_free(&v->got);
    kiln_npy_free(&v->want);
}

// The statistics of a compared value; full: every line, else one when it matches.
static void print_value(const char *label, const char *name, const Value *v, const char *ref)
{
    const DiffStats *s = &v->st;
    printf("  %s %s  %s ", label, name, kiln_dtype_name(v->got.dtype));
    diff_print_shape(stdout, &v->got);
    if (!s->same_shape) {
        printf(": the shape differs, %s/%s.npy is ", ref, name);
        diff_print_shape(stdout, &v->want);
        printf("\n");
        return;
    }
    if (v->ok) {
        printf(": matches, max abs err %.3g, max rel err %.3g, 0 of %lld over tolerance %.3g\n",
               s->max_abs, s->max_rel, (long long)s->n, s->tol_abs);
        return;
    }
    printf(": %lld of %lld elements over tolerance %.3g (max|ref| %.6g)\n", (long long)s->n_bad,
           (long long)s->n, s->tol_abs, s->ref_max);
    printf("      max abs err %.3g at ", s->max_abs);
    diff_print_index(stdout, s->at_abs, &v->got);
    printf(", max rel err %.3g at ", s->max_rel);
    diff_print_index(stdout, s->at_rel, &v->got);
    printf("\n      first over tolerance:");
    for (int k = 0; k < s->n_first; k++) {
        printf(" ");
        diff_print_index(stdout, s->first[k], &v->got);
    }
    printf("\n");
    for (int k = 0; k < s->n_worst; k++) {
        printf("      %s ", k ? "     " : "worst");
        diff_print_index(stdout, s->worst[k], &v->got);
        printf("  got %.6g  want %.6g\n", diff_elem(&v->got, s->worst[k]),
               diff_elem(&v->want, s->worst[k]));
    }
}

// Walk the dump in got_dir (index order) against ref_dir; report the first value off it,
// with its inputs.  Returns 0 (all compared agree), 1 (a divergence) or 2 (an error).
static int walk(const Bisect *B, const char *got_dir, const char *ref_dir, const char *ref_name)
{
    Index ix;
    if (!index_read(got_dir, &ix)) {
        index_free(&ix);
        return 2;
    }
    int compared = 0, dumped = 0, status = 0;
    for (int i = 0; i < ix.n && status == 0; i++) {
        const Entry *e = &ix.e[i];
        if (!materialized(e))
            continue;
        dumped++;
        Value v;
        if (!value_compare(B, e->name, got_dir, ref_dir, &v)) {
            status = 2;
        } else if (v.have_ref && v.ok) {
            compared++;
        } else if (v.have_ref) {
            char place[PATH_MAX + 32];
            printf("first value off %s, in topological order (%d matched before it):\n",
                   ref_name, compared);
            printf("  %s  (%s, %s, kernel %s)\n", e->name, e->op,
                   spec_place(B, e->spec, place, sizeof place), e->kernel);
            int n_abs = 0;
            char *into = xsprintf("(fused into %s)", e->name);
            for (int k = 0; k < ix.n; k++)
                if (strcmp(ix.e[k].file, into) == 0) {
                    if (n_abs++ == 0)
                        printf("  its kernel also implements, without storing their values:\n");
                    printf("    %s  (%s, %s)\n", ix.e[k].name, ix.e[k].op,
                           spec_place(B, ix.e[k].spec, place, sizeof place));
                }
            free(into);
            print_value("output", e->name, &v, ref_name);
            int in_ok = 0, in_bad = 0;
            char *inputs = xstrdup(e->inputs);
            for (char *tok = strtok(inputs, " "); tok; tok = strtok(NULL, " ")) {
                if (!strcmp(tok, "-"))
                    continue;
                const Entry *ie = index_find(&ix, tok);
                if (!ie) {
                    printf("  input  %s: not a computed value (an input, weight, constant or "
                           "state)\n", tok);
                    continue;
                }
                if (!materialized(ie)) {
                    printf("  input  %s: not stored by this build (%s)\n", tok, ie->file);
                    continue;
                }
                Value iv;
                if (!value_compare(B, tok, got_dir, ref_dir, &iv)) {
                    status = 2;
                } else if (!iv.have_ref) {
                    printf("  input  %s: %s has no %s.npy\n", tok, ref_name, tok);
                } else {
                    print_value("input ", tok, &iv, ref_name);
                    iv.ok ? in_ok++ : in_bad++;
                }
                value_free(&iv);
            }
            free(inputs);
            if (in_bad)
                printf("=> %d of its inputs are off the reference too: look upstream of it.\n",
                       in_bad);
            else if (in_ok)
                printf("=> its inputs match the reference (%d compared) and its output does "
                       "not: this node computes differently.\n", in_ok);
            else
                printf("=> none of its inputs has a reference to compare with.\n");
            if (n_abs)
                printf("   (a fused kernel: --disable-pass fuse-elementwise --disable-pass "
                       "fuse-attention stores each spec node's value)\n");
            status = status ? status : 1;
        }
        value_free(&v);
    }
    if (status == 0 && compared == 0) {
        fprintf(stderr, "kiln diff: error: none of the %d values the build dumped is in %s "
                        "(NAME.npy by spec name): nothing was compared\n", dumped, ref_name);
        status = 2;
    } else if (status == 0) {
        printf("all %d values with a reference in %s match (of %d the build stored; "
               "tolerance |a-b| <= %g + %g*max|ref| + %g*|ref|)\n", compared, ref_name, dumped,
               B->tol.atol, B->tol.atol_scale, B->tol.rtol);
    }
    index_free(&ix);
    return status;
}

// The model's outputs in WORK/a vs WORK/b.  Returns 0 (all agree), 1 (with the first that
// differs described in why), or 2 (an error, reported).
static int outputs_agree(const Bisect *B, const char *a, const char *b, char *why, size_t n)
{
    int status = 0;
    for (int o = 0; o < B->g->n_outputs && status == 0; o++) {
        char da[PATH_MAX + 64], db[PATH_MAX + 64], name[512];
        const char *out = B->g->outputs[o].name;
        snprintf(da, sizeof da, "%s/%s", B->work, a);
        snprintf(db, sizeof db, "%s/%s", B->work, b);
        snprintf(name, sizeof name, "out.%s", out);
        Value v;
        if (!value_compare(B, name, da, db, &v)) {
            status = 2;
        } else if (!v.have_ref) {
            fprintf(stderr, "kiln diff: error: %s/%s.npy was not written\n", db, name);
            status = 2;
        } else if (!v.ok) {
            status = 1;
            if (!v.st.same_shape)
                snprintf(why, n, "%s: the shapes differ", out);
            else
                snprintf(why, n, "%s: %lld of %lld elements over tolerance %.3g, max abs err "
                         "%.3g", out, (long long)v.st.n_bad, (long long)v.st.n, v.st.tol_abs,
                         v.st.max_abs);
        }
        value_free(&v);
    }
    return status;
}

static bool user_disabled(const Bisect *B, const char *pass)
{
    for (int k = 0; k < B->n_disabled; k++)
        if (strcmp(B->disabled[k], pass) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------------
 * The two bisections
 */

static int bisect_values(Bisect *B)
{
    printf("kiln diff --bisect: %s built with --dump, every value against %s\n", B->spec,
           B->ref_dir);
    fflush(stdout);
    if (!build_and_run(B, "build", NULL))
        return 2;
    char dump[PATH_MAX + 64];
    snprintf(dump, sizeof dump, "%s/build/dump", B->work);
    return walk(B, dump, B->ref_dir, B->ref_dir);
}

static int bisect_passes(Bisect *B)
{
    printf("kiln diff --bisect-passes: %s, the optimized binary against kiln interp "
           "(tolerance |a-b| <= %g + %g*max|ref| + %g*|ref|)\n", B->spec, B->tol.atol,
           B->tol.atol_scale, B->tol.rtol);
    fflush(stdout);
    if (!run_interp(B) || !build_and_run(B, "build", NULL))
        return 2;
    char why[1024];
    int rc = outputs_agree(B, "build", "interp", why, sizeof why);
    if (rc == 2)
        return 2;
    if (rc == 0) {
        printf("  every pass on: the outputs agree with the interpreter; nothing to bisect\n");
        return 0;
    }
    printf("  %-30s the outputs differ (%s)\n", "every pass on:", why);
    const char *culprit = NULL;
    for (int p = 0; p < ir_n_passes && !culprit; p++) {
        const Pass *pass = &ir_passes[p];
        if (pass->required || user_disabled(B, pass->name))
            continue;
        char tag[128], label[128];
        snprintf(tag, sizeof tag, "no-%s", pass->name);
        snprintf(label, sizeof label, "without %s:", pass->name);
        printf("  %-30s ", label);
        fflush(stdout);
        if (!build_and_run(B, tag, pass->name))
            return 2;
        rc = outputs_agree(B, tag, "interp", why, sizeof why);
        if (rc == 2)
            return 2;
        printf("%s\n", rc == 0 ? "the outputs agree" : "the outputs still differ");
        if (rc == 0)
            culprit = pass->name;
    }
    if (culprit)
        printf("=> the first pass whose being on makes the outputs disagree: %s\n\n", culprit);
    else
        printf("=> no optional pass alone: with each one off the outputs still differ (look at "
               "a required pass or the code generator)\n\n");
    char got[PATH_MAX + 64], ref[PATH_MAX + 64];
    snprintf(got, sizeof got, "%s/build/dump", B->work);
    snprintf(ref, sizeof ref, "%s/interp/dump", B->work);
    printf("the optimized build (every pass on) against the interpreter, value by value:\n");
    rc = walk(B, got, ref, "the interpreter's dump");
    if (rc == 0)
        printf("(no stored value differs: the outputs part after the last kernel)\n");
    return rc == 2 ? 2 : 1;
}

int kiln_cmd_bisect(int argc, char **argv)
{
    Bisect B;
    memset(&B, 0, sizeof B);
    bool help = false;
    int status = parse(&B, argc, argv, &help);
    if (help) {
        fputs(bisect_usage, stdout);
        status = 0;
    }
    if (help || status) {
        free(B.defs);
        free(B.disabled);
        free(B.inputs);
        return status;
    }
    // The spec, parsed here for its outputs' names (and its errors, said once).
    SpecDefine *defs = xcalloc((size_t)B.n_defs + 1, sizeof *defs);
    char **names = xcalloc((size_t)B.n_defs + 1, sizeof *names);
    for (int k = 0; k < B.n_defs; k++) {
        names[k] = xstrdup(B.defs[k]);
        char *eq = strchr(names[k], '=');
        *eq = 0;
        defs[k] = (SpecDefine){names[k], eq + 1};
    }
    Diag d;
    diag_init(&d);
    B.g = spec_load(B.spec, defs, B.n_defs, &d);
    status = 2;
    ssize_t len = readlink("/proc/self/exe", B.kiln, sizeof B.kiln - 1);
    if (!B.g || diag_count(&d)) {
        fprintf(stderr, "kiln diff: error: %s has errors (above)\n", B.spec);
    } else if (len <= 0) {
        fprintf(stderr, "kiln diff: error: cannot find the kiln executable (/proc/self/exe)\n");
    } else {
        B.kiln[len] = 0;
        const char *tmpdir = getenv("TMPDIR");
        if (B.keep) {
            snprintf(B.work, sizeof B.work, "%s", B.keep);
            if (mkdir(B.work, 0777) != 0 && errno != EEXIST)
                B.work[0] = 0;
        } else {
            snprintf(B.work, sizeof B.work, "%s/kiln-bisect.XXXXXX",
                     tmpdir && *tmpdir ? tmpdir : "/tmp");
            if (!mkdtemp(B.work))
                B.work[0] = 0;
        }
        if (!B.work[0])
            fprintf(stderr, "kiln diff: error: cannot create a work folder: %s\n",
                    strerror(errno));
        else
            status = B.passes ? bisect_passes(&B) : bisect_values(&B);
        if (B.work[0] && !B.keep)
            remove_tree(B.work);
        else if (B.work[0])
            printf("(builds, dumps and logs kept in %s)\n", B.work);
    }
    graph_free(B.g);
    for (int k = 0; k < B.n_defs; k++)
        free(names[k]);
    free(names);
    free(defs);
    free(B.defs);
    free(B.disabled);
    free(B.inputs);
    return status;
}
