/* ir/ir.h: the tensor IR, shared by the front end, the passes and the code generator.
 *
 * A Graph is a list of Nodes in topological order.  Every node produces exactly one tensor
 * value, so a value is named by the id of the node that produces it (`%12` in dumps).  Model
 * inputs, weights and constants are nodes too (class OPC_SOURCE).  A value's Type is a dtype
 * and a shape whose dims are either static sizes or symbolic dims (`seq`) with an upper bound;
 * symbolic dims stay symbolic through the passes and become runtime variables in generated C.
 *
 * Sections follow the files that define them: util.c, diag.c, graph.c, shape.c, verify.c,
 * print.c, interp.c, pipeline.c and one file per pass.
 */
#ifndef KILN_IR_H
#define KILN_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KILN_VERSION "0.1.0"
#define KILN_MAX_RANK 6     // dims per tensor
#define KILN_MAX_IN 16      // inputs per node (concat is the widest op)

/* ---------------------------------------------------------------------------------------
 * util.c: checked allocation, the IR arena, growable arrays
 */

void *xmalloc(size_t n);            // never returns NULL: reports and exits
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xsprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  // malloc'd

// Arena: bump allocator owned by a Graph; arena_free drops everything in one call.
typedef struct ArenaBlock ArenaBlock;
typedef struct {
    ArenaBlock *head;   // newest block first
} Arena;
void *arena_alloc(Arena *a, size_t n);     // zeroed, 16-byte aligned
char *arena_strdup(Arena *a, const char *s);
char *arena_sprintf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

// VEC_PUSH(arr, n, cap, item): append to a malloc'd array `arr` of `n` items and capacity `cap`.
#define VEC_PUSH(arr, n, cap, item)                                                    \
    do {                                                                               \
        if ((n) == (cap)) {                                                            \
            (cap) = (cap) ? 2 * (cap) : 8;                                             \
            (arr) = xrealloc((arr), (size_t)(cap) * sizeof *(arr));                    \
        }                                                                              \
        (arr)[(n)++] = (item);                                                         \
    } while (0)

int str_edit_distance(const char *a, const char *b);  // Levenshtein, for "did you mean"

/* ---------------------------------------------------------------------------------------
 * diag.c: user-facing diagnostics with spec locations
 */

// SrcLoc: a place in a spec file.  1-based line and column; line 0 means "no place".
typedef struct {
    const char *file;   // path as the user gave it (never made absolute)
    int line, col;
} SrcLoc;

// Diag collects errors of one compilation.  Each error prints at once, as
//   file:line:col: error: message
//      58 |   - { op: matmul, ... }
//         |           ^
// followed by any notes.  Callers check diag_count() at phase ends and stop if non-zero.
typedef struct {
    int n_errors;
    FILE *out;          // where messages go (stderr unless a test redirects it)
    bool quiet_source;  // do not print the source line and caret
} Diag;

void diag_init(Diag *d);
void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int diag_count(const Diag *d);

// KILN_BUG: an internal error, i.e. a bug in kiln, never in the user's input.  Aborts.
#define KILN_BUG(...) kiln_bug(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void kiln_bug(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------------------------------
 * graph.c: ops, types, nodes, graphs and the node constructors
 */

typedef enum {
#define X(name, min_in, max_in, cls, spec) OP_##name,
#include "ops.def"
#undef X
    OP_COUNT
} OpKind;

typedef enum {
    OPC_SOURCE,     // no inputs: input, weight, constant, arange
    OPC_ELEMWISE,   // out[i] depends on in[i] (after broadcasting) only
    OPC_CONTRACT,   // matmul
    OPC_REDUCE,     // reads a whole row of the last axis per output row
    OPC_VIEW,       // reinterprets its input's buffer, moves no data
    OPC_LAYOUT,     // moves data without arithmetic
    OPC_FUSED,      // made only by passes (fuse-attention); a spec cannot name it
} OpClass;

typedef struct {
    const char *name;   // spec spelling, e.g. "layer_norm"
    int min_in, max_in;
    OpClass cls;
} OpInfo;
extern const OpInfo op_info[OP_COUNT];
const char *op_name(OpKind op);
int op_lookup(const char *spec_name);   // OpKind, or -1
// add sub mul div scale relu tanh gelu: the element-wise ops that compute (not cast or
// causal_mask), which fuse-elementwise makes epilogues of and ir/cost.c counts as FLOPs.
bool op_is_arith(OpKind op);

typedef enum { DT_F32, DT_I32, DT_I64 } DType;
const char *dtype_name(DType t);        // "f32", "i32", "i64"
size_t dtype_size(DType t);

// Dim: one dimension.  sym < 0: static, `size` elements.  sym >= 0: symbolic dim number `sym`
// of the graph (its value is known only at run time, 1 <= value <= size, size = its bound).
typedef struct {
    int64_t size;
    int sym;
} Dim;

typedef struct {
    DType dtype;
    int rank;                   // 0 for a scalar
    Dim dim[KILN_MAX_RANK];
} Type;

int64_t type_numel_max(const Type *t);  // element count with every symbolic dim at its bound
bool type_is_static(const Type *t);     // no symbolic dim
bool dim_eq(Dim a, Dim b);              // same static size, or same symbol

// fused_attention's operands (Node.attr.attention.seq_major bits).  A seq-major operand is
// stored [.., S, H, D], the heads inside the sequence, as a projection computes it; the op
// reads it as [.., H, S, D] (its dims r - 3 and r - 2 swapped), the layout ops.def defines.
enum { ATT_Q = 1, ATT_K = 2, ATT_V = 4, ATT_OUT = 8 };
// The type operand `bit` has as the op reads it: `stored` with dims r - 3 and r - 2 swapped
// when the operand is seq-major, else `stored` itself.
Type attention_view(unsigned seq_major, unsigned bit, const Type *stored);
// "q k v out", "q out": the seq-major operands, for the IR dump and the kernel comments.
const char *attention_seq_major_str(unsigned seq_major);

// Sym: a symbolic dimension declared in the spec's `dims:` section.
typedef struct {
    const char *name;   // "seq"
    int64_t max;        // upper bound
    SrcLoc loc;
    bool position;      // the state's position (spec `state: position:`): bound by the
                        // runtime, not by an input shape; it may be 0, and so may `max`
} Sym;

typedef int32_t NodeId;     // index into Graph.nodes; -1 means none

// EpiOp: one element-wise op of a node's epilogue (fuse-elementwise).  Applied to the
// running value v at each output element: v = op(v) for unary ops and scale,
// v = v OP operand (or operand OP v when operand_left) for add/sub/mul/div, where the
// operand is in[operand_in], broadcast NumPy-style into the node's shape.  Operands follow
// the op's own inputs in in[] (ir_op_inputs), one slot per binary step, in step order, and
// index the result in an ir_epi_form other than EPI_OTHER (ir_verify checks all of this).
typedef struct EpiOp {
    int op;                 // OpKind: OP_ADD OP_SUB OP_MUL OP_DIV OP_SCALE OP_RELU OP_TANH OP_GELU
    int operand_in;         // index into Node.in of the other operand, or -1 (unary, scale)
    bool operand_left;      // the operand is the left-hand side (matters for sub and div)
    double by;              // OP_SCALE
    bool tanh;              // OP_GELU: tanh approximation
} EpiOp;

// Tile: how the code generator blocks a matmul, chosen by the tile pass (ir/tile.c) from the
// target's ISA and cache sizes.  All zero (mr == 0): not tiled, plain loops.
typedef struct {
    int mr, nr;             // register block: rows of a x columns of b per microkernel call
    int64_t kc;             // k block: the b panel slice kc x nr a call streams (L1/L2)
    int64_t mc;             // row block: rows of a packed together, kc x mc floats (L2)
    bool pack_b;            // b is a weight: packed once at load into nr-column panels
} Tile;

// Origin: a spec node that a (possibly fused) IR node implements.  Copied by value, so it
// survives the removal of the node it describes.
typedef struct {
    OpKind op;
    const char *name;
    SrcLoc loc;
} Origin;

typedef struct Node {
    OpKind op;
    NodeId id;              // index in Graph.nodes (topological order)
    const char *name;       // spec name ("h.0.attn.qk") or a derived one; unique in the graph
    SrcLoc loc;             // spec place of the op
    const char *block;      // repeat iteration the node was written in ("h.3"), or NULL
    NodeId in[KILN_MAX_IN];
    int n_in;
    Type type;              // of the one value the node produces
    bool dead;              // removed by a pass; ir_compact() drops dead nodes
    union {
        struct {                                         // OP_INPUT
            int index;                                   // position in Graph.inputs
            bool has_range;                              // spec `range: [lo, hi]`: the values
            int64_t lo, hi;                              // an integer input may hold
        } input;
        struct { const char *tensor; } weight;           // OP_WEIGHT: name in the weights file
        struct { void *data; } constant;                 // OP_CONST: numel values of type.dtype
        struct {                                         // OP_ARANGE: out[i] = start + i,
            int64_t start;                               // or start_sym's value + i
            bool has_start_sym;
            int start_sym;
        } arange;
        struct { bool has_offset; int offset_sym; } causal;  // OP_CAUSAL_MASK: -inf where
                                                     // j > i + offset_sym (default Sk - Sq)
        struct { int index; } state;                     // OP_STATE: position in Graph.states
        struct { int64_t index; int at_sym; } cache_write;  // OP_CACHE_WRITE
        struct { bool trans_a, trans_b; } matmul;        // OP_MATMUL
        struct { double by; } scale;                     // OP_SCALE
        struct { bool tanh; } gelu;                      // OP_GELU: tanh approximation?
        struct { double eps; } layer_norm;               // OP_LAYER_NORM
        struct { int perm[KILN_MAX_RANK]; } transpose;   // OP_TRANSPOSE: out dim k = in dim perm[k]
        struct { int axis; int64_t start, end; } slice;  // OP_SLICE: static bounds
        struct { int axis; } concat;                     // OP_CONCAT
        struct { DType to; } cast;                       // OP_CAST
        struct {                                         // OP_ATTENTION: see ops.def
            double scale;
            bool causal;
            bool has_offset;                             // causal offset: offset_sym's value,
            int offset_sym;                              // else Sk - Sq
            unsigned seq_major;                          // ATT_Q | ATT_K | ATT_V | ATT_OUT:
                                                         // stored [.., S, H, D] (below)
        } attention;
        struct { int rank; Dim dim[KILN_MAX_RANK]; } reshape;  // OP_RESHAPE: target shape
    } attr;
    Origin *origins;        // spec nodes this node implements (itself, plus any fused into
    int n_origins;          // it), in spec order; arena-owned
    // fuse-elementwise: element-wise ops applied, in order, to each element of this node's
    // result before it is stored (bias add, gelu, residual add, ...).  The node's type is
    // unchanged by them: every operand broadcasts into it.  Operands are also listed in in[].
    struct EpiOp *epi;
    int n_epi;
    int64_t offset;         // plan-memory: byte offset of the value in the arena; -1 when it
                            // lives elsewhere (weights, inputs, constants, views of another,
                            // a model output's buffer)
    int output;             // plan-memory: the model output (index into Graph.outputs) whose
                            // buffer holds this value, written there directly; -1: none
    Tile tile;              // tile pass: the blocking of an OP_MATMUL (zero: not tiled)
} Node;

// Param: a spec parameter with its final value (after -D overrides), for headers and dumps.
typedef struct {
    const char *name;
    double value;
    bool overridden;        // set by -D
} Param;

// Output: a model output, bound to the node that computes it.
typedef struct {
    const char *name;
    NodeId node;
    SrcLoc loc;
} Output;

// Isa: the vector instruction set generated code is written for (kiln --isa).
typedef enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_NEON } Isa;

// Target: the machine the generated code is for.  The driver fills it before the passes run
// (--isa; cache sizes from the host's sysfs when --isa is auto, else defaults), and the tile
// pass reads it.  Zero bytes mean "unknown": the tile pass uses its defaults.
typedef struct {
    Isa isa;
    int64_t l1d, l2, l3;    // data cache bytes per core (l3: of the whole cache)
    bool host;              // the caches were read from this machine
} Target;

typedef struct Graph {
    Arena arena;            // owns names, attribute data and everything else of the graph
    const char *spec_path;  // as given on the command line
    const char *model_name; // spec `name:`
    Node *nodes;
    int n_nodes, cap_nodes;
    Sym *syms;
    int n_syms, cap_syms;
    NodeId *inputs;         // OP_INPUT nodes in declaration order
    int n_inputs, cap_inputs;
    Output *outputs;
    int n_outputs, cap_outputs;
    Param *params;
    int n_params, cap_params;
    const char **weight_prefixes;   // optional prefixes tried for tensor names ("transformer.")
    int n_weight_prefixes, cap_weight_prefixes;
    NodeId *states;         // OP_STATE nodes in declaration order (spec `state:`)
    int n_states, cap_states;
    int position_sym;       // the state's position dim, or -1
    struct {                // spec `text:`: what the binary's text front ends read and fill
        bool present;
        int ids, mask, types;       // indices into inputs, or -1
        int logits, hidden;         // indices into outputs, or -1
        SrcLoc loc;
    } text;
    int64_t arena_bytes;    // plan-memory: arena size with every symbolic dim at its bound
    int n_buffers;          // plan-memory: distinct arena buffers after reuse
    Target target;          // what the code is generated for (tile pass, code generator)
    const char **passes_run;        // names of the passes that ran, for headers
    int n_passes_run, cap_passes_run;
    struct Note *notes;     // what the last pass left undone and why (ir_note), in order;
    int n_notes;            // arena-owned; the pipeline clears them before each pass
    struct Note *notes_last;        // the last note (ir_note appends after it when notes != NULL)
    struct Candidate *candidates;   // every fusion candidate the passes weighed (ir_candidate),
    struct Candidate *candidates_last;  // in the order they were weighed; never cleared;
    int n_candidates;               // arena-owned (kiln inspect --explain)
} Graph;

// Note: one remark of a pass, e.g. "not fused: softmax 'h.0.attn.probs' has 2 readers".
// ir_print lists them after the graph, so `kiln inspect --after PASS` shows them.
typedef struct Note {
    const char *text;
    struct Note *next;
} Note;

// Candidate: one fusion a pass weighed, fused or not, for `kiln inspect --explain`
// (explain.c).  fuse-attention records one per softmax read by a matmul (the chain from q k^T
// to that matmul); fuse-elementwise one per (element-wise node, input it could join) pair it
// tried.  A candidate that failed also leaves its ir_note.
typedef struct Candidate {
    const char *pass;       // "fuse-attention", "fuse-elementwise"
    const char *what;       // "add h.0.mlp.fc", "attention h.0.attn.{qk -> scaled -> probs}"
    SrcLoc loc;             // spec place of the candidate (the node, or the chain's first node)
    Origin into;            // the node it would join: the input P, or the chain's final matmul
    bool fused;
    Origin result;          // fused: the node that implements it now (op, name, spec place)
    const char *why;        // not fused: the condition that failed, in words
    struct Candidate *next;
} Candidate;

Graph *graph_new(const char *spec_path);
void graph_free(Graph *g);
Node *graph_node(Graph *g, NodeId id);            // bounds-checked
NodeId graph_find(const Graph *g, const char *name);   // live node by name, or -1
int graph_add_sym(Graph *g, const char *name, int64_t max, SrcLoc loc);  // sym number
int graph_find_sym(const Graph *g, const char *name);  // or -1

// Node constructors.  Each checks its invariants (arity, dtypes, shapes via shape_infer_node),
// reports a spec error at `loc` and returns -1 on failure, else returns the new node's id.
// `name` is copied; NULL lets the graph derive a unique one.  Attributes are set through
// `attr` (may be NULL for ops without attributes); the constructor copies it.
NodeId graph_add_node(Graph *g, Diag *d, OpKind op, const char *name, SrcLoc loc,
                      const NodeId *in, int n_in, const Node *attr);
// Sources carry their type explicitly (input, weight, constant, arange).
NodeId graph_add_source(Graph *g, Diag *d, OpKind op, const char *name, SrcLoc loc,
                        Type type, const Node *attr);

void ir_compact(Graph *g);      // drop dead nodes and renumber; keeps order and references

/* ---------------------------------------------------------------------------------------
 * shape.c: shape inference
 */

// Compute n->type from its inputs' types and its attributes.  On a user error (mismatched
// shapes, bad axis, ...) reports at n->loc, naming the node and the producers of its inputs,
// and returns false.
bool shape_infer_node(Graph *g, Node *n, Diag *d);
// Re-run inference over the whole graph and check that every stored type agrees.
bool ir_infer_shapes(Graph *g, Diag *d);
// Append "[seq, 768]" (dims by symbol name) to buf; returns buf.
char *shape_str(const Graph *g, const Type *t, char *buf, size_t n);

/* ---------------------------------------------------------------------------------------
 * verify.c: structural invariants; a failure is a kiln bug (KILN_BUG), not a user error
 */
void ir_verify(const Graph *g, const char *after_pass);

/* ---------------------------------------------------------------------------------------
 * print.c: the text form of the IR
 */
//   %12 = matmul %10, %11 {trans_b} : f32[batch, seq, 768]   h.0.attn.qk  @gpt2.yaml:58
void ir_print(const Graph *g, FILE *out);

/* ---------------------------------------------------------------------------------------
 * dot.c: the graph as Graphviz DOT (clusters per repeated block, fused kernels as boxes
 * around the nodes they absorbed, shapes on the edges, spec line on every node)
 */
void ir_print_dot(const Graph *g, FILE *out);

/* ---------------------------------------------------------------------------------------
 * interp.c: the reference interpreter (plain loops over the unoptimized semantics)
 */

// Tensor: a host tensor with concrete dims (symbolic dims resolved).
typedef struct {
    DType dtype;
    int rank;
    int64_t dim[KILN_MAX_RANK];
    void *data;         // malloc'd, owned
} Tensor;

int64_t tensor_numel(const Tensor *t);

// Binding of the model's run-time data, filled by the caller.
typedef struct {
    const Tensor *inputs;       // [g->n_inputs], in Graph.inputs order
    // Weight lookup: returns the f32 data of `tensor` (already checked against `type`), or
    // NULL after printing an error.
    const void *(*weight)(void *ctx, const char *tensor, const Type *type);
    void *weight_ctx;
} InterpEnv;

// Run the graph.  Binds symbolic dims from the inputs' shapes (checking bounds), evaluates
// every live node in order, and stores each output in outs[g->n_outputs] (caller frees
// data).  Returns false after printing a message on bad inputs (shape, ids out of range).
bool ir_interpret(const Graph *g, const InterpEnv *env, Tensor *outs, FILE *err);
// ir_interpret that also hands each live node's value, right after it is evaluated (before
// it is freed), to each(ctx, node, value) (kiln interp --dump-dir).  A false return stops
// the run, which then returns false (the callback says why).
typedef bool (*InterpEach)(void *ctx, const Node *n, const Tensor *value);
bool ir_interpret_each(const Graph *g, const InterpEnv *env, Tensor *outs, FILE *err,
                       InterpEach each, void *ctx);

// Evaluate one node whose inputs are all OP_CONST with static shapes, or an ARANGE of static
// size (for constant folding).
// Returns malloc'd data of n->type, or NULL if the node cannot be evaluated at compile time.
void *interp_eval_const(const Graph *g, const Node *n);

/* ---------------------------------------------------------------------------------------
 * pipeline.c and the passes
 */

// Every pass changes the graph in place and returns whether it changed anything.
typedef bool (*PassFn)(Graph *g);

typedef struct {
    const char *name;       // "fold-constants"
    PassFn run;
    bool required;          // cannot be disabled
    const char *doc;        // one line for --help and inspect
} Pass;

extern const Pass ir_passes[];
extern const int ir_n_passes;

typedef struct {
    const char **disabled;  // pass names switched off
    int n_disabled;
    const char *dump_after; // NULL: no dump; "all": after parse and every pass; or a pass name
    FILE *dump;             // where dumps go
    bool dump_dot;          // dump as Graphviz DOT (ir_print_dot) instead of text
    bool time_passes;
} PipelineOptions;

// Run every enabled pass in order, verifying after each.  Returns false on a user error.
bool ir_run_pipeline(Graph *g, const PipelineOptions *opt, Diag *d);
bool pipeline_has_pass(const char *name);
// Append a note of the running pass to g->notes (printed by ir_print after the graph).
void ir_note(Graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Dead-code elimination: drop nodes no output depends on (unused weights included).
// Requires: nothing.  Preserves: order, names, locations.  Invalidates: node ids (compacts).
bool ir_eliminate_dead_code(Graph *g);

// Constant folding: evaluate nodes whose inputs are all static-shape constants.
// Requires: shapes inferred.  Preserves: names, locations (the folded node keeps its own).
bool ir_fold_constants(Graph *g);

// Attention fusion: replace each chain
//   matmul(Q, K^T) -> [scale | mul or div by a scalar constant] -> [causal_mask] and/or
//   [add(., M)] in either order -> softmax -> matmul(., V)
// by one OP_ATTENTION(Q, K, V[, M]) node {scale, causal}, when every intermediate has one
// reader and is not an output, and Q, K, V have identical leading dims.  The node takes the
// final matmul's name and slot, the first matmul's SrcLoc, and every chain node in origins.
// Near-misses get an ir_note saying which condition failed.
// Requires: shapes inferred; runs before fuse-elementwise.  Preserves: names and locations of
// the nodes it does not touch.  Invalidates: node ids (compacts).
bool ir_fuse_attention(Graph *g);

// Element-wise fusion (ir/fuse_elementwise.c; docs/passes.md): merge each element-wise node
// E (add sub mul div scale relu tanh gelu, f32) into the node P that produces its input, as
// one more EpiOp of P's epilogue, when P can carry epilogues (ir_epi_anchor), P is read by
// E only and is not an output, E's type is P's, and E's other operand (binary ops) is an
// ir_epi_form the kernels index and is computed before P (or is a source, moved up).  P
// keeps its name, id and place; E's origin joins P's, E's operand joins P's in[], E's readers
// read P.  Chains fuse one link at a time (matmul -> add bias -> gelu).  Each candidate it
// skips gets an ir_note saying why.
// Requires:    shapes inferred; after fuse-attention (whose patterns it would hide).
// Preserves:   the value of every output; names, SrcLocs and origins (E's move to P).
// Invalidates: node ids (compacts; a source operand may move up to before its new reader).
bool ir_fuse_elementwise(Graph *g);

// How an epilogue operand of type `x` indexes into a node's result of type `out`:
typedef enum {
    EPI_SAME,       // the same elements in the same order: x[row * N + col]
    EPI_ROW,        // a vector along the last axis ([N] or [1, .., N]): x[col]
    EPI_SCALAR,     // one element ([] or [1, .., 1]): x[0]
    EPI_OTHER,      // any other broadcast: not fused
} EpiForm;
EpiForm ir_epi_form(const Type *x, const Type *out);
// Whether nodes of op `op` have kernels that apply an epilogue before they store.
bool ir_epi_anchor(OpKind op);
// Inputs of the op itself: in[0 .. ir_op_inputs(n)); the epilogue operands follow.
int ir_op_inputs(const Node *n);

// Tiling (ir/tile.c): give every f32 matmul with a matrix b its register block (mr x nr,
// from the ISA's vector registers) and cache blocks (kc, mc, from g->target's L1/L2 sizes,
// or defaults), and mark matmuls whose b is a weight as packed at load.  No auto-tuning:
// the same graph and target give the same tiles.  Without it, matmuls are plain loops.
// Requires: shapes inferred; after the fusion passes.  Preserves: everything but Node.tile.
bool ir_tile(Graph *g);
const char *isa_name(Isa isa);          // "scalar", "avx2", "avx512", "neon"
bool isa_parse(const char *s, Isa *out);
// The register block of the ISA's microkernel: rows x columns, columns in whole vectors.
void isa_register_block(Isa isa, int *mr, int *nr);
int isa_lanes(Isa isa);                 // floats per vector: 1, 8, 16, 4
// t with the cache sizes it does not know replaced by the tile pass's defaults for its ISA.
Target tile_target(Target t);

// Memory planning: give every value computed in the forward pass an arena offset, reusing
// the space of values whose last reader has run (first fit, sizes at the symbolic bounds).
// Reshape nodes alias their input.  Sets Node.offset, Graph.arena_bytes and n_buffers.
// Requires: final graph (runs last).  Preserves: everything else.
bool ir_plan_memory(Graph *g);
// The node whose buffer `id` reads (follows reshape views); `id` itself if not a view.
NodeId ir_storage_root(const Graph *g, NodeId id);

/* ---------------------------------------------------------------------------------------
 * explain.c: the fusion candidates the passes weighed (kiln inspect --explain)
 */

// Append a copy of *c (its strings must be arena-owned or static) to g->candidates.
void ir_candidate(Graph *g, const Candidate *c);
// Per fusion pass: a count line, then each candidate: what and where, the node it would join
// and where, and either the node that implements it now or the condition that failed.
// A fusion pass that did not run says so.
void ir_print_candidates(const Graph *g, FILE *out);

/* ---------------------------------------------------------------------------------------
 * cost.c: FLOPs and bytes of each kernel (kiln build --report, --profile)
 */

#define COST_MAX_TERMS 32
#define COST_MAX_FACTORS 16

// CostTerm: c times the product of symbolic dims sym[0..n) (repeats are powers).
typedef struct {
    double c;
    int n;
    int sym[COST_MAX_FACTORS];      // sorted
} CostTerm;

// CostPoly: a polynomial in the symbolic dims (static dims are folded into coefficients).
typedef struct {
    int n;
    CostTerm t[COST_MAX_TERMS];
} CostPoly;

// What a node's kernel does per forward: floating-point operations and the bytes it reads
// (every input, weights included, epilogue operands included) and writes (its output).
// The counting rules per op are in cost.c and docs/inspect.md.
typedef struct {
    CostPoly flops, bytes;
} NodeCost;

// The cost of node n's kernel.  False for nodes without a kernel (sources, views, dead).
bool ir_node_cost(const Graph *g, const Node *n, NodeCost *c);
// p at the symbolic dims' values sym[g->n_syms].
double cost_eval(const CostPoly *p, const int64_t *sym);

#endif
