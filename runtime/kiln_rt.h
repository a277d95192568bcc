/* kiln_rt.h: the kiln runtime, linked into every model binary kiln builds.
 *
 * This is the only header generated code includes.  The generated C file describes its model
 * in a kiln_model (inputs, outputs, weights, symbolic dims, arena size) and provides the
 * forward function; the runtime does everything around it: command line, safetensors weights
 * (mmap'd and checked against the model before anything runs), .npy inputs and outputs
 * (checked against the symbolic bounds), the arena, and timing.
 *
 * The runtime never includes compiler headers; everything it exports starts with kiln_.
 */
#ifndef KILN_RT_H
#define KILN_RT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define KILN_RT_MAX_RANK 6

typedef enum { KILN_F32 = 0, KILN_I32 = 1, KILN_I64 = 2 } kiln_dtype;

const char *kiln_dtype_name(kiln_dtype t);  // "f32", "i32", "i64"
size_t kiln_dtype_size(kiln_dtype t);

/* ---------------------------------------------------------------------------------------
 * Model description, emitted by kiln as static data in the generated file
 */

// A symbolic dimension (`seq`): its value is bound at run time from the inputs' shapes.
typedef struct {
    const char *name;
    int64_t max;            // upper bound; 1 <= value <= max (0 <= for a state's position)
} kiln_sym;

// A tensor's declared type.  dims[k] is the static size, or, when sym[k] >= 0, the bound
// of symbolic dim sym[k] (whose actual value is bound at run time).
typedef struct {
    const char *name;       // input/output name, or the tensor name in the weights file
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_RT_MAX_RANK];
    int sym[KILN_RT_MAX_RANK];
} kiln_tensor_desc;

// The values an integer input may hold (spec `range: [lo, hi]`), when has_range is set.
typedef struct {
    int has_range;
    int64_t lo, hi;
} kiln_range;

// The spec's `text:` section: which input takes the token ids (and the padding mask and
// token types, when the model has them) and which output holds the logits or the hidden
// states; indices into kiln_model.inputs / .outputs, -1 for none.
typedef struct {
    int ids, mask, types;
    int logits, hidden;
} kiln_text;

typedef struct kiln_run kiln_run;
typedef struct kiln_dump_entry kiln_dump_entry;     // dump.c: --dump builds only

typedef struct {
    const char *name;               // spec `name:`
    const char *spec;               // spec path as given to kiln
    int n_syms;
    const kiln_sym *syms;
    int n_inputs;
    const kiln_tensor_desc *inputs;     // integer inputs are i32 (i64 files are narrowed)
    const kiln_range *input_ranges;     // n_inputs entries, or NULL: no input declares a range
    int n_outputs;
    const kiln_tensor_desc *outputs;
    int n_weights;
    const kiln_tensor_desc *weights;    // names as in the spec; prefixes below tried too
    int n_weight_prefixes;
    const char *const *weight_prefixes; // e.g. "transformer."; tried when a name is missing
    size_t arena_bytes;                 // activation arena at the symbolic bounds
    // Runs the model once.  Returns 0, or non-zero after writing a message to r->err.
    int (*forward)(kiln_run *r);
    // The vector ISA the file was generated for ("avx512", "avx2", "neon", "scalar"):
    // kiln_main checks the CPU has it before anything else runs (kiln_cpu_check).
    const char *isa;
    // Weights that matmuls read in packed panels: prepare() fills r->packed (packed_bytes,
    // 64-byte aligned) from r->weights once, after binding and before the first forward().
    // NULL / 0 when nothing is packed.  Returns 0, or non-zero with a message in r->err.
    size_t packed_bytes;
    int (*prepare)(kiln_run *r);
    // The text front ends (-p, --text, --embed; text.c) use these roles; NULL: none.
    const kiln_text *text;
    // State kept across forward calls (spec `state:`, e.g. a key/value cache): f32 tensors
    // at their bounds, zero when the model is opened; r->state follows this order.  With
    // states, sym[position_sym] counts the tokens they hold: set by the caller (0: fresh),
    // from 0 to its bound, never taken from an input's shape.
    int n_states;
    const kiln_tensor_desc *states;
    int position_sym;
    // A --dump build (kiln build --dump): every value forward() hands to kiln_dump_node, in
    // the order it computes them (dump.c).  NULL / 0 in a normal build, whose binary refuses
    // --dump-dir.
    int n_dump;
    const kiln_dump_entry *dump;
} kiln_model;

// Everything one forward call reads and writes.  The runtime fills it; forward() uses it.
struct kiln_run {
    const kiln_model *model;
    int64_t sym[16];                // bound values of the symbolic dims, in kiln_model order
    const void *const *weights;     // [n_weights] data pointers (mmap'd, f32, checked)
    const void *const *inputs;      // [n_inputs] data pointers, dtype as declared
    void *const *outputs;           // [n_outputs] caller-owned, contiguous, actual shapes
    char *arena;                    // arena_bytes, 64-byte aligned
    char err[512];                  // message when forward returns non-zero
    char *packed;                   // model->packed_bytes, filled by model->prepare
    struct kiln_pool *pool;         // worker threads (threads.c); NULL: the caller alone
    float *const *state;            // [n_states] the model's state (kept by the caller)
    struct kiln_dump *dump;         // --dump-dir: where kiln_dump_node writes; NULL: nowhere
};

// Format a message into r->err and return 1 (for `return kiln_fail(r, ...)`).
int kiln_fail(kiln_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// The main() of every model binary:
//   ./model --weights W.safetensors --input NAME=FILE.npy ... [--output NAME=FILE.npy ...]
//           [--repeat N] [--help]
// Returns the process exit status.
int kiln_main(int argc, char **argv, const kiln_model *m);

/* ---------------------------------------------------------------------------------------
 * api.c: the C API (docs/api.md).  Generated files wrap it in typed functions named after
 * the model (NAME_open, NAME_forward, NAME_close, declared in the NAME.h `kiln emit` writes).
 */

typedef struct kiln_instance kiln_instance;

// Map and check the weights, pack them, allocate the arena, start `threads` workers (0: the
// default, $KILN_NUM_THREADS or the online cores).  Returns NULL with a message in err.
kiln_instance *kiln_open(const kiln_model *m, const char *weights_path, int threads, char *err,
                         size_t errlen);
// One forward: sym[] are the symbolic dims' values (kiln_model.syms order, each in
// [1, bound]); inputs[] and outputs[] are caller-owned, contiguous, at those dims, and no
// output overlaps an input (kernels write outputs directly, while inputs are still read).
// Checks the inputs as kiln_main does (finite floats, declared ranges).  One call at a time
// per instance; instances are independent.  Returns 0, or -1 with a message in err (the
// outputs' contents are then unspecified).
int kiln_forward(kiln_instance *inst, const int64_t *sym, const void *const *inputs,
                 void *const *outputs, char *err, size_t errlen);
void kiln_close(kiln_instance *inst);     // NULL is a no-op

// Check a model description for internal consistency (kiln bugs show up as messages, not
// crashes).  Returns 0, or -1 with a message in msg.
int kiln_model_check(const kiln_model *m, char *msg, size_t size);
// The model's states, zeroed, at their bounds, into *st[n_states] (NULL when it has none).
// Returns 0, or -1 (free what was made with kiln_states_free).
int kiln_states_alloc(const kiln_model *m, float ***st);
void kiln_states_free(const kiln_model *m, float **st);

// Whether this CPU can run code built for `isa` (kiln_model.isa).  Returns 0, or -1 with
// "built for avx512 but this CPU lacks avx512f" in err.  The runtime is compiled without
// ISA flags, so this runs on any CPU.  For tests only, $KILN_TEST_CPU_LACKS (a comma-separated
// list of feature names, e.g. "avx512f") makes the check treat those features as missing.
int kiln_cpu_check(const char *isa, char *err, size_t errlen);

/* ---------------------------------------------------------------------------------------
 * threads.c: the worker threads of a run
 */

typedef struct kiln_pool kiln_pool;

// A share of a parallel loop: items [begin, end) of the n given to kiln_parallel_for.
typedef void (*kiln_task_fn)(void *ctx, int64_t begin, int64_t end);

// Run fn over items [0, n) on r's threads, in contiguous chunks (a quarter of what is left of
// a range, at least one item): thread t starts on the range [n * t / T, n * (t + 1) / T)
// and then helps with the others' (which thread computes
// what varies, so fn's result must not depend on the split), the caller is thread 0, and
// the call returns when every item is done.
// With no pool (r->pool NULL), one thread, or from inside a task, fn(ctx, 0, n) runs here.
void kiln_parallel_for(kiln_run *r, int64_t n, kiln_task_fn fn, void *ctx);
// kiln_parallel_for for small items: when n < 2 * min (too little work to be worth handing
// out), fn(ctx, 0, n) runs on the caller.  Row-wise kernels pass the rows that make ~16K
// elements, so that a decode step's few rows never wait for a worker.
static inline void kiln_parallel_for_min(kiln_run *r, int64_t n, int64_t min, kiln_task_fn fn,
                                         void *ctx)
{
    if (n >= 2 * min)
        kiln_parallel_for(r, n, fn, ctx);
    else if (n > 0)
        fn(ctx, 0, n);
}
// Create a pool of n_threads threads in all (the caller plus n_threads - 1 workers, which
// sleep when idle).  NULL when threads cannot be created.  Free with kiln_pool_free.
kiln_pool *kiln_pool_new(int n_threads);
void kiln_pool_free(kiln_pool *p);
int kiln_pool_threads(const kiln_pool *p);     // 1 for NULL
// $KILN_NUM_THREADS when it is a whole number from 1 to 256, else the online cores.
int kiln_default_threads(void);

/* ---------------------------------------------------------------------------------------
 * safetensors.c: mmap'd weights
 */

typedef struct {
    char *name;
    kiln_dtype dtype;       // only F32/I32/I64 map; others are reported by name
    const char *dtype_str;  // as in the file ("F32", "BF16", ...)
    int rank;
    int64_t dims[KILN_RT_MAX_RANK];
    const void *data;       // into the mapping
    size_t nbytes;
} kiln_st_tensor;

typedef struct {
    void *map;
    size_t map_size;
    kiln_st_tensor *tensors;
    int n_tensors;
    char *path;             // file name used in messages ("<memory>" after kiln_st_parse)
    void **aligned;         // [n_tensors] 64-byte aligned copies kiln_bind_weights made of
                            // tensors whose data is misaligned in the file, else NULL
} kiln_safetensors;

// Open and validate a safetensors file: header length within the file and under a cap,
// well-formed JSON, known fields, offsets in range, in order and not overlapping, shape x
// dtype equal to the byte length.  Returns 0, or -1 with a message in err.
int kiln_st_open(kiln_safetensors *st, const char *path, char *err, size_t errlen);
// Same checks on a buffer in memory (used by the fuzzer); the buffer must outlive st.
int kiln_st_parse(kiln_safetensors *st, const void *buf, size_t len, char *err, size_t errlen);
const kiln_st_tensor *kiln_st_find(const kiln_safetensors *st, const char *name);
void kiln_st_close(kiln_safetensors *st);

// Bind every weight of m: find it (trying the model's prefixes), check dtype and shape, and
// store its data pointer in out[m->n_weights].  On failure names the tensor, the expected and
// found dtype/shape, or the closest names in the file.  Returns 0 or -1 (message in err).
// Pointers are aligned to the dtype's size: a tensor the file leaves misaligned is copied
// once into st->aligned (freed by kiln_st_close).
int kiln_bind_weights(const kiln_model *m, const kiln_safetensors *st, const void **out,
                      char *err, size_t errlen);

/* ---------------------------------------------------------------------------------------
 * npy.c: NumPy .npy files (version 1.0/2.0/3.0, little-endian, C order)
 */

typedef struct {
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_RT_MAX_RANK];
    void *data;             // malloc'd
} kiln_npy;

// Read f32, i32 or i64 arrays.  Returns 0, or -1 with a message naming the file.
int kiln_npy_read(const char *path, kiln_npy *out, char *err, size_t errlen);
int kiln_npy_parse(const void *buf, size_t len, kiln_npy *out, char *err, size_t errlen);
// Write atomically (temporary name, then rename).  Returns 0 or -1.
int kiln_npy_write(const char *path, kiln_dtype dtype, int rank, const int64_t *dims,
                   const void *data, char *err, size_t errlen);
// First half of kiln_npy_write, for writing several files all-or-nothing: writes the array
// to a new temporary file next to path and stores its malloc'd name in *tmp_path; the caller
// rename()s it to path (or unlink()s it) and frees the name.  Returns 0, or -1 with a message
// and no temporary left behind.
int kiln_npy_write_tmp(const char *path, kiln_dtype dtype, int rank, const int64_t *dims,
                       const void *data, char **tmp_path, char *err, size_t errlen);
void kiln_npy_free(kiln_npy *a);

/* ---------------------------------------------------------------------------------------
 * arena.c and misc
 */

void *kiln_aligned_alloc(size_t bytes);  // 64-byte aligned (from 2 MiB: huge pages), zeroed,
                                         // touched once; NULL on failure
// Whole huge pages: 2 MiB aligned, rounded up to 2 MiB, advised MADV_HUGEPAGE (a hint);
// not zeroed (prepare() packs weights into one, writing every byte); NULL for 0 bytes or
// on failure; kiln_aligned_free.
void *kiln_huge_alloc(size_t bytes);
void kiln_aligned_free(void *p);
double kiln_now_ms(void);               // monotonic clock
// Format a message into err (when err and errlen leave room) and return -1.
int kiln_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------------------------------
 * dump.c: intermediate tensors as DIR/NAME.npy plus DIR/index.tsv (--dump-dir), written by
 * binaries built with `kiln build --dump` and by `kiln interp --dump-dir` (docs/inspect.md)
 */

// One line of a dump: a value forward() computes, or a spec node a fused kernel absorbed.
struct kiln_dump_entry {
    const char *name;       // the spec name of the value ("h.3.attn.probs"): file NAME.npy
    const char *op;         // its spec op ("softmax")
    const char *spec;       // "gpt2.yaml:79": the spec node's file and line
    const char *kernel;     // the C function that computes it; NULL: none (a view, interp)
    const char *inputs;     // the names of the values it reads, space-separated; NULL: none
    const char *held_by;    // NULL: written.  Else a spec node fused into the kernel of the
                            // value `held_by`, never materialized: listed, not written
    kiln_dtype dtype;       // as kiln_tensor_desc: dims[k], or when sym[k] >= 0 the value
    int rank;               // of symbolic dim sym[k] in this run
    int64_t dims[KILN_RT_MAX_RANK];
    int sym[KILN_RT_MAX_RANK];
};

typedef struct kiln_dump kiln_dump;

// Start a dump into dir (created if missing; one level).  NULL with a message in err.
kiln_dump *kiln_dump_open(const char *dir, char *err, size_t errlen);
// Write e's value (data, at the actual shape dims[e->rank]) as DIR/NAME.npy, or for an
// absorbed node (e->held_by) nothing, and add its index line.  Returns 0 or -1 (message).
int kiln_dump_add(kiln_dump *d, const kiln_dump_entry *e, const int64_t *dims,
                  const void *data, char *err, size_t errlen);
// Write DIR/index.tsv (atomically) and free d; NULL is a no-op.  Returns 0 or -1 (message).
int kiln_dump_close(kiln_dump *d, char *err, size_t errlen);
int kiln_dump_count(const kiln_dump *d);    // .npy files written so far
// Called by the forward() of a --dump build after the kernel that computes data: adds
// r->model->dump[first .. first + count) (shapes from r->sym) to r->dump.  Does nothing
// without r->dump; returns 0, or kiln_fail's 1 when a file cannot be written.
int kiln_dump_node(kiln_run *r, int first, int count, const void *data);

/* ---------------------------------------------------------------------------------------
 * profile.c: per-kernel timing in files generated with `kiln build --profile` (a normal
 * build uses none of this).  The file defines a kiln_prof with one kiln_prof_kernel per
 * kernel function, calls every kernel through KILN_PROF_VOID / KILN_PROF_INT (macros named
 * after the kernels), runs forward() through kiln_prof_forward, and prints the table with
 * kiln_prof_print when the program exits.  One forward at a time: the counters are shared.
 */

typedef struct {
    const char *name;       // the kernel function
    const char *first;      // its first caller: "%14 matmul h.0.attn.c_attn gpt2.yaml:72"
    int sites;              // calls per forward (nodes that call it)
    long calls;             // accumulated over every forward
    double ns;              // time inside it, accumulated
    double flops, bytes;    // its cost, accumulated over every forward at that run's dims
    double bound_ns;        // its roofline bound, accumulated (0 without machine figures)
} kiln_prof_kernel;

typedef struct {
    const char *model;
    int n_kernels;
    kiln_prof_kernel *kernels;
    // FLOPs and bytes of each kernel in one forward at the symbolic dims sym[] (generated
    // from the IR, as `kiln build --report` computes them): adds to flops[k], bytes[k].
    void (*cost)(const int64_t *sym, double *flops, double *bytes);
    double *flops, *bytes;  // [n_kernels] scratch for cost
    // The machine figures the build knew (0: none): FP32 peak GFLOP/s and read bandwidth
    // GB/s on 1 thread and on threads_n threads; threads_n 0: the figures hold for any count.
    double peak_gflops_1, peak_gflops_n, gbs_1, gbs_n;
    int threads_n;
    const char *machine;    // where the figures came from, for the table
    // accumulated by kiln_prof_forward
    long warmup;            // runs forgotten by kiln_prof_warmup_done (the binary's --warmup)
    long runs;
    double forward_ns;
    int threads;            // of the last run
    double t0;              // start of the kernel call being timed (ns)
} kiln_prof;

void kiln_prof_begin(kiln_prof *p);
int kiln_prof_end(kiln_prof *p, int k, int rc);     // returns rc
int kiln_prof_forward(kiln_prof *p, int (*forward)(kiln_run *r), kiln_run *r);
// The model binary's --warmup: forget the runs so far of the profile that timed the last
// forward (their first touches of pages and caches are not the steady state), counting them
// as warm-up runs; nothing in a binary without --profile.
void kiln_prof_warmup_done(void);
// The table: per kernel calls, total ms, ms per run, share of the forward, achieved GFLOP/s,
// and with machine figures the roofline bound per run and measured / bound.  Nothing
// before the first forward.
void kiln_prof_print(const kiln_prof *p, FILE *out);
// Expressions: time the call `call` (of a void kernel, or of one returning int) as kernel k.
#define KILN_PROF_VOID(p, k, call) (kiln_prof_begin(p), (call), kiln_prof_end((p), (k), 0))
#define KILN_PROF_INT(p, k, call) (kiln_prof_begin(p), kiln_prof_end((p), (k), (call)))

#endif
