/*
 * The AVX2 backward tile (simd/bwd_kern.h): 6 prefix rows by 16 inner keys.
 * Each of its six products keeps 12 ymm accumulators (or the 6 x 16 tile of
 * A or dT) in registers, plus two operand vectors and one broadcast, within
 * the 16 ymm registers:
 *   S, dP       12 accumulators, per l (per x): 2 panel loads, 6 broadcasts
 *   dkt, dvt    dT (A) held in 12 registers, per l (x): the 2 vectors of the
 *               accumulator loaded, 6 broadcast FMAs, stored
 *   x, y        per 16 columns of d (dv): 12 accumulators, per key: 2 row
 *               loads, 6 broadcasts of dT (A)
 * Masked tuples are zeroed by an AND (so never NaN); exp is the forward's.
 */
#include <immintrin.h>
#include <math.h>

#include "simd/bwd_kern.h"
#include "simd/simd.h"

#if !defined(__AVX2__) || !defined(__FMA__) || defined(__AVX512F__)
#error "simd/bwd_avx2.c must be compiled with -mavx2 -mfma (and without AVX-512)"
#endif

#define MR 6
#define NR 16

#include "simd/vmath_avx2.h"

/* acc[r][0..1] = sum_l a[r][l] b[l][0..16) for l < len (a row stride lda,
   b row stride ldb): the S and dP products. */
ALWAYS_INLINE void rows_by_panel(__m256 acc[MR][2], const float *a, int lda, const float *b, int ldb,
                                 int len)
{
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int l = 0; l < len; l++) {
        const float *k = b + (size_t)l * ldb;
        __m256 k0 = _mm256_load_ps(k), k1 = _mm256_load_ps(k + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 x = _mm256_broadcast_ss(a + r * lda + l);
            acc[r][0] = _mm256_fmadd_ps(x, k0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, k1, acc[r][1]);
        }
    }
}

/* out[l][0..16) += sum_r p[r][0..16) a[r][l] for l < len (out row stride
   ldo, a row stride lda): dkt (p = dT, a = uq), dvt (p = A, a = dov). */
ALWAYS_INLINE void tile_t_by_rows(float *out, int ldo, const float *p, const float *a, int lda, int len)
{
    __m256 t[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        t[r][0] = _mm256_load_ps(p + r * NR);
        t[r][1] = _mm256_load_ps(p + r * NR + 8);
    }
    for (int l = 0; l < len; l++) {
        float *o = out + (size_t)l * ldo;
        __m256 o0 = _mm256_loadu_ps(o), o1 = _mm256_loadu_ps(o + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 x = _mm256_broadcast_ss(a + r * lda + l);
            o0 = _mm256_fmadd_ps(x, t[r][0], o0);
            o1 = _mm256_fmadd_ps(x, t[r][1], o1);
        }
        _mm256_storeu_ps(o, o0);
        _mm256_storeu_ps(o + 8, o1);
    }
}

/* out[r][0..len) += sum_{c < nc} p[r][c] b[c][0..len) (out and b row
   stride ld, len a multiple of 16): x (p = dT, b = kr), y (p = A, b = vr). */
ALWAYS_INLINE void tile_by_keys(float *out, const float *p, const float *b, int ld, int len, int nc)
{
    for (int l0 = 0; l0 < len; l0 += 16) {
        __m256 acc[MR][2];
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            acc[r][0] = _mm256_load_ps(out + r * ld + l0);
            acc[r][1] = _mm256_load_ps(out + r * ld + l0 + 8);
        }
        for (int c = 0; c < nc; c++) {
            const float *k = b + (size_t)c * ld + l0;
            __m256 k0 = _mm256_load_ps(k), k1 = _mm256_load_ps(k + 8);
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++) {
                __m256 x = _mm256_broadcast_ss(p + r * NR + c);
                acc[r][0] = _mm256_fmadd_ps(x, k0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, k1, acc[r][1]);
            }
        }
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            _mm256_store_ps(out + r * ld + l0, acc[r][0]);
            _mm256_store_ps(out + r * ld + l0 + 8, acc[r][1]);
        }
    }
}

static void tile_avx2(const nsx_bwd_tile *t)
{
    float *A = t->ptile, *dT = t->ptile + MR * NR;
    __m256 acc[MR][2];
    /* S, then A = exp(S - lse) on the allowed tuples (E4) */
    rows_by_panel(acc, t->uq, t->ldd, t->kt, t->ldk, t->d);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        const __m256 lse = _mm256_set1_ps(t->lse[r]);
        _mm256_store_ps(A + r * NR, _mm256_and_ps(lane_mask(t->mask[r]),
                                                  exp256(_mm256_sub_ps(acc[r][0], lse))));
        _mm256_store_ps(A + r * NR + 8, _mm256_and_ps(lane_mask(t->mask[r] >> 8),
                                                      exp256(_mm256_sub_ps(acc[r][1], lse))));
    }
    /* dP (E7a), then dT = A (dP - Delta) (E7c), masked */
    if (t->sum) {
        const __m256 c0 = _mm256_loadu_ps(t->dpcol), c1 = _mm256_loadu_ps(t->dpcol + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 rv = _mm256_set1_ps(t->dprow[r]);
            acc[r][0] = _mm256_add_ps(rv, c0);
            acc[r][1] = _mm256_add_ps(rv, c1);
        }
    } else {
        rows_by_panel(acc, t->dov, t->dvp, t->vt, t->ldk, t->dvp);
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        for (int h = 0; h < 2; h++) {
            const __m256 delta = _mm256_set1_ps(t->delta[r]);
            __m256 a = _mm256_load_ps(A + r * NR + 8 * h);
            __m256 g = _mm256_mul_ps(a, _mm256_sub_ps(acc[r][h], delta));
            _mm256_store_ps(dT + r * NR + 8 * h, _mm256_and_ps(lane_mask(t->mask[r] >> (8 * h)), g));
        }
    /* E7e inner keys, E7d/E7e prefix side */
    tile_t_by_rows(t->dkt, t->ldk, dT, t->uq, t->ldd, t->d);
    tile_by_keys(t->x, dT, t->kr, t->ldd, t->ldd, t->nc);
    if (t->sum) {
        __m256 c0 = _mm256_setzero_ps(), c1 = c0;
        for (int r = 0; r < MR; r++) {
            __m256 a0 = _mm256_load_ps(A + r * NR), a1 = _mm256_load_ps(A + r * NR + 8);
            c0 = _mm256_add_ps(c0, a0);
            c1 = _mm256_add_ps(c1, a1);
            t->rowa[r] += hsum256(_mm256_add_ps(a0, a1));
        }
        _mm256_storeu_ps(t->cola, _mm256_add_ps(_mm256_loadu_ps(t->cola), c0));
        _mm256_storeu_ps(t->cola + 8, _mm256_add_ps(_mm256_loadu_ps(t->cola + 8), c1));
        return;
    }
    /* E7f */
    tile_t_by_rows(t->dvt, t->ldk, A, t->dov, t->dvp, t->dvp);
    tile_by_keys(t->y, A, t->vr, t->dvp, t->dvp, t->nc);
}

const nsx_bwd_kernels nsx_bwd_kernels_avx2 = {
    .isa = NSX_ISA_AVX2, .mr = MR, .nr = NR, .tile = tile_avx2,
};
