/* codegen/cg.h: the code generator: a planned Graph in, one self-contained C file out.
 *
 * cg_emit_model() is the entry point, called by the driver after the pass pipeline (whose
 * last pass, plan-memory, fixed every activation's arena offset).  The file it writes
 * includes only kiln_rt.h and holds: a header comment, an enum of the spec's params, the
 * folded constants, one kernel function per computing IR node (nodes with identical kernels,
 * such as a repeat block's layers, share one), forward() calling them in graph order, and the
 * kiln_model the runtime's main() runs (docs/codegen.md).
 *
 * Sections follow the files that define them:
 *   writer.c               the text buffer, C literals, symbolic sizes (Mono), loop nests
 *   emit.c                 naming, the file layout, kernel signatures, forward(), kiln_model
 *   kernels_elementwise.c  add sub mul div scale relu tanh gelu cast causal_mask arange
 *   kernels_reduce.c       softmax layer_norm (row-wise)
 *   kernels_matmul.c       matmul: plain loops, or packed panels and a microkernel (tiled)
 *   isa_prelude.c          the vector vocabulary (V_LOAD, V_FMA, ...) of the target ISA
 *   kernels_layout.c       transpose slice concat gather
 *   kernels_attention.c    fused_attention (made by fuse-attention)
 *   epilogue.c             element-wise epilogues that kernels apply before storing
 */
#ifndef KILN_CG_H
#define KILN_CG_H

#include "ir.h"

// CgProfile: what a --profile build knows of the machine, for the roofline bound the binary
// prints next to each kernel's time (profile.c).  All zero: no figures, times only.
typedef struct {
    double peak_gflops_1, peak_gflops;      // FP32 FMA peak on 1 thread and on `threads`
    double bandwidth_gbs_1, bandwidth_gbs;  // read bandwidth on 1 thread and on `threads`
    int threads;            // 0: the figures hold for any thread count (given as flags)
    const char *source;     // where they came from, for the table (no machine paths)
} CgProfile;

typedef struct {
    const char *command;    // the kiln command line that produced the file, for the header
                            // comment (kiln adds no absolute paths); NULL: none
    const char *isa;        // "scalar" (or "native", NULL): plain C that clang vectorizes
    const CgProfile *profile;   // --profile: time every kernel call (profile.c); NULL: a
                                // normal build, whose text never depends on this file
    const char **kernel_of;     // when set, [g->n_nodes] filled with the kernel function
                                // forward() calls for each node (xstrdup'd, the caller frees),
                                // NULL for nodes without one (kiln build --report)
    bool dump;                  // --dump: forward() hands every value to kiln_dump_node
                                // (dump.c); false: a normal build, which has none of it
} CgOptions;

// Write the C file of g to `out`.  Requires plan-memory to have run (Node.offset and
// Graph.arena_bytes set); a graph it cannot lower (an op or dtype without a kernel, more
// symbolic dims than the runtime binds) is reported to d with the node's spec place and
// nothing is written.  The text is built in memory first, so `out` receives all or nothing.
// Same graph and options give byte-identical output.  Returns true on success.
bool cg_emit_model(const Graph *g, const CgOptions *opt, FILE *out, Diag *d);

// emit_api.c: the typed C API.  cg_emit_api writes NAME_open/NAME_forward/NAME_close at the
// end of the C file; cg_emit_api_header writes NAME.h, their declarations.
typedef struct Buf Buf;
void cg_emit_api(const Graph *g, Buf *b);
bool cg_emit_api_header(const Graph *g, FILE *out);
// The spec's `text:` roles as `model_text`, when it has them.
void cg_emit_text(const Graph *g, Buf *b);

/* ---------------------------------------------------------------------------------------
 * writer.c: text buffers and C literals
 */

// Buf: a growable string with an indentation level for bline().
struct Buf {
    char *data;         // NUL-terminated once anything was written; malloc'd
    size_t len, cap;
    int indent;         // bline() writes 4 * indent spaces first
};

void bprintf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bputs(Buf *b, const char *s);
// One line of code: indentation, the formatted text, a newline.
void bline(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// A // comment of the formatted text, broken at spaces to stay within 100 columns (control
// characters and backslashes, which could end or continue the line, shown as '?').
void bline_comment(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
// A spec path for generated text: as given, unless absolute (machine-specific, so not
// deterministic across checkouts): then its last component.
const char *cg_display_path(const char *p);

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
    Isa isa;                    // the vector ISA of the file: g->target.isa, or CgOptions.isa
    struct CgPack *packs;       // weights packed at load (cg_pack_plan), in graph order
    int n_packs;
    int *pack_of;               // [g->n_nodes] index into packs of a matmul's b, or -1
    int64_t packed_bytes;       // all packs, each 64-byte aligned
    unsigned math[2];           // CG_MATH_* bits: the math functions some kernel calls, [0] on
                                // one float (s_tanh, ...), [1] on vectors (V_TANH, ...)
    int *dump_at;               // --dump: [n_nodes] index in model_dump of the first entry
                                // node i adds, -1: none (dump.c; in tmp, made on first use)
} Cg;

/* ---------------------------------------------------------------------------------------
 * profile.c: the timing a --profile build adds (CgOptions.profile); nothing otherwise
 */

// After the kernels, before forward(): the kernels' table (kiln_prof, kiln_rt.h), the cost
// function that gives each kernel's FLOPs and bytes at a run's dims, and one macro per kernel
// function, named after it, that times its calls in forward().  kname[i]: the function node
// i calls (NULL: none); kfail[i]: it returns int.
void cg_emit_profile(Cg *cg, const char *const *kname, const bool *kfail, Buf *b);
// After forward(): kiln_profile_forward, which kiln_model.forward names in a profile build,
// and the destructor that prints the table when the program exits.
void cg_emit_profile_forward(Cg *cg, Buf *b);

/* ---------------------------------------------------------------------------------------
 * dump.c: what a --dump build adds (CgOptions.dump); nothing otherwise
 */

// The spec node whose value node n holds: the last one it implements (Node.origins), which
// is n itself for a plain node, the last element-wise op of its epilogue, or the final
// matmul of a fused attention.  Its name is the value's name in a dump.
const Origin *cg_value_origin(const Node *n);
// Before forward(): model_dump, the table of every value forward() dumps (kiln_dump_entry,
// kiln_rt.h), in the order it dumps them.  kname[i]: the kernel function of node i (NULL:
// none); var[i]: the name forward() gives node i's storage.
void cg_emit_dump_table(Cg *cg, const char *const *kname, Buf *b);
// In forward(), after node n's kernel call (or, for a view of a source, at its place): the
// kiln_dump_node calls of n's value and of the views that share its buffer.  var[i]: what
// forward() names node i's storage; used[i] is set for every root a call reads.
void cg_emit_dump_calls(Cg *cg, const Node *n, const char *const *var, bool *used, Buf *body);
int cg_dump_count(Cg *cg);      // entries in model_dump

// The math functions of the prelude (isa_prelude.c): tanh and gelu without libm calls.
enum {
    CG_MATH_TANH = 1,           // s_tanh(x), V_TANH(v)
    CG_MATH_GELU_TANH = 2,      // s_gelu_tanh(x), V_GELU_TANH(v)
    CG_MATH_GELU_ERF = 4,       // s_gelu_erf(x), V_GELU_ERF(v)
    CG_MATH_EXP = 8,            // V_EXP(v): e^x for x <= 0 (the attention's softmax)
};

// Elements a thread's share of a row-parallel kernel should hold at least (Kernel.par_min):
// fewer are done faster by the calling thread than handed to a worker.
#define CG_PAR_MIN_ELEMS 16384

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
    bool needs_run;                 // takes kiln_run *r (for kiln_parallel_for) without failing
    const char *par_rows;           // set: the body loops over rows [row0, row1) of this many
                                    // (a C expression), and emit.c splits them over the threads
                                    // (kernel_code: a task function and a job struct)
    uint32_t par_syms;              // symbolic dims par_rows refers to
    int64_t par_min;                // rows a thread's share must hold at least (1 or more)
    const char *name;               // the kernel function's name ("k_h_0_mlp_fc")
    Buf helpers;                    // functions of its own, written before its comment
    Buf notes;                      // more comment lines, each " *   ...\n" (tiling chosen)
    int epi_applied;                // cg_epilogue_apply* calls (emit.c checks a node with an
                                    // epilogue got one: never dropped silently)
} Kernel;

// A formatted string that lives until the end of the call.
char *cg_fmt(Cg *cg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// m as a C expression ("seq * 64", "768", "0"); marks its syms used in *cg->sym_used.
// paren: wrap a product in parentheses (for use after '/' or '%').
const char *cg_mono(Cg *cg, Mono m, bool paren);
// Symbolic dim s's variable, marked used in *cg->sym_used like cg_mono's.
static inline const char *cg_sym(Cg *cg, int s)
{
    if (cg->sym_used)
        *cg->sym_used |= 1u << s;
    return cg->sym_var[s];
}
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
#define CG_MAX_OPS (1 + KILN_MAX_IN)     // the output and every input (epilogue operands too)
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
// cg_nest_open for a nest of 2 or more loops whose outer loops are split over the threads:
// they become one loop over rows [row0, row1) (Kernel.par_rows, their product), each loop
// variable taken from row, around the innermost loop.  Close with cg_nest_close_rows.
void cg_nest_open_rows(Kernel *k, const Nest *nest, const char **index, bool brace);
void cg_nest_close_rows(Kernel *k, bool brace);

/* ---------------------------------------------------------------------------------------
 * isa_prelude.c and kernels_matmul.c: the code every file shares before its kernels
 */

// "avx512 (AVX-512F + AVX-512VL, FMA), 16 floats per vector", for comments.
const char *cg_isa_description(Isa isa);
// The vector vocabulary of cg->isa (VL, V_T, V_LOAD, V_FMA, ...), then, when some matmul is
// tiled, the GEMM code they share (cg_emit_gemm_support), and attn_expf when there is an
// attention kernel (cg_emit_attention_support).  Written after the #include.
void cg_emit_prelude(Cg *cg, Buf *b);
void cg_emit_gemm_support(Cg *cg, Buf *b);
// kernels_attention.c: attn_expf, which every attention kernel calls, when there is one.
void cg_emit_attention_support(Cg *cg, Buf *b);

// CgPack: a weight that tiled matmuls read in panels, packed once at load by the generated
// prepare() into r->packed: ceil(N / nr) panels of [K][nr] floats, the last zero-padded.
typedef struct CgPack {
    NodeId weight;          // the OP_WEIGHT node (a matmul's b, through any reshape view)
    bool trans;             // the weight is stored [N, K] (the matmul has trans_b)
    int nr;                 // panel width
    int64_t K, N;
    int64_t offset, bytes;  // place in r->packed
    const char *var;        // forward()'s pointer to it ("pk_..."), named by emit.c
} CgPack;

// Plan the packs of g's tiled matmuls (one per distinct weight and layout) into cg->packs,
// cg->pack_of and cg->packed_bytes.  Called once before any kernel is written.
void cg_pack_plan(Cg *cg);
void cg_pack_free(Cg *cg);
// The pack node n's input i reads (forward() passes CgPack.var for it), or NULL.
const CgPack *cg_pack_of(const Cg *cg, const Node *n, int i);
// prepare(kiln_run *r), which packs every weight of cg->packs; weight_index[id] is the index
// in r->weights (model_weights) of weight node id.  Writes nothing when there are no packs.
void cg_emit_prepare(Cg *cg, Buf *b, const int *weight_index);

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
bool cg_kernel_cache_write(Kernel *k);
bool cg_kernel_attention(Kernel *k);       // ATTENTION (kernels_attention.c)

// The C expression of an f32 element-wise op (ADD SUB MUL DIV SCALE RELU TANH GELU) on element
// expressions a (and b for binary ops), exactly as its standalone kernel computes it; by is
// SCALE's factor, tanh GELU's form.  Epilogues use it too, so fused and unfused agree.  TANH
// and GELU call the prelude's s_tanh, s_gelu_tanh, s_gelu_erf (noted in cg->math).
const char *cg_f32_expr(Cg *cg, OpKind op, double by, bool tanh, const char *a, const char *b);
// The vector form of TANH or GELU on the V_T expression v: "V_GELU_TANH(v)", ... (noted too).
const char *cg_vec_math(Cg *cg, OpKind op, bool tanh, const char *v);

/* ---------------------------------------------------------------------------------------
 * epilogue.c: fused element-wise epilogues (Node.epi, made by fuse-elementwise)
 *
 * A kernel whose node carries an epilogue applies it to each result element in a register
 * before it stores it.  A kernel writer calls, where it stores element `flat` (row-major index
 * into the output) of last-axis index `col`:
 *
 *     bline(&k->body, "float v = %s;", value);           // the op's own result
 *     cg_epilogue_apply(k, "v", flat, col, false);       // v = v + e1[col]; v = gelu(v); ...
 *     bline(&k->body, "out[%s] = v;", flat);
 *
 * The operands are the node's inputs in[ir_op_inputs(n) ..]: each binary step s (1-based)
 * reads the parameter `e<s>`, indexed by its ir_epi_form: EPI_SAME at [flat], EPI_ROW at
 * [col], EPI_SCALAR at [0].  emit.c passes them like any input (cg_epilogue_begin names
 * them); a kernel that calls helper functions of its own passes them on with
 * cg_epilogue_params / cg_epilogue_args.
 *
 * The vector form (vec = true) transforms a vector variable v holding V_LANES consecutive
 * elements of one row, flat and col being those of the first lane.  It uses the ISA
 * vocabulary (codegen/isa_prelude.c): V_LOAD(p), V_STORE(p, v), V_SET1(x), V_ADD, V_SUB,
 * V_MUL, V_DIV, V_MAX(a, b), V_LANES, V_TANH, V_GELU_TANH, V_GELU_ERF (whose lanes have the
 * bits of the scalar form's s_tanh, ...); a scale by a factor that is not a float runs lane
 * by lane through the scalar expression, so every ISA rounds as scalar code.
 */
enum {
    CG_EPI_FLAT = 1,    // some operand is read at [flat]
    CG_EPI_COL = 2,     // some operand is read at [col]
};
// Which indices n's epilogue reads (CG_EPI_* bits); 0 for none or no epilogue.
unsigned cg_epilogue_uses(const Graph *g, const Node *n);
// Called by emit.c for a node with an epilogue before its kernel writer: names the operands
// (k->arg) and adds the comment line " *   then  v + e1[col] -> gelu_tanh(v)" to k->notes.
void cg_epilogue_begin(Kernel *k);
// The parameter declarations ("const float *restrict e1") and the argument names ("e1") of
// the epilogue operands, written to params[] / args[]; each returns how many.
int cg_epilogue_params(Kernel *k, const char **params);
int cg_epilogue_args(Kernel *k, const char **args);
// Statements (at k->body's indent) applying every epilogue step to the variable v.  flat and
// col are C expressions; one that the epilogue does not use (cg_epilogue_uses) may be NULL,
// and a NULL col is derived as flat % N when it is needed.  Nothing for a node without one.
void cg_epilogue_apply(Kernel *k, const char *v, const char *flat, const char *col, bool vec);
// The scalar form for kernels whose loop nest indexes every input itself (the element-wise
// kernels): elem[i] is the C expression of input i's element at this output element.
void cg_epilogue_apply_elems(Kernel *k, const char *v, const char *const *elem);

#endif
