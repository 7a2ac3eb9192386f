/* Peak FMA throughput, AVX-512 (simd/peak.c). */
#include <assert.h>
#include <immintrin.h>
#include <stdint.h>

#include "simd/peak.h"

#if !defined(__AVX512F__) || !defined(__FMA__)
#error "simd/peak_avx512.c must be compiled with -mavx512f -mfma"
#endif

/* 12 independent chains: 4-cycle latency x up to 2 FMA pipes x margin. */
double nsx_peak_fma_avx512(uint64_t iters)
{
    assert(iters >= 1);
    __m512 a[12];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++)
        a[k] = _mm512_set1_ps((float)k);
    for (uint64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++)
            a[k] = _mm512_fmadd_ps(a[k], x, y);
    }
    __m512 s = a[0];
    for (int k = 1; k < 12; k++)
        s = _mm512_add_ps(s, a[k]);
    nsx_peak_sink += _mm512_reduce_add_ps(s);
    return (double)iters * 12 * 16 * 2;
}
