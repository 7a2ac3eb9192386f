/*
 * The AVX-512 backward tile (simd/bwd_kern.h): 8 prefix rows by 32 inner
 * keys, the structure of simd/bwd_avx2.c with twice the width and twice the
 * registers: each product keeps 16 zmm accumulators (or the 8 x 32 tile of
 * A or dT) in registers, plus two operand vectors; broadcasts fold into the
 * FMA's memory operand (fma_bcast).  Masks are mask registers, so masked
 * tuples get exactly 0 and never a NaN.
 */
#include <immintrin.h>
#include <math.h>

#include "simd/bwd_kern.h"
#include "simd/simd.h"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "simd/bwd_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#define MR 8
#define NR 32

#include "simd/vmath_avx512.h"

/* acc[r][0..1] = sum_l a[r][l] b[l][0..32) for l < len: S and dP. */
ALWAYS_INLINE void rows_by_panel(__m512 acc[MR][2], const float *a, int lda, const float *b, int ldb,
                                 int len)
{
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int l = 0; l < len; l++) {
        const float *k = b + (size_t)l * ldb;
        __m512 k0 = _mm512_load_ps(k), k1 = _mm512_load_ps(k + 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            acc[r][0] = fma_bcast(acc[r][0], k0, a + r * lda + l);
            acc[r][1] = fma_bcast(acc[r][1], k1, a + r * lda + l);
        }
    }
}

/* out[l][0..32) += sum_r p[r][0..32) a[r][l] for l < len: dkt, dvt. */
ALWAYS_INLINE void tile_t_by_rows(float *out, int ldo, const float *p, const float *a, int lda, int len)
{
    __m512 t[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        t[r][0] = _mm512_load_ps(p + r * NR);
        t[r][1] = _mm512_load_ps(p + r * NR + 16);
    }
    for (int l = 0; l < len; l++) {
        float *o = out + (size_t)l * ldo;
        __m512 o0 = _mm512_loadu_ps(o), o1 = _mm512_loadu_ps(o + 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            o0 = fma_bcast(o0, t[r][0], a + r * lda + l);
            o1 = fma_bcast(o1, t[r][1], a + r * lda + l);
        }
        _mm512_storeu_ps(o, o0);
        _mm512_storeu_ps(o + 16, o1);
    }
}

/* out[r][0..len) += sum_{c < nc} p[r][c] b[c][0..len) (row stride ld, len
   a multiple of 16): x, y.  Two zmm of columns at a time, one at the end. */
ALWAYS_INLINE void tile_by_keys(float *out, const float *p, const float *b, int ld, int len, int nc)
{
    int l0 = 0;
    for (; l0 + 32 <= len; l0 += 32) {
        __m512 acc[MR][2];
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            acc[r][0] = _mm512_load_ps(out + r * ld + l0);
            acc[r][1] = _mm512_load_ps(out + r * ld + l0 + 16);
        }
        for (int c = 0; c < nc; c++) {
            const float *k = b + (size_t)c * ld + l0;
            __m512 k0 = _mm512_load_ps(k), k1 = _mm512_load_ps(k + 16);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                acc[r][0] = fma_bcast(acc[r][0], k0, p + r * NR + c);
                acc[r][1] = fma_bcast(acc[r][1], k1, p + r * NR + c);
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            _mm512_store_ps(out + r * ld + l0, acc[r][0]);
            _mm512_store_ps(out + r * ld + l0 + 16, acc[r][1]);
        }
    }
    if (l0 < len) {
        __m512 acc[MR];
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++)
            acc[r] = _mm512_load_ps(out + r * ld + l0);
        for (int c = 0; c < nc; c++) {
            __m512 k0 = _mm512_load_ps(b + (size_t)c * ld + l0);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++)
                acc[r] = fma_bcast(acc[r], k0, p + r * NR + c);
        }
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++)
            _mm512_store_ps(out + r * ld + l0, acc[r]);
    }
}

static void tile_avx512(const nsx_bwd_tile *t)
{
    float *A = t->ptile, *dT = t->ptile + MR * NR;
    __m512 acc[MR][2];
    /* S, then A = exp(S - lse) on the allowed tuples (E4) */
    rows_by_panel(acc, t->uq, t->ldd, t->kt, t->ldk, t->d);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        const __m512 lse = _mm512_set1_ps(t->lse[r]);
        _mm512_store_ps(A + r * NR, exp_maskz((__mmask16)t->mask[r], _mm512_sub_ps(acc[r][0], lse)));
        _mm512_store_ps(A + r * NR + 16,
                        exp_maskz((__mmask16)(t->mask[r] >> 16), _mm512_sub_ps(acc[r][1], lse)));
    }
    /* dP (E7a), then dT = A (dP - Delta) (E7c), masked */
    if (t->sum) {
        const __m512 c0 = _mm512_loadu_ps(t->dpcol), c1 = _mm512_loadu_ps(t->dpcol + 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            __m512 rv = _mm512_set1_ps(t->dprow[r]);
            acc[r][0] = _mm512_add_ps(rv, c0);
            acc[r][1] = _mm512_add_ps(rv, c1);
        }
    } else {
        rows_by_panel(acc, t->dov, t->dvp, t->vt, t->ldk, t->dvp);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        for (int h = 0; h < 2; h++) {
            const __m512 delta = _mm512_set1_ps(t->delta[r]);
            __m512 a = _mm512_load_ps(A + r * NR + 16 * h);
            __m512 g = _mm512_maskz_mul_ps((__mmask16)(t->mask[r] >> (16 * h)), a,
                                           _mm512_sub_ps(acc[r][h], delta));
            _mm512_store_ps(dT + r * NR + 16 * h, g);
        }
    /* E7e inner keys, E7d/E7e prefix side */
    tile_t_by_rows(t->dkt, t->ldk, dT, t->uq, t->ldd, t->d);
    tile_by_keys(t->x, dT, t->kr, t->ldd, t->ldd, t->nc);
    if (t->sum) {
        __m512 c0 = _mm512_setzero_ps(), c1 = c0;
        for (int r = 0; r < MR; r++) {
            __m512 a0 = _mm512_load_ps(A + r * NR), a1 = _mm512_load_ps(A + r * NR + 16);
            c0 = _mm512_add_ps(c0, a0);
            c1 = _mm512_add_ps(c1, a1);
            t->rowa[r] += _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        }
        _mm512_storeu_ps(t->cola, _mm512_add_ps(_mm512_loadu_ps(t->cola), c0));
        _mm512_storeu_ps(t->cola + 16, _mm512_add_ps(_mm512_loadu_ps(t->cola + 16), c1));
        return;
    }
    /* E7f */
    tile_t_by_rows(t->dvt, t->ldk, A, t->dov, t->dvp, t->dvp);
    tile_by_keys(t->y, A, t->vr, t->dvp, t->dvp, t->nc);
}

const nsx_bwd_kernels nsx_bwd_kernels_avx512 = {
    .isa = NSX_ISA_AVX512, .mr = MR, .nr = NR, .tile = tile_avx512,
};
