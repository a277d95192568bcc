/* ir/tile.c: the tile pass, which chooses how each matmul is blocked for the target.
 *
 * Runs after the fusion passes and before plan-memory.  For every f32 matmul whose b is a
 * matrix it records on the node (Node.tile) what the code generator's packed-panel kernel
 * (codegen/kernels_matmul.c) needs:
 *
 *   mr x nr   the register block of the ISA's microkernel: mr rows of a times nr columns of
 *             b, held in mr * nr / lanes vector accumulators (isa_register_block below)
 *   kc        the k block: one microkernel call streams a kc x nr slice of a b panel and a
 *             kc x mr slice of packed a.  kc is the largest that keeps the a slice in L1
 *             (kc * mr floats <= L1) and the b slice in an eighth of L2 (kc * nr floats <=
 *             L2 / 8), split evenly when K needs several blocks
 *   mc        the row block: rows of a packed together for one k block, kc x mc floats in
 *             half of L2, a multiple of mr
 *   pack_b    b is a weight (possibly through a reshape view): the runtime packs it once at
 *             load into nr-column panels, [K][nr] each, and the kernel reads those
 *
 * Cache sizes come from g->target (the driver reads the host's sysfs for --isa auto) or, when
 * unknown, from the defaults of the ISA below.  There is no auto-tuning: the same graph and
 * target always give the same tiles, so generated code is deterministic.
 *
 * Without this pass (--disable-pass tile) every matmul keeps a zero Tile and the code
 * generator writes plain loops, which the differential tests compare with the tiled code.
 */
#include "ir.h"

#include <string.h>

/* ---------------------------------------------------------------------------------------
 * ISAs
 */

static const char *const isa_names[] = {"scalar", "avx2", "avx512", "neon"};

const char *isa_name(Isa isa)
{
    if ((unsigned)isa >= sizeof isa_names / sizeof isa_names[0])
        KILN_BUG("isa_name: bad isa %d", (int)isa);
    return isa_names[isa];
}

bool isa_parse(const char *s, Isa *out)
{
    for (int i = 0; i < (int)(sizeof isa_names / sizeof isa_names[0]); i++)
        if (strcmp(s, isa_names[i]) == 0) {
            *out = (Isa)i;
            return true;
        }
    return false;
}

int isa_lanes(Isa isa)
{
    switch (isa) {
    case ISA_SCALAR: return 1;
    case ISA_AVX2: return 8;
    case ISA_AVX512: return 16;
    case ISA_NEON: return 4;
    }
    KILN_BUG("isa_lanes: bad isa %d", (int)isa);
}

// The accumulators take most of the vector registers, leaving one per b vector of a k step
// and one for the broadcast a value (the shapes of BLIS and oneDNN):
//   avx512  32 zmm:  8 x 32 = 16 accumulators + 2 b vectors + 1 broadcast.  14 x 32 (28
//           accumulators) does as well in the loop alone, but on Zen 5 8 x 32 measured
//           ~5% faster on 128 x 3072 x 768 (bench/gemm_bench.sh), and sequence lengths that
//           are multiples of 8 leave it no short row tile
//   avx2    16 ymm:  6 x 16 = 12 accumulators + 2 b vectors + 1 broadcast
//   neon    32 q:    8 x 12 = 24 accumulators + 3 b vectors + 1 broadcast
//   scalar  4 x 4 floats, which any compiler keeps in registers
void isa_register_block(Isa isa, int *mr, int *nr)
{
    switch (isa) {
    case ISA_AVX512: *mr = 8, *nr = 32; return;
    case ISA_AVX2: *mr = 6, *nr = 16; return;
    case ISA_NEON: *mr = 8, *nr = 12; return;
    case ISA_SCALAR: *mr = 4, *nr = 4; return;
    }
    KILN_BUG("isa_register_block: bad isa %d", (int)isa);
}

// Cache sizes assumed when the target's are unknown: common parts of each ISA's era (Zen 4
// and Sapphire Rapids have 32-48 KiB L1d and 1-2 MiB L2; Zen 3 and Skylake 32 KiB and
// 512 KiB-1 MiB); erring small costs a little speed, erring large costs more.
Target tile_target(Target t)
{
    if (t.l1d <= 0)
        t.l1d = 32 * 1024;
    if (t.l2 <= 0)
        t.l2 = t.isa == ISA_AVX512 ? 1024 * 1024 : 512 * 1024;
    if (t.l3 <= 0)
        t.l3 = 16 * 1024 * 1024;
    return t;
}

/* ---------------------------------------------------------------------------------------
 * The pass
 */

// The largest value a dim takes: its size, or its symbolic bound.
static int64_t dim_max(const Graph *g, Dim d)
{
    return d.sym >= 0 ? g->syms[d.sym].max : d.size;
}

static int64_t round_down(int64_t x, int64_t m)
{
    return x / m * m;
}

static Tile choose(const Graph *g, const Target *t, const Node *n, int64_t M, int64_t K)
{
    Tile tl;
    memset(&tl, 0, sizeof tl);
    isa_register_block(t->isa, &tl.mr, &tl.nr);
    // kc: a's slice (kc x mr) in L1, b's slice (kc x nr) in an eighth of L2.
    int64_t kc_max = t->l1d / (4 * tl.mr);
    if (kc_max > t->l2 / (8 * 4 * tl.nr))
        kc_max = t->l2 / (8 * 4 * tl.nr);
    kc_max = round_down(kc_max, 16);
    if (kc_max < 16)
        kc_max = 16;
    int64_t blocks = (K + kc_max - 1) / kc_max;
    tl.kc = (K + blocks - 1) / blocks;      // equal blocks: K 1100 is 2 x 560, not 1024 + 76
    tl.kc = (tl.kc + 15) / 16 * 16;
    if (tl.kc > K)
        tl.kc = K;
    // mc: the packed rows of a (kc x mc) in half of L2; no more than the rows there are.
    tl.mc = round_down(t->l2 / 2 / (4 * tl.kc), tl.mr);
    if (tl.mc < tl.mr)
        tl.mc = tl.mr;
    int64_t m_up = (M + tl.mr - 1) / tl.mr * tl.mr;
    if (tl.mc > m_up)
        tl.mc = m_up;
    NodeId root = ir_storage_root(g, n->in[1]);
    const Type *tb = &g->nodes[n->in[1]].type;
    tl.pack_b = g->nodes[root].op == OP_WEIGHT && tb->rank == 2;
    return tl;
}

bool ir_tile(Graph *g)
{
    Target t = tile_target(g->target);
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        Node *n = &g->nodes[i];
        if (n->dead || n->op != OP_MATMUL)
            continue;
        const Type *ta = &g->nodes[n->in[0]].type, *tb = &g->nodes[n->in[1]].type;
        if (ta->dtype != DT_F32 || tb->dtype != DT_F32 || n->type.dtype != DT_F32)
            continue;
        if (tb->rank < 2)
            continue;       // matrix x vector: the plain dot-product loop is as good
        // Rows of a per matrix (all the batch rows when b is shared), and the inner dim.
        int64_t M = 1, K;
        if (ta->rank == 1) {
            K = dim_max(g, ta->dim[0]);
        } else {
            bool tra = n->attr.matmul.trans_a;
            int64_t rows = dim_max(g, ta->dim[ta->rank - 2]), cols = dim_max(g, ta->dim[ta->rank - 1]);
            M = tra ? cols : rows;
            K = tra ? rows : cols;
            if (tb->rank == 2 && !tra)
                for (int d = 0; d < ta->rank - 2; d++)
                    M *= dim_max(g, ta->dim[d]);
        }
        if (K < 1)
            continue;
        Tile tl = choose(g, &t, n, M, K);
        changed |= tl.mr != n->tile.mr || tl.nr != n->tile.nr || tl.kc != n->tile.kc ||
                   tl.mc != n->tile.mc || tl.pack_b != n->tile.pack_b;
        n->tile = tl;
    }
    return changed;
}
