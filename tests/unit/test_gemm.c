/* tests/unit/test_gemm.c: the tile pass, weight packing and the packed-panel matmul code.
 *
 *   tile.*     ir_tile's choices: register block per ISA, kc from L1/L2 (split evenly), mc
 *              from L2, packed b for weights only, no tile for matrix x vector; the IR dump
 *              shows them; the same graph and target give the same tiles
 *   emit.*     the generated text: the vocabulary of the chosen ISA only, the tiling comment,
 *              forward() passing the packed copy, prepare(), kiln_model.isa; one pack for a
 *              weight two matmuls read; plain loops with the pass off; same bytes twice
 *   run.*      the generated C of a spec with every kind of tiled matmul (weight, weight^T,
 *              fused bias + gelu + residual, batched q k^T and p v, broadcast batch dims, a^T)
 *              at odd sizes, compiled with -Wall -Wextra -Werror for every ISA this CPU runs,
 *              linked with the runtime (threads), run at several row counts and compared with
 *              the interpreter; with tiny caches (kc 16, mc = mr) so every blocking loop turns;
 *              and on 1, 2 and 3 threads, which must give the same bytes.  Skipped without
 *              clang.
 *
 *   build/tests/test_gemm     prints "test_gemm: N passed, M failed", exit 1 on failure
 */
#include "cg.h"
#include "front.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_passed, n_failed;

static void fail(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(const char *id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", id);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    n_failed++;
}

#define CHECK(id, cond) ((cond) ? (void)n_passed++ : fail((id), "%s", #cond))

static void expect_text(const char *id, const char *text, const char *part, bool want)
{
    if (text && (strstr(text, part) != NULL) == want)
        n_passed++;
    else
        fail(id, "the text %s\n    %s", want ? "does not contain" : "contains", part);
}

static char work[512];         // a temporary folder, under $TMPDIR

static const char *path_in(const char *name)
{
    static char p[4][256];
    static int k;
    char *s = p[k++ % 4];
    snprintf(s, sizeof p[0], "%s/%s", work, name);
    return s;
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path_in(name), "w");
    if (!f || fputs(text, f) < 0)
        KILN_BUG("test: cannot write %s", name);
    fclose(f);
}

/* =======================================================================================
 * Specs and compiling them
 * ======================================================================================= */

// Every kind of matmul the tiled path handles, at sizes that leave tails everywhere: d 37
// and head dim 7 (K), n 45 (a panel and 13 columns), rows up to 19 (row tiles and a tail).
static const char cases_yaml[] =
    "kiln: 1\n"
    "name: gemm_cases\n"
    "params: { d: 37, n: 45, h: 3, hd: 7 }\n"
    "dims:\n"
    "  rows: 19\n"
    "inputs:\n"
    "  x:  { dtype: f32, shape: [rows, d] }\n"
    "  q:  { dtype: f32, shape: [2, h, rows, hd] }\n"
    "  k:  { dtype: f32, shape: [2, h, rows, hd] }\n"
    "  v:  { dtype: f32, shape: [2, h, rows, 5] }\n"
    "  a:  { dtype: f32, shape: [2, 1, rows, 9] }\n"
    "  at: { dtype: f32, shape: [4, 9, rows] }\n"
    "  vec: { dtype: f32, shape: [d] }\n"
    "graph:\n"
    "  - { op: weight, name: w,    tensor: w,    shape: [d, n] }\n"
    "  - { op: weight, name: wt,   tensor: wt,   shape: [n, d] }\n"
    "  - { op: weight, name: bias, tensor: bias, shape: [n] }\n"
    "  - { op: weight, name: b3,   tensor: b3,   shape: [3, 9, 20] }\n"
    "  - { op: weight, name: b4,   tensor: b4,   shape: [4, 9, 6] }\n"
    "  - { op: matmul, name: y,  in: [x, w] }\n"
    "  - { op: add,    name: yb, in: [y, bias] }\n"
    "  - { op: gelu,   name: yg, in: [yb], approximate: tanh }\n"
    "  - { op: matmul, name: yt, in: [x, wt], transpose_b: true }\n"
    "  - { op: add,    name: yr, in: [yt, yg] }\n"
    "  - { op: matmul, name: s,  in: [q, k], transpose_b: true }\n"
    "  - { op: matmul, name: o,  in: [s, v] }\n"
    "  - { op: matmul, name: ab, in: [a, b3] }\n"
    "  - { op: matmul, name: atb, in: [at, b4], transpose_a: true }\n"
    "  - { op: matmul, name: vw, in: [vec, w] }\n"
    "  - { op: matmul, name: again, in: [x, w] }\n"
    "outputs: { yr: yr, o: o, ab: ab, atb: atb, vw: vw, again: again }\n";

static Diag dg;

// The spec the tests compile: cases.yaml (cases_yaml), or parts.yaml (the same with room for
// 300 rows, test_run).
static const char *cases_file = "cases.yaml";

// Load cases_file and run the pipeline for target t (tile pass on unless no_tile).
static Graph *compile_graph(const Target *t, bool no_tile)
{
    Graph *g = spec_load(path_in(cases_file), NULL, 0, &dg);
    if (!g)
        KILN_BUG("test: the cases spec does not load");
    g->target = *t;
    const char *off[] = {"tile"};
    PipelineOptions po = {.disabled = off, .n_disabled = no_tile ? 1 : 0};
    if (!ir_run_pipeline(g, &po, &dg))
        KILN_BUG("test: the pipeline failed");
    return g;
}

static char *emit_text(const Graph *g)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CgOptions opt = {.command = "kiln build cases.yaml", .isa = NULL};
    if (!cg_emit_model(g, &opt, f, &dg))
        KILN_BUG("test: cg_emit_model failed");
    fclose(f);
    return text;
}

static const Node *find(const Graph *g, const char *name)
{
    NodeId id = graph_find(g, name);
    if (id < 0)
        KILN_BUG("test: no node '%s'", name);
    return &g->nodes[id];
}

/* =======================================================================================
 * tile.*
 * ======================================================================================= */

static void test_tile(void)
{
    Target zen5 = {.isa = ISA_AVX512, .l1d = 48 * 1024, .l2 = 1024 * 1024, .host = true};
    Graph *g = compile_graph(&zen5, false);
    const Node *y = find(g, "y"), *s = find(g, "s"), *vw = find(g, "vw");
    CHECK("tile.avx512.block", y->tile.mr == 8 && y->tile.nr == 32);
    CHECK("tile.kc.whole_k", y->tile.kc == 37);             // K 37 fits: one block
    CHECK("tile.mc.rows", y->tile.mc == 24);                // 19 rows, rounded up to mr
    CHECK("tile.pack.weight", y->tile.pack_b);
    CHECK("tile.pack.weight_t", find(g, "yt")->tile.pack_b);
    CHECK("tile.pack.activation", s->tile.mr && !s->tile.pack_b);
    CHECK("tile.pack.batched_weight", find(g, "ab")->tile.mr && !find(g, "ab")->tile.pack_b);
    CHECK("tile.a_vector", vw->tile.mr == 8 && vw->tile.pack_b);
    char *dump = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&dump, &len);
    ir_print(g, f);
    fclose(f);
    expect_text("tile.print", dump, "{tile 8x32 kc 37 mc 24 packed-b}", true);
    expect_text("tile.print.trans", dump, "{trans_b, tile 8x32 kc 7 mc 24}", true);
    free(dump);
    graph_free(g);

    Target avx2 = {.isa = ISA_AVX2};
    g = compile_graph(&avx2, false);
    CHECK("tile.avx2.block", find(g, "y")->tile.mr == 6 && find(g, "y")->tile.nr == 16);
    graph_free(g);
    Target neon = {.isa = ISA_NEON}, scalar = {.isa = ISA_SCALAR};
    g = compile_graph(&neon, false);
    CHECK("tile.neon.block", find(g, "y")->tile.mr == 8 && find(g, "y")->tile.nr == 12);
    graph_free(g);
    g = compile_graph(&scalar, false);
    CHECK("tile.scalar.block", find(g, "y")->tile.mr == 4 && find(g, "y")->tile.nr == 4);
    graph_free(g);

    // Tiny caches: kc from L1 (4 KiB / (4 x 8) = 128, then L2 / (32 x 32) = 16), k blocks
    // even; mc from L2 (8 KiB / 2 / (4 x 16) = 64 rows); never below mr.
    Target tiny = {.isa = ISA_AVX512, .l1d = 4096, .l2 = 16 * 1024};
    g = compile_graph(&tiny, false);
    CHECK("tile.tiny.kc", find(g, "y")->tile.kc == 16);
    CHECK("tile.tiny.mc", find(g, "y")->tile.mc == 24);
    graph_free(g);
    Target tiny2 = {.isa = ISA_AVX512, .l1d = 4096, .l2 = 64 * 1024};
    g = compile_graph(&tiny2, false);
    CHECK("tile.even.kc", find(g, "y")->tile.kc == 48 || find(g, "y")->tile.kc == 37);
    graph_free(g);
}

/* =======================================================================================
 * emit.*
 * ======================================================================================= */

static void test_emit(void)
{
    Target t = {.isa = ISA_AVX2};
    Graph *g = compile_graph(&t, false);
    char *c = emit_text(g), *c2 = emit_text(g);
    CHECK("emit.deterministic", strcmp(c, c2) == 0);
    expect_text("emit.vocab.avx2", c, "#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)", true);
    expect_text("emit.vocab.only_one", c, "_mm512_", false);
    expect_text("emit.vocab.lanes", c, "#define V_LANES VL", true);
    expect_text("emit.isa.header", c, " *   isa     avx2 (AVX2, FMA), 8 floats per vector", true);
    expect_text("emit.isa.model", c, "    .isa = \"avx2\",", true);
    expect_text("emit.tiling", c, " *   tiling  avx2: 6 x 16 microkernel (gemm_6x16), kc 37, mc 24", true);
    expect_text("emit.tiling.packed", c, "b packed at load by prepare(): 3 panels of [37][16]", true);
    expect_text("emit.tiling.activation", c, "b packed 7 x 16 at a time as the kernel runs", true);
    expect_text("emit.prepare", c, "static int prepare(kiln_run *r)", true);
    expect_text("emit.prepare.trans", c, "// wt transposed [45, 37] -> 3 panels of [37][16]", true);
    expect_text("emit.model.prepare", c, "    .prepare = prepare,", true);
    expect_text("emit.forward.packed", c, "const float *pk_w = (const float *)(r->packed + 0x0);", true);
    // y, vw and again read w: one pack (w, then wt at the next offset).
    expect_text("emit.pack.shared", c, "pk_w_2", false);
    expect_text("emit.pack.second", c, "const float *pk_wt = (const float *)(r->packed + 0x", true);
    expect_text("emit.kernel.run", c, "kiln_parallel_for(r, gemm_6x16_tasks(&job), gemm_6x16_run, &job);", true);
    expect_text("emit.epilogue", c, "_epilogue(const gemm_job *j, float *t, int64_t row", true);
    free(c);
    free(c2);
    graph_free(g);

    Target sc = {.isa = ISA_SCALAR};
    g = compile_graph(&sc, true);       // --disable-pass tile
    c = emit_text(g);
    expect_text("emit.no_tile.plain", c, "// the hot loop", true);
    expect_text("emit.no_tile.no_gemm", c, "gemm_job", false);
    expect_text("emit.no_tile.no_prepare", c, "prepare", false);
    expect_text("emit.vocab.scalar", c, "#define V_FMA(a, b, c) ((a) * (b) + (c))", true);
    free(c);
    graph_free(g);
}

/* =======================================================================================
 * run.*: compile for each ISA, run, compare
 * ======================================================================================= */

static const char *cc = "clang";
static char rt_lib[4096], rt_inc[4096];

static uint32_t rng = 2463534242u;
static float rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

// The harness plays kiln_main: raw inputs and weights from NAME.bin files, a pool of
// argv[1] threads, prepare(), forward(), outputs to out.NAME.bin.
static const char harness[] =
    "#define KILN_NO_MAIN\n"
    "#define KILN_NO_API\n"
    "#include \"model.c\"\n"
    "#include <stdlib.h>\n"
    "static void *slurp(const char *kind, const char *name)\n"
    "{\n"
    "    char path[512];\n"
    "    snprintf(path, sizeof path, \"%s.%s.bin\", kind, name);\n"
    "    FILE *f = fopen(path, \"rb\");\n"
    "    if (!f)\n"
    "        exit(2);\n"
    "    fseek(f, 0, SEEK_END);\n"
    "    long n = ftell(f);\n"
    "    fseek(f, 0, SEEK_SET);\n"
    "    void *p = malloc((size_t)n + 4);\n"
    "    if (fread(p, 1, (size_t)n, f) != (size_t)n)\n"
    "        exit(2);\n"
    "    fclose(f);\n"
    "    return p;\n"
    "}\n"
    "int main(int argc, char **argv)\n"
    "{\n"
    "    if (argc != 3)\n"
    "        return 2;\n"
    "    kiln_run r;\n"
    "    memset(&r, 0, sizeof r);\n"
    "    r.model = &model;\n"
    "    r.sym[0] = atoi(argv[2]);\n"
    "    const void *in[16], *w[16];\n"
    "    void *out[16];\n"
    "    size_t bytes[16];\n"
    "    for (int k = 0; k < model.n_inputs; k++)\n"
    "        in[k] = slurp(\"in\", model.inputs[k].name);\n"
    "    for (int k = 0; k < model.n_weights; k++)\n"
    "        w[k] = slurp(\"w\", model.weights[k].name);\n"
    "    for (int k = 0; k < model.n_outputs; k++) {\n"
    "        const kiln_tensor_desc *d = &model.outputs[k];\n"
    "        bytes[k] = 4;\n"
    "        for (int j = 0; j < d->rank; j++)\n"
    "            bytes[k] *= (size_t)(d->sym[j] >= 0 ? r.sym[d->sym[j]] : d->dims[j]);\n"
    "        out[k] = malloc(bytes[k]);\n"
    "    }\n"
    "    r.inputs = in;\n"
    "    r.weights = w;\n"
    "    r.outputs = out;\n"
    "    r.arena = kiln_aligned_alloc(model.arena_bytes);\n"
    "    memset(r.arena, 0xff, model.arena_bytes);   /* NaN everywhere: no stale zeros */\n"
    "    r.pool = kiln_pool_new(atoi(argv[1]));\n"
    "    if (model.prepare) {\n"
    "        r.packed = kiln_aligned_alloc(model.packed_bytes);\n"
    "        memset(r.packed, 0xff, model.packed_bytes);\n"
    "        if (model.prepare(&r))\n"
    "            return 3;\n"
    "    }\n"
    "    if (model.forward(&r))\n"
    "        return 3;\n"
    "    for (int k = 0; k < model.n_outputs; k++) {\n"
    "        char path[512];\n"
    "        snprintf(path, sizeof path, \"out.%s.bin\", model.outputs[k].name);\n"
    "        FILE *f = fopen(path, \"wb\");\n"
    "        if (!f || fwrite(out[k], 1, bytes[k], f) != bytes[k])\n"
    "            return 2;\n"
    "        fclose(f);\n"
    "    }\n"
    "    kiln_pool_free(r.pool);\n"
    "    for (int k = 0; k < model.n_inputs; k++)   /* quiet under a leak checker */\n"
    "        free((void *)in[k]);\n"
    "    for (int k = 0; k < model.n_weights; k++)\n"
    "        free((void *)w[k]);\n"
    "    for (int k = 0; k < model.n_outputs; k++)\n"
    "        free(out[k]);\n"
    "    kiln_aligned_free(r.arena);\n"
    "    kiln_aligned_free(r.packed);\n"
    "    return 0;\n"
    "}\n";

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", work);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return rc == -1 ? -1 : WEXITSTATUS(rc);
}

static void *slurp(const char *name, size_t *n)
{
    FILE *f = fopen(path_in(name), "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = xmalloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

typedef struct {
    const char *name[16];
    void *data[16];
    int n;
} Weights;

static const void *find_weight(void *ctx, const char *tensor, const Type *type)
{
    (void)type;
    Weights *w = ctx;
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->name[i], tensor) == 0)
            return w->data[i];
    return NULL;
}

// Random inputs (rows = `rows`) and weights for the unoptimized graph ref, written as .bin
// files; the interpreter's outputs in want[].
static bool reference(const Graph *ref, int64_t rows, Tensor *want, Weights *w)
{
    Tensor in[16];
    for (int k = 0; k < ref->n_inputs; k++) {
        const Node *nd = &ref->nodes[ref->inputs[k]];
        in[k].dtype = DT_F32;
        in[k].rank = nd->type.rank;
        for (int d = 0; d < nd->type.rank; d++)
            in[k].dim[d] = nd->type.dim[d].sym >= 0 ? rows : nd->type.dim[d].size;
        int64_t numel = tensor_numel(&in[k]);
        in[k].data = xmalloc((size_t)numel * 4 + 4);
        for (int64_t i = 0; i < numel; i++)
            ((float *)in[k].data)[i] = rnd();
        char name[128];
        snprintf(name, sizeof name, "in.%s.bin", nd->name);
        FILE *f = fopen(path_in(name), "wb");
        fwrite(in[k].data, 4, (size_t)numel, f);
        fclose(f);
    }
    w->n = 0;
    for (int i = 0; i < ref->n_nodes; i++) {
        const Node *nd = &ref->nodes[i];
        if (nd->op != OP_WEIGHT || find_weight(w, nd->attr.weight.tensor, NULL))
            continue;
        int64_t numel = type_numel_max(&nd->type);
        float *data = xmalloc((size_t)numel * 4);
        for (int64_t j = 0; j < numel; j++)
            data[j] = rnd();
        w->name[w->n] = nd->attr.weight.tensor;
        w->data[w->n++] = data;
        char name[128];
        snprintf(name, sizeof name, "w.%s.bin", nd->attr.weight.tensor);
        FILE *f = fopen(path_in(name), "wb");
        fwrite(data, 4, (size_t)numel, f);
        fclose(f);
    }
    InterpEnv env = {in, find_weight, w};
    bool ok = ir_interpret(ref, &env, want, stdout);
    for (int k = 0; k < ref->n_inputs; k++)
        free(in[k].data);
    return ok;
}

// out.NAME.bin of every output vs the interpreter, within 2e-5 x max(1, |want|).
static void compare(const char *id, const Graph *ref, const Tensor *want)
{
    for (int o = 0; o < ref->n_outputs; o++) {
        char name[128];
        snprintf(name, sizeof name, "out.%s.bin", ref->outputs[o].name);
        size_t n = 0;
        float *got = slurp(name, &n);
        int64_t numel = tensor_numel(&want[o]);
        if (!got || n != (size_t)numel * 4) {
            fail(id, "output %s: %zu bytes, expected %lld", ref->outputs[o].name, n,
                 (long long)numel * 4);
            free(got);
            continue;
        }
        int64_t bad = -1;
        for (int64_t i = 0; i < numel && bad < 0; i++) {
            double a = (double)got[i], b = (double)((const float *)want[o].data)[i];
            if (!(fabs(a - b) <= 2e-5 * (fabs(b) > 1 ? fabs(b) : 1)))
                bad = i;
        }
        if (bad >= 0)
            fail(id, "output %s[%lld]: got %.9g, the interpreter %.9g (tolerance 2e-5)",
                 ref->outputs[o].name, (long long)bad, (double)got[bad],
                 (double)((const float *)want[o].data)[bad]);
        else
            n_passed++;
        free(got);
    }
}

static const char *isa_flags(Isa isa)
{
    return isa == ISA_AVX512 ? "-mavx512f -mavx512vl -mfma -mavx2"
           : isa == ISA_AVX2 ? "-mavx2 -mfma"
                             : "";
}

// Build the cases for target t and run them at each of the row counts, against the
// interpreter (ref) and across thread counts.
static void run_isa(const Graph *ref, const Target *t, const char *tag, const int64_t *row_counts,
                    int n_counts)
{
    char id[128];
    Graph *g = compile_graph(t, false);
    char *c = emit_text(g);
    graph_free(g);
    write_text("model.c", c);
    write_text("harness.c", harness);
    free(c);
    snprintf(id, sizeof id, "run.%s.compile", tag);
    int rc = sh("rm -f harness && %s -std=gnu11 -O2 -fno-math-errno -Wall -Wextra -Werror %s "
                "-I'%s' harness.c '%s' -lm -pthread -o harness > cc.txt 2>&1",
                cc, isa_flags(t->isa), rt_inc, rt_lib);
    if (rc != 0) {
        size_t n;
        char *msg = slurp("cc.txt", &n);
        fail(id, "%s failed:\n%.3000s", cc, msg ? msg : "");
        free(msg);
        return;
    }
    n_passed++;
    for (int r = 0; r < n_counts; r++) {
        Tensor want[16];
        Weights w;
        snprintf(id, sizeof id, "run.%s.rows%lld", tag, (long long)row_counts[r]);
        if (!reference(ref, row_counts[r], want, &w)) {
            fail(id, "the interpreter failed");
            continue;
        }
        // 1 thread vs the interpreter; 2 and 3 threads byte for byte the same.
        if ((rc = sh("./harness 1 %lld && mkdir -p t1 && cp out.*.bin t1/", (long long)row_counts[r])) != 0)
            fail(id, "the harness exited %d", rc);
        else
            compare(id, ref, want);
        for (int th = 2; th <= 3; th++) {
            snprintf(id, sizeof id, "run.%s.rows%lld.threads%d", tag, (long long)row_counts[r], th);
            rc = sh("./harness %d %lld && for f in out.*.bin; do cmp -s $f t1/$f || exit 9; done",
                    th, (long long)row_counts[r]);
            if (rc != 0)
                fail(id, rc == 9 ? "outputs differ from 1 thread's" : "the harness failed (%d)", rc);
            else
                n_passed++;
        }
        for (int o = 0; o < ref->n_outputs; o++)
            free(want[o].data);
        for (int i = 0; i < w.n; i++)
            free(w.data[i]);
    }
}

static void test_run(void)
{
    Graph *ref = spec_load(path_in("cases.yaml"), NULL, 0, &dg);
    if (!ref)
        KILN_BUG("test: the cases spec does not load");
    ir_verify(ref, NULL);
    __builtin_cpu_init();
    bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512vl");
    const Isa isas[] = {ISA_SCALAR, ISA_AVX2, ISA_AVX512};
    const int64_t rows[] = {19, 8, 1, 13}, many[] = {77, 300};
    // The same cases with room for 300 rows: a job of few panels has its tasks split in parts
    // of a row block (gemm_<mr>x<nr>_tasks).  AVX-512's x w at 77 rows: 2 parts of 40 rows;
    // at 300 rows: 9 of 40, the last past the rows (empty).  AVX2's and scalar's: 3 and 5
    // parts at 77 rows, 12 (two empty) and 11 at 300.
    const char *bound = strstr(cases_yaml, "rows: 19\n");
    if (!bound)
        KILN_BUG("test: cases_yaml has no 'rows: 19' bound");
    char parts_yaml[sizeof cases_yaml + 8];
    snprintf(parts_yaml, sizeof parts_yaml, "%.*srows: 300\n%s", (int)(bound - cases_yaml),
             cases_yaml, bound + strlen("rows: 19\n"));
    write_text("parts.yaml", parts_yaml);
    cases_file = "parts.yaml";
    Graph *ref_many = spec_load(path_in(cases_file), NULL, 0, &dg);
    cases_file = "cases.yaml";
    if (!ref_many)
        KILN_BUG("test: parts.yaml does not load");
    ir_verify(ref_many, NULL);
    for (int i = 0; i < 3; i++) {
        if ((isas[i] == ISA_AVX2 && !has_avx2) || (isas[i] == ISA_AVX512 && !has_avx512)) {
            printf("SKIP: run.%s (this CPU lacks it)\n", isa_name(isas[i]));
            continue;
        }
        Target t = {.isa = isas[i]};
        run_isa(ref, &t, isa_name(isas[i]), rows, 4);
        // Tiny caches: kc 16, mc 8: several k blocks (the FMA chain continued through c) and
        // row blocks per matmul.
        Target tiny = {.isa = isas[i], .l1d = 4096, .l2 = 16 * 1024};
        char tag[64];
        snprintf(tag, sizeof tag, "%s.tiny_caches", isa_name(isas[i]));
        run_isa(ref, &tiny, tag, rows, 4);
        snprintf(tag, sizeof tag, "%s.parts", isa_name(isas[i]));
        cases_file = "parts.yaml";
        run_isa(ref_many, &t, tag, many, 2);
        cases_file = "cases.yaml";
    }
    graph_free(ref_many);
    graph_free(ref);
}

int main(void)
{
    diag_init(&dg);
    snprintf(work, sizeof work, "%s/kiln_test_gemm.XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(work)) {
        printf("test_gemm: cannot make a temporary folder\n");
        return 1;
    }
    write_text("cases.yaml", cases_yaml);
    test_tile();
    test_emit();

    // The runtime beside this test: build/tests/test_gemm -> build/lib/kiln, build/include.
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(rt_lib, sizeof rt_lib, "%s/../lib/kiln/libkiln_rt.a", exe);
    snprintf(rt_inc, sizeof rt_inc, "%s/../include/kiln", exe);
    if (getenv("KILN_CC") && *getenv("KILN_CC"))
        cc = getenv("KILN_CC");
    char probe[256];
    snprintf(probe, sizeof probe, "command -v '%.*s' > /dev/null 2>&1", (int)strcspn(cc, " "), cc);
    if (system(probe) != 0 || access(rt_lib, R_OK) != 0)
        printf("test_gemm: %s or %s not found; skipping the compile-and-run checks (run.*)\n",
               cc, rt_lib);
    else
        test_run();

    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", work);
    if (getenv("KILN_TEST_KEEP"))
        printf("test_gemm: the generated files are in %s\n", work);
    else if (system(rm) != 0)
        printf("test_gemm: could not remove %s\n", work);
    printf("test_gemm: %d passed, %d failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
