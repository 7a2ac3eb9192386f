/*
 * The AVX2 indexer tile (simd/idx_kern.h): one query against a strip of 16
 * keys, heads 6 at a time: 12 ymm accumulators (6 heads x 2 vectors of 8
 * keys), two strip loads and six broadcasts per l, so the loop is FMA-bound.
 * The score vector stays in two registers across all the heads.
 */
#include <immintrin.h>

#include "simd/idx_kern.h"
#include "simd/indexer.h"
#include "simd/simd.h"

#if !defined(__AVX2__) || !defined(__FMA__) || defined(__AVX512F__)
#error "simd/idx_avx2.c must be compiled with -mavx2 -mfma (and without AVX-512)"
#endif

#define MR 6
#define NR 16

#include "simd/vmath_avx2.h" /* exp256: the forward's exp */

/* Heads h0 .. h0 + R - 1: their logits, then into s (or out to t->x). */
ALWAYS_INLINE void heads(const nsx_idx_tile *t, int h0, const int R, __m256 *s0, __m256 *s1)
{
    const int di = t->di;
    const float *q = t->q + (size_t)h0 * di;
    __m256 a[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
        a[r][0] = a[r][1] = _mm256_setzero_ps();
    for (int l = 0; l < di; l++) {
        __m256 k0 = _mm256_load_ps(t->kp + l * NR), k1 = _mm256_load_ps(t->kp + l * NR + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m256 b = _mm256_broadcast_ss(q + r * di + l);
            a[r][0] = _mm256_fmadd_ps(b, k0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(b, k1, a[r][1]);
        }
    }
    const __m256 sc = _mm256_set1_ps(t->scale), zero = _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        __m256 x0 = _mm256_mul_ps(sc, a[r][0]), x1 = _mm256_mul_ps(sc, a[r][1]);
        if (t->x) {
            _mm256_storeu_ps(t->x + (h0 + r) * NR, x0);
            _mm256_storeu_ps(t->x + (h0 + r) * NR + 8, x1);
            continue;
        }
        if (t->act == NSX_SIMD_ACT_RELU) {
            x0 = _mm256_max_ps(x0, zero);
            x1 = _mm256_max_ps(x1, zero);
        }
        __m256 w = _mm256_broadcast_ss(t->w + h0 + r);
        *s0 = _mm256_fmadd_ps(w, x0, *s0);
        *s1 = _mm256_fmadd_ps(w, x1, *s1);
    }
}

static void tile_avx2(const nsx_idx_tile *t)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int h = 0;
    for (; h + MR <= t->Hi; h += MR)
        heads(t, h, MR, &s0, &s1);
    switch (t->Hi - h) {
    case 5: heads(t, h, 5, &s0, &s1); break;
    case 4: heads(t, h, 4, &s0, &s1); break;
    case 3: heads(t, h, 3, &s0, &s1); break;
    case 2: heads(t, h, 2, &s0, &s1); break;
    case 1: heads(t, h, 1, &s0, &s1); break;
    default: break;
    }
    if (t->s) {
        _mm256_storeu_ps(t->s, s0);
        _mm256_storeu_ps(t->s + 8, s1);
    }
}

static uint32_t above_avx2(const float *s, int n, float thr)
{
    const __m256 th = _mm256_set1_ps(thr);
    uint32_t bits = 0;
    int c = 0;
    for (; c + 8 <= n; c += 8)
        bits |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + c), th, _CMP_GT_OQ)) << c;
    for (; c < n; c++)
        if (s[c] > thr)
            bits |= 1u << c;
    return bits;
}

static void exp_avx2(float *x, int len)
{
    int l = 0;
    for (; l + 8 <= len; l += 8)
        _mm256_storeu_ps(x + l, exp256(_mm256_loadu_ps(x + l)));
    if (l < len) {
        float buf[8] = {0};
        for (int e = 0; e < len - l; e++)
            buf[e] = x[l + e];
        _mm256_storeu_ps(buf, exp256(_mm256_loadu_ps(buf)));
        for (int e = 0; e < len - l; e++)
            x[l + e] = buf[e];
    }
}

const nsx_idx_kernels nsx_idx_kernels_avx2 = {
    .isa = NSX_ISA_AVX2, .nr = NR, .tile = tile_avx2, .above = above_avx2, .exp_nonpos = exp_avx2,
};
