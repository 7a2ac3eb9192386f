/*
 * The AVX512_BF16 tile (simd/bf16.h): 8 prefix rows by 32 inner keys, as
 * fwd_avx512.c's, with both GEMMs on VDPBF16PS.
 *
 * Scores: 16 zmm accumulators (8 rows x 2 vectors of 16 keys); per pair
 * of l, two panel loads (32 keys x 2 bf16) and sixteen VDPBF16PS, each
 * against the row's pair broadcast: two products per lane per instruction,
 * twice the FMA path's, from half the panel bytes.  simd/bf16_portable.c
 * performs the same arithmetic in C (tests/test_bf16.c compares them bit
 * for bit where this CPU runs).  After the scores the tile is
 * fwd_avx512.c's (a deliberate copy: the masked online softmax,
 * vmath_avx512.h's exp), but for the product reducer's value side: the
 * weights rounded to bf16 by VCVTNE2PS2BF16, then the same VDPBF16PS
 * chain over pairs of keys against the V panel's bf16 pairs (vpan2).
 */
#include <immintrin.h>
#include <math.h>

#include "simd/bf16.h"

#if !defined(__AVX512BF16__) || !defined(__AVX512F__) || !defined(__AVX512BW__) || \
    !defined(__AVX512DQ__) || !defined(__AVX512VL__) || !defined(__FMA__)
#error "simd/bf16_avx512bf16.c must be compiled with -mavx512bf16 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#define MR 8
#define NR 32
#include "simd/vmath_avx512.h"

/* acc + VDPBF16PS(k, broadcast(*p)), the broadcast folded into the
   instruction's memory operand ({1to16}), as vmath_avx512.h's fma_bcast
   does for the FMA: GCC otherwise hoists it into its own instruction. */
ALWAYS_INLINE __m512 dp_bcast(__m512 acc, __m512bh k, const uint32_t *p)
{
    __asm__("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(k), "m"(*p));
    return acc;
}

/* s[r][h] = the VDPBF16PS chain of u[r] against kp's keys 16h .. 16h+15,
   for H halves (1 or 2). */
ALWAYS_INLINE void scores(const nsx_bf16_tile *t, __m512 s[MR][2], const int H)
{
    const int d2 = t->d2, ldk = t->ldk;
    const uint32_t *u = t->u, *kp = t->kp;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        s[r][0] = s[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < d2; p++) {
        const uint32_t *k = kp + (size_t)p * ldk;
        __m512bh k0 = (__m512bh)_mm512_loadu_si512(k);
        __m512bh k1 = H == 2 ? (__m512bh)_mm512_loadu_si512(k + 16) : k0;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            s[r][0] = dp_bcast(s[r][0], k0, u + r * d2 + p);
            if (H == 2)
                s[r][1] = dp_bcast(s[r][1], k1, u + r * d2 + p);
        }
    }
}

/* acc[x0 .. x0 + 16V) += sum_r vp[r] o (P[r, 0..nc) vpan[0..nc)), V = 1 or 2:
   the weights as bf16 pairs of keys, Pw [MR][NR / 2] (in t->ptile), the
   VDPBF16PS chain over the key pairs against vpan2. */
ALWAYS_INLINE void values(const nsx_bf16_tile *t, float *acc, int x0, const int V)
{
    const int dvp = t->dvp, np = (t->nc + 1) / 2;
    const uint32_t *Pw = (const uint32_t *)t->ptile, *vpan = t->vpan2 + x0;
    __m512 a[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        a[r][0] = a[r][1] = _mm512_setzero_ps();
    for (int p = 0; p < np; p++) {
        const uint32_t *v = vpan + (size_t)p * dvp;
        __m512bh v0 = (__m512bh)_mm512_loadu_si512(v);
        __m512bh v1 = V == 2 ? (__m512bh)_mm512_loadu_si512(v + 16) : v0;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            a[r][0] = dp_bcast(a[r][0], v0, Pw + r * (NR / 2) + p);
            if (V == 2)
                a[r][1] = dp_bcast(a[r][1], v1, Pw + r * (NR / 2) + p);
        }
    }
    __m512 o0 = _mm512_loadu_ps(acc + x0);
    __m512 o1 = V == 2 ? _mm512_loadu_ps(acc + x0 + 16) : o0;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        const float *vp = t->vp + (size_t)r * dvp + x0;
        o0 = _mm512_fmadd_ps(_mm512_load_ps(vp), a[r][0], o0);
        if (V == 2)
            o1 = _mm512_fmadd_ps(_mm512_load_ps(vp + 16), a[r][1], o1);
    }
    _mm512_storeu_ps(acc + x0, o0);
    if (V == 2)
        _mm512_storeu_ps(acc + x0 + 16, o1);
}

ALWAYS_INLINE void tile_body(const nsx_bf16_tile *t, nsx_row_state *st, const int H)
{
    __m512 s[MR][2];
    scores(t, s, H);
    __m512 vmax = _mm512_set1_ps(-INFINITY);
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
        } else { /* the row's 32 weights as bf16, keys in order: 16 pairs */
            __m512bh w = _mm512_cvtne2ps_pbh(p1, p0);
            _mm512_store_si512((void *)((uint32_t *)t->ptile + r * (NR / 2)), (__m512i)w);
        }
    }
    st->sum += _mm512_reduce_add_ps(psum);
    const int dvp = t->dvp;
    if (t->sum) {
        for (int x = 0; x < dvp; x += 16) {
            __m512 o = _mm512_loadu_ps(st->acc + x);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++)
                o = _mm512_fmadd_ps(_mm512_set1_ps(rowsum[r]), _mm512_load_ps(t->vp + r * dvp + x), o);
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

static void tile_avx512bf16(const nsx_bf16_tile *t, nsx_row_state *st)
{
    if (t->nc > 16)
        tile_body(t, st, 2);
    else
        tile_body(t, st, 1);
}

/* Lane 0 of the 128-bit VDPBF16PS, one pair at a time. */
static float dot_avx512bf16(const uint32_t *a, const uint32_t *b, int d2)
{
    __m128 acc = _mm_setzero_ps();
    for (int p = 0; p < d2; p++)
        acc = _mm_dpbf16_ps(acc, (__m128bh)_mm_cvtsi32_si128((int)a[p]),
                            (__m128bh)_mm_cvtsi32_si128((int)b[p]));
    return _mm_cvtss_f32(acc);
}

const nsx_bf16_kernels nsx_bf16_avx512bf16 = {
    .variant = NSX_BF16_AVX512BF16, .mr = MR, .nr = NR, .tile = tile_avx512bf16,
    .dot = dot_avx512bf16,
};
