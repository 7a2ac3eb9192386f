/*
 * The AVX2 tile (simd/kern.h): 6 prefix rows by 16 inner keys, 12 ymm
 * accumulators plus two panel vectors and one broadcast, within the 16 ymm
 * registers.  The same structure as simd/fwd_avx512.c; masks are lane masks
 * built from the bit masks, and masked tuples are zeroed by an AND.
 */
#include <immintrin.h>
#include <math.h>

#include "simd/kern.h"
#include "simd/simd.h"

#if !defined(__AVX2__) || !defined(__FMA__) || defined(__AVX512F__)
#error "simd/fwd_avx2.c must be compiled with -mavx2 -mfma (and without AVX-512)"
#endif

#define MR 6
#define NR 16

#include "simd/vmath_avx2.h"

/* acc[x0 .. x0 + 16) += sum_r vp[r] o (P[r, 0..nc) vpan[0..nc)). */
ALWAYS_INLINE void values(const nsx_tile *t, float *acc, int x0)
{
    const int dvp = t->dvp;
    const float *P = t->ptile, *vpan = t->vpan + x0;
    __m256 a[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        a[r][0] = a[r][1] = _mm256_setzero_ps();
    for (int c = 0; c < t->nc; c++) {
        const float *v = vpan + (size_t)c * dvp;
        __m256 v0 = _mm256_load_ps(v), v1 = _mm256_load_ps(v + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 b = _mm256_broadcast_ss(P + r * NR + c);
            a[r][0] = _mm256_fmadd_ps(b, v0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(b, v1, a[r][1]);
        }
    }
    __m256 o0 = _mm256_loadu_ps(acc + x0), o1 = _mm256_loadu_ps(acc + x0 + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        const float *vp = t->vp[r] + x0;
        o0 = _mm256_fmadd_ps(_mm256_loadu_ps(vp), a[r][0], o0);
        o1 = _mm256_fmadd_ps(_mm256_loadu_ps(vp + 8), a[r][1], o1);
    }
    _mm256_storeu_ps(acc + x0, o0);
    _mm256_storeu_ps(acc + x0 + 8, o1);
}

static void tile_avx2(const nsx_tile *t, nsx_row_state *st)
{
    const int d = t->d, ldk = t->ldk, dvp = t->dvp;
    __m256 s[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
        s[r][0] = s[r][1] = _mm256_setzero_ps();
    for (int l = 0; l < d; l++) {
        const float *k = t->kp + (size_t)l * ldk;
        __m256 k0 = _mm256_load_ps(k), k1 = _mm256_load_ps(k + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 a = _mm256_broadcast_ss(t->u[r] + l);
            s[r][0] = _mm256_fmadd_ps(a, k0, s[r][0]);
            s[r][1] = _mm256_fmadd_ps(a, k1, s[r][1]);
        }
    }
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mk[MR][2], vmax = ninf;
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        mk[r][0] = lane_mask(t->mask[r]);
        mk[r][1] = lane_mask(t->mask[r] >> 8);
        vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, s[r][0], mk[r][0]));
        vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, s[r][1], mk[r][1]));
    }
    const float tmax = hmax256(vmax);
    if (tmax == -INFINITY) /* every tuple of the tile is masked */
        return;
    if (tmax > st->m)
        nsx_row_state_rescale(st, tmax);
    const __m256 m = _mm256_set1_ps(st->m);
    __m256 psum = _mm256_setzero_ps(), col0 = psum, col1 = psum;
    float rowsum[MR] = {0};
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        __m256 p0 = _mm256_and_ps(mk[r][0], exp256(_mm256_sub_ps(s[r][0], m)));
        __m256 p1 = _mm256_and_ps(mk[r][1], exp256(_mm256_sub_ps(s[r][1], m)));
        __m256 both = _mm256_add_ps(p0, p1);
        psum = _mm256_add_ps(psum, both);
        if (t->sum) {
            rowsum[r] = hsum256(both);
            col0 = _mm256_add_ps(col0, p0);
            col1 = _mm256_add_ps(col1, p1);
        } else {
            _mm256_store_ps(t->ptile + r * NR, p0);
            _mm256_store_ps(t->ptile + r * NR + 8, p1);
        }
    }
    st->sum += hsum256(psum);
    if (t->sum) {
        for (int x = 0; x < dvp; x += 8) {
            __m256 o = _mm256_loadu_ps(st->acc + x);
#pragma GCC unroll 6
            for (int r = 0; r < MR; r++)
                o = _mm256_fmadd_ps(_mm256_set1_ps(rowsum[r]), _mm256_loadu_ps(t->vp[r] + x), o);
            _mm256_storeu_ps(st->acc + x, o);
        }
        float col[NR];
        _mm256_storeu_ps(col, col0);
        _mm256_storeu_ps(col + 8, col1);
        for (int c = 0; c < t->nc; c++)
            t->colacc[c] += col[c];
        return;
    }
    for (int x = 0; x < dvp; x += 16)
        values(t, st->acc, x);
}

static void mul_bias_avx2(float *dst, const float *a, const float *x, float bias, int len)
{
    const __m256 b = _mm256_set1_ps(bias);
    int l = 0;
    for (; l + 8 <= len; l += 8)
        _mm256_storeu_ps(dst + l, _mm256_mul_ps(_mm256_loadu_ps(a + l),
                                                _mm256_add_ps(_mm256_loadu_ps(x + l), b)));
    for (; l < len; l++)
        dst[l] = a[l] * (x[l] + bias);
}

static void add_bias_avx2(float *dst, const float *a, const float *x, float bias, int len)
{
    const __m256 b = _mm256_set1_ps(bias);
    int l = 0;
    for (; l + 8 <= len; l += 8) {
        __m256 y = _mm256_add_ps(_mm256_loadu_ps(x + l), b);
        _mm256_storeu_ps(dst + l, a ? _mm256_add_ps(_mm256_loadu_ps(a + l), y) : y);
    }
    for (; l < len; l++)
        dst[l] = a ? a[l] + (x[l] + bias) : x[l] + bias;
}

static void scale_avx2(float *dst, const float *x, float s, int len)
{
    const __m256 f = _mm256_set1_ps(s);
    int l = 0;
    for (; l + 8 <= len; l += 8)
        _mm256_storeu_ps(dst + l, _mm256_mul_ps(f, _mm256_loadu_ps(x + l)));
    for (; l < len; l++)
        dst[l] = s * x[l];
}

static void exp_avx2(float *x, int len)
{
    int l0 = 0; /* whole vectors in place; the tail through a buffer */
    for (; l0 + 8 <= len; l0 += 8)
        _mm256_storeu_ps(x + l0, exp256(_mm256_loadu_ps(x + l0)));
    for (int l = l0; l < len; l += 8) {
        float buf[8] = {0};
        int k = len - l < 8 ? len - l : 8;
        for (int e = 0; e < k; e++)
            buf[e] = x[l + e];
        _mm256_storeu_ps(buf, exp256(_mm256_loadu_ps(buf)));
        for (int e = 0; e < k; e++)
            x[l + e] = buf[e];
    }
}

const nsx_isa_kernels nsx_kernels_avx2 = {
    .isa = NSX_ISA_AVX2, .mr = MR, .nr = NR,
    .tile = tile_avx2, .mul_bias = mul_bias_avx2, .add_bias = add_bias_avx2,
    .scale = scale_avx2, .exp_nonpos = exp_avx2,
};
