/*
 * The AVX-512 tile (simd/kern.h): 8 prefix rows by 32 inner keys.
 *
 * Scores: 16 zmm accumulators (8 rows x 2 vectors of 16 keys); per l, two
 * panel loads and eight broadcast FMAs (the broadcast folds into the FMA's
 * memory operand), so the loop is FMA-bound.  Values: P [8][32] goes through
 * a small aligned buffer and is broadcast against 2 zmm of the V panel per
 * key, again 16 accumulators; then acc += vp[r] o r[r].  Masks are mask
 * registers, so masked tuples get exactly 0 and never a NaN.
 */
#include <immintrin.h>
#include <math.h>

#include "simd/kern.h"
#include "simd/simd.h"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "simd/fwd_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#define MR 8
#define NR 32
#include "simd/vmath_avx512.h"

/* s[r][h] = sum_l u[r][l] kp[l][16h .. 16h+15], for H halves (1 or 2). */
ALWAYS_INLINE void scores(const nsx_tile *t, __m512 s[MR][2], const int H)
{
    const int d = t->d, ldk = t->ldk;
    const float *kp = t->kp, *u[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        u[r] = t->u[r];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        s[r][0] = s[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int l = 0; l < d; l++) {
        const float *k = kp + (size_t)l * ldk;
        __m512 k0 = _mm512_load_ps(k), k1 = H == 2 ? _mm512_load_ps(k + 16) : k0;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            s[r][0] = fma_bcast(s[r][0], k0, u[r] + l);
            if (H == 2)
                s[r][1] = fma_bcast(s[r][1], k1, u[r] + l);
        }
    }
}

/* acc[x0 .. x0 + 16V) += sum_r vp[r] o (P[r, 0..nc) vpan[0..nc)), V = 1 or 2. */
ALWAYS_INLINE void values(const nsx_tile *t, float *acc, int x0, const int V)
{
    const int dvp = t->dvp;
    const float *P = t->ptile, *vpan = t->vpan + x0;
    __m512 a[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int c = 0; c < t->nc; c++) {
        const float *v = vpan + (size_t)c * dvp;
        __m512 v0 = _mm512_load_ps(v), v1 = V == 2 ? _mm512_load_ps(v + 16) : v0;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            a[r][0] = fma_bcast(a[r][0], v0, P + r * NR + c);
            if (V == 2)
                a[r][1] = fma_bcast(a[r][1], v1, P + r * NR + c);
        }
    }
    __m512 o0 = _mm512_loadu_ps(acc + x0);
    __m512 o1 = V == 2 ? _mm512_loadu_ps(acc + x0 + 16) : o0;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        const float *vp = t->vp[r] + x0;
        o0 = _mm512_fmadd_ps(_mm512_loadu_ps(vp), a[r][0], o0);
        if (V == 2)
            o1 = _mm512_fmadd_ps(_mm512_loadu_ps(vp + 16), a[r][1], o1);
    }
    _mm512_storeu_ps(acc + x0, o0);
    if (V == 2)
        _mm512_storeu_ps(acc + x0 + 16, o1);
}

ALWAYS_INLINE void tile_body(const nsx_tile *t, nsx_row_state *st, const int H)
{
    __m512 s[MR][2];
    scores(t, s, H);
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 vmax = ninf;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        vmax = _mm512_mask_max_ps(vmax, (__mmask16)t->mask[r], vmax, s[r][0]);
        if (H == 2)
            vmax = _mm512_mask_max_ps(vmax, (__mmask16)(t->mask[r] >> 16), vmax, s[r][1]);
    }
    const float tmax = _mm512_reduce_max_ps(vmax);
    if (tmax == -INFINITY) /* every tuple of the tile is masked */
        return;
    if (tmax > st->m)
        nsx_row_state_rescale(st, tmax);
    const __m512 m = _mm512_set1_ps(st->m);
    __m512 psum = _mm512_setzero_ps(), col0 = psum, col1 = psum;
    float rowsum[MR] = {0};
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        __m512 p0 = exp_maskz((__mmask16)t->mask[r], _mm512_sub_ps(s[r][0], m));
        __m512 p1 = H == 2 ? exp_maskz((__mmask16)(t->mask[r] >> 16), _mm512_sub_ps(s[r][1], m))
                           : _mm512_setzero_ps();
        __m512 both = _mm512_add_ps(p0, p1);
        psum = _mm512_add_ps(psum, both);
        if (t->sum) {
            rowsum[r] = _mm512_reduce_add_ps(both);
            col0 = _mm512_add_ps(col0, p0);
            col1 = _mm512_add_ps(col1, p1);
        } else {
            _mm512_store_ps(t->ptile + r * NR, p0);
            _mm512_store_ps(t->ptile + r * NR + 16, p1);
        }
    }
    st->sum += _mm512_reduce_add_ps(psum);
    const int dvp = t->dvp;
    if (t->sum) {
        /* acc += rowsum[r] vp[r]; colacc += the column sums. */
        for (int x = 0; x < dvp; x += 16) {
            __m512 o = _mm512_loadu_ps(st->acc + x);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++)
                o = _mm512_fmadd_ps(_mm512_set1_ps(rowsum[r]), _mm512_loadu_ps(t->vp[r] + x), o);
            _mm512_storeu_ps(st->acc + x, o);
        }
        __mmask16 k0 = (__mmask16)(t->nc >= 16 ? 0xffff : (1u << t->nc) - 1u);
        __mmask16 k1 = (__mmask16)(t->nc >= 32 ? 0xffff : t->nc > 16 ? (1u << (t->nc - 16)) - 1u : 0u);
        _mm512_mask_storeu_ps(t->colacc, k0, _mm512_add_ps(_mm512_maskz_loadu_ps(k0, t->colacc), col0));
        _mm512_mask_storeu_ps(t->colacc + 16, k1,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(k1, t->colacc + 16), col1));
        return;
    }
    int x = 0;
    for (; x + 32 <= dvp; x += 32)
        values(t, st->acc, x, 2);
    if (x < dvp)
        values(t, st->acc, x, 1);
}

static void tile_avx512(const nsx_tile *t, nsx_row_state *st)
{
    /* Keys 17..32 need both halves; up to 16 keys, half the FMAs suffice. */
    if (t->nc > 16)
        tile_body(t, st, 2);
    else
        tile_body(t, st, 1);
}

static void mul_bias_avx512(float *dst, const float *a, const float *x, float bias, int len)
{
    const __m512 b = _mm512_set1_ps(bias);
    for (int l = 0; l < len; l += 16) {
        __mmask16 k = (__mmask16)(len - l >= 16 ? 0xffff : (1u << (len - l)) - 1u);
        __m512 y = _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + l), b);
        _mm512_mask_storeu_ps(dst + l, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, a + l), y));
    }
}

static void add_bias_avx512(float *dst, const float *a, const float *x, float bias, int len)
{
    const __m512 b = _mm512_set1_ps(bias);
    for (int l = 0; l < len; l += 16) {
        __mmask16 k = (__mmask16)(len - l >= 16 ? 0xffff : (1u << (len - l)) - 1u);
        __m512 y = _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + l), b);
        _mm512_mask_storeu_ps(dst + l, k, a ? _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + l), y) : y);
    }
}

static void scale_avx512(float *dst, const float *x, float s, int len)
{
    const __m512 f = _mm512_set1_ps(s);
    for (int l = 0; l < len; l += 16) {
        __mmask16 k = (__mmask16)(len - l >= 16 ? 0xffff : (1u << (len - l)) - 1u);
        _mm512_mask_storeu_ps(dst + l, k, _mm512_mul_ps(f, _mm512_maskz_loadu_ps(k, x + l)));
    }
}

static void exp_avx512(float *x, int len)
{
    for (int l = 0; l < len; l += 16) {
        __mmask16 k = (__mmask16)(len - l >= 16 ? 0xffff : (1u << (len - l)) - 1u);
        _mm512_mask_storeu_ps(x + l, k, exp_maskz(k, _mm512_maskz_loadu_ps(k, x + l)));
    }
}

const nsx_isa_kernels nsx_kernels_avx512 = {
    .isa = NSX_ISA_AVX512, .mr = MR, .nr = NR,
    .tile = tile_avx512, .mul_bias = mul_bias_avx512, .add_bias = add_bias_avx512,
    .scale = scale_avx512, .exp_nonpos = exp_avx512,
};
