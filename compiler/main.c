/* compiler/main.c: the kiln command line: parse argv, dispatch to a command in driver.c.
 *
 *   kiln build   SPEC [-D k=v]... [-o BIN]     spec -> IR -> passes -> C -> clang -> BIN
 *   kiln emit    SPEC [-D k=v]... [-o FILE.c]  the C file and its C API header FILE.h
 *   kiln inspect SPEC [-D k=v]... [--after P]  the IR as text after parsing and each pass
 *   kiln interp  SPEC [-D k=v]... --weights W --input N=F ... [--output N=F ...]
 *   kiln diff    A.npy B.npy [--rtol R] [--atol A] [--atol-scale S]
 *   kiln diff    --bisect SPEC ... --ref-dir DIR | --bisect-passes SPEC ...   (bisect.c)
 *   kiln tokenize --tokenizer PATH (--text T | --file F) [--decode]
 *   kiln calibrate [--threads N] [--quick] [--print]   this machine's peak and bandwidth
 */
#include "driver.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "kiln " KILN_VERSION ": compile transformer specs (YAML) into native binaries via C\n"
    "\n"
    "usage:\n"
    "  kiln build   SPEC [options] [-o BIN]     compile SPEC into a native binary (default: ./<name>)\n"
    "  kiln emit    SPEC [options] [-o FILE.c]  write the generated C and its C API header FILE.h\n"
    "                                           (default: <name>.c; - = the C to stdout; docs/api.md)\n"
    "  kiln inspect SPEC [options] [--after P]  print the IR after parsing and after each pass\n"
    "  kiln inspect SPEC [options] --explain    each fusion candidate: what it fused into, or\n"
    "                                           the condition that failed, with spec lines\n"
    "  kiln interp  SPEC [options] --weights W --input NAME=FILE.npy ... [--output NAME=FILE.npy ...]\n"
    "                                           run the unoptimized IR with the reference interpreter\n"
    "  kiln diff    A.npy B.npy [--rtol R] [--atol A] [--atol-scale S]\n"
    "                                           compare a tensor with a reference; exit 1 on mismatch\n"
    "  kiln diff    --bisect SPEC [-D k=v]... --weights W --input NAME=FILE.npy ... --ref-dir DIR\n"
    "                                           build with --dump, run, and report the first value\n"
    "                                           (topological order) off DIR/NAME.npy, and its inputs\n"
    "  kiln diff    --bisect-passes SPEC [-D k=v]... --weights W --input NAME=FILE.npy ...\n"
    "                                           optimized binary vs interpreter: the first pass\n"
    "                                           that makes them disagree, and the first value\n"
    "                                           (kiln diff --bisect --help: their options)\n"
    "  kiln tokenize --tokenizer PATH (--text T | --file F) [--decode] [--special]\n"
    "                                           text -> token ids on one line (or ids -> text)\n"
    "  kiln calibrate [--threads N] [--quick]   measure this machine's FP32 FMA peak and read\n"
    "                                           bandwidth (a few seconds) and cache them in\n"
    "                                           $XDG_CACHE_HOME/kiln/calibration.json, else\n"
    "                                           ~/.cache/kiln/...; --print shows the cache\n"
    "\n"
    "options for build, emit, inspect, interp:\n"
    "  -D NAME=VALUE         override spec parameter NAME (e.g. -D n_layer=2)\n"
    "  --disable-pass NAME   skip an optional pass (see the list below); repeatable\n"
    "  --isa ISA             vector ISA of the generated code: auto (default: this machine's\n"
    "                        best, tiled for its caches), avx512, avx2, neon or scalar (tiled\n"
    "                        for default cache sizes, so the C is the same on any host)\n"
    "  --time-passes         print the time each pass took\n"
    "  --after PASS          inspect: print only after PASS ('parse', a pass name, or 'all')\n"
    "  --dot                 inspect: Graphviz DOT of the graph (after the last pass, or --after)\n"
    "  --svg FILE            inspect: render that graph to FILE with Graphviz's dot\n"
    "  -o PATH               output path\n"
    "  --emit-c FILE         build: also keep the generated C as FILE\n"
    "  --cc CC               build: C compiler (default clang)\n"
    "  --cflags \"FLAGS\"      build: extra compiler flags (also from $KILN_CFLAGS)\n"
    "  -v                    build: print the compiler command\n"
    "  --report              build, emit: a table per kernel of the generated C: its IR nodes\n"
    "                        and spec line, FLOPs, bytes moved, FLOP/byte and the roofline\n"
    "                        bound at this machine's peak and bandwidth (kiln calibrate)\n"
    "  --report-json FILE    build, emit: the same as JSON\n"
    "  --dims NAME=N,...     build, emit: the symbolic dims the report is taken at (default:\n"
    "                        their bounds; a state's position at 0)\n"
    "  --peak-gflops G       build, emit: the peak and bandwidth for --report and --profile,\n"
    "  --bandwidth-gbs B     instead of the calibration cache (both or neither)\n"
    "  --dump                build, emit: the binary can write every intermediate value\n"
    "                        (./BIN ... --dump-dir DIR: DIR/NAME.npy by spec name, index.tsv)\n"
    "  --dump-dir DIR        interp: write every value the interpreter computes the same way\n"
    "  --profile             build, emit: the binary times every kernel call and prints a table\n"
    "                        at exit, with the roofline bound when the build knew the machine\n"
    "  --explain             inspect: the fusion candidates instead of the IR\n"
    "\n"
    "The binary a build makes runs as:\n"
    "  ./BIN --weights model.safetensors --input NAME=FILE.npy ... [--output NAME=FILE.npy ...]\n"
    "        [--threads N] [--repeat N] [--warmup N] [--dump-dir DIR] [--help]\n"
    "                                           (./BIN --help: its inputs, outputs, bounds)\n"
    "\n"
    "passes (in order):\n";

static void print_usage(FILE *out)
{
    fputs(usage, out);
    for (int i = 0; i < ir_n_passes; i++)
        fprintf(out, "  %-22s %s%s\n", ir_passes[i].name, ir_passes[i].doc,
                ir_passes[i].required ? " (required)" : "");
    fputs("\nDocumentation: docs/spec.md (spec language), docs/passes.md, docs/codegen.md,\n"
          "docs/runtime.md, docs/api.md, docs/inspect.md, docs/tokenizers.md, docs/security.md,\n"
          "docs/bench.md.\n",
          out);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "kiln: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run 'kiln --help' for usage)\n");
    return 2;
}

// The command line joined by spaces, for the generated file's header (no absolute paths are
// added by kiln; what the user typed is kept as typed).
static char *join_args(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *s = xmalloc(n), *p = s;
    for (int i = 0; i < argc; i++)
        p += sprintf(p, "%s%s", i ? " " : "", i == 0 ? "kiln" : argv[i]);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return print_usage(stderr), 2;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("kiln %s\n", KILN_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "diff"))
        return kiln_cmd_diff(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize"))
        return kiln_cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "calibrate"))
        return kiln_cmd_calibrate(argc - 2, argv + 2);
    int (*run)(const Options *) = !strcmp(cmd, "build")     ? kiln_cmd_build
                                  : !strcmp(cmd, "emit")    ? kiln_cmd_emit
                                  : !strcmp(cmd, "inspect") ? kiln_cmd_inspect
                                  : !strcmp(cmd, "interp")  ? kiln_cmd_interp
                                                            : NULL;
    if (!run)
        return usage_error("unknown command '%s' (commands: build emit inspect interp diff "
                           "tokenize calibrate)", cmd);

    Options opt = {0};
    opt.command_line = join_args(argc, argv);
    int status = 2;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        // Options that take a value accept "--opt value" and "--opt=value".
        const char *val = NULL;
        char key[64] = "";
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            size_t kl = eq ? (size_t)(eq - a) : strlen(a);
            if (kl >= sizeof key)
                kl = sizeof key - 1;
            memcpy(key, a, kl);
            key[kl] = 0;
            if (eq)
                val = eq + 1;
        }
#define VALUE()                                                               \
    (val ? val : (i + 1 < argc ? argv[++i] : (usage_error("%s needs a value", a), NULL)))
        if (!strcmp(a, "-D") || !strncmp(a, "-D", 2)) {
            const char *def = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            const char *eq = def ? strchr(def, '=') : NULL;
            if (!def || !eq || eq == def) {
                usage_error("-D wants NAME=VALUE, found '%s'", def ? def : "");
                goto out;
            }
            SpecDefine sd = {xstrdup(def), eq + 1};
            ((char *)sd.name)[eq - def] = 0;
            sd.value = sd.name + (eq - def) + 1;
            VEC_PUSH(opt.defs, opt.n_defs, opt.cap_defs, sd);
        } else if (!strcmp(a, "-o")) {
            if (!(opt.out_path = i + 1 < argc ? argv[++i] : NULL)) {
                usage_error("%s needs a value", a);
                goto out;
            }
        } else if (!strcmp(a, "-v")) {
            opt.verbose = true;
        } else if (!strcmp(key, "--disable-pass")) {
            const char *v = VALUE();
            if (!v)
                goto out;
            VEC_PUSH(opt.disabled, opt.n_disabled, opt.cap_disabled, v);
        } else if (!strcmp(key, "--isa")) {
            if (!(opt.isa = VALUE()))
                goto out;
            Isa isa;
            if (strcmp(opt.isa, "auto") != 0 && !isa_parse(opt.isa, &isa)) {
                usage_error("--isa wants auto, avx512, avx2, neon or scalar, found '%s'", opt.isa);
                goto out;
            }
        } else if (!strcmp(a, "--time-passes")) {
            opt.time_passes = true;
        } else if (!strcmp(a, "--explain")) {
            opt.explain = true;
        } else if (!strcmp(a, "--report")) {
            opt.report = true;
        } else if (!strcmp(key, "--report-json")) {
            if (!(opt.report_json = VALUE()))
                goto out;
        } else if (!strcmp(key, "--dims")) {
            if (!(opt.dims = VALUE()))
                goto out;
        } else if (!strcmp(key, "--peak-gflops") || !strcmp(key, "--bandwidth-gbs")) {
            const char *v = VALUE();
            char *end = NULL;
            double x = v ? strtod(v, &end) : 0;
            if (!v)
                goto out;
            if (!*v || *end || !(x > 0 && x < 1e9)) {
                usage_error("%s wants a positive number", key);
                goto out;
            }
            if (!strcmp(key, "--peak-gflops"))
                opt.peak_gflops = x;
            else
                opt.bandwidth_gbs = x;
        } else if (!strcmp(a, "--profile")) {
            opt.profile = true;
        } else if (!strcmp(a, "--dump")) {
            opt.dump = true;
        } else if (!strcmp(key, "--dump-dir")) {
            if (!(opt.dump_dir = VALUE()))
                goto out;
        } else if (!strcmp(a, "--dot")) {
            opt.dot = true;
        } else if (!strcmp(key, "--svg")) {
            if (!(opt.svg = VALUE()))
                goto out;
        } else if (!strcmp(key, "--after")) {
            if (!(opt.after = VALUE()))
                goto out;
        } else if (!strcmp(key, "--emit-c")) {
            if (!(opt.emit_c = VALUE()))
                goto out;
        } else if (!strcmp(key, "--cc")) {
            if (!(opt.cc = VALUE()))
                goto out;
        } else if (!strcmp(key, "--cflags")) {
            if (!(opt.cflags = VALUE()))
                goto out;
        } else if (!strcmp(key, "--weights")) {
            if (!(opt.weights = VALUE()))
                goto out;
        } else if (!strcmp(key, "--input")) {
            const char *v = VALUE();
            if (!v)
                goto out;
            VEC_PUSH(opt.io_inputs, opt.n_io_inputs, opt.cap_io_inputs, v);
        } else if (!strcmp(key, "--output")) {
            const char *v = VALUE();
            if (!v)
                goto out;
            VEC_PUSH(opt.io_outputs, opt.n_io_outputs, opt.cap_io_outputs, v);
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage(stdout);
            status = 0;
            goto out;
        } else if (a[0] == '-' && a[1]) {
            usage_error("unknown option '%s'", a);
            goto out;
        } else if (!opt.spec_path) {
            opt.spec_path = a;
        } else {
            usage_error("unexpected argument '%s' (one spec per command)", a);
            goto out;
        }
#undef VALUE
    }
    if (!opt.spec_path) {
        usage_error("%s needs a spec file", cmd);
        goto out;
    }
    // Options that belong to other commands are errors, not silently ignored.
    if (run != kiln_cmd_interp && (opt.weights || opt.n_io_inputs || opt.n_io_outputs)) {
        usage_error("--weights/--input/--output belong to 'kiln interp' (and to the built "
                    "binary), not to '%s'", cmd);
        goto out;
    }
    if (run != kiln_cmd_inspect && (opt.after || opt.dot || opt.svg)) {
        usage_error("--after/--dot/--svg belong to 'kiln inspect', not to '%s'", cmd);
        goto out;
    }
    if (run != kiln_cmd_build && (opt.cc || opt.cflags || opt.emit_c)) {
        usage_error("--cc/--cflags/--emit-c belong to 'kiln build', not to '%s'", cmd);
        goto out;
    }
    if (run != kiln_cmd_build && run != kiln_cmd_emit &&
        (opt.report || opt.report_json || opt.dims || opt.peak_gflops || opt.bandwidth_gbs ||
         opt.profile)) {
        usage_error("--report/--report-json/--dims/--peak-gflops/--bandwidth-gbs/--profile "
                    "belong to 'kiln build' and 'kiln emit', not to '%s'", cmd);
        goto out;
    }
    if ((opt.peak_gflops > 0) != (opt.bandwidth_gbs > 0)) {
        usage_error("%s", "--peak-gflops and --bandwidth-gbs go together");
        goto out;
    }
    if (opt.dims && !opt.report && !opt.report_json) {
        usage_error("%s", "--dims is for --report and --report-json (a --profile binary "
                          "takes the dims of each run)");
        goto out;
    }
    if (opt.peak_gflops && !opt.report && !opt.report_json && !opt.profile) {
        usage_error("%s", "--peak-gflops/--bandwidth-gbs are for --report, --report-json "
                          "and --profile");
        goto out;
    }
    if (opt.dump && run != kiln_cmd_build && run != kiln_cmd_emit) {
        usage_error("--dump belongs to 'kiln build' and 'kiln emit', not to '%s' (kiln interp "
                    "takes --dump-dir DIR)", cmd);
        goto out;
    }
    if (opt.dump_dir && run != kiln_cmd_interp) {
        usage_error("--dump-dir belongs to 'kiln interp' and to a binary built with --dump, "
                    "not to '%s'", cmd);
        goto out;
    }
    if (opt.explain && (run != kiln_cmd_inspect || opt.after || opt.dot || opt.svg)) {
        usage_error("%s", "--explain is a 'kiln inspect' mode of its own (without --after, "
                          "--dot, --svg)");
        goto out;
    }
    status = run(&opt);
out:
    for (int i = 0; i < opt.n_defs; i++)
        free((char *)opt.defs[i].name);
    free(opt.defs);
    free(opt.disabled);
    free(opt.io_inputs);
    free(opt.io_outputs);
    free((char *)opt.command_line);
    return status;
}
