/*
 * The AVX2 vector helpers of the forward and backward tiles and the
 * indexer's (simd/fwd_avx2.c, simd/bwd_avx2.c, simd/idx_avx2.c): one
 * definition of the exponential they use, so that the backward recomputes P
 * exactly as the forward weighted it.  Include only from a file compiled
 * with -mavx2 -mfma.
 */
#ifndef NSX_SIMD_VMATH_AVX2_H
#define NSX_SIMD_VMATH_AVX2_H

#include <immintrin.h>
#include <stdint.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Lanes 0..7 of the bit mask as all-ones / all-zeros lanes. */
ALWAYS_INLINE __m256 lane_mask(uint32_t bits)
{
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i b = _mm256_and_si256(_mm256_set1_epi32((int)bits), sel);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, sel));
}

/*
 * exp(x) for x <= 0 (Cephes expf, as in simd/fwd_avx512.c).  Without scalef,
 * 2^n is built in the exponent field, so x is clamped to -87.33 where 2^n is
 * still normal: below it the result is ~1e-38 instead of a smaller number,
 * an absolute error far below the largest weight, 1.  Masked lanes are
 * zeroed by the caller.
 */
ALWAYS_INLINE __m256 exp256(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-87.33654f), x); /* NaN in x stays NaN */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

ALWAYS_INLINE float hmax256(__m256 v)
{
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

ALWAYS_INLINE float hsum256(__m256 v)
{
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

#endif /* NSX_SIMD_VMATH_AVX2_H */
