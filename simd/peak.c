/*
 * The machine's peak float32 FMA throughput (simd/simd.h): every thread runs
 * independent FMA chains of the ISA's widest vectors at once, so the figure
 * is the all-core one, at the clock the cores hold under that load.
 */
#include <assert.h>
#include <omp.h>
#include <stdint.h>

#include "simd/peak.h"
#include "simd/simd.h"

volatile float nsx_peak_sink;

/* Plain C for the scalar path: 8 independent multiply-add chains. */
static double peak_scalar(uint64_t iters)
{
    float a[8];
    for (int k = 0; k < 8; k++)
        a[k] = (float)k;
    for (uint64_t it = 0; it < iters; it++)
        for (int k = 0; k < 8; k++)
            a[k] = a[k] * 0.999999f + 1e-7f;
    for (int k = 0; k < 8; k++)
        nsx_peak_sink += a[k];
    return (double)iters * 8 * 2;
}

static double run(int isa, uint64_t iters)
{
    switch (isa) {
    case NSX_ISA_AVX512:
        return nsx_peak_fma_avx512(iters);
    case NSX_ISA_AVX2:
        return nsx_peak_fma_avx2(iters);
    default:
        return peak_scalar(iters);
    }
}

/* GFLOP/s of all T threads running `iters` rounds each; *secs: the time. */
static double trial(int isa, int T, uint64_t iters, double *secs)
{
    double flops = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(T) reduction(+ : flops)
    flops += run(isa, iters);
    *secs = omp_get_wtime() - t0;
    return flops / *secs * 1e-9;
}

double nsx_simd_peak_gflops(int isa, int threads, double seconds)
{
    assert(seconds >= 0 && seconds <= 3600);
    if (!nsx_simd_isa_supported(isa))
        return 0;
    const int T = nsx_simd_threads(threads);
    /* Warm-up (the clock settles under load) with growing trials; a trial is
       then sized from the best rate seen, not from one trial's time, which a
       preemption can stretch. */
    uint64_t iters = 1u << 12;
    double secs, g, best = 0;
    for (;;) {
        g = trial(isa, T, iters, &secs);
        if (g > best)
            best = g;
        if (secs >= seconds / 4 || iters >= (1ull << 40))
            break;
        iters *= 4;
    }
    const double gflop_per_iter = g * secs / (double)iters;
    uint64_t sized = (uint64_t)(seconds * best / gflop_per_iter) + 1;
    if (sized > iters)
        iters = sized;
    best = 0;
    for (int k = 0; k < 3; k++) {
        double g = trial(isa, T, iters, &secs);
        if (g > best)
            best = g;
    }
    return best;
}
