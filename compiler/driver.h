/* compiler/driver.h: the kiln commands, called by main.c after it has parsed argv.
 *
 * Each command returns the process exit status: 0 success, 1 a failure of the user's input
 * (spec error, mismatch in `diff`), 2 a usage error.
 */
#ifndef KILN_DRIVER_H
#define KILN_DRIVER_H

#include "front.h"
#include "ir.h"
#include "kiln_rt.h"

typedef struct {
    const char *spec_path;
    SpecDefine *defs;           // -D name=value, in order
    int n_defs, cap_defs;
    const char **disabled;      // --disable-pass NAME
    int n_disabled, cap_disabled;
    const char *out_path;       // -o
    const char *cc;             // --cc (default clang)
    const char *cflags;         // --cflags "...", extra flags for the C compiler
    const char *emit_c;         // build: also keep the generated C here
    const char *after;          // inspect --after PASS
    bool dot;                   // inspect --dot: Graphviz DOT instead of text
    const char *svg;            // inspect --svg FILE: render the DOT with Graphviz
    const char *isa;            // --isa NAME: avx512, avx2, neon, scalar; NULL or "auto": the
                                // host's best (build, emit, inspect)
    bool time_passes;
    bool explain;               // inspect --explain: each fusion candidate, fused or why not
    bool report;                // build, emit --report: FLOPs, bytes, roofline per kernel
    const char *report_json;    // build, emit --report-json FILE: the same as JSON
    const char *dims;           // --dims seq=128,batch=1: the dims the report is taken at
    double peak_gflops;         // --peak-gflops G: instead of the calibration cache (0: none)
    double bandwidth_gbs;       // --bandwidth-gbs B: likewise
    bool profile;               // build, emit --profile: the binary times every kernel
    bool dump;                  // build, emit --dump: the binary can write every value it
                                // computes (--dump-dir DIR at run time; codegen/dump.c)
    bool verbose;               // print the compiler command
    const char *command_line;   // as typed, for the generated file's header comment
    // interp
    const char *weights;
    const char **io_inputs;     // "name=path"
    int n_io_inputs, cap_io_inputs;
    const char **io_outputs;
    int n_io_outputs, cap_io_outputs;
    const char *dump_dir;       // interp --dump-dir DIR: every value as DIR/NAME.npy (dump.c)
} Options;

int kiln_cmd_build(const Options *opt);
int kiln_cmd_emit(const Options *opt);
int kiln_cmd_inspect(const Options *opt);
int kiln_cmd_interp(const Options *opt);
int kiln_cmd_diff(int argc, char **argv);
int kiln_cmd_tokenize(int argc, char **argv);
int kiln_cmd_calibrate(int argc, char **argv);

// report.c: write root as JSON text to path atomically (a temporary beside it, then rename);
// false after printing why it could not.
struct cJSON;
bool write_json(const char *path, struct cJSON *root);

/* ---------------------------------------------------------------------------------------
 * calibrate.c: this machine's FP32 peak and read bandwidth, cached (kiln calibrate)
 */

// Machine: the figures a roofline bound needs, from the cache or from flags.
typedef struct {
    bool known;
    char source[96];            // for tables: "kiln calibrate, 2026-11-25" (no paths)
    char cpu[256], isa[16], date[32];
    int lanes;                  // floats per vector of the probe's ISA
    int threads;                // N of the N-thread figures; 0: they hold for any count (flags)
    double peak_gflops_1, peak_gflops;      // FP32 FMA peak, 1 thread and N threads
    double peak_gflops_measured;            // the N-thread trials' best (calibrate.c)
    double bandwidth_gbs_1, bandwidth_gbs;  // read bandwidth, 1 thread and N threads
    bool quick;                 // measured with --quick: rough
} Machine;

// The cache file: $XDG_CACHE_HOME/kiln/calibration.json (when XDG_CACHE_HOME is absolute),
// else $HOME/.cache/kiln/calibration.json.  False when neither variable is set.
bool calibration_path(char *buf, size_t n);
// Read the cache into *m.  False with the reason in why (no cache, not kiln's, another CPU).
bool calibration_load(Machine *m, char *why, size_t n);

/* ---------------------------------------------------------------------------------------
 * report.c: kiln build/emit --report, --report-json, and the figures --profile embeds
 */

// The machine figures for a report or a profile build: --peak-gflops and --bandwidth-gbs
// when given (both), else the calibration cache.  m->known false, with the reason in why,
// when there are none.
void report_machine(const Options *opt, Machine *m, char *why, size_t n);
// Whether --dims names dims of g with values in range (else a message).
bool report_dims_ok(const Graph *g, const Options *opt);
// The per-kernel table of the final graph g to `out` and, with --report-json, the JSON file.
// kernel_of[i]: the kernel function node i calls (cg_emit_model's CgOptions.kernel_of).
// Returns 0, 1 (cannot write the JSON) or 2 (a bad --dims).
int report_write(const Graph *g, const char *const *kernel_of, const Options *opt, FILE *out);

/* ---------------------------------------------------------------------------------------
 * diff.c: a tensor against a reference, elementwise (kiln diff, and bisect.c)
 */

// An element matches when |a - b| <= atol + atol_scale * max|b| + rtol * |b|; NaN matches
// only NaN, an infinity only itself.
typedef struct {
    double rtol, atol, atol_scale;
} DiffTol;

#define DIFF_SHOW 5     // indices a comparison keeps for messages

typedef struct {
    bool same_shape;            // false: nothing else is filled
    int64_t n;                  // elements
    double ref_max;             // max |b| over finite elements
    double tol_abs;             // atol + atol_scale * ref_max
    double max_abs, max_rel;    // largest errors and their flat indices
    int64_t at_abs, at_rel;
    int64_t n_bad;              // elements over tolerance
    int n_first;                // the first n_first of them, flat indices in order
    int64_t first[DIFF_SHOW];
    int n_worst;                // the largest abs errors, largest first
    int64_t worst[DIFF_SHOW];
} DiffStats;

// Compare a with the reference b (any of f32/i32/i64 each).
void diff_compare(const kiln_npy *a, const kiln_npy *b, const DiffTol *tol, DiffStats *s);
double diff_elem(const kiln_npy *a, int64_t i);       // element i as a double
// "[0, 3, 17]": flat index i of a tensor of a's shape, to out.
void diff_print_index(FILE *out, int64_t flat, const kiln_npy *a);
// "[2, 12, 64]" of a's shape, to out.
void diff_print_shape(FILE *out, const kiln_npy *a);

/* ---------------------------------------------------------------------------------------
 * bisect.c: kiln diff --bisect (first value off a reference folder), --bisect-passes
 */

// argv: what follows `kiln diff`, one of them --bisect or --bisect-passes.  Exit status:
// 0 everything agrees, 1 a divergence was found (and reported), 2 a usage error or a step
// (build, run, interp) that failed.
int kiln_cmd_bisect(int argc, char **argv);

/* ---------------------------------------------------------------------------------------
 * dump.c: kiln interp --dump-dir, the interpreter's values in the layout of a --dump build's
 */

typedef struct InterpDump InterpDump;

// Start dumping the values of g (unoptimized) into dir.  NULL after a message.
InterpDump *interp_dump_open(const Graph *g, const char *dir);
// An InterpEach for ir_interpret_each, ctx an InterpDump: writes every computed value.
bool interp_dump_value(void *ctx, const Node *n, const Tensor *value);
// Write dir/index.tsv and free d (NULL: nothing).  False after a message.
bool interp_dump_close(InterpDump *d);

#endif
