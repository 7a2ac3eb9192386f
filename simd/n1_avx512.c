/*
 * The n = 1 micro-kernels (simd/n1.h) for AVX-512 cores, in two
 * sub-configurations of the same templates (16 lanes, 32 zmm registers):
 *
 *   xeon  two 512-bit FMA pipes (Intel Xeon): scores 4 x 6 (24 accumulators,
 *         4 query and 1 key register, 10 loads per 24 FMAs), values 8 x 48
 *         (24 accumulators, 3 value registers, 1 broadcast);
 *   zen4  one 512-bit FMA per cycle (Zen 4 splits it over its two 256-bit
 *         pipes), where 12 chains already cover the latency and smaller
 *         tiles cost fewer horizontal sums per FMA: scores 3 x 4, values
 *         6 x 32.
 *
 * A score tile accumulates 16 lanes of l per FMA; its sums fold each zmm to
 * a ymm and then four at a time with hadd, as in simd/n1_avx2.c.  d and dv
 * tails use zero-masked loads, which never fault on the lanes they skip.
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

/* Lanes below k (0..16). */
ALWAYS_INLINE __mmask16 lanes_below(int k)
{
    return (__mmask16)(k >= 16 ? 0xffffu : (1u << k) - 1u);
}

ALWAYS_INLINE __m256 fold(__m512 a)
{
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
}

/* Lane c: the sum of the 16 lanes of a_c. */
ALWAYS_INLINE __m128 reduce4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(fold(a0), fold(a1)),
                              _mm256_hadd_ps(fold(a2), fold(a3)));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* S[r][0 .. NCT rounded up to 4) for MRT rows (MRT <= 4, NCT <= 8; the sums
   past NCT are zero). */
ALWAYS_INLINE void score_tile(const int MRT, const int NCT, const float *q, int ldq,
                              const float *const *krow, int d, float *S, int lds)
{
    __m512 acc[4][8];
#pragma GCC unroll 4
    for (int r = 0; r < MRT; r++)
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++)
            acc[r][c] = _mm512_setzero_ps();
    int l = 0;
    for (; l + 16 <= d; l += 16) {
        __m512 qv[4];
#pragma GCC unroll 4
        for (int r = 0; r < MRT; r++)
            qv[r] = _mm512_loadu_ps(q + (size_t)r * ldq + l);
#pragma GCC unroll 8
        for (int c = 0; c < NCT; c++) {
            __m512 kv = _mm512_loadu_ps(krow[c] + l);
#pragma GCC unroll 4
            for (int r = 0; r < MRT; r++)
                acc[r][c] = _mm512_fmadd_ps(qv[r], kv, acc[r][c]);
        }
    }
    if (l < d) {
        const __mmask16 m = lanes_below(d - l);
        __m512 qv[4];
#pragma GCC unroll 4
        for (int r = 0; r < MRT; r++)
            qv[r] = _mm512_maskz_loadu_ps(m, q + (size_t)r * ldq + l);
#pragma GCC unroll 8
        for (int c = 0; c < NCT; c++) {
            __m512 kv = _mm512_maskz_loadu_ps(m, krow[c] + l);
#pragma GCC unroll 4
            for (int r = 0; r < MRT; r++)
                acc[r][c] = _mm512_fmadd_ps(qv[r], kv, acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < MRT; r++) {
        _mm_storeu_ps(S + (size_t)r * lds, reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
        if (NCT > 4)
            _mm_storeu_ps(S + (size_t)r * lds + 4,
                          reduce4(acc[r][4], acc[r][5], acc[r][6], acc[r][7]));
    }
}

/* acc[r][x0 .. x0 + 16 XVT) += sum_c P[r][c] vrow[c][x0 ..] (MRT <= 8,
   XVT <= 4); the last vector is masked by tmask. */
ALWAYS_INLINE void value_tile(const int MRT, const int XVT, const float *P, int ldp,
                              const float *const *vrow, int nc, int x0, __mmask16 tmask,
                              float *acc, int lda)
{
    __m512 a[8][4];
#pragma GCC unroll 8
    for (int r = 0; r < MRT; r++)
#pragma GCC unroll 4
        for (int j = 0; j < XVT; j++)
            a[r][j] = _mm512_loadu_ps(acc + (size_t)r * lda + x0 + 16 * j);
    for (int c = 0; c < nc; c++) {
        const float *v = vrow[c] + x0;
        __m512 vv[4];
#pragma GCC unroll 4
        for (int j = 0; j < XVT; j++)
            vv[j] = j == XVT - 1 ? _mm512_maskz_loadu_ps(tmask, v + 16 * j)
                                 : _mm512_loadu_ps(v + 16 * j);
#pragma GCC unroll 8
        for (int r = 0; r < MRT; r++) {
            __m512 p = _mm512_set1_ps(P[(size_t)r * ldp + c]);
#pragma GCC unroll 4
            for (int j = 0; j < XVT; j++)
                a[r][j] = _mm512_fmadd_ps(p, vv[j], a[r][j]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MRT; r++)
#pragma GCC unroll 4
        for (int j = 0; j < XVT; j++)
            _mm512_storeu_ps(acc + (size_t)r * lda + x0 + 16 * j, a[r][j]);
}

#define SCORE_CASE(mr, nc)                                                                         \
    case (mr) * 16 + (nc):                                                                         \
        score_tile(mr, nc, q, ldq, krow, d, S, lds);                                               \
        break;
#define VALUE_CASE(mr, xv)                                                                         \
    case (mr) * 16 + (xv):                                                                         \
        value_tile(mr, xv, P, ldp, vrow, nc, x0, tmask, acc, lda);                                 \
        break;

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
                       int x0, __mmask16 tmask, float *acc, int lda)
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

/* zen4: scores up to 3 x 4, values up to 6 x 2 vectors. */
static void score_zen4(int mr, int nc, const float *q, int ldq, const float *const *krow, int d,
                       float *S, int lds)
{
    switch (mr * 16 + nc) {
        SCORE_CASE(3, 4) SCORE_CASE(3, 3) SCORE_CASE(3, 2) SCORE_CASE(3, 1)
        SCORE_CASE(2, 4) SCORE_CASE(2, 3) SCORE_CASE(2, 2) SCORE_CASE(2, 1)
        SCORE_CASE(1, 4) SCORE_CASE(1, 3) SCORE_CASE(1, 2) SCORE_CASE(1, 1)
    default:
        break;
    }
}

static void value_zen4(int mr, int xv, const float *P, int ldp, const float *const *vrow, int nc,
                       int x0, __mmask16 tmask, float *acc, int lda)
{
    switch (mr * 16 + xv) {
        VALUE_CASE(6, 2) VALUE_CASE(6, 1) VALUE_CASE(5, 2) VALUE_CASE(5, 1)
        VALUE_CASE(4, 3) VALUE_CASE(4, 2) VALUE_CASE(4, 1) VALUE_CASE(3, 4) VALUE_CASE(3, 3)
        VALUE_CASE(3, 2) VALUE_CASE(3, 1) VALUE_CASE(2, 4) VALUE_CASE(2, 3) VALUE_CASE(2, 2)
        VALUE_CASE(2, 1) VALUE_CASE(1, 4) VALUE_CASE(1, 3) VALUE_CASE(1, 2) VALUE_CASE(1, 1)
    default:
        break;
    }
}

typedef void (*score_fn)(int, int, const float *, int, const float *const *, int, float *, int);
typedef void (*value_fn)(int, int, const float *, int, const float *const *, int, int, __mmask16,
                         float *, int);

/* Keys outer in groups of snc, rows inner in groups of smr (a last group
   of smr + 1 rows as two). */
ALWAYS_INLINE void scores_with(score_fn tile, int smr, int snc, const float *q, int ldq, int rows,
                               const float *const *krow, int nc, int d, float *S, int lds)
{
    for (int c = 0; c < nc; c += snc) {
        const int nct = nc - c < snc ? nc - c : snc;
        for (int r = 0; r < rows;) {
            const int left = rows - r;
            const int mrt = left == smr + 1 ? (left + 1) / 2 : left < smr ? left : smr;
            tile(mrt, nct, q + (size_t)r * ldq, ldq, krow + c, d, S + (size_t)r * lds + c, lds);
            r += mrt;
        }
    }
}

/* Rows in groups of vmr; value vectors per tile: as many as keep the
   accumulators within acc_regs (at most 4). */
ALWAYS_INLINE void values_with(value_fn tile, int vmr, int acc_regs, const float *P, int ldp,
                               int rows, const float *const *vrow, int nc, int dv, float *acc,
                               int lda)
{
    for (int r = 0; r < rows; r += vmr) {
        const int mrt = rows - r < vmr ? rows - r : vmr;
        const int most = acc_regs / mrt < 4 ? acc_regs / mrt : 4;
        for (int x0 = 0; x0 < dv;) {
            const int vecs = (dv - x0 + 15) / 16, xv = vecs < most ? vecs : most;
            const int end = x0 + 16 * xv;
            tile(mrt, xv, P + (size_t)r * ldp, ldp, vrow, nc, x0,
                 lanes_below(16 - (end > dv ? end - dv : 0)), acc + (size_t)r * lda, lda);
            x0 = end;
        }
    }
}

static void scores_xeon(const float *q, int ldq, int rows, const float *const *krow, int nc,
                        int d, float *S, int lds)
{
    scores_with(score_xeon, 4, 6, q, ldq, rows, krow, nc, d, S, lds);
}

static void values_xeon(const float *P, int ldp, int rows, const float *const *vrow, int nc,
                        int dv, float *acc, int lda)
{
    values_with(value_xeon, 8, 24, P, ldp, rows, vrow, nc, dv, acc, lda);
}

static void scores_zen4(const float *q, int ldq, int rows, const float *const *krow, int nc,
                        int d, float *S, int lds)
{
    scores_with(score_zen4, 3, 4, q, ldq, rows, krow, nc, d, S, lds);
}

static void values_zen4(const float *P, int ldp, int rows, const float *const *vrow, int nc,
                        int dv, float *acc, int lda)
{
    values_with(value_zen4, 6, 12, P, ldp, rows, vrow, nc, dv, acc, lda);
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
