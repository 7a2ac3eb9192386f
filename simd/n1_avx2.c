/*
 * The n = 1 micro-kernels (simd/n1.h) for AVX2 + FMA cores (tune "avx2";
 * measured on an AMD EPYC of family 25 without AVX-512, docs in README).
 *
 * Scores: a 3 x 4 tile of dot products along d, 8 lanes of l at a time:
 * 12 ymm accumulators, 3 query vectors, 1 key vector (16 registers), 7
 * loads per 12 FMAs; the 4 sums of a row come out of 3 hadds.  Keys outer,
 * rows inner: a group's 4 key rows stay in L1 while every row passes.
 * Values: a 6 x 16 tile (6 rows, 2 ymm of value channels): 12 accumulators,
 * 2 value vectors, one broadcast of P, keys inner.  Remainders use the same
 * templates with fewer rows, keys or vectors; d and dv tails use masked
 * loads (no read past a row's end).
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

/* Lanes below k (0..8) all ones. */
ALWAYS_INLINE __m256i lanes_below(int k)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Lane c: the sum of the 8 lanes of a_c. */
ALWAYS_INLINE __m128 reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* S[r][0..4) for MRT rows and NCT keys (the lanes past NCT are zero). */
ALWAYS_INLINE void score_tile(const int MRT, const int NCT, const float *q, int ldq,
                              const float *const *krow, int d, float *S, int lds)
{
    __m256 acc[3][4];
#pragma GCC unroll 3
    for (int r = 0; r < MRT; r++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            acc[r][c] = _mm256_setzero_ps();
    int l = 0;
    for (; l + 8 <= d; l += 8) {
        __m256 qv[3];
#pragma GCC unroll 3
        for (int r = 0; r < MRT; r++)
            qv[r] = _mm256_loadu_ps(q + (size_t)r * ldq + l);
#pragma GCC unroll 4
        for (int c = 0; c < NCT; c++) {
            __m256 kv = _mm256_loadu_ps(krow[c] + l);
#pragma GCC unroll 3
            for (int r = 0; r < MRT; r++)
                acc[r][c] = _mm256_fmadd_ps(qv[r], kv, acc[r][c]);
        }
    }
    if (l < d) {
        const __m256i m = lanes_below(d - l);
        __m256 qv[3];
#pragma GCC unroll 3
        for (int r = 0; r < MRT; r++)
            qv[r] = _mm256_maskload_ps(q + (size_t)r * ldq + l, m);
#pragma GCC unroll 4
        for (int c = 0; c < NCT; c++) {
            __m256 kv = _mm256_maskload_ps(krow[c] + l, m);
#pragma GCC unroll 3
            for (int r = 0; r < MRT; r++)
                acc[r][c] = _mm256_fmadd_ps(qv[r], kv, acc[r][c]);
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < MRT; r++)
        _mm_storeu_ps(S + (size_t)r * lds, reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
}

#define SCORE_CASE(mr, nc)                                                                         \
    case (mr) * 8 + (nc):                                                                          \
        score_tile(mr, nc, q, ldq, krow, d, S, lds);                                               \
        break;

static void score_any(int mr, int nc, const float *q, int ldq, const float *const *krow, int d,
                      float *S, int lds)
{
    switch (mr * 8 + nc) {
        SCORE_CASE(3, 4) SCORE_CASE(3, 3) SCORE_CASE(3, 2) SCORE_CASE(3, 1)
        SCORE_CASE(2, 4) SCORE_CASE(2, 3) SCORE_CASE(2, 2) SCORE_CASE(2, 1)
        SCORE_CASE(1, 4) SCORE_CASE(1, 3) SCORE_CASE(1, 2) SCORE_CASE(1, 1)
    default:
        break;
    }
}

static void scores_avx2(const float *q, int ldq, int rows, const float *const *krow, int nc,
                        int d, float *S, int lds)
{
    for (int c = 0; c < nc; c += 4) {
        const int nct = nc - c < 4 ? nc - c : 4;
        for (int r = 0; r < rows;) {
            /* threes, with a last four as two twos */
            const int left = rows - r, mrt = left >= 3 && left != 4 ? 3 : left >= 2 ? 2 : 1;
            score_any(mrt, nct, q + (size_t)r * ldq, ldq, krow + c, d, S + (size_t)r * lds + c,
                      lds);
            r += mrt;
        }
    }
}

/* acc[r][x0 .. x0 + 8 XVT) += sum_c P[r][c] vrow[c][x0 ..], MRT rows; the
   last vector holds the channels x0 + 8 (XVT - 1) .. dv when tail. */
ALWAYS_INLINE void value_tile(const int MRT, const int XVT, const float *P, int ldp,
                              const float *const *vrow, int nc, int x0, int tail, __m256i tmask,
                              float *acc, int lda)
{
    __m256 a[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < MRT; r++)
#pragma GCC unroll 4
        for (int j = 0; j < XVT; j++)
            a[r][j] = _mm256_loadu_ps(acc + (size_t)r * lda + x0 + 8 * j);
    for (int c = 0; c < nc; c++) {
        const float *v = vrow[c] + x0;
        __m256 vv[4];
#pragma GCC unroll 4
        for (int j = 0; j < XVT; j++)
            vv[j] = j == XVT - 1 && tail ? _mm256_maskload_ps(v + 8 * j, tmask)
                                         : _mm256_loadu_ps(v + 8 * j);
#pragma GCC unroll 6
        for (int r = 0; r < MRT; r++) {
            __m256 p = _mm256_broadcast_ss(P + (size_t)r * ldp + c);
#pragma GCC unroll 4
            for (int j = 0; j < XVT; j++)
                a[r][j] = _mm256_fmadd_ps(p, vv[j], a[r][j]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < MRT; r++)
#pragma GCC unroll 4
        for (int j = 0; j < XVT; j++)
            _mm256_storeu_ps(acc + (size_t)r * lda + x0 + 8 * j, a[r][j]);
}

#define VALUE_CASE(mr, xv)                                                                         \
    case (mr) * 8 + (xv):                                                                          \
        value_tile(mr, xv, P, ldp, vrow, nc, x0, tail, tmask, acc, lda);                           \
        break;

static void value_any(int mr, int xv, const float *P, int ldp, const float *const *vrow, int nc,
                      int x0, int tail, __m256i tmask, float *acc, int lda)
{
    switch (mr * 8 + xv) {
        VALUE_CASE(6, 2) VALUE_CASE(6, 1)
        VALUE_CASE(5, 2) VALUE_CASE(5, 1)
        VALUE_CASE(4, 3) VALUE_CASE(4, 2) VALUE_CASE(4, 1)
        VALUE_CASE(3, 4) VALUE_CASE(3, 3) VALUE_CASE(3, 2) VALUE_CASE(3, 1)
        VALUE_CASE(2, 4) VALUE_CASE(2, 3) VALUE_CASE(2, 2) VALUE_CASE(2, 1)
        VALUE_CASE(1, 4) VALUE_CASE(1, 3) VALUE_CASE(1, 2) VALUE_CASE(1, 1)
    default:
        break;
    }
}

static void values_avx2(const float *P, int ldp, int rows, const float *const *vrow, int nc,
                        int dv, float *acc, int lda)
{
    /* at most 12 accumulators; 4 rows take 2 vectors, which divides the
       usual dv (a 3-vector tile would leave a 1-vector one at dv = 128) */
    static const int xv_of_rows[7] = {0, 4, 4, 4, 2, 2, 2};
    for (int r = 0; r < rows; r += 6) {
        const int mrt = rows - r < 6 ? rows - r : 6;
        for (int x0 = 0; x0 < dv;) {
            const int vecs = (dv - x0 + 7) / 8;
            const int xv = vecs < xv_of_rows[mrt] ? vecs : xv_of_rows[mrt];
            const int end = x0 + 8 * xv, tail = end > dv;
            const __m256i tmask = lanes_below(8 - (end - dv));
            value_any(mrt, xv, P + (size_t)r * ldp, ldp, vrow, nc, x0, tail, tmask,
                      acc + (size_t)r * lda, lda);
            x0 = end;
        }
    }
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
