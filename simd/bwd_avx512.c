/*
 * The AVX-512 backward tile (simd/bwd_kern.h): 8 prefix rows by 32 inner
 * keys (simd/bwd_kern.inc), 16 zmm accumulators plus two operand vectors;
 * broadcasts fold into the FMA's memory operand (fma_bcast).  Masks are
 * mask registers, so masked tuples get exactly 0 and never a NaN.
 */
#include <immintrin.h>
#include <stdint.h>

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "simd/bwd_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#include "simd/vmath_avx512.h"

#define MR 8
#define NR 32
#define BW 16
#define BWD_TABLE nsx_bwd_kernels_avx512
#define BWD_ISA NSX_ISA_AVX512
typedef __m512 bvec;

ALWAYS_INLINE bvec bv_zero(void) { return _mm512_setzero_ps(); }
ALWAYS_INLINE bvec bv_set1(float x) { return _mm512_set1_ps(x); }
ALWAYS_INLINE bvec bv_load(const float *p) { return _mm512_load_ps(p); }
ALWAYS_INLINE bvec bv_loadu(const float *p) { return _mm512_loadu_ps(p); }
ALWAYS_INLINE void bv_store(float *p, bvec v) { _mm512_store_ps(p, v); }
ALWAYS_INLINE void bv_storeu(float *p, bvec v) { _mm512_storeu_ps(p, v); }
ALWAYS_INLINE bvec bv_add(bvec a, bvec b) { return _mm512_add_ps(a, b); }
ALWAYS_INLINE bvec bv_sub(bvec a, bvec b) { return _mm512_sub_ps(a, b); }
ALWAYS_INLINE float bv_hsum(bvec v) { return _mm512_reduce_add_ps(v); }
ALWAYS_INLINE bvec bv_fma_bcast(bvec acc, bvec v, const float *p) { return fma_bcast(acc, v, p); }

ALWAYS_INLINE bvec bv_exp_maskz(uint32_t bits, bvec x)
{
    return exp_maskz((__mmask16)bits, x);
}

ALWAYS_INLINE bvec bv_maskz_mul(uint32_t bits, bvec a, bvec b)
{
    return _mm512_maskz_mul_ps((__mmask16)bits, a, b);
}

#include "simd/bwd_kern.inc"
