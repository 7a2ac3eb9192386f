/*
 * The n = 1 micro-kernels (simd/n1.h) for AVX2 + FMA cores (tune "avx2";
 * measured on an AMD EPYC of family 25 without AVX-512, docs in README):
 * the tiles of simd/n1_kern.inc with 8 lanes and 12 ymm accumulators.
 * Scores 3 x 4 (3 query vectors, 1 key vector: 16 registers, 7 loads per
 * 12 FMAs), values 6 x 16 (2 value vectors, one broadcast).  The row
 * helpers (max, expsum, mask, finite) run whole vectors and then a scalar
 * tail (AVX2 has no cheap masked arithmetic).
 */
#include <immintrin.h>
#include <math.h>

#include "simd/kern.h"
#include "simd/n1.h"
#include "simd/simd.h"

#if !defined(__AVX2__) || !defined(__FMA__) || defined(__AVX512F__)
#error "simd/n1_avx2.c must be compiled with -mavx2 -mfma (and without AVX-512)"
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define NW 8
#define N1_SROWS 3
#define N1_SKEYS 4
#define N1_VROWS 6
#define N1_TAIL_MASKED 0
typedef __m256 nvec;
typedef __m256i nmask;

/* Lanes below k (0..8; more: all) all ones. */
ALWAYS_INLINE nmask lanes_below(int k)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

ALWAYS_INLINE nvec nv_zero(void) { return _mm256_setzero_ps(); }
ALWAYS_INLINE nvec nv_loadu(const float *p) { return _mm256_loadu_ps(p); }
ALWAYS_INLINE void nv_storeu(float *p, nvec v) { _mm256_storeu_ps(p, v); }
ALWAYS_INLINE nvec nv_maskz_loadu(nmask m, const float *p) { return _mm256_maskload_ps(p, m); }
ALWAYS_INLINE nvec nv_fmadd(nvec a, nvec b, nvec c) { return _mm256_fmadd_ps(a, b, c); }
ALWAYS_INLINE nvec nv_bcast(const float *p) { return _mm256_broadcast_ss(p); }
ALWAYS_INLINE __m256 nv_fold(nvec v) { return v; }

#include "simd/n1_kern.inc"

static void scores_avx2(const float *q, int ldq, int rows, const float *const *krow, int nc,
                        int d, float *S, int lds)
{
    scores_with(score_12, 3, 4, q, ldq, rows, krow, nc, d, S, lds);
}

static void values_avx2(const float *P, int ldp, int rows, const float *const *vrow, int nc,
                        int dv, float *acc, int lda)
{
    /* at most 12 accumulators; 4 rows take 2 vectors, which divides the
       usual dv (a 3-vector tile would leave a 1-vector one at dv = 128) */
    static const int vecs_of_rows[7] = {0, 4, 4, 4, 2, 2, 2};
    values_with(value_12, 6, vecs_of_rows, P, ldp, rows, vrow, nc, dv, acc, lda);
}

static float max_avx2(const float *x, int len)
{
    __m256 m = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    int c = 0;
    for (; c + 8 <= len; c += 8) {
        __m256 v = _mm256_loadu_ps(x + c);
        m = _mm256_max_ps(m, v);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    float out[8], best;
    _mm256_storeu_ps(out, m);
    best = out[0];
    for (int e = 1; e < 8; e++)
        best = out[e] > best ? out[e] : best;
    int any_nan = _mm256_movemask_ps(nan) != 0;
    for (; c < len; c++) {
        any_nan |= x[c] != x[c];
        best = x[c] > best ? x[c] : best;
    }
    return any_nan ? NAN : best;
}

static float expsum_avx2(float *x, int len, float m)
{
    const __m256 mv = _mm256_set1_ps(m);
    int c = 0;
    for (; c + 8 <= len; c += 8)
        _mm256_storeu_ps(x + c, _mm256_sub_ps(_mm256_loadu_ps(x + c), mv));
    for (; c < len; c++)
        x[c] -= m;
    nsx_kernels_avx2.exp_nonpos(x, len);
    __m256 s = _mm256_setzero_ps();
    for (c = 0; c + 8 <= len; c += 8)
        s = _mm256_add_ps(s, _mm256_loadu_ps(x + c));
    float out[8], sum = 0.0f;
    _mm256_storeu_ps(out, s);
    for (int e = 0; e < 8; e++)
        sum += out[e];
    for (; c < len; c++)
        sum += x[c];
    return sum;
}

static void mask_avx2(float *x, const unsigned char *mk, int len, float fill)
{
    const __m256 f = _mm256_set1_ps(fill);
    int c = 0;
    for (; c + 8 <= len; c += 8) {
        __m128i m8 = _mm_loadl_epi64((const __m128i *)(mk + c));
        __m256i keep = _mm256_cmpgt_epi32(_mm256_cvtepu8_epi32(m8), _mm256_setzero_si256());
        _mm256_storeu_ps(x + c, _mm256_blendv_ps(f, _mm256_loadu_ps(x + c), _mm256_castsi256_ps(keep)));
    }
    for (; c < len; c++)
        x[c] = mk[c] ? x[c] : fill;
}

static int finite_avx2(const float *x, int len)
{
    __m256 z = _mm256_setzero_ps(); /* 0 x v: 0 when finite, NaN otherwise */
    int c = 0;
    for (; c + 8 <= len; c += 8)
        z = _mm256_add_ps(z, _mm256_mul_ps(_mm256_loadu_ps(x + c), _mm256_setzero_ps()));
    int ok = _mm256_movemask_ps(_mm256_cmp_ps(z, z, _CMP_UNORD_Q)) == 0;
    for (; c < len; c++)
        ok &= isfinite(x[c]) != 0;
    return ok;
}

const nsx_n1_kernels nsx_n1_avx2 = {
    .name = "avx2", .cores = "AVX2 cores (two 256-bit FMA pipes)", .isa = NSX_ISA_AVX2,
    .smr = 3, .snc = 4, .vmr = 6, .vnx = 16, .nb = 128, .rows = 24,
    .scores = scores_avx2, .values = values_avx2, .max = max_avx2, .expsum = expsum_avx2,
    .mask = mask_avx2, .finite = finite_avx2,
};
