/* codegen/kernels_attention.c: the kernel of fused_attention, the node fuse-attention makes.
 *
 *   out[.., i, :] = sum_j softmax_j(s[i, j]) v[.., j, :],
 *   s[i, j] = (q[.., i, :] . k[.., j, :]) * scale (+ mask[.., i, j]), then -inf where causal
 *             and j > i + Sk - Sq
 *
 * computed FlashAttention-style, without ever storing the [Sq, Sk] scores: for each leading
 * index (batch and head) and each block of BQ query rows, the kernel streams over the keys in
 * blocks of BK, keeping per row a running max, a running sum of exp(s - max) and an
 * accumulator of Dv outputs; when a block raises the max, the sum and the accumulator are
 * rescaled by exp(old max - new max) (the "online softmax").  Memory is O(BQ * Dv + BK * D)
 * floats on the stack per task, whatever the sequence length.
 *
 * Work is split into tasks of one query block of one (batch, head) each, handed to the
 * threads by kiln_parallel_for; every output row is computed by one task in a fixed order, so
 * the result is bitwise the same for any thread count.
 *
 * Loops, in the ISA vocabulary (V_LOAD, V_FMA, ...; codegen/isa_prelude.c), with VL floats
 * per vector known when the C is written:
 *   kt[d][c] = k[j0 + c, d]          the key block transposed once per query block (zero past
 *                                    the last key), so that the scores are
 *   s[x][c] += q[i, d] * kt[d][c]    an i-k-j product over a register tile of ROWS (4) query
 *                                    rows i = i0 + r0 + x by up to 4 vectors of keys: per d,
 *                                    one broadcast of q per row and one load of kt per vector
 *                                    feed 16 FMAs (the hot loop; each s[x][c] sums over d in
 *                                    order)
 *   acc[r] = acc[r] * alpha[x] + sum_c p[x][c] v[j0 + c]    the same tile over Dv, r = r0 + x:
 *                                    per key, one broadcast of p per row and one load of v
 *                                    per vector feed 16 FMAs; a partial last vector (Dv 7 with
 *                                    VL 8, ...) is read with V_LOAD_N and stored with V_STORE_N
 * One row at a time, every FMA would need a load of its own (of kt or of v) and both loops
 * would be load-bound.  The rows of a block that do not fill a tile (ni % 4) take the same
 * steps one at a time; a row's arithmetic is the same either way, so the tiling changes no
 * output.  A block with fewer rows than a tile (one generated token) is not transposed: its
 * scores are dot products along d of q's row and k's rows read in place (scores_dot), in
 * vector partial sums added across the lanes.  tile_vectors gives the vectors per row for
 * each ISA's register count.
 * Between the two, row by row: the scale, mask and causal test are a plain loop over the
 * block's keys; the max and the sum use V_MAX / V_ADD over whole vectors (lanes past the last
 * key are -inf, so exp gives 0); exp is attn_expf, plain C that clang vectorizes (written once
 * per file).
 *
 * That is the row-major body (task_body).  Where the mask, if any, is the same for every
 * query row (one value per key: BERT's padding mask) and, if causal, the query rows fill a
 * vector (Sq >= VL: a prompt, not one generated token; chosen per call when Sq is symbolic),
 * the key-major body (task_body_cols) does the same work turned around: the task transposes
 * its query rows once, qT[d][i], and the scores of a key block are computed as sT[c][i] for
 * 4 keys at a time (6 on AVX2, cols_tile) against vectors of query rows (a broadcast of
 * k[j0 + c, d] and loads of qT feed the FMAs: no transposed key block); scale, mask, max,
 * exp (V_EXP, the prelude's) and the sums then run across the rows in vectors, the running
 * max and sum being arrays over the rows (no sums across lanes, no scalar exp per row); acc
 * is updated by register tiles of as many rows, reading p at sT[c][row].
 * Each row's arithmetic is its own, so any split of the rows over tasks gives the same bytes.
 *
 * Causal: key blocks entirely above the diagonal are never visited (the key loop stops at
 * the query block's last visible key), nor, within a key block, the tiles of rows that see
 * none of its keys (they would add p 0 with alpha 1; the key-major body starts its loops
 * over rows at the first vector with such a row); elsewhere the masked scores are -inf.
 *
 * Agreement with the unfused chain (softmax then matmul), to float rounding:
 *   - a row whose scores are all -inf (every key masked, or causal with Sq > Sk) has sum 0
 *     and gives 0 * (1 / 0) = NaN in every output, as softmax (0 / 0) and PyTorch do;
 *   - a NaN score makes its row NaN (it reaches the sum), as in softmax;
 *   - the one difference: keys of skipped causal blocks never touch v, so a NaN or inf in v
 *     at a masked position does not reach the output (the unfused matmul computes 0 * NaN).
 *
 * The leading dims of q, k, v and out are identical (fuse-attention checks it), so one flat
 * index bh walks them all; the mask, which broadcasts, has its own offset computed from bh.
 * A seq-major operand (attr seq_major, ir.h attention_view) is stored [.., S, H, D]: its
 * matrix bh starts at bh / H * S * H * D + bh % H * D and its rows are H * D apart
 * (matrix_at); fuse-attention makes q and out so, reading a projection's output in place and
 * merging the heads back by writing each row where it belongs.
 * D and Dv must be static (the block buffers are sized by them); Sq, Sk and the leading dims
 * may be symbolic.
 */
#include "cg.h"

#include <string.h>

#define KT_FLOATS 8192  // the transposed key block kt[D][BK] stays within 32 KiB when it can
#define BQ_MAX 128      // query rows per block (per task)
#define ACC_FLOATS 8192 // acc[BQ][Dv] within 32 KiB
#define ROWS 4          // query rows in a register tile (the score and accumulate loops)
#define TILE_MAX 6      // the most rows (or keys) of any tile: cols_tile's 6 on AVX2

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Vectors per row in a register tile (at most 4): ROWS rows of that many accumulators, plus
// as many loads and the rows' broadcasts, fit the ISA's vector registers: 16 + 4 + 4 of
// AVX-512's and NEON's 32, 8 + 2 + 4 of AVX2's 16 (scalar: as AVX2, in general registers).
static int tile_vectors(Isa isa)
{
    return isa == ISA_AVX512 || isa == ISA_NEON ? 4 : 2;
}

// Keys per score tile and rows per accumulate tile of the key-major body: 4 (ROWS) by
// tile_vectors, 16 accumulators, where there are 32 vector registers; 6 by 2 on AVX2, 12
// accumulators + 2 loads + 1 broadcast of its 16.  Two FMA pipes of latency 4 need 8
// independent chains: 4 x 2 had exactly 8 and no slack, and BERT-base seq 512's attention
// ran at 143 GFLOP/s with AVX2 against 184 with AVX-512 (Zen 4, 2 threads, whose peak is the
// same for both).  The last keys of a block then go 4 and 1 at a time, the last rows in
// tiles of 4 and one at a time.
static int cols_tile(Isa isa)
{
    return isa == ISA_AVX2 ? 6 : ROWS;
}

// exp for the softmax's exp(s - max) <= 0, written once per file (cg_emit_attention_support,
// before the kernels).  libm's expf is a call per
// element; this is plain C that clang vectorizes.  Error: within 2 ulp of expf on [-87.3, 0]
// (tests/unit/test_attention.c measures it).
static const char expf_text[] =
    "/* attn_expf: exp(x) for the softmax of the attention kernels, x <= 0, in plain C that\n"
    " * clang vectorizes (libm's expf is a call per element).  x = n ln2 + f with |f| <= ln2/2\n"
    " * (Cody-Waite), exp(f) by Cephes' degree-6 polynomial, times 2^n built in the exponent\n"
    " * bits.  Within 2 ulp of expf; below -87.3 (past the smallest normal float) it gives 0,\n"
    " * so exp(-inf) is 0; NaN stays NaN. */\n"
    "static inline float attn_expf(float x)\n"
    "{\n"
    "    const float xc = fminf(fmaxf(x, -87.3f), 88.3f);\n"
    "    const float n = floorf(xc * 1.44269504f + 0.5f);\n"
    "    const float f = xc - n * 0.693359375f + n * 2.12194440e-4f;\n"
    "    float p = 1.9875691500e-4f;\n"
    "    p = p * f + 1.3981999507e-3f;\n"
    "    p = p * f + 8.3334519073e-3f;\n"
    "    p = p * f + 4.1665795894e-2f;\n"
    "    p = p * f + 1.6666665459e-1f;\n"
    "    p = p * f + 5.0000001201e-1f;\n"
    "    p = p * f * f + f + 1.0f;\n"
    "    const int32_t bits = ((int32_t)n + 127) << 23;   /* 2^n, n in [-126, 127] */\n"
    "    float two_n;\n"
    "    memcpy(&two_n, &bits, sizeof two_n);\n"
    "    return x != x ? x : x < -87.3f ? 0.0f : p * two_n;\n"
    "}\n\n";

void cg_emit_attention_support(Cg *cg, Buf *b)
{
    for (int i = 0; i < cg->g->n_nodes; i++)
        if (!cg->g->nodes[i].dead && cg->g->nodes[i].op == OP_ATTENTION) {
            bputs(b, expf_text);
            return;
        }
}

// "(Sk - Sq)" for the causal offset; NULL when the two are the same dim (offset 0).
static const char *offset_text(Cg *cg, Mono sk, Mono sq)
{
    if (mono_eq(sk, sq))
        return NULL;
    return cg_fmt(cg, "(%s - %s)", cg_mono(cg, sk, false), cg_mono(cg, sq, false));
}

// The mask's element offset for the leading index `bh`, or NULL if the mask is one matrix
// for all of them.  q gives the leading dims; mst[a] is the mask's stride along dim a (0
// where it broadcasts).
static const char *mask_base(Cg *cg, const Type *q, int n_lead, const Mono *mst)
{
    Nest nest;
    memset(&nest, 0, sizeof nest);
    nest.n_loops = n_lead;
    nest.n_ops = 2;     // 0: the flat index bh itself, 1: the mask
    Mono flat = mono_const(1);
    for (int a = n_lead - 1; a >= 0; a--) {
        nest.size[a] = mono_dim(q->dim[a]);
        nest.stride[0][a] = flat;
        nest.stride[1][a] = mst[a];
        flat = mono_mul(flat, nest.size[a]);
    }
    nest.base[0] = nest.base[1] = mono_const(0);
    cg_nest_simplify(&nest);
    Buf e = {0};
    for (int l = 0; l < nest.n_loops; l++) {
        Mono ms = nest.stride[1][l], fs = nest.stride[0][l];
        if (mono_is(ms, 0))
            continue;
        // The index along merged dim l: (bh / fs) % size, without the divide for the
        // innermost dim and without the modulo for the outermost.
        const char *idx = mono_is(fs, 1) ? "bh" : cg_fmt(cg, "bh / %s", cg_mono(cg, fs, true));
        if (l > 0)
            idx = mono_is(fs, 1) ? cg_fmt(cg, "bh %% %s", cg_mono(cg, nest.size[l], true))
                                 : cg_fmt(cg, "(%s) %% %s", idx, cg_mono(cg, nest.size[l], true));
        if (!mono_is(ms, 1))
            idx = cg_fmt(cg, "%s%s%s * %s", l > 0 ? "(" : "", idx, l > 0 ? ")" : "",
                         cg_mono(cg, ms, true));
        bprintf(&e, "%s%s", e.len ? " + " : "", idx);
    }
    const char *s = e.len ? cg_fmt(cg, "%s", bstr(&e)) : NULL;
    bfree(&e);
    return s;
}

// "V_LOAD(p + off)" or, for a partial last vector of `len` lanes, "V_LOAD_N(p + off, len)".
static const char *vload(Cg *cg, const char *p, int64_t off, int64_t len, int vl)
{
    const char *at = off ? cg_fmt(cg, "%s + %lld", p, (long long)off) : p;
    return len < vl ? cg_fmt(cg, "V_LOAD_N(%s, %lld)", at, (long long)len)
                    : cg_fmt(cg, "V_LOAD(%s)", at);
}

/* ---------------------------------------------------------------------------------------
 * The register tile: the score and accumulate loops for a few query rows at once (see
 * "Loops" atop the file).  Each emitter writes the loop for a RowTile, either ROWS rows or
 * the one row rr of the loop over the rows left, with the same arithmetic per row.
 */

// The tile as the generated code names its rows: rows r0 + 0 .. r0 + n - 1 (ix "0", "1",
// ...), or the one row r0 + rr of the loop over the last rows (ix "rr").
typedef struct {
    int n;                  // rows in the tile
    const char *ix[TILE_MAX];   // row x of the tile is query row i0 + r0 + ix[x] of the block
    bool cols;              // the key-major task: probabilities at sT[c][row], alpha[row]
} RowTile;

// "r0", "r0 + 1", "r0 + rr": row x of the tile within the block.
static const char *tile_row(Cg *cg, const RowTile *t, int x)
{
    return strcmp(t->ix[x], "0") == 0 ? "r0" : cg_fmt(cg, "r0 + %s", t->ix[x]);
}

// "p + c", "p + c + 16": vector y of a group starting at `base` ("c", "d" or NULL for 0).
static const char *vec_at(Cg *cg, const char *p, const char *base, int64_t off)
{
    if (!base)
        return off ? cg_fmt(cg, "%s + %lld", p, (long long)off) : p;
    return off ? cg_fmt(cg, "%s + %s + %lld", p, base, (long long)off)
               : cg_fmt(cg, "%s + %s", p, base);
}

// "V_T s00 = V_ZERO(), s01 = V_ZERO();" ...: accumulators sXY for X < nx, Y < ny, one line
// per X.
static void zero_accumulators(Kernel *k, int nx, int ny)
{
    for (int x = 0; x < nx; x++) {
        Buf decl = {0};
        for (int y = 0; y < ny; y++)
            bprintf(&decl, "%ss%d%d = V_ZERO()", y ? ", " : "V_T ", x, y);
        bline(&k->body, "%s;", bstr(&decl));
        bfree(&decl);
    }
}

// The scores of the tile's rows against the key block, u vectors of keys at a time (kt is
// zero past nj, and each row of s holds BK):
//   s[x][c] = sum over d of q[i0 + r0 + x, d] * kt[d][c]
// For each d: u loads of kt and one broadcast of q per row feed n * u FMAs.
static void scores(Kernel *k, const RowTile *t, int u, int64_t D, const char *ldq, int vl)
{
    Cg *cg = k->cg;
    Buf *b = &k->body;
    for (int x = 0; x < t->n; x++)
        bline(b, "const float *restrict qr%d = qm + (i0 + %s) * %s;", x, tile_row(cg, t, x), ldq);
    bline(b, "for (int64_t c = 0; c < nj; c += %d) {", u * vl);
    b->indent++;
    zero_accumulators(k, t->n, u);
    bline(b, "for (int64_t d = 0; d < %lld; d++) {   // the hot loop", (long long)D);
    b->indent++;
    for (int y = 0; y < u; y++)
        bline(b, "const V_T k%d = V_LOAD(%s);", y, vec_at(cg, "kt[d]", "c", (int64_t)y * vl));
    for (int x = 0; x < t->n; x++) {
        bline(b, "const V_T qd%d = V_SET1(qr%d[d]);", x, x);
        for (int y = 0; y < u; y++)
            bline(b, "s%d%d = V_FMA(qd%d, k%d, s%d%d);", x, y, x, y, x, y);
    }
    b->indent--;
    bline(b, "}");
    for (int x = 0; x < t->n; x++)
        for (int y = 0; y < u; y++)
            bline(b, "V_STORE(%s, s%d%d);",
                  vec_at(cg, cg_fmt(cg, "s[%s]", t->ix[x]), "c", (int64_t)y * vl), x, y);
    b->indent--;
    bline(b, "}");
}

// The scores of one row rr of a block with fewer rows than a tile (one generated token),
// each a dot product along d of the row of q and a row of k read in place, so that the key
// block is not transposed for one row:  s[rr][c] = sum over d of q[i0 + r0 + rr, d] *
// k[j0 + c, d], in up to 4 vector partial sums (vector w of the row into sum w % 4), added
// pairwise, then across the lanes.
static void scores_dot(Kernel *k, int64_t D, const char *ldq, const char *ldk, int vl)
{
    Cg *cg = k->cg;
    Buf *b = &k->body;
    int64_t nvec = (D + vl - 1) / vl, full = D / vl;
    int u = (int)min64(tile_vectors(cg->isa), nvec);
    int64_t looped = full / u > 1 ? full / u * u : 0;      // whole vectors in the d loop
    bline(b, "const float *restrict qr0 = qm + (i0 + r0 + rr) * %s;", ldq);
    bline(b, "for (int64_t c = 0; c < nj; c++) {");
    b->indent++;
    bline(b, "const float *restrict kr = km + (j0 + c) * %s;", ldk);
    Buf decl = {0};
    for (int y = 0; y < u; y++)
        bprintf(&decl, "%sa%d = V_ZERO()", y ? ", " : "V_T ", y);
    bline(b, "%s;", bstr(&decl));
    bfree(&decl);
    if (looped) {
        bline(b, "for (int64_t d = 0; d < %lld; d += %lld) {", (long long)(looped * vl),
              (long long)(u * vl));
        for (int y = 0; y < u; y++) {
            const char *at = y ? cg_fmt(cg, "d + %lld", (long long)y * vl) : "d";
            bline(b, "    a%d = V_FMA(V_LOAD(qr0 + %s), V_LOAD(kr + %s), a%d);", y, at, at, y);
        }
        bline(b, "}");
    }
    for (int64_t w = looped; w < nvec; w++) {
        int64_t len = min64(vl, D - w * vl);
        bline(b, "a%d = V_FMA(%s, %s, a%d);", (int)(w % u), vload(cg, "qr0", w * vl, len, vl),
              vload(cg, "kr", w * vl, len, vl), (int)(w % u));
    }
    const char *sum = u == 1 ? "a0"
                      : u == 2 ? "V_ADD(a0, a1)"
                      : u == 3 ? "V_ADD(V_ADD(a0, a1), a2)"
                               : "V_ADD(V_ADD(a0, a1), V_ADD(a2, a3))";
    bline(b, "s[rr][c] = V_REDUCE_ADD(%s);", sum);
    b->indent--;
    bline(b, "}");
}

// The accumulate step for the vectors [v0, v1) of Dv (at most 4), where `d` is either a
// loop variable (whole vectors only) or NULL (static offsets v0 * vl ...):
//   acc[r0 + x][..] = acc[r0 + x][..] * alpha[x] + sum over the block's keys c of
//                     s[x][c] * v[j0 + c][..]
// For each key: the vectors of its row of v are loaded once for the tile's rows, each row
// broadcasts its probability: n * (v1 - v0) FMAs.
static void accumulate(Kernel *k, const RowTile *t, int64_t v0, int64_t v1, const char *d,
                       int64_t Dv, const char *ldv, int vl)
{
    Cg *cg = k->cg;
    Buf *b = &k->body;
    int u = (int)(v1 - v0);
    // o<x><y>: row x of the tile, vector y of the group (u <= 4, as tile_vectors).
    const char *acc_at[TILE_MAX][4];
    for (int x = 0; x < t->n; x++)
        for (int y = 0; y < u; y++) {
            const char *row = cg_fmt(cg, "acc[%s]", tile_row(cg, t, x));
            acc_at[x][y] = vec_at(cg, row, d, d ? (int64_t)y * vl : (v0 + y) * vl);
            bline(b, "V_T o%d%d = V_MUL(V_LOAD(%s), va%d);", x, y, acc_at[x][y], x);
        }
    bline(b, "for (int64_t c = 0; c < nj; c++) {   // the hot loop");
    b->indent++;
    bline(b, "const float *restrict vr = vm + (j0 + c) * %s%s;", ldv,
          d ? cg_fmt(cg, " + %s", d) : "");
    for (int y = 0; y < u; y++) {
        int64_t off = d ? (int64_t)y * vl : (v0 + y) * vl;
        int64_t len = d ? vl : min64(vl, Dv - (v0 + y) * vl);
        bline(b, "const V_T v%d = %s;", y, vload(cg, "vr", off, len, vl));
    }
    for (int x = 0; x < t->n; x++) {
        if (t->cols)
            bline(b, "const V_T p%d = V_SET1(sT[c][%s]);", x, tile_row(cg, t, x));
        else
            bline(b, "const V_T p%d = V_SET1(s[%s][c]);", x, t->ix[x]);
        for (int y = 0; y < u; y++)
            bline(b, "o%d%d = V_FMA(p%d, v%d, o%d%d);", x, y, x, y, x, y);
    }
    b->indent--;
    bline(b, "}");
    for (int x = 0; x < t->n; x++)
        for (int y = 0; y < u; y++)
            bline(b, "V_STORE(%s, o%d%d);", acc_at[x][y], x, y);
}

// acc = acc * alpha + p v for the tile's rows, u vectors of Dv per pass over the keys: a
// loop over whole groups of u whole vectors, then the rest (a partial last vector, Dv 7
// with VL 8, is read with V_LOAD_N; acc rows are padded to whole vectors).
static void accumulate_rows(Kernel *k, const RowTile *t, int u, int64_t Dv, const char *ldv,
                            int vl)
{
    Buf *b = &k->body;
    int64_t DvP = (Dv + vl - 1) / vl * vl;
    int64_t nvec = DvP / vl, full = Dv / vl;       // vectors, of which whole
    int64_t groups = full / u;                     // whole groups of u whole vectors
    for (int x = 0; x < t->n; x++)
        bline(b, "const V_T va%d = V_SET1(alpha[%s]);", x,
              t->cols ? tile_row(k->cg, t, x) : t->ix[x]);
    if (groups > 1) {
        bline(b, "for (int64_t d = 0; d < %lld; d += %lld) {", (long long)(groups * u * vl),
              (long long)(u * vl));
        b->indent++;
        accumulate(k, t, 0, u, "d", Dv, ldv, vl);
        b->indent--;
        bline(b, "}");
    } else if (groups == 1) {
        bline(b, "{");
        b->indent++;
        accumulate(k, t, 0, u, NULL, Dv, ldv, vl);
        b->indent--;
        bline(b, "}");
    }
    for (int64_t v0 = groups * u; v0 < nvec; v0 += u) {
        bline(b, "{");
        b->indent++;
        accumulate(k, t, v0, min64(nvec, v0 + u), NULL, Dv, ldv, vl);
        b->indent--;
        bline(b, "}");
    }
}

// The arguments of a step over a tile of rows (scores or accumulate).
typedef struct {
    int u;                  // vectors per row in registers
    int64_t len;            // D (scores) or Dv (accumulate)
    const char *ld;         // row stride of q (scores) or v (accumulate)
    int vl;
} TileStep;

static void scores_step(Kernel *k, const RowTile *t, const TileStep *s)
{
    scores(k, t, s->u, s->len, s->ld, s->vl);
}

static void accumulate_step(Kernel *k, const RowTile *t, const TileStep *s)
{
    accumulate_rows(k, t, s->u, s->len, s->ld, s->vl);
}

// A step for the rows [r0, r0 + nr) of the body's loop over tiles: on the register tile when
// nr is its height (`what` says what one step of it loads and computes), else on the rows one
// at a time.
static void tile_or_rows(Kernel *k, const RowTile *tile, const RowTile *one, const char *what,
                         void (*step)(Kernel *, const RowTile *, const TileStep *),
                         const TileStep *s)
{
    Buf *b = &k->body;
    int nt = tile->n;
    if (nt > 1) {
        bline(b, "if (nr == %d) {   // %d rows: %s", nt, nt, what);
        b->indent++;
        step(k, tile, s);
        b->indent--;
        bline(b, "} else {");
        b->indent++;
    }
    bline(b, "for (int64_t rr = 0; rr < nr; rr++) {   // %s", nt > 1 ? "the last rows, one at "
          "a time" : "one row at a time");
    b->indent++;
    step(k, one, s);
    b->indent--;
    bline(b, "}");
    if (nt > 1) {
        b->indent--;
        bline(b, "}");
    }
}

// acc = acc * alpha + p v for the rows [r0, r0 + nr) (tile_or_rows).
static void accumulate_tile(Kernel *k, const RowTile *tile, const RowTile *one, int ua,
                            int64_t Dv, const char *ldv, int vl)
{
    int nt = tile->n;
    const char *what = cg_fmt(k->cg, "per key, %d broadcasts of p and %d load%s of v, %d FMAs",
                              nt, ua, ua > 1 ? "s" : "", nt * ua);
    tile_or_rows(k, tile, one, what, accumulate_step, &(TileStep){ua, Dv, ldv, vl});
}

/* ---------------------------------------------------------------------------------------
 * The task
 */

// Declare `var`, operand `param`'s matrix of the leading index bh, and set *ld to its row
// stride.  view is the operand as the op reads it, [.., H, S, D].  Stored that way, the
// matrix is at bh * S * D with rows D apart; stored seq-major, [.., S, H, D] (the layout of
// a projection's output, no transpose between), at bh / H * S * H * D + bh % H * D with rows
// H * D apart.
static void matrix_at(Kernel *k, const char *var, const char *param, bool in, const Type *view,
                      bool seq_major, const char *s_name, const char **ld)
{
    Cg *cg = k->cg;
    int r = view->rank;
    Mono S = mono_dim(view->dim[r - 2]), D = mono_dim(view->dim[r - 1]);
    const char *base;
    if (!seq_major) {
        *ld = cg_mono(cg, D, true);
        base = cg_fmt(cg, "bh * %s", cg_mono(cg, mono_mul(S, D), true));
    } else {
        Mono H = mono_dim(view->dim[r - 3]), HD = mono_mul(H, D);
        *ld = cg_mono(cg, HD, true);
        base = cg_fmt(cg, "bh / %s * %s + bh %% %s * %s", cg_mono(cg, H, true),
                      cg_mono(cg, mono_mul(S, HD), true), cg_mono(cg, H, true),
                      cg_mono(cg, D, true));
    }
    const char *dv = cg_mono(cg, D, false);
    const char *code = cg_fmt(cg, "%sfloat *restrict %s = %s + %s;", in ? "const " : "", var,
                              param, base);
    const char *note = cg_fmt(cg, "[%s, %s]%s", s_name, dv,
                              seq_major ? cg_fmt(cg, ", rows %s apart (seq-major)", *ld) : "");
    if (4 * k->body.indent + strlen(code) + 6 + strlen(note) <= 100) {
        bline(&k->body, "%s   // %s", code, note);
    } else {    // the note on a line of its own, above
        bline(&k->body, "// %s: %s", var, note);
        bline(&k->body, "%s", code);
    }
}

// The end of a block, for either kind: out = acc / the row's sum (`sum`, an array over the
// block's rows), each row at om + (i0 + r) * ldo.
static void store_rows(Kernel *k, const char *sum, const char *ldo, int64_t Dv, int vl)
{
    Buf *b = &k->body;
    int64_t full = Dv / vl;
    bline(b, "// A row with no finite score has %s 0: 0 * (1 / 0) is NaN, as softmax.", sum);
    bline(b, "for (int64_t r = 0; r < ni; r++) {");
    b->indent++;
    bline(b, "const V_T inv = V_SET1(1.0f / %s[r]);", sum);
    bline(b, "float *restrict o_row = om + (i0 + r) * %s;", ldo);
    if (full > 1) {
        bline(b, "for (int64_t d = 0; d < %lld; d += VL)", (long long)(full * vl));
        bline(b, "    V_STORE(o_row + d, V_MUL(V_LOAD(acc[r] + d), inv));");
    } else if (full == 1) {
        bline(b, "V_STORE(o_row, V_MUL(V_LOAD(acc[r]), inv));");
    }
    if (Dv % vl)
        bline(b, "V_STORE_N(o_row + %lld, V_MUL(V_LOAD(acc[r] + %lld), inv), %lld);",
              (long long)(full * vl), (long long)(full * vl), (long long)(Dv % vl));
    b->indent--;
    bline(b, "}");
}

// The end of a task's body, for either kind: the loops over the rows' tiles and the key
// blocks closed, the block's rows stored (store_rows), the loop over the blocks closed.
static void close_task(Kernel *k, const char *sum, const char *ldo, int64_t Dv, int vl)
{
    Buf *b = &k->body;
    b->indent--;
    bline(b, "} // r0");
    b->indent--;
    bline(b, "} // j0");
    store_rows(k, sum, ldo, Dv, vl);
    b->indent--;
    bline(b, "} // blk");
}

// The running state of rows [0, rows) cleared (max -inf, sum 0, acc 0), then the loop over
// the key blocks opened, up to key j_end: j0 and nj, the block's keys.
static void open_keys(Kernel *k, const char *max, const char *sum, const char *rows,
                      int64_t DvP, const char *j_end, int64_t BK)
{
    Buf *b = &k->body;
    bline(b, "for (int64_t i = 0; i < %s; i++) {", rows);
    bline(b, "    %s[i] = -INFINITY;", max);
    bline(b, "    %s[i] = 0.0f;", sum);
    bline(b, "    for (int64_t d = 0; d < %lld; d++)", (long long)DvP);
    bline(b, "        acc[i][d] = 0.0f;");
    bline(b, "}");
    bline(b, "for (int64_t j0 = 0; j0 < %s; j0 += %lld) {   // a block of keys", j_end,
          (long long)BK);
    b->indent++;
    bline(b, "const int64_t nj = %s - j0 < %lld ? %s - j0 : %lld;", j_end, (long long)BK, j_end,
          (long long)BK);
}

// The start of a task's body, for either kind: the loop over its blocks [begin, end) (block
// blk is query rows [i0, i0 + BQ) of leading index bh), each operand's matrix (qm, km, vm,
// om and their row strides *ld.), the mask's (mm) and ni, the rows of the block.
static void task_open(Kernel *k, int64_t BQ, const Mono *mst, const char **ldq,
                      const char **ldk, const char **ldv, const char **ldo)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    Buf *b = &k->body;
    unsigned sm = n->attr.attention.seq_major;
    Type vq = attention_view(sm, ATT_Q, &k->in[0]->type),
         vk = attention_view(sm, ATT_K, &k->in[1]->type),
         vv = attention_view(sm, ATT_V, &k->in[2]->type),
         vo = attention_view(sm, ATT_OUT, &n->type);
    int r = vq.rank;
    const char *sq = cg_mono(cg, mono_dim(vq.dim[r - 2]), false);
    bool one_qb = vq.dim[r - 2].sym < 0 && vq.dim[r - 2].size <= BQ;
    if (!one_qb)
        bline(b, "const int64_t n_qb = (%s + %lld) / %lld;   // query blocks per matrix", sq,
              (long long)(BQ - 1), (long long)BQ);
    bline(b, "for (int64_t blk = begin; blk < end; blk++) {");
    b->indent++;
    if (one_qb)
        bline(b, "const int64_t bh = blk, i0 = 0;");
    else
        bline(b, "const int64_t bh = blk / n_qb, i0 = blk %% n_qb * %lld;", (long long)BQ);
    matrix_at(k, "qm", "q", true, &vq, sm & ATT_Q, "Sq", ldq);
    matrix_at(k, "km", "k", true, &vk, sm & ATT_K, "Sk", ldk);
    matrix_at(k, "vm", "v", true, &vv, sm & ATT_V, "Sk", ldv);
    matrix_at(k, "om", "out", false, &vo, sm & ATT_OUT, "Sq", ldo);
    if (ir_op_inputs(n) == 4) {
        const char *base = mask_base(cg, &vq, r - 2, mst);
        bline(b, "const float *restrict mm = %s;", base ? cg_fmt(cg, "mask + %s", base) : "mask");
    }
    bline(b, "const int64_t ni = %s - i0 < %lld ? %s - i0 : %lld;   // rows in this block", sq,
          (long long)BQ, sq, (long long)BQ);
}

// The causal offset: query row i sees keys j <= i + offset.  Sk - Sq ("(Sk - Sq)", NULL when
// they are the same dim), or the state's position when the node has one.
static const char *causal_offset(Kernel *k, Mono sk, Mono sq)
{
    const Node *n = k->n;
    if (n->attr.attention.has_offset)
        return cg_sym(k->cg, n->attr.attention.offset_sym);
    return offset_text(k->cg, sk, sq);
}

// Causal: declare j_end, the block's last visible key + 1 (its last row, i0 + ni - 1, sees
// keys j <= i0 + ni - 1 + off, off the causal offset or NULL for 0; Sk at most), and return
// its name.
static const char *key_end(Kernel *k, const char *off, const char *sk)
{
    if (!off)
        bline(&k->body, "const int64_t j_end = i0 + ni;   // causal: no key past the diagonal");
    else
        bline(&k->body, "const int64_t j_end = i0 + ni + %s < %s ? i0 + ni + %s : %s;   // causal",
              off, sk, off, sk);
    return "j_end";
}

// The body of one task: blocks [begin, end), block blk being query rows [i0, i0 + BQ) of
// leading index bh.  Uses the parameter names of the kernel (q, k, v, mask, out).
static void task_body(Kernel *k, int64_t BQ, int64_t BK, int64_t D, int64_t Dv, const Mono *mst)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    Buf *b = &k->body;
    unsigned sm = n->attr.attention.seq_major;
    Type vq = attention_view(sm, ATT_Q, &k->in[0]->type),
         vk = attention_view(sm, ATT_K, &k->in[1]->type);
    const Type *tq = &vq, *tk = &vk;
    int r = tq->rank, vl = isa_lanes(cg->isa);
    bool causal = n->attr.attention.causal, has_mask = ir_op_inputs(n) == 4;
    Mono Sq = mono_dim(tq->dim[r - 2]), Sk = mono_dim(tk->dim[r - 2]);
    const char *sk = cg_mono(cg, Sk, false);
    const char *off = causal_offset(k, Sk, Sq);
    int64_t DvP = (Dv + vl - 1) / vl * vl;      // acc rows padded to whole vectors
    int tv = tile_vectors(cg->isa);
    int us = (int)min64(tv, BK / vl);           // score vectors per row in registers
    int ua = (int)min64(tv, DvP / vl);          // accumulator vectors per row in registers
    int nt = (int)min64(ROWS, BQ);              // rows in a full tile
    RowTile tile = {.n = nt}, one = {.n = 1, .ix = {"rr"}};
    for (int x = 0; x < nt; x++)
        tile.ix[x] = cg_fmt(cg, "%d", x);

    const char *ldq, *ldk, *ldv, *ldo;     // row strides
    task_open(k, BQ, mst, &ldq, &ldk, &ldv, &ldo);
    (void)ldq;
    const char *mrow = NULL;
    if (has_mask)
        mrow = mono_is(mst[r - 1], 0) ? "mr[0]" : "mr[j0 + c]";
    const char *j_end = causal ? key_end(k, off, sk) : sk;
    bline(b, "float row_max[%lld], row_sum[%lld], acc[%lld][%lld];", (long long)BQ, (long long)BQ,
          (long long)BQ, (long long)DvP);
    open_keys(k, "row_max", "row_sum", "ni", DvP, j_end, BK);
    bline(b, "const int64_t nv = (nj + VL - 1) / VL * VL;   // keys up to whole vectors");
    // With fewer rows than a tile in the block (one generated token), the scores are dot
    // products of rows of k read in place (scores_dot): no transpose, which costs more than
    // the products of one row.
    bline(b, "float kt[%lld][%lld];   // kt[d][c] = k[j0 + c, d], zero past nj%s", (long long)D,
          (long long)BK, nt > 1 ? cg_fmt(cg, " (with %d rows or more)", nt) : "");
    if (nt > 1) {
        bline(b, "if (ni >= %d) {", nt);
        b->indent++;
    }
    bline(b, "for (int64_t d = 0; d < %lld; d++) {", (long long)D);
    bline(b, "    for (int64_t c = 0; c < nj; c++)");
    bline(b, "        kt[d][c] = km[(j0 + c) * %s + d];", ldk);
    bline(b, "    for (int64_t c = nj; c < %lld; c++)", (long long)BK);
    bline(b, "        kt[d][c] = 0.0f;");
    bline(b, "}");
    if (nt > 1) {
        b->indent--;
        bline(b, "}");
    }
    const char *r_lo = "0";
    if (causal) {
        // Row i0 + r sees a key of the block when j0 <= i0 + r + offset: the tiles before the
        // first such row would only add -inf scores (p 0, alpha 1), so they are skipped.
        const char *first = cg_fmt(cg, "j0 - i0%s", off ? cg_fmt(cg, " - %s", off) : "");
        bline(b, "// Causal: the tiles before r_lo see no key of this block (all -inf).");
        bline(b, "const int64_t r_lo = %s > 0 ? (%s) / %d * %d : 0;", first, first, nt, nt);
        r_lo = "r_lo";
    }
    bline(b, "for (int64_t r0 = %s; r0 < ni; r0 += %d) {   // the rows, in tiles of %d", r_lo, nt,
          nt);
    b->indent++;
    bline(b, "const int64_t nr = ni - r0 < %d ? ni - r0 : %d;   // rows in this tile", nt, nt);
    bline(b, "float s[%d][%lld];   // s[x][c]: row r0 + x's scores, then exp(score - max)", nt,
          (long long)BK);
    bline(b, "float alpha[%d];   // exp(old max - new max) of each row", nt);

    // Scores: the tile, or the last rows one at a time (from kt, or in a block with fewer
    // rows than a tile, as dot products of k's rows).
    const char *what = cg_fmt(cg, "per d, %d broadcasts of q and %d load%s of kt, %d FMAs", nt,
                              us, us > 1 ? "s" : "", nt * us);
    if (nt > 1) {
        bline(b, "if (nr == %d) {   // %d rows: %s", nt, nt, what);
        b->indent++;
        scores(k, &tile, us, D, ldq, vl);
        b->indent--;
        bline(b, "} else if (ni < %d) {   // the block's only rows (one token): no kt", nt);
        b->indent++;
        bline(b, "for (int64_t rr = 0; rr < nr; rr++) {");
        b->indent++;
        scores_dot(k, D, ldq, ldk, vl);
        b->indent--;
        bline(b, "}");
        b->indent--;
        bline(b, "} else {");
        b->indent++;
        bline(b, "for (int64_t rr = 0; rr < nr; rr++) {   // the last rows, one at a time");
        b->indent++;
        scores(k, &one, us, D, ldq, vl);
        b->indent--;
        bline(b, "}");
        b->indent--;
        bline(b, "}");
    } else {
        tile_or_rows(k, &tile, &one, what, scores_step, &(TileStep){us, D, ldq, vl});
    }

    // Scale, mask, causal; -inf past nj up to whole vectors; the online softmax, per row.
    bline(b, "for (int64_t rr = 0; rr < nr; rr++) {   // the online softmax, row by row");
    b->indent++;
    bool row_i = causal || (has_mask && !mono_is(mst[r - 2], 0));   // the row's index used
    bline(b, "const int64_t r = r0 + rr%s;", row_i ? ", i = i0 + r" : "");
    bline(b, "float *restrict sr = s[rr];");
    if (has_mask) {
        const char *msq = mono_is(mst[r - 2], 0) ? NULL : cg_mono(cg, mst[r - 2], true);
        bline(b, "const float *restrict mr = %s;", msq ? cg_fmt(cg, "mm + i * %s", msq) : "mm");
    }
    bline(b, "for (int64_t c = 0; c < nj; c++) {");
    Buf sc = {0};
    bc_float(&sc, (float)n->attr.attention.scale);
    const char *x = n->attr.attention.scale == 1.0 ? "sr[c]"
                                                   : cg_fmt(cg, "sr[c] * %s", bstr(&sc));
    bfree(&sc);
    if (has_mask)
        x = cg_fmt(cg, "%s + %s", x, mrow);
    if (causal)
        bline(b, "    sr[c] = j0 + c > i%s ? -INFINITY : %s;", off ? cg_fmt(cg, " + %s", off) : "",
              x);
    else if (strcmp(x, "sr[c]") != 0)
        bline(b, "    sr[c] = %s;", x);
    bline(b, "}");
    bline(b, "for (int64_t c = nj; c < nv; c++)");
    bline(b, "    sr[c] = -INFINITY;");
    bline(b, "V_T mx = V_SET1(-INFINITY);");
    bline(b, "for (int64_t c = 0; c < nv; c += VL)");
    bline(b, "    mx = V_MAX(mx, V_LOAD(sr + c));");
    bline(b, "// Rescale the earlier blocks' sum to the new max.  While every");
    bline(b, "// score is -inf, m_use = 0 keeps exp() from -inf - -inf (NaN).");
    bline(b, "const float m_new = fmaxf(row_max[r], V_REDUCE_MAX(mx));");
    bline(b, "const float m_use = m_new == -INFINITY ? 0.0f : m_new;");
    bline(b, "alpha[rr] = expf(row_max[r] - m_use);");
    bline(b, "for (int64_t c = 0; c < nv; c++)");
    bline(b, "    sr[c] = attn_expf(sr[c] - m_use);");
    bline(b, "V_T ps = V_ZERO();");
    bline(b, "for (int64_t c = 0; c < nv; c += VL)");
    bline(b, "    ps = V_ADD(ps, V_LOAD(sr + c));");
    bline(b, "row_max[r] = m_new;");
    bline(b, "row_sum[r] = row_sum[r] * alpha[rr] + V_REDUCE_ADD(ps);");
    b->indent--;
    bline(b, "}");

    // acc = acc * alpha + p v: the tile, or the last rows one at a time.
    accumulate_tile(k, &tile, &one, ua, Dv, ldv, vl);
    close_task(k, "row_sum", ldo, Dv, vl);
}

/* ---------------------------------------------------------------------------------------
 * The key-major task: vectors across query rows
 */

// Scores of `nk` keys (c0 .. c0 + nk - 1 of the block) against the rows [0, nip), u vectors
// of rows at a time, then one:  sT[c0 + x][i] = sum over d of k[j0 + c0 + x, d] * qT[d][i].
// For each d: u loads of qT and one broadcast of k per key feed nk * u FMAs.
static void scores_cols(Kernel *k, int nk, int u, int64_t D, const char *ldk, const char *r_lv,
                        int vl)
{
    Cg *cg = k->cg;
    Buf *b = &k->body;
    for (int x = 0; x < nk; x++)
        bline(b, "const float *restrict k%d = km + (j0 + c0%s) * %s;", x,
              x ? cg_fmt(cg, " + %d", x) : "", ldk);
    bline(b, "int64_t r0 = %s;", r_lv);
    for (int pass = 0; pass < 2; pass++) {
        int w = pass == 0 ? u : 1;      // row vectors in this loop's tile
        if (pass == 0 && u == 1)
            continue;
        if (pass == 0)
            bline(b, "for (; r0 + %d <= nip; r0 += %d) {", w * vl, w * vl);
        else
            bline(b, "for (; r0 < nip; r0 += %d) {", vl);
        b->indent++;
        zero_accumulators(k, nk, w);
        bline(b, "for (int64_t d = 0; d < %lld; d++) {   // the hot loop", (long long)D);
        b->indent++;
        for (int y = 0; y < w; y++)
            bline(b, "const V_T q%d = V_LOAD(%s);", y, vec_at(cg, "qT[d]", "r0", (int64_t)y * vl));
        for (int x = 0; x < nk; x++) {
            bline(b, "const V_T kd%d = V_SET1(k%d[d]);", x, x);
            for (int y = 0; y < w; y++)
                bline(b, "s%d%d = V_FMA(kd%d, q%d, s%d%d);", x, y, x, y, x, y);
        }
        b->indent--;
        bline(b, "}");
        for (int x = 0; x < nk; x++)
            for (int y = 0; y < w; y++)
                bline(b, "V_STORE(%s, s%d%d);",
                      vec_at(cg, x ? cg_fmt(cg, "sT[c0 + %d]", x) : "sT[c0]", "r0",
                             (int64_t)y * vl), x, y);
        b->indent--;
        bline(b, "}");
    }
}

// The key-major body (cg_kernel_attention says when): the task transposes its query rows
// once, qT[d][i], and keeps every row's softmax state in arrays over the rows, so that
// scores, max, exp and sums run across query rows in vectors (no transpose per key block,
// no sum across lanes); keys are read in place, one broadcast each.
static void task_body_cols(Kernel *k, int64_t BQ, int64_t BK, int64_t D, int64_t Dv,
                           const Mono *mst)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    Buf *b = &k->body;
    unsigned sm = n->attr.attention.seq_major;
    Type vk = attention_view(sm, ATT_K, &k->in[1]->type);
    int r = vk.rank, vl = isa_lanes(cg->isa);
    const char *sk = cg_mono(cg, mono_dim(vk.dim[r - 2]), false);
    bool has_mask = ir_op_inputs(n) == 4;
    int64_t DvP = (Dv + vl - 1) / vl * vl, BQP = (BQ + vl - 1) / vl * vl;
    int tv = tile_vectors(cg->isa), ua = (int)min64(tv, DvP / vl), nt = (int)min64(ROWS, BQ);
    RowTile tile = {.n = nt, .cols = true}, one = {.n = 1, .ix = {"rr"}, .cols = true};
    for (int x = 0; x < nt; x++)
        tile.ix[x] = cg_fmt(cg, "%d", x);

    bool causal = n->attr.attention.causal;
    Type vq = attention_view(sm, ATT_Q, &k->in[0]->type);
    const char *off = causal_offset(k, mono_dim(vk.dim[r - 2]), mono_dim(vq.dim[r - 2]));
    const char *plus_off = off ? cg_fmt(cg, " + %s", off) : "";

    const char *ldq, *ldk, *ldv, *ldo;     // row strides
    task_open(k, BQ, mst, &ldq, &ldk, &ldv, &ldo);
    bline(b, "const int64_t nip = (ni + VL - 1) / VL * VL;   // rows up to whole vectors");
    bline(b, "float qT[%lld][%lld];   // qT[d][i] = q[i0 + i, d], zero past ni", (long long)D,
          (long long)BQP);
    bline(b, "float m_run[%lld], l_run[%lld], alpha[%lld], mu[%lld], acc[%lld][%lld];",
          (long long)BQP, (long long)BQP, (long long)BQP, (long long)BQP, (long long)BQP,
          (long long)DvP);
    bline(b, "for (int64_t i = 0; i < ni; i++)");
    bline(b, "    for (int64_t d = 0; d < %lld; d++)", (long long)D);
    bline(b, "        qT[d][i] = qm[(i0 + i) * %s + d];", ldq);
    bline(b, "for (int64_t d = 0; d < %lld; d++)", (long long)D);
    bline(b, "    for (int64_t i = ni; i < nip; i++)");
    bline(b, "        qT[d][i] = 0.0f;");
    const char *j_end = causal ? key_end(k, off, sk) : sk;
    open_keys(k, "m_run", "l_run", "nip", DvP, j_end, BK);
    // Causal: rows before r_lo see no key of this block.  They are left alone (their update
    // would be alpha 1, p 0): the tiles of the accumulate loop start at r_lt, r_lo rounded
    // down to a tile, the loops across rows at r_lv, r_lt rounded down to a vector (so that
    // every row a tile reads has its alpha and p).
    const char *r_lv = "0", *r_lt = "0";
    if (causal) {
        const char *first = cg_fmt(cg, "j0 - i0%s", off ? cg_fmt(cg, " - %s", off) : "");
        bline(b, "// Causal: rows before r_lo see no key of this block; the loops over rows");
        bline(b, "// start at r_lo rounded down to a tile (r_lt), then to a vector (r_lv).");
        bline(b, "const int64_t r_lo = %s > 0 ? %s : 0;", first, first);
        bline(b, "const int64_t r_lt = r_lo / %d * %d, r_lv = r_lt / VL * VL;", nt, nt);
        r_lv = "r_lv";
        r_lt = "r_lt";
    }
    bline(b, "// sT[c][i]: key j0 + c's score for row i, then exp(score - max)");
    bline(b, "float sT[%lld][%lld], mx[%lld], ps[%lld];", (long long)BK, (long long)BQP,
          (long long)BQP, (long long)BQP);
    int kt = cols_tile(cg->isa);      // keys per score tile, rows per accumulate tile
    bline(b, "int64_t c0 = 0;");
    bline(b, "// %d keys at a time: per d, %d broadcasts of k, each load of qT feeds %d FMAs", kt,
          kt, kt);
    bline(b, "for (; c0 + %d <= nj; c0 += %d) {", kt, kt);
    b->indent++;
    scores_cols(k, kt, tv, D, ldk, r_lv, vl);
    b->indent--;
    bline(b, "}");
    if (kt > ROWS) {
        bline(b, "if (c0 + %d <= nj) {   // %d of the last keys", ROWS, ROWS);
        b->indent++;
        scores_cols(k, ROWS, tv, D, ldk, r_lv, vl);
        bline(b, "c0 += %d;", ROWS);
        b->indent--;
        bline(b, "}");
    }
    bline(b, "for (; c0 < nj; c0++) {   // the last keys, one at a time");
    b->indent++;
    scores_cols(k, 1, tv, D, ldk, r_lv, vl);
    b->indent--;
    bline(b, "}");

    // Scale and mask (one value per key: the mask does not vary along the rows), causal,
    // the max.
    bline(b, "for (int64_t i = %s; i < nip; i++)", r_lv);
    bline(b, "    mx[i] = -INFINITY;");
    bline(b, "for (int64_t c = 0; c < nj; c++) {");
    b->indent++;
    if (has_mask)
        bline(b, "const float mk = mm[%s];", mono_is(mst[r - 1], 0) ? "0" : "j0 + c");
    bline(b, "float *restrict sr = sT[c];");
    bline(b, "for (int64_t i = %s; i < nip; i++) {", r_lv);
    Buf sc = {0};
    bc_float(&sc, (float)n->attr.attention.scale);
    const char *x = n->attr.attention.scale == 1.0 ? "sr[i]" : cg_fmt(cg, "sr[i] * %s", bstr(&sc));
    bfree(&sc);
    if (causal)
        bline(b, "    const float x = j0 + c > i0 + i%s ? -INFINITY : %s%s;", plus_off, x,
              has_mask ? " + mk" : "");
    else
        bline(b, "    const float x = %s%s;", x, has_mask ? " + mk" : "");
    bline(b, "    sr[i] = x;");
    bline(b, "    mx[i] = fmaxf(mx[i], x);");
    bline(b, "}");
    b->indent--;
    bline(b, "}");
    // The online softmax, every row at once.
    bline(b, "for (int64_t i = %s; i < nip; i++) {   // the online softmax, across the rows",
          r_lv);
    b->indent++;
    bline(b, "const float m_new = fmaxf(m_run[i], mx[i]);");
    bline(b, "// Rescale the earlier blocks' sum to the new max.  While every score is -inf,");
    bline(b, "// mu = 0 keeps exp() from -inf - -inf (NaN).");
    bline(b, "mu[i] = m_new == -INFINITY ? 0.0f : m_new;");
    bline(b, "alpha[i] = attn_expf(m_run[i] - mu[i]);");
    bline(b, "m_run[i] = m_new;");
    bline(b, "ps[i] = 0.0f;");
    b->indent--;
    bline(b, "}");
    // p = exp(score - max) in vectors of rows: V_EXP (the prelude's exp, which clamps at
    // -87.3), 0 below -87.3 as attn_expf, so that a masked key (-inf) adds exactly 0.
    cg->math[1] |= CG_MATH_EXP;
    bline(b, "for (int64_t c = 0; c < nj; c++) {   // p = exp(score - max), 0 below -87.3");
    bline(b, "    float *restrict sr = sT[c];");
    bline(b, "    for (int64_t i = %s; i < nip; i += VL) {", r_lv);
    bline(b, "        const V_T x = V_SUB(V_LOAD(sr + i), V_LOAD(mu + i));");
    bline(b, "        const V_T p = V_SELECT_LT(x, V_SET1(-87.3f), V_ZERO(), V_EXP(x));");
    bline(b, "        V_STORE(sr + i, p);");
    bline(b, "        V_STORE(ps + i, V_ADD(V_LOAD(ps + i), p));");
    bline(b, "    }");
    bline(b, "}");
    bline(b, "for (int64_t i = %s; i < nip; i++)", r_lv);
    bline(b, "    l_run[i] = l_run[i] * alpha[i] + ps[i];");

    // acc = acc * alpha + p v: tiles of rows, or the last rows one at a time.
    if (kt == ROWS || nt < ROWS) {
        bline(b, "for (int64_t r0 = %s; r0 < ni; r0 += %d) {   // the rows, in tiles of %d",
              r_lt, nt, nt);
        b->indent++;
        bline(b, "const int64_t nr = ni - r0 < %d ? ni - r0 : %d;   // rows in this tile", nt,
              nt);
        accumulate_tile(k, &tile, &one, ua, Dv, ldv, vl);
    } else {
        // Tiles of kt rows, then of ROWS, then single rows.  8 or 9 rows past the big tiles
        // (2 or 3 past a multiple of 6) take two tiles of 4 instead of one of 6 and single
        // rows, whose 2 chains run at a quarter of the FMA rate.
        RowTile big = {.n = kt, .cols = true}, row1 = {.n = 1, .ix = {"0"}, .cols = true};
        for (int row = 0; row < kt; row++)
            big.ix[row] = cg_fmt(cg, "%d", row);
        bline(b, "{   // the rows: tiles of %d, then of %d, then one at a time", kt, ROWS);
        b->indent++;
        bline(b, "int64_t r0 = %s, left = (ni - r0) %% %d;   // rows past the tiles of %d", r_lt,
              kt, kt);
        bline(b, "if (left >= %d && left <= %d && ni - r0 >= %d)", kt - ROWS, kt - ROWS + 1, kt);
        bline(b, "    left += %d;   // two tiles of %d rather than one row at a time", kt, ROWS);
        bline(b, "for (; r0 < ni - left; r0 += %d) {   // tiles of %d rows", kt, kt);
        b->indent++;
        accumulate_rows(k, &big, ua, Dv, ldv, vl);
        b->indent--;
        bline(b, "}");
        bline(b, "for (; r0 + %d <= ni; r0 += %d) {   // tiles of %d rows", ROWS, ROWS, ROWS);
        b->indent++;
        accumulate_rows(k, &tile, ua, Dv, ldv, vl);
        b->indent--;
        bline(b, "}");
        bline(b, "for (; r0 < ni; r0++) {   // the last rows, one at a time");
        b->indent++;
        accumulate_rows(k, &row1, ua, Dv, ldv, vl);
        b->indent--;
        bline(b, "}");
    }
    close_task(k, "l_run", ldo, Dv, vl);
}

bool cg_kernel_attention(Kernel *k)
{
    Cg *cg = k->cg;
    const Node *n = k->n;
    unsigned sm = n->attr.attention.seq_major;      // the op's view of each operand
    Type vq = attention_view(sm, ATT_Q, &k->in[0]->type),
         vk = attention_view(sm, ATT_K, &k->in[1]->type),
         vv = attention_view(sm, ATT_V, &k->in[2]->type);
    const Type *tq = &vq, *tk = &vk, *tv = &vv;
    bool has_mask = ir_op_inputs(n) == 4;
    const Type *tm = has_mask ? &k->in[3]->type : NULL;
    int r = tq->rank, n_lead = r - 2, vl = isa_lanes(cg->isa);
    Dim dD = tq->dim[r - 1], dDv = tv->dim[r - 1];
    if (dD.sym >= 0 || dDv.sym >= 0 || dD.size < 1 || dDv.size < 1)
        return cg_unsupported(cg, n, "the head dims (last dims of q and v) must be static "
                                     "and at least 1");
    if (n->n_epi > 0)
        return cg_unsupported(cg, n, "fused_attention applies no element-wise epilogue");
    int64_t D = dD.size, Dv = dDv.size;
    Mono lead = mono_dims(tq, 0, n_lead), Sq = mono_dim(tq->dim[r - 2]);

    // Block sizes.  BK: keys per block, a power of two from 16 to 64 so that every ISA's
    // tile_vectors * VL divides it; 64 unless kt[D][BK] would pass KT_FLOATS or there are
    // fewer keys.  BQ: query rows per task, BQ_MAX unless acc would pass ACC_FLOATS (then a
    // multiple of ROWS) or there are fewer.  A task transposes every key block once for its
    // BQ rows: 128 rows make that a few percent of the work, and leave Sq / 128 tasks per
    // (batch, head) to share out.
    int64_t BK = 64;
    while (BK > 16 && (D * BK > KT_FLOATS || BK / 2 >= tk->dim[r - 2].size))
        BK /= 2;
    int64_t DvP = (Dv + vl - 1) / vl * vl;
    int64_t BQ = min64(BQ_MAX, ACC_FLOATS / DvP);
    BQ = BQ >= ROWS ? BQ / ROWS * ROWS : BQ > 0 ? BQ : 1;
    BQ = min64(BQ, tq->dim[r - 2].size);

    // Mask strides along [lead.., Sq, Sk] (0 where it broadcasts: a size-1 or missing dim).
    Mono mst[KILN_MAX_RANK];
    if (tm) {
        Mono s = mono_const(1);
        for (int a = r - 1; a >= 0; a--) {
            int am = a - (r - tm->rank);
            bool bcast = am < 0 || (tm->dim[am].sym < 0 && tm->dim[am].size == 1);
            mst[a] = bcast ? mono_const(0) : s;
            if (am >= 0)
                s = mono_mul(s, mono_dim(tm->dim[am]));
        }
    }

    // The key-major body (task_body_cols) where it applies: a mask, if any, that is the
    // same for every query row (one value per key: BERT's padding mask), and, when causal,
    // query rows that fill vectors (Sq >= VL: its loops run across the rows).  It does the
    // work of the row-major one with no transpose per key block and no sums across lanes:
    // BERT-base seq 512 attention 25% faster on AVX-512 (Zen 4, 2 threads).  A causal Sq
    // known only at run time gets both bodies, chosen per call: a prompt key-major, one
    // generated token (Sq 1) row-major.  Otherwise the row-major body (task_body).
    bool causal = n->attr.attention.causal;
    Dim dsq = tq->dim[r - 2];
    bool cols = !tm || mono_is(mst[r - 2], 0), rows = !cols;
    if (cols && causal && vl > 1) {     // (one lane: any Sq fills a vector)
        if (dsq.sym < 0)
            cols = dsq.size >= vl, rows = !cols;
        else if (dsq.size < vl)
            cols = false, rows = true;
        else
            rows = true;        // both
    }
    bprintf(&k->notes, " *   tiling   tasks of %lld query rows of one (batch, head), over the "
                       "threads; keys in\n", (long long)BQ);
    bprintf(&k->notes, " *            blocks of %lld with an online softmax (running max and "
                       "sum): the [Sq, Sk]\n", (long long)BK);
    bprintf(&k->notes, " *            scores never stored%s\n",
            causal ? "; key blocks above the diagonal skipped" : "");
    if (cols && rows)
        bprintf(&k->notes, " *   bodies   key-major when Sq >= %d (the query rows fill a vector), "
                           "else row-major\n", vl);
    int64_t BQP = (BQ + vl - 1) / vl * vl;
    int tvec = tile_vectors(cg->isa), nt = (int)min64(ROWS, BQ), ua = (int)min64(tvec, DvP / vl);
    const char *last = nt > 1 ? " *            the last rows of a block one at a time;\n" : "";
    int kt = cols_tile(cg->isa);
    if (cols && kt == ROWS)
        bprintf(&k->notes, " *   vectors  %s%s: scores of 4 keys x %d VL query rows in registers "
                           "(each load\n *            of qT feeds 4 FMAs), max, exp and sums "
                           "across the rows in vectors;\n *            accumulators %d x %d VL "
                           "of Dv (each load of v feeds %d FMAs);\n%s *            scratch "
                           "qT[%lld][%lld], sT[%lld][%lld], acc[%lld][%lld] on the stack\n",
                rows ? "key-major, " : "", isa_name(cg->isa), tvec, nt, ua, nt, last,
                (long long)D, (long long)BQP, (long long)BK, (long long)BQP, (long long)BQP,
                (long long)DvP);
    else if (cols)
        bprintf(&k->notes, " *   vectors  %s%s: scores of %d keys x %d VL query rows in registers "
                           "(each load\n *            of qT feeds %d FMAs; the last keys 4, "
                           "then 1 at a time), max, exp and\n *            sums across the rows "
                           "in vectors; accumulators %d x %d VL of Dv (each load\n *          "
                           "  of v feeds %d FMAs), the last rows in tiles of 4, then one at a "
                           "time;\n *            scratch qT[%lld][%lld], sT[%lld][%lld], "
                           "acc[%lld][%lld] on the stack\n",
                rows ? "key-major, " : "", isa_name(cg->isa), kt, tvec, kt, kt, ua, kt,
                (long long)D, (long long)BQP, (long long)BK, (long long)BQP, (long long)BQP,
                (long long)DvP);
    if (rows)
        bprintf(&k->notes, " *   vectors  %s%s: tiles of %d query rows in registers, scores %d x "
                           "%d VL keys\n *            and accumulators %d x %d VL of Dv (each "
                           "load of kt or v feeds %d FMAs);\n%s *            scratch kt[%lld]"
                           "[%lld], acc[%lld][%lld] on the stack\n",
                cols ? "row-major, " : "", isa_name(cg->isa), nt, nt, (int)min64(tvec, BK / vl),
                nt, ua, nt, last, (long long)D, (long long)BK, (long long)BQ, (long long)DvP);
    if (sm)
        bprintf(&k->notes, " *   layout   %s seq-major, [.., S, H, D]: read and written in place, "
                           "rows H * D apart\n", attention_seq_major_str(sm));

    // The task functions' bodies, each with the symbolic dims it uses (passed through the
    // job).
    uint32_t *kernel_syms = cg->sym_used, syms[2] = {0, 0};
    Buf kernel_body = k->body, task[2] = {{0}, {0}};
    for (int t = 0; t < 2; t++) {
        if (!(t == 0 ? cols : rows))
            continue;
        cg->sym_used = &syms[t];
        k->body = (Buf){.indent = 1};
        if (t == 0)
            task_body_cols(k, BQ, BK, D, Dv, mst);
        else
            task_body(k, BQ, BK, D, Dv, mst);
        task[t] = k->body;
    }
    k->body = kernel_body;
    cg->sym_used = kernel_syms;

    const Graph *g = cg->g;
    const char *job = cg_fmt(cg, "%s_job", k->name);
    const char *fn[2] = {cg_fmt(cg, "%s_task%s", k->name, rows ? "_cols" : ""),
                         cg_fmt(cg, "%s_task%s", k->name, cols ? "_rows" : "")};
    Buf *h = &k->helpers;
    bline_comment(h, "%s: the arguments of %s, for its tasks", job, k->name);
    bprintf(h, "typedef struct {\n    const float *q, *k, *v%s;\n    float *out;\n",
            has_mask ? ", *mask" : "");
    for (int s = 0; s < g->n_syms; s++)
        if ((syms[0] | syms[1]) & (1u << s))
            bprintf(h, "    int64_t %s;\n", cg->sym_var[s]);
    bprintf(h, "} %s;\n\n", job);
    for (int t = 0; t < 2; t++) {
        if (!(t == 0 ? cols : rows))
            continue;
        bline_comment(h, "%s: query blocks [begin, end) of %s, a block being %lld rows of one "
                         "(batch, head)%s", fn[t], k->name, (long long)BQ,
                      cols && rows ? (t == 0 ? ", key-major" : ", row-major") : "");
        bprintf(h, "static void %s(void *ctx, int64_t begin, int64_t end)\n{\n", fn[t]);
        bprintf(h, "    const %s *job = ctx;\n", job);
        bprintf(h, "    const float *restrict q = job->q, *restrict k = job->k, "
                   "*restrict v = job->v;\n");
        if (has_mask)
            bprintf(h, "    const float *restrict mask = job->mask;\n");
        bprintf(h, "    float *restrict out = job->out;\n");
        for (int s = 0; s < g->n_syms; s++)
            if (syms[t] & (1u << s))
                bprintf(h, "    const int64_t %s = job->%s;\n", cg->sym_var[s], cg->sym_var[s]);
        bprintf(h, "%s}\n\n", bstr(&task[t]));
        bfree(&task[t]);
    }

    // The kernel: pack the job, hand out the blocks.
    Buf init = {0};
    bprintf(&init, ".q = q, .k = k, .v = v, %s.out = out", has_mask ? ".mask = mask, " : "");
    for (int s = 0; s < g->n_syms; s++)
        if ((syms[0] | syms[1]) & (1u << s)) {
            bprintf(&init, ", .%s = %s", cg->sym_var[s], cg->sym_var[s]);
            *kernel_syms |= 1u << s;
        }
    cg_assign(k, cg_fmt(cg, "%s job", job), cg_fmt(cg, "{%s}", bstr(&init)));
    bfree(&init);
    bool one_qb = tq->dim[r - 2].sym < 0 && tq->dim[r - 2].size <= BQ;
    const char *blocks = one_qb ? cg_mono(cg, lead, false)
                                : cg_fmt(cg, "%s * ((%s + %lld) / %lld)",
                                         cg_mono(cg, lead, true), cg_mono(cg, Sq, false),
                                         (long long)(BQ - 1), (long long)BQ);
    const char *task_fn = fn[cols ? 0 : 1];
    if (cols && rows) {
        bline(&k->body, "// key-major when the query rows fill a vector (a prompt), else "
                        "row-major");
        bline(&k->body, "kiln_task_fn task = %s >= %d ? %s : %s;", cg_mono(cg, Sq, true), vl,
              fn[0], fn[1]);
        task_fn = "task";
    }
    const char *par[] = {"r", blocks, task_fn, "&job"};
    blist(&k->body, "kiln_parallel_for(", par, 4, ");");
    k->needs_run = true;
    return true;
}
