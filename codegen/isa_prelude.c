/* codegen/isa_prelude.c: the vector vocabulary atop every generated file.
 *
 * Kernels that vectorize by hand (the matmul microkernel, epilogues, ...) use only the names
 * below, defined once per file for the ISA it targets (kiln --isa), as ggml's
 * GGML_F32_VEC_* are: so a kernel reads the same on every ISA, and a new ISA is one more
 * table here.  Only the chosen ISA's block is written.
 *
 *   VL, V_LANES          floats per vector
 *   V_T                  the vector type
 *   V_LOAD(p)            load VL floats from any address (V_LOADU: the same, by its
 *                        other name); as fast as an aligned load when p is aligned
 *   V_LOAD_N(p, n)       the first n floats (0 <= n <= VL), zeros after; reads only p[0, n)
 *   V_STORE(p, v)        store VL floats at any address (V_STOREU: the same)
 *   V_STORE_N(p, v, n)   the first n lanes only
 *   V_SET1(x), V_ZERO()  every lane x, or 0
 *   V_ADD V_SUB V_MUL V_DIV V_MAX V_MIN (a, b)   lane-wise
 *   V_FMA(a, b, c)       a * b + c; fused (one rounding) where the ISA has FMA
 *   V_REDUCE_ADD(v)      the sum of the lanes, V_REDUCE_MAX(v) the largest (floats)
 *   V_PREFETCH(p)        hint: the cache line at p will be read soon
 *
 * The scalar vocabulary is portable C over float (VL 1), the reference the others are
 * compared with (tests/diff).
 */
#include "cg.h"

static const char avx512[] =
    "#include <immintrin.h>\n"
    "#define VL 16                                               // floats per vector\n"
    "#define V_LANES VL\n"
    "#define V_T __m512\n"
    "#define V_MASK(n) ((__mmask16)((1u << (n)) - 1u))           // lanes [0, n)\n"
    "#define V_LOAD(p) _mm512_loadu_ps(p)                        // any address\n"
    "#define V_LOADU(p) _mm512_loadu_ps(p)\n"
    "#define V_LOAD_N(p, n) _mm512_maskz_loadu_ps(V_MASK(n), p)\n"
    "#define V_STORE(p, v) _mm512_storeu_ps(p, v)\n"
    "#define V_STOREU(p, v) _mm512_storeu_ps(p, v)\n"
    "#define V_STORE_N(p, v, n) _mm512_mask_storeu_ps(p, V_MASK(n), v)\n"
    "#define V_SET1(x) _mm512_set1_ps(x)\n"
    "#define V_ZERO() _mm512_setzero_ps()\n"
    "#define V_ADD(a, b) _mm512_add_ps(a, b)\n"
    "#define V_SUB(a, b) _mm512_sub_ps(a, b)\n"
    "#define V_MUL(a, b) _mm512_mul_ps(a, b)\n"
    "#define V_DIV(a, b) _mm512_div_ps(a, b)\n"
    "#define V_MAX(a, b) _mm512_max_ps(a, b)\n"
    "#define V_MIN(a, b) _mm512_min_ps(a, b)\n"
    "#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)             // a * b + c, rounded once\n"
    "#define V_REDUCE_ADD(v) _mm512_reduce_add_ps(v)\n"
    "#define V_REDUCE_MAX(v) _mm512_reduce_max_ps(v)\n"
    "#define V_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)\n";

static const char avx2[] =
    "#include <immintrin.h>\n"
    "#define VL 8                                                // floats per vector\n"
    "#define V_LANES VL\n"
    "#define V_T __m256\n"
    "#define V_LOAD(p) _mm256_loadu_ps(p)                        // any address\n"
    "#define V_LOADU(p) _mm256_loadu_ps(p)\n"
    "#define V_LOAD_N(p, n) _mm256_maskload_ps(p, v_mask(n))\n"
    "#define V_STORE(p, v) _mm256_storeu_ps(p, v)\n"
    "#define V_STOREU(p, v) _mm256_storeu_ps(p, v)\n"
    "#define V_STORE_N(p, v, n) _mm256_maskstore_ps(p, v_mask(n), v)\n"
    "#define V_SET1(x) _mm256_set1_ps(x)\n"
    "#define V_ZERO() _mm256_setzero_ps()\n"
    "#define V_ADD(a, b) _mm256_add_ps(a, b)\n"
    "#define V_SUB(a, b) _mm256_sub_ps(a, b)\n"
    "#define V_MUL(a, b) _mm256_mul_ps(a, b)\n"
    "#define V_DIV(a, b) _mm256_div_ps(a, b)\n"
    "#define V_MAX(a, b) _mm256_max_ps(a, b)\n"
    "#define V_MIN(a, b) _mm256_min_ps(a, b)\n"
    "#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)             // a * b + c, rounded once\n"
    "#define V_REDUCE_ADD(v) v_reduce_add(v)\n"
    "#define V_REDUCE_MAX(v) v_reduce_max(v)\n"
    "#define V_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)\n"
    "// Lanes [0, n) set, for the masked loads and stores.\n"
    "static inline __m256i v_mask(int n)\n"
    "{\n"
    "    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1};\n"
    "    return _mm256_loadu_si256((const __m256i *)(bits + 8 - n));\n"
    "}\n"
    "static inline float v_reduce_add(__m256 v)\n"
    "{\n"
    "    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));\n"
    "    s = _mm_add_ps(s, _mm_movehl_ps(s, s));\n"
    "    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));\n"
    "}\n"
    "static inline float v_reduce_max(__m256 v)\n"
    "{\n"
    "    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));\n"
    "    s = _mm_max_ps(s, _mm_movehl_ps(s, s));\n"
    "    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));\n"
    "}\n";

static const char neon[] =
    "#include <arm_neon.h>\n"
    "#define VL 4                                                // floats per vector\n"
    "#define V_LANES VL\n"
    "#define V_T float32x4_t\n"
    "#define V_LOAD(p) vld1q_f32(p)\n"
    "#define V_LOADU(p) vld1q_f32(p)\n"
    "#define V_LOAD_N(p, n) v_load_n(p, n)\n"
    "#define V_STORE(p, v) vst1q_f32(p, v)\n"
    "#define V_STOREU(p, v) vst1q_f32(p, v)\n"
    "#define V_STORE_N(p, v, n) v_store_n(p, v, n)\n"
    "#define V_SET1(x) vdupq_n_f32(x)\n"
    "#define V_ZERO() vdupq_n_f32(0.0f)\n"
    "#define V_ADD(a, b) vaddq_f32(a, b)\n"
    "#define V_SUB(a, b) vsubq_f32(a, b)\n"
    "#define V_MUL(a, b) vmulq_f32(a, b)\n"
    "#define V_DIV(a, b) vdivq_f32(a, b)\n"
    "#define V_MAX(a, b) vmaxq_f32(a, b)\n"
    "#define V_MIN(a, b) vminq_f32(a, b)\n"
    "#define V_FMA(a, b, c) vfmaq_f32(c, a, b)                   // a * b + c, rounded once\n"
    "#define V_REDUCE_ADD(v) vaddvq_f32(v)\n"
    "#define V_REDUCE_MAX(v) vmaxvq_f32(v)\n"
    "#define V_PREFETCH(p) __builtin_prefetch(p)\n"
    "static inline float32x4_t v_load_n(const float *p, int n)\n"
    "{\n"
    "    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};\n"
    "    for (int i = 0; i < n; i++)\n"
    "        t[i] = p[i];\n"
    "    return vld1q_f32(t);\n"
    "}\n"
    "static inline void v_store_n(float *p, float32x4_t v, int n)\n"
    "{\n"
    "    float t[4];\n"
    "    vst1q_f32(t, v);\n"
    "    for (int i = 0; i < n; i++)\n"
    "        p[i] = t[i];\n"
    "}\n";

static const char scalar[] =
    "#define VL 1                                                // floats per \"vector\"\n"
    "#define V_LANES VL\n"
    "#define V_T float\n"
    "#define V_LOAD(p) (*(p))\n"
    "#define V_LOADU(p) (*(p))\n"
    "#define V_LOAD_N(p, n) ((n) > 0 ? *(p) : 0.0f)\n"
    "#define V_STORE(p, v) (*(p) = (v))\n"
    "#define V_STOREU(p, v) (*(p) = (v))\n"
    "#define V_STORE_N(p, v, n) ((n) > 0 ? (void)(*(p) = (v)) : (void)0)\n"
    "#define V_SET1(x) (x)\n"
    "#define V_ZERO() 0.0f\n"
    "#define V_ADD(a, b) ((a) + (b))\n"
    "#define V_SUB(a, b) ((a) - (b))\n"
    "#define V_MUL(a, b) ((a) * (b))\n"
    "#define V_DIV(a, b) ((a) / (b))\n"
    "#define V_MAX(a, b) ((a) > (b) ? (a) : (b))\n"
    "#define V_MIN(a, b) ((a) < (b) ? (a) : (b))\n"
    "#define V_FMA(a, b, c) ((a) * (b) + (c))\n"
    "#define V_REDUCE_ADD(v) (v)\n"
    "#define V_REDUCE_MAX(v) (v)\n"
    "#define V_PREFETCH(p) ((void)(p))\n";

const char *cg_isa_description(Isa isa)
{
    switch (isa) {
    case ISA_AVX512: return "avx512 (AVX-512F + AVX-512VL, FMA), 16 floats per vector";
    case ISA_AVX2: return "avx2 (AVX2, FMA), 8 floats per vector";
    case ISA_NEON: return "neon (AArch64 Advanced SIMD), 4 floats per vector";
    case ISA_SCALAR: return "scalar (portable C), 1 float per \"vector\"";
    }
    KILN_BUG("cg_isa_description: bad isa %d", (int)isa);
}

void cg_emit_prelude(Cg *cg, Buf *b)
{
    Isa isa = cg->isa;
    bputs(b, "/* ---------------------------------------------------------------------------------------\n"
             " * Vector vocabulary: ");
    bputs(b, cg_isa_description(isa));
    bputs(b, ".\n * Hand-vectorized kernels use only these names (docs/codegen.md lists them).\n */\n");
    switch (isa) {
    case ISA_AVX512: bputs(b, avx512); break;
    case ISA_AVX2: bputs(b, avx2); break;
    case ISA_NEON: bputs(b, neon); break;
    case ISA_SCALAR: bputs(b, scalar); break;
    }
    bputs(b, "\n");
    cg_emit_gemm_support(cg, b);
}
