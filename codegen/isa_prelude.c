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
 *   V_ABS(a)             |a| (the sign bit cleared)
 *   V_SELECT_LT(a, b, x, y)   lane-wise a < b ? x : y (false for NaN)
 *   V_POW2(j)            2^n, for j = n + 1.5 * 2^23 holding a whole n in [-126, 127]
 *
 * The scalar vocabulary is portable C over float (VL 1), the reference the others are
 * compared with (tests/diff).
 *
 * After it, when some kernel needs them (Cg.math), the math functions: tanh and the two gelu
 * forms, vectorized (V_TANH, V_GELU_TANH, V_GELU_ERF) and on one float (s_tanh, s_gelu_tanh,
 * s_gelu_erf), written once in the vocabulary (math_fns) so that every ISA runs the same
 * steps; their accuracy is in docs/codegen.md and tests/unit/test_vmath.c checks it.
 */
#include "cg.h"

#include <string.h>

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
    "#define V_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)\n"
    "#define V_ABS(a) _mm512_abs_ps(a)\n"
    "#define V_SELECT_LT(a, b, x, y) \\\n"
    "    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x)\n"
    "#define V_POW2(j) _mm512_castsi512_ps(_mm512_add_epi32( \\\n"
    "    _mm512_slli_epi32(_mm512_castps_si512(j), 23), _mm512_set1_epi32(127 << 23)))\n";

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
    "#define V_ABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a)\n"
    "#define V_SELECT_LT(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LT_OQ))\n"
    "#define V_POW2(j) _mm256_castsi256_ps(_mm256_add_epi32( \\\n"
    "    _mm256_slli_epi32(_mm256_castps_si256(j), 23), _mm256_set1_epi32(127 << 23)))\n"
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
    "#define V_ABS(a) vabsq_f32(a)\n"
    "#define V_SELECT_LT(a, b, x, y) vbslq_f32(vcltq_f32(a, b), x, y)\n"
    "#define V_POW2(j) vreinterpretq_f32_s32(vaddq_s32( \\\n"
    "    vshlq_n_s32(vreinterpretq_s32_f32(j), 23), vdupq_n_s32(127 << 23)))\n"
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
    "#define V_PREFETCH(p) ((void)(p))\n"
    "#define V_ABS(a) fabsf(a)\n"
    "#define V_SELECT_LT(a, b, x, y) ((a) < (b) ? (x) : (y))\n"
    "#define V_POW2(j) v_pow2(j)                                 // with the math functions\n";

/* ---------------------------------------------------------------------------------------
 * Math functions: tanh and the two gelu forms, once in the vocabulary
 *
 * Written with X_ for the vocabulary, X_T for the type and x_ for the function prefix, and
 * instantiated as V_ / V_T / v_ (vectors) and S_ / float / s_ (one float, for scalar code:
 * row tails and element-wise loops), so that an element's bits do not depend on which of
 * the two computed it.  The scalar ISA has one copy, its vocabulary being one float already.
 * The constants: Cephes' minimax fits for exp and for tanh below 0.625, and Abramowitz and
 * Stegun's 7.1.26 for erfc in gelu_erf; tests/unit/test_vmath.c checks the errors quoted here.
 */
typedef struct {
    unsigned need;          // CG_MATH_* bits that use it (directly or through another)
    const char *comment;    // written before the vector copy (or the scalar ISA's only one)
    const char *code;
} MathFn;

static const MathFn math_fns[] = {
    {CG_MATH_TANH | CG_MATH_GELU_TANH | CG_MATH_GELU_ERF | CG_MATH_EXP,
     "/* x_exp(x): e^x for x <= 0, for the functions below and V_EXP; e^-87.3 (about the\n"
     " * smallest normal float) from -87.3 down, NaN for NaN.  x = n ln2 + f with n whole\n"
     " * (rounded by adding 1.5 * 2^23, which leaves n in j's low bits for V_POW2) and\n"
     " * |f| <= ln2 / 2 (Cody-Waite: ln2 in two parts), e^f by Cephes' degree-6 polynomial.\n"
     " * Within 1.02 ulp. */\n",
     "static inline X_T x_exp(X_T x)\n"
     "{\n"
     "    X_T xc = X_MAX(X_SET1(-87.3f), x);   // NaN stays NaN\n"
     "    X_T j = X_FMA(xc, X_SET1(1.44269504f), X_SET1(12582912.0f));\n"
     "    X_T n = X_SUB(j, X_SET1(12582912.0f));\n"
     "    X_T f = X_FMA(n, X_SET1(-0.693359375f), xc);\n"
     "    f = X_FMA(n, X_SET1(2.12194440e-4f), f);\n"
     "    X_T p = X_SET1(1.9875691500e-4f);\n"
     "    p = X_FMA(p, f, X_SET1(1.3981999507e-3f));\n"
     "    p = X_FMA(p, f, X_SET1(8.3334519073e-3f));\n"
     "    p = X_FMA(p, f, X_SET1(4.1665795894e-2f));\n"
     "    p = X_FMA(p, f, X_SET1(1.6666665459e-1f));\n"
     "    p = X_FMA(p, f, X_SET1(5.0000001201e-1f));\n"
     "    p = X_ADD(X_SET1(1.0f), X_FMA(X_MUL(p, f), f, f));   // 1 + f + p f^2\n"
     "    return X_MUL(p, X_POW2(j));\n"
     "}\n"},
    {CG_MATH_TANH,
     "/* x_tanh(x): tanh within 1.51 ulp (and 9.0e-8) of the exact value; +-1 from |x| = 9\n"
     " * on, NaN for NaN, -0 for -0.  |x| < 0.625: x + x^3 P(x^2), Cephes' tanhf polynomial\n"
     " * (x itself below 2^-12, where it is the rounded tanh); else (1 - e) / (1 + e) with\n"
     " * e = e^-2|x|, signed. */\n",
     "static inline X_T x_tanh(X_T x)\n"
     "{\n"
     "    X_T a = X_ABS(x), t = X_MUL(x, x);\n"
     "    X_T p = X_SET1(-5.70498872745e-3f);\n"
     "    p = X_FMA(p, t, X_SET1(2.06390887954e-2f));\n"
     "    p = X_FMA(p, t, X_SET1(-5.37397155531e-2f));\n"
     "    p = X_FMA(p, t, X_SET1(1.33314422036e-1f));\n"
     "    p = X_FMA(p, t, X_SET1(-3.33332819422e-1f));\n"
     "    X_T small = X_SELECT_LT(a, X_SET1(0x1p-12f), x, X_FMA(X_MUL(p, t), x, x));\n"
     "    X_T e = x_exp(X_MUL(X_SET1(-2.0f), a));\n"
     "    X_T big = X_DIV(X_SUB(X_SET1(1.0f), e), X_ADD(X_SET1(1.0f), e));\n"
     "    big = X_SELECT_LT(x, X_ZERO(), X_SUB(X_ZERO(), big), big);\n"
     "    return X_SELECT_LT(a, X_SET1(0.625f), small, big);\n"
     "}\n"},
    {CG_MATH_GELU_TANH,
     "/* x_gelu_tanh(x): 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3), gelu's tanh\n"
     " * form, computed as x / (1 + e^-2u) (the same function: 1 + tanh(u) = 2 / (1 + e^-2u)),\n"
     " * with e = e^-2|u| <= 1 so that x_exp sees no positive argument: x / (1 + e) for u >= 0,\n"
     " * x e / (1 + e) below.  One exp and one divide, no tanh, and no cancellation in\n"
     " * 1 + tanh(u) where u is very negative. */\n",
     "static inline X_T x_gelu_tanh(X_T x)\n"
     "{\n"
     "    X_T u = X_FMA(X_MUL(X_SET1(0.044715f), x), X_MUL(x, x), x);   // u / sqrt(2 / pi)\n"
     "    X_T e = x_exp(X_MUL(X_SET1(-1.59576912f), X_ABS(u)));         // e^-2|u|\n"
     "    X_T num = X_SELECT_LT(u, X_ZERO(), X_MUL(x, e), x);\n"
     "    return X_DIV(num, X_ADD(X_SET1(1.0f), e));\n"
     "}\n"},
    {CG_MATH_GELU_ERF,
     "/* x_gelu_erf(x): x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), gelu itself, as x (1 - h) for\n"
     " * x >= 0 and x h below, h = 0.5 erfc(|x| / sqrt 2) <= 0.5 (no cancellation for x < 0).\n"
     " * erfc(z) = t P(t) e^-z^2 with t = 1 / (1 + p z), P of degree 4: approximation 7.1.26 of\n"
     " * Abramowitz and Stegun (1964), within 1.5e-7 of erfc, with 0.5 folded into P.  One\n"
     " * exp, one divide; NaN for NaN. */\n",
     "static inline X_T x_gelu_erf(X_T x)\n"
     "{\n"
     "    X_T z = X_MUL(X_ABS(x), X_SET1(0.707106781f));\n"
     "    X_T t = X_DIV(X_SET1(1.0f), X_FMA(z, X_SET1(0.3275911f), X_SET1(1.0f)));\n"
     "    X_T p = X_SET1(0.5307027145f);\n"
     "    p = X_FMA(p, t, X_SET1(-0.7265760135f));\n"
     "    p = X_FMA(p, t, X_SET1(0.7107068705f));\n"
     "    p = X_FMA(p, t, X_SET1(-0.142248368f));\n"
     "    p = X_FMA(p, t, X_SET1(0.127414796f));\n"
     "    X_T h = X_MUL(X_MUL(p, t), x_exp(X_MUL(X_SUB(X_ZERO(), z), z)));   // 0.5 erfc(z)\n"
     "    return X_MUL(x, X_SELECT_LT(x, X_ZERO(), h, X_SUB(X_SET1(1.0f), h)));\n"
     "}\n"},
};

// One float as a vector lane computes it, for the s_ copies on a vector ISA.
static const char one_lane[] =
    "/* The same functions on one float (s_tanh, ...), for scalar code: the row tails and the\n"
    " * element-wise loops.  Each step is the vector's on one lane (fmaf is this ISA's FMA;\n"
    " * max, min and select pick as V_MAX, V_MIN and V_SELECT_LT do), so an element gets the\n"
    " * same bits from either copy. */\n"
    "#define S_SET1(x) (x)\n"
    "#define S_ZERO() 0.0f\n"
    "#define S_ADD(a, b) ((a) + (b))\n"
    "#define S_SUB(a, b) ((a) - (b))\n"
    "#define S_MUL(a, b) ((a) * (b))\n"
    "#define S_DIV(a, b) ((a) / (b))\n"
    "#define S_FMA(a, b, c) fmaf(a, b, c)\n"
    "#define S_MAX(a, b) ((a) > (b) ? (a) : (b))\n"
    "#define S_MIN(a, b) ((a) < (b) ? (a) : (b))\n"
    "#define S_ABS(a) fabsf(a)\n"
    "#define S_SELECT_LT(a, b, x, y) ((a) < (b) ? (x) : (y))\n"
    "#define S_POW2(j) s_pow2(j)\n";

// V_POW2 of one float (the scalar ISA's v_pow2, a vector ISA's s_pow2): 2^n from the
// exponent field (n + 127) << 23, made from j's low bits.
static const char pow2_text[] =
    "static inline float x_pow2(float j)\n"
    "{\n"
    "    uint32_t bits;\n"
    "    memcpy(&bits, &j, sizeof bits);\n"
    "    bits = (bits << 23) + (127u << 23);     // (n + 127) << 23, n in j's low bits\n"
    "    memcpy(&j, &bits, sizeof j);\n"
    "    return j;\n"
    "}\n";

// text with the template's X_T, X_ and x_ replaced.
static void instantiate(Buf *b, const char *text, const char *type, const char *vocab,
                        const char *fn)
{
    for (const char *p = text; *p;) {
        if (strncmp(p, "X_T", 3) == 0 && !(p[3] == '_' || (p[3] >= 'A' && p[3] <= 'Z'))) {
            bputs(b, type);
            p += 3;
        } else if (strncmp(p, "X_", 2) == 0) {
            bputs(b, vocab);
            p += 2;
        } else if (strncmp(p, "x_", 2) == 0) {
            bputs(b, fn);
            p += 2;
        } else {
            bprintf(b, "%c", *p++);
        }
    }
}

// The math functions kernels call (cg->math) and those they call: a vector copy when some
// kernel uses the V_ form, a float copy when some uses the s_ form (on the scalar ISA one
// copy, s_, serves both), and the V_TANH, V_GELU_TANH, V_GELU_ERF names.
static void emit_math(Cg *cg, Buf *b)
{
    static const struct { unsigned bit; const char *macro, *fn; } calls[] = {
        {CG_MATH_TANH, "V_TANH", "tanh"},
        {CG_MATH_GELU_TANH, "V_GELU_TANH", "gelu_tanh"},
        {CG_MATH_GELU_ERF, "V_GELU_ERF", "gelu_erf"},
        {CG_MATH_EXP, "V_EXP", "exp"},
    };
    bool one_float = cg->isa == ISA_SCALAR;   // V_T is float: one copy
    unsigned vec = cg->math[1], one = cg->math[0] | (one_float ? vec : 0);
    if (!vec && !one)
        return;
    bputs(b, "/* -------------------------------------------------------------------------------"
             "--------\n"
             " * Math functions, in the vocabulary above: V_TANH(v), V_GELU_TANH(v),\n"
             " * V_GELU_ERF(v), V_EXP(v) on vectors, s_tanh(x), s_gelu_tanh(x), s_gelu_erf(x)\n"
             " * on one float (those the kernels use).  libm's tanhf, erff and expf would be a\n"
             " * call per element.\n"
             " */\n");
    if (!one_float && vec) {
        for (size_t i = 0; i < sizeof math_fns / sizeof math_fns[0]; i++)
            if (math_fns[i].need & vec) {
                instantiate(b, math_fns[i].comment, "V_T", "V_", "v_");
                instantiate(b, math_fns[i].code, "V_T", "V_", "v_");
            }
        for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++)
            if (vec & calls[c].bit)
                bprintf(b, "#define %s(v) v_%s(v)\n", calls[c].macro, calls[c].fn);
    }
    if (one) {
        if (!one_float)
            bputs(b, one_lane);
        instantiate(b, pow2_text, "float", "", one_float ? "v_" : "s_");
        for (size_t i = 0; i < sizeof math_fns / sizeof math_fns[0]; i++)
            if (math_fns[i].need & one) {
                if (one_float)
                    instantiate(b, math_fns[i].comment, "V_T", "V_", "s_");
                instantiate(b, math_fns[i].code, one_float ? "V_T" : "float",
                            one_float ? "V_" : "S_", "s_");
            }
        for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++)
            if (one_float && (vec & calls[c].bit))
                bprintf(b, "#define %s(v) s_%s(v)\n", calls[c].macro, calls[c].fn);
    }
    bputs(b, "\n");
}

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
    emit_math(cg, b);
    cg_emit_gemm_support(cg, b);
    cg_emit_attention_support(cg, b);
}
