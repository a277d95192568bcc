/* codegen/cg.h: the code generator: a planned Graph in, one self-contained C file out.
 *
 * cg_emit_model() is the entry point, called by the driver after the pass pipeline (whose
 * last pass, plan-memory, fixed every activation's arena offset).  The file it writes
 * includes only kiln_rt.h and holds: a header comment, an enum of the spec's params, the
 * folded constants, one kernel function per computing IR node, forward() calling them in
 * graph order, and the kiln_model the runtime's main() runs (docs/codegen.md).
 *
 * Sections follow the files that define them:
 *   writer.c               the text buffer, C literals, symbolic sizes (Mono), loop nests
 *   emit.c                 naming, the file layout, kernel signatures, forward(), kiln_model
 *   kernels_elementwise.c  add sub mul div scale relu tanh gelu cast causal_mask arange
 *   kernels_reduce.c       softmax layer_norm (row-wise)
 *   kernels_matmul.c       matmul
 *   kernels_layout.c       transpose slice concat gather
 */
#ifndef KILN_CG_H
#define KILN_CG_H

#include "ir.h"

typedef struct {
    const char *command;    // the kiln command line that produced the file, for the header
                            // comment (kiln adds no absolute paths); NULL: none
    const char *isa;        // "scalar" (or "native", NULL): plain C that clang vectorizes
} CgOptions;

// Write the C file of g to `out`.  Requires plan-memory to have run (Node.offset and
// Graph.arena_bytes set); a graph it cannot lower (an op or dtype without a kernel, more
// symbolic dims than the runtime binds) is reported to d with the node's spec place and
// nothing is written.  The text is built in memory first, so `out` receives all or nothing.
// Same graph and options give byte-identical output.  Returns true on success.
bool cg_emit_model(const Graph *g, const CgOptions *opt, FILE *out, Diag *d);

/* ---------------------------------------------------------------------------------------
 * writer.c: text buffers and C literals
 */

// Buf: a growable string with an indentation level for bline().
typedef struct {
    char *data;         // NUL-terminated once anything was written; malloc'd
    size_t len, cap;
    int indent;         // bline() writes 4 * indent spaces first
} Buf;

void bprintf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bputs(Buf *b, const char *s);
// One line of code: indentation, the formatted text, a newline.
void bline(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bfree(Buf *b);
const char *bstr(const Buf *b);     // "" when empty
// One line: head, the items separated by ", ", tail; breaks before an item that would pass
// column 100 and aligns the continuation under the first item (signatures, calls, enums).
void blist(Buf *b, const char *head, const char *const *items, int n, const char *tail);

// Text that is safe inside a /* */ comment: "*/" and control characters are defused.
void bcomment_text(Buf *b, const char *s);
// A C string literal, quotes included.  printf_fmt: also double every '%' (the literal is a
// format string).
void bc_string(Buf *b, const char *s, bool printf_fmt);
// A float value as a C float literal that reads back exactly ("0.125f", "-INFINITY").
void bc_float(Buf *b, float v);
// A double as a C double literal that reads back exactly ("0.036084391824351615").
void bc_double(Buf *b, double v);
// Whether generated code must not declare `name` at file scope: a C keyword, a name the
// standard headers behind kiln_rt.h declare or define (gamma, index, M_PI, linux, ...), a
// leading underscore, or the kiln_/KILN_ prefix.
bool cg_c_reserved(const char *name);

/* ---------------------------------------------------------------------------------------
 * writer.c: symbolic sizes
 */

#define CG_MONO_MAX 16      // symbolic factors in one product

// Mono: a product c * sym[0] * sym[1] * ... of a constant and symbolic dims: every size,
// stride and element count of a tensor whose dims are static or symbolic has this form.
// sym[] is sorted, so equal products have equal representations.
typedef struct {
    int64_t c;
    int n;
    int sym[CG_MONO_MAX];
} Mono;

Mono mono_const(int64_t c);
Mono mono_dim(Dim d);
Mono mono_mul(Mono a, Mono b);
bool mono_eq(Mono a, Mono b);
bool mono_is(Mono a, int64_t c);            // the constant c (no symbolic factor)
Mono mono_dims(const Type *t, int from, int to);    // product of t->dim[from..to)
Mono mono_numel(const Type *t);

/* ---------------------------------------------------------------------------------------
 * emit.c: what the kernel writers share
 */

// Cg: state of one cg_emit_model call.
typedef struct Cg {
    const Graph *g;
    const CgOptions *opt;
    Diag *d;
    Arena tmp;                  // strings of this call, dropped at its end
    const char **sym_var;       // [g->n_syms] C name of each symbolic dim's run-time value
    uint32_t *sym_used;         // where cg_mono() records the syms it printed (a bit each)
} Cg;

// Kernel: one kernel function being written.  emit.c sets it up, the op's writer fills body;
// emit.c then writes the comment block, the signature (only the syms the body used) and body.
typedef struct {
    Cg *cg;
    const Node *n;
    const Node *in[KILN_MAX_IN];    // the node's inputs
    const char *arg[KILN_MAX_IN];   // parameter names of the inputs ("a", "b", "x", ...)
    const char *out;                // parameter name of the output: "out"
    Buf body;                       // the statements inside the braces, indent 1
    uint32_t syms;                  // symbolic dims the body refers to
    bool can_fail;                  // returns int (0 or kiln_fail's 1) and takes kiln_run *r
} Kernel;

// A formatted string that lives until the end of the call.
char *cg_fmt(Cg *cg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// m as a C expression ("seq * 64", "768", "0"); marks its syms used in *cg->sym_used.
// paren: wrap a product in parentheses (for use after '/' or '%').
const char *cg_mono(Cg *cg, Mono m, bool paren);
const char *cg_ctype(DType t);      // "float", "int32_t", "int64_t"
// Report that node n cannot be lowered (a spec-level limitation, not a kiln bug); false.
bool cg_unsupported(Cg *cg, const Node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Strides of a row-major tensor: st[k] = product of t->dim[k+1..rank).
void cg_strides(const Type *t, Mono *st);

// A loop nest over an index space, read and written through several operands, each with
// its own (element) strides and base offset.  cg_nest_simplify drops trip-1 loops and merges
// neighbours that every operand walks contiguously, so a plain elementwise op becomes one
// loop and a bias add two.
#define CG_MAX_LOOPS KILN_MAX_RANK
#define CG_MAX_OPS 4
typedef struct {
    int n_loops;
    Mono size[CG_MAX_LOOPS];
    int n_ops;
    Mono stride[CG_MAX_OPS][CG_MAX_LOOPS];
    Mono base[CG_MAX_OPS];
} Nest;

void cg_nest_simplify(Nest *nest);
// "lhs = rhs;" on one line, or broken after the '=' when it would pass column 100.
void cg_assign(Kernel *k, const char *lhs, const char *rhs);
// Write the `for` headers and set index[o] to operand o's element index expression; the
// caller writes the body and then calls cg_nest_close with the same brace.  Without brace
// each loop holds one statement (the next loop, finally the body); with it the innermost
// opens a block.  Loop variables are `i` (one loop) or i0, i1, ...
void cg_nest_open(Kernel *k, const Nest *nest, const char **index, bool brace);
void cg_nest_close(Kernel *k, const Nest *nest, bool brace);

/* ---------------------------------------------------------------------------------------
 * kernels_*.c: one writer per op family.  Each appends the body of k's function to k->body
 * (indent 1) and returns false after cg_unsupported() if it cannot lower the node.
 */
bool cg_kernel_elementwise(Kernel *k);     // ADD SUB MUL DIV SCALE RELU TANH GELU CAST
bool cg_kernel_causal_mask(Kernel *k);
bool cg_kernel_arange(Kernel *k);
bool cg_kernel_softmax(Kernel *k);
bool cg_kernel_layer_norm(Kernel *k);
bool cg_kernel_matmul(Kernel *k);
bool cg_kernel_transpose(Kernel *k);
bool cg_kernel_slice(Kernel *k);
bool cg_kernel_concat(Kernel *k);
bool cg_kernel_gather(Kernel *k);

#endif
