/* Per-ISA FMA loops for nsx_simd_peak_gflops (simd/peak.c). */
#ifndef NSX_SIMD_PEAK_H
#define NSX_SIMD_PEAK_H

#include <stdint.h>

/* Results land here so that the chains are not optimized away. */
extern volatile float nsx_peak_sink;

/* Run `iters` rounds of independent FMA chains; return the flops done.
   Pre (asserted): iters >= 1. */
double nsx_peak_fma_avx512(uint64_t iters);
double nsx_peak_fma_avx2(uint64_t iters);

#endif
