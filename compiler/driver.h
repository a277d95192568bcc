/* compiler/driver.h: the kiln commands, called by main.c after it has parsed argv.
 *
 * Each command returns the process exit status: 0 success, 1 a failure of the user's input
 * (spec error, mismatch in `diff`), 2 a usage error.
 */
#ifndef KILN_DRIVER_H
#define KILN_DRIVER_H

#include "front.h"
#include "ir.h"

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
    bool verbose;               // print the compiler command
    const char *command_line;   // as typed, for the generated file's header comment
    // interp
    const char *weights;
    const char **io_inputs;     // "name=path"
    int n_io_inputs, cap_io_inputs;
    const char **io_outputs;
    int n_io_outputs, cap_io_outputs;
} Options;

int kiln_cmd_build(const Options *opt);
int kiln_cmd_emit(const Options *opt);
int kiln_cmd_inspect(const Options *opt);
int kiln_cmd_interp(const Options *opt);
int kiln_cmd_diff(int argc, char **argv);
int kiln_cmd_tokenize(int argc, char **argv);

#endif
