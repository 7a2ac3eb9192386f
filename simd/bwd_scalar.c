/*
 * The portable backward tile (simd/bwd_kern.h): plain C, the fallback for a
 * CPU without AVX2 and the first rung of the ISA ladder the tests walk.
 * Built with the baseline flags only.  A deliberate second statement of
 * the tile, not an instance of simd/bwd_kern.inc: plain loops in the
 * order a reader checks against bwd_kern.h (each product summed, then
 * added), where the vector body accumulates in registers.
 */
#include <math.h>

#include "simd/bwd_kern.h"
#include "simd/simd.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#error "simd/bwd_scalar.c must be compiled without ISA flags (it is the portable fallback)"
#endif

#define MR 4
#define NR 16

static void tile_scalar(const nsx_bwd_tile *t)
{
    const int d = t->d, dvp = t->dvp, ldk = t->ldk, ldd = t->ldd;
    float *A = t->ptile, *dT = t->ptile + MR * NR;
    float s[MR][NR] = {{0}}, dp[MR][NR] = {{0}};
    /* S and dP */
    for (int l = 0; l < d; l++)
        for (int r = 0; r < MR; r++)
            for (int c = 0; c < NR; c++)
                s[r][c] += t->uq[r * ldd + l] * t->kt[(size_t)l * ldk + c];
    if (t->sum) {
        for (int r = 0; r < MR; r++)
            for (int c = 0; c < NR; c++)
                dp[r][c] = t->dprow[r] + t->dpcol[c];
    } else {
        for (int x = 0; x < dvp; x++)
            for (int r = 0; r < MR; r++)
                for (int c = 0; c < NR; c++)
                    dp[r][c] += t->dov[r * dvp + x] * t->vt[(size_t)x * ldk + c];
    }
    /* A (E4) and dT (E7c); masked tuples exactly 0 */
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < NR; c++) {
            int on = t->mask[r] >> c & 1u;
            A[r * NR + c] = on ? expf(s[r][c] - t->lse[r]) : 0.0f;
            dT[r * NR + c] = on ? A[r * NR + c] * (dp[r][c] - t->delta[r]) : 0.0f;
        }
    /* dkt += dT^T uq, x += dT kr */
    for (int l = 0; l < d; l++)
        for (int c = 0; c < NR; c++) {
            float a = 0.0f;
            for (int r = 0; r < MR; r++)
                a += dT[r * NR + c] * t->uq[r * ldd + l];
            t->dkt[(size_t)l * ldk + c] += a;
        }
    for (int r = 0; r < MR; r++)
        for (int l = 0; l < d; l++) {
            float a = 0.0f;
            for (int c = 0; c < t->nc; c++)
                a += dT[r * NR + c] * t->kr[(size_t)c * ldd + l];
            t->x[r * ldd + l] += a;
        }
    if (t->sum) {
        for (int r = 0; r < MR; r++)
            for (int c = 0; c < NR; c++) {
                t->rowa[r] += A[r * NR + c];
                t->cola[c] += A[r * NR + c];
            }
        return;
    }
    /* dvt += A^T dov, y += A vr */
    for (int x = 0; x < dvp; x++)
        for (int c = 0; c < NR; c++) {
            float a = 0.0f;
            for (int r = 0; r < MR; r++)
                a += A[r * NR + c] * t->dov[r * dvp + x];
            t->dvt[(size_t)x * ldk + c] += a;
        }
    for (int r = 0; r < MR; r++)
        for (int x = 0; x < dvp; x++) {
            float a = 0.0f;
            for (int c = 0; c < t->nc; c++)
                a += A[r * NR + c] * t->vr[(size_t)c * dvp + x];
            t->y[r * dvp + x] += a;
        }
}

const nsx_bwd_kernels nsx_bwd_kernels_scalar = {
    .isa = NSX_ISA_SCALAR, .mr = MR, .nr = NR, .tile = tile_scalar,
};
