/*
 * n = 1 throughput per CPU-second, one thread: the SIMD forward's useful
 * GFLOP/s and an FMA peak (12 chains of 8-lane FMAs), both timed with the
 * thread's CPU clock, so that a machine shared with other jobs (where
 * `nsimplex bench`'s wall-clock figures and its peak move with the load)
 * still gives a share of peak.  It cannot see what the other jobs take from
 * the caches or the clock.  AVX2 only; not built by make:
 *
 *   cc -O2 -fopenmp -Iinclude -I. bench/n1_cputime.c build/libnsimplex.a \
 *      -lmpfr -lgmp -ljansson -lnettle -lm -lpthread -ldl -o build/n1_cputime
 *   build/n1_cputime L TOPK H      (defaults 4096 0 4; d = dv = 128, causal,
 *                                   Hkv = 1; NSX_ISA and NSX_TUNE apply)
 */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "simd/simd.h"

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

__attribute__((target("avx2,fma"))) static double fma_peak(void)
{
    __m256 a[12];
    const __m256 x = _mm256_set1_ps(0.9999f), y = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps(1.0f + (float)i * 1e-3f);
    const long iters = 20000000;
    double t0 = cpu_seconds();
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++)
            a[i] = _mm256_fmadd_ps(a[i], x, y);
    }
    double t = cpu_seconds() - t0;
    float s = 0, o[8];
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(o, a[i]);
        s += o[0];
    }
    if (s == 1234.5f) /* keeps the chains */
        puts("");
    return (double)iters * 12 * 16 / t * 1e-9;
}

static float unif(void)
{
    return (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
}

int main(int argc, char **argv)
{
    const int L = argc > 1 ? atoi(argv[1]) : 4096, topk = argc > 2 ? atoi(argv[2]) : 0;
    const int H = argc > 3 ? atoi(argv[3]) : 4, d = 128, dv = 128;
    if (L < 1 || topk < 0 || H < 1)
        return 2;
    nsx_kernel_problem p = {0};
    p.n = 1, p.B = 1, p.L = L, p.H = H, p.Hkv = 1, p.d = d, p.dv = dv, p.causal = 1;
    p.score_scale = 1 / sqrt(d), p.out_scale = 1;
    float *q = malloc(sizeof(float) * L * H * d), *k = malloc(sizeof(float) * L * d);
    float *v = malloc(sizeof(float) * L * dv), *o = malloc(sizeof(float) * L * H * dv);
    srand(1);
    for (long t = 0; t < (long)L * H * d; t++)
        q[t] = unif();
    for (long t = 0; t < (long)L * d; t++)
        k[t] = unif(), v[t] = unif();
    double tuples = 0;
    int32_t *sel = NULL;
    if (topk) { /* topk distinct keys of [0, i] per query (all when fewer), as bench draws */
        sel = malloc(sizeof(int32_t) * L * topk);
        char *taken = calloc((size_t)L, 1);
        for (int i = 0; i < L; i++) {
            int32_t *row = sel + (long)i * topk;
            int pool = i + 1, take = pool < topk ? pool : topk, got = 0;
            for (int j = pool - take; j < pool; j++) {
                int t = rand() % (j + 1), x = taken[t] ? j : t;
                row[got++] = x;
                taken[x] = 1;
            }
            for (int r = 0; r < got; r++)
                taken[row[r]] = 0;
            for (int r = got; r < topk; r++)
                row[r] = -1;
            tuples += got;
        }
        free(taken);
        p.topk = topk, p.sel_dims = 1, p.sel = sel;
    } else {
        for (int i = 0; i < L; i++)
            tuples += i + 1;
    }
    tuples *= H;
    nsx_kernel_io io = {.q = q, .k = {k}, .v = {v}, .o = o};
    if (nsx_simd_forward(&p, &io, 1) != NSX_SIMD_OK)
        return 1;
    double best = INFINITY;
    for (int r = 0; r < 3; r++) {
        double t0 = cpu_seconds();
        nsx_simd_forward(&p, &io, 1);
        double t = cpu_seconds() - t0;
        best = t < best ? t : best;
    }
    const double gf = tuples * 2 * (d + dv) / best * 1e-9, peak = fma_peak();
    printf("n=1 L=%d H=%d d=dv=%d causal top-k %d, 1 thread: %.2f useful GFLOP/s per CPU-second, "
           "FMA peak %.2f: %.1f%%\n", L, H, d, topk, gf, peak, 100 * gf / peak);
    free(q), free(k), free(v), free(o), free(sel);
    return 0;
}
