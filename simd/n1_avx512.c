/*
 * The n = 1 micro-kernels (simd/n1.h) for AVX-512 cores: the tiles of
 * simd/n1_kern.inc with 16 lanes, in two sub-configurations (32 zmm
 * registers):
 *
 *   xeon  two 512-bit FMA pipes (Intel Xeon): scores 4 x 6 (24 accumulators,
 *         4 query and 1 key register, 10 loads per 24 FMAs), values 8 x 48
 *         (24 accumulators, 3 value registers, 1 broadcast);
 *   zen4  one 512-bit FMA per cycle (Zen 4 splits it over its two 256-bit
 *         pipes), where 12 chains already cover the latency and smaller
 *         tiles cost fewer horizontal sums per FMA: scores 3 x 4, values
 *         6 x 32 (the tiles of simd/n1_avx2.c).
 *
 * A score tile's sums fold each zmm to a ymm before the hadds.  The row
 * helpers (max, expsum, mask, finite) run masked vectors to the end of the
 * row, with no scalar tail.
 */
#include <immintrin.h>
#include <math.h>

#include "simd/kern.h"
#include "simd/n1.h"
#include "simd/simd.h"

#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__FMA__)
#error "simd/n1_avx512.c must be compiled with -mavx512f -mavx512dq -mfma"
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define NW 16
#define N1_SROWS 4
#define N1_SKEYS 8
#define N1_VROWS 8
#define N1_TAIL_MASKED 1
typedef __m512 nvec;
typedef __mmask16 nmask;

/* Lanes below k (0..16; more: all). */
ALWAYS_INLINE nmask lanes_below(int k)
{
    return (__mmask16)(k >= 16 ? 0xffffu : (1u << k) - 1u);
}

ALWAYS_INLINE nvec nv_zero(void) { return _mm512_setzero_ps(); }
ALWAYS_INLINE nvec nv_loadu(const float *p) { return _mm512_loadu_ps(p); }
ALWAYS_INLINE void nv_storeu(float *p, nvec v) { _mm512_storeu_ps(p, v); }
ALWAYS_INLINE nvec nv_maskz_loadu(nmask m, const float *p) { return _mm512_maskz_loadu_ps(m, p); }
ALWAYS_INLINE nvec nv_fmadd(nvec a, nvec b, nvec c) { return _mm512_fmadd_ps(a, b, c); }
ALWAYS_INLINE nvec nv_bcast(const float *p) { return _mm512_set1_ps(*p); }

ALWAYS_INLINE __m256 nv_fold(nvec a)
{
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
}

#include "simd/n1_kern.inc"

/* xeon: scores up to 4 x 6, values up to 8 x 3 vectors. */
static void score_xeon(int mr, int nc, const float *q, int ldq, const float *const *krow, int d,
                       float *S, int lds)
{
    switch (mr * 16 + nc) {
        SCORE_CASE(4, 6) SCORE_CASE(4, 5) SCORE_CASE(4, 4) SCORE_CASE(4, 3) SCORE_CASE(4, 2)
        SCORE_CASE(4, 1) SCORE_CASE(3, 6) SCORE_CASE(3, 5) SCORE_CASE(3, 4) SCORE_CASE(3, 3)
        SCORE_CASE(3, 2) SCORE_CASE(3, 1) SCORE_CASE(2, 6) SCORE_CASE(2, 5) SCORE_CASE(2, 4)
        SCORE_CASE(2, 3) SCORE_CASE(2, 2) SCORE_CASE(2, 1) SCORE_CASE(1, 6) SCORE_CASE(1, 5)
        SCORE_CASE(1, 4) SCORE_CASE(1, 3) SCORE_CASE(1, 2) SCORE_CASE(1, 1)
    default:
        break;
    }
}

static void value_xeon(int mr, int xv, const float *P, int ldp, const float *const *vrow, int nc,
                       int x0, int tail, nmask tmask, float *acc, int lda)
{
    switch (mr * 16 + xv) {
        VALUE_CASE(8, 3) VALUE_CASE(8, 2) VALUE_CASE(8, 1) VALUE_CASE(7, 3) VALUE_CASE(7, 2)
        VALUE_CASE(7, 1) VALUE_CASE(6, 4) VALUE_CASE(6, 3) VALUE_CASE(6, 2) VALUE_CASE(6, 1)
        VALUE_CASE(5, 4) VALUE_CASE(5, 3) VALUE_CASE(5, 2) VALUE_CASE(5, 1) VALUE_CASE(4, 4)
        VALUE_CASE(4, 3) VALUE_CASE(4, 2) VALUE_CASE(4, 1) VALUE_CASE(3, 4) VALUE_CASE(3, 3)
        VALUE_CASE(3, 2) VALUE_CASE(3, 1) VALUE_CASE(2, 4) VALUE_CASE(2, 3) VALUE_CASE(2, 2)
        VALUE_CASE(2, 1) VALUE_CASE(1, 4) VALUE_CASE(1, 3) VALUE_CASE(1, 2) VALUE_CASE(1, 1)
    default:
        break;
    }
}

/* Value vectors by tile rows: as many as 24 (xeon) or 12 (zen4)
   accumulators hold, at most 4. */
static const int xeon_vecs[9] = {0, 4, 4, 4, 4, 4, 4, 3, 3};
static const int zen4_vecs[7] = {0, 4, 4, 4, 3, 2, 2};

static void scores_xeon(const float *q, int ldq, int rows, const float *const *krow, int nc,
                        int d, float *S, int lds)
{
    scores_with(score_xeon, 4, 6, q, ldq, rows, krow, nc, d, S, lds);
}

static void values_xeon(const float *P, int ldp, int rows, const float *const *vrow, int nc,
                        int dv, float *acc, int lda)
{
    values_with(value_xeon, 8, xeon_vecs, P, ldp, rows, vrow, nc, dv, acc, lda);
}

static void scores_zen4(const float *q, int ldq, int rows, const float *const *krow, int nc,
                        int d, float *S, int lds)
{
    scores_with(score_12, 3, 4, q, ldq, rows, krow, nc, d, S, lds);
}

static void values_zen4(const float *P, int ldp, int rows, const float *const *vrow, int nc,
                        int dv, float *acc, int lda)
{
    values_with(value_12, 6, zen4_vecs, P, ldp, rows, vrow, nc, dv, acc, lda);
}

static float max_avx512(const float *x, int len)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    for (int c = 0; c < len; c += 16) {
        const __mmask16 k = lanes_below(len - c);
        __m512 v = _mm512_mask_loadu_ps(m, k, x + c); /* lanes past len: m itself */
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, v);
    }
    return nan ? NAN : _mm512_reduce_max_ps(m);
}

static float expsum_avx512(float *x, int len, float m)
{
    const __m512 mv = _mm512_set1_ps(m);
    for (int c = 0; c < len; c += 16) {
        const __mmask16 k = lanes_below(len - c);
        _mm512_mask_storeu_ps(x + c, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c), mv));
    }
    nsx_kernels_avx512.exp_nonpos(x, len);
    __m512 s = _mm512_setzero_ps();
    for (int c = 0; c < len; c += 16)
        s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(lanes_below(len - c), x + c));
    return _mm512_reduce_add_ps(s);
}

static void mask_avx512(float *x, const unsigned char *mk, int len, float fill)
{
    const __m512 f = _mm512_set1_ps(fill);
    for (int c = 0; c < len; c += 16) {
        const __mmask16 k = lanes_below(len - c);
        __m128i m8 = _mm_maskz_loadu_epi8(k, mk + c);
        __mmask16 keep = _mm512_test_epi32_mask(_mm512_cvtepu8_epi32(m8), _mm512_set1_epi32(0xff));
        _mm512_mask_storeu_ps(x + c, k, _mm512_mask_blend_ps(keep, f, _mm512_maskz_loadu_ps(k, x + c)));
    }
}

static int finite_avx512(const float *x, int len)
{
    __mmask16 bad = 0;
    for (int c = 0; c < len; c += 16) {
        const __mmask16 k = lanes_below(len - c);
        __m512 v = _mm512_maskz_loadu_ps(k, x + c);
        /* 0 x v is NaN exactly when v is an infinity or a NaN */
        __m512 z = _mm512_mul_ps(v, _mm512_setzero_ps());
        bad |= _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
    }
    return bad == 0;
}

const nsx_n1_kernels nsx_n1_xeon = {
    .name = "xeon", .cores = "AVX-512 cores with two 512-bit FMA pipes (Intel Xeon)",
    .isa = NSX_ISA_AVX512, .smr = 4, .snc = 6, .vmr = 8, .vnx = 48, .nb = 128, .rows = 32,
    .scores = scores_xeon, .values = values_xeon, .max = max_avx512, .expsum = expsum_avx512,
    .mask = mask_avx512, .finite = finite_avx512,
};

const nsx_n1_kernels nsx_n1_zen4 = {
    .name = "zen4", .cores = "AVX-512 cores with one 512-bit FMA per cycle (AMD Zen 4)",
    .isa = NSX_ISA_AVX512, .smr = 3, .snc = 4, .vmr = 6, .vnx = 32, .nb = 128, .rows = 24,
    .scores = scores_zen4, .values = values_zen4, .max = max_avx512, .expsum = expsum_avx512,
    .mask = mask_avx512, .finite = finite_avx512,
};
