/*
 * The AVX2 backward tile (simd/bwd_kern.h): 6 prefix rows by 16 inner keys
 * (simd/bwd_kern.inc), 12 ymm accumulators plus two operand vectors and
 * one broadcast within the 16 ymm registers.  Masked tuples are zeroed by
 * an AND (so never NaN); exp is the forward's.
 */
#include <immintrin.h>
#include <stdint.h>

#if !defined(__AVX2__) || !defined(__FMA__) || defined(__AVX512F__)
#error "simd/bwd_avx2.c must be compiled with -mavx2 -mfma (and without AVX-512)"
#endif

#include "simd/vmath_avx2.h"

#define MR 6
#define NR 16
#define BW 8
#define BWD_TABLE nsx_bwd_kernels_avx2
#define BWD_ISA NSX_ISA_AVX2
typedef __m256 bvec;

ALWAYS_INLINE bvec bv_zero(void) { return _mm256_setzero_ps(); }
ALWAYS_INLINE bvec bv_set1(float x) { return _mm256_set1_ps(x); }
ALWAYS_INLINE bvec bv_load(const float *p) { return _mm256_load_ps(p); }
ALWAYS_INLINE bvec bv_loadu(const float *p) { return _mm256_loadu_ps(p); }
ALWAYS_INLINE void bv_store(float *p, bvec v) { _mm256_store_ps(p, v); }
ALWAYS_INLINE void bv_storeu(float *p, bvec v) { _mm256_storeu_ps(p, v); }
ALWAYS_INLINE bvec bv_add(bvec a, bvec b) { return _mm256_add_ps(a, b); }
ALWAYS_INLINE bvec bv_sub(bvec a, bvec b) { return _mm256_sub_ps(a, b); }
ALWAYS_INLINE float bv_hsum(bvec v) { return hsum256(v); }

ALWAYS_INLINE bvec bv_fma_bcast(bvec acc, bvec v, const float *p)
{
    return _mm256_fmadd_ps(_mm256_broadcast_ss(p), v, acc);
}

ALWAYS_INLINE bvec bv_exp_maskz(uint32_t bits, bvec x)
{
    return _mm256_and_ps(lane_mask(bits), exp256(x));
}

ALWAYS_INLINE bvec bv_maskz_mul(uint32_t bits, bvec a, bvec b)
{
    return _mm256_and_ps(lane_mask(bits), _mm256_mul_ps(a, b));
}

#include "simd/bwd_kern.inc"
