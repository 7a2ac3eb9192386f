/*
 * The AVX-512 vector helpers of the forward and backward tiles and the
 * indexer's (simd/fwd_avx512.c, simd/bwd_avx512.c, simd/idx_avx512.c): one
 * definition of the exponential they use, so that the backward recomputes
 * P exactly as the forward weighted it.  Include only from a file compiled
 * with the AVX-512 flags.
 */
#ifndef NSX_SIMD_VMATH_AVX512_H
#define NSX_SIMD_VMATH_AVX512_H

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/*
 * exp(x) for x <= 0 (and -inf) in the lanes of keep, 0 elsewhere:
 * exp(x) = 2^t, t = x log2(e) = n + f with n = round(t), |f| <= 1/2 (f is
 * exact), 2^f by a degree-6 near-minimax polynomial (1.3 ulp in float32
 * Horner), then 2^n by scalef, which also underflows gracefully to 0.  The
 * rounding of t costs a relative 2u|x|, as large as the rounding of the
 * argument x = T - m already is, so it adds nothing new to the error bound
 * (tests/test_simd.c).  Below -104, exp(x) rounds to 0 in binary32, so the
 * clamp only stops -inf from becoming inf - inf = NaN.
 */
ALWAYS_INLINE __m512 exp_maskz(__mmask16 keep, __m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x); /* NaN in x stays NaN */
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.5345810970757157e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3399930903688073e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618489071726799e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550328642129898e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022646248340607e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471824645996e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, n);
}

/* acc + x * broadcast(*p), the broadcast folded into the FMA's memory
   operand ({1to16}): GCC hoists a broadcast that feeds two FMAs into its own
   instruction, which costs the tile's inner loops a third of their
   instructions. */
ALWAYS_INLINE __m512 fma_bcast(__m512 acc, __m512 x, const float *p)
{
    __asm__("vfmadd231ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(x), "m"(*p));
    return acc;
}

#endif /* NSX_SIMD_VMATH_AVX512_H */
