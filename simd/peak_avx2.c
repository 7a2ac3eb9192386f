/* Peak FMA throughput, AVX2 (simd/peak.c). */
#include <assert.h>
#include <immintrin.h>
#include <stdint.h>

#include "simd/peak.h"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "simd/peak_avx2.c must be compiled with -mavx2 -mfma"
#endif

/* 12 independent chains: 4-cycle latency x 2 FMA pipes x margin. */
double nsx_peak_fma_avx2(uint64_t iters)
{
    assert(iters >= 1);
    __m256 a[12];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++)
        a[k] = _mm256_set1_ps((float)k);
    for (uint64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++)
            a[k] = _mm256_fmadd_ps(a[k], x, y);
    }
    __m256 s = a[0];
    for (int k = 1; k < 12; k++)
        s = _mm256_add_ps(s, a[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    for (int k = 0; k < 8; k++)
        nsx_peak_sink += out[k];
    return (double)iters * 12 * 8 * 2;
}
