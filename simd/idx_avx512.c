/*
 * The AVX-512 indexer tile (simd/idx_kern.h): one query against a strip of
 * 32 keys, heads 8 at a time: 16 zmm accumulators (8 heads x 2 vectors of 16
 * keys), two strip loads and eight broadcasts per l.  Same structure as
 * simd/idx_avx2.c.
 */
#include <immintrin.h>

#include "simd/idx_kern.h"
#include "simd/indexer.h"
#include "simd/simd.h"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "simd/idx_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#define MR 8
#define NR 32

#include "simd/vmath_avx512.h" /* exp_maskz: the forward's exp */

/* Heads h0 .. h0 + R - 1: their logits, then into s (or out to t->x). */
ALWAYS_INLINE void heads(const nsx_idx_tile *t, int h0, const int R, __m512 *s0, __m512 *s1)
{
    const int di = t->di;
    const float *q = t->q + (size_t)h0 * di;
    __m512 a[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int l = 0; l < di; l++) {
        __m512 k0 = _mm512_load_ps(t->kp + l * NR), k1 = _mm512_load_ps(t->kp + l * NR + 16);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(q[r * di + l]);
            a[r][0] = _mm512_fmadd_ps(b, k0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(b, k1, a[r][1]);
        }
    }
    const __m512 sc = _mm512_set1_ps(t->scale), zero = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        __m512 x0 = _mm512_mul_ps(sc, a[r][0]), x1 = _mm512_mul_ps(sc, a[r][1]);
        if (t->x) {
            _mm512_storeu_ps(t->x + (h0 + r) * NR, x0);
            _mm512_storeu_ps(t->x + (h0 + r) * NR + 16, x1);
            continue;
        }
        if (t->act == NSX_SIMD_ACT_RELU) {
            x0 = _mm512_max_ps(x0, zero);
            x1 = _mm512_max_ps(x1, zero);
        }
        __m512 w = _mm512_set1_ps(t->w[h0 + r]);
        *s0 = _mm512_fmadd_ps(w, x0, *s0);
        *s1 = _mm512_fmadd_ps(w, x1, *s1);
    }
}

static void tile_avx512(const nsx_idx_tile *t)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int h = 0;
    for (; h + MR <= t->Hi; h += MR)
        heads(t, h, MR, &s0, &s1);
    switch (t->Hi - h) {
    case 7: heads(t, h, 7, &s0, &s1); break;
    case 6: heads(t, h, 6, &s0, &s1); break;
    case 5: heads(t, h, 5, &s0, &s1); break;
    case 4: heads(t, h, 4, &s0, &s1); break;
    case 3: heads(t, h, 3, &s0, &s1); break;
    case 2: heads(t, h, 2, &s0, &s1); break;
    case 1: heads(t, h, 1, &s0, &s1); break;
    default: break;
    }
    if (t->s) {
        _mm512_storeu_ps(t->s, s0);
        _mm512_storeu_ps(t->s + 16, s1);
    }
}

static uint32_t above_avx512(const float *s, int n, float thr)
{
    const __m512 th = _mm512_set1_ps(thr);
    uint32_t bits = 0;
    for (int c = 0; c < n; c += 16) {
        __mmask16 k = (__mmask16)(n - c >= 16 ? 0xffff : (1u << (n - c)) - 1u);
        bits |= (uint32_t)_mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, s + c), th, _CMP_GT_OQ) << c;
    }
    return bits;
}

static void exp_avx512(float *x, int len)
{
    for (int l = 0; l < len; l += 16) {
        __mmask16 k = (__mmask16)(len - l >= 16 ? 0xffff : (1u << (len - l)) - 1u);
        _mm512_mask_storeu_ps(x + l, k, exp_maskz(k, _mm512_maskz_loadu_ps(k, x + l)));
    }
}

const nsx_idx_kernels nsx_idx_kernels_avx512 = {
    .isa = NSX_ISA_AVX512, .nr = NR, .tile = tile_avx512, .above = above_avx512, .exp_nonpos = exp_avx512,
};
